//! The "Utilisation and headroom" section of a run: per API and per node group, what was
//! requested against what busy workers used (CPU and GPU), the headroom left at the busiest
//! step, and the GPUs' busy share over time. Requested capacity that sits unused is paid for:
//! a GPU node fully requested by one replica costs the same at 5 % or 95 % busy.

use contract::results::{share, Metric, Results};

use crate::chart::{Axis, Chart, Plot, Style, XyChart};
use crate::palette::Palette;

use crate::downsample::{segments, MAX_POINTS};

use super::timeline::{interruption_lines, line};
use super::{pct, span, table, time_unit, Block};

/// Window of the GPU utilisation chart's moving average, seconds.
const SMOOTH_S: f64 = 300.0;

/// The mean of the defined values among the last `window` (this one included); undefined where
/// all of them are.
fn moving_average(values: &[Option<f64>], window: usize) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(values.len());
    let (mut sum, mut n) = (0.0, 0usize);
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            sum += v;
            n += 1;
        }
        if i >= window {
            if let Some(old) = values[i - window].filter(|v| v.is_finite()) {
                sum -= old;
                n -= 1;
            }
        }
        out.push((n > 0).then(|| (sum / n as f64).clamp(0.0, 1.0)));
    }
    out
}

fn hours(v: f64) -> String {
    format!("{v:.2}")
}

/// The section's blocks.
pub(super) fn utilisation(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let measured = r.apis.iter().any(|a| a.utilisation.is_some())
        || r.node_groups.iter().any(|g| g.utilisation.is_some());
    let mut blocks = vec![Block::Para(
        "Busy is a worker executing a request, counted as using its share of the pod's CPU use (its request unless compute.cpu_usage says otherwise) and GPU request; requested is what the pods asked the scheduler for. Headroom at the peak is what the busiest timeline step left of the ready workers. Shares of a node group are of its ready nodes' allocatable capacity.".into(),
    )];
    if !measured {
        blocks.push(Block::Para(
            "This results file was written before simctl measured utilisation; run the scenario again for these tables.".into(),
        ));
    }
    let dur = r.simulated_s().max(1e-9);
    let rows: Vec<Vec<String>> = r
        .apis
        .iter()
        .filter_map(|a| {
            let u = a.utilisation?;
            Some(vec![
                a.name.clone(),
                format!("{:.1}", a.replica_seconds / dur),
                format!("{:.2}", a.replica_seconds / 3600.0),
                pct(u.busy_share),
                pct(u.peak_busy_share),
                pct(1.0 - u.peak_busy_share),
                hours(u.cpu_requested_core_hours),
                hours(u.cpu_busy_core_hours),
                hours(u.gpu_requested_hours),
                hours(u.gpu_busy_hours),
            ])
        })
        .collect();
    if !rows.is_empty() {
        blocks.push(table(
            &[
                "API",
                "mean replicas",
                "replica-hours",
                "busy",
                "busiest step",
                "headroom at peak",
                "CPU requested core-h",
                "CPU busy core-h",
                "GPU requested h",
                "GPU busy h",
            ],
            &[false, true, true, true, true, true, true, true, true, true],
            rows,
        ));
    }
    let rows: Vec<Vec<String>> = r
        .node_groups
        .iter()
        .filter_map(|g| {
            let u = g.utilisation?;
            let gpu = |v: f64| {
                if u.gpu_capacity_hours > 0.0 {
                    pct(share(v, u.gpu_capacity_hours))
                } else {
                    "–".into()
                }
            };
            Some(vec![
                g.name.clone(),
                if g.spot { "spot" } else { "on-demand" }.to_string(),
                format!("{:.2}", g.node_hours),
                pct(share(u.cpu_requested_core_hours, u.cpu_capacity_core_hours)),
                pct(share(u.cpu_busy_core_hours, u.cpu_capacity_core_hours)),
                gpu(u.gpu_requested_hours),
                gpu(u.gpu_busy_hours),
                if u.gpu_capacity_hours > 0.0 {
                    pct(share(u.gpu_busy_hours, u.gpu_requested_hours))
                } else {
                    pct(share(u.cpu_busy_core_hours, u.cpu_requested_core_hours))
                },
            ])
        })
        .collect();
    if !rows.is_empty() {
        blocks.push(table(
            &[
                "node group",
                "capacity",
                "node-hours",
                "CPU requested",
                "CPU busy",
                "GPU requested",
                "GPU busy",
                "busy of requested",
            ],
            &[false, false, true, true, true, true, true, true],
            rows,
        ));
    }
    let (div, x_label) = time_unit(r.simulated_s());
    let t: Vec<f64> = r.timeline.t_s.iter().map(|t| t / div).collect();
    // A step's busy share is a point sample of a few workers (0, 25, 50 … % on a 4-worker GPU):
    // a moving average over SMOOTH_S reads better.
    let window = (SMOOTH_S / r.timeline.step_s.max(1e-9)).round().max(1.0) as usize;
    let mut series = Vec::new();
    for g in &r.node_groups {
        let Some(values) = r.timeline.get(Metric::GpuUtil, &g.name) else {
            continue;
        };
        let seg = segments(&t, &moving_average(values, window), MAX_POINTS);
        // Solid even for spot groups: a jagged busy share drawn dashed is thousands of dashes.
        let mut s = line(
            format!("{} GPUs busy (%)", g.name),
            palette.group(&g.name),
            Style::Line,
            Axis::Left,
        );
        s.segments = seg
            .into_iter()
            .map(|run| run.into_iter().map(|(t, v)| (t, 100.0 * v)).collect())
            .collect();
        series.push(s);
    }
    if !series.is_empty() {
        blocks.push(Block::Chart(Chart {
            id: format!("{prefix}gpu-util"),
            title: format!(
                "GPU utilisation: busy GPUs over ready GPUs, per node group ({} moving average)",
                span(SMOOTH_S)
            ),
            plot: Plot::Xy(XyChart {
                x_label: x_label.into(),
                y_label: "GPUs busy (%)".into(),
                y2_label: None,
                log_x: false,
                log_y: false,
                series,
                events: interruption_lines(r, div),
                markers: vec![],
                hlines: vec![],
            }),
        }));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_skips_gaps() {
        let v = [Some(0.0), Some(1.0), None, Some(0.5), None, None, None];
        let m = moving_average(&v, 2);
        assert_eq!(
            m,
            [
                Some(0.0),
                Some(0.5),
                Some(1.0),
                Some(0.5),
                Some(0.5),
                None,
                None
            ]
        );
    }
}
