//! `[[routers]]` and `[[pipelines]]` as written: traffic that reaches several APIs through a
//! router in front of them, or passes through a chain of APIs one after the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SloSpec, TrafficSpec};
use crate::units::DurationSpec;

/// `[[routers]]`: one endpoint in front of several APIs. Each request goes to one API, chosen by
/// weight (Cortex's TrafficSplitter: `apis = [{ name, weight }]`, weights summing to 100) or by
/// the request's class (`classes`); an API marked `shadow = true` receives a copy of `weight`
/// percent of the requests (Istio's mirror), whose answer is discarded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouterSpec {
    /// Unique among routers and pipelines.
    pub name: String,
    /// The router's arrivals (any traffic kind an API takes); the APIs behind it have none of
    /// their own.
    pub traffic: TrafficSpec,
    /// The APIs it splits between by weight, and at most one shadow (Cortex's TrafficSplitter
    /// `apis` list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<RouteSpec>,
    /// Route by the request's class instead of by weight: each class's share of the requests
    /// (drawn per request) and the API that serves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassSpec>,
    /// Read each request's class from this column of the router's trace (`kind = "trace"`, the
    /// `timestamps` CSV format) instead of drawing it; the classes then have no `share`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_column: Option<String>,
    /// Weight changes during the run (a canary ramp): from `at` on, the given APIs take the
    /// given weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RouterStepSpec>,
}

/// One API behind a router (Cortex's `TrafficSplit`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// An API of the scenario.
    pub name: String,
    /// Percentage of the requests it takes (0–100; the non-shadow weights sum to 100); for the
    /// shadow, the percentage of requests copied to it.
    pub weight: u32,
    /// Fire-and-forget copies: it is loaded, its answers are discarded and not in the caller's
    /// latency (at most one per router).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// A class of requests and the API that serves it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// Shown in the results.
    pub name: String,
    /// Its share of the requests (> 0; shares are normalised to their sum); left out when the
    /// router reads classes from a trace column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// The API serving it.
    pub api: String,
}

/// A weight change at `at`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouterStepSpec {
    /// When the new weights apply.
    pub at: DurationSpec,
    /// New weights by API name; APIs left out keep theirs.
    pub weights: BTreeMap<String, u32>,
}

/// `[[pipelines]]`: each request passes through `stages` in order — it enters stage `i + 1`
/// when stage `i` answers — and is judged on its end-to-end latency.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Unique among routers and pipelines.
    pub name: String,
    /// Arrivals at the first stage.
    pub traffic: TrafficSpec,
    /// API names, in order (at least two); each has no traffic of its own.
    pub stages: Vec<String>,
    /// Objectives on end-to-end latency, rejections and timeouts (default: the scenario's
    /// `[slo]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSpec>,
}
