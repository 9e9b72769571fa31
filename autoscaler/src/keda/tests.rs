//! One test per KEDA rule: activation, cooldown hold, polling cadence, fallback.

use std::time::Duration;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn keda() -> Keda {
    Keda::new(KedaConfig::new(
        KedaTrigger::InFlight { window: secs(60) },
        5.0,
        ReplicaBounds {
            min_replicas: 0,
            max_replicas: 10,
        },
    ))
}

fn obs(current: u32, metric: Option<f64>) -> Observation {
    Observation {
        current_replicas: current,
        ready_replicas: current,
        metric,
        ..Observation::default()
    }
}

#[test]
fn activation_from_zero_to_one_at_a_poll_above_the_activation_threshold() {
    let mut k = keda();
    // Nothing above the activation threshold (0): stays at zero.
    assert_eq!(k.recommend(secs(0), &obs(0, Some(0.0))).replicas, 0);
    // Load arrives between polls: nothing until the next poll at 30 s.
    assert_eq!(k.recommend(secs(15), &obs(0, Some(12.0))).replicas, 0);
    // The poll activates to 1 (the operator, not the HPA); the HPA then scales 1 → N.
    assert_eq!(k.recommend(secs(30), &obs(0, Some(12.0))).replicas, 1);
    assert_eq!(k.recommend(secs(45), &obs(1, Some(12.0))).replicas, 3);
    // A higher activation threshold keeps it at zero.
    let mut cfg = k.config.clone();
    cfg.activation_threshold = 20.0;
    let mut k = Keda::new(cfg);
    assert_eq!(k.recommend(secs(0), &obs(0, Some(12.0))).replicas, 0);
}

#[test]
fn cooldown_holds_before_scaling_to_zero() {
    let mut k = keda();
    assert_eq!(k.recommend(secs(0), &obs(2, Some(8.0))).replicas, 2);
    // Inactive from 30 s: the last active poll was at 0 s; held until 0 + 300 s has passed.
    let mut t = 30;
    while t <= 300 {
        let r = k.recommend(secs(t), &obs(1, Some(0.0))).replicas;
        assert!(r >= 1, "t = {t}: {r}");
        t += 15;
    }
    // The first poll after the cooldown (330 s) deactivates to zero.
    assert_eq!(k.recommend(secs(330), &obs(1, Some(0.0))).replicas, 0);
}

#[test]
fn polling_cadence_and_hpa_sync() {
    let mut k = keda();
    let r = k.recommend(secs(0), &obs(1, Some(5.0)));
    assert!(r.inputs.iter().any(|(n, _)| *n == "polled"));
    // 15 s: the HPA syncs, no poll.
    let r = k.recommend(secs(15), &obs(1, Some(5.0)));
    assert!(!r.inputs.iter().any(|(n, _)| *n == "polled"));
    // 30 s: the next poll.
    let r = k.recommend(secs(30), &obs(1, Some(5.0)));
    assert!(r.inputs.iter().any(|(n, _)| *n == "polled"));
    assert_eq!(k.tick_interval(), secs(15));
}

#[test]
fn fallback_after_the_failure_threshold() {
    let mut cfg = KedaConfig::new(
        KedaTrigger::InFlight { window: secs(60) },
        5.0,
        ReplicaBounds {
            min_replicas: 0,
            max_replicas: 10,
        },
    );
    cfg.fallback = Some(KedaFallback {
        failure_threshold: 3,
        replicas: 6,
    });
    let mut k = Keda::new(cfg);
    // Active at first, then the scaler errs: no scale to zero, the HPA holds for three
    // failures, then asks for the fallback's 6 replicas.
    assert_eq!(k.recommend(secs(0), &obs(2, Some(10.0))).replicas, 2);
    for i in 1..=3 {
        assert_eq!(
            k.recommend(secs(15 * i), &obs(2, None)).replicas,
            2,
            "failure {i}"
        );
    }
    assert_eq!(
        k.recommend(secs(60), &obs(2, None)).replicas,
        4,
        "fallback, rate-limited"
    );
    // Without a fallback, an erring scaler never scales to zero.
    let mut k = keda();
    for i in 0..40 {
        assert_eq!(k.recommend(secs(15 * i), &obs(1, None)).replicas, 1);
    }
}

/// `TestAWSSQSScalerGetMetrics` (pkg/scalers/aws_sqs_queue_scaler_test.go at kedacore/keda@8b4f083c):
/// 200 messages visible and 100 not visible give 300 with `scaleOnInFlight` (the default) and
/// 200 without. Here the visible messages are the requests waiting for a worker and the metric
/// is the queue's in flight (visible + being processed).
#[test]
fn sqs_queue_length_counts_in_flight_messages_unless_told_not_to() {
    let trigger_value = |scale_on_in_flight: bool| {
        let mut k = Keda::new(KedaConfig::new(
            KedaTrigger::SqsQueue { scale_on_in_flight },
            5.0,
            ReplicaBounds {
                min_replicas: 0,
                max_replicas: 100,
            },
        ));
        let o = Observation {
            waiting_requests: 200,
            ..obs(1, Some(300.0))
        };
        let r = k.recommend(secs(0), &o);
        r.inputs
            .iter()
            .find(|(n, _)| *n == "trigger")
            .map(|(_, v)| *v)
    };
    assert_eq!(trigger_value(true), Some(300.0));
    assert_eq!(trigger_value(false), Some(200.0));
    // The metric each reads: the newest sample of the queue, or none (the waiting count).
    let spec = |scale_on_in_flight| {
        Keda::new(KedaConfig::new(
            KedaTrigger::SqsQueue { scale_on_in_flight },
            5.0,
            ReplicaBounds {
                min_replicas: 0,
                max_replicas: 100,
            },
        ))
        .metric_spec()
    };
    assert_eq!(
        spec(true),
        MetricSpec::InFlightWindowAverage {
            sample_interval: secs(1),
            window: secs(1)
        }
    );
    assert_eq!(spec(false), MetricSpec::None);
}
