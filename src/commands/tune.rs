//! `simctl tune`: search the `[tune.space]` of a scenario for the cheapest configuration that
//! meets the SLO; `simctl tune merge` combines shard reports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sim::tune::{merge, Search, Shard, TuneOptions, TuneReport, Tuner};

use super::{out, outln, write_atomically, write_json, Failure};

/// Arguments of `simctl tune`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct TuneArgs {
    #[command(subcommand)]
    command: Option<TuneCommand>,
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Subcommand)]
enum TuneCommand {
    /// Combine the tune.json files of all shards of a sweep into the unsharded result.
    Merge(MergeArgs),
}

/// Arguments of a search.
#[derive(Args)]
struct SearchArgs {
    /// Scenario with a [tune] section: [tune.space] maps parameter paths
    /// (e.g. "apis.classifier.autoscaling.min_replicas") to lists or ranges of values.
    scenario: Option<PathBuf>,
    /// Seeds per candidate (default: [tune] seeds, else 3). All candidates share the same seeds.
    #[arg(long)]
    seeds: Option<u32>,
    /// Search method (default: [tune] search, else grid up to max_grid candidates, halving beyond).
    #[arg(long, value_enum)]
    search: Option<SearchMethod>,
    /// Evaluate only shard i of n (candidates with id % n == i); combine with `simctl tune merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Write the full report (every candidate, Pareto front, recommendation) here.
    #[arg(long, short, default_value = "tune.json")]
    out: PathBuf,
    /// Also write the recommended configuration as a complete scenario file. Its trace and
    /// sample paths are rewritten to still name the same files from where it is written.
    #[arg(long, value_name = "FILE")]
    write_scenario: Option<PathBuf>,
    /// Also write what deploys the recommendation into DIR: cortex.yaml (Cortex RealtimeAPI
    /// specs, then a TrafficSplitter per router), cluster.yaml (Cortex node groups) and, for
    /// hpa/kpa APIs, kubernetes.yaml.
    #[arg(long, value_name = "DIR")]
    write_manifests: Option<PathBuf>,
    /// Rows in the table of best candidates.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Continue an interrupted grid search from the report it wrote (its tune.json): the
    /// candidates it finished are kept, the rest evaluated. The search must be the same.
    #[arg(long, value_name = "TUNE_JSON")]
    resume: Option<PathBuf>,
    /// Search even when the estimate says it will take more than 10 minutes.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SearchMethod {
    /// Every candidate on every seed.
    Grid,
    /// Successive halving over seeds.
    Halving,
}

/// Arguments of `simctl tune merge`.
#[derive(Args)]
struct MergeArgs {
    /// tune.json files written with --shard, one per shard.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The merged report.
    #[arg(long, short, default_value = "tune.json")]
    out: PathBuf,
    /// Rows in the table of best candidates.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Run `simctl tune`.
pub(crate) fn run(args: TuneArgs) -> Result<(), Failure> {
    match args.command {
        Some(TuneCommand::Merge(m)) => run_merge(m),
        None => run_search(args.search),
    }
}

fn run_search(args: SearchArgs) -> Result<(), Failure> {
    let scenario = args.scenario.ok_or_else(|| {
        Failure::BadInput("a scenario file is required: simctl tune SCENARIO.toml".into())
    })?;
    let shard = match &args.shard {
        Some(s) => Some(Shard::parse(s).map_err(|e| Failure::BadInput(format!("--shard: {e}")))?),
        None => None,
    };
    let options = TuneOptions {
        seeds: args.seeds,
        search: args.search.map(|m| match m {
            SearchMethod::Grid => Search::Grid,
            SearchMethod::Halving => Search::Halving,
        }),
        shard,
    };
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .context("cannot start worker threads")?;
    }
    let mut tuner =
        Tuner::load(&scenario, &options).map_err(|e| Failure::BadInput(e.to_string()))?;
    if let Some(previous) = &args.resume {
        let report = read_report(previous)?;
        let kept = tuner
            .resume_from(report)
            .map_err(|e| Failure::BadInput(format!("{}: {e}", previous.display())))?;
        if !args.quiet {
            eprintln!(
                "resuming {}: {kept} candidates already evaluated",
                previous.display()
            );
        }
    }
    if !args.yes {
        let cores = rayon::current_num_threads();
        super::refuse_long_work(&scenario, tuner.planned_requests(), cores, "search")?;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&cancel);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    if !args.quiet {
        eprintln!(
            "tuning {}: {} candidates, {} search, up to {} simulations",
            scenario.display(),
            tuner.grid_size(),
            match tuner.search() {
                Search::Grid => "grid",
                Search::Halving => "successive-halving",
            },
            tuner.planned_runs()
        );
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(tuner.planned_runs()).with_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} simulations, {per_sec}, ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    };
    // Building a large space's scenarios takes a while before the first simulation ends.
    bar.set_message("(building the candidates)");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let report = tuner.run(
        &|done, _| {
            if done == 1 {
                bar.set_message("");
            }
            bar.set_position(done)
        },
        &cancel,
    );
    bar.finish_and_clear();
    write_json(&args.out, &report)?;
    let mut written = Vec::new();
    if let Some(rec) = &report.recommendation {
        if let Some(path) = &args.write_scenario {
            let from = scenario.parent().unwrap_or(Path::new(""));
            let to = path.parent().unwrap_or(Path::new(""));
            let text = sim::scenario::relocate(&rec.tuned_scenario, from, to)
                .context("cannot rewrite the tuned scenario's paths")?;
            write_atomically(path, text.as_bytes())?;
            written.push(format!("tuned scenario written to {}", path.display()));
        }
        if let Some(dir) = &args.write_manifests {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, text) in [
                ("cortex.yaml", &rec.cortex_yaml),
                ("cluster.yaml", &rec.cluster_yaml),
                ("kubernetes.yaml", &rec.kubernetes_yaml),
                ("karpenter.yaml", &rec.karpenter_yaml),
            ] {
                if !text.is_empty() {
                    let path = dir.join(name);
                    write_atomically(&path, text.as_bytes())?;
                    written.push(format!("{name} written to {}", path.display()));
                }
            }
        }
    } else if args.write_scenario.is_some() || args.write_manifests.is_some() {
        written.push("no recommendation: no scenario or manifests written".into());
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !args.quiet {
        out!("{}", summary(&report, args.top));
        outln!("report written to {}", args.out.display());
        for line in written {
            outln!("{line}");
        }
    }
    if report.interrupted {
        return Err(Failure::Interrupted(
            "interrupted: the report covers the candidates that finished".into(),
        ));
    }
    Ok(())
}

fn run_merge(args: MergeArgs) -> Result<(), Failure> {
    let mut shards = Vec::new();
    for path in &args.inputs {
        shards.push(read_report(path)?);
    }
    let merged = merge(shards).map_err(|e| Failure::BadInput(e.to_string()))?;
    write_json(&args.out, &merged)?;
    out!("{}", summary(&merged, args.top));
    outln!("merged report written to {}", args.out.display());
    Ok(())
}

/// A `tune.json` written earlier, or a located error.
fn read_report(path: &Path) -> Result<TuneReport, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::BadInput(format!(
            "{}:{}:{}: not a simctl tune report: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// `name=value` pairs, each name the shortest dotted suffix of its path that is unique.
fn format_params(params: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    let paths: Vec<&String> = params.keys().collect();
    params
        .iter()
        .map(|(path, v)| {
            let parts: Vec<&str> = path.split('.').collect();
            let label = (1..=parts.len())
                .map(|k| parts[parts.len() - k..].join("."))
                .find(|suffix| {
                    paths
                        .iter()
                        .filter(|p| p.ends_with(suffix.as_str()))
                        .count()
                        == 1
                })
                .unwrap_or_else(|| path.clone());
            format!("{label}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table printed after a search.
fn summary(report: &TuneReport, top: usize) -> String {
    let mut out = String::new();
    let complete = report.seeds.len() as u32;
    let qualifying: Vec<_> = {
        let mut q: Vec<_> = report
            .candidates
            .iter()
            .filter(|c| c.meets_slo && c.seeds_evaluated == complete && c.error.is_none())
            .collect();
        // By cost, the recommendation first (it wins ties among equal costs).
        q.sort_by(|a, b| {
            (Some(b.id) == report.best)
                .cmp(&(Some(a.id) == report.best))
                .then(a.cost_usd_mean.total_cmp(&b.cost_usd_mean))
                .then(a.id.cmp(&b.id))
        });
        q
    };
    let invalid = report
        .candidates
        .iter()
        .filter(|c| c.error.is_some())
        .count();
    out.push_str(&format!(
        "\n{} — {} candidates evaluated ({} invalid), {} meet the SLO on all {} seeds\n\n",
        report.scenario_name,
        report.candidates.len(),
        invalid,
        qualifying.len(),
        complete
    ));
    if qualifying.is_empty() {
        out.push_str("No candidate meets the SLO on every seed. The closest, and why they miss:\n");
        let mut closest: Vec<_> = report
            .candidates
            .iter()
            .filter(|c| c.error.is_none() && c.seeds_evaluated == complete)
            .collect();
        closest.sort_by(|a, b| a.slo_ratio.total_cmp(&b.slo_ratio).then(a.id.cmp(&b.id)));
        for c in closest.iter().take(3) {
            out.push_str(&format!(
                "  #{} (worst objective at {:.0} % of its limit, {:.2} USD) {}\n",
                c.id,
                100.0 * c.slo_ratio.min(1e6),
                c.cost_usd_mean,
                format_params(&c.params)
            ));
            if let Some(why) = &c.why_missed {
                out.push_str(&format!("      {why}\n"));
            }
        }
        out.push_str(
            "Widen the space along what the causes name: more replicas or node floors for bursts and empty intervals, spot-free floors for reclaims, a [slo] warmup if only the start misses.\n",
        );
    } else {
        // With pipelines, a column of their worst end-to-end p99 (the APIs' column leaves them
        // out); without, the table is as it always was.
        let pipelines = report
            .candidates
            .iter()
            .any(|c| c.apis.iter().any(|a| a.pipeline));
        let e2e_head = if pipelines {
            format!(" {:>12}", "e2e p99 ms")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:>5} {:>10} {:>12}{e2e_head} {:>10}  {}\n",
            "id", "cost USD", "worst p99 ms", "replicas", "parameters"
        ));
        for c in qualifying.iter().take(top) {
            let p99 = |pipeline: bool| {
                c.apis
                    .iter()
                    .filter(|a| a.pipeline == pipeline)
                    .map(|a| a.latency_p99_ms_worst)
                    .fold(0.0, f64::max)
            };
            let e2e = if pipelines {
                format!(" {:>12.1}", p99(true))
            } else {
                String::new()
            };
            let replicas: f64 = c.apis.iter().map(|a| a.mean_replicas).sum();
            out.push_str(&format!(
                "{:>5} {:>10.2} {:>12.1}{e2e} {:>10.1}  {}\n",
                c.id,
                c.cost_usd_mean,
                p99(false),
                replicas,
                format_params(&c.params)
            ));
        }
    }
    out.push_str(
        "\ncost–SLO Pareto front (SLO ratio = worst actual/limit over all objectives; ≤ 1 meets):\n",
    );
    for id in &report.pareto {
        if let Some(c) = report.candidates.iter().find(|c| c.id == *id) {
            let ratio = if c.slo_ratio >= 1e9 {
                "  ∞".to_string()
            } else {
                format!("{:.2}", c.slo_ratio)
            };
            out.push_str(&format!(
                "  #{:<5} {:>9.2} USD  ratio {:>6}  {}\n",
                c.id,
                c.cost_usd_mean,
                ratio,
                format_params(&c.params)
            ));
        }
    }
    if let Some(spec) = report.risk {
        out.push_str(&format!(
            "\nbreach risk over {} seeds ({:.0} % Clopper–Pearson upper bound; limit {}):\n",
            spec.seeds,
            100.0 * spec.confidence,
            spec.max_breach_probability
        ));
        let mut finalists: Vec<_> = report
            .candidates
            .iter()
            .filter_map(|c| c.risk.map(|r| (c, r)))
            .collect();
        finalists.sort_by(|a, b| a.0.cost_usd_mean.total_cmp(&b.0.cost_usd_mean));
        for (c, r) in finalists {
            out.push_str(&format!(
                "  #{:<5} {:>9.2} USD  breached {:>4}/{:<4} p {:.3} ≤ {:.3} {}  {}\n",
                c.id,
                c.cost_usd_mean,
                r.breaches,
                r.seeds,
                r.breach_probability,
                r.upper_bound,
                if r.upper_bound <= spec.max_breach_probability {
                    "ok        "
                } else {
                    "too risky "
                },
                format_params(&c.params)
            ));
        }
    }
    if let Some(rec) = &report.recommendation {
        out.push_str(&format!(
            "\nrecommended: candidate {} at {:.2} USD\n",
            rec.id, rec.cost_usd_mean
        ));
        if let Some(c) = report.candidates.iter().find(|c| c.id == rec.id) {
            for api in &c.apis {
                for check in &api.checks {
                    let ci = check
                        .ci95
                        .map(|[lo, hi]| format!(" (95% CI {lo:.4}–{hi:.4})"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {}{} {}: mean {:.4}{ci}, worst {:.4} vs limit {:.4} — margin {:.0}%\n",
                        if api.pipeline { "pipeline " } else { "" },
                        api.name,
                        check.objective,
                        check.mean,
                        check.worst,
                        check.limit,
                        100.0 * check.margin
                    ));
                }
            }
        }
        for note in &rec.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        out.push_str("\nscenario fragment:\n");
        out.push_str(&rec.scenario_fragment);
        for (title, text) in [
            ("Cortex API spec (cortex.yaml)", &rec.cortex_yaml),
            ("Cortex node groups (cluster.yaml)", &rec.cluster_yaml),
            (
                "Kubernetes manifests (kubernetes.yaml)",
                &rec.kubernetes_yaml,
            ),
            ("Karpenter NodePools (karpenter.yaml)", &rec.karpenter_yaml),
        ] {
            if !text.is_empty() {
                out.push_str(&format!("\n{title}:\n{text}"));
            }
        }
        if !rec.deploy_notes.is_empty() {
            out.push_str("\nwhat the manifests cannot carry exactly:\n");
            for note in &rec.deploy_notes {
                out.push_str(&format!("  - {note}\n"));
            }
        }
    }
    out
}
