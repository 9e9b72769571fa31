//! The results JSON (`simctl.results/v1`): what `simctl run` writes and what reports, the tuner,
//! the live view and validation read. Serializable both ways so readers need only this module.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{
    Deserializer as HistDeserializer, Serializer as _, V2Serializer,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use crate::events::{Event, EventError, EventKind, ScaleChange, ScaleHeld, Why};
pub use crate::misses::{MissCause, MissInterval};
pub use crate::utilisation::{share, ApiUtilisation, GroupUtilisation};
pub use crate::vpa::{PodResources, PodsPerNode, VpaResults};

/// The schema tag written in every results file. Counts balance per API:
/// `requests = completed + rejected + timed_out + interrupted + in_flight_at_end`.
pub const SCHEMA: &str = "simctl.results/v1";

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of simctl that produced the file.
    pub simctl_version: String,
    /// Scenario name.
    pub scenario_name: String,
    /// The scenario as parsed (defaults not filled in), for reproducibility.
    pub scenario: serde_json::Value,
    /// Seed of every random stream.
    pub seed: u64,
    /// The scenario's duration: the span planned, seconds. A run stopped early covers less:
    /// see `truncated_at_s` and [`Results::simulated_s`].
    pub duration_s: f64,
    /// Set when the run was stopped early (Ctrl-C, or `q` in `simctl run --tui`): the simulated
    /// time reached, seconds. The figures, timeline and costs cover `[0, truncated_at_s]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at_s: Option<f64>,
    /// Per API, in scenario order.
    pub apis: Vec<ApiResults>,
    /// Per node group, in scenario order.
    pub node_groups: Vec<NodeGroupResults>,
    /// Per batch job, in scenario order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_jobs: Vec<BatchJobResults>,
    /// What Karpenter did, per NodePool (scenarios with `[[node_pools]]` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karpenter: Option<KarpenterResults>,
    /// Per router, in scenario order (absent without `[[routers]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<crate::routing::RouterResults>,
    /// Per pipeline, in scenario order (absent without `[[pipelines]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<crate::routing::PipelineResults>,
    /// EKS control-plane fee over the run.
    pub control_plane_cost_usd: f64,
    /// Node cost not attributed to any API's requests (empty capacity).
    pub idle_cost_usd: f64,
    /// Nodes + control plane.
    pub cost_usd_total: f64,
    /// Sampled series over time.
    pub timeline: Timeline,
    /// What happened when: scaling, scheduling, node changes.
    pub events: Vec<Event>,
    /// Events not kept because the log reached its cap.
    #[serde(default)]
    pub events_dropped: u64,
}

impl Results {
    /// Seconds actually simulated: the whole duration, or up to where the run was stopped.
    pub fn simulated_s(&self) -> f64 {
        self.truncated_at_s.unwrap_or(self.duration_s)
    }
}

/// One API's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiResults {
    /// API name.
    pub name: String,
    /// Arrivals.
    pub requests: u64,
    /// Served within the timeout.
    pub completed: u64,
    /// Answered 503 (replica queue full, or no ready replica).
    pub rejected: u64,
    /// The part of `rejected` that found no ready replica at all.
    pub rejected_no_replica: u64,
    /// Gave up by the client (timeout) while queued or executing.
    pub timed_out: u64,
    /// Failed because their node went away (spot reclaim) or their pod was preempted.
    pub interrupted: u64,
    /// Still queued, executing, or held by the activator (scale from zero) at the end.
    pub in_flight_at_end: u64,
    /// Replicas OOM-killed: over their memory limit, or loading their model onto an
    /// over-committed shared GPU.
    #[serde(default)]
    pub oom_kills: u64,
    /// Kubernetes QoS class of its pods (`Guaranteed`, `Burstable`, `BestEffort`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qos_class: String,
    /// End-to-end latency of completed requests.
    pub latency_ms: Percentiles,
    /// Time from arrival to a worker picking the request up, for requests that started.
    pub queue_wait_ms: Percentiles,
    /// Completed requests per second over the run.
    pub throughput_rps: f64,
    /// Integral of ready replicas over time.
    pub replica_seconds: f64,
    /// Replicas started after t = 0 (each paid its startup time).
    pub cold_starts: u64,
    /// Most replicas waiting for a node at once.
    pub peak_pending_replicas: u32,
    /// Node cost attributed to this API by its share of requested resources.
    pub cost_usd: f64,
    /// How busy its replicas were against what they requested (absent in files written before
    /// simctl measured it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<ApiUtilisation>,
    /// Token-level figures of an LLM API (absent for request-level APIs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmResults>,
    /// The Vertical Pod Autoscaler's recommendation, for an API with `[apis.vpa]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpa: Option<VpaResults>,
    /// Where its replicas' start-up time went, for an API with `[apis.startup]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<crate::startup::StartupBreakdown>,
    /// Objectives and whether they held.
    pub slo: SloVerdict,
    /// Latency histogram (HDR V2, base64, microseconds), mergeable across seeds and shards.
    pub latency_histogram: String,
    /// Queue-wait histogram (HDR V2, base64, microseconds).
    pub queue_wait_histogram: String,
    /// The API's figures broken down by tenant, for an API whose traffic is a sum of tenants
    /// (`[[apis.tenants]]`); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantResults>,
}

/// One tenant's share of an API's figures. The tenants' counts add up to the API's: every
/// request belongs to exactly one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantResults {
    /// Tenant name.
    pub name: String,
    /// Arrivals.
    pub requests: u64,
    /// Served within the timeout.
    pub completed: u64,
    /// Refused: 503s (replica queue full, no replica) and 429s (the tenant's own limits).
    pub rejected: u64,
    /// The part of `rejected` refused with 429 by the tenant's rate or concurrency limit.
    pub rate_limited: u64,
    /// Gave up by the client (timeout) while queued or executing.
    pub timed_out: u64,
    /// Failed because their replica's node went away or their pod was preempted.
    pub interrupted: u64,
    /// Still queued, executing, or held by the activator at the end.
    pub in_flight_at_end: u64,
    /// End-to-end latency of its completed requests.
    pub latency_ms: Percentiles,
    /// Completed requests per second over the run.
    pub throughput_rps: f64,
    /// Worker-seconds its requests occupied (each started request's service time).
    pub busy_worker_s: f64,
    /// The API's cost shared by busy worker-seconds: `api cost × busy_worker_s / Σ tenants'
    /// busy_worker_s` (an API that served nothing splits its cost by requests).
    pub cost_usd: f64,
    /// Its own objectives (`[apis.tenants.slo]`) judged on its requests alone, over the whole
    /// run; absent when the tenant has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloVerdict>,
    /// Its latency histogram (HDR V2, base64, microseconds).
    pub latency_histogram: String,
}

/// What an LLM API's requests saw token by token; `latency_ms` beside it is end to end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LlmResults {
    /// Time to first token: arrival to the end of the iteration that completed the prompt.
    pub ttft_ms: Percentiles,
    /// Inter-token latency: the gap before each output token after the first.
    pub itl_ms: Percentiles,
    /// Prompt tokens of the completed requests.
    pub prompt_tokens: u64,
    /// Output tokens emitted (by every request, finished or not).
    pub output_tokens: u64,
    /// Output tokens per second over the run.
    pub output_tokens_per_s: f64,
    /// Prompt tokens computed by the engines, recomputation after preemption included.
    pub prefill_tokens: u64,
    /// Sequences preempted for lack of KV-cache blocks.
    pub preemptions: u64,
    /// Engine iterations run, over all replicas.
    pub iterations: u64,
    /// Share of finished requests (completed, timed out, refused or lost) whose time to first
    /// token met `ttft_p99` and whose mean inter-token latency met `itl_p99`; `None` without
    /// both objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
    /// Time-to-first-token histogram (HDR V2, base64, microseconds).
    pub ttft_histogram: String,
    /// Inter-token-latency histogram (HDR V2, base64, microseconds).
    pub itl_histogram: String,
}

/// Latency summary in milliseconds; all zero when nothing was recorded.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Percentiles {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Summarize a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One objective, its limit and what was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloCheck {
    /// e.g. `latency_p99_ms`, `rejection_rate`.
    pub objective: String,
    /// The bound.
    pub limit: f64,
    /// The measured value.
    pub actual: f64,
    /// `actual <= limit` (`actual >= limit` for a floor such as goodput).
    pub met: bool,
}

/// Whether an objective is a floor (the value must stay at or above its limit, as goodput)
/// rather than a ceiling (latencies, rejection and timeout rates).
pub fn is_floor_objective(objective: &str) -> bool {
    objective == "goodput"
}

impl SloCheck {
    /// How close `actual` is to breaking the limit, as a ratio that exceeds 1 when it does:
    /// actual / limit for a ceiling, limit / actual for a floor (a zero on the wrong side counts
    /// as infinitely far, written as 1e12 so it stays JSON-safe).
    pub fn pressure(&self) -> f64 {
        let (num, den) = if is_floor_objective(&self.objective) {
            (self.limit, self.actual)
        } else {
            (self.actual, self.limit)
        };
        if den > 0.0 {
            num / den
        } else if num > 0.0 {
            1e12
        } else {
            0.0
        }
    }
}

/// Whether all of an API's objectives held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SloVerdict {
    /// True when every check passed (and when there are none).
    pub met: bool,
    /// The individual checks.
    pub checks: Vec<SloCheck>,
    /// Requests arriving before this time were left out of the checks (`[slo] warmup`); they
    /// still count in the API's totals. Absent when there is no warmup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_s: Option<f64>,
    /// When the SLO was missed: where the offending requests fell and why, largest share first.
    /// Empty when the SLO held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<MissInterval>,
}

/// One node group's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeGroupResults {
    /// Group name.
    pub name: String,
    /// EC2 instance type.
    pub instance_type: String,
    /// Spot capacity.
    pub spot: bool,
    /// Price of one node (spot discount applied).
    pub price_usd_per_hour: f64,
    /// Integral of nodes over time.
    pub node_hours: f64,
    /// `node_hours × price`.
    pub cost_usd: f64,
    /// Most nodes at once.
    pub peak_nodes: u32,
    /// Spot interruptions received (nodes reclaimed).
    pub interruptions: u64,
    /// Launches that failed (no spot capacity, or not ready in time).
    pub failed_launches: u64,
    /// What the same node-hours would have cost more on demand.
    pub spot_savings_usd: f64,
    /// Capacity, requested and busy CPU and GPU (absent in files written before simctl
    /// measured it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<GroupUtilisation>,
}

/// One batch job's figures. Batches balance: `batches = succeeded + failed + dead_lettered +
/// unfinished`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchJobResults {
    /// Job name.
    pub name: String,
    /// `succeeded`, `completed_with_failures`, `timed_out`, `running` (at the end of the run)
    /// or `not_submitted`.
    pub status: String,
    /// Submission time, seconds.
    pub submitted_at_s: f64,
    /// From submission to the last batch's outcome (or the timeout), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time_s: Option<f64>,
    /// Batches in the job.
    pub batches: u64,
    /// Batches processed successfully.
    pub succeeded: u64,
    /// Batches that failed with no dead-letter queue to retry them.
    pub failed: u64,
    /// Batches moved to the dead-letter queue after `max_receive_count` receives.
    pub dead_lettered: u64,
    /// Batches without an outcome (timed out or still running).
    pub unfinished: u64,
    /// Items in succeeded batches.
    pub items_processed: u64,
    /// Attempts (receives) in all.
    pub attempts: u64,
    /// Attempts that failed in the user's code.
    pub failed_attempts: u64,
    /// Attempts lost with their worker's node (spot reclaim, preemption).
    pub interrupted_attempts: u64,
    /// Worker pods started (replacements included).
    pub worker_starts: u64,
    /// Node cost attributed to the job's workers by their share of requested resources.
    pub cost_usd: f64,
}

/// Series sampled at a fixed step; `t_s[i]` is the end of the i-th step. Counters (`rps`,
/// `rejected`, …) cover the step; gauges (`in_flight`, `replicas_ready`, …) are read at `t_s[i]`.
/// A value is `null` where it is undefined (a percentile with no request in the step).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Timeline {
    /// Step, seconds.
    pub step_s: f64,
    /// Sample times, seconds.
    pub t_s: Vec<f64>,
    /// One series per metric and subject (API, node group, batch job or `cluster`), written
    /// `"<metric>/<subject>"` in the JSON.
    pub series: BTreeMap<SeriesKey, Vec<Option<f64>>>,
}

impl Timeline {
    /// The series of `metric` for `subject` (an API, node group or batch job name).
    pub fn get(&self, metric: Metric, subject: &str) -> Option<&[Option<f64>]> {
        self.series
            .get(&SeriesKey::new(metric, subject))
            .map(Vec::as_slice)
    }
}

/// What a timeline series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Arrivals per second over the step (API).
    Rps,
    /// Completions per second over the step (API).
    ThroughputRps,
    /// Requests refused in the step (API).
    Rejected,
    /// Requests given up in the step (API).
    TimedOut,
    /// Requests lost with their node in the step (API).
    Interrupted,
    /// Median latency of the step's completions, ms (API).
    LatencyP50Ms,
    /// 99th percentile latency of the step's completions, ms (API).
    LatencyP99Ms,
    /// Requests in flight at the sample (API).
    InFlight,
    /// Requests queued or held by the activator at the sample (API).
    Queue,
    /// Replicas asked for (API).
    ReplicasDesired,
    /// Replicas ready (API).
    ReplicasReady,
    /// Replicas waiting for a node (API).
    PendingPods,
    /// Batches waiting in the job's queue (batch job).
    BatchQueue,
    /// Workers ready (batch job).
    BatchWorkers,
    /// Batches succeeded so far (batch job).
    BatchesDone,
    /// Nodes, booting or ready (node group).
    Nodes,
    /// Nodes ready (node group).
    NodesReady,
    /// Busy GPUs over ready GPUs (node group).
    GpuUtil,
    /// Nodes plus control plane, USD per hour (`cluster`).
    CostUsdPerHour,
    /// Requests a load generator sent later than scheduled in the step (API, real runs only).
    Late,
    /// Sequences running in the LLM engines at the sample (LLM API).
    RunningSequences,
    /// Requests waiting in the LLM engines at the sample, preempted ones included (LLM API).
    WaitingSequences,
    /// KV-cache blocks in use over all ready replicas' blocks, 0–1 (LLM API).
    KvCacheUsage,
    /// Output tokens emitted per second over the step (LLM API).
    OutputTokensPerS,
    /// 99th percentile time to first token of the step's first tokens, ms (LLM API).
    TtftP99Ms,
}

impl Metric {
    const ALL: [Metric; 25] = [
        Metric::Rps,
        Metric::ThroughputRps,
        Metric::Rejected,
        Metric::TimedOut,
        Metric::Interrupted,
        Metric::LatencyP50Ms,
        Metric::LatencyP99Ms,
        Metric::InFlight,
        Metric::Queue,
        Metric::ReplicasDesired,
        Metric::ReplicasReady,
        Metric::PendingPods,
        Metric::BatchQueue,
        Metric::BatchWorkers,
        Metric::BatchesDone,
        Metric::Nodes,
        Metric::NodesReady,
        Metric::GpuUtil,
        Metric::CostUsdPerHour,
        Metric::Late,
        Metric::RunningSequences,
        Metric::WaitingSequences,
        Metric::KvCacheUsage,
        Metric::OutputTokensPerS,
        Metric::TtftP99Ms,
    ];

    /// The name written before the `/` in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rps => "rps",
            Metric::ThroughputRps => "throughput_rps",
            Metric::Rejected => "rejected",
            Metric::TimedOut => "timed_out",
            Metric::Interrupted => "interrupted",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::InFlight => "in_flight",
            Metric::Queue => "queue",
            Metric::ReplicasDesired => "replicas_desired",
            Metric::ReplicasReady => "replicas_ready",
            Metric::PendingPods => "pending_pods",
            Metric::BatchQueue => "batch_queue",
            Metric::BatchWorkers => "batch_workers",
            Metric::BatchesDone => "batches_done",
            Metric::Nodes => "nodes",
            Metric::NodesReady => "nodes_ready",
            Metric::GpuUtil => "gpu_util",
            Metric::CostUsdPerHour => "cost_usd_per_hour",
            Metric::Late => "late",
            Metric::RunningSequences => "running_sequences",
            Metric::WaitingSequences => "waiting_sequences",
            Metric::KvCacheUsage => "kv_cache_usage",
            Metric::OutputTokensPerS => "output_tokens_per_s",
            Metric::TtftP99Ms => "ttft_p99_ms",
        }
    }
}

/// A timeline series' key: a metric of one subject. Ordered as its JSON text
/// (`"<metric>/<subject>"`), so files keep their key order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// What is measured.
    pub metric: Metric,
    /// Of which API, node group or batch job (`cluster` for cluster-wide series).
    pub subject: String,
}

impl SeriesKey {
    /// The key of `metric` for `subject`.
    pub fn new(metric: Metric, subject: impl Into<String>) -> Self {
        Self {
            metric,
            subject: subject.into(),
        }
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // '/' sorts below every character of a metric name, so comparing (name, subject)
        // orders keys exactly as their text.
        (self.metric.name(), self.subject.as_str())
            .cmp(&(other.metric.name(), other.subject.as_str()))
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.metric.name(), self.subject)
    }
}

/// Why a timeline series key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeriesKeyError {
    /// No `/` between metric and subject.
    #[error("timeline series \"{0}\": expected <metric>/<subject>")]
    Shape(String),
    /// A metric this version does not know.
    #[error("timeline series \"{0}\": unknown metric")]
    UnknownMetric(String),
}

impl std::str::FromStr for SeriesKey {
    type Err = SeriesKeyError;

    fn from_str(text: &str) -> Result<Self, SeriesKeyError> {
        let (name, subject) = text
            .split_once('/')
            .ok_or_else(|| SeriesKeyError::Shape(text.to_string()))?;
        let metric = Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| SeriesKeyError::UnknownMetric(text.to_string()))?;
        Ok(SeriesKey::new(metric, subject))
    }
}

impl Serialize for SeriesKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Largest latency the histograms resolve (1 h, in microseconds); longer values are clamped.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// An empty latency histogram (µs, 1 µs to [`HISTOGRAM_MAX_US`], 3 significant digits): every
/// producer of results uses these bounds so histograms merge across runs and tools.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("constant bounds are valid")
}

/// Encode a histogram as base64 HDR V2.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a histogram we built ourselves.
    if V2Serializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Why a serialized histogram could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The text is not base64.
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HDR V2 histogram.
    #[error("histogram is not HDR V2: {0:?}")]
    Hdr(hdrhistogram::serialization::DeserializeError),
}

/// Decode a histogram written by [`encode_histogram`].
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    HistDeserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramError::Hdr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_read_write_and_sort_as_their_text() {
        let names = [
            "nodes/x",
            "nodes_ready/a",
            "rps/b",
            "rps/b-2",
            "cost_usd_per_hour/cluster",
        ];
        let mut keys: Vec<SeriesKey> = names.iter().map(|n| n.parse().expect("key")).collect();
        keys.sort();
        let mut texts: Vec<&str> = names.to_vec();
        texts.sort();
        let back: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(back, texts);
        assert!("bogus/x".parse::<SeriesKey>().is_err());
        assert!("rps".parse::<SeriesKey>().is_err());
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = new_histogram();
        for v in [0, 10, 1_000, 250_000] {
            h.record(v).expect("in range");
        }
        let back = decode_histogram(&encode_histogram(&h)).expect("decodes");
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
    }
}

/// Karpenter's launches and disruptions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct KarpenterResults {
    /// Per NodePool, in scenario order.
    pub pools: Vec<NodePoolResults>,
}

impl KarpenterResults {
    /// Node launches plus node terminations over every pool: how much the fleet churned.
    pub fn node_churn(&self) -> u64 {
        self.pools
            .iter()
            .map(|p| p.launches + p.terminations.total())
            .sum()
    }
}

/// One NodePool's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NodePoolResults {
    /// NodePool name.
    pub name: String,
    /// Nodes launched.
    pub launches: u64,
    /// The part of `launches` on spot.
    pub spot_launches: u64,
    /// Launch attempts refused for insufficient spot capacity (each blocks its offering for
    /// 3 minutes; the next offering is tried).
    pub insufficient_capacity: u64,
    /// Nodes that went, by why.
    pub terminations: Terminations,
    /// Replicas restarted elsewhere because Karpenter disrupted their node (consolidation,
    /// expiry, interruption): each pays the API's start-up again.
    pub replica_restarts: u64,
    /// Node-hours of the pool's nodes.
    pub node_hours: f64,
    /// What they cost.
    pub cost_usd: f64,
    /// Node-hours per instance type and capacity type (`m5.large/spot`), sorted by name.
    pub node_hours_by_offering: Vec<(String, f64)>,
}

/// Terminations of a pool's nodes by reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Terminations {
    /// Empty nodes deleted.
    pub empty: u64,
    /// Under-used nodes deleted, their pods fitting elsewhere.
    pub underutilized_deleted: u64,
    /// Nodes replaced by a cheaper node.
    pub underutilized_replaced: u64,
    /// Nodes past `expire_after`.
    pub expired: u64,
    /// Spot interruptions.
    pub interrupted: u64,
    /// Launches that never became ready (15-minute registration timeout).
    pub launch_timeouts: u64,
}

impl Terminations {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.empty
            + self.underutilized_deleted
            + self.underutilized_replaced
            + self.expired
            + self.interrupted
            + self.launch_timeouts
    }
}
