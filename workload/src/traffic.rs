//! Arrival processes: synthetic rates and recorded traces, generated lazily so that a 24-hour
//! trace or a billion Poisson arrivals never sit in memory.

use std::path::PathBuf;

use rand::Rng;
use rand_distr::{Distribution, Exp1};

use crate::bootstrap::BlockBootstrap;
use crate::recorded::{FormatOptions, RecordedArrivals, RecordedRequest, Tokens, TraceFormat};
use crate::rng::Stream;
use crate::time::SimTime;

pub use crate::recorded::DataFileError;

/// A validated arrival process.
// A scenario holds one per API, built once: the trace variant's size costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
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

impl Traffic {
    /// The same process with `factor` times the requests (growth what-ifs): rates multiplied,
    /// a trace's `rate_scale` multiplied.
    pub fn scaled(&self, factor: f64) -> Traffic {
        match self {
            Traffic::Poisson { rps } => Traffic::Poisson { rps: rps * factor },
            Traffic::Constant { rps } => Traffic::Constant { rps: rps * factor },
            Traffic::Steps { steps, poisson } => Traffic::Steps {
                steps: steps.iter().map(|&(at, rps)| (at, rps * factor)).collect(),
                poisson: *poisson,
            },
            Traffic::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                peak_at_s,
            } => Traffic::Diurnal {
                mean_rps: mean_rps * factor,
                amplitude: *amplitude,
                period_s: *period_s,
                peak_at_s: *peak_at_s,
            },
            Traffic::Trace(t) => Traffic::Trace(TraceSpec {
                rate_scale: t.rate_scale * factor,
                ..t.clone()
            }),
        }
    }
}

/// A recorded trace to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpec {
    /// Resolved file path.
    pub path: PathBuf,
    /// How the file records traffic.
    pub format: TraceFormat,
    /// Reader options.
    pub options: FormatOptions,
    /// Serve requests for their recorded durations.
    pub use_recorded_service: bool,
    /// Replay the trace from this time (seconds after its start).
    pub start_s: f64,
    /// Replay the trace up to this time.
    pub end_s: f64,
    /// Time compression: the trace's time axis is divided by this.
    pub speedup: f64,
    /// Rate multiplier: each row yields `floor(s)` requests plus one more with probability
    /// `frac(s)`; the extra copies are spread uniformly up to the next row's time.
    pub rate_scale: f64,
    /// Resample the recording per seed with a circular block bootstrap of blocks this long
    /// (seconds of trace time) instead of replaying it as recorded (see `bootstrap`).
    pub bootstrap_block_s: Option<f64>,
    /// Replay the `start_s`–`end_s` window end to end again and again (`end_s` finite).
    pub looped: bool,
}

/// A lazily generated, ascending sequence of arrival times.
pub struct ArrivalStream {
    source: Source,
    rng: Stream,
    /// Recorded service time of the arrival last returned, when the trace provides them.
    service: Option<SimTime>,
    /// Recorded token lengths of the arrival last returned.
    tokens: Tokens,
    /// Recorded class of the arrival last returned (a trace's class column).
    class: Option<u16>,
}

/// One replayed arrival: its time, recorded service time, token lengths and class.
type Recorded = (SimTime, Option<SimTime>, Tokens, Option<u16>);

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
    source: Box<dyn RecordedArrivals>,
    speedup: f64,
    rate_scale: f64,
    use_service: bool,
    start_s: f64,
    end_s: f64,
    /// Looping: the file to reopen at the window's end, and the time the current repetition
    /// starts at (re-based trace seconds).
    repeat: Option<(TraceFormat, PathBuf, FormatOptions)>,
    offset_s: f64,
    /// The next recorded request (already read), inside the window.
    lookahead: Option<RecordedRequest>,
    /// Arrivals generated from the current request, in descending order (popped from the end).
    batch: Vec<Recorded>,
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
                let mut replay = TraceReplay {
                    source: crate::recorded::open(spec.format, &spec.path, &spec.options)?,
                    speedup: spec.speedup,
                    rate_scale: spec.rate_scale,
                    use_service: spec.use_recorded_service,
                    start_s: spec.start_s,
                    end_s: spec.end_s,
                    repeat: (spec.looped && spec.end_s.is_finite())
                        .then(|| (spec.format, spec.path.clone(), spec.options.clone())),
                    offset_s: 0.0,
                    lookahead: None,
                    batch: Vec::new(),
                };
                let mut rng = rng.clone();
                if let Some(block_s) = spec.bootstrap_block_s {
                    // Resample the window, then replay the resampled requests whole.
                    let span_s = spec.end_s - spec.start_s;
                    let resampled = BlockBootstrap::new(
                        &mut |rng: &mut Stream| replay.read(rng),
                        span_s,
                        block_s,
                        &mut rng,
                    )?;
                    replay.source = Box::new(resampled);
                    replay.start_s = 0.0;
                    replay.end_s = f64::INFINITY;
                }
                replay.lookahead = replay.read(&mut rng)?;
                return Ok(ArrivalStream {
                    source: Source::Trace(Box::new(replay)),
                    rng,
                    service: None,
                    tokens: Tokens::default(),
                    class: None,
                });
            }
        };
        Ok(ArrivalStream {
            source,
            rng,
            service: None,
            tokens: Tokens::default(),
            class: None,
        })
    }

    /// The recorded service time of the arrival last returned, if the trace provides one.
    #[inline]
    pub fn recorded_service(&self) -> Option<SimTime> {
        self.service
    }

    /// The recorded prompt and output lengths of the arrival last returned (LLM traces).
    #[inline]
    pub fn recorded_tokens(&self) -> Tokens {
        self.tokens
    }

    /// The recorded class of the arrival last returned (an index into the trace's
    /// `classes`), when the trace has a class column.
    #[inline]
    pub fn recorded_class(&self) -> Option<u16> {
        self.class
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
            Source::Trace(replay) => match replay.next(rng)? {
                Some((t, service, tokens, class)) => {
                    self.service = service;
                    self.tokens = tokens;
                    self.class = class;
                    Ok(Some(t))
                }
                None => Ok(None),
            },
        }
    }
}

impl TraceReplay {
    /// The next recorded request inside the window, re-based to the window's start.
    fn read(&mut self, rng: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        let mut reopened = false;
        loop {
            while let Some(r) = self.source.next_request(rng)? {
                if r.t_s < self.start_s {
                    continue;
                }
                if r.t_s >= self.end_s {
                    break;
                }
                return Ok(Some(RecordedRequest {
                    t_s: r.t_s - self.start_s + self.offset_s,
                    service_s: r.service_s,
                    tokens: r.tokens,
                    class: r.class,
                }));
            }
            // The window is over: start it again when looping — unless a whole repetition
            // just went by without a request, which would loop for ever.
            let Some((format, path, options)) = &self.repeat else {
                return Ok(None);
            };
            if reopened {
                return Ok(None);
            }
            self.source = crate::recorded::open(*format, path, options)?;
            self.offset_s += self.end_s - self.start_s;
            reopened = true;
        }
    }

    fn next(&mut self, rng: &mut Stream) -> Result<Option<Recorded>, DataFileError> {
        loop {
            if let Some(t) = self.batch.pop() {
                return Ok(Some(t));
            }
            let Some(request) = self.lookahead.take() else {
                return Ok(None);
            };
            self.lookahead = self.read(rng)?;
            let start_s = request.t_s / self.speedup;
            let service = if self.use_service {
                request.service_s.map(SimTime::from_secs_f64)
            } else {
                None
            };
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
                .map_or(start_s, |r| (r.t_s / self.speedup).max(start_s));
            let (tokens, class) = (request.tokens, request.class);
            self.batch
                .push((SimTime::from_secs_f64(start_s), service, tokens, class));
            for _ in 1..copies {
                let u: f64 = rng.random();
                self.batch.push((
                    SimTime::from_secs_f64(start_s + u * (next_s - start_s)),
                    service,
                    tokens,
                    class,
                ));
            }
            self.batch.sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use std::fs::File;
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
                format: TraceFormat::Timestamps,
                options: FormatOptions::default(),
                use_recorded_service: false,
                start_s: 0.0,
                end_s: f64::INFINITY,
                speedup,
                rate_scale,
                bootstrap_block_s: None,
                looped: false,
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

    #[test]
    fn a_looped_trace_repeats_its_window_end_to_end() {
        let dir = tempdir();
        let path = dir.join("loop.csv");
        std::fs::write(&path, "id,timestamp_s\na,100\nb,101\nc,103\nd,107\n").expect("write");
        let spec = |start_s, end_s, looped| {
            Traffic::Trace(TraceSpec {
                path: path.clone(),
                format: TraceFormat::Timestamps,
                options: FormatOptions::default(),
                use_recorded_service: false,
                start_s,
                end_s,
                speedup: 1.0,
                rate_scale: 1.0,
                bootstrap_block_s: None,
                looped,
            })
        };
        let s = |v: &[f64]| {
            v.iter()
                .map(|&t| SimTime::from_secs_f64(t))
                .collect::<Vec<_>>()
        };
        // The window [0 s, 5 s) of the re-based trace (0, 1, 3; 7 is outside), every 5 s.
        assert_eq!(
            collect(&spec(0.0, 5.0, true), SimTime::from_secs(14)),
            s(&[0.0, 1.0, 3.0, 5.0, 6.0, 8.0, 10.0, 11.0, 13.0])
        );
        // A window from 1 s: requests at 0 and 2 of each 3-second repetition.
        assert_eq!(
            collect(&spec(1.0, 4.0, true), SimTime::from_secs(7)),
            s(&[0.0, 2.0, 3.0, 5.0, 6.0])
        );
        // Without loop the window plays once; a window with no request ends the stream.
        assert_eq!(collect(&spec(0.0, 5.0, false), SimTime::NEVER).len(), 3);
        assert!(collect(&spec(4.0, 6.0, true), SimTime::NEVER).is_empty());
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("simctl-traffic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tempdir");
        dir
    }
}
