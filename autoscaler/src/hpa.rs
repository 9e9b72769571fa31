//! Kubernetes HPA, autoscaling/v2 (`pkg/controller/podautoscaler/{replica_calculator,
//! horizontal}.go`): every 15 s, the usage ratio over ready pods with the missing-metric and
//! unready-pod rules, tolerance 0.1, then either the legacy normalization (5-minute downscale
//! stabilization, scale-up capped at max(2·current, 4)) or `behavior` (stabilization windows and
//! Pods/Percent rate policies over their periods, selectPolicy Max/Min/Disabled).
//!
//! Pod phases: a pod that is not ready counts as Pending (the simulator does not separate a
//! container pulling its image from one loading its model), so it is "unready" for every metric.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{MetricSpec, Observation, PodMetricKind, Recommendation, ReplicaBounds, ScalingPolicy};

/// What the HPA scales on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HpaMetric {
    /// A per-pod metric (`type: Pods`, or KEDA's per-pod value) with an average-value target.
    PodsAverageValue {
        /// In-flight requests or requests per second.
        kind: PodMetricKind,
        /// Target average per pod.
        target: f64,
    },
    /// CPU (`type: Resource`) with a utilization target (0.6 = 60 % of the request).
    CpuUtilization {
        /// Target fraction of the CPU request.
        target: f64,
    },
    /// An external total (`type: External`, `AverageValue` target, as KEDA uses): total in
    /// flight across the API, averaged over `window`, divided by the per-replica target.
    ExternalAverageValue {
        /// Target per replica.
        target: f64,
        /// Averaging window of the external query.
        window: Duration,
    },
}

/// Which of several policies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The largest change.
    Max,
    /// The smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// A rate policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RatePolicy {
    /// At most `value` pods per `period`.
    Pods {
        /// Pods.
        value: u32,
        /// Period.
        period: Duration,
    },
    /// At most `value` percent per `period`.
    Percent {
        /// Percent.
        value: u32,
        /// Period.
        period: Duration,
    },
}

impl RatePolicy {
    fn period(&self) -> Duration {
        match self {
            RatePolicy::Pods { period, .. } | RatePolicy::Percent { period, .. } => *period,
        }
    }
}

/// `behavior.scaleUp` / `behavior.scaleDown`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization_window: Duration,
    /// `selectPolicy`.
    pub select_policy: SelectPolicy,
    /// `policies`.
    pub policies: Vec<RatePolicy>,
}

impl ScalingRules {
    /// Upstream default scale-up rules: no stabilization, 4 pods or 100 % per 15 s, Max.
    pub fn default_scale_up() -> Self {
        Self {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                RatePolicy::Pods {
                    value: 4,
                    period: Duration::from_secs(15),
                },
                RatePolicy::Percent {
                    value: 100,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Upstream default scale-down rules: 5-minute stabilization, 100 % per 15 s, Max.
    pub fn default_scale_down() -> Self {
        Self {
            stabilization_window: Duration::from_secs(300),
            select_policy: SelectPolicy::Max,
            policies: vec![RatePolicy::Percent {
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }
}

/// `spec.behavior`; `None` sides take the upstream defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// `scaleUp`.
    pub scale_up: ScalingRules,
    /// `scaleDown`.
    pub scale_down: ScalingRules,
}

/// HPA settings with controller defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// `minReplicas` (≥ 1) / `maxReplicas`.
    pub bounds: ReplicaBounds,
    /// The metric and its target.
    pub metric: HpaMetric,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: Duration,
    /// How stale per-pod metrics are when read (metrics pipeline lag).
    pub metrics_lag: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (5 min), used without behavior.
    pub downscale_stabilization: Duration,
    /// `spec.behavior`.
    pub behavior: Option<Behavior>,
}

impl HpaConfig {
    /// Controller defaults for a metric.
    pub fn new(metric: HpaMetric, bounds: ReplicaBounds) -> Self {
        Self {
            bounds,
            metric,
            tolerance: 0.1,
            sync_period: Duration::from_secs(15),
            metrics_lag: Duration::ZERO,
            downscale_stabilization: Duration::from_secs(300),
            behavior: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at: Duration,
    change: u32,
}

/// The HPA controller for one target.
#[derive(Debug, Clone)]
pub struct Hpa {
    config: HpaConfig,
    /// Pre-normalization recommendations with their times.
    recommendations: VecDeque<(Duration, u32)>,
    scale_up_events: VecDeque<ScaleEvent>,
    scale_down_events: VecDeque<ScaleEvent>,
}

/// The replica count the metric asks for, or `None` when it cannot be computed (no metrics).
pub fn replicas_for_pods(
    current: u32,
    pods: &[crate::PodObservation],
    metric: HpaMetric,
    tolerance: f64,
) -> Option<u32> {
    // Per pod: (usage, request) in milli-units; utilization uses requests, averages do not.
    let (target_milli, utilization) = match metric {
        HpaMetric::PodsAverageValue { target, .. } => (target * 1000.0, false),
        HpaMetric::CpuUtilization { target } => (target * 100.0, true),
        HpaMetric::ExternalAverageValue { .. } => return None,
    };
    let mut ready: Vec<(f64, f64)> = Vec::new();
    let mut unready = 0usize;
    let mut missing: Vec<f64> = Vec::new();
    for p in pods {
        if !p.ready {
            unready += 1;
            continue;
        }
        let request = (p.request * 1000.0).round();
        match p.value {
            None => missing.push(request),
            Some(v) => {
                let usage = if utilization {
                    (v * p.request * 1000.0).round()
                } else {
                    (v * 1000.0).round()
                };
                ready.push((usage, request));
            }
        }
    }
    if ready.is_empty() {
        return None;
    }
    let ratio_of = |values: &[(f64, f64)]| {
        let usage: f64 = values.iter().map(|v| v.0).sum();
        if utilization {
            let requests: f64 = values.iter().map(|v| v.1).sum();
            (100.0 * usage / requests).trunc() / target_milli
        } else {
            (usage / values.len() as f64).trunc() / target_milli
        }
    };
    let ratio = ratio_of(&ready);
    let scale_up_with_unready = unready > 0 && ratio > 1.0;
    let within = |r: f64| (1.0 - r).abs() <= tolerance;
    if !scale_up_with_unready && missing.is_empty() {
        if within(ratio) {
            return Some(current);
        }
        return Some((ratio * ready.len() as f64).ceil() as u32);
    }
    let mut all = ready.clone();
    for request in &missing {
        let assumed = if ratio < 1.0 {
            if utilization {
                // max(100 %, target) of the request.
                request * (target_milli / 100.0).max(1.0)
            } else {
                target_milli
            }
        } else {
            0.0
        };
        all.push((assumed, *request));
    }
    if scale_up_with_unready {
        let request = ready.iter().map(|v| v.1).sum::<f64>() / ready.len() as f64;
        all.extend(std::iter::repeat_n((0.0, request), unready));
    }
    let new_ratio = ratio_of(&all);
    if within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Some(current);
    }
    let new = (new_ratio * all.len() as f64).ceil() as u32;
    if (new_ratio < 1.0 && new > current) || (new_ratio > 1.0 && new < current) {
        return Some(current);
    }
    Some(new)
}

/// `AverageValue` on an external total: within tolerance keep current, else ceil(total/target).
pub fn replicas_for_external_average(current: u32, total: f64, target: f64, tolerance: f64) -> u32 {
    let ratio = total / (target * f64::from(current.max(1)));
    if (1.0 - ratio).abs() <= tolerance {
        current
    } else {
        (total / target).ceil() as u32
    }
}

/// `Value` on an external metric: `ceil(ratio × ready)`, or `ceil(ratio)` at zero.
pub fn replicas_for_external_value(
    current: u32,
    ready: u32,
    value: f64,
    target: f64,
    tolerance: f64,
) -> u32 {
    let ratio = value / target;
    if current == 0 {
        return ratio.ceil() as u32;
    }
    if (1.0 - ratio).abs() <= tolerance {
        current
    } else {
        (ratio * f64::from(ready)).ceil() as u32
    }
}

fn change_in_period(events: &VecDeque<ScaleEvent>, now: Duration, period: Duration) -> u32 {
    events
        .iter()
        .filter(|e| e.at > now.saturating_sub(period))
        .map(|e| e.change)
        .sum()
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(
    current: u32,
    events: &VecDeque<ScaleEvent>,
    rules: &ScalingRules,
    now: Duration,
) -> u32 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i64::MAX, i64::min),
        SelectPolicy::Max => (i64::MIN, i64::max),
    };
    for policy in &rules.policies {
        let start = i64::from(current) - i64::from(change_in_period(events, now, policy.period()));
        let proposed = match policy {
            RatePolicy::Pods { value, .. } => start + i64::from(*value),
            RatePolicy::Percent { value, .. } => {
                (start as f64 * (1.0 + f64::from(*value) / 100.0)).ceil() as i64
            }
        };
        result = pick(result, proposed);
    }
    result.clamp(0, i64::from(u32::MAX)) as u32
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(
    current: u32,
    events: &VecDeque<ScaleEvent>,
    rules: &ScalingRules,
    now: Duration,
) -> u32 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i64::MIN, i64::max),
        SelectPolicy::Max => (i64::MAX, i64::min),
    };
    for policy in &rules.policies {
        let start = i64::from(current) + i64::from(change_in_period(events, now, policy.period()));
        let proposed = match policy {
            RatePolicy::Pods { value, .. } => start - i64::from(*value),
            RatePolicy::Percent { value, .. } => {
                (start as f64 * (1.0 - f64::from(*value) / 100.0)) as i64
            }
        };
        result = pick(result, proposed);
    }
    result.clamp(0, i64::from(u32::MAX)) as u32
}

impl Hpa {
    /// A fresh controller.
    pub fn new(config: HpaConfig) -> Self {
        Self {
            config,
            recommendations: VecDeque::new(),
            scale_up_events: VecDeque::new(),
            scale_down_events: VecDeque::new(),
        }
    }

    /// Without `behavior`: max of the recommendations in the downscale window, then clamp to
    /// [min, min(max, max(2·current, 4))].
    fn normalize(&mut self, now: Duration, current: u32, desired: u32) -> u32 {
        let window = self.config.downscale_stabilization;
        self.recommendations.push_back((now, desired));
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t + window < now)
        {
            self.recommendations.pop_front();
        }
        let stabilized = self
            .recommendations
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(desired);
        let b = self.config.bounds;
        let cap = b.max_replicas.min((2 * current).max(4));
        stabilized.max(b.min_replicas).min(cap.max(b.min_replicas))
    }

    /// With `behavior`: per-direction stabilization, then the rate limits.
    fn normalize_with_behavior(
        &mut self,
        now: Duration,
        current: u32,
        desired: u32,
        behavior: &Behavior,
    ) -> u32 {
        let (up_w, down_w) = (
            behavior.scale_up.stabilization_window,
            behavior.scale_down.stabilization_window,
        );
        let mut up = desired;
        let mut down = desired;
        for (t, r) in &self.recommendations {
            if *t + up_w > now {
                up = up.min(*r);
            }
            if *t + down_w > now {
                down = down.max(*r);
            }
        }
        let mut stabilized = current;
        if stabilized < up {
            stabilized = up;
        }
        if stabilized > down {
            stabilized = down;
        }
        self.recommendations.push_back((now, desired));
        let keep = up_w.max(down_w);
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t + keep < now)
        {
            self.recommendations.pop_front();
        }
        let b = self.config.bounds;
        let mut result = stabilized;
        if stabilized > current {
            let limit = scale_up_limit(current, &self.scale_up_events, &behavior.scale_up, now)
                .max(current);
            result = stabilized.min(b.max_replicas.min(limit));
        } else if stabilized < current {
            let limit =
                scale_down_limit(current, &self.scale_down_events, &behavior.scale_down, now)
                    .min(current);
            result = stabilized.max(b.min_replicas.max(limit));
        }
        result.clamp(b.min_replicas, b.max_replicas)
    }

    fn record_scale(&mut self, now: Duration, from: u32, to: u32) {
        let Some(behavior) = &self.config.behavior else {
            return;
        };
        let longest = |r: &ScalingRules| {
            r.policies
                .iter()
                .map(|p| p.period())
                .max()
                .unwrap_or_default()
        };
        let (up_keep, down_keep) = (longest(&behavior.scale_up), longest(&behavior.scale_down));
        if to > from {
            self.scale_up_events.push_back(ScaleEvent {
                at: now,
                change: to - from,
            });
        } else if to < from {
            self.scale_down_events.push_back(ScaleEvent {
                at: now,
                change: from - to,
            });
        }
        self.scale_up_events.retain(|e| e.at + up_keep > now);
        self.scale_down_events.retain(|e| e.at + down_keep > now);
    }
}

impl ScalingPolicy for Hpa {
    fn name(&self) -> &'static str {
        "hpa"
    }

    fn tick_interval(&self) -> Duration {
        self.config.sync_period
    }

    fn metric_spec(&self) -> MetricSpec {
        match self.config.metric {
            HpaMetric::PodsAverageValue { kind, .. } => MetricSpec::PerPod {
                kind,
                lag: self.config.metrics_lag,
            },
            HpaMetric::CpuUtilization { .. } => MetricSpec::PerPod {
                kind: PodMetricKind::CpuUtilization,
                lag: self.config.metrics_lag,
            },
            HpaMetric::ExternalAverageValue { window, .. } => MetricSpec::InFlightWindowAverage {
                sample_interval: Duration::from_secs(1),
                window,
            },
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.bounds.min_replicas.max(1)
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let b = self.config.bounds;
        let current = obs.current_replicas;
        if current == 0 && b.min_replicas != 0 {
            return Recommendation {
                replicas: 0,
                inputs: vec![("scaling_disabled", 1.0)],
            };
        }
        if current > b.max_replicas {
            return Recommendation::plain(b.max_replicas);
        }
        if current < b.min_replicas {
            return Recommendation::plain(b.min_replicas);
        }
        let desired = match self.config.metric {
            HpaMetric::ExternalAverageValue { target, .. } => obs.metric.map(|total| {
                replicas_for_external_average(current, total, target, self.config.tolerance)
            }),
            metric => replicas_for_pods(current, &obs.pods, metric, self.config.tolerance),
        };
        let Some(desired) = desired else {
            return Recommendation {
                replicas: current,
                inputs: vec![("no_metric", 1.0)],
            };
        };
        let replicas = match self.config.behavior.clone() {
            Some(behavior) => self.normalize_with_behavior(now, current, desired, &behavior),
            None => self.normalize(now, current, desired),
        };
        self.record_scale(now, current, replicas);
        Recommendation {
            replicas,
            inputs: vec![("metric_replicas", f64::from(desired))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PodObservation;
    use proptest::prelude::*;

    fn pod(ready: bool, value: Option<f64>, request: f64) -> PodObservation {
        PodObservation {
            ready,
            value,
            age: Duration::from_secs(3600),
            request,
            peak: None,
        }
    }

    /// CPU pods: usage in millicores with a 1-core request.
    fn cpu(values: &[Option<f64>]) -> Vec<PodObservation> {
        values
            .iter()
            .map(|v| pod(true, v.map(|m| m / 1000.0), 1.0))
            .collect()
    }

    fn util(target_pct: f64) -> HpaMetric {
        HpaMetric::CpuUtilization {
            target: target_pct / 100.0,
        }
    }

    #[test]
    fn replica_calculator_vectors() {
        let c = |cur, pods: &[PodObservation], m| replicas_for_pods(cur, pods, m, 0.1);
        // TestReplicaCalcScaleUp: 300, 500, 700 m at 30 % → 5.
        assert_eq!(
            c(
                3,
                &cpu(&[Some(300.0), Some(500.0), Some(700.0)]),
                util(30.0)
            ),
            Some(5)
        );
        // TestReplicaCalcScaleUpUnreadyLessScale: pod 0 unready → 4.
        let mut pods = cpu(&[Some(300.0), Some(500.0), Some(700.0)]);
        pods[0].ready = false;
        assert_eq!(c(3, &pods, util(30.0)), Some(4));
        // TestReplicaCalcScaleUpUnreadyNoScale: pods 1 and 2 unready → 3.
        let mut pods = cpu(&[Some(400.0), Some(500.0), Some(700.0)]);
        pods[1].ready = false;
        pods[2].ready = false;
        assert_eq!(c(3, &pods, util(30.0)), Some(3));
        // TestReplicaCalcScaleDown: 100, 300, 500, 250, 250 at 50 % → 3.
        assert_eq!(
            c(
                5,
                &cpu(&[
                    Some(100.0),
                    Some(300.0),
                    Some(500.0),
                    Some(250.0),
                    Some(250.0)
                ]),
                util(50.0)
            ),
            Some(3)
        );
        // TestReplicaCalcTolerance: requests 0.9/1/1.1, usage 1010/1030/1020 at 100 % → 3.
        let pods = vec![
            pod(true, Some(1010.0 / 900.0), 0.9),
            pod(true, Some(1030.0 / 1000.0), 1.0),
            pod(true, Some(1020.0 / 1100.0), 1.1),
        ];
        assert_eq!(c(3, &pods, util(100.0)), Some(3));
        // TestReplicaCalcMissingMetrics: 4 pods, metrics 400 and 95 only, 100 % → 3.
        assert_eq!(
            c(4, &cpu(&[Some(400.0), Some(95.0), None, None]), util(100.0)),
            Some(3)
        );
        // TestReplicaCalcSuperfluousMetrics: 4000, 9500, 3000, 7000 at 100 % → 24.
        assert_eq!(
            c(
                4,
                &cpu(&[Some(4000.0), Some(9500.0), Some(3000.0), Some(7000.0)]),
                util(100.0)
            ),
            Some(24)
        );
        // TestReplicaCalcScaleUpCM (Pods metric): 20, 10, 30 per pod, target 15 → 4.
        let pods: Vec<PodObservation> = [20.0, 10.0, 30.0]
            .iter()
            .map(|v| pod(true, Some(*v), 1.0))
            .collect();
        let m = HpaMetric::PodsAverageValue {
            kind: PodMetricKind::Concurrency,
            target: 15.0,
        };
        assert_eq!(c(3, &pods, m), Some(4));
        // TestReplicaCalcScaleDownCMExternal (Value): total 8600, target 14334, cur 5 → 3.
        assert_eq!(replicas_for_external_value(5, 5, 8600.0, 14334.0, 0.1), 3);
        // TestReplicaCalcScaleUpPerPodCMExternal (AverageValue): 8600 / 2150 per pod → 4.
        assert_eq!(replicas_for_external_average(3, 8600.0, 2150.0, 0.1), 4);
    }

    fn rules(policies: Vec<RatePolicy>, select: SelectPolicy) -> ScalingRules {
        ScalingRules {
            stabilization_window: Duration::ZERO,
            select_policy: select,
            policies,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn scaling_rules_vectors() {
        let none = VecDeque::new();
        let now = secs(1000);
        // "default behavior": 10 → 50 is limited to 20.
        assert_eq!(
            scale_up_limit(10, &none, &ScalingRules::default_scale_up(), now),
            20
        );
        // pods 100/60 + percent 100/60: 10 → 110.
        let up = rules(
            vec![
                RatePolicy::Pods {
                    value: 100,
                    period: secs(60),
                },
                RatePolicy::Percent {
                    value: 100,
                    period: secs(60),
                },
            ],
            SelectPolicy::Max,
        );
        assert_eq!(scale_up_limit(10, &none, &up, now), 110);
        // scaleDown pods 20/60 + percent 1/60: 100 → 80.
        let down = rules(
            vec![
                RatePolicy::Pods {
                    value: 20,
                    period: secs(60),
                },
                RatePolicy::Percent {
                    value: 1,
                    period: secs(60),
                },
            ],
            SelectPolicy::Max,
        );
        assert_eq!(scale_down_limit(100, &none, &down, now), 80);
        // events [1, 5, 9] in the last 120 s, pods 150/120: 100 → 235.
        let events: VecDeque<ScaleEvent> = [1, 5, 9]
            .iter()
            .enumerate()
            .map(|(i, c)| ScaleEvent {
                at: now - secs(100 - 10 * i as u64),
                change: *c,
            })
            .collect();
        let up = rules(
            vec![RatePolicy::Pods {
                value: 150,
                period: secs(120),
            }],
            SelectPolicy::Max,
        );
        assert_eq!(scale_up_limit(100, &events, &up, now), 235);
        // selectPolicy Min, pods 2/60 + percent 50/60, from 5 → 3.
        let down = rules(
            vec![
                RatePolicy::Pods {
                    value: 2,
                    period: secs(60),
                },
                RatePolicy::Percent {
                    value: 50,
                    period: secs(60),
                },
            ],
            SelectPolicy::Min,
        );
        assert_eq!(scale_down_limit(5, &none, &down, now), 3);
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
            pods: (0..cur).map(|_| pod(true, Some(per_pod), 1.0)).collect(),
            ..Observation::default()
        }
    }

    #[test]
    fn normalize_stabilizes_downscale_for_five_minutes() {
        // TestNormalizeDesiredReplicas "stabilize": 4 at −2 min, 5 at −1 min, desired 3 → 5.
        let mut h = hpa(1, 100, None);
        h.recommendations.push_back((secs(880), 4));
        h.recommendations.push_back((secs(940), 5));
        assert_eq!(h.normalize(secs(1000), 5, 3), 5);
        // Scale-up cap without behavior: max(2·cur, 4).
        let mut h = hpa(1, 100, None);
        assert_eq!(h.recommend(secs(0), &obs(3, 100.0)).replicas, 6);
        let mut h = hpa(1, 100, None);
        assert_eq!(h.recommend(secs(0), &obs(1, 100.0)).replicas, 4);
    }

    #[test]
    fn holds_for_five_minutes_before_scaling_down() {
        let mut h = hpa(1, 100, None);
        assert_eq!(h.recommend(secs(0), &obs(10, 10.0)).replicas, 10);
        let mut t = 15;
        while t < 300 {
            assert_eq!(h.recommend(secs(t), &obs(10, 2.0)).replicas, 10, "t = {t}");
            t += 15;
        }
        assert_eq!(h.recommend(secs(315), &obs(10, 2.0)).replicas, 2);
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
}
