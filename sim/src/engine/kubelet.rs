//! The kubelet room: node memory, node-pressure eviction and OOM kills.
//!
//! It knows what each pod really uses (an API's `mem_usage_mib`, which may exceed its request)
//! and which nodes have a memory check scheduled; it reads the pods on a node from the cluster
//! and tells the loop which pod to evict. Whether a replica's model loads (memory limit, shared
//! GPU memory) and how long CrashLoopBackOff waits are its rules too.

use std::collections::BTreeSet;

use super::{Agenda, EventKind};
use crate::cluster::{Cluster, NodeId, NodeState, PodRef, SharedGpu};
use crate::results::Event;
use crate::scenario::{Api, Scenario};
use crate::time::SimTime;

/// How often the kubelet checks for memory pressure (its housekeeping interval).
const MEMORY_CHECK_INTERVAL: SimTime = SimTime(10_000_000_000);

/// Memory use per API and the nodes with a memory-pressure check scheduled.
pub(super) struct Kubelet {
    /// Each API's replicas' real memory use, MiB.
    mem_usage: Vec<u64>,
    checks: BTreeSet<usize>,
}

impl Kubelet {
    /// No check scheduled yet.
    pub(super) fn new(scenario: &Scenario) -> Self {
        Kubelet {
            mem_usage: scenario.apis.iter().map(|a| a.mem_usage_mib).collect(),
            checks: BTreeSet::new(),
        }
    }

    /// (memory used, memory requested, priority) of a pod bound with `requested` MiB.
    fn pod_memory(&self, pod: PodRef, requested: u64, priority: i32) -> (u64, u64, i32) {
        match pod {
            PodRef::Replica { api, .. } => (self.mem_usage[api as usize], requested, priority),
            _ => (requested, requested, priority),
        }
    }

    /// Memory the pods on a node really use, MiB.
    fn memory_used(&self, node: NodeId, cluster: &Cluster) -> u64 {
        cluster
            .node(node)
            .pods
            .iter()
            .map(|p| self.pod_memory(p.0, p.1.mem_mib, p.2).0)
            .sum()
    }

    fn memory_capacity(node: NodeId, cluster: &Cluster) -> u64 {
        cluster.groups()[cluster.node(node).group].pod_mem_mib
    }

    /// A pod was bound to `node`: if the node is now over its memory, the kubelet notices
    /// within its 10 s housekeeping interval.
    pub(super) fn pod_bound(
        &mut self,
        node: NodeId,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        if self.memory_used(node, cluster) > Self::memory_capacity(node, cluster) {
            self.schedule_check(node, now, agenda);
        }
    }

    fn schedule_check(&mut self, node: NodeId, now: SimTime, agenda: &mut Agenda) {
        if self.checks.insert(node.0) {
            agenda.schedule(
                now + MEMORY_CHECK_INTERVAL,
                EventKind::MemoryCheck { node: node.0 },
            );
        }
    }

    /// The memory check of `node` ran.
    pub(super) fn checked(&mut self, node: NodeId) {
        self.checks.remove(&node.0);
    }

    /// Node-pressure eviction: when the pods on a node use more memory than it has, the
    /// kubelet evicts one pod per 10 s check, at once (hard threshold, no grace): first pods
    /// using more than they requested, lowest priority first and then the largest overage;
    /// then the others by priority. Logs the eviction and takes the pod off the node; the loop
    /// tells the pod's owner (an evicted replica is replaced by its ReplicaSet). `label` and
    /// `api_name` name a pod for the log.
    pub(super) fn pick_victim(
        &self,
        node: NodeId,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
        label: impl Fn(PodRef) -> String,
        api_name: impl Fn(PodRef) -> Option<String>,
    ) -> Option<PodRef> {
        if cluster.node(node).state == NodeState::Gone {
            return None;
        }
        let capacity = Self::memory_capacity(node, cluster);
        if self.memory_used(node, cluster) <= capacity {
            return None;
        }
        let (victim, (used, requested, _)) = cluster
            .node(node)
            .pods
            .iter()
            .map(|p| (p.0, self.pod_memory(p.0, p.1.mem_mib, p.2)))
            .min_by_key(|(_, (used, requested, priority))| {
                (
                    used <= requested,
                    *priority,
                    std::cmp::Reverse(used.saturating_sub(*requested)),
                )
            })?;
        let group = cluster.groups()[cluster.node(node).group].name.clone();
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::Eviction,
            api: api_name(victim),
            node_group: Some(group),
            message: format!(
                "{} evicted: node {} out of memory (pod uses {used} MiB, requests {requested} MiB)",
                label(victim),
                node.0
            ),
        });
        cluster.unbind(node, victim, now);
        Some(victim)
    }

    /// After an eviction: check again in 10 s if the node is still over its memory.
    pub(super) fn recheck(
        &mut self,
        node: NodeId,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        if self.memory_used(node, cluster) > Self::memory_capacity(node, cluster) {
            self.schedule_check(node, now, agenda);
        }
    }
}

/// Why a replica is OOM-killed as it loads; the text completes "replica N OOM-killed …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum OomKill {
    /// It uses more memory than its limit.
    #[error("using {used_mib} MiB over its {limit_mib} MiB memory limit")]
    OverLimit { used_mib: u64, limit_mib: u64 },
    /// Its model does not fit beside what the other sharers of its GPU loaded.
    #[error("loading {model_mib} MiB onto shared GPU {gpu} of node {node}")]
    SharedGpuFull {
        model_mib: u64,
        gpu: u32,
        node: usize,
    },
}

/// Whether a replica of `spec` on `shared` (its share of a GPU, if any) can load its model:
/// `Ok` with the GPU memory it loaded (taken on the GPU), or why it is OOM-killed — over its
/// memory limit, or its model does not fit on its shared GPU (time-slicing does not isolate
/// memory; MPS caps each client). `requested_mib` is the pod's memory request: a VPA that
/// changed it scaled the limit in proportion (its default `controlledValues:
/// RequestsAndLimits`).
pub(super) fn load_model(
    spec: &Api,
    requested_mib: u64,
    shared: Option<SharedGpu>,
    cluster: &mut Cluster,
) -> Result<Option<u64>, OomKill> {
    let mib = spec.gpu_memory_mib;
    let scaled = |limit: u64| {
        let (limit, now, was) = (
            u128::from(limit),
            u128::from(requested_mib),
            u128::from(spec.requests.mem_mib.max(1)),
        );
        u64::try_from(limit * now / was).unwrap_or(u64::MAX)
    };
    if let Some(limit) = spec
        .mem_limit_mib
        .map(scaled)
        .filter(|limit| spec.mem_usage_mib > *limit)
    {
        return Err(OomKill::OverLimit {
            used_mib: spec.mem_usage_mib,
            limit_mib: limit,
        });
    }
    match shared {
        Some(gpu) if mib > 0 => {
            if cluster.gpu_memory_fits(gpu, mib) {
                cluster.load_gpu_memory(gpu, mib as i64);
                return Ok(Some(mib));
            }
            Err(OomKill::SharedGpuFull {
                model_mib: mib,
                gpu: gpu.gpu,
                node: gpu.node.0,
            })
        }
        _ => Ok(None),
    }
}

/// CrashLoopBackOff: the restart delay in seconds after the `crashes`-th crash, 10 s doubling
/// to 5 min.
pub(super) fn crash_loop_backoff_s(crashes: u32) -> u64 {
    (10u64 << (crashes - 1).min(5)).min(300)
}
