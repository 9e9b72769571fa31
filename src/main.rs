//! `simctl`: capacity planning and autoscaler tuning for ML inference on Kubernetes.
//!
//! A thin command line over the `sim`, `autoscaler`, `loadgen` and `reports` crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod tui;

/// Exit code for bad input (scenario, trace or flag): the user can fix it.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code after Ctrl-C (128 + SIGINT), once partial results are written.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "simctl",
    version,
    about = "Capacity planning and autoscaler tuning for ML inference on Kubernetes",
    long_about = "simctl answers: how many replicas, nodes and dollars do I need, and how should my \
autoscaler be tuned, so my latency SLO holds under my traffic?\n\n\
It simulates Cortex-style inference APIs on spot and on-demand node groups, deterministically \
(same scenario and seed, same results), from a TOML scenario file. See scenarios/ for examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. Each doc comment is the command's line in `simctl --help` and the first
/// line of its own `--help`: a plain sentence of what it does (the details follow in the
/// command's own help, so it does not point back at itself).
#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario and print a summary (optionally write the results JSON).
    Run(commands::run::RunArgs),
    /// Find the cheapest configuration that meets the SLO: search the scenario's [tune.space]
    /// on common random numbers.
    Tune(commands::tune::TuneArgs),
    /// Send real HTTP load on a schedule (scenario traffic, rate, steps or a trace) and measure
    /// latency from the scheduled times.
    Loadgen(Box<commands::loadgen::LoadgenArgs>),
    /// Run emulated inference replicas: real HTTP, the simulator's queueing, Prometheus
    /// metrics.
    Serve(commands::serve::ServeArgs),
    /// Write a capacity-planning report (HTML, or Markdown with PNG charts) from results and
    /// tune files.
    #[command(long_about = commands::report::LONG_ABOUT)]
    Report(commands::report::ReportArgs),
    /// Run an autoscaling policy for real: scale a Deployment, local replicas, or dry-run.
    Autoscale(Box<commands::autoscale::AutoscaleArgs>),
    /// Run a scenario for real on this machine (local replicas, the real controller, real
    /// load) and in the simulator, and report how far apart they are.
    Validate(commands::validate::ValidateArgs),
    /// Explain what the autoscalers decided around a moment of a run, and why, in sentences.
    #[command(long_about = commands::explain::LONG_ABOUT)]
    Explain(commands::explain::ExplainArgs),
    /// Fit an LLM replica's step-time coefficients to measured requests (a vLLM benchmark
    /// result or a CSV).
    Fit(commands::fit::FitArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Tune(args) => commands::tune::run(args),
        Command::Loadgen(args) => commands::loadgen::run(*args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Autoscale(args) => commands::autoscale::run(*args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Fit(args) => commands::fit::run(args),
        Command::Explain(args) => commands::explain::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::BadInput(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(commands::Failure::Interrupted(message)) => {
            eprintln!("{message}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(commands::Failure::Other(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
