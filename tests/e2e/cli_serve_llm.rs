//! `simctl serve --llm`: an emulated vLLM replica over real HTTP on 127.0.0.1 — OpenAI-style
//! streaming and plain answers, the model list, vLLM's metrics, refusals, and a scenario's LLM
//! API served with its engine.

use serde_json::{json, Value};

use crate::common::{simctl, Served};

/// One POST's status, content type and body.
async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, String, String) {
    let response = client.post(url).json(&body).send().await.expect("answered");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, kind, response.text().await.expect("body"))
}

/// The `data:` payloads of a server-sent event stream.
fn events(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("a data event"))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn serve_llm_speaks_openai_and_vllm_metrics() {
    let served = Served::start(&[
        "--llm",
        "--step-base",
        "2ms",
        "--step-per-prefill-token",
        "0.01ms",
        "--step-per-decode-token",
        "0.1ms",
        "--kv-cache-tokens",
        "4096",
        "--model-name",
        "tiny",
    ]);
    let base = served.urls[0].clone();
    runtime().block_on(async move {
        let client = reqwest::Client::new();
        let completions = format!("{base}/v1/completions");

        // Streaming, with a token-id prompt: five token chunks, then [DONE].
        let prompt: Vec<u32> = (1..=100).collect();
        let (status, kind, text) = post(
            &client,
            &completions,
            json!({"model": "tiny", "prompt": prompt, "max_tokens": 5, "stream": true,
                   "ignore_eos": true, "temperature": 0}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        let stream = events(&text);
        assert_eq!(stream.len(), 6, "{text}");
        assert_eq!(stream[5], "[DONE]");
        for (i, event) in stream[..5].iter().enumerate() {
            let chunk: Value = serde_json::from_str(event).expect("a JSON chunk");
            assert_eq!(chunk["object"], "text_completion");
            assert_eq!(chunk["model"], "tiny");
            assert_eq!(chunk["choices"][0]["text"], " token");
            let finish = &chunk["choices"][0]["finish_reason"];
            if i == 4 {
                assert_eq!(finish, "length");
            } else {
                assert!(finish.is_null(), "{chunk}");
            }
        }

        // Not streaming, with a text prompt: 5 words are ⌈5 × 4 / 3⌉ = 7 tokens.
        let (status, _, text) = post(
            &client,
            &completions,
            json!({"prompt": "the quick brown fox jumps", "max_tokens": 5}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "length");

        // Chat, streaming, with usage at the end.
        let (status, _, text) = post(
            &client,
            &format!("{base}/v1/chat/completions"),
            json!({"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 3,
                   "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let stream = events(&text);
        assert_eq!(stream.len(), 5, "3 tokens, usage, [DONE]: {text}");
        let first: Value = serde_json::from_str(stream[0]).expect("JSON");
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["choices"][0]["delta"]["content"], " token");
        let usage: Value = serde_json::from_str(stream[3]).expect("JSON");
        assert_eq!(usage["usage"]["completion_tokens"], 3);
        assert_eq!(usage["usage"]["prompt_tokens"], 3);

        // Refusals: an unknown model, a request the KV cache can never hold, a bad body.
        let (status, _, text) = post(
            &client,
            &completions,
            json!({"model": "other", "prompt": "x"}),
        )
        .await;
        assert_eq!(status, 404, "{text}");
        let (status, _, text) = post(
            &client,
            &completions,
            json!({"prompt": [1, 2, 3], "max_tokens": 5000}),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        let error: Value = serde_json::from_str(&text).expect("JSON error");
        assert!(error["error"]["message"].as_str().is_some(), "{text}");
        let (status, _, _) = post(&client, &completions, json!({"max_tokens": 5})).await;
        assert_eq!(status, 400);

        let models: Value = client
            .get(format!("{base}/v1/models"))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON");
        assert_eq!(models["data"][0]["id"], "tiny");
        let health = client.get(format!("{base}/health")).send().await;
        assert_eq!(health.expect("answered").status().as_u16(), 200);

        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("text");
        for line in [
            "# TYPE vllm:num_requests_running gauge",
            "# TYPE vllm:num_requests_waiting gauge",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            "# TYPE vllm:gpu_cache_usage_perc gauge",
            "# TYPE vllm:prompt_tokens_total counter",
            "# TYPE vllm:generation_tokens_total counter",
            "# TYPE vllm:num_preemptions_total counter",
            "# TYPE vllm:request_success_total counter",
            "# TYPE vllm:time_to_first_token_seconds histogram",
            "# TYPE vllm:inter_token_latency_seconds histogram",
            "# TYPE vllm:e2e_request_latency_seconds histogram",
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
        }
        // prometheus-parse 0.2 reads names as `\w+` and so cannot read vLLM's `vllm:` names:
        // the samples are read here, `name{labels} value`.
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('{'))
                        && l.contains("model_name=\"tiny\"")
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
        };
        assert!(value("vllm:generation_tokens_total") >= 13.0);
        assert_eq!(value("vllm:prompt_tokens_total"), 110.0);
        assert_eq!(value("vllm:request_success_total"), 3.0);
        assert_eq!(value("vllm:num_requests_running"), 0.0);
        assert_eq!(value("vllm:kv_cache_usage_perc"), 0.0);
    });
}

#[test]
fn a_scenarios_llm_api_is_served_with_its_engine_and_slice() {
    let served = Served::start(&[
        "scenarios/llm-mig.toml",
        "--api",
        "chat-mig",
        "--startup-delay",
        "0s",
    ]);
    let base = served.urls[0].clone();
    runtime().block_on(async move {
        let client = reqwest::Client::new();
        let (status, _, text) = post(
            &client,
            &format!("{base}/v1/completions"),
            json!({"model": "chat-mig", "prompt": [1, 2, 3, 4], "max_tokens": 2}),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("vllm:generation_tokens_total{model_name=\"chat-mig\"} 2"),
            "{metrics}"
        );
    });
}

#[test]
fn llm_flags_are_checked() {
    for (args, expect) in [
        (&["serve", "--llm"][..], "--preset NAME"),
        (
            &["serve", "--llm", "--preset", "nope"][..],
            "unknown preset",
        ),
        (
            &["serve", "--llm", "--step-base", "5 parsecs"][..],
            "expected a duration",
        ),
        (
            &[
                "serve",
                "--llm",
                "--preset",
                "qwen2.5-7b/h100",
                "--threads",
                "2",
            ][..],
            "--threads is for request-level replicas",
        ),
        (&["serve", "--max-num-seqs", "8"][..], "add --llm"),
        (
            &["serve", "scenarios/quickstart.toml", "--llm"][..],
            "has no [apis.llm]",
        ),
    ] {
        let out = simctl(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}
