//! The local actuator: replicas are `simctl serve` processes on 127.0.0.1 behind a small
//! least-request reverse proxy, so the whole loop (load → metrics → policy → replicas) runs on one
//! machine without a cluster.
//!
//! The proxy only routes to ready replicas (it polls each one's `/healthz`), answers 503 when
//! none is ready, and drains a replica before stopping it: a replica chosen for removal gets no
//! new request and is stopped once its in-flight requests have finished, so scaling down loses
//! nothing.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::actuator::{Actuator, ActuatorError, ReplicaCount};
use super::source::{Target, Targets};
use super::{BoxFuture, SourceError};

/// How to start and watch local replicas.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// The program to run (`simctl`, i.e. the current executable).
    pub program: PathBuf,
    /// Its arguments (`serve SCENARIO --api NAME`); `--replicas 1 --port 0 --host 127.0.0.1
    /// --first-index K` is appended, K counting the replicas started so far.
    pub args: Vec<String>,
    /// How long a replica may take to print its address.
    pub start_timeout: Duration,
    /// How often `/healthz` is polled.
    pub health_interval: Duration,
    /// Longest wait for a removed replica's in-flight requests before it is stopped anyway.
    pub drain_timeout: Duration,
}

impl LocalSettings {
    /// Defaults for running `program args…`.
    pub fn new(program: PathBuf, args: Vec<String>) -> Self {
        Self {
            program,
            args,
            start_timeout: Duration::from_secs(10),
            health_interval: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// One local replica.
struct Backend {
    url: String,
    ready: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicU64,
    child: Mutex<Option<Child>>,
}

/// The replicas the proxy routes to (shared by the actuator, the proxy and the scraper).
#[derive(Clone, Default)]
pub struct Pool {
    backends: Arc<RwLock<Vec<Arc<Backend>>>>,
    next: Arc<AtomicUsize>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match l.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Decrements a backend's in-flight count when the proxied request ends, however it ends.
struct InFlight(Arc<Backend>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    /// The ready replica with the fewest requests in flight, ties broken round robin — the
    /// simulator's routing — counted in flight (under the lock, so a replica marked draining
    /// never gets a request after its drain began).
    fn pick(&self) -> Option<InFlight> {
        let backends = read(&self.backends);
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(&Arc<Backend>, u64)> = None;
        for i in 0..n {
            let b = &backends[(start + i) % n];
            if b.ready.load(Ordering::SeqCst) && !b.draining.load(Ordering::SeqCst) {
                let load = b.in_flight.load(Ordering::SeqCst);
                if best.is_none_or(|(_, l)| load < l) {
                    best = Some((b, load));
                }
            }
        }
        let (b, _) = best?;
        b.in_flight.fetch_add(1, Ordering::SeqCst);
        Some(InFlight(b.clone()))
    }

    /// (replicas not draining, ready among them): what a Deployment's `spec.replicas` and
    /// `status.readyReplicas` would say.
    pub fn counts(&self) -> (u32, u32) {
        let backends = read(&self.backends);
        let active = backends
            .iter()
            .filter(|b| !b.draining.load(Ordering::SeqCst));
        let (mut spec, mut ready) = (0u32, 0u32);
        for b in active {
            spec += 1;
            if b.ready.load(Ordering::SeqCst) {
                ready += 1;
            }
        }
        (spec, ready)
    }

    /// Base URLs of every replica (draining ones included: their requests are still in flight).
    pub fn urls(&self) -> Vec<String> {
        read(&self.backends).iter().map(|b| b.url.clone()).collect()
    }
}

impl Targets for Pool {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Target>, SourceError>> {
        let urls = self.urls();
        Box::pin(async move { Ok(urls.into_iter().map(|url| Target { url }).collect()) })
    }
}

/// Starts and stops `simctl serve` processes.
pub struct LocalReplicas {
    pool: Pool,
    settings: LocalSettings,
    desired: u32,
    started: u32,
    health: tokio::task::JoinHandle<()>,
}

impl LocalReplicas {
    /// No replica yet; the controller sets the initial count.
    pub fn new(settings: LocalSettings, client: reqwest::Client) -> Self {
        let pool = Pool::default();
        let health = tokio::spawn(health_loop(pool.clone(), client, settings.health_interval));
        Self {
            pool,
            settings,
            desired: 0,
            started: 0,
            health,
        }
    }

    /// The pool, for the proxy and the scraper.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    async fn start_one(&mut self) -> Result<Arc<Backend>, ActuatorError> {
        let index = self.started;
        self.started += 1;
        let mut child = Command::new(&self.settings.program)
            .args(&self.settings.args)
            .args(["--replicas", "1", "--port", "0", "--host", "127.0.0.1"])
            .args(["--first-index", &index.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ActuatorError::Local(format!(
                    "cannot start {}: {e}",
                    self.settings.program.display()
                ))
            })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(ActuatorError::Local("no stdout from the replica".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(self.settings.start_timeout, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("http://") {
                    if let Some(url) = line[at..].split_whitespace().next() {
                        return Some(url.to_string());
                    }
                }
            }
            None
        })
        .await;
        let url = match url {
            Ok(Some(url)) => url,
            Ok(None) => {
                return Err(ActuatorError::Local(
                    "the replica exited before printing its address".into(),
                ))
            }
            Err(_) => {
                return Err(ActuatorError::Local(format!(
                    "the replica did not print its address within {:?}",
                    self.settings.start_timeout
                )))
            }
        };
        // Keep draining stdout so the replica never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tracing::info!(%url, "replica started");
        Ok(Arc::new(Backend {
            url,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            child: Mutex::new(Some(child)),
        }))
    }

    /// Start or drain replicas until `desired` are running.
    async fn reconcile(&mut self) -> Result<(), ActuatorError> {
        let (running, _) = self.pool.counts();
        if running < self.desired {
            let mut started = Vec::new();
            let mut failed = None;
            for _ in running..self.desired {
                match self.start_one().await {
                    Ok(b) => started.push(b),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            write(&self.pool.backends).extend(started);
            if let Some(e) = failed {
                return Err(e);
            }
        } else if running > self.desired {
            let excess = (running - self.desired) as usize;
            let chosen: Vec<Arc<Backend>> = {
                let backends = write(&self.pool.backends);
                let mut active: Vec<&Arc<Backend>> = backends
                    .iter()
                    .filter(|b| !b.draining.load(Ordering::SeqCst))
                    .collect();
                // Remove replicas that are not ready first, then the newest.
                active.sort_by_key(|b| b.ready.load(Ordering::SeqCst));
                let chosen: Vec<Arc<Backend>> =
                    active.iter().take(excess).map(|b| Arc::clone(b)).collect();
                for b in &chosen {
                    b.draining.store(true, Ordering::SeqCst);
                }
                chosen
            };
            for b in chosen {
                tokio::spawn(drain(self.pool.clone(), b, self.settings.drain_timeout));
            }
        }
        Ok(())
    }
}

/// Wait for a removed replica's requests to finish, then stop it.
async fn drain(pool: Pool, backend: Arc<Backend>, timeout: Duration) {
    let until = tokio::time::Instant::now() + timeout;
    while backend.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let child = match backend.child.lock() {
        Ok(mut c) => c.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(mut child) = child {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    write(&pool.backends).retain(|b| !Arc::ptr_eq(b, &backend));
    tracing::info!(url = %backend.url, "replica stopped");
}

/// Poll `/healthz` of every replica; forget replicas whose process exited.
async fn health_loop(pool: Pool, client: reqwest::Client, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let backends: Vec<Arc<Backend>> = read(&pool.backends).clone();
        for b in backends {
            let exited = match b.child.lock() {
                Ok(mut c) => c
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_)))),
                Err(_) => false,
            };
            if exited && !b.draining.load(Ordering::SeqCst) {
                tracing::warn!(url = %b.url, "replica exited");
                b.ready.store(false, Ordering::SeqCst);
                write(&pool.backends).retain(|x| !Arc::ptr_eq(x, &b));
                continue;
            }
            if b.draining.load(Ordering::SeqCst) {
                continue;
            }
            let ok = client
                .get(format!("{}/healthz", b.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok != b.ready.swap(ok, Ordering::SeqCst) {
                tracing::info!(url = %b.url, ready = ok, "replica readiness changed");
            }
        }
    }
}

impl Actuator for LocalReplicas {
    fn name(&self) -> &'static str {
        "local"
    }

    fn current(&mut self) -> BoxFuture<'_, Result<ReplicaCount, ActuatorError>> {
        Box::pin(async move {
            // Like a ReplicaSet, replace replicas that died.
            self.reconcile().await?;
            let (_, ready) = self.pool.counts();
            Ok(ReplicaCount {
                spec: self.desired,
                ready,
            })
        })
    }

    fn scale(&mut self, replicas: u32) -> BoxFuture<'_, Result<(), ActuatorError>> {
        Box::pin(async move {
            self.desired = replicas;
            self.reconcile().await
        })
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.health.abort();
            let backends: Vec<Arc<Backend>> = std::mem::take(&mut *write(&self.pool.backends));
            for b in backends {
                let child = match b.child.lock() {
                    Ok(mut c) => c.take(),
                    Err(p) => p.into_inner().take(),
                };
                if let Some(mut child) = child {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
        })
    }
}

impl Drop for LocalReplicas {
    fn drop(&mut self) {
        self.health.abort();
    }
}

#[derive(Clone)]
struct ProxyState {
    pool: Pool,
    client: reqwest::Client,
}

fn hop_by_hop(name: &HeaderName) -> bool {
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

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let Some(guard) = state.pool.pick() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no ready replica\n").into_response();
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
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(forward)
        .with_state(ProxyState { pool, client });
    // No Nagle: streamed tokens are small writes that must leave at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
