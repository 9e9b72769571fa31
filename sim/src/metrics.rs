//! The metric pipeline each autoscaler really sees, emulated from the simulator's true state.
//!
//! Real autoscalers never see the instantaneous load: Cortex's proxy samples each replica's
//! in-flight count every second and Prometheus averages it over `window`; Knative scrapes 1-second
//! buckets of average concurrency and averages them over a stable and a panic window; the HPA reads
//! per-pod averages every sync period, possibly stale. The engine scrapes every second
//! ([`MetricPipeline::scrape_interval`]) and the policy reads [`MetricPipeline::observe`] at its
//! tick. The lag and smoothing this introduces is a large part of how each autoscaler behaves.

use std::collections::VecDeque;

use autoscaler::{MetricSpec, PodMetricKind, PodObservation};

use crate::time::SimTime;

/// What one replica did since the previous scrape, as the engine measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PodSample {
    /// Passed its readiness probe.
    pub ready: bool,
    /// Scheduled on a node (a pending pod reports nothing).
    pub scheduled: bool,
    /// In-flight requests (executing + queued) at the scrape.
    pub in_flight: f64,
    /// Busy workers / all workers at the scrape.
    pub busy_fraction: f64,
    /// Requests routed to it since the previous scrape.
    pub arrivals: u64,
    /// Time since the replica was created.
    pub age: SimTime,
}

/// Per-pod accumulation over one HPA sync period.
#[derive(Debug, Clone, Default)]
struct PodWindow {
    ready: bool,
    scheduled: bool,
    samples: u32,
    in_flight_sum: f64,
    busy_sum: f64,
    arrivals: u64,
    age: SimTime,
}

/// Turns per-second scrapes into the values a policy's [`MetricSpec`] asks for.
#[derive(Debug)]
pub(crate) struct MetricPipeline {
    spec: MetricSpec,
    /// (time, value) per scrape: total in-flight (Cortex) or average concurrency (Knative).
    totals: VecDeque<(SimTime, f64)>,
    keep: SimTime,
    /// Per-pod accumulation since the last sync, keyed by replica slot.
    pods: Vec<Option<PodWindow>>,
    /// Per-pod snapshots at past syncs, kept for the configured lag.
    snapshots: VecDeque<(SimTime, Vec<PodObservation>)>,
}

impl MetricPipeline {
    /// A pipeline for `spec`.
    pub fn new(spec: MetricSpec) -> Self {
        let keep = match &spec {
            MetricSpec::InFlightWindowAverage { window, .. } => SimTime::from(*window),
            MetricSpec::StableAndPanicConcurrency { stable_window, .. } => {
                SimTime::from(*stable_window)
            }
            MetricSpec::PerPod { lag, .. } => SimTime::from(*lag),
            MetricSpec::None => SimTime::ZERO,
        };
        Self {
            spec,
            totals: VecDeque::new(),
            keep,
            pods: Vec::new(),
            snapshots: VecDeque::new(),
        }
    }

    /// How often the engine must scrape, `None` when the policy needs no metric.
    pub fn scrape_interval(&self) -> Option<SimTime> {
        match &self.spec {
            MetricSpec::None => None,
            MetricSpec::InFlightWindowAverage {
                sample_interval, ..
            } => Some(SimTime::from(*sample_interval)),
            MetricSpec::StableAndPanicConcurrency { bucket, .. } => Some(SimTime::from(*bucket)),
            MetricSpec::PerPod { .. } => Some(SimTime::from_secs(1)),
        }
    }

    /// Whether scrapes need the API's time-averaged concurrency (Knative) rather than the
    /// instantaneous in-flight count.
    pub fn wants_time_average(&self) -> bool {
        matches!(self.spec, MetricSpec::StableAndPanicConcurrency { .. })
    }

    /// Whether scrapes need per-pod samples (HPA).
    pub fn wants_pods(&self) -> bool {
        matches!(self.spec, MetricSpec::PerPod { .. })
    }

    /// Record one scrape. `total` is the API-wide value (instantaneous in-flight including
    /// requests held by the activator, or the time-averaged concurrency over the last bucket);
    /// `pods` the per-replica samples, indexed by replica slot.
    pub fn scrape(&mut self, now: SimTime, total: f64, pods: &[(usize, PodSample)]) {
        match self.spec {
            MetricSpec::None => {}
            MetricSpec::InFlightWindowAverage { .. }
            | MetricSpec::StableAndPanicConcurrency { .. } => {
                self.totals.push_back((now, total));
                while self
                    .totals
                    .front()
                    .is_some_and(|(t, _)| now.since(*t) >= self.keep)
                {
                    self.totals.pop_front();
                }
            }
            MetricSpec::PerPod { .. } => {
                for w in self.pods.iter_mut().flatten() {
                    w.scheduled = false;
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
                    w.scheduled = sample.scheduled;
                    w.age = sample.age;
                    if sample.scheduled {
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

    /// Close a per-pod sync period (HPA): snapshot the pods' averages and start afresh.
    pub fn sync(&mut self, now: SimTime) {
        let MetricSpec::PerPod { kind, .. } = self.spec else {
            return;
        };
        let mut snapshot = Vec::new();
        for w in self.pods.iter_mut().flatten() {
            let value = (w.scheduled && w.samples > 0).then(|| {
                let n = f64::from(w.samples);
                match kind {
                    PodMetricKind::Concurrency => w.in_flight_sum / n,
                    PodMetricKind::Rps => w.arrivals as f64 / n,
                    PodMetricKind::CpuUtilization => w.busy_sum / n,
                }
            });
            snapshot.push(PodObservation {
                ready: w.ready,
                value,
                age: w.age.as_duration(),
                request: 1.0,
            });
            w.samples = 0;
            w.in_flight_sum = 0.0;
            w.busy_sum = 0.0;
            w.arrivals = 0;
        }
        self.snapshots.push_back((now, snapshot));
        // Keep the newest snapshot at or before now − lag, and everything after it.
        while self.snapshots.len() > 1
            && self
                .snapshots
                .get(1)
                .is_some_and(|(t, _)| now.since(*t) >= self.keep)
        {
            self.snapshots.pop_front();
        }
    }

    /// The values the policy sees at `now`: (metric, panic metric, pods).
    pub fn observe(&self, now: SimTime) -> (Option<f64>, Option<f64>, Vec<PodObservation>) {
        let mean_since = |span: SimTime| {
            let mut sum = 0.0;
            let mut n = 0u32;
            for (t, v) in self.totals.iter().rev() {
                if now.since(*t) >= span {
                    break;
                }
                sum += v;
                n += 1;
            }
            (n > 0).then(|| sum / f64::from(n))
        };
        match &self.spec {
            MetricSpec::None => (None, None, Vec::new()),
            MetricSpec::InFlightWindowAverage { window, .. } => {
                (mean_since(SimTime::from(*window)), None, Vec::new())
            }
            MetricSpec::StableAndPanicConcurrency {
                stable_window,
                panic_window,
                ..
            } => (
                mean_since(SimTime::from(*stable_window)),
                mean_since(SimTime::from(*panic_window)),
                Vec::new(),
            ),
            MetricSpec::PerPod { .. } => {
                let stale = self
                    .snapshots
                    .iter()
                    .rev()
                    .find(|(t, _)| now.since(*t) >= self.keep);
                match stale {
                    Some((_, pods)) => (None, None, pods.clone()),
                    None => (None, None, Vec::new()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn window_average_covers_the_last_window_only() {
        let mut p = MetricPipeline::new(MetricSpec::InFlightWindowAverage {
            sample_interval: Duration::from_secs(1),
            window: Duration::from_secs(60),
        });
        assert_eq!(p.observe(SimTime::ZERO).0, None);
        for s in 1..=120 {
            let value = if s <= 60 { 10.0 } else { 40.0 };
            p.scrape(SimTime::from_secs(s), value, &[]);
        }
        assert_eq!(p.observe(SimTime::from_secs(120)).0, Some(40.0));
        assert_eq!(p.observe(SimTime::from_secs(90)).0, Some(40.0));
    }

    #[test]
    fn stable_and_panic_windows() {
        let mut p = MetricPipeline::new(MetricSpec::StableAndPanicConcurrency {
            bucket: Duration::from_secs(1),
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
        });
        for s in 1..=60 {
            p.scrape(SimTime::from_secs(s), if s > 54 { 70.0 } else { 30.0 }, &[]);
        }
        let (stable, panic, _) = p.observe(SimTime::from_secs(60));
        assert_eq!(panic, Some(70.0));
        assert!((stable.expect("data") - 34.0).abs() < 1e-9);
    }

    #[test]
    fn per_pod_values_arrive_after_the_lag() {
        let mut p = MetricPipeline::new(MetricSpec::PerPod {
            kind: PodMetricKind::Concurrency,
            lag: Duration::from_secs(30),
        });
        let sample = |in_flight| PodSample {
            ready: true,
            scheduled: true,
            in_flight,
            busy_fraction: 0.5,
            arrivals: 2,
            age: SimTime::from_secs(100),
        };
        for s in 1..=15 {
            p.scrape(
                SimTime::from_secs(s),
                0.0,
                &[(0, sample(4.0)), (1, sample(2.0))],
            );
        }
        p.sync(SimTime::from_secs(15));
        assert!(
            p.observe(SimTime::from_secs(15)).2.is_empty(),
            "not visible before the lag"
        );
        let pods = p.observe(SimTime::from_secs(45)).2;
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].value, Some(4.0));
        assert_eq!(pods[1].value, Some(2.0));
    }
}
