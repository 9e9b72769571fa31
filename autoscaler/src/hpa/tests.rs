//! Our own HPA tests: normalization over time and properties.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::PodObservation;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn pod(value: f64) -> PodObservation {
    PodObservation {
        ready: true,
        value: Some(value),
        age: secs(3600),
        ready_since: Some(secs(3600)),
        ..PodObservation::default()
    }
}

fn hpa(min: u32, max: u32, behavior: Option<Behavior>) -> Hpa {
    let mut cfg = HpaConfig::new(
        HpaMetric::PodsAverageValue {
            kind: PodMetricKind::Concurrency,
            target: 10.0,
        },
        ReplicaBounds {
            min_replicas: min,
            max_replicas: max,
        },
    );
    cfg.behavior = behavior;
    Hpa::new(cfg)
}

fn obs(cur: u32, per_pod: f64) -> Observation {
    Observation {
        current_replicas: cur,
        ready_replicas: cur,
        pods: (0..cur).map(|_| pod(per_pod)).collect(),
        ..Observation::default()
    }
}

#[test]
fn scale_up_is_capped_without_behavior() {
    // max(2·current, 4).
    let mut h = hpa(1, 100, None);
    assert_eq!(h.recommend(secs(0), &obs(3, 100.0)).replicas, 6);
    let mut h = hpa(1, 100, None);
    assert_eq!(h.recommend(secs(0), &obs(1, 100.0)).replicas, 4);
}

#[test]
fn a_new_hpa_holds_for_five_minutes_before_scaling_down() {
    // recordInitialRecommendation: the first tick's current size (10) stays in the window.
    let mut h = hpa(1, 100, None);
    let mut t = 0;
    while t <= 300 {
        assert_eq!(h.recommend(secs(t), &obs(10, 2.0)).replicas, 10, "t = {t}");
        t += 15;
    }
    assert_eq!(h.recommend(secs(315), &obs(10, 2.0)).replicas, 2);
}

#[test]
fn a_new_hpa_with_behavior_holds_too() {
    let behavior = Behavior {
        scale_up: ScalingRules::default_scale_up(),
        scale_down: ScalingRules::default_scale_down(),
    };
    let mut h = hpa(1, 100, Some(behavior));
    assert_eq!(h.recommend(secs(0), &obs(10, 2.0)).replicas, 10);
    assert_eq!(h.recommend(secs(300), &obs(10, 2.0)).replicas, 2);
}

#[test]
fn several_metrics_take_the_largest_proposal() {
    let mut cfg = HpaConfig::new(
        HpaMetric::PodsAverageValue {
            kind: PodMetricKind::Concurrency,
            target: 10.0,
        },
        ReplicaBounds {
            min_replicas: 1,
            max_replicas: 100,
        },
    );
    cfg.metrics.push(HpaMetric::ExternalValue {
        target: 10.0,
        window: secs(60),
    });
    let h = Hpa::new(cfg);
    let mut o = obs(4, 10.0);
    o.extra_metrics = vec![Some(60.0)];
    // Pods metric at target holds 4; the external metric asks for 6 × 4 ready = 24.
    let p = h.propose(4, &o).expect("valid");
    assert_eq!((p.replicas, p.metric), (24, 1));
    // A missing second metric with the first holding: still 4.
    o.extra_metrics = vec![None];
    assert_eq!(h.propose(4, &o).map(|p| p.replicas), Some(4));
    // A missing metric and a scale-down proposal: no action.
    let o = {
        let mut o = obs(4, 2.0);
        o.extra_metrics = vec![None];
        o
    };
    assert_eq!(h.propose(4, &o), None);
}

#[test]
fn external_value_scales_to_and_from_zero() {
    let cfg = HpaConfig::new(
        HpaMetric::ExternalValue {
            target: 5.0,
            window: secs(60),
        },
        ReplicaBounds {
            min_replicas: 0,
            max_replicas: 10,
        },
    );
    assert!(cfg.validate().is_ok());
    let mut h = Hpa::new(cfg);
    let at_zero = |m: f64| Observation {
        metric: Some(m),
        ..Observation::default()
    };
    // ceil(12 / 5) = 3 from zero.
    assert_eq!(h.recommend(secs(0), &at_zero(12.0)).replicas, 3);
    // Zero load at zero replicas stays at zero.
    let mut h = Hpa::new(h.config().clone());
    assert_eq!(h.recommend(secs(0), &at_zero(0.0)).replicas, 0);
}

#[test]
fn scale_to_zero_needs_an_object_or_external_metric() {
    let cfg = HpaConfig::new(
        HpaMetric::CpuUtilization { target: 0.5 },
        ReplicaBounds {
            min_replicas: 0,
            max_replicas: 10,
        },
    );
    assert_eq!(cfg.validate().map_err(|e| e.field), Err("min_replicas"));
}

#[test]
fn per_direction_tolerance_needs_1_33() {
    let mut cfg = HpaConfig::new(
        HpaMetric::CpuUtilization { target: 0.5 },
        ReplicaBounds {
            min_replicas: 1,
            max_replicas: 10,
        },
    );
    let mut up = ScalingRules::default_scale_up();
    up.tolerance = Some(0.0);
    cfg.behavior = Some(Behavior {
        scale_up: up,
        scale_down: ScalingRules::default_scale_down(),
    });
    assert_eq!(
        cfg.tolerances(),
        Tolerances {
            scale_down: 0.1,
            scale_up: 0.0
        }
    );
    cfg.kubernetes_version = KubernetesVersion::v1(32);
    assert_eq!(
        cfg.validate().map_err(|e| e.field),
        Err("behavior.scale_up.tolerance")
    );
}

#[test]
fn versions_parse_and_name_the_field() {
    assert_eq!(
        KubernetesVersion::parse("1.27"),
        Ok(KubernetesVersion::v1(27))
    );
    assert_eq!(
        KubernetesVersion::parse("v1.35.2"),
        Ok(KubernetesVersion::v1(35))
    );
    let e = KubernetesVersion::parse("latest").expect_err("not a version");
    assert_eq!(e.field, "kubernetes_version");
    assert!(e.problem.contains("\"1.35\""));
}

proptest! {
    #[test]
    fn stays_within_bounds(
        min in 1u32..5, span in 0u32..30, with_behavior in any::<bool>(),
        loads in proptest::collection::vec(0.0f64..200.0, 1..60),
    ) {
        let max = min + span;
        let behavior = with_behavior.then(|| Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
        });
        let mut h = hpa(min, max, behavior);
        let mut cur = min;
        for (i, load) in loads.iter().enumerate() {
            let r = h.recommend(secs(15 * i as u64), &obs(cur, *load)).replicas;
            prop_assert!(r >= min && r <= max);
            cur = r;
        }
    }

    #[test]
    fn load_at_target_changes_nothing(cur in 1u32..50) {
        let mut h = hpa(1, 100, None);
        for i in 0..50 {
            prop_assert_eq!(h.recommend(secs(15 * i), &obs(cur, 10.0)).replicas, cur);
        }
    }

    #[test]
    fn constant_total_load_does_not_oscillate(total in 0.0f64..800.0, start in 1u32..40) {
        let mut h = hpa(1, 100, None);
        let mut cur = start;
        let mut seen = vec![cur];
        for i in 0..100 {
            cur = h.recommend(secs(15 * i), &obs(cur, total / f64::from(cur))).replicas;
            seen.push(cur);
        }
        let ups = seen.windows(2).any(|w| w[1] > w[0]);
        let downs = seen.windows(2).any(|w| w[1] < w[0]);
        prop_assert!(!(ups && downs), "{:?}", seen);
    }
}
