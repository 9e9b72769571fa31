//! Tests of the "why" records: each rule as a policy reports it, and its sentence.

use std::time::Duration;

use super::*;
use crate::decision::{DecisionStep, Overprovisioning, ReplicaCount};
use crate::hpa::{Behavior, Hpa, HpaConfig, HpaMetric, RatePolicy, ScalingRules};
use crate::pipeline::Reading;
use crate::{
    Cortex, CortexConfig, Keda, KedaConfig, KedaTrigger, Kpa, KpaConfig, Observation,
    PodMetricKind, PodObservation, ReplicaBounds, Saturation, SaturationConfig, ScalingPolicy,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn bounds(min: u32, max: u32) -> ReplicaBounds {
    ReplicaBounds {
        min_replicas: min,
        max_replicas: max,
    }
}

/// Ready pods long past their start, with these per-pod values.
fn pods(values: &[f64]) -> Vec<PodObservation> {
    values
        .iter()
        .map(|v| PodObservation {
            ready: true,
            value: Some(*v),
            age: secs(600),
            ready_since: Some(secs(600)),
            ..PodObservation::default()
        })
        .collect()
}

fn per_pod(current: u32, values: &[f64]) -> Observation {
    Observation {
        current_replicas: current,
        ready_replicas: current,
        pods: pods(values),
        ..Observation::default()
    }
}

fn hpa(behavior: Option<Behavior>, max: u32) -> Hpa {
    let mut c = HpaConfig::new(
        HpaMetric::PodsAverageValue {
            kind: PodMetricKind::Concurrency,
            target: 1.0,
        },
        bounds(1, max),
    );
    c.behavior = behavior;
    Hpa::new(c)
}

fn behavior(up: Vec<RatePolicy>) -> Behavior {
    let mut scale_up = ScalingRules::default_scale_up();
    scale_up.policies = up;
    Behavior {
        scale_up,
        scale_down: ScalingRules::default_scale_down(),
    }
}

#[test]
fn hpa_rate_policy_caps_a_scale_up_and_says_which() {
    let mut h = hpa(
        Some(behavior(vec![RatePolicy::Pods {
            value: 4,
            period: secs(60),
        }])),
        20,
    );
    let r = h.recommend(secs(15), &per_pod(4, &[3.0; 4]));
    assert_eq!(r.replicas, 8);
    assert_eq!(r.why.raw, Some(12));
    assert_eq!(
        r.why.rules,
        vec![Rule::RateLimit {
            direction: Direction::Up,
            kind: RateKind::Pods,
            value: 4,
            period: secs(60),
            limit: 8,
        }]
    );
    assert_eq!(r.why.rule_name().as_deref(), Some("scale_up_rate_limit"));
    assert_eq!(
        r.why.sentence(4, 8),
        "scale-up capped at 8 by policy Pods 4 per 60s (recommended 12 from in-flight requests per pod 3 against a target of 1)"
    );
}

#[test]
fn hpa_percent_policy_names_itself() {
    let mut h = hpa(
        Some(behavior(vec![
            RatePolicy::Pods {
                value: 1,
                period: secs(60),
            },
            RatePolicy::Percent {
                value: 50,
                period: secs(60),
            },
        ])),
        20,
    );
    let r = h.recommend(secs(15), &per_pod(4, &[3.0; 4]));
    assert_eq!(r.replicas, 6);
    assert!(
        r.why
            .sentence(4, 6)
            .starts_with("scale-up capped at 6 by policy Percent 50 per 60s"),
        "{}",
        r.why.sentence(4, 6)
    );
}

#[test]
fn hpa_scale_down_stabilization_names_the_winning_recommendation() {
    let mut h = hpa(None, 20);
    // t = 30 s: the metric asks for 6 (and the first tick recorded the current 6 too).
    let r = h.recommend(secs(30), &per_pod(6, &[1.0; 6]));
    assert_eq!(r.replicas, 6);
    // t = 45 s: it asks for 2, but 6 was recommended within the window.
    let r = h.recommend(secs(45), &per_pod(6, &[0.3; 6]));
    assert_eq!(r.replicas, 6);
    assert_eq!(
        r.why.rules,
        vec![Rule::Stabilization {
            direction: Direction::Down,
            window: secs(300),
            value: 6,
            at: secs(30),
        }]
    );
    assert_eq!(
        r.why.sentence(6, 6),
        "held at 6: scale-down stabilization, highest recommendation in the last 300s was 6 at 0:00:30 (recommended 2 from in-flight requests per pod 0.3 against a target of 1)"
    );
}

#[test]
fn hpa_tolerance_max_and_legacy_limit() {
    let mut h = hpa(None, 20);
    let r = h.recommend(secs(15), &per_pod(10, &[1.05; 10]));
    assert_eq!(r.replicas, 10);
    assert!(
        matches!(r.why.rules[..], [Rule::Tolerance { .. }]),
        "{:?}",
        r.why
    );
    assert!(r
        .why
        .sentence(10, 10)
        .starts_with("held at 10: usage ratio 1.05 within tolerance (0.9–1.1)"));

    let mut h = hpa(None, 20);
    let r = h.recommend(secs(15), &per_pod(2, &[5.0; 2]));
    assert_eq!(r.replicas, 4);
    assert_eq!(r.why.rules, vec![Rule::LegacyScaleUpLimit { limit: 4 }]);

    let mut h = hpa(None, 5);
    let r = h.recommend(secs(15), &per_pod(4, &[2.0; 4]));
    assert_eq!(r.replicas, 5);
    assert_eq!(r.why.rules, vec![Rule::MaxReplicas { max: 5 }]);
    assert_eq!(
        r.why.sentence(4, 5),
        "scale-up capped at 5 by max_replicas 5 (recommended 8 from in-flight requests per pod 2 against a target of 1)"
    );
}

#[test]
fn hpa_sets_aside_unready_pods_and_says_so() {
    let mut h = hpa(None, 20);
    let mut obs = per_pod(3, &[2.0, 2.0]);
    obs.pods.push(PodObservation {
        phase: crate::PodPhase::Pending,
        ..PodObservation::default()
    });
    let r = h.recommend(secs(15), &obs);
    assert_eq!(r.why.set_aside.unready, 1);
    assert!(
        r.why
            .sentence(3, r.replicas)
            .contains("pods set aside: 1 unready"),
        "{}",
        r.why.sentence(3, r.replicas)
    );
}

#[test]
fn decision_step_holds_bounds_and_headroom() {
    let mut step = DecisionStep::new(
        Box::new(hpa(None, 10)),
        bounds(1, 10),
        Overprovisioning::Replicas(1),
    );
    let d = step.decide(
        secs(15),
        ReplicaCount { spec: 3, ready: 3 },
        &Reading::default(),
    );
    assert_eq!(d.why.rules, vec![Rule::Hold(HoldReason::NoPodMetric)]);
    assert_eq!(
        d.sentence(),
        "held at 3: no pod reported the metric, no action"
    );
    assert!(d.bound_by_rule());

    let reading = Reading {
        pods: pods(&[1.0; 3]),
        ..Reading::default()
    };
    let d = step.decide(secs(30), ReplicaCount { spec: 3, ready: 3 }, &reading);
    assert_eq!((d.recommended, d.target), (Some(3), 4));
    assert_eq!(d.why.rules, vec![Rule::Overprovisioning { extra: 1 }]);
    assert!(!d.bound_by_rule(), "headroom alone is not a binding rule");
    assert!(
        d.sentence()
            .starts_with("scaled 3 → 4: overprovisioning +1"),
        "{}",
        d.sentence()
    );
}

#[test]
fn cortex_startup_guard_factor_limit_and_stabilization() {
    let mut c = CortexConfig::with_concurrency(1);
    c.bounds = bounds(1, 100);
    let mut p = Cortex::new(c);
    let obs = |cur: u32, m: f64| Observation {
        current_replicas: cur,
        ready_replicas: cur,
        metric: Some(m),
        ..Observation::default()
    };
    let r = p.recommend(secs(0), &obs(2, 10.0));
    assert_eq!(r.replicas, 2);
    assert_eq!(
        r.why.rule_name().as_deref(),
        Some("scale_up_startup_guard"),
        "{:?}",
        r.why
    );
    let r = p.recommend(secs(70), &obs(2, 10.0));
    assert_eq!(r.replicas, 3);
    assert!(r.why.rules.contains(&Rule::FactorLimit {
        direction: Direction::Up,
        setting: "max_upscale_factor",
        factor: 1.5,
        limit: 3,
    }));
    assert!(r
        .why
        .sentence(2, 3)
        .starts_with("scale-up capped at 3 by max_upscale_factor 1.5"));
}

#[test]
fn kpa_panic_keeps_the_highest_count() {
    let mut p = Kpa::new(KpaConfig {
        container_concurrency: 1,
        target: Some(1.0),
        target_utilization: 1.0,
        max_scale_up_rate: 2.0,
        bounds: bounds(1, 100),
        ..KpaConfig::default()
    });
    let obs = |cur: u32, stable: f64, panic: f64| Observation {
        current_replicas: cur,
        ready_replicas: cur,
        metric: Some(stable),
        panic_metric: Some(panic),
        ..Observation::default()
    };
    let r = p.recommend(secs(2), &obs(2, 2.0, 10.0));
    assert_eq!(r.replicas, 4, "rate-limited panic scale-up");
    assert_eq!(r.why.rule_name().as_deref(), Some("scale_up_factor_limit"));
    let r = p.recommend(secs(4), &obs(4, 1.0, 1.0));
    assert_eq!(r.replicas, 4);
    assert_eq!(r.why.binding(), Some(&Rule::Panic { highest: 4 }));
    assert!(r.why.sentence(4, 4).starts_with("held at 4: panic mode"));
}

#[test]
fn keda_activation_and_deactivation() {
    let mut c = KedaConfig::new(
        KedaTrigger::InFlight { window: secs(60) },
        2.0,
        bounds(0, 10),
    );
    c.cooldown_period = secs(60);
    let mut k = Keda::new(c);
    let obs = |cur: u32, m: f64| Observation {
        current_replicas: cur,
        ready_replicas: cur,
        metric: Some(m),
        ..Observation::default()
    };
    let r = k.recommend(secs(0), &obs(0, 3.0));
    assert_eq!(r.replicas, 1);
    assert_eq!(r.why.rule_name().as_deref(), Some("activation"));
    assert_eq!(
        r.why.sentence(0, 1),
        "scaled 0 → 1: activation, trigger 3 > activation threshold 0 (trigger 3)"
    );
    // Active at the next poll, inactive at the one after: the cooldown keeps the replica.
    let r = k.recommend(secs(30), &obs(1, 1.0));
    assert_eq!(r.replicas, 1);
    let r = k.recommend(secs(60), &obs(1, 0.0));
    assert_eq!(r.replicas, 1);
    assert_eq!(
        r.why.rule_name().as_deref(),
        Some("cooldown"),
        "{:?}",
        r.why
    );
    let r = k.recommend(secs(120), &obs(1, 0.0));
    assert_eq!(r.replicas, 0);
    assert_eq!(r.why.rule_name().as_deref(), Some("deactivation"));
}

#[test]
fn saturation_waits_for_pending_replicas() {
    let mut p = Saturation::new(SaturationConfig {
        stabilization_window: Duration::ZERO,
        ..SaturationConfig::default()
    });
    let mut obs = Observation {
        current_replicas: 3,
        ready_replicas: 2,
        ..Observation::default()
    };
    obs.pods = (0..2)
        .map(|_| PodObservation {
            ready: true,
            peak: Some(crate::PodPeak {
                kv_usage: 0.95,
                waiting: 10.0,
            }),
            ..PodObservation::default()
        })
        .collect();
    let r = p.recommend(secs(30), &obs);
    assert_eq!(r.replicas, 3);
    assert_eq!(r.why.rules, vec![Rule::PendingReplicas { pending: 1 }]);
    assert_eq!(r.why.raw, Some(3));
}

#[test]
fn every_rule_has_a_name_and_a_phrase() {
    let rules = [
        Rule::Hold(HoldReason::MetricMissing),
        Rule::InvalidMetric {
            error: "no pods returned by selector".into(),
        },
        Rule::SetAsideReversal,
        Rule::Disabled {
            direction: Direction::Down,
        },
        Rule::MinReplicas { min: 2 },
        Rule::ScaleDownDelay {
            window: secs(30),
            highest: 3,
        },
        Rule::ScaleToZeroGrace { grace: secs(30) },
        Rule::Cooldown { period: secs(300) },
        Rule::Fallback {
            failures: 4,
            replicas: 6,
        },
        Rule::Wake { waiting: 2 },
    ];
    for r in rules {
        assert!(!r.name().is_empty() && !r.phrase().is_empty(), "{r:?}");
    }
    assert_eq!(clock(secs(3 * 3600 + 61)), "3:01:01");
    let why = Why {
        rules: vec![Rule::Hold(HoldReason::MetricMissing)],
        ..Why::default()
    };
    assert_eq!(
        why.sentence(4, 4),
        "held at 4: metric missing or stale, no action"
    );
    assert_eq!(Why::default().sentence(2, 3), "scaled 2 → 3");
}
