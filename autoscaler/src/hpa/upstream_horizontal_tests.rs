//! The behavior, stabilization and rate-limit tests of `horizontal_test.go` at
//! kubernetes/kubernetes@003e86297d18, translated case by case with upstream's names and
//! numbers (see `upstream_tests.rs` for the harness conventions).

use std::collections::VecDeque;
use std::time::Duration;

use super::behavior::{self, Limit, PeriodStart, ScaleEvent, TimedRecommendation};
use super::*;
use crate::PodObservation;

const COOL: Duration = Duration::from_secs(600);

const NOW: Duration = Duration::from_secs(100_000);

fn ago(s: u64) -> Duration {
    NOW - Duration::from_secs(s)
}

/// `generateScalingRules(pods, podsPeriod, percent, percentPeriod, stabilizationWindow)`.
fn rules(
    pods: u32,
    pods_period: u64,
    percent: u32,
    percent_period: u64,
    window: u64,
) -> ScalingRules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(RatePolicy::Pods {
            value: pods,
            period: Duration::from_secs(pods_period),
        });
    }
    if percent != 0 {
        policies.push(RatePolicy::Percent {
            value: percent,
            period: Duration::from_secs(percent_period),
        });
    }
    ScalingRules {
        stabilization_window: Duration::from_secs(window),
        select_policy: SelectPolicy::Max,
        policies,
        tolerance: None,
    }
}

/// `generateEventsUniformDistribution(rawEvents, periodSeconds)`: each event in the middle of
/// its segment of the last `period` seconds (whole seconds, as `time.Duration(float)` cuts).
fn uniform(raw: &[u32], period: u64) -> VecDeque<ScaleEvent> {
    let segment = period as f64 / raw.len() as f64;
    raw.iter()
        .enumerate()
        .map(|(i, &change)| {
            let boundary = (period as f64 - segment * (i + 1) as f64 + segment / 2.0) as u64;
            ScaleEvent {
                at: ago(boundary),
                change,
            }
        })
        .collect()
}

#[test]
fn normalize_desired_replicas() {
    // TestNormalizeDesiredReplicas (5-minute downscale stabilization)
    type Case = (&'static str, &'static [(u32, u64)], u32, u32);
    let cases: [Case; 5] = [
        ("empty log", &[], 5, 5),
        ("stabilize", &[(4, 120), (5, 60)], 3, 5),
        ("no stabilize", &[(1, 120), (2, 60)], 3, 3),
        (
            "no stabilize - old recommendations",
            &[(10, 600), (9, 540)],
            3,
            3,
        ),
        (
            "stabilize - old recommendations",
            &[(10, 600), (4, 60), (5, 120), (9, 540)],
            3,
            5,
        ),
    ];
    for (name, log, desired, expected) in cases {
        let mut log: VecDeque<TimedRecommendation> = log
            .iter()
            .map(|&(replicas, s)| TimedRecommendation {
                at: ago(s),
                replicas,
            })
            .collect();
        let got = behavior::stabilize(&mut log, NOW, desired, Duration::from_secs(300));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn normalize_desired_replicas_with_behavior() {
    // TestNormalizeDesiredReplicasWithBehavior: (name, log, current, desired, expected, up, down)
    type Case = (&'static str, &'static [(u32, u64)], u32, u32, u32, u64, u64);
    let cases: [Case; 11] = [
        (
            "empty recommendations for scaling down",
            &[],
            100,
            5,
            5,
            0,
            0,
        ),
        (
            "simple scale down stabilization",
            &[(4, 120), (5, 60)],
            100,
            3,
            5,
            0,
            180,
        ),
        (
            "simple scale up stabilization",
            &[(4, 120), (5, 60)],
            1,
            7,
            4,
            300,
            0,
        ),
        (
            "no scale down stabilization",
            &[(1, 120), (2, 60)],
            100,
            3,
            3,
            300,
            0,
        ),
        (
            "no scale up stabilization",
            &[(4, 120), (5, 60)],
            1,
            3,
            3,
            0,
            300,
        ),
        (
            "no scale down stabilization, reuse recommendation element",
            &[(10, 600), (9, 540)],
            100,
            3,
            3,
            0,
            0,
        ),
        (
            "no scale up stabilization, reuse recommendation element",
            &[(10, 600), (9, 540)],
            1,
            100,
            100,
            0,
            0,
        ),
        (
            "scale down stabilization, reuse one of obsolete recommendation element",
            &[(10, 600), (4, 60), (5, 120), (9, 540)],
            100,
            3,
            5,
            0,
            180,
        ),
        (
            "scale up stabilization, reuse one of obsolete recommendation element",
            &[(10, 6000), (6, 60), (5, 120), (9, 180)],
            1,
            100,
            5,
            300,
            0,
        ),
        (
            "scale up and down stabilization, do not scale up when prenormalized rec goes down",
            &[(2, 6000), (3, 180)],
            2,
            1,
            2,
            300,
            300,
        ),
        (
            "scale up and down stabilization, do not scale down when prenormalized rec goes up",
            &[(2, 6000), (1, 180)],
            2,
            3,
            2,
            300,
            300,
        ),
    ];
    for (name, log, current, desired, expected, up, down) in cases {
        let mut log: VecDeque<TimedRecommendation> = log
            .iter()
            .map(|&(replicas, s)| TimedRecommendation {
                at: ago(s),
                replicas,
            })
            .collect();
        let got = behavior::stabilize_with_behavior(
            &mut log,
            NOW,
            current,
            desired,
            Duration::from_secs(up),
            Duration::from_secs(down),
        );
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn convert_desired_replicas_with_rules() {
    // TestConvertDesiredReplicasWithRules: (current, desired, min, max, expected, condition)
    let cases = [
        (5, 7, 3, 8, 7, Limit::DesiredWithinRange),
        (3, 1, 2, 8, 2, Limit::TooFewReplicas),
        (1, 0, 0, 10, 0, Limit::DesiredWithinRange),
        (20, 1000, 1, 10, 10, Limit::TooManyReplicas),
        (3, 1000, 1, 2000, 6, Limit::ScaleUpLimit), // calculateScaleUpLimit(3)
    ];
    for (current, desired, min, max, expected, limit) in cases {
        assert_eq!(
            behavior::convert_with_rules(current, desired, min, max),
            (expected, limit),
            "{current} → {desired}"
        );
    }
}

#[test]
fn calculate_scale_limits_with_min_select_policy() {
    let mut r = rules(2, 60, 50, 60, 300);
    r.select_policy = SelectPolicy::Min;
    let none = VecDeque::new();
    // TestCalculateScaleUpLimitWithScalingRules
    assert_eq!(
        behavior::scale_up_limit(1, &none, &none, &r, NOW, PeriodStart::BothDirections),
        2
    );
    // TestCalculateScaleDownLimitWithBehaviors
    assert_eq!(
        behavior::scale_down_limit(5, &none, &none, &r, NOW, PeriodStart::BothDirections),
        3
    );
}

#[test]
fn scaling_with_rules() {
    // TestScalingWithRules: convertDesiredReplicasWithBehaviorRate. `None` rules take the
    // defaults (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules).
    struct Case {
        name: &'static str,
        up_events: VecDeque<ScaleEvent>,
        down_events: VecDeque<ScaleEvent>,
        min: u32,
        max: u32,
        up: Option<ScalingRules>,
        down: Option<ScalingRules>,
        current: u32,
        desired: u32,
        expected: u32,
        limit: Limit,
    }
    let none = VecDeque::new;
    let c = |name, min, max, up, down, current, desired, expected, limit| Case {
        name,
        up_events: none(),
        down_events: none(),
        min,
        max,
        up,
        down,
        current,
        desired,
        expected,
        limit,
    };
    use Limit::*;
    let mut cases = vec![
        c("prenormalized desired replicas within range", 3, 8, None, None, 5, 7, 7, DesiredWithinRange),
        c("prenormalized desired replicas < minReplicas", 2, 8, None, None, 3, 1, 2, TooFewReplicas),
        c("prenormalized desired replicas within range when minReplicas is 0", 0, 10, None, None, 1, 0, 0, DesiredWithinRange),
        c("maxReplicas is the limit because maxReplicas < scaleUpLimit", 1, 10, None, None, 20, 1000, 10, TooManyReplicas),
        c("desired replica count is more than the maximum replica count", 100, 150, None, None, 100, 1000, 150, TooManyReplicas),
        c("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", 1, 2000, Some(rules(0, 0, 1, 60, 0)), None, 3, 1000, 4, ScaleUpLimit),
        // Skipped upstream (testThis), consistent with the rules.
        c("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", 3, 2000, None, Some(rules(20, 60, 0, 0, 0)), 1000, 3, 980, ScaleDownLimit),
        c("scaleUp with default behavior", 1, 1000, None, None, 10, 50, 20, ScaleUpLimit),
        c("scaleUp with pods policy larger than percent policy", 1, 1000, Some(rules(100, 60, 100, 60, 0)), None, 10, 500, 110, ScaleUpLimit),
        c("scaleUp with percent policy larger than pods policy", 1, 1000, Some(rules(2, 60, 100, 60, 0)), None, 10, 500, 20, ScaleUpLimit),
        c("scaleUp with spec MaxReplicas limitation with large pod policy", 1, 1000, Some(rules(100, 60, 0, 0, 0)), None, 10, 50, 50, DesiredWithinRange),
        c("scaleUp with spec MaxReplicas limitation with large percent policy", 1, 1000, Some(rules(10000, 60, 0, 0, 0)), None, 10, 50, 50, DesiredWithinRange),
        c("scaleUp with pod policy limitation", 1, 1000, Some(rules(30, 60, 0, 0, 0)), None, 10, 50, 40, ScaleUpLimit),
        c("scaleUp with percent policy limitation", 1, 1000, Some(rules(0, 0, 200, 60, 0)), None, 10, 50, 30, ScaleUpLimit),
        c("scaleDown with percent policy larger than pod policy", 1, 1000, None, Some(rules(20, 60, 1, 60, 300)), 100, 2, 80, ScaleDownLimit),
        c("scaleDown with pod policy larger than percent policy", 1, 1000, None, Some(rules(2, 60, 1, 60, 300)), 100, 2, 98, ScaleDownLimit),
        c("scaleDown with spec MinReplicas=nil limitation with large pod policy", 1, 1000, None, Some(rules(100, 60, 0, 0, 300)), 10, 0, 1, TooFewReplicas),
        c("scaleDown with spec MinReplicas limitation with large pod policy", 1, 1000, None, Some(rules(100, 60, 0, 0, 300)), 10, 0, 1, TooFewReplicas),
        c("scaleDown with spec MinReplicas limitation with large percent policy", 5, 1000, None, Some(rules(0, 0, 100, 60, 300)), 10, 2, 5, TooFewReplicas),
        c("scaleDown with pod policy limitation", 1, 1000, None, Some(rules(5, 60, 0, 0, 300)), 10, 2, 5, ScaleDownLimit),
        c("scaleDown with percent policy limitation", 1, 1000, None, Some(rules(0, 0, 50, 60, 300)), 10, 5, 5, DesiredWithinRange),
    ];
    let with = |mut case: Case, up: &[u32], down: &[u32], period: u64| {
        if !up.is_empty() {
            case.up_events = uniform(up, period);
        }
        if !down.is_empty() {
            case.down_events = uniform(down, period);
        }
        case
    };
    let more = vec![
        with(c("scaleUp with spec MaxReplicas limitation with large pod policy and events", 1, 200, Some(rules(300, 60, 0, 0, 0)), None, 100, 500, 200, TooManyReplicas), &[1, 5, 9], &[], 120),
        with(c("scaleUp with spec MaxReplicas limitation with large percent policy and events", 1, 200, Some(rules(0, 0, 10000, 60, 0)), None, 100, 500, 200, TooManyReplicas), &[1, 5, 9], &[], 120),
        with(c("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", 1, 1000, Some(rules(5, 120, 0, 0, 0)), None, 100, 500, 100, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with pod policy and previous scale up events", 1, 1000, Some(rules(150, 120, 0, 0, 0)), None, 100, 500, 235, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with percent policy and previous scale up events", 1, 1000, Some(rules(0, 0, 200, 120, 0)), None, 100, 500, 255, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with percent policy and previous scale up and down events", 1, 1000, Some(rules(0, 0, 300, 300, 0)), None, 6, 24, 16, ScaleUpLimit), &[4], &[2], 120),
        with(c("scaleDown with default policy and previous events", 1, 1000, None, None, 10, 5, 5, DesiredWithinRange), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", 1, 1000, None, Some(rules(115, 120, 0, 0, 300)), 100, 0, 1, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas limitation with large pod policy and previous events", 5, 1000, None, Some(rules(130, 120, 0, 0, 300)), 100, 0, 5, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas limitation with large percent policy and previous events", 5, 1000, None, Some(rules(0, 0, 100, 120, 300)), 100, 2, 5, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with pod policy limitation and previous events", 1, 1000, None, Some(rules(5, 120, 0, 0, 300)), 100, 2, 100, ScaleDownLimit), &[], &[1, 5, 9], 120),
        with(c("scaleDown with percent policy limitation and previous events", 1, 1000, None, Some(rules(0, 0, 50, 120, 300)), 100, 0, 56, ScaleDownLimit), &[], &[2, 4, 6], 120),
        with(c("scaleDown with percent policy and previous scale up and down events", 1, 1000, None, Some(rules(0, 0, 50, 180, 0)), 10, 1, 6, ScaleDownLimit), &[2], &[4], 120),
        with(c("scaleDown with previous events preventing further scale down", 1, 1000, None, Some(rules(0, 0, 10, 120, 300)), 100, 0, 100, ScaleDownLimit), &[], &[10, 10, 10], 120),
        with(c("scaleDown with with previous events still allowing more scale down", 1, 1000, None, Some(rules(0, 0, 1000, 120, 300)), 10, 5, 5, DesiredWithinRange), &[], &[10, 10, 10], 120),
        with(c("check 'outdated' flag for events for one behavior for up", 1, 1000, Some(rules(1000, 60, 0, 0, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check that events were not marked 'outdated' for two different policies in the behavior for up", 1, 1000, Some(rules(1000, 120, 100, 60, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check that events were marked 'outdated' for two different policies in the behavior for up", 1, 1000, Some(rules(1000, 30, 100, 60, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check 'outdated' flag for events for one behavior for down", 1, 1000, None, Some(rules(1000, 60, 0, 0, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
        with(c("check that events were not marked 'outdated' for two different policies in the behavior for down", 1, 1000, None, Some(rules(1000, 120, 100, 60, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
        with(c("check that events were marked 'outdated' for two different policies in the behavior for down", 1, 1000, None, Some(rules(1000, 30, 100, 60, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
    ];
    cases.extend(more);
    for case in cases {
        let up = case.up.unwrap_or_else(ScalingRules::default_scale_up);
        let down = case.down.unwrap_or_else(ScalingRules::default_scale_down);
        let got = behavior::convert_with_behavior_rate(
            case.current,
            case.desired,
            case.min,
            case.max,
            &up,
            &down,
            &case.up_events,
            &case.down_events,
            NOW,
            PeriodStart::BothDirections,
        );
        assert_eq!(got, (case.expected, case.limit), "{}", case.name);
    }
}

#[test]
fn rate_limits_before_109058_count_one_direction() {
    // "scaleUp with percent policy and previous scale up and down events" under the old rule:
    // the period started at 6 − 4 = 2, so 300 % allows 8 (upstream since v1.26: 16).
    let up = rules(0, 0, 300, 300, 0);
    let got = behavior::convert_with_behavior_rate(
        6,
        24,
        1,
        1000,
        &up,
        &ScalingRules::default_scale_down(),
        &uniform(&[4], 120),
        &uniform(&[2], 120),
        NOW,
        PeriodStart::SameDirection,
    );
    assert_eq!(got, (8, Limit::ScaleUpLimit));
}

#[test]
fn store_scale_events_replica_change() {
    // TestStoreScaleEvents: getReplicasChangePerPeriod(60, previous events).
    let ev = |list: &[(u32, u64)]| -> VecDeque<ScaleEvent> {
        list.iter()
            .map(|&(change, s)| ScaleEvent { at: ago(s), change })
            .collect()
    };
    let p = Duration::from_secs(60);
    assert_eq!(behavior::change_in_period(&ev(&[]), NOW, p), 0);
    assert_eq!(behavior::change_in_period(&ev(&[(7, 61)]), NOW, p), 0);
    assert_eq!(behavior::change_in_period(&ev(&[(7, 58)]), NOW, p), 7);
    assert_eq!(
        behavior::change_in_period(&ev(&[(7, 61), (6, 59)]), NOW, p),
        6
    );
    assert_eq!(
        behavior::change_in_period(&ev(&[(8, 29), (6, 59), (7, 61), (9, 61)]), NOW, p),
        14
    );
    assert_eq!(
        behavior::change_in_period(&ev(&[(7, 58), (6, 59)]), NOW, p),
        13
    );
}

fn controller_pods(levels: &[f64]) -> Vec<PodObservation> {
    levels
        .iter()
        .map(|l| PodObservation {
            ready: true,
            value: Some(l / 1000.0),
            age: COOL,
            ready_since: Some(COOL),
            metric_age: Duration::ZERO,
            metric_window: Duration::from_secs(60),
            ..PodObservation::default()
        })
        .collect()
}

fn two_metric_hpa(min: u32, max: u32, cpu_percent: f64, external_target: f64) -> Hpa {
    let mut cfg = HpaConfig::new(
        HpaMetric::CpuUtilization {
            target: cpu_percent / 100.0,
        },
        ReplicaBounds {
            min_replicas: min,
            max_replicas: max,
        },
    );
    cfg.cpu_initialization_period = Duration::from_secs(120);
    cfg.initial_readiness_delay = Duration::from_secs(10);
    cfg.metrics.push(HpaMetric::ExternalValue {
        target: external_target,
        window: Duration::from_secs(60),
    });
    Hpa::new(cfg)
}

#[test]
fn one_metric_invalid_or_empty() {
    let obs = |current: u32, levels: &[f64]| Observation {
        current_replicas: current,
        ready_replicas: current,
        pods: controller_pods(levels),
        extra_metrics: vec![None],
        ..Observation::default()
    };
    // TestScaleUpOneMetricEmpty: CPU asks for 4, the external metric fails: scale up to 4.
    let mut h = two_metric_hpa(2, 6, 30.0, 0.1);
    assert_eq!(
        h.recommend(NOW, &obs(3, &[300.0, 400.0, 500.0])).replicas,
        4
    );
    // TestNoScaleDownOneMetricInvalid / TestNoScaleDownOneMetricEmpty: CPU asks for less, one
    // metric fails: no scale-down.
    let mut h = two_metric_hpa(2, 6, 50.0, 1.0);
    let o = obs(5, &[100.0, 300.0, 500.0, 250.0, 250.0]);
    assert_eq!(h.recommend(NOW, &o).replicas, 5);
}
