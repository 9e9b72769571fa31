//! The "Latency" section of a run: percentiles, the latency distribution and p99 over time.

use contract::results::{Metric, Results};

use crate::chart::{format_number, Axis, BarChart, BarSeries, Chart, HLine, Plot, Style, XyChart};
use crate::downsample::MAX_POINTS;
use crate::palette::{Palette, ALERT};

use super::timeline::{interruption_lines, line, series_points};
use super::{ms, slo_limit, table, time_unit, Block};

pub(super) fn latency(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let (div, x_label) = time_unit(r.simulated_s());
    let limit = slo_limit(r, "latency_p99_ms");
    let slo_line = |y: f64| HLine {
        name: format!("SLO p99 limit ({} ms)", format_number(y)),
        color: ALERT,
        y,
    };
    let mut blocks = Vec::new();
    let rows = r
        .apis
        .iter()
        .flat_map(|a| {
            [("latency", a.latency_ms), ("queue wait", a.queue_wait_ms)]
                .into_iter()
                .map(move |(what, p)| {
                    vec![
                        a.name.clone(),
                        what.to_string(),
                        ms(p.mean),
                        ms(p.p50),
                        ms(p.p90),
                        ms(p.p99),
                        ms(p.p999),
                        ms(p.max),
                    ]
                })
        })
        .collect();
    blocks.push(table(
        &["API", "ms", "mean", "p50", "p90", "p99", "p99.9", "max"],
        &[false, false, true, true, true, true, true, true],
        rows,
    ));
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}latency-percentiles"),
        title: "Latency percentiles per API (completed requests)".into(),
        plot: Plot::Bar(BarChart {
            y_label: "latency (ms)".into(),
            categories: ["p50", "p90", "p99", "p99.9"].map(String::from).to_vec(),
            series: r
                .apis
                .iter()
                .map(|a| BarSeries {
                    name: a.name.clone(),
                    color: palette.api(&a.name),
                    values: vec![
                        a.latency_ms.p50,
                        a.latency_ms.p90,
                        a.latency_ms.p99,
                        a.latency_ms.p999,
                    ],
                })
                .collect(),
            stacked: false,
            hlines: limit.map(slo_line).into_iter().collect(),
        }),
    }));
    let mut notes = Vec::new();
    let series = r
        .apis
        .iter()
        .map(|a| {
            let mut s = line(
                format!("{} p99", a.name),
                palette.api(&a.name),
                Style::LinePoints,
                Axis::Left,
            );
            // x: latency (log scale); y: share of requests at or below it.
            match contract::results::decode_histogram(&a.latency_histogram) {
                Ok(h) if !h.is_empty() => {
                    s.name = a.name.clone();
                    s.style = Style::Line;
                    let mut pts: Vec<(f64, f64)> = h
                        .iter_quantiles(4)
                        .map(|v| {
                            (
                                (v.value_iterated_to() as f64 / 1000.0).max(0.001),
                                100.0 * v.quantile_iterated_to(),
                            )
                        })
                        .collect();
                    pts.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
                    s.segments = vec![crate::downsample_min_max(&pts, MAX_POINTS)];
                }
                Ok(_) => s.name = format!("{} (no completed request)", a.name),
                Err(e) => {
                    notes.push(format!("{}: latency histogram unreadable ({e}).", a.name));
                    s.name = format!("{} (histogram unreadable)", a.name);
                }
            }
            s
        })
        .collect();
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}latency-distribution"),
        title: "Latency distribution (cumulative, from the HDR histograms)".into(),
        plot: Plot::Xy(XyChart {
            x_label: "latency (ms, log scale)".into(),
            y_label: "requests at or below (%)".into(),
            y2_label: None,
            log_x: true,
            log_y: false,
            series,
            events: vec![],
            markers: vec![],
            hlines: vec![],
        }),
    }));
    for n in notes {
        blocks.push(Block::Para(n));
    }
    let series = r
        .apis
        .iter()
        .map(|a| {
            let mut s = line(
                format!("{} p99", a.name),
                palette.api(&a.name),
                Style::Line,
                Axis::Left,
            );
            if let Some(seg) = series_points(r, Metric::LatencyP99Ms, &a.name, div) {
                s.segments = seg;
            }
            s
        })
        .collect();
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}latency-p99"),
        title: "p99 latency per timeline step".into(),
        plot: Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: "p99 latency (ms)".into(),
            y2_label: None,
            log_x: false,
            log_y: false,
            series,
            events: interruption_lines(r, div),
            markers: vec![],
            hlines: limit.map(slo_line).into_iter().collect(),
        }),
    }));
    blocks
}
