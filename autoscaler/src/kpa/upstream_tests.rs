//! knative/serving's `pkg/autoscaler/scaling/autoscaler_test.go` (commit 98e5ef90), translated
//! case by case with its expected numbers: the decider with a fake metric client (the stable and
//! panic values are given) and a fake ready-pod counter. `expectScale` compares the excess burst
//! capacity within ±1, as upstream's `approxEquateInt32` does.
//!
//! Left out: `TestAutoscalerStartMetrics`, `TestAutoscalerMetrics` and
//! `TestAutoscalerMetricsWithRPS` (they check the OpenTelemetry gauges the decider exports, which
//! the simulator does not); `TestAutoscalerNoDataNoAutoscale`, `TestCantCountPods` and
//! `TestNewFail` (a failing metric client or pod lister: our caller holds on missing data before
//! asking the decider, tested in `decision.rs`); `BenchmarkAutoscaler`.

use std::time::Duration;

use super::decider::{Decider, DeciderSpec, ScaleResult};

const STABLE_WINDOW: Duration = Duration::from_secs(60);
const TARGET_UTILIZATION: f64 = 0.75;

/// An arbitrary "now" (upstream uses `time.Now()`), a whole even number of seconds.
const NOW: Duration = Duration::from_secs(1_700_000_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn expected_ebc(tot_cap: f64, target_bc: f64, recorded: f64, pods: f64) -> i32 {
    (tot_cap / TARGET_UTILIZATION * pods - target_bc - recorded).floor() as i32
}

/// `newTestAutoscalerWithScalingMetric`: panic threshold 2, rates 10, one ready pod (two when
/// starting in panic), created at `NOW`.
fn test_decider(target: f64, tbc: f64) -> Decider {
    Decider::new(
        DeciderSpec {
            target_value: target,
            total_value: target / TARGET_UTILIZATION,
            target_burst_capacity: tbc,
            panic_threshold: 2.0,
            max_scale_up_rate: 10.0,
            max_scale_down_rate: 10.0,
            stable_window: STABLE_WINDOW,
            scale_down_delay: Duration::ZERO,
            activation_scale: 1,
            reachable: true,
        },
        1,
        NOW,
    )
}

/// `expectScale`: desired exactly, excess burst capacity within ±1.
#[track_caller]
fn expect(got: ScaleResult, desired: u32, ebc: i32) {
    assert_eq!(got.desired, desired, "{got:?}");
    assert!(
        (got.excess_burst_capacity - ebc).abs() <= 1,
        "EBC {} want {ebc}",
        got.excess_burst_capacity
    );
}

fn delay_spec(reachable: bool) -> DeciderSpec {
    DeciderSpec {
        target_value: 10.0,
        total_value: 0.0,
        target_burst_capacity: 0.0,
        panic_threshold: 100.0,
        max_scale_up_rate: 10.0,
        max_scale_down_rate: 10.0,
        stable_window: Duration::ZERO,
        scale_down_delay: Duration::from_secs(300),
        activation_scale: 0,
        reachable,
    }
}

#[test]
fn autoscaler_scale_down_delay() {
    // `time.Time{}` and a ready count of 0 (the fake counter's zero value).
    let mut a = Decider::new(delay_spec(true), 0, Duration::ZERO);
    let d = |a: &mut Decider, t: u64, c: f64| a.scale(secs(t), 0, c, c).desired;
    // simple: scale up, hold for five minutes at no load, drop after five minutes and 2 s.
    assert_eq!(d(&mut a, 2, 40.0), 4);
    assert_eq!(d(&mut a, 300, 0.0), 4);
    assert_eq!(d(&mut a, 302, 0.0), 0);
    // gradual
    assert_eq!(d(&mut a, 540, 40.0), 4);
    assert_eq!(d(&mut a, 600, 30.0), 4, "4 still dominates");
    assert_eq!(d(&mut a, 660, 0.0), 4, "still at 4");
    assert_eq!(d(&mut a, 840, 0.0), 3, "4 scrolls out, drop to 3");
    assert_eq!(d(&mut a, 900, 0.0), 0, "everything scrolled out, drop to 0");
}

#[test]
fn autoscaler_scale_down_delay_not_reachable() {
    let mut a = Decider::new(delay_spec(true), 0, Duration::ZERO);
    assert_eq!(a.scale(secs(2), 0, 40.0, 40.0).desired, 4);
    assert_eq!(a.scale(secs(60), 0, 0.0, 0.0).desired, 4);
    // Another revision comes up: unreachable, the delay no longer applies.
    a.spec = delay_spec(false);
    assert_eq!(a.scale(secs(2), 0, 0.0, 0.0).desired, 0);
}

#[test]
fn autoscaler_scale_down_delay_zero() {
    let mut spec = delay_spec(false);
    spec.scale_down_delay = Duration::ZERO;
    let mut a = Decider::new(spec, 0, Duration::ZERO);
    assert_eq!(a.scale(Duration::ZERO, 0, 40.0, 40.0).desired, 4);
    // With zero delay it scales down at once.
    assert_eq!(
        a.scale(Duration::from_millis(500), 0, 20.0, 20.0).desired,
        2
    );
}

#[test]
fn autoscaler_stable_mode_increase_with_concurrency_default() {
    let mut a = test_decider(10.0, 101.0);
    expect(
        a.scale(NOW, 1, 50.0, 10.0),
        5,
        expected_ebc(10.0, 101.0, 10.0, 1.0),
    );
    expect(
        a.scale(NOW, 1, 100.0, 10.0),
        10,
        expected_ebc(10.0, 101.0, 10.0, 1.0),
    );
}

#[test]
fn autoscaler_stable_mode_increase_with_rps() {
    let mut a = test_decider(10.0, 101.0);
    expect(
        a.scale(NOW, 1, 50.0, 50.0),
        5,
        expected_ebc(10.0, 101.0, 50.0, 1.0),
    );
    expect(
        a.scale(NOW, 1, 100.0, 99.0),
        10,
        expected_ebc(10.0, 101.0, 99.0, 1.0),
    );
}

#[test]
fn autoscaler_unpanic_after_slow_increase() {
    // Initial jump from 10 to 25 pods.
    let mut a = test_decider(1.0, 98.0);
    let start = NOW;
    expect(
        a.scale(start, 10, 11.0, 25.0),
        25,
        expected_ebc(1.0, 98.0, 25.0, 10.0),
    );
    assert_eq!(a.panic_time, Some(start));
    // Half the stable window later, +15 pods.
    let tm = start + STABLE_WINDOW / 2;
    expect(
        a.scale(tm, 40, 30.0, 41.0),
        41,
        expected_ebc(1.0, 98.0, 41.0, 40.0),
    );
    assert_eq!(
        a.panic_time,
        Some(start),
        "panic time should not have moved"
    );
    // At the end panic ends, +30 pods.
    let tm = tm + STABLE_WINDOW / 2 + secs(2);
    expect(
        a.scale(tm, 55, 50.0, 56.0),
        50,
        expected_ebc(1.0, 98.0, 56.0, 55.0),
    );
    assert_eq!(a.panic_time, None);
}

#[test]
fn autoscaler_extend_panic_window() {
    let mut a = test_decider(1.0, 98.0);
    expect(
        a.scale(NOW, 10, 11.0, 25.0),
        25,
        expected_ebc(1.0, 98.0, 25.0, 10.0),
    );
    assert_eq!(a.panic_time, Some(NOW));
    // Still surging half a stable window later: panic extends.
    let tm = NOW + STABLE_WINDOW / 2;
    expect(
        a.scale(tm, 40, 30.0, 80.0),
        80,
        expected_ebc(1.0, 98.0, 80.0, 40.0),
    );
    assert_eq!(a.panic_time, Some(tm));
}

#[test]
fn autoscaler_stable_mode_decrease() {
    let mut a = test_decider(10.0, 98.0);
    expect(
        a.scale(NOW, 8, 100.0, 100.0),
        10,
        expected_ebc(10.0, 98.0, 100.0, 8.0),
    );
    expect(
        a.scale(NOW, 8, 50.0, 50.0),
        5,
        expected_ebc(10.0, 98.0, 50.0, 8.0),
    );
}

#[test]
fn autoscaler_stable_mode_no_traffic_scale_to_zero() {
    let mut a = test_decider(10.0, 75.0);
    expect(
        a.scale(NOW, 1, 1.0, 0.0),
        1,
        expected_ebc(10.0, 75.0, 0.0, 1.0),
    );
    expect(
        a.scale(NOW, 1, 0.0, 0.0),
        0,
        expected_ebc(10.0, 75.0, 0.0, 1.0),
    );
}

#[test]
fn autoscaler_activation_scale() {
    let mut a = test_decider(10.0, 75.0);
    a.spec.activation_scale = 2;
    expect(
        a.scale(NOW, 1, 0.0, 0.0),
        0,
        expected_ebc(10.0, 75.0, 0.0, 1.0),
    );
    expect(
        a.scale(NOW, 1, 1.0, 0.0),
        2,
        expected_ebc(10.0, 75.0, 0.0, 1.0),
    );
}

#[test]
fn autoscaler_panic_mode_exponential_track_and_stabilize() {
    let mut a = test_decider(1.0, 101.0);
    expect(
        a.scale(NOW, 1, 6.0, 6.0),
        6,
        expected_ebc(1.0, 101.0, 6.0, 1.0),
    );
    let tm = NOW;
    expect(
        a.scale(tm, 6, 36.0, 36.0),
        36,
        expected_ebc(1.0, 101.0, 36.0, 6.0),
    );
    assert_eq!(a.panic_time, Some(tm));
    let tm = tm + secs(1);
    expect(
        a.scale(tm, 36, 216.0, 216.0),
        216,
        expected_ebc(1.0, 101.0, 216.0, 36.0),
    );
    assert_eq!(a.panic_time, Some(tm));
    expect(
        a.scale(tm, 216, 1296.0, 1296.0),
        1296,
        expected_ebc(1.0, 101.0, 1296.0, 216.0),
    );
    assert_eq!(a.panic_time, Some(tm));
    let tm = tm + secs(1);
    expect(
        a.scale(tm, 1296, 1296.0, 1296.0),
        1296,
        expected_ebc(1.0, 101.0, 1296.0, 1296.0),
    );
}

/// `TestAutoscalerScale`'s table: (label, target, TBC, stable, panic, ready, prep, want, EBC).
#[test]
fn autoscaler_scale() {
    type Prep = fn(&mut Decider);
    /// (label, target, TBC, stable, panic, ready pods, preparation, desired, EBC).
    type Case = (
        &'static str,
        f64,
        f64,
        f64,
        f64,
        u32,
        Option<Prep>,
        u32,
        i32,
    );
    let panicking: Prep = |a| {
        a.panic_time = Some(NOW - secs(5));
        a.max_panic_pods = 5;
    };
    let small_up: Prep = |a| a.spec.max_scale_up_rate = 1.1;
    let small_down: Prep = |a| a.spec.max_scale_down_rate = 1.1;
    let small_down_unreachable: Prep = |a| {
        a.spec.max_scale_down_rate = 1.1;
        a.spec.reachable = false;
    };
    let cases: [Case; 12] = [
        (
            "AutoscalerNoDataAtZeroNoAutoscale",
            10.0,
            100.0,
            0.0,
            0.0,
            1,
            None,
            0,
            expected_ebc(10.0, 100.0, 0.0, 1.0),
        ),
        (
            "AutoscalerNoDataAtZeroNoAutoscaleWithExplicitEPs",
            10.0,
            100.0,
            0.0,
            0.0,
            1,
            None,
            0,
            expected_ebc(10.0, 100.0, 0.0, 1.0),
        ),
        (
            "AutoscalerStableModeUnlimitedTBC",
            181.0,
            -1.0,
            21.0,
            26.0,
            1,
            None,
            1,
            -1,
        ),
        ("Autoscaler0TBC", 10.0, 0.0, 50.0, 49.0, 1, None, 5, 0),
        (
            "AutoscalerStableModeNoChange",
            10.0,
            100.0,
            50.0,
            50.0,
            1,
            None,
            5,
            expected_ebc(10.0, 100.0, 50.0, 1.0),
        ),
        (
            "AutoscalerPanicStableLargerThanPanic",
            1.0,
            100.0,
            50.0,
            30.0,
            5,
            Some(panicking),
            50,
            expected_ebc(1.0, 100.0, 30.0, 5.0),
        ),
        (
            "AutoscalerPanicStableLessThanPanic",
            1.0,
            100.0,
            20.0,
            30.0,
            5,
            Some(panicking),
            30,
            expected_ebc(1.0, 100.0, 30.0, 5.0),
        ),
        (
            "AutoscalerStableModeNoChangeAlreadyScaled",
            10.0,
            100.0,
            50.0,
            50.0,
            5,
            None,
            5,
            expected_ebc(10.0, 100.0, 50.0, 5.0),
        ),
        (
            "AutoscalerStableModeIncreaseWithSmallScaleUpRate",
            1.0,
            1982.0,
            3.0,
            3.1,
            2,
            Some(small_up),
            3,
            expected_ebc(1.0, 1982.0, 3.1, 2.0),
        ),
        (
            "AutoscalerStableModeDecreaseWithSmallScaleDownRate",
            10.0,
            1982.0,
            1.0,
            1.0,
            100,
            Some(small_down),
            90,
            expected_ebc(10.0, 1982.0, 1.0, 100.0),
        ),
        (
            "AutoscalerStableModeDecreaseNonReachable",
            10.0,
            1982.0,
            1.0,
            1.0,
            100,
            Some(small_down_unreachable),
            1,
            expected_ebc(10.0, 1982.0, 1.0, 100.0),
        ),
        (
            "AutoscalerPanicModeDoublePodCount",
            10.0,
            84.0,
            50.0,
            100.0,
            1,
            None,
            10,
            expected_ebc(10.0, 84.0, 100.0, 1.0),
        ),
    ];
    for (label, target, tbc, stable, panic, ready, prep, want, ebc) in cases {
        let mut a = test_decider(target, tbc);
        if let Some(prep) = prep {
            prep(&mut a);
        }
        let got = a.scale(NOW, ready, stable, panic);
        assert_eq!(got.desired, want, "{label}: {got:?}");
        assert!(
            (got.excess_burst_capacity - ebc).abs() <= 1,
            "{label}: {got:?} want EBC {ebc}"
        );
    }
}

#[test]
fn autoscaler_panic_then_un_panic_scale_down() {
    let mut a = test_decider(10.0, 93.0);
    expect(
        a.scale(NOW, 1, 100.0, 100.0),
        10,
        expected_ebc(10.0, 93.0, 100.0, 1.0),
    );
    let panic_time = NOW + secs(2);
    expect(
        a.scale(panic_time, 10, 100.0, 1000.0),
        100,
        expected_ebc(10.0, 93.0, 1000.0, 10.0),
    );
    // Traffic dropped off; the scale stays while panicking.
    expect(
        a.scale(panic_time + secs(30), 10, 1.0, 1.0),
        100,
        expected_ebc(10.0, 93.0, 1.0, 10.0),
    );
    // Down after the stable window.
    expect(
        a.scale(panic_time + secs(61), 10, 1.0, 1.0),
        1,
        expected_ebc(10.0, 93.0, 1.0, 10.0),
    );
}

#[test]
fn autoscaler_rate_limit_scale_up() {
    let mut a = test_decider(10.0, 61.0);
    // Needs 100 pods but scales ×10 at most.
    expect(
        a.scale(NOW, 1, 1000.0, 1001.0),
        10,
        expected_ebc(10.0, 61.0, 1001.0, 1.0),
    );
    expect(
        a.scale(NOW, 10, 1000.0, 1001.0),
        100,
        expected_ebc(10.0, 61.0, 1001.0, 10.0),
    );
}

#[test]
fn autoscaler_rate_limit_scale_down() {
    let mut a = test_decider(10.0, 61.0);
    // Needs 1 pod but divides by 10 at most.
    expect(
        a.scale(NOW, 100, 1.0, 1.0),
        10,
        expected_ebc(10.0, 61.0, 1.0, 100.0),
    );
    expect(
        a.scale(NOW, 10, 1.0, 1.0),
        1,
        expected_ebc(10.0, 61.0, 1.0, 10.0),
    );
}

#[test]
fn autoscaler_use_one_pod_as_minimum_if_endpoints_not_found() {
    let mut a = test_decider(10.0, 81.0);
    // No ready pods: rate-limited from one pod, ×10.
    expect(
        a.scale(NOW, 0, 1000.0, 888.0),
        10,
        expected_ebc(10.0, 81.0, 888.0, 0.0),
    );
}

#[test]
fn autoscaler_update_target() {
    let mut a = test_decider(10.0, 77.0);
    expect(
        a.scale(NOW, 1, 100.0, 101.0),
        10,
        expected_ebc(10.0, 77.0, 101.0, 1.0),
    );
    a.spec = DeciderSpec {
        target_value: 1.0,
        total_value: 1.0 / TARGET_UTILIZATION,
        target_burst_capacity: 71.0,
        panic_threshold: 2.0,
        max_scale_down_rate: 10.0,
        max_scale_up_rate: 10.0,
        stable_window: STABLE_WINDOW,
        scale_down_delay: Duration::ZERO,
        activation_scale: 0,
        reachable: false,
    };
    expect(
        a.scale(NOW, 10, 100.0, 101.0),
        100,
        expected_ebc(1.0, 71.0, 101.0, 10.0),
    );
}

#[test]
fn start_in_panic_mode() {
    let spec = || DeciderSpec {
        target_value: 100.0,
        total_value: 120.0,
        target_burst_capacity: 11.0,
        panic_threshold: 220.0,
        max_scale_up_rate: 10.0,
        max_scale_down_rate: 10.0,
        stable_window: STABLE_WINDOW,
        scale_down_delay: Duration::ZERO,
        activation_scale: 0,
        reachable: false,
    };
    for ready in 0..2 {
        let a = Decider::new(spec(), ready, NOW);
        assert_eq!(
            a.panic_time, None,
            "created at scale {ready} had panic mode on"
        );
        assert_eq!(a.max_panic_pods, ready);
    }
    let a = Decider::new(spec(), 2, NOW);
    assert!(
        a.panic_time.is_some(),
        "created at scale 2 had panic mode off"
    );
    assert_eq!(a.max_panic_pods, 2);
}
