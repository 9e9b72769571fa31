//! The Prometheus formats: a range-query answer (`/api/v1/query_range`, JSON, read into typed
//! structs so a malformed file is reported at its line and column with the JSON path) and text
//! exposition snapshots of a request counter (parsed with `prometheus-parse`). Both are
//! per-interval aggregates, small enough to read whole; series are summed per timestamp, counters
//! as increases.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::TimeZone;
use serde::Deserialize;

use super::{error, Counted, DataFileError, FormatOptions, ValueKind};

/// Increase of a counter between two samples; a decrease is a reset, after which the new value
/// is the increase.
fn increase(previous: f64, current: f64) -> f64 {
    if current >= previous {
        current - previous
    } else {
        current
    }
}

/// Per-interval counts from summed per-timestamp values (ms → value), re-based at the first.
fn intervals_from(times: &BTreeMap<i64, f64>, kind: ValueKind) -> Vec<(f64, f64, Counted)> {
    let times: Vec<(i64, f64)> = times.iter().map(|(t, v)| (*t, *v)).collect();
    let first = times.first().map_or(0, |t| t.0);
    times
        .windows(2)
        .map(|w| {
            let ((t0, v0), (t1, v1)) = (w[0], w[1]);
            let width = (t1 - t0) as f64 / 1000.0;
            let start = (t0 - first) as f64 / 1000.0;
            let counted = match kind {
                // A rate sample describes the interval it starts.
                ValueKind::Rate => Counted::Mean(v0.max(0.0) * width),
                // An increase happened in the interval that ends at its sample.
                ValueKind::Counter => Counted::Exact(v1.max(0.0).round() as u64),
            };
            (start, width, counted)
        })
        .collect()
}

/// Add a series' samples to per-timestamp totals (counters as increases, per series).
fn accumulate(totals: &mut BTreeMap<i64, f64>, samples: &BTreeMap<i64, f64>, kind: ValueKind) {
    let mut previous: Option<f64> = None;
    for (&t, &v) in samples {
        let contribution = match kind {
            ValueKind::Rate => v,
            ValueKind::Counter => {
                let inc = previous.map_or(0.0, |p| increase(p, v));
                previous = Some(v);
                inc
            }
        };
        *totals.entry(t).or_default() += contribution;
    }
}

/// A Prometheus HTTP API answer, as far as it is needed to decide whether it is a range query.
/// Everything else (`data.result`, warnings) is skipped unread.
#[derive(Deserialize)]
struct AnswerHeader {
    status: Option<String>,
    #[serde(default)]
    data: Option<HeaderData>,
}

#[derive(Deserialize)]
struct HeaderData {
    #[serde(rename = "resultType")]
    result_type: Option<String>,
}

/// The answer of a successful range query (`/api/v1/query_range`, `resultType` "matrix").
#[derive(Deserialize)]
struct MatrixAnswer {
    data: MatrixData,
}

#[derive(Deserialize)]
struct MatrixData {
    result: Vec<MatrixSeries>,
}

/// One series of a matrix: its samples as `[unix time, "value"]`. The labels (`metric`) are not
/// needed: every series counts towards the total.
#[derive(Deserialize)]
struct MatrixSeries {
    values: Vec<(f64, String)>,
}

/// Deserialize `text` as `T`, reporting the line, column and JSON path of whatever does not fit.
fn from_json<'de, T: Deserialize<'de>>(text: &'de str, file: &str) -> Result<T, DataFileError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; the location goes in the fields instead.
        let full = inner.to_string();
        let suffix = format!(" at line {} column {}", inner.line(), inner.column());
        let what = full.strip_suffix(&suffix).unwrap_or(&full);
        let message = match inner.classify() {
            serde_json::error::Category::Data if path != "." && !path.is_empty() => {
                format!("{path}: {what}")
            }
            serde_json::error::Category::Data => what.to_string(),
            _ => format!("not JSON: {what}"),
        };
        DataFileError {
            file: file.to_string(),
            line: (inner.line() > 0).then_some(inner.line() as u64),
            column: (inner.column() > 0).then_some(inner.column() as u64),
            message,
        }
    })
}

/// Read a range-query answer (JSON) into per-interval request counts.
pub(super) fn range_query(
    path: &Path,
    o: &FormatOptions,
) -> Result<Vec<(f64, f64, Counted)>, DataFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(&file, None, format!("cannot open: {e}")))?;
    // Check what kind of answer it is before reading its result, whose shape depends on it.
    let header: AnswerHeader = from_json(&text, &file)?;
    let json = |s: &Option<String>| serde_json::to_string(s).unwrap_or_default();
    if header.status.as_deref() != Some("success") {
        return Err(error(
            &file,
            None,
            format!("status is {}, expected \"success\"", json(&header.status)),
        ));
    }
    let result_type = header.data.and_then(|d| d.result_type);
    if result_type.as_deref() != Some("matrix") {
        return Err(error(
            &file,
            None,
            format!(
                "data.resultType is {}, expected \"matrix\" (a range query: /api/v1/query_range)",
                json(&result_type)
            ),
        ));
    }
    let answer: MatrixAnswer = from_json(&text, &file)?;
    let mut totals: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, series) in answer.data.result.iter().enumerate() {
        let mut samples = BTreeMap::new();
        for (j, (t, raw)) in series.values.iter().enumerate() {
            let v: f64 = raw.parse().map_err(|_| {
                error(
                    &file,
                    None,
                    format!("data.result[{i}].values[{j}]: expected a number, found \"{raw}\""),
                )
            })?;
            if !v.is_nan() {
                samples.insert((t * 1000.0).round() as i64, v);
            }
        }
        accumulate(&mut totals, &samples, o.value_kind);
    }
    Ok(intervals_from(&totals, o.value_kind))
}

/// Read text-exposition snapshots of a request counter into per-interval request counts.
pub(super) fn snapshots(
    path: &Path,
    o: &FormatOptions,
) -> Result<Vec<(f64, f64, Counted)>, DataFileError> {
    let file = path.display().to_string();
    let handle = File::open(path).map_err(|e| error(&file, None, format!("cannot open: {e}")))?;
    // Snapshots are samples carrying millisecond timestamps, or blocks each introduced by a
    // comment `# time <unix seconds>` giving the scrape time of the samples below it.
    let mut blocks: Vec<(Option<f64>, Vec<String>, u64)> = vec![(None, Vec::new(), 1)];
    for (n, line) in BufReader::new(handle).lines().enumerate() {
        let number = n as u64 + 1;
        let line = line.map_err(|e| error(&file, Some(number), format!("cannot read: {e}")))?;
        if let Some(rest) = line.trim().strip_prefix("# time ") {
            let t: f64 = rest.trim().parse().map_err(|_| {
                error(
                    &file,
                    Some(number),
                    format!("expected \"# time <unix seconds>\", found \"{line}\""),
                )
            })?;
            blocks.push((Some(t), Vec::new(), number + 1));
        } else if let Some(b) = blocks.last_mut() {
            b.1.push(line);
        }
    }
    let untimed = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    // Every counter sample: (metric, series key, time ms or None when untimed, value).
    let mut samples: Vec<(String, String, Option<i64>, f64)> = Vec::new();
    for (time, lines, first_line) in blocks {
        if lines.iter().all(|l| l.trim().is_empty()) {
            continue;
        }
        let at = match time {
            Some(t) => chrono::Utc
                .timestamp_millis_opt((t * 1000.0).round() as i64)
                .single()
                .ok_or_else(|| error(&file, Some(first_line - 1), "time out of range"))?,
            None => untimed,
        };
        let scrape = prometheus_parse::Scrape::parse_at(lines.into_iter().map(Ok), at)
            .map_err(|e| error(&file, Some(first_line), format!("cannot parse: {e}")))?;
        for s in scrape.samples {
            let value = match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let timed = (s.timestamp != untimed).then(|| s.timestamp.timestamp_millis());
            samples.push((s.metric.clone(), format!("{labels:?}"), timed, value));
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for (m, ..) in &samples {
        if !names.contains(&m.as_str()) {
            names.push(m);
        }
    }
    let chosen = match &o.metric {
        Some(m) => names.iter().find(|n| **n == m).copied(),
        None => names.iter().find(|n| n.ends_with("_total")).copied(),
    }
    .ok_or_else(|| {
        error(
            &file,
            None,
            match &o.metric {
                Some(m) => format!("no counter named \"{m}\" (found: {})", names.join(", ")),
                None => format!(
                    "no counter ending in _total (found: {}); set `metric`",
                    names.join(", ")
                ),
            },
        )
    })?
    .to_string();
    let mut series: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for (metric, key, timed, value) in &samples {
        if *metric != chosen {
            continue;
        }
        let Some(ms) = timed else {
            return Err(error(
                &file,
                None,
                format!(
                    "samples of {chosen} carry no timestamp: add millisecond timestamps, or precede each snapshot with \"# time <unix seconds>\""
                ),
            ));
        };
        series.entry(key).or_default().insert(*ms, *value);
    }
    let mut totals = BTreeMap::new();
    for s in series.values() {
        accumulate(&mut totals, s, ValueKind::Counter);
    }
    Ok(intervals_from(&totals, ValueKind::Counter))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all, ascending};
    use super::super::{open, TraceFormat};
    use super::*;

    #[test]
    fn prometheus_rate_matrix_gives_poisson_counts() {
        let v = all(
            TraceFormat::PrometheusJson,
            "rate-matrix.json",
            &FormatOptions::default(),
        )
        .expect("valid");
        // Two series summing to 10 + 5 = 15 req/s over 4 × 60 s: mean 3,600, sd 60; ±5 sd.
        assert!((v.len() as f64 - 3600.0).abs() < 300.0, "{}", v.len());
        assert!(ascending(&v));
        assert!(v.last().expect("some").t_s < 240.0);
    }

    #[test]
    fn prometheus_counter_matrix_handles_resets_and_rejects_other_shapes() {
        let o = FormatOptions {
            value_kind: ValueKind::Counter,
            ..FormatOptions::default()
        };
        // 100 → 160 → 40 (reset: +40) → 100: 60 + 40 + 60 = 160 requests.
        let v = all(TraceFormat::PrometheusJson, "counter-matrix.json", &o).expect("valid");
        assert_eq!(v.len(), 160);
        let e = all(TraceFormat::PrometheusJson, "vector.json", &o).unwrap_err();
        assert!(e.message.contains("expected \"matrix\""), "{e}");
        let e = all(TraceFormat::PrometheusJson, "broken.json", &o).unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn malformed_prometheus_json_reports_line_column_and_path() {
        let dir = std::env::temp_dir().join(format!("simctl-prom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("wrong-value.json");
        std::fs::write(
            &path,
            "{\"status\": \"success\",\n \"data\": {\"resultType\": \"matrix\", \"result\": [\n  {\"metric\": {}, \"values\": [[1700000000, \"1\"],\n   [1700000060, 2]]}]}}\n",
        )
        .expect("write");
        let Err(e) = open(
            TraceFormat::PrometheusJson,
            &path,
            &FormatOptions::default(),
        ) else {
            panic!("a number where a string belongs was accepted");
        };
        assert_eq!((e.line, e.column), (Some(4), Some(17)), "{e}");
        assert!(
            e.message
                .starts_with("data.result[0].values[1][1]: invalid type: integer `2`"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("{}:4:17: ", path.display())),
            "{e}"
        );
        let e = all(
            TraceFormat::PrometheusJson,
            "broken.json",
            &FormatOptions::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(25)), "{e}");
    }

    #[test]
    fn prometheus_text_snapshots_of_a_counter() {
        // code=200: 10 → 25 → 45 (+15, +20); code=500: 3 → 5 → 1 (+2, reset +1): 38 in all.
        let v = all(
            TraceFormat::PrometheusText,
            "snapshots.prom",
            &FormatOptions::default(),
        )
        .expect("valid");
        assert_eq!(v.len(), 38);
        assert!(ascending(&v) && v.last().expect("some").t_s < 20.0);
        let marked = all(
            TraceFormat::PrometheusText,
            "snapshots-marked.prom",
            &FormatOptions::default(),
        )
        .expect("valid");
        assert_eq!(marked.len(), 35);
        let e = all(
            TraceFormat::PrometheusText,
            "snapshots.prom",
            &FormatOptions {
                metric: Some("nope_total".into()),
                ..FormatOptions::default()
            },
        )
        .unwrap_err();
        assert!(e.message.contains("no counter named \"nope_total\""), "{e}");
        assert!(e.message.contains("http_requests_total"), "{e}");
        let e = all(
            TraceFormat::PrometheusText,
            "snapshots-untimed.prom",
            &FormatOptions::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("no timestamp"), "{e}");
    }
}
