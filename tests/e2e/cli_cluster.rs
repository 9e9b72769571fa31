//! End-to-end: the cluster examples behave as their comments promise.

use crate::common::{example, run_results as run};

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
    let peak_nodes = spot["peak_nodes"].as_u64().expect("peak_nodes");
    assert!(
        (1..=2).contains(&peak_nodes),
        "spot_capacity = 2: {peak_nodes}"
    );
    let interruptions = spot["interruptions"].as_u64().expect("interruptions");
    assert!(interruptions >= 1, "{interruptions}");
    let savings = spot["spot_savings_usd"].as_f64().expect("spot_savings_usd");
    assert!(savings > 0.0, "{savings}");
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

#[test]
fn a_batch_job_on_spot_finishes_and_reports_its_cost() {
    let r = run(&example("batch-spot.toml"));
    let job = &r["batch_jobs"][0];
    assert_eq!(job["status"], "succeeded", "{job}");
    let n = |k: &str| job[k].as_u64().expect(k);
    assert_eq!(n("batches"), 400);
    assert_eq!(
        n("batches"),
        n("succeeded") + n("failed") + n("dead_lettered") + n("unfinished")
    );
    assert_eq!(n("items_processed"), 200_000);
    // 1 % of attempts fail in the user's code and are retried through the DLQ's receives.
    assert!(n("failed_attempts") > 0 && n("attempts") > n("batches"));
    let took = job["completion_time_s"].as_f64().unwrap();
    // 400 batches of ~90 s over 8 workers ≈ 75 min of work, plus node boots.
    assert!((4000.0..9000.0).contains(&took), "{took}");
    assert!(job["cost_usd"].as_f64().unwrap() > 0.5);
    assert!(r["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "batch_complete"));
}
