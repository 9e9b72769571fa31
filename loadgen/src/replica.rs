//! An emulated inference replica (`simctl serve`): the same queueing behaviour the simulator
//! models, over real HTTP, so the load generator, the autoscaler controller and validation have a
//! real target whose truth is known.
//!
//! A replica runs `processes × threads` workers. A request goes to one process uniformly at
//! random, waits in that process's FIFO queue for one of its threads, then "computes" for its
//! service time (a timer: the work costs no CPU, as GPU inference costs the host little). The
//! replica holds at most `processes × threads + max_queue_length` requests; beyond that it
//! answers 503 at once, as Cortex's proxy does. A request whose client leaves still runs to the
//! end, as on a real model server (the client's timeout is the client's business).
//!
//! `/metrics` speaks the Prometheus text format. `cortex_in_flight_requests` is what Cortex's
//! proxy publishes: the in-flight count (executing + queued) sampled every second, averaged and
//! published every 10 s. `simctl_in_flight_requests` is the instantaneous count.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use workload::rng::{stream, Stream};
use workload::service_time::{ServiceSampler, ServiceTime};

pub mod tenants;

use tenants::TenantQueue;
pub use tenants::{TenantPolicy, TenantRule, TENANT_HEADER};

/// Request header (and JSON body field `service_time_ms`) that sets a request's service time,
/// so a load generator can replay the exact service times a simulation drew. The answer carries
/// the same header with the service time the worker measured.
pub const SERVICE_TIME_HEADER: &str = "x-service-time-ms";

/// Response header with the time the request waited in the replica's queue, milliseconds: with
/// the service time it splits a client's latency into queueing, work and everything outside the
/// replica (network, proxies).
pub const QUEUE_WAIT_HEADER: &str = "x-queue-wait-ms";

/// How one emulated replica behaves.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    /// API name, the `api_name` label of every metric.
    pub api_name: String,
    /// Server processes, each with its own queue.
    pub processes: u32,
    /// Workers per process.
    pub threads: u32,
    /// Requests the replica queues beyond its workers before answering 503.
    pub max_queue_length: u32,
    /// Time from start until `/healthz` turns ready and predictions are accepted.
    pub startup_delay: Duration,
    /// Service time of requests that do not set their own.
    pub service_time: ServiceTime,
    /// Seed of the service-time and routing draws (each replica gets its own streams).
    pub seed: u64,
    /// How often the in-flight count is sampled for `cortex_in_flight_requests`.
    pub sample_interval: Duration,
    /// How often the mean of those samples is published.
    pub publish_interval: Duration,
    /// How long a connection may take to send a request's head, and how long an idle
    /// keep-alive connection is kept, before it is closed (idle and slowloris connections
    /// cannot pile up).
    pub idle_timeout: Duration,
    /// Tenants and how the replica shares itself between them (their limits, the queue order);
    /// `None`: anonymous requests in arrival order.
    pub tenants: Option<TenantPolicy>,
}

impl ReplicaSpec {
    /// Requests one replica holds before answering 503.
    pub fn capacity(&self) -> u64 {
        u64::from(self.processes) * u64::from(self.threads) + u64::from(self.max_queue_length)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

struct ReplicaMetrics {
    registry: Registry,
    requests: Family<StatusLabel, Counter>,
    duration_s: Histogram,
    in_flight: Gauge,
    published_in_flight: Gauge<f64, AtomicU64>,
    in_flight_seconds: Counter<f64, AtomicU64>,
    ready: Gauge,
}

impl ReplicaMetrics {
    fn new(api_name: &str, replica: u32) -> Self {
        let labels = [
            ("api_name".into(), api_name.to_string().into()),
            ("replica".into(), replica.to_string().into()),
        ];
        let mut registry = Registry::with_labels(labels.into_iter());
        let requests = Family::<StatusLabel, Counter>::default();
        let duration_s = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let in_flight = Gauge::default();
        let published_in_flight = Gauge::<f64, AtomicU64>::default();
        let in_flight_seconds = Counter::<f64, AtomicU64>::default();
        let ready = Gauge::default();
        registry.register(
            "simctl_requests",
            "Prediction requests answered, by HTTP status",
            requests.clone(),
        );
        registry.register(
            "simctl_request_duration_seconds",
            "Time from arrival to response of served predictions (queue wait + service)",
            duration_s.clone(),
        );
        registry.register(
            "simctl_in_flight_requests",
            "Requests executing or queued right now",
            in_flight.clone(),
        );
        registry.register(
            "cortex_in_flight_requests",
            "Mean in-flight count (executing + queued) over the last publish interval, sampled every second as Cortex's proxy does",
            published_in_flight.clone(),
        );
        registry.register(
            "simctl_in_flight_seconds",
            "Integral of the in-flight count over time: its rate over any interval is the time-weighted mean concurrency, what Knative's queue-proxy reports",
            in_flight_seconds.clone(),
        );
        registry.register(
            "simctl_replica_ready",
            "1 once the startup delay has passed",
            ready.clone(),
        );
        Self {
            registry,
            requests,
            duration_s,
            in_flight,
            published_in_flight,
            in_flight_seconds,
            ready,
        }
    }
}

/// The in-flight count and when it last changed, to integrate it exactly.
struct Occupancy {
    in_flight: u64,
    since: Instant,
}

struct Replica {
    index: u32,
    capacity: u64,
    processes: Vec<Semaphore>,
    /// With tenants: each process's queue ordered between them (instead of `processes`).
    tenant_queues: Vec<TenantQueue>,
    tenants: Option<TenantPolicy>,
    in_flight: AtomicU64,
    occupancy: Mutex<Occupancy>,
    ready: AtomicBool,
    draws: Mutex<Draws>,
    metrics: ReplicaMetrics,
}

struct Draws {
    service: ServiceSampler,
    routing: Stream,
}

impl Replica {
    fn new(spec: &ReplicaSpec, index: u32) -> Self {
        let name = &spec.api_name;
        Self {
            index,
            capacity: spec.capacity(),
            processes: (0..spec.processes.max(1))
                .map(|_| Semaphore::new(spec.threads.max(1) as usize))
                .collect(),
            tenant_queues: match &spec.tenants {
                Some(policy) => (0..spec.processes.max(1))
                    .map(|_| TenantQueue::new(spec.threads, policy.clone()))
                    .collect(),
                None => Vec::new(),
            },
            tenants: spec.tenants.clone(),
            in_flight: AtomicU64::new(0),
            occupancy: Mutex::new(Occupancy {
                in_flight: 0,
                since: Instant::now(),
            }),
            ready: AtomicBool::new(spec.startup_delay.is_zero()),
            draws: Mutex::new(Draws {
                service: ServiceSampler::new(
                    spec.service_time.clone(),
                    stream(spec.seed, &format!("serve/service/{name}/{index}")),
                ),
                routing: stream(spec.seed, &format!("serve/routing/{name}/{index}")),
            }),
            metrics: ReplicaMetrics::new(name, index),
        }
    }

    /// (service time, process) for a request; the lock is held for two draws.
    /// Bring `simctl_in_flight_seconds` up to now, then change the in-flight count by `delta`.
    fn occupy(&self, delta: i64) {
        let mut o = match self.occupancy.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let area = o.in_flight as f64 * now.duration_since(o.since).as_secs_f64();
        if area > 0.0 {
            self.metrics.in_flight_seconds.inc_by(area);
        }
        o.since = now;
        o.in_flight = o.in_flight.saturating_add_signed(delta);
    }

    fn draw(&self, requested: Option<Duration>) -> (Duration, usize) {
        let mut draws = match self.draws.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let sampled = draws.service.sample();
        let service = requested.unwrap_or_else(|| sampled.as_duration());
        let process = if self.processes.len() == 1 {
            0
        } else {
            draws.routing.random_range(0..self.processes.len())
        };
        (service, process)
    }
}

/// Serve one replica on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    spec: ReplicaSpec,
    index: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let replica = Arc::new(Replica::new(&spec, index));
    let idle_timeout = spec.idle_timeout;
    let background = tokio::spawn(background(replica.clone(), spec));
    let app = Router::new()
        .route("/", post(predict))
        .route("/predict", post(predict))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(replica);
    let served = serve_http1(listener, app, idle_timeout, shutdown).await;
    background.abort();
    served
}

/// HTTP/1.1 on `listener`, closing connections that send no request head within
/// `idle_timeout`; on `shutdown`, stop accepting and let the connections finish their requests.
pub(crate) async fn serve_http1(
    listener: TcpListener,
    app: Router,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    // No Nagle: a streamed token is a small write that must leave at once (with
                    // Nagle it waits for the client's delayed ACK, about 40 ms).
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    // Out of file descriptors and the like: wait, do not spin or stop serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        }
    }
    graceful.shutdown().await;
    Ok(())
}

/// The address a listener is bound to, for printing (`http://127.0.0.1:PORT`).
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Startup delay, then the Cortex-style in-flight sampling and publishing.
async fn background(replica: Arc<Replica>, spec: ReplicaSpec) {
    if !spec.startup_delay.is_zero() {
        tokio::time::sleep(spec.startup_delay).await;
        replica.ready.store(true, Ordering::SeqCst);
    }
    replica.metrics.ready.set(1);
    let sample = spec.sample_interval.max(Duration::from_millis(1));
    let per_publish = (spec.publish_interval.as_secs_f64() / sample.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let mut ticker = tokio::time::interval(sample);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sum, mut count) = (0u64, 0u64);
    loop {
        ticker.tick().await;
        sum += replica.in_flight.load(Ordering::SeqCst);
        count += 1;
        if count == per_publish {
            replica
                .metrics
                .published_in_flight
                .set(sum as f64 / count as f64);
            (sum, count) = (0, 0);
        }
    }
}

async fn healthz(State(replica): State<Arc<Replica>>) -> Response {
    if replica.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(replica): State<Arc<Replica>>) -> Response {
    replica.occupy(0);
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &replica.metrics.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Why a request's service time cannot be honoured; the message is the 400 answer's `error`.
#[derive(Debug, thiserror::Error)]
enum BadServiceTime {
    /// The header is not a number.
    #[error("{header} must be a number of milliseconds, found {0:?}", header = SERVICE_TIME_HEADER)]
    NotANumber(String),
    /// Negative, not finite, or a day or more.
    #[error("{header} must be milliseconds in [0, 1 day), found {0}", header = SERVICE_TIME_HEADER)]
    OutOfRange(f64),
}

/// The service time a request asks for: the header, else a `service_time_ms` field of a JSON
/// body. An unreadable header is the client's mistake (400); a body that is not JSON is just a
/// payload.
fn requested_service(headers: &HeaderMap, body: &[u8]) -> Result<Option<Duration>, BadServiceTime> {
    let parse = |ms: f64| {
        if (0.0..86_400_000.0).contains(&ms) {
            Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
        } else {
            Err(BadServiceTime::OutOfRange(ms))
        }
    };
    if let Some(value) = headers.get(SERVICE_TIME_HEADER) {
        let text = value.to_str().unwrap_or("");
        return match text.trim().parse::<f64>() {
            Ok(ms) => parse(ms),
            Err(_) => Err(BadServiceTime::NotANumber(text.to_string())),
        };
    }
    if body.first() == Some(&b'{') {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(ms) = value.get("service_time_ms").and_then(|v| v.as_f64()) {
                return parse(ms);
            }
        }
    }
    Ok(None)
}

fn reject(replica: &Replica, status: StatusCode, message: &str) -> Response {
    replica
        .metrics
        .requests
        .get_or_create(&StatusLabel {
            status: status.as_u16(),
        })
        .inc();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

/// A worker held by a request (given back when dropped): a plain process's permit, or a
/// tenant queue's worker.
enum Held<'a> {
    Plain {
        _permit: tokio::sync::SemaphorePermit<'a>,
    },
    Tenant {
        _worker: tenants::Worker<'a>,
    },
}

/// The status counted for a request dropped because its client went away (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Marks its request's client as gone when dropped armed: the server drops the handler of a
/// request whose connection closed, and the queued work sees the mark.
struct ClientWatch {
    gone: Arc<AtomicBool>,
    armed: bool,
}

impl ClientWatch {
    fn new() -> Self {
        Self {
            gone: Arc::new(AtomicBool::new(false)),
            armed: true,
        }
    }

    /// The answer is on its way: the client did not leave.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ClientWatch {
    fn drop(&mut self) {
        if self.armed {
            self.gone.store(true, Ordering::SeqCst);
        }
    }
}

async fn predict(State(replica): State<Arc<Replica>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = Instant::now();
    if !replica.ready.load(Ordering::SeqCst) {
        return reject(
            &replica,
            StatusCode::SERVICE_UNAVAILABLE,
            "replica is starting",
        );
    }
    let requested = match requested_service(&headers, &body) {
        Ok(requested) => requested,
        Err(e) => return reject(&replica, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // The gateway's per-tenant limits, before the replica's own.
    let tenant = replica.tenants.as_ref().map(|policy| {
        let name = headers.get(&policy.header).and_then(|v| v.to_str().ok());
        policy.tenant_of(name)
    });
    let gate = match (&replica.tenants, tenant) {
        (Some(policy), Some(t)) => match policy.admit(t) {
            Some(guard) => Some(guard),
            None => {
                return reject(
                    &replica,
                    StatusCode::TOO_MANY_REQUESTS,
                    "tenant over its rate or concurrency limit",
                )
            }
        },
        _ => None,
    };
    // Admission: executing + queued may not exceed the capacity — unless, with tenants, the
    // request pushes out a queued one that would start after it.
    let before = replica.in_flight.fetch_add(1, Ordering::SeqCst);
    let mut drawn = None;
    if before >= replica.capacity {
        let pushed = match tenant {
            Some(t) => {
                let (service, process) = replica.draw(requested);
                drawn = Some((service, process));
                replica.tenant_queues[process].push_out(t)
            }
            None => false,
        };
        if !pushed {
            replica.in_flight.fetch_sub(1, Ordering::SeqCst);
            return reject(&replica, StatusCode::SERVICE_UNAVAILABLE, "queue is full");
        }
    }
    replica.metrics.in_flight.set(before as i64 + 1);
    replica.occupy(1);
    let (service, process) = drawn.unwrap_or_else(|| replica.draw(requested));
    // The work runs on its own task so that it finishes even if the client goes away (a server
    // cannot see that mid-request); a request whose client left while it queued is dropped
    // when it reaches a worker, as the simulator drops a queued request past its timeout.
    let watch = ClientWatch::new();
    let client_gone = watch.gone.clone();
    let worker = replica.clone();
    let work = tokio::spawn(async move {
        let _gate = gate;
        let (held, pushed_out) = match tenant {
            Some(t) => match worker.tenant_queues[process].acquire(t).await {
                Ok(w) => (Some(Held::Tenant { _worker: w }), false),
                Err(_) => (None, true),
            },
            None => (
                worker.processes[process]
                    .acquire()
                    .await
                    .ok()
                    .map(|p| Held::Plain { _permit: p }),
                false,
            ),
        };
        let waited = arrived.elapsed();
        if pushed_out {
            // Its place went to a request that starts before it: answered 503.
        } else if client_gone.load(Ordering::SeqCst) {
            worker
                .metrics
                .requests
                .get_or_create(&StatusLabel {
                    status: CLIENT_CLOSED_REQUEST,
                })
                .inc();
        } else if held.is_some() {
            tokio::time::sleep(service).await;
        }
        // What the worker was actually held for (the timer's granularity and wake-up delay
        // included), as a real server would measure its own processing time.
        let served = arrived.elapsed().saturating_sub(waited);
        drop(held);
        let left = worker.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        worker.metrics.in_flight.set(left as i64);
        worker.occupy(-1);
        (waited, served, pushed_out)
    });
    let (waited, served) = match work.await {
        Ok((_, _, true)) => {
            watch.disarm();
            return reject(
                &replica,
                StatusCode::SERVICE_UNAVAILABLE,
                "pushed out of the full queue",
            );
        }
        Ok((waited, served, false)) => (waited, served),
        Err(_) => return reject(&replica, StatusCode::INTERNAL_SERVER_ERROR, "worker failed"),
    };
    watch.disarm();
    let elapsed = arrived.elapsed();
    replica.metrics.duration_s.observe(elapsed.as_secs_f64());
    replica
        .metrics
        .requests
        .get_or_create(&StatusLabel { status: 200 })
        .inc();
    let service_ms = served.as_secs_f64() * 1000.0;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "replica": replica.index,
            "process": process,
            "service_time_ms": service_ms,
            "requested_service_time_ms": service.as_secs_f64() * 1000.0,
            "queue_wait_ms": waited.as_secs_f64() * 1000.0,
        })
        .to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("{service_ms:.3}")) {
        response.headers_mut().insert(SERVICE_TIME_HEADER, value);
    }
    let wait_ms = waited.as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("{wait_ms:.3}")) {
        response.headers_mut().insert(QUEUE_WAIT_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_flight_integral_is_exact_between_changes() {
        let spec = ReplicaSpec {
            api_name: "a".into(),
            processes: 1,
            threads: 1,
            max_queue_length: 0,
            startup_delay: Duration::ZERO,
            service_time: ServiceTime::Constant(workload::SimTime::ZERO),
            seed: 1,
            sample_interval: Duration::from_secs(1),
            publish_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            tenants: None,
        };
        let r = Replica::new(&spec, 0);
        r.occupy(1);
        std::thread::sleep(Duration::from_millis(100));
        r.occupy(1);
        std::thread::sleep(Duration::from_millis(100));
        r.occupy(-2);
        std::thread::sleep(Duration::from_millis(50));
        r.occupy(0);
        // 1 × 0.1 s + 2 × 0.1 s, nothing while empty (sleeps overshoot a little).
        let area = r.metrics.in_flight_seconds.get();
        assert!((0.3..0.33).contains(&area), "{area}");
    }

    #[test]
    fn service_time_comes_from_the_header_then_the_body() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested_service(&headers, b"").unwrap(), None);
        assert_eq!(
            requested_service(&headers, br#"{"service_time_ms": 250}"#).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(requested_service(&headers, b"not json").unwrap(), None);
        headers.insert(SERVICE_TIME_HEADER, HeaderValue::from_static("12.5"));
        assert_eq!(
            requested_service(&headers, br#"{"service_time_ms": 250}"#).unwrap(),
            Some(Duration::from_micros(12_500))
        );
        headers.insert(SERVICE_TIME_HEADER, HeaderValue::from_static("-3"));
        assert!(requested_service(&headers, b"").is_err());
        headers.insert(SERVICE_TIME_HEADER, HeaderValue::from_static("soon"));
        assert!(requested_service(&headers, b"")
            .unwrap_err()
            .to_string()
            .contains("x-service-time-ms must be a number of milliseconds, found \"soon\""));
    }
}
