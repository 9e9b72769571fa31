//! The OpenAI-compatible request and response shapes the emulated vLLM replica speaks: what a
//! request asks for (prompt length, output length, streaming), and the JSON of answers, stream
//! chunks and errors.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::PROMPT_TOKENS_HEADER;

/// Output tokens of a request that does not set `max_tokens` (OpenAI's and vLLM's completions
/// default).
pub(super) const DEFAULT_MAX_TOKENS: u32 = 16;

/// Most tokens a prompt or an output may ask for (the engine counts in `u32`).
const MAX_TOKENS: u64 = 100_000_000;

/// The text of every emitted token.
pub(super) const TOKEN_TEXT: &str = " token";

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `POST /v1/completions`.
    Completion,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// The fields of a request body the replica reads; every other field (`temperature`,
/// `ignore_eos`, `n`, …) is accepted and ignored.
#[derive(Debug, Deserialize)]
struct Body {
    model: Option<String>,
    prompt: Option<Value>,
    messages: Option<Vec<Message>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// What a request asks the engine for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ask {
    /// Prompt tokens.
    pub(super) prompt_tokens: u32,
    /// Output tokens (always generated in full: the emulated model never stops early).
    pub(super) max_tokens: u32,
    /// Answer with server-sent events, one per token.
    pub(super) stream: bool,
    /// End a stream with a chunk carrying `usage`.
    pub(super) include_usage: bool,
    /// The model named in the request (the replica's when left out).
    pub(super) model: Option<String>,
}

/// A request the replica refuses, with its HTTP status and OpenAI-style error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// HTTP status.
    pub(super) status: StatusCode,
    /// The error's message.
    pub(super) message: String,
}

impl Refusal {
    /// A 400 with `message`.
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_response(self.status, &self.message)
    }
}

/// An OpenAI-style error answer: `{"error": {"message", "type", "param", "code"}}`.
pub(super) fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "BadRequestError",
        StatusCode::NOT_FOUND => "NotFoundError",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
        _ => "InternalServerError",
    };
    let body = json!({
        "error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": status.as_u16(),
        }
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Tokens of a text prompt, estimated as OpenAI's rule of thumb has it (a token is about ¾ of
/// an English word): whitespace-separated words × 4 / 3, rounded up. A client that knows the
/// exact count sends the `x-prompt-tokens` header or a list of token ids instead.
pub fn estimate_prompt_tokens(text: &str) -> u32 {
    let words = text.split_whitespace().count() as u64;
    (words * 4).div_ceil(3).min(MAX_TOKENS) as u32
}

/// Words of a chat message's `content`: a string, or a list of parts whose `text` counts.
fn content_words(content: &Value, text: &mut String) {
    match content {
        Value::String(s) => {
            text.push(' ');
            text.push_str(s);
        }
        Value::Array(parts) => {
            for part in parts {
                if let Some(s) = part.get("text").and_then(Value::as_str) {
                    text.push(' ');
                    text.push_str(s);
                }
            }
        }
        _ => {}
    }
}

/// Prompt tokens of a completion's `prompt`: a string (estimated), or a list of token ids (its
/// length exactly, as vLLM counts a token-id prompt). A list of one string or one token list is
/// that prompt; batched prompts are refused.
fn prompt_tokens(prompt: &Value) -> Result<u64, Refusal> {
    match prompt {
        Value::String(s) => Ok(u64::from(estimate_prompt_tokens(s))),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(items.len() as u64),
        Value::Array(items) if items.len() == 1 => prompt_tokens(&items[0]),
        Value::Array(_) => Err(Refusal::bad(
            "prompt: expected a string or a list of token ids (batched prompts are not supported)",
        )),
        _ => Err(Refusal::bad(
            "prompt: expected a string or a list of token ids",
        )),
    }
}

/// Read a request: its body and the `x-prompt-tokens` header (which overrides the prompt's
/// estimate).
pub(super) fn parse(kind: Kind, headers: &HeaderMap, body: &[u8]) -> Result<Ask, Refusal> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad(format!("the body is not a valid request: {e}")))?;
    let from_body = match kind {
        Kind::Completion => match &body.prompt {
            Some(prompt) => prompt_tokens(prompt)?,
            None => return Err(Refusal::bad("prompt: required")),
        },
        Kind::Chat => match &body.messages {
            Some(messages) if !messages.is_empty() => {
                let mut text = String::new();
                for m in messages {
                    if let Some(content) = &m.content {
                        content_words(content, &mut text);
                    }
                }
                u64::from(estimate_prompt_tokens(&text))
            }
            _ => return Err(Refusal::bad("messages: required, at least one")),
        },
    };
    let prompt = match headers.get(PROMPT_TOKENS_HEADER) {
        Some(value) => {
            let text = value.to_str().unwrap_or("").trim();
            text.parse::<u64>().map_err(|_| {
                Refusal::bad(format!(
                    "{PROMPT_TOKENS_HEADER}: expected a whole number of tokens, found {text:?}"
                ))
            })?
        }
        None => from_body,
    };
    let max_tokens = body
        .max_tokens
        .or(body.max_completion_tokens)
        .unwrap_or(u64::from(DEFAULT_MAX_TOKENS));
    if max_tokens == 0 {
        return Err(Refusal::bad("max_tokens: expected at least 1"));
    }
    for (value, name) in [(prompt, "prompt tokens"), (max_tokens, "max_tokens")] {
        if value > MAX_TOKENS {
            return Err(Refusal::bad(format!(
                "{name}: {value} is more than {MAX_TOKENS}"
            )));
        }
    }
    let stream = body.stream.unwrap_or(false);
    Ok(Ask {
        prompt_tokens: prompt as u32,
        max_tokens: max_tokens as u32,
        stream,
        include_usage: stream
            && body
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        model: body.model,
    })
}

/// What every answer of one request shares.
#[derive(Debug, Clone)]
pub(super) struct Header {
    /// Endpoint.
    pub(super) kind: Kind,
    /// `cmpl-N` or `chatcmpl-N`.
    pub(super) id: String,
    /// Unix seconds at arrival.
    pub(super) created: u64,
    /// The replica's model name.
    pub(super) model: String,
}

impl Header {
    /// The header of request number `n`.
    pub(super) fn new(kind: Kind, n: u64, model: &str) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let prefix = match kind {
            Kind::Completion => "cmpl",
            Kind::Chat => "chatcmpl",
        };
        Self {
            kind,
            id: format!("{prefix}-{n}"),
            created,
            model: model.to_string(),
        }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Completion, _) => "text_completion",
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
        }
    }

    /// The stream chunk of output token number `index` (from 0) of `total`.
    pub(super) fn token_chunk(&self, index: u32, total: u32, include_usage: bool) -> Value {
        let finish = if index + 1 >= total {
            json!("length")
        } else {
            Value::Null
        };
        let choice = match self.kind {
            Kind::Completion => json!({
                "index": 0, "text": TOKEN_TEXT, "logprobs": null, "finish_reason": finish,
            }),
            Kind::Chat => {
                let delta = if index == 0 {
                    json!({ "role": "assistant", "content": TOKEN_TEXT })
                } else {
                    json!({ "content": TOKEN_TEXT })
                };
                json!({ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish })
            }
        };
        let mut chunk = self.envelope(true);
        chunk["choices"] = json!([choice]);
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The last chunk of a stream that asked for usage: no choices, the usage.
    pub(super) fn usage_chunk(&self, prompt: u32, completion: u32) -> Value {
        let mut chunk = self.envelope(true);
        chunk["choices"] = json!([]);
        chunk["usage"] = usage(prompt, completion);
        chunk
    }

    /// The whole answer of a request that does not stream.
    pub(super) fn answer(&self, prompt: u32, completion: u32) -> Value {
        let text = TOKEN_TEXT.repeat(completion as usize);
        let choice = match self.kind {
            Kind::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": "length",
            }),
            Kind::Chat => json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "logprobs": null,
                "finish_reason": "length",
            }),
        };
        let mut answer = self.envelope(false);
        answer["choices"] = json!([choice]);
        answer["usage"] = usage(prompt, completion);
        answer
    }

    fn envelope(&self, chunk: bool) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
        })
    }
}

fn usage(prompt: u32, completion: u32) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u64::from(prompt) + u64::from(completion),
    })
}

/// `GET /v1/models`: the one model the replica serves.
pub(super) fn models(model: &str, created: u64) -> Value {
    json!({
        "object": "list",
        "data": [{
            "id": model,
            "object": "model",
            "created": created,
            "owned_by": "simctl",
            "root": model,
            "parent": null,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ask(kind: Kind, body: &str) -> Result<Ask, Refusal> {
        parse(kind, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn prompt_lengths_are_counted_or_estimated() {
        assert_eq!(estimate_prompt_tokens(""), 0);
        assert_eq!(estimate_prompt_tokens("one"), 2, "4/3 rounds up");
        assert_eq!(estimate_prompt_tokens("a b c"), 4);
        assert_eq!(estimate_prompt_tokens("  a\tb\nc d e f "), 8);
        let a = ask(Kind::Completion, r#"{"prompt": [1, 2, 3, 4, 5, 6, 7]}"#).unwrap();
        assert_eq!((a.prompt_tokens, a.max_tokens, a.stream), (7, 16, false));
        let a = ask(Kind::Completion, r#"{"prompt": [[1, 2]], "max_tokens": 3}"#).unwrap();
        assert_eq!((a.prompt_tokens, a.max_tokens), (2, 3));
        let a = ask(
            Kind::Chat,
            r#"{"messages": [{"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi there you"}]}],
                "max_completion_tokens": 9, "temperature": 0.2}"#,
        )
        .unwrap();
        assert_eq!((a.prompt_tokens, a.max_tokens), (7, 9), "5 words");
        let mut headers = HeaderMap::new();
        headers.insert(PROMPT_TOKENS_HEADER, HeaderValue::from_static("300"));
        let a = parse(Kind::Completion, &headers, br#"{"prompt": "hello"}"#).unwrap();
        assert_eq!(a.prompt_tokens, 300);
    }

    #[test]
    fn streaming_options_are_read() {
        let a = ask(
            Kind::Completion,
            r#"{"prompt": "x", "stream": true, "stream_options": {"include_usage": true}, "ignore_eos": true}"#,
        )
        .unwrap();
        assert!(a.stream && a.include_usage);
        let a = ask(
            Kind::Completion,
            r#"{"prompt": "x", "stream_options": {"include_usage": true}, "model": "m"}"#,
        )
        .unwrap();
        assert!(!a.stream && !a.include_usage);
        assert_eq!(a.model.as_deref(), Some("m"));
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        for (kind, body, expect) in [
            (Kind::Completion, "not json", "not a valid request"),
            (Kind::Completion, r#"{"max_tokens": 3}"#, "prompt: required"),
            (Kind::Completion, r#"{"prompt": 3}"#, "prompt: expected"),
            (Kind::Completion, r#"{"prompt": ["a", "b"]}"#, "batched"),
            (
                Kind::Completion,
                r#"{"prompt": "a", "max_tokens": 0}"#,
                "at least 1",
            ),
            (
                Kind::Completion,
                r#"{"prompt": "a", "max_tokens": -1}"#,
                "not a valid",
            ),
            (
                Kind::Completion,
                r#"{"prompt": "a", "max_tokens": 1e12}"#,
                "not a valid",
            ),
            (Kind::Chat, r#"{"messages": []}"#, "messages: required"),
            (Kind::Chat, r#"{"prompt": "a"}"#, "messages: required"),
        ] {
            let e = ask(kind, body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(expect), "{body}: {}", e.message);
        }
        let mut headers = HeaderMap::new();
        headers.insert(PROMPT_TOKENS_HEADER, HeaderValue::from_static("lots"));
        let e = parse(Kind::Completion, &headers, br#"{"prompt": "a"}"#).unwrap_err();
        assert!(e.message.contains("x-prompt-tokens"), "{}", e.message);
    }

    #[test]
    fn chunks_follow_openai_shapes() {
        let h = Header::new(Kind::Completion, 7, "m");
        let c = h.token_chunk(0, 2, false);
        assert_eq!(c["id"], "cmpl-7");
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], TOKEN_TEXT);
        assert!(c["choices"][0]["finish_reason"].is_null());
        assert!(c.get("usage").is_none());
        assert_eq!(
            h.token_chunk(1, 2, true)["choices"][0]["finish_reason"],
            "length"
        );
        let h = Header::new(Kind::Chat, 8, "m");
        let c = h.token_chunk(0, 3, false);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(c["choices"][0]["delta"]["content"], TOKEN_TEXT);
        let a = h.answer(10, 3);
        assert_eq!(a["object"], "chat.completion");
        assert_eq!(a["choices"][0]["message"]["content"], " token token token");
        assert_eq!(a["usage"]["total_tokens"], 13);
        let u = h.usage_chunk(10, 3);
        assert_eq!(u["choices"].as_array().map(Vec::len), Some(0));
        assert_eq!(u["usage"]["completion_tokens"], 3);
    }
}
