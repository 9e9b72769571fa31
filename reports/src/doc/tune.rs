//! The tuning sections: the cost–SLO Pareto front of the candidates and the recommended
//! configuration (as a scenario fragment and as Cortex API settings).

use std::collections::BTreeMap;

use contract::tune::{ApiSummary, TuneReport};

use crate::chart::{Axis, Chart, HLine, Markers, Plot, Series, Style, XyChart};
use crate::palette::{ALERT, LIGHT, NEUTRAL};
use crate::Tune;

use super::{objective_limit, objective_value, table, usd, Block, Section};

fn params_text(params: &BTreeMap<String, serde_json::Value>) -> String {
    params
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k} = {s}"),
            other => format!("{k} = {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn tune_sections(tune: &Tune) -> Vec<Section> {
    let t: &TuneReport = &tune.report;
    let evaluated = t.candidates.len();
    let valid: Vec<_> = t.candidates.iter().filter(|c| c.error.is_none()).collect();
    let qualifying = valid.iter().filter(|c| c.meets_slo).count();
    let mut blocks = vec![Block::Para(format!(
        "Tuning of \"{}\" from {}: {} search over {} parameter(s), {} of {} candidates evaluated ({} invalid), {} seed(s) each; {} meet the SLO on every seed.{}",
        t.scenario_name,
        tune.file_name,
        match t.search {
            contract::tune::Search::Grid => "grid",
            contract::tune::Search::Halving => "successive-halving",
        },
        t.parameters.len(),
        evaluated,
        t.grid_size,
        evaluated - valid.len(),
        t.seeds.len(),
        qualifying,
        if t.interrupted {
            " The sweep was interrupted: unfinished candidates are not eligible."
        } else {
            ""
        }
    ))];
    let by_id: BTreeMap<u64, &contract::tune::CandidateResult> =
        t.candidates.iter().map(|c| (c.id, c)).collect();
    let pass = |c: &&&contract::tune::CandidateResult| c.meets_slo;
    let point = |c: &&contract::tune::CandidateResult| (c.cost_usd_mean, c.slo_ratio.max(1e-3));
    let mut front: Vec<(f64, f64)> = t
        .pareto
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(point)
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let best: Vec<(f64, f64)> = t
        .best
        .and_then(|id| by_id.get(&id))
        .map(point)
        .into_iter()
        .collect();
    let log_y = {
        let ys: Vec<f64> = valid
            .iter()
            .map(|c| c.slo_ratio)
            .filter(|v| *v > 0.0)
            .collect();
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(0.0, f64::max);
        lo.is_finite() && hi / lo > 8.0
    };
    blocks.push(Block::Chart(Chart {
        id: "tune-pareto".into(),
        title: "Tuning: cost vs SLO ratio (Pareto front)".into(),
        plot: Plot::Xy(XyChart {
            x_label: "mean total cost per run (USD)".into(),
            y_label: format!(
                "worst actual/limit over objectives{}",
                if log_y { " (log scale)" } else { "" }
            ),
            y2_label: None,
            log_x: false,
            log_y,
            series: vec![
                Series {
                    name: "meets the SLO".into(),
                    color: plotters::style::RGBColor(44, 160, 44),
                    style: Style::Points,
                    axis: Axis::Left,
                    segments: vec![valid.iter().filter(pass).map(point).collect()],
                },
                Series {
                    name: "misses the SLO".into(),
                    color: LIGHT,
                    style: Style::Points,
                    axis: Axis::Left,
                    segments: vec![valid.iter().filter(|c| !c.meets_slo).map(point).collect()],
                },
                Series {
                    name: "Pareto front".into(),
                    color: NEUTRAL,
                    style: Style::LinePoints,
                    axis: Axis::Left,
                    segments: vec![front],
                },
            ],
            events: vec![],
            markers: vec![Markers {
                name: "recommended".into(),
                color: ALERT,
                axis: Axis::Left,
                points: best,
            }],
            hlines: vec![HLine {
                name: "SLO limit (ratio 1)".into(),
                color: ALERT,
                y: 1.0,
            }],
        }),
    }));
    let rows = t
        .pareto
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|c| {
            vec![
                c.id.to_string(),
                params_text(&c.params),
                usd(c.cost_usd_mean),
                format!("{:.3}", c.slo_ratio),
                if c.meets_slo { "yes" } else { "no" }.to_string(),
                if Some(c.id) == t.best {
                    "recommended"
                } else {
                    ""
                }
                .to_string(),
            ]
        })
        .collect();
    blocks.push(Block::Para(
        "The Pareto front: no other candidate is both cheaper and further within its objectives."
            .into(),
    ));
    blocks.push(table(
        &["id", "parameters", "cost USD", "SLO ratio", "meets SLO", ""],
        &[true, false, true, true, false, false],
        rows,
    ));
    let mut rec = Vec::new();
    match &t.recommendation {
        Some(r) => {
            rec.push(Block::Verdict {
                ok: true,
                text: format!(
                    "Recommended: candidate {} at {} USD mean cost per run.",
                    r.id,
                    usd(r.cost_usd_mean)
                ),
            });
            rec.push(table(
                &["parameter", "value"],
                &[false, false],
                r.params
                    .iter()
                    .map(|(k, v)| {
                        vec![
                            k.clone(),
                            match v {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                        ]
                    })
                    .collect(),
            ));
            if let Some(c) = by_id.get(&r.id) {
                let rows = c
                    .apis
                    .iter()
                    .flat_map(|a| {
                        a.checks.iter().map(move |k| {
                            vec![
                                if a.pipeline {
                                    format!("pipeline {} (end to end)", a.name)
                                } else {
                                    a.name.clone()
                                },
                                k.objective.clone(),
                                objective_limit(&k.objective, k.limit),
                                objective_value(&k.objective, k.mean),
                                objective_value(&k.objective, k.worst),
                                format!("{:.1} %", 100.0 * k.margin),
                            ]
                        })
                    })
                    .collect();
                rec.push(table(
                    &["API", "objective", "limit", "mean", "worst seed", "margin"],
                    &[false, false, true, true, true, true],
                    rows,
                ));
            }
            rec.push(Block::Para("The change, as a scenario fragment:".into()));
            rec.push(Block::Code {
                lang: "toml".into(),
                text: r.scenario_fragment.trim_end().to_string(),
            });
            for note in &r.notes {
                rec.push(Block::Para(note.clone()));
            }
            for (title, text) in [
                ("Cortex API specs (`cortex deploy`):", &r.cortex_yaml),
                (
                    "Cortex cluster node groups (`cluster.yaml`):",
                    &r.cluster_yaml,
                ),
                (
                    "Kubernetes manifests (`kubectl apply`):",
                    &r.kubernetes_yaml,
                ),
                ("Karpenter NodePools (`kubectl apply`):", &r.karpenter_yaml),
            ] {
                if !text.trim().is_empty() {
                    rec.push(Block::Para(title.into()));
                    rec.push(Block::Code {
                        lang: "yaml".into(),
                        text: text.trim_end().to_string(),
                    });
                }
            }
            if !r.deploy_notes.is_empty() {
                rec.push(Block::Para(format!(
                    "What the manifests cannot carry exactly: {}",
                    r.deploy_notes.join("; ")
                )));
            }
        }
        None => rec.push(Block::Verdict {
            ok: false,
            text: if t.risk.is_some() {
                "No candidate met the SLO on every seed with its breach probability within the limit: nothing to recommend."
            } else {
                "No candidate met the SLO on every seed: nothing to recommend."
            }
            .into(),
        }),
    }
    let mut sections = vec![Section {
        level: 2,
        title: "Tuning: cost–SLO Pareto front".into(),
        id: "tune".into(),
        blocks,
    }];
    sections.extend(risk_section(t));
    sections.extend(tenants_section(t));
    sections.extend(pipelines_section(t));
    sections.push(Section {
        level: 2,
        title: "Tuning: recommended configuration".into(),
        id: "tune-recommendation".into(),
        blocks: rec,
    });
    sections
}

/// Entries of a candidate shown in a table of their own, one column per entry name.
struct PerCandidate {
    /// The name of an entry to show (a tenant's, a pipeline's), or none.
    pick: fn(&ApiSummary) -> Option<&str>,
    /// What the column says after the name.
    column: &'static str,
    title: &'static str,
    id: &'static str,
    intro: &'static str,
}

/// When the APIs have tenants: every candidate's cost beside each tenant's worst p99 and its own
/// objectives' verdict, cheapest first — how a tenancy design or a fairness option trades cost
/// against the tenants' SLOs.
fn tenants_section(t: &TuneReport) -> Option<Section> {
    per_candidate_section(
        t,
        &PerCandidate {
            pick: |a| a.tenant.as_deref(),
            column: "p99, refused",
            title: "Tuning: every tenant, candidate by candidate",
            id: "tune-tenants",
            intro: "Each tenant's worst p99 and refused share over the seeds, and whether its own objectives held on every seed (they count toward the candidate's verdict like the APIs'), cheapest candidate first.",
        },
    )
}

/// When the scenario has pipelines: every candidate's cost beside each pipeline's worst
/// end-to-end p99 and rejected share and whether its end-to-end SLO held, cheapest first.
fn pipelines_section(t: &TuneReport) -> Option<Section> {
    per_candidate_section(
        t,
        &PerCandidate {
            pick: |a| a.pipeline.then_some(a.name.as_str()),
            column: "end-to-end p99, rejected",
            title: "Tuning: every pipeline end to end, candidate by candidate",
            id: "tune-pipelines",
            intro: "Each pipeline's worst end-to-end p99 (the sum of its stages' latencies) and rejected share over the seeds, and whether its end-to-end SLO held on every seed: a candidate qualifies only when every API's SLO and every pipeline's end-to-end SLO hold. Cheapest candidate first.",
        },
    )
}

/// The table of `what` for every valid candidate, cheapest first; none when no candidate has
/// such entries.
fn per_candidate_section(t: &TuneReport, what: &PerCandidate) -> Option<Section> {
    let mut names: Vec<&str> = Vec::new();
    for a in t.candidates.iter().flat_map(|c| &c.apis) {
        if let Some(name) = (what.pick)(a) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let mut valid: Vec<_> = t.candidates.iter().filter(|c| c.error.is_none()).collect();
    valid.sort_by(|a, b| {
        a.cost_usd_mean
            .total_cmp(&b.cost_usd_mean)
            .then(a.id.cmp(&b.id))
    });
    let rows = valid
        .iter()
        .map(|c| {
            let mut row = vec![
                c.id.to_string(),
                params_text(&c.params),
                usd(c.cost_usd_mean),
            ];
            for name in &names {
                // A tenant fed to several APIs: its worst figures over them.
                let own: Vec<_> = c
                    .apis
                    .iter()
                    .filter(|a| (what.pick)(a) == Some(*name))
                    .collect();
                let p99 = own
                    .iter()
                    .map(|a| a.latency_p99_ms_worst)
                    .fold(0.0, f64::max);
                let refused = own
                    .iter()
                    .map(|a| a.rejection_rate_worst)
                    .fold(0.0, f64::max);
                let checks = own.iter().flat_map(|a| &a.checks);
                let verdict = match checks.clone().count() {
                    0 => "",
                    _ if checks.clone().all(|k| k.margin >= 0.0) => " met",
                    _ => " MISSED",
                };
                row.push(format!("{p99:.0} ms, {:.1} %{verdict}", 100.0 * refused));
            }
            row.push(
                if Some(c.id) == t.best {
                    "recommended"
                } else {
                    ""
                }
                .to_string(),
            );
            row
        })
        .collect();
    let mut header = vec!["id", "parameters", "cost USD"];
    let columns: Vec<String> = names
        .iter()
        .map(|n| format!("{n}: {}", what.column))
        .collect();
    header.extend(columns.iter().map(String::as_str));
    header.push("");
    let mut numeric = vec![true, false, true];
    numeric.extend(names.iter().map(|_| true));
    numeric.push(false);
    Some(Section {
        level: 2,
        title: what.title.into(),
        id: what.id.into(),
        blocks: vec![
            Block::Para(what.intro.into()),
            table(&header, &numeric, rows),
        ],
    })
}

/// With `[tune] risk`: every finalist's cost against its breach probability over the risk seeds,
/// by cost, so the price of each step down in risk reads off one table.
fn risk_section(t: &TuneReport) -> Option<Section> {
    let spec = t.risk?;
    let mut finalists: Vec<_> = t
        .candidates
        .iter()
        .filter_map(|c| c.risk.map(|r| (c, r)))
        .collect();
    finalists.sort_by(|a, b| {
        a.0.cost_usd_mean
            .total_cmp(&b.0.cost_usd_mean)
            .then(a.0.id.cmp(&b.0.id))
    });
    let rows = finalists
        .iter()
        .map(|(c, r)| {
            vec![
                c.id.to_string(),
                params_text(&c.params),
                usd(c.cost_usd_mean),
                format!("{} / {}", r.breaches, r.seeds),
                format!("{:.3}", r.breach_probability),
                format!("{:.3}", r.upper_bound),
                if Some(c.id) == t.best {
                    "recommended"
                } else if r.upper_bound <= spec.max_breach_probability {
                    "within the limit"
                } else {
                    "too risky"
                }
                .to_string(),
            ]
        })
        .collect();
    Some(Section {
        level: 2,
        title: "Tuning: cost against breach probability".into(),
        id: "tune-risk".into(),
        blocks: vec![
            Block::Para(format!(
                "Every candidate that met the SLO on the {} search seed(s) ran on {} seeds (the same for all). A candidate qualifies when the one-sided {:.0} % Clopper–Pearson upper bound on its probability of breaching the SLO in a run is at most {}.",
                t.seeds.len(),
                spec.seeds,
                100.0 * spec.confidence,
                spec.max_breach_probability
            )),
            table(
                &[
                    "id",
                    "parameters",
                    "cost USD",
                    "breaches",
                    "breach probability",
                    "upper bound",
                    "",
                ],
                &[true, false, true, true, true, true, false],
                rows,
            ),
        ],
    })
}
