//! Load against an OpenAI-compatible endpoint (vLLM, SGLang, `simctl serve --llm`): the request
//! body, the model the server serves, and the incremental reader of the streamed answer that
//! timestamps every token as it arrives.
//!
//! A completions request (`POST …/v1/completions`) is `{"model", "prompt": [token ids],
//! "max_tokens", "stream": true, "stream_options": {"include_usage": true}, "ignore_eos":
//! true}`: a prompt of token ids has an exact length whatever the tokenizer, and `ignore_eos` (a
//! vLLM extension other servers ignore) makes the server generate all `max_tokens`. A chat
//! request (`POST …/v1/chat/completions`) carries one user message of common English words, one
//! token each in GPT-2's and Llama's tokenizers (the chat template adds its own few), and the
//! exact count in an `x-prompt-tokens` header for `simctl serve --llm`. The answer is a stream of
//! server-sent events, `data: {json}` per token and `data: [DONE]` at the end; a chunk counts as
//! a token when its `text` or `delta.content` is not empty (a chat stream's first chunk may carry
//! only the role), and the last chunk's `usage.completion_tokens`, when the server sends it,
//! is the output count.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::client::{Client, RequestTemplate, Target};
use crate::LoadError;

/// How to talk to an OpenAI-compatible completions endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAi {
    /// The `model` of every request.
    pub model: String,
    /// Chat completions (`messages`) rather than completions (`prompt`).
    pub chat: bool,
    /// A request whose time to first token is above this is not good (goodput).
    pub slo_ttft: Option<Duration>,
    /// A request whose mean inter-token latency is above this is not good (goodput).
    pub slo_itl: Option<Duration>,
}

/// Lowest token id of the generated prompts.
const FIRST_ID: u64 = 1000;
/// Token ids of the generated prompts span this many values from [`FIRST_ID`]: below every
/// real vocabulary's size (GPT-2's 50,257, Llama's 32,000 or 128,256).
const ID_SPAN: u64 = 10_000;

/// splitmix64's finalizer: a cheap, well-mixed hash.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Words that are one token each, after a space, in GPT-2's and Llama's tokenizers: a chat
/// prompt of N of them is about N tokens on any server.
const ONE_TOKEN_WORDS: [&str; 32] = [
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
    "from", "his", "it", "be", "are", "this", "which", "or", "had", "not", "but", "have", "they",
    "were", "one", "all", "their", "been",
];

impl OpenAi {
    /// The body of request number `seq` with a prompt of `input` tokens and `output` tokens to
    /// generate. The prompt depends on `seq`, so prompts share no prefix a server could cache.
    pub fn body(&self, seq: u64, input: u32, output: u32) -> Vec<u8> {
        let mut s = String::with_capacity(128 + self.model.len() + 6 * input as usize);
        s.push_str("{\"model\":");
        s.push_str(&serde_json::Value::String(self.model.clone()).to_string());
        let base = mix(seq.wrapping_add(0x9e37_79b9_7f4a_7c15));
        if self.chat {
            s.push_str(",\"messages\":[{\"role\":\"user\",\"content\":\"");
            for i in 0..u64::from(input) {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(
                    ONE_TOKEN_WORDS[(mix(base ^ i) % ONE_TOKEN_WORDS.len() as u64) as usize],
                );
            }
            s.push_str("\"}]");
        } else {
            s.push_str(",\"prompt\":[");
            for i in 0..u64::from(input) {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{}", FIRST_ID + mix(base ^ i) % ID_SPAN);
            }
            s.push(']');
        }
        let _ = write!(
            s,
            ",\"max_tokens\":{output},\"stream\":true,\"stream_options\":{{\"include_usage\":true}},\"ignore_eos\":true}}"
        );
        s.into_bytes()
    }
}

/// The `/v1/models` URL beside a completions URL: the path up to its `/v1/`, then `v1/models`.
fn models_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    match path.rfind("/v1/") {
        Some(at) => format!("{}/v1/models", &path[..at]),
        None => "/v1/models".into(),
    }
}

/// Ask the server behind `target` which model it serves (`GET /v1/models`, the first `id`).
pub async fn discover_model(target: &Target) -> Result<String, LoadError> {
    let path = models_path(target.path());
    let url = format!("http://{}{path}", target.authority());
    let fail = |reason: String| {
        LoadError::Config(format!(
            "cannot learn the model from GET {url}: {reason}; give --model"
        ))
    };
    let models = target.with_path(&path);
    let template = RequestTemplate {
        method: http::Method::GET,
        body: bytes::Bytes::new(),
        ..RequestTemplate::default()
    };
    let client = Client::new(models, template)?;
    let mut body = Vec::new();
    let exchange = async {
        let mut conn = client.connect().await?;
        client
            .exchange(&mut conn, &[], None, |data| {
                if body.len() < 1 << 20 {
                    body.extend_from_slice(data);
                }
            })
            .await
    };
    let (answer, _) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| fail("no answer within 10 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !(200..300).contains(&answer.status) {
        return Err(fail(format!("status {}", answer.status)));
    }
    let list: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))?;
    list.get("data")
        .and_then(|d| d.get(0))
        .and_then(|m| m.get("id"))
        .and_then(|id| id.as_str())
        .map(str::to_string)
        .ok_or_else(|| fail("no data[0].id in the answer".into()))
}

/// The events of one streamed answer, with the time each token arrived.
#[derive(Debug, Default)]
pub(crate) struct TokenStream {
    /// The current line, when a read ended inside it.
    line: Vec<u8>,
    /// The `data:` lines of the current event, joined with newlines.
    data: Vec<u8>,
    /// Whether the current event has a `data:` line.
    has_data: bool,
    /// Arrival of the first token.
    pub(crate) first: Option<Instant>,
    /// Arrival of the last token.
    pub(crate) last: Option<Instant>,
    /// Tokens received.
    pub(crate) tokens: u64,
    /// Gaps between consecutive tokens.
    pub(crate) gaps: Vec<Duration>,
    /// `data: [DONE]` arrived.
    pub(crate) done: bool,
    /// The server sent an error event (`{"error": …}`) in the stream.
    pub(crate) error: Option<String>,
    /// `usage.completion_tokens` of the last chunk, when the server reported it.
    pub(crate) usage_tokens: Option<u64>,
}

/// Longest event kept (a token's chunk is a few hundred bytes).
const MAX_EVENT: usize = 1 << 20;

/// The fields of a stream chunk the reader looks at.
#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// A streamed choice: completions' `text` or chat's `delta.content`.
#[derive(serde::Deserialize)]
struct Choice {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    delta: Option<Delta>,
}

/// A chat chunk's change to the message.
#[derive(serde::Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// The token counts a stream's last chunk reports with `include_usage`.
#[derive(serde::Deserialize)]
struct Usage {
    completion_tokens: u64,
}

impl Choice {
    /// Whether the choice carries generated text (a token), not only a role or a finish reason.
    fn has_text(&self) -> bool {
        let content = self.delta.as_ref().and_then(|d| d.content.as_deref());
        self.text
            .as_deref()
            .or(content)
            .is_some_and(|t| !t.is_empty())
    }
}

impl TokenStream {
    /// Bytes of the (de-chunked) body that arrived at `now`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], now: Instant) {
        while let Some(at) = bytes.iter().position(|b| *b == b'\n') {
            let (head, rest) = bytes.split_at(at);
            bytes = &rest[1..];
            if self.line.is_empty() {
                self.end_line(head, now);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.end_line(&line, now);
                line.clear();
                self.line = line;
            }
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() + self.data.len() > MAX_EVENT {
            // A server that never ends its line or event: drop it rather than grow without bound.
            self.line.clear();
            self.data.clear();
            self.has_data = false;
            self.error
                .get_or_insert_with(|| "an event longer than 1 MiB".into());
        }
    }

    fn end_line(&mut self, line: &[u8], now: Instant) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.end_event(now);
            return;
        }
        // Other fields (`event:`, `id:`, `retry:`) and comments (`:`) carry no token.
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }

    fn end_event(&mut self, now: Instant) {
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
        } else if let Ok(chunk) = serde_json::from_slice::<Chunk>(&data) {
            if let Some(error) = chunk.error {
                let message = error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| error.to_string(), str::to_string);
                self.error.get_or_insert(message);
            } else {
                if chunk
                    .choices
                    .is_some_and(|c| c.iter().any(Choice::has_text))
                {
                    self.token(now);
                }
                if let Some(usage) = chunk.usage {
                    self.usage_tokens = Some(usage.completion_tokens);
                }
            }
        }
        self.data = data;
        self.data.clear();
    }

    fn token(&mut self, now: Instant) {
        if let Some(last) = self.last {
            self.gaps.push(now.saturating_duration_since(last));
        }
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.tokens += 1;
    }

    /// The mean gap between tokens, `None` with fewer than two.
    pub(crate) fn mean_gap(&self) -> Option<Duration> {
        match (self.first, self.last) {
            (Some(first), Some(last)) if self.tokens > 1 => {
                Some(last.saturating_duration_since(first) / (self.tokens - 1) as u32)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = r#"data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" token","finish_reason":null}]}"#;

    fn stream_of(tokens: usize, usage: bool) -> String {
        let mut s = String::new();
        for _ in 0..tokens {
            s.push_str(TOKEN);
            s.push_str("\n\n");
        }
        if usage {
            s.push_str("data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n");
        }
        s.push_str("data: [DONE]\n\n");
        s
    }

    #[test]
    fn whole_events_count_tokens_then_done() {
        let mut t = TokenStream::default();
        let now = Instant::now();
        t.feed(stream_of(3, true).as_bytes(), now);
        assert_eq!(t.tokens, 3);
        assert!(t.done);
        assert_eq!(t.gaps.len(), 2);
        assert_eq!(t.error, None);
    }

    #[test]
    fn events_split_anywhere_are_timed_when_they_end() {
        let text = stream_of(4, false).replace("\n\n", "\r\n\r\n");
        let bytes = text.as_bytes();
        // Every split point, including mid-line, mid-CRLF and mid-"[DONE]".
        for split in 0..bytes.len() {
            let mut t = TokenStream::default();
            let start = Instant::now();
            let later = start + Duration::from_millis(5);
            t.feed(&bytes[..split], start);
            t.feed(&bytes[split..], later);
            assert_eq!(t.tokens, 4, "split at {split}");
            assert!(t.done, "split at {split}");
            // A token whose event ends after the split arrives with the second read.
            let first_end = TOKEN.len() + 4;
            let expect_first = if split >= first_end { start } else { later };
            assert_eq!(t.first, Some(expect_first), "split at {split}");
            let expect_last = if split >= 4 * first_end { start } else { later };
            assert_eq!(t.last, Some(expect_last), "split at {split}");
        }
    }

    #[test]
    fn byte_by_byte_reads_and_gaps() {
        let text = stream_of(3, true);
        let mut t = TokenStream::default();
        let start = Instant::now();
        for (i, b) in text.bytes().enumerate() {
            t.feed(&[b], start + Duration::from_micros(i as u64));
        }
        assert_eq!((t.tokens, t.done), (3, true));
        let gap = Duration::from_micros(TOKEN.len() as u64 + 2);
        assert_eq!(t.gaps, vec![gap, gap]);
        assert_eq!(t.mean_gap(), Some(gap));
    }

    #[test]
    fn comments_other_fields_and_errors() {
        let text =
            ": keep-alive\n\nevent: message\nid: 1\ndata:{\"choices\":[{\"text\":\"a\"}]}\n\n\
                    data: {\"error\": {\"message\": \"overloaded\", \"code\": 503}}\n\n\
                    data: not json\n\ndata: [DONE]\n\n";
        let mut t = TokenStream::default();
        t.feed(text.as_bytes(), Instant::now());
        assert_eq!(t.tokens, 1);
        assert_eq!(t.error.as_deref(), Some("overloaded"));
        assert!(t.done);
        assert_eq!(t.mean_gap(), None, "one token has no gap");
    }

    #[test]
    fn bodies_are_valid_requests_without_shared_prefixes() {
        let o = OpenAi {
            model: "m\"x".into(),
            chat: false,
            slo_ttft: None,
            slo_itl: None,
        };
        let a: serde_json::Value = serde_json::from_slice(&o.body(0, 200, 20)).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&o.body(1, 200, 20)).unwrap();
        assert_eq!(a["model"], "m\"x");
        assert_eq!(a["max_tokens"], 20);
        assert_eq!(a["stream"], true);
        assert_eq!(a["ignore_eos"], true);
        let ids = a["prompt"].as_array().unwrap();
        assert_eq!(ids.len(), 200);
        assert!(ids
            .iter()
            .all(|v| (FIRST_ID..FIRST_ID + ID_SPAN).contains(&v.as_u64().unwrap())));
        assert_ne!(a["prompt"][0], b["prompt"][0]);
        let empty: serde_json::Value = serde_json::from_slice(&o.body(2, 0, 1)).unwrap();
        assert_eq!(empty["prompt"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn the_models_url_sits_beside_the_completions_url() {
        assert_eq!(models_path("/v1/completions"), "/v1/models");
        assert_eq!(models_path("/llm/v1/completions?x=1"), "/llm/v1/models");
        assert_eq!(models_path("/generate"), "/v1/models");
    }

    #[test]
    fn chat_streams_count_content_not_the_role_chunk_and_take_usage() {
        let text = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\" a\"}}],\"usage\":null}\n\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\" b\"},\"finish_reason\":\"length\"}]}\n\n\
                    data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n\
                    data: [DONE]\n\n";
        let mut t = TokenStream::default();
        t.feed(text.as_bytes(), Instant::now());
        assert_eq!(t.tokens, 2, "the role-only chunk is no token");
        assert_eq!(t.usage_tokens, Some(2));
        assert!(t.done && t.error.is_none());
    }

    #[test]
    fn chat_bodies_carry_one_word_per_prompt_token() {
        let o = OpenAi {
            model: "m".into(),
            chat: true,
            slo_ttft: None,
            slo_itl: None,
        };
        let a: serde_json::Value = serde_json::from_slice(&o.body(0, 50, 7)).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&o.body(1, 50, 7)).unwrap();
        assert_eq!(a["messages"][0]["role"], "user");
        let words = |v: &serde_json::Value| {
            v["messages"][0]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(words(&a).len(), 50);
        assert!(words(&a)
            .iter()
            .all(|w| ONE_TOKEN_WORDS.contains(&w.as_str())));
        assert_ne!(words(&a), words(&b), "no shared prompts");
        assert_eq!(a["max_tokens"], 7);
        assert_eq!(a["stream_options"]["include_usage"], true);
        assert!(a.get("prompt").is_none());
    }
}
