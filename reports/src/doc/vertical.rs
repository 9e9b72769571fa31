//! The "Vertical sizing" section, shown when some API has a VPA: what its pods requested, what
//! the VPA recommender would have them request, its bounds, and how many pods fit a node either
//! way — the bin-packing a right-size buys.

use contract::results::{PodResources, Results};

use super::{table, Block};

/// Whether any API of the run has a VPA recommendation.
pub(super) fn any_vpa(r: &Results) -> bool {
    r.apis.iter().any(|a| a.vpa.is_some())
}

fn cpu(p: &PodResources) -> String {
    format!("{}m", p.cpu_millicores)
}

fn memory(p: &PodResources) -> String {
    p.memory_text(" GiB", " MiB")
}

/// The section's blocks; call only when [`any_vpa`].
pub(super) fn vertical(r: &Results) -> Vec<Block> {
    let apis = || r.apis.iter().filter_map(|a| a.vpa.as_ref().map(|v| (a, v)));
    let rows = apis()
        .flat_map(|(a, v)| {
            [
                ("requested", v.requested),
                ("target", v.target),
                ("lower bound", v.lower_bound),
                ("upper bound", v.upper_bound),
            ]
            .into_iter()
            .map(move |(what, p)| vec![a.name.clone(), what.to_string(), cpu(&p), memory(&p)])
        })
        .collect();
    let mut blocks = vec![
        table(
            &["API", "per pod", "CPU", "memory"],
            &[false, false, true, true],
            rows,
        ),
        Block::Para(
            "The Vertical Pod Autoscaler's recommender (kubernetes/autoscaler's algorithm) sampled every ready pod each minute: CPU in use and memory held. The target is the 90th percentile of CPU samples and of memory peaks, plus a 15 % margin; the bounds (50th and 95th percentiles, widened while the history is short) are where its updater would evict a pod. In update mode Off nothing was applied: set compute.cpu and compute.mem to the target, or update_mode to Initial, Recreate or InPlaceOrRecreate, and run again to see the cost.".into(),
        ),
    ];
    let applied: Vec<String> = apis()
        .filter_map(|(a, v)| {
            let admitted = v.admitted.as_ref()?;
            Some(format!(
                "{} ({}): new pods got {} CPU and {} from the admission controller by the end; the updater evicted {} pods and resized {} in place.",
                a.name,
                v.update_mode,
                cpu(admitted),
                memory(admitted),
                v.evictions,
                v.in_place_resizes
            ))
        })
        .collect();
    if !applied.is_empty() {
        blocks.push(Block::Para(format!(
            "Applied during the run — the node-hours and cost above include it: {}",
            applied.join(" ")
        )));
    }
    let rows = apis()
        .flat_map(|(a, v)| {
            v.pods_per_node.iter().map(move |g| {
                vec![
                    a.name.clone(),
                    g.group.clone(),
                    g.at_requests.to_string(),
                    g.at_target.to_string(),
                ]
            })
        })
        .collect();
    blocks.push(table(
        &[
            "API",
            "node group",
            "pods per node at the requests",
            "at the target",
        ],
        &[false, false, true, true],
        rows,
    ));
    blocks
}
