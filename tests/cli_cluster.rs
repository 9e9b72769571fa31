//! End-to-end: the cluster examples behave as their comments promise.

mod common;

use common::{example, run_results as run};

#[test]
fn spot_runs_out_and_the_priority_expander_falls_back() {
    let r = run(&example("spot-fallback.toml"));
    let events = r["events"].as_array().expect("events");
    let failed = events
        .iter()
        .position(|e| e["kind"] == "failed_launch" && e["node_group"] == "gpu-spot")
        .expect("spot capacity runs out");
    assert!(
        events[failed..]
            .iter()
            .any(|e| e["kind"] == "node_launch" && e["node_group"] == "gpu-on-demand"),
        "on-demand launch after the spot failure"
    );
    let spot = &r["node_groups"][0];
    assert!(spot["peak_nodes"].as_u64() <= Some(2), "spot_capacity = 2");
    assert!(spot["interruptions"].as_u64() >= Some(1));
    assert!(spot["spot_savings_usd"].as_f64() > Some(0.0));
    assert!(events.iter().any(|e| e["kind"] == "spot_interruption"));
}

#[test]
fn overprovisioning_cuts_the_tail_during_a_spike() {
    let with = run(&example("overprovisioning.toml"));
    let text = std::fs::read_to_string(example("overprovisioning.toml")).expect("read");
    let start = text.find("\n[[overprovisioning]]").expect("block") + 1;
    let end = start + text[start..].find("\n\n").expect("block end");
    let without_path =
        std::env::temp_dir().join(format!("simctl-noop-{}.toml", std::process::id()));
    std::fs::write(&without_path, format!("{}{}", &text[..start], &text[end..])).expect("write");
    let without = run(&without_path);
    let _ = std::fs::remove_file(&without_path);
    let p99 = |r: &serde_json::Value| r["apis"][0]["latency_ms"]["p99"].as_f64().expect("p99");
    let rejected = |r: &serde_json::Value| r["apis"][0]["rejected"].as_u64().expect("rejected");
    assert!(
        p99(&with) < p99(&without),
        "{} vs {}",
        p99(&with),
        p99(&without)
    );
    assert!(rejected(&with) < rejected(&without));
    assert!(with["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["kind"] == "preemption"));
}
