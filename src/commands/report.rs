//! `simctl report`: a capacity-planning report (HTML or Markdown) from results and tune files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use reports::{render_html, render_markdown, Format, Report, ReportError};
use sim::{Results, Scenario, SimError};

use super::{outln, write_atomically, write_json, Failure};

/// `simctl report --help`: what the report contains.
pub(crate) const LONG_ABOUT: &str =
    "Build a capacity-planning report from simulation results and, optionally, a tuning sweep.\n\n\
The report has: a scenario summary and SLO verdict; timelines (traffic vs ready and desired \
replicas per API, in-flight and queued requests, nodes per group with spot vs on-demand, cost \
rate) with scale-ups and spot interruptions marked; latency percentiles per API and their \
distribution; utilisation and headroom; cost per node group and per API, unrequested capacity and spot savings; the event log. With \
several results files it adds a side-by-side comparison (e.g. 1x/2x/5x traffic: nodes and cost); \
with a tune.json (written by `simctl tune`) the cost-SLO Pareto front and the recommended \
configuration. Files are recognised by their schema (simctl.results/v1, simctl.tune/v1).\n\n\
When an API misses its SLO, a section says when and why: the intervals its rejected, timed-out \
or slow requests fell in, each with its cause (no ready replica after a spot reclaim, a scale-up \
waiting for nodes or pod start-up, a burst at max_replicas, a cold start). Utilisation and \
headroom show requested against busy CPU and GPU per API and node group; cost is also given \
per month (730 h at the run's rate) and per million requests.\n\n\
With --growth 1,1.5,2,3 and one scenario file, the scenario is run at each multiple of its \
traffic (every API's rates multiplied, runs in parallel) and the report charts cost, peak nodes \
and the SLO against growth.\n\n\
HTML is one self-contained page (inline SVG charts, no network access); Markdown is written \
with its charts as PNG files in a sibling directory (report.md -> report_files/).";

/// Arguments of `simctl report`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
simctl run scenarios/quickstart.toml --out q.json && simctl report q.json -o report.html\n  \
simctl report 1x.json 2x.json 5x.json -o growth.md\n  \
simctl report --growth 1,1.5,2,3 scenarios/spot-fallback.toml -o growth.html\n  \
simctl report q.json tune.json -o report.html")]
pub(crate) struct ReportArgs {
    /// Results files (simctl run --out) and at most one tune file (simctl tune --out); the
    /// first results file is the baseline of comparisons. With --growth: one scenario file.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Run the scenario given as the only input at these multiples of its traffic (e.g.
    /// 1,1.5,2,3) and report them side by side: cost, peak nodes and SLO against growth.
    #[arg(long, value_name = "MULTIPLES", value_delimiter = ',')]
    pub growth: Option<Vec<f64>>,
    /// With --growth: also write each run's results as <out stem>-<multiple>x.json beside the
    /// report.
    #[arg(long, requires = "growth")]
    pub keep_results: bool,
    /// Output file; .html/.htm gives HTML, .md/.markdown gives Markdown (with PNG charts in
    /// <name>_files/ beside it).
    #[arg(long, short, default_value = "report.html")]
    pub out: PathBuf,
    /// Output format, overriding the extension of --out.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--format`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// One self-contained HTML page with inline SVG charts.
    Html,
    /// Markdown with PNG charts in a sibling directory.
    Md,
}

/// Load, render, write.
pub(crate) fn run(args: ReportArgs) -> Result<(), Failure> {
    let format = match args.format {
        Some(FormatArg::Html) => Format::Html,
        Some(FormatArg::Md) => Format::Markdown,
        None => Format::from_extension(&args.out).ok_or_else(|| {
            Failure::BadInput(format!(
                "--out {}: cannot tell the format from the extension; use .html or .md, or give --format html|md",
                args.out.display()
            ))
        })?,
    };
    let report = match &args.growth {
        Some(multiples) => growth_report(&args, multiples)?,
        None => Report::from_files(&args.inputs).map_err(|e| match e {
            ReportError::Chart { .. } => Failure::Other(e.into()),
            e => Failure::BadInput(e.to_string()),
        })?,
    };
    let summary = match format {
        Format::Html => {
            let html = render_html(&report);
            write_atomically(&args.out, html.as_bytes())?;
            format!("{} KiB", html.len().div_ceil(1024))
        }
        Format::Markdown => write_markdown(&report, &args.out)?,
    };
    if !args.quiet {
        outln!("report written to {} ({summary})", args.out.display());
    }
    Ok(())
}

/// `--growth`: run the one scenario at each traffic multiple (in parallel, progress on stderr)
/// and build the report of those runs.
fn growth_report(args: &ReportArgs, multiples: &[f64]) -> Result<Report, Failure> {
    let [path] = args.inputs.as_slice() else {
        return Err(Failure::BadInput(format!(
            "--growth runs one scenario: give exactly one scenario file, found {} inputs",
            args.inputs.len()
        )));
    };
    if multiples.is_empty() {
        return Err(Failure::BadInput(
            "--growth: expected multiples such as 1,1.5,2,3".into(),
        ));
    }
    if let Some(bad) = multiples.iter().find(|m| !(m.is_finite() && **m > 0.0)) {
        return Err(Failure::BadInput(format!(
            "--growth: expected positive multiples of the traffic, found {bad}"
        )));
    }
    let scenario = Scenario::load(path).map_err(|e| Failure::BadInput(e.to_string()))?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(multiples.len() as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} growth sweep [{bar:30}] {pos}/{len} runs, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    };
    let runs: Vec<Result<Results, SimError>> = multiples
        .par_iter()
        .map(|&m| {
            let mut s = scenario.clone();
            s.scale_traffic(m);
            let r = sim::run(&s);
            bar.inc(1);
            if !args.quiet {
                bar.suspend(|| eprintln!("  {}× traffic simulated", format_multiple(m)));
            }
            r
        })
        .collect();
    bar.finish_and_clear();
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "growth".into());
    let mut report = Report::default();
    for (m, r) in multiples.iter().zip(runs) {
        let results = r.map_err(|e| match e {
            SimError::Data(e) => Failure::BadInput(e.to_string()),
        })?;
        let name = format!("{}x.json", format_multiple(*m));
        if args.keep_results {
            let file = args
                .out
                .with_file_name(format!("{stem}-{}x.json", format_multiple(*m)));
            write_json(&file, &results)?;
        }
        report.push_run(name, results);
        report.growth.push(*m);
    }
    Ok(report)
}

/// `1.5`, `2` (no trailing zeros).
fn format_multiple(m: f64) -> String {
    let text = format!("{m:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The assets directory of a Markdown report: `<stem>_files` beside it.
fn assets_dir_name(out: &Path) -> String {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "report".into());
    format!("{stem}_files")
}

fn write_markdown(report: &Report, out: &Path) -> Result<String, Failure> {
    let name = assets_dir_name(out);
    let rendered = render_markdown(report, &name).map_err(|e| Failure::Other(e.into()))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(&name),
        _ => PathBuf::from(&name),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = 0;
    for asset in &rendered.assets {
        write_atomically(&dir.join(&asset.file_name), &asset.bytes)?;
        bytes += asset.bytes.len();
    }
    // The text last, so it never links to images that are not there yet.
    write_atomically(out, rendered.markdown.as_bytes())?;
    Ok(format!(
        "{} KiB, and {} chart(s) in {}, {} KiB",
        rendered.markdown.len().div_ceil(1024),
        rendered.assets.len(),
        dir.display(),
        bytes.div_ceil(1024)
    ))
}
