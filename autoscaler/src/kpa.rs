//! Knative Serving's KPA (`pkg/autoscaler/scaling/autoscaler.go`, `kpa/scaler.go`): every 2 s,
//! desired pods from the stable-window (60 s) and panic-window (6 s) average concurrency, panic
//! mode when the panic window asks for twice the ready pods (never scaling down while
//! panicking, for a stable window after the last trigger), rate limits, scale-down delay, and
//! scale-to-zero after the grace period.

use std::time::Duration;

mod decider;
#[cfg(test)]
mod upstream_tests;

pub use decider::{Decider, DeciderSpec, ScaleResult, Trace};

use crate::why::{Direction, Rule};
use crate::{
    InvalidSetting, MetricSpec, Observation, Recommendation, ReplicaBounds, ScalingPolicy,
};

/// Settings of the KPA (ConfigMap `config-autoscaler` and annotations), with upstream defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct KpaConfig {
    /// `min-scale` / `max-scale` (max 0 in Knative means unbounded; give a number here).
    pub bounds: ReplicaBounds,
    /// `containerConcurrency` (0 = unlimited, then the target defaults to 100).
    pub container_concurrency: u32,
    /// `autoscaling.knative.dev/target` override.
    pub target: Option<f64>,
    /// `container-concurrency-target-percentage` as a fraction (0.7).
    pub target_utilization: f64,
    /// `stable-window` (60 s).
    pub stable_window: Duration,
    /// `panic-window-percentage` (10).
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage` (200).
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate` (1000).
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (2).
    pub max_scale_down_rate: f64,
    /// `scale-to-zero-grace-period` (30 s).
    pub scale_to_zero_grace_period: Duration,
    /// `scale-down-delay` (0).
    pub scale_down_delay: Duration,
    /// `initial-scale` (1).
    pub initial_scale: u32,
    /// `activation-scale` (1).
    pub activation_scale: u32,
}

impl Default for KpaConfig {
    fn default() -> Self {
        Self {
            bounds: ReplicaBounds {
                min_replicas: 0,
                max_replicas: 100,
            },
            container_concurrency: 0,
            target: None,
            target_utilization: 0.7,
            stable_window: Duration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_down_delay: Duration::ZERO,
            initial_scale: 1,
            activation_scale: 1,
        }
    }
}

impl KpaConfig {
    /// `ResolveMetricTarget`: per-pod concurrency target.
    pub fn target_per_pod(&self) -> f64 {
        let cc = f64::from(self.container_concurrency);
        let mut total = if cc > 0.0 { cc } else { 100.0 };
        if let Some(t) = self.target {
            total = if cc > 0.0 { t.min(cc) } else { t };
        }
        (total * self.target_utilization).max(0.01)
    }

    /// `panicWindow = max(1 s, round(stable × pct / 100))`.
    pub fn panic_window(&self) -> Duration {
        let secs =
            (self.stable_window.as_secs_f64() * self.panic_window_percentage / 100.0).round();
        Duration::from_secs_f64(secs.max(1.0))
    }

    /// Upstream validation; the error names the setting.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let s = self.stable_window.as_secs_f64();
        if !(6.0..=3600.0).contains(&s) {
            return Err(InvalidSetting::new(
                "stable_window",
                format!("expected 6s..1h, found {s}s"),
            ));
        }
        if !(1.0..=100.0).contains(&self.panic_window_percentage) {
            return Err(InvalidSetting::new(
                "panic_window_percentage",
                format!("expected 1..100, found {}", self.panic_window_percentage),
            ));
        }
        // Written so that NaN fails every check: a NaN comparison is false.
        if !(self.panic_threshold_percentage >= 110.0
            && self.panic_threshold_percentage.is_finite())
        {
            return Err(InvalidSetting::new(
                "panic_threshold_percentage",
                format!("expected ≥ 110, found {}", self.panic_threshold_percentage),
            ));
        }
        let rate_ok = |r: f64| r > 1.0 && r.is_finite();
        if !rate_ok(self.max_scale_up_rate) || !rate_ok(self.max_scale_down_rate) {
            return Err(InvalidSetting::new(
                "max_scale_up_rate and max_scale_down_rate",
                "expected a finite number > 1",
            ));
        }
        if let Some(t) = self.target.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(InvalidSetting::new(
                "target",
                format!("expected a finite number > 0, found {t}"),
            ));
        }
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return Err(InvalidSetting::new(
                "target_utilization",
                format!("expected in (0, 1], found {}", self.target_utilization),
            ));
        }
        if self.bounds.min_replicas > self.bounds.max_replicas {
            return Err(InvalidSetting::new(
                "min_replicas",
                format!(
                    "expected ≤ max_replicas ({}), found {}",
                    self.bounds.max_replicas, self.bounds.min_replicas
                ),
            ));
        }
        Ok(())
    }
}

/// The KPA for one revision: Knative's [`Decider`] (`scaling/autoscaler.go`) behind
/// `kpa/scaler.go`'s activator wake-up, scale-to-zero grace and min/max scale.
#[derive(Debug, Clone)]
pub struct Kpa {
    config: KpaConfig,
    /// Created at the first decision, with the ready pods then (a restarted autoscaler with
    /// several ready pods starts in panic).
    decider: Option<Decider>,
    /// Since when the decider has wanted zero pods.
    zero_since: Option<Duration>,
    /// When the revision last became active (had pods).
    active_since: Option<Duration>,
}

impl Kpa {
    /// A fresh decider.
    pub fn new(config: KpaConfig) -> Self {
        Self {
            config,
            decider: None,
            zero_since: None,
            active_since: None,
        }
    }

    /// The decider's settings for this configuration: the revision is always reachable (the
    /// simulator runs one revision), and the burst capacity is not modelled (the activator's
    /// place in the path is not simulated).
    fn decider_spec(&self) -> DeciderSpec {
        let c = &self.config;
        DeciderSpec {
            target_value: c.target_per_pod(),
            total_value: c.target_per_pod() / c.target_utilization,
            target_burst_capacity: 0.0,
            panic_threshold: c.panic_threshold_percentage / 100.0,
            max_scale_up_rate: c.max_scale_up_rate,
            max_scale_down_rate: c.max_scale_down_rate,
            stable_window: c.stable_window,
            scale_down_delay: c.scale_down_delay,
            activation_scale: c.activation_scale,
            reachable: true,
        }
    }
}

impl ScalingPolicy for Kpa {
    fn name(&self) -> &'static str {
        "kpa"
    }

    fn tick_interval(&self) -> Duration {
        Duration::from_secs(2)
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::StableAndPanicConcurrency {
            bucket: Duration::from_secs(1),
            stable_window: self.config.stable_window,
            panic_window: self.config.panic_window(),
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.initial_scale.clamp(
            self.config.bounds.min_replicas,
            self.config.bounds.max_replicas.max(1),
        )
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let c = self.config.clone();
        let cur = obs.current_replicas;
        if cur > 0 {
            self.active_since.get_or_insert(now);
        } else {
            self.active_since = None;
        }
        // The activator pokes the scaler when a request arrives at zero.
        if cur == 0 && obs.waiting_requests > 0 {
            let wake = c
                .activation_scale
                .max(1)
                .clamp(c.bounds.min_replicas, c.bounds.max_replicas);
            let mut r = Recommendation::with_inputs(wake, vec![("activator_poke", 1.0)]);
            r.why.push(Rule::Wake {
                waiting: obs.waiting_requests,
            });
            return r;
        }
        let (Some(stable), Some(panic)) = (obs.metric, obs.panic_metric) else {
            let mut r = Recommendation::with_inputs(cur, vec![("no_metric", 1.0)]);
            r.why.push(Rule::Hold(crate::HoldReason::MetricMissing));
            return r;
        };
        let spec = self.decider_spec();
        let decider = self
            .decider
            .get_or_insert_with(|| Decider::new(spec, obs.ready_replicas, now));
        let mut desired = decider
            .scale(now, obs.ready_replicas, stable, panic)
            .desired;
        let t = decider.trace;
        let panicking = t.panicking;
        let target = decider.spec.target_value;
        // Why: the raw count, the rate limit that bound it, the panic hold, the delay window.
        let (raw, limited) = if panicking {
            (
                t.stable_pods.max(t.panic_pods),
                t.stable_limited.max(t.panic_limited),
            )
        } else {
            (t.stable_pods, t.stable_limited)
        };
        let mut why = crate::why::Why {
            raw: Some(raw.max(0.0) as u32),
            metric: Some(crate::why::MetricValue {
                name: if panicking {
                    "panic-window concurrency".into()
                } else {
                    "stable-window concurrency".into()
                },
                value: if panicking { stable.max(panic) } else { stable },
                target: Some(target),
            }),
            ..crate::why::Why::default()
        };
        let (limited_f, activation) = (f64::from(limited), f64::from(c.activation_scale));
        if limited_f < raw && limited_f >= activation {
            why.push(Rule::FactorLimit {
                direction: Direction::Up,
                setting: "max_scale_up_rate",
                factor: c.max_scale_up_rate,
                limit: limited,
            });
        } else if limited_f > raw && limited_f > activation {
            why.push(Rule::FactorLimit {
                direction: Direction::Down,
                setting: "max_scale_down_rate",
                factor: c.max_scale_down_rate,
                limit: limited,
            });
        }
        if panicking && t.before_delay > limited {
            why.push(Rule::Panic {
                highest: t.before_delay,
            });
        }
        if desired > t.before_delay {
            why.push(Rule::ScaleDownDelay {
                window: c.scale_down_delay,
                highest: desired,
            });
        }
        // Scale to zero only after the grace period, and only once the revision has been
        // active for a stable window.
        if desired == 0 {
            let since = *self.zero_since.get_or_insert(now);
            let active_long_enough = self
                .active_since
                .is_none_or(|a| now.saturating_sub(a) >= c.stable_window);
            if cur > 0
                && (now.saturating_sub(since) < c.scale_to_zero_grace_period || !active_long_enough)
            {
                desired = 1;
                why.push(Rule::ScaleToZeroGrace {
                    grace: c.scale_to_zero_grace_period,
                });
            }
        } else {
            self.zero_since = None;
        }
        let replicas = desired.clamp(c.bounds.min_replicas, c.bounds.max_replicas);
        if replicas > desired {
            why.push(Rule::MinReplicas {
                min: c.bounds.min_replicas,
            });
        } else if replicas < desired {
            why.push(Rule::MaxReplicas {
                max: c.bounds.max_replicas,
            });
        }
        Recommendation {
            why,
            replicas,
            inputs: vec![
                ("stable_concurrency", stable),
                ("panic_concurrency", panic),
                ("target_per_pod", target),
                ("panicking", f64::from(u8::from(panicking))),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kpa(cc: u32, min: u32, max: u32) -> Kpa {
        Kpa::new(KpaConfig {
            container_concurrency: cc,
            bounds: ReplicaBounds {
                min_replicas: min,
                max_replicas: max,
            },
            ..KpaConfig::default()
        })
    }

    fn obs(cur: u32, ready: u32, stable: f64, panic: f64) -> Observation {
        Observation {
            current_replicas: cur,
            ready_replicas: ready,
            metric: Some(stable),
            panic_metric: Some(panic),
            ..Observation::default()
        }
    }

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A decider already running (created with no ready pods, so not in panic).
    fn start(p: &mut Kpa) {
        p.decider = Some(Decider::new(p.decider_spec(), 0, at(0)));
    }

    #[test]
    fn worked_example_of_the_reference() {
        // CC = 10 → target 7; stable 35, panic 70, 5 ready: dspc 5, dppc 10, 10/5 ≥ 2 → panic.
        let mut p = kpa(10, 0, 1000);
        start(&mut p);
        assert!((p.config.target_per_pod() - 7.0).abs() < 1e-12);
        let r = p.recommend(at(100), &obs(5, 5, 35.0, 70.0));
        assert_eq!(r.replicas, 10);
        assert!(p.decider.as_ref().is_some_and(|d| d.panic_time.is_some()));
    }

    #[test]
    fn panic_never_scales_down_until_a_stable_window_passes() {
        let mut p = kpa(10, 1, 1000);
        start(&mut p);
        assert_eq!(p.recommend(at(100), &obs(5, 5, 35.0, 70.0)).replicas, 10);
        // Load drops: still panicking, holds the max panic pods.
        assert_eq!(p.recommend(at(102), &obs(10, 10, 7.0, 7.0)).replicas, 10);
        assert_eq!(p.recommend(at(160), &obs(10, 10, 7.0, 7.0)).replicas, 10);
        // 60 s after the last trigger, panic ends and the stable value (limited by the
        // max-scale-down rate: ≥ 10/2) applies.
        assert_eq!(p.recommend(at(162), &obs(10, 10, 7.0, 7.0)).replicas, 5);
    }

    #[test]
    fn rates_limit_steps() {
        let mut p = kpa(10, 1, 100_000);
        start(&mut p);
        // Stable wants 0: at most halve (max-scale-down-rate 2), min 1.
        assert_eq!(p.recommend(at(10), &obs(8, 8, 0.0, 0.0)).replicas, 4);
    }

    #[test]
    fn scale_to_zero_after_grace_and_wake_on_request() {
        let mut p = kpa(10, 0, 10);
        start(&mut p);
        p.active_since = Some(at(0));
        assert_eq!(
            p.recommend(at(100), &obs(1, 1, 0.0, 0.0)).replicas,
            1,
            "grace starts"
        );
        assert_eq!(p.recommend(at(120), &obs(1, 1, 0.0, 0.0)).replicas, 1);
        assert_eq!(
            p.recommend(at(130), &obs(1, 1, 0.0, 0.0)).replicas,
            0,
            "after 30 s"
        );
        let poke = Observation {
            current_replicas: 0,
            waiting_requests: 3,
            ..Observation::default()
        };
        assert_eq!(p.recommend(at(200), &poke).replicas, 1);
    }

    #[test]
    fn restart_with_many_ready_pods_starts_in_panic() {
        let mut p = kpa(10, 1, 100);
        assert_eq!(p.recommend(at(0), &obs(6, 6, 0.0, 0.0)).replicas, 6);
    }

    #[test]
    fn scale_down_delay_holds_the_max() {
        let mut cfg = KpaConfig {
            container_concurrency: 10,
            scale_down_delay: Duration::from_secs(30),
            ..KpaConfig::default()
        };
        cfg.bounds.min_replicas = 1;
        let mut p = Kpa::new(cfg);
        start(&mut p);
        assert_eq!(p.recommend(at(0), &obs(4, 4, 28.0, 28.0)).replicas, 4);
        assert_eq!(p.recommend(at(10), &obs(4, 4, 7.0, 7.0)).replicas, 4);
        assert_eq!(p.recommend(at(30), &obs(4, 4, 7.0, 7.0)).replicas, 2);
    }

    proptest! {
        #[test]
        fn stays_within_bounds(
            min in 0u32..5, span in 1u32..30,
            loads in proptest::collection::vec((0.0f64..500.0, 0.0f64..800.0), 1..80),
        ) {
            let max = min + span;
            let mut p = kpa(10, min, max);
            let mut cur = p.initial_replicas();
            for (i, (stable, panic)) in loads.iter().enumerate() {
                let r = p.recommend(at(2 * i as u64), &obs(cur, cur, *stable, *panic)).replicas;
                prop_assert!(r >= min && r <= max);
                cur = r;
            }
        }

        #[test]
        fn load_at_target_changes_nothing(cur in 1u32..50) {
            let mut p = kpa(10, 1, 1000);
            start(&mut p);
            let load = 7.0 * f64::from(cur);
            for i in 0..100 {
                let r = p.recommend(at(2 * i), &obs(cur, cur, load, load)).replicas;
                prop_assert_eq!(r, cur);
            }
        }

        #[test]
        fn constant_load_does_not_oscillate(load in 0.0f64..400.0, start in 1u32..40) {
            let mut p = kpa(10, 1, 1000);
            let mut cur = start;
            let mut seen = vec![cur];
            for i in 0..200 {
                cur = p.recommend(at(2 * i), &obs(cur, cur, load, load)).replicas;
                seen.push(cur);
            }
            let ups = seen.windows(2).any(|w| w[1] > w[0]);
            let downs = seen.windows(2).any(|w| w[1] < w[0]);
            prop_assert!(!(ups && downs), "{:?}", seen);
        }
    }
}
