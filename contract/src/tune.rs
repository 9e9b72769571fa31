//! The tune report (`simctl.tune/v1`): what `simctl tune` writes, what `tune merge` combines and
//! what reports read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Schema tag of tune reports.
pub const SCHEMA: &str = "simctl.tune/v1";

/// How candidates are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Every candidate on every seed.
    Grid,
    /// Successive halving over seeds.
    Halving,
}

/// One shard of a sweep: candidates with `id % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based shard index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// A `--shard` argument that is not `i/n` with `0 ≤ i < n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a shard as i/n with 0 ≤ i < n (e.g. 0/4), found \"{text}\"")]
pub struct ShardError {
    /// What was written.
    pub text: String,
}

impl Shard {
    /// Parse `i/n`.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError {
            text: text.to_string(),
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// One objective of one API of one candidate, across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// e.g. `latency_p99_ms`.
    pub objective: String,
    /// The bound.
    pub limit: f64,
    /// Mean over seeds.
    pub mean: f64,
    /// 95 % confidence interval of the mean (Student's t), when there are ≥ 2 seeds.
    pub ci95: Option<[f64; 2]>,
    /// The worst seed.
    pub worst: f64,
    /// How much room is left on the worst seed, as a share of the limit (negative: missed):
    /// `(limit − worst) / limit`, or `(worst − limit) / limit` for a floor such as goodput.
    pub margin: f64,
}

/// One API of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiSummary {
    /// API name, or `<api>/<tenant>` for a tenant's own figures.
    pub name: String,
    /// The tenant, when this summary is of one of an API's tenants (their objectives count
    /// toward the candidate's verdict like the API's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// This summary is of a pipeline (`name` is the pipeline's), judged end to end: its
    /// latency is the sum of its stages', its objectives the pipeline's own SLO, and they count
    /// toward the candidate's verdict like the APIs'. Absent (false) for an API or a tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pipeline: bool,
    /// Worst p99 latency over seeds, ms.
    pub latency_p99_ms_worst: f64,
    /// Worst rejection rate over seeds.
    pub rejection_rate_worst: f64,
    /// Mean replicas (replica-seconds / duration), averaged over seeds (0 for a tenant or a
    /// pipeline).
    pub mean_replicas: f64,
    /// Objectives.
    pub checks: Vec<CheckSummary>,
}

/// A candidate and what it achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    /// Position in the grid (stable across shards and runs).
    pub id: u64,
    /// The overrides.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Why the candidate is not a valid scenario, if it is not.
    pub error: Option<String>,
    /// Seeds it ran on (fewer than all when halving dropped it or the run was interrupted).
    pub seeds_evaluated: u32,
    /// Every API (and tenant) met every objective, and every pipeline its end-to-end SLO, on
    /// every evaluated seed.
    pub meets_slo: bool,
    /// Mean total cost over evaluated seeds.
    pub cost_usd_mean: f64,
    /// Worst `actual / limit` over every objective, API and seed: ≤ 1 meets the SLO, and the
    /// smaller the more headroom.
    pub slo_ratio: f64,
    /// Per API.
    pub apis: Vec<ApiSummary>,
    /// Set when most of the candidate's SLO miss, on some seed, fell at the start of the run
    /// (cold caches, initial scale-up): what and where, with a suggested `[slo] warmup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_dominated: Option<String>,
    /// When the candidate misses the SLO: the main cause on the first seed where it does, in one
    /// sentence (when, how much, why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_missed: Option<String>,
    /// With `[tune] risk`: how often this finalist breached the SLO on the risk seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskResult>,
}

/// `[tune] risk`: finalists (candidates that meet the SLO on every search seed) are run on many
/// more seeds, because a configuration that passes three seeds can still breach often when rare
/// events (correlated spot reclaims) decide the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskSpec {
    /// Seeds each finalist runs on: the scenario's seed and the next ones (the same for all
    /// finalists: common random numbers).
    pub seeds: u32,
    /// The largest acceptable probability of breaching the SLO in one run.
    pub max_breach_probability: f64,
    /// Confidence of the one-sided upper bound on the breach probability (e.g. 0.95).
    pub confidence: f64,
}

/// One finalist's breaches over the risk seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskResult {
    /// Seeds run.
    pub seeds: u32,
    /// Seeds on which some API missed some objective.
    pub breaches: u32,
    /// `breaches / seeds`.
    pub breach_probability: f64,
    /// Clopper–Pearson (exact binomial) one-sided upper confidence bound on the breach
    /// probability at the spec's confidence: the candidate qualifies when this is at most
    /// `max_breach_probability`.
    pub upper_bound: f64,
}

/// The recommended configuration, ready to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Candidate id.
    pub id: u64,
    /// Its overrides.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Mean total cost over seeds.
    pub cost_usd_mean: f64,
    /// Only the changed settings, as a scenario fragment.
    pub scenario_fragment: String,
    /// The whole scenario with the overrides applied (comments kept), without `[tune]`.
    pub tuned_scenario: String,
    /// Cortex `RealtimeAPI` specs (`cortex deploy`) of the APIs scaled by `fixed` or `cortex`,
    /// complete and with every setting explicit.
    pub cortex_yaml: String,
    /// Cortex `cluster.yaml` with the node groups the recommendation was simulated on.
    #[serde(default)]
    pub cluster_yaml: String,
    /// Kubernetes manifests (`kubectl apply`) of the APIs scaled by `hpa` (Deployment + HPA) or
    /// `kpa` (Knative Service).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_yaml: String,
    /// Karpenter NodePools (`kubectl apply`) of the scenario's `[[node_pools]]`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub karpenter_yaml: String,
    /// What the manifests cannot carry exactly, or what must be set elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploy_notes: Vec<String>,
    /// Why this candidate: how a tie was broken, which searched edges it sits on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What `simctl tune` writes (`tune.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Scenario name.
    pub scenario_name: String,
    /// The scenario text tuned, so reports and merges need nothing else.
    pub scenario_toml: String,
    /// Seeds every qualifying candidate ran on.
    pub seeds: Vec<u64>,
    /// Search method used.
    pub search: Search,
    /// The space.
    pub parameters: Vec<Parameter>,
    /// Candidates in the full grid.
    pub grid_size: u64,
    /// Set for a shard's partial report.
    pub shard: Option<Shard>,
    /// Stopped early (Ctrl-C): unfinished candidates are not eligible.
    pub interrupted: bool,
    /// Evaluated candidates, by id.
    pub candidates: Vec<CandidateResult>,
    /// Cheapest qualifying candidate.
    pub best: Option<u64>,
    /// Candidates on the Pareto front of cost against SLO ratio (fully evaluated, valid), by
    /// cost: no other candidate is both cheaper and further within its objectives.
    pub pareto: Vec<u64>,
    /// The best candidate, ready to deploy.
    pub recommendation: Option<Recommendation>,
    /// Block length (seconds) of the bootstrap that resampled recorded traffic per seed;
    /// absent when traces were replayed as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_bootstrap_block_s: Option<f64>,
    /// Things the user should know about the sweep (e.g. misses dominated by the run's start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The risk phase's settings, when `[tune] risk` is set: then `best` must also keep its
    /// breach probability's upper bound under the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskSpec>,
}

/// One parameter and the values to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Dotted path, APIs and node groups by name (`apis.classifier.pod.threads_per_process`).
    pub path: String,
    /// Values to try, as JSON (numbers, strings, booleans).
    pub values: Vec<serde_json::Value>,
}
