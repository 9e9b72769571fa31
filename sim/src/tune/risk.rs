//! `[tune] risk`: the breach probability of the search's finalists.
//!
//! The search judges a candidate on a few seeds; when rare events decide the outcome (a
//! correlated spot reclaim on a tight SLO), a candidate can pass those and still breach often.
//! Every *finalist* — a candidate that met the SLO on every search seed — is therefore run on
//! `risk.seeds` seeds (the scenario's seed and the next ones, the same for every finalist: common
//! random numbers; the search seeds are the first of them and are not run again). The breach
//! probability gets a one-sided Clopper–Pearson (exact binomial) upper bound, and only finalists
//! whose bound is at most `max_breach_probability` may be recommended.
//!
//! Finalists are chosen per candidate, not by ranking, so a shard (`--shard i/n`) runs the risk
//! seeds of its own finalists and `tune merge` needs nothing more.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use statrs::distribution::{Beta, ContinuousCDF};

use super::{CandidateError, Tuner};
use crate::scenario::schema::RiskTuneSpec;
use crate::scenario::Scenario;
use contract::tune::{RiskResult, RiskSpec};

/// Most risk seeds a tune takes.
pub const MAX_RISK_SEEDS: u32 = 10_000;

impl Tuner {
    /// The risk phase: every finalist (met the SLO on every search seed) on the risk seeds it
    /// has not run yet; returns each finalist's estimate, or `None` when interrupted.
    pub(super) fn run_risk(
        &self,
        spec: RiskSpec,
        finalists: &[u64],
        scenarios: &BTreeMap<u64, &Scenario>,
        progress: &(dyn Fn() + Sync),
        cancel: &AtomicBool,
    ) -> Option<BTreeMap<u64, Result<RiskResult, String>>> {
        // The search seeds are the risk seeds' first ones.
        let first = self.seeds[0];
        let searched = self.seeds.len() as u64;
        let jobs: Vec<(u64, u64)> = finalists
            .iter()
            .flat_map(|&id| (searched..u64::from(spec.seeds)).map(move |k| (id, k)))
            .collect();
        let results: Vec<(u64, Option<Result<bool, CandidateError>>)> = jobs
            .par_iter()
            .map(|&(id, k)| {
                if cancel.load(Ordering::SeqCst) {
                    return (id, None);
                }
                let r = self
                    .evaluate(scenarios[&id], first.wrapping_add(k))
                    .map(|o| o.apis.iter().any(|a| a.checks.iter().any(|c| !c.met)));
                progress();
                (id, Some(r))
            })
            .collect();
        let mut breaches: BTreeMap<u64, Result<u32, String>> =
            finalists.iter().map(|&id| (id, Ok(0))).collect();
        for (id, r) in results {
            let entry = breaches.entry(id).or_insert(Ok(0));
            match (r?, entry.as_mut()) {
                (Ok(true), Ok(b)) => *b += 1,
                (Err(e), Ok(_)) => *entry = Err(e.to_string()),
                _ => {}
            }
        }
        Some(
            breaches
                .into_iter()
                .map(|(id, b)| (id, b.map(|b| estimate(b, spec.seeds, spec.confidence))))
                .collect(),
        )
    }
}

/// Check `[tune] risk` against the search's seed count; the message names the field.
pub fn validate(spec: &RiskTuneSpec, search_seeds: u32) -> Result<RiskSpec, String> {
    if spec.seeds < search_seeds.max(2) || spec.seeds > MAX_RISK_SEEDS {
        return Err(format!(
            "tune.risk.seeds: expected {} to {MAX_RISK_SEEDS} (at least tune.seeds), found {}",
            search_seeds.max(2),
            spec.seeds
        ));
    }
    let p = spec.max_breach_probability;
    if !(p > 0.0 && p < 1.0) {
        return Err(format!(
            "tune.risk.max_breach_probability: expected a probability between 0 and 1 (exclusive), found {p}"
        ));
    }
    let confidence = spec.confidence.unwrap_or(0.95);
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(format!(
            "tune.risk.confidence: expected a probability between 0 and 1 (exclusive), found {confidence}"
        ));
    }
    Ok(RiskSpec {
        seeds: spec.seeds,
        max_breach_probability: p,
        confidence,
    })
}

/// `breaches` of `seeds` runs breached: the estimate and its upper bound.
pub fn estimate(breaches: u32, seeds: u32, confidence: f64) -> RiskResult {
    RiskResult {
        seeds,
        breaches,
        breach_probability: f64::from(breaches) / f64::from(seeds.max(1)),
        upper_bound: clopper_pearson_upper(breaches, seeds, confidence),
    }
}

/// One-sided Clopper–Pearson upper bound on a binomial proportion: the `confidence` quantile of
/// Beta(b + 1, n − b), and 1 when every trial failed. Exact (never below the nominal coverage),
/// which is what a limit on risk wants.
pub fn clopper_pearson_upper(breaches: u32, seeds: u32, confidence: f64) -> f64 {
    if breaches >= seeds {
        return 1.0;
    }
    Beta::new(f64::from(breaches) + 1.0, f64::from(seeds - breaches))
        .map(|b| b.inverse_cdf(confidence))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_closed_forms_and_tables() {
        // b = 0: the bound solves (1 − p)^n = 1 − c, so p = 1 − (1 − c)^(1/n); for n = 200 at
        // 95 % that is 0.01487 (the "rule of three" gives 3/200 = 0.015).
        let u = clopper_pearson_upper(0, 200, 0.95);
        assert!((u - (1.0 - 0.05f64.powf(1.0 / 200.0))).abs() < 1e-9, "{u}");
        assert!((u - 0.01487).abs() < 1e-5, "{u}");
        // b = n − 1: Beta(n, 1) has CDF x^n, so the bound is c^(1/n).
        let u = clopper_pearson_upper(9, 10, 0.95);
        assert!((u - 0.95f64.powf(0.1)).abs() < 1e-9, "{u}");
        // SciPy 1.17: scipy.stats.beta.ppf(0.95, 6, 95) = 0.1022533776 (b = 5 of n = 100).
        let u = clopper_pearson_upper(5, 100, 0.95);
        assert!((u - 0.1022533776).abs() < 1e-7, "{u}");
        assert_eq!(clopper_pearson_upper(3, 3, 0.95), 1.0);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let spec = |seeds, p, c| RiskTuneSpec {
            seeds,
            max_breach_probability: p,
            confidence: c,
        };
        assert!(validate(&spec(200, 0.05, None), 3).is_ok());
        assert!(validate(&spec(2, 0.05, None), 3)
            .unwrap_err()
            .starts_with("tune.risk.seeds"));
        assert!(validate(&spec(200, 1.5, None), 3)
            .unwrap_err()
            .starts_with("tune.risk.max_breach_probability"));
        assert!(validate(&spec(200, 0.05, Some(1.0)), 3)
            .unwrap_err()
            .starts_with("tune.risk.confidence"));
    }
}
