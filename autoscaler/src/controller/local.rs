//! The local actuator: replicas on 127.0.0.1 behind a small least-request reverse proxy, so the
//! whole loop (load → metrics → policy → replicas) runs on one machine without a cluster. The
//! replicas are `simctl serve` processes or, with a [`ReplicaCommand`], the user's own server.
//!
//! The proxy only routes to ready replicas (it polls each one's readiness path), and drains a
//! replica before stopping it: a replica chosen for removal gets no new request and is stopped
//! once its in-flight requests have finished, so scaling down loses nothing. With no ready
//! replica it answers 503 — or, for an API that scales to zero, holds the request as Knative's
//! activator does ([`ProxySettings::hold`]) and wakes the controller.
//!
//! A foreign server exports no `simctl_*` metrics, so for those replicas the proxy exports what
//! it sees from outside — in flight per replica (Cortex's proxy counted the same way), its
//! time integral and a request counter — and the scraper reads those ([`Pool`] lists the
//! exporter's per-replica URLs).

mod foreign;
mod gateway;
mod proxy;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::actuator::{Actuator, ActuatorError, ReplicaCount};
use super::source::{Target, Targets};
use super::{BoxFuture, SourceError};

pub use foreign::ReplicaCommand;
pub use gateway::QueueSettings;
pub use proxy::{serve_exporter, serve_proxy, Exported, HoldSettings, ProxySettings};

/// What the replicas are.
#[derive(Debug, Clone)]
pub enum Launch {
    /// `program args… --replicas 1 --port 0 --host 127.0.0.1 --first-index K` (`simctl serve`),
    /// which prints its address and serves `/healthz` and `/metrics`.
    Simctl {
        /// The program (`simctl`, i.e. the current executable).
        program: PathBuf,
        /// Its arguments (`serve SCENARIO --api NAME`).
        args: Vec<String>,
    },
    /// The user's own server, started from a command template.
    Command(ReplicaCommand),
}

/// How to start and watch local replicas.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// What to start.
    pub launch: Launch,
    /// How long a `simctl serve` replica may take to print its address.
    pub start_timeout: Duration,
    /// How often the readiness path is polled.
    pub health_interval: Duration,
    /// Longest wait for a removed replica's in-flight requests before it is stopped anyway.
    pub drain_timeout: Duration,
    /// Between SIGTERM and SIGKILL when a foreign replica's process group is stopped.
    pub stop_grace: Duration,
}

impl LocalSettings {
    /// Defaults for running `program args…` (`simctl serve`).
    pub fn new(program: PathBuf, args: Vec<String>) -> Self {
        Self::launching(Launch::Simctl { program, args })
    }

    /// Defaults for `launch`.
    pub fn launching(launch: Launch) -> Self {
        Self {
            launch,
            start_timeout: Duration::from_secs(10),
            health_interval: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(3),
        }
    }
}

/// In flight on one replica as the proxy counts it, with its time integral (request-seconds)
/// and Cortex's 10 s mean of 1 s samples — the series a `simctl serve` replica exports itself.
#[derive(Debug)]
struct Area {
    at: Instant,
    seconds: f64,
    samples: VecDeque<u64>,
}

impl Area {
    /// Keep `n` as the newest of the last ten 1 s samples.
    fn sample(&mut self, n: u64) {
        if self.samples.len() == 10 {
            self.samples.pop_front();
        }
        self.samples.push_back(n);
    }

    /// Cortex's 10 s mean: the mean of the samples kept (0 before the first).
    fn ten_second_mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().sum::<u64>() as f64 / self.samples.len() as f64
    }
}

/// One local replica.
struct Backend {
    /// Its number, in start order (`{index}`; the exporter's path).
    id: u32,
    url: String,
    /// Path polled for readiness.
    health_path: String,
    ready: AtomicBool,
    /// Became ready at least once (a replica that dies before is a failed start).
    was_ready: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicU64,
    requests: AtomicU64,
    area: Mutex<Area>,
    child: Mutex<Option<Child>>,
    /// Foreign replicas: their command line and last output lines, for errors.
    foreign: Option<(String, foreign::Tail)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Backend {
    fn new(id: u32, url: String, health_path: String, child: Child) -> Self {
        let b = Self::attached(id, url, health_path);
        *lock(&b.child) = Some(child);
        b
    }

    /// A replica this process does not own (served in-process or elsewhere).
    fn attached(id: u32, url: String, health_path: String) -> Self {
        Backend {
            id,
            url,
            health_path,
            ready: AtomicBool::new(false),
            was_ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            area: Mutex::new(Area {
                at: Instant::now(),
                seconds: 0.0,
                samples: VecDeque::new(),
            }),
            child: Mutex::new(None),
            foreign: None,
        }
    }

    /// Change in flight by one, first adding the time since the last change to the integral.
    fn add(&self, up: bool) {
        let mut a = lock(&self.area);
        let now = Instant::now();
        let n = self.in_flight.load(Ordering::SeqCst);
        a.seconds += n as f64 * now.saturating_duration_since(a.at).as_secs_f64();
        a.at = now;
        if up {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            self.requests.fetch_add(1, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The integral up to now.
    fn in_flight_seconds(&self) -> f64 {
        let a = lock(&self.area);
        a.seconds
            + self.in_flight.load(Ordering::SeqCst) as f64
                * Instant::now().saturating_duration_since(a.at).as_secs_f64()
    }

    /// Take the 1 s sample of Cortex's 10 s mean.
    fn sample(&self) {
        lock(&self.area).sample(self.in_flight.load(Ordering::SeqCst));
    }

    fn ten_second_mean(&self) -> f64 {
        lock(&self.area).ten_second_mean()
    }

    /// The replica's process exited: a failed start when it was never ready.
    fn exited(&self) -> Option<String> {
        let mut c = lock(&self.child);
        let status = c.as_mut().and_then(|c| c.try_wait().ok().flatten())?;
        let what = match &self.foreign {
            Some((line, tail)) => {
                let out = tail.text();
                let out = if out.is_empty() {
                    "(it printed nothing)".to_string()
                } else {
                    format!("its last output:\n{out}")
                };
                format!("replica {} (`{line}`) exited with {status}; {out}", self.id)
            }
            None => format!("replica {} exited with {status}", self.id),
        };
        Some(what)
    }
}

/// Requests the proxy holds while no replica is ready, shared with the controller: the count is
/// the activator's `waiting_requests`, and the first held request wakes the controller at once
/// (as Knative's activator pokes the autoscaler) instead of at its next tick.
#[derive(Clone)]
pub struct Activator {
    held: Arc<AtomicU32>,
    wake: Arc<Notify>,
    /// The held requests' time integral and 1 s samples, exported like a replica's in flight.
    area: Arc<Mutex<Area>>,
}

impl Default for Activator {
    fn default() -> Self {
        Activator {
            held: Arc::default(),
            wake: Arc::default(),
            area: Arc::new(Mutex::new(Area {
                at: Instant::now(),
                seconds: 0.0,
                samples: VecDeque::new(),
            })),
        }
    }
}

impl Activator {
    /// Hold one more request (`up`) or one fewer; the count before.
    fn change(&self, up: bool) -> u32 {
        let mut a = lock(&self.area);
        let now = Instant::now();
        let n = self.held.load(Ordering::SeqCst);
        a.seconds += f64::from(n) * now.saturating_duration_since(a.at).as_secs_f64();
        a.at = now;
        if up {
            self.held.fetch_add(1, Ordering::SeqCst)
        } else {
            self.held.fetch_sub(1, Ordering::SeqCst)
        }
    }

    fn in_flight_seconds(&self) -> f64 {
        let a = lock(&self.area);
        a.seconds
            + f64::from(self.held()) * Instant::now().saturating_duration_since(a.at).as_secs_f64()
    }

    fn sample(&self) {
        let n = u64::from(self.held());
        lock(&self.area).sample(n);
    }

    fn ten_second_mean(&self) -> f64 {
        lock(&self.area).ten_second_mean()
    }

    /// Requests held now.
    pub fn held(&self) -> u32 {
        self.held.load(Ordering::SeqCst)
    }

    /// Resolves when a request is held while none was.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// What the foreign replicas' answers carried: responses, and those with the service time
/// (`x-service-time-ms`) and queue wait (`x-queue-wait-ms`) headers `simctl serve` sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// Answers from a replica.
    pub responses: u64,
    /// … with `x-service-time-ms`.
    pub service_time: u64,
    /// … with `x-queue-wait-ms`.
    pub queue_wait: u64,
}

#[derive(Default)]
struct Shared {
    /// A replica turned ready (wakes held requests).
    ready: Notify,
    activator: Activator,
    /// Base URL of the metrics exporter, when foreign replicas are scraped through it.
    exporter: OnceLock<String>,
    /// The activator's metrics URL, when its held requests count in the API's in flight.
    activator_target: OnceLock<String>,
    /// An async API's queue, whose dequeuers feed the replicas.
    queue: OnceLock<Arc<gateway::Queue>>,
    /// The first failed start (a replica that exited before it was ever ready).
    failure: Mutex<Option<String>>,
    responses: AtomicU64,
    service_reported: AtomicU64,
    wait_reported: AtomicU64,
}

/// The replicas the proxy routes to (shared by the actuator, the proxy and the scraper).
#[derive(Clone, Default)]
pub struct Pool {
    backends: Arc<RwLock<Vec<Arc<Backend>>>>,
    next: Arc<AtomicUsize>,
    shared: Arc<Shared>,
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
        self.0.add(false);
    }
}

/// What [`Pool::pick`] found.
enum Picked {
    Replica(InFlight),
    /// Every ready replica is at the limit.
    Full,
    /// No ready replica.
    None,
}

impl Pool {
    /// The ready replica with the fewest requests in flight, ties broken round robin — the
    /// simulator's routing — counted in flight (under the lock, so a replica marked draining
    /// never gets a request after its drain began). With a `limit`, a replica already holding
    /// that many is full (Cortex's proxy answers 503 beyond `max_concurrency +
    /// max_queue_length`).
    fn pick(&self, limit: Option<u64>) -> Picked {
        let backends = read(&self.backends);
        let n = backends.len();
        if n == 0 {
            return Picked::None;
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
        let Some((b, load)) = best else {
            return Picked::None;
        };
        if limit.is_some_and(|l| load >= l) {
            return Picked::Full;
        }
        b.add(true);
        Picked::Replica(InFlight(b.clone()))
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

    /// The activator's held requests and wake-up, for the controller.
    pub fn activator(&self) -> Activator {
        self.shared.activator.clone()
    }

    /// The first failed start: a replica that exited before it was ever ready, with its command
    /// and last output lines.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.failure).clone()
    }

    /// What the replicas' answers reported about their insides.
    pub fn reported(&self) -> Reported {
        Reported {
            responses: self.shared.responses.load(Ordering::Relaxed),
            service_time: self.shared.service_reported.load(Ordering::Relaxed),
            queue_wait: self.shared.wait_reported.load(Ordering::Relaxed),
        }
    }

    fn backend(&self, id: u32) -> Option<Arc<Backend>> {
        read(&self.backends).iter().find(|b| b.id == id).cloned()
    }
}

impl Targets for Pool {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Target>, SourceError>> {
        // Foreign replicas are scraped at the exporter, which reports what the proxy measured.
        let mut targets = match self.shared.exporter.get() {
            Some(base) => read(&self.backends)
                .iter()
                .map(|b| Target {
                    url: format!("{base}/replicas/{}", b.id),
                })
                .collect(),
            None => self
                .urls()
                .into_iter()
                .map(|url| Target { url })
                .collect::<Vec<_>>(),
        };
        // Requests the activator holds are in flight for the API, as Knative's activator and
        // Cortex's report them (and as the simulator counts them).
        if let Some(url) = self.shared.activator_target.get() {
            targets.push(Target { url: url.clone() });
        }
        Box::pin(async move { Ok(targets) })
    }
}

/// Starts and stops replicas.
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
        let (program, args) = match &self.settings.launch {
            Launch::Simctl { program, args } => (program.clone(), args.clone()),
            Launch::Command(cmd) => {
                let s = foreign::start(cmd, index)?;
                let mut b = Backend::new(index, s.url, cmd.readiness_path.clone(), s.child);
                b.foreign = Some((s.command, s.tail));
                return Ok(Arc::new(b));
            }
        };
        let mut child = Command::new(&program)
            .args(&args)
            .args(["--replicas", "1", "--port", "0", "--host", "127.0.0.1"])
            .args(["--first-index", &index.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ActuatorError::Local(format!("cannot start {}: {e}", program.display()))
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
        Ok(Arc::new(Backend::new(index, url, "/healthz".into(), child)))
    }

    /// Start or drain replicas until `desired` are running.
    async fn reconcile(&mut self) -> Result<(), ActuatorError> {
        let (running, _) = self.pool.counts();
        if running < self.desired {
            // A command that died before it was ever ready is not restarted over and over.
            if let Some(failure) = self.pool.failure() {
                return Err(ActuatorError::Local(failure));
            }
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
                tokio::spawn(drain(
                    self.pool.clone(),
                    b,
                    self.settings.drain_timeout,
                    self.settings.stop_grace,
                ));
            }
        }
        Ok(())
    }
}

/// Stop a replica's process: the whole process group of a foreign one.
async fn stop_child(backend: &Backend, grace: Duration) {
    let child = lock(&backend.child).take();
    if let Some(mut child) = child {
        if backend.foreign.is_some() {
            foreign::stop(child, grace).await;
        } else {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Wait for a removed replica's requests to finish, then stop it.
async fn drain(pool: Pool, backend: Arc<Backend>, timeout: Duration, grace: Duration) {
    if let Some(queue) = pool.shared.queue.get() {
        // No dequeuer takes a message for it from here on.
        queue.barrier();
    }
    let until = tokio::time::Instant::now() + timeout;
    while backend.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_child(&backend, grace).await;
    write(&pool.backends).retain(|b| !Arc::ptr_eq(b, &backend));
    tracing::info!(url = %backend.url, "replica stopped");
}

/// Poll the readiness path of every replica; forget replicas whose process exited (remembering
/// the first that never became ready: a command that fails to start). Every second, take the
/// in-flight sample of Cortex's 10 s mean.
async fn health_loop(pool: Pool, client: reqwest::Client, every: Duration) {
    let mut sampled = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let backends: Vec<Arc<Backend>> = read(&pool.backends).clone();
        if sampled.elapsed() >= Duration::from_secs(1) {
            sampled += Duration::from_secs(1);
            for b in &backends {
                b.sample();
            }
            pool.shared.activator.sample();
        }
        for b in backends {
            if b.draining.load(Ordering::SeqCst) {
                continue;
            }
            if let Some(why) = b.exited() {
                b.ready.store(false, Ordering::SeqCst);
                // Its dequeuers, if any, stop.
                b.draining.store(true, Ordering::SeqCst);
                write(&pool.backends).retain(|x| !Arc::ptr_eq(x, &b));
                if b.was_ready.load(Ordering::SeqCst) {
                    tracing::warn!(url = %b.url, "{why}");
                } else {
                    tracing::error!(url = %b.url, "failed to start: {why}");
                    lock(&pool.shared.failure).get_or_insert(why);
                }
                continue;
            }
            let ok = client
                .get(format!("{}{}", b.url, b.health_path))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok != b.ready.swap(ok, Ordering::SeqCst) {
                tracing::info!(url = %b.url, ready = ok, "replica readiness changed");
                if ok {
                    let first = !b.was_ready.swap(true, Ordering::SeqCst);
                    if let (true, Some(queue)) = (first, pool.shared.queue.get()) {
                        queue.start_workers(&pool, &b);
                    }
                    pool.shared.ready.notify_waiters();
                }
            }
        }
    }
}

/// An async API's gateway on `listener` in front of replicas already running at `urls` (their
/// readiness at `/healthz`), until `shutdown`: `simctl serve --gateway`.
pub async fn serve_gateway(
    listener: tokio::net::TcpListener,
    urls: Vec<String>,
    queue: QueueSettings,
    client: reqwest::Client,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pool = Pool::default();
    write(&pool.backends).extend(
        urls.into_iter()
            .enumerate()
            .map(|(i, url)| Arc::new(Backend::attached(i as u32, url, "/healthz".into()))),
    );
    let health = tokio::spawn(health_loop(
        pool.clone(),
        client.clone(),
        Duration::from_millis(100),
    ));
    let settings = ProxySettings {
        queue: Some(queue),
        ..ProxySettings::default()
    };
    let served = serve_proxy(listener, pool, client, settings, shutdown).await;
    health.abort();
    served
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
            let grace = self.settings.stop_grace;
            futures_util::future::join_all(backends.iter().map(|b| stop_child(b, grace))).await;
        })
    }
}

impl Drop for LocalReplicas {
    /// Last resort (an error or panic skipped [`Actuator::shutdown`]): kill every foreign
    /// replica's process group, since dropping the child only kills its `sh`.
    fn drop(&mut self) {
        self.health.abort();
        #[cfg(unix)]
        for b in read(&self.pool.backends).iter() {
            if b.foreign.is_some() {
                if let Some(pid) = lock(&b.child).as_ref().and_then(Child::id) {
                    foreign::signal_group(pid, libc::SIGKILL);
                }
            }
        }
    }
}
