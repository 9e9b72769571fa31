//! An emulated vLLM replica (`simctl serve --llm`): the `llm` crate's engine — the scheduler,
//! step-time model and KV accounting the simulator runs — driven in real time behind an
//! OpenAI-compatible API with vLLM's Prometheus metrics, so the token-level model can be checked
//! against real clients, the real controller and real scrapes.
//!
//! One task per replica owns the [`llm::Engine`]. Request handlers hand it (prompt tokens, output
//! tokens, a channel); it pushes them into the engine and, while the engine has work, plans an
//! iteration, sleeps until the iteration's end (its duration times [`LlmReplicaSpec::service_scale`],
//! as the simulator stretches it on a MIG slice) and finishes it, sending every emitted token down
//! its request's channel and closing the channel when the request is done.
//!
//! Iterations that follow one another without an idle gap are chained on the engine's own clock
//! (the next starts exactly where the previous one ended), so a late timer wake-up delays one
//! token's delivery but does not accumulate into the schedule: token times are the simulator's,
//! give or take the timer's jitter. Only when the task falls more than [`RESYNC`] behind (a
//! stalled machine) does the schedule restart from the wall clock. The latencies in `/metrics`
//! are measured on that engine clock from each request's arrival.
//!
//! What is emulated and what is not:
//! - every request generates exactly its `max_tokens` (default 16), as with `ignore_eos`, and
//!   finishes with `finish_reason: "length"`; each token's text is `" token"`;
//! - a text prompt's length is estimated as words × 4 / 3 ([`estimate_prompt_tokens`]); a list of
//!   token ids counts exactly, and the [`PROMPT_TOKENS_HEADER`] header overrides both;
//! - a request the engine can never hold (prompt + output beyond the KV cache, or beyond one
//!   iteration without chunked prefill) gets a 400, and one arriving while `max_waiting`
//!   requests wait gets a 503;
//! - a request whose client goes away still runs to its end (vLLM would abort it);
//! - no prefix caching, no sampling parameters, one completion per request (`n` is ignored).

mod metrics;
mod openai;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use llm::{Engine, EngineConfig, Finished, Observer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::metrics::LlmMetrics;
pub use self::openai::estimate_prompt_tokens;
use self::openai::{error_response, Ask, Header, Kind, Refusal};

/// Request header that sets a request's prompt length in tokens, overriding what the body's
/// prompt counts or is estimated to (so a load generator can replay a trace's exact lengths
/// with any prompt text).
pub const PROMPT_TOKENS_HEADER: &str = "x-prompt-tokens";

/// How far the engine task may fall behind its own schedule before it restarts the schedule
/// from the wall clock instead of catching up.
pub const RESYNC: Duration = Duration::from_millis(50);

/// How one emulated vLLM replica behaves.
#[derive(Debug, Clone)]
pub struct LlmReplicaSpec {
    /// The model it serves: `/v1/models`, the `model` of answers, the `model_name` label.
    pub model_name: String,
    /// The engine: limits, KV blocks and step time.
    pub engine: EngineConfig,
    /// Multiplier of every iteration's duration (7 / compute slices on a MIG slice, as the
    /// simulator's `service_scale`; 1 on a whole GPU).
    pub service_scale: f64,
    /// Requests waiting for admission before a new one gets a 503 (`None`: no limit, as vLLM).
    pub max_waiting: Option<u32>,
    /// Time from start until `/health` turns ready and completions are served.
    pub startup_delay: Duration,
    /// How long a connection may take to send a request's head, and how long an idle
    /// keep-alive connection is kept.
    pub idle_timeout: Duration,
}

impl LlmReplicaSpec {
    /// A replica of `engine` serving `model_name`, ready at once, at full speed, with no waiting
    /// limit and a 30 s idle timeout.
    pub fn new(model_name: impl Into<String>, engine: EngineConfig) -> Self {
        Self {
            model_name: model_name.into(),
            engine,
            service_scale: 1.0,
            max_waiting: None,
            startup_delay: Duration::ZERO,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A request handed to the engine task.
struct Submission {
    prompt: u32,
    output: u32,
    /// One message per emitted token; closed when the request is done.
    tokens: mpsc::UnboundedSender<()>,
    /// The request's tag once it is in the engine, or why it was refused.
    admitted: oneshot::Sender<Result<u64, Refusal>>,
}

/// A request in the engine.
struct Pending {
    tokens: mpsc::UnboundedSender<()>,
    /// Engine-clock arrival, ns.
    arrival_ns: u64,
    prompt: u32,
}

/// What the handlers and the engine task share.
struct Shared {
    spec: LlmReplicaSpec,
    ready: AtomicBool,
    metrics: Mutex<LlmMetrics>,
    submit: mpsc::UnboundedSender<Submission>,
    /// Unix seconds at start (`created` of the model).
    started_unix: u64,
}

impl Shared {
    fn metrics(&self) -> MutexGuard<'_, LlmMetrics> {
        match self.metrics.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Serve one emulated vLLM replica on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    spec: LlmReplicaSpec,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (shared, submissions) = Shared::start(spec);
    let idle_timeout = shared.spec.idle_timeout;
    let engine = tokio::spawn(run_engine(shared.clone(), submissions));
    let startup = tokio::spawn({
        let shared = shared.clone();
        async move {
            tokio::time::sleep(shared.spec.startup_delay).await;
            shared.ready.store(true, Ordering::SeqCst);
        }
    });
    let app = Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .with_state(shared);
    let served = crate::replica::serve_http1(listener, app, idle_timeout, shutdown).await;
    engine.abort();
    startup.abort();
    served
}

impl Shared {
    fn start(spec: LlmReplicaSpec) -> (Arc<Self>, mpsc::UnboundedReceiver<Submission>) {
        let (submit, submissions) = mpsc::unbounded_channel();
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let shared = Arc::new(Self {
            ready: AtomicBool::new(spec.startup_delay.is_zero()),
            spec,
            metrics: Mutex::new(LlmMetrics::default()),
            submit,
            started_unix,
        });
        (shared, submissions)
    }
}

/// Forwards an iteration's tokens to their requests and feeds the metrics.
struct Emit<'a> {
    pending: &'a mut HashMap<u64, Pending>,
    metrics: &'a mut LlmMetrics,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 * 1e-9
}

impl Observer<u64> for Emit<'_> {
    fn token(&mut self, tag: &u64, _now_ns: u64) {
        self.metrics.generation_tokens += 1;
        if let Some(p) = self.pending.get(tag) {
            // A client that went away no longer listens; the request runs on regardless.
            let _ = p.tokens.send(());
        }
    }

    fn first_token(&mut self, tag: &u64, now_ns: u64) {
        if let Some(p) = self.pending.get(tag) {
            let ttft = seconds(now_ns.saturating_sub(p.arrival_ns));
            self.metrics.ttft.observe_n(ttft, 1);
            self.metrics.prompt_tokens += u64::from(p.prompt);
        }
    }

    fn tokens(&mut self, gap_ns: u64, count: u32) {
        self.metrics
            .itl
            .observe_n(seconds(gap_ns), u64::from(count));
    }

    fn finished(&mut self, done: Finished<u64>, now_ns: u64) {
        // Dropping the request's sender closes its channel: the handler answers.
        if let Some(p) = self.pending.remove(&done.tag) {
            let e2e = seconds(now_ns.saturating_sub(p.arrival_ns));
            self.metrics.e2e.observe_n(e2e, 1);
        }
        self.metrics.successes += 1;
    }
}

/// The engine task's state.
struct EngineLoop {
    shared: Arc<Shared>,
    engine: Engine<u64>,
    pending: HashMap<u64, Pending>,
    next_tag: u64,
    /// The task's clock starts here.
    base: Instant,
}

impl EngineLoop {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Take a request into the engine, or refuse it.
    fn submit(&mut self, s: Submission) {
        let answer = self.admit(&s);
        if let Ok(tag) = answer {
            self.pending.insert(
                tag,
                Pending {
                    tokens: s.tokens,
                    arrival_ns: self.now_ns(),
                    prompt: s.prompt.max(1),
                },
            );
        }
        // A handler that went away before the answer leaves its request running.
        let _ = s.admitted.send(answer);
        self.publish();
    }

    fn admit(&mut self, s: &Submission) -> Result<u64, Refusal> {
        if let Some(max) = self.shared.spec.max_waiting {
            if self.engine.waiting() >= max {
                return Err(Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!("the replica's waiting queue is full ({max} requests)"),
                });
            }
        }
        let tag = self.next_tag;
        self.engine
            .push(tag, s.prompt, s.output)
            .map_err(|e| Refusal::bad(format!("prompt + max_tokens too long: {e}")))?;
        self.next_tag += 1;
        Ok(tag)
    }

    /// Abort the requests whose handler is gone (the client disconnected), as vLLM aborts a
    /// request whose connection closed: their KV blocks free up for the others.
    fn abort_abandoned(&mut self) {
        if !self.pending.values().any(|p| p.tokens.is_closed()) {
            return;
        }
        let pending = &mut self.pending;
        let aborted = self.engine.abort(|tag| {
            let gone = pending.get(tag).is_some_and(|p| p.tokens.is_closed());
            if gone {
                pending.remove(tag);
            }
            gone
        });
        self.shared.metrics().aborted += u64::from(aborted);
    }

    /// Gauges and the preemption counter, as they are now.
    fn publish(&self) {
        let mut m = self.shared.metrics();
        m.running = self.engine.running();
        m.waiting = self.engine.waiting();
        m.kv_usage = self.engine.kv_usage();
        m.preemptions = self.engine.stats().preemptions;
    }

    /// One iteration's wall duration: the engine's, stretched by the service scale.
    fn scaled(&self, ns: u64) -> u64 {
        let scale = self.shared.spec.service_scale;
        if scale == 1.0 {
            ns
        } else {
            ((ns as f64 * scale).round() as u64).max(1)
        }
    }
}

/// The replica's engine, in real time, until every sender of submissions is gone.
async fn run_engine(shared: Arc<Shared>, mut submissions: mpsc::UnboundedReceiver<Submission>) {
    let mut state = EngineLoop {
        engine: Engine::new(shared.spec.engine),
        shared,
        pending: HashMap::new(),
        next_tag: 0,
        base: Instant::now(),
    };
    // End of the previous iteration when the engine has been busy since.
    let mut busy_until: Option<u64> = None;
    let mut open = true;
    loop {
        if state.engine.outstanding() == 0 {
            busy_until = None;
            if !open {
                return;
            }
            match submissions.recv().await {
                Some(s) => state.submit(s),
                None => return,
            }
            continue;
        }
        let wall = state.now_ns();
        let start = match busy_until {
            Some(end) if wall.saturating_sub(end) <= RESYNC.as_nanos() as u64 => end,
            _ => wall,
        };
        let Some(ns) = state.engine.start_iteration(start) else {
            // Nothing can be scheduled (cannot happen with admitted requests): wait for more.
            busy_until = None;
            match submissions.recv().await {
                Some(s) => state.submit(s),
                None => return,
            }
            continue;
        };
        state.publish();
        let end = start + state.scaled(ns);
        let sleep = tokio::time::sleep_until(state.base + Duration::from_nanos(end));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                () = &mut sleep => break,
                s = submissions.recv(), if open => match s {
                    Some(s) => state.submit(s),
                    None => open = false,
                },
            }
        }
        {
            let mut metrics = state.shared.metrics();
            let mut emit = Emit {
                pending: &mut state.pending,
                metrics: &mut metrics,
            };
            state.engine.finish_iteration(end, &mut emit);
        }
        state.abort_abandoned();
        state.publish();
        busy_until = Some(end);
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let body = openai::models(&shared.spec.model_name, shared.started_unix);
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics().render(&shared.spec.model_name);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    complete(Kind::Completion, &shared, &headers, &body).await
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    complete(Kind::Chat, &shared, &headers, &body).await
}

/// Hand a request to the engine: its tag and token channel, or the refusal.
async fn enqueue(
    shared: &Shared,
    ask: &Ask,
) -> Result<(u64, mpsc::UnboundedReceiver<()>), Refusal> {
    let gone = || Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "the engine stopped".into(),
    };
    let (tokens, received) = mpsc::unbounded_channel();
    let (admitted, answer) = oneshot::channel();
    shared
        .submit
        .send(Submission {
            prompt: ask.prompt_tokens,
            output: ask.max_tokens,
            tokens,
            admitted,
        })
        .map_err(|_| gone())?;
    let tag = answer.await.map_err(|_| gone())??;
    Ok((tag, received))
}

async fn complete(kind: Kind, shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if !shared.ready.load(Ordering::SeqCst) {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "the replica is starting");
    }
    let ask = match openai::parse(kind, headers, body) {
        Ok(ask) => ask,
        Err(refusal) => return refusal.into_response(),
    };
    let model = &shared.spec.model_name;
    if let Some(asked) = ask.model.as_deref() {
        if asked != model {
            return error_response(
                StatusCode::NOT_FOUND,
                &format!("The model `{asked}` does not exist."),
            );
        }
    }
    let (tag, mut tokens) = match enqueue(shared, &ask).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let head = Header::new(kind, tag, model);
    if !ask.stream {
        let mut emitted = 0u32;
        while tokens.recv().await.is_some() {
            emitted += 1;
        }
        let answer = head.answer(ask.prompt_tokens.max(1), emitted);
        return (
            [(header::CONTENT_TYPE, "application/json")],
            answer.to_string(),
        )
            .into_response();
    }
    let mut events = SseAnswer::new(&head, &ask, tokens);
    // The head goes out with the first token, in one write: the client learns nothing earlier
    // from a head alone, and each token's write is what a streaming server pays for.
    use futures_util::StreamExt as _;
    events.primed = events.next().await.and_then(Result::ok);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

/// A streamed answer as server-sent events, one per token as the engine emits it. The events
/// are rendered once per request — a token's event differs only for the first (a chat answer's
/// role) and the last (its finish reason) — so a token costs a reference count, not a JSON
/// rendering; tokens already waiting when the body is polled go out in one write.
struct SseAnswer {
    tokens: mpsc::UnboundedReceiver<()>,
    first: Bytes,
    middle: Bytes,
    last: Bytes,
    /// Output tokens of the request, and how many were sent.
    total: u32,
    sent: u32,
    /// The usage event and `data: [DONE]`, sent after the last token (then `None`).
    end: Option<Bytes>,
    /// Events read before the body was handed to the server, sent first.
    primed: Option<Bytes>,
}

/// `data: {chunk}` and the blank line that ends the event.
fn event(chunk: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {chunk}\n\n"))
}

impl SseAnswer {
    fn new(head: &Header, ask: &Ask, tokens: mpsc::UnboundedReceiver<()>) -> Self {
        let total = ask.max_tokens.max(1);
        let usage = ask.include_usage;
        let mut end = Vec::new();
        if usage {
            // The engine emits exactly the request's output tokens unless it is aborted, and
            // then nobody reads the end.
            end.extend_from_slice(&event(&head.usage_chunk(ask.prompt_tokens.max(1), total)));
        }
        end.extend_from_slice(b"data: [DONE]\n\n");
        Self {
            tokens,
            first: event(&head.token_chunk(0, total, usage)),
            middle: event(&head.token_chunk(1, u32::MAX, usage)),
            last: event(&head.token_chunk(total - 1, total, usage)),
            total,
            sent: 0,
            end: Some(Bytes::from(end)),
            primed: None,
        }
    }

    /// The event of the next token.
    fn next_event(&mut self) -> Bytes {
        let n = self.sent;
        self.sent += 1;
        if n + 1 >= self.total {
            self.last.clone()
        } else if n == 0 {
            self.first.clone()
        } else {
            self.middle.clone()
        }
    }
}

impl futures_util::Stream for SseAnswer {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if let Some(primed) = self.primed.take() {
            return Poll::Ready(Some(Ok(primed)));
        }
        match self.tokens.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(())) => {
                let one = self.next_event();
                if self.tokens.is_empty() {
                    return Poll::Ready(Some(Ok(one)));
                }
                let mut many = bytes::BytesMut::from(&one[..]);
                while self.tokens.try_recv().is_ok() {
                    let next = self.next_event();
                    many.extend_from_slice(&next);
                }
                Poll::Ready(Some(Ok(many.freeze())))
            }
            Poll::Ready(None) => Poll::Ready(self.end.take().map(Ok)),
        }
    }
}

#[cfg(test)]
mod tests;
