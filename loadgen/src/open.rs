//! The open-model runner: requests leave on the schedule whatever the server does, and each
//! latency is measured from the request's *scheduled* time, so a slow server cannot slow the
//! load down and hide its own slowness (no coordinated omission).
//!
//! Up to `max_in_flight` tasks each own one kept-alive connection. A free task takes the next
//! request if it is due soon (or if fewer than two tasks are waiting), waits for its time, sends
//! it and records the answer; otherwise it parks, and a waiting task that leaves wakes the most
//! recently parked one. So at a low rate a few warm connections carry the load, and at a high
//! rate as many tasks as needed wait on imminent requests. When all tasks are busy the next
//! request leaves late; its lag counts in its latency and in the schedule-lag figures, and it is
//! counted as late beyond `late_threshold`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::async_poll::{poller, Pending, Polls, POLLERS, REQUEST_ID_HEADER};
use crate::client::{Client, Connection, RequestTemplate, Target};
use crate::llm_replica::PROMPT_TOKENS_HEADER;
use crate::openai::{OpenAi, TokenStream};
use crate::pacing::Pacers;
use crate::record::{Outcome, Progress, Recorder, Row, RunInfo, TokenObjectives, TokenRow};
use crate::replica::SERVICE_TIME_HEADER;
use crate::schedule::{Planned, Schedule};
use crate::LoadError;
use contract::loadgen::LoadResults;

/// How to run an open-model load test.
#[derive(Debug, Clone)]
pub struct OpenLoad {
    /// Where requests go.
    pub target: Target,
    /// What each request looks like.
    pub template: RequestTemplate,
    /// Name of the API block in the results.
    pub api_name: String,
    /// Most requests outstanding at once (and most connections).
    pub max_in_flight: usize,
    /// Client timeout of one request, from its send.
    pub timeout: Duration,
    /// A request that leaves later than this after its scheduled time counts as late.
    pub late_threshold: Duration,
    /// Per-request CSV (`timestamp_s,latency_ms,status,service_ms,error,queue_wait_ms`), if wanted.
    pub requests_csv: Option<PathBuf>,
    /// HDR histogram interval log of latencies (one histogram per second), if wanted.
    pub hdr_log: Option<PathBuf>,
    /// Speak to an OpenAI-compatible completions endpoint: each request asks for the
    /// schedule's token lengths (the template's body is not sent) and its streamed answer is
    /// timed token by token. `requests_csv` then has the columns `ttft_ms`, `itl_mean_ms`,
    /// `output_tokens` and `input_tokens` too.
    pub openai: Option<OpenAi>,
    /// An async API (Cortex's AsyncAPI): each request is submitted with its sequence number as
    /// `x-request-id` and its result polled at `GET {path}/{id}` this often; its latency is the
    /// time to result and `timeout` bounds it (see [`crate::async_poll`]).
    pub poll_interval: Option<Duration>,
    /// The header naming each request's tenant when the schedule's traffic is a sum of tenants
    /// (`x-tenant`, or e.g. `x-api-key` for a gateway that tells tenants by key).
    pub tenant_header: String,
}

/// A free task always takes the next request while fewer than this many wait on theirs.
const MIN_WAITING: usize = 2;
/// Beyond that it takes the next request only if it is due within this horizon.
const HORIZON: Duration = Duration::from_millis(2);

enum Claim {
    Due(Planned),
    NotYet,
    End,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    schedule: Mutex<(Schedule, Option<LoadError>)>,
    /// Tasks holding a request that is not yet due.
    waiting: AtomicUsize,
    /// Their timers.
    pacers: Pacers,
    /// Parked tasks.
    wake: Notify,
    pub(crate) recorder: Recorder,
    pub(crate) in_flight: AtomicU64,
    start: Instant,
    /// `start` on the wall clock.
    start_wall: std::time::SystemTime,
    pub(crate) timeout: Duration,
    /// Tenants' names by index, and the header that carries them.
    pub(crate) tenants: Vec<String>,
    pub(crate) tenant_header: String,
    openai: Option<OpenAi>,
    /// Cancelled by the user (Ctrl-C, SIGTERM) or when the last answer is overdue.
    pub(crate) stop: CancellationToken,
    /// Submitting tasks still running (an async API's pollers stop once none is and nothing
    /// is pending).
    pub(crate) submitters: AtomicUsize,
    /// An async API's results being polled.
    polls: Option<Arc<Polls>>,
}

impl Shared {
    fn claim(&self) -> Claim {
        let mut guard = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let (schedule, error) = &mut *guard;
        if error.is_some() {
            return Claim::End;
        }
        let next = match schedule.peek() {
            Ok(Some(next)) => next,
            Ok(None) => return Claim::End,
            Err(e) => {
                *error = Some(LoadError::Schedule(e));
                self.stop.cancel();
                return Claim::End;
            }
        };
        let soon = self.start + next.at <= Instant::now() + HORIZON;
        if soon || self.waiting.load(Ordering::SeqCst) < MIN_WAITING {
            schedule.take_peeked();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            Claim::Due(next)
        } else {
            Claim::NotYet
        }
    }

    /// Stop waiting: let a parked task take over.
    fn done_waiting(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.wake.notify_last();
    }
}

/// Run `schedule` against the target until it ends or `stop` is cancelled (Ctrl-C); requests
/// still outstanding then are counted as in flight at the end. Files are written whole or not
/// at all.
pub async fn run_open(
    schedule: Schedule,
    load: OpenLoad,
    stop: CancellationToken,
    mut progress: impl FnMut(&Progress),
) -> Result<LoadResults, LoadError> {
    let planned_s = schedule.until().as_secs_f64();
    let description = schedule.description().to_string();
    let objectives = load.openai.as_ref().map(|o| TokenObjectives {
        ttft: o.slo_ttft,
        itl: o.slo_itl,
    });
    let recorder = Recorder::new(
        &load.api_name,
        schedule.tenants(),
        load.late_threshold,
        objectives,
        load.requests_csv.as_deref(),
        load.hdr_log.as_deref(),
    )?;
    // The run ends by the schedule's end plus one request timeout, whatever the target does:
    // a server that never answers, or a rate the client cannot send, cannot stretch it.
    let halt = stop.child_token();
    let until = schedule.until();
    let schedule_tenants = schedule.tenants().to_vec();
    let shared = Arc::new(Shared {
        client: Client::new(load.target.clone(), load.template.clone())?,
        schedule: Mutex::new((schedule, None)),
        waiting: AtomicUsize::new(0),
        pacers: Pacers::default(),
        wake: Notify::new(),
        recorder,
        in_flight: AtomicU64::new(0),
        start: Instant::now(),
        start_wall: std::time::SystemTime::now(),
        timeout: load.timeout,
        tenants: schedule_tenants,
        tenant_header: load.tenant_header.clone(),
        openai: load.openai.clone(),
        stop: halt.clone(),
        submitters: AtomicUsize::new(load.max_in_flight.max(1)),
        polls: load
            .poll_interval
            .map(|every| Arc::new(Polls::new(every, load.target.path()))),
    });
    {
        let halt = halt.clone();
        let deadline = shared
            .start
            .checked_add(until.saturating_add(load.timeout))
            .map(tokio::time::Instant::from_std);
        tokio::spawn(async move {
            if let Some(deadline) = deadline {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => halt.cancel(),
                    _ = halt.cancelled() => {}
                }
            }
        });
    }
    let mut workers = JoinSet::new();
    for shard in 0..load.max_in_flight.max(1) {
        let shared = shared.clone();
        workers.spawn(async move {
            worker(shared.clone(), shard).await;
            shared.submitters.fetch_sub(1, Ordering::SeqCst);
        });
    }
    if let Some(polls) = &shared.polls {
        for _ in 0..POLLERS {
            workers.spawn(poller(shared.clone(), polls.clone()));
        }
    }
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::from_std(shared.start + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    let mut step = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                step += 1;
                let in_flight = shared.in_flight.load(Ordering::SeqCst);
                let mut p = shared.recorder.collect(step as f64, in_flight);
                p.planned_s = planned_s;
                progress(&p);
            }
            joined = workers.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
        }
    }
    let elapsed_s = shared.start.elapsed().as_secs_f64();
    let Ok(shared) = Arc::try_unwrap(shared) else {
        return Err(LoadError::Internal(
            "workers still hold the run state".into(),
        ));
    };
    if let (_, Some(error)) = shared
        .schedule
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(error);
    }
    let truncated = stop.is_cancelled();
    let run = RunInfo {
        model: "open",
        target: load.target.url(),
        schedule: &description,
        planned_s,
        max_in_flight: load.max_in_flight,
    };
    shared.recorder.finish(run, elapsed_s, truncated)
}

async fn worker(shared: Arc<Shared>, shard: usize) {
    let mut conn: Option<Connection> = None;
    loop {
        let planned = loop {
            let parked = shared.wake.notified();
            tokio::pin!(parked);
            parked.as_mut().enable();
            match shared.claim() {
                Claim::Due(planned) => break planned,
                Claim::NotYet => tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = parked => {}
                },
                Claim::End => {
                    shared.wake.notify_waiters();
                    return;
                }
            }
        };
        let due = shared.start + planned.at;
        // Built while the request waits for its time.
        let (input, output) = planned.tokens.unwrap_or((1, 1));
        let body = shared
            .openai
            .as_ref()
            .map(|o| o.body(planned.seq, input, output));
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return,
            _ = shared.pacers.wait_until(due) => {}
        }
        shared.done_waiting();
        // Due before the schedule's end, it is sent even when the client reaches it after the
        // end (fell behind): late, its lag recorded, rather than silently missing from the
        // counts. The halt one timeout after the end still bounds the run.
        let sent = Instant::now();
        shared
            .recorder
            .sent(shard, sent.saturating_duration_since(due));
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let service_ms = planned.service.map(|d| d.as_secs_f64() * 1000.0);
        let mut stream = TokenStream::default();
        let exchange = async {
            let mut c = shared.client.reuse(conn.take()).await?;
            let (answer, keep_alive) = match &body {
                Some(body) => {
                    let prompt = input.to_string();
                    shared
                        .client
                        .exchange(
                            &mut c,
                            &[(PROMPT_TOKENS_HEADER, &prompt)],
                            Some(body),
                            |data| stream.feed(data, Instant::now()),
                        )
                        .await?
                }
                None => {
                    // An async API's submit carries its id; a tenant's request its tenant.
                    let id = shared.polls.is_some().then(|| planned.seq.to_string());
                    let ms = service_ms.map(|ms| format!("{ms:.3}"));
                    let tenant = planned
                        .tenant
                        .and_then(|t| shared.tenants.get(usize::from(t)));
                    let mut headers = Vec::with_capacity(3);
                    headers.extend(id.as_deref().map(|v| (REQUEST_ID_HEADER, v)));
                    headers.extend(ms.as_deref().map(|v| (SERVICE_TIME_HEADER, v)));
                    headers
                        .extend(tenant.map(|name| (shared.tenant_header.as_str(), name.as_str())));
                    shared
                        .client
                        .exchange(&mut c, &headers, None, |_| {})
                        .await?
                }
            };
            if keep_alive {
                conn = Some(c);
            }
            Ok::<_, crate::client::ExchangeError>(answer)
        };
        let answer = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => None,
            r = tokio::time::timeout(shared.timeout, exchange) => Some(r),
        };
        let end = Instant::now();
        if let (Some(polls), Some(Ok(Ok(a)))) = (&shared.polls, &answer) {
            if (200..300).contains(&a.status) {
                // Submitted: in flight until the pollers see its result.
                polls.add(Pending {
                    seq: planned.seq,
                    at: planned.at,
                    due_wall: shared.start_wall + planned.at,
                    due,
                    sent,
                    shard,
                    id: planned.seq.to_string(),
                    next: end,
                });
                continue;
            }
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let outcome = match answer {
            None => {
                shared.recorder.unfinished(shard, planned.tenant);
                return;
            }
            Some(Err(_)) => Outcome::TimedOut,
            Some(Ok(Err(error))) => Outcome::Failed(error.to_string()),
            Some(Ok(Ok(answer))) => match &stream.error {
                Some(_) if (200..300).contains(&answer.status) => {
                    Outcome::Failed("error event in the stream".into())
                }
                _ => Outcome::Answered(answer),
            },
        };
        let tokens = body.is_some().then(|| TokenRow {
            input,
            output: stream.usage_tokens.unwrap_or(stream.tokens),
            ttft: stream.first.map(|t| t.saturating_duration_since(due)),
            itl_mean: stream.mean_gap(),
            gaps: std::mem::take(&mut stream.gaps),
        });
        shared.recorder.record(
            shard,
            Row {
                seq: planned.seq,
                at: planned.at,
                latency: end.saturating_duration_since(due),
                response: end.saturating_duration_since(sent),
                outcome,
                tokens,
                tenant: planned.tenant,
            },
        );
    }
}
