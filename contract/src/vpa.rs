//! A Vertical Pod Autoscaler's recommendation (part of `simctl.results/v1`): what an API's pods
//! should request, from the usage the run recorded, and what that does to bin-packing.
//! Re-exported from [`crate::results`].

use serde::{Deserialize, Serialize};

/// CPU and memory of one pod, as the VPA states them (whole millicores and bytes).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PodResources {
    /// CPU, millicores.
    pub cpu_millicores: i64,
    /// Memory, bytes.
    pub memory_bytes: i64,
}

impl PodResources {
    /// The memory in GiB to two decimals from 1 GiB up, else in whole MiB, with the unit
    /// written as `gib` or `mib` (`"Gi"` as Kubernetes, `" GiB"` in prose).
    pub fn memory_text(&self, gib: &str, mib: &str) -> String {
        let m = self.memory_bytes as f64 / (1024.0 * 1024.0);
        if m >= 1024.0 {
            format!("{:.2}{gib}", m / 1024.0)
        } else {
            format!("{m:.0}{mib}")
        }
    }
}

/// The VPA recommender's answer for an API at the end of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VpaResults {
    /// `updatePolicy.updateMode` (`Off`: recommended only).
    pub update_mode: String,
    /// Pods the updater evicted so that their replacements got the target (`Recreate`,
    /// `InPlaceOrRecreate` where the node had no room).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evictions: u64,
    /// Pods the updater resized in place (`InPlaceOrRecreate`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_place_resizes: u64,
    /// What a new pod got from the admission controller at the end of the run (every mode but
    /// `Off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<PodResources>,
    /// What each pod requested during the run.
    pub requested: PodResources,
    /// What to request: p90 of usage plus 15 %.
    pub target: PodResources,
    /// Below this a pod is under-provisioned (the updater evicts it in `Auto`).
    pub lower_bound: PodResources,
    /// Above this a pod is over-provisioned.
    pub upper_bound: PodResources,
    /// CPU usage samples aggregated (one per ready pod per recommender interval).
    pub samples: u64,
    /// OOM kills the recommender saw (each bumps the memory peak by 20 %, at least 100 MiB).
    pub oom_kills: u64,
    /// How many pods fit a node of each node group the API may use, at the requests and at the
    /// target (GPUs unchanged).
    pub pods_per_node: Vec<PodsPerNode>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Pods of one API that fit one node of a group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodsPerNode {
    /// Node group.
    pub group: String,
    /// At the run's requests.
    pub at_requests: u32,
    /// At the VPA's target.
    pub at_target: u32,
}
