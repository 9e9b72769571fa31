//! The report as a format-neutral document: sections of paragraphs, tables, charts and code.
//! HTML and Markdown render the same document, so they always say the same thing.

use std::collections::BTreeMap;

use sim::results::{Event, Results};
use sim::tune::TuneReport;

use crate::chart::{
    format_number, Axis, BarChart, BarSeries, Chart, EventLines, HLine, Markers, Plot, Series,
    Style, XyChart,
};
use crate::downsample::{segments, MAX_POINTS};
use crate::palette::{Palette, ALERT, LIGHT, NEUTRAL};
use crate::{Report, Run, Tune};

/// Most scale-up markers drawn per chart (a 24 h run can scale thousands of times).
const MAX_MARKERS: usize = 200;
/// Rows of the event table.
const MAX_EVENT_ROWS: usize = 40;

/// A piece of a section.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    /// Plain text.
    Para(String),
    /// A pass/fail statement, highlighted.
    Verdict {
        /// Passed.
        ok: bool,
        /// What.
        text: String,
    },
    /// A table; `numeric[i]` right-aligns column i.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Cells.
        rows: Vec<Vec<String>>,
        /// Right-aligned columns.
        numeric: Vec<bool>,
    },
    /// A chart.
    Chart(Chart),
    /// Preformatted text.
    Code {
        /// Language hint (toml, yaml).
        lang: String,
        /// The text.
        text: String,
    },
}

/// A titled part of the report; `level` 2 for top-level sections, 3 below.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// Heading level (2 or 3).
    pub level: u8,
    /// Heading.
    pub title: String,
    /// Anchor.
    pub id: String,
    /// Content.
    pub blocks: Vec<Block>,
}

/// The whole document.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Page title.
    pub title: String,
    /// What went in.
    pub inputs: Vec<String>,
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Document {
    /// Every chart, in document order.
    pub(crate) fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.sections.iter().flat_map(|s| {
            s.blocks.iter().filter_map(|b| match b {
                Block::Chart(c) => Some(c),
                _ => None,
            })
        })
    }
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn table(header: &[&str], numeric: &[bool], rows: Vec<Vec<String>>) -> Block {
    Block::Table {
        header: header.iter().map(|s| (*s).to_string()).collect(),
        rows,
        numeric: numeric.to_vec(),
    }
}

fn usd(v: f64) -> String {
    format!("{v:.2}")
}

fn pct(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `h:mm:ss` of simulated time.
fn clock(t_s: f64) -> String {
    let t = t_s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}

/// Length of a run in words.
fn span(s: f64) -> String {
    if s >= 7200.0 {
        format!("{} h", format_number(s / 3600.0))
    } else if s >= 120.0 {
        format!("{} min", format_number(s / 60.0))
    } else {
        format!("{} s", format_number(s))
    }
}

/// Time axis unit for a run of `duration_s`: (divisor, axis label).
fn time_unit(duration_s: f64) -> (f64, &'static str) {
    if duration_s > 3.0 * 3600.0 {
        (3600.0, "simulated time (h)")
    } else if duration_s > 180.0 {
        (60.0, "simulated time (min)")
    } else {
        (1.0, "simulated time (s)")
    }
}

/// Build the document for a report.
pub(crate) fn build(report: &Report) -> Document {
    let palette = Palette::for_report(report);
    let mut doc = Document {
        title: title(report),
        inputs: report
            .runs
            .iter()
            .map(|r| {
                format!(
                    "{} — results of \"{}\"",
                    r.file_name, r.results.scenario_name
                )
            })
            .chain(
                report
                    .tune
                    .iter()
                    .map(|t| format!("{} — tuning of \"{}\"", t.file_name, t.report.scenario_name)),
            )
            .collect(),
        sections: Vec::new(),
    };
    let many = report.runs.len() > 1;
    if many {
        doc.sections.extend(comparison(report, &palette));
    }
    for (i, run) in report.runs.iter().enumerate() {
        let prefix = if many {
            format!("run{}-", i + 1)
        } else {
            String::new()
        };
        doc.sections
            .extend(run_sections(run, &palette, &prefix, many));
    }
    if let Some(tune) = &report.tune {
        doc.sections.extend(tune_sections(tune));
    }
    doc
}

fn title(report: &Report) -> String {
    match (report.runs.as_slice(), &report.tune) {
        ([run], None) => format!("Capacity report: {}", run.results.scenario_name),
        ([], Some(t)) => format!("Tuning report: {}", t.report.scenario_name),
        ([run], Some(_)) => format!("Capacity and tuning report: {}", run.results.scenario_name),
        (runs, _) => format!("Capacity report: {} runs compared", runs.len()),
    }
}

/// Summary, timelines, latency, cost and events of one run.
fn run_sections(run: &Run, palette: &Palette, prefix: &str, many: bool) -> Vec<Section> {
    let r = &run.results;
    let suffix = if many {
        format!(" — {}", run.label)
    } else {
        String::new()
    };
    let sec = |name: &str, blocks: Vec<Block>| Section {
        level: 2,
        title: format!("{name}{suffix}"),
        id: format!("{prefix}{}", slug(name)),
        blocks,
    };
    let mut sections = vec![
        sec("Summary and SLO verdict", summary(run)),
        sec("Timelines", timelines(r, palette, prefix)),
        sec("Latency", latency(r, palette, prefix)),
        sec("Cost", cost(r, palette, prefix)),
    ];
    if !r.batch_jobs.is_empty() {
        sections.push(sec("Batch jobs", batch_jobs(r)));
    }
    sections.push(sec("Events", events(r)));
    sections
}

/// Batch jobs: how long each took, what became of its batches, what it cost.
fn batch_jobs(r: &Results) -> Vec<Block> {
    let rows = r
        .batch_jobs
        .iter()
        .map(|j| {
            vec![
                j.name.clone(),
                j.status.replace('_', " "),
                j.completion_time_s.map_or("–".into(), span),
                format!("{} / {}", j.succeeded, j.batches),
                j.dead_lettered.to_string(),
                j.failed.to_string(),
                j.failed_attempts.to_string(),
                j.interrupted_attempts.to_string(),
                j.worker_starts.to_string(),
                usd(j.cost_usd),
            ]
        })
        .collect();
    vec![table(
        &[
            "job",
            "status",
            "completion time",
            "batches succeeded",
            "dead-lettered",
            "failed (no DLQ)",
            "failed attempts",
            "attempts lost to interruptions",
            "worker starts",
            "cost (USD)",
        ],
        &[false, false, true, true, true, true, true, true, true, true],
        rows,
    )]
}

fn mean_replicas(r: &Results, api: &sim::results::ApiResults) -> f64 {
    api.replica_seconds / r.simulated_s().max(1e-9)
}

fn summary(run: &Run) -> Vec<Block> {
    let r = &run.results;
    let mut blocks = vec![Block::Para(format!(
        "Scenario \"{}\" from {}: {} simulated{}, seed {}, simctl {}. {} API(s) on {} node group(s); total cost {} USD.",
        r.scenario_name,
        run.file_name,
        span(r.simulated_s()),
        match r.truncated_at_s {
            Some(_) => format!(" (interrupted; planned {})", span(r.duration_s)),
            None => String::new(),
        },
        r.seed,
        r.simctl_version,
        r.apis.len(),
        r.node_groups.len(),
        usd(r.cost_usd_total),
    ))];
    let missed: Vec<String> = r
        .apis
        .iter()
        .flat_map(|a| {
            a.slo.checks.iter().filter(|c| !c.met).map(move |c| {
                format!(
                    "{} {} = {} > {}",
                    a.name,
                    c.objective,
                    format_number(c.actual),
                    format_number(c.limit)
                )
            })
        })
        .collect();
    let checks: usize = r.apis.iter().map(|a| a.slo.checks.len()).sum();
    blocks.push(if checks == 0 {
        Block::Verdict {
            ok: true,
            text: "No SLO objectives set.".into(),
        }
    } else if missed.is_empty() {
        Block::Verdict {
            ok: true,
            text: format!("SLO met: all {checks} objective(s) held."),
        }
    } else {
        Block::Verdict {
            ok: false,
            text: format!("SLO missed: {}.", missed.join("; ")),
        }
    });
    let rows = r
        .apis
        .iter()
        .map(|a| {
            let n = a.requests.max(1) as f64;
            vec![
                a.name.clone(),
                a.requests.to_string(),
                a.completed.to_string(),
                pct(a.rejected as f64 / n),
                pct(a.timed_out as f64 / n),
                pct(a.interrupted as f64 / n),
                ms(a.latency_ms.p50),
                ms(a.latency_ms.p99),
                format!("{:.1}", mean_replicas(r, a)),
                a.cold_starts.to_string(),
                usd(a.cost_usd),
                if a.slo.checks.is_empty() {
                    "–".into()
                } else if a.slo.met {
                    "met".into()
                } else {
                    "MISSED".into()
                },
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "API",
            "requests",
            "completed",
            "rejected",
            "timed out",
            "interrupted",
            "p50 ms",
            "p99 ms",
            "mean replicas",
            "cold starts",
            "cost USD",
            "SLO",
        ],
        &[
            false, true, true, true, true, true, true, true, true, true, true, false,
        ],
        rows,
    ));
    let rows: Vec<Vec<String>> = r
        .apis
        .iter()
        .flat_map(|a| {
            a.slo.checks.iter().map(move |c| {
                vec![
                    a.name.clone(),
                    c.objective.clone(),
                    format_number(c.limit),
                    format_number(c.actual),
                    if c.met { "met" } else { "MISSED" }.to_string(),
                ]
            })
        })
        .collect();
    if !rows.is_empty() {
        blocks.push(table(
            &["API", "objective", "limit", "actual", "verdict"],
            &[false, false, true, true, false],
            rows,
        ));
    }
    blocks
}

/// Timeline series `metric/name` as chart segments in the run's time unit.
fn series_points(r: &Results, key: &str, div: f64) -> Option<Vec<Vec<(f64, f64)>>> {
    let values = r.timeline.series.get(key)?;
    let t: Vec<f64> = r.timeline.t_s.iter().map(|t| t / div).collect();
    Some(segments(&t, values, MAX_POINTS))
}

fn line(name: String, color: plotters::style::RGBColor, style: Style, axis: Axis) -> Series {
    Series {
        name,
        color,
        style,
        axis,
        segments: Vec::new(),
    }
}

/// Evenly thinned, keeping the first and order, so marker counts stay bounded.
fn thin<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max)
        .map(|i| items[i * items.len() / max].clone())
        .collect()
}

fn interruption_lines(r: &Results, div: f64) -> Vec<EventLines> {
    let mut out = Vec::new();
    let xs: Vec<f64> = r
        .events
        .iter()
        .filter(|e| e.kind == "spot_interruption")
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
        .filter(|e| e.kind == "failed_launch")
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

fn is_scale_up(e: &Event) -> bool {
    e.kind == "scale"
        && matches!((e.inputs.get("from"), e.inputs.get("to")), (Some(f), Some(t)) if t > f)
}

fn timelines(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
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
        for (key, label, style, axis, color) in [
            (
                format!("rps/{n}"),
                "traffic (req/s)",
                Style::Line,
                Axis::Left,
                c,
            ),
            (
                format!("replicas_ready/{n}"),
                "ready replicas",
                Style::Line,
                Axis::Right,
                NEUTRAL,
            ),
            (
                format!("replicas_desired/{n}"),
                "desired replicas",
                Style::Dashed,
                Axis::Right,
                LIGHT,
            ),
        ] {
            let mut s = line(format!("{n} {label}"), color, style, axis);
            if let Some(seg) = series_points(r, &key, div) {
                s.segments = seg;
            }
            series.push(s);
        }
        let ups: Vec<(f64, f64)> = r
            .events
            .iter()
            .filter(|e| is_scale_up(e) && e.api.as_deref() == Some(n))
            .filter_map(|e| Some((e.t_s / div, *e.inputs.get("to")?)))
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
            ("in_flight", "in flight", Style::Line),
            ("queue", "queued", Style::Dashed),
        ] {
            let mut s = line(format!("{} {label}", api.name), c, style, Axis::Left);
            if let Some(seg) = series_points(r, &format!("{metric}/{}", api.name), div) {
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
    // Nodes per group: spot dashed, on-demand solid.
    let mut series = Vec::new();
    let mut cost_series = Vec::new();
    for g in &r.node_groups {
        let c = palette.group(&g.name);
        let kind = if g.spot { "spot" } else { "on-demand" };
        let style = if g.spot { Style::Dashed } else { Style::Line };
        let mut s = line(format!("{} ({kind})", g.name), c, style, Axis::Left);
        let mut cs = line(format!("{} ({kind})", g.name), c, style, Axis::Left);
        if let Some(seg) = series_points(r, &format!("nodes/{}", g.name), div) {
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
    if let Some(seg) = series_points(r, "cost_usd_per_hour/cluster", div) {
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

/// The p99 latency limit shared by the APIs' SLOs, if any.
fn p99_limit(r: &Results) -> Option<f64> {
    r.apis
        .iter()
        .flat_map(|a| a.slo.checks.iter())
        .find(|c| c.objective == "latency_p99_ms")
        .map(|c| c.limit)
}

fn latency(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let (div, x_label) = time_unit(r.simulated_s());
    let limit = p99_limit(r);
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
            match sim::results::decode_histogram(&a.latency_histogram) {
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
            if let Some(seg) = series_points(r, &format!("latency_p99_ms/{}", a.name), div) {
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

fn cost(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let savings: f64 = r.node_groups.iter().map(|g| g.spot_savings_usd).sum();
    let nodes: f64 = r.node_groups.iter().map(|g| g.cost_usd).sum();
    blocks.push(Block::Para(format!(
        "Total {} USD: nodes {} USD (of which idle, attributed to no API's requests, {} USD = {} of node cost) and control plane {} USD. Spot capacity saved {} USD against the same node-hours on demand.",
        usd(r.cost_usd_total),
        usd(nodes),
        usd(r.idle_cost_usd),
        pct(if nodes > 0.0 { r.idle_cost_usd / nodes } else { 0.0 }),
        usd(r.control_plane_cost_usd),
        usd(savings),
    )));
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
                "(idle capacity)".into(),
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
        name: "idle capacity".into(),
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
            categories: vec!["by node group".into(), "by API (+ idle)".into()],
            series,
            stacked: true,
            hlines: vec![],
        }),
    }));
    blocks
}

fn events(r: &Results) -> Vec<Block> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &r.events {
        *counts.entry(e.kind.as_str()).or_default() += 1;
    }
    let ups = r.events.iter().filter(|e| is_scale_up(e)).count();
    let mut blocks = vec![Block::Para(format!(
        "{} event(s) logged{}, of which {ups} scale-up(s). Spot interruptions and failed launches are marked on the timelines.",
        r.events.len(),
        if r.events_dropped > 0 {
            format!(" ({} more dropped at the log's cap)", r.events_dropped)
        } else {
            String::new()
        }
    ))];
    if counts.is_empty() {
        return blocks;
    }
    blocks.push(table(
        &["kind", "count"],
        &[false, true],
        counts
            .iter()
            .map(|(k, n)| vec![(*k).to_string(), n.to_string()])
            .collect(),
    ));
    let notable: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| {
            is_scale_up(e)
                || matches!(
                    e.kind.as_str(),
                    "spot_interruption"
                        | "failed_launch"
                        | "node_launch"
                        | "node_terminate"
                        | "eviction"
                        | "preemption"
                )
        })
        .collect();
    if notable.is_empty() {
        return blocks;
    }
    let shown = notable.len().min(MAX_EVENT_ROWS);
    blocks.push(Block::Para(if notable.len() > shown {
        format!(
            "The first {shown} of {} capacity events (scale-ups, node launches and terminations, interruptions, evictions):",
            notable.len()
        )
    } else {
        "Capacity events (scale-ups, node launches and terminations, interruptions, evictions):"
            .into()
    }));
    blocks.push(table(
        &["time", "kind", "API / group", "what"],
        &[true, false, false, false],
        notable
            .iter()
            .take(shown)
            .map(|e| {
                vec![
                    clock(e.t_s),
                    e.kind.clone(),
                    e.api
                        .clone()
                        .or_else(|| e.node_group.clone())
                        .unwrap_or_default(),
                    e.message.clone(),
                ]
            })
            .collect(),
    ));
    blocks
}

fn total_requests(r: &Results) -> u64 {
    r.apis.iter().map(|a| a.requests).sum()
}

fn worst_p99(r: &Results) -> f64 {
    r.apis.iter().map(|a| a.latency_ms.p99).fold(0.0, f64::max)
}

fn peak_nodes(r: &Results) -> u32 {
    r.node_groups.iter().map(|g| g.peak_nodes).sum()
}

/// Side-by-side comparison of several runs, the first being the baseline.
fn comparison(report: &Report, palette: &Palette) -> Vec<Section> {
    let runs = &report.runs;
    let base = runs
        .first()
        .map_or(0, |r| total_requests(&r.results))
        .max(1) as f64;
    let growth: Vec<f64> = runs
        .iter()
        .map(|r| total_requests(&r.results) as f64 / base)
        .collect();
    let mut blocks = vec![Block::Para(format!(
        "{} runs side by side; traffic is each run's total requests relative to the first ({}).",
        runs.len(),
        runs.first().map_or("", |r| r.label.as_str())
    ))];
    let rows = runs
        .iter()
        .zip(&growth)
        .map(|(run, g)| {
            let r = &run.results;
            let completed: u64 = r.apis.iter().map(|a| a.completed).sum();
            let checks = r.apis.iter().map(|a| a.slo.checks.len()).sum::<usize>();
            vec![
                run.label.clone(),
                r.scenario_name.clone(),
                format!("{g:.2}×"),
                total_requests(r).to_string(),
                peak_nodes(r).to_string(),
                format!(
                    "{:.2}",
                    r.node_groups.iter().map(|g| g.node_hours).sum::<f64>()
                ),
                usd(r.cost_usd_total),
                if completed > 0 {
                    format!("{:.4}", r.cost_usd_total / completed as f64 * 1000.0)
                } else {
                    "–".into()
                },
                ms(worst_p99(r)),
                if checks == 0 {
                    "–".into()
                } else if r.apis.iter().all(|a| a.slo.met) {
                    "met".into()
                } else {
                    "MISSED".into()
                },
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "run",
            "scenario",
            "traffic",
            "requests",
            "peak nodes",
            "node-hours",
            "cost USD",
            "USD per 1k completed",
            "worst p99 ms",
            "SLO",
        ],
        &[
            false, false, true, true, true, true, true, true, true, false,
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
    let per_group = |f: &dyn Fn(&sim::results::NodeGroupResults) -> f64| -> Vec<BarSeries> {
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
            "What-if growth: how cost and nodes follow traffic across the runs.".into(),
        ));
        blocks.push(Block::Chart(Chart {
            id: "compare-growth".into(),
            title: "What-if growth: traffic → cost and peak nodes".into(),
            plot: Plot::Xy(XyChart {
                x_label: "traffic (× first run's requests)".into(),
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
    }
    vec![Section {
        level: 2,
        title: "Comparison".into(),
        id: "comparison".into(),
        blocks,
    }]
}

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

fn tune_sections(tune: &Tune) -> Vec<Section> {
    let t: &TuneReport = &tune.report;
    let evaluated = t.candidates.len();
    let valid: Vec<_> = t.candidates.iter().filter(|c| c.error.is_none()).collect();
    let qualifying = valid.iter().filter(|c| c.meets_slo).count();
    let mut blocks = vec![Block::Para(format!(
        "Tuning of \"{}\" from {}: {} search over {} parameter(s), {} of {} candidates evaluated ({} invalid), {} seed(s) each; {} meet the SLO on every seed.{}",
        t.scenario_name,
        tune.file_name,
        match t.search {
            sim::tune::Search::Grid => "grid",
            sim::tune::Search::Halving => "successive-halving",
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
    let by_id: BTreeMap<u64, &sim::tune::CandidateResult> =
        t.candidates.iter().map(|c| (c.id, c)).collect();
    let pass = |c: &&&sim::tune::CandidateResult| c.meets_slo;
    let point = |c: &&sim::tune::CandidateResult| (c.cost_usd_mean, c.slo_ratio.max(1e-3));
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
                                a.name.clone(),
                                k.objective.clone(),
                                format_number(k.limit),
                                format_number(k.mean),
                                format_number(k.worst),
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
            if !r.cortex_yaml.trim().is_empty() {
                rec.push(Block::Para("As Cortex API settings:".into()));
                rec.push(Block::Code {
                    lang: "yaml".into(),
                    text: r.cortex_yaml.trim_end().to_string(),
                });
            }
        }
        None => rec.push(Block::Verdict {
            ok: false,
            text: "No candidate met the SLO on every seed: nothing to recommend.".into(),
        }),
    }
    vec![
        Section {
            level: 2,
            title: "Tuning: cost–SLO Pareto front".into(),
            id: "tune".into(),
            blocks,
        },
        Section {
            level: 2,
            title: "Tuning: recommended configuration".into(),
            id: "tune-recommendation".into(),
            blocks: rec,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_has_all_sections_and_charts() {
        let mut report = Report::default();
        report.push_run("small.json".into(), crate::testdata::small_results());
        let doc = build(&report);
        let titles: Vec<&str> = doc.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Summary and SLO verdict",
                "Timelines",
                "Latency",
                "Cost",
                "Events"
            ]
        );
        let ids: Vec<&str> = doc.charts().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "traffic-a",
                "traffic-b",
                "queue",
                "nodes",
                "cost-rate",
                "latency-percentiles",
                "latency-distribution",
                "latency-p99",
                "cost-breakdown"
            ]
        );
        // The verdict names the missed objective.
        let verdict = doc.sections[0]
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Verdict { ok, text } => Some((*ok, text.clone())),
                _ => None,
            })
            .expect("verdict");
        assert!(!verdict.0);
        assert!(
            verdict.1.contains("a rejection_rate = 0.01 > 0.001"),
            "{}",
            verdict.1
        );
    }

    #[test]
    fn several_runs_add_a_comparison_and_growth_chart() {
        let mut report = Report::default();
        let base = crate::testdata::small_results();
        let mut double = base.clone();
        for a in &mut double.apis {
            a.requests *= 2;
        }
        report.push_run("1x.json".into(), base);
        report.push_run("2x.json".into(), double);
        let doc = build(&report);
        assert_eq!(doc.sections[0].title, "Comparison");
        let ids: Vec<&str> = doc.charts().map(|c| c.id.as_str()).collect();
        assert!(ids.contains(&"compare-growth"), "{ids:?}");
        assert!(ids.contains(&"run2-traffic-a"), "{ids:?}");
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "chart ids are unique");
    }

    #[test]
    fn degenerate_inputs_render() {
        let mut empty = crate::testdata::small_results();
        empty.apis.clear();
        empty.node_groups.clear();
        empty.events.clear();
        empty.timeline = Default::default();
        empty.duration_s = 0.0;
        let mut odd = crate::testdata::small_results();
        for v in odd.timeline.series.values_mut() {
            v[0] = Some(f64::NAN);
            v[1] = Some(f64::INFINITY);
            v[2] = Some(f64::MAX);
            v[3] = Some(-1e300);
        }
        odd.apis[0].latency_histogram = "not base64!".into();
        odd.timeline.t_s.truncate(5);
        let mut report = Report::default();
        report.push_run("empty.json".into(), empty);
        report.push_run("odd.json".into(), odd);
        let html = crate::render_html(&report);
        if let Some(err) = html.split("chart could not be drawn: ").nth(1) {
            panic!("{}", err.chars().take(200).collect::<String>());
        }
        assert!(html.contains("latency histogram unreadable"));
        crate::render_markdown(&report, "x_files").expect("renders");
    }

    #[test]
    fn clock_and_slug() {
        assert_eq!(clock(3725.4), "1:02:05");
        assert_eq!(slug("Summary and SLO verdict"), "summary-and-slo-verdict");
        assert_eq!(thin(&[1, 2, 3, 4], 2), vec![1, 3]);
    }
}
