//! The "Karpenter" section: per NodePool, what was launched, what was disrupted and why, the
//! replica restarts those disruptions caused, and where the node-hours went.

use contract::results::KarpenterResults;

use super::{table, usd, Block};

/// Launches, terminations by reason, restarts and cost per NodePool.
pub(super) fn karpenter(k: &KarpenterResults) -> Vec<Block> {
    let mut blocks = vec![Block::Para(format!(
        "Karpenter launched {} nodes and removed {} (node churn {}). Consolidation deletes empty nodes and nodes whose pods fit elsewhere, or replaces a node with a cheaper one; each disruption restarts the node's replicas elsewhere, paying their start-up again (`consolidate_after` is the knob).",
        k.pools.iter().map(|p| p.launches).sum::<u64>(),
        k.pools.iter().map(|p| p.terminations.total()).sum::<u64>(),
        k.node_churn(),
    ))];
    let rows = k
        .pools
        .iter()
        .map(|p| {
            let t = &p.terminations;
            vec![
                p.name.clone(),
                format!("{} ({} spot)", p.launches, p.spot_launches),
                p.insufficient_capacity.to_string(),
                t.empty.to_string(),
                t.underutilized_deleted.to_string(),
                t.underutilized_replaced.to_string(),
                t.expired.to_string(),
                t.interrupted.to_string(),
                p.replica_restarts.to_string(),
                format!("{:.1}", p.node_hours),
                usd(p.cost_usd),
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "node pool",
            "launches",
            "insufficient capacity",
            "empty",
            "deleted (pods fit elsewhere)",
            "replaced (cheaper)",
            "expired",
            "interrupted",
            "replica restarts",
            "node-hours",
            "cost (USD)",
        ],
        &[
            false, true, true, true, true, true, true, true, true, true, true,
        ],
        rows,
    ));
    let rows = k
        .pools
        .iter()
        .flat_map(|p| {
            p.node_hours_by_offering
                .iter()
                .map(|(o, h)| vec![p.name.clone(), o.clone(), format!("{h:.1}")])
        })
        .collect();
    blocks.push(table(
        &["node pool", "instance / capacity type", "node-hours"],
        &[false, false, true],
        rows,
    ));
    blocks
}
