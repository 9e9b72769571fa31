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

use crate::{MetricSpec, PodMetricKind, PodObservation, PodPeak, PodPhase};

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

/// What a vLLM-style LLM server reports at one sample: vLLM's gauges
/// `vllm:num_requests_running`, `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc` (a
/// 0–1 fraction despite its name: "KV-cache usage. 1 means 100 percent usage.") at the sample,
/// and the prompt and generation tokens processed since the pod's previous sample (the increases
/// of the counters `vllm:prompt_tokens_total` and `vllm:generation_tokens_total`). Names and
/// help strings from vLLM's `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger`) and
/// <https://docs.vllm.ai/en/stable/usage/metrics/>. All zero for a pod that is not an LLM server.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LlmSignals {
    /// `vllm:num_requests_running`: "Number of requests in model execution batches."
    pub running: f64,
    /// `vllm:num_requests_waiting`: "Number of requests waiting to be processed."
    pub waiting: f64,
    /// `vllm:kv_cache_usage_perc`, 0–1.
    pub kv_usage: f64,
    /// Increase of `vllm:prompt_tokens_total` ("Number of prefill tokens processed.") since the
    /// pod's previous sample.
    pub prompt_tokens: f64,
    /// Increase of `vllm:generation_tokens_total` ("Number of generation tokens processed.")
    /// since the pod's previous sample.
    pub generation_tokens: f64,
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
    /// CPU in use over CPU requested at the sample: busy workers / all workers when a busy
    /// worker uses its share of the request.
    pub busy_fraction: f64,
    /// Requests that reached the pod since its previous sample.
    pub arrivals: f64,
    /// Time since the pod was created.
    pub age: Duration,
    /// The LLM server's signals (zero for other servers).
    pub llm: LlmSignals,
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
    running_sum: f64,
    waiting_sum: f64,
    kv_sum: f64,
    generation_tokens: f64,
    age: Duration,
    /// The pod's age when its readiness last changed (its Ready condition's transition),
    /// `None` before its first sample.
    ready_changed_at: Option<Duration>,
    /// [`MetricSpec::PerPodPeak`] only: every sample of the last `window + lag`.
    history: VecDeque<PeakSample>,
}

/// One sample kept for per-pod peaks.
#[derive(Debug, Clone, Copy)]
struct PeakSample {
    at: Duration,
    ready: bool,
    age: Duration,
    /// (kv usage, waiting), `None` when the pod did not report.
    load: Option<(f64, f64)>,
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
    /// When the current per-pod sync period began (the previous sync).
    last_sync: Duration,
}

impl MetricPipeline {
    /// A pipeline for `spec`, sampled at the spec's own interval.
    pub fn new(spec: MetricSpec) -> Self {
        let keep = match &spec {
            MetricSpec::InFlightWindowAverage { window, .. } => *window,
            MetricSpec::StableAndPanicConcurrency { stable_window, .. } => *stable_window,
            MetricSpec::PerPod { lag, .. } => *lag,
            MetricSpec::PerPodPeak { window, lag } => *window + *lag,
            MetricSpec::None => Duration::ZERO,
        };
        let sample_interval = match &spec {
            MetricSpec::None => None,
            MetricSpec::InFlightWindowAverage {
                sample_interval, ..
            } => Some(*sample_interval),
            MetricSpec::StableAndPanicConcurrency { bucket, .. } => Some(*bucket),
            MetricSpec::PerPod { .. } | MetricSpec::PerPodPeak { .. } => {
                Some(Duration::from_secs(1))
            }
        };
        Self {
            spec,
            totals: VecDeque::new(),
            keep,
            sample_interval,
            stale_after: DEFAULT_STALE_AFTER,
            pods: Vec::new(),
            snapshots: VecDeque::new(),
            last_sync: Duration::ZERO,
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

    /// Whether samples need per-pod values (HPA, saturation).
    pub fn wants_pods(&self) -> bool {
        matches!(
            self.spec,
            MetricSpec::PerPod { .. } | MetricSpec::PerPodPeak { .. }
        )
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
            MetricSpec::PerPod { .. } | MetricSpec::PerPodPeak { .. } => {
                let peaks = matches!(self.spec, MetricSpec::PerPodPeak { .. });
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
                    match w.ready_changed_at {
                        // A pod first seen unready has been so since it was created.
                        None => {
                            w.ready_changed_at = Some(if sample.ready {
                                sample.age
                            } else {
                                Duration::ZERO
                            })
                        }
                        Some(_) if w.ready != sample.ready => w.ready_changed_at = Some(sample.age),
                        Some(_) => {}
                    }
                    w.ready = sample.ready;
                    w.reported = sample.reported;
                    w.age = sample.age;
                    if sample.reported {
                        w.samples += 1;
                        w.in_flight_sum += sample.in_flight;
                        w.busy_sum += sample.busy_fraction;
                        w.arrivals += sample.arrivals;
                        w.running_sum += sample.llm.running;
                        w.waiting_sum += sample.llm.waiting;
                        w.kv_sum += sample.llm.kv_usage;
                        w.generation_tokens += sample.llm.generation_tokens;
                    }
                    if peaks {
                        w.history.push_back(PeakSample {
                            at: now,
                            ready: sample.ready,
                            age: sample.age,
                            load: sample
                                .reported
                                .then_some((sample.llm.kv_usage, sample.llm.waiting)),
                        });
                        while w
                            .history
                            .front()
                            .is_some_and(|x| now.saturating_sub(x.at) >= self.keep)
                        {
                            w.history.pop_front();
                        }
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
                    PodMetricKind::RequestsWaiting => w.waiting_sum / n,
                    PodMetricKind::RequestsRunning => w.running_sum / n,
                    PodMetricKind::KvCacheUsage => w.kv_sum / n,
                    PodMetricKind::GenerationTokensPerSecond => {
                        w.generation_tokens / (n * sampled_s)
                    }
                }
            });
            // A pod that is not ready and reports nothing has not started serving (the HPA's
            // Pending); one that is not ready but reports is Running and unready.
            let phase = if w.ready || w.reported {
                PodPhase::Running
            } else {
                PodPhase::Pending
            };
            snapshot.push(PodObservation {
                ready: w.ready,
                value,
                age: w.age,
                phase,
                ready_since: w.ready_changed_at.map(|at| w.age.saturating_sub(at)),
                metric_age: Duration::ZERO,
                metric_window: now.saturating_sub(self.last_sync),
                ..PodObservation::default()
            });
            w.samples = 0;
            w.in_flight_sum = 0.0;
            w.busy_sum = 0.0;
            w.arrivals = 0.0;
            w.running_sum = 0.0;
            w.waiting_sum = 0.0;
            w.kv_sum = 0.0;
            w.generation_tokens = 0.0;
        }
        self.snapshots.push_back((now, snapshot));
        self.last_sync = now;
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
                // The snapshot as of the lag, with its pods' ages moved on to now: the HPA
                // compares start and transition times with its own clock.
                pods: self
                    .snapshots
                    .iter()
                    .rev()
                    .find(|(t, _)| now.saturating_sub(*t) >= self.keep)
                    .map(|(t, pods)| {
                        let stale = now.saturating_sub(*t);
                        pods.iter()
                            .map(|p| PodObservation {
                                age: p.age + stale,
                                ready_since: p.ready_since.map(|s| s + stale),
                                metric_age: p.metric_age + stale,
                                ..p.clone()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                ..Reading::default()
            },
            MetricSpec::PerPodPeak { window, lag } => Reading {
                pods: self.peaks(now.saturating_sub(*lag), *window),
                ..Reading::default()
            },
        }
    }

    /// Each pod's peaks over `(at − window, at]`, as Prometheus' `max_over_time(x[window])`
    /// evaluated at `at`: pods with no sample at or before `at` (too new) are left out; a pod's
    /// readiness and age are those of its newest sample in range; `peak` is `None` when it
    /// reported nothing in the window. Pods that disappeared are forgotten at once.
    fn peaks(&self, at: Duration, window: Duration) -> Vec<PodObservation> {
        let mut out = Vec::new();
        for w in self.pods.iter().flatten() {
            let mut newest: Option<&PeakSample> = None;
            let mut peak: Option<PodPeak> = None;
            for x in w.history.iter().filter(|x| x.at <= at) {
                newest = Some(x);
                if at.saturating_sub(x.at) >= window {
                    continue;
                }
                if let Some((kv, waiting)) = x.load {
                    let p = peak.get_or_insert(PodPeak {
                        kv_usage: kv,
                        waiting,
                    });
                    p.kv_usage = p.kv_usage.max(kv);
                    p.waiting = p.waiting.max(waiting);
                }
            }
            let Some(newest) = newest else { continue };
            out.push(PodObservation {
                ready: newest.ready,
                age: newest.age,
                ready_since: Some(newest.age),
                peak,
                ..PodObservation::default()
            });
        }
        out
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
            llm: LlmSignals::default(),
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

    fn llm(running: f64, waiting: f64, kv_usage: f64, generation_tokens: f64) -> PodSample {
        PodSample {
            ready: true,
            reported: true,
            llm: LlmSignals {
                running,
                waiting,
                kv_usage,
                prompt_tokens: 0.0,
                generation_tokens,
            },
            ..PodSample::default()
        }
    }

    #[test]
    fn llm_gauges_average_and_tokens_are_a_rate() {
        let read = |kind| {
            let mut p = MetricPipeline::new(MetricSpec::PerPod {
                kind,
                lag: Duration::ZERO,
            });
            p.sample(secs(1), None, &[(0, llm(4.0, 1.0, 0.2, 100.0))]);
            p.sample(secs(2), None, &[(0, llm(6.0, 3.0, 0.6, 300.0))]);
            p.sync(secs(2));
            p.reading(secs(2)).pods[0].value
        };
        assert_eq!(read(PodMetricKind::RequestsRunning), Some(5.0));
        assert_eq!(read(PodMetricKind::RequestsWaiting), Some(2.0));
        let kv = read(PodMetricKind::KvCacheUsage).expect("kv");
        assert!((kv - 0.4).abs() < 1e-12);
        assert_eq!(read(PodMetricKind::GenerationTokensPerSecond), Some(200.0));
    }

    #[test]
    fn peaks_are_the_max_over_the_window_as_of_the_lag() {
        let mut p = MetricPipeline::new(MetricSpec::PerPodPeak {
            window: secs(60),
            lag: secs(10),
        });
        assert!(p.wants_pods());
        assert_eq!(p.sample_interval(), Some(secs(1)));
        for t in 1..=100 {
            // Pod 0 spikes at 30 s and at 95 s; pod 1 starts at 80 s.
            let (kv, waiting) = match t {
                30 => (0.9, 7.0),
                95 => (0.95, 9.0),
                _ => (0.1, 0.0),
            };
            let mut pods = vec![(0, llm(0.0, waiting, kv, 0.0))];
            if t >= 80 {
                pods.push((1, llm(0.0, 2.0, 0.3, 0.0)));
            }
            if t >= 95 {
                pods[1].1.reported = false;
            }
            if t == 99 {
                // A tick at 99 s, before that second's sample: the window (29 s, 89 s] holds
                // the spike of 30 s.
                let peak = p.reading(secs(99)).pods[0].peak;
                assert_eq!(peak.map(|x| x.waiting), Some(7.0));
            }
            p.sample(secs(t), None, &pods);
        }
        // At 100 s with a 10 s lag: the window is (30 s, 90 s]; 30 s is just out, 95 s not yet in.
        let pods = p.reading(secs(100)).pods;
        assert_eq!(pods.len(), 2);
        let peak = |i: usize| pods[i].peak.map(|x| (x.kv_usage, x.waiting));
        assert_eq!(peak(0), Some((0.1, 0.0)));
        assert_eq!(peak(1), Some((0.3, 2.0)));
        assert_eq!(pods[0].value, None);
        // Pod 1 is too new for a reading at 85 s (as of 75 s).
        assert_eq!(p.reading(secs(85)).pods.len(), 1);
    }
}
