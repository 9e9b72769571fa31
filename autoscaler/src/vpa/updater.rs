//! The VPA updater: which running pods to update to the recommendation, in which order, and
//! how many may be evicted at once — kubernetes/autoscaler `vertical-pod-autoscaler/pkg/updater`
//! at 55c37cd: `priority/priority_processor.go` (a pod's priority), `priority/
//! update_priority_calculator.go` (which pods qualify and their order), `restriction/
//! pods_eviction_restriction.go` and `pods_restriction_factory.go` (the eviction budget) and
//! `config/config.go` (the defaults). The updater runs every `interval`; the admission
//! controller gives every new pod the recommendation's target, so an evicted pod comes back at
//! the target. Not modelled: the quick-OOM rule (evict a pod that OOMed within 10 minutes of its
//! start) and the in-place mode's infeasible-attempt memory.

use std::time::Duration;

use super::{Recommendation, Resources};

/// The updater's flags, upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdaterConfig {
    /// `--updater-interval` (1 min): how often pods are considered.
    pub interval: Duration,
    /// `--min-replicas` (2), or `updatePolicy.minReplicas`: a workload with fewer configured
    /// replicas is never evicted from.
    pub min_replicas: u32,
    /// `--eviction-tolerance` (0.5): the share of the configured replicas that may be down for
    /// an update at once.
    pub eviction_tolerance: f64,
    /// `--pod-update-threshold` (0.1): the smallest summed relative change worth an update of
    /// a pod whose requests are within the recommended range.
    pub min_change_priority: f64,
    /// `--in-recommendation-bounds-eviction-lifetime-threshold` (12 h): a pod within the range
    /// is updated only once it has lived this long.
    pub pod_lifetime_update_threshold: Duration,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            min_replicas: 2,
            eviction_tolerance: 0.5,
            min_change_priority: 0.1,
            pod_lifetime_update_threshold: Duration::from_secs(12 * 3600),
        }
    }
}

/// How much a pod wants the recommendation (`PodPriority`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PodPriority {
    /// Some request is below the lower bound or above the upper bound.
    pub outside_recommended_range: bool,
    /// Some target is above its request.
    pub scale_up: bool,
    /// Σ over resources of |request − target| / request.
    pub resource_diff: f64,
}

impl PodPriority {
    /// `GetUpdatePriority` for a pod requesting `requests`. A resource the recommendation
    /// leaves at 0 is not recommended (upstream: a target without it) and counts for nothing.
    pub fn of(requests: Resources, recommendation: &Recommendation) -> Self {
        let r = recommendation;
        let mut p = PodPriority::default();
        for (request, target, lower, upper) in [
            (
                requests.cpu_millicores,
                r.target.cpu_millicores,
                r.lower_bound.cpu_millicores,
                r.upper_bound.cpu_millicores,
            ),
            (
                requests.memory_bytes,
                r.target.memory_bytes,
                r.lower_bound.memory_bytes,
                r.upper_bound.memory_bytes,
            ),
        ] {
            if target == 0 {
                continue;
            }
            if target > request {
                p.scale_up = true;
            }
            // An unset bound is 0: no lower bound, and (upstream: absent) no upper bound.
            if (lower > 0 && request < lower) || (upper > 0 && request > upper) {
                p.outside_recommended_range = true;
            }
            let request = (request as f64).max(1.0);
            p.resource_diff += (request - target as f64).abs() / request;
        }
        p
    }

    /// `PodPriority.Less`: a pod that wants to grow goes first, then the larger change.
    pub fn less(&self, other: &PodPriority) -> bool {
        if self.scale_up != other.scale_up {
            return other.scale_up;
        }
        self.resource_diff < other.resource_diff
    }
}

/// The pods to update, highest priority first (`AddPod` then `GetSortedPods`): each pod is its
/// priority and how long it has run. A pod qualifies when a request is outside the recommended
/// range, or when it has run `pod_lifetime_update_threshold` and its change is at least
/// `min_change_priority`. Returns indices into `pods`.
pub fn pods_to_update(config: &UpdaterConfig, pods: &[(PodPriority, Duration)]) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..pods.len())
        .filter(|&i| {
            let (p, age) = pods[i];
            p.outside_recommended_range
                || (age >= config.pod_lifetime_update_threshold
                    && p.resource_diff >= config.min_change_priority)
        })
        .collect();
    // Stable, highest first, as upstream sorts with `b.Less(a)`.
    chosen.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a].0, &pods[b].0);
        if pb.less(pa) {
            std::cmp::Ordering::Less
        } else if pa.less(pb) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    chosen
}

/// How many pods of one workload may be down for an update (`singleGroupStats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvictionBudget {
    configured: u32,
    running: u32,
    tolerance: u32,
    evicted: u32,
    below_min_replicas: bool,
}

impl EvictionBudget {
    /// A workload with `configured` replicas, `running` of them running, at one updater pass.
    pub fn new(config: &UpdaterConfig, configured: u32, running: u32) -> Self {
        Self {
            configured,
            running,
            // Truncated, as upstream's int(float64(configured) * fraction).
            tolerance: (f64::from(configured) * config.eviction_tolerance) as u32,
            evicted: 0,
            below_min_replicas: configured < config.min_replicas,
        }
    }

    /// `CanEvict` for a running pod (`isPodDisruptable`): more pods alive than must stay, or,
    /// when the tolerance rounds to zero, one pod of a workload whose pods all run.
    pub fn can_evict(&self) -> bool {
        if self.below_min_replicas {
            return false;
        }
        let should_be_alive = self.configured.saturating_sub(self.tolerance);
        let alive = self.running.saturating_sub(self.evicted);
        alive > should_be_alive
            || (self.configured == self.running && self.tolerance == 0 && self.evicted == 0)
    }

    /// One pod was evicted (or started an in-place update).
    pub fn evicted(&mut self) {
        self.evicted += 1;
    }
}

#[cfg(test)]
mod tests;
