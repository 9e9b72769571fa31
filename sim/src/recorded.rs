//! Readers for the recorded-traffic formats users have: request timestamps (CSV), request counts
//! per interval (CSV), a Prometheus range query (JSON), Prometheus text snapshots of a request
//! counter, and nginx / Envoy access logs. Each yields requests in arrival order, as seconds since
//! the trace's first request (or first sample), with a service time where the format has one.
//!
//! Aggregated formats (counts, rates, counter increases) become arrivals spread as a Poisson
//! process within each interval: given n arrivals in an interval, their times are independent and
//! uniform, drawn from the API's arrival stream so runs stay reproducible. Everything streams
//! except the Prometheus formats, whose files are a single document (JSON) or parsed whole by
//! `prometheus-parse`; both are per-interval aggregates and small.

use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::TimeZone;
use rand::Rng;
use rand_distr::{Distribution, Poisson};

use crate::rng::Stream;

/// One recorded request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedRequest {
    /// Seconds since the trace's start.
    pub t_s: f64,
    /// Its service time in seconds, where the trace records one.
    pub service_s: Option<f64>,
}

/// The formats [`open`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// CSV, one row per request with a timestamp column.
    Timestamps,
    /// CSV, one row per interval: its start and the number of requests.
    Counts,
    /// Prometheus `/api/v1/query_range` response (`resultType: matrix`).
    PrometheusJson,
    /// Successive Prometheus text-exposition scrapes of a request counter.
    PrometheusText,
    /// nginx `combined` (optionally with `$request_time`) or Envoy default access log lines.
    AccessLog,
}

impl TraceFormat {
    /// By the name used in scenarios.
    pub fn parse(name: &str) -> Option<TraceFormat> {
        Some(match name {
            "timestamps" => TraceFormat::Timestamps,
            "counts" => TraceFormat::Counts,
            "prometheus_json" => TraceFormat::PrometheusJson,
            "prometheus_text" => TraceFormat::PrometheusText,
            "access_log" => TraceFormat::AccessLog,
            _ => return None,
        })
    }

    /// The names accepted by [`TraceFormat::parse`].
    pub const NAMES: &'static str =
        "\"timestamps\", \"counts\", \"prometheus_json\", \"prometheus_text\", \"access_log\"";
}

/// Whether Prometheus JSON values are per-second rates or cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// e.g. the result of `sum(rate(requests_total[1m]))`.
    Rate,
    /// e.g. `sum(requests_total)`: increases between samples are requests (resets handled).
    Counter,
}

/// Options of the readers.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOptions {
    /// Timestamps: the time column (default `timestamp_s`); counts: the count column
    /// (default `count`).
    pub column: Option<String>,
    /// Counts: the interval-start column (default `timestamp_s`).
    pub time_column: Option<String>,
    /// Timestamps: a per-request service-time column.
    pub service_column: Option<String>,
    /// Multiplier from the service column's unit to seconds.
    pub service_unit_s: f64,
    /// Counts: width of the last interval when it cannot be inferred (default: the previous gap).
    pub interval_s: Option<f64>,
    /// Prometheus text: the counter to follow (default: the first metric ending in `_total`).
    pub metric: Option<String>,
    /// Prometheus JSON: rates or counters.
    pub value_kind: ValueKind,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            column: None,
            time_column: None,
            service_column: None,
            service_unit_s: 1.0,
            interval_s: None,
            metric: None,
            value_kind: ValueKind::Rate,
        }
    }
}

/// A malformed trace or data file, found while streaming it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DataFileError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// What was wrong.
    pub message: String,
}

/// A streamed source of recorded requests.
pub trait RecordedArrivals: Send {
    /// The next request, `None` at the end.
    fn next_request(&mut self, rng: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError>;
}

fn error(file: &str, line: Option<u64>, message: impl Into<String>) -> DataFileError {
    DataFileError {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Open a trace.
pub fn open(
    format: TraceFormat,
    path: &Path,
    options: &FormatOptions,
) -> Result<Box<dyn RecordedArrivals>, DataFileError> {
    Ok(match format {
        TraceFormat::Timestamps => Box::new(Timestamps::open(path, options)?),
        TraceFormat::Counts => Box::new(Counts::open(path, options)?),
        TraceFormat::PrometheusJson => Box::new(Intervals::new(prometheus_json(path, options)?)),
        TraceFormat::PrometheusText => Box::new(Intervals::new(prometheus_text(path, options)?)),
        TraceFormat::AccessLog => Box::new(AccessLog::open(path)?),
    })
}

/// A CSV file with a header row, read record by record.
struct Csv {
    reader: csv::Reader<BufReader<File>>,
    record: csv::StringRecord,
    file: String,
    headers: Vec<String>,
}

impl Csv {
    fn open(path: &Path) -> Result<Csv, DataFileError> {
        let file = path.display().to_string();
        let handle =
            File::open(path).map_err(|e| error(&file, None, format!("cannot open: {e}")))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::new(handle));
        let headers = reader
            .headers()
            .map_err(|e| error(&file, Some(1), format!("cannot read the header row: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Csv {
            reader,
            record: csv::StringRecord::new(),
            file,
            headers,
        })
    }

    fn column(&self, name: &str) -> Result<usize, DataFileError> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            error(
                &self.file,
                Some(1),
                format!(
                    "no column \"{name}\" in the header (found: {})",
                    self.headers.join(", ")
                ),
            )
        })
    }

    /// Advance; `Ok(false)` at the end.
    fn next(&mut self) -> Result<bool, DataFileError> {
        self.reader.read_record(&mut self.record).map_err(|e| {
            error(
                &self.file,
                e.position().map(|p| p.line()),
                format!("malformed CSV: {e}"),
            )
        })
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }

    fn number(&self, index: usize, name: &str) -> Result<f64, DataFileError> {
        let raw = self.record.get(index).ok_or_else(|| {
            error(
                &self.file,
                Some(self.line()),
                format!("{name}: missing (the row has {} fields)", self.record.len()),
            )
        })?;
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(error(
                &self.file,
                Some(self.line()),
                format!("{name}: expected a number, found \"{raw}\""),
            )),
        }
    }
}

/// Every value of a numeric column with its line (for small files such as measured durations).
pub(crate) fn read_column(path: &Path, column: &str) -> Result<Vec<(f64, u64)>, DataFileError> {
    let mut csv = Csv::open(path)?;
    let index = csv.column(column)?;
    let mut out = Vec::new();
    while csv.next()? {
        out.push((csv.number(index, column)?, csv.line()));
    }
    Ok(out)
}

struct Timestamps {
    csv: Csv,
    time: (usize, String),
    service: Option<(usize, String)>,
    unit: f64,
    first: Option<f64>,
    last: f64,
}

impl Timestamps {
    fn open(path: &Path, o: &FormatOptions) -> Result<Timestamps, DataFileError> {
        let csv = Csv::open(path)?;
        let name = o.column.clone().unwrap_or_else(|| "timestamp_s".into());
        let time = (csv.column(&name)?, name);
        let service = match &o.service_column {
            Some(s) => Some((csv.column(s)?, s.clone())),
            None => None,
        };
        Ok(Timestamps {
            csv,
            time,
            service,
            unit: o.service_unit_s,
            first: None,
            last: f64::NEG_INFINITY,
        })
    }
}

impl RecordedArrivals for Timestamps {
    fn next_request(&mut self, _: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        if !self.csv.next()? {
            return Ok(None);
        }
        let t = self.csv.number(self.time.0, &self.time.1)?;
        if t < self.last {
            return Err(error(
                &self.csv.file,
                Some(self.csv.line()),
                format!(
                    "{}: timestamps must be ascending, found {t} after {}",
                    self.time.1, self.last
                ),
            ));
        }
        self.last = t;
        let first = *self.first.get_or_insert(t);
        let service_s = match &self.service {
            Some((i, name)) => {
                let v = self.csv.number(*i, name)?;
                if v < 0.0 {
                    return Err(error(
                        &self.csv.file,
                        Some(self.csv.line()),
                        format!("{name}: expected a duration ≥ 0, found {v}"),
                    ));
                }
                Some(v * self.unit)
            }
            None => None,
        };
        Ok(Some(RecordedRequest {
            t_s: t - first,
            service_s,
        }))
    }
}

/// Uniform, sorted arrivals for `n` requests in `[start, start + width)`.
fn spread(rng: &mut Stream, start: f64, width: f64, n: u64) -> VecDeque<f64> {
    let mut v: Vec<f64> = (0..n)
        .map(|_| start + rng.random::<f64>() * width)
        .collect();
    v.sort_by(f64::total_cmp);
    v.into()
}

struct Counts {
    csv: Csv,
    time: (usize, String),
    count: (usize, String),
    interval: Option<f64>,
    /// The next row (start, count, line), read ahead to know this interval's width.
    ahead: Option<(f64, f64, u64)>,
    first: Option<f64>,
    previous_gap: Option<f64>,
    batch: VecDeque<f64>,
}

impl Counts {
    fn open(path: &Path, o: &FormatOptions) -> Result<Counts, DataFileError> {
        let csv = Csv::open(path)?;
        let t = o
            .time_column
            .clone()
            .unwrap_or_else(|| "timestamp_s".into());
        let c = o.column.clone().unwrap_or_else(|| "count".into());
        let mut counts = Counts {
            time: (csv.column(&t)?, t),
            count: (csv.column(&c)?, c),
            csv,
            interval: o.interval_s,
            ahead: None,
            first: None,
            previous_gap: None,
            batch: VecDeque::new(),
        };
        counts.ahead = counts.read_row()?;
        Ok(counts)
    }

    fn read_row(&mut self) -> Result<Option<(f64, f64, u64)>, DataFileError> {
        if !self.csv.next()? {
            return Ok(None);
        }
        let t = self.csv.number(self.time.0, &self.time.1)?;
        let n = self.csv.number(self.count.0, &self.count.1)?;
        if n < 0.0 || n.fract() != 0.0 {
            return Err(error(
                &self.csv.file,
                Some(self.csv.line()),
                format!(
                    "{}: expected a whole number of requests ≥ 0, found {n}",
                    self.count.1
                ),
            ));
        }
        Ok(Some((t, n, self.csv.line())))
    }
}

impl RecordedArrivals for Counts {
    fn next_request(&mut self, rng: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        loop {
            if let Some(t) = self.batch.pop_front() {
                return Ok(Some(RecordedRequest {
                    t_s: t,
                    service_s: None,
                }));
            }
            let Some((start, n, line)) = self.ahead.take() else {
                return Ok(None);
            };
            self.ahead = self.read_row()?;
            let width = match (self.ahead, self.interval, self.previous_gap) {
                (Some((next, _, _)), _, _) => next - start,
                (None, Some(w), _) | (None, None, Some(w)) => w,
                (None, None, None) => 1.0,
            };
            if width <= 0.0 {
                return Err(error(
                    &self.csv.file,
                    Some(line + 1),
                    format!("{}: interval starts must increase", self.time.1),
                ));
            }
            self.previous_gap = Some(width);
            let first = *self.first.get_or_insert(start);
            self.batch = spread(rng, start - first, width, n as u64);
        }
    }
}

/// How many requests an interval holds.
#[derive(Debug, Clone, Copy)]
enum Counted {
    /// Exactly this many.
    Exact(u64),
    /// A Poisson number with this mean.
    Mean(f64),
}

/// Aggregated (start s, width s, requests) intervals expanded into arrivals.
struct Intervals {
    intervals: VecDeque<(f64, f64, Counted)>,
    batch: VecDeque<f64>,
}

impl Intervals {
    fn new(intervals: Vec<(f64, f64, Counted)>) -> Intervals {
        Intervals {
            intervals: intervals.into(),
            batch: VecDeque::new(),
        }
    }
}

impl RecordedArrivals for Intervals {
    fn next_request(&mut self, rng: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        loop {
            if let Some(t) = self.batch.pop_front() {
                return Ok(Some(RecordedRequest {
                    t_s: t,
                    service_s: None,
                }));
            }
            let Some((start, width, counted)) = self.intervals.pop_front() else {
                return Ok(None);
            };
            let n = match counted {
                Counted::Exact(n) => n,
                Counted::Mean(m) if m > 0.0 => Poisson::new(m).map_or(0, |p| p.sample(rng) as u64),
                Counted::Mean(_) => 0,
            };
            self.batch = spread(rng, start, width, n);
        }
    }
}

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

fn prometheus_json(
    path: &Path,
    o: &FormatOptions,
) -> Result<Vec<(f64, f64, Counted)>, DataFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(&file, None, format!("cannot open: {e}")))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        error(
            &file,
            Some(e.line() as u64),
            format!("not JSON (column {}): {e}", e.column()),
        )
    })?;
    if doc["status"] != "success" {
        return Err(error(
            &file,
            None,
            format!("status is {}, expected \"success\"", doc["status"]),
        ));
    }
    if doc["data"]["resultType"] != "matrix" {
        return Err(error(
            &file,
            None,
            format!(
                "data.resultType is {}, expected \"matrix\" (a range query: /api/v1/query_range)",
                doc["data"]["resultType"]
            ),
        ));
    }
    let series = doc["data"]["result"]
        .as_array()
        .ok_or_else(|| error(&file, None, "data.result: expected an array of series"))?;
    let mut totals: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        let values = s["values"].as_array().ok_or_else(|| {
            error(
                &file,
                None,
                format!("data.result[{i}].values: expected [[time, \"value\"], …]"),
            )
        })?;
        let mut samples = BTreeMap::new();
        for (j, pair) in values.iter().enumerate() {
            let at = || format!("data.result[{i}].values[{j}]");
            let t = pair[0]
                .as_f64()
                .ok_or_else(|| error(&file, None, format!("{}: expected a unix time", at())))?;
            let raw = pair[1]
                .as_str()
                .ok_or_else(|| error(&file, None, format!("{}: expected a string value", at())))?;
            let v: f64 = raw.parse().map_err(|_| {
                error(
                    &file,
                    None,
                    format!("{}: expected a number, found \"{raw}\"", at()),
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

fn prometheus_text(
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

/// Access logs are written at completion, so lines are nearly but not exactly in arrival
/// order: entries are buffered and released once a line 60 s newer has been read.
struct AccessLog {
    lines: std::io::Lines<BufReader<File>>,
    line: u64,
    file: String,
    heap: BinaryHeap<std::cmp::Reverse<(i64, u64, Option<u64>)>>,
    newest_us: i64,
    first_us: Option<i64>,
    released_us: i64,
    done: bool,
}

const REORDER_WINDOW_US: i64 = 60_000_000;

impl AccessLog {
    fn open(path: &Path) -> Result<AccessLog, DataFileError> {
        let file = path.display().to_string();
        let handle =
            File::open(path).map_err(|e| error(&file, None, format!("cannot open: {e}")))?;
        Ok(AccessLog {
            lines: BufReader::new(handle).lines(),
            line: 0,
            file,
            heap: BinaryHeap::new(),
            newest_us: i64::MIN,
            first_us: None,
            released_us: i64::MIN,
            done: false,
        })
    }

    /// (start time µs, service µs) of one line.
    fn parse_line(&self, line: &str) -> Result<(i64, Option<u64>), DataFileError> {
        let bad = |what: &str| {
            error(
                &self.file,
                Some(self.line),
                format!("{what}; expected an nginx combined or Envoy default access-log line"),
            )
        };
        let open = line.find('[').ok_or_else(|| bad("no [time]"))?;
        let close = line[open..]
            .find(']')
            .map(|i| open + i)
            .ok_or_else(|| bad("no closing ]"))?;
        let stamp = &line[open + 1..close];
        if open == 0 {
            // Envoy: [2016-04-15T20:17:00.310Z] "GET / HTTP/1.1" 200 - 0 12 34 ... — the request
            // is the first quoted field; code, flags, bytes in, bytes out, duration (ms) follow.
            let start = chrono::DateTime::parse_from_rfc3339(stamp)
                .map_err(|_| bad(&format!("time \"{stamp}\" is not RFC 3339")))?;
            let after: Vec<&str> = line[close + 1..]
                .split_once('"')
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            let duration_ms = after.get(4).and_then(|d| d.parse::<f64>().ok());
            return Ok((
                start.timestamp_micros(),
                duration_ms.map(|ms| (ms * 1000.0).round() as u64),
            ));
        }
        // nginx: 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2326 "-" "ua" 0.042
        let end =
            chrono::DateTime::parse_from_str(stamp, "%d/%b/%Y:%H:%M:%S %z").map_err(|_| {
                bad(&format!(
                    "time \"{stamp}\" is not like 10/Oct/2000:13:55:36 -0700"
                ))
            })?;
        let request_time = line
            .rsplit_once('"')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|t| t.parse::<f64>().ok());
        // nginx logs at completion: the request started request_time earlier.
        let service = request_time.map(|s| (s * 1e6).round() as u64);
        Ok((
            end.timestamp_micros() - service.unwrap_or(0) as i64,
            service,
        ))
    }
}

impl RecordedArrivals for AccessLog {
    fn next_request(&mut self, _: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        loop {
            if let Some(std::cmp::Reverse((t, _, service))) = self.heap.peek().copied() {
                if self.done || t < self.newest_us - REORDER_WINDOW_US {
                    self.heap.pop();
                    self.released_us = t;
                    let first = *self.first_us.get_or_insert(t);
                    return Ok(Some(RecordedRequest {
                        t_s: (t - first) as f64 / 1e6,
                        service_s: service.map(|us| us as f64 / 1e6),
                    }));
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.lines.next() {
                None => self.done = true,
                Some(line) => {
                    self.line += 1;
                    let line = line.map_err(|e| {
                        error(&self.file, Some(self.line), format!("cannot read: {e}"))
                    })?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let (t, service) = self.parse_line(&line)?;
                    if t < self.released_us {
                        return Err(error(
                            &self.file,
                            Some(self.line),
                            "line is more than 60 s older than lines before it; sort the log by time",
                        ));
                    }
                    self.newest_us = self.newest_us.max(t);
                    self.heap.push(std::cmp::Reverse((t, self.line, service)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/traces")
            .join(name)
    }

    fn all(
        format: TraceFormat,
        name: &str,
        o: &FormatOptions,
    ) -> Result<Vec<RecordedRequest>, DataFileError> {
        let mut source = open(format, &fixture(name), o)?;
        let mut rng = stream(1, "t");
        let mut out = Vec::new();
        while let Some(r) = source.next_request(&mut rng)? {
            out.push(r);
        }
        Ok(out)
    }

    fn ascending(v: &[RecordedRequest]) -> bool {
        v.windows(2).all(|w| w[0].t_s <= w[1].t_s)
    }

    #[test]
    fn timestamps_with_service_column() {
        let o = FormatOptions {
            service_column: Some("latency_ms".into()),
            service_unit_s: 1e-3,
            ..FormatOptions::default()
        };
        let v = all(TraceFormat::Timestamps, "requests.csv", &o).expect("valid");
        assert_eq!(v.len(), 5);
        assert_eq!(v[0].t_s, 0.0);
        assert!((v[4].t_s - 2.5).abs() < 1e-9);
        assert_eq!(v[1].service_s, Some(0.12));
        let e = all(TraceFormat::Timestamps, "requests-bad.csv", &o).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("expected a number"), "{e}");
    }

    #[test]
    fn counts_spread_exactly_their_total() {
        let v = all(TraceFormat::Counts, "counts.csv", &FormatOptions::default()).expect("valid");
        assert_eq!(v.len(), 3 + 7 + 2);
        assert!(ascending(&v));
        assert_eq!(
            v.iter().filter(|r| (60.0..120.0).contains(&r.t_s)).count(),
            0
        );
        assert_eq!(
            v.iter().filter(|r| (120.0..180.0).contains(&r.t_s)).count(),
            7
        );
        let e = all(
            TraceFormat::Counts,
            "counts-bad.csv",
            &FormatOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("whole number"), "{e}");
    }

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

    #[test]
    fn access_logs_nginx_and_envoy() {
        let v = all(
            TraceFormat::AccessLog,
            "nginx.log",
            &FormatOptions::default(),
        )
        .expect("valid");
        assert_eq!(v.len(), 4);
        assert!(ascending(&v));
        // Line 2 finished at :37 after 1.5 s, so it arrived at 35.5, before line 1 (36 − 0.042).
        assert_eq!(v[0].t_s, 0.0);
        assert_eq!(v[0].service_s, Some(1.5));
        let v = all(
            TraceFormat::AccessLog,
            "envoy.log",
            &FormatOptions::default(),
        )
        .expect("valid");
        assert_eq!(v.len(), 3);
        assert!((v[2].t_s - 1.5).abs() < 1e-9);
        assert_eq!(v[0].service_s, Some(0.034));
        let e = all(TraceFormat::AccessLog, "bad.log", &FormatOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
