//! The results JSON (`simctl.results/v1`): what `simctl run` writes and what reports, the tuner,
//! the live view and validation read. Serializable both ways so readers need only this module.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{
    Deserializer as HistDeserializer, Serializer as _, V2Serializer,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
    /// Simulated span, seconds.
    pub duration_s: f64,
    /// Set when the run was stopped early (Ctrl-C); the figures cover `[0, truncated_at_s]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at_s: Option<f64>,
    /// Per API, in scenario order.
    pub apis: Vec<ApiResults>,
    /// Per node group, in scenario order.
    pub node_groups: Vec<NodeGroupResults>,
    /// Per batch job, in scenario order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_jobs: Vec<BatchJobResults>,
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
    /// Objectives and whether they held.
    pub slo: SloVerdict,
    /// Latency histogram (HDR V2, base64, microseconds), mergeable across seeds and shards.
    pub latency_histogram: String,
    /// Queue-wait histogram (HDR V2, base64, microseconds).
    pub queue_wait_histogram: String,
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
    /// `actual <= limit`.
    pub met: bool,
}

/// Whether all of an API's objectives held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SloVerdict {
    /// True when every check passed (and when there are none).
    pub met: bool,
    /// The individual checks.
    pub checks: Vec<SloCheck>,
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
    /// `<metric>/<api or group>` → values.
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

/// Something that happened during the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Simulated time, seconds.
    pub t_s: f64,
    /// `scale`, `replica_ready`, `replica_unschedulable`, `replica_removed`, …
    pub kind: String,
    /// The API concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The node group concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_group: Option<String>,
    /// Human-readable detail.
    pub message: String,
    /// Numeric inputs (e.g. a policy's metric and recommendation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, f64>,
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
