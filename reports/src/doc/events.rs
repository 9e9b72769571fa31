//! The "Events" section of a run: how many events of each kind, the first capacity events
//! (scale-ups, node launches and terminations, interruptions) as a table, and the first "why"
//! sentences (what bound each decision, why the cluster autoscaler did not act).

use std::collections::BTreeMap;

use contract::results::{Event, EventKind, Results};

use super::timeline::is_scale_up;
use super::{clock, table, Block};

/// Rows of the event table.
const MAX_EVENT_ROWS: usize = 40;
/// Rows of the "why" table.
const MAX_WHY_ROWS: usize = 40;

pub(super) fn events(r: &Results) -> Vec<Block> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &r.events {
        *counts.entry(e.kind.name()).or_default() += 1;
    }
    let ups = r.events.iter().filter(|e| is_scale_up(e)).count();
    let mut blocks = vec![Block::Para(format!(
        "{} event(s) logged{}, of which {ups} scale-up(s). Spot interruptions and failed launches are marked on the timelines.",
        r.events.len(),
        if r.events_dropped > 0 {
            format!(" ({} more dropped at the log's cap)", r.events_dropped)
        } else {
            String::new()
        }
    ))];
    if counts.is_empty() {
        return blocks;
    }
    blocks.push(table(
        &["kind", "count"],
        &[false, true],
        counts
            .iter()
            .map(|(k, n)| vec![(*k).to_string(), n.to_string()])
            .collect(),
    ));
    blocks.extend(whys(r));
    let notable: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| {
            is_scale_up(e)
                || matches!(
                    e.kind,
                    EventKind::SpotInterruption
                        | EventKind::FailedLaunch
                        | EventKind::NodeLaunch
                        | EventKind::NodeTerminate
                        | EventKind::Eviction
                        | EventKind::Preemption
                )
        })
        .collect();
    if notable.is_empty() {
        return blocks;
    }
    let shown = notable.len().min(MAX_EVENT_ROWS);
    blocks.push(Block::Para(if notable.len() > shown {
        format!(
            "The first {shown} of {} capacity events (scale-ups, node launches and terminations, interruptions, evictions):",
            notable.len()
        )
    } else {
        "Capacity events (scale-ups, node launches and terminations, interruptions, evictions):"
            .into()
    }));
    blocks.push(table(
        &["time", "kind", "API / group", "what"],
        &[true, false, false, false],
        notable
            .iter()
            .take(shown)
            .map(|e| event_row(e, &e.message))
            .collect(),
    ));
    blocks
}

/// One event's row: when, what kind, its API (or node group), and `text`.
fn event_row(e: &Event, text: &str) -> Vec<String> {
    vec![
        clock(e.t_s),
        e.kind.name().to_string(),
        e.api
            .clone()
            .or_else(|| e.node_group.clone())
            .unwrap_or_default(),
        text.to_string(),
    ]
}

/// The "why" sentences of decisions a rule bound and of cluster-autoscaler passes that did not
/// act, first ones first; nothing for results without them.
fn whys(r: &Results) -> Vec<Block> {
    let rows: Vec<(&Event, &str)> = r
        .events
        .iter()
        .filter_map(|e| {
            let w = e.kind.why()?;
            (!w.rule.is_empty()).then_some((e, w.sentence.as_str()))
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    let shown = rows.len().min(MAX_WHY_ROWS);
    vec![
        Block::Para(format!(
            "Why it did (not) scale{}: the rule that bound each decision, and why the cluster autoscaler left pods pending or nodes in place (`simctl explain` prints them around any moment).",
            if rows.len() > shown {
                format!(", the first {shown} of {}", rows.len())
            } else {
                String::new()
            }
        )),
        table(
            &["time", "kind", "API / group", "why"],
            &[true, false, false, false],
            rows.iter()
                .take(shown)
                .map(|(e, why)| event_row(e, why))
                .collect(),
        ),
    ]
}
