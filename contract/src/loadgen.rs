//! The results JSON of a load test (`simctl.loadgen/v1`): the measured API in exactly the
//! simulator's per-API shape (so reports and validation compare like with like), plus what only
//! a real run has — schedule lag, late sends, transport errors.

use std::collections::BTreeMap;

use crate::results::{ApiResults, Percentiles, Timeline};
use serde::{Deserialize, Serialize};

/// The schema tag of a load-test results file.
pub const SCHEMA: &str = "simctl.loadgen/v1";

/// A whole load test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadResults {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of simctl that produced the file.
    pub simctl_version: String,
    /// `open` (scheduled arrivals) or `closed` (users with think time).
    pub model: String,
    /// The URL load was sent to.
    pub target: String,
    /// What the send schedule was.
    pub schedule: String,
    /// Planned length, seconds.
    pub planned_s: f64,
    /// Wall-clock length, seconds.
    pub elapsed_s: f64,
    /// Set when the run was stopped early (Ctrl-C, or `q` in `simctl loadgen --tui`):
    /// equal to `elapsed_s`, which the figures and timeline cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at_s: Option<f64>,
    /// Most requests outstanding at once.
    pub max_in_flight: usize,
    /// Requests that left later than `late_threshold_ms` after their scheduled time.
    pub late: u64,
    /// The lateness threshold, ms.
    pub late_threshold_ms: f64,
    /// Actual send time minus scheduled time.
    pub schedule_lag_ms: Percentiles,
    /// Latency from the actual send (what a closed-model tool would report) of completed
    /// requests; `apis[].latency_ms` counts from the scheduled time.
    pub response_ms: Percentiles,
    /// Failures without a usable answer, by kind (`connection refused`, `http 500`, …); their
    /// sum is `apis[].interrupted`.
    pub errors: BTreeMap<String, u64>,
    /// The measured API, in the simulator's shape: `requests` (sent) = `completed` (2xx) +
    /// `rejected` (503) + `timed_out` + `interrupted` (errors) + `in_flight_at_end`.
    pub apis: Vec<ApiResults>,
    /// Per-second series: `rps/`, `throughput_rps/`, `rejected/`, `timed_out/`,
    /// `interrupted/`, `late/`, `latency_p50_ms/`, `latency_p99_ms/`, `in_flight/` + API name;
    /// against an OpenAI-compatible target also `output_tokens_per_s/` and `ttft_p99_ms/`.
    pub timeline: Timeline,
    /// Time to first token of completed requests, from the scheduled time (OpenAI-compatible
    /// targets, `simctl loadgen --openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Percentiles>,
    /// Inter-token latency: every gap between consecutive tokens of completed requests
    /// (OpenAI-compatible targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<Percentiles>,
    /// Output tokens received by completed requests (OpenAI-compatible targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// `output_tokens` per second of the run (OpenAI-compatible targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_s: Option<f64>,
    /// Share of the requests that ended (completed, rejected, timed out or failed) that
    /// completed with their time to first token and mean inter-token latency within the
    /// objectives given (`--slo-ttft`, `--slo-itl`), as the simulator's `llm.goodput`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
}
