//! `simctl tune merge`: shard reports of one sweep combined into exactly the report of the
//! unsharded run (candidates are independent, so the union of the shards' candidates, finalized
//! once, is what one process would have found).

use super::{finalize, TuneReport, SCHEMA};

/// Why shard reports cannot be merged into one; `input` counts the reports from 1, in the order
/// given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No reports.
    #[error("nothing to merge")]
    Empty,
    /// Not a tune report of this version.
    #[error("input {input}: schema \"{schema}\", expected \"{SCHEMA}\"")]
    Schema {
        /// Which report.
        input: usize,
        /// Its schema tag.
        schema: String,
    },
    /// A report of another sweep.
    #[error("input {input}: not a shard of the same sweep (scenario, seeds or space differ)")]
    OtherSweep {
        /// Which report.
        input: usize,
    },
    /// An unsharded report.
    #[error("input {input}: not a shard report (no \"shard\")")]
    NotAShard {
        /// Which report.
        input: usize,
    },
    /// The same shard twice, or shards of different splits.
    #[error("input {input}: shard {index}/{count} duplicated or from a different split")]
    DuplicateShard {
        /// Which report.
        input: usize,
        /// Its shard index.
        index: u32,
        /// Its shard count.
        count: u32,
    },
    /// Shards not given.
    #[error("missing shards: {shards}")]
    Missing {
        /// The missing shards as `i/n`, comma-separated.
        shards: String,
    },
}

/// Combine shard reports into the report of the unsharded run.
pub fn merge(mut shards: Vec<TuneReport>) -> Result<TuneReport, MergeError> {
    let Some(first) = shards.first().cloned() else {
        return Err(MergeError::Empty);
    };
    let count = first.shard.map_or(1, |s| s.count);
    let mut seen = vec![false; count as usize];
    for (i, s) in shards.iter().enumerate() {
        if s.schema != SCHEMA {
            return Err(MergeError::Schema {
                input: i + 1,
                schema: s.schema.clone(),
            });
        }
        if s.scenario_toml != first.scenario_toml
            || s.seeds != first.seeds
            || s.parameters != first.parameters
            || s.search != first.search
            || s.traffic_bootstrap_block_s != first.traffic_bootstrap_block_s
            || s.risk != first.risk
        {
            return Err(MergeError::OtherSweep { input: i + 1 });
        }
        let Some(shard) = s.shard else {
            return Err(MergeError::NotAShard { input: i + 1 });
        };
        if shard.count != count || shard.index >= count || seen[shard.index as usize] {
            return Err(MergeError::DuplicateShard {
                input: i + 1,
                index: shard.index,
                count: shard.count,
            });
        }
        seen[shard.index as usize] = true;
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            shards: missing.join(", "),
        });
    }
    let mut merged = first;
    merged.shard = None;
    merged.interrupted = shards.iter().any(|s| s.interrupted);
    merged.candidates = shards
        .iter_mut()
        .flat_map(|s| s.candidates.drain(..))
        .collect();
    finalize(&mut merged);
    Ok(merged)
}
