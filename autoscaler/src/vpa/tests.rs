//! kubernetes/autoscaler's recommender tests (commit 55c37cd5), translated case by case with
//! their expected numbers: `util/histogram_test.go`, `util/decaying_histogram_test.go`,
//! `util/histogram_options_test.go`, `logic/estimator_test.go`, `logic/recommender_test.go` and
//! `model/container_test.go`. Left out: the checkpoint tests (the simulator never persists the
//! recommender's state to a `VerticalPodAutoscalerCheckpoint`), the controlled-resources and
//! `MapToListOfRecommendedContainerResources` tests (we always recommend both CPU and memory, for
//! one container), and the custom per-VPA memory-interval tests (the interval is one setting
//! here, tested through the default).

#![allow(clippy::approx_constant)] // upstream's cases use 3.14, not π

use super::*;

/// `valueEpsilon`: relative precision of histogram values.
fn in_epsilon(expected: f64, actual: f64) {
    assert!(
        ((expected - actual) / expected).abs() <= 1e-15,
        "expected {expected}, got {actual}"
    );
}

const WEIGHT_EPSILON: f64 = 1e-15;

/// `testHistogramOptions`: linear, 0..10 in steps of 1.
fn test_scheme() -> BucketScheme {
    BucketScheme::linear(10.0, 1.0, WEIGHT_EPSILON).expect("valid")
}

const HOUR: Duration = Duration::from_secs(3600);
/// `startTime = time.Unix(1234567890, 0)`.
const START: Duration = Duration::from_secs(1_234_567_890);

#[test]
fn percentiles_empty_histogram() {
    let h = Histogram::new(test_scheme());
    for p in [-0.5, 0.0, 0.5, 1.0, 1.5] {
        assert_eq!(h.percentile(p), 0.0);
    }
}

#[test]
fn percentiles() {
    let mut h = Histogram::new(test_scheme());
    for i in 1..=4 {
        h.add(f64::from(i), f64::from(i));
    }
    for (p, v) in [
        (0.0, 2.0),
        (0.1, 2.0),
        (0.2, 3.0),
        (0.3, 3.0),
        (0.4, 4.0),
        (0.5, 4.0),
        (0.6, 4.0),
        (0.7, 5.0),
        (0.8, 5.0),
        (0.9, 5.0),
        (1.0, 5.0),
    ] {
        in_epsilon(v, h.percentile(p));
    }
}

#[test]
fn percentile_out_of_bounds() {
    let mut h = Histogram::new(BucketScheme::linear(1.0, 0.1, WEIGHT_EPSILON).expect("valid"));
    h.add(0.1, 0.1);
    h.add(0.2, 0.2);
    in_epsilon(0.2, h.percentile(-0.1));
    in_epsilon(0.3, h.percentile(1.1));
    // Fill the boundary buckets.
    h.add(0.0, 0.1);
    h.add(1.0, 0.2);
    in_epsilon(0.1, h.percentile(-0.1));
    in_epsilon(1.0, h.percentile(1.1));
}

#[test]
fn empty_histogram() {
    let mut h = Histogram::new(BucketScheme::linear(1.0, 0.1, WEIGHT_EPSILON).expect("valid"));
    assert!(h.is_empty());
    h.add(0.1, WEIGHT_EPSILON * 2.5);
    assert!(!h.is_empty());
    h.subtract(0.1, WEIGHT_EPSILON);
    assert!(!h.is_empty());
    h.subtract(0.1, WEIGHT_EPSILON);
    assert!(h.is_empty());
}

#[test]
fn non_empty_on_epsilon_addition() {
    let mut h = Histogram::new(BucketScheme::linear(1.0, 0.1, WEIGHT_EPSILON).expect("valid"));
    assert!(h.is_empty());
    h.add(9.9, WEIGHT_EPSILON * 3.0);
    assert!(!h.is_empty());
    h.add(0.1, WEIGHT_EPSILON * 0.3);
    assert!(!h.is_empty());
    h.add(999.9, WEIGHT_EPSILON * 0.3);
    assert!(!h.is_empty());
}

#[test]
fn histogram_merge() {
    let mut h1 = Histogram::new(test_scheme());
    h1.add(1.0, 1.0);
    h1.add(2.0, 1.0);
    let mut h2 = Histogram::new(test_scheme());
    h2.add(2.0, 1.0);
    h2.add(3.0, 1.0);
    let mut expected = Histogram::new(test_scheme());
    for v in [1.0, 2.0, 2.0, 3.0] {
        expected.add(v, 1.0);
    }
    h1.merge(&h2);
    assert!(h1.equals(&expected));
}

#[test]
fn percentiles_empty_decaying_histogram() {
    let h = DecayingHistogram::new(test_scheme(), HOUR);
    for p in [-0.5, 0.0, 0.5, 1.0, 1.5] {
        assert_eq!(h.percentile(p), 0.0);
    }
}

#[test]
fn simple_decay() {
    let mut h = DecayingHistogram::new(test_scheme(), HOUR);
    // A very heavy sample, then one 20 half-lives later: 2^20 · 0.001 > 1000 times heavier.
    h.add(2.0, 1000.0, START);
    h.add(1.0, 1.0, START + HOUR * 20);
    in_epsilon(2.0, h.percentile(0.999));
    in_epsilon(3.0, h.percentile(1.0));
}

#[test]
fn longterm_decay() {
    let mut h = DecayingHistogram::new(test_scheme(), HOUR);
    h.add(2.0, 1.0, START);
    // The relative decay of the two samples exceeds 2^maxDecayExponent.
    h.add(1.0, 1.0, START + HOUR * 101);
    in_epsilon(2.0, h.percentile(1.0));
}

#[test]
fn decaying_histogram_percentiles() {
    let mut h = DecayingHistogram::new(test_scheme(), HOUR);
    let mut t = START;
    for i in 1..=4 {
        h.add(f64::from(i), f64::from(i), t);
        t += HOUR;
    }
    // [1..2] 1·2^-3: ~0–2 %; [2..3] 2·2^-2: ~3–10 %; [3..4] 3·2^-1: ~11–34 %; [4..5] 4: rest.
    for (p, v) in [
        (0.00, 2.0),
        (0.02, 2.0),
        (0.03, 3.0),
        (0.10, 3.0),
        (0.11, 4.0),
        (0.34, 4.0),
        (0.35, 5.0),
        (1.00, 5.0),
    ] {
        in_epsilon(v, h.percentile(p));
    }
}

#[test]
fn no_decay() {
    let mut h = DecayingHistogram::new(test_scheme(), HOUR);
    for i in 1..=4 {
        h.add(f64::from(i), f64::from(i), START);
    }
    for (p, v) in [
        (0.0, 2.0),
        (0.2, 3.0),
        (0.1, 2.0),
        (0.3, 3.0),
        (0.4, 4.0),
        (0.5, 4.0),
        (0.6, 4.0),
        (0.7, 5.0),
        (0.8, 5.0),
        (0.9, 5.0),
        (1.0, 5.0),
    ] {
        in_epsilon(v, h.percentile(p));
    }
}

#[test]
fn decaying_histogram_merge() {
    let mut h1 = DecayingHistogram::new(test_scheme(), HOUR);
    h1.add(1.0, 1.0, START);
    h1.add(2.0, 1.0, START + HOUR);
    let mut h2 = DecayingHistogram::new(test_scheme(), HOUR);
    h2.add(2.0, 1.0, START + HOUR * 2);
    h2.add(3.0, 1.0, START + HOUR);
    let mut expected = DecayingHistogram::new(test_scheme(), HOUR);
    expected.add(2.0, 1.0, START + HOUR * 2);
    expected.add(2.0, 1.0, START + HOUR);
    expected.add(3.0, 1.0, START + HOUR);
    expected.add(1.0, 1.0, START);
    h1.merge(&h2);
    assert!(h1.equals(&expected));
}

#[test]
fn linear_histogram_options() {
    let o = BucketScheme::linear(5.0, 0.3, 0.001).expect("valid");
    assert_eq!(o.epsilon(), 0.001);
    assert_eq!(o.num_buckets(), 18);
    assert_eq!(o.bucket_start(0), 0.0);
    assert_eq!(o.bucket_start(17), 5.1);
    assert_eq!(o.find_bucket(-1.0), 0);
    assert_eq!(o.find_bucket(0.0), 0);
    assert_eq!(o.find_bucket(1.3), 4);
    assert_eq!(o.find_bucket(100.0), 17);
}

#[test]
fn exponential_histogram_options() {
    let o = BucketScheme::exponential(500.0, 40.0, 1.5, 0.001).expect("valid");
    assert_eq!(o.epsilon(), 0.001);
    assert_eq!(o.num_buckets(), 6);
    for (b, start) in [
        (0, 0.0),
        (1, 40.0),
        (2, 100.0),
        (3, 190.0),
        (4, 325.0),
        (5, 527.5),
    ] {
        assert_eq!(o.bucket_start(b), start);
    }
    assert_eq!(o.find_bucket(-1.0), 0);
    assert_eq!(o.find_bucket(39.99), 0);
    assert_eq!(o.find_bucket(40.0), 1);
    assert_eq!(o.find_bucket(100.0), 2);
    assert_eq!(o.find_bucket(900.0), 5);
}

/// An aggregate whose histograms are plain (`AggregateContainerState` built by hand upstream).
fn aggregate_of(cpu: &[f64], memory: &[f64]) -> AggregateState {
    let mut s = AggregateState::new(&VpaConfig::default());
    for &c in cpu {
        s.cpu.add(c, 1.0, Duration::ZERO);
    }
    for &m in memory {
        s.memory_peaks.add(m, 1.0, Duration::ZERO);
    }
    s
}

#[test]
fn percentile_estimator() {
    // CPU at p20 and memory at p50 of {1, 2, 3} cores and {1, 2, 3} GB, 5 % rounding.
    let s = aggregate_of(&[1.0, 2.0, 3.0], &[1e9, 2e9, 3e9]);
    let cpu = amount(s.cpu.percentile(0.2) * 1000.0) as f64 / 1000.0;
    let mem = amount(s.memory_peaks.percentile(0.5)) as f64;
    assert!((cpu - 1.0).abs() / 1.0 <= 0.05, "{cpu}");
    assert!((mem - 2e9).abs() / 2e9 <= 0.05, "{mem}");
}

/// `WithCPUConfidenceMultiplier(multiplier, exponent, const base)` on `s`.
fn confidence_scaled(base: i64, multiplier: f64, exponent: f64, conf: f64) -> i64 {
    scale(base, (1.0 + multiplier / conf).powf(exponent))
}

/// Nine CPU samples of one core, two minutes apart (`TestConfidenceMultiplier`).
fn nine_samples() -> AggregateState {
    let mut s = AggregateState::new(&VpaConfig::default());
    let mut t = Duration::ZERO;
    for _ in 0..9 {
        s.add_cpu(1.0, t);
        t += Duration::from_secs(120);
    }
    s
}

#[test]
fn confidence_multiplier() {
    let cpu = Resources::new(3.14, 3.14e9);
    let empty = AggregateState::new(&VpaConfig::default());
    let c0 = empty.confidence(DAY);
    // No history: the maximum amount with a positive exponent, zero with a negative one.
    assert_eq!(
        confidence_scaled(cpu.cpu_millicores, 1.0, 1.0, c0),
        100_000_000_000_000
    );
    assert_eq!(confidence_scaled(cpu.cpu_millicores, 1.0, -1.0, c0), 0);
    let s = nine_samples();
    // Expected confidence = 9 / (60 · 24) = 0.00625.
    assert_eq!(s.confidence(DAY), 0.00625);
    // 3.14 · (1 + 0.1 / 0.00625)² = 907.46 cores; 3.14e9 · 289 = 9.0746e11 bytes.
    let conf = s.confidence(DAY);
    assert_eq!(
        confidence_scaled(cpu.cpu_millicores, 0.1, 2.0, conf) as f64 / 1000.0,
        907.46
    );
    assert_eq!(
        confidence_scaled(cpu.memory_bytes, 0.1, 2.0, conf) as f64,
        9.0746e+11
    );
}

#[test]
fn confidence_multiplier_with_custom_interval() {
    let interval = Duration::from_secs(18 * 60);
    let s = nine_samples();
    // Expected confidence = 9 / 18 = 0.5.
    assert_eq!(s.confidence(interval), 0.5);
    let r = Resources::new(3.14, 3.14e9);
    // 3.14 · (1 + 0.1 / 0.5)² = 4.5216, truncated to millicores; 4.5216e9 bytes.
    assert_eq!(
        confidence_scaled(r.cpu_millicores, 0.1, 2.0, 0.5) as f64 / 1000.0,
        4.521
    );
    assert_eq!(
        confidence_scaled(r.memory_bytes, 0.1, 2.0, 0.5) as f64,
        4.5216e9
    );
}

#[test]
fn confidence_multiplier_no_history() {
    let c0 = AggregateState::new(&VpaConfig::default()).confidence(DAY);
    let base = Resources::new(3.14, 3.14e9);
    assert_eq!(
        confidence_scaled(base.cpu_millicores, 0.1, 2.0, c0),
        MAX_RESOURCE_AMOUNT
    );
}

#[test]
fn margin_estimator() {
    let base = Resources::new(3.14, 3.14e9);
    let margin = |a: i64| a + scale(a, 0.1);
    // Upstream's `3.14*1.1` is a Go constant, exact before rounding: 3.454.
    assert_eq!(margin(base.cpu_millicores) as f64 / 1000.0, 3.454);
    assert_eq!(margin(base.memory_bytes) as f64, 3.454e9);
}

#[test]
fn min_resources_estimator() {
    assert_eq!(
        Resources::new(3.14, 0.0)
            .cpu_millicores
            .max(Resources::new(0.2, 0.0).cpu_millicores),
        3140
    );
    assert_eq!(
        Resources::new(0.0, 4e8)
            .memory_bytes
            .max(Resources::new(0.0, 2e7).memory_bytes),
        400_000_000
    );
}

#[test]
fn min_resources_applied() {
    // Tiny usage (1 millicore, 1 MB): the pod minimum of 25 millicores and 250 MiB.
    let config = VpaConfig::default();
    let s = aggregate_of(&[0.001], &[1e6]);
    let r = recommend(&config, &s, 1);
    assert_eq!(r.target.cpu_millicores, 25);
    assert_eq!(r.target.memory_bytes, 250 * 1024 * 1024);
}

#[test]
fn min_resources_split_across_containers() {
    let config = VpaConfig::default();
    let s = aggregate_of(&[0.001], &[1e6]);
    let r = recommend(&config, &s, 2);
    assert_eq!(r.target.cpu_millicores, scale(25, 0.5));
    assert_eq!(r.target.memory_bytes, 250 * 1024 * 1024 / 2);
}

const MB: i64 = 1024 * 1024;

/// The calls a container makes on its aggregate (upstream's mock histograms).
#[derive(Debug, Default, PartialEq)]
struct Calls(Vec<(&'static str, f64, Duration)>);

impl SampleSink for Calls {
    fn add_cpu(&mut self, cores: f64, at: Duration) {
        self.0.push(("cpu add", cores, at));
    }
    fn add_memory_peak(&mut self, bytes: f64, window_end: Duration) {
        self.0.push(("mem add", bytes, window_end));
    }
    fn subtract_memory_peak(&mut self, bytes: f64, window_end: Duration) {
        self.0.push(("mem subtract", bytes, window_end));
    }
}

/// `testTimestamp`: 2017-04-18 17:35:05 UTC, as seconds since the epoch.
const T: Duration = Duration::from_secs(1_492_536_905);

fn test_container() -> ContainerState {
    ContainerState::new(Resources::new(2.3, 5e8))
}

#[test]
fn aggregate_container_usage_samples() {
    let mut c = test_container();
    let mut calls = Calls::default();
    let interval = DAY;
    let step = interval / 2;
    assert!(c.add_cpu_sample(T, 3140, &mut calls));
    assert!(c.add_memory_sample(T, 5, interval, &mut calls));
    assert!(c.add_cpu_sample(T + step, 6280, &mut calls));
    assert!(c.add_memory_sample(T + step, 10, interval, &mut calls));
    assert!(c.add_cpu_sample(T + 2 * step, 1570, &mut calls));
    assert!(c.add_memory_sample(T + 2 * step, 2, interval, &mut calls));
    // Discarded: out of order, negative CPU, negative memory.
    assert!(!c.add_cpu_sample(T + 2 * step, 1000, &mut calls));
    assert!(!c.add_cpu_sample(T + 4 * step, -1000, &mut calls));
    assert!(!c.add_memory_sample(T + 4 * step, -1000, interval, &mut calls));
    let end = T + interval;
    assert_eq!(
        calls.0,
        [
            ("cpu add", 3.14, T),
            ("mem add", 5.0, end),
            ("cpu add", 6.28, T + step),
            ("mem subtract", 5.0, end),
            ("mem add", 10.0, end),
            ("cpu add", 1.57, T + 2 * step),
            ("mem add", 2.0, end + interval),
        ]
    );
}

#[test]
fn record_oom_increased_by_bump_up() {
    let mut calls = Calls::default();
    let config = VpaConfig::default();
    test_container()
        .record_oom(T, 1000 * MB, &config, &mut calls)
        .expect("recorded");
    assert_eq!(calls.0, [("mem add", 1200.0 * MB as f64, T + DAY)]);
}

#[test]
fn record_oom_dont_run_away() {
    let mut c = test_container();
    let mut calls = Calls::default();
    let config = VpaConfig::default();
    c.record_oom(T, 1000 * MB, &config, &mut calls)
        .expect("recorded");
    // Smaller OOMs do not change the peak; a larger one does.
    c.record_oom(T, 999 * MB, &config, &mut calls)
        .expect("recorded");
    c.record_oom(T, 999 * MB, &config, &mut calls)
        .expect("recorded");
    c.record_oom(T, 2000 * MB, &config, &mut calls)
        .expect("recorded");
    let end = T + DAY;
    assert_eq!(
        calls.0,
        [
            ("mem add", 1200.0 * MB as f64, end),
            ("mem subtract", 1200.0 * MB as f64, end),
            ("mem add", 2400.0 * MB as f64, end),
        ]
    );
}

#[test]
fn record_oom_increased_by_min() {
    let mut calls = Calls::default();
    test_container()
        .record_oom(T, MB, &VpaConfig::default(), &mut calls)
        .expect("recorded");
    assert_eq!(calls.0, [("mem add", 101.0 * MB as f64, T + DAY)]);
}

#[test]
fn record_oom_maxed_with_known_sample() {
    let mut c = test_container();
    let mut calls = Calls::default();
    let config = VpaConfig::default();
    assert!(c.add_memory_sample(T, 3000 * MB, DAY, &mut calls));
    // The last known sample is above the request, so it is taken.
    c.record_oom(T, 1000 * MB, &config, &mut calls)
        .expect("recorded");
    let end = T + DAY;
    assert_eq!(
        calls.0,
        [
            ("mem add", 3000.0 * MB as f64, end),
            ("mem subtract", 3000.0 * MB as f64, end),
            ("mem add", 3600.0 * MB as f64, end),
        ]
    );
}

#[test]
fn record_oom_discards_old_sample() {
    let mut c = test_container();
    let mut calls = Calls::default();
    assert!(c.add_memory_sample(T, 1000 * MB, DAY, &mut calls));
    let stale = c.record_oom(
        T - Duration::from_secs(30 * 3600),
        1000 * MB,
        &VpaConfig::default(),
        &mut calls,
    );
    assert!(stale.is_err());
    assert_eq!(calls.0, [("mem add", 1000.0 * MB as f64, T + DAY)]);
}

#[test]
fn record_oom_in_new_window() {
    let mut c = test_container();
    let mut calls = Calls::default();
    assert!(c.add_memory_sample(T, 2000 * MB, DAY, &mut calls));
    c.record_oom(T + 2 * DAY, 1000 * MB, &VpaConfig::default(), &mut calls)
        .expect("recorded");
    assert_eq!(
        calls.0,
        [
            ("mem add", 2000.0 * MB as f64, T + DAY),
            ("mem add", 2400.0 * MB as f64, T + 3 * DAY),
        ]
    );
}

#[test]
fn record_oom_fresh_oom_near_window_boundary_is_not_discarded() {
    // kubernetes/autoscaler#8548.
    let mut c = test_container();
    let mut calls = Calls::default();
    assert!(c.add_memory_sample(T, 100 * MB, DAY, &mut calls));
    let boundary = T + DAY;
    assert!(c.add_memory_sample(boundary, 2000 * MB, DAY, &mut calls));
    c.record_oom(
        boundary - Duration::from_secs(1),
        1000 * MB,
        &VpaConfig::default(),
        &mut calls,
    )
    .expect("a fresh OOM is recorded");
    let end = T + 2 * DAY;
    assert_eq!(
        calls.0,
        [
            ("mem add", 100.0 * MB as f64, T + DAY),
            ("mem add", 2000.0 * MB as f64, end),
            ("mem subtract", 2000.0 * MB as f64, end),
            ("mem add", 2400.0 * MB as f64, end),
        ]
    );
}

#[test]
fn a_steady_day_recommends_its_p90_plus_margin() {
    // Not upstream: one core busy 0.5 of the time, 2 GiB, sampled every minute for a day.
    let config = VpaConfig::default();
    let mut s = AggregateState::new(&config);
    let mut c = ContainerState::new(Resources::new(2.0, 8.0 * 1024.0 * 1024.0 * 1024.0));
    for minute in 0..1440u64 {
        let at = Duration::from_secs(minute * 60);
        let cpu = if minute % 2 == 0 { 1000 } else { 0 };
        assert!(c.add_cpu_sample(at, cpu, &mut s));
        assert!(c.add_memory_sample(at, 2 << 30, config.memory_aggregation_interval, &mut s));
    }
    let r = recommend(&config, &s, 1);
    // p90 of the CPU samples is the end of the 1-core bucket, plus 15 %.
    let bucket_end = cpu_buckets().bucket_start(cpu_buckets().find_bucket(1.0) + 1);
    assert_eq!(r.target.cpu_millicores, {
        let base = amount(bucket_end * 1000.0);
        base + scale(base, 0.15)
    });
    let mem_end =
        memory_buckets().bucket_start(memory_buckets().find_bucket(2.0 * (1u64 << 30) as f64) + 1);
    let base = amount(mem_end);
    assert_eq!(r.target.memory_bytes, base + scale(base, 0.15));
    assert!(r.lower_bound.cpu_millicores <= r.target.cpu_millicores);
    assert!(r.upper_bound.memory_bytes >= r.target.memory_bytes);
}
