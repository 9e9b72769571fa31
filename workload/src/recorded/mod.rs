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

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::rng::Stream;

mod aggregated;
mod prometheus;

pub use aggregated::{total_requests, MAX_REQUESTS_PER_INTERVAL};
use aggregated::{Counted, Counts, Intervals};

/// One recorded request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedRequest {
    /// Seconds since the trace's start.
    pub t_s: f64,
    /// Its service time in seconds, where the trace records one.
    pub service_s: Option<f64>,
    /// Its prompt and output lengths in tokens, where the trace records them (LLM traces).
    pub tokens: Tokens,
    /// Its class, as an index into [`FormatOptions::classes`], where the trace has a class
    /// column (a router sends each class to its API).
    pub class: Option<u16>,
}

impl RecordedRequest {
    /// A request known only by its time (aggregated formats, access logs without durations).
    pub fn at(t_s: f64) -> Self {
        Self {
            t_s,
            service_s: None,
            tokens: Tokens::default(),
            class: None,
        }
    }
}

/// A recorded request's prompt and output lengths, each where the trace has its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// Prompt tokens.
    pub input: Option<u32>,
    /// Output tokens.
    pub output: Option<u32>,
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
    /// Timestamps: a per-request prompt-length column (tokens).
    pub input_column: Option<String>,
    /// Timestamps: a per-request output-length column (tokens).
    pub output_column: Option<String>,
    /// Timestamps: a per-request class column (text), each value one of `classes`.
    pub class_column: Option<String>,
    /// The classes `class_column` may hold, in the order their indices refer to.
    pub classes: Vec<String>,
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
            input_column: None,
            output_column: None,
            class_column: None,
            classes: Vec::new(),
            interval_s: None,
            metric: None,
            value_kind: ValueKind::Rate,
        }
    }
}

/// A malformed trace or data file, found while streaming it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{file}{}{}: {}",
    line.map(|l| format!(":{l}")).unwrap_or_default(),
    column.map(|c| format!(":{c}")).unwrap_or_default(),
    crate::units::one_line(message, 300)
)]
pub struct DataFileError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known (documents such as Prometheus JSON).
    pub column: Option<u64>,
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
        column: None,
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
        TraceFormat::PrometheusJson => Box::new(Intervals::new(
            prometheus::range_query(path, options)?,
            path,
        )?),
        TraceFormat::PrometheusText => {
            Box::new(Intervals::new(prometheus::snapshots(path, options)?, path)?)
        }
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

    /// Field `index` of the current row, trimmed (empty when missing).
    fn text(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or("").trim()
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
pub fn read_column(path: &Path, column: &str) -> Result<Vec<(f64, u64)>, DataFileError> {
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
    input: Option<(usize, String)>,
    output: Option<(usize, String)>,
    class: Option<(usize, String)>,
    classes: Vec<String>,
    unit: f64,
    first: Option<f64>,
    last: f64,
}

impl Timestamps {
    fn open(path: &Path, o: &FormatOptions) -> Result<Timestamps, DataFileError> {
        let csv = Csv::open(path)?;
        let name = o.column.clone().unwrap_or_else(|| "timestamp_s".into());
        let time = (csv.column(&name)?, name);
        let column = |name: &Option<String>| -> Result<_, DataFileError> {
            match name {
                Some(s) => Ok(Some((csv.column(s)?, s.clone()))),
                None => Ok(None),
            }
        };
        let service = column(&o.service_column)?;
        let input = column(&o.input_column)?;
        let output = column(&o.output_column)?;
        let class = column(&o.class_column)?;
        Ok(Timestamps {
            csv,
            time,
            service,
            input,
            output,
            class,
            classes: o.classes.clone(),
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
        let tokens = Tokens {
            input: self.tokens(&self.input)?,
            output: self.tokens(&self.output)?,
        };
        let class = match &self.class {
            Some((i, name)) => Some(self.class_of(*i, name)?),
            None => None,
        };
        Ok(Some(RecordedRequest {
            t_s: t - first,
            service_s,
            tokens,
            class,
        }))
    }
}

impl Timestamps {
    /// The index of the class the current row names in column `i` (`name`).
    fn class_of(&self, i: usize, name: &str) -> Result<u16, DataFileError> {
        let value = self.csv.text(i);
        match self.classes.iter().position(|c| c == value) {
            Some(k) => Ok(k as u16),
            None => Err(error(
                &self.csv.file,
                Some(self.csv.line()),
                format!(
                    "{name}: expected one of the classes {}, found {value:?}",
                    self.classes.join(", ")
                ),
            )),
        }
    }

    /// A token count from `column`, if the trace has it.
    fn tokens(&self, column: &Option<(usize, String)>) -> Result<Option<u32>, DataFileError> {
        let Some((i, name)) = column else {
            return Ok(None);
        };
        let v = self.csv.number(*i, name)?;
        if !(0.0..=1e7).contains(&v) || v.fract() != 0.0 {
            return Err(error(
                &self.csv.file,
                Some(self.csv.line()),
                format!("{name}: expected a whole token count of 0 to 10,000,000, found {v}"),
            ));
        }
        Ok(Some(v as u32))
    }
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
                        tokens: Tokens::default(),
                        class: None,
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

    pub(super) fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/traces")
            .join(name)
    }

    pub(super) fn all(
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

    pub(super) fn ascending(v: &[RecordedRequest]) -> bool {
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
    fn huge_counts_stream_or_are_refused_with_their_line() {
        let dir = std::env::temp_dir().join(format!("simctl-counts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // 1,000 intervals of 10^9 requests: 10^12 in all, generated lazily.
        let huge = dir.join("huge.csv");
        let mut text = String::from("timestamp_s,count\n");
        for i in 0..1000 {
            text.push_str(&format!("{},1000000000\n", i * 60));
        }
        std::fs::write(&huge, text).expect("write");
        let mut rng = crate::rng::stream(1, "t");
        let mut r = open(TraceFormat::Counts, &huge, &FormatOptions::default()).expect("opens");
        for _ in 0..10_000 {
            let t = r.next_request(&mut rng).expect("ok").expect("arrival");
            assert!(t.t_s < 60.0);
        }
        for bad in ["1e300", "18446744073709551615", "1e10", "nan"] {
            let path = dir.join("bad.csv");
            std::fs::write(&path, format!("timestamp_s,count\n0,1\n60,{bad}\n")).expect("write");
            let e = all(
                TraceFormat::Counts,
                path.to_str().expect("utf-8"),
                &FormatOptions::default(),
            )
            .expect_err(bad);
            assert_eq!(e.line, Some(3), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
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
