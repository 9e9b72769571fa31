//! Autoscaling decision logic, kept pure so that the simulator and the in-cluster controller run
//! exactly the same code.
//!
//! A [`ScalingPolicy`] never reads a clock and never does I/O: the caller passes `now` (time since
//! the caller started, as a [`Duration`]) and an [`Observation`] of what the real system would see
//! at that moment. The caller also asks the policy, through [`ScalingPolicy::metric_spec`], which
//! metric pipeline to build (how often to sample, over which window to average), because each real
//! autoscaler sees a different, lagged view of the load and that lag is part of its behaviour.
//!
//! The core that the simulator and the controller share is three pieces: a policy, the
//! [`MetricPipeline`] that turns samples into the [`Reading`] its upstream would see, and the
//! [`DecisionStep`] that applies bounds and overprovisioning, holds on missing data and wakes a
//! scaled-to-zero API. Only where samples come from and where decisions go differ.

use std::time::Duration;

mod cortex;
pub mod decision;
mod fixed;
pub mod hpa;
mod keda;
pub mod kpa;
pub mod pipeline;
pub mod predictive;
mod saturation;
pub mod vpa;
pub mod why;

pub use cortex::{dequeuer_poll, message_hidden_for, Cortex, CortexConfig, DequeuerPoll};
pub use decision::{Decision, DecisionStep, HoldReason, Overprovisioning, ReplicaCount};
pub use fixed::Fixed;
pub use hpa::{
    Behavior, Hpa, HpaConfig, HpaMetric, KubernetesVersion, RatePolicy, ScalingRules, SelectPolicy,
    Tolerances,
};
pub use keda::{Keda, KedaConfig, KedaFallback, KedaTrigger};
pub use kpa::{Kpa, KpaConfig};
pub use pipeline::{LlmSignals, MetricPipeline, PodSample, Reading};
pub use predictive::{ForecastConfig, ForecastModel, Forecaster, Predictive, StartupClock};
pub use saturation::{Saturation, SaturationConfig};
pub use why::{Direction, MetricValue, RateKind, Rule, SetAside, Why};

/// A policy setting outside what the upstream autoscaler accepts. `field` names the setting as
/// the configuration spells it, so that a caller can point at it; the message reads
/// `field: problem`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidSetting {
    /// The setting (or settings) at fault.
    pub field: &'static str,
    /// What is wrong: what was expected and what was found.
    pub problem: String,
}

impl InvalidSetting {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// The metric a policy wants computed for it, described the way the real system computes it, so
/// the simulator can emulate the pipeline and the controller can build the matching query.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSpec {
    /// The policy looks at no metric (e.g. a fixed replica count).
    None,
    /// Total in-flight requests (executing + queued) across the API, sampled per replica every
    /// `sample_interval` and averaged over `window` (Cortex's proxy gauge + Prometheus query).
    InFlightWindowAverage {
        /// How often each replica samples its in-flight count.
        sample_interval: Duration,
        /// The averaging window of the query.
        window: Duration,
    },
    /// Total concurrency across the API in 1-second buckets, averaged over a stable and a panic
    /// window (Knative's metric collector).
    StableAndPanicConcurrency {
        /// Bucket width (1 s upstream).
        bucket: Duration,
        /// Long averaging window (60 s upstream).
        stable_window: Duration,
        /// Short averaging window (a percentage of the stable window upstream).
        panic_window: Duration,
    },
    /// One value per pod, read every sync period with a lag (HPA via metrics-server or KEDA).
    PerPod {
        /// What each pod reports.
        kind: PodMetricKind,
        /// How stale the value is when the controller reads it.
        lag: Duration,
    },
    /// Per pod, the peak of the vLLM KV-cache usage and of the waiting queue over `window`,
    /// sampled every second, as of `lag` ago: llm-d WVA's saturation inputs
    /// `max by (pod) (max_over_time(vllm:kv_cache_usage_perc[1m]))` and
    /// `max by (pod) (max_over_time(vllm:num_requests_waiting[1m]))`
    /// (`internal/collector/registration/saturation.go` at
    /// llm-d/llm-d-workload-variant-autoscaler@b08b1c77). Read into [`PodObservation::peak`].
    PerPodPeak {
        /// The `max_over_time` range (1 minute upstream).
        window: Duration,
        /// How stale the peaks are when the policy reads them.
        lag: Duration,
    },
}

/// What a per-pod metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodMetricKind {
    /// In-flight requests per pod (executing + queued).
    Concurrency,
    /// Requests per second arriving at the pod.
    Rps,
    /// CPU usage as a fraction of the pod's CPU request (1.0 = 100 %).
    CpuUtilization,
    /// Requests waiting in the pod's vLLM scheduler queue (`vllm:num_requests_waiting`, a
    /// gauge), averaged over the sync period.
    RequestsWaiting,
    /// Requests in the pod's running batch (`vllm:num_requests_running`, a gauge), averaged
    /// over the sync period.
    RequestsRunning,
    /// The pod's KV-cache usage, 0–1 (`vllm:kv_cache_usage_perc`, "1 means 100 percent
    /// usage"), averaged over the sync period.
    KvCacheUsage,
    /// Generation (output) tokens per second: the increase of `vllm:generation_tokens_total`
    /// over the sampled time.
    GenerationTokensPerSecond,
}

impl PodMetricKind {
    /// Whether the metric is one only an LLM server (vLLM) exports.
    pub fn is_llm(self) -> bool {
        matches!(
            self,
            PodMetricKind::RequestsWaiting
                | PodMetricKind::RequestsRunning
                | PodMetricKind::KvCacheUsage
                | PodMetricKind::GenerationTokensPerSecond
        )
    }
}

/// One pod's peak LLM load over a [`MetricSpec::PerPodPeak`] window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PodPeak {
    /// Highest `vllm:kv_cache_usage_perc` (0–1) in the window.
    pub kv_usage: f64,
    /// Highest `vllm:num_requests_waiting` in the window.
    pub waiting: f64,
}

/// A pod's phase (`status.phase`): the HPA treats Pending pods as unready for every metric and
/// sets Failed pods aside entirely (`groupPods` in `replica_calculator.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodPhase {
    /// Not yet running (unscheduled, pulling its image): no metric is trusted.
    Pending,
    /// Its containers run; it may or may not pass its readiness probe.
    #[default]
    Running,
    /// Terminated in failure; ignored by the HPA.
    Failed,
}

/// One pod as the autoscaler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodObservation {
    /// Whether the pod passed its readiness probe.
    pub ready: bool,
    /// The pod's metric, `None` when the metric is missing (e.g. just started).
    pub value: Option<f64>,
    /// How long ago the pod started, used by HPA's CPU initialisation rules.
    pub age: Duration,
    /// The pod's CPU request in cores: CPU utilisation is usage over request, summed over pods.
    /// 0 means the pod has no CPU request, which makes CPU metrics fail (as upstream).
    pub request: f64,
    /// The pod's peak LLM load for [`MetricSpec::PerPodPeak`] policies, `None` for other
    /// specs or when the pod reported nothing in the window.
    pub peak: Option<PodPeak>,
    /// `status.phase`: Pending pods are unready for every HPA metric, Failed pods are ignored.
    pub phase: PodPhase,
    /// The pod has a deletion timestamp (terminating): the HPA ignores it.
    pub terminating: bool,
    /// How long ago the Ready condition last changed (`lastTransitionTime`); `None` when the
    /// pod has no Ready condition. The HPA's CPU rules use it to set aside pods that have just
    /// become ready or have never been ready.
    pub ready_since: Option<Duration>,
    /// How old the metric sample is (now − its timestamp).
    pub metric_age: Duration,
    /// The span the metric sample averages over (metrics-server's `window`).
    pub metric_window: Duration,
    /// Values of an HPA's second, third… metrics for this pod (the first is `value`), for HPAs
    /// with several metrics; `None` (or absent) when missing.
    pub extra_values: Vec<Option<f64>>,
}

impl Default for PodObservation {
    /// A running, unready pod with no metric, no Ready condition, and a 1-core request.
    fn default() -> Self {
        Self {
            ready: false,
            value: None,
            age: Duration::ZERO,
            request: 1.0,
            peak: None,
            phase: PodPhase::Running,
            terminating: false,
            ready_since: None,
            metric_age: Duration::ZERO,
            metric_window: Duration::ZERO,
            extra_values: Vec::new(),
        }
    }
}

/// What the real autoscaler would observe at one decision tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// `deployment.spec.replicas`: the replicas requested, not the ready ones.
    pub current_replicas: u32,
    /// Replicas that are ready to serve.
    pub ready_replicas: u32,
    /// The aggregated metric the policy asked for (stable window for Knative); `None` when the
    /// metric is missing, which real autoscalers treat as "no action".
    pub metric: Option<f64>,
    /// Knative's panic-window concurrency; `None` for other policies.
    pub panic_metric: Option<f64>,
    /// Per-pod values for per-pod policies (HPA); empty for others.
    pub pods: Vec<PodObservation>,
    /// Requests held while the API has no replica (Cortex's activator, Knative's activator);
    /// a non-zero value wakes a scaled-to-zero API.
    pub waiting_requests: u32,
    /// Values of an HPA's second, third… Object or External metrics (the first is `metric`);
    /// `None` (or absent) when missing. Empty for single-metric policies.
    pub extra_metrics: Vec<Option<f64>>,
}

/// A policy's decision, with the inputs that led to it so that it can be explained to a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Desired `spec.replicas`.
    pub replicas: u32,
    /// Named inputs and intermediate values (e.g. `metric`, `raw`, `stabilized`).
    pub inputs: Vec<(&'static str, f64)>,
    /// The raw recommendation, its metric and the rules that bound the outcome, so that a user
    /// can be told why the count did (not) change.
    pub why: Why,
}

impl Recommendation {
    /// A decision that needs no explanation beyond its value.
    pub fn plain(replicas: u32) -> Self {
        Self {
            replicas,
            inputs: Vec::new(),
            why: Why::default(),
        }
    }

    /// A decision with its named inputs and no binding rule.
    pub fn with_inputs(replicas: u32, inputs: Vec<(&'static str, f64)>) -> Self {
        Self {
            replicas,
            inputs,
            why: Why::default(),
        }
    }
}

/// Replica bounds shared by every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaBounds {
    /// Lower bound (0 allows scale-to-zero where the policy supports it).
    pub min_replicas: u32,
    /// Upper bound.
    pub max_replicas: u32,
}

impl ReplicaBounds {
    /// Clamp a replica count into the bounds.
    pub fn clamp(&self, replicas: u32) -> u32 {
        replicas.clamp(self.min_replicas, self.max_replicas.max(self.min_replicas))
    }
}

/// Pure autoscaling decision logic. Implementations keep their own history (stabilization windows,
/// panic mode) and must be deterministic: the same sequence of calls gives the same decisions.
pub trait ScalingPolicy: Send {
    /// Short name used in results and logs (`fixed`, `cortex`, `hpa`, `kpa`, `saturation`).
    fn name(&self) -> &'static str;
    /// How often the real autoscaler decides (Cortex 10 s, HPA 15 s, KPA 2 s).
    fn tick_interval(&self) -> Duration;
    /// The metric pipeline this policy needs.
    fn metric_spec(&self) -> MetricSpec;
    /// Replicas to create when the API is deployed.
    fn initial_replicas(&self) -> u32;
    /// Decide the desired replica count at `now` (time since the caller started).
    fn recommend(&mut self, now: Duration, observation: &Observation) -> Recommendation;
}

/// The real controller (feature `controller`): the same policies, fed from real metrics and
/// acting on a real Deployment or on local replicas.
#[cfg(feature = "controller")]
pub mod controller;
