//! llm-d Workload Variant Autoscaler's V1 saturation analyzer ("percentage-based"), for one
//! variant, following `internal/saturation/analyzer.go` and `internal/saturation/constants.go`
//! at llm-d/llm-d-workload-variant-autoscaler@b08b1c77 (2026-02-19):
//!
//! 1. **Inputs.** Per pod, the 1-minute peak of `vllm:kv_cache_usage_perc` and of
//!    `vllm:num_requests_waiting`: `max by (pod) (max_over_time(…[1m]))`, "to catch saturation
//!    events between scrapes" (`internal/collector/registration/saturation.go`); see
//!    [`MetricSpec::PerPodPeak`].
//! 2. **Saturation.** A replica is saturated iff `kv ≥ kvCacheThreshold` or
//!    `waiting ≥ queueLengthThreshold`. Over the non-saturated replicas only, average
//!    `spareKv = kvCacheThreshold − kv` and `spareQueue = queueLengthThreshold − waiting`; both
//!    averages are 0 when every replica is saturated.
//! 3. **Scale up** iff `avgSpareKv < kvSpareTrigger` or `avgSpareQueue < queueSpareTrigger`:
//!    to `readyReplicas + 1`, unless the variant has pending replicas ("Skip variants with
//!    pending replicas to prevent cascade scaling"), then hold.
//! 4. **Scale down** iff at least `MinNonSaturatedReplicasForScaleDown` (2) replicas are not
//!    saturated and, with the average load `threshold − avgSpare` multiplied by `N/(N−1)`
//!    ("Simulate removing one replica: load increases by factor of N/(N-1)", N the
//!    non-saturated count), both remaining spares stay at or above their triggers: to
//!    `readyReplicas − 1`.
//!    Scale-down does not wait for pending replicas: WVA skips them for scale-up only.
//! 5. Otherwise hold at the current count. One replica per cycle, every 30 s (the saturation
//!    engine's polling `Interval: 30 * time.Second`, `internal/engines/saturation/engine.go`).
//!
//! Defaults are the ConfigMap `saturation-scaling-config` (`kvCacheThreshold: 0.80`,
//! `queueLengthThreshold: 5`, `kvSpareTrigger: 0.1`, `queueSpareTrigger: 3`). WVA has no
//! cooldown of its own (the HPA that actuates its output damps it); bounds come from the
//! [`crate::DecisionStep`]. Only ready pods that reported count as replicas: vLLM serves
//! `/metrics` once its engine is up.

use std::time::Duration;

use crate::{
    InvalidSetting, MetricSpec, Observation, PodPeak, Recommendation, ReplicaBounds, ScalingPolicy,
};

/// `MinNonSaturatedReplicasForScaleDown` (`internal/saturation/constants.go`).
const MIN_NON_SATURATED_FOR_SCALE_DOWN: u32 = 2;

/// WVA saturation-scaling settings (ConfigMap keys in snake_case), with upstream defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SaturationConfig {
    /// Replica bounds (the actuating HPA's `minReplicas` / `maxReplicas`).
    pub bounds: ReplicaBounds,
    /// `kvCacheThreshold` (0.80): "Replica is saturated if KV cache utilization >= this
    /// threshold (0.0-1.0)".
    pub kv_cache_threshold: f64,
    /// `queueLengthThreshold` (5): "Replica is saturated if queue length >= this threshold".
    pub queue_length_threshold: f64,
    /// `kvSpareTrigger` (0.1): "Scale-up if average spare KV cache capacity < this value".
    pub kv_spare_trigger: f64,
    /// `queueSpareTrigger` (3): "Scale-up if average spare queue capacity < this value".
    pub queue_spare_trigger: f64,
    /// Decision interval (30 s, the saturation engine's polling interval).
    pub interval: Duration,
    /// The `max_over_time` range of the inputs (1 minute).
    pub window: Duration,
    /// How stale the inputs are when read (Prometheus scrape and query lag; 0 by default).
    pub metrics_lag: Duration,
    /// WVA acts through an HPA on its desired-replicas metric; the chart gives that HPA
    /// `behavior.scaleUp/scaleDown.stabilizationWindowSeconds: 240`
    /// (`charts/workload-variant-autoscaler/values.yaml`). The analyzer's output is stabilized
    /// as the HPA does it: a rise only to the lowest recommendation of the window, a fall only
    /// to its highest. 0 applies the analyzer's output directly.
    pub stabilization_window: Duration,
}

impl Default for SaturationConfig {
    fn default() -> Self {
        Self {
            bounds: ReplicaBounds {
                min_replicas: 1,
                max_replicas: 100,
            },
            kv_cache_threshold: 0.80,
            queue_length_threshold: 5.0,
            kv_spare_trigger: 0.1,
            queue_spare_trigger: 3.0,
            interval: Duration::from_secs(30),
            window: Duration::from_secs(60),
            metrics_lag: Duration::ZERO,
            stabilization_window: Duration::from_secs(240),
        }
    }
}

impl SaturationConfig {
    /// Check the settings; the error names the setting. Written so that NaN fails every check.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let kv = self.kv_cache_threshold;
        if !(kv > 0.0 && kv <= 1.0) {
            return Err(InvalidSetting::new(
                "kv_cache_threshold",
                format!("expected a fraction in (0, 1], found {kv}"),
            ));
        }
        let queue = self.queue_length_threshold;
        if !(queue >= 0.0 && queue.is_finite()) {
            return Err(InvalidSetting::new(
                "queue_length_threshold",
                format!("expected a finite number ≥ 0, found {queue}"),
            ));
        }
        let t = self.kv_spare_trigger;
        if !(t >= 0.0 && t < kv) {
            return Err(InvalidSetting::new(
                "kv_spare_trigger",
                format!("expected ≥ 0 and < kv_cache_threshold ({kv}), found {t}"),
            ));
        }
        let t = self.queue_spare_trigger;
        if !(t >= 0.0 && t < queue) {
            return Err(InvalidSetting::new(
                "queue_spare_trigger",
                format!("expected ≥ 0 and < queue_length_threshold ({queue}), found {t}"),
            ));
        }
        if self.interval.is_zero() {
            return Err(InvalidSetting::new("interval", "expected a period > 0s"));
        }
        if self.window < Duration::from_secs(1) {
            return Err(InvalidSetting::new(
                "window",
                "expected ≥ 1s (pods are sampled every second)",
            ));
        }
        Ok(())
    }
}

/// The analysis of one cycle: what the decision rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Analysis {
    saturated: u32,
    non_saturated: u32,
    avg_spare_kv: f64,
    avg_spare_queue: f64,
}

/// llm-d WVA's V1 saturation analyzer as a policy (see the module documentation).
#[derive(Debug, Clone)]
pub struct Saturation {
    config: SaturationConfig,
    /// The analyzer's recommendations within the stabilization window, oldest first.
    history: std::collections::VecDeque<(Duration, u32)>,
}

impl Saturation {
    /// A policy with `config` (validate it first with [`SaturationConfig::validate`]).
    pub fn new(config: SaturationConfig) -> Self {
        Self {
            config,
            history: std::collections::VecDeque::new(),
        }
    }

    fn analyze(&self, peaks: &[PodPeak]) -> Analysis {
        let c = &self.config;
        let mut a = Analysis {
            saturated: 0,
            non_saturated: 0,
            avg_spare_kv: 0.0,
            avg_spare_queue: 0.0,
        };
        let (mut spare_kv, mut spare_queue) = (0.0, 0.0);
        for p in peaks {
            if p.kv_usage >= c.kv_cache_threshold || p.waiting >= c.queue_length_threshold {
                a.saturated += 1;
            } else {
                a.non_saturated += 1;
                spare_kv += c.kv_cache_threshold - p.kv_usage;
                spare_queue += c.queue_length_threshold - p.waiting;
            }
        }
        if a.non_saturated > 0 {
            let n = f64::from(a.non_saturated);
            a.avg_spare_kv = spare_kv / n;
            a.avg_spare_queue = spare_queue / n;
        }
        a
    }

    /// The spares left if one of the `N` non-saturated replicas went away and its load spread
    /// over the others: `threshold − (threshold − avgSpare) · N/(N−1)`.
    fn spares_after_removing_one(&self, a: &Analysis) -> (f64, f64) {
        let c = &self.config;
        let n = f64::from(a.non_saturated);
        let factor = n / (n - 1.0);
        let kv_load = c.kv_cache_threshold - a.avg_spare_kv;
        let queue_load = c.queue_length_threshold - a.avg_spare_queue;
        (
            c.kv_cache_threshold - kv_load * factor,
            c.queue_length_threshold - queue_load * factor,
        )
    }
}

impl ScalingPolicy for Saturation {
    fn name(&self) -> &'static str {
        "saturation"
    }

    fn tick_interval(&self) -> Duration {
        self.config.interval
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::PerPodPeak {
            window: self.config.window,
            lag: self.config.metrics_lag,
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.bounds.min_replicas.max(1)
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let mut r = self.analyzer(obs);
        let raw = r.replicas;
        let window = self.config.stabilization_window;
        if window.is_zero() {
            return r;
        }
        self.history.push_back((now, raw));
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= window)
        {
            self.history.pop_front();
        }
        let lowest = self.history.iter().map(|(_, v)| *v).min().unwrap_or(raw);
        let highest = self.history.iter().map(|(_, v)| *v).max().unwrap_or(raw);
        let current = obs.current_replicas;
        r.replicas = if current < lowest {
            lowest
        } else if current > highest {
            highest
        } else {
            current
        };
        r.inputs.push(("analyzer", f64::from(raw)));
        if r.replicas != raw {
            let (direction, value) = if raw > r.replicas {
                (crate::why::Direction::Up, lowest)
            } else {
                (crate::why::Direction::Down, highest)
            };
            let at = self
                .history
                .iter()
                .rev()
                .find(|(_, v)| *v == value)
                .map_or(now, |(t, _)| *t);
            r.why.push(crate::why::Rule::Stabilization {
                direction,
                window,
                value,
                at,
            });
        }
        r
    }
}

impl Saturation {
    /// The analyzer's own recommendation for this cycle (before the HPA's stabilization).
    fn analyzer(&mut self, obs: &Observation) -> Recommendation {
        let c = &self.config;
        let peaks: Vec<PodPeak> = obs
            .pods
            .iter()
            .filter(|p| p.ready)
            .filter_map(|p| p.peak)
            .collect();
        let a = self.analyze(&peaks);
        let current = obs.current_replicas;
        let ready = obs.ready_replicas;
        let pending = current.saturating_sub(ready);
        let scale_up =
            a.avg_spare_kv < c.kv_spare_trigger || a.avg_spare_queue < c.queue_spare_trigger;
        let mut inputs = vec![
            ("replicas_seen", peaks.len() as f64),
            ("saturated", f64::from(a.saturated)),
            ("non_saturated", f64::from(a.non_saturated)),
            ("avg_spare_kv", a.avg_spare_kv),
            ("avg_spare_queue", a.avg_spare_queue),
            ("pending", f64::from(pending)),
            ("scale_up", if scale_up { 1.0 } else { 0.0 }),
        ];
        let mut why = crate::why::Why::default();
        let replicas = if scale_up {
            if pending > 0 {
                why.push(crate::why::Rule::PendingReplicas { pending });
                why.raw = Some(ready.saturating_add(1));
                current
            } else {
                ready.saturating_add(1)
            }
        } else if a.non_saturated >= MIN_NON_SATURATED_FOR_SCALE_DOWN {
            let (kv, queue) = self.spares_after_removing_one(&a);
            inputs.push(("spare_kv_after_scale_down", kv));
            inputs.push(("spare_queue_after_scale_down", queue));
            if kv >= c.kv_spare_trigger && queue >= c.queue_spare_trigger {
                ready.saturating_sub(1).max(1)
            } else {
                current
            }
        } else {
            current
        };
        why.raw.get_or_insert(replicas);
        Recommendation {
            replicas,
            inputs,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PodObservation;

    fn pods(peaks: &[(f64, f64)]) -> Vec<PodObservation> {
        peaks
            .iter()
            .map(|&(kv_usage, waiting)| PodObservation {
                ready: true,
                age: Duration::from_secs(600),
                ready_since: Some(Duration::from_secs(600)),
                peak: Some(PodPeak { kv_usage, waiting }),
                ..PodObservation::default()
            })
            .collect()
    }

    fn decide(current: u32, ready: u32, peaks: &[(f64, f64)]) -> Recommendation {
        let mut policy = Saturation::new(SaturationConfig::default());
        policy.recommend(
            Duration::from_secs(30),
            &Observation {
                current_replicas: current,
                ready_replicas: ready,
                pods: pods(peaks),
                ..Observation::default()
            },
        )
    }

    fn input(r: &Recommendation, name: &str) -> f64 {
        r.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn defaults_are_the_configmap_and_validate() {
        let c = SaturationConfig::default();
        assert_eq!(
            (
                c.kv_cache_threshold,
                c.queue_length_threshold,
                c.kv_spare_trigger,
                c.queue_spare_trigger
            ),
            (0.8, 5.0, 0.1, 3.0)
        );
        assert_eq!(c.validate(), Ok(()));
        for (bad, field) in [
            (
                SaturationConfig {
                    kv_cache_threshold: 1.5,
                    ..c.clone()
                },
                "kv_cache_threshold",
            ),
            (
                SaturationConfig {
                    kv_spare_trigger: 0.8,
                    ..c.clone()
                },
                "kv_spare_trigger",
            ),
            (
                SaturationConfig {
                    queue_spare_trigger: f64::NAN,
                    ..c.clone()
                },
                "queue_spare_trigger",
            ),
        ] {
            assert_eq!(bad.validate().map_err(|e| e.field), Err(field));
        }
    }

    #[test]
    fn scales_up_on_kv() {
        // Pod 0 saturated (0.85 ≥ 0.80). Pods 1 and 2: spare kv 0.80−0.75 = 0.05 and
        // 0.80−0.70 = 0.10, average 0.075 < 0.1; spare queue 5−1 = 4 and 5−0 = 5, average 4.5.
        let r = decide(3, 3, &[(0.85, 0.0), (0.75, 1.0), (0.70, 0.0)]);
        assert_eq!(r.replicas, 4);
        assert!(close(input(&r, "avg_spare_kv"), 0.075));
        assert!(close(input(&r, "avg_spare_queue"), 4.5));
        assert_eq!(input(&r, "saturated"), 1.0);
    }

    #[test]
    fn scales_up_on_queue() {
        // Spare kv (0.80−0.30 + 0.80−0.40)/2 = 0.45, ample; spare queue (5−3 + 5−2)/2 = 2.5 < 3.
        let r = decide(2, 2, &[(0.30, 3.0), (0.40, 2.0)]);
        assert_eq!(r.replicas, 3);
        assert!(close(input(&r, "avg_spare_kv"), 0.45));
        assert!(close(input(&r, "avg_spare_queue"), 2.5));
    }

    #[test]
    fn every_replica_saturated_means_no_spare_and_scale_up() {
        let r = decide(2, 2, &[(0.9, 0.0), (0.1, 7.0)]);
        assert_eq!(r.replicas, 3);
        assert_eq!(input(&r, "avg_spare_kv"), 0.0);
        assert_eq!(input(&r, "non_saturated"), 0.0);
    }

    #[test]
    fn scales_down_when_the_rest_keeps_its_spare() {
        // Three pods at kv 0.2, waiting 0: average load kv 0.2, queue 0. Without one, ×3/2:
        // kv 0.3 → spare 0.5 ≥ 0.1; queue 0 → spare 5 ≥ 3.
        let r = decide(3, 3, &[(0.2, 0.0), (0.2, 0.0), (0.2, 0.0)]);
        assert_eq!(r.replicas, 2);
        assert!(close(input(&r, "spare_kv_after_scale_down"), 0.5));
        assert!(close(input(&r, "spare_queue_after_scale_down"), 5.0));
    }

    #[test]
    fn holds_when_removing_one_would_break_a_trigger() {
        // Two pods at kv 0.4 and 0.5: spare 0.35 on average, no scale-up. Load 0.45 ×2/1 = 0.9
        // → spare −0.1 < 0.1: not safe. Queue: waiting 1 and 0 → load 0.5 → 1.0 → spare 4 ≥ 3.
        let r = decide(2, 2, &[(0.4, 1.0), (0.5, 0.0)]);
        assert_eq!(r.replicas, 2);
        assert!(close(input(&r, "avg_spare_kv"), 0.35));
        assert!(close(input(&r, "spare_kv_after_scale_down"), -0.1));
        assert!(close(input(&r, "spare_queue_after_scale_down"), 4.0));
        // A single non-saturated replica is never removed (needs 2).
        let r = decide(1, 1, &[(0.0, 0.0)]);
        assert_eq!(r.replicas, 1);
    }

    #[test]
    fn no_scale_up_while_replicas_are_pending() {
        // Average spare kv (0.01 + 0.02)/2 = 0.015 < 0.1 asks for a replica, but spec 4 > ready
        // 2: two are still starting, so hold at 4 rather than cascade.
        let r = decide(4, 2, &[(0.79, 0.0), (0.78, 0.0)]);
        assert_eq!(r.replicas, 4);
        assert_eq!(input(&r, "pending"), 2.0);
        assert_eq!(input(&r, "scale_up"), 1.0);
        // Once ready, the same load scales up from the ready count.
        assert_eq!(decide(2, 2, &[(0.79, 0.0), (0.78, 0.0)]).replicas, 3);
    }

    #[test]
    fn unready_pods_do_not_count() {
        let mut obs_pods = pods(&[(0.2, 0.0), (0.2, 0.0), (0.2, 0.0)]);
        obs_pods[2].ready = false;
        let mut policy = Saturation::new(SaturationConfig::default());
        let r = policy.recommend(
            Duration::from_secs(30),
            &Observation {
                current_replicas: 3,
                ready_replicas: 2,
                pods: obs_pods,
                ..Observation::default()
            },
        );
        // Two pods at 0.2: load ×2 = 0.4 → spare 0.4 ≥ 0.1; scale down to ready − 1 = 1, as
        // WVA does: only scale-up skips a variant with pending replicas.
        assert_eq!(input(&r, "replicas_seen"), 2.0);
        assert_eq!(r.replicas, 1);
    }

    #[test]
    fn the_actuating_hpa_stabilizes_the_analyzer() {
        // Defaults: a 240 s window. Saturated at 30 s (analyzer: 3), idle from 60 s (analyzer:
        // 1). The rise to 3 applies at once (the window's lowest is 3); the fall waits until the
        // 3 has left the window, 240 s later.
        let mut policy = Saturation::new(SaturationConfig::default());
        let observe = |current: u32, peaks: &[(f64, f64)]| Observation {
            current_replicas: current,
            ready_replicas: current,
            pods: pods(peaks),
            ..Observation::default()
        };
        let busy = [(0.85, 0.0), (0.9, 0.0)];
        let idle = [(0.05, 0.0), (0.05, 0.0), (0.05, 0.0)];
        let r = policy.recommend(Duration::from_secs(30), &observe(2, &busy));
        assert_eq!(r.replicas, 3);
        for t in (60..270).step_by(30) {
            let r = policy.recommend(Duration::from_secs(t), &observe(3, &idle));
            assert_eq!(r.replicas, 3, "held at {t} s");
        }
        let r = policy.recommend(Duration::from_secs(270), &observe(3, &idle));
        assert_eq!(r.replicas, 2, "the 3 left the window");
    }
}
