//! The "Comparison" section: several runs side by side (replicas, nodes, cost and SLO per run,
//! what-if growth), the first run being the baseline; for a growth sweep (`report --growth`)
//! the "Growth sweep" section, the runs being one scenario at several traffic multiples.

use contract::results::Results;

use crate::chart::{Axis, BarChart, BarSeries, Chart, Plot, Series, Style, XyChart};
use crate::palette::{Palette, NEUTRAL};
use crate::Report;

use super::cost::{cost_per_month_usd, peak_nodes};
use super::{ms, pct, table, usd, Block, Section};

fn total_requests(r: &Results) -> u64 {
    r.apis.iter().map(|a| a.requests).sum()
}

fn worst_p99(r: &Results) -> f64 {
    r.apis.iter().map(|a| a.latency_ms.p99).fold(0.0, f64::max)
}

fn worst_rejection_rate(r: &Results) -> f64 {
    r.apis
        .iter()
        .map(|a| a.rejected as f64 / a.requests.max(1) as f64)
        .fold(0.0, f64::max)
}

/// Replica-seconds of every API.
fn replica_seconds(r: &Results) -> f64 {
    r.apis.iter().map(|a| a.replica_seconds).sum()
}

fn slo_word(r: &Results) -> String {
    let checks = r.apis.iter().map(|a| a.slo.checks.len()).sum::<usize>();
    if checks == 0 {
        "–".into()
    } else if r.apis.iter().all(|a| a.slo.met) {
        "met".into()
    } else {
        "MISSED".into()
    }
}

/// Side-by-side comparison of several runs, the first being the baseline.
pub(super) fn comparison(report: &Report, palette: &Palette) -> Vec<Section> {
    let runs = &report.runs;
    let base = runs
        .first()
        .map_or(0, |r| total_requests(&r.results))
        .max(1) as f64;
    let sweep = report.growth.len() == runs.len() && !runs.is_empty();
    let growth: Vec<f64> = if sweep {
        report.growth.clone()
    } else {
        runs.iter()
            .map(|r| total_requests(&r.results) as f64 / base)
            .collect()
    };
    let mut blocks = vec![Block::Para(if sweep {
        format!(
            "The scenario \"{}\" run at {} its traffic (every API's rates multiplied, the same seed), side by side.",
            runs[0].results.scenario_name,
            growth
                .iter()
                .map(|g| format!("{}×", crate::chart::format_number(*g)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "{} runs side by side; traffic is each run's total requests relative to the first ({}). Mean replicas and replica-hours are summed over the APIs.",
            runs.len(),
            runs.first().map_or("", |r| r.label.as_str())
        )
    })];
    let rows = runs
        .iter()
        .zip(&growth)
        .map(|(run, g)| {
            let r = &run.results;
            let requests = total_requests(r);
            vec![
                run.label.clone(),
                r.scenario_name.clone(),
                format!("{g:.2}×"),
                requests.to_string(),
                format!("{:.1}", replica_seconds(r) / r.simulated_s().max(1e-9)),
                format!("{:.2}", replica_seconds(r) / 3600.0),
                peak_nodes(r).to_string(),
                format!(
                    "{:.2}",
                    r.node_groups.iter().map(|g| g.node_hours).sum::<f64>()
                ),
                usd(r.cost_usd_total),
                cost_per_month_usd(r).map_or("–".into(), usd),
                if requests > 0 {
                    usd(r.cost_usd_total / requests as f64 * 1e6)
                } else {
                    "–".into()
                },
                ms(worst_p99(r)),
                pct(worst_rejection_rate(r)),
                slo_word(r),
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "run",
            "scenario",
            "traffic",
            "requests",
            "mean replicas",
            "replica-hours",
            "peak nodes",
            "node-hours",
            "cost USD",
            "USD per month",
            "USD per 1M requests",
            "worst p99 ms",
            "worst rejected",
            "SLO",
        ],
        &[
            false, false, true, true, true, true, true, true, true, true, true, true, true, false,
        ],
        rows,
    ));
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    // Every group seen in any run, in first-seen order.
    let mut groups: Vec<(String, bool)> = Vec::new();
    for run in runs {
        for g in &run.results.node_groups {
            if !groups.iter().any(|(n, _)| *n == g.name) {
                groups.push((g.name.clone(), g.spot));
            }
        }
    }
    let per_group = |f: &dyn Fn(&contract::results::NodeGroupResults) -> f64| -> Vec<BarSeries> {
        groups
            .iter()
            .map(|(name, spot)| BarSeries {
                name: format!("{name} ({})", if *spot { "spot" } else { "on-demand" }),
                color: palette.group(name),
                values: runs
                    .iter()
                    .map(|run| {
                        run.results
                            .node_groups
                            .iter()
                            .find(|g| g.name == *name)
                            .map_or(0.0, f)
                    })
                    .collect(),
            })
            .collect()
    };
    let mut cost_series = per_group(&|g| g.cost_usd);
    cost_series.push(BarSeries {
        name: "control plane".into(),
        color: NEUTRAL,
        values: runs
            .iter()
            .map(|r| r.results.control_plane_cost_usd)
            .collect(),
    });
    blocks.push(Block::Chart(Chart {
        id: "compare-cost".into(),
        title: "Cost per run, by node group".into(),
        plot: Plot::Bar(BarChart {
            y_label: "cost (USD)".into(),
            categories: labels.clone(),
            series: cost_series,
            stacked: true,
            hlines: vec![],
        }),
    }));
    blocks.push(Block::Chart(Chart {
        id: "compare-nodes".into(),
        title: "Peak nodes per run, by node group".into(),
        plot: Plot::Bar(BarChart {
            y_label: "peak nodes".into(),
            categories: labels,
            series: per_group(&|g| f64::from(g.peak_nodes)),
            stacked: true,
            hlines: vec![],
        }),
    }));
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| growth[a].total_cmp(&growth[b]));
    let distinct = order
        .windows(2)
        .all(|w| (growth[w[1]] - growth[w[0]]).abs() > 1e-3);
    if distinct {
        let pts = |f: &dyn Fn(&Results) -> f64| {
            vec![order
                .iter()
                .map(|&i| (growth[i], f(&runs[i].results)))
                .collect::<Vec<_>>()]
        };
        blocks.push(Block::Para(
            "What-if growth: how cost, nodes and the SLO follow traffic across the runs.".into(),
        ));
        blocks.push(Block::Chart(Chart {
            id: "compare-growth".into(),
            title: "What-if growth: traffic → cost and peak nodes".into(),
            plot: Plot::Xy(XyChart {
                x_label: if sweep {
                    "traffic (× the scenario's)".into()
                } else {
                    "traffic (× first run's requests)".into()
                },
                y_label: "cost (USD)".into(),
                y2_label: Some("peak nodes".into()),
                log_x: false,
                log_y: false,
                series: vec![
                    Series {
                        name: "cost (USD)".into(),
                        color: plotters::style::RGBColor(0, 0, 0),
                        style: Style::LinePoints,
                        axis: Axis::Left,
                        segments: pts(&|r| r.cost_usd_total),
                    },
                    Series {
                        name: "peak nodes (all groups)".into(),
                        color: NEUTRAL,
                        style: Style::Dashed,
                        axis: Axis::Right,
                        segments: pts(&|r| f64::from(peak_nodes(r))),
                    },
                ],
                events: vec![],
                markers: vec![],
                hlines: vec![],
            }),
        }));
        blocks.push(slo_chart(runs, &order, &growth, sweep));
    }
    vec![Section {
        level: 2,
        title: if sweep { "Growth sweep" } else { "Comparison" }.into(),
        id: if sweep { "growth" } else { "comparison" }.into(),
        blocks,
    }]
}

/// Worst p99 (left) and worst rejection rate (right) against traffic, with the tightest p99
/// limit drawn.
fn slo_chart(runs: &[crate::Run], order: &[usize], growth: &[f64], sweep: bool) -> Block {
    let pts = |f: &dyn Fn(&Results) -> f64| {
        vec![order
            .iter()
            .map(|&i| (growth[i], f(&runs[i].results)))
            .collect::<Vec<_>>()]
    };
    let limit = runs
        .iter()
        .flat_map(|r| &r.results.apis)
        .flat_map(|a| &a.slo.checks)
        .filter(|c| c.objective == "latency_p99_ms")
        .map(|c| c.limit)
        .reduce(f64::min);
    Block::Chart(Chart {
        id: "compare-slo".into(),
        title: "What-if growth: traffic → worst p99 latency and rejections".into(),
        plot: Plot::Xy(XyChart {
            x_label: if sweep {
                "traffic (× the scenario's)".into()
            } else {
                "traffic (× first run's requests)".into()
            },
            y_label: "worst p99 latency (ms)".into(),
            y2_label: Some("worst rejected (%)".into()),
            log_x: false,
            log_y: false,
            series: vec![
                Series {
                    name: "worst p99 (ms)".into(),
                    color: plotters::style::RGBColor(0, 0, 0),
                    style: Style::LinePoints,
                    axis: Axis::Left,
                    segments: pts(&worst_p99),
                },
                Series {
                    name: "worst rejected (%)".into(),
                    color: crate::palette::ALERT,
                    style: Style::Dashed,
                    axis: Axis::Right,
                    segments: pts(&|r| 100.0 * worst_rejection_rate(r)),
                },
            ],
            events: vec![],
            markers: vec![],
            hlines: limit
                .map(|y| crate::chart::HLine {
                    name: "p99 objective".into(),
                    color: NEUTRAL,
                    y,
                })
                .into_iter()
                .collect(),
        }),
    })
}
