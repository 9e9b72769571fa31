//! `simctl loadgen --openai` against `simctl serve --llm` on 127.0.0.1: streamed completions,
//! every token timed, TTFT and ITL against the emulated engine's step-time formula.

use crate::common::{http_get, ok, read_json, scratch, simctl, Served};

/// The emulated engine: an iteration lasts `base + per_prefill × prompt tokens +
/// per_decode × decoding sequences`.
const BASE_MS: f64 = 10.0;
const PREFILL_MS: f64 = 0.05;
const DECODE_MS: f64 = 0.5;
const INPUT: u32 = 200;
const OUTPUT: u64 = 20;

#[test]
fn loadgen_openai_measures_ttft_and_itl_at_the_engines_step_times() {
    let served = Served::start(&[
        "--llm",
        "--step-base",
        "10ms",
        "--step-per-prefill-token",
        "0.05ms",
        "--step-per-decode-token",
        "0.5ms",
        "--kv-cache-tokens",
        "100000",
    ]);
    let completions = format!("{}/v1/completions", served.urls[0]);
    assert!(
        completions.starts_with("http://127.0.0.1:"),
        "{completions}"
    );
    let dir = scratch("loadgen-llm");
    let out = dir.join("r.json");
    let csv = dir.join("requests.csv");
    let run = ok(simctl(&[
        "loadgen",
        "--target",
        &completions,
        "--openai",
        "--rate",
        "2",
        "--duration",
        "5s",
        "--input-tokens",
        &INPUT.to_string(),
        "--output-tokens",
        &OUTPUT.to_string(),
        "--slo-ttft",
        "1s",
        "--slo-itl",
        "1s",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--requests-csv",
        csv.to_str().expect("utf-8 path"),
    ]));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("time to first token (ms)"), "{text}");
    assert!(text.contains("tokens/s"), "{text}");

    let r = read_json(&out);
    let api = &r["apis"][0];
    let requests = api["requests"].as_u64().expect("requests");
    assert!(requests >= 4, "a 5 s run at 2/s sends some: {r}");
    assert_eq!(api["completed"].as_u64(), Some(requests), "all 200: {r}");
    assert_eq!(r["output_tokens"].as_u64(), Some(requests * OUTPUT), "{r}");
    assert!(r["output_tokens_per_s"].as_f64().expect("tokens/s") > 0.0);
    assert_eq!(r["goodput"].as_f64(), Some(1.0), "{r}");

    // At 2 requests/s of ~230 ms each, requests rarely overlap: the first token comes after
    // one prefill iteration, each next one after one decode iteration of one sequence.
    //
    // Tolerances. TTFT counts from the scheduled time and the server cannot answer before the
    // formula, so it is never below it; above it: the client sends within ~1 ms of the time
    // (tokio's 1 ms timer), the server's iteration sleep wakes on the next 1 ms tick, then
    // loopback and parsing, and scheduling noise on 2 cores shared by client, server and other
    // builds: 15 ms of one 20 ms iteration. ITL: the server chains iterations on an absolute
    // schedule (each starts where the last ended) whose sleeps wake on whole 1 ms ticks, so
    // single gaps are the formula rounded to ticks — 10 or 11 ms alternating, mean 10.5 — and
    // the median lands on either side: the window is one tick below, 5 ms above (overlapping
    // requests add 0.5 ms per extra sequence, or a 10 ms prefill to one gap). The mean gap
    // spans a whole request, so its tick rounding shrinks to 1 ms / 19 gaps.
    let ttft = BASE_MS + f64::from(INPUT) * PREFILL_MS;
    let itl = BASE_MS + DECODE_MS;
    let ttft_p50 = r["ttft_ms"]["p50"].as_f64().expect("ttft_ms");
    let itl_p50 = r["itl_ms"]["p50"].as_f64().expect("itl_ms");
    let itl_mean = r["itl_ms"]["mean"].as_f64().expect("itl_ms");
    eprintln!(
        "TTFT p50 {ttft_p50} ms (formula {ttft}), ITL p50 {itl_p50} ms, mean {itl_mean} ms \
         (formula {itl})"
    );
    assert!(
        (ttft..=ttft + 15.0).contains(&ttft_p50),
        "TTFT p50 {ttft_p50} ms, formula {ttft} ms"
    );
    assert!(
        (itl - 1.0..=itl + 5.0).contains(&itl_p50),
        "ITL p50 {itl_p50} ms, formula {itl} ms"
    );
    assert!(
        (itl - 0.1..=itl + 5.0).contains(&itl_mean),
        "ITL mean {itl_mean} ms, formula {itl} ms"
    );

    // The per-request CSV has the token columns after the old ones, and reads back.
    let text = std::fs::read_to_string(&csv).expect("requests.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "timestamp_s,latency_ms,status,service_ms,error,queue_wait_ms,\
             ttft_ms,itl_mean_ms,output_tokens,input_tokens"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, requests);
    for row in &rows {
        assert_eq!((row[2], row[8], row[9]), ("200", "20", "200"), "{row:?}");
        let ttft_ms: f64 = row[6].parse().expect("ttft_ms");
        assert!(ttft_ms >= ttft, "{row:?}");
    }
    let measured = loadgen::read_measured(&csv).expect("reads back");
    assert_eq!(measured.len() as u64, requests);

    // A target path ending in /v1/completions implies --openai; the model is asked of the
    // server when not given.
    let implied = dir.join("implied.json");
    ok(simctl(&[
        "loadgen",
        "--quiet",
        "--target",
        &completions,
        "--rate",
        "4",
        "--arrivals",
        "constant",
        "--duration",
        "1s",
        "--input-tokens",
        "10",
        "--output-tokens",
        "3",
        "--out",
        implied.to_str().expect("utf-8 path"),
    ]));
    let r = read_json(&implied);
    assert_eq!(r["apis"][0]["completed"].as_u64(), Some(3), "{r}");
    assert_eq!(r["output_tokens"].as_u64(), Some(9), "{r}");
    assert!(r.get("goodput").is_none(), "no objectives, no goodput: {r}");

    // A chat completions target implies --openai too: the role-only first chunk is no token,
    // and the server took exactly the prompt tokens asked for (the x-prompt-tokens header).
    let prompt_tokens = || {
        let (_, metrics) =
            http_get(&format!("{}/metrics", served.urls[0])).expect("metrics answered");
        metrics
            .lines()
            .find(|l| l.starts_with("vllm:prompt_tokens_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .expect("vllm:prompt_tokens_total")
    };
    let before = prompt_tokens();
    let chat = dir.join("chat.json");
    ok(simctl(&[
        "loadgen",
        "--quiet",
        "--target",
        &format!("{}/v1/chat/completions", served.urls[0]),
        "--rate",
        "4",
        "--arrivals",
        "constant",
        "--duration",
        "1s",
        "--input-tokens",
        "10",
        "--output-tokens",
        "3",
        "--out",
        chat.to_str().expect("utf-8 path"),
    ]));
    let r = read_json(&chat);
    assert_eq!(r["apis"][0]["completed"].as_u64(), Some(3), "{r}");
    assert_eq!(r["output_tokens"].as_u64(), Some(9), "{r}");
    assert_eq!(prompt_tokens() - before, 30.0);
    let ttft_p50 = r["ttft_ms"]["p50"].as_f64().expect("ttft_ms");
    assert!(ttft_p50 >= BASE_MS + 10.0 * PREFILL_MS, "{r}");

    // Without lengths, a clear error.
    let out = simctl(&[
        "loadgen",
        "--target",
        &completions,
        "--rate",
        "1",
        "--duration",
        "1s",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--input-tokens"), "{err}");
}
