//! The real-time engine loop: token counts, timing against the step-time formula, refusals.
//!
//! Timing tolerance: a token can never come early (the loop sleeps until the iteration's end on
//! a monotonic clock, and the engine clock starts before the request is timed), so the lower
//! bound is the formula minus 1 ms (the clock's start and the test's are taken on different
//! threads). Late is bounded by tokio's timer granularity (1 ms) plus scheduling delay on a
//! 2-core machine shared with compilers: 15 ms covers a preempted thread's wake-up there.

use std::time::{Duration, Instant};

use llm::{EngineConfig, StepTime};

use super::*;

const SLACK: Duration = Duration::from_millis(15);

fn config(base_ms: f64, prefill_ms: f64, decode_ms: f64) -> EngineConfig {
    EngineConfig {
        max_num_seqs: 256,
        max_num_batched_tokens: 2048,
        chunked_prefill: true,
        block_size: 16,
        kv_blocks: 1000,
        step: StepTime {
            base_ns: base_ms * 1e6,
            per_prefill_token_ns: prefill_ms * 1e6,
            per_decode_token_ns: decode_ms * 1e6,
        },
    }
}

/// A running engine task for `spec`.
fn start(spec: LlmReplicaSpec) -> Arc<Shared> {
    let (shared, submissions) = Shared::start(spec);
    tokio::spawn(run_engine(shared.clone(), submissions));
    shared
}

fn ask(prompt: u32, max_tokens: u32) -> Ask {
    Ask {
        prompt_tokens: prompt,
        max_tokens,
        stream: false,
        include_usage: false,
        model: None,
    }
}

/// When each token of a request arrived, from just before it was submitted.
async fn token_times(shared: &Shared, prompt: u32, output: u32) -> Vec<Duration> {
    let sent = Instant::now();
    let (_, mut tokens) = enqueue(shared, &ask(prompt, output))
        .await
        .expect("admitted");
    let mut times = Vec::new();
    while tokens.recv().await.is_some() {
        times.push(sent.elapsed());
    }
    times
}

fn within(measured: Duration, expected: Duration, what: &str) {
    assert!(
        measured + Duration::from_millis(1) >= expected && measured <= expected + SLACK,
        "{what}: measured {measured:?}, formula {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_its_tokens() {
    let shared = start(LlmReplicaSpec::new("m", config(2.0, 0.01, 0.1)));
    let mut requests = Vec::new();
    for (prompt, output) in [(10, 1), (300, 7), (5, 20), (3000, 3)] {
        let shared = shared.clone();
        requests.push(tokio::spawn(async move {
            token_times(&shared, prompt, output).await.len() as u32
        }));
    }
    let mut total = 0;
    for (r, expected) in requests.into_iter().zip([1, 7, 20, 3]) {
        let got = r.await.expect("request task");
        assert_eq!(got, expected);
        total += got;
    }
    let m = shared.metrics();
    assert_eq!(m.generation_tokens, u64::from(total));
    assert_eq!(m.successes, 4);
    assert_eq!(m.prompt_tokens, 10 + 300 + 5 + 3000);
    assert_eq!(m.ttft.count(), 4);
    assert_eq!(m.e2e.count(), 4);
    assert_eq!(
        m.itl.count(),
        u64::from(total) - 4,
        "one gap per later token"
    );
    assert_eq!((m.running, m.waiting, m.kv_usage), (0, 0, 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_request_follows_the_step_time_formula() {
    // TTFT = base + per_prefill × prompt = 20 + 0.1 × 100 = 30 ms; every later token one decode
    // iteration, base + per_decode × 1 = 21 ms.
    let shared = start(LlmReplicaSpec::new("m", config(20.0, 0.1, 1.0)));
    let times = token_times(&shared, 100, 5).await;
    assert_eq!(times.len(), 5);
    eprintln!("lone request: token times {times:?} (formula 30, 51, 72, 93, 114 ms)");
    within(times[0], Duration::from_millis(30), "TTFT");
    for (i, t) in times.iter().enumerate().skip(1) {
        // Chained on the engine clock: token i is due at 30 + 21 i ms, jitter does not add up.
        within(*t, Duration::from_millis(30 + 21 * i as u64), "token time");
    }
    let m = shared.metrics();
    // The engine's own clock measures the formula (plus the instant between the arrival's
    // stamp and the iteration's start).
    let ttft = m.ttft.sum();
    assert!((0.030..0.032).contains(&ttft), "{ttft}");
    assert!((m.itl.sum() - 4.0 * 0.021).abs() < 1e-6, "{}", m.itl.sum());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_slice_stretches_every_iteration() {
    let mut spec = LlmReplicaSpec::new("m", config(10.0, 0.1, 1.0));
    spec.service_scale = 2.0;
    let shared = start(spec);
    let times = token_times(&shared, 50, 2).await;
    // (10 + 5) × 2 = 30 ms, then (10 + 1) × 2 = 22 ms.
    within(times[0], Duration::from_millis(30), "TTFT");
    within(times[1], Duration::from_millis(52), "second token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_fit_or_wait_are_refused() {
    let mut spec = LlmReplicaSpec::new("m", config(50.0, 0.0, 0.0));
    spec.engine.kv_blocks = 10; // 160 tokens
    spec.engine.max_num_seqs = 1;
    spec.max_waiting = Some(1);
    let shared = start(spec);
    let too_long = enqueue(&shared, &ask(150, 20)).await.expect_err("too long");
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert!(too_long.message.contains("160"), "{}", too_long.message);
    // One runs, one waits, the third finds the waiting queue full.
    let (_, mut first) = enqueue(&shared, &ask(10, 2)).await.expect("runs");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, mut second) = enqueue(&shared, &ask(10, 2)).await.expect("waits");
    let full = enqueue(&shared, &ask(10, 2)).await.expect_err("full");
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    {
        let m = shared.metrics();
        assert_eq!((m.running, m.waiting), (1, 1));
        assert!(m.kv_usage > 0.0);
    }
    let mut n = 0;
    while first.recv().await.is_some() {
        n += 1;
    }
    while second.recv().await.is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_left_is_aborted_and_frees_its_place() {
    // One sequence at a time, 10 ms iterations: a 1,000-token answer would hold the engine for
    // 10 s; its client leaves after the first token and the waiting request runs at once.
    let mut spec = LlmReplicaSpec::new("m", config(10.0, 0.0, 0.0));
    spec.engine.max_num_seqs = 1;
    let shared = start(spec);
    let (_, mut long) = enqueue(&shared, &ask(10, 1000)).await.expect("runs");
    let waiting = tokio::spawn({
        let shared = shared.clone();
        async move { token_times(&shared, 10, 2).await }
    });
    assert!(long.recv().await.is_some(), "first token");
    drop(long);
    let times = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the waiting request ran after the abort")
        .expect("task");
    assert_eq!(times.len(), 2);
    let m = shared.metrics();
    assert_eq!((m.aborted, m.successes, m.running, m.waiting), (1, 1, 0, 0));
    assert_eq!(m.kv_usage, 0.0);
}
