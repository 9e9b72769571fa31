//! `simctl explain`: what the autoscalers decided around a moment of a run, and why, in
//! sentences — read from a results file's events (`scale` and `scale_held` with their `why`,
//! the cluster autoscaler's `no_scale_up` and `not_removed`, and the node changes around them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use sim::results::{Event, EventKind, Results};

use super::{duration_arg, outln, Failure};

/// `--help`'s long text.
pub(crate) const LONG_ABOUT: &str = "Explain what the autoscalers decided around a moment of a \
run, and why, in sentences.

Reads a results file (simctl run --out) and prints, for one API, the decisions in the window \
[--at − --window, --at + --window]: each change of the replica count with the rule that bound it \
(\"scale-up capped at 8 by policy Pods 4 per 60s (recommended 12 …)\"), each decision a rule held \
(\"held at 6: scale-down stabilization, highest recommendation in the last 300s was 6 at \
0:12:03\"), and the cluster autoscaler's reasons for pending pods it launched no node for (no \
group fits, group at max_instances, group backed off, node still booting) and for nodes it did \
not remove (utilization over the threshold, pods that cannot move, the delay after a scale-up). \
It also says which held decision was still in force when the window opened.

Times are written H:MM:SS since the start of the run; --at and --window take durations such as \
90s, 12m or 1h30m.

Example:
  simctl run scenarios/step-hpa.toml --out step.json
  simctl explain step.json --api model --at 21m --window 2m";

/// `simctl explain RESULTS --api NAME --at T [--window W]`.
#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// A results file written by `simctl run --out`.
    pub results: PathBuf,
    /// The API to explain (optional when the run has one API).
    #[arg(long)]
    pub api: Option<String>,
    /// The moment, as time since the start of the run (e.g. 12m, 90s, 1h30m).
    #[arg(long)]
    pub at: String,
    /// How far before and after --at to look.
    #[arg(long, default_value = "2m")]
    pub window: String,
}

/// Print the decisions and reasons around `--at`.
pub(crate) fn run(args: ExplainArgs) -> Result<(), Failure> {
    let at = duration_arg(&args.at)
        .map_err(|e| Failure::BadInput(format!("--at {:?}: {e}", args.at)))?;
    let window = duration_arg(&args.window)
        .map_err(|e| Failure::BadInput(format!("--window {:?}: {e}", args.window)))?;
    let results = load(&args.results)?;
    for line in explain(&results, &args.results, args.api.as_deref(), at, window)? {
        outln!("{line}");
    }
    Ok(())
}

fn load(path: &Path) -> Result<Results, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", path.display())))?;
    match reports::parse_input(path, &text).map_err(|e| Failure::BadInput(e.to_string()))? {
        reports::Input::Results(r) => Ok(*r),
        reports::Input::Tune(_) => Err(Failure::BadInput(format!(
            "{}: a tune file; simctl explain reads a results file (simctl run --out)",
            path.display()
        ))),
    }
}

/// H:MM:SS.
fn clock(t_s: f64) -> String {
    autoscaler::why::clock(Duration::from_secs_f64(t_s.max(0.0)))
}

/// The event's label and sentence, if it belongs in an explanation of `api`.
fn line(e: &Event, api: &str) -> Option<(&'static str, String)> {
    let mine = e.api.as_deref() == Some(api);
    let why = |fallback: &str| {
        e.kind
            .why()
            .map(|w| w.sentence.clone())
            .unwrap_or_else(|| format!("{fallback} (no reason recorded: an older results file)"))
    };
    Some(match &e.kind {
        EventKind::Scale(_) if mine => ("scale", why(&e.message)),
        EventKind::ScaleHeld(_) if mine => ("held", why(&e.message)),
        EventKind::NoScaleUp(_) if mine => ("no scale-up", why(&e.message)),
        EventKind::ReplicaUnschedulable if mine => ("pending", e.message.clone()),
        EventKind::NotRemoved(_) => ("not removed", why(&e.message)),
        EventKind::NodeLaunch | EventKind::FailedLaunch | EventKind::NodeTerminate => (
            "node",
            format!(
                "{}: {}",
                e.node_group.as_deref().unwrap_or("cluster"),
                e.message
            ),
        ),
        _ => return None,
    })
}

/// The explanation as lines: a heading, what was in force when the window opened, then the
/// events of the window.
fn explain(
    results: &Results,
    path: &Path,
    api: Option<&str>,
    at: Duration,
    window: Duration,
) -> Result<Vec<String>, Failure> {
    let names = || {
        results
            .apis
            .iter()
            .map(|a| format!("{:?}", a.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let api = match api {
        Some(name) if results.apis.iter().any(|a| a.name == name) => name.to_string(),
        Some(name) => {
            return Err(Failure::BadInput(format!(
                "{}: no API named {name:?} in apis[].name; it has {}",
                path.display(),
                names()
            )))
        }
        None if results.apis.len() == 1 => results.apis[0].name.clone(),
        None => {
            return Err(Failure::BadInput(format!(
                "{}: it has several APIs ({}); choose one with --api",
                path.display(),
                names()
            )))
        }
    };
    let end = results.simulated_s();
    let at_s = at.as_secs_f64();
    if at_s > end {
        return Err(Failure::BadInput(format!(
            "--at {}: past the end of the run in {} ({}, duration_s)",
            clock(at_s),
            path.display(),
            clock(end)
        )));
    }
    let from = (at_s - window.as_secs_f64()).max(0.0);
    let to = (at_s + window.as_secs_f64()).min(end);
    let mut lines = vec![format!(
        "{api} around {} (from {} to {}):",
        clock(at_s),
        clock(from),
        clock(to)
    )];
    // What stood when the window opened: the last change and the last hold before it.
    let before = results
        .events
        .iter()
        .filter(|e| e.t_s < from && e.api.as_deref() == Some(api.as_str()));
    let last_scale = before
        .clone()
        .rfind(|e| matches!(e.kind, EventKind::Scale(_)));
    let last_held = before
        .clone()
        .rfind(|e| matches!(e.kind, EventKind::ScaleHeld(_)))
        .filter(|h| last_scale.is_none_or(|s| h.t_s >= s.t_s));
    for (label, e) in [("last change", last_scale), ("in force", last_held)] {
        if let Some(e) = e {
            if let Some((_, text)) = line(e, &api) {
                lines.push(format!("  before  {label} at {}: {text}", clock(e.t_s)));
            }
        }
    }
    let mut any = false;
    for e in results
        .events
        .iter()
        .filter(|e| e.t_s >= from && e.t_s <= to)
    {
        if let Some((label, text)) = line(e, &api) {
            any = true;
            lines.push(format!("  {}  {label:<12} {text}", clock(e.t_s)));
        }
    }
    if !any {
        lines.push(format!(
            "  nothing was decided or held by a rule in this window: the count stayed as it was{}",
            if results.events.iter().any(|e| e.kind.why().is_some()) {
                ""
            } else {
                " (this results file has no \"why\" records: it was written by an older simctl)"
            }
        ));
    }
    Ok(lines)
}
