//! Kubernetes HPA, autoscaling/v2, as the kube-controller-manager of a named release decides
//! (`pkg/controller/podautoscaler/{replica_calculator,horizontal}.go`, followed up to v1.35):
//! every 15 s each metric proposes a replica count (the [`calculator`]), the HPA takes the
//! largest valid proposal, then normalizes it ([`behavior`]): the legacy downscale
//! stabilization with its `max(2·current, 4)` cap, or `spec.behavior`'s stabilization windows
//! and Pods/Percent rate policies. [`KubernetesVersion`] keeps older releases' rules where they
//! changed.
//!
//! Pod phases: upstream sets Pending pods aside for every metric, applies readiness and the
//! CPU initialization period to CPU only, and ignores Failed and terminating pods; the
//! [`PodObservation`] carries all of that. The simulator reports a pod that is not ready and
//! reports no metric as Pending, one that is not ready but reports as Running.

pub mod behavior;
pub mod calculator;
mod why;

use std::collections::VecDeque;
use std::time::Duration;

use crate::{
    InvalidSetting, MetricSpec, Observation, PodMetricKind, PodObservation, PodPhase,
    Recommendation, ReplicaBounds, ScalingPolicy,
};
use behavior::{PeriodStart, ScaleEvent, TimedRecommendation};
pub use calculator::{CalculatorSettings, MetricError, PodTarget, Tolerances};

/// One entry of `spec.metrics`: what the HPA scales on and its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HpaMetric {
    /// `type: Pods` with an `AverageValue` target (a per-pod metric).
    PodsAverageValue {
        /// In-flight requests, requests per second, or a vLLM signal.
        kind: PodMetricKind,
        /// Target average per pod.
        target: f64,
    },
    /// `type: Resource`, cpu, `Utilization` target (0.6 = 60 % of the request).
    CpuUtilization {
        /// Target fraction of the CPU request.
        target: f64,
    },
    /// `type: Resource`, cpu, `AverageValue` target in cores per pod.
    CpuAverageValue {
        /// Target cores per pod.
        target: f64,
    },
    /// `type: ContainerResource`, cpu, `Utilization`: the simulated pods have one container,
    /// so this is the pod's CPU (same rules as [`HpaMetric::CpuUtilization`]).
    ContainerCpuUtilization {
        /// Target fraction of the container's CPU request.
        target: f64,
    },
    /// `type: Object` with a `Value` target: the simulator's object metric is the API's total
    /// in flight averaged over `window`.
    ObjectValue {
        /// Target value of the object's metric.
        target: f64,
        /// Averaging window of the metric's query.
        window: Duration,
    },
    /// `type: Object` with an `AverageValue` target (per replica).
    ObjectAverageValue {
        /// Target per replica.
        target: f64,
        /// Averaging window of the metric's query.
        window: Duration,
    },
    /// `type: External` with a `Value` target.
    ExternalValue {
        /// Target value of the external metric.
        target: f64,
        /// Averaging window of the metric's query.
        window: Duration,
    },
    /// `type: External` with an `AverageValue` target (per replica), as KEDA creates it: total
    /// in flight across the API, averaged over `window`, over the per-replica target.
    ExternalAverageValue {
        /// Target per replica.
        target: f64,
        /// Averaging window of the external query.
        window: Duration,
    },
}

impl HpaMetric {
    /// The target, for validation and reports.
    pub fn target(&self) -> f64 {
        match *self {
            HpaMetric::PodsAverageValue { target, .. }
            | HpaMetric::CpuUtilization { target }
            | HpaMetric::CpuAverageValue { target }
            | HpaMetric::ContainerCpuUtilization { target }
            | HpaMetric::ObjectValue { target, .. }
            | HpaMetric::ObjectAverageValue { target, .. }
            | HpaMetric::ExternalValue { target, .. }
            | HpaMetric::ExternalAverageValue { target, .. } => target,
        }
    }

    /// Object and External metrics are the only ones that allow `minReplicas: 0`
    /// (HPAScaleToZero), since they have a value without any pod.
    pub fn is_object_or_external(&self) -> bool {
        matches!(
            self,
            HpaMetric::ObjectValue { .. }
                | HpaMetric::ObjectAverageValue { .. }
                | HpaMetric::ExternalValue { .. }
                | HpaMetric::ExternalAverageValue { .. }
        )
    }
}

/// Which of several rate policies wins (`selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The largest change.
    Max,
    /// The smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// A rate policy (`HPAScalingPolicy`).
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
    /// `periodSeconds`.
    pub fn period(&self) -> Duration {
        match self {
            RatePolicy::Pods { period, .. } | RatePolicy::Percent { period, .. } => *period,
        }
    }
}

/// `behavior.scaleUp` / `behavior.scaleDown` (`HPAScalingRules`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization_window: Duration,
    /// `selectPolicy`.
    pub select_policy: SelectPolicy,
    /// `policies`.
    pub policies: Vec<RatePolicy>,
    /// `tolerance` (KEP-4951, beta and on by default in 1.35); `None`: the cluster-wide flag.
    pub tolerance: Option<f64>,
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
            tolerance: None,
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
            tolerance: None,
        }
    }

    fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(RatePolicy::period)
            .max()
            .unwrap_or_default()
    }
}

/// `spec.behavior`.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// `scaleUp`.
    pub scale_up: ScalingRules,
    /// `scaleDown`.
    pub scale_down: ScalingRules,
}

/// The Kubernetes release whose HPA rules apply, so that a simulation can match the cluster it
/// models where the rules changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubernetesVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (35 for 1.35).
    pub minor: u32,
}

impl KubernetesVersion {
    /// The release this module follows (v1.35).
    pub const CURRENT: KubernetesVersion = KubernetesVersion {
        major: 1,
        minor: 35,
    };

    /// `1.minor`.
    pub const fn v1(minor: u32) -> Self {
        Self { major: 1, minor }
    }

    /// Parse `"1.35"` (a patch level, `"1.35.2"`, or a leading `v` are accepted).
    pub fn parse(text: &str) -> Result<Self, InvalidSetting> {
        let bad = || {
            InvalidSetting::new(
                "kubernetes_version",
                format!("expected \"MAJOR.MINOR\" such as \"1.35\", found \"{text}\""),
            )
        };
        let t = text.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if let Some(patch) = parts.next() {
            patch.parse::<u32>().map_err(|_| bad())?;
        }
        if parts.next().is_some() || major != 1 {
            return Err(bad());
        }
        Ok(Self { major, minor })
    }

    /// kubernetes/kubernetes#109058 (first in v1.26): rate limits count the replicas at the
    /// period start from the events of both directions.
    pub fn period_start(self) -> PeriodStart {
        if self >= Self::v1(26) {
            PeriodStart::BothDirections
        } else {
            PeriodStart::SameDirection
        }
    }

    /// v1.28: a Pods metric fills in missing pods on a scale-up only when the ratio is > 1.
    pub fn missing_pods_only_above_one(self) -> bool {
        self >= Self::v1(28)
    }

    /// KEP-4951: `behavior.*.tolerance` exists from v1.33 (alpha; beta and on in v1.35).
    pub fn has_configurable_tolerance(self) -> bool {
        self >= Self::v1(33)
    }
}

impl std::fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// HPA settings with controller defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// `minReplicas` / `maxReplicas` (0 only with an Object or External metric).
    pub bounds: ReplicaBounds,
    /// `spec.metrics`: the HPA scales to the largest of their proposals. The first decides
    /// which metric pipeline the caller builds ([`ScalingPolicy::metric_spec`]).
    pub metrics: Vec<HpaMetric>,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: Duration,
    /// How stale per-pod metrics are when read (metrics pipeline lag).
    pub metrics_lag: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (5 min), used without behavior.
    pub downscale_stabilization: Duration,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min).
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
    pub initial_readiness_delay: Duration,
    /// `spec.behavior`.
    pub behavior: Option<Behavior>,
    /// The release whose rules apply.
    pub kubernetes_version: KubernetesVersion,
}

impl HpaConfig {
    /// Controller defaults for one metric.
    pub fn new(metric: HpaMetric, bounds: ReplicaBounds) -> Self {
        Self {
            bounds,
            metrics: vec![metric],
            tolerance: 0.1,
            sync_period: Duration::from_secs(15),
            metrics_lag: Duration::ZERO,
            downscale_stabilization: Duration::from_secs(300),
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
            behavior: None,
            kubernetes_version: KubernetesVersion::CURRENT,
        }
    }

    /// The first metric (the one the metric pipeline is built for).
    pub fn metric(&self) -> Option<&HpaMetric> {
        self.metrics.first()
    }

    /// Reject what the API server or the controller would reject.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.metrics.is_empty() {
            return Err(InvalidSetting::new(
                "metrics",
                "expected at least one metric",
            ));
        }
        if self
            .metrics
            .iter()
            .any(|m| !(m.target() > 0.0 && m.target().is_finite()))
        {
            return Err(InvalidSetting::new("target", "expected a target > 0"));
        }
        if self.bounds.min_replicas == 0
            && !self.metrics.iter().any(HpaMetric::is_object_or_external)
        {
            return Err(InvalidSetting::new(
                "min_replicas",
                "expected ≥ 1: minReplicas 0 (HPAScaleToZero) needs an Object or External metric",
            ));
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(InvalidSetting::new(
                "tolerance",
                format!("expected a finite number ≥ 0, found {}", self.tolerance),
            ));
        }
        if let Some(b) = &self.behavior {
            for (rules, field) in [
                (&b.scale_up, "behavior.scale_up.tolerance"),
                (&b.scale_down, "behavior.scale_down.tolerance"),
            ] {
                if let Some(t) = rules.tolerance {
                    if !(t >= 0.0 && t.is_finite()) {
                        return Err(InvalidSetting::new(
                            field,
                            format!("expected a finite number ≥ 0, found {t}"),
                        ));
                    }
                    if !self.kubernetes_version.has_configurable_tolerance() {
                        return Err(InvalidSetting::new(
                            field,
                            format!(
                                "needs kubernetes_version ≥ \"1.33\" (KEP-4951), found \"{}\"",
                                self.kubernetes_version
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The usage-ratio tolerances: `behavior`'s per-direction values where set (KEP-4951),
    /// else the cluster-wide flag.
    pub fn tolerances(&self) -> Tolerances {
        let mut t = Tolerances::both(self.tolerance);
        if let Some(b) = &self.behavior {
            if self.kubernetes_version.has_configurable_tolerance() {
                t.scale_up = b.scale_up.tolerance.unwrap_or(t.scale_up);
                t.scale_down = b.scale_down.tolerance.unwrap_or(t.scale_down);
            }
        }
        t
    }

    fn calculator(&self) -> CalculatorSettings {
        CalculatorSettings {
            tolerances: self.tolerances(),
            cpu_initialization_period: self.cpu_initialization_period,
            initial_readiness_delay: self.initial_readiness_delay,
            missing_pods_only_above_one: self.kubernetes_version.missing_pods_only_above_one(),
        }
    }
}

/// The HPA controller for one target: its recommendation log and scale events.
#[derive(Debug, Clone)]
pub struct Hpa {
    config: HpaConfig,
    /// Whether the first tick has recorded the current size as a recommendation
    /// (`recordInitialRecommendation`).
    initialized: bool,
    recommendations: VecDeque<TimedRecommendation>,
    scale_up_events: VecDeque<ScaleEvent>,
    scale_down_events: VecDeque<ScaleEvent>,
}

/// The value metric `index` reads from a pod: the first metric's is `value`, the others'
/// `extra_values`.
fn pod_value(pod: &PodObservation, index: usize) -> Option<f64> {
    if index == 0 {
        pod.value
    } else {
        pod.extra_values.get(index - 1).copied().flatten()
    }
}

fn scalar_value(obs: &Observation, index: usize) -> Option<f64> {
    if index == 0 {
        obs.metric
    } else {
        obs.extra_metrics.get(index - 1).copied().flatten()
    }
}

/// What the metrics propose: `computeReplicasForMetrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    /// The largest valid proposal (0 when none).
    pub replicas: u32,
    /// Index of the metric that made it.
    pub metric: usize,
    /// How many metrics gave no proposal.
    pub invalid: usize,
}

impl Hpa {
    /// A fresh controller (no history).
    pub fn new(config: HpaConfig) -> Self {
        Self {
            config,
            initialized: false,
            recommendations: VecDeque::new(),
            scale_up_events: VecDeque::new(),
            scale_down_events: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// The proposal of metric `index` for `current` replicas (`computeReplicasForMetric`).
    pub fn metric_replicas(
        &self,
        index: usize,
        current: u32,
        obs: &Observation,
    ) -> Result<u32, MetricError> {
        let s = self.config.calculator();
        let Some(metric) = self.config.metrics.get(index) else {
            return Err(MetricError::NoMetrics);
        };
        let pods = &obs.pods;
        let value = |p: &PodObservation| pod_value(p, index);
        match *metric {
            HpaMetric::PodsAverageValue { target, .. } => calculator::pod_metric_replicas(
                current,
                pods,
                value,
                PodTarget::AverageValue { target, cpu: false },
                &s,
            ),
            HpaMetric::CpuAverageValue { target } => calculator::pod_metric_replicas(
                current,
                pods,
                value,
                PodTarget::AverageValue { target, cpu: true },
                &s,
            ),
            HpaMetric::CpuUtilization { target }
            | HpaMetric::ContainerCpuUtilization { target } => calculator::pod_metric_replicas(
                current,
                pods,
                value,
                PodTarget::Utilization {
                    percent: (target * 100.0).round() as i64,
                },
                &s,
            ),
            HpaMetric::ObjectValue { target, .. } | HpaMetric::ExternalValue { target, .. } => {
                let usage = scalar_value(obs, index).ok_or(MetricError::NoMetrics)?;
                // getReadyPodsCount: Running and Ready pods; without a pod list, the
                // Deployment's ready count.
                let ready = if pods.is_empty() {
                    obs.ready_replicas
                } else {
                    pods.iter()
                        .filter(|p| p.phase == PodPhase::Running && p.ready)
                        .count() as u32
                };
                Ok(calculator::value_replicas(
                    current,
                    ready,
                    usage,
                    target,
                    s.tolerances,
                ))
            }
            HpaMetric::ObjectAverageValue { target, .. }
            | HpaMetric::ExternalAverageValue { target, .. } => {
                let usage = scalar_value(obs, index).ok_or(MetricError::NoMetrics)?;
                Ok(calculator::average_value_replicas(
                    current,
                    usage,
                    target,
                    s.tolerances,
                ))
            }
        }
    }

    /// `computeReplicasForMetrics`: the largest valid proposal; `None` when every metric is
    /// invalid, or some are and the valid ones would scale down (upstream then does nothing).
    pub fn propose(&self, current: u32, obs: &Observation) -> Option<Proposal> {
        let mut best = Proposal {
            replicas: 0,
            metric: 0,
            invalid: 0,
        };
        let mut any = false;
        for i in 0..self.config.metrics.len() {
            match self.metric_replicas(i, current, obs) {
                Ok(r) => {
                    if !any || r > best.replicas {
                        best.replicas = r;
                        best.metric = i;
                    }
                    any = true;
                }
                Err(_) => best.invalid += 1,
            }
        }
        if best.invalid >= self.config.metrics.len()
            || (best.invalid > 0 && best.replicas < current)
        {
            return None;
        }
        Some(best)
    }

    /// `normalizeDesiredReplicas` / `normalizeDesiredReplicasWithBehaviors`.
    /// Returns the stabilized recommendation, the normalized one and the limit that bound it.
    fn normalize(
        &mut self,
        now: Duration,
        current: u32,
        desired: u32,
    ) -> (u32, u32, behavior::Limit) {
        let b = self.config.bounds;
        match &self.config.behavior {
            None => {
                let stabilized = behavior::stabilize(
                    &mut self.recommendations,
                    now,
                    desired,
                    self.config.downscale_stabilization,
                );
                let (n, limit) = behavior::convert_with_rules(
                    current,
                    stabilized,
                    b.min_replicas,
                    b.max_replicas,
                );
                (stabilized, n, limit)
            }
            Some(beh) => {
                let stabilized = behavior::stabilize_with_behavior(
                    &mut self.recommendations,
                    now,
                    current,
                    desired,
                    beh.scale_up.stabilization_window,
                    beh.scale_down.stabilization_window,
                );
                let (n, limit) = behavior::convert_with_behavior_rate(
                    current,
                    stabilized,
                    b.min_replicas,
                    b.max_replicas,
                    &beh.scale_up,
                    &beh.scale_down,
                    &self.scale_up_events,
                    &self.scale_down_events,
                    now,
                    self.config.kubernetes_version.period_start(),
                );
                (stabilized, n, limit)
            }
        }
    }

    /// `storeScaleEvent`: only with `behavior`, whose rate policies read them.
    fn store_scale_event(&mut self, now: Duration, from: u32, to: u32) {
        let Some(b) = &self.config.behavior else {
            return;
        };
        let keep = b
            .scale_up
            .longest_period()
            .max(b.scale_down.longest_period());
        if to > from {
            self.scale_up_events.push_back(ScaleEvent {
                at: now,
                change: to - from,
            });
        } else {
            self.scale_down_events.push_back(ScaleEvent {
                at: now,
                change: from - to,
            });
        }
        self.scale_up_events.retain(|e| e.at + keep > now);
        self.scale_down_events.retain(|e| e.at + keep > now);
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
        let lag = self.config.metrics_lag;
        match self.config.metric() {
            None => MetricSpec::None,
            Some(HpaMetric::PodsAverageValue { kind, .. }) => {
                MetricSpec::PerPod { kind: *kind, lag }
            }
            Some(
                HpaMetric::CpuUtilization { .. }
                | HpaMetric::CpuAverageValue { .. }
                | HpaMetric::ContainerCpuUtilization { .. },
            ) => MetricSpec::PerPod {
                kind: PodMetricKind::CpuUtilization,
                lag,
            },
            Some(
                HpaMetric::ObjectValue { window, .. }
                | HpaMetric::ObjectAverageValue { window, .. }
                | HpaMetric::ExternalValue { window, .. }
                | HpaMetric::ExternalAverageValue { window, .. },
            ) => MetricSpec::InFlightWindowAverage {
                sample_interval: Duration::from_secs(1),
                window: *window,
            },
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.bounds.min_replicas.max(1)
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let b = self.config.bounds;
        let current = obs.current_replicas;
        if !self.initialized {
            // recordInitialRecommendation: a new HPA cannot scale down before its
            // stabilization window has seen the current size.
            self.initialized = true;
            self.recommendations.push_back(TimedRecommendation {
                at: now,
                replicas: current,
            });
        }
        let mut why = crate::why::Why::default();
        let (replicas, inputs) = if current == 0 && b.min_replicas != 0 {
            (0, vec![("scaling_disabled", 1.0)])
        } else if current > b.max_replicas {
            why.push(crate::why::Rule::MaxReplicas {
                max: b.max_replicas,
            });
            (b.max_replicas, vec![("above_max", 1.0)])
        } else if current < b.min_replicas {
            why.push(crate::why::Rule::MinReplicas {
                min: b.min_replicas,
            });
            (b.min_replicas, vec![("below_min", 1.0)])
        } else {
            let Some(p) = self.propose(current, obs) else {
                let error = self
                    .metric_replicas(0, current, obs)
                    .err()
                    .map_or_else(|| "a metric failed".to_string(), |e| e.to_string());
                let mut r = Recommendation::with_inputs(current, vec![("no_metric", 1.0)]);
                r.why.push(crate::why::Rule::InvalidMetric { error });
                return r;
            };
            why = self.metric_why(p.metric, current, obs);
            why.raw = Some(p.replicas);
            let log = self.recommendations.clone();
            let (stabilized, replicas, limit) = self.normalize(now, current, p.replicas);
            why.rules.extend(why::stabilization_rule(
                self, &log, now, p.replicas, stabilized,
            ));
            why.rules.extend(why::limit_rule(
                self,
                limit,
                current,
                replicas,
                &self.scale_up_events,
                &self.scale_down_events,
                now,
            ));
            let mut inputs = vec![("metric_replicas", f64::from(p.replicas))];
            if self.config.metrics.len() > 1 {
                inputs.push(("metric_index", p.metric as f64));
            }
            if limit != behavior::Limit::DesiredWithinRange {
                inputs.push(("limited", 1.0));
            }
            (replicas, inputs)
        };
        if replicas != current {
            self.store_scale_event(now, current, replicas);
        }
        Recommendation {
            replicas,
            inputs,
            why,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_horizontal_tests;
#[cfg(test)]
mod upstream_tests;
