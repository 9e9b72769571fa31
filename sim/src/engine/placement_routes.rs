//! The loop's routing of the scheduler room's answers: placing a pod (with preemption),
//! binding it, and retrying pending pods. Part of the loop (see the module above), in a file of
//! its own so that `mod.rs` stays a size a reader can hold.

use super::scheduler::{Placement, PodNames, PodSpecs};
use super::Simulation;
use crate::cluster::{NodeId, PodRef};
use crate::results::Event;
use crate::scenario::Requests;

impl Simulation {
    /// What the scheduler needs to know of a pod: requests, allowed groups, priority.
    pub(super) fn pod_spec(&self, pod: PodRef) -> (Requests, &[usize], i32) {
        PodSpecs {
            apis: &self.serving.apis,
            scheduler: &self.scheduler,
            batch: self.batch.jobs(),
        }
        .spec(pod)
    }

    /// What owns a pod, by name, for "why" sentences: its API, its batch job, or
    /// `overprovisioning` for a placeholder.
    pub(super) fn pod_owner(&self, pod: PodRef) -> String {
        match pod {
            PodRef::Replica { api, .. } => self.serving.apis[api as usize].spec.name.clone(),
            PodRef::BatchWorker { job, .. } => self.batch.jobs()[job as usize].spec.name.clone(),
            PodRef::Placeholder(_) => "overprovisioning".into(),
        }
    }

    /// Place a pod on a node that fits, preempting lower-priority pods if needed and allowed.
    pub(super) fn try_place(&mut self, pod: PodRef, preempt: bool) -> bool {
        let (node, victims) = match self
            .scheduler
            .place(self.pod_spec(pod), preempt, &self.cluster)
        {
            Placement::Fits(node) => {
                self.bind(pod, node);
                return true;
            }
            Placement::Preempts(node, victims) => (node, victims),
            Placement::Nowhere => return false,
        };
        // Free the room first and bind the preemptor, so victims' replacements cannot take it.
        let now = self.now;
        for victim in &victims {
            self.cluster.unbind(node, *victim, now);
            match *victim {
                PodRef::Placeholder(i) => self.scheduler.set_placeholder_node(i, None),
                PodRef::Replica { api, slot } => self.serving.unbound(api as usize, slot),
                PodRef::BatchWorker { job, worker } => {
                    self.batch.unbound(job as usize, worker as usize)
                }
            }
        }
        self.bind(pod, node);
        let group = self.cluster.groups()[self.cluster.node(node).group]
            .name
            .clone();
        for victim in victims {
            self.agenda.log(Event {
                t_s: now.as_secs_f64(),
                kind: crate::results::EventKind::Preemption,
                api: self.pod_api_name(victim),
                node_group: Some(group.clone()),
                message: format!(
                    "{} preempted for {}",
                    self.pod_label(victim),
                    self.pod_label(pod)
                ),
            });
            match victim {
                PodRef::Placeholder(_) => self.scheduler.pend(victim),
                // Preempted replicas stop at once (no graceful drain is modelled for them).
                PodRef::Replica { api, slot } => self.kill_replica(api as usize, slot as usize),
                PodRef::BatchWorker { job, worker } => {
                    self.kill_worker(job as usize, worker as usize)
                }
            }
        }
        true
    }

    pub(super) fn pod_label(&self, pod: PodRef) -> String {
        self.names().label(pod)
    }

    pub(super) fn pod_api_name(&self, pod: PodRef) -> Option<String> {
        self.names().api_name(pod)
    }

    pub(super) fn names(&self) -> PodNames<'_> {
        PodNames {
            apis: &self.serving.apis,
            batch: self.batch.jobs(),
        }
    }

    /// Bind a pod to a node; a replica starts (ready after its startup time).
    pub(super) fn bind(&mut self, pod: PodRef, node: NodeId) {
        let now = self.now;
        let (requests, _, priority) = self.pod_spec(pod);
        let shared_gpu = self.cluster.bind(node, pod, requests, priority, now);
        self.kubelet
            .pod_bound(node, now, &self.cluster, &mut self.agenda);
        match pod {
            PodRef::Placeholder(i) => self.scheduler.set_placeholder_node(i, Some(node)),
            PodRef::BatchWorker { job, worker } => self.batch.bound(
                job as usize,
                worker as usize,
                node,
                shared_gpu,
                now,
                &mut self.agenda,
            ),
            PodRef::Replica { api, slot } => self.serving.start(
                api as usize,
                slot,
                node,
                shared_gpu,
                now,
                &mut self.cluster,
                &mut self.agenda,
            ),
        }
    }

    pub(super) fn make_pending(&mut self, pod: PodRef) {
        if let PodRef::Replica { api, slot } = pod {
            self.serving
                .unschedulable(api as usize, slot, self.now, &mut self.agenda);
        }
        self.scheduler.pend(pod);
    }

    /// Try to place pending pods, highest priority first, oldest first within a priority.
    pub(super) fn schedule_pending(&mut self) {
        if self.scheduler.pending().is_empty() {
            return;
        }
        let order = self
            .scheduler
            .take_pending(&self.serving.apis, self.batch.jobs());
        let mut still = Vec::new();
        for pod in order {
            match pod {
                PodRef::Replica { api, slot } if !self.serving.is_pending(api as usize, slot) => {
                    continue
                }
                PodRef::BatchWorker { job, worker }
                    if !self.batch.is_pending(job as usize, worker as usize) =>
                {
                    continue
                }
                _ => {}
            }
            if self.try_place(pod, true) {
                if let PodRef::Replica { api, .. } = pod {
                    self.serving.placed(api as usize);
                }
            } else {
                still.push(pod);
            }
        }
        self.scheduler.requeue(still);
    }
}
