//! The simulator against closed forms of queueing theory.
//!
//! One replica with `threads_per_process = c` is a c-server FIFO queue; `max_queue_length`
//! bounds the waiting room. Each check runs R independent replications (seeds) and compares the
//! mean over replications with the theory, within 4 standard errors of that mean (measured
//! across replications, so the autocorrelation of waiting times within a run is accounted for):
//! a correct simulator fails a check with probability about 6·10⁻⁵. A 1 % allowance is added for
//! the HDR histograms' 3-significant-digit resolution and the small bias of starting empty
//! (each run is thousands of relaxation times long).

use std::path::Path;

use crate::theory::{assert_close, erlang_c, factorial};
use sim::results::Results;

/// Replications per check.
const RUNS: u64 = 12;

fn scenario(
    c: u32,
    queue: u32,
    rps: f64,
    service: &str,
    duration: &str,
    seed: u64,
) -> sim::Scenario {
    let text = format!(
        r#"
duration = "{duration}"
seed = {seed}
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "q"
[apis.compute]
cpu = "100m"
[apis.pod]
threads_per_process = {c}
max_queue_length = {queue}
[apis.service_time]
{service}
[apis.traffic]
kind = "poisson"
rps = {rps}
"#
    );
    sim::Scenario::parse(&text, "theory.toml", Path::new(".")).expect("valid scenario")
}

/// Run `RUNS` replications and collect `f(results)` from each.
fn replicate(
    c: u32,
    queue: u32,
    rps: f64,
    service: &str,
    duration: &str,
    f: impl Fn(&Results) -> f64,
) -> Vec<f64> {
    (0..RUNS)
        .map(|seed| {
            let s = scenario(c, queue, rps, service, duration, 1000 + seed);
            let r = sim::run(&s).expect("runs");
            let a = &r.apis[0];
            assert_eq!(
                a.requests,
                a.completed + a.rejected + a.timed_out + a.interrupted + a.in_flight_at_end
            );
            f(&r)
        })
        .collect()
}

/// Blocking probability of M/M/c/K (K = c + waiting room), by PASTA the fraction rejected.
fn mmck_blocking(c: u32, k: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    let p = |n: u32| {
        if n < c {
            a.powi(n as i32) / factorial(n)
        } else {
            a.powi(c as i32) / factorial(c) * rho.powi((n - c) as i32)
        }
    };
    let norm: f64 = (0..=k).map(p).sum();
    p(k) / norm
}

#[test]
fn mmc_mean_and_p99_wait_match_erlang_c() {
    // c = 4, λ = 32/s, mean service 100 ms: a = 3.2, ρ = 0.8.
    let (c, lambda, mu) = (4, 32.0, 10.0);
    let service = "distribution = \"exponential\"\nmean = \"100ms\"";
    let runs: Vec<(f64, f64)> = (0..RUNS)
        .map(|seed| {
            let r =
                sim::run(&scenario(c, 100_000, lambda, service, "40m", 1000 + seed)).expect("runs");
            let w = &r.apis[0].queue_wait_ms;
            (w.mean / 1000.0, w.p99 / 1000.0)
        })
        .collect();
    let a = lambda / mu;
    let p_wait = erlang_c(c, a);
    let rate = f64::from(c) * mu - lambda;
    assert_close(
        "M/M/4 mean wait (s)",
        &runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        p_wait / rate,
    );
    // P(W > t) = C·e^(−(cμ−λ)t), so the 99th percentile is ln(C / 0.01) / (cμ − λ).
    assert_close(
        "M/M/4 p99 wait (s)",
        &runs.iter().map(|r| r.1).collect::<Vec<_>>(),
        (p_wait / 0.01).ln() / rate,
    );
}

#[test]
fn mm1_mean_wait() {
    // ρ = 0.7: W_q = ρ / (μ − λ).
    let waits = replicate(
        1,
        100_000,
        7.0,
        "distribution = \"exponential\"\nmean = \"100ms\"",
        "2h",
        |r| r.apis[0].queue_wait_ms.mean / 1000.0,
    );
    assert_close("M/M/1 mean wait (s)", &waits, 0.7 / (10.0 - 7.0));
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine() {
    // Constant 100 ms service, ρ = 0.8: W_q = ρ / (2μ(1 − ρ)) = 0.2 s.
    let waits = replicate(
        1,
        100_000,
        8.0,
        "distribution = \"constant\"\nvalue = \"100ms\"",
        "2h",
        |r| r.apis[0].queue_wait_ms.mean / 1000.0,
    );
    assert_close("M/D/1 mean wait (s)", &waits, 0.8 / (2.0 * 10.0 * 0.2));
}

#[test]
fn mg1_lognormal_mean_wait_matches_pollaczek_khinchine() {
    // ln S ~ N(ln 0.05, 0.5²): E[S] = e^(μ+σ²/2), E[S²] = e^(2μ+2σ²); λ = 12/s.
    let (m, s2) = ((0.05f64).ln(), 0.25);
    let es = (m + s2 / 2.0).exp();
    let es2 = (2.0 * m + 2.0 * s2).exp();
    let lambda = 12.0;
    let rho = lambda * es;
    let waits = replicate(
        1,
        100_000,
        lambda,
        &format!("distribution = \"lognormal\"\nmu = {m}\nsigma = 0.5"),
        "2h",
        |r| r.apis[0].queue_wait_ms.mean / 1000.0,
    );
    assert_close(
        "M/G/1 lognormal mean wait (s)",
        &waits,
        lambda * es2 / (2.0 * (1.0 - rho)),
    );
}

#[test]
fn mmck_blocking_probability() {
    // c = 2 workers, 3 waiting places (K = 5), a = 2 (ρ = 1).
    let blocked = replicate(
        2,
        3,
        20.0,
        "distribution = \"exponential\"\nmean = \"100ms\"",
        "30m",
        |r| r.apis[0].rejected as f64 / r.apis[0].requests as f64,
    );
    assert_close("M/M/2/5 blocking", &blocked, mmck_blocking(2, 5, 2.0));
}

#[test]
fn erlang_b_loss_system() {
    // No waiting room: M/M/3/3 with a = 2.5.
    let blocked = replicate(
        3,
        0,
        25.0,
        "distribution = \"exponential\"\nmean = \"100ms\"",
        "30m",
        |r| r.apis[0].rejected as f64 / r.apis[0].requests as f64,
    );
    assert_close(
        "Erlang B (c = 3, a = 2.5)",
        &blocked,
        mmck_blocking(3, 3, 2.5),
    );
}

#[test]
fn mean_latency_is_mean_wait_plus_mean_service() {
    let diffs = replicate(
        2,
        100_000,
        15.0,
        "distribution = \"exponential\"\nmean = \"100ms\"",
        "30m",
        |r| {
            let a = &r.apis[0];
            a.latency_ms.mean - a.queue_wait_ms.mean
        },
    );
    // The difference is the mean service time of the requests served: 100 ms.
    assert_close("mean latency − mean wait (ms)", &diffs, 100.0);
}

#[test]
fn async_api_with_fixed_workers_is_one_mmc_queue() {
    // kind = "async": 3 replicas × 2 processes × 2 threads pull from one queue, so the API is
    // M/M/12 (a realtime API routes to processes and would be twelve M/M/1-like queues).
    // λ = 96/s, mean service 100 ms: a = 9.6, ρ = 0.8.
    let (c, lambda, mu) = (12, 96.0, 10.0);
    let runs: Vec<(f64, f64)> = (0..RUNS)
        .map(|seed| {
            let text = format!(
                r#"
duration = "30m"
seed = {}
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "q"
kind = "async"
[apis.compute]
cpu = "100m"
[apis.pod]
processes_per_replica = 2
threads_per_process = 2
[apis.service_time]
distribution = "exponential"
mean = "100ms"
[apis.traffic]
kind = "poisson"
rps = {lambda}
[apis.dequeuer]
empty_receive_sleep = "0s"   # always polling (at ρ = 0.8 Cortex's 10 s sleep never happens either)
[apis.autoscaling]
policy = "fixed"
min_replicas = 3
max_replicas = 3
"#,
                1000 + seed
            );
            let s = sim::Scenario::parse(&text, "async.toml", Path::new(".")).expect("valid");
            let r = sim::run(&s).expect("runs");
            let a = &r.apis[0];
            assert_eq!(a.rejected, 0, "an async queue never refuses");
            assert_eq!(
                a.requests,
                a.completed + a.interrupted + a.in_flight_at_end,
                "every request served or still queued"
            );
            (a.queue_wait_ms.mean / 1000.0, a.queue_wait_ms.p99 / 1000.0)
        })
        .collect();
    let p_wait = erlang_c(c, lambda / mu);
    let rate = f64::from(c) * mu - lambda;
    assert_close(
        "async M/M/12 mean wait (s)",
        &runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        p_wait / rate,
    );
    assert_close(
        "async M/M/12 p99 wait (s)",
        &runs.iter().map(|r| r.1).collect::<Vec<_>>(),
        (p_wait / 0.01).ln() / rate,
    );
}
