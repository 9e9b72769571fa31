//! `simctl loadgen`: open-model load against a real HTTP endpoint.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::{LoadResults, OpenLoad, Progress, RequestTemplate, Schedule, Target, TenantTraffic};
use sim::recorded::{FormatOptions, TraceFormat};
use sim::traffic::{TraceSpec, Traffic};
use sim::{Scenario, SimTime};

use super::{duration_arg, out, outln, pick_api, write_json, Failure};

pub(crate) mod openai;
use crate::tui::LiveError;

/// How arrivals are spread within a rate.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Arrivals {
    /// Exponential gaps (what independent users produce).
    Poisson,
    /// Evenly spaced.
    Constant,
}

/// Arguments of `simctl loadgen`.
#[derive(Args)]
#[command(
    after_help = "The schedule comes from exactly one of: a SCENARIO (its API's traffic, the same \
arrivals `simctl run` simulates with the same seed), --rate, --steps or --trace.\n\n\
Latency is measured from each request's scheduled time (no coordinated omission); a request that \
leaves more than --late-threshold after its time is counted as late. Counts balance: requests = \
completed (2xx) + rejected (503) + timed_out + interrupted (errors) + in_flight_at_end.\n\n\
--openai (implied when the --target path ends in /v1/completions or /v1/chat/completions, unless \
--body or --users is given) load-tests an OpenAI-compatible endpoint (vLLM, SGLang, `simctl serve \
--llm`): each request is {\"model\", \"prompt\": [token ids], \"max_tokens\", \"stream\": true, \
\"stream_options\": {\"include_usage\": true}, \"ignore_eos\": true} (for chat completions, one \
user message of as many one-token words as prompt tokens, the exact count in an x-prompt-tokens \
header), and every streamed token is timed as it arrives: time to first token \
(from the scheduled time), inter-token latency, output tokens/s, and with --slo-ttft/--slo-itl \
the goodput. Lengths come from --input-tokens/--output-tokens, a trace's --input-column/\
--output-column, or the scenario API's [apis.llm] input_tokens/output_tokens (the very lengths \
`simctl run` draws with the same seed).\n\n\
An async API (--poll-interval, implied by a scenario API of kind = \"async\") is loaded as \
Cortex's AsyncAPI is used: POST submits (answered {\"id\"} at once), GET <path>/<id> polls \
(status in_queue, in_progress, completed or failed). The latency is the time to result: from the \
scheduled submit to the result's timestamp; `simctl autoscale --actuator local` serves such an \
API behind the same gateway.\n\n\
Examples:\n  simctl loadgen --target http://127.0.0.1:8080/ --rate 50 --duration 60s\n  \
simctl loadgen --target http://127.0.0.1:8080/ --steps 0s=10,30s=40,60s=10 --duration 90s --out lg.json\n  \
simctl loadgen scenarios/trace-replay.toml --target http://127.0.0.1:8080/ --requests-csv requests.csv\n  \
simctl loadgen --target http://127.0.0.1:8000/v1/completions --rate 2 --duration 60s \\\n      \
--input-tokens 512 --output-tokens 128 --slo-ttft 500ms --slo-itl 50ms"
)]
pub(crate) struct LoadgenArgs {
    /// Take the send schedule (and, with --send-service-time, service times) from an API of this
    /// scenario.
    pub scenario: Option<PathBuf>,
    /// The scenario's API (needed when it has several); also the API name in the results.
    #[arg(long)]
    pub api: Option<String>,
    /// Where to send requests: an http:// URL. A path ending in /v1/completions implies
    /// --openai.
    #[arg(long)]
    pub target: String,
    /// A constant request rate, requests per second.
    #[arg(long, conflicts_with_all = ["scenario", "steps", "trace"])]
    pub rate: Option<f64>,
    /// A piecewise-constant rate: comma-separated START=RPS pairs, e.g. 0s=10,60s=50.
    #[arg(long, conflicts_with_all = ["scenario", "trace"])]
    pub steps: Option<String>,
    /// Replay a recorded trace (see --trace-format).
    #[arg(long, conflicts_with = "scenario")]
    pub trace: Option<PathBuf>,
    /// Format of --trace: timestamps, counts, prometheus_json, prometheus_text, access_log.
    #[arg(long, default_value = "timestamps", requires = "trace")]
    pub trace_format: String,
    /// Column of --trace holding the timestamps (timestamps) or counts (counts).
    #[arg(long, requires = "trace")]
    pub column: Option<String>,
    /// Divide the trace's time axis by this (2 replays twice as fast).
    #[arg(long, default_value_t = 1.0, requires = "trace")]
    pub speedup: f64,
    /// Multiply the trace's request rate by this.
    #[arg(long, default_value_t = 1.0, requires = "trace")]
    pub rate_scale: f64,
    /// Closed model instead: this many users (on goose), each sending, waiting for the answer,
    /// thinking, and again. Latency then counts from the actual send.
    #[arg(long, conflicts_with_all = ["scenario", "rate", "steps", "trace"])]
    pub users: Option<usize>,
    /// Closed model: each user's pause after an answer, fixed (1s) or a uniform range (0.5s..2s).
    #[arg(long, default_value = "0s", requires = "users")]
    pub think_time: String,
    /// Closed model: start the users evenly over this time (at most --duration), before the
    /// --duration of the test proper.
    #[arg(long, default_value = "0s", value_parser = duration_arg, requires = "users")]
    pub ramp_up: Duration,
    /// Arrivals within --rate or --steps.
    #[arg(long, value_enum, default_value = "poisson")]
    pub arrivals: Arrivals,
    /// How long to send (default: the scenario's duration; a trace runs to its end).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Most requests outstanding at once; beyond it requests leave late.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
    /// Client timeout of one request [default: 30s; for an async API, the time to result,
    /// 1h].
    #[arg(long, value_parser = duration_arg)]
    pub timeout: Option<Duration>,
    /// An async API (Cortex's AsyncAPI; implied by a SCENARIO API of kind = "async", at 1s):
    /// submit each request with its number as x-request-id, then poll GET <target path>/<id>
    /// this often until its status is completed or failed. The latency is the time to result,
    /// from the scheduled submit to the result's timestamp.
    #[arg(long, value_parser = duration_arg, conflicts_with_all = ["users", "openai"])]
    pub poll_interval: Option<Duration>,
    /// Sends later than this after their scheduled time count as late.
    #[arg(long, default_value = "5ms", value_parser = duration_arg)]
    pub late_threshold: Duration,
    /// Ask the server for the service time the simulator draws for each request (header
    /// x-service-time-ms; `simctl serve` honours it). Needs a SCENARIO.
    #[arg(long, requires = "scenario")]
    pub send_service_time: bool,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// Request body [default: {}].
    #[arg(long)]
    pub body: Option<String>,
    /// Load an OpenAI-compatible completions endpoint: streamed completions of --input-tokens
    /// prompt tokens and --output-tokens output tokens, each token timed (see below).
    #[arg(long, conflicts_with_all = ["users", "body"])]
    pub openai: bool,
    /// --openai: the model to ask for (default: the first id of the server's GET /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// --openai: prompt tokens of every request (overrides a trace's or scenario's lengths).
    #[arg(long)]
    pub input_tokens: Option<u32>,
    /// --openai: output tokens of every request (overrides a trace's or scenario's lengths).
    #[arg(long)]
    pub output_tokens: Option<u32>,
    /// --openai: the column of --trace holding each request's prompt tokens.
    #[arg(long, requires = "trace")]
    pub input_column: Option<String>,
    /// --openai: the column of --trace holding each request's output tokens.
    #[arg(long, requires = "trace")]
    pub output_column: Option<String>,
    /// --openai: time-to-first-token objective of the goodput (e.g. 500ms).
    #[arg(long, value_parser = duration_arg)]
    pub slo_ttft: Option<Duration>,
    /// --openai: mean inter-token-latency objective of the goodput (e.g. 50ms).
    #[arg(long, value_parser = duration_arg)]
    pub slo_itl: Option<Duration>,
    /// SCENARIO whose API's traffic is a sum of tenants: the header that names each request's
    /// tenant (a gateway that tells tenants by API key would take e.g. x-api-key).
    #[arg(long, default_value = "x-tenant", value_name = "NAME")]
    pub tenant_header: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Seed of the arrival draws (default: the scenario's, else 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the results JSON (schema simctl.loadgen/v1).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Write one CSV row per request: timestamp_s (scheduled), latency_ms, status, service_ms,
    /// error, queue_wait_ms (service and queue wait as the server reports them in its
    /// x-service-time-ms and x-queue-wait-ms headers). `simctl run` reads it back as a trace or
    /// an empirical service time.
    #[arg(long)]
    pub requests_csv: Option<PathBuf>,
    /// Write an HDR histogram interval log of latencies (one histogram per second).
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
    /// Threads sending requests. One keeps the per-request cost lowest (and leaves the other
    /// cores to a target on the same machine); more pay off above ~20k req/s per core.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Watch the load test live in the terminal (q stops it; results are still written).
    #[arg(long, conflicts_with_all = ["users", "quiet"])]
    pub tui: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::BadInput(message.into())
}

/// The schedule the arguments describe; with `openai`, each request carries token lengths.
/// The send schedule, the API's name, and whether it is an async API.
fn schedule_from(args: &LoadgenArgs, openai: bool) -> Result<(Schedule, String, bool), Failure> {
    let positive = |v: f64, flag: &str| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(bad(format!(
                "{flag}: expected a positive number, found {v}"
            )))
        }
    };
    let poisson = matches!(args.arrivals, Arrivals::Poisson);
    let open_error = |e: sim::traffic::DataFileError| bad(e.to_string());
    if let Some(path) = &args.scenario {
        let scenario = Scenario::load(path).map_err(|e| bad(e.to_string()))?;
        super::refuse_feeds(
            &scenario,
            path,
            "loadgen",
            "replays one API's own traffic and does not route or chain requests yet",
        )?;
        let api = pick_api(&scenario, args.api.as_deref(), path)?;
        let until = args.duration.unwrap_or(scenario.duration.as_duration());
        let service = args
            .send_service_time
            .then(|| (api.service_time.clone(), api.service_scale));
        let description = format!(
            "{} API {:?} traffic for {:.0} s",
            path.display(),
            api.name,
            until.as_secs_f64()
        );
        let seed = args.seed.unwrap_or(scenario.seed);
        let mut schedule = if api.tenants.is_empty() {
            Schedule::from_traffic(&api.traffic, &api.name, seed, until, service, description)
        } else {
            let tenants = tenant_traffic(api);
            let description = format!("{description}, {} tenants", tenants.len());
            Schedule::from_tenants(&tenants, seed, until, service, description)
        }
        .map_err(open_error)?;
        if openai {
            let llm = api.llm.as_deref();
            schedule =
                schedule.with_lengths(openai::lengths(args, llm, &api.traffic, &api.name, seed)?);
        }
        return Ok((schedule, api.name.clone(), api.is_async));
    }
    let name = args.api.clone().unwrap_or_else(|| "api".into());
    let seed = args.seed.unwrap_or(1);
    let (traffic, until, description) = if let Some(rate) = args.rate {
        let rps = positive(rate, "--rate")?;
        let until = args
            .duration
            .ok_or_else(|| bad("--rate needs --duration (e.g. --duration 60s)"))?;
        let traffic = if poisson {
            Traffic::Poisson { rps }
        } else {
            Traffic::Constant { rps }
        };
        let kind = if poisson { "Poisson" } else { "constant" };
        (traffic, until, format!("{kind} {rps} req/s"))
    } else if let Some(text) = &args.steps {
        let until = args
            .duration
            .ok_or_else(|| bad("--steps needs --duration (e.g. --duration 120s)"))?;
        let steps = parse_steps(text)?;
        (
            Traffic::Steps { steps, poisson },
            until,
            format!("steps {text}"),
        )
    } else if let Some(path) = &args.trace {
        let format = TraceFormat::parse(&args.trace_format).ok_or_else(|| {
            bad(format!(
                "--trace-format: expected one of {}, found {:?}",
                TraceFormat::NAMES,
                args.trace_format
            ))
        })?;
        let spec = TraceSpec {
            path: path.clone(),
            format,
            options: FormatOptions {
                column: args.column.clone(),
                input_column: args.input_column.clone(),
                output_column: args.output_column.clone(),
                ..FormatOptions::default()
            },
            use_recorded_service: false,
            start_s: 0.0,
            end_s: f64::INFINITY,
            speedup: positive(args.speedup, "--speedup")?,
            rate_scale: positive(args.rate_scale, "--rate-scale")?,
            bootstrap_block_s: None,
            looped: false,
        };
        // A trace runs to its end unless --duration cuts it.
        let until = args
            .duration
            .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        (
            Traffic::Trace(spec),
            until,
            format!("trace {}", path.display()),
        )
    } else {
        return Err(bad(
            "no schedule: give a SCENARIO, --rate, --steps or --trace (see simctl loadgen --help)",
        ));
    };
    let description = match args.duration {
        Some(d) => format!("{description} for {:.0} s", d.as_secs_f64()),
        None => description,
    };
    let mut schedule = Schedule::from_traffic(&traffic, &name, seed, until, None, description)
        .map_err(open_error)?;
    if openai {
        schedule = schedule.with_lengths(openai::lengths(args, None, &traffic, &name, seed)?);
    }
    Ok((schedule, name, false))
}

fn parse_steps(text: &str) -> Result<Vec<(SimTime, f64)>, Failure> {
    let mut steps: Vec<(SimTime, f64)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (at, rps) = part.split_once('=').ok_or_else(|| {
            bad(format!(
                "--steps: expected START=RPS pairs like 0s=10,60s=50, found {part:?}"
            ))
        })?;
        let at = sim::units::DurationSpec::parse(at)
            .map_err(|e| bad(format!("--steps: {e}")))?
            .0;
        let rps: f64 = rps
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| bad(format!("--steps: expected a rate ≥ 0 in {part:?}")))?;
        if steps.last().is_some_and(|(prev, _)| *prev >= at) {
            return Err(bad(format!(
                "--steps: start times must increase, found {part:?} after an equal or later step"
            )));
        }
        steps.push((at, rps));
    }
    if steps.is_empty() {
        return Err(bad("--steps: expected at least one START=RPS pair"));
    }
    Ok(steps)
}

fn template_from(args: &LoadgenArgs) -> Result<RequestTemplate, Failure> {
    let mut template = RequestTemplate {
        method: args
            .method
            .parse()
            .map_err(|_| bad(format!("--method: not an HTTP method: {:?}", args.method)))?,
        body: args
            .body
            .clone()
            .unwrap_or_else(|| "{}".into())
            .into_bytes()
            .into(),
        ..RequestTemplate::default()
    };
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| bad(format!("--header: expected \"Name: value\", found {h:?}")))?;
        let name = name
            .trim()
            .parse()
            .map_err(|_| bad(format!("--header: bad header name in {h:?}")))?;
        let value = value
            .trim()
            .parse()
            .map_err(|_| bad(format!("--header: bad header value in {h:?}")))?;
        template.headers.push((name, value));
    }
    Ok(template)
}

/// Run the load test, print a summary, write the files.
pub(crate) fn run(args: LoadgenArgs) -> Result<(), Failure> {
    if args.max_in_flight == 0 {
        return Err(bad("--max-in-flight: expected at least 1"));
    }
    if args.timeout.is_some_and(|t| t.is_zero()) {
        return Err(bad("--timeout: expected a positive duration"));
    }
    if args.poll_interval.is_some_and(|t| t.is_zero()) {
        return Err(bad("--poll-interval: expected a positive duration"));
    }
    let openai = openai::mode(&args)?;
    if let Some(users) = args.users {
        return run_closed(&args, users);
    }
    let (schedule, api_name, is_async) = schedule_from(&args, openai)?;
    let poll_interval = args
        .poll_interval
        .or((is_async && !openai).then_some(Duration::from_secs(1)));
    let timeout = args.timeout.unwrap_or(match poll_interval {
        Some(_) => Duration::from_secs(3600),
        None => Duration::from_secs(30),
    });
    let template = template_from(&args)?;
    let planned_s = schedule.until().as_secs_f64();
    let runtime = match args.threads {
        0 => return Err(bad("--threads: expected at least 1")),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    let stop = tokio_util::sync::CancellationToken::new();
    let target = runtime
        .block_on(Target::resolve(&args.target))
        .map_err(|e| bad(e.to_string()))?;
    let openai = match openai {
        true => Some(openai::settings(&args, &runtime, &target)?),
        false => None,
    };
    let load = OpenLoad {
        target,
        template,
        api_name: api_name.clone(),
        max_in_flight: args.max_in_flight,
        timeout,
        late_threshold: args.late_threshold,
        requests_csv: args.requests_csv.clone(),
        hdr_log: args.hdr_log.clone(),
        openai,
        poll_interval,
        tenant_header: args.tenant_header.clone(),
    };
    let run_load = {
        let stop = stop.clone();
        move |mut progress: Box<dyn FnMut(&Progress) + Send>| {
            runtime.block_on(async {
                let on_signal = stop.clone();
                // Ctrl-C and SIGTERM (how Kubernetes stops a pod) both end the run early and
                // still write the results of what was sent.
                tokio::spawn(async move {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => if r.is_err() { return },
                        _ = super::terminated() => {}
                    }
                    on_signal.cancel();
                });
                loadgen::run_open(schedule, load, stop, |p| progress(p))
                    .await
                    .map_err(|e| match e {
                        loadgen::LoadError::Schedule(_) | loadgen::LoadError::BadUrl { .. } => {
                            bad(e.to_string())
                        }
                        other => Failure::Other(other.into()),
                    })
            })
        }
    };
    let results = if args.tui {
        let title = format!("load test of {}", args.target);
        crate::tui::run_load_live(&title, &api_name, planned_s, stop, run_load).map_err(
            |e| match e {
                LiveError::NoTerminal => bad(
                    "--tui needs a terminal (stdout is not one); run without --tui for the progress line",
                ),
                LiveError::Io(e) => Failure::Other(anyhow::Error::new(e).context("terminal error")),
                LiveError::Sim(e) => Failure::Other(anyhow::anyhow!("{e}")),
            },
        )??
    } else {
        let bar = progress_bar(args.quiet, planned_s);
        let shown = bar.clone();
        let results = run_load(Box::new(move |p| show(&shown, p)));
        bar.finish_and_clear();
        results?
    };
    finish(&args, &results)
}

fn parse_think_time(text: &str) -> Result<(Duration, Duration), Failure> {
    let (low, high) = text.split_once("..").unwrap_or((text, text));
    let parse = |t: &str| duration_arg(t).map_err(|e| bad(format!("--think-time: {e}")));
    let (low, high) = (parse(low)?, parse(high)?);
    if low > high {
        return Err(bad(format!(
            "--think-time: the range {text:?} runs backwards"
        )));
    }
    Ok((low, high))
}

/// A duration as whole seconds, for messages.
fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn run_closed(args: &LoadgenArgs, users: usize) -> Result<(), Failure> {
    if users == 0 {
        return Err(bad("--users: expected at least 1"));
    }
    let duration = args
        .duration
        .ok_or_else(|| bad("--users needs --duration (e.g. --duration 60s)"))?;
    if duration < Duration::from_secs(1) {
        return Err(bad(
            "--duration: the closed model runs whole seconds, at least 1s",
        ));
    }
    // goose starts the clock after the last user has started: a ramp-up longer than the test
    // itself would stretch a short test without bound.
    if args.ramp_up > duration {
        return Err(bad(format!(
            "--ramp-up: expected at most --duration ({}), found {}",
            humantime_secs(duration),
            humantime_secs(args.ramp_up)
        )));
    }
    let think_time = parse_think_time(&args.think_time)?;
    let template = template_from(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime.block_on(async {
        let target = Target::resolve(&args.target)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let bar = progress_bar(args.quiet, duration.as_secs_f64());
        let load = loadgen::ClosedLoad {
            target,
            template,
            api_name: args.api.clone().unwrap_or_else(|| "api".into()),
            users,
            ramp_up: args.ramp_up,
            think_time,
            duration,
            timeout: args.timeout.unwrap_or(Duration::from_secs(30)),
            requests_csv: args.requests_csv.clone(),
            hdr_log: args.hdr_log.clone(),
        };
        let results = loadgen::run_closed(load, |p| show(&bar, p)).await;
        bar.finish_and_clear();
        results.map_err(|e| match e {
            loadgen::LoadError::Config(_) => bad(e.to_string()),
            other => Failure::Other(other.into()),
        })
    })?;
    finish(args, &results)
}

/// Print the summary, write the results, and report an interrupted run.
fn finish(args: &LoadgenArgs, results: &LoadResults) -> Result<(), Failure> {
    if !args.quiet {
        out!("{}", summary(results));
    }
    if let Some(out) = &args.out {
        write_json(out, results)?;
        if !args.quiet {
            outln!("results written to {}", out.display());
        }
    }
    match results.truncated_at_s {
        Some(t) => Err(Failure::Interrupted(format!(
            "interrupted after {t:.1} s; results cover what was sent"
        ))),
        None => Ok(()),
    }
}

fn progress_bar(quiet: bool, planned_s: f64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let known = planned_s < f64::from(u32::MAX);
    let bar = if known {
        ProgressBar::new(planned_s.ceil() as u64)
    } else {
        ProgressBar::new_spinner()
    };
    let template = if known {
        "{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}"
    } else {
        "{elapsed_precise} {spinner} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn show(bar: &ProgressBar, p: &Progress) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}ms"));
    bar.set_position(p.elapsed_s as u64);
    let mut message = format!(
        "{:.0} req/s  sent {}  ok {}  503 {}  failed {}  p50 {}  p99 {}  in flight {}  late {}",
        p.rate_rps,
        p.sent,
        p.completed,
        p.rejected,
        p.failed,
        ms(p.p50_ms),
        ms(p.p99_ms),
        p.in_flight,
        p.late
    );
    if let Some(tokens_per_s) = p.output_tokens_per_s {
        message.push_str(&format!(
            "  ttft p50 {}  itl p50 {}  {tokens_per_s:.0} tok/s",
            ms(p.ttft_p50_ms),
            ms(p.itl_p50_ms)
        ));
    }
    bar.set_message(message);
}

fn summary(r: &LoadResults) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "load test of {} — {}", r.target, r.schedule);
    for a in &r.apis {
        let _ = writeln!(
            s,
            "  {} sent in {:.1} s: {} completed ({:.1} req/s), {} rejected (503/429), {} timed out, {} failed, {} unfinished",
            a.requests, r.elapsed_s, a.completed, a.throughput_rps, a.rejected, a.timed_out, a.interrupted, a.in_flight_at_end
        );
        let l = &a.latency_ms;
        let _ =
            writeln!(
            s,
            "  latency from {} time (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            if r.model == "open" { "scheduled" } else { "send" },
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        if !a.tenants.is_empty() {
            let _ = writeln!(
                s,
                "  {:<14} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "tenant", "sent", "completed", "503", "429", "p50 ms", "p99 ms"
            );
        }
        for t in &a.tenants {
            let _ = writeln!(
                s,
                "  {:<14} {:>8} {:>9} {:>9} {:>9} {:>9.2} {:>9.2}",
                t.name,
                t.requests,
                t.completed,
                t.rejected - t.rate_limited,
                t.rate_limited,
                t.latency_ms.p50,
                t.latency_ms.p99
            );
        }
    }
    if let (Some(ttft), Some(itl)) = (&r.ttft_ms, &r.itl_ms) {
        let _ = writeln!(
            s,
            "  time to first token (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            ttft.p50, ttft.p90, ttft.p99, ttft.max
        );
        let _ = writeln!(
            s,
            "  inter-token latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            itl.p50, itl.p90, itl.p99, itl.max
        );
    }
    if let (Some(n), Some(rate)) = (r.output_tokens, r.output_tokens_per_s) {
        let _ = writeln!(s, "  output tokens: {n} ({rate:.1} tokens/s)");
    }
    if let Some(g) = r.goodput {
        let _ = writeln!(
            s,
            "  goodput: {:.1} % of the requests met the objectives",
            g * 100.0
        );
    }
    let lag = &r.schedule_lag_ms;
    if r.model == "open" {
        let _ = writeln!(
            s,
            "  schedule lag (ms): p50 {:.2}  p99 {:.2}  max {:.2}; {} late (> {} ms)",
            lag.p50, lag.p99, lag.max, r.late, r.late_threshold_ms
        );
    }
    for (kind, n) in &r.errors {
        let _ = writeln!(s, "  error: {kind} × {n}");
    }
    s
}

/// The traffic of each tenant of a scenario API, with the random stream the simulator draws it
/// from, so a real run sends the simulator's own requests.
pub(crate) fn tenant_traffic(api: &sim::scenario::Api) -> Vec<TenantTraffic> {
    api.tenants
        .iter()
        .map(|t| TenantTraffic {
            name: t.name.clone(),
            traffic: t.traffic.clone(),
            stream: t.stream.clone(),
        })
        .collect()
}
