//! How a candidate is judged: each seed's results become a verdict per API, per tenant and per
//! pipeline ([`judge`]), and the seeds' verdicts one summary per candidate ([`summarize`]). A
//! pipeline is judged end to end — its latency is the sum of its stages', its objectives the
//! pipeline's own SLO — so a candidate whose every stage meets its own SLO but whose requests
//! miss the pipeline's end-to-end one does not qualify.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::halving::worst_ratio;
use super::{ApiSummary, CandidateResult, CheckSummary};

/// One (candidate, seed) evaluation.
#[derive(Debug, Clone)]
pub(super) struct SeedOutcome {
    pub(super) cost_usd: f64,
    /// Most of an API's miss fell in the run's first [`START_FRACTION`]: the sentence.
    pub(super) start_miss: Option<String>,
    /// The largest share of the first missing API's (or pipeline's) miss: the sentence.
    pub(super) top_miss: Option<String>,
    /// The APIs, each followed by its tenants, then the pipelines.
    pub(super) apis: Vec<Judged>,
}

/// What one seed's run gave an API — or a tenant, or a pipeline: every tenant's own objectives
/// must hold too, so a design that meets the API's SLO on average but starves a tenant does not
/// qualify; and so must every pipeline's end-to-end objectives.
#[derive(Debug, Clone)]
pub(super) struct Judged {
    /// The API's name, `<api>/<tenant>`, or the pipeline's name.
    pub(super) name: String,
    /// The tenant, when this is one.
    pub(super) tenant: Option<String>,
    /// This is a pipeline, judged end to end.
    pub(super) pipeline: bool,
    pub(super) checks: Vec<crate::results::SloCheck>,
    /// p99 latency, ms (end to end for a pipeline).
    pub(super) latency_p99_ms: f64,
    /// Rejected (503) share of the requests (at any stage, for a pipeline).
    pub(super) rejection_rate: f64,
    /// Replica-seconds over the run's duration (0 for a tenant or a pipeline).
    pub(super) mean_replicas: f64,
}

/// One seed's results judged: cost, and the verdict of every API, tenant and pipeline.
pub(super) fn judge(results: &crate::Results) -> SeedOutcome {
    let duration = results.simulated_s().max(1e-9);
    let apis = results.apis.iter().flat_map(|a| {
        let n = a.requests.max(1) as f64;
        let api = Judged {
            name: a.name.clone(),
            tenant: None,
            pipeline: false,
            checks: a.slo.checks.clone(),
            latency_p99_ms: a.latency_ms.p99,
            rejection_rate: a.rejected as f64 / n,
            mean_replicas: a.replica_seconds / duration,
        };
        let tenants = a.tenants.iter().map(|t| Judged {
            name: format!("{}/{}", a.name, t.name),
            tenant: Some(t.name.clone()),
            pipeline: false,
            checks: t.slo.as_ref().map_or_else(Vec::new, |v| v.checks.clone()),
            latency_p99_ms: t.latency_ms.p99,
            rejection_rate: t.rejected as f64 / t.requests.max(1) as f64,
            mean_replicas: 0.0,
        });
        std::iter::once(api).chain(tenants)
    });
    let pipelines = results.pipelines.iter().map(|p| Judged {
        name: p.name.clone(),
        tenant: None,
        pipeline: true,
        checks: p.slo.checks.clone(),
        latency_p99_ms: p.latency_ms.p99,
        rejection_rate: p.rejected as f64 / p.requests.max(1) as f64,
        mean_replicas: 0.0,
    });
    SeedOutcome {
        cost_usd: results.cost_usd_total,
        start_miss: start_miss(results),
        top_miss: results
            .apis
            .iter()
            .find_map(|a| largest_miss(&a.name, &a.slo.misses))
            .or_else(|| {
                results
                    .pipelines
                    .iter()
                    .find(|p| !p.slo.met)
                    .map(pipeline_miss)
            }),
        apis: apis.chain(pipelines).collect(),
    }
}

/// The interval that holds the largest share of `name`'s SLO miss, as a sentence.
fn largest_miss(name: &str, misses: &[crate::results::MissInterval]) -> Option<String> {
    misses
        .iter()
        .max_by(|x, y| x.share.total_cmp(&y.share))
        .map(|m| format!("{name}: {}", m.sentence()))
}

/// Why a pipeline missed its end-to-end SLO, in one sentence: the objectives missed and the
/// stage where the time went (or the requests failed).
fn pipeline_miss(p: &contract::routing::PipelineResults) -> String {
    if let Some(why) = largest_miss(&format!("pipeline {}", p.name), &p.slo.misses) {
        return why;
    }
    let missed: Vec<String> = p
        .slo
        .checks
        .iter()
        .filter(|c| !c.met)
        .map(|c| format!("{} {:.4} > {:.4}", c.objective, c.actual, c.limit))
        .collect();
    let slowest = p
        .stages
        .iter()
        .max_by(|a, b| a.share_of_latency.total_cmp(&b.share_of_latency))
        .map(|s| {
            format!(
                "; {:.0} % of the time goes to stage {} ({:.0} ms mean, {:.0} ms of it waiting)",
                100.0 * s.share_of_latency,
                s.api,
                s.mean_ms,
                s.mean_wait_ms
            )
        })
        .unwrap_or_default();
    format!(
        "pipeline {} misses end to end: {}{slowest}",
        p.name,
        missed.join(", ")
    )
}

/// The seeds' verdicts of one candidate as its summary: it meets the SLO when every API, tenant
/// and pipeline met every objective on every seed.
pub(super) fn summarize(
    id: u64,
    params: BTreeMap<String, serde_json::Value>,
    outcomes: &[SeedOutcome],
) -> CandidateResult {
    let n = outcomes.len();
    let cost_usd_mean = outcomes.iter().map(|o| o.cost_usd).sum::<f64>() / n.max(1) as f64;
    let mut apis = Vec::new();
    let api_count = outcomes.first().map_or(0, |o| o.apis.len());
    let mut meets_slo = n > 0;
    for a in 0..api_count {
        let name = outcomes[0].apis[a].name.clone();
        let mut checks = Vec::new();
        for (c, first) in outcomes[0].apis[a].checks.iter().enumerate() {
            let values: Vec<f64> = outcomes
                .iter()
                .map(|o| o.apis[a].checks[c].actual)
                .collect();
            meets_slo &= outcomes.iter().all(|o| o.apis[a].checks[c].met);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let floor = crate::results::is_floor_objective(&first.objective);
            let worst = if floor {
                values.iter().copied().fold(f64::INFINITY, f64::min)
            } else {
                values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            };
            checks.push(CheckSummary {
                objective: first.objective.clone(),
                limit: first.limit,
                mean,
                ci95: confidence_interval(&values),
                worst,
                margin: match (floor, first.limit > 0.0) {
                    (true, true) => (worst - first.limit) / first.limit,
                    (false, true) => (first.limit - worst) / first.limit,
                    (_, false) => -worst,
                },
            });
        }
        apis.push(ApiSummary {
            name,
            tenant: outcomes[0].apis[a].tenant.clone(),
            pipeline: outcomes[0].apis[a].pipeline,
            latency_p99_ms_worst: outcomes
                .iter()
                .map(|o| o.apis[a].latency_p99_ms)
                .fold(0.0, f64::max),
            rejection_rate_worst: outcomes
                .iter()
                .map(|o| o.apis[a].rejection_rate)
                .fold(0.0, f64::max),
            mean_replicas: outcomes
                .iter()
                .map(|o| o.apis[a].mean_replicas)
                .sum::<f64>()
                / n as f64,
            checks,
        });
    }
    CandidateResult {
        id,
        params,
        error: None,
        seeds_evaluated: n as u32,
        meets_slo,
        cost_usd_mean,
        slo_ratio: worst_ratio(outcomes),
        apis,
        start_dominated: outcomes.iter().find_map(|o| o.start_miss.clone()),
        why_missed: outcomes.iter().find_map(|o| o.top_miss.clone()),
        risk: None,
    }
}

/// The start of a run, as a fraction of it, that may dominate a miss.
const START_FRACTION: f64 = 0.1;

/// When more than half of an API's SLO miss fell in the first [`START_FRACTION`] of the run:
/// a sentence naming it, with a suggested warmup (the end of those intervals, in whole minutes).
fn start_miss(results: &crate::Results) -> Option<String> {
    let start = results.simulated_s() * START_FRACTION;
    results.apis.iter().find_map(|a| {
        let early: Vec<&crate::results::MissInterval> =
            a.slo.misses.iter().filter(|m| m.from_s < start).collect();
        // Only the part of an interval inside the start counts: a miss from minute 0 to 58 of
        // an hour is not a start-up miss.
        let share: f64 = early
            .iter()
            .map(|m| {
                let inside = (m.to_s.min(start) - m.from_s) / (m.to_s - m.from_s).max(1e-9);
                m.share * inside.clamp(0.0, 1.0)
            })
            .sum();
        (share > 0.5).then(|| {
            let until = early.iter().map(|m| m.to_s).fold(0.0, f64::max);
            let minutes = (until / 60.0).ceil().max(1.0);
            format!(
                "{}: {:.0} % of its SLO miss falls in the first {:.0} % of the run ({}); if the start-up should not be judged, set [slo] warmup = \"{minutes:.0}m\"",
                a.name,
                100.0 * share,
                100.0 * START_FRACTION,
                early[0].sentence()
            )
        })
    })
}

/// 95 % confidence interval of the mean by Student's t.
pub(super) fn confidence_interval(values: &[f64]) -> Option<[f64; 2]> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = t * (var / n as f64).sqrt();
    Some([mean - half, mean + half])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::super::{TuneOptions, Tuner};

    /// A two-stage pipeline whose stages meet a loose per-API SLO in every candidate, tuned under
    /// a `[tune] slo` that the pipeline (with no SLO of its own) takes end to end.
    #[test]
    fn a_pipeline_is_judged_end_to_end_under_the_tune_slo() {
        let dir = std::env::temp_dir().join(format!("simctl-tune-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let stage = |name: &str, mean: &str| {
            format!(
                "[[apis]]\nname = \"{name}\"\n[apis.compute]\ncpu = \"100m\"\n[apis.pod]\nmax_concurrency = 1\nmax_queue_length = 64\n[apis.service_time]\ndistribution = \"exponential\"\nmean = \"{mean}\"\n[apis.autoscaling]\nmin_replicas = 2\nmax_replicas = 4\n"
            )
        };
        let text = format!(
            "duration = \"10m\"\nseed = 4\n[[node_groups]]\nname = \"cpu\"\ninstance_type = \"c5.4xlarge\"\nmin_instances = 1\nmax_instances = 1\n[[pipelines]]\nname = \"qa\"\nstages = [\"a\", \"b\"]\ntraffic = {{ kind = \"poisson\", rps = 10 }}\n{}{}[tune]\nseeds = 2\nslo = {{ latency_p99 = \"1s\", warmup = \"1m\" }}\n[tune.space]\n\"apis.b.autoscaling.min_replicas\" = [2, 4]\n",
            stage("a", "20ms"),
            stage("b", "150ms")
        );
        let path = dir.join("t.toml");
        std::fs::write(&path, text).expect("write");
        let report = Tuner::load(&path, &TuneOptions::default())
            .expect("loads")
            .run(&|_, _| {}, &AtomicBool::new(false));
        for c in &report.candidates {
            let names: Vec<(&str, bool)> = c
                .apis
                .iter()
                .map(|a| (a.name.as_str(), a.pipeline))
                .collect();
            assert_eq!(names, [("a", false), ("b", false), ("qa", true)]);
            let qa = &c.apis[2];
            // The tune SLO's end-to-end objective, without its warmup (a pipeline has none).
            assert_eq!(qa.checks.len(), 1);
            assert_eq!(qa.checks[0].limit, 1000.0);
            let met = |i: usize| c.apis[i].checks.iter().all(|k| k.margin >= 0.0);
            assert_eq!(c.meets_slo, met(0) && met(1) && met(2), "{c:?}");
        }
        // Two replicas of b (1.5 erlangs) queue past 1 s end to end; four do not.
        assert!(report.candidates[0].apis[2].checks[0].margin < 0.0);
        let qualifies: Vec<bool> = report.candidates.iter().map(|c| c.meets_slo).collect();
        assert_eq!(qualifies, [false, true], "{:?}", report.candidates);
        assert_eq!(report.best, Some(1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
