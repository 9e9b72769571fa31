//! Utilisation (part of `simctl.results/v1`): what an API's replicas and a node group's nodes
//! requested against what busy workers used. Re-exported from [`crate::results`].

use serde::{Deserialize, Serialize};

/// How busy an API's replicas were, against what they requested. Busy means a worker executing
/// a request; a busy worker is counted as using its share of the pod's CPU and GPU requests.
/// Sampled at every timeline step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct ApiUtilisation {
    /// Busy workers over ready workers, averaged over the run.
    pub busy_share: f64,
    /// The busiest timeline step's busy share (1 − this is the headroom left at the peak).
    pub peak_busy_share: f64,
    /// CPU requested by its replicas (starting and ready), core-hours.
    pub cpu_requested_core_hours: f64,
    /// CPU used by busy workers, core-hours.
    pub cpu_busy_core_hours: f64,
    /// GPUs requested by its replicas, GPU-hours.
    pub gpu_requested_hours: f64,
    /// GPUs used by busy workers, GPU-hours.
    pub gpu_busy_hours: f64,
}

/// A node group's capacity, what pods requested of it, and what busy workers used. Sampled at
/// every timeline step over Ready nodes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct GroupUtilisation {
    /// Allocatable CPU of its ready nodes, core-hours.
    pub cpu_capacity_core_hours: f64,
    /// CPU requested by pods on them, core-hours.
    pub cpu_requested_core_hours: f64,
    /// CPU used by busy workers, core-hours.
    pub cpu_busy_core_hours: f64,
    /// GPUs of its ready nodes, GPU-hours.
    pub gpu_capacity_hours: f64,
    /// GPUs requested by pods on them, GPU-hours.
    pub gpu_requested_hours: f64,
    /// GPUs used by busy workers, GPU-hours.
    pub gpu_busy_hours: f64,
}

/// `part / whole`, 0 when the whole is 0.
pub fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}
