//! The least-request reverse proxy in front of the local replicas (or, for an async API, the
//! gateway of [`super::gateway`]), its activator (requests held
//! while no replica is ready, for APIs that scale to zero) and, for foreign replicas, the
//! exporter of what the proxy measured per replica.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{InFlight, Picked, Pool};

/// How the proxy treats requests it cannot route at once.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// Hold requests while no replica is ready — at most `capacity` at once, each at most
    /// `timeout` — as Knative's activator does for an API scaled to zero; `None` answers 503
    /// at once.
    pub hold: Option<HoldSettings>,
    /// Answer 503 when the least-loaded ready replica already has this many requests in flight:
    /// Cortex's proxy sidecar enforces `max_concurrency + max_queue_length` this way, which a
    /// foreign server does not do itself. `None`: the replicas decide.
    pub replica_limit: Option<u64>,
    /// An async API: the front door is the gateway of [`super::gateway`] (submit, then poll),
    /// and each replica gets dequeuers taking messages from its queue.
    pub queue: Option<super::QueueSettings>,
}

/// The activator's bounds.
#[derive(Debug, Clone, Copy)]
pub struct HoldSettings {
    /// Requests held at once; more are answered 503 (the simulator holds one replica's
    /// capacity, as Knative's activator breaker does).
    pub capacity: u32,
    /// A request held longer is answered 504.
    pub timeout: Duration,
}

#[derive(Clone)]
struct ProxyState {
    pool: Pool,
    client: reqwest::Client,
    settings: Arc<ProxySettings>,
}

pub(super) fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
            | "content-length"
    )
}

/// Takes one of the activator's places; gives it back when the request leaves the activator.
struct Held(Pool);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.shared.activator.change(false);
    }
}

/// Wait for a ready replica, holding the request in the activator.
async fn hold(
    pool: &Pool,
    settings: HoldSettings,
    limit: Option<u64>,
) -> Result<InFlight, Response> {
    let activator = &pool.shared.activator;
    let before = activator.change(true);
    let _held = Held(pool.clone());
    if before >= settings.capacity {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "activator full\n").into_response());
    }
    if before == 0 {
        // The first held request pokes the controller (a stored permit: never missed).
        activator.wake.notify_one();
    }
    let deadline = tokio::time::Instant::now() + settings.timeout;
    loop {
        // Registered before the check, so a replica turning ready in between is not missed.
        let ready = pool.shared.ready.notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        match pool.pick(limit) {
            Picked::Replica(g) => return Ok(g),
            Picked::Full => {
                return Err((StatusCode::SERVICE_UNAVAILABLE, "replica full\n").into_response())
            }
            Picked::None => {}
        }
        // Also look again now and then: readiness can change without a notification (a
        // replica stops draining, or one that was ready comes back).
        let wait = tokio::time::sleep_until(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
        );
        tokio::select! {
            _ = &mut ready => {}
            _ = wait => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err((
                StatusCode::GATEWAY_TIMEOUT,
                "no replica became ready in time\n",
            )
                .into_response());
        }
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let limit = state.settings.replica_limit;
    let guard = match state.pool.pick(limit) {
        Picked::Replica(g) => g,
        Picked::Full => {
            return (StatusCode::SERVICE_UNAVAILABLE, "replica full\n").into_response();
        }
        Picked::None => match state.settings.hold {
            Some(h) => match hold(&state.pool, h, limit).await {
                Ok(g) => g,
                Err(r) => return r,
            },
            None => {
                return (StatusCode::SERVICE_UNAVAILABLE, "no ready replica\n").into_response();
            }
        },
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut req = state
        .client
        .request(parts.method, format!("{}{path}", guard.0.url))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            req = req.header(name, value);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = %guard.0.url, error = %e, "replica did not answer");
            return (StatusCode::BAD_GATEWAY, "replica did not answer\n").into_response();
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let shared = &state.pool.shared;
    shared.responses.fetch_add(1, Ordering::Relaxed);
    if headers.contains_key("x-service-time-ms") {
        shared.service_reported.fetch_add(1, Ordering::Relaxed);
    }
    if headers.contains_key("x-queue-wait-ms") {
        shared.wait_reported.fetch_add(1, Ordering::Relaxed);
    }
    // Stream the answer through as it comes (an LLM replica's server-sent tokens must reach the
    // client one by one); the request counts as in flight on its replica until the last byte.
    let body = futures_util::StreamExt::map(resp.bytes_stream(), move |chunk| {
        let _in_flight = &guard;
        chunk
    });
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

/// Serve the reverse proxy on `listener` until `shutdown`.
pub async fn serve_proxy(
    listener: TcpListener,
    pool: Pool,
    client: reqwest::Client,
    settings: ProxySettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = match settings.queue {
        Some(queue) => {
            let queue = Arc::new(super::gateway::Queue::new(queue, client));
            let _ = pool.shared.queue.set(queue.clone());
            Router::new()
                .fallback(super::gateway::gateway)
                .with_state(super::gateway::GatewayState { pool, queue })
        }
        None => Router::new().fallback(forward).with_state(ProxyState {
            pool,
            client,
            settings: Arc::new(settings),
        }),
    };
    // No Nagle: streamed tokens are small writes that must leave at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// One replica's series as the proxy measured them, in the names `simctl serve` exports, so the
/// scraper and the metric pipeline read a foreign server as they read an emulated one.
async fn replica_metrics(State(pool): State<Pool>, Path(id): Path<u32>) -> Response {
    let Some(b) = pool.backend(id) else {
        return (StatusCode::NOT_FOUND, "no such replica\n").into_response();
    };
    let in_flight = b.in_flight.load(Ordering::SeqCst);
    let body = format!(
        "# HELP simctl_in_flight_requests Requests in flight on the replica, counted by the proxy.\n\
         # TYPE simctl_in_flight_requests gauge\n\
         simctl_in_flight_requests{{replica=\"{id}\"}} {in_flight}\n\
         # HELP cortex_in_flight_requests Mean of the last 10 one-second samples of in flight (Cortex's proxy).\n\
         # TYPE cortex_in_flight_requests gauge\n\
         cortex_in_flight_requests{{replica=\"{id}\"}} {mean}\n\
         # HELP simctl_in_flight_seconds_total Time integral of in flight, request-seconds.\n\
         # TYPE simctl_in_flight_seconds_total counter\n\
         simctl_in_flight_seconds_total{{replica=\"{id}\"}} {area}\n\
         # HELP simctl_requests_total Requests the proxy sent to the replica.\n\
         # TYPE simctl_requests_total counter\n\
         simctl_requests_total{{replica=\"{id}\"}} {requests}\n\
         # TYPE simctl_replica_ready gauge\n\
         simctl_replica_ready{{replica=\"{id}\"}} {ready}\n",
        mean = b.ten_second_mean(),
        area = b.in_flight_seconds(),
        requests = b.requests.load(Ordering::Relaxed),
        ready = u8::from(b.ready.load(Ordering::SeqCst)),
    );
    ([("content-type", "text/plain; version=0.0.4")], body).into_response()
}

/// The activator's held requests in the same names, under `replica="activator"`.
async fn activator_metrics(State(pool): State<Pool>) -> Response {
    let a = &pool.shared.activator;
    let body = format!(
        "# HELP simctl_in_flight_requests Requests the activator holds.\n\
         # TYPE simctl_in_flight_requests gauge\n\
         simctl_in_flight_requests{{replica=\"activator\"}} {held}\n\
         # TYPE cortex_in_flight_requests gauge\n\
         cortex_in_flight_requests{{replica=\"activator\"}} {mean}\n\
         # TYPE simctl_in_flight_seconds_total counter\n\
         simctl_in_flight_seconds_total{{replica=\"activator\"}} {area}\n",
        held = a.held(),
        mean = a.ten_second_mean(),
        area = a.in_flight_seconds(),
    );
    ([("content-type", "text/plain; version=0.0.4")], body).into_response()
}

/// What the exporter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// `/replicas/{id}/metrics`: the replicas are scraped here (foreign servers).
    pub replicas: bool,
    /// `/activator/metrics`: the held requests count in the API's in flight (policies on the
    /// total in flight; per-pod metrics leave it out, as the simulator does).
    pub activator: bool,
}

/// Serve `/replicas/{id}/metrics` and `/activator/metrics` on `listener` until `shutdown`; from
/// this call on (not the future's first poll, so the scraper never sees the replicas' own URLs)
/// the pool lists what `exported` says as its scrape targets.
pub fn serve_exporter(
    listener: TcpListener,
    pool: Pool,
    exported: Exported,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let addr = listener.local_addr()?;
    if exported.replicas {
        let _ = pool.shared.exporter.set(format!("http://{addr}"));
    }
    if exported.activator {
        let _ = pool
            .shared
            .activator_target
            .set(format!("http://{addr}/activator"));
    }
    let app = Router::new()
        .route("/replicas/{id}/metrics", get(replica_metrics))
        .route("/activator/metrics", get(activator_metrics))
        .with_state(pool);
    Ok(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    })
}
