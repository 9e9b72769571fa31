//! Tenants against theory and against their own bookkeeping: weighted fair queueing gives each
//! backlogged tenant its weight's share of the throughput; a sum of Poisson tenants is Poisson
//! at the summed rate; a token bucket admits its burst plus its rate; a concurrency limit caps
//! the tenant's requests in flight; and over random scenarios every request belongs to exactly
//! one tenant (the tenants' counts add up to the API's, nothing lost or counted twice).

use std::path::Path;

use proptest::prelude::*;
use sim::results::{ApiResults, Metric, Results};

/// One API on one replica of `workers` workers with a queue of `queue`, constant service
/// `service`, `tenants` (TOML of its `[[apis.tenants]]`) and `fairness` (TOML lines of
/// `[apis.fairness]`).
fn run(
    duration: &str,
    workers: u32,
    queue: u32,
    service: &str,
    tenants: &str,
    fairness: &str,
) -> Results {
    let text = format!(
        r#"
duration = "{duration}"
seed = 5
timeline_step = "1s"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "a"
[apis.pod]
max_concurrency = {workers}
max_queue_length = {queue}
[apis.service_time]
distribution = "constant"
value = "{service}"
[apis.autoscaling]
policy = "fixed"
min_replicas = 1
max_replicas = 1
[apis.fairness]
{fairness}
{tenants}
"#
    );
    let scenario = sim::Scenario::parse(&text, "t.toml", Path::new(".")).expect("valid");
    sim::run(&scenario).expect("runs")
}

fn tenant(name: &str, rps: f64, extra: &str) -> String {
    format!(
        "[[apis.tenants]]\nname = \"{name}\"\ntraffic = {{ kind = \"poisson\", rps = {rps} }}\n{extra}\n"
    )
}

#[test]
fn weighted_fair_queueing_gives_each_backlogged_tenant_its_weights_share() {
    // One worker serving 100 req/s; three tenants each sending 150 req/s stay backlogged for the
    // whole run (the queue only grows), so the worker's starts split 1 : 3 : 4.
    let tenants = [
        tenant("one", 150.0, "weight = 1"),
        tenant("three", 150.0, "weight = 3"),
        tenant("four", 150.0, "weight = 4"),
    ]
    .concat();
    let r = run(
        "60s",
        1,
        100_000,
        "10ms",
        &tenants,
        "queue = \"weighted_fair\"",
    );
    let api = &r.apis[0];
    let served: u64 = api.tenants.iter().map(|t| t.completed).sum();
    assert!(served > 5_900, "{served}");
    for (t, weight) in api.tenants.iter().zip([1.0, 3.0, 4.0]) {
        let share = t.completed as f64 / served as f64;
        // Self-clocked fair queueing is within one request per tenant of the ideal share.
        assert!(
            (share - weight / 8.0).abs() < 0.002,
            "{}: {share} of the starts for weight {weight}",
            t.name
        );
    }
    // FIFO instead: the shares follow the arrival rates, a third each.
    let fifo = run("60s", 1, 100_000, "10ms", &tenants, "queue = \"fifo\"");
    for t in &fifo.apis[0].tenants {
        let share = t.completed as f64 / served as f64;
        assert!((share - 1.0 / 3.0).abs() < 0.02, "{}: {share}", t.name);
    }
}

#[test]
fn weighted_fair_shares_hold_with_several_workers_and_a_light_tenant_keeps_its_latency() {
    // Four workers (400 req/s); two heavy tenants at 500 req/s each, weights 1 : 3, and a light
    // one at 20 req/s (below any share) that fair queueing serves almost at once.
    let tenants = [
        tenant("heavy1", 500.0, "weight = 1"),
        tenant("heavy3", 500.0, "weight = 3"),
        tenant("light", 20.0, ""),
    ]
    .concat();
    let r = run(
        "60s",
        4,
        200_000,
        "10ms",
        &tenants,
        "queue = \"weighted_fair\"",
    );
    let t = &r.apis[0].tenants;
    let heavy = (t[0].completed + t[1].completed) as f64;
    let share = t[1].completed as f64 / heavy;
    assert!((share - 0.75).abs() < 0.01, "{share}");
    assert_eq!(t[2].completed, t[2].requests - t[2].in_flight_at_end);
    // Its tag is at most one unit past the clock, so it waits behind about one heavy1 and three
    // heavy3 requests (4 at 400 req/s, 10 ms) and for a worker to free (up to 10 ms), then is
    // served in 10 ms: about 25 ms, never the seconds the heavy tenants queue for.
    assert!(t[2].latency_ms.p99 < 50.0, "{:?}", t[2].latency_ms);
    assert!(t[0].latency_ms.p50 > 1_000.0, "{:?}", t[0].latency_ms);
}

#[test]
fn priority_starts_the_higher_tenant_first() {
    let tenants = [
        tenant("gold", 40.0, "priority = 1"),
        tenant("bulk", 200.0, "priority = 0"),
    ]
    .concat();
    let r = run("60s", 1, 100_000, "10ms", &tenants, "queue = \"priority\"");
    let t = &r.apis[0].tenants;
    // Gold is an M/D/1 queue at 40 % load behind at most one bulk request in service.
    assert!(t[0].latency_ms.p99 < 60.0, "{:?}", t[0].latency_ms);
    assert!(t[0].completed >= t[0].requests - 2, "{:?}", t[0]);
    // Bulk gets what is left: about 60 req/s of the 100.
    let bulk_rps = t[1].completed as f64 / 60.0;
    assert!((bulk_rps - 60.0).abs() < 3.0, "{bulk_rps}");
}

#[test]
fn a_full_fair_queue_pushes_out_the_request_that_would_start_last() {
    // A queue of 20 under a 300 req/s flood: under FIFO the quiet tenant's requests find it full
    // as often as the flood's; under weighted fair queueing they push the flood's out.
    let tenants = [tenant("quiet", 10.0, ""), tenant("flood", 300.0, "")].concat();
    let fifo = run("60s", 1, 20, "10ms", &tenants, "queue = \"fifo\"");
    let fair = run("60s", 1, 20, "10ms", &tenants, "queue = \"weighted_fair\"");
    let quiet = |r: &Results| r.apis[0].tenants[0].clone();
    assert!(quiet(&fifo).rejected > 100, "{:?}", quiet(&fifo));
    assert_eq!(quiet(&fair).rejected, 0, "{:?}", quiet(&fair));
    assert_eq!(fair.apis[0].rejected, fair.apis[0].tenants[1].rejected);
}

#[test]
fn a_sum_of_poisson_tenants_is_poisson_at_the_summed_rate() {
    let tenants = [tenant("x", 30.0, ""), tenant("y", 70.0, "")].concat();
    // Ample capacity: nothing queues long, nothing is refused.
    let r = run("1h", 4, 1_000, "1ms", &tenants, "");
    let api = &r.apis[0];
    let n = api.requests as f64;
    assert!((n - 360_000.0).abs() < 4.0 * 360_000f64.sqrt(), "{n}");
    // Counts in 1 s windows: mean 100 and variance equal to the mean (index of dispersion 1);
    // the standard error of the ratio over 3,600 windows is √(2/3600) ≈ 0.024.
    let counts: Vec<f64> = r
        .timeline
        .get(Metric::Rps, "a")
        .expect("series")
        .iter()
        .map(|v| v.expect("a value"))
        .collect();
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (counts.len() - 1) as f64;
    assert!((mean - 100.0).abs() < 1.0, "{mean}");
    assert!((var / mean - 1.0).abs() < 0.1, "dispersion {}", var / mean);
    // Each tenant's share of the arrivals is its rate's share (binomial thinning in reverse).
    let x = api.tenants[0].requests as f64 / n;
    assert!((x - 0.3).abs() < 4.0 * (0.3 * 0.7 / n).sqrt(), "{x}");
}

#[test]
fn a_token_bucket_admits_its_burst_then_its_rate() {
    // 100 evenly spaced req/s against 40 req/s with a bucket of 10: 10 + 40 per second admitted.
    let tenants = "[[apis.tenants]]\nname = \"t\"\ntraffic = { kind = \"constant\", rps = 100 }\nrate_limit_rps = 40\nburst = 10\n";
    let r = run("100s", 8, 100, "1ms", tenants, "");
    let t = &r.apis[0].tenants[0];
    let admitted = t.requests - t.rate_limited;
    assert!((admitted as i64 - 4_010).abs() <= 2, "{admitted}");
    assert_eq!(t.rejected, t.rate_limited);
    assert_eq!(r.apis[0].rejected, t.rejected);
}

#[test]
fn a_concurrency_limit_caps_the_tenants_requests_in_flight() {
    // 10 req/s of 1 s requests on 8 workers: 10 would be in flight; the limit of 2 keeps 2, so
    // about 2 complete per second and the rest are answered 429.
    let tenants = "[[apis.tenants]]\nname = \"t\"\ntraffic = { kind = \"constant\", rps = 10 }\nmax_concurrency = 2\n";
    let r = run("100s", 8, 100, "1s", tenants, "");
    let t = &r.apis[0].tenants[0];
    assert!((t.completed as i64 - 198).abs() <= 3, "{t:?}");
    assert_eq!(
        t.requests,
        t.completed + t.rate_limited + t.in_flight_at_end
    );
    let in_flight = r.timeline.get(Metric::InFlight, "a").expect("series");
    assert!(in_flight.iter().all(|v| v.expect("value") <= 2.0));
}

#[test]
fn tenants_can_each_replay_a_column_of_one_trace() {
    // One recorded file with a count column per tenant: each tenant replays its own column.
    let dir = std::env::temp_dir().join(format!("simctl-tenant-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut csv = String::from("timestamp_s,acme,globex\n");
    for minute in 0..10 {
        csv.push_str(&format!(
            "{},{},{}\n",
            minute * 60,
            600 + minute,
            60 * minute
        ));
    }
    std::fs::write(dir.join("per-tenant.csv"), csv).expect("written");
    let text = r#"
duration = "10m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
[[apis]]
name = "a"
[apis.pod]
max_concurrency = 8
[apis.service_time]
distribution = "constant"
value = "1ms"
[[apis.tenants]]
name = "acme"
traffic = { kind = "trace", path = "per-tenant.csv", format = "counts", column = "acme", interval = "60s" }
[[apis.tenants]]
name = "globex"
traffic = { kind = "trace", path = "per-tenant.csv", format = "counts", column = "globex", interval = "60s" }
"#;
    let scenario = sim::Scenario::parse(text, "t.toml", &dir).expect("valid");
    let r = sim::run(&scenario).expect("runs");
    let t = &r.apis[0].tenants;
    assert_eq!(t[0].requests, (0..10).map(|m| 600 + m).sum::<u64>());
    assert_eq!(t[1].requests, (0..10).map(|m| 60 * m).sum::<u64>());
    assert_eq!(r.apis[0].requests, t[0].requests + t[1].requests);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tenant_mistakes_are_named_errors() {
    let base = |api: &str, top: &str| {
        format!(
            "duration = \"1m\"\n{top}\n[[node_groups]]\nname = \"cpu\"\ninstance_type = \"m5.xlarge\"\n[[apis]]\nname = \"a\"\n[apis.service_time]\ndistribution = \"constant\"\nvalue = \"10ms\"\n{api}\n"
        )
    };
    let poisson = "traffic = { kind = \"poisson\", rps = 1 }";
    for (text, field, says) in [
        (
            base(&format!("[apis.traffic]\nkind = \"poisson\"\nrps = 1\n[[apis.tenants]]\nname = \"t\"\n{poisson}"), ""),
            "apis[0].tenants",
            "either",
        ),
        (
            base(&format!("[[apis.tenants]]\nname = \"t\"\n{poisson}\n[[apis.tenants]]\nname = \"t\"\n{poisson}"), ""),
            "apis[0].tenants[1].name",
            "unique",
        ),
        (
            base("[apis.traffic]\nkind = \"poisson\"\nrps = 1\n[apis.fairness]\nqueue = \"fifo\"", ""),
            "apis[0].fairness",
            "between tenants",
        ),
        (
            base(&format!("[[apis.tenants]]\nname = \"t\"\n{poisson}\n[apis.fairness]\nqueue = \"wfq\""), ""),
            "apis[0].fairness.queue",
            "weighted_fair",
        ),
        (
            base(&format!("[[apis.tenants]]\nname = \"t\"\n{poisson}\nweight = 0"), ""),
            "apis[0].tenants[0].weight",
            "> 0",
        ),
        (
            base(&format!("[[apis.tenants]]\nname = \"t\"\n{poisson}\nburst = 5"), ""),
            "apis[0].tenants[0].burst",
            "rate_limit_rps",
        ),
        (
            base("", &format!("[[tenants]]\nname = \"a/b\"\n{poisson}")),
            "tenants[0].name",
            "without '/'",
        ),
        (base("", ""), "apis[0].traffic", "[[tenants]]"),
        (
            base(
                "[apis.traffic]\nkind = \"poisson\"\nrps = 1",
                &format!("[[tenants]]\nname = \"t\"\n{poisson}"),
            ),
            "tenants",
            "no API takes",
        ),
        (
            base(&format!("[[apis.tenants]]\nname = \"t\"\n{poisson}\nslo = {{ warmup = \"10s\" }}"), ""),
            "apis[0].tenants[0].slo.warmup",
            "whole run",
        ),
    ] {
        let err = sim::Scenario::parse(&text, "t.toml", Path::new("."))
            .expect_err("invalid")
            .to_string();
        assert!(err.contains(field) && err.contains(says), "{err}\n---\n{text}");
    }
}

#[derive(Debug, Clone)]
struct Case {
    rates: Vec<f64>,
    limits: Vec<(Option<u32>, Option<u32>)>,
    queue: &'static str,
    workers: u32,
    queue_length: u32,
    timeout_ms: Option<u32>,
    spot: bool,
    /// Traffic pauses mid-run under a scale-to-zero KPA: the activator holds requests.
    zero: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..5)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(1.0f64..60.0, n),
                proptest::collection::vec(
                    (
                        proptest::option::of(1u32..40),
                        proptest::option::of(1u32..6),
                    ),
                    n,
                ),
                prop_oneof![Just("fifo"), Just("weighted_fair"), Just("priority")],
                1u32..5,
                0u32..12,
                proptest::option::of(50u32..1500),
                any::<bool>(),
                any::<bool>(),
                0u64..1_000_000,
            )
        })
        .prop_map(
            |(rates, limits, queue, workers, queue_length, timeout_ms, spot, zero, seed)| Case {
                rates,
                limits,
                queue,
                workers,
                queue_length,
                timeout_ms,
                spot,
                zero,
                seed,
            },
        )
}

fn case_scenario(c: &Case) -> sim::Scenario {
    let mut tenants = String::new();
    for (i, (rps, (rate, conc))) in c.rates.iter().zip(&c.limits).enumerate() {
        tenants.push_str(&format!(
            "[[apis.tenants]]\nname = \"t{i}\"\nweight = {}\npriority = {}\n",
            i + 1,
            i % 2
        ));
        tenants.push_str(&if c.zero {
            format!("traffic = {{ kind = \"steps\", steps = [{{ at = \"0s\", rps = {rps} }}, {{ at = \"100s\", rps = 0 }}, {{ at = \"200s\", rps = {rps} }}] }}\n")
        } else {
            format!("traffic = {{ kind = \"poisson\", rps = {rps} }}\n")
        });
        if let Some(r) = rate {
            tenants.push_str(&format!("rate_limit_rps = {r}\n"));
        }
        if let Some(m) = conc {
            tenants.push_str(&format!("max_concurrency = {m}\n"));
        }
    }
    let timeout = c
        .timeout_ms
        .map(|t| format!("timeout = \"{t}ms\""))
        .unwrap_or_default();
    let spot = if c.spot {
        "spot = true\ninterruption_rate = 40.0\nco_interruption = 0.3"
    } else {
        ""
    };
    let autoscaling = if c.zero {
        "policy = \"kpa\"\nstable_window = \"12s\"\nscale_to_zero_grace_period = \"5s\"\nmin_replicas = 0\nmax_replicas = 3"
    } else {
        "policy = \"fixed\"\nmin_replicas = 2\nmax_replicas = 2"
    };
    let text = format!(
        r#"
duration = "5m"
seed = {seed}
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 3
{spot}
[[apis]]
name = "a"
{timeout}
[apis.compute]
cpu = "1"
[apis.pod]
max_concurrency = {workers}
max_queue_length = {queue_length}
[apis.service_time]
distribution = "exponential"
mean = "80ms"
[apis.autoscaling]
{autoscaling}
[apis.fairness]
queue = "{queue}"
{tenants}
"#,
        seed = c.seed,
        workers = c.workers,
        queue_length = c.queue_length,
        queue = c.queue,
    );
    sim::Scenario::parse(&text, "case.toml", Path::new(".")).expect("valid")
}

/// Every request of every tenant has one outcome, and the tenants add up to the API.
fn check_tenants_add_up(api: &ApiResults) {
    let sum = |f: fn(&sim::results::TenantResults) -> u64| api.tenants.iter().map(f).sum::<u64>();
    for t in &api.tenants {
        assert_eq!(
            t.requests,
            t.completed + t.rejected + t.timed_out + t.interrupted + t.in_flight_at_end,
            "{t:?}"
        );
        assert!(t.rate_limited <= t.rejected);
    }
    assert_eq!(sum(|t| t.requests), api.requests);
    assert_eq!(sum(|t| t.completed), api.completed);
    assert_eq!(sum(|t| t.rejected), api.rejected);
    assert_eq!(sum(|t| t.timed_out), api.timed_out);
    assert_eq!(sum(|t| t.interrupted), api.interrupted);
    assert_eq!(sum(|t| t.in_flight_at_end), api.in_flight_at_end);
    let cost: f64 = api.tenants.iter().map(|t| t.cost_usd).sum();
    assert!(
        (cost - api.cost_usd).abs() < 1e-9 * api.cost_usd.max(1.0),
        "{cost} vs {}",
        api.cost_usd
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn tenants_counts_add_up_and_runs_are_reproducible(c in case()) {
        let scenario = case_scenario(&c);
        let r = sim::run(&scenario).expect("runs");
        check_tenants_add_up(&r.apis[0]);
        let again = sim::run(&scenario).expect("runs");
        prop_assert_eq!(
            serde_json::to_string(&r).expect("json"),
            serde_json::to_string(&again).expect("json")
        );
    }
}
