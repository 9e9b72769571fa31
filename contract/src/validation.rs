//! How far a simulation is from a real run of the same scenario: the numbers `simctl validate`
//! prints, so users can see the simulator's own error before they trust its answers.

use serde::{Deserialize, Serialize};

use crate::results::{
    ApiResults, Event, EventKind, Metric, Percentiles, SeriesKey, TenantResults, Timeline,
};

/// What one run (real or simulated) of one API measured, in the units both sides share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Latency of completed requests, milliseconds.
    pub latency_ms: Percentiles,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered 503 (queue full or no replica).
    pub rejected: u64,
    /// Ready replicas at t = 0, 1, 2, … seconds.
    pub replicas: Vec<f64>,
    /// Every change of the replica target.
    pub scale_events: Vec<ScaleEvent>,
    /// LLM APIs: time to first token, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<Percentiles>,
    /// LLM APIs: inter-token latency, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<Percentiles>,
    /// An API whose traffic is a sum of tenants: each tenant's share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantResults>,
}

/// A change of the replica target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// Seconds since the start of the run.
    pub t_s: f64,
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
}

impl ScaleEvent {
    fn up(&self) -> bool {
        self.to > self.from
    }
}

/// Why a simulation's results cannot be compared with a real run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FidelityError {
    /// Replica timelines are compared per second.
    #[error("the timeline step is {step_s} s; comparing replica timelines needs 1 s")]
    TimelineStep {
        /// The results' timeline step, seconds.
        step_s: f64,
    },
    /// The API's ready-replica series is missing.
    #[error("the timeline has no {key:?} series")]
    NoSeries {
        /// The series key (`replicas_ready/<api>`).
        key: String,
    },
}

impl Observed {
    /// What a simulation measured for `api`; the timeline must have a 1 s step (the replica
    /// series is read per second).
    pub fn from_simulation(
        api: &ApiResults,
        timeline: &Timeline,
        events: &[Event],
    ) -> Result<Observed, FidelityError> {
        if (timeline.step_s - 1.0).abs() > 1e-9 {
            return Err(FidelityError::TimelineStep {
                step_s: timeline.step_s,
            });
        }
        let series = timeline
            .get(Metric::ReplicasReady, &api.name)
            .ok_or_else(|| FidelityError::NoSeries {
                key: SeriesKey::new(Metric::ReplicasReady, api.name.as_str()).to_string(),
            })?;
        // Sample k of the timeline covers (t_s[k] - 1, t_s[k]]: its value is the state at t_s[k].
        let mut replicas = vec![series.first().copied().flatten().unwrap_or(0.0)];
        for (t, v) in timeline.t_s.iter().zip(series) {
            let k = t.round() as usize;
            if k >= 1 && k == replicas.len() {
                replicas.push(v.unwrap_or(0.0));
            }
        }
        let scale_events = events
            .iter()
            .filter(|e| e.api.as_deref() == Some(api.name.as_str()))
            .filter_map(|e| match &e.kind {
                EventKind::Scale(s) => Some(ScaleEvent {
                    t_s: e.t_s,
                    from: s.from,
                    to: s.to,
                }),
                _ => None,
            })
            .collect();
        Ok(Observed {
            latency_ms: api.latency_ms,
            requests: api.requests,
            rejected: api.rejected,
            replicas,
            scale_events,
            ttft_ms: api.llm.as_ref().map(|l| l.ttft_ms),
            itl_ms: api.llm.as_ref().map(|l| l.itl_ms),
            tenants: api.tenants.clone(),
        })
    }

    /// Share of requests answered 503.
    pub fn rejection_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.rejected as f64 / self.requests as f64
        }
    }

    fn mean_replicas(&self) -> f64 {
        if self.replicas.is_empty() {
            0.0
        } else {
            self.replicas.iter().sum::<f64>() / self.replicas.len() as f64
        }
    }
}

/// One quantity measured on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compared {
    /// What was measured (`latency p99 (ms)`, …).
    pub metric: String,
    /// The real run's value.
    pub real: f64,
    /// The simulation's value.
    pub simulated: f64,
    /// (simulated − real) / real; `None` when the real value is 0.
    pub relative_error: Option<f64>,
}

impl Compared {
    /// `metric` measured `real` and simulated `simulated`.
    pub fn new(metric: &str, real: f64, simulated: f64) -> Self {
        Self {
            metric: metric.into(),
            real,
            simulated,
            relative_error: (real != 0.0).then(|| (simulated - real) / real),
        }
    }
}

/// A real scale event and the simulated one nearest to it in time, in the same direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedEvent {
    /// The real event.
    pub real: ScaleEvent,
    /// The simulated event matched to it, if one in the same direction was close enough.
    pub simulated: Option<ScaleEvent>,
    /// simulated − real, seconds.
    pub offset_s: Option<f64>,
}

/// The simulation measured against the real run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// p50, p90, p99 latency, rejection rate, mean replicas.
    pub metrics: Vec<Compared>,
    /// Share of the seconds at which the simulated ready replicas were within ±1 of the real.
    pub replicas_within_one: f64,
    /// Seconds compared for `replicas_within_one`.
    pub seconds_compared: usize,
    /// The real scale events, each with its simulated counterpart.
    pub scale_events: Vec<MatchedEvent>,
    /// Simulated scale events that matched no real one.
    pub unmatched_simulated_events: usize,
    /// Median |offset| of the matched scale events, seconds.
    pub median_scale_offset_s: Option<f64>,
    /// An API whose traffic is a sum of tenants: each tenant's latency and rejections, since
    /// what a fair queue or a priority does shows in them, not in the API's totals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantFidelity>,
}

/// One tenant's figures on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantFidelity {
    /// Tenant name.
    pub tenant: String,
    /// Requests of the tenant in the real run; the simulated run sends the same.
    pub requests: u64,
    /// p50 and p99 latency and rejection rate.
    pub metrics: Vec<Compared>,
}

impl Fidelity {
    /// The relative error of a metric by name.
    pub fn relative_error(&self, metric: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric)
            .and_then(|m| m.relative_error)
    }
}

/// Names of the compared metrics, in the order of [`Fidelity::metrics`].
pub const LATENCY_P50: &str = "latency p50 (ms)";
/// See [`LATENCY_P50`].
pub const LATENCY_P90: &str = "latency p90 (ms)";
/// See [`LATENCY_P50`].
pub const LATENCY_P99: &str = "latency p99 (ms)";
/// See [`LATENCY_P50`].
pub const LATENCY_P999: &str = "latency p99.9 (ms)";
/// Largest latency: for an API scaled from zero, the first request's wait for a cold start.
pub const LATENCY_MAX: &str = "latency max (ms)";
/// Rejected share of the requests.
pub const REJECTION_RATE: &str = "rejection rate";
/// See [`LATENCY_P50`].
pub const MEAN_REPLICAS: &str = "mean ready replicas";
/// LLM APIs: median time to first token.
pub const TTFT_P50: &str = "TTFT p50 (ms)";
/// LLM APIs: 99th percentile time to first token.
pub const TTFT_P99: &str = "TTFT p99 (ms)";
/// LLM APIs: median inter-token latency.
pub const ITL_P50: &str = "ITL p50 (ms)";
/// LLM APIs: 99th percentile inter-token latency.
pub const ITL_P99: &str = "ITL p99 (ms)";

/// Compare a simulation with the real run of the same scenario and traffic; scale events more
/// than `max_offset_s` apart are not paired.
pub fn compare(real: &Observed, simulated: &Observed, max_offset_s: f64) -> Fidelity {
    let mut metrics = vec![
        Compared::new(LATENCY_P50, real.latency_ms.p50, simulated.latency_ms.p50),
        Compared::new(LATENCY_P90, real.latency_ms.p90, simulated.latency_ms.p90),
        Compared::new(LATENCY_P99, real.latency_ms.p99, simulated.latency_ms.p99),
        Compared::new(
            REJECTION_RATE,
            real.rejection_rate(),
            simulated.rejection_rate(),
        ),
        Compared::new(
            MEAN_REPLICAS,
            real.mean_replicas(),
            simulated.mean_replicas(),
        ),
    ];
    if let (Some(rt), Some(st), Some(ri), Some(si)) = (
        real.ttft_ms,
        simulated.ttft_ms,
        real.itl_ms,
        simulated.itl_ms,
    ) {
        metrics.extend([
            Compared::new(TTFT_P50, rt.p50, st.p50),
            Compared::new(TTFT_P99, rt.p99, st.p99),
            Compared::new(ITL_P50, ri.p50, si.p50),
            Compared::new(ITL_P99, ri.p99, si.p99),
        ]);
    }
    let seconds_compared = real.replicas.len().min(simulated.replicas.len());
    let within = real
        .replicas
        .iter()
        .zip(&simulated.replicas)
        .filter(|(r, s)| (*r - *s).abs() <= 1.0 + 1e-9)
        .count();
    let replicas_within_one = if seconds_compared == 0 {
        1.0
    } else {
        within as f64 / seconds_compared as f64
    };
    let (scale_events, unmatched_simulated_events) =
        match_events(&real.scale_events, &simulated.scale_events, max_offset_s);
    let mut offsets: Vec<f64> = scale_events
        .iter()
        .filter_map(|m| m.offset_s.map(f64::abs))
        .collect();
    offsets.sort_by(f64::total_cmp);
    Fidelity {
        metrics,
        replicas_within_one,
        seconds_compared,
        scale_events,
        unmatched_simulated_events,
        median_scale_offset_s: median(&offsets),
        tenants: compare_tenants(&real.tenants, &simulated.tenants),
    }
}

/// Each real tenant beside the simulated tenant of the same name (a tenant missing from the
/// simulation is left out: the runs were not of the same scenario).
fn compare_tenants(real: &[TenantResults], simulated: &[TenantResults]) -> Vec<TenantFidelity> {
    let share = |t: &TenantResults| {
        if t.requests == 0 {
            0.0
        } else {
            t.rejected as f64 / t.requests as f64
        }
    };
    real.iter()
        .filter_map(|r| {
            let s = simulated.iter().find(|s| s.name == r.name)?;
            Some(TenantFidelity {
                tenant: r.name.clone(),
                requests: r.requests,
                metrics: vec![
                    Compared::new(LATENCY_P50, r.latency_ms.p50, s.latency_ms.p50),
                    Compared::new(LATENCY_P99, r.latency_ms.p99, s.latency_ms.p99),
                    Compared::new(REJECTION_RATE, share(r), share(s)),
                ],
            })
        })
        .collect()
}

/// Pair each real event, in time order, with the nearest unpaired simulated event in the same
/// direction within `max_offset_s`.
fn match_events(
    real: &[ScaleEvent],
    simulated: &[ScaleEvent],
    max_offset_s: f64,
) -> (Vec<MatchedEvent>, usize) {
    let mut used = vec![false; simulated.len()];
    let matched = real
        .iter()
        .map(|r| {
            let nearest = simulated
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    !used[*i] && s.up() == r.up() && (s.t_s - r.t_s).abs() <= max_offset_s
                })
                .min_by(|(_, a), (_, b)| (a.t_s - r.t_s).abs().total_cmp(&(b.t_s - r.t_s).abs()));
            match nearest {
                Some((i, s)) => {
                    used[i] = true;
                    MatchedEvent {
                        real: *r,
                        simulated: Some(*s),
                        offset_s: Some(s.t_s - r.t_s),
                    }
                }
                None => MatchedEvent {
                    real: *r,
                    simulated: None,
                    offset_s: None,
                },
            }
        })
        .collect();
    (matched, used.iter().filter(|u| !**u).count())
}

/// Median of sorted values.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(p50: f64, p99: f64, replicas: &[f64], events: &[(f64, u32, u32)]) -> Observed {
        Observed {
            ttft_ms: None,
            itl_ms: None,
            tenants: Vec::new(),
            latency_ms: Percentiles {
                p50,
                p90: p50 * 2.0,
                p99,
                ..Percentiles::default()
            },
            requests: 1000,
            rejected: 10,
            replicas: replicas.to_vec(),
            scale_events: events
                .iter()
                .map(|(t_s, from, to)| ScaleEvent {
                    t_s: *t_s,
                    from: *from,
                    to: *to,
                })
                .collect(),
        }
    }

    #[test]
    fn errors_are_relative_to_the_real_run() {
        let real = observed(
            100.0,
            400.0,
            &[1.0, 1.0, 3.0, 3.0],
            &[(10.0, 1, 3), (50.0, 3, 2)],
        );
        let sim = observed(
            104.0,
            380.0,
            &[1.0, 1.0, 1.0, 4.0, 9.0],
            &[(12.0, 1, 2), (20.0, 2, 4), (45.0, 4, 1)],
        );
        let f = compare(&real, &sim, 10.0);
        assert!((f.relative_error(LATENCY_P50).expect("p50") - 0.04).abs() < 1e-12);
        assert!((f.relative_error(LATENCY_P99).expect("p99") + 0.05).abs() < 1e-12);
        // Seconds 0, 1 and 3 are within ±1; second 2 (3 vs 1) is not; second 4 has no real sample.
        assert_eq!(f.seconds_compared, 4);
        assert!((f.replicas_within_one - 0.75).abs() < 1e-12);
        assert_eq!(f.scale_events[0].offset_s, Some(2.0));
        assert_eq!(f.scale_events[1].offset_s, Some(-5.0));
        assert_eq!(f.unmatched_simulated_events, 1);
        assert_eq!(f.median_scale_offset_s, Some(3.5));
    }

    #[test]
    fn events_too_far_apart_are_not_paired() {
        let real = observed(100.0, 400.0, &[1.0], &[(10.0, 1, 3)]);
        let sim = observed(100.0, 400.0, &[1.0], &[(40.0, 1, 2)]);
        let f = compare(&real, &sim, 10.0);
        assert_eq!(f.scale_events[0].simulated, None);
        assert_eq!(f.unmatched_simulated_events, 1);
        assert_eq!(
            compare(&real, &sim, 30.0).scale_events[0].offset_s,
            Some(30.0)
        );
    }

    #[test]
    fn a_zero_real_value_has_no_relative_error() {
        let mut real = observed(100.0, 400.0, &[1.0], &[]);
        real.rejected = 0;
        let f = compare(&real, &observed(100.0, 400.0, &[1.0], &[]), 10.0);
        assert_eq!(f.relative_error(REJECTION_RATE), None);
        assert_eq!(f.median_scale_offset_s, None);
        assert_eq!(median(&[1.0, 2.0, 10.0]), Some(2.0));
    }

    fn tenant(name: &str, requests: u64, rejected: u64, p50: f64, p99: f64) -> TenantResults {
        TenantResults {
            name: name.into(),
            requests,
            completed: requests - rejected,
            rejected,
            rate_limited: 0,
            timed_out: 0,
            interrupted: 0,
            in_flight_at_end: 0,
            latency_ms: Percentiles {
                p50,
                p99,
                ..Percentiles::default()
            },
            throughput_rps: 0.0,
            busy_worker_s: 0.0,
            cost_usd: 0.0,
            slo: None,
            latency_histogram: String::new(),
        }
    }

    #[test]
    fn tenants_are_compared_by_name() {
        let mut real = observed(100.0, 400.0, &[1.0], &[]);
        let mut sim = observed(100.0, 400.0, &[1.0], &[]);
        real.tenants = vec![
            tenant("quiet", 200, 0, 60.0, 180.0),
            tenant("noisy", 800, 80, 90.0, 800.0),
        ];
        sim.tenants = vec![
            tenant("noisy", 800, 100, 99.0, 760.0),
            tenant("quiet", 200, 0, 57.0, 189.0),
        ];
        let f = compare(&real, &sim, 10.0);
        assert_eq!(f.tenants.len(), 2);
        assert_eq!(
            (f.tenants[0].tenant.as_str(), f.tenants[0].requests),
            ("quiet", 200)
        );
        let noisy = &f.tenants[1];
        let error = |m: &str| {
            noisy
                .metrics
                .iter()
                .find(|c| c.metric == m)
                .and_then(|c| c.relative_error)
        };
        assert!((error(LATENCY_P50).expect("p50") - 0.1).abs() < 1e-12);
        assert!((error(LATENCY_P99).expect("p99") + 0.05).abs() < 1e-12);
        assert!((error(REJECTION_RATE).expect("rejections") - 0.25).abs() < 1e-12);
        // An API without tenants writes no tenant comparison.
        let plain = compare(
            &observed(1.0, 2.0, &[1.0], &[]),
            &observed(1.0, 2.0, &[1.0], &[]),
            10.0,
        );
        assert!(plain.tenants.is_empty());
        assert!(!serde_json::to_string(&plain)
            .expect("json")
            .contains("tenants"));
    }
}
