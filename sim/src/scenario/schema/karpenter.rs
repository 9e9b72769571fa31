//! `[[node_pools]]`: Karpenter NodePools as a scenario declares them, and `[cluster.karpenter]`
//! (the provisioner's batching). Field names are Karpenter's (`pkg/apis/v1/nodepool.go`) in
//! snake case; requirement keys and values are Karpenter's own labels, so a NodePool's YAML
//! translates line by line.

use serde::{Deserialize, Serialize};

use super::BootTimeSpec;
use crate::units::{DurationSpec, Quantity};

/// One Karpenter NodePool.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodePoolSpec {
    /// Unique name (also usable in APIs' `node_groups` selectors).
    pub name: String,
    /// Pools with a higher weight are tried first (default 0).
    #[serde(default)]
    pub weight: i32,
    /// Which offerings the pool may launch: `karpenter.k8s.aws/instance-family`, `-size`,
    /// `-category`, `-gpu-count`, `node.kubernetes.io/instance-type` and
    /// `karpenter.sh/capacity-type` (default: on-demand only, as upstream).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<RequirementSpec>,
    /// The pool's total capacity cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
    /// Consolidation and its budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<DisruptionSpec>,
    /// Nodes are replaced this long after launch: a duration or `"Never"` (default 720h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
    /// Launch-to-Ready time of the pool's nodes (default as node groups': CPU median 55s /
    /// p99 100s, GPU 180s / 300s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<BootTimeSpec>,
    /// Spot nodes of each instance type obtainable at once; a launch beyond fails with
    /// insufficient capacity (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_capacity: Option<u32>,
    /// Probability that a spot launch fails with insufficient capacity (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_launch_failure: Option<f64>,
    /// Spot interruptions per instance-hour (default: each type's Spot Advisor bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruption_rate: Option<f64>,
    /// Probability each other spot node of the same type goes in the same reclaim (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_interruption: Option<f64>,
}

/// A node selector requirement: `{ key = "...", operator = "In", values = [...] }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequirementSpec {
    /// The label.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`.
    pub operator: String,
    /// Values (one integer for `Gt` and `Lt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `limits`: caps on the pool's total node capacity.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// vCPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// GPUs.
    #[serde(
        default,
        rename = "nvidia.com/gpu",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpu: Option<u64>,
    /// Nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
}

/// `disruption`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DisruptionSpec {
    /// `WhenEmpty` or `WhenEmptyOrUnderutilized` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_policy: Option<String>,
    /// How long after its last pod came or went a node may be consolidated: a duration or
    /// `"Never"` (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidate_after: Option<String>,
    /// Disruption budgets (default one: `nodes = "10%"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetSpec>,
}

/// One disruption budget.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// `"5"` nodes or `"10%"` of the pool's nodes.
    pub nodes: String,
    /// `Empty`, `Underutilized`, `Drifted` (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Cron schedule (minute and hour only) opening the budget's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Window length after each schedule hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
}

/// `[cluster.karpenter]`: the provisioner's settings (Karpenter's `BATCH_IDLE_DURATION`,
/// `BATCH_MAX_DURATION`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KarpenterSpec {
    /// A batch of pending pods closes after this long without a new one (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_idle_duration: Option<DurationSpec>,
    /// … or this long after it opened (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_max_duration: Option<DurationSpec>,
}
