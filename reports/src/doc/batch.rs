//! The "Batch jobs" section: how long each job took, what became of its batches, what it cost.

use contract::results::Results;

use super::{span, table, usd, Block};

/// Batch jobs: how long each took, what became of its batches, what it cost.
pub(super) fn batch_jobs(r: &Results) -> Vec<Block> {
    let rows = r
        .batch_jobs
        .iter()
        .map(|j| {
            vec![
                j.name.clone(),
                j.status.replace('_', " "),
                j.completion_time_s.map_or("–".into(), span),
                format!("{} / {}", j.succeeded, j.batches),
                j.dead_lettered.to_string(),
                j.failed.to_string(),
                j.failed_attempts.to_string(),
                j.interrupted_attempts.to_string(),
                j.worker_starts.to_string(),
                usd(j.cost_usd),
            ]
        })
        .collect();
    vec![table(
        &[
            "job",
            "status",
            "completion time",
            "batches succeeded",
            "dead-lettered",
            "failed (no DLQ)",
            "failed attempts",
            "attempts lost to interruptions",
            "worker starts",
            "cost (USD)",
        ],
        &[false, false, true, true, true, true, true, true, true, true],
        rows,
    )]
}
