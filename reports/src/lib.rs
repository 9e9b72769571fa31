//! Capacity-planning reports from simctl's output files.
//!
//! A [`Report`] is loaded from one or more results files (`simctl.results/v1`, written by
//! `simctl run --out`) and at most one tune file (`simctl.tune/v1`, written by `simctl tune`).
//! It renders as a self-contained HTML page ([`render_html`]: inline SVG charts, no network) or
//! as Markdown with PNG charts ([`render_markdown`]). Both renderings share one document model,
//! so they carry the same sections, tables and charts.
//!
//! This crate reads files only: it uses `sim`'s serde types for the two formats and nothing of
//! the simulator itself.

mod chart;
mod doc;
mod downsample;
mod html;
mod markdown;
mod palette;
mod xml;

use std::path::{Path, PathBuf};

use contract::results::Results;
use contract::tune::TuneReport;

pub use downsample::{downsample_min_max, MAX_POINTS};
pub use html::render_html;
pub use markdown::{render_markdown, Asset, MarkdownReport};

/// Schema tag of results files (what `simctl run --out` writes).
pub const RESULTS_SCHEMA: &str = contract::results::SCHEMA;
/// Schema tag of tune files (what `simctl tune --out` writes).
pub const TUNE_SCHEMA: &str = contract::tune::SCHEMA;

/// Why a report could not be built; every variant names the file concerned so the user can fix
/// it.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON at all.
    #[error("{path}: not JSON: {source}")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        source: serde_json::Error,
    },
    /// The file is JSON but neither a results nor a tune file.
    #[error(
        "{path}: not a simctl results or tune file ({found}; expected \"schema\": \"{RESULTS_SCHEMA}\" or \"{TUNE_SCHEMA}\")"
    )]
    UnknownSchema {
        /// The file.
        path: PathBuf,
        /// What was found instead, e.g. `schema "foo/v2"`.
        found: String,
    },
    /// The file claims a known schema but does not follow it.
    #[error("{path}: does not match {schema}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The schema it claims.
        schema: &'static str,
        /// The first mismatch, with line and column.
        source: serde_json::Error,
    },
    /// More than one tune file was given; a report shows one tuning sweep.
    #[error("{path}: a second tune file (the first was {first}); give at most one")]
    SecondTune {
        /// The second tune file.
        path: PathBuf,
        /// The first one's name.
        first: String,
    },
    /// No file was given.
    #[error("no input files: give at least one results or tune file")]
    NoInput,
    /// A chart could not be drawn or encoded (a bug, not bad input).
    #[error("chart {chart}: cannot be drawn: {message}")]
    Chart {
        /// The chart's id.
        chart: String,
        /// What went wrong.
        message: String,
    },
}

/// One simulation run to report on.
#[derive(Debug, Clone)]
pub struct Run {
    /// Short unique label used in charts and tables (the file stem, made unique).
    pub label: String,
    /// The file's name without its directory, so reports do not leak local paths.
    pub file_name: String,
    /// The results as written by `simctl run`.
    pub results: Results,
}

/// A tuning sweep to report on.
#[derive(Debug, Clone)]
pub struct Tune {
    /// The file's name without its directory.
    pub file_name: String,
    /// The sweep as written by `simctl tune`.
    pub report: TuneReport,
}

/// Everything a report shows: runs in the order given, and optionally one tuning sweep.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Results files, in command-line order (the first is the baseline of comparisons).
    pub runs: Vec<Run>,
    /// The tune file, if one was given.
    pub tune: Option<Tune>,
    /// For a growth sweep (`simctl report --growth`): the traffic multiple of each run, in the
    /// order of `runs`. Empty otherwise (several runs are then compared by their requests).
    pub growth: Vec<f64>,
}

/// What a file turned out to be.
#[derive(Debug, Clone)]
pub enum Input {
    /// A results file.
    Results(Box<Results>),
    /// A tune file.
    Tune(Box<TuneReport>),
}

impl Report {
    /// Load every file, telling results from tune files by their `schema` (or, without one,
    /// by their shape).
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Report, ReportError> {
        if paths.is_empty() {
            return Err(ReportError::NoInput);
        }
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            inputs.push((file_name(path), parse_input(path, &text)?));
        }
        let mut report = Report::default();
        for ((name, input), path) in inputs.into_iter().zip(paths) {
            match input {
                Input::Results(results) => report.push_run(name, *results),
                Input::Tune(tune) => {
                    if let Some(first) = &report.tune {
                        return Err(ReportError::SecondTune {
                            path: path.as_ref().to_path_buf(),
                            first: first.file_name.clone(),
                        });
                    }
                    report.tune = Some(Tune {
                        file_name: name,
                        report: *tune,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Add a run under `file_name`, deriving a unique label from it.
    pub fn push_run(&mut self, file_name: String, results: Results) {
        let stem = file_name
            .rsplit_once('.')
            .map_or(file_name.as_str(), |(stem, _)| stem)
            .to_string();
        let mut label = if stem.is_empty() {
            format!("run {}", self.runs.len() + 1)
        } else {
            stem
        };
        if self.runs.iter().any(|r| r.label == label) {
            label = format!("{label} #{}", self.runs.len() + 1);
        }
        self.runs.push(Run {
            label,
            file_name,
            results,
        });
    }
}

/// Tell a results file from a tune file and parse it; `path` is only for messages.
pub fn parse_input(path: &Path, text: &str) -> Result<Input, ReportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ReportError::NotJson {
            path: path.to_path_buf(),
            source,
        })?;
    let kind = match value.get("schema") {
        Some(serde_json::Value::String(s)) if s == RESULTS_SCHEMA => RESULTS_SCHEMA,
        Some(serde_json::Value::String(s)) if s == TUNE_SCHEMA => TUNE_SCHEMA,
        Some(serde_json::Value::String(s)) => {
            return Err(ReportError::UnknownSchema {
                path: path.to_path_buf(),
                found: format!("schema \"{s}\""),
            })
        }
        Some(other) => {
            return Err(ReportError::UnknownSchema {
                path: path.to_path_buf(),
                found: format!("schema is {}", json_kind(other)),
            })
        }
        None => {
            let has = |k: &str| value.get(k).is_some();
            if has("candidates") && has("pareto") {
                TUNE_SCHEMA
            } else if has("apis") && has("timeline") && has("node_groups") {
                RESULTS_SCHEMA
            } else {
                return Err(ReportError::UnknownSchema {
                    path: path.to_path_buf(),
                    found: format!("no \"schema\" field in {}", json_kind(&value)),
                });
            }
        }
    };
    let invalid = |source| ReportError::Invalid {
        path: path.to_path_buf(),
        schema: kind,
        source,
    };
    // Parse the text again (not the value) so that errors carry a line and column.
    if kind == RESULTS_SCHEMA {
        Ok(Input::Results(Box::new(
            serde_json::from_str(text).map_err(invalid)?,
        )))
    } else {
        Ok(Input::Tune(Box::new(
            serde_json::from_str(text).map_err(invalid)?,
        )))
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One self-contained HTML file with inline SVG charts.
    Html,
    /// A Markdown file plus PNG charts in a sibling directory.
    Markdown,
}

impl Format {
    /// The format an output file's extension implies (`.html`/`.htm`, `.md`/`.markdown`).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "html" | "htm" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_schema_and_names_the_file_on_errors() {
        let p = Path::new("x.json");
        let e = parse_input(p, "{\"schema\": \"foo/v2\"}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.json: not a simctl results or tune file (schema \"foo/v2\"; expected \"schema\": \"simctl.results/v1\" or \"simctl.tune/v1\")"
        );
        let e = parse_input(p, "[1, 2]").unwrap_err();
        assert!(
            e.to_string().contains("no \"schema\" field in an array"),
            "{e}"
        );
        let e = parse_input(p, "{not json").unwrap_err();
        assert!(e.to_string().starts_with("x.json: not JSON: "), "{e}");
        let e = parse_input(p, "{\"schema\": \"simctl.results/v1\", \"seed\": 1}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.json: does not match simctl.results/v1: "),
            "{e}"
        );
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            Format::from_extension(Path::new("a/r.HTML")),
            Some(Format::Html)
        );
        assert_eq!(
            Format::from_extension(Path::new("r.md")),
            Some(Format::Markdown)
        );
        assert_eq!(Format::from_extension(Path::new("r.pdf")), None);
        assert_eq!(Format::from_extension(Path::new("r")), None);
    }

    #[test]
    fn labels_are_unique() {
        let mut r = Report::default();
        let results = testdata::small_results();
        r.push_run("a.json".into(), results.clone());
        r.push_run("a.json".into(), results);
        assert_eq!(r.runs[0].label, "a");
        assert_eq!(r.runs[1].label, "a #2");
    }
}

/// Small hand-made inputs for unit tests.
#[cfg(test)]
pub(crate) mod testdata {
    use std::collections::BTreeMap;

    use contract::results::*;

    /// Two APIs, two node groups (one spot), a short timeline and a few events.
    pub(crate) fn small_results() -> Results {
        let mut hist = contract::results::new_histogram();
        for v in [40_000u64, 60_000, 61_000, 75_000, 180_000] {
            hist.record(v).expect("in range");
        }
        let encoded = encode_histogram(&hist);
        let api = |name: &str, cost: f64| ApiResults {
            name: name.into(),
            requests: 1000,
            completed: 990,
            rejected: 10,
            rejected_no_replica: 0,
            timed_out: 0,
            interrupted: 0,
            in_flight_at_end: 0,
            oom_kills: 0,
            qos_class: String::new(),
            latency_ms: Percentiles::from_histogram(&hist),
            queue_wait_ms: Percentiles::default(),
            throughput_rps: 9.9,
            replica_seconds: 200.0,
            cold_starts: 1,
            peak_pending_replicas: 0,
            cost_usd: cost,
            llm: None,
            vpa: None,
            startup: None,
            utilisation: Some(ApiUtilisation {
                busy_share: 0.25,
                peak_busy_share: 0.9,
                cpu_requested_core_hours: 0.11,
                cpu_busy_core_hours: 0.03,
                gpu_requested_hours: 0.05,
                gpu_busy_hours: 0.0125,
            }),
            slo: SloVerdict {
                met: false,
                checks: vec![SloCheck {
                    objective: "rejection_rate".into(),
                    limit: 0.001,
                    actual: 0.01,
                    met: false,
                }],
                misses: vec![MissInterval {
                    from_s: 50.0,
                    to_s: 70.0,
                    share: 1.0,
                    rejected: 10,
                    timed_out: 0,
                    slow: 0,
                    cause: MissCause::SpotReclaim,
                    detail: "0 ready replicas after a spot reclaim of 1 spot node at 0:00:55"
                        .into(),
                }],
                ..SloVerdict::default()
            },
            latency_histogram: encoded.clone(),
            queue_wait_histogram: encoded.clone(),
            tenants: Vec::new(),
        };
        let group = |name: &str, spot: bool| NodeGroupResults {
            name: name.into(),
            instance_type: "g4dn.xlarge".into(),
            spot,
            price_usd_per_hour: if spot { 0.2 } else { 0.526 },
            node_hours: 0.1,
            cost_usd: 0.05,
            peak_nodes: 2,
            interruptions: u64::from(spot),
            failed_launches: 0,
            spot_savings_usd: if spot { 0.03 } else { 0.0 },
            utilisation: Some(GroupUtilisation {
                cpu_capacity_core_hours: 0.4,
                cpu_requested_core_hours: 0.2,
                cpu_busy_core_hours: 0.05,
                gpu_capacity_hours: 0.1,
                gpu_requested_hours: 0.1,
                gpu_busy_hours: 0.02,
            }),
        };
        let t_s: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        let mut series = BTreeMap::new();
        for n in ["a", "b"] {
            series.insert(
                SeriesKey::new(Metric::Rps, n),
                (1..=10).map(|i| Some(f64::from(i))).collect(),
            );
            for m in [
                Metric::ReplicasReady,
                Metric::ReplicasDesired,
                Metric::InFlight,
                Metric::Queue,
            ] {
                series.insert(SeriesKey::new(m, n), vec![Some(2.0); 10]);
            }
            let mut p99 = vec![Some(100.0); 10];
            p99[3] = None;
            series.insert(SeriesKey::new(Metric::LatencyP99Ms, n), p99);
        }
        for g in ["od", "spot"] {
            series.insert(SeriesKey::new(Metric::Nodes, g), vec![Some(1.0); 10]);
            series.insert(SeriesKey::new(Metric::GpuUtil, g), vec![Some(0.2); 10]);
        }
        let mut rejected = vec![Some(0.0); 10];
        rejected[5] = Some(10.0);
        series.insert(SeriesKey::new(Metric::Rejected, "a"), rejected);
        series.insert(
            SeriesKey::new(Metric::CostUsdPerHour, "cluster"),
            vec![Some(0.826); 10],
        );
        Results {
            schema: SCHEMA.into(),
            simctl_version: "0.1.0".into(),
            scenario_name: "small".into(),
            scenario: serde_json::json!({}),
            seed: 7,
            duration_s: 100.0,
            truncated_at_s: None,
            apis: vec![api("a", 0.04), api("b", 0.03)],
            node_groups: vec![group("od", false), group("spot", true)],
            batch_jobs: Vec::new(),
            karpenter: None,
            routers: Vec::new(),
            pipelines: Vec::new(),
            control_plane_cost_usd: 0.003,
            idle_cost_usd: 0.03,
            cost_usd_total: 0.103,
            timeline: Timeline {
                step_s: 10.0,
                t_s,
                series,
            },
            events: vec![
                Event {
                    t_s: 30.0,
                    kind: EventKind::Scale(ScaleChange {
                        from: 1,
                        to: 2,
                        ..ScaleChange::default()
                    }),
                    api: Some("a".into()),
                    node_group: None,
                    message: "scale a 1 -> 2".into(),
                },
                Event {
                    t_s: 40.0,
                    kind: EventKind::ScaleHeld(contract::results::ScaleHeld {
                        replicas: 2,
                        recommended: Some(1),
                        why: contract::results::Why {
                            rule: "scale_down_stabilization".into(),
                            sentence: "held at 2: scale-down stabilization, highest recommendation in the last 300s was 2 at 0:00:30 (recommended 1)".into(),
                        },
                    }),
                    api: Some("a".into()),
                    node_group: None,
                    message: "hpa held at 2 replicas".into(),
                },
                Event {
                    t_s: 55.0,
                    kind: EventKind::SpotInterruption,
                    api: None,
                    node_group: Some("spot".into()),
                    message: "node spot-1 reclaimed".into(),
                },
            ],
            events_dropped: 0,
        }
    }
}
