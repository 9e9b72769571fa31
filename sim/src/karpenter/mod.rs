//! Karpenter's decisions over plain data: which nodes to launch for pending pods
//! ([`provision`]), which launch offering to take ([`choose_offering`]), and which nodes to
//! delete or replace ([`disrupt`]), with NodePool disruption budgets ([`budget`]).
//!
//! Nothing here knows the engine: the engine's Karpenter room gathers pending pods and node
//! views, calls these functions, and carries out the answers. Each Karpenter-launched node is a
//! node of a synthetic node group per (NodePool, instance type, capacity type) — an
//! [`Offering`] — so the scheduler, billing, utilisation and spot reclaims treat it like any
//! other node.
//!
//! Followed upstream (kubernetes-sigs/karpenter @2266468, aws/karpenter-provider-aws @1d92708):
//! `pkg/controllers/provisioning/{batcher.go,provisioner.go,scheduling/scheduler.go}`,
//! `pkg/controllers/disruption/{emptiness.go,consolidation.go,singlenodeconsolidation.go,
//! multinodeconsolidation.go}`, `pkg/apis/v1/nodepool.go` (budgets), and the AWS provider's
//! `pkg/providers/instance/instance.go` (price-capacity-optimized spot, lowest-price
//! on-demand), `pkg/cache/cache.go` (3-minute unavailable offerings).

pub mod budget;
mod consolidate;
mod provision;

pub use budget::{Budget, BudgetNodes, CronSchedule};
pub use consolidate::{disrupt, Candidate, Command, NodeView};
pub use provision::{choose_offering, provision, Inflight, NodeClaim, Plan};

use crate::scenario::Requests;
use crate::time::SimTime;

/// How long an offering that failed to launch (insufficient capacity, or a spot interruption
/// notice) is skipped: the AWS provider's unavailable-offerings cache TTL
/// (`pkg/cache/cache.go`, `UnavailableOfferingsTTL = 3 * time.Minute`).
pub const UNAVAILABLE_OFFERING_TTL: SimTime = SimTime(180_000_000_000);

/// The AWS provider sends at most this many instance types to CreateFleet
/// (`instance.go`, `maxInstanceTypes = 60`).
pub const MAX_INSTANCE_TYPES: usize = 60;

/// Spot-to-spot single-node consolidation needs this many cheaper types
/// (`consolidation.go`, `MinInstanceTypesForSpotToSpotConsolidation`); the feature gate is off
/// by default, and off here.
pub const MIN_TYPES_FOR_SPOT_TO_SPOT: usize = 15;

/// Multi-node consolidation looks at no more candidates than this
/// (`multinodeconsolidation.go`: "a maximum batch of 100 NodeClaims", `maxParallel`).
pub const MAX_MULTI_NODE_CANDIDATES: usize = 100;

/// One thing Karpenter can launch: an instance type in one capacity type, within one NodePool.
#[derive(Debug, Clone, PartialEq)]
pub struct Offering {
    /// The NodePool (index) it belongs to.
    pub pool: usize,
    /// The synthetic node group its nodes belong to.
    pub group: usize,
    /// EC2 instance type.
    pub instance_type: String,
    /// Spot (or on-demand).
    pub spot: bool,
    /// What a node costs, USD per hour.
    pub price_usd_per_hour: f64,
    /// Room for pods on an empty node (allocatable less DaemonSets).
    pub capacity: Requests,
    /// The node's capacity as NodePool `limits` count it.
    pub resources: Resources,
    /// Spot Advisor interruption bucket as a rank, 0 (<5 %) to 4 (>20 %), 5 unknown: the
    /// capacity proxy of the price-capacity-optimized rule (see [`choose_offering`]).
    pub interruption_rank: u8,
}

/// Resources as NodePool `limits` count them: node capacity, not pod requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// vCPUs × 1000.
    pub cpu_m: u64,
    /// Memory, MiB.
    pub mem_mib: u64,
    /// GPUs (`nvidia.com/gpu`).
    pub gpu: u64,
    /// Nodes.
    pub nodes: u64,
}

impl Resources {
    /// The sum.
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            cpu_m: self.cpu_m + o.cpu_m,
            mem_mib: self.mem_mib + o.mem_mib,
            gpu: self.gpu + o.gpu,
            nodes: self.nodes + o.nodes,
        }
    }

    /// The larger of each resource.
    pub fn max(self, o: Resources) -> Resources {
        Resources {
            cpu_m: self.cpu_m.max(o.cpu_m),
            mem_mib: self.mem_mib.max(o.mem_mib),
            gpu: self.gpu.max(o.gpu),
            nodes: self.nodes.max(o.nodes),
        }
    }
}

/// NodePool `limits`: a launch that would take the pool's total capacity over any of them is
/// not made. `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `cpu`, millicores of vCPU capacity.
    pub cpu_m: Option<u64>,
    /// `memory`, MiB.
    pub mem_mib: Option<u64>,
    /// `nvidia.com/gpu`.
    pub gpu: Option<u64>,
    /// `nodes`.
    pub nodes: Option<u64>,
}

impl Limits {
    /// Whether `used` stays within every limit.
    pub fn allow(&self, used: Resources) -> bool {
        let ok = |limit: Option<u64>, v: u64| limit.is_none_or(|l| v <= l);
        ok(self.cpu_m, used.cpu_m)
            && ok(self.mem_mib, used.mem_mib)
            && ok(self.gpu, used.gpu)
            && ok(self.nodes, used.nodes)
    }
}

/// `disruption.consolidationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsolidationPolicy {
    /// Only empty nodes are removed.
    WhenEmpty,
    /// Empty nodes are removed, and under-used ones deleted or replaced with a cheaper node.
    WhenEmptyOrUnderutilized,
}

/// Why a node is disrupted, as budgets name it (`reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An empty node.
    Empty,
    /// Consolidation of an under-used node (delete or replace).
    Underutilized,
    /// Drift (accepted in budgets; the simulator never drifts a node).
    Drifted,
}

/// A validated NodePool.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePool {
    /// Name.
    pub name: String,
    /// Higher is tried first (`weight`).
    pub weight: i32,
    /// Its offerings (indices into [`Karpenter::offerings`]).
    pub offerings: Vec<usize>,
    /// `limits`.
    pub limits: Limits,
    /// `disruption.consolidationPolicy`.
    pub policy: ConsolidationPolicy,
    /// `disruption.consolidateAfter`: a node is consolidatable this long after its last pod
    /// came or went; `None` is `Never`.
    pub consolidate_after: Option<SimTime>,
    /// `disruption.budgets` (default: one budget of 10 % for every reason).
    pub budgets: Vec<Budget>,
    /// `expireAfter`: nodes are replaced this long after launch; `None` is `Never`.
    pub expire_after: Option<SimTime>,
}

/// Karpenter as a scenario configures it: the pools, every offering they may launch, and the
/// provisioner's batch window.
#[derive(Debug, Clone, PartialEq)]
pub struct Karpenter {
    /// NodePools, in file order.
    pub pools: Vec<NodePool>,
    /// Every pool's offerings; offering `i`'s nodes are node group `offerings[i].group`.
    pub offerings: Vec<Offering>,
    /// A batch closes this long after the last pending pod joined it (`BATCH_IDLE_DURATION`).
    pub batch_idle: SimTime,
    /// … or this long after it opened (`BATCH_MAX_DURATION`).
    pub batch_max: SimTime,
}

/// A pending pod as provisioning and consolidation see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    /// Requests.
    pub requests: Requests,
    /// Node groups it may run on (selector and tolerations).
    pub groups: Vec<usize>,
}

/// `a + b`.
pub(crate) fn add(a: &Requests, b: &Requests) -> Requests {
    let mut mig = a.mig;
    mig.iter_mut().zip(&b.mig).for_each(|(x, y)| *x += y);
    Requests {
        cpu_m: a.cpu_m + b.cpu_m,
        mem_mib: a.mem_mib + b.mem_mib,
        gpu: a.gpu + b.gpu,
        mig,
    }
}

/// Whether `requests` fit in `capacity`.
pub(crate) fn fits(capacity: &Requests, requests: &Requests) -> bool {
    let mut free = *capacity;
    crate::cluster::take_if_fits(&mut free, requests)
}

/// Pods in the order Karpenter's queue packs them: CPU, then memory, descending
/// (`scheduling/queue.go`); ties keep their order.
pub(crate) fn packing_order(pods: &[Pod]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&pods[a].requests, &pods[b].requests);
        rb.cpu_m.cmp(&ra.cpu_m).then(rb.mem_mib.cmp(&ra.mem_mib))
    });
    order
}

#[cfg(test)]
pub(crate) mod fixtures;

/// The Spot Advisor bucket as a rank (lower: fewer interruptions, read as more capacity).
pub fn interruption_rank(bucket: &str) -> u8 {
    match bucket {
        "<5%" => 0,
        "5-10%" => 1,
        "10-15%" => 2,
        "15-20%" => 3,
        ">20%" => 4,
        _ => 5,
    }
}

impl Offering {
    /// The offering of node group `group` (index `group_index`), in pool `pool`.
    pub fn of_group(
        pool: usize,
        group_index: usize,
        group: &crate::scenario::NodeGroup,
    ) -> Offering {
        Offering {
            pool,
            group: group_index,
            instance_type: group.instance.name.clone(),
            spot: group.spot,
            price_usd_per_hour: group.price_usd_per_hour,
            capacity: Requests {
                cpu_m: group.pod_cpu_m,
                mem_mib: group.pod_mem_mib,
                gpu: group.gpu_slots(),
                mig: group.mig,
            },
            resources: Resources {
                cpu_m: u64::from(group.instance.vcpu) * 1000,
                mem_mib: group.instance.alloc_mem_mib,
                gpu: u64::from(group.instance.gpus),
                nodes: 1,
            },
            interruption_rank: interruption_rank(group.instance.interruption_bucket),
        }
    }
}
