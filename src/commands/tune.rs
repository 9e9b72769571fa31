//! `simctl tune`: search the `[tune.space]` of a scenario for the cheapest configuration that
//! meets the SLO; `simctl tune merge` combines shard reports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sim::tune::{merge, Search, Shard, TuneOptions, TuneReport, Tuner};

use super::{write_atomically, write_json, Failure};

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
    /// Also write the recommended configuration as a complete scenario file.
    #[arg(long, value_name = "FILE")]
    write_scenario: Option<PathBuf>,
    /// Rows in the table of best candidates.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
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
    let tuner = Tuner::load(&scenario, &options).map_err(|e| Failure::BadInput(e.to_string()))?;
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
                "{spinner} [{bar:30}] {pos}/{len} simulations, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    };
    let report = tuner.run(&|done, _| bar.set_position(done), &cancel);
    bar.finish_and_clear();
    write_json(&args.out, &report)?;
    if let (Some(path), Some(rec)) = (&args.write_scenario, &report.recommendation) {
        write_atomically(path, rec.tuned_scenario.as_bytes())?;
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !args.quiet {
        print!("{}", summary(&report, args.top));
        println!("report written to {}", args.out.display());
        if let (Some(path), Some(_)) = (&args.write_scenario, &report.recommendation) {
            println!("tuned scenario written to {}", path.display());
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", path.display())))?;
        let report: TuneReport = serde_json::from_str(&text).map_err(|e| {
            Failure::BadInput(format!(
                "{}:{}:{}: not a simctl tune report: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        shards.push(report);
    }
    let merged = merge(shards).map_err(|e| Failure::BadInput(e.to_string()))?;
    write_json(&args.out, &merged)?;
    print!("{}", summary(&merged, args.top));
    println!("merged report written to {}", args.out.display());
    Ok(())
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
        q.sort_by(|a, b| {
            a.cost_usd_mean
                .total_cmp(&b.cost_usd_mean)
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
        out.push_str(
            "No candidate meets the SLO. Widen the space (more replicas, lower targets).\n",
        );
    } else {
        out.push_str(&format!(
            "{:>5} {:>10} {:>12} {:>10}  {}\n",
            "id", "cost USD", "worst p99 ms", "replicas", "parameters"
        ));
        for c in qualifying.iter().take(top) {
            let p99 = c
                .apis
                .iter()
                .map(|a| a.latency_p99_ms_worst)
                .fold(0.0, f64::max);
            let replicas: f64 = c.apis.iter().map(|a| a.mean_replicas).sum();
            out.push_str(&format!(
                "{:>5} {:>10.2} {:>12.1} {:>10.1}  {}\n",
                c.id,
                c.cost_usd_mean,
                p99,
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
                        "  {} {}: mean {:.4}{ci}, worst {:.4} vs limit {:.4} — margin {:.0}%\n",
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
        out.push_str("\nscenario fragment:\n");
        out.push_str(&rec.scenario_fragment);
        out.push_str("\nCortex API spec:\n");
        out.push_str(&rec.cortex_yaml);
    }
    out
}
