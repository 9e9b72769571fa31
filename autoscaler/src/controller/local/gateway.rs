//! An async API's front door on 127.0.0.1, as Cortex runs an AsyncAPI: the gateway takes a
//! request, queues it and answers with its id; the replicas' dequeuers take messages from the
//! queue, send each to their replica and store the answer; the client polls for it.
//!
//! The HTTP surface is Cortex's (`pkg/async-gateway/endpoint.go`, `service.go`, `types.go` at
//! cortexlabs/cortex@dc48c02e): `POST` answers `{"id": …}` (the id is the request's
//! `x-request-id`, as Cortex's gateway requires one, or a counter when there is none); `GET
//! /{id}` answers `{"id", "status"}` with `status` one of `in_queue`, `in_progress`,
//! `completed`, `failed`, and for a completed request its `result` (the replica's JSON answer)
//! and `timestamp` (when the result was stored, RFC 3339), or 404 `error: id … not found`. The
//! answer also carries `x-queue-wait-ms` (the message's age when a worker took it) and the
//! replica's `x-service-time-ms`, which a Cortex gateway does not send.
//!
//! Results are kept an hour after they are stored (Cortex keeps them in S3 with no expiry).
//!
//! The dequeuer is Cortex's (`pkg/dequeuer/dequeuer.go`), as the simulator models it: each ready
//! replica gets `processes × threads` workers; a worker that finishes polls at once, an idle one
//! long-polls for `receive_wait` (a message arriving then is taken at once) and, when the poll
//! comes back empty, sleeps `empty_receive_sleep` before the next. The queued messages are the
//! activator's held requests, so the controller reads queue + in process as the API's in flight
//! and the first message at an API scaled to zero wakes it. A message whose replica does not
//! answer (it died) is back in the queue when its visibility timeout ends, as SQS redelivers a
//! message nobody deleted.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use super::proxy::hop_by_hop;
use super::{lock, Backend, InFlight, Pool};

/// How the replicas' dequeuers take messages (`[apis.dequeuer]` of the scenario).
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Workers per replica (`processes_per_replica × threads_per_process`, Cortex's `--workers`).
    pub workers: u32,
    /// An idle worker's long poll.
    pub receive_wait: Duration,
    /// The sleep after a poll that came back empty (0: poll again at once).
    pub empty_receive_sleep: Duration,
}

/// Where one request is.
enum Status {
    InQueue,
    InProgress,
    Done {
        ok: bool,
        result: serde_json::Value,
        at: SystemTime,
    },
}

struct Record {
    status: Status,
    submitted: Instant,
    /// When a worker took it.
    taken: Option<Instant>,
    /// The replica's `x-service-time-ms`.
    service_ms: Option<String>,
}

struct Message {
    id: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// How long a result is kept after it is stored. Cortex keeps results in its S3 bucket with no
/// expiry; an in-memory gateway cannot keep them forever, and an hour outlasts any poll.
const RESULT_RETENTION: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct State_ {
    visible: VecDeque<Message>,
    records: HashMap<String, Record>,
    next_id: u64,
    /// When results past their retention were last dropped.
    pruned: Option<Instant>,
}

impl State_ {
    /// Drop results stored longer than [`RESULT_RETENTION`] ago (at most once a minute).
    fn prune(&mut self) {
        let now = Instant::now();
        if self
            .pruned
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            return;
        }
        self.pruned = Some(now);
        let wall = SystemTime::now();
        self.records.retain(|_, r| match &r.status {
            Status::Done { at, .. } => wall
                .duration_since(*at)
                .map_or(true, |age| age < RESULT_RETENTION),
            _ => true,
        });
    }
}

/// The queue and the result store, shared by the gateway and the dequeuers.
pub(super) struct Queue {
    state: Mutex<State_>,
    /// A message was queued (wakes the workers in a long poll).
    arrived: Notify,
    settings: QueueSettings,
    client: reqwest::Client,
}

impl Queue {
    pub(super) fn new(settings: QueueSettings, client: reqwest::Client) -> Self {
        Queue {
            state: Mutex::new(State_::default()),
            arrived: Notify::new(),
            settings,
            client,
        }
    }

    /// Wait until no worker is between its draining check and counting its message in flight
    /// on `backend`: after this, a replica marked draining gets no new message.
    pub(super) fn barrier(&self) {
        drop(lock(&self.state));
    }

    /// The oldest message for a worker of `backend`, counted in flight on it — unless the
    /// replica is draining or no longer ready.
    fn take(&self, pool: &Pool, backend: &Arc<Backend>) -> Option<(Message, InFlight)> {
        let mut state = lock(&self.state);
        if backend.draining.load(Ordering::SeqCst) || !backend.ready.load(Ordering::SeqCst) {
            return None;
        }
        let message = state.visible.pop_front()?;
        if let Some(r) = state.records.get_mut(&message.id) {
            r.status = Status::InProgress;
            r.taken = Some(Instant::now());
        }
        pool.shared.activator.change(false);
        backend.add(true);
        Some((message, InFlight(backend.clone())))
    }

    /// Start `backend`'s workers (it turned ready for the first time); they pause while it is
    /// not ready and stop when it drains or its process exits.
    pub(super) fn start_workers(self: &Arc<Self>, pool: &Pool, backend: &Arc<Backend>) {
        for _ in 0..self.settings.workers.max(1) {
            tokio::spawn(worker(self.clone(), pool.clone(), backend.clone()));
        }
    }
}

/// One dequeuer worker of one replica (see the module's doc for its poll cycle).
async fn worker(queue: Arc<Queue>, pool: Pool, backend: Arc<Backend>) {
    const CHECK: Duration = Duration::from_millis(50);
    let QueueSettings {
        receive_wait,
        empty_receive_sleep,
        ..
    } = queue.settings;
    let mut idle_since = Instant::now();
    loop {
        if backend.draining.load(Ordering::SeqCst) {
            return;
        }
        if !backend.ready.load(Ordering::SeqCst) {
            tokio::time::sleep(CHECK).await;
            idle_since = Instant::now();
            continue;
        }
        let closes_in =
            match crate::dequeuer_poll(idle_since.elapsed(), receive_wait, empty_receive_sleep) {
                crate::DequeuerPoll::Open { closes_in } => closes_in,
                crate::DequeuerPoll::Asleep { opens_in } => {
                    // Asleep after an empty poll.
                    tokio::time::sleep(opens_in.min(CHECK)).await;
                    continue;
                }
            };
        // The poll is open: take a message, or wait for one until the poll closes.
        let arrived = queue.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        if let Some((message, in_flight)) = queue.take(&pool, &backend) {
            process(&queue, &pool, message, in_flight).await;
            idle_since = Instant::now();
            continue;
        }
        tokio::select! {
            _ = &mut arrived => {}
            _ = tokio::time::sleep(closes_in.min(CHECK)) => {}
        }
    }
}

/// The worker's replica did not answer (it died): the message is visible in the queue again
/// once its visibility timeout ends, as SQS redelivers a message nobody deleted.
fn redeliver(queue: Arc<Queue>, pool: Pool, message: Message) {
    let taken = lock(&queue.state)
        .records
        .get(&message.id)
        .and_then(|r| r.taken)
        .unwrap_or_else(Instant::now);
    let at = taken + crate::message_hidden_for(taken.elapsed());
    // Counted from now, as SQS counts a message not visible, and taken off when a worker takes
    // it again.
    pool.shared.activator.change(true);
    tokio::spawn(async move {
        tokio::time::sleep_until(at.into()).await;
        {
            let mut s = lock(&queue.state);
            if let Some(r) = s.records.get_mut(&message.id) {
                r.status = Status::InQueue;
            }
            s.visible.push_back(message);
        }
        queue.arrived.notify_waiters();
    });
}

/// Send one message to the worker's replica and store its answer.
async fn process(queue: &Arc<Queue>, pool: &Pool, message: Message, in_flight: InFlight) {
    let url = format!("{}{}", in_flight.0.url, message.path);
    let mut request = queue.client.post(url).body(message.body.clone());
    for (name, value) in &message.headers {
        if !hop_by_hop(name) {
            request = request.header(name, value);
        }
    }
    let (ok, result, service_ms) = match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            let service_ms = resp
                .headers()
                .get("x-service-time-ms")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let shared = &pool.shared;
            shared.responses.fetch_add(1, Ordering::Relaxed);
            if service_ms.is_some() {
                shared.service_reported.fetch_add(1, Ordering::Relaxed);
            }
            let body = resp.bytes().await.unwrap_or_default();
            let result = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
            });
            (status.is_success(), result, service_ms)
        }
        Err(e) => {
            tracing::warn!(url = %in_flight.0.url, error = %e, "replica did not answer a queued request: redelivered after its visibility timeout");
            drop(in_flight);
            redeliver(queue.clone(), pool.clone(), message);
            return;
        }
    };
    drop(in_flight);
    let mut state = lock(&queue.state);
    if let Some(r) = state.records.get_mut(&message.id) {
        r.status = Status::Done {
            ok,
            result,
            at: SystemTime::now(),
        };
        r.service_ms = service_ms;
    }
}

#[derive(Clone)]
pub(super) struct GatewayState {
    pub(super) pool: Pool,
    pub(super) queue: Arc<Queue>,
}

fn text(status: StatusCode, message: String) -> Response {
    (status, [("content-type", "text/plain")], message).into_response()
}

fn json(value: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        format!("{value}\n"),
    )
        .into_response()
}

/// `POST` queues a request; `GET /{id}` answers where it is.
pub(super) async fn gateway(State(state): State<GatewayState>, request: Request) -> Response {
    match *request.method() {
        Method::POST => submit(&state, request).await,
        Method::GET => status(&state, request.uri().path()),
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "error: POST a request or GET /{id}\n".into(),
        ),
    }
}

async fn submit(state: &GatewayState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("error: {e}\n")),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let queue = &state.queue;
    let id = {
        let mut s = lock(&queue.state);
        s.prune();
        let id = match parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            Some(id) if !id.is_empty() && !id.contains('/') => id.to_string(),
            Some(id) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("error: x-request-id {id:?} cannot be an id (empty or with a '/')\n"),
                )
            }
            None => {
                s.next_id += 1;
                format!("{:016x}", s.next_id)
            }
        };
        if s.records.contains_key(&id) {
            return text(
                StatusCode::BAD_REQUEST,
                format!("error: id {id} was already submitted\n"),
            );
        }
        s.records.insert(
            id.clone(),
            Record {
                status: Status::InQueue,
                submitted: Instant::now(),
                taken: None,
                service_ms: None,
            },
        );
        s.visible.push_back(Message {
            id: id.clone(),
            path,
            headers: parts.headers,
            body,
        });
        // Counted under the lock, so a worker's take (which uncounts) always comes after.
        let activator = &state.pool.shared.activator;
        if activator.change(true) == 0 {
            // The first message at an idle queue pokes the controller (scale from zero).
            activator.wake.notify_one();
        }
        id
    };
    queue.arrived.notify_waiters();
    json(&serde_json::json!({ "id": id }))
}

fn status(state: &GatewayState, path: &str) -> Response {
    let id = path.trim_start_matches('/');
    let s = lock(&state.queue.state);
    let Some(r) = s.records.get(id) else {
        return text(StatusCode::NOT_FOUND, format!("error: id {id} not found\n"));
    };
    let mut body = serde_json::json!({ "id": id });
    body["status"] = match &r.status {
        Status::InQueue => "in_queue",
        Status::InProgress => "in_progress",
        Status::Done { ok: true, .. } => "completed",
        Status::Done { ok: false, .. } => "failed",
    }
    .into();
    if let Status::Done { ok, result, at } = &r.status {
        if *ok {
            body["result"] = result.clone();
            body["timestamp"] = humantime::format_rfc3339_nanos(*at).to_string().into();
        }
    }
    let mut resp = json(&body);
    let headers = resp.headers_mut();
    if let Some(taken) = r.taken {
        let wait_ms = taken.saturating_duration_since(r.submitted).as_secs_f64() * 1000.0;
        if let Ok(v) = format!("{wait_ms:.3}").parse() {
            headers.insert("x-queue-wait-ms", v);
        }
    }
    if let Some(v) = r.service_ms.as_deref().and_then(|v| v.parse().ok()) {
        headers.insert("x-service-time-ms", v);
    }
    resp
}
