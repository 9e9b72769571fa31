//! Arrival processes: synthetic rates and recorded traces, generated lazily so that a 24-hour
//! trace or a billion Poisson arrivals never sit in memory.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand_distr::{Distribution, Exp1};

use crate::rng::Stream;
use crate::scenario::schema::TrafficSpec;
use crate::scenario::{check_kind_fields, present_fields, required, resolve, FieldError};
use crate::time::SimTime;

/// A validated arrival process.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// Poisson arrivals at a constant rate.
    Poisson {
        /// Requests per second.
        rps: f64,
    },
    /// Evenly spaced arrivals (one every 1/rps seconds).
    Constant {
        /// Requests per second.
        rps: f64,
    },
    /// A piecewise-constant rate.
    Steps {
        /// (start, requests per second), ascending starts; the rate is 0 before the first.
        steps: Vec<(SimTime, f64)>,
        /// Poisson (true) or evenly spaced (false) arrivals within each step.
        poisson: bool,
    },
    /// A sinusoidal daily cycle of Poisson arrivals:
    /// `rate(t) = mean · (1 + a · cos(2π (t − peak_at) / period))`, `a = (r − 1) / (r + 1)`
    /// for a peak-to-trough ratio `r`.
    Diurnal {
        /// Mean requests per second.
        mean_rps: f64,
        /// Relative amplitude `a` in [0, 1).
        amplitude: f64,
        /// Period in seconds.
        period_s: f64,
        /// Time of the first peak, seconds.
        peak_at_s: f64,
    },
    /// Replay of a CSV of request timestamps.
    Trace(TraceSpec),
}

/// A recorded trace to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    /// Resolved file path.
    pub path: PathBuf,
    /// Column holding timestamps in seconds.
    pub column: String,
    /// Time compression: the trace's time axis is divided by this.
    pub speedup: f64,
    /// Rate multiplier: each row yields `floor(s)` requests plus one more with probability
    /// `frac(s)`; the extra copies are spread uniformly up to the next row's time.
    pub rate_scale: f64,
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

fn positive(value: f64, path: String, what: &str) -> Result<f64, FieldError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(FieldError::new(
            path,
            format!("expected {what} > 0, found {value}"),
        ))
    }
}

impl Traffic {
    /// Validate a traffic spec; trace files are opened and their header checked.
    pub(crate) fn from_spec(
        spec: &TrafficSpec,
        path: &str,
        base_dir: &Path,
    ) -> Result<Traffic, crate::scenario::LoadError> {
        let present = present_fields(spec, "kind");
        let present: Vec<&str> = present.iter().map(String::as_str).collect();
        let kind = spec.kind.as_str();
        let check = |allowed: &[&str]| check_kind_fields(path, "kind", kind, &present, allowed);
        let traffic = match kind {
            "poisson" | "constant" => {
                check(&["rps"])?;
                let rps = positive(
                    required(spec.rps, path, "rps", kind)?,
                    format!("{path}.rps"),
                    "a rate",
                )?;
                if kind == "poisson" {
                    Traffic::Poisson { rps }
                } else {
                    Traffic::Constant { rps }
                }
            }
            "steps" => {
                check(&["steps", "arrivals"])?;
                let list = spec.steps.as_ref().ok_or_else(|| {
                    FieldError::new(format!("{path}.steps"), "required for \"steps\"")
                })?;
                if list.is_empty() {
                    return Err(FieldError::new(
                        format!("{path}.steps"),
                        "expected at least one step",
                    )
                    .into());
                }
                let mut steps = Vec::with_capacity(list.len());
                for (i, s) in list.iter().enumerate() {
                    if !(s.rps.is_finite() && s.rps >= 0.0) {
                        return Err(FieldError::new(
                            format!("{path}.steps[{i}].rps"),
                            format!("expected a rate ≥ 0, found {}", s.rps),
                        )
                        .into());
                    }
                    if let Some(&(prev, _)) = steps.last() {
                        if s.at.0 <= prev {
                            return Err(FieldError::new(
                                format!("{path}.steps[{i}].at"),
                                format!("expected steps in ascending order of `at`, found {} after {}", s.at, crate::units::DurationSpec(prev)),
                            )
                            .into());
                        }
                    }
                    steps.push((s.at.0, s.rps));
                }
                let poisson = match spec.arrivals.as_deref() {
                    None | Some("poisson") => true,
                    Some("constant") => false,
                    Some(other) => {
                        return Err(FieldError::new(
                            format!("{path}.arrivals"),
                            format!("expected \"poisson\" or \"constant\", found \"{other}\""),
                        )
                        .into())
                    }
                };
                Traffic::Steps { steps, poisson }
            }
            "diurnal" => {
                check(&["mean_rps", "peak_to_trough", "period", "peak_at"])?;
                let mean_rps = positive(
                    required(spec.mean_rps, path, "mean_rps", kind)?,
                    format!("{path}.mean_rps"),
                    "a rate",
                )?;
                let ratio = required(spec.peak_to_trough, path, "peak_to_trough", kind)?;
                if !(ratio.is_finite() && ratio >= 1.0) {
                    return Err(FieldError::new(
                        format!("{path}.peak_to_trough"),
                        format!("expected a ratio ≥ 1, found {ratio}"),
                    )
                    .into());
                }
                let period_s = spec.period.map_or(86_400.0, |p| p.as_secs_f64());
                if period_s <= 0.0 {
                    return Err(FieldError::new(
                        format!("{path}.period"),
                        "expected a duration > 0",
                    )
                    .into());
                }
                Traffic::Diurnal {
                    mean_rps,
                    amplitude: (ratio - 1.0) / (ratio + 1.0),
                    period_s,
                    peak_at_s: spec.peak_at.map_or(period_s / 4.0, |p| p.as_secs_f64()),
                }
            }
            "trace" => {
                check(&["path", "column", "speedup", "rate_scale"])?;
                let file = spec.path.as_deref().ok_or_else(|| {
                    FieldError::new(format!("{path}.path"), "required for \"trace\"")
                })?;
                let trace = TraceSpec {
                    path: resolve(base_dir, file),
                    column: spec.column.clone().unwrap_or_else(|| "timestamp_s".into()),
                    speedup: positive(
                        spec.speedup.unwrap_or(1.0),
                        format!("{path}.speedup"),
                        "a factor",
                    )?,
                    rate_scale: positive(
                        spec.rate_scale.unwrap_or(1.0),
                        format!("{path}.rate_scale"),
                        "a factor",
                    )?,
                };
                // Open it now so a missing file or column fails before the run starts.
                open_column(&trace.path, &trace.column).map_err(|e| {
                    FieldError::new(format!("{path}.path"), e.to_string())
                })?;
                Traffic::Trace(trace)
            }
            other => {
                return Err(FieldError::new(
                    format!("{path}.kind"),
                    format!(
                        "expected one of \"poisson\", \"constant\", \"steps\", \"diurnal\", \"trace\", found \"{other}\""
                    ),
                )
                .into())
            }
        };
        Ok(traffic)
    }
}

/// A CSV file opened at one numeric column, read row by row.
pub(crate) struct CsvColumn {
    reader: csv::Reader<BufReader<File>>,
    record: csv::StringRecord,
    index: usize,
    file: String,
    column: String,
}

impl CsvColumn {
    /// The next value and its line, or `None` at the end of the file.
    pub(crate) fn next_value(&mut self) -> Result<Option<(f64, u64)>, DataFileError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                let raw = self.record.get(self.index).ok_or_else(|| DataFileError {
                    file: self.file.clone(),
                    line: Some(line),
                    message: format!(
                        "{}: missing (the row has {} fields)",
                        self.column,
                        self.record.len()
                    ),
                })?;
                match raw.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some((v, line))),
                    _ => Err(DataFileError {
                        file: self.file.clone(),
                        line: Some(line),
                        message: format!("{}: expected a number, found \"{raw}\"", self.column),
                    }),
                }
            }
            Err(e) => Err(DataFileError {
                file: self.file.clone(),
                line: e.position().map(|p| p.line()),
                message: format!("malformed CSV: {e}"),
            }),
        }
    }
}

/// Open a CSV file with a header row and find `column` in it.
pub(crate) fn open_column(path: &Path, column: &str) -> Result<CsvColumn, DataFileError> {
    let file = path.display().to_string();
    let handle = File::open(path).map_err(|e| DataFileError {
        file: file.clone(),
        line: None,
        message: format!("cannot open: {e}"),
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::new(handle));
    let headers = reader.headers().map_err(|e| DataFileError {
        file: file.clone(),
        line: Some(1),
        message: format!("cannot read the header row: {e}"),
    })?;
    let index = headers
        .iter()
        .position(|h| h.trim() == column)
        .ok_or_else(|| DataFileError {
            file: file.clone(),
            line: Some(1),
            message: format!(
                "no column \"{column}\" in the header (found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        })?;
    Ok(CsvColumn {
        reader,
        record: csv::StringRecord::new(),
        index,
        file,
        column: column.to_string(),
    })
}

/// A lazily generated, ascending sequence of arrival times.
pub struct ArrivalStream {
    source: Source,
    rng: Stream,
}

enum Source {
    Poisson {
        mean_gap_s: f64,
        last: SimTime,
    },
    Constant {
        gap: SimTime,
        last: SimTime,
    },
    Steps {
        steps: Vec<(SimTime, f64)>,
        poisson: bool,
        index: usize,
        last: SimTime,
    },
    Diurnal {
        mean_rps: f64,
        amplitude: f64,
        period_s: f64,
        peak_at_s: f64,
        t_s: f64,
    },
    Trace(Box<TraceReplay>),
}

struct TraceReplay {
    column: CsvColumn,
    speedup: f64,
    rate_scale: f64,
    first_s: Option<f64>,
    /// The next row (already read), as (seconds since the first row, line).
    lookahead: Option<(f64, u64)>,
    /// Arrivals generated from the current row, in descending order (popped from the end).
    batch: Vec<SimTime>,
    last_raw: f64,
}

impl ArrivalStream {
    /// Start generating arrivals for `traffic`, drawing from `rng`.
    pub fn open(traffic: &Traffic, rng: Stream) -> Result<ArrivalStream, DataFileError> {
        let source = match traffic {
            Traffic::Poisson { rps } => Source::Poisson {
                mean_gap_s: 1.0 / rps,
                last: SimTime::ZERO,
            },
            Traffic::Constant { rps } => Source::Constant {
                gap: SimTime::from_secs_f64(1.0 / rps),
                last: SimTime::ZERO,
            },
            Traffic::Steps { steps, poisson } => Source::Steps {
                steps: steps.clone(),
                poisson: *poisson,
                index: 0,
                last: steps.first().map_or(SimTime::NEVER, |s| s.0),
            },
            Traffic::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                peak_at_s,
            } => Source::Diurnal {
                mean_rps: *mean_rps,
                amplitude: *amplitude,
                period_s: *period_s,
                peak_at_s: *peak_at_s,
                t_s: 0.0,
            },
            Traffic::Trace(spec) => {
                let mut column = open_column(&spec.path, &spec.column)?;
                let lookahead = column.next_value()?;
                Source::Trace(Box::new(TraceReplay {
                    column,
                    speedup: spec.speedup,
                    rate_scale: spec.rate_scale,
                    first_s: lookahead.map(|(t, _)| t),
                    lookahead: lookahead.map(|(_, line)| (0.0, line)),
                    batch: Vec::new(),
                    last_raw: f64::NEG_INFINITY,
                }))
            }
        };
        Ok(ArrivalStream { source, rng })
    }

    /// The next arrival, `None` when the process has ended (a trace ran out).
    #[inline]
    pub fn next_arrival(&mut self) -> Result<Option<SimTime>, DataFileError> {
        let rng = &mut self.rng;
        match &mut self.source {
            Source::Poisson { mean_gap_s, last } => {
                let gap: f64 = Exp1.sample(rng);
                *last += SimTime::from_secs_f64(gap * *mean_gap_s);
                Ok(Some(*last))
            }
            Source::Constant { gap, last } => {
                *last += *gap;
                Ok(Some(*last))
            }
            Source::Steps {
                steps,
                poisson,
                index,
                last,
            } => loop {
                let Some(&(_, rps)) = steps.get(*index) else {
                    return Ok(None);
                };
                let end = steps.get(*index + 1).map_or(SimTime::NEVER, |s| s.0);
                if rps > 0.0 {
                    let gap_s = if *poisson {
                        let e: f64 = Exp1.sample(rng);
                        e / rps
                    } else {
                        1.0 / rps
                    };
                    let next = *last + SimTime::from_secs_f64(gap_s);
                    if next < end {
                        *last = next;
                        return Ok(Some(next));
                    }
                }
                if end == SimTime::NEVER {
                    return Ok(None);
                }
                // Memoryless restart at the boundary: exact for Poisson arrivals.
                *last = end;
                *index += 1;
            },
            Source::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                peak_at_s,
                t_s,
            } => {
                // Lewis–Shedler thinning against the peak rate.
                let peak = *mean_rps * (1.0 + *amplitude);
                loop {
                    let e: f64 = Exp1.sample(rng);
                    *t_s += e / peak;
                    let phase = std::f64::consts::TAU * (*t_s - *peak_at_s) / *period_s;
                    let rate = *mean_rps * (1.0 + *amplitude * phase.cos());
                    let u: f64 = rng.random();
                    if u * peak <= rate {
                        return Ok(Some(SimTime::from_secs_f64(*t_s)));
                    }
                }
            }
            Source::Trace(replay) => replay.next(rng),
        }
    }
}

impl TraceReplay {
    fn next(&mut self, rng: &mut Stream) -> Result<Option<SimTime>, DataFileError> {
        loop {
            if let Some(t) = self.batch.pop() {
                return Ok(Some(t));
            }
            let Some((raw, line)) = self.lookahead.take() else {
                return Ok(None);
            };
            if raw < self.last_raw {
                return Err(DataFileError {
                    file: self.column.file.clone(),
                    line: Some(line),
                    message: format!(
                        "{}: timestamps must be ascending, found {} after {}",
                        self.column.column,
                        raw + self.first_s.unwrap_or(0.0),
                        self.last_raw + self.first_s.unwrap_or(0.0)
                    ),
                });
            }
            self.last_raw = raw;
            let first = self.first_s.unwrap_or(0.0);
            self.lookahead = self.column.next_value()?.map(|(t, line)| (t - first, line));
            let start_s = raw / self.speedup;
            let copies = {
                let whole = self.rate_scale.floor();
                let extra = u64::from(rng.random::<f64>() < self.rate_scale - whole);
                whole as u64 + extra
            };
            if copies == 0 {
                continue;
            }
            let next_s = self
                .lookahead
                .map_or(start_s, |(t, _)| (t / self.speedup).max(start_s));
            self.batch.push(SimTime::from_secs_f64(start_s));
            for _ in 1..copies {
                let u: f64 = rng.random();
                self.batch
                    .push(SimTime::from_secs_f64(start_s + u * (next_s - start_s)));
            }
            self.batch.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use std::io::Write;

    fn collect(traffic: &Traffic, until: SimTime) -> Vec<SimTime> {
        let mut s = ArrivalStream::open(traffic, stream(7, "t")).expect("opens");
        let mut out = Vec::new();
        while let Some(t) = s.next_arrival().expect("valid") {
            if t > until {
                break;
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn poisson_rate_matches() {
        let n = collect(&Traffic::Poisson { rps: 50.0 }, SimTime::from_secs(2000)).len();
        // 100,000 expected; sd ≈ 316, so ±1 % is > 3 sd.
        assert!((n as f64 - 100_000.0).abs() < 1_000.0, "{n}");
    }

    #[test]
    fn steps_switch_rate_at_boundaries() {
        let traffic = Traffic::Steps {
            steps: vec![(SimTime::from_secs(10), 2.0), (SimTime::from_secs(20), 0.0)],
            poisson: false,
        };
        let arrivals = collect(&traffic, SimTime::from_secs(100));
        assert_eq!(arrivals.len(), 19);
        assert_eq!(arrivals[0], SimTime::from_secs_f64(10.5));
    }

    #[test]
    fn diurnal_peaks_where_asked() {
        let traffic = Traffic::Diurnal {
            mean_rps: 20.0,
            amplitude: 0.6,
            period_s: 1000.0,
            peak_at_s: 250.0,
        };
        let arrivals = collect(&traffic, SimTime::from_secs(1000));
        let around = |c: f64| {
            arrivals
                .iter()
                .filter(|t| (t.as_secs_f64() - c).abs() < 50.0)
                .count()
        };
        // Rate near the peak ≈ 32/s, near the trough ≈ 8/s.
        assert!(around(250.0) > 3 * around(750.0));
        assert!((arrivals.len() as f64 - 20_000.0).abs() < 600.0);
    }

    #[test]
    fn trace_replay_scales_and_rejects_disorder() {
        let dir = tempdir();
        let path = dir.join("t.csv");
        let mut f = File::create(&path).expect("create");
        writeln!(f, "id,timestamp_s\na,100\nb,101\nc,103").expect("write");
        let spec = |speedup, rate_scale| {
            Traffic::Trace(TraceSpec {
                path: path.clone(),
                column: "timestamp_s".into(),
                speedup,
                rate_scale,
            })
        };
        let plain = collect(&spec(1.0, 1.0), SimTime::NEVER);
        assert_eq!(
            plain,
            vec![SimTime::ZERO, SimTime::from_secs(1), SimTime::from_secs(3)]
        );
        let fast = collect(&spec(2.0, 1.0), SimTime::NEVER);
        assert_eq!(fast[2], SimTime::from_secs_f64(1.5));
        assert_eq!(collect(&spec(1.0, 3.0), SimTime::NEVER).len(), 9);

        writeln!(f, "d,102").expect("write");
        drop(f);
        let mut s = ArrivalStream::open(&spec(1.0, 1.0), stream(1, "t")).expect("opens");
        let err = loop {
            match s.next_arrival() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("disorder not detected"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.line, Some(5));
        assert!(err.to_string().contains("ascending"), "{err}");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("simctl-traffic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tempdir");
        dir
    }
}
