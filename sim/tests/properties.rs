//! Invariants over random scenarios: every request is accounted for exactly once, and runs are
//! reproducible from their seed.

use std::path::Path;

use proptest::prelude::*;
use sim::results::decode_histogram;

#[derive(Debug, Clone)]
struct Case {
    rps: f64,
    processes: u32,
    threads: u32,
    queue: u32,
    replicas: u32,
    timeout_ms: Option<u32>,
    constant_service: bool,
    service_ms: u32,
    spot: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1.0f64..80.0,
        1u32..4,
        1u32..5,
        0u32..20,
        1u32..4,
        proptest::option::of(50u32..2000),
        any::<bool>(),
        5u32..400,
        any::<bool>(),
        0u64..1_000_000,
    )
        .prop_map(
            |(
                rps,
                processes,
                threads,
                queue,
                replicas,
                timeout_ms,
                constant_service,
                service_ms,
                spot,
                seed,
            )| Case {
                rps,
                processes,
                threads,
                queue,
                replicas,
                timeout_ms,
                constant_service,
                service_ms,
                spot,
                seed,
            },
        )
}

fn scenario(c: &Case) -> sim::Scenario {
    let timeout = c
        .timeout_ms
        .map(|t| format!("timeout = \"{t}ms\""))
        .unwrap_or_default();
    let service = if c.constant_service {
        format!(
            "distribution = \"constant\"\nvalue = \"{}ms\"",
            c.service_ms
        )
    } else {
        format!(
            "distribution = \"exponential\"\nmean = \"{}ms\"",
            c.service_ms
        )
    };
    // Spot cases use an absurd interruption rate so nodes are reclaimed during the run.
    let spot = if c.spot {
        "spot = true\ninterruption_rate = 40.0\nco_interruption = 0.3"
    } else {
        ""
    };
    let text = format!(
        r#"
duration = "90s"
seed = {seed}
timeline_step = "5s"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 3
{spot}
boot_time = {{ median = "10s", p99 = "20s" }}
[[apis]]
name = "a"
startup_time = "3s"
{timeout}
[apis.compute]
cpu = "500m"
[apis.pod]
processes_per_replica = {processes}
threads_per_process = {threads}
max_queue_length = {queue}
[apis.service_time]
{service}
[apis.traffic]
kind = "poisson"
rps = {rps}
[apis.autoscaling]
min_replicas = {replicas}
max_replicas = {replicas}
"#,
        seed = c.seed,
        processes = c.processes,
        threads = c.threads,
        queue = c.queue,
        replicas = c.replicas,
        rps = c.rps,
    );
    sim::Scenario::parse(&text, "prop.toml", Path::new(".")).expect("generated scenario is valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_request_is_accounted_for_exactly_once(c in case()) {
        let r = sim::run(&scenario(&c)).expect("runs");
        let a = &r.apis[0];
        prop_assert_eq!(
            a.requests,
            a.completed + a.rejected + a.timed_out + a.interrupted + a.in_flight_at_end
        );
        // Each completion is recorded once in the latency histogram: none served twice.
        let served = decode_histogram(&a.latency_histogram).expect("histogram decodes");
        prop_assert_eq!(served.len(), a.completed);
        prop_assert!(a.rejected_no_replica <= a.rejected);
        if c.timeout_ms.is_none() {
            prop_assert_eq!(a.timed_out, 0);
        }
        if !c.spot {
            prop_assert_eq!(a.interrupted, 0);
        }
        // The timeline's arrival counts add up to the requests.
        let step = r.timeline.step_s;
        let t = &r.timeline.t_s;
        let rps = &r.timeline.series["rps/a"];
        let mut previous = 0.0;
        let mut total = 0.0;
        for (i, v) in rps.iter().enumerate() {
            total += v.unwrap_or(0.0) * (t[i] - previous);
            previous = t[i];
        }
        prop_assert!((total - a.requests as f64).abs() < 1e-6 * (1.0 + total), "{} vs {}", total, a.requests);
        prop_assert!(step > 0.0);
    }

    #[test]
    fn same_seed_same_results_other_seed_different(c in case()) {
        let s = scenario(&c);
        let a = serde_json::to_string(&sim::run(&s).expect("runs")).expect("json");
        let b = serde_json::to_string(&sim::run(&s).expect("runs")).expect("json");
        prop_assert_eq!(&a, &b);
        let mut other = s.clone();
        other.seed = s.seed + 1;
        let d = serde_json::to_string(&sim::run(&other).expect("runs")).expect("json");
        prop_assert_ne!(a, d);
    }
}
