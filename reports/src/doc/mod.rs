//! The report as a format-neutral document: sections of paragraphs, tables, charts and code.
//! HTML and Markdown render the same document, so they always say the same thing.
//!
//! This module holds the document model and assembles it; each report section is built by
//! its own submodule.

mod batch;
mod comparison;
mod cost;
mod events;
mod karpenter;
mod latency;
mod llm;
mod misses;
mod routing;
mod startup;
mod summary;
mod tenants;
mod timeline;
mod tune;
mod utilisation;
mod vertical;

use crate::chart::{format_number, Chart};
use crate::palette::Palette;
use crate::{Report, Run};

use batch::batch_jobs;
use comparison::comparison;
use cost::cost;
use events::events;
use karpenter::karpenter;
use latency::latency;
use llm::{any_llm, llm};
use misses::{any_missed, misses};
use routing::{any_routing, routing};
use startup::{any_startup, startup};
use summary::summary;
use tenants::{any_tenants, tenants};
use timeline::timelines;
use tune::tune_sections;
use utilisation::utilisation;
use vertical::{any_vpa, vertical};

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

/// Whether an SLO objective is a floor, met when the measured value is at least its limit
/// (`goodput`); every other objective is a ceiling.
fn is_floor(objective: &str) -> bool {
    objective == "goodput"
}

/// An objective's limit or measured value: goodput as a percentage, the others as numbers.
fn objective_value(objective: &str, v: f64) -> String {
    if is_floor(objective) {
        pct(v)
    } else {
        format_number(v)
    }
}

/// An objective's limit with its direction, e.g. `≤ 400` or `≥ 90.00 %`.
fn objective_limit(objective: &str, limit: f64) -> String {
    let bound = if is_floor(objective) { "≥" } else { "≤" };
    format!("{bound} {}", objective_value(objective, limit))
}

/// A table of objectives, one row per check of each named entry (an API's, a pipeline's), with
/// `first` as the header of the names' column; none when there are no checks.
fn checks_table<'a>(
    first: &str,
    entries: impl Iterator<Item = (String, &'a [contract::results::SloCheck])>,
) -> Option<Block> {
    let rows: Vec<Vec<String>> = entries
        .flat_map(|(name, checks)| {
            checks.iter().map(move |c| {
                vec![
                    name.clone(),
                    c.objective.clone(),
                    objective_limit(&c.objective, c.limit),
                    objective_value(&c.objective, c.actual),
                    if c.met { "met" } else { "MISSED" }.to_string(),
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then(|| {
        table(
            &[first, "objective", "limit", "actual", "verdict"],
            &[false, false, true, true, false],
            rows,
        )
    })
}

/// How a missed objective's measured value compares with its limit: `>` for a ceiling, `<`
/// for a floor.
fn missed_sign(objective: &str) -> &'static str {
    if is_floor(objective) {
        "<"
    } else {
        ">"
    }
}

/// The limit the APIs' SLOs set on `objective` (the first API's that has one), for a chart's
/// limit line.
fn slo_limit(r: &contract::results::Results, objective: &str) -> Option<f64> {
    r.apis
        .iter()
        .flat_map(|a| a.slo.checks.iter())
        .find(|c| c.objective == objective)
        .map(|c| c.limit)
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
    if many || !report.growth.is_empty() {
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

/// Summary, timelines, latency, LLM serving (if any), cost and events of one run.
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
    let mut sections = vec![sec("Summary and SLO verdict", summary(run))];
    if any_missed(r) {
        sections.push(sec("Why the SLO was missed", misses(r)));
    }
    sections.extend([
        sec("Timelines", timelines(r, palette, prefix)),
        sec("Latency", latency(r, palette, prefix)),
    ]);
    if any_tenants(r) {
        sections.push(sec("Tenants", tenants(r, prefix)));
    }
    if any_routing(r) {
        sections.push(sec("Routers and pipelines", routing(r)));
    }
    if any_llm(r) {
        sections.push(sec("LLM serving", llm(r, palette, prefix)));
    }
    if any_vpa(r) {
        sections.push(sec("Vertical sizing", vertical(r)));
    }
    if any_startup(r) {
        sections.push(sec("Where start-up time went", startup(r)));
    }
    sections.extend([
        sec("Utilisation and headroom", utilisation(r, palette, prefix)),
        sec("Cost", cost(r, palette, prefix)),
    ]);
    if !r.batch_jobs.is_empty() {
        sections.push(sec("Batch jobs", batch_jobs(r)));
    }
    if let Some(k) = &r.karpenter {
        sections.push(sec("Karpenter", karpenter(k)));
    }
    sections.push(sec("Events", events(r)));
    sections
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
                "Why the SLO was missed",
                "Timelines",
                "Latency",
                "Utilisation and headroom",
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
                "rejections",
                "nodes",
                "cost-rate",
                "latency-percentiles",
                "latency-distribution",
                "latency-p99",
                "gpu-util",
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
        // The miss is explained, utilisation and monthly cost are shown.
        let text = format!("{:?}", doc.sections);
        assert!(
            text.contains("100 % from 50–70 s: 0 ready replicas after a spot reclaim"),
            "{text}"
        );
        assert!(text.contains("headroom at peak"), "{text}");
        assert!(text.contains("USD per month"), "{text}");
        assert!(text.contains("unrequested capacity"), "{text}");
    }

    #[test]
    fn an_llm_api_adds_its_section_and_goodput_is_a_floor() {
        use contract::results::{LlmResults, Metric, Percentiles, SeriesKey, SloCheck};
        let mut r = crate::testdata::small_results();
        let p = |v: f64| Percentiles {
            mean: v,
            p50: v,
            p90: 2.0 * v,
            p99: 3.0 * v,
            p999: 4.0 * v,
            max: 5.0 * v,
        };
        r.apis[1].llm = Some(LlmResults {
            ttft_ms: p(200.0),
            itl_ms: p(20.0),
            prompt_tokens: 600_000,
            output_tokens: 150_000,
            output_tokens_per_s: 1500.0,
            prefill_tokens: 610_000,
            preemptions: 12,
            iterations: 40_000,
            goodput: Some(0.8),
            ttft_histogram: String::new(),
            itl_histogram: String::new(),
        });
        r.apis[1].slo.met = false;
        r.apis[1].slo.checks = vec![SloCheck {
            objective: "goodput".into(),
            limit: 0.9,
            actual: 0.8,
            met: false,
        }];
        for m in [
            Metric::RunningSequences,
            Metric::WaitingSequences,
            Metric::KvCacheUsage,
            Metric::TtftP99Ms,
        ] {
            r.timeline
                .series
                .insert(SeriesKey::new(m, "b"), vec![Some(0.5); 10]);
        }
        let mut report = Report::default();
        report.push_run("llm.json".into(), r);
        let doc = build(&report);
        let titles: Vec<&str> = doc.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles[4], "LLM serving", "{titles:?}");
        let ids: Vec<&str> = doc.charts().map(|c| c.id.as_str()).collect();
        for id in ["llm-sequences", "llm-kv-cache", "llm-ttft-p99"] {
            assert!(ids.contains(&id), "{ids:?}");
        }
        let text = format!("{:?}", doc.sections);
        assert!(text.contains("b goodput = 80.00 % < 90.00 %"), "{text}");
        assert!(text.contains("goodput 80.00 % < 90.00 %"), "{text}");
        assert!(text.contains("\"≥ 90.00 %\", \"80.00 %\""), "{text}");
        assert!(text.contains("\"≤ 0.001\""), "{text}");
        assert!(text.contains("time to first token"), "{text}");
        // Only the LLM API gets token rows.
        assert!(!text.contains("\"a\", \"time to first token\""), "{text}");
    }

    #[test]
    fn a_growth_sweep_charts_cost_nodes_and_slo_against_the_multiples() {
        let mut report = Report::default();
        for m in [1.0, 1.5, 2.0] {
            let mut r = crate::testdata::small_results();
            for a in &mut r.apis {
                a.requests = (a.requests as f64 * m) as u64;
            }
            report.push_run(format!("{m}x.json"), r);
            report.growth.push(m);
        }
        let doc = build(&report);
        assert_eq!(doc.sections[0].title, "Growth sweep");
        let ids: Vec<&str> = doc.charts().map(|c| c.id.as_str()).collect();
        assert!(ids.contains(&"compare-growth"), "{ids:?}");
        assert!(ids.contains(&"compare-slo"), "{ids:?}");
        let rows = doc.sections[0]
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Table { header, rows, .. }
                    if header.contains(&"mean replicas".to_string()) =>
                {
                    Some(rows.clone())
                }
                _ => None,
            })
            .expect("table");
        let traffic: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
        assert_eq!(traffic, ["1.00×", "1.50×", "2.00×"]);
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
        assert_eq!(timeline::thin(&[1, 2, 3, 4], 2), vec![1, 3]);
    }
}
