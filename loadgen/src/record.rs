//! Recording a load test: HDR histograms per one-second interval (sharded so concurrent
//! requests rarely share a lock), the totals and timeline built from them, and a writer thread
//! that streams the per-request CSV (in schedule order) and the HDR interval log to temporary
//! files that become the real files only when the run ends.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use contract::results::{
    encode_histogram, new_histogram, ApiResults, Metric, Percentiles, SeriesKey, SloVerdict,
    Timeline, HISTOGRAM_MAX_US,
};
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};
use hdrhistogram::serialization::{V2DeflateSerializeError, V2DeflateSerializer};
use hdrhistogram::Histogram;
use tempfile::NamedTempFile;

use crate::client::Answer;
use crate::tenant_tally::TenantTallies;
use crate::LoadError;
use contract::loadgen::{LoadResults, SCHEMA};

/// What the live progress line shows, once a second.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Planned length of the run, seconds.
    pub planned_s: f64,
    /// Requests sent so far.
    pub sent: u64,
    /// 2xx answers so far.
    pub completed: u64,
    /// 503 answers so far.
    pub rejected: u64,
    /// Timeouts, transport errors and other statuses so far.
    pub failed: u64,
    /// Requests outstanding now.
    pub in_flight: u64,
    /// Requests that left late so far.
    pub late: u64,
    /// Sends per second over the last second.
    pub rate_rps: f64,
    /// Median latency over the last second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency over the last second, ms.
    pub p99_ms: Option<f64>,
    /// Median time to first token over the last second, ms (OpenAI-compatible targets).
    pub ttft_p50_ms: Option<f64>,
    /// 99th percentile time to first token over the last second, ms (OpenAI-compatible
    /// targets).
    pub ttft_p99_ms: Option<f64>,
    /// Median inter-token latency over the last second, ms (OpenAI-compatible targets).
    pub itl_p50_ms: Option<f64>,
    /// 99th percentile inter-token latency over the run so far, ms (OpenAI-compatible targets).
    pub itl_p99_ms: Option<f64>,
    /// Output tokens received per second over the last second (OpenAI-compatible targets).
    pub output_tokens_per_s: Option<f64>,
}

/// Lock shards of the interval recorders.
const SHARDS: usize = 4;

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The server answered.
    Answered(Answer),
    /// The client timeout passed first.
    TimedOut,
    /// No answer: connection refused or reset, malformed response, ….
    Failed(String),
}

/// One finished request.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub seq: u64,
    /// Scheduled time after the start.
    pub at: Duration,
    /// From the scheduled time to the end.
    pub latency: Duration,
    /// From the actual send to the end.
    pub response: Duration,
    pub outcome: Outcome,
    /// What a streamed completion delivered (OpenAI-compatible targets).
    pub tokens: Option<TokenRow>,
    /// Its tenant's index, when the schedule is a sum of tenants.
    pub tenant: Option<u16>,
}

/// The tokens of one streamed completion.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenRow {
    /// Prompt tokens sent.
    pub input: u32,
    /// Output tokens received.
    pub output: u64,
    /// From the scheduled time to the first token.
    pub ttft: Option<Duration>,
    /// Gaps between consecutive tokens.
    pub gaps: Vec<Duration>,
    /// Mean of `gaps`.
    pub itl_mean: Option<Duration>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(HISTOGRAM_MAX_US)
}

/// Counts and histograms over one interval (or, merged, over the whole run).
struct Tally {
    sent: u64,
    late: u64,
    completed: u64,
    rejected: u64,
    timed_out: u64,
    failed: u64,
    unfinished: u64,
    latency: Histogram<u64>,
    response: Histogram<u64>,
    lag: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    ttft: Histogram<u64>,
    itl: Histogram<u64>,
    output_tokens: u64,
    /// Completed requests within the token objectives (goodput).
    good: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            sent: 0,
            late: 0,
            completed: 0,
            rejected: 0,
            timed_out: 0,
            failed: 0,
            unfinished: 0,
            latency: new_histogram(),
            response: new_histogram(),
            lag: new_histogram(),
            errors: BTreeMap::new(),
            ttft: new_histogram(),
            itl: new_histogram(),
            output_tokens: 0,
            good: 0,
        }
    }

    fn absorb(&mut self, other: &mut Tally) {
        self.sent += other.sent;
        self.late += other.late;
        self.completed += other.completed;
        self.rejected += other.rejected;
        self.timed_out += other.timed_out;
        self.failed += other.failed;
        self.unfinished += other.unfinished;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.response.add(&other.response);
        let _ = self.lag.add(&other.lag);
        let _ = self.ttft.add(&other.ttft);
        let _ = self.itl.add(&other.itl);
        self.output_tokens += other.output_tokens;
        self.good += other.good;
        for (k, v) in std::mem::take(&mut other.errors) {
            *self.errors.entry(k).or_default() += v;
        }
        other.sent = 0;
        other.late = 0;
        other.completed = 0;
        other.rejected = 0;
        other.timed_out = 0;
        other.failed = 0;
        other.unfinished = 0;
        other.latency.reset();
        other.response.reset();
        other.lag.reset();
        other.ttft.reset();
        other.itl.reset();
        other.output_tokens = 0;
        other.good = 0;
    }
}

enum Message {
    Row(Row),
    Interval {
        start: Duration,
        length: Duration,
        latency: Histogram<u64>,
    },
}

struct Files {
    sender: mpsc::Sender<Message>,
    thread: JoinHandle<Result<FilesWritten, WriteError>>,
}

/// Token measurements are on (OpenAI-compatible targets), with these objectives.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokenObjectives {
    /// Longest good time to first token.
    pub ttft: Option<Duration>,
    /// Longest good mean inter-token latency.
    pub itl: Option<Duration>,
}

impl TokenObjectives {
    fn met(&self, row: &TokenRow) -> bool {
        let within = |limit: Option<Duration>, value: Option<Duration>| match (limit, value) {
            (None, _) => true,
            (Some(limit), Some(value)) => value <= limit,
            // Without a first token TTFT is unmet; one token has no gap to miss ITL with.
            (Some(_), None) => false,
        };
        within(self.ttft, row.ttft) && (row.gaps.is_empty() || within(self.itl, row.itl_mean))
    }
}

struct FilesWritten {
    csv: Option<(NamedTempFile, PathBuf)>,
    hdr: Option<(NamedTempFile, PathBuf)>,
}

struct Collected {
    totals: Tally,
    timeline: Timeline,
    last_t: f64,
}

/// What a run was, for its results file.
pub(crate) struct RunInfo<'a> {
    /// `open` or `closed`.
    pub model: &'a str,
    pub target: &'a str,
    pub schedule: &'a str,
    pub planned_s: f64,
    pub max_in_flight: usize,
}

/// Collects what the workers report.
pub(crate) struct Recorder {
    api: String,
    late_threshold: Duration,
    tokens: Option<TokenObjectives>,
    shards: Vec<Mutex<Tally>>,
    collected: Mutex<Collected>,
    files: Option<Files>,
    tenants: TenantTallies,
}

fn temp_beside(path: &Path) -> Result<NamedTempFile, LoadError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    NamedTempFile::new_in(dir).map_err(|e| LoadError::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Recorder {
    pub(crate) fn new(
        api: &str,
        tenants: &[String],
        late_threshold: Duration,
        tokens: Option<TokenObjectives>,
        csv: Option<&Path>,
        hdr: Option<&Path>,
    ) -> Result<Self, LoadError> {
        let files = if csv.is_some() || hdr.is_some() {
            let csv = match csv {
                Some(p) => Some((temp_beside(p)?, p.to_path_buf())),
                None => None,
            };
            let hdr = match hdr {
                Some(p) => Some((temp_beside(p)?, p.to_path_buf())),
                None => None,
            };
            let (sender, receiver) = mpsc::channel();
            let token_columns = tokens.is_some();
            let thread = std::thread::spawn(move || write_files(receiver, csv, hdr, token_columns));
            Some(Files { sender, thread })
        } else {
            None
        };
        Ok(Self {
            api: api.to_string(),
            late_threshold,
            tokens,
            shards: (0..SHARDS).map(|_| Mutex::new(Tally::new())).collect(),
            collected: Mutex::new(Collected {
                totals: Tally::new(),
                timeline: Timeline {
                    step_s: 1.0,
                    ..Timeline::default()
                },
                last_t: 0.0,
            }),
            files,
            tenants: TenantTallies::new(tenants),
        })
    }

    fn shard(&self, worker: usize) -> std::sync::MutexGuard<'_, Tally> {
        self.shards[worker % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A request left `lag` after its scheduled time.
    pub(crate) fn sent(&self, worker: usize, lag: Duration) {
        let mut t = self.shard(worker);
        t.sent += 1;
        if lag > self.late_threshold {
            t.late += 1;
        }
        t.lag.saturating_record(micros(lag));
    }

    /// A request (of `tenant`) was still outstanding when the run stopped.
    pub(crate) fn unfinished(&self, worker: usize, tenant: Option<u16>) {
        self.shard(worker).unfinished += 1;
        self.tenants.unfinished(tenant);
    }

    /// A request ended.
    pub(crate) fn record(&self, worker: usize, row: Row) {
        self.tenants.record(&row);
        {
            let mut t = self.shard(worker);
            match &row.outcome {
                Outcome::Answered(a) if (200..300).contains(&a.status) => {
                    t.completed += 1;
                    t.latency.saturating_record(micros(row.latency));
                    t.response.saturating_record(micros(row.response));
                    if let (Some(objectives), Some(tokens)) = (&self.tokens, &row.tokens) {
                        t.output_tokens += tokens.output;
                        if let Some(ttft) = tokens.ttft {
                            t.ttft.saturating_record(micros(ttft));
                        }
                        for gap in &tokens.gaps {
                            t.itl.saturating_record(micros(*gap));
                        }
                        if objectives.met(tokens) {
                            t.good += 1;
                        }
                    }
                }
                // Refused: the replica or proxy is full (503), or the tenant's limit (429).
                Outcome::Answered(a) if a.status == 503 || a.status == 429 => t.rejected += 1,
                Outcome::Answered(a) => {
                    t.failed += 1;
                    *t.errors.entry(format!("http {}", a.status)).or_default() += 1;
                }
                Outcome::TimedOut => t.timed_out += 1,
                Outcome::Failed(e) => {
                    t.failed += 1;
                    *t.errors.entry(e.clone()).or_default() += 1;
                }
            }
        }
        if let Some(files) = &self.files {
            let _ = files.sender.send(Message::Row(row));
        }
    }

    /// Close the interval ending at `t_s` (seconds since the start) with `in_flight` requests
    /// outstanding: timeline point, HDR log entry, totals; returns the progress figures.
    pub(crate) fn collect(&self, t_s: f64, in_flight: u64) -> Progress {
        let mut step = Tally::new();
        for shard in &self.shards {
            let mut t = shard.lock().unwrap_or_else(|p| p.into_inner());
            step.absorb(&mut t);
        }
        let mut c = self.collected.lock().unwrap_or_else(|p| p.into_inner());
        let length = (t_s - c.last_t).max(1e-9);
        let quantile = |h: &Histogram<u64>, q: f64| {
            (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
        };
        let progress_step = Progress {
            elapsed_s: t_s,
            rate_rps: step.sent as f64 / length,
            p50_ms: quantile(&step.latency, 0.5),
            p99_ms: quantile(&step.latency, 0.99),
            ttft_p50_ms: quantile(&step.ttft, 0.5),
            ttft_p99_ms: quantile(&step.ttft, 0.99),
            itl_p50_ms: quantile(&step.itl, 0.5),
            output_tokens_per_s: self.tokens.map(|_| step.output_tokens as f64 / length),
            ..Progress::default()
        };
        let api = &self.api;
        let points = [
            (
                SeriesKey::new(Metric::Rps, api),
                Some(step.sent as f64 / length),
            ),
            (
                SeriesKey::new(Metric::ThroughputRps, api),
                Some(step.completed as f64 / length),
            ),
            (
                SeriesKey::new(Metric::Rejected, api),
                Some(step.rejected as f64),
            ),
            (
                SeriesKey::new(Metric::TimedOut, api),
                Some(step.timed_out as f64),
            ),
            (
                SeriesKey::new(Metric::Interrupted, api),
                Some(step.failed as f64),
            ),
            (SeriesKey::new(Metric::Late, api), Some(step.late as f64)),
            (
                SeriesKey::new(Metric::LatencyP50Ms, api),
                progress_step.p50_ms,
            ),
            (
                SeriesKey::new(Metric::LatencyP99Ms, api),
                progress_step.p99_ms,
            ),
        ];
        c.timeline.t_s.push(t_s);
        for (name, value) in points {
            c.timeline.series.entry(name).or_default().push(value);
        }
        if self.tokens.is_some() {
            let token_points = [
                (
                    SeriesKey::new(Metric::OutputTokensPerS, api),
                    progress_step.output_tokens_per_s,
                ),
                (
                    SeriesKey::new(Metric::TtftP99Ms, api),
                    progress_step.ttft_p99_ms,
                ),
            ];
            for (name, value) in token_points {
                c.timeline.series.entry(name).or_default().push(value);
            }
        }
        c.timeline
            .series
            .entry(SeriesKey::new(Metric::InFlight, api))
            .or_default()
            .push(Some(in_flight as f64));
        if let Some(files) = &self.files {
            let _ = files.sender.send(Message::Interval {
                start: Duration::from_secs_f64(c.last_t),
                length: Duration::from_secs_f64(length),
                latency: step.latency.clone(),
            });
        }
        c.last_t = t_s;
        c.totals.absorb(&mut step);
        let t = &c.totals;
        Progress {
            sent: t.sent,
            completed: t.completed,
            rejected: t.rejected,
            failed: t.failed + t.timed_out,
            late: t.late,
            in_flight,
            itl_p99_ms: quantile(&t.itl, 0.99),
            ..progress_step
        }
    }

    /// Close the last interval, write the files and build the results.
    pub(crate) fn finish(
        mut self,
        run: RunInfo<'_>,
        elapsed_s: f64,
        truncated: bool,
    ) -> Result<LoadResults, LoadError> {
        let last = self
            .collected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_t;
        if elapsed_s > last + 1e-3 {
            self.collect(elapsed_s, 0);
        }
        if let Some(files) = self.files.take() {
            drop(files.sender);
            let written = files
                .thread
                .join()
                .map_err(|_| LoadError::Internal("the file writer panicked".into()))?
                .map_err(|e| LoadError::Output {
                    path: PathBuf::from("(request log)"),
                    reason: e.to_string(),
                })?;
            for (temp, path) in [written.csv, written.hdr].into_iter().flatten() {
                temp.persist(&path).map_err(|e| LoadError::Output {
                    path: path.clone(),
                    reason: e.error.to_string(),
                })?;
            }
        }
        let c = self
            .collected
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let t = c.totals;
        let tokens = self.tokens.map(|objectives| {
            let ended = t.completed + t.rejected + t.timed_out + t.failed;
            let goodput = (objectives.ttft.is_some() || objectives.itl.is_some())
                .then(|| t.good as f64 / ended.max(1) as f64);
            (
                Percentiles::from_histogram(&t.ttft),
                Percentiles::from_histogram(&t.itl),
                t.output_tokens,
                goodput,
            )
        });
        let api = ApiResults {
            name: self.api.clone(),
            requests: t.sent,
            completed: t.completed,
            rejected: t.rejected,
            rejected_no_replica: 0,
            timed_out: t.timed_out,
            interrupted: t.failed,
            in_flight_at_end: t.unfinished,
            oom_kills: 0,
            qos_class: String::new(),
            latency_ms: Percentiles::from_histogram(&t.latency),
            queue_wait_ms: Percentiles::default(),
            throughput_rps: if elapsed_s > 0.0 {
                t.completed as f64 / elapsed_s
            } else {
                0.0
            },
            replica_seconds: 0.0,
            cold_starts: 0,
            peak_pending_replicas: 0,
            cost_usd: 0.0,
            utilisation: None,
            llm: None,
            vpa: None,
            startup: None,
            slo: SloVerdict {
                met: true,
                ..SloVerdict::default()
            },
            latency_histogram: encode_histogram(&t.latency),
            queue_wait_histogram: String::new(),
            tenants: self.tenants.results(elapsed_s),
        };
        Ok(LoadResults {
            schema: SCHEMA.into(),
            simctl_version: env!("CARGO_PKG_VERSION").into(),
            model: run.model.into(),
            target: run.target.into(),
            schedule: run.schedule.into(),
            planned_s: run.planned_s,
            elapsed_s,
            truncated_at_s: truncated.then_some(elapsed_s),
            max_in_flight: run.max_in_flight,
            late: t.late,
            late_threshold_ms: self.late_threshold.as_secs_f64() * 1000.0,
            schedule_lag_ms: Percentiles::from_histogram(&t.lag),
            response_ms: Percentiles::from_histogram(&t.response),
            errors: t.errors,
            apis: vec![api],
            timeline: c.timeline,
            ttft_ms: tokens.map(|t| t.0),
            itl_ms: tokens.map(|t| t.1),
            output_tokens: tokens.map(|t| t.2),
            output_tokens_per_s: tokens.map(|t| {
                if elapsed_s > 0.0 {
                    t.2 as f64 / elapsed_s
                } else {
                    0.0
                }
            }),
            goodput: tokens.and_then(|t| t.3),
        })
    }
}

/// Why the writer thread could not write the request log; the message becomes the reason of a
/// [`LoadError::Output`].
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// A file operation failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The CSV writer failed.
    #[error("{0}")]
    Csv(csv::Error),
    /// The HDR interval log failed (its error has no `Display`, hence `Debug`).
    #[error("{0:?}")]
    Hdr(IntervalLogWriterError<V2DeflateSerializeError>),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

impl From<csv::Error> for WriteError {
    fn from(e: csv::Error) -> Self {
        WriteError::Csv(e)
    }
}

/// The writer thread: CSV rows in schedule order (rows arrive in completion order and wait in
/// a small reorder buffer), HDR intervals as they come.
fn write_files(
    receiver: mpsc::Receiver<Message>,
    csv: Option<(NamedTempFile, PathBuf)>,
    hdr: Option<(NamedTempFile, PathBuf)>,
    token_columns: bool,
) -> Result<FilesWritten, WriteError> {
    let mut csv_writer = match &csv {
        Some((temp, _)) => {
            let file = temp.reopen()?;
            let mut w = csv::Writer::from_writer(BufWriter::new(file));
            let mut columns = vec![
                "timestamp_s",
                "latency_ms",
                "status",
                "service_ms",
                "error",
                "queue_wait_ms",
            ];
            if token_columns {
                columns.extend(["ttft_ms", "itl_mean_ms", "output_tokens", "input_tokens"]);
            }
            w.write_record(&columns)?;
            Some(w)
        }
        None => None,
    };
    let mut hdr_file = match &hdr {
        Some((temp, _)) => Some(BufWriter::new(temp.reopen()?)),
        None => None,
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut hdr_log = match hdr_file.as_mut() {
        Some(file) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("simctl loadgen latency from scheduled send time, microseconds")
                .with_start_time(SystemTime::now())
                .begin_log_with(file, &mut serializer)?,
        ),
        None => None,
    };
    let mut pending: BTreeMap<u64, Row> = BTreeMap::new();
    let mut next_seq = 0u64;
    let write_row = |w: &mut csv::Writer<BufWriter<std::fs::File>>, row: &Row| {
        let response_ms = row.response.as_secs_f64() * 1000.0;
        let (status, service_ms, error, wait_ms) = match &row.outcome {
            Outcome::Answered(a) => (
                a.status.to_string(),
                a.service_ms.unwrap_or(response_ms),
                String::new(),
                a.queue_wait_ms,
            ),
            Outcome::TimedOut => ("0".into(), response_ms, "timeout".into(), None),
            Outcome::Failed(e) => ("0".into(), response_ms, e.clone(), None),
        };
        let ms = |d: Option<Duration>| {
            d.map_or(String::new(), |d| {
                format!("{:.3}", d.as_secs_f64() * 1000.0)
            })
        };
        let mut record = vec![
            format!("{:.6}", row.at.as_secs_f64()),
            format!("{:.3}", row.latency.as_secs_f64() * 1000.0),
            status,
            format!("{service_ms:.3}"),
            error,
            wait_ms.map_or(String::new(), |ms| format!("{ms:.3}")),
        ];
        if token_columns {
            match &row.tokens {
                Some(t) => record.extend([
                    ms(t.ttft),
                    ms(t.itl_mean),
                    t.output.to_string(),
                    t.input.to_string(),
                ]),
                None => record.extend((0..4).map(|_| String::new())),
            }
        }
        w.write_record(&record)
    };
    for message in receiver {
        match message {
            Message::Row(row) => {
                let Some(w) = csv_writer.as_mut() else {
                    continue;
                };
                if row.seq != next_seq {
                    pending.insert(row.seq, row);
                    continue;
                }
                write_row(w, &row)?;
                next_seq += 1;
                while let Some(row) = pending.remove(&next_seq) {
                    write_row(w, &row)?;
                    next_seq += 1;
                }
            }
            Message::Interval {
                start,
                length,
                latency,
            } => {
                if let Some(log) = hdr_log.as_mut() {
                    log.write_histogram(&latency, start, length, Tag::new("latency"))
                        .map_err(WriteError::Hdr)?;
                }
            }
        }
    }
    if let Some(w) = csv_writer.as_mut() {
        // Requests never answered (the run was stopped) leave gaps; the rest follow in order.
        for row in pending.values() {
            write_row(w, row)?;
        }
        w.flush()?;
    }
    drop(hdr_log);
    if let Some(mut f) = hdr_file {
        f.flush()?;
    }
    Ok(FilesWritten { csv, hdr })
}
