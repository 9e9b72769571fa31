//! The aggregated formats — per-interval counts (`counts` CSV) and the Prometheus ones — whose
//! intervals are expanded into arrivals one at a time, and the size of a trace without
//! expanding it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Poisson};

use super::{
    error, prometheus, Csv, DataFileError, FormatOptions, RecordedArrivals, RecordedRequest,
    TraceFormat,
};
use crate::rng::Stream;

/// How many requests a trace holds, without generating them: the sum of its counts (aggregated
/// formats) or its rows (per-request formats). For work estimates before a run.
pub fn total_requests(
    format: TraceFormat,
    path: &Path,
    options: &FormatOptions,
) -> Result<f64, DataFileError> {
    let intervals = |v: Vec<(f64, f64, Counted)>| {
        v.iter()
            .map(|(_, _, c)| match *c {
                Counted::Exact(n) => n as f64,
                Counted::Mean(m) => m,
            })
            .sum()
    };
    Ok(match format {
        TraceFormat::Counts => {
            let mut counts = Counts::open(path, options)?;
            let mut total = 0.0;
            while let Some((_, n, _)) = counts.ahead.take() {
                total += n;
                counts.ahead = counts.read_row()?;
            }
            total
        }
        TraceFormat::PrometheusJson => intervals(prometheus::range_query(path, options)?),
        TraceFormat::PrometheusText => intervals(prometheus::snapshots(path, options)?),
        TraceFormat::Timestamps | TraceFormat::AccessLog => {
            let file = File::open(path).map_err(|e| {
                error(
                    &path.display().to_string(),
                    None,
                    format!("cannot open: {e}"),
                )
            })?;
            let mut lines = 0u64;
            for chunk in BufReader::new(file).split(b'\n') {
                chunk.map_err(|e| {
                    error(
                        &path.display().to_string(),
                        None,
                        format!("cannot read: {e}"),
                    )
                })?;
                lines += 1;
            }
            lines as f64
        }
    })
}

/// Most requests one interval of an aggregated trace may hold: beyond it a simulation would
/// take days (and the count is almost surely a unit or parsing mistake).
pub const MAX_REQUESTS_PER_INTERVAL: f64 = 1e9;

/// `n` uniform arrivals in `[start, start + width)`, in ascending order, generated one at a time:
/// the smallest of `m` uniforms on `[lo, hi)` is `lo + (hi − lo)(1 − V^{1/m})` with `V` uniform
/// on `(0, 1]`, and the rest are uniform above it. Memory stays flat whatever `n` is.
#[derive(Debug, Default)]
struct Spread {
    lo: f64,
    hi: f64,
    left: u64,
}

impl Spread {
    fn new(start: f64, width: f64, n: u64) -> Spread {
        Spread {
            lo: start,
            hi: start + width,
            left: n,
        }
    }

    fn next(&mut self, rng: &mut Stream) -> Option<f64> {
        if self.left == 0 {
            return None;
        }
        let v = 1.0 - rng.random::<f64>();
        let t = self.lo + (self.hi - self.lo) * (1.0 - v.powf(1.0 / self.left as f64));
        self.lo = t;
        self.left -= 1;
        Some(t)
    }
}

pub(super) struct Counts {
    csv: Csv,
    time: (usize, String),
    count: (usize, String),
    interval: Option<f64>,
    /// The next row (start, count, line), read ahead to know this interval's width.
    ahead: Option<(f64, f64, u64)>,
    first: Option<f64>,
    previous_gap: Option<f64>,
    batch: Spread,
}

impl Counts {
    pub(super) fn open(path: &Path, o: &FormatOptions) -> Result<Counts, DataFileError> {
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
            batch: Spread::default(),
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
        if !(0.0..=MAX_REQUESTS_PER_INTERVAL).contains(&n) || n.fract() != 0.0 {
            return Err(error(
                &self.csv.file,
                Some(self.csv.line()),
                format!(
                    "{}: expected a whole number of requests from 0 to {MAX_REQUESTS_PER_INTERVAL:e}, found {n}",
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
            if let Some(t) = self.batch.next(rng) {
                return Ok(Some(RecordedRequest::at(t)));
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
            self.batch = Spread::new(start - first, width, n as u64);
        }
    }
}

/// How many requests an interval holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Counted {
    /// Exactly this many.
    Exact(u64),
    /// A Poisson number with this mean.
    Mean(f64),
}

/// Aggregated (start s, width s, requests) intervals expanded into arrivals.
pub(super) struct Intervals {
    intervals: VecDeque<(f64, f64, Counted)>,
    batch: Spread,
}

impl Intervals {
    /// The intervals of `file`, refused when one holds more than [`MAX_REQUESTS_PER_INTERVAL`]
    /// (or a count that is not a finite number).
    pub(super) fn new(
        intervals: Vec<(f64, f64, Counted)>,
        file: &Path,
    ) -> Result<Intervals, DataFileError> {
        for (start, _, counted) in &intervals {
            let n = match *counted {
                Counted::Exact(n) => n as f64,
                Counted::Mean(m) => m,
            };
            if !(0.0..=MAX_REQUESTS_PER_INTERVAL).contains(&n) {
                return Err(error(
                    &file.display().to_string(),
                    None,
                    format!(
                        "the interval starting {start} s after the first sample holds {n:e} requests; expected at most {MAX_REQUESTS_PER_INTERVAL:e} (check the metric's unit)"
                    ),
                ));
            }
        }
        Ok(Intervals {
            intervals: intervals.into(),
            batch: Spread::default(),
        })
    }
}

impl RecordedArrivals for Intervals {
    fn next_request(&mut self, rng: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        loop {
            if let Some(t) = self.batch.next(rng) {
                return Ok(Some(RecordedRequest::at(t)));
            }
            let Some((start, width, counted)) = self.intervals.pop_front() else {
                return Ok(None);
            };
            let n = match counted {
                Counted::Exact(n) => n,
                Counted::Mean(m) if m > 0.0 => Poisson::new(m).map_or(0, |p| p.sample(rng) as u64),
                Counted::Mean(_) => 0,
            };
            self.batch = Spread::new(start, width, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_sorted_uniform_without_holding_the_interval() {
        let mut rng = crate::rng::stream(3, "spread");
        let mut s = Spread::new(10.0, 2.0, 100_000);
        let mut previous = 10.0;
        let (mut n, mut sum) = (0u64, 0.0);
        while let Some(t) = s.next(&mut rng) {
            assert!(t >= previous && t < 12.0, "{t} after {previous}");
            previous = t;
            n += 1;
            sum += t;
        }
        assert_eq!(n, 100_000);
        // Mean of uniforms on [10, 12): 11 ± 3 × 0.577/√n.
        assert!((sum / n as f64 - 11.0).abs() < 3.0 * 0.577 / (n as f64).sqrt() * 2.0);
    }
}
