//! `simctl report`: a capacity-planning report (HTML or Markdown) from results and tune files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use reports::{render_html, render_markdown, Format, Report, ReportError};

use super::{outln, write_atomically, Failure};

/// `simctl report --help`: what the report contains.
pub(crate) const LONG_ABOUT: &str =
    "Build a capacity-planning report from simulation results and, optionally, a tuning sweep.\n\n\
The report has: a scenario summary and SLO verdict; timelines (traffic vs ready and desired \
replicas per API, in-flight and queued requests, nodes per group with spot vs on-demand, cost \
rate) with scale-ups and spot interruptions marked; latency percentiles per API and their \
distribution; cost per node group and per API, idle cost and spot savings; the event log. With \
several results files it adds a side-by-side comparison (e.g. 1x/2x/5x traffic: nodes and cost); \
with a tune.json (written by `simctl tune`) the cost-SLO Pareto front and the recommended \
configuration. Files are recognised by their schema (simctl.results/v1, simctl.tune/v1).\n\n\
HTML is one self-contained page (inline SVG charts, no network access); Markdown is written \
with its charts as PNG files in a sibling directory (report.md -> report_files/).";

/// Arguments of `simctl report`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
simctl run scenarios/quickstart.toml --out q.json && simctl report q.json -o report.html\n  \
simctl report 1x.json 2x.json 5x.json -o growth.md\n  \
simctl report q.json tune.json -o report.html")]
pub(crate) struct ReportArgs {
    /// Results files (simctl run --out) and at most one tune file (simctl tune --out); the
    /// first results file is the baseline of comparisons.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
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
    let report = Report::from_files(&args.inputs).map_err(|e| match e {
        ReportError::Chart { .. } => Failure::Other(e.into()),
        e => Failure::BadInput(e.to_string()),
    })?;
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
