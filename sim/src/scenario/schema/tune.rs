//! `[tune]` as written: what `simctl tune` searches, against which objectives, with how much
//! effort.

use serde::{Deserialize, Serialize};

use super::SloSpec;

/// `[tune]`: the search space, objectives and effort of `simctl tune`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// Seeds each candidate runs on: the scenario's seed and the next ones (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<u32>,
    /// `grid` (every candidate), `halving` (successive halving over seeds), or `auto`
    /// (grid up to `max_grid` candidates, halving beyond; the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Largest space `auto` searches exhaustively (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grid: Option<u32>,
    /// What to minimise among candidates that meet the SLO: `cost` (the default and only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// Objectives for every API (default: the scenario's `[slo]` and per-API `[apis.slo]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSpec>,
    /// Resample recorded traffic per seed (default true), so the recommendation holds for
    /// traffic like the recording and not only for its exact arrivals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resample_traffic: Option<bool>,
    /// Block length of that resampling (default "5m"; a trace's own `bootstrap_block` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_block: Option<crate::units::DurationSpec>,
    /// `{ seeds = 200, max_breach_probability = 0.05, confidence = 0.95 }`: run every candidate
    /// that meets the SLO on `seeds` on many more seeds and keep only those whose breach
    /// probability is, with that confidence, at most the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskTuneSpec>,
    /// Parameter path → values: a list (`[1, 2, 4]`) or a range (`{ from = 1, to = 6, step = 1 }`).
    /// Paths name scenario fields, with APIs and node groups by name:
    /// `apis.<api>.pod.processes_per_replica`, `apis.<api>.autoscaling.target_in_flight`,
    /// `node_groups.<group>.spot`, `duration`, …
    pub space: std::collections::BTreeMap<String, toml::Value>,
}

/// `[tune] risk`, as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RiskTuneSpec {
    /// Seeds each finalist runs on (2 to 10000).
    pub seeds: u32,
    /// Largest acceptable breach probability, in (0, 1).
    pub max_breach_probability: f64,
    /// Confidence of the upper bound, in (0, 1) (default 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}
