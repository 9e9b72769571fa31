//! Closed-model load on goose: a number of users, each sending a request, waiting for the
//! answer, thinking, and starting again — the classic user-based test. Unlike the open model,
//! a slow server slows the users down, so this measures what users see, not whether the
//! server keeps up with a given arrival rate.
//!
//! goose drives the users and its own HTTP client; every request is also timed here and
//! recorded like an open-model one (latency from the send, at µs resolution in HDR histograms,
//! as goose's own millisecond-rounded metrics are too coarse for percentiles).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;
use http::Method;

use crate::client::{Answer, RequestTemplate, Target};
use crate::record::Progress;
use crate::record::{Outcome, Recorder, Row, RunInfo};
use crate::replica::{QUEUE_WAIT_HEADER, SERVICE_TIME_HEADER};
use crate::LoadError;
use contract::loadgen::LoadResults;

/// How to run a closed-model load test.
#[derive(Debug, Clone)]
pub struct ClosedLoad {
    /// Where requests go.
    pub target: Target,
    /// What each request looks like.
    pub template: RequestTemplate,
    /// Name of the API block in the results.
    pub api_name: String,
    /// Concurrent users.
    pub users: usize,
    /// Time over which users start (0: all at once).
    pub ramp_up: Duration,
    /// Each user waits a uniformly random time in this range after each answer.
    pub think_time: (Duration, Duration),
    /// Length of the test after the ramp-up starts (whole seconds).
    pub duration: Duration,
    /// Client timeout of one request.
    pub timeout: Duration,
    /// Per-request CSV, if wanted.
    pub requests_csv: Option<std::path::PathBuf>,
    /// HDR interval log, if wanted.
    pub hdr_log: Option<std::path::PathBuf>,
}

/// What the goose transaction needs; goose transactions are plain functions, so the running
/// test is found through this process-wide slot (goose itself allows one attack per process).
struct Active {
    recorder: Recorder,
    start: Instant,
    seq: AtomicU64,
    in_flight: AtomicU64,
    method: GooseMethod,
    path: String,
    template: RequestTemplate,
}

static ACTIVE: Mutex<Option<Arc<Active>>> = Mutex::new(None);

fn active() -> Option<Arc<Active>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn goose_method(method: &Method) -> Result<GooseMethod, LoadError> {
    Ok(match *method {
        Method::GET => GooseMethod::Get,
        Method::POST => GooseMethod::Post,
        Method::PUT => GooseMethod::Put,
        Method::DELETE => GooseMethod::Delete,
        Method::HEAD => GooseMethod::Head,
        Method::PATCH => GooseMethod::Patch,
        ref other => {
            return Err(LoadError::Config(format!(
                "the closed model (goose) cannot send {other} requests"
            )))
        }
    })
}

/// One user's request: sent through goose, timed and recorded here.
async fn predict(user: &mut GooseUser) -> TransactionResult {
    let Some(run) = active() else {
        return Ok(());
    };
    let shard = user.weighted_users_index;
    let mut builder = user.get_request_builder(&run.method, &run.path)?;
    builder = builder
        .header(
            http::header::CONTENT_TYPE,
            run.template.content_type.clone(),
        )
        .body(run.template.body.clone());
    for (name, value) in &run.template.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    let request = GooseRequest::builder()
        .method(run.method.clone())
        .path(run.path.as_str())
        .set_request_builder(builder)
        .build();
    let seq = run.seq.fetch_add(1, Ordering::SeqCst);
    let sent = Instant::now();
    run.recorder.sent(shard, Duration::ZERO);
    run.in_flight.fetch_add(1, Ordering::SeqCst);
    let outcome = match user.request(request).await {
        Ok(goose) => match goose.response {
            Ok(response) => {
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                };
                let service_ms = header(SERVICE_TIME_HEADER);
                let queue_wait_ms = header(QUEUE_WAIT_HEADER);
                match response.bytes().await {
                    Ok(_) => Outcome::Answered(Answer {
                        status,
                        service_ms,
                        queue_wait_ms,
                    }),
                    Err(e) if e.is_timeout() => Outcome::TimedOut,
                    Err(e) => Outcome::Failed(format!("reading body: {e}")),
                }
            }
            Err(e) if e.is_timeout() => Outcome::TimedOut,
            Err(e) if e.is_connect() => Outcome::Failed("connection refused".into()),
            Err(e) => Outcome::Failed(format!("http: {e}")),
        },
        Err(e) => Outcome::Failed(format!("goose: {e}")),
    };
    run.in_flight.fetch_sub(1, Ordering::SeqCst);
    let end = Instant::now();
    run.recorder.record(
        shard,
        Row {
            seq,
            at: sent.saturating_duration_since(run.start),
            latency: end.saturating_duration_since(sent),
            response: end.saturating_duration_since(sent),
            outcome,
            tokens: None,
            tenant: None,
        },
    );
    Ok(())
}

/// Run `load.users` goose users against the target for `load.duration`. Ctrl-C ends the test
/// early (goose handles it) and the results cover what was sent.
pub async fn run_closed(
    load: ClosedLoad,
    mut progress: impl FnMut(&Progress),
) -> Result<LoadResults, LoadError> {
    if load.users == 0 {
        return Err(LoadError::Config("users: expected at least 1".into()));
    }
    let (think_min, think_max) = load.think_time;
    if think_min > think_max {
        return Err(LoadError::Config(
            "think time: the minimum is above the maximum".into(),
        ));
    }
    let run_time_s = load.duration.as_secs().max(1);
    let mut config = GooseConfiguration::default();
    config.host = format!("http://{}", load.target.authority());
    config.users = Some(load.users);
    if load.ramp_up.is_zero() {
        config.hatch_rate = Some(load.users.to_string());
    } else {
        config.startup_time = format!("{}", load.ramp_up.as_secs().max(1));
    }
    config.run_time = run_time_s.to_string();
    config.timeout = Some(format!("{}", load.timeout.as_secs_f64()));
    config.no_telnet = true;
    config.no_websocket = true;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_reset_metrics = true;
    config.quiet = 1;
    let description = format!(
        "{} closed-model users, think time {:?}–{:?}, ramp-up {:?}, for {} s",
        load.users, think_min, think_max, load.ramp_up, run_time_s
    );
    let recorder = Recorder::new(
        &load.api_name,
        &[],
        Duration::ZERO,
        None,
        load.requests_csv.as_deref(),
        load.hdr_log.as_deref(),
    )?;
    let run = Arc::new(Active {
        recorder,
        start: Instant::now(),
        seq: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        method: goose_method(&load.template.method)?,
        path: load.target.path().to_string(),
        template: load.template.clone(),
    });
    *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
    let goose_error = |e: GooseError| LoadError::Config(format!("goose: {e}"));
    let scenario = scenario!("users")
        .register_transaction(transaction!(predict))
        .set_wait_time(think_min, think_max)
        .map_err(goose_error)?;
    let attack = GooseAttack::initialize_with_config(config)
        .map_err(goose_error)?
        .register_scenario(scenario)
        .execute();
    tokio::pin!(attack);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::from_std(run.start + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    let mut step = 0u64;
    let ended = loop {
        tokio::select! {
            ended = &mut attack => break ended,
            _ = ticker.tick() => {
                step += 1;
                let mut p = run.recorder.collect(step as f64, run.in_flight.load(Ordering::SeqCst));
                p.planned_s = run_time_s as f64;
                progress(&p);
            }
        }
    };
    *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
    ended.map_err(goose_error)?;
    let elapsed_s = run.start.elapsed().as_secs_f64();
    let Ok(run) = Arc::try_unwrap(run) else {
        return Err(LoadError::Internal(
            "goose users still hold the run state".into(),
        ));
    };
    let info = RunInfo {
        model: "closed",
        target: load.target.url(),
        schedule: &description,
        planned_s: run_time_s as f64,
        max_in_flight: load.users,
    };
    // goose stops at the planned time; stopping more than a second early means Ctrl-C.
    let truncated = elapsed_s + 1.0 < run_time_s as f64;
    run.recorder.finish(info, elapsed_s, truncated)
}
