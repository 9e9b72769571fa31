//! The "Why the SLO was missed" section of a run: for each API that missed, the intervals its
//! offending requests fell in and the cause the simulator saw (from `slo.misses`), and the
//! rejections, timeouts and interruptions over time with spot interruptions marked.

use contract::results::{ApiResults, Metric, Results};

use crate::chart::{format_number, Axis, Chart, Plot, Style, XyChart};
use crate::palette::Palette;

use super::timeline::{interruption_lines, line, series_points};
use super::{clock, missed_sign, objective_value, pct, table, time_unit, Block};

/// The missed objectives of an API, e.g. `rejection_rate 2.70 % > 1.00 %` or
/// `goodput 80.00 % < 90.00 %`.
pub(super) fn missed_objectives(a: &ApiResults) -> String {
    a.slo
        .checks
        .iter()
        .filter(|c| !c.met)
        .map(|c| {
            let value = |v: f64| {
                if c.objective.ends_with("_rate") {
                    pct(v)
                } else {
                    objective_value(&c.objective, v)
                }
            };
            format!(
                "{} {} {} {}",
                c.objective,
                value(c.actual),
                missed_sign(&c.objective),
                value(c.limit)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether any API of the run missed an objective.
pub(super) fn any_missed(r: &Results) -> bool {
    r.apis
        .iter()
        .any(|a| !a.slo.met && !a.slo.checks.is_empty())
}

/// The section's blocks; call only when [`any_missed`].
pub(super) fn misses(r: &Results) -> Vec<Block> {
    let mut blocks = vec![Block::Para(
        "Where the requests that broke the SLO (rejected, timed out, or slower than a missed latency limit) fell, grouped into intervals of the timeline, with what the simulator saw going on then: replicas ready, desired and pending, node launches and spot reclaims. Shares are of each API's offending requests.".into(),
    )];
    let mut rows = Vec::new();
    for a in r
        .apis
        .iter()
        .filter(|a| !a.slo.met && !a.slo.checks.is_empty())
    {
        let Some(top) = a.slo.misses.first() else {
            let token_level = a.slo.checks.iter().filter(|c| !c.met).all(|c| {
                matches!(
                    c.objective.as_str(),
                    "ttft_p99_ms" | "itl_p99_ms" | "goodput"
                )
            });
            if token_level {
                blocks.push(Block::Para(format!(
                    "{}: {} — token-level objectives are not attributed to intervals; the LLM section's charts of waiting sequences, KV-cache usage and TTFT per step show when they slipped.",
                    a.name,
                    missed_objectives(a)
                )));
                continue;
            }
            blocks.push(Block::Para(format!(
                "{}: {} — no attribution in this file (written before simctl recorded one, or nothing offending after the warmup).",
                a.name,
                missed_objectives(a)
            )));
            continue;
        };
        blocks.push(Block::Para(format!(
            "{}: {}{}. {}.",
            a.name,
            missed_objectives(a),
            a.slo.warmup_s.map_or(String::new(), |w| format!(
                " (judged after a {} s warmup)",
                format_number(w)
            )),
            top.sentence()
        )));
        for m in &a.slo.misses {
            rows.push(vec![
                a.name.clone(),
                format!("{}–{}", clock(m.from_s), clock(m.to_s)),
                m.share_text(),
                m.rejected.to_string(),
                m.timed_out.to_string(),
                m.slow.to_string(),
                m.cause.label().to_string(),
                m.detail.clone(),
            ]);
        }
    }
    if !rows.is_empty() {
        blocks.push(table(
            &[
                "API",
                "interval",
                "share",
                "rejected",
                "timed out",
                "slow",
                "cause",
                "what happened",
            ],
            &[false, false, true, true, true, true, false, false],
            rows,
        ));
    }
    blocks.push(Block::Para(
        "The timelines show the rejections, timeouts and interruptions over time, with spot interruptions marked.".into(),
    ));
    blocks
}

/// Rejected, timed-out and interrupted requests per timeline step, every API on one chart.
pub(super) fn rejections_chart(r: &Results, palette: &Palette, prefix: &str) -> Block {
    let (div, x_label) = time_unit(r.simulated_s());
    let mut series = Vec::new();
    for api in &r.apis {
        let c = palette.api(&api.name);
        for (metric, label, style) in [
            (Metric::Rejected, "rejected", Style::Line),
            (Metric::TimedOut, "timed out", Style::Dashed),
            (Metric::Interrupted, "interrupted", Style::Points),
        ] {
            let Some(seg) = series_points(r, metric, &api.name, div) else {
                continue;
            };
            // A series that is zero throughout only clutters the legend.
            if seg.iter().flatten().all(|&(_, v)| v == 0.0) {
                continue;
            }
            let mut s = line(format!("{} {label}", api.name), c, style, Axis::Left);
            s.segments = seg;
            series.push(s);
        }
    }
    Block::Chart(Chart {
        id: format!("{prefix}rejections"),
        title: "Rejections, timeouts and interruptions over time".into(),
        plot: Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: format!("requests per {} s step", format_number(r.timeline.step_s)),
            y2_label: None,
            log_x: false,
            log_y: false,
            series,
            events: interruption_lines(r, div),
            markers: vec![],
            hlines: vec![],
        }),
    })
}
