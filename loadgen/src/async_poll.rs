//! Submit and poll: an async API (Cortex's AsyncAPI) answers a request with an id at once, and
//! the client asks `GET {path}/{id}` until the result is there. The open-model runner submits on
//! the schedule (each request with its sequence number as `x-request-id`, which Cortex's
//! gateway takes as the id) and hands the id to the pollers here; its latency is the time to
//! result — from the *scheduled* submit to the result's `timestamp` (when the gateway stored
//! it), so neither a late submit nor the poll interval hides any of it. A gateway without
//! `timestamp` is timed when the poll sees the result.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::client::{Answer, Connection};
use crate::open::Shared;
use crate::record::{Outcome, Row};

/// The submit's id header (Cortex's gateway requires it and uses it as the id).
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Pollers run at once: each owns one kept-alive connection and polls the due ids in turn.
pub(crate) const POLLERS: usize = 4;

/// A submitted request waiting for its result.
pub(crate) struct Pending {
    pub seq: u64,
    /// Scheduled time after the start.
    pub at: Duration,
    /// Scheduled time, wall clock (the result's timestamp is one).
    pub due_wall: SystemTime,
    pub due: Instant,
    pub sent: Instant,
    pub shard: usize,
    pub id: String,
    /// When to poll it next.
    pub next: Instant,
}

/// The ids being polled, in the order they are due (each goes to the back, one interval on,
/// after a poll, so the front is always the first due).
pub(crate) struct Polls {
    pending: Mutex<VecDeque<Pending>>,
    /// A request was submitted.
    added: tokio::sync::Notify,
    interval: Duration,
    /// `GET` path prefix: the target's path with a trailing `/`.
    prefix: String,
}

impl Polls {
    pub(crate) fn new(interval: Duration, target_path: &str) -> Self {
        let mut prefix = target_path.split('?').next().unwrap_or("/").to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Polls {
            pending: Mutex::new(VecDeque::new()),
            added: tokio::sync::Notify::new(),
            interval,
            prefix,
        }
    }

    /// Poll `p` one interval from now.
    pub(crate) fn add(&self, mut p: Pending) {
        p.next = Instant::now() + self.interval;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(p);
        self.added.notify_one();
    }

    fn take_due(&self) -> Result<Pending, Option<Instant>> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.front() {
            Some(p) if p.next <= Instant::now() => pending.pop_front().ok_or(None),
            Some(p) => Err(Some(p.next)),
            None => Err(None),
        }
    }

    fn drain(&self) -> Vec<Pending> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain(..).collect()
    }
}

/// The fields of a `GET /{id}` answer the poller reads.
#[derive(serde::Deserialize)]
struct Polled {
    status: String,
    timestamp: Option<String>,
}

/// Poll due ids until every submitter has finished and nothing is pending, or the run stops
/// (what is still pending then counts as unfinished).
pub(crate) async fn poller(shared: Arc<Shared>, polls: Arc<Polls>) {
    let mut conn: Option<Connection> = None;
    loop {
        let p = match polls.take_due() {
            Ok(p) => p,
            Err(next) => {
                if next.is_none() && shared.submitters.load(Ordering::SeqCst) == 0 {
                    return;
                }
                let wait = next.map_or(Duration::from_millis(50), |t| {
                    t.saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(50))
                });
                tokio::select! {
                    _ = shared.stop.cancelled() => {
                        for p in polls.drain() {
                            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                            shared.recorder.unfinished(p.shard, None);
                        }
                        return;
                    }
                    _ = polls.added.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        if p.due.elapsed() > shared.timeout {
            finish(&shared, p, Instant::now(), Outcome::TimedOut);
            continue;
        }
        let mut body = Vec::new();
        let path = format!("{}{}", polls.prefix, p.id);
        let exchange = async {
            let mut c = shared.client.reuse(conn.take()).await?;
            let (answer, keep_alive) = shared
                .client
                .get(&mut c, &path, |d| body.extend_from_slice(d))
                .await?;
            if keep_alive {
                conn = Some(c);
            }
            Ok::<_, crate::client::ExchangeError>(answer)
        };
        let answer = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => None,
            r = exchange => Some(r),
        };
        let seen = Instant::now();
        let answer = match answer {
            None => {
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                shared.recorder.unfinished(p.shard, None);
                continue;
            }
            Some(Err(e)) => {
                finish(&shared, p, seen, Outcome::Failed(format!("poll: {e}")));
                continue;
            }
            Some(Ok(a)) => a,
        };
        if answer.status != 200 {
            finish(&shared, p, seen, Outcome::Answered(answer));
            continue;
        }
        let polled: Polled = match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("poll: the answer is not a status: {e}");
                finish(&shared, p, seen, Outcome::Failed(why));
                continue;
            }
        };
        match polled.status.as_str() {
            "completed" => {
                // When the result was stored, on the same clock as the scheduled time.
                let stored = polled
                    .timestamp
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .and_then(|t| t.duration_since(p.due_wall).ok())
                    .map_or(seen, |since_due| p.due + since_due);
                finish(&shared, p, stored, Outcome::Answered(answer));
            }
            "failed" => {
                let failed = Answer {
                    status: 500,
                    ..answer
                };
                finish(&shared, p, seen, Outcome::Answered(failed));
            }
            _ => polls.add(p),
        }
    }
}

/// Record `p` as ended at `end`.
fn finish(shared: &Shared, p: Pending, end: Instant, outcome: Outcome) {
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    shared.recorder.record(
        p.shard,
        Row {
            seq: p.seq,
            at: p.at,
            latency: end.saturating_duration_since(p.due),
            response: end.saturating_duration_since(p.sent),
            outcome,
            tokens: None,
            tenant: None,
        },
    );
}
