//! The metric pipeline: per-second samples in, the reading each policy's upstream sees out.
//!
//! Real autoscalers never see the instantaneous load: Cortex's proxy samples each replica's
//! in-flight count every second and Prometheus averages it over `window`; Knative scrapes
//! 1-second buckets of average concurrency and averages them over a stable and a panic window;
//! the HPA reads per-pod averages every sync period, possibly stale. The lag and smoothing this
//! introduces is a large part of how each autoscaler behaves, so it lives here once: the
//! simulator feeds it samples measured from its true state, the controller feeds it scrapes,
//! and both read the same [`Reading`] at a tick.
//!
//! No clock and no I/O: the caller passes the time of every sample and of every reading, in
//! order. A tick reads the samples fed so far; the caller feeds a scrape taken at the tick's own
//! instant after the tick (the simulator's order), or holds it back (the controller).

use std::collections::VecDeque;
use std::time::Duration;

use crate::{MetricSpec, PodMetricKind, PodObservation};

/// How old the newest sample may be before the windowed metric counts as missing (a scrape
/// outage), unless the caller sets another limit.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(5);

/// What the policy sees at one tick: the metric its upstream computes, and the activator's count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The aggregated metric (stable window for Knative); `None`: missing or stale.
    pub metric: Option<f64>,
    /// Knative's panic-window value.
    pub panic_metric: Option<f64>,
    /// Per-pod values (HPA), as of the configured lag.
    pub pods: Vec<PodObservation>,
    /// Requests held by the activator while the API has no replica; wakes a scaled-to-zero API.
    pub waiting_requests: u32,
}

/// What one pod did since its previous sample, however it was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PodSample {
    /// Passed its readiness probe.
    pub ready: bool,
    /// The pod answered this sample (a pending pod, or a failed scrape, reports nothing).
    pub reported: bool,
    /// In-flight requests (executing + queued) at the sample.
    pub in_flight: f64,
    /// Busy workers / all workers at the sample.
    pub busy_fraction: f64,
    /// Requests that reached the pod since its previous sample.
    pub arrivals: f64,
    /// Time since the pod was created.
    pub age: Duration,
}

/// Per-pod accumulation over one HPA sync period.
#[derive(Debug, Clone, Default)]
struct PodWindow {
    ready: bool,
    reported: bool,
    samples: u32,
    in_flight_sum: f64,
    busy_sum: f64,
    arrivals: f64,
    age: Duration,
}

/// Turns samples into the values a policy's [`MetricSpec`] asks for.
#[derive(Debug, Clone)]
pub struct MetricPipeline {
    spec: MetricSpec,
    /// (time, value) per sample: total in-flight (Cortex) or average concurrency (Knative).
    totals: VecDeque<(Duration, f64)>,
    keep: Duration,
    sample_interval: Option<Duration>,
    stale_after: Duration,
    /// Per-pod accumulation since the last sync, keyed by pod slot.
    pods: Vec<Option<PodWindow>>,
    /// Per-pod snapshots at past syncs, kept for the configured lag.
    snapshots: VecDeque<(Duration, Vec<PodObservation>)>,
}

impl MetricPipeline {
    /// A pipeline for `spec`, sampled at the spec's own interval.
    pub fn new(spec: MetricSpec) -> Self {
        let keep = match &spec {
            MetricSpec::InFlightWindowAverage { window, .. } => *window,
            MetricSpec::StableAndPanicConcurrency { stable_window, .. } => *stable_window,
            MetricSpec::PerPod { lag, .. } => *lag,
            MetricSpec::None => Duration::ZERO,
        };
        let sample_interval = match &spec {
            MetricSpec::None => None,
            MetricSpec::InFlightWindowAverage {
                sample_interval, ..
            } => Some(*sample_interval),
            MetricSpec::StableAndPanicConcurrency { bucket, .. } => Some(*bucket),
            MetricSpec::PerPod { .. } => Some(Duration::from_secs(1)),
        };
        Self {
            spec,
            totals: VecDeque::new(),
            keep,
            sample_interval,
            stale_after: DEFAULT_STALE_AFTER,
            pods: Vec::new(),
            snapshots: VecDeque::new(),
        }
    }

    /// Sample at `every` instead of the spec's interval (a controller's `--sample-interval`);
    /// per-pod request rates are arrivals over the sampled time.
    pub fn with_sample_interval(mut self, every: Duration) -> Self {
        if self.sample_interval.is_some() {
            self.sample_interval = Some(every);
        }
        self
    }

    /// Treat the windowed metric as missing when the newest sample is older than `limit`.
    pub fn with_stale_after(mut self, limit: Duration) -> Self {
        self.stale_after = limit;
        self
    }

    /// The spec this pipeline computes.
    pub fn spec(&self) -> &MetricSpec {
        &self.spec
    }

    /// How often the caller must sample, `None` when the policy needs no metric.
    pub fn sample_interval(&self) -> Option<Duration> {
        self.sample_interval
    }

    /// Whether a sample's total is the API's time-averaged concurrency since the previous
    /// sample (Knative's buckets) rather than the instantaneous in-flight count.
    pub fn wants_time_average(&self) -> bool {
        matches!(self.spec, MetricSpec::StableAndPanicConcurrency { .. })
    }

    /// Whether samples need per-pod values (HPA).
    pub fn wants_pods(&self) -> bool {
        matches!(self.spec, MetricSpec::PerPod { .. })
    }

    /// Record one sample taken at `now`. `total` is the API-wide value (instantaneous in-flight
    /// including requests held by the activator, or the time-averaged concurrency over the last
    /// bucket), `None` when no pod answered; `pods` the per-pod samples, indexed by pod slot.
    pub fn sample(&mut self, now: Duration, total: Option<f64>, pods: &[(usize, PodSample)]) {
        match self.spec {
            MetricSpec::None => {}
            MetricSpec::InFlightWindowAverage { .. }
            | MetricSpec::StableAndPanicConcurrency { .. } => {
                let Some(total) = total else { return };
                self.totals.push_back((now, total));
                while self
                    .totals
                    .front()
                    .is_some_and(|(t, _)| now.saturating_sub(*t) >= self.keep)
                {
                    self.totals.pop_front();
                }
            }
            MetricSpec::PerPod { .. } => {
                for w in self.pods.iter_mut().flatten() {
                    w.reported = false;
                }
                let mut seen = vec![false; self.pods.len()];
                for &(slot, sample) in pods {
                    if slot >= self.pods.len() {
                        self.pods.resize(slot + 1, None);
                        seen.resize(slot + 1, false);
                    }
                    let w = self.pods[slot].get_or_insert_with(PodWindow::default);
                    seen[slot] = true;
                    w.ready = sample.ready;
                    w.reported = sample.reported;
                    w.age = sample.age;
                    if sample.reported {
                        w.samples += 1;
                        w.in_flight_sum += sample.in_flight;
                        w.busy_sum += sample.busy_fraction;
                        w.arrivals += sample.arrivals;
                    }
                }
                // Pods that disappeared are forgotten, as the HPA lists pods afresh each sync.
                for (slot, s) in seen.iter().enumerate() {
                    if !s {
                        self.pods[slot] = None;
                    }
                }
            }
        }
    }

    /// Close a per-pod sync period (HPA) at a tick: snapshot the pods' averages and start afresh.
    pub fn sync(&mut self, now: Duration) {
        let MetricSpec::PerPod { kind, .. } = self.spec else {
            return;
        };
        let sampled_s = self.sample_interval.map_or(1.0, |d| d.as_secs_f64());
        let mut snapshot = Vec::new();
        for w in self.pods.iter_mut().flatten() {
            let value = (w.reported && w.samples > 0).then(|| {
                let n = f64::from(w.samples);
                match kind {
                    PodMetricKind::Concurrency => w.in_flight_sum / n,
                    PodMetricKind::Rps => w.arrivals / (n * sampled_s),
                    PodMetricKind::CpuUtilization => w.busy_sum / n,
                }
            });
            snapshot.push(PodObservation {
                ready: w.ready,
                value,
                age: w.age,
                request: 1.0,
            });
            w.samples = 0;
            w.in_flight_sum = 0.0;
            w.busy_sum = 0.0;
            w.arrivals = 0.0;
        }
        self.snapshots.push_back((now, snapshot));
        // Keep the newest snapshot at or before now − lag, and everything after it.
        while self.snapshots.len() > 1
            && self
                .snapshots
                .get(1)
                .is_some_and(|(t, _)| now.saturating_sub(*t) >= self.keep)
        {
            self.snapshots.pop_front();
        }
    }

    /// What the policy sees at `now` (the activator's `waiting_requests` is the caller's).
    pub fn reading(&self, now: Duration) -> Reading {
        let fresh = self
            .totals
            .back()
            .is_some_and(|(t, _)| now.saturating_sub(*t) <= self.stale_after);
        let mean_since = |span: Duration| {
            if !fresh {
                return None;
            }
            let mut sum = 0.0;
            let mut n = 0u32;
            for (t, v) in self.totals.iter().rev() {
                if now.saturating_sub(*t) >= span {
                    break;
                }
                sum += v;
                n += 1;
            }
            if n == 0 {
                // A window shorter than the sampling interval still holds the newest sample, as
                // Knative's buckets always hold the current one (a 1 s panic window).
                return self.totals.back().map(|(_, v)| *v);
            }
            Some(sum / f64::from(n))
        };
        match &self.spec {
            MetricSpec::None => Reading::default(),
            MetricSpec::InFlightWindowAverage { window, .. } => Reading {
                metric: mean_since(*window),
                ..Reading::default()
            },
            MetricSpec::StableAndPanicConcurrency {
                stable_window,
                panic_window,
                ..
            } => Reading {
                metric: mean_since(*stable_window),
                panic_metric: mean_since(*panic_window),
                ..Reading::default()
            },
            MetricSpec::PerPod { .. } => Reading {
                pods: self
                    .snapshots
                    .iter()
                    .rev()
                    .find(|(t, _)| now.saturating_sub(*t) >= self.keep)
                    .map(|(_, pods)| pods.clone())
                    .unwrap_or_default(),
                ..Reading::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn window_average_covers_the_last_window_only() {
        let mut p = MetricPipeline::new(MetricSpec::InFlightWindowAverage {
            sample_interval: secs(1),
            window: secs(60),
        });
        assert_eq!(p.reading(Duration::ZERO).metric, None);
        for s in 1..=120 {
            let value = if s <= 60 { 10.0 } else { 40.0 };
            p.sample(secs(s), Some(value), &[]);
        }
        assert_eq!(p.reading(secs(120)).metric, Some(40.0));
        assert_eq!(p.reading(secs(125)).metric, Some(40.0));
        assert_eq!(p.reading(secs(126)).metric, None, "stale data is no data");
    }

    #[test]
    fn stable_and_panic_windows() {
        let mut p = MetricPipeline::new(MetricSpec::StableAndPanicConcurrency {
            bucket: secs(1),
            stable_window: secs(60),
            panic_window: secs(6),
        });
        for s in 1..=60 {
            p.sample(secs(s), Some(if s > 54 { 70.0 } else { 30.0 }), &[]);
        }
        let r = p.reading(secs(60));
        assert_eq!(r.panic_metric, Some(70.0));
        assert!((r.metric.expect("data") - 34.0).abs() < 1e-9);
    }

    #[test]
    fn a_window_shorter_than_the_sampling_interval_holds_the_newest_sample() {
        let mut p = MetricPipeline::new(MetricSpec::StableAndPanicConcurrency {
            bucket: secs(1),
            stable_window: secs(12),
            panic_window: secs(1),
        });
        for s in 1..=9 {
            p.sample(secs(s), Some(s as f64), &[]);
        }
        // A tick at 10 s runs before the sample of 10 s: the panic window holds the one of 9 s.
        let r = p.reading(secs(10));
        assert_eq!(r.panic_metric, Some(9.0));
        assert_eq!(r.metric, Some(5.0));
    }

    #[test]
    fn a_sample_without_total_is_a_gap() {
        let mut p = MetricPipeline::new(MetricSpec::InFlightWindowAverage {
            sample_interval: secs(1),
            window: secs(10),
        });
        p.sample(secs(1), Some(4.0), &[]);
        p.sample(secs(2), None, &[]);
        assert_eq!(p.reading(secs(2)).metric, Some(4.0));
    }

    #[test]
    fn per_pod_values_arrive_after_the_lag() {
        let mut p = MetricPipeline::new(MetricSpec::PerPod {
            kind: PodMetricKind::Concurrency,
            lag: secs(30),
        });
        let sample = |in_flight| PodSample {
            ready: true,
            reported: true,
            in_flight,
            busy_fraction: 0.5,
            arrivals: 2.0,
            age: secs(100),
        };
        for s in 1..=15 {
            p.sample(secs(s), None, &[(0, sample(4.0)), (1, sample(2.0))]);
        }
        p.sync(secs(15));
        assert!(
            p.reading(secs(15)).pods.is_empty(),
            "not visible before the lag"
        );
        let pods = p.reading(secs(45)).pods;
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].value, Some(4.0));
        assert_eq!(pods[1].value, Some(2.0));
    }

    #[test]
    fn per_pod_rates_are_arrivals_over_the_sampled_time() {
        let mut p = MetricPipeline::new(MetricSpec::PerPod {
            kind: PodMetricKind::Rps,
            lag: Duration::ZERO,
        })
        .with_sample_interval(secs(2));
        let s = PodSample {
            ready: true,
            reported: true,
            arrivals: 10.0,
            ..PodSample::default()
        };
        for t in [2, 4, 6] {
            p.sample(secs(t), None, &[(3, s)]);
        }
        p.sync(secs(6));
        let pods = p.reading(secs(6)).pods;
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].value, Some(5.0));
        // A pod that stops reporting has no value at the next sync.
        p.sample(secs(8), None, &[(3, PodSample::default())]);
        p.sync(secs(8));
        assert_eq!(p.reading(secs(8)).pods[0].value, None);
    }
}
