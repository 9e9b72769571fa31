//! The loop's routing of the Karpenter room: the provisioner's batch look, the disruption
//! poll, expiry, and what a Ready or lost node means to a consolidation in flight. Part of the
//! loop (see the module above), in a file of its own so that `mod.rs` stays a size a reader
//! can hold.

use super::karpenter::{Why, DISRUPTION_POLL};
use super::serving::ReplicaState;
use super::EventKind;
use super::Simulation;
use crate::cluster::{NodeId, NodeState, PodRef};
use crate::karpenter::{self, Candidate, Command, Inflight, NodeView, Pod};
use crate::results::Event;

/// How often the provisioner looks at the batch window: a tenth of the idle duration.
fn batch_look(idle: crate::time::SimTime) -> crate::time::SimTime {
    crate::time::SimTime((idle.0 / 10).max(1_000_000))
}

impl Simulation {
    /// The first looks of the provisioner and the disruption controller.
    pub(super) fn start_karpenter(&mut self) {
        if let Some(k) = &self.karpenter {
            let every = batch_look(k.config.batch_idle);
            self.agenda.schedule(every, EventKind::KarpenterBatch);
            self.agenda
                .schedule(DISRUPTION_POLL, EventKind::KarpenterDisrupt);
        }
    }

    /// A look at the pending pods every tenth of `batch_idle_duration`: the batch closes once
    /// no pod joined it for that long (or after `batch_max_duration`), and is provisioned.
    /// Looking on a period rather than on each pod's arrival closes a batch up to a tenth of
    /// the idle duration later than upstream's timers would.
    pub(super) fn karpenter_batch(&mut self) {
        let Some(k) = &self.karpenter else {
            return;
        };
        let every = batch_look(k.config.batch_idle);
        self.agenda
            .schedule(self.now + every, EventKind::KarpenterBatch);
        self.schedule_pending();
        let pending: Vec<PodRef> = self.scheduler.pending().to_vec();
        let now = self.now;
        let Some(k) = &mut self.karpenter else {
            return;
        };
        if !k.batch_closes(pending.clone(), now) {
            return;
        }
        let pods: Vec<Pod> = pending
            .iter()
            .map(|p| {
                let (requests, groups, _) = self.pod_spec(*p);
                Pod {
                    requests,
                    groups: groups.to_vec(),
                }
            })
            .collect();
        let inflight: Vec<Inflight> = self
            .cluster
            .nodes()
            .filter(|(_, n)| n.state == NodeState::Booting)
            .map(|(_, n)| Inflight {
                group: n.group,
                free: n.free,
            })
            .collect();
        let Some(k) = &mut self.karpenter else {
            return;
        };
        let used = k.used(&self.cluster);
        let plan = {
            let k = &*k;
            karpenter::provision(
                &pods,
                &inflight,
                &k.config.pools,
                &k.config.offerings,
                &used,
                &|o| k.available(o, now),
            )
        };
        let mut unschedulable = plan.unschedulable.len();
        for claim in &plan.claims {
            if k.launch(
                &claim.options,
                claim.pods.len(),
                now,
                &mut self.cluster,
                &mut self.agenda,
            )
            .is_none()
            {
                unschedulable += claim.pods.len();
            }
        }
        k.note_unschedulable(unschedulable, now, &mut self.agenda);
    }

    /// The disruption controller's poll: one consolidation command, unless a replacement is
    /// still booting.
    pub(super) fn karpenter_disrupt(&mut self) {
        let now = self.now;
        self.agenda
            .schedule(now + DISRUPTION_POLL, EventKind::KarpenterDisrupt);
        let Some(k) = &mut self.karpenter else {
            return;
        };
        if k.replacement_pending() {
            return;
        }
        let found = k.candidates(now, &self.cluster);
        let allowed = k.allowed(now, &self.cluster);
        let used = k.used(&self.cluster);
        let candidates: Vec<Candidate> = found
            .iter()
            .map(|&(id, offering, consolidatable)| Candidate {
                node: id.0,
                offering,
                pods: self
                    .cluster
                    .node(id)
                    .pods
                    .iter()
                    .filter(|(p, _, _)| !self.terminating(*p))
                    .map(|(p, r, _)| Pod {
                        requests: *r,
                        groups: self.pod_spec(*p).1.to_vec(),
                    })
                    .collect(),
                consolidatable,
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let views: Vec<NodeView> = self
            .cluster
            .nodes()
            .filter(|(_, n)| n.state == NodeState::Ready && !n.cordoned)
            .map(|(id, n)| NodeView {
                node: id.0,
                group: n.group,
                free: n.free,
            })
            .collect();
        let Some(k) = &self.karpenter else {
            return;
        };
        let command = karpenter::disrupt(
            &candidates,
            &views,
            &k.config.pools,
            &k.config.offerings,
            &used,
            &allowed,
            &|o| k.available(o, now),
        );
        match command {
            None => {}
            Some(Command::Delete { nodes, reason }) => {
                let why = match reason {
                    karpenter::Reason::Empty => Why::Empty,
                    _ => Why::Underutilized,
                };
                for n in nodes {
                    self.karpenter_drain(NodeId(n), why);
                }
            }
            Some(Command::Replace { nodes, claim }) => {
                let Some(k) = &mut self.karpenter else {
                    return;
                };
                let old: Vec<NodeId> = nodes.into_iter().map(NodeId).collect();
                let pods: usize = old.iter().map(|n| self.cluster.node(*n).pods.len()).sum();
                if let Some(new) = k.launch(
                    &claim.options,
                    pods,
                    now,
                    &mut self.cluster,
                    &mut self.agenda,
                ) {
                    k.replacing(new, old);
                }
            }
        }
    }

    /// Drain a Karpenter node for `why` (it terminates once empty).
    fn karpenter_drain(&mut self, node: NodeId, why: Why) {
        let restarts = self.live_replicas_on(node);
        if let Some(k) = &mut self.karpenter {
            k.disrupting(node, why, restarts);
        }
        let group = self.cluster.node(node).group;
        self.agenda.log(Event {
            t_s: self.now.as_secs_f64(),
            kind: crate::results::EventKind::NodeTerminate,
            api: None,
            node_group: Some(self.cluster.groups()[group].name.clone()),
            message: format!(
                "karpenter: disrupting node {} ({}); draining",
                node.0,
                match why {
                    Why::Empty => "consolidation: empty",
                    Why::Underutilized => "consolidation: pods fit elsewhere",
                    Why::Replaced => "consolidation: replaced by a cheaper node",
                    Why::Expired => "expire_after",
                }
            ),
        });
        self.drain(node);
    }

    /// A node's `expire_after` passed: drain it (expiry does not wait for budgets); its pods
    /// go pending and the provisioner launches what they need.
    pub(super) fn karpenter_expire(&mut self, node: NodeId) {
        if self
            .karpenter
            .as_ref()
            .is_some_and(|k| k.expires(node, &self.cluster))
        {
            self.karpenter_drain(node, Why::Expired);
        }
    }

    /// A node became Ready: if it replaces nodes, drain them now.
    pub(super) fn karpenter_node_ready(&mut self, node: NodeId) {
        let Some(k) = &mut self.karpenter else {
            return;
        };
        for old in k.replacement_ready(node) {
            if self.cluster.node(old).state == NodeState::Ready {
                self.karpenter_drain(old, Why::Replaced);
            }
        }
    }

    /// A Karpenter launch that never registered: the NodeClaim is deleted; its pods are still
    /// pending and the next batch provisions for them elsewhere.
    pub(super) fn karpenter_launch_timeout(&mut self, node: NodeId) -> bool {
        let now = self.now;
        let Some(k) = &mut self.karpenter else {
            return false;
        };
        if !k.owns(node) {
            return false;
        }
        if self.cluster.node(node).state == NodeState::Booting {
            k.launch_timed_out(node, now);
            self.terminate_node(node);
        }
        true
    }

    /// A spot notice reached a node: Karpenter's interruption controller drains it at once
    /// (the loop already does) and blocks the offering; the evicted pods' next batch launches
    /// the replacement.
    pub(super) fn karpenter_interrupted(&mut self, node: NodeId) {
        let now = self.now;
        let restarts = self.live_replicas_on(node);
        if let Some(k) = &mut self.karpenter {
            k.interrupted(node, now, restarts);
        }
    }

    /// Whether `pod` is a replica already finishing its last requests (upstream counts a node
    /// with only terminating Deployment pods as empty).
    fn terminating(&self, pod: PodRef) -> bool {
        match pod {
            PodRef::Replica { api, slot } => {
                self.serving.apis[api as usize].replicas[slot as usize].state
                    == ReplicaState::Terminating
            }
            _ => false,
        }
    }

    /// Serving replicas on `node` that a disruption restarts elsewhere.
    fn live_replicas_on(&self, node: NodeId) -> u64 {
        self.cluster
            .node(node)
            .pods
            .iter()
            .filter(|(p, _, _)| matches!(p, PodRef::Replica { .. }) && !self.terminating(*p))
            .count() as u64
    }
}
