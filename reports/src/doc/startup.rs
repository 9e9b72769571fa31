//! The "Where start-up time went" section, shown when some API models its start-up by parts
//! (`[apis.startup]`): scheduling, image pull, model fetch and load per replica — which part to
//! attack (an in-region registry, a cached or smaller image, faster model storage) before
//! tuning an autoscaler around a slow start.

use contract::results::Results;
use contract::startup::StartupPart;

use super::{table, Block};

/// Whether any API of the run has a start-up breakdown.
pub(super) fn any_startup(r: &Results) -> bool {
    r.apis.iter().any(|a| a.startup.is_some())
}

/// The section's blocks; call only when [`any_startup`].
pub(super) fn startup(r: &Results) -> Vec<Block> {
    let s = |x: f64| format!("{x:.0}");
    let rows = r
        .apis
        .iter()
        .filter_map(|a| a.startup.as_ref().map(|b| (a, b)))
        .flat_map(|(a, b)| {
            let parts: [(String, StartupPart); 5] = [
                ("scheduling (incl. node boot)".into(), b.scheduling),
                (
                    format!("image pull ({} of {} cached)", b.cached_pulls, b.replicas),
                    b.image_pull,
                ),
                (format!("model fetch ({})", b.model_source), b.model_fetch),
                ("load and warm-up".into(), b.load),
                ("total".into(), b.total),
            ];
            let total = b.total.mean_s;
            parts.into_iter().map(move |(what, p)| {
                let share = if total > 0.0 {
                    format!("{:.0} %", 100.0 * p.mean_s / total)
                } else {
                    "–".into()
                };
                vec![
                    a.name.clone(),
                    what,
                    s(p.mean_s),
                    s(p.p50_s),
                    s(p.max_s),
                    share,
                ]
            })
        })
        .collect();
    vec![
        table(
            &["API", "part", "mean s", "median s", "max s", "share of mean"],
            &[false, false, true, true, true, true],
            rows,
        ),
        Block::Para(
            "Each replica started after t = 0 waits for a node (scheduling, including a new node's boot), pulls its image unless its node already has it (a replica arriving during a pull waits for that pull), fetches its model weights and loads them; each part is drawn per replica. The sum is the lag a reactive autoscaler pays on every scale-up, and the lead a predictive one must forecast over.".into(),
        ),
    ]
}
