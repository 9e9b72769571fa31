//! What a run's routers and pipelines did: requests per route (per weight step, for a canary
//! ramp), shadow copies, and a pipeline's end-to-end figures with where its time went and which
//! stage failed its requests. Absent from the results of scenarios without them.

use serde::{Deserialize, Serialize};

use crate::results::{Percentiles, SloVerdict};

/// One router's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouterResults {
    /// Router name.
    pub name: String,
    /// Arrivals at the router (shadow copies not included).
    pub requests: u64,
    /// Requests sent to each API of its `apis` list or its classes' APIs (the shadow excluded);
    /// the API's own results hold what became of them.
    pub routes: Vec<RouteCount>,
    /// Routing by class: requests per class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassCount>,
    /// The shadow: copies sent to it (its answers discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<RouteCount>,
    /// Routing by weight: each weight step (the first from 0 s) with its weights and the
    /// requests each API got while it held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RouterStep>,
}

/// Requests an API got from a router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteCount {
    /// API name.
    pub api: String,
    /// Requests (or copies, for a shadow).
    pub requests: u64,
    /// Its share of the router's requests.
    pub share: f64,
}

/// Requests of one class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassCount {
    /// Class name.
    pub class: String,
    /// The API serving it.
    pub api: String,
    /// Requests drawn in this class.
    pub requests: u64,
}

/// One span of constant weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouterStep {
    /// When the weights took effect, seconds.
    pub from_s: f64,
    /// Weight per API of the router's `apis` list (the shadow's is its copy percentage).
    pub weights: Vec<u32>,
    /// Requests (copies, for the shadow) per API of that list while they held.
    pub requests: Vec<u64>,
}

/// One pipeline's figures, end to end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineResults {
    /// Pipeline name.
    pub name: String,
    /// Arrivals at the first stage.
    pub requests: u64,
    /// Answered by the last stage within every stage's timeout.
    pub completed: u64,
    /// Failed at some stage: answered 503 there.
    pub rejected: u64,
    /// Failed at some stage: timed out there.
    pub timed_out: u64,
    /// Failed at some stage: its replica was lost.
    pub interrupted: u64,
    /// Still in some stage at the end.
    pub in_flight_at_end: u64,
    /// End-to-end latency of completed requests: the sum of each stage's latency.
    pub latency_ms: Percentiles,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Per stage, in order: where the time went and what failed there.
    pub stages: Vec<StageResults>,
    /// The pipeline's objectives, judged on end-to-end figures.
    pub slo: SloVerdict,
    /// End-to-end latency histogram (µs), base64 HDR.
    pub latency_histogram: String,
}

/// One stage of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageResults {
    /// The stage's API.
    pub api: String,
    /// Requests that entered the stage.
    pub entered: u64,
    /// Requests that left it answered, for the next stage or the caller.
    pub passed: u64,
    /// Mean time in the stage (queue + service) of the requests it answered, ms.
    pub mean_ms: f64,
    /// Of those, mean time waiting for a worker (queue and activator), ms.
    pub mean_wait_ms: f64,
    /// This stage's mean time over the sum of the stages' mean times: where an answered
    /// request's time goes.
    pub share_of_latency: f64,
    /// Requests failed here: 503.
    pub rejected: u64,
    /// Requests failed here: timed out.
    pub timed_out: u64,
    /// Requests failed here: replica lost.
    pub interrupted: u64,
}
