//! The scheduler room: pods waiting for a node, the placeholder pods (overprovisioning), and
//! where a pod goes — a node it fits on, or one where preempting lower-priority pods makes room.
//!
//! The scheduler decides; the loop binds the pod and tells the victims' owners (a preempted
//! replica or batch worker is killed and replaced, a placeholder goes back to pending).

use crate::batch::BatchRuntime;
use crate::cluster::{Cluster, NodeId, PodRef};
use crate::scenario::{Requests, Scenario};

use super::serving::ApiState;

/// A placeholder pod (overprovisioning).
struct PlaceholderPod {
    requests: Requests,
    node_groups: Vec<usize>,
    priority: i32,
    node: Option<NodeId>,
}

/// Where a pod can go.
pub(super) enum Placement {
    /// A node with room for it.
    Fits(NodeId),
    /// A node where evicting these lower-priority pods makes room.
    Preempts(NodeId, Vec<PodRef>),
    /// Nowhere now.
    Nowhere,
}

/// Pending pods, oldest first, and the placeholder pods.
pub(super) struct Scheduler {
    pending: Vec<PodRef>,
    placeholders: Vec<PlaceholderPod>,
}

/// What the scheduler needs to know of any pod: read-only views of the rooms that own them.
pub(super) struct PodSpecs<'a> {
    pub(super) apis: &'a [ApiState],
    pub(super) scheduler: &'a Scheduler,
    pub(super) batch: &'a [BatchRuntime],
}

impl<'a> PodSpecs<'a> {
    /// Requests, allowed node groups, priority.
    pub(super) fn spec(&self, pod: PodRef) -> (Requests, &'a [usize], i32) {
        match pod {
            PodRef::Replica { api, slot } => {
                let api = &self.apis[api as usize];
                let spec = &api.spec;
                let requests = api.replicas[slot as usize].requests;
                (requests, &spec.node_groups, spec.priority)
            }
            PodRef::Placeholder(i) => {
                let p = &self.scheduler.placeholders[i as usize];
                (p.requests, &p.node_groups, p.priority)
            }
            PodRef::BatchWorker { job, .. } => {
                let j = &self.batch[job as usize].spec;
                (j.requests, &j.node_groups, j.priority)
            }
        }
    }
}

impl Scheduler {
    /// Nothing pending, no placeholder yet.
    pub(super) fn new() -> Self {
        Scheduler {
            pending: Vec::new(),
            placeholders: Vec::new(),
        }
    }

    /// Add one placeholder pod of the scenario's `p`-th placeholder deployment, for the loop
    /// to place.
    pub(super) fn add_placeholder(&mut self, scenario: &Scenario, p: usize) -> PodRef {
        let spec = &scenario.placeholders[p];
        let index = self.placeholders.len() as u32;
        self.placeholders.push(PlaceholderPod {
            requests: spec.requests,
            node_groups: spec.node_groups.clone(),
            priority: spec.priority,
            node: None,
        });
        PodRef::Placeholder(index)
    }

    /// Where `pod` (of `spec`: requests, allowed groups, priority) can go, preempting only if
    /// `preempt`.
    pub(super) fn place(
        &self,
        spec: (Requests, &[usize], i32),
        preempt: bool,
        cluster: &Cluster,
    ) -> Placement {
        let (requests, groups, priority) = spec;
        if let Some(node) = cluster.find_node(requests, groups) {
            return Placement::Fits(node);
        }
        if !preempt {
            return Placement::Nowhere;
        }
        match cluster.preemption_plan(requests, groups, priority) {
            Some((node, victims)) => Placement::Preempts(node, victims),
            None => Placement::Nowhere,
        }
    }

    /// `pod` waits for a node.
    pub(super) fn pend(&mut self, pod: PodRef) {
        self.pending.push(pod);
    }

    /// `pod` no longer waits (its owner dropped it).
    pub(super) fn unpend(&mut self, pod: PodRef) {
        self.pending.retain(|p| *p != pod);
    }

    /// Take every pending pod, highest priority first, oldest first within a priority; the
    /// loop places what it can and gives the rest back with [`Scheduler::requeue`] (pods that
    /// became pending meanwhile stay ahead of them).
    pub(super) fn take_pending(
        &mut self,
        apis: &[ApiState],
        batch: &[BatchRuntime],
    ) -> Vec<PodRef> {
        let pending = std::mem::take(&mut self.pending);
        let specs = PodSpecs {
            apis,
            scheduler: self,
            batch,
        };
        let mut order: Vec<(usize, PodRef)> = pending.into_iter().enumerate().collect();
        order.sort_by_key(|(i, pod)| (std::cmp::Reverse(specs.spec(*pod).2), *i));
        order.into_iter().map(|(_, pod)| pod).collect()
    }

    /// Pods still waiting after a pass.
    pub(super) fn requeue(&mut self, still: Vec<PodRef>) {
        self.pending.extend(still);
    }

    /// The pending pods, oldest first.
    pub(super) fn pending(&self) -> &[PodRef] {
        &self.pending
    }

    /// The node placeholder `i` is on.
    pub(super) fn placeholder_node(&self, i: u32) -> Option<NodeId> {
        self.placeholders[i as usize].node
    }

    /// Placeholder `i` is bound to a node, or (`None`) off its node.
    pub(super) fn set_placeholder_node(&mut self, i: u32, node: Option<NodeId>) {
        self.placeholders[i as usize].node = node;
    }
}

/// How the log names pods (preemptions, evictions): read-only views of the rooms that own them.
pub(super) struct PodNames<'a> {
    pub(super) apis: &'a [ApiState],
    pub(super) batch: &'a [BatchRuntime],
}

impl PodNames<'_> {
    pub(super) fn label(&self, pod: PodRef) -> String {
        match pod {
            PodRef::Replica { api, slot } => {
                format!("{} replica {slot}", self.apis[api as usize].spec.name)
            }
            PodRef::Placeholder(i) => format!("placeholder {i}"),
            PodRef::BatchWorker { job, worker } => {
                format!(
                    "batch job {} worker {worker}",
                    self.batch[job as usize].spec.name
                )
            }
        }
    }

    pub(super) fn api_name(&self, pod: PodRef) -> Option<String> {
        match pod {
            PodRef::Replica { api, .. } => Some(self.apis[api as usize].spec.name.clone()),
            PodRef::Placeholder(_) | PodRef::BatchWorker { .. } => None,
        }
    }
}
