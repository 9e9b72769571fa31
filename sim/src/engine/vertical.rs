//! The vertical room: a Vertical Pod Autoscaler's recommender watching an API's pods. Every
//! recommender interval it takes one usage sample per ready pod — CPU as busy workers' share of
//! what the pod uses fully busy (`compute.cpu_usage`, default its request), memory as what the
//! pod really holds (`compute.mem_usage`) —
//! and feeds them through the `autoscaler` crate's recommender, as the real one reads
//! metrics-server. OOM kills since the last sample count as OOM events at the sample.

use std::collections::BTreeMap;

use autoscaler::vpa::updater::{pods_to_update, EvictionBudget, PodPriority};
use autoscaler::vpa::{self, AggregateState, ContainerState, Resources};

use super::serving::{ApiState, ReplicaState};
use crate::results::{PodResources, PodsPerNode, VpaResults};
use crate::scenario::{Requests, Scenario, UpdateMode, Vpa};
use crate::time::SimTime;

const MIB: i64 = 1024 * 1024;

/// One API's recommender.
pub(super) struct Recorder {
    settings: Vpa,
    aggregate: AggregateState,
    /// Per pod (replica slot, epoch): its last samples and memory window.
    containers: BTreeMap<(u32, u32), ContainerState>,
    samples: u64,
    oom_kills_seen: u64,
    /// Pods the updater evicted so that their replacements get the target.
    evictions: u64,
    /// Pods the updater resized in place.
    resized: u64,
}

/// What the updater does to one running pod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PodUpdate {
    /// Resize it in place to these requests if its node has room, else evict it.
    InPlaceOrEvict(Requests),
    /// Evict it; the Deployment's replacement gets the target.
    Evict,
}

/// A pod's requests as the VPA counts them.
fn resources(r: Requests) -> Resources {
    Resources {
        cpu_millicores: r.cpu_m as i64,
        memory_bytes: r.mem_mib as i64 * MIB,
    }
}

fn amounts(r: Resources) -> PodResources {
    PodResources {
        cpu_millicores: r.cpu_millicores,
        memory_bytes: r.memory_bytes,
    }
}

impl Recorder {
    /// A recommender with no history.
    pub(super) fn new(settings: Vpa) -> Self {
        Self {
            aggregate: AggregateState::new(&settings.config),
            settings,
            containers: BTreeMap::new(),
            samples: 0,
            oom_kills_seen: 0,
            evictions: 0,
            resized: 0,
        }
    }

    /// What the VPA does with its recommendation.
    pub(super) fn mode(&self) -> UpdateMode {
        self.settings.mode
    }

    /// How often the updater runs.
    pub(super) fn updater_interval(&self) -> SimTime {
        SimTime::from(self.settings.updater.interval)
    }

    /// The recommendation now, once a sample has been aggregated.
    fn recommendation(&self) -> Option<vpa::Recommendation> {
        (self.samples > 0).then(|| vpa::recommend(&self.settings.config, &self.aggregate, 1))
    }

    /// What the admission controller gives a new pod of `api` now: its requests with CPU and
    /// memory at the target (whole millicores, memory rounded up to whole MiB), when the mode
    /// admits and there is a recommendation.
    pub(super) fn admitted(&self, api: &ApiState) -> Option<Requests> {
        if !self.settings.mode.admits() {
            return None;
        }
        let target = self.recommendation()?.target;
        Some(Requests {
            cpu_m: u64::try_from(target.cpu_millicores).unwrap_or(0).max(1),
            mem_mib: u64::try_from(target.memory_bytes)
                .unwrap_or(0)
                .div_ceil(MIB as u64)
                .max(1),
            ..api.spec.requests
        })
    }

    /// One updater pass over `api`'s running pods at `now`: the pods to update, highest
    /// priority first, as many as the eviction budget allows. A pod resized in place gets what
    /// the admission controller gives new pods (`api.admitted`, set from the same
    /// recommendation at the last sample).
    pub(super) fn plan(&self, api: &ApiState, now: SimTime) -> Vec<(usize, PodUpdate)> {
        let Some(rec) = self.recommendation() else {
            return Vec::new();
        };
        let update = match self.settings.mode {
            UpdateMode::InPlaceOrRecreate => PodUpdate::InPlaceOrEvict(api.admitted),
            _ => PodUpdate::Evict,
        };
        let running: Vec<usize> = (0..api.replicas.len())
            .filter(|&i| api.replicas[i].state == ReplicaState::Ready)
            .collect();
        let pods: Vec<(PodPriority, std::time::Duration)> = running
            .iter()
            .map(|&i| {
                let r = &api.replicas[i];
                (
                    PodPriority::of(resources(r.requests), &rec),
                    now.since(r.created).as_duration(),
                )
            })
            .collect();
        let config = &self.settings.updater;
        let mut budget = EvictionBudget::new(config, api.desired, running.len() as u32);
        let mut plan = Vec::new();
        for i in pods_to_update(config, &pods) {
            if !budget.can_evict() {
                break;
            }
            budget.evicted();
            plan.push((running[i], update));
        }
        plan
    }

    /// The updater evicted a pod (`true`) or resized one in place.
    pub(super) fn updated(&mut self, evicted: bool) {
        if evicted {
            self.evictions += 1;
        } else {
            self.resized += 1;
        }
    }

    /// How often it samples.
    pub(super) fn interval(&self) -> SimTime {
        self.settings.interval
    }

    fn requested(api: &ApiState) -> Resources {
        Resources {
            cpu_millicores: api.spec.requests.cpu_m as i64,
            memory_bytes: api.spec.requests.mem_mib as i64 * MIB,
        }
    }

    /// One sample of every ready pod of `api` at `now`.
    pub(super) fn sample(&mut self, now: SimTime, api: &ApiState) {
        let at = now.as_duration();
        let requested = Self::requested(api);
        let workers = i64::from(api.spec.processes * api.spec.threads).max(1);
        let memory = api.spec.mem_usage_mib as i64 * MIB;
        let interval = self.settings.config.memory_aggregation_interval;
        for (slot, r) in api.replicas.iter().enumerate() {
            if r.state != ReplicaState::Ready {
                continue;
            }
            let c = self
                .containers
                .entry((slot as u32, r.epoch))
                .or_insert_with(|| ContainerState::new(resources(r.requests)));
            let cpu = api.spec.cpu_usage_m as i64 * i64::from(r.busy) / workers;
            if c.add_cpu_sample(at, cpu, &mut self.aggregate) {
                self.samples += 1;
            }
            c.add_memory_sample(at, memory, interval, &mut self.aggregate);
        }
        // Pods killed for memory since the last sample (the model would not load under the
        // limit): each is an OOM event of a container that requested the API's memory.
        let mut oom = ContainerState::new(requested);
        for _ in self.oom_kills_seen..api.oom_kills {
            // Fresh by construction: it happened since the last sample.
            let _ = oom.record_oom(
                at,
                requested.memory_bytes,
                &self.settings.config,
                &mut self.aggregate,
            );
        }
        self.oom_kills_seen = api.oom_kills;
        // Forget pods that are gone: their slot holds another epoch or nothing ready.
        self.containers.retain(|(slot, epoch), _| {
            api.replicas
                .get(*slot as usize)
                .is_some_and(|r| r.epoch == *epoch && r.state == ReplicaState::Ready)
        });
    }

    /// The recommendation at the end of the run, with its effect on bin-packing.
    pub(super) fn finish(&self, api: &ApiState, scenario: &Scenario) -> VpaResults {
        let r = vpa::recommend(&self.settings.config, &self.aggregate, 1);
        let requested = Self::requested(api);
        let gpu = api.spec.requests.gpu;
        let fits = |g: usize, want: Resources| -> u32 {
            let group = &scenario.node_groups[g];
            let by = |have: i64, need: i64| {
                if need <= 0 {
                    u32::MAX
                } else {
                    u32::try_from(have / need).unwrap_or(u32::MAX)
                }
            };
            let gpus = match gpu {
                0 => u32::MAX,
                n => group.instance.gpus * group.gpu_sharing.map_or(1, |(k, _)| k) / n,
            };
            by(group.pod_cpu_m as i64, want.cpu_millicores)
                .min(by(group.pod_mem_mib as i64 * MIB, want.memory_bytes))
                .min(gpus)
        };
        VpaResults {
            update_mode: self.settings.mode.name().into(),
            evictions: self.evictions,
            in_place_resizes: self.resized,
            admitted: self.admitted(api).map(|r| amounts(resources(r))),
            requested: amounts(requested),
            target: amounts(r.target),
            lower_bound: amounts(r.lower_bound),
            upper_bound: amounts(r.upper_bound),
            samples: self.samples,
            oom_kills: self.oom_kills_seen,
            pods_per_node: api
                .spec
                .node_groups
                .iter()
                .map(|&g| PodsPerNode {
                    group: scenario.node_groups[g].name.clone(),
                    at_requests: fits(g, requested),
                    at_target: fits(g, r.target),
                })
                .collect(),
        }
    }
}
