//! The Vertical Pod Autoscaler's recommender, as kubernetes/autoscaler's
//! `vertical-pod-autoscaler/pkg/recommender` computes it (read at commit 55c37cd5, August 2026):
//!
//! - `model/container.go`: per container, CPU usage samples go to the aggregate as they come;
//!   memory goes in as one *peak* per aggregation interval (24 h), the window's peak replaced
//!   when a higher sample arrives; an OOM kill counts as a peak of
//!   `max(used + 100 MiB, used × 1.2)` where `used = max(request, peak)`.
//! - `model/aggregate_container_state.go`: one aggregate per container name across the target's
//!   pods: a decaying CPU histogram (each sample weight 0.1), a decaying memory-peak histogram
//!   (weight 1), both with a 24 h half-life and exponential buckets growing 5 % (CPU from 0.01
//!   core to 1,000 cores, memory from 10 MB to 1 TB), and the first and last CPU sample times.
//! - `logic/recommender.go` and `logic/estimator.go`: target = p90, lower bound = p50, upper
//!   bound = p95 of each histogram, plus the 15 % safety margin; the upper bound multiplied by
//!   `1 + 1/confidence` and the lower bound by `(1 + 0.001/confidence)^-2`, where confidence is
//!   the history's length in days, at most its samples ÷ 1,440; at least 25 millicores and
//!   250 MiB per pod (split across its containers).
//! - `routines/capping_post_processor.go`: the VPA's `minAllowed` / `maxAllowed` cap all three.
//!
//! Amounts are upstream's `ResourceAmount`s: whole millicores and whole bytes, truncated, at most
//! 10¹⁴.

mod histogram;
#[cfg(test)]
mod tests;
pub mod updater;

use std::time::Duration;

pub use histogram::{BadOptions, BucketScheme, DecayingHistogram, Histogram};

/// Largest amount upstream represents (`MaxResourceAmount`).
pub const MAX_RESOURCE_AMOUNT: i64 = 100_000_000_000_000;

/// Upstream's `resourceAmountFromFloat`: truncated, within `[0, MAX_RESOURCE_AMOUNT]`.
fn amount(x: f64) -> i64 {
    if x > MAX_RESOURCE_AMOUNT as f64 {
        MAX_RESOURCE_AMOUNT
    } else if x.is_nan() || x < 0.0 {
        0
    } else {
        x as i64
    }
}

/// `ScaleResource`.
fn scale(a: i64, factor: f64) -> i64 {
    amount(a as f64 * factor)
}

/// CPU and memory of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// CPU, millicores.
    pub cpu_millicores: i64,
    /// Memory, bytes.
    pub memory_bytes: i64,
}

impl Resources {
    /// `cores` of CPU and `bytes` of memory, as upstream converts them.
    pub fn new(cores: f64, bytes: f64) -> Self {
        Self {
            cpu_millicores: amount(cores * 1000.0),
            memory_bytes: amount(bytes),
        }
    }
}

/// A recommendation for one container: what to request, and the range outside which the
/// updater evicts a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Recommendation {
    /// What to request.
    pub target: Resources,
    /// Requests below this are too small.
    pub lower_bound: Resources,
    /// Requests above this are too large.
    pub upper_bound: Resources,
}

/// The recommender's settings, upstream's defaults (`config/config.go`,
/// `model/aggregations_config.go`), and the VPA object's resource policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpaConfig {
    /// `--recommendation-margin-fraction` (0.15).
    pub safety_margin_fraction: f64,
    /// `--pod-recommendation-min-cpu-millicores` (25).
    pub pod_min_cpu_millicores: f64,
    /// `--pod-recommendation-min-memory-mb` (250, in MiB).
    pub pod_min_memory_mb: f64,
    /// `--target-cpu-percentile` (0.9).
    pub target_cpu_percentile: f64,
    /// `--recommendation-lower-bound-cpu-percentile` (0.5).
    pub lower_bound_cpu_percentile: f64,
    /// `--recommendation-upper-bound-cpu-percentile` (0.95).
    pub upper_bound_cpu_percentile: f64,
    /// `--target-memory-percentile` (0.9).
    pub target_memory_percentile: f64,
    /// `--recommendation-lower-bound-memory-percentile` (0.5).
    pub lower_bound_memory_percentile: f64,
    /// `--recommendation-upper-bound-memory-percentile` (0.95).
    pub upper_bound_memory_percentile: f64,
    /// `--confidence-interval-cpu` (24 h): a history this long is "one unit" of confidence.
    pub confidence_interval_cpu: Duration,
    /// `--confidence-interval-memory` (24 h).
    pub confidence_interval_memory: Duration,
    /// `--cpu-histogram-decay-half-life` (24 h).
    pub cpu_half_life: Duration,
    /// `--memory-histogram-decay-half-life` (24 h).
    pub memory_half_life: Duration,
    /// `--memory-aggregation-interval` (24 h): one memory peak per interval.
    pub memory_aggregation_interval: Duration,
    /// `--oom-bump-up-ratio` (1.2).
    pub oom_bump_up_ratio: f64,
    /// `--oom-min-bump-up-bytes` (100 MiB).
    pub oom_min_bump_up_bytes: f64,
    /// The VPA's `resourcePolicy.containerPolicies[].minAllowed`.
    pub min_allowed: Option<Resources>,
    /// The VPA's `resourcePolicy.containerPolicies[].maxAllowed`.
    pub max_allowed: Option<Resources>,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for VpaConfig {
    fn default() -> Self {
        Self {
            safety_margin_fraction: 0.15,
            pod_min_cpu_millicores: 25.0,
            pod_min_memory_mb: 250.0,
            target_cpu_percentile: 0.9,
            lower_bound_cpu_percentile: 0.5,
            upper_bound_cpu_percentile: 0.95,
            target_memory_percentile: 0.9,
            lower_bound_memory_percentile: 0.5,
            upper_bound_memory_percentile: 0.95,
            confidence_interval_cpu: DAY,
            confidence_interval_memory: DAY,
            cpu_half_life: DAY,
            memory_half_life: DAY,
            memory_aggregation_interval: DAY,
            oom_bump_up_ratio: 1.2,
            oom_min_bump_up_bytes: 100.0 * 1024.0 * 1024.0,
            min_allowed: None,
            max_allowed: None,
        }
    }
}

/// Lightest CPU sample (`minSampleWeight`).
const MIN_SAMPLE_WEIGHT: f64 = 0.1;
/// Lightest weight a histogram keeps (`epsilon = 0.001 · minSampleWeight`).
const EPSILON: f64 = 0.001 * MIN_SAMPLE_WEIGHT;

/// CPU buckets: 0.01 core wide at first, 5 % wider each, up to 1,000 cores.
pub fn cpu_buckets() -> BucketScheme {
    BucketScheme::Exponential {
        num_buckets: exponential_count(1000.0, 0.01, 1.05),
        first: 0.01,
        ratio: 1.05,
        epsilon: EPSILON,
    }
}

/// Memory buckets: 10 MB wide at first, 5 % wider each, up to 1 TB.
pub fn memory_buckets() -> BucketScheme {
    BucketScheme::Exponential {
        num_buckets: exponential_count(1e12, 1e7, 1.05),
        first: 1e7,
        ratio: 1.05,
        epsilon: EPSILON,
    }
}

fn exponential_count(max: f64, first: f64, ratio: f64) -> usize {
    ((max * (ratio - 1.0) / first + 1.0).ln() / ratio.ln()).ceil() as usize + 1
}

/// What the recommender has aggregated for one container name of a VPA's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateState {
    /// CPU usage samples, cores.
    pub cpu: DecayingHistogram,
    /// Memory peaks, bytes.
    pub memory_peaks: DecayingHistogram,
    /// Time of the first CPU sample.
    pub first_sample: Option<Duration>,
    /// Time of the last CPU sample.
    pub last_sample: Option<Duration>,
    /// CPU samples aggregated.
    pub total_samples: u64,
}

/// Where a container's samples go: the aggregate, or (in tests) a recorder.
pub trait SampleSink {
    /// A CPU usage sample (cores) taken at `at`.
    fn add_cpu(&mut self, cores: f64, at: Duration);
    /// A memory peak (bytes) for the window ending at `window_end`.
    fn add_memory_peak(&mut self, bytes: f64, window_end: Duration);
    /// Withdraw a memory peak added before.
    fn subtract_memory_peak(&mut self, bytes: f64, window_end: Duration);
}

impl AggregateState {
    /// Empty, with `config`'s half-lives.
    pub fn new(config: &VpaConfig) -> Self {
        Self {
            cpu: DecayingHistogram::new(cpu_buckets(), config.cpu_half_life),
            memory_peaks: DecayingHistogram::new(memory_buckets(), config.memory_half_life),
            first_sample: None,
            last_sample: None,
            total_samples: 0,
        }
    }

    /// `getConfidence`: the history's length in `interval`s, at most its samples per minute of
    /// `interval` — about N for N days of one sample a minute.
    pub fn confidence(&self, interval: Duration) -> f64 {
        let lifespan = match (self.first_sample, self.last_sample) {
            (Some(first), Some(last)) => {
                last.saturating_sub(first).as_secs_f64() / interval.as_secs_f64()
            }
            _ => 0.0,
        };
        let samples = self.total_samples as f64 / (interval.as_secs_f64() / 60.0);
        lifespan.min(samples)
    }
}

impl SampleSink for AggregateState {
    fn add_cpu(&mut self, cores: f64, at: Duration) {
        self.cpu.add(cores, MIN_SAMPLE_WEIGHT, at);
        if self.last_sample.is_none_or(|l| at > l) {
            self.last_sample = Some(at);
        }
        if self.first_sample.is_none_or(|f| at < f) {
            self.first_sample = Some(at);
        }
        self.total_samples += 1;
    }

    fn add_memory_peak(&mut self, bytes: f64, window_end: Duration) {
        self.memory_peaks.add(bytes, 1.0, window_end);
    }

    fn subtract_memory_peak(&mut self, bytes: f64, window_end: Duration) {
        self.memory_peaks.subtract(bytes, 1.0, window_end);
    }
}

/// One container of one pod: its last samples and its memory window (`ContainerState`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerState {
    /// Its request, for the OOM rule.
    pub request: Resources,
    last_cpu_sample: Option<Duration>,
    memory_peak: i64,
    oom_peak: i64,
    window_end: Option<Duration>,
    last_memory_sample: Option<Duration>,
}

/// An OOM kill the recommender refuses (older than its memory window).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("OOM event will be discarded - it is too old ({0:?})")]
pub struct StaleOom(pub Duration);

impl ContainerState {
    /// A container requesting `request`, with no samples.
    pub fn new(request: Resources) -> Self {
        Self {
            request,
            ..Self::default()
        }
    }

    /// A CPU sample of `millicores` at `at`; false (discarded) when negative or not after the
    /// previous one.
    pub fn add_cpu_sample(
        &mut self,
        at: Duration,
        millicores: i64,
        sink: &mut impl SampleSink,
    ) -> bool {
        if millicores < 0 || self.last_cpu_sample.is_some_and(|l| at <= l) {
            return false;
        }
        sink.add_cpu(millicores as f64 / 1000.0, at);
        self.last_cpu_sample = Some(at);
        true
    }

    /// A memory sample of `bytes` at `at`; false (discarded) when negative or older than the
    /// previous one.
    pub fn add_memory_sample(
        &mut self,
        at: Duration,
        bytes: i64,
        interval: Duration,
        sink: &mut impl SampleSink,
    ) -> bool {
        self.memory_sample(at, bytes, false, interval, sink)
    }

    fn max_memory_peak(&self) -> i64 {
        self.memory_peak.max(self.oom_peak)
    }

    fn memory_sample(
        &mut self,
        at: Duration,
        bytes: i64,
        oom: bool,
        interval: Duration,
        sink: &mut impl SampleSink,
    ) -> bool {
        if bytes < 0 || (!oom && self.last_memory_sample.is_some_and(|l| at < l)) {
            return false;
        }
        self.last_memory_sample = Some(at);
        let window_end = *self.window_end.get_or_insert(at);
        let mut add = false;
        if at < window_end {
            let old = self.max_memory_peak();
            if old != 0 && bytes > old {
                sink.subtract_memory_peak(old as f64, window_end);
                add = true;
            }
        } else {
            // Move the window forward by whole intervals, past `at`.
            let i = interval.as_nanos().max(1);
            let behind = (at - window_end).as_nanos() / i * i + i;
            let end = window_end + Duration::from_nanos(u64::try_from(behind).unwrap_or(u64::MAX));
            self.window_end = Some(end);
            self.memory_peak = 0;
            self.oom_peak = 0;
            add = true;
        }
        if add {
            let end = self.window_end.unwrap_or(at);
            sink.add_memory_peak(bytes as f64, end);
            if oom {
                self.oom_peak = bytes;
            } else {
                self.memory_peak = bytes;
            }
        }
        true
    }

    /// An OOM kill at `at` of a container that requested `requested` bytes: a memory peak of
    /// `max(used + min bump, used × ratio)`, `used = max(requested, peak)`.
    pub fn record_oom(
        &mut self,
        at: Duration,
        requested: i64,
        config: &VpaConfig,
        sink: &mut impl SampleSink,
    ) -> Result<(), StaleOom> {
        let interval = config.memory_aggregation_interval;
        if let Some(last) = self.last_memory_sample {
            if at + interval < last {
                return Err(StaleOom(at));
            }
        }
        let used = requested.max(self.memory_peak);
        let needed = (used + amount(config.oom_min_bump_up_bytes))
            .max(scale(used, config.oom_bump_up_ratio));
        self.memory_sample(at, needed, true, interval, sink);
        Ok(())
    }
}

/// The recommendation for a container named `containers` times over in each pod (the pod
/// minimum is split among them), from `state`, capped by the resource policy.
pub fn recommend(config: &VpaConfig, state: &AggregateState, containers: usize) -> Recommendation {
    let fraction = 1.0 / containers.max(1) as f64;
    let min = Resources {
        cpu_millicores: scale(
            amount(config.pod_min_cpu_millicores * 0.001 * 1000.0),
            fraction,
        ),
        memory_bytes: scale(amount(config.pod_min_memory_mb * 1024.0 * 1024.0), fraction),
    };
    let margin = |a: i64| a + scale(a, config.safety_margin_fraction);
    let cpu = |p: f64| margin(amount(state.cpu.percentile(p) * 1000.0));
    let mem = |p: f64| margin(amount(state.memory_peaks.percentile(p)));
    let cpu_conf = state.confidence(config.confidence_interval_cpu);
    let mem_conf = state.confidence(config.confidence_interval_memory);
    let upper = |a: i64, conf: f64| scale(a, (1.0 + 1.0 / conf).powf(1.0));
    let lower = |a: i64, conf: f64| scale(a, (1.0 + 0.001 / conf).powf(-2.0));
    let at_least = |r: Resources| Resources {
        cpu_millicores: r.cpu_millicores.max(min.cpu_millicores),
        memory_bytes: r.memory_bytes.max(min.memory_bytes),
    };
    let raw = Recommendation {
        target: at_least(Resources {
            cpu_millicores: cpu(config.target_cpu_percentile),
            memory_bytes: mem(config.target_memory_percentile),
        }),
        lower_bound: at_least(Resources {
            cpu_millicores: lower(cpu(config.lower_bound_cpu_percentile), cpu_conf),
            memory_bytes: lower(mem(config.lower_bound_memory_percentile), mem_conf),
        }),
        upper_bound: at_least(Resources {
            cpu_millicores: upper(cpu(config.upper_bound_cpu_percentile), cpu_conf),
            memory_bytes: upper(mem(config.upper_bound_memory_percentile), mem_conf),
        }),
    };
    cap(raw, config.min_allowed, config.max_allowed)
}

/// Every amount within `[min_allowed, max_allowed]`.
fn cap(r: Recommendation, min: Option<Resources>, max: Option<Resources>) -> Recommendation {
    let clamp = |x: Resources| {
        let mut x = x;
        if let Some(lo) = min {
            x.cpu_millicores = x.cpu_millicores.max(lo.cpu_millicores);
            x.memory_bytes = x.memory_bytes.max(lo.memory_bytes);
        }
        if let Some(hi) = max {
            x.cpu_millicores = x.cpu_millicores.min(hi.cpu_millicores);
            x.memory_bytes = x.memory_bytes.min(hi.memory_bytes);
        }
        x
    };
    Recommendation {
        target: clamp(r.target),
        lower_bound: clamp(r.lower_bound),
        upper_bound: clamp(r.upper_bound),
    }
}
