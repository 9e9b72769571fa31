//! Invariants over random scenarios: every request is accounted for exactly once, replicas stay
//! within their bounds, every batch has one outcome, and runs are reproducible from their seed —
//! under every autoscaling policy (scale to zero included), placeholder preemption, batch jobs
//! sharing the nodes, time-sliced GPUs and spot reclaims.

use std::path::Path;

use proptest::prelude::*;
use sim::results::{decode_histogram, EventKind, Metric};

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
    policy: Policy,
    placeholders: u32,
    batch_workers: u32,
    gpu_sharing: bool,
}

/// The autoscaling policy of a case, with its bounds.
#[derive(Debug, Clone, Copy)]
enum Policy {
    Fixed,
    Cortex { min: u32, max: u32 },
    Hpa { min: u32, max: u32 },
    Kpa { min: u32, max: u32 },
}

impl Policy {
    fn bounds(self, replicas: u32) -> (u32, u32) {
        match self {
            Policy::Fixed => (replicas, replicas),
            Policy::Cortex { min, max } | Policy::Hpa { min, max } | Policy::Kpa { min, max } => {
                (min, max)
            }
        }
    }

    fn toml(self, replicas: u32) -> String {
        let (min, max) = self.bounds(replicas);
        let body = match self {
            Policy::Fixed => "policy = \"fixed\"".to_string(),
            Policy::Cortex { .. } => {
                "policy = \"cortex\"\nwindow = \"10s\"\nupscale_stabilization_period = \"5s\"\ndownscale_stabilization_period = \"10s\"".to_string()
            }
            Policy::Hpa { .. } => {
                "policy = \"hpa\"\nmetric = \"concurrency\"\ntarget_average_value = 2\ndownscale_stabilization = \"15s\"".to_string()
            }
            Policy::Kpa { .. } => "policy = \"kpa\"\nstable_window = \"12s\"\nscale_to_zero_grace_period = \"5s\"".to_string(),
        };
        format!("{body}\nmin_replicas = {min}\nmax_replicas = {max}")
    }
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Fixed),
        (0u32..2, 1u32..5).prop_map(|(min, extra)| Policy::Cortex {
            min,
            max: min + extra
        }),
        (1u32..2, 1u32..5).prop_map(|(min, extra)| Policy::Hpa {
            min,
            max: min + extra
        }),
        (0u32..2, 1u32..5).prop_map(|(min, extra)| Policy::Kpa {
            min,
            max: min + extra
        }),
    ]
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
        .prop_flat_map(|c| (Just(c), policy(), 0u32..3, 0u32..3, any::<bool>()))
        .prop_map(
            |(
                (
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
                ),
                policy,
                placeholders,
                batch_workers,
                gpu_sharing,
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
                policy,
                placeholders,
                batch_workers,
                gpu_sharing,
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
    // Spot cases use an absurd interruption rate so nodes are reclaimed (after the 2-minute
    // notice) during the run.
    let spot = if c.spot {
        "spot = true\ninterruption_rate = 40.0\nco_interruption = 0.3"
    } else {
        ""
    };
    // GPU cases put every pod on time-sliced GPUs (two pods per GPU).
    let (instance, sharing, gpu) = if c.gpu_sharing {
        (
            "g4dn.xlarge",
            "gpu_sharing = { mode = \"time-slicing\", replicas = 2 }",
            "gpu = 1",
        )
    } else {
        ("m5.xlarge", "", "")
    };
    let placeholders = if c.placeholders > 0 {
        format!(
            "[[overprovisioning]]\nreplicas = {}\ncpu = \"500m\"\n{gpu}\n",
            c.placeholders
        )
    } else {
        String::new()
    };
    let batch = if c.batch_workers > 0 {
        format!(
            r#"[[batch_jobs]]
name = "b"
submit_at = "10s"
workers = {}
items = 400
batch_size = 20
startup_time = "2s"
failure_rate = 0.1
[batch_jobs.compute]
cpu = "500m"
{gpu}
[batch_jobs.service_time]
distribution = "exponential"
mean = "2s"
[batch_jobs.sqs_dead_letter_queue]
max_receive_count = 2
"#,
            c.batch_workers
        )
    } else {
        String::new()
    };
    // Traffic stops for a while, so scale-to-zero policies go to zero and wake up again.
    let text = format!(
        r#"
duration = "200s"
seed = {seed}
timeline_step = "5s"
[[node_groups]]
name = "cpu"
instance_type = "{instance}"
min_instances = 1
max_instances = 3
{sharing}
{spot}
boot_time = {{ median = "10s", p99 = "20s" }}
{placeholders}
{batch}
[[apis]]
name = "a"
startup_time = "3s"
{timeout}
[apis.compute]
cpu = "500m"
{gpu}
[apis.pod]
processes_per_replica = {processes}
threads_per_process = {threads}
max_queue_length = {queue}
[apis.service_time]
{service}
[apis.traffic]
kind = "steps"
steps = [{{ at = "0s", rps = {rps} }}, {{ at = "50s", rps = 0 }}, {{ at = "100s", rps = {rps} }}]
[apis.autoscaling]
{policy}
"#,
        seed = c.seed,
        processes = c.processes,
        threads = c.threads,
        queue = c.queue,
        rps = c.rps,
        policy = c.policy.toml(c.replicas),
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
        let rps = &r.timeline.get(Metric::Rps, "a").expect("series");
        let mut previous = 0.0;
        let mut total = 0.0;
        for (i, v) in rps.iter().enumerate() {
            total += v.unwrap_or(0.0) * (t[i] - previous);
            previous = t[i];
        }
        prop_assert!((total - a.requests as f64).abs() < 1e-6 * (1.0 + total), "{} vs {}", total, a.requests);
        prop_assert!(step > 0.0);
        // Replicas within the policy's bounds (placeholders are separate pods).
        let (min, max) = c.policy.bounds(c.replicas);
        for v in r.timeline.get(Metric::ReplicasDesired, "a").expect("series").iter().flatten() {
            prop_assert!(*v >= f64::from(min) && *v <= f64::from(max), "{} not in {}..={}", v, min, max);
        }
        for e in &r.events {
            if let EventKind::Scale(s) = &e.kind {
                prop_assert!(s.to >= min && s.to <= max, "{:?}", e);
            }
        }
        // Every batch has exactly one outcome.
        for j in &r.batch_jobs {
            prop_assert_eq!(j.batches, j.succeeded + j.failed + j.dead_lettered + j.unfinished);
        }
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
