//! One module per subcommand.

pub(crate) mod autoscale;
pub(crate) mod explain;
pub(crate) mod fit;
pub(crate) mod loadgen;
pub(crate) mod replicas;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod tune;
pub(crate) mod validate;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

/// Set once standard output is gone (a closed pipe, as in `simctl tune … | head`): from then on
/// [`out!`] and [`outln!`] print nothing.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Write to standard output as `print!` does, but a reader that went away (EPIPE) is not an
/// error: the text is dropped and the command carries on (its files are still written), instead
/// of panicking the way `print!` does. Any other write error is reported once on stderr.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output: {e}");
        }
    }
}

/// `print!` that stops quietly when standard output is closed (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that stops quietly when standard output is closed (see [`write_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// Why a command failed: bad input (exit 2, one line naming the file and field) or anything
/// else (exit 1).
pub(crate) enum Failure {
    /// The user's input is wrong; the message says where and what was expected.
    BadInput(String),
    /// The user stopped the run (Ctrl-C); partial results were kept (exit 130).
    Interrupted(String),
    /// An environment or internal failure.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<UnwritableOutput>().is_some() {
            Failure::BadInput(format!("{e:#}"))
        } else {
            Failure::Other(e)
        }
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory, flushed to disk
/// before a rename, so an interrupted write (even kill -9 or a power cut) leaves the old file or
/// the new one, never a torn one. The temporary file is named `.NAME.*.partial`; one left by a
/// killed earlier write is removed by the next.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let unwritable = |source: std::io::Error| UnwritableOutput {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let prefix = format!(".{name}.");
    remove_stale_partials(dir, &prefix);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(unwritable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // NamedTempFile is created 0600; results are ordinary files.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(unwritable)?;
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(unwritable)?;
    tmp.persist(path).map_err(|e| unwritable(e.error))?;
    // The rename itself is durable once the directory is.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An output path the user gave that cannot be written (a missing directory, no permission, a
/// full disk): their input to fix, so exit 2 like other bad input.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub(crate) struct UnwritableOutput {
    path: String,
    source: std::io::Error,
}

/// Simulated requests (events) per second of wall-clock time on one core: conservative, as the
/// estimate only needs to be right within a factor of a few. `simctl run` of
/// scenarios/quickstart.toml does 576,669 requests in 0.09 s of CPU (6.4 M/s) on the 2-core
/// development machine; scenarios with many replicas and nodes are slower per request.
pub(crate) const SIMULATED_REQUESTS_PER_S: f64 = 2.0e6;

/// Work above this many seconds needs `--yes`.
pub(crate) const LONG_WORK_S: f64 = 600.0;

/// Refuse `requests` simulated requests (events) of `what`, spread over `cores`, when they
/// would take more than [`LONG_WORK_S`] (or `SIMCTL_LONG_WORK_S` seconds, which the fuzz tests
/// lower), saying how long and how to go on.
pub(crate) fn refuse_long_work(
    scenario: &Path,
    requests: f64,
    cores: usize,
    what: &str,
) -> Result<(), Failure> {
    let limit_s = std::env::var("SIMCTL_LONG_WORK_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v >= 0.0)
        .unwrap_or(LONG_WORK_S);
    let seconds = requests / SIMULATED_REQUESTS_PER_S / cores.max(1) as f64;
    if seconds <= limit_s {
        return Ok(());
    }
    Err(Failure::BadInput(format!(
        "{}: this {what} simulates about {requests:.2e} requests, roughly {} at ~{:.0e} simulated requests per second; pass --yes to start it anyway, or shorten `duration` or lower the rates",
        scenario.display(),
        indicatif::HumanDuration(std::time::Duration::from_secs(seconds.min(1e12) as u64)),
        SIMULATED_REQUESTS_PER_S
    )))
}

/// Remove `PREFIX*.partial` files left in `dir` by a write that was killed.
fn remove_stale_partials(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(prefix) && file.ends_with(".partial") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Write `value` as pretty JSON with a final newline, atomically (see [`write_atomically`]).
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(value)
        .with_context(|| format!("cannot serialize {}", path.display()))?;
    json.push(b'\n');
    write_atomically(path, &json)
}

/// Resolves on SIGTERM (how Kubernetes and test harnesses stop a process); never elsewhere.
pub(crate) async fn terminated() {
    #[cfg(unix)]
    {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Parse a duration flag (`250ms`, `90s`, `5m`) with the scenario's syntax.
pub(crate) fn duration_arg(text: &str) -> Result<Duration, sim::units::DurationError> {
    sim::units::DurationSpec::parse(text).map(|d| d.0.as_duration())
}

/// Refuse a scenario with `[[routers]]` or `[[pipelines]]` for a command that does not handle
/// them yet; `why` says what the command does instead. `simctl loadgen` and `simctl validate`
/// replay one API's own traffic (an API behind a router or in a pipeline has none, and cutting
/// the others out would leave the router without its APIs).
pub(crate) fn refuse_feeds(
    scenario: &sim::Scenario,
    path: &Path,
    command: &str,
    why: &str,
) -> Result<(), Failure> {
    let (section, name) = match (scenario.routers.first(), scenario.pipelines.first()) {
        (Some(r), _) => ("[[routers]]", &r.name),
        (None, Some(p)) => ("[[pipelines]]", &p.name),
        (None, None) => return Ok(()),
    };
    Err(Failure::BadInput(format!(
        "{}: {section} ({name:?}): simctl {command} {why}; run it with simctl run, or on a scenario without {section}",
        path.display()
    )))
}

/// The API `name` of a scenario, or its only API when no name is given.
pub(crate) fn pick_api<'a>(
    scenario: &'a sim::Scenario,
    name: Option<&str>,
    path: &Path,
) -> Result<&'a sim::scenario::Api, Failure> {
    let names = || {
        scenario
            .apis
            .iter()
            .map(|a| format!("{:?}", a.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => scenario
            .apis
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                Failure::BadInput(format!(
                    "{}: no API named {name:?}; it has {}",
                    path.display(),
                    names()
                ))
            }),
        None if scenario.apis.len() == 1 => Ok(&scenario.apis[0]),
        None => Err(Failure::BadInput(format!(
            "{}: it has several APIs ({}); choose one with --api",
            path.display(),
            names()
        ))),
    }
}
