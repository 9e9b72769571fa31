//! `[[apis.tenants]]`, top-level `[[tenants]]` and `[apis.fairness]` as users write them: an
//! API's traffic as a sum of tenants, and the fairness options real gateways and servers offer
//! between them.

use serde::{Deserialize, Serialize};

use super::{SloSpec, TrafficSpec};

/// One tenant of an API: its own traffic, its share under weighted fair queueing, its priority,
/// its gateway limits and its own objectives.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Unique within the API; shown in results (`<metric>/<api>/<tenant>` series).
    pub name: String,
    /// Its arrivals: any traffic kind, a trace or a trace's column included.
    pub traffic: TrafficSpec,
    /// Its share of a replica's workers under `fairness.queue = "weighted_fair"` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Under `fairness.queue = "priority"`, queued requests of a higher priority start first
    /// (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The gateway's token bucket: requests per second admitted on average; more are answered
    /// 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_rps: Option<f64>,
    /// The token bucket's size: requests admitted at once after a quiet spell (default: one
    /// second's worth of `rate_limit_rps`, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// The gateway's concurrency limit: the tenant's requests in flight (queued or executing,
    /// on any replica) at most this many; more are answered 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Its own objectives, judged on its requests alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSpec>,
}

/// `[apis.fairness]`: how an API shares its replicas between its tenants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FairnessSpec {
    /// The order a replica's queue is served in: `fifo` (default, arrival order),
    /// `weighted_fair` (each backlogged tenant gets its `weight`'s share of the workers) or
    /// `priority` (the highest tenant `priority` first, arrival order within it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Every tenant's token-bucket rate unless it sets its own (a gateway's per-key default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_rps: Option<f64>,
    /// The bucket size going with `rate_limit_rps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Every tenant's concurrency limit unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// `[tenancy]`, as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenancySpec {
    /// `shared` (every API's tenants share its replicas and node groups), `pool_per_tenant`
    /// (each tenant gets its own copy of the API on its own copies of the node groups) or
    /// `cluster_per_tenant` (the same, each copy in a cluster of its own paying its own control
    /// plane).
    pub design: String,
    /// `cluster_per_tenant`: what each cluster costs beyond its control plane and the nodes the
    /// scenario models (system nodes, monitoring, load balancer), USD per hour (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_overhead_usd_per_hour: Option<f64>,
}
