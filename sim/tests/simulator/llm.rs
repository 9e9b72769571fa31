//! LLM APIs against closed forms of the step-time model, run through the whole simulator.

use std::path::Path;

use sim::results::Results;

/// One replica (or `replicas`), constant arrivals at `rps`, constant lengths.
fn run(rps: f64, replicas: u32, llm: &str, duration: &str) -> Results {
    let text = format!(
        r#"
duration = "{duration}"
seed = 5
[[node_groups]]
name = "gpu"
instance_type = "p4d.24xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "chat"
[apis.compute]
cpu = "1"
gpu = 1
[apis.llm]
{llm}
[apis.traffic]
kind = "constant"
rps = {rps}
[apis.autoscaling]
policy = "fixed"
min_replicas = {replicas}
"#
    );
    let scenario = sim::Scenario::parse(&text, "llm.toml", Path::new(".")).expect("valid scenario");
    sim::run(&scenario).expect("runs")
}

const STEP: &str = r#"
[apis.llm.step_time]
base = "5ms"
per_prefill_token = "0.05ms"
per_decode_token = "0.2ms"
"#;

/// Within the HDR histograms' 3-significant-digit resolution.
fn close(measured: f64, expected: f64) -> bool {
    (measured / expected - 1.0).abs() < 1e-3
}

#[test]
fn one_request_at_a_time_follows_the_step_formula() {
    // One request every 2 s, each done in under 1 s: never two in the engine.
    // TTFT = base + 1000 × per_prefill = 55 ms; ITL = base + 1 × per_decode = 5.2 ms;
    // end to end = TTFT + 127 × ITL = 715.4 ms.
    let llm = format!(
        "kv_cache_tokens = 100000\n[apis.llm.input_tokens]\ndistribution = \"constant\"\nvalue = 1000\n[apis.llm.output_tokens]\ndistribution = \"constant\"\nvalue = 128\n{STEP}"
    );
    let r = run(0.5, 1, &llm, "601s");
    let api = &r.apis[0];
    let llm = api.llm.as_ref().expect("an LLM API");
    assert_eq!(api.completed, 300);
    for (name, p, expected) in [
        ("ttft p50", llm.ttft_ms.p50, 55.0),
        ("ttft max", llm.ttft_ms.max, 55.0),
        ("itl p50", llm.itl_ms.p50, 5.2),
        ("itl max", llm.itl_ms.max, 5.2),
        ("e2e p50", api.latency_ms.p50, 55.0 + 127.0 * 5.2),
        ("e2e max", api.latency_ms.max, 55.0 + 127.0 * 5.2),
    ] {
        assert!(close(p, expected), "{name}: {p} ms, expected {expected} ms");
    }
    assert_eq!(llm.output_tokens, 300 * 128);
    assert_eq!(llm.preemptions, 0);
}

#[test]
fn saturated_throughput_matches_the_derivation() {
    // Derivation (see llm/src/engine/tests.rs): with a queue that never empties, constant prompt
    // P and output O, S = max_num_seqs slots, a budget of at least S·(P+1) and ample KV, the
    // slots run in step: one iteration prefills S prompts (first tokens), O − 1 iterations
    // decode S sequences, then all S finish. Period = O·base + S·P·per_prefill +
    // S·(O−1)·per_decode; throughput = S / period.
    // S = 16, P = 300, O = 64: period = 320 + 240 + 201.6 = 761.6 ms → 21.008 req/s.
    let llm = format!(
        "max_num_seqs = 16\nmax_num_batched_tokens = 8192\nkv_cache_tokens = 1000000\n[apis.llm.input_tokens]\ndistribution = \"constant\"\nvalue = 300\n[apis.llm.output_tokens]\ndistribution = \"constant\"\nvalue = 64\n{STEP}"
    );
    let r = run(40.0, 1, &llm, "20m");
    let predicted = 16.0 / 0.7616;
    let measured = r.apis[0].throughput_rps;
    eprintln!("saturated throughput: measured {measured:.4} req/s, derived {predicted:.4} req/s");
    assert!(
        (measured / predicted - 1.0).abs() < 0.02,
        "measured {measured} req/s, derived {predicted} req/s"
    );
}

#[test]
fn kv_exhaustion_preempts_and_every_request_is_accounted_for() {
    // 64 sequences of 500 + 400 tokens would need 57,600 tokens of KV; the replica has 8,000.
    let llm = format!(
        "max_num_seqs = 64\nkv_cache_tokens = 8000\n[apis.llm.input_tokens]\ndistribution = \"lognormal\"\nmedian = 500\np99 = 2000\n[apis.llm.output_tokens]\ndistribution = \"constant\"\nvalue = 400\n{STEP}"
    );
    let r = run(2.0, 1, &llm, "10m");
    let api = &r.apis[0];
    let llm = api.llm.as_ref().expect("an LLM API");
    assert!(llm.preemptions > 0, "no preemption");
    assert!(
        llm.prefill_tokens > llm.prompt_tokens,
        "preempted prompts are recomputed"
    );
    assert_eq!(
        api.requests,
        api.completed + api.rejected + api.timed_out + api.interrupted + api.in_flight_at_end
    );
}

#[test]
fn same_seed_same_bytes() {
    let llm = format!(
        "kv_cache_tokens = 50000\n[apis.llm.input_tokens]\ndistribution = \"lognormal\"\nmedian = 800\np99 = 6000\n[apis.llm.output_tokens]\ndistribution = \"lognormal\"\nmedian = 100\np99 = 900\n{STEP}"
    );
    let a = serde_json::to_string(&run(3.0, 2, &llm, "5m")).expect("serializes");
    let b = serde_json::to_string(&run(3.0, 2, &llm, "5m")).expect("serializes");
    assert_eq!(a, b);
}
