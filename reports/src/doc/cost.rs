//! The "Cost" section of a run: total and unrequested cost, cost per month and per million
//! requests, and the breakdown by node group and by API.

use contract::results::Results;

use crate::chart::{BarChart, BarSeries, Chart, Plot};
use crate::palette::{Palette, LIGHT, NEUTRAL};

use super::{pct, table, usd, Block};

pub(super) fn cost(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let savings: f64 = r.node_groups.iter().map(|g| g.spot_savings_usd).sum();
    let nodes: f64 = r.node_groups.iter().map(|g| g.cost_usd).sum();
    blocks.push(Block::Para(format!(
        "Total {} USD: nodes {} USD (of which unrequested capacity — node capacity no pod asked for — {} USD = {} of node cost) and control plane {} USD. Spot capacity saved {} USD against the same node-hours on demand. Requested capacity is paid for however busy it is: see Utilisation and headroom.",
        usd(r.cost_usd_total),
        usd(nodes),
        usd(r.idle_cost_usd),
        pct(if nodes > 0.0 { r.idle_cost_usd / nodes } else { 0.0 }),
        usd(r.control_plane_cost_usd),
        usd(savings),
    )));
    let requests: u64 = r.apis.iter().map(|a| a.requests).sum();
    if let Some(month) = cost_per_month_usd(r) {
        blocks.push(Block::Para(format!(
            "At this run's average rate: {} USD per month (730 h){}.",
            usd(month),
            if requests > 0 {
                format!(
                    " and {} USD per million requests",
                    usd(r.cost_usd_total / requests as f64 * 1e6)
                )
            } else {
                String::new()
            }
        )));
    }
    let rows = r
        .node_groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.instance_type.clone(),
                if g.spot { "spot" } else { "on-demand" }.to_string(),
                format!("{:.3}", g.price_usd_per_hour),
                format!("{:.2}", g.node_hours),
                g.peak_nodes.to_string(),
                usd(g.cost_usd),
                g.interruptions.to_string(),
                g.failed_launches.to_string(),
                usd(g.spot_savings_usd),
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "node group",
            "instance",
            "capacity",
            "USD/h per node",
            "node-hours",
            "peak nodes",
            "cost USD",
            "interruptions",
            "failed launches",
            "spot savings USD",
        ],
        &[
            false, false, false, true, true, true, true, true, true, true,
        ],
        rows,
    ));
    let rows = r
        .apis
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                usd(a.cost_usd),
                pct(if r.cost_usd_total > 0.0 {
                    a.cost_usd / r.cost_usd_total
                } else {
                    0.0
                }),
                if a.completed > 0 {
                    format!("{:.4}", a.cost_usd / a.completed as f64 * 1000.0)
                } else {
                    "–".into()
                },
            ]
        })
        .chain([
            vec![
                "(unrequested capacity)".into(),
                usd(r.idle_cost_usd),
                pct(r.idle_cost_usd / r.cost_usd_total.max(1e-12)),
                "–".into(),
            ],
            vec![
                "(control plane)".into(),
                usd(r.control_plane_cost_usd),
                pct(r.control_plane_cost_usd / r.cost_usd_total.max(1e-12)),
                "–".into(),
            ],
        ])
        .collect();
    blocks.push(table(
        &["API", "cost USD", "share", "USD per 1k completed"],
        &[false, true, true, true],
        rows,
    ));
    let mut series: Vec<BarSeries> = r
        .node_groups
        .iter()
        .map(|g| BarSeries {
            name: format!("{} ({})", g.name, if g.spot { "spot" } else { "on-demand" }),
            color: palette.group(&g.name),
            values: vec![g.cost_usd, 0.0],
        })
        .collect();
    series.extend(r.apis.iter().map(|a| BarSeries {
        name: a.name.clone(),
        color: palette.api(&a.name),
        values: vec![0.0, a.cost_usd],
    }));
    series.push(BarSeries {
        name: "unrequested capacity".into(),
        color: LIGHT,
        values: vec![0.0, r.idle_cost_usd],
    });
    series.push(BarSeries {
        name: "control plane".into(),
        color: NEUTRAL,
        values: vec![r.control_plane_cost_usd, r.control_plane_cost_usd],
    });
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}cost-breakdown"),
        title: "Cost breakdown: by node group and by API".into(),
        plot: Plot::Bar(BarChart {
            y_label: "cost (USD)".into(),
            categories: vec!["by node group".into(), "by API (+ unrequested)".into()],
            series,
            stacked: true,
            hlines: vec![],
        }),
    }));
    blocks
}

/// Hours in the average month, as cloud price sheets count them.
pub(super) const HOURS_PER_MONTH: f64 = 730.0;

/// The run's cost extrapolated to a month at its average rate; `None` for an empty run.
pub(super) fn cost_per_month_usd(r: &Results) -> Option<f64> {
    let h = r.simulated_s() / 3600.0;
    (h > 0.0).then(|| r.cost_usd_total / h * HOURS_PER_MONTH)
}

/// Nodes at the peak, summed over the node groups.
pub(super) fn peak_nodes(r: &Results) -> u32 {
    r.node_groups.iter().map(|g| g.peak_nodes).sum()
}
