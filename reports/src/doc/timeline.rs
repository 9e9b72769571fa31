//! The "Timelines" section of a run (traffic, queue, replicas, nodes, cost rate over time), and
//! the timeline-series helpers the latency chart shares with it.

use contract::results::{Event, EventKind, Metric, Results};

use crate::chart::{format_number, Axis, Chart, EventLines, Markers, Plot, Series, Style, XyChart};
use crate::downsample::{segments, MAX_POINTS};
use crate::palette::{Palette, ALERT, LIGHT, NEUTRAL};

use super::{slug, time_unit, Block};

/// Most scale-up markers drawn per chart (a 24 h run can scale thousands of times).
const MAX_MARKERS: usize = 200;

/// A timeline series as chart segments in the run's time unit.
pub(super) fn series_points(
    r: &Results,
    metric: Metric,
    subject: &str,
    div: f64,
) -> Option<Vec<Vec<(f64, f64)>>> {
    let values = r.timeline.get(metric, subject)?;
    let t: Vec<f64> = r.timeline.t_s.iter().map(|t| t / div).collect();
    Some(segments(&t, values, MAX_POINTS))
}

pub(super) fn line(
    name: String,
    color: plotters::style::RGBColor,
    style: Style,
    axis: Axis,
) -> Series {
    Series {
        name,
        color,
        style,
        axis,
        segments: Vec::new(),
    }
}

/// Evenly thinned, keeping the first and order, so marker counts stay bounded.
pub(super) fn thin<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max)
        .map(|i| items[i * items.len() / max].clone())
        .collect()
}

pub(super) fn interruption_lines(r: &Results, div: f64) -> Vec<EventLines> {
    let mut out = Vec::new();
    let xs: Vec<f64> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::SpotInterruption)
        .map(|e| e.t_s / div)
        .collect();
    if !xs.is_empty() {
        out.push(EventLines {
            name: "spot interruption".into(),
            color: ALERT,
            xs: thin(&xs, MAX_MARKERS),
        });
    }
    let xs: Vec<f64> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::FailedLaunch)
        .map(|e| e.t_s / div)
        .collect();
    if !xs.is_empty() {
        out.push(EventLines {
            name: "failed node launch".into(),
            color: NEUTRAL,
            xs: thin(&xs, MAX_MARKERS),
        });
    }
    out
}

pub(super) fn is_scale_up(e: &Event) -> bool {
    matches!(&e.kind, EventKind::Scale(s) if s.to > s.from)
}

pub(super) fn timelines(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let (div, x_label) = time_unit(r.simulated_s());
    let mut blocks = vec![Block::Para(format!(
        "Sampled every {} s{}. Dashed vertical lines mark spot interruptions (red) and failed node launches (grey); triangles mark scale-ups at their new desired replica count.",
        format_number(r.timeline.step_s),
        if r.timeline.t_s.len() > MAX_POINTS {
            format!(
                "; {} samples per series, drawn as at most {MAX_POINTS} points keeping each bucket's minimum and maximum",
                r.timeline.t_s.len()
            )
        } else {
            String::new()
        }
    ))];
    let events = interruption_lines(r, div);
    for api in &r.apis {
        let c = palette.api(&api.name);
        let n = &api.name;
        let mut series = Vec::new();
        for (metric, label, style, axis, color) in [
            (Metric::Rps, "traffic (req/s)", Style::Line, Axis::Left, c),
            (
                Metric::ReplicasReady,
                "ready replicas",
                Style::Line,
                Axis::Right,
                NEUTRAL,
            ),
            (
                Metric::ReplicasDesired,
                "desired replicas",
                Style::Dashed,
                Axis::Right,
                LIGHT,
            ),
        ] {
            let mut s = line(format!("{n} {label}"), color, style, axis);
            if let Some(seg) = series_points(r, metric, n, div) {
                s.segments = seg;
            }
            series.push(s);
        }
        let ups: Vec<(f64, f64)> = r
            .events
            .iter()
            .filter(|e| is_scale_up(e) && e.api.as_deref() == Some(n))
            .filter_map(|e| match &e.kind {
                EventKind::Scale(s) => Some((e.t_s / div, f64::from(s.to))),
                _ => None,
            })
            .collect();
        blocks.push(Block::Chart(Chart {
            id: format!("{prefix}traffic-{}", slug(n)),
            title: format!("{n}: traffic vs ready and desired replicas"),
            plot: Plot::Xy(XyChart {
                x_label: x_label.into(),
                y_label: "traffic (requests/s)".into(),
                y2_label: Some("replicas".into()),
                log_x: false,
                log_y: false,
                series,
                events: events.clone(),
                markers: vec![Markers {
                    name: "scale-up".into(),
                    color: c,
                    axis: Axis::Right,
                    points: thin(&ups, MAX_MARKERS),
                }],
                hlines: vec![],
            }),
        }));
    }
    // Queue and in-flight, every API on one chart.
    let mut series = Vec::new();
    for api in &r.apis {
        let c = palette.api(&api.name);
        for (metric, label, style) in [
            (Metric::InFlight, "in flight", Style::Line),
            (Metric::Queue, "queued", Style::Dashed),
        ] {
            let mut s = line(format!("{} {label}", api.name), c, style, Axis::Left);
            if let Some(seg) = series_points(r, metric, &api.name, div) {
                s.segments = seg;
            }
            series.push(s);
        }
    }
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}queue"),
        title: "Requests in flight and queued".into(),
        plot: Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: "requests".into(),
            y2_label: None,
            log_x: false,
            log_y: false,
            series,
            events: vec![],
            markers: vec![],
            hlines: vec![],
        }),
    }));
    blocks.push(super::misses::rejections_chart(r, palette, prefix));
    // Nodes per group: spot dashed, on-demand solid.
    let mut series = Vec::new();
    let mut cost_series = Vec::new();
    for g in &r.node_groups {
        let c = palette.group(&g.name);
        let kind = if g.spot { "spot" } else { "on-demand" };
        let style = if g.spot { Style::Dashed } else { Style::Line };
        let mut s = line(format!("{} ({kind})", g.name), c, style, Axis::Left);
        let mut cs = line(format!("{} ({kind})", g.name), c, style, Axis::Left);
        if let Some(seg) = series_points(r, Metric::Nodes, &g.name, div) {
            cs.segments = seg
                .iter()
                .map(|run| {
                    run.iter()
                        .map(|&(t, n)| (t, n * g.price_usd_per_hour))
                        .collect()
                })
                .collect();
            s.segments = seg;
        }
        series.push(s);
        cost_series.push(cs);
    }
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}nodes"),
        title: "Nodes per group (spot dashed, on-demand solid)".into(),
        plot: Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: "nodes".into(),
            y2_label: None,
            log_x: false,
            log_y: false,
            series,
            events: events.clone(),
            markers: vec![],
            hlines: vec![],
        }),
    }));
    let mut total = line(
        "total incl. control plane".into(),
        NEUTRAL,
        Style::Line,
        Axis::Left,
    );
    if let Some(seg) = series_points(r, Metric::CostUsdPerHour, "cluster", div) {
        total.segments = seg;
    }
    cost_series.insert(0, total);
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}cost-rate"),
        title: "Cost rate".into(),
        plot: Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: "cost (USD/h)".into(),
            y2_label: None,
            log_x: false,
            log_y: false,
            series: cost_series,
            events,
            markers: vec![],
            hlines: vec![],
        }),
    }));
    blocks
}
