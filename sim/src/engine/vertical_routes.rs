//! The loop's routing of the vertical room's answers (a Vertical Pod Autoscaler's recommender,
//! admission controller and updater): part of the loop, in a file of its own so that `mod.rs`
//! stays a size a reader can hold.

use super::vertical::PodUpdate;
use super::{EventKind, Simulation};
use crate::cluster::PodRef;
use crate::results::EventKind as LogKind;

impl Simulation {
    /// The recommender samples API `a`'s pods; the admission controller takes the new target
    /// for the pods created from now on.
    pub(super) fn vpa_sample(&mut self, a: usize) {
        let Some(v) = &mut self.vertical[a] else {
            return;
        };
        v.sample(self.now, &self.serving.apis[a]);
        if let Some(requests) = v.admitted(&self.serving.apis[a]) {
            self.serving.apis[a].admitted = requests;
        }
        let next = self.now + v.interval();
        if next <= self.scenario.duration {
            self.agenda
                .schedule(next, EventKind::VpaSample { api: a as u32 });
        }
    }

    /// One updater pass over API `a`: each pod it picks is resized in place where the mode and
    /// its node allow, or evicted (its replacement gets the target).
    pub(super) fn vpa_update(&mut self, a: usize) {
        let Some(v) = &self.vertical[a] else {
            return;
        };
        let plan = v.plan(&self.serving.apis[a], self.now);
        let next = self.now + v.updater_interval();
        for (slot, update) in plan {
            let pod = PodRef::Replica {
                api: a as u32,
                slot: slot as u32,
            };
            let replica = &self.serving.apis[a].replicas[slot];
            let before = replica.requests;
            let resized = match (update, replica.node) {
                (PodUpdate::InPlaceOrEvict(requests), Some(node)) => {
                    let done = self.cluster.resize(node, pod, requests, self.now);
                    if done {
                        self.serving.apis[a].replicas[slot].requests = requests;
                    }
                    done.then_some(requests)
                }
                _ => None,
            };
            let label = self.pod_label(pod);
            let message = match resized {
                Some(r) => format!(
                    "{label} resized in place by the VPA updater: cpu {}m → {}m, mem {}Mi → {}Mi",
                    before.cpu_m, r.cpu_m, before.mem_mib, r.mem_mib
                ),
                None => format!(
                    "{label} evicted by the VPA updater (requests cpu {}m, mem {}Mi; its replacement gets the target)",
                    before.cpu_m, before.mem_mib
                ),
            };
            let kind = if resized.is_some() {
                LogKind::PodResized
            } else {
                LogKind::Eviction
            };
            self.log_pod(pod, kind, message);
            if resized.is_none() {
                self.evict(pod, false);
            }
            if let Some(v) = &mut self.vertical[a] {
                v.updated(resized.is_none());
            }
        }
        if next <= self.scenario.duration {
            self.agenda
                .schedule(next, EventKind::VpaUpdate { api: a as u32 });
        }
    }
}
