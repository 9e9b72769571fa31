//! Resampling a recorded trace: a circular block bootstrap (Politis & Romano's circular variant
//! of Künsch's moving blocks). The replay window is cut into consecutive output blocks of
//! `block_s`; each is filled with the requests of a block of the same length that starts at a
//! uniformly random time of the trace, wrapping around its end. Arrivals inside a block keep
//! their recorded spacing, so bursts shorter than a block survive; which bursts occur, and
//! when, changes with the seed. The mean rate is the trace's (each instant of the trace is
//! equally likely to be drawn); the count varies as the trace's rate varies between blocks.
//!
//! Used by `simctl tune` so a configuration is chosen for traffic *like* the recording rather
//! than for one recording's exact arrivals; `simctl run` replays the recording as it is unless
//! the scenario asks for resampling.

use rand::Rng;

use crate::recorded::{DataFileError, RecordedArrivals, RecordedRequest};
use crate::rng::Stream;

/// A resampled trace, held in memory (a bootstrap needs random access to the recording).
pub(crate) struct BlockBootstrap {
    /// The resampled requests, ascending, re-based to 0.
    requests: std::vec::IntoIter<RecordedRequest>,
}

impl BlockBootstrap {
    /// Read `source` (already windowed and re-based to 0, lasting `span_s`) and resample it in
    /// blocks of `block_s`, drawing from `rng`.
    pub(crate) fn new(
        source: &mut dyn FnMut(&mut Stream) -> Result<Option<RecordedRequest>, DataFileError>,
        span_s: f64,
        block_s: f64,
        rng: &mut Stream,
    ) -> Result<BlockBootstrap, DataFileError> {
        let mut recorded = Vec::new();
        while let Some(r) = source(rng)? {
            recorded.push(r);
        }
        let span_s = if span_s.is_finite() {
            span_s
        } else {
            // An open window ends with the last request (plus its share of a gap).
            recorded.last().map_or(0.0, |r| r.t_s) + 1e-9
        };
        if recorded.is_empty() || span_s <= 0.0 || block_s.is_nan() || block_s <= 0.0 {
            return Ok(BlockBootstrap {
                requests: recorded.into_iter(),
            });
        }
        let block_s = block_s.min(span_s);
        let blocks = (span_s / block_s).ceil() as usize;
        let mut out = Vec::with_capacity(recorded.len());
        for k in 0..blocks {
            let out_start = k as f64 * block_s;
            let len = block_s.min(span_s - out_start);
            let from = rng.random::<f64>() * span_s;
            let mut block: Vec<RecordedRequest> = Vec::new();
            // [from, from + len) of the trace, wrapping at span_s.
            let mut take = |lo: f64, hi: f64, shift: f64| {
                let first = recorded.partition_point(|r| r.t_s < lo);
                for r in recorded[first..].iter().take_while(|r| r.t_s < hi) {
                    block.push(RecordedRequest {
                        t_s: out_start + shift + (r.t_s - lo),
                        service_s: r.service_s,
                        tokens: r.tokens,
                        class: r.class,
                    });
                }
            };
            let end = from + len;
            if end <= span_s {
                take(from, end, 0.0);
            } else {
                take(from, span_s, 0.0);
                take(0.0, end - span_s, span_s - from);
            }
            out.extend(block);
        }
        Ok(BlockBootstrap {
            requests: out.into_iter(),
        })
    }
}

impl RecordedArrivals for BlockBootstrap {
    fn next_request(&mut self, _: &mut Stream) -> Result<Option<RecordedRequest>, DataFileError> {
        Ok(self.requests.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn resample(times: &[f64], span_s: f64, block_s: f64, seed: u64) -> Vec<f64> {
        let mut it = times.iter().map(|&t| RecordedRequest::at(t));
        let mut source = |_: &mut Stream| Ok(it.next());
        let mut rng = stream(seed, "bootstrap");
        let mut b = BlockBootstrap::new(&mut source, span_s, block_s, &mut rng).expect("reads");
        let mut out = Vec::new();
        while let Some(r) = b.next_request(&mut rng).expect("ok") {
            out.push(r.t_s);
        }
        out
    }

    #[test]
    fn output_is_ascending_and_inside_the_span() {
        let times: Vec<f64> = (0..3600).map(|i| f64::from(i) + 0.5).collect();
        for seed in 0..5 {
            let out = resample(&times, 3600.0, 300.0, seed);
            assert!(out.windows(2).all(|w| w[0] <= w[1]), "ascending");
            assert!(out.iter().all(|t| (0.0..3600.0).contains(t)));
            // A constant-rate trace resamples to the same count, whatever the seed.
            assert!((3588..=3600).contains(&out.len()), "{}", out.len());
        }
    }

    #[test]
    fn seeds_give_different_counts_with_the_same_mean_rate() {
        // A bursty trace: 10 rps in the first 10 minutes of each half hour, 1 rps otherwise.
        let mut times = Vec::new();
        let mut t = 0.0;
        while t < 3600.0 {
            times.push(t);
            t += if t % 1800.0 < 600.0 { 0.1 } else { 1.0 };
        }
        let n = times.len() as f64;
        let counts: Vec<f64> = (0..200)
            .map(|seed| resample(&times, 3600.0, 300.0, seed).len() as f64)
            .collect();
        let distinct = {
            let mut c = counts.clone();
            c.sort_by(f64::total_cmp);
            c.dedup();
            c.len()
        };
        assert!(
            distinct > 20,
            "counts vary with the seed: {distinct} distinct"
        );
        let mean = counts.iter().sum::<f64>() / counts.len() as f64;
        let var =
            counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (counts.len() - 1) as f64;
        let se = (var / counts.len() as f64).sqrt();
        assert!(
            (mean - n).abs() < 4.0 * se,
            "mean {mean:.0} vs recorded {n} (standard error {se:.1})"
        );
    }

    #[test]
    fn bursts_shorter_than_a_block_keep_their_spacing() {
        // Requests 0.01 s apart inside one second: any resampled pair of neighbours from the
        // same block is still 0.01 s apart.
        let times: Vec<f64> = (0..100).map(|i| 1000.0 + f64::from(i) * 0.01).collect();
        let out = resample(&times, 3600.0, 600.0, 3);
        for w in out.windows(2) {
            let gap = w[1] - w[0];
            assert!((gap - 0.01).abs() < 1e-9 || gap > 0.01, "gap {gap}");
        }
    }
}
