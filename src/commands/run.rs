//! `simctl run`: simulate one scenario.

use std::path::PathBuf;

use clap::Args;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use sim::results::share;
use sim::{Results, Scenario, SimError, SimTime, Simulation};

use super::{out, outln, write_json, Failure};
use crate::tui::LiveError;

/// Arguments of `simctl run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Scenario file (TOML). See scenarios/quickstart.toml for a commented example.
    pub scenario: PathBuf,
    /// Write the results JSON (schema simctl.results/v1) to this file.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Watch the run live in the terminal (space pause, +/− speed, s step, e end, q quit).
    #[arg(long)]
    pub tui: bool,
    /// Simulated seconds per real second in the live view.
    #[arg(long, default_value_t = 60.0, requires = "tui")]
    pub speed: f64,
    /// Run even when the estimate says it will take more than 10 minutes.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Load, simulate, summarize, write.
pub(crate) fn run(args: RunArgs) -> Result<(), Failure> {
    let mut scenario =
        Scenario::load(&args.scenario).map_err(|e| Failure::BadInput(e.to_string()))?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
        scenario.file.seed = seed;
    }
    if !args.yes {
        super::refuse_long_work(&args.scenario, scenario.work_estimate().events, 1, "run")?;
    }
    let results = if args.tui {
        if !(args.speed.is_finite() && args.speed > 0.0) {
            return Err(Failure::BadInput(format!(
                "--speed: expected a positive number, found {}",
                args.speed
            )));
        }
        let sim = Simulation::new(scenario).map_err(sim_failure)?;
        crate::tui::run_live(sim, args.speed).map_err(|e| match e {
            LiveError::NoTerminal => Failure::BadInput(
                "--tui needs a terminal (stdout is not one); run without --tui for the plain summary"
                    .into(),
            ),
            LiveError::Sim(e) => sim_failure(e),
            LiveError::Io(e) => Failure::Other(anyhow::Error::new(e).context("terminal error")),
        })?
    } else {
        simulate(scenario, args.quiet).map_err(sim_failure)?
    };
    if !args.quiet {
        out!("{}", summary(&results));
    }
    if let Some(out) = &args.out {
        write_json(out, &results)?;
        if !args.quiet {
            outln!("results written to {}", out.display());
        }
    }
    match results.truncated_at_s {
        Some(t) => Err(Failure::Interrupted(format!(
            "interrupted: results cover the first {t:.0} s of {:.0} s",
            results.duration_s
        ))),
        None => Ok(()),
    }
}

fn sim_failure(e: SimError) -> Failure {
    match e {
        SimError::Data(e) => Failure::BadInput(e.to_string()),
    }
}

/// Run in slices of simulated time so that a progress bar can move and Ctrl-C can stop the run
/// between slices; an interrupted run still returns results for the time simulated.
fn simulate(scenario: Scenario, quiet: bool) -> Result<Results, SimError> {
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        // Without a handler (e.g. one is already installed) Ctrl-C simply kills the process.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let duration = scenario.duration;
    let slices: u64 = 200;
    let slice = SimTime(duration.0.div_ceil(slices).max(1));
    let mut sim = Simulation::new(scenario)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        // Draws only when stderr is a terminal.
        ProgressBar::new(slices).with_style(
            ProgressStyle::with_template(
                "{spinner} simulating [{bar:30}] {percent}% of simulated time, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    };
    while sim.now() < duration && !interrupted.load(Ordering::SeqCst) {
        sim.advance_to(sim.now() + slice)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(sim.finish())
}

/// Token-level figures of the LLM APIs (empty without one).
fn llm_table(r: &Results) -> String {
    let mut out = String::new();
    for api in &r.apis {
        let Some(llm) = &api.llm else { continue };
        if out.is_empty() {
            out.push_str(&format!(
                "\n{:<16} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>9}\n",
                "LLM API",
                "TTFT p50",
                "TTFT p99",
                "ITL p50",
                "ITL p99",
                "tokens/s",
                "preempted",
                "goodput"
            ));
        }
        out.push_str(&format!(
            "{:<16} {:>7.1} ms {:>7.1} ms {:>6.1} ms {:>6.1} ms {:>10.1} {:>10} {:>9}\n",
            api.name,
            llm.ttft_ms.p50,
            llm.ttft_ms.p99,
            llm.itl_ms.p50,
            llm.itl_ms.p99,
            llm.output_tokens_per_s,
            llm.preemptions,
            llm.goodput.map_or("-".to_string(), percent)
        ));
    }
    out
}

/// Each router's split: requests per API (per weight step for a ramp) and shadow copies; what
/// became of the requests is in each API's row above (empty without `[[routers]]`).
fn router_lines(r: &Results) -> String {
    let mut out = String::new();
    for router in &r.routers {
        let routes: Vec<String> = router
            .routes
            .iter()
            .map(|x| format!("{} {} ({:.1} %)", x.api, x.requests, 100.0 * x.share))
            .collect();
        out.push_str(&format!(
            "\nrouter {}: {} requests -> {}\n",
            router.name,
            router.requests,
            routes.join(", ")
        ));
        for c in &router.classes {
            out.push_str(&format!(
                "  class {} -> {}: {}\n",
                c.class, c.api, c.requests
            ));
        }
        if router.steps.len() > 1 {
            for step in &router.steps {
                let parts: Vec<String> = step
                    .weights
                    .iter()
                    .zip(&step.requests)
                    .map(|(w, n)| format!("{w}:{n}"))
                    .collect();
                out.push_str(&format!(
                    "  from {:>6.0} s  weight:requests {}\n",
                    step.from_s,
                    parts.join("  ")
                ));
            }
        }
        if let Some(shadow) = &router.shadow {
            out.push_str(&format!(
                "  shadow {}: {} copies ({:.1} %), answers discarded\n",
                shadow.api,
                shadow.requests,
                100.0 * shadow.share
            ));
        }
    }
    out
}

/// Each pipeline's end-to-end figures and, per stage, where the time went and what failed
/// there (empty without `[[pipelines]]`).
fn pipeline_lines(r: &Results) -> String {
    let mut out = String::new();
    for p in &r.pipelines {
        let requests = p.requests.max(1) as f64;
        let verdict = if p.slo.checks.is_empty() {
            "-".to_string()
        } else {
            verdict_text(&p.slo)
        };
        out.push_str(&format!(
            "\npipeline {}: {} requests, end to end p50 {:.1} ms, p99 {:.1} ms, mean {:.1} ms; failed {:.2} % (rejected {}, timed out {}, interrupted {}); SLO {}\n",
            p.name,
            p.requests,
            p.latency_ms.p50,
            p.latency_ms.p99,
            p.latency_ms.mean,
            100.0 * (p.rejected + p.timed_out + p.interrupted) as f64 / requests,
            p.rejected,
            p.timed_out,
            p.interrupted,
            verdict
        ));
        for (i, s) in p.stages.iter().enumerate() {
            out.push_str(&format!(
                "  stage {} {:<14} mean {:>8.1} ms (waiting {:>7.1} ms) {:>5.1} % of the time; failed here: {} rejected, {} timed out, {} interrupted\n",
                i + 1,
                s.api,
                s.mean_ms,
                s.mean_wait_ms,
                100.0 * s.share_of_latency,
                s.rejected,
                s.timed_out,
                s.interrupted
            ));
        }
    }
    out
}

/// The VPA recommendations (empty without a `[apis.vpa]`).
fn vpa_lines(r: &Results) -> String {
    let mut out = String::new();
    for api in &r.apis {
        let Some(v) = &api.vpa else { continue };
        let res = |p: &sim::results::PodResources| {
            format!("{}m CPU, {}", p.cpu_millicores, p.memory_text("Gi", "Mi"))
        };
        out.push_str(&format!(
            "\n{}: VPA recommends {} per pod (requested {}; bounds {}m–{}m, {}–{}; {} samples{})\n",
            api.name,
            res(&v.target),
            res(&v.requested),
            v.lower_bound.cpu_millicores,
            v.upper_bound.cpu_millicores,
            v.lower_bound.memory_text("Gi", "Mi"),
            v.upper_bound.memory_text("Gi", "Mi"),
            v.samples,
            if v.oom_kills > 0 {
                format!(", {} OOM kills", v.oom_kills)
            } else {
                String::new()
            }
        ));
        if let Some(admitted) = &v.admitted {
            out.push_str(&format!(
                "  applied ({}): new pods requested {} at the end; {} pods evicted, {} resized in place by the updater\n",
                v.update_mode,
                res(admitted),
                v.evictions,
                v.in_place_resizes
            ));
        }
        for g in &v.pods_per_node {
            out.push_str(&format!(
                "  {}: {} pods per node at the requests, {} at the target\n",
                g.group, g.at_requests, g.at_target
            ));
        }
    }
    out
}

/// One row per tenant under its API's row (empty for an API without tenants): the same
/// columns, the 429s of the tenant's own limits in brackets after its rejections, its share of
/// the API's cost (to 4 decimals: a share of a short run is often under a cent), and its own SLO.
fn tenant_rows(api: &sim::results::ApiResults) -> String {
    let mut out = String::new();
    for t in &api.tenants {
        let requests = t.requests.max(1) as f64;
        let verdict = t.slo.as_ref().map_or("-".to_string(), verdict_text);
        let limited = if t.rate_limited > 0 {
            format!(" ({} 429)", t.rate_limited)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {:<14} {:>10} {:>9.1} {:>9.1} {:>8.2}% {:>8.2}% {:>9} {:>10.4}  {}{}\n",
            t.name,
            t.requests,
            t.latency_ms.p50,
            t.latency_ms.p99,
            100.0 * t.rejected as f64 / requests,
            100.0 * t.timed_out as f64 / requests,
            "-",
            t.cost_usd,
            verdict,
            limited
        ));
    }
    out
}

/// `met`, or `MISSED (` the objectives missed `)`.
fn verdict_text(v: &sim::results::SloVerdict) -> String {
    if v.met {
        return "met".to_string();
    }
    let failed: Vec<&str> = v
        .checks
        .iter()
        .filter(|c| !c.met)
        .map(|c| c.objective.as_str())
        .collect();
    format!("MISSED ({})", failed.join(", "))
}

/// The human-readable table printed after a run.
pub(crate) fn summary(r: &Results) -> String {
    let mut out = format!(
        "{} — {:.0} s simulated{}, seed {}\n\n",
        r.scenario_name,
        r.simulated_s(),
        if r.truncated_at_s.is_some() {
            format!(" (interrupted; of {:.0} s)", r.duration_s)
        } else {
            String::new()
        },
        r.seed
    );
    if !r.apis.is_empty() {
        out.push_str(&format!(
            "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  {}\n",
            "API",
            "requests",
            "p50 ms",
            "p99 ms",
            "rejected",
            "timeout",
            "replicas",
            "cost USD",
            "SLO"
        ));
    }
    for api in &r.apis {
        let requests = api.requests.max(1) as f64;
        let verdict = if api.slo.checks.is_empty() {
            "-".to_string()
        } else {
            verdict_text(&api.slo)
        };
        let replicas = api.replica_seconds / r.simulated_s().max(1e-9);
        out.push_str(&format!(
            "{:<16} {:>10} {:>9.1} {:>9.1} {:>8.2}% {:>8.2}% {:>9.1} {:>10.2}  {}\n",
            api.name,
            api.requests,
            api.latency_ms.p50,
            api.latency_ms.p99,
            100.0 * api.rejected as f64 / requests,
            100.0 * api.timed_out as f64 / requests,
            replicas,
            api.cost_usd,
            verdict
        ));
        out.push_str(&tenant_rows(api));
    }
    out.push_str(&llm_table(r));
    out.push_str(&router_lines(r));
    out.push_str(&pipeline_lines(r));
    out.push_str(&vpa_lines(r));
    out.push_str(&why_missed(r));
    for api in r.apis.iter().filter(|a| a.oom_kills > 0) {
        out.push_str(&format!(
            "{}: {} OOM kills loading its model onto an over-committed shared GPU\n",
            api.name, api.oom_kills
        ));
    }
    if !r.batch_jobs.is_empty() {
        if !r.apis.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{:<16} {:<24} {:>10} {:>9} {:>9} {:>9} {:>10}\n",
            "batch job", "status", "took", "batches", "retried", "lost", "cost USD"
        ));
        for j in &r.batch_jobs {
            let took = j
                .completion_time_s
                .map_or("-".to_string(), |t| format!("{:.0} s", t));
            out.push_str(&format!(
                "{:<16} {:<24} {:>10} {:>9} {:>9} {:>9} {:>10.2}\n",
                j.name,
                j.status,
                took,
                format!("{}/{}", j.succeeded, j.batches),
                j.failed_attempts,
                j.interrupted_attempts,
                j.cost_usd
            ));
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "{:<16} {:<14} {:>5} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}\n",
        "node group",
        "instance",
        "spot",
        "peak nodes",
        "node-hours",
        "cost USD",
        "CPU req",
        "CPU busy",
        "GPU req",
        "GPU busy"
    ));
    for g in &r.node_groups {
        // Karpenter offerings that never had a node say nothing.
        if r.karpenter.is_some() && g.peak_nodes == 0 {
            continue;
        }
        let (cpu_req, cpu_busy, gpu_req, gpu_busy) = match &g.utilisation {
            Some(u) => (
                percent(share(u.cpu_requested_core_hours, u.cpu_capacity_core_hours)),
                percent(share(u.cpu_busy_core_hours, u.cpu_capacity_core_hours)),
                if u.gpu_capacity_hours > 0.0 {
                    percent(share(u.gpu_requested_hours, u.gpu_capacity_hours))
                } else {
                    "-".into()
                },
                if u.gpu_capacity_hours > 0.0 {
                    percent(share(u.gpu_busy_hours, u.gpu_capacity_hours))
                } else {
                    "-".into()
                },
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "{:<16} {:<14} {:>5} {:>10} {:>10.1} {:>10.2} {:>9} {:>9} {:>9} {:>9}\n",
            g.name,
            g.instance_type,
            if g.spot { "yes" } else { "no" },
            g.peak_nodes,
            g.node_hours,
            g.cost_usd,
            cpu_req,
            cpu_busy,
            gpu_req,
            gpu_busy
        ));
    }
    if let Some(k) = &r.karpenter {
        out.push_str(&karpenter_summary(k));
    }
    out.push_str(&format!(
        "\ntotal cost {:.2} USD (nodes {:.2}, of which unrequested capacity {:.2}; control plane {:.2})\n",
        r.cost_usd_total,
        r.cost_usd_total - r.control_plane_cost_usd,
        r.idle_cost_usd,
        r.control_plane_cost_usd
    ));
    let simulated_h = r.simulated_s() / 3600.0;
    let requests: u64 = r.apis.iter().map(|a| a.requests).sum();
    if simulated_h > 0.0 {
        out.push_str(&format!(
            "at this rate {:.0} USD per month (730 h){}\n",
            r.cost_usd_total / simulated_h * HOURS_PER_MONTH,
            if requests > 0 {
                format!(
                    ", {:.2} USD per million requests",
                    r.cost_usd_total / requests as f64 * 1e6
                )
            } else {
                String::new()
            }
        ));
    }
    out
}

/// Per NodePool: launches, terminations by reason, the replica restarts they caused.
fn karpenter_summary(k: &sim::results::KarpenterResults) -> String {
    let mut out = format!(
        "\n{:<16} {:>12} {:>6} {:>6} {:>8} {:>9} {:>8} {:>12} {:>9} {:>10}\n",
        "node pool",
        "launches",
        "ICE",
        "empty",
        "deleted",
        "replaced",
        "expired",
        "interrupted",
        "restarts",
        "cost USD"
    );
    for p in &k.pools {
        let t = &p.terminations;
        out.push_str(&format!(
            "{:<16} {:>12} {:>6} {:>6} {:>8} {:>9} {:>8} {:>12} {:>9} {:>10.2}\n",
            p.name,
            format!("{} ({} spot)", p.launches, p.spot_launches),
            p.insufficient_capacity,
            t.empty,
            t.underutilized_deleted,
            t.underutilized_replaced,
            t.expired,
            t.interrupted,
            p.replica_restarts,
            p.cost_usd
        ));
    }
    out.push_str(&format!(
        "node churn (launches + terminations) {}\n",
        k.node_churn()
    ));
    out
}

/// Hours in the average month, as cloud price sheets count them.
const HOURS_PER_MONTH: f64 = 730.0;

fn percent(v: f64) -> String {
    format!("{:.0} %", 100.0 * v)
}

/// For each API that missed its SLO: the missed objectives and the intervals that explain
/// most of it (at most three lines each).
pub(crate) fn why_missed(r: &Results) -> String {
    let mut out = String::new();
    for api in r.apis.iter() {
        if let Some(w) = api.slo.warmup_s {
            let judged: Vec<String> = api
                .slo
                .checks
                .iter()
                .map(|c| {
                    if c.objective == "goodput" {
                        format!("goodput {:.1} %", 100.0 * c.actual)
                    } else if c.objective.ends_with("_rate") {
                        format!("{} {:.2} %", c.objective, 100.0 * c.actual)
                    } else {
                        format!("{} {:.1}", c.objective, c.actual)
                    }
                })
                .collect();
            out.push_str(&format!(
                "{}: SLO judged on requests arriving after the {w:.0} s warmup ({})\n",
                api.name,
                judged.join(", ")
            ));
        }
    }
    for api in &r.apis {
        if let Some(b) = &api.startup {
            out.push_str(&b.summary_line(&api.name));
            out.push('\n');
        }
    }
    for api in r.apis.iter().filter(|a| !a.slo.misses.is_empty()) {
        let failed: Vec<String> = api
            .slo
            .checks
            .iter()
            .filter(|c| !c.met)
            .map(|c| {
                if c.objective == "goodput" {
                    format!(
                        "goodput {:.1} % < {:.1} %",
                        100.0 * c.actual,
                        100.0 * c.limit
                    )
                } else if c.objective.ends_with("_rate") {
                    format!(
                        "{} {:.2} % > {:.2} %",
                        c.objective,
                        100.0 * c.actual,
                        100.0 * c.limit
                    )
                } else {
                    format!("{} {:.0} > {:.0}", c.objective, c.actual, c.limit)
                }
            })
            .collect();
        out.push_str(&format!(
            "why {} missed its SLO ({}):\n",
            api.name,
            failed.join(", ")
        ));
        for m in api.slo.misses.iter().take(3) {
            out.push_str(&format!("  {}\n", m.sentence()));
        }
        if api.slo.misses.len() > 3 {
            let rest: f64 = api.slo.misses[3..].iter().map(|m| m.share).sum();
            out.push_str(&format!(
                "  {} elsewhere (see the report)\n",
                if rest < 0.005 {
                    "<1 %".to_string()
                } else {
                    format!("{:.0} %", 100.0 * rest)
                }
            ));
        }
    }
    out
}
