//! From evaluated candidates to a recommendation a planner can act on: the cheapest qualifying
//! candidate, ties broken toward the simpler and safer one (and said so), a flag when it sits on
//! an edge of the searched space, and the scenario and manifests that deploy it.

use std::collections::BTreeMap;

use super::{space, tuned_text, CandidateError, CandidateResult, Recommendation, TuneReport};
use crate::deploy;
use contract::tune::Parameter;

/// Costs closer than this are the same to a user (they print alike, to the cent).
const SAME_COST_USD: f64 = 0.005;

/// Pick the best candidate, the Pareto front and the recommendation from the candidates.
/// Deterministic: depends only on `report.candidates` (sorted by id) and the scenario text.
pub fn finalize(report: &mut TuneReport) {
    report.candidates.sort_by_key(|c| c.id);
    report.warnings.clear();
    let missing: Vec<&CandidateResult> = report
        .candidates
        .iter()
        .filter(|c| c.error.is_none() && !c.meets_slo)
        .collect();
    let early: Vec<&&CandidateResult> = missing
        .iter()
        .filter(|c| c.start_dominated.is_some())
        .collect();
    if let Some(first) = early.first() {
        report.warnings.push(format!(
            "{} of {} candidates that miss the SLO miss it mostly at the start of the run; e.g. candidate {}: {}",
            early.len(),
            missing.len(),
            first.id,
            first.start_dominated.as_deref().unwrap_or_default()
        ));
    }
    let full = report.seeds.len() as u32;
    let complete: Vec<&CandidateResult> = report
        .candidates
        .iter()
        .filter(|c| c.error.is_none() && c.seeds_evaluated == full)
        .collect();
    let finalists: Vec<&CandidateResult> =
        complete.iter().copied().filter(|c| c.meets_slo).collect();
    let mut risk_warnings = Vec::new();
    let (qualifying, risk_notes) = risk_filter(report.risk, &finalists, &mut risk_warnings);
    let (best, tie_note) = choose(&qualifying);
    let best_id = best.map(|c| c.id);
    let mut by_cost: Vec<&&CandidateResult> = complete.iter().collect();
    by_cost.sort_by(|a, b| {
        a.cost_usd_mean
            .total_cmp(&b.cost_usd_mean)
            .then(a.slo_ratio.total_cmp(&b.slo_ratio))
            .then(a.id.cmp(&b.id))
    });
    let mut pareto = Vec::new();
    let mut best_ratio = f64::INFINITY;
    for c in by_cost {
        if c.slo_ratio < best_ratio {
            best_ratio = c.slo_ratio;
            pareto.push(c.id);
        }
    }
    let mut failed = None;
    let recommended = best.and_then(|c| {
        let mut notes: Vec<String> = risk_notes.into_iter().chain(tie_note).collect();
        notes.extend(edges(&report.parameters, &c.params));
        // A candidate that ran but cannot be written out is the tool's fault, not the user's:
        // say so rather than report "no recommendation".
        recommendation(report, c, notes)
            .map_err(|e| {
                failed = Some(format!(
                    "candidate {} qualifies but its scenario or manifests could not be written: {e}",
                    c.id
                ))
            })
            .ok()
    });
    report.warnings.extend(failed);
    report.best = best_id;
    report.pareto = pareto;
    report.recommendation = recommended;
    // A shard sees only its own finalists: "none qualifies" is for the merged report to say.
    if report.shard.is_none() {
        report.warnings.extend(risk_warnings);
    }
}

/// With `[tune] risk`: the finalists whose breach probability's upper bound is within the limit,
/// and notes saying which cheaper finalists the risk phase rejected (or, when none qualifies, a
/// warning naming the least risky). Without it: every finalist.
fn risk_filter<'a>(
    spec: Option<contract::tune::RiskSpec>,
    finalists: &[&'a CandidateResult],
    warnings: &mut Vec<String>,
) -> (Vec<&'a CandidateResult>, Vec<String>) {
    let Some(spec) = spec else {
        return (finalists.to_vec(), Vec::new());
    };
    let within = |c: &CandidateResult| {
        c.risk
            .is_some_and(|r| r.upper_bound <= spec.max_breach_probability)
    };
    let qualifying: Vec<&CandidateResult> =
        finalists.iter().copied().filter(|c| within(c)).collect();
    let describe = |c: &CandidateResult| {
        c.risk.map_or_else(
            || format!("candidate {} (no risk estimate)", c.id),
            |r| {
                format!(
                    "candidate {} (${:.2}) breached on {} of {} seeds, breach probability ≤ {:.3} at {:.0} % confidence",
                    c.id,
                    c.cost_usd_mean,
                    r.breaches,
                    r.seeds,
                    r.upper_bound,
                    100.0 * spec.confidence
                )
            },
        )
    };
    let cheapest = qualifying
        .iter()
        .map(|c| c.cost_usd_mean)
        .min_by(f64::total_cmp);
    let mut notes = Vec::new();
    match cheapest {
        Some(cost) => {
            let mut rejected: Vec<&&CandidateResult> = finalists
                .iter()
                .filter(|c| !within(c) && c.cost_usd_mean < cost)
                .collect();
            rejected.sort_by(|a, b| a.cost_usd_mean.total_cmp(&b.cost_usd_mean));
            for c in rejected {
                notes.push(format!(
                    "cheaper but too risky: {} (limit {})",
                    describe(c),
                    spec.max_breach_probability
                ));
            }
        }
        None if !finalists.is_empty() => {
            let least = finalists.iter().min_by(|a, b| {
                let u = |c: &CandidateResult| c.risk.map_or(2.0, |r| r.upper_bound);
                u(a).total_cmp(&u(b)).then(a.id.cmp(&b.id))
            });
            if let Some(c) = least {
                warnings.push(format!(
                    "no candidate keeps its breach probability under {} with {:.0} % confidence; the least risky is {}",
                    spec.max_breach_probability,
                    100.0 * spec.confidence,
                    describe(c)
                ));
            }
        }
        None => {}
    }
    (qualifying, notes)
}

fn recommendation(
    report: &TuneReport,
    c: &CandidateResult,
    notes: Vec<String>,
) -> Result<Recommendation, CandidateError> {
    let tuned = tuned_text(&report.scenario_toml, &c.params)?;
    let manifests = deploy::manifests(&tuned, "tuned scenario").map_err(|e| match e {
        deploy::DeployError::Scenario(s) => CandidateError::Scenario(s),
        other => CandidateError::Deploy(other.to_string()),
    })?;
    let deploy_text = |r: Result<String, deploy::DeployError>| {
        r.map_err(|e| CandidateError::Deploy(e.to_string()))
    };
    Ok(Recommendation {
        id: c.id,
        params: c.params.clone(),
        cost_usd_mean: c.cost_usd_mean,
        scenario_fragment: fragment(&c.params)?,
        tuned_scenario: with_header(&tuned, report, c),
        cortex_yaml: deploy_text(manifests.cortex_yaml())?,
        cluster_yaml: deploy_text(manifests.cluster_yaml())?,
        kubernetes_yaml: deploy_text(manifests.kubernetes_yaml())?,
        karpenter_yaml: deploy_text(manifests.karpenter_yaml())?,
        deploy_notes: manifests.notes,
        notes,
    })
}

/// The cheapest qualifying candidate. Among those that cost the same, the one with the fewest
/// moving parts (overprovisioning, an autoscaling policy), then the most headroom (lowest
/// worst actual/limit), then the lowest id; the note says so when it mattered.
fn choose<'a>(qualifying: &[&'a CandidateResult]) -> (Option<&'a CandidateResult>, Option<String>) {
    let Some(cheapest) = qualifying
        .iter()
        .map(|c| c.cost_usd_mean)
        .min_by(f64::total_cmp)
    else {
        return (None, None);
    };
    let mut tied: Vec<&CandidateResult> = qualifying
        .iter()
        .copied()
        .filter(|c| c.cost_usd_mean - cheapest < SAME_COST_USD)
        .collect();
    tied.sort_by(|a, b| {
        moving_parts(&a.params)
            .len()
            .cmp(&moving_parts(&b.params).len())
            .then(a.slo_ratio.total_cmp(&b.slo_ratio))
            .then(a.cost_usd_mean.total_cmp(&b.cost_usd_mean))
            .then(a.id.cmp(&b.id))
    });
    let best = tied[0];
    let note = (tied.len() > 1).then(|| {
        let parts = moving_parts(&best.params);
        format!(
            "{} qualifying candidates cost {:.2} USD; #{} is chosen for the fewest moving parts ({}), then the most SLO headroom (worst objective at {:.0} % of its limit); the lowest id breaks what remains",
            tied.len(),
            best.cost_usd_mean,
            best.id,
            if parts.is_empty() {
                "no overprovisioning, a fixed count".to_string()
            } else {
                parts.join(", ")
            },
            100.0 * best.slo_ratio
        )
    });
    (Some(best), note)
}

/// The mechanisms a candidate relies on, among those the space sets: headroom on top of the
/// policy, and a policy that changes the count at run time.
fn moving_parts(params: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    params
        .iter()
        .filter_map(|(path, v)| match path.rsplit('.').next() {
            Some("overprovisioning") => {
                let zero = v.as_f64() == Some(0.0)
                    || v.as_str()
                        .is_some_and(|s| s.trim_end_matches('%').trim() == "0");
                (!zero).then(|| format!("overprovisioning {v}"))
            }
            Some("policy") => (v.as_str() != Some("fixed")).then(|| format!("policy {v}")),
            _ => None,
        })
        .collect()
}

/// A note for each numeric dimension whose chosen value is the highest searched, or the lowest
/// above zero: the optimum may lie beyond it.
fn edges(parameters: &[Parameter], chosen: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    let mut notes = Vec::new();
    for p in parameters {
        let Some(value) = chosen.get(&p.path).and_then(serde_json::Value::as_f64) else {
            continue;
        };
        let numbers: Option<Vec<f64>> = p.values.iter().map(serde_json::Value::as_f64).collect();
        let Some(numbers) = numbers.filter(|n| n.len() > 1) else {
            continue;
        };
        let lo = numbers.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let edge = if value == hi {
            "highest"
        } else if value == lo && value > 0.0 {
            "lowest"
        } else {
            continue;
        };
        notes.push(format!(
            "{} = {} is the {edge} value searched ({lo}–{hi}): the optimum may lie beyond it; widen this dimension to be sure",
            p.path, chosen[&p.path]
        ));
    }
    notes
}

/// The tuned scenario as a file of its own: a header saying where it came from, and the
/// original's leading comments minus the paragraphs about tuning it (the command line, the
/// search), which no longer apply.
fn with_header(tuned: &str, report: &TuneReport, c: &CandidateResult) -> String {
    let split = tuned
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        .count();
    let lines: Vec<&str> = tuned.lines().collect();
    let (lead, body) = lines.split_at(split);
    let mut kept = Vec::new();
    for paragraph in lead.split(|l| {
        let t = l.trim();
        t.is_empty() || t == "#"
    }) {
        let stale = paragraph.iter().any(|l| {
            let l = l.to_lowercase();
            l.contains("simctl tune")
                || l.contains("-- tune")
                || l.contains("[tune")
                || l.contains("tuner")
                || l.contains("write-scenario")
        });
        if !paragraph.is_empty() && !stale {
            kept.push(paragraph.join("\n"));
        }
    }
    let changes: Vec<String> = c
        .params
        .iter()
        .map(|(k, v)| format!("#   {k} = {v}"))
        .collect();
    let mut out = format!(
        "# Written by `simctl tune` from \"{}\": candidate {}, {:.2} USD mean over {} seed(s), SLO met on every seed.\n# The searched settings it chose:\n{}\n",
        report.scenario_name,
        c.id,
        c.cost_usd_mean,
        report.seeds.len(),
        changes.join("\n")
    );
    for paragraph in kept {
        out.push_str("#\n");
        out.push_str(&paragraph);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(body.join("\n").trim_start());
    out.push('\n');
    out
}

/// Only the overridden settings, as a scenario fragment with named `[[apis]]` / `[[node_groups]]`.
fn fragment(params: &BTreeMap<String, serde_json::Value>) -> Result<String, CandidateError> {
    let mut skeleton = String::new();
    for key in ["node_groups", "node_pools", "apis"] {
        let mut names: Vec<&str> = params
            .keys()
            .filter_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('.')))
            .filter_map(|r| r.split('.').next())
            .collect();
        names.dedup();
        for name in names {
            skeleton.push_str(&format!("[[{key}]]\nname = \"{name}\"\n\n"));
        }
    }
    let mut doc: toml_edit::DocumentMut = skeleton.parse()?;
    space::apply(&mut doc, params)?;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests;
