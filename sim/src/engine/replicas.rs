//! The serving room's replicas as pods: created by their ReplicaSet, started on a node, ready
//! after their startup time (loading their model, or OOM-killed and restarted), stopped
//! gracefully, evicted, or killed with their node.
//!
//! Each method changes only the serving room's state (and the pod's share of the cluster it
//! holds) and answers what the loop must do next: place a new pod, drop a pending one, remove a
//! replica, start a replacement.

use super::pipelines::{FlowEnd, NO_FLOW};
use super::serving::{Process, Replica, ReplicaState, Serving};
use super::{kubelet, Agenda, EventKind};
use crate::cluster::{Cluster, NodeId, PodRef, SharedGpu};
use crate::results::Event;
use crate::time::SimTime;

/// What stopping a replica leaves the loop to do.
pub(super) enum Stop {
    /// It was waiting for a node: take it off the pending list.
    Unpend(PodRef),
    /// Its pod must go now.
    Remove,
    /// Nothing (it drains first, or was already going).
    Nothing,
}

/// What evicting a replica leaves the loop to do (besides starting its replacement).
pub(super) enum Evicted {
    /// It was already going: nothing, not even a replacement.
    Ignored,
    /// It keeps its node while it finishes its in-flight requests.
    Draining,
    /// Stop it (see [`Stop`]).
    Stop,
}

impl Serving {
    /// Set API `a`'s desired replica count, returning the previous one.
    pub(super) fn set_desired(&mut self, a: usize, target: u32) -> u32 {
        std::mem::replace(&mut self.apis[a].desired, target)
    }

    /// A new pending replica of API `a` (a free slot reused, or a new one), for the loop to
    /// place.
    pub(super) fn new_replica(&mut self, a: usize, initial: bool, now: SimTime) -> PodRef {
        let api = &mut self.apis[a];
        let processes = (0..api.spec.processes)
            .map(|_| Process::default())
            .collect();
        let slot = match api
            .replicas
            .iter()
            .position(|r| r.state == ReplicaState::Gone)
        {
            Some(i) => i,
            None => {
                api.replicas.push(Replica {
                    state: ReplicaState::Gone,
                    node: None,
                    in_flight: 0,
                    processes: Vec::new(),
                    idle_connections: Vec::new(),
                    created: now,
                    arrivals: 0,
                    epoch: 0,
                    initial: false,
                    busy: 0,
                    shared_gpu: None,
                    gpu_loaded: 0,
                    crashes: 0,
                    llm: None,
                    scraped: llm::EngineStats::default(),
                    requests: api.admitted,
                    taken: Vec::new(),
                    flows: Vec::new(),
                });
                api.replicas.len() - 1
            }
        };
        let replica = &mut api.replicas[slot];
        replica.epoch = replica.epoch.wrapping_add(1);
        replica.state = ReplicaState::Pending;
        replica.node = None;
        replica.in_flight = 0;
        replica.processes = processes;
        replica.idle_connections.clear();
        replica.created = now;
        replica.arrivals = 0;
        replica.initial = initial;
        replica.busy = 0;
        replica.shared_gpu = None;
        replica.gpu_loaded = 0;
        replica.crashes = 0;
        replica.llm = None;
        replica.scraped = llm::EngineStats::default();
        // The admission controller's answer at creation (a VPA's target, if any).
        replica.requests = api.admitted;
        replica.taken.clear();
        PodRef::Replica {
            api: a as u32,
            slot: slot as u32,
        }
    }

    /// The replica no node could take: counted as pending and logged.
    pub(super) fn unschedulable(&mut self, a: usize, slot: u32, now: SimTime, agenda: &mut Agenda) {
        let api = &mut self.apis[a];
        api.pending_replicas += 1;
        api.peak_pending = api.peak_pending.max(api.pending_replicas);
        let requests = api.replicas[slot as usize].requests;
        let name = api.spec.name.clone();
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::ReplicaUnschedulable,
            api: Some(name),
            node_group: None,
            message: format!(
                "replica {slot} pending: no node has cpu {}m, mem {}Mi, gpu {} free",
                requests.cpu_m, requests.mem_mib, requests.gpu
            ),
        });
    }

    /// Whether the replica in `slot` still waits for a node.
    pub(super) fn is_pending(&self, a: usize, slot: u32) -> bool {
        self.apis[a].replicas[slot as usize].state == ReplicaState::Pending
    }

    /// A pending replica of API `a` found a node.
    pub(super) fn placed(&mut self, a: usize) {
        self.apis[a].pending_replicas -= 1;
    }

    /// The node the replica in `slot` is on.
    pub(super) fn node_of(&self, a: usize, slot: u32) -> Option<NodeId> {
        self.apis[a].replicas[slot as usize].node
    }

    /// The scheduler took the replica's pod off its node (preemption, memory pressure).
    pub(super) fn unbound(&mut self, a: usize, slot: u32) {
        self.apis[a].replicas[slot as usize].node = None;
    }

    /// The replica's pod is bound to `node`: it starts, ready after its startup time (initial
    /// replicas at t = 0 are ready at once).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &mut self,
        a: usize,
        slot: u32,
        node: NodeId,
        shared_gpu: Option<SharedGpu>,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        let api = &mut self.apis[a];
        let replica = &mut api.replicas[slot as usize];
        replica.node = Some(node);
        replica.shared_gpu = shared_gpu;
        if let Some(model) = &api.spec.llm {
            replica.llm = Some(super::llm_serving::engine_for(
                model,
                cluster.node(node).group,
            ));
        }
        replica.state = ReplicaState::Starting;
        let epoch = replica.epoch;
        let created = replica.created;
        if replica.initial && now == SimTime::ZERO {
            if let Some(s) = api.startups.as_mut() {
                s.image_present(node);
            }
            if self.model_loads(a, slot as usize, now, cluster, agenda) {
                let api = &mut self.apis[a];
                api.replicas[slot as usize].state = ReplicaState::Ready;
                api.set_ready_count_changed(now);
                api.ready.push(slot);
                if api.spec.is_async {
                    api.workers_poll(slot as usize, now);
                }
            }
            return;
        }
        api.cold_starts += 1;
        let startup = match api.startups.as_mut() {
            Some(s) => s.draw(node, created, now),
            None => api.spec.startup_time,
        };
        let at = now + startup;
        agenda.schedule(
            at,
            EventKind::ReplicaReady {
                api: a as u32,
                replica: slot,
                epoch,
            },
        );
    }

    /// A starting replica's startup time is over: it loads its model and joins routing, and the
    /// activator's held requests go to it.
    pub(super) fn replica_ready(
        &mut self,
        a: usize,
        r: u32,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        if self.apis[a].replicas[r as usize].state != ReplicaState::Starting {
            return;
        }
        if !self.model_loads(a, r as usize, now, cluster, agenda) {
            return;
        }
        let api = &mut self.apis[a];
        api.set_ready_count_changed(now);
        api.replicas[r as usize].state = ReplicaState::Ready;
        api.ready.push(r);
        if api.spec.is_async {
            api.workers_poll(r as usize, now);
        }
        let name = api.spec.name.clone();
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::ReplicaReady,
            api: Some(name),
            node_group: None,
            message: format!("replica {r} ready"),
        });
        self.release_held(a, now, cluster, agenda);
    }

    /// The replica loads its model, or is OOM-killed and restarted by the kubelet after
    /// CrashLoopBackOff's delay (see [`kubelet::load_model`]).
    fn model_loads(
        &mut self,
        a: usize,
        r: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let shared = self.apis[a].replicas[r].shared_gpu;
        let memory = self.apis[a].replicas[r].requests.mem_mib;
        let why = match kubelet::load_model(&self.apis[a].spec, memory, shared, cluster) {
            Ok(Some(mib)) => {
                self.apis[a].replicas[r].gpu_loaded = mib;
                return true;
            }
            Ok(None) => return true,
            Err(why) => why,
        };
        let api = &mut self.apis[a];
        api.oom_kills += 1;
        let startup = match api.startups.as_mut() {
            Some(s) => s.restart(),
            None => api.spec.startup_time,
        };
        let replica = &mut api.replicas[r];
        replica.crashes += 1;
        replica.state = ReplicaState::Starting;
        let backoff = kubelet::crash_loop_backoff_s(replica.crashes);
        let epoch = replica.epoch;
        let name = api.spec.name.clone();
        let group = replica
            .node
            .map(|n| cluster.groups()[cluster.node(n).group].name.clone());
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::OomKill,
            api: Some(name),
            node_group: group,
            message: format!("replica {r} OOM-killed {why}; restart in {backoff} s"),
        });
        agenda.schedule(
            now + SimTime::from_secs(backoff) + startup,
            EventKind::ReplicaReady {
                api: a as u32,
                replica: r as u32,
                epoch,
            },
        );
        false
    }

    /// Free the GPU memory a replica loaded.
    fn unload_gpu_memory(&mut self, a: usize, r: usize, cluster: &mut Cluster) {
        let replica = &mut self.apis[a].replicas[r];
        if let (Some(gpu), loaded) = (replica.shared_gpu, replica.gpu_loaded) {
            if loaded > 0 {
                cluster.load_gpu_memory(gpu, -(loaded as i64));
            }
        }
        replica.gpu_loaded = 0;
    }

    /// The replica a ReplicaSet removes when scaling down: pending before starting before
    /// ready, and among those the newest.
    pub(super) fn retiree(&self, a: usize) -> Option<usize> {
        let rank = |s: ReplicaState| match s {
            ReplicaState::Pending => Some(0),
            ReplicaState::Starting => Some(1),
            ReplicaState::Ready => Some(2),
            _ => None,
        };
        self.apis[a]
            .replicas
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rank(r.state).map(|k| (k, std::cmp::Reverse(i), i)))
            .min()
            .map(|(_, _, i)| i)
    }

    /// Stop a replica gracefully: a pending one is dropped, a starting one removed, a ready
    /// one leaves routing and finishes its in-flight requests before its pod goes.
    pub(super) fn stop(&mut self, a: usize, v: usize, now: SimTime) -> Stop {
        let api = &mut self.apis[a];
        match api.replicas[v].state {
            ReplicaState::Pending => {
                api.pending_replicas -= 1;
                api.replicas[v].state = ReplicaState::Gone;
                Stop::Unpend(PodRef::Replica {
                    api: a as u32,
                    slot: v as u32,
                })
            }
            ReplicaState::Starting => Stop::Remove,
            ReplicaState::Ready => {
                api.set_ready_count_changed(now);
                api.ready.retain(|&r| r as usize != v);
                api.replicas[v].state = ReplicaState::Terminating;
                if api.replicas[v].in_flight == 0 {
                    Stop::Remove
                } else {
                    Stop::Nothing
                }
            }
            ReplicaState::Terminating | ReplicaState::Gone => Stop::Nothing,
        }
    }

    /// Drain or spot notice: a ready replica with requests in flight leaves routing and keeps
    /// its node while it finishes them; any other is stopped.
    pub(super) fn evict(&mut self, a: usize, v: usize, now: SimTime) -> Evicted {
        let api = &mut self.apis[a];
        match api.replicas[v].state {
            ReplicaState::Terminating | ReplicaState::Gone => Evicted::Ignored,
            ReplicaState::Ready if api.replicas[v].in_flight > 0 => {
                // Keep the node reserved while it drains; routing stops now.
                api.set_ready_count_changed(now);
                api.ready.retain(|&r| r as usize != v);
                api.replicas[v].state = ReplicaState::Terminating;
                Evicted::Draining
            }
            _ => Evicted::Stop,
        }
    }

    /// The replica's pod goes: its GPU share is released and it leaves its node, returned for
    /// the loop (a draining node may now be empty, a pending pod may now fit).
    pub(super) fn remove(
        &mut self,
        a: usize,
        r: usize,
        now: SimTime,
        cluster: &mut Cluster,
    ) -> Option<NodeId> {
        self.unload_gpu_memory(a, r, cluster);
        let replica = &mut self.apis[a].replicas[r];
        replica.state = ReplicaState::Gone;
        replica.epoch = replica.epoch.wrapping_add(1);
        if let Some(gpu) = replica.shared_gpu.take() {
            cluster.release_gpu(gpu);
        }
        let node = replica.node.take()?;
        cluster.unbind(
            node,
            PodRef::Replica {
                api: a as u32,
                slot: r as u32,
            },
            now,
        );
        Some(node)
    }

    /// A replica dies with its node: every request on it fails — except an async API's
    /// messages, which go back to the queue when their visibility timeout ends. True when its
    /// ReplicaSet replaces it (it was starting or ready).
    pub(super) fn kill(
        &mut self,
        a: usize,
        r: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        self.unload_gpu_memory(a, r, cluster);
        let api = &mut self.apis[a];
        api.touch(now);
        let replica = &mut api.replicas[r];
        let redelivered = std::mem::take(&mut replica.taken);
        let in_flight = replica.in_flight;
        let lost = u64::from(in_flight) - redelivered.len() as u64;
        for (message, taken) in redelivered {
            let at = super::async_queue::visible_again(taken, now);
            api.invisible.push((at, message));
            agenda.schedule(at, EventKind::Redeliver { api: a as u32 });
        }
        let mut queued: u64 = replica.processes.iter().map(|p| p.queue.len() as u64).sum();
        if let Some(engine) = replica.llm.as_mut() {
            queued += u64::from(engine.waiting());
            engine.clear();
        }
        if let Some(tenancy) = &mut api.tenancy {
            for p in &replica.processes {
                tenancy.interrupted(&p.tenant_in_flight);
            }
        }
        // A pipeline stage's requests on it, executing or queued, fail their pipelines.
        let queued_flows = replica.processes.iter().flat_map(|p| &p.queue);
        let lost_flows = replica
            .flows
            .drain(..)
            .map(|(flow, _)| flow)
            .chain(queued_flows.map(|q| q.flow).filter(|&f| f != NO_FLOW));
        api.ended_flows
            .extend(lost_flows.map(|flow| (flow, FlowEnd::Interrupted)));
        replica.processes.iter_mut().for_each(|p| {
            p.tenant_in_flight.clear();
            p.queue.clear();
            p.busy = 0;
            p.idle_since.clear();
        });
        replica.in_flight = 0;
        if let Some(gpu) = replica.shared_gpu.take() {
            if replica.busy > 0 {
                cluster.gpu_sharer_idle(gpu);
            }
            cluster.release_gpu(gpu);
        }
        replica.busy = 0;
        let was = replica.state;
        replica.state = ReplicaState::Gone;
        replica.epoch = replica.epoch.wrapping_add(1);
        replica.node = None;
        api.interrupted += lost;
        api.step.interrupted += lost;
        api.in_flight -= u64::from(in_flight);
        api.queued -= queued;
        match was {
            ReplicaState::Ready => {
                api.set_ready_count_changed(now);
                api.ready.retain(|&s| s as usize != r);
                true
            }
            ReplicaState::Starting => true,
            _ => false,
        }
    }
}
