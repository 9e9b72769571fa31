//! `simctl validate`: run a scenario's API for real on this machine (local `simctl serve`
//! replicas behind the least-request proxy, scaled by the real controller, driven by the
//! scenario's own arrivals) and in the simulator, then show how far apart they are — before and
//! after calibrating the simulator's service-time model from the real run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use autoscaler::controller::backoff::Backoff;
use autoscaler::controller::local::Reported;
use autoscaler::controller::reqwest;
use autoscaler::controller::source::{ScrapeSettings, ScrapeSource};
use autoscaler::controller::{
    Actuator, Controller, ControllerError, ControllerMetrics, ControllerSettings, Decision,
};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::{LoadResults, OpenLoad, RequestTemplate, Schedule, Target};
use serde::Serialize;
use sim::fidelity::{self, Fidelity, Observed, ScaleEvent};
use sim::results::Percentiles;
use sim::service_time::Fit;
use sim::{Results, Scenario, SimTime};
use tokio_util::sync::CancellationToken;

use super::replicas::{start_local, ReplicaArgs};
use super::{duration_arg, out, outln, pick_api, write_json, Failure};

/// How to calibrate the simulator's service-time model from the real run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Calibration {
    /// Resample the service times the replicas measured.
    Empirical,
    /// Fit a lognormal to them (maximum likelihood).
    Lognormal,
    /// No calibration step.
    None,
}

/// Arguments of `simctl validate`.
#[derive(Args)]
#[command(
    after_help = "For each scenario: `simctl serve` replicas of the API start on 127.0.0.1 \
behind a least-request proxy, the scenario's autoscaling policy scales them (the controller of \
`simctl autoscale --actuator local`), and the load generator sends the simulator's own \
requests: the arrivals it draws with the scenario's seed, each asking (x-service-time-ms) for \
the service time it draws, so both runs see the same random numbers. The scenario then runs in \
the simulator, and again calibrated: the service-time model fitted to the service times the \
replicas measured (applied to the same draws by rank) and network_latency set to the median \
time requests spent outside the replica (latency − queue wait − service). The comparison gives p50/p90/p99 latency, rejection rate, mean replicas, the share of seconds \
the replica counts were within ±1, and the scale events side by side, with relative errors; \
an API fed by tenants also gets p50, p99 and rejection rate per tenant.\n\n\
The real run takes the scenario's duration in wall-clock time (--duration cuts it short). \
Nodes are not emulated: keep the cluster large enough that it is never the bottleneck.\n\n\
Files (per scenario, in --out-dir/<scenario name>/): real.json (loadgen results), requests.csv \
(one row per request), decisions.jsonl (the controller's ticks), simulated.json, calibrated.json \
(simulator results), validation.json (the comparison), calibration.toml (the calibrated model \
as scenario lines to paste); with several scenarios also --out-dir/summary.json.\n\n\
With --replica-cmd the replicas are your own server instead (see --replica-cmd): the proxy \
measures in flight and latency from outside, and the comparison says what it could not \
measure inside. With min_replicas = 0 the proxy holds requests while no replica is ready (an \
activator) and the comparison adds the cold-start tail (p99.9, max).\n\n\
Examples:\n  simctl validate scenarios/validate/steady.toml\n  \
simctl validate scenarios/validate/*.toml --out-dir validation --calibrate lognormal"
)]
pub(crate) struct ValidateArgs {
    /// Scenario files; with several, a summary gives the median errors over all of them.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// The API to validate (needed when a scenario has several).
    #[arg(long)]
    pub api: Option<String>,
    /// Directory for the files of each validation.
    #[arg(long, short, default_value = "validation")]
    pub out_dir: PathBuf,
    /// How to calibrate the service-time model from the real run.
    #[arg(long, value_enum, default_value = "empirical")]
    pub calibrate: Calibration,
    /// Run only this long (default: the scenario's duration).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// The in-flight gauge the controller scrapes: simctl_in_flight_requests (instantaneous,
    /// what the simulator samples) or cortex_in_flight_requests (Cortex's 10 s mean).
    #[arg(long, default_value = "simctl_in_flight_requests")]
    pub metric_name: String,
    /// Print only the comparison.
    #[arg(long, short)]
    pub quiet: bool,
    /// What the real replicas are: `simctl serve` (the simulator's own serving model) or, with
    /// --replica-cmd, your server.
    #[command(flatten)]
    pub replica: ReplicaArgs,
}

/// One scenario's validation, as written to validation.json.
#[derive(Serialize)]
struct Validation {
    schema: &'static str,
    scenario: String,
    api: String,
    duration_s: f64,
    seed: u64,
    /// The policy's decision interval, seconds: scale events "at the same tick" are less than
    /// half of it apart.
    tick_s: f64,
    /// What served the real run: `simctl serve`, or the `--replica-cmd` template.
    replicas: String,
    /// What the real run could not measure inside a foreign server (and so was not compared or
    /// calibrated from).
    not_measured: Vec<String>,
    service_time: String,
    calibrated_service_time: Option<String>,
    /// The simulator as the scenario describes it.
    simulated: Fidelity,
    /// The simulator with the calibrated service-time model and network latency (the median
    /// time a request spent outside the replica: latency − queue wait − service).
    calibrated: Option<Fidelity>,
    real_replicas: Vec<f64>,
    simulated_replicas: Vec<f64>,
    calibrated_replicas: Option<Vec<f64>>,
}

mod calibrate;
mod summary;

use calibrate::{calibrate_llm, calibrate_service};
use summary::{ScaleAgreement, Summary};

const SCHEMA: &str = "simctl.validation/v1";

/// Validate each scenario in turn, then summarize.
pub(crate) fn run(args: ValidateArgs) -> Result<(), Failure> {
    // Check every scenario before the first long real run.
    let mut prepared = Vec::new();
    for path in &args.scenarios {
        prepared.push(prepare(path, &args)?);
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.cancel());
    }
    let mut done = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (path, scenario) in prepared {
        let stem = path
            .file_stem()
            .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
        let mut name = stem.clone();
        for n in 2.. {
            if names.insert(name.clone()) {
                break;
            }
            name = format!("{stem}-{n}");
        }
        let v = validate_one(&path, scenario, &args.out_dir.join(name), &args, &stop)?;
        done.push(v);
    }
    if done.len() > 1 {
        let summary = Summary::of(&done);
        out!("{}", summary.render());
        write_json(&args.out_dir.join("summary.json"), &summary)?;
    }
    Ok(())
}

/// Load a scenario and cut it down to what is run for real: one API, no batch jobs, a 1 s
/// timeline.
fn prepare(path: &Path, args: &ValidateArgs) -> Result<(PathBuf, Scenario), Failure> {
    let bad = |m: String| Failure::BadInput(format!("{}: {m}", path.display()));
    let mut scenario = Scenario::load(path).map_err(|e| Failure::BadInput(e.to_string()))?;
    super::refuse_feeds(
        &scenario,
        path,
        "validate",
        "replays one API's own traffic and does not route or chain requests yet",
    )?;
    let api = pick_api(&scenario, args.api.as_deref(), path)?.clone();
    if api.llm.is_none() && (api.service_scale - 1.0).abs() > 1e-9 {
        return Err(bad(format!(
            "API {:?} shares a GPU (its service times stretch ×{:.2}); the local replicas run \
             on this machine's CPU and cannot reproduce that",
            api.name, api.service_scale
        )));
    }
    args.replica.command(&api).map_err(|e| match e {
        Failure::BadInput(m) => bad(m),
        other => other,
    })?;
    if let Some(d) = args.duration {
        if d.is_zero() {
            return Err(Failure::BadInput(
                "--duration: expected a positive duration".into(),
            ));
        }
        scenario.duration = scenario.duration.min(SimTime::from(d));
    }
    scenario.apis = vec![api];
    scenario.batch_jobs.clear();
    scenario.timeline_step = SimTime::from_secs_f64(1.0);
    Ok((path.to_path_buf(), scenario))
}

fn simulate(scenario: &Scenario) -> Result<(Results, Observed), Failure> {
    let results = sim::run(scenario).map_err(|e| match e {
        sim::SimError::Data(e) => Failure::BadInput(e.to_string()),
    })?;
    let api = results
        .apis
        .first()
        .context("the simulation has no API results")?;
    let observed = Observed::from_simulation(api, &results.timeline, &results.events)
        .map_err(|m| Failure::Other(anyhow::anyhow!(m)))?;
    Ok((results, observed))
}

fn validate_one(
    path: &Path,
    scenario: Scenario,
    dir: &Path,
    args: &ValidateArgs,
    stop: &CancellationToken,
) -> Result<Validation, Failure> {
    let api = scenario.apis[0].clone();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let duration_s = scenario.duration.as_secs_f64();
    outln!(
        "validating {} (API {:?}, {duration_s:.0} s of real time, seed {})",
        path.display(),
        api.name,
        scenario.seed
    );

    let (sim_results, simulated) = simulate(&scenario)?;
    write_json(&dir.join("simulated.json"), &sim_results)?;

    let real = run_real(path, &scenario, dir, args, stop)?;
    write_json(&dir.join("real.json"), &real.results)?;
    if let Some(t) = real.results.truncated_at_s {
        return Err(Failure::Interrupted(format!(
            "interrupted after {t:.0} s of the real run; its results are in {}",
            dir.display()
        )));
    }
    let real_api = real
        .results
        .apis
        .first()
        .context("the load test has no API results")?;
    let observed = Observed {
        latency_ms: real_api.latency_ms,
        requests: real_api.requests,
        rejected: real_api.rejected,
        replicas: real.replicas,
        scale_events: real
            .decisions
            .iter()
            .filter(|d| d.target != d.spec_replicas)
            .map(|d| ScaleEvent {
                t_s: d.now.as_secs_f64(),
                from: d.spec_replicas,
                to: d.target,
            })
            .collect(),
        ttft_ms: real.results.ttft_ms,
        itl_ms: real.results.itl_ms,
        tenants: real_api.tenants.clone(),
    };
    // Scale events pair up within three policy ticks (and at least 10 s).
    let tick_s = api
        .autoscaling
        .decision_step()
        .tick_interval()
        .as_secs_f64();
    let max_offset_s = (3.0 * tick_s).max(10.0);
    let cold = api.autoscaling.holds_requests_at_zero();
    let mut before = fidelity::compare(&observed, &simulated, max_offset_s);
    if cold {
        add_cold_start_tail(&mut before, &observed.latency_ms, &simulated.latency_ms);
    }
    let not_measured = not_measured(args, real.reported);
    let service_reported = args.replica.replica_cmd.is_none()
        || real.reported.service_time * 2 > real.reported.responses;

    let fit = match args.calibrate {
        Calibration::Empirical => Some(Fit::Empirical),
        Calibration::Lognormal => Some(Fit::LogNormal),
        Calibration::None => None,
    };
    let mut calibrated = None;
    if let (Some(_), Some(model)) = (fit, &api.llm) {
        calibrated = calibrate_llm(&scenario, model, &observed, &simulated, dir, max_offset_s)?;
    } else if let (Some(fit), true) = (fit, service_reported) {
        calibrated = calibrate_service(path, &scenario, fit, &observed, dir, max_offset_s)?;
    }
    if cold {
        if let Some((_, after, _)) = calibrated.as_mut() {
            let results = read_results(&dir.join("calibrated.json"))?;
            if let Some(sim) = results.apis.first() {
                add_cold_start_tail(after, &observed.latency_ms, &sim.latency_ms);
            }
        }
    }
    let validation = Validation {
        schema: SCHEMA,
        scenario: path.display().to_string(),
        api: api.name.clone(),
        duration_s,
        seed: scenario.seed,
        tick_s,
        replicas: args
            .replica
            .replica_cmd
            .as_ref()
            .map_or_else(|| "simctl serve".to_string(), |c| format!("command: {c}")),
        not_measured,
        service_time: match &api.llm {
            Some(m) => format!(
                "LLM engine: step {:.3} ms + {:.4} ms per prompt token + {:.4} ms per decoding sequence",
                m.engine.step.base_ns / 1e6,
                m.engine.step.per_prefill_token_ns / 1e6,
                m.engine.step.per_decode_token_ns / 1e6
            ),
            None => api.service_time.describe(),
        },
        calibrated_service_time: calibrated.as_ref().map(|(m, _, _)| m.clone()),
        simulated: before,
        calibrated: calibrated.as_ref().map(|(_, f, _)| f.clone()),
        real_replicas: observed.replicas.clone(),
        simulated_replicas: simulated.replicas.clone(),
        calibrated_replicas: calibrated.map(|(_, _, r)| r),
    };
    out!("{}", render(&validation, &observed));
    write_json(&dir.join("validation.json"), &validation)?;
    outln!("files in {}", dir.display());
    Ok(validation)
}

/// For an API scaled from zero, the latency tail the cold starts make: p99.9 and the largest
/// latency (the first request waits for a whole replica start).
fn add_cold_start_tail(f: &mut Fidelity, real: &Percentiles, sim: &Percentiles) {
    f.metrics.push(fidelity::Compared::new(
        fidelity::LATENCY_P999,
        real.p999,
        sim.p999,
    ));
    f.metrics.push(fidelity::Compared::new(
        fidelity::LATENCY_MAX,
        real.max,
        sim.max,
    ));
}

fn read_results(path: &Path) -> Result<Results, Failure> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?)
}

/// What a foreign server's real run could not measure. A `simctl serve` replica reports its
/// service time and queue wait per answer and its in-flight count itself; a foreign one is seen
/// from the proxy only, unless it sends the same answer headers.
fn not_measured(args: &ValidateArgs, reported: Reported) -> Vec<String> {
    if args.replica.replica_cmd.is_none() {
        return Vec::new();
    }
    let mut out = vec![
        "in flight, queue and workers inside the replica: the proxy counts a request in \
         flight from its routing to its last byte, so in flight per process and per worker \
         are not seen"
            .to_string(),
    ];
    let most = |n: u64| n * 2 > reported.responses;
    if !most(reported.service_time) {
        out.push(
            "service time (no x-service-time-ms answer header): the service-time model is not              calibrated"
                .into(),
        );
    }
    if !most(reported.queue_wait) {
        out.push(
            "queue wait (no x-queue-wait-ms answer header): network latency is not calibrated"
                .into(),
        );
    }
    out
}

/// What the real run produced.
struct RealRun {
    /// What the replicas' answers reported about their insides.
    reported: Reported,
    results: LoadResults,
    /// Ready replicas at t = 0, 1, 2, … s.
    replicas: Vec<f64>,
    decisions: Vec<Decision>,
}

fn run_real(
    path: &Path,
    scenario: &Scenario,
    dir: &Path,
    args: &ValidateArgs,
    stop: &CancellationToken,
) -> Result<RealRun, Failure> {
    let (metric_name, quiet) = (args.metric_name.as_str(), args.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let api = &scenario.apis[0];
    let duration = scenario.duration.as_duration();
    let schedule = schedule_of(path, scenario)?;
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot open the proxy's port on 127.0.0.1")?;
        let proxy_url = format!("http://{}/", proxy.local_addr().context("proxy address")?);
        let proxy_stop = CancellationToken::new();
        let mut replicas = start_local(
            path,
            api,
            &args.replica,
            proxy,
            http.clone(),
            proxy_stop.clone(),
        )?;
        let pool = replicas.pool();
        let watched = pool.clone();
        let step = api.autoscaling.decision_step();
        let initial = api.autoscaling.decision_step().initial_target();

        // The simulation starts with its initial replicas ready; so does the real run.
        if !quiet {
            outln!("  starting {initial} replica(s) behind {proxy_url}");
        }
        let started = async {
            replicas
                .scale(initial)
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the replicas: {e}"))?;
            let deadline = tokio::time::Instant::now()
                + api.startup_time.as_duration()
                + Duration::from_secs(30);
            while pool.counts().1 < initial {
                if let Some(f) = pool.failure() {
                    anyhow::bail!("a replica did not start: {f}");
                }
                if stop.is_cancelled() {
                    anyhow::bail!("interrupted while the replicas started");
                }
                if tokio::time::Instant::now() > deadline {
                    anyhow::bail!("the replicas were not ready 30 s after their startup time");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = started {
            replicas.shutdown().await;
            return Err(Failure::Other(e));
        }

        let mut scrape = ScrapeSettings::new(&api.name);
        scrape.metric_name = metric_name.to_string();
        scrape.sample_interval = api.autoscaling.scrape_interval;
        let source = ScrapeSource::start(
            step.metric_spec(),
            scrape,
            Arc::new(pool.clone()),
            http.clone(),
        )
        .map_err(|e| controller_failure(path, e))?;
        let tick = step.tick_interval();
        let settings = ControllerSettings {
            api_name: api.name.clone(),
            tick_interval: None,
            apply_initial: true,
            duration: None,
            decisions_out: Some(dir.join("decisions.jsonl")),
            retry: Backoff {
                budget: tick.mul_f64(0.8).max(Duration::from_millis(200)),
                ..Backoff::default()
            },
        };
        let controller = Controller::new(
            settings,
            step,
            Box::new(source),
            Box::new(replicas),
            ControllerMetrics::new(&api.name),
        )
        .with_activator(pool.activator());
        // An LLM API is loaded as an OpenAI-compatible endpoint: streamed completions timed
        // token by token (the emulated replicas serve the API's name as their model).
        let (target_url, openai) = match &api.llm {
            Some(_) => (
                format!("{proxy_url}v1/completions"),
                Some(loadgen::OpenAi {
                    model: api.name.clone(),
                    chat: false,
                    slo_ttft: api.slo.ttft_p99.map(|d| d.0.as_duration()),
                    slo_itl: api.slo.itl_p99.map(|d| d.0.as_duration()),
                }),
            ),
            None => (proxy_url.clone(), None),
        };
        let load = OpenLoad {
            target: Target::resolve(&target_url)
                .await
                .map_err(|e| Failure::Other(e.into()))?,
            template: RequestTemplate::default(),
            api_name: api.name.clone(),
            max_in_flight: 4096,
            timeout: api.timeout.map_or(
                Duration::from_secs(if api.is_async { 600 } else { 60 }),
                SimTime::as_duration,
            ),
            late_threshold: Duration::from_millis(5),
            requests_csv: Some(dir.join("requests.csv")),
            hdr_log: None,
            openai,
            // An async API is submitted to the gateway and its results polled; the latency is
            // the time to result either way.
            poll_interval: api.is_async.then_some(Duration::from_millis(200)),
            tenant_header: loadgen::replica::TENANT_HEADER.into(),
        };

        // The load generator gets a thread of its own so its timing never waits on the
        // controller; both start now, which is t = 0 of the simulation.
        let bar = progress_bar(quiet, duration.as_secs_f64());
        let (sent, done) = tokio::sync::oneshot::channel();
        let load_stop = stop.clone();
        let shown = bar.clone();
        let ready_now = Arc::new(std::sync::atomic::AtomicU32::new(initial));
        let ready_shown = ready_now.clone();
        std::thread::spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    loadgen::LoadError::Internal(format!(
                        "cannot start the load generator's runtime: {e}"
                    ))
                })
                .and_then(|rt| {
                    rt.block_on(loadgen::run_open(schedule, load, load_stop, |p| {
                        shown.set_position(p.elapsed_s as u64);
                        shown.set_message(format!(
                            "{:.0} req/s  replicas {}  p50 {}  p99 {}  503 {}",
                            p.rate_rps,
                            ready_shown.load(std::sync::atomic::Ordering::Relaxed),
                            p.p50_ms.map_or("-".into(), |v| format!("{v:.1}ms")),
                            p.p99_ms.map_or("-".into(), |v| format!("{v:.1}ms")),
                            p.rejected
                        ));
                    }))
                });
            let _ = sent.send(result);
        });
        let controller_stop = CancellationToken::new();
        let sampled = {
            let controller_stop = controller_stop.clone();
            async move {
                let start = tokio::time::Instant::now();
                // The simulation's last tick falls on its last instant: the controller runs a
                // little past it, so its own tick happens too (unless the run was interrupted).
                let end = start + duration + Duration::from_millis(300);
                let mut series = vec![f64::from(pool.counts().1)];
                let mut every_second = tokio::time::interval_at(
                    start + Duration::from_secs(1),
                    Duration::from_secs(1),
                );
                tokio::pin!(done);
                let mut results = None;
                while results.is_none()
                    || (!stop.is_cancelled() && tokio::time::Instant::now() < end)
                {
                    tokio::select! {
                        r = &mut done, if results.is_none() => results = Some(r),
                        _ = tokio::time::sleep_until(end), if results.is_some() => {}
                        _ = every_second.tick() => {
                            let ready = pool.counts().1;
                            ready_now.store(ready, std::sync::atomic::Ordering::Relaxed);
                            if (series.len() as f64) <= duration.as_secs_f64() {
                                series.push(f64::from(ready));
                            }
                        }
                    }
                }
                controller_stop.cancel();
                (results, series)
            }
        };
        let (decisions, (results, series)) =
            tokio::join!(controller.run(controller_stop.cancelled()), sampled);
        proxy_stop.cancel();
        bar.finish_and_clear();
        let decisions = decisions.map_err(|e| controller_failure(path, e))?;
        if let Some(f) = watched.failure() {
            return Err(Failure::Other(anyhow::anyhow!(
                "a replica did not start: {f}"
            )));
        }
        let results = results
            .and_then(Result::ok)
            .ok_or_else(|| anyhow::anyhow!("the load generator stopped unexpectedly"))?
            .map_err(|e| Failure::Other(e.into()))?;
        Ok(RealRun {
            reported: watched.reported(),
            results,
            replicas: series,
            decisions,
        })
    })
}

/// A configuration the controller refuses is the scenario's fault.
fn controller_failure(scenario: &Path, e: ControllerError) -> Failure {
    match e {
        ControllerError::Config(m) => Failure::BadInput(format!("{}: {m}", scenario.display())),
        other => Failure::Other(other.into()),
    }
}

/// The scenario's requests as the simulator draws them: arrival times and, for each, its service
/// time — which the real replicas are asked to take, so both runs see the same requests.
fn schedule_of(path: &Path, scenario: &Scenario) -> Result<Schedule, Failure> {
    let api = &scenario.apis[0];
    let until = scenario.duration.as_duration();
    let service = Some((api.service_time.clone(), api.service_scale));
    let description = format!("{} API {:?} traffic", path.display(), api.name);
    // A sum of tenants: each tenant's own arrivals, tagged with its name for the replicas'
    // fair queue, as `simctl loadgen SCENARIO` sends them.
    let schedule = if api.tenants.is_empty() {
        Schedule::from_traffic(
            &api.traffic,
            &api.name,
            scenario.seed,
            until,
            service,
            description,
        )
    } else {
        let tenants = super::loadgen::tenant_traffic(api);
        Schedule::from_tenants(&tenants, scenario.seed, until, service, description)
    }
    .map_err(|e| Failure::BadInput(e.to_string()))?;
    // An LLM API's requests carry the prompt and output lengths the simulator draws.
    Ok(match &api.llm {
        Some(llm) => schedule.with_lengths(super::loadgen::openai::scenario_lengths(
            llm,
            &api.name,
            scenario.seed,
        )),
        None => schedule,
    })
}

fn progress_bar(quiet: bool, planned_s: f64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(planned_s.ceil() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("  real run {elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:+.1}%", v * 100.0))
}

/// One row per compared metric: real, simulated, error, and calibrated beside them.
fn metric_rows(
    s: &mut String,
    indent: &str,
    before: &[fidelity::Compared],
    after: Option<&[fidelity::Compared]>,
) {
    use std::fmt::Write as _;
    for (i, m) in before.iter().enumerate() {
        let fmt = |x: f64| {
            if m.metric == fidelity::REJECTION_RATE {
                format!("{:.2}%", x * 100.0)
            } else {
                format!("{x:.2}")
            }
        };
        let c = after.and_then(|a| a.get(i));
        let _ = writeln!(
            s,
            "  {:<22} {:>10} {:>10} {:>8} {:>11} {:>8}",
            format!("{indent}{}", m.metric),
            fmt(m.real),
            fmt(m.simulated),
            percent(m.relative_error),
            c.map_or("-".into(), |c| fmt(c.simulated)),
            c.map_or("-".into(), |c| percent(c.relative_error)),
        );
    }
}

/// The comparison table of one scenario.
fn render(v: &Validation, real: &Observed) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  real run: {} requests, {} rejected, replicas {}",
        real.requests,
        real.rejected,
        span(&real.replicas)
    );
    let after = v.calibrated.as_ref();
    let _ = writeln!(
        s,
        "  {:<22} {:>10} {:>10} {:>8} {:>11} {:>8}",
        "", "real", "simulated", "error", "calibrated", "error"
    );
    metric_rows(
        &mut s,
        "",
        &v.simulated.metrics,
        after.map(|a| a.metrics.as_slice()),
    );
    for t in &v.simulated.tenants {
        let calibrated = after
            .and_then(|a| a.tenants.iter().find(|c| c.tenant == t.tenant))
            .map(|c| c.metrics.as_slice());
        let _ = writeln!(s, "  tenant {:?} ({} requests)", t.tenant, t.requests);
        metric_rows(&mut s, "  ", &t.metrics, calibrated);
    }
    let _ = writeln!(
        s,
        "  {:<22} {:>10} {:>10} {:>8} {:>11}",
        "replicas within ±1",
        "",
        format!("{:.1}%", v.simulated.replicas_within_one * 100.0),
        "",
        after.map_or("-".into(), |a| format!(
            "{:.1}%",
            a.replicas_within_one * 100.0
        )),
    );
    let events: Vec<String> = v
        .simulated
        .scale_events
        .iter()
        .map(|m| match (&m.simulated, m.offset_s) {
            (Some(e), Some(off)) => format!(
                "{}→{} at {:.1} s (sim {}→{} at {:.1} s, {off:+.1} s)",
                m.real.from, m.real.to, m.real.t_s, e.from, e.to, e.t_s
            ),
            _ => format!(
                "{}→{} at {:.1} s (no simulated match)",
                m.real.from, m.real.to, m.real.t_s
            ),
        })
        .collect();
    if events.is_empty() {
        let _ = writeln!(s, "  scale events: none in the real run");
    } else {
        let _ = writeln!(s, "  scale events (real, simulated):");
        for e in events {
            let _ = writeln!(s, "    {e}");
        }
    }
    if let Some(m) = v.simulated.median_scale_offset_s {
        let _ = writeln!(s, "    median |offset| {m:.1} s");
    }
    if !v.simulated.scale_events.is_empty() {
        let _ = writeln!(
            s,
            "    agreement: {}{}",
            ScaleAgreement::of(&v.simulated, v.tick_s).describe(v.tick_s),
            after.map_or(String::new(), |a| format!(
                "; calibrated: {}",
                ScaleAgreement::of(a, v.tick_s).describe(v.tick_s)
            ))
        );
    }
    if v.simulated.unmatched_simulated_events > 0 {
        let _ = writeln!(
            s,
            "    + {} simulated scale event(s) with no real counterpart",
            v.simulated.unmatched_simulated_events
        );
    }
    if !v.not_measured.is_empty() {
        let _ = writeln!(s, "  replicas: {}", v.replicas);
        let _ = writeln!(s, "  not measured inside the foreign server:");
        for m in &v.not_measured {
            let _ = writeln!(s, "    - {m}");
        }
    }
    let _ = writeln!(s, "  service time in the scenario: {}", v.service_time);
    if let Some(c) = &v.calibrated_service_time {
        let _ = writeln!(s, "  calibrated from the real run:  {c}");
    }
    s
}

fn span(series: &[f64]) -> String {
    let min = series.iter().copied().fold(f64::INFINITY, f64::min);
    let max = series.iter().copied().fold(0.0, f64::max);
    if min == max {
        format!("{max:.0}")
    } else {
        format!("{min:.0}–{max:.0}")
    }
}
