//! Metrics sources: what the policy sees, computed from real metrics.
//!
//! - [`ScrapeSource`] scrapes every pod's `/metrics` itself every sample interval and feeds the
//!   scrapes to the crate's [`MetricPipeline`] — the one the simulator feeds with its own
//!   samples — so no Prometheus is needed and the reading is computed by the same code.
//! - [`super::prometheus::PrometheusSource`] asks a Prometheus server the query the real
//!   autoscaler runs.
//!
//! Either returns no metric when there is no data, or when the newest data is older than the
//! staleness limit; the controller then holds the replica count.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

pub use super::vllm::VllmScrape;
use super::vllm::{colon_free, TokenCounters, VllmParser};
use super::{BoxFuture, ControllerError};
use crate::pipeline::{MetricPipeline, PodSample, Reading};
use crate::{MetricSpec, PodMetricKind};

/// Why metrics could not be read at all (the controller holds).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The metrics backend could not be reached or answered badly.
    #[error("metrics backend: {0}")]
    Backend(String),
    /// Pods could not be listed.
    #[error("cannot list pods: {0}")]
    Discovery(String),
}

/// Where the policy's metric comes from.
pub trait MetricsSource: Send {
    /// The reading at `now` (time since the controller started).
    fn observe(&mut self, now: Duration) -> BoxFuture<'_, Result<Reading, SourceError>>;
}

/// One pod to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Base URL, `http://host:port` (`/metrics` is appended).
    pub url: String,
}

/// Which pods to scrape: a fixed list, the Kubernetes pods of the Deployment, or the local
/// actuator's replicas.
pub trait Targets: Send + Sync {
    /// The pods to scrape now.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Target>, SourceError>>;
}

/// A fixed list of URLs (`--targets`).
#[derive(Debug, Clone)]
pub struct StaticTargets(pub Vec<Target>);

impl Targets for StaticTargets {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Target>, SourceError>> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
}

/// Running pods matching a label selector, scraped at `pod IP : port`.
pub struct KubePods {
    api: Api<Pod>,
    selector: String,
    port: u16,
}

impl KubePods {
    /// Pods of `api`'s namespace matching `selector` (e.g. `app=model`).
    pub fn new(api: Api<Pod>, selector: impl Into<String>, port: u16) -> Self {
        Self {
            api,
            selector: selector.into(),
            port,
        }
    }
}

impl Targets for KubePods {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Target>, SourceError>> {
        Box::pin(async move {
            let pods = self
                .api
                .list(&ListParams::default().labels(&self.selector))
                .await
                .map_err(|e| SourceError::Discovery(e.to_string()))?;
            Ok(pods
                .items
                .into_iter()
                .filter_map(|p| {
                    let status = p.status?;
                    if status.phase.as_deref() != Some("Running") {
                        return None;
                    }
                    let ip = status.pod_ip?;
                    let host = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip
                    };
                    Some(Target {
                        url: format!("http://{host}:{}", self.port),
                    })
                })
                .collect())
        })
    }
}

/// Settings of the direct scrape.
#[derive(Debug, Clone)]
pub struct ScrapeSettings {
    /// `api_name` label to match (series without the label are taken as they are).
    pub api_name: String,
    /// The in-flight gauge: `cortex_in_flight_requests` (Cortex's 10 s mean) or
    /// `simctl_in_flight_requests` (instantaneous, which is what the simulator samples).
    pub metric_name: String,
    /// The request counter, for per-pod request rates.
    pub requests_metric: String,
    /// The in-flight integral (a counter of request-seconds): where pods export it, Knative's
    /// concurrency buckets are its rate — the time-weighted mean, as the queue-proxy reports —
    /// rather than a sample of the gauge.
    pub in_flight_seconds_metric: String,
    /// Scrape period; `None` uses the policy's sample interval.
    pub sample_interval: Option<Duration>,
    /// No metric when the newest successful scrape is older than this.
    pub stale_after: Duration,
    /// Per-pod scrape timeout.
    pub timeout: Duration,
}

impl ScrapeSettings {
    /// Defaults for `api_name`: Cortex's gauge, 1 s timeout, stale after 5 s.
    pub fn new(api_name: impl Into<String>) -> Self {
        Self {
            api_name: api_name.into(),
            metric_name: "cortex_in_flight_requests".into(),
            requests_metric: "simctl_requests_total".into(),
            in_flight_seconds_metric: "simctl_in_flight_seconds_total".into(),
            sample_interval: None,
            stale_after: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        }
    }
}

/// What is remembered of one pod between scrapes (counters are turned into rates here).
#[derive(Debug)]
struct PodCounters {
    slot: usize,
    first_seen: Duration,
    last_seen: Duration,
    ready: bool,
    /// The request counter at the previous scrape.
    requests: Option<f64>,
    /// (time, in-flight integral) at the previous scrape.
    area_at: Option<(Duration, f64)>,
    /// vLLM's token counters at the previous scrape.
    vllm_tokens: TokenCounters,
}

/// One round of scrapes, as the pipeline takes it.
#[derive(Debug)]
struct Scraped {
    at: Duration,
    total: Option<f64>,
    pods: Vec<(usize, PodSample)>,
}

/// Rounds of pod scrapes turned into the policy's readings: gauges summed, counters turned into
/// arrivals, in-flight integrals into Knative's time-weighted buckets, all fed to the crate's
/// [`MetricPipeline`]. No clock: times are since the controller started, so a recorded stream of
/// scrapes can be replayed (the differential test against the simulator does).
#[derive(Debug)]
pub struct ScrapeReadings {
    pipeline: MetricPipeline,
    every: Duration,
    pods: HashMap<String, PodCounters>,
    /// Rounds not fed to the pipeline yet (a tick feeds those taken before it).
    unsettled: VecDeque<Scraped>,
    previous_at: Duration,
}

impl ScrapeReadings {
    /// Readings for `spec`, scraped every `every`, the windowed metric missing when the newest
    /// round is older than `stale_after`.
    pub fn new(spec: MetricSpec, every: Duration, stale_after: Duration) -> Self {
        Self {
            pipeline: MetricPipeline::new(spec)
                .with_sample_interval(every)
                .with_stale_after(stale_after),
            every,
            pods: HashMap::new(),
            unsettled: VecDeque::new(),
            previous_at: Duration::ZERO,
        }
    }

    /// Record one round of scrapes taken at `at`: each pod's answer, `None` when its scrape
    /// failed. Pods not seen for five rounds are forgotten and their slots reused.
    pub fn record(&mut self, at: Duration, mut answers: Vec<(String, Option<PodScrape>)>) {
        let time_weighted = self.pipeline.wants_time_average();
        let mut total: Option<f64> = None;
        let mut weighted: Option<f64> = None;
        let mut samples = Vec::new();
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        for (url, answer) in answers {
            let slot = match self.pods.get(&url) {
                Some(c) => c.slot,
                None => (0..)
                    .find(|i| self.pods.values().all(|c| c.slot != *i))
                    .unwrap_or(0),
            };
            let c = self.pods.entry(url).or_insert_with(|| PodCounters {
                slot,
                first_seen: at,
                last_seen: at,
                ready: false,
                requests: None,
                area_at: None,
                vllm_tokens: TokenCounters::default(),
            });
            c.last_seen = at;
            let p = answer.unwrap_or(PodScrape {
                in_flight: None,
                requests: None,
                in_flight_seconds: None,
                ready: c.ready,
                vllm: VllmScrape::default(),
            });
            c.ready = p.ready;
            if let Some(area) = p.in_flight_seconds {
                // A pod seen for the first time counts from the previous round; its integral
                // starts at 0.
                let (since, before) = c.area_at.unwrap_or((self.previous_at, 0.0));
                let dt = at.saturating_sub(since).as_secs_f64();
                if time_weighted && dt > 0.0 {
                    *weighted.get_or_insert(0.0) += (area - before).max(0.0) / dt;
                }
                c.area_at = Some((at, area));
            }
            if let Some(v) = p.in_flight {
                *total.get_or_insert(0.0) += v;
            }
            let arrivals = match (c.requests, p.requests) {
                (Some(before), Some(now)) => (now - before).max(0.0),
                _ => 0.0,
            };
            if p.requests.is_some() {
                c.requests = p.requests;
            }
            let llm = p.vllm.signals(&mut c.vllm_tokens);
            // A vLLM server exports no in-flight gauge: its requests in the server are the
            // running batch plus the waiting queue.
            let llm_in_flight = p.vllm.reported().then_some(llm.running + llm.waiting);
            let in_flight = p.in_flight.or(llm_in_flight);
            samples.push((
                c.slot,
                PodSample {
                    ready: c.ready,
                    reported: in_flight.is_some(),
                    in_flight: in_flight.unwrap_or(0.0),
                    busy_fraction: 0.0,
                    arrivals,
                    age: at.saturating_sub(c.first_seen),
                    llm,
                },
            ));
        }
        self.previous_at = at;
        self.unsettled.push_back(Scraped {
            at,
            total: weighted.or(total),
            pods: samples,
        });
        let keep = self.every * 5;
        self.pods
            .retain(|_, c| at.saturating_sub(c.last_seen) < keep);
    }

    /// The reading at a tick at `now`: the rounds taken before it are fed to the pipeline, the
    /// per-pod period is closed. The round due at this very instant is left out whether or not it
    /// has finished: in the simulator a policy tick runs before the scrape of the same second, so
    /// both read the same samples.
    pub fn reading(&mut self, now: Duration) -> Reading {
        let settled = now.saturating_sub(self.every / 2);
        while self.unsettled.front().is_some_and(|x| x.at <= settled) {
            let Some(x) = self.unsettled.pop_front() else {
                break;
            };
            self.pipeline.sample(x.at, x.total, &x.pods);
        }
        self.pipeline.sync(now);
        self.pipeline.reading(now)
    }
}

#[derive(Debug)]
struct ScrapeState {
    start: Instant,
    readings: ScrapeReadings,
}

/// Scrapes pods directly and feeds the scrapes to the policy's metric pipeline.
pub struct ScrapeSource {
    state: Arc<Mutex<ScrapeState>>,
    task: tokio::task::JoinHandle<()>,
}

/// One pod's scrape: (in-flight, request counter, ready).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodScrape {
    /// Sum of the in-flight gauge's series for the API.
    pub in_flight: Option<f64>,
    /// Sum of the request counter's series.
    pub requests: Option<f64>,
    /// Sum of the in-flight integral's series, request-seconds.
    pub in_flight_seconds: Option<f64>,
    /// `simctl_replica_ready` (true when absent).
    pub ready: bool,
    /// vLLM's series, where the pod is a vLLM server.
    pub vllm: VllmScrape,
}

/// Why one pod's scrape failed: logged at debug level, and the pod counts as unscraped.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The request failed or its body could not be read.
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    /// The pod answered with a non-success status.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// The body is not Prometheus or OpenMetrics text.
    #[error(transparent)]
    Parse(std::io::Error),
}

/// Parse a `/metrics` body (Prometheus or OpenMetrics text) with `prometheus-parse`.
pub fn parse_pod_metrics(body: &str, settings: &ScrapeSettings) -> Result<PodScrape, ScrapeError> {
    let lines = body
        .lines()
        .filter(|l| l.trim() != "# EOF")
        .map(|l| Ok(colon_free(l)));
    let scrape = prometheus_parse::Scrape::parse(lines).map_err(ScrapeError::Parse)?;
    let mut out = PodScrape {
        in_flight: None,
        requests: None,
        in_flight_seconds: None,
        ready: true,
        vllm: VllmScrape::default(),
    };
    let mut vllm = VllmParser::default();
    for s in &scrape.samples {
        if s.labels
            .get("api_name")
            .is_some_and(|a| a != settings.api_name)
        {
            continue;
        }
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        if !plausible(v) {
            continue;
        }
        if s.metric == settings.metric_name {
            *out.in_flight.get_or_insert(0.0) += v;
        } else if s.metric == settings.requests_metric {
            *out.requests.get_or_insert(0.0) += v;
        } else if s.metric == settings.in_flight_seconds_metric {
            *out.in_flight_seconds.get_or_insert(0.0) += v;
        } else if s.metric == "simctl_replica_ready" {
            out.ready = v > 0.0;
        } else {
            vllm.take(&s.metric, v);
        }
    }
    out.vllm = vllm.finish();
    Ok(out)
}

impl ScrapeSource {
    /// Start scraping `targets` for the policy's `spec` (the sampler runs on its own task).
    pub fn start(
        spec: MetricSpec,
        settings: ScrapeSettings,
        targets: Arc<dyn Targets>,
        client: reqwest::Client,
    ) -> Result<Self, ControllerError> {
        let sample = match (&spec, settings.sample_interval) {
            (_, Some(s)) => s,
            (
                MetricSpec::InFlightWindowAverage {
                    sample_interval, ..
                },
                None,
            ) => *sample_interval,
            (MetricSpec::StableAndPanicConcurrency { bucket, .. }, None) => *bucket,
            (MetricSpec::PerPodPeak { .. }, None) => Duration::from_secs(1),
            (MetricSpec::PerPod { kind, .. }, None) => {
                if *kind == PodMetricKind::CpuUtilization {
                    return Err(ControllerError::Config(
                        "the HPA's CPU metric comes from metrics-server, not from the pods' /metrics; use metric = \"concurrency\" or \"rps\", or the Kubernetes HPA itself".into(),
                    ));
                }
                Duration::from_secs(1)
            }
            (MetricSpec::None, None) => Duration::from_secs(1),
        };
        if sample.is_zero() {
            return Err(ControllerError::Config(
                "scrape interval must be positive".into(),
            ));
        }
        let state = Arc::new(Mutex::new(ScrapeState {
            start: Instant::now(),
            readings: ScrapeReadings::new(spec, sample, settings.stale_after),
        }));
        let task = tokio::spawn(sampler(state.clone(), settings, targets, client, sample));
        Ok(Self { state, task })
    }
}

impl Drop for ScrapeSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<ScrapeState>) -> std::sync::MutexGuard<'_, ScrapeState> {
    match state.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

async fn sampler(
    state: Arc<Mutex<ScrapeState>>,
    settings: ScrapeSettings,
    targets: Arc<dyn Targets>,
    client: reqwest::Client,
    every: Duration,
) {
    let start = lock(&state).start;
    let mut ticker = tokio::time::interval_at(start + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let at = Instant::now();
        let list = match targets.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list scrape targets");
                continue;
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for t in list {
            let client = client.clone();
            let settings = settings.clone();
            set.spawn(async move {
                let url = format!("{}/metrics", t.url.trim_end_matches('/'));
                let got = async {
                    let resp = client.get(&url).timeout(settings.timeout).send().await?;
                    if !resp.status().is_success() {
                        return Err(ScrapeError::Status(resp.status()));
                    }
                    let body = resp.text().await?;
                    parse_pod_metrics(&body, &settings)
                }
                .await;
                (t.url, got)
            });
        }
        let mut answers = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((url, got)) = joined else { continue };
            match got {
                Ok(p) => answers.push((url, Some(p))),
                Err(e) => {
                    tracing::debug!(%url, error = %e, "scrape failed");
                    answers.push((url, None));
                }
            }
        }
        let mut s = lock(&state);
        let t = at.duration_since(s.start);
        s.readings.record(t, answers);
    }
}

impl MetricsSource for ScrapeSource {
    fn observe(&mut self, _now: Duration) -> BoxFuture<'_, Result<Reading, SourceError>> {
        Box::pin(async move {
            let mut s = lock(&self.state);
            let t = Instant::now().duration_since(s.start);
            Ok(s.readings.reading(t))
        })
    }
}

/// Largest value any metric read here can take (in-flight requests, requests per second,
/// request counts): beyond it the value is a broken exporter or query, not load.
pub const MAX_PLAUSIBLE_VALUE: f64 = 1e9;

/// Whether a metric value can be real: finite, not negative (every metric read here counts
/// requests), not absurdly large. Others count as no data, so the controller holds — a broken
/// exporter must not scale an API to its maximum or minimum in one tick.
pub fn plausible(v: f64) -> bool {
    (0.0..=MAX_PLAUSIBLE_VALUE).contains(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_arrivals_and_integrals_time_weighted_totals() {
        let secs = Duration::from_secs;
        let scrape = |in_flight, requests, area| {
            Some(PodScrape {
                in_flight: Some(in_flight),
                requests: Some(requests),
                in_flight_seconds: Some(area),
                ready: true,
                vllm: VllmScrape::default(),
            })
        };
        let spec = MetricSpec::StableAndPanicConcurrency {
            bucket: secs(1),
            stable_window: secs(60),
            panic_window: secs(6),
        };
        let mut r = ScrapeReadings::new(spec, secs(1), secs(5));
        r.record(
            secs(1),
            vec![
                ("http://b".into(), scrape(1.0, 4.0, 0.5)),
                ("http://a".into(), scrape(2.0, 10.0, 1.5)),
            ],
        );
        r.record(
            secs(2),
            vec![
                ("http://a".into(), scrape(3.0, 13.0, 4.0)),
                ("http://b".into(), None),
            ],
        );
        let x = &r.unsettled;
        assert_eq!(
            x[0].total,
            Some(2.0),
            "integrals since the previous round, summed"
        );
        assert_eq!(
            x[0].pods[0].1.arrivals, 0.0,
            "a new pod has no previous counter"
        );
        assert_eq!(x[1].total, Some(2.5));
        assert_eq!((x[1].pods[0].0, x[1].pods[1].0), (0, 1), "stable slots");
        assert_eq!(x[1].pods[0].1.arrivals, 3.0);
        assert!(!x[1].pods[1].1.reported, "a failed scrape reports nothing");
        assert_eq!(x[1].pods[0].1.age, secs(1));
        // A tick at 2 s reads the round of 1 s only: the round of its own instant comes after.
        let reading = r.reading(secs(2));
        assert_eq!(reading.panic_metric, Some(2.0));
        assert_eq!(r.reading(secs(3)).panic_metric, Some(2.25));
    }

    #[test]
    fn parses_openmetrics_from_a_replica() {
        let body = "# HELP cortex_in_flight_requests x\n# TYPE cortex_in_flight_requests gauge\n\
cortex_in_flight_requests{api_name=\"model\",replica=\"0\"} 2.5\n\
cortex_in_flight_requests{api_name=\"other\",replica=\"0\"} 9.0\n\
# TYPE simctl_requests counter\n\
simctl_requests_total{api_name=\"model\",replica=\"0\",status=\"200\"} 10\n\
simctl_requests_total{api_name=\"model\",replica=\"0\",status=\"503\"} 2\n\
# TYPE simctl_in_flight_seconds counter\n\
simctl_in_flight_seconds_total{api_name=\"model\",replica=\"0\"} 3.25\n\
simctl_replica_ready{api_name=\"model\",replica=\"0\"} 1\n# EOF\n";
        let p = parse_pod_metrics(body, &ScrapeSettings::new("model")).expect("parses");
        assert_eq!(p.in_flight, Some(2.5));
        assert_eq!(p.requests, Some(12.0));
        assert_eq!(p.in_flight_seconds, Some(3.25));
        assert!(p.ready);
    }
}
