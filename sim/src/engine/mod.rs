//! The discrete-event loop and the rooms it dispatches between.
//!
//! Each subsystem is a room that owns its state and answers the loop with what should happen
//! next — events it scheduled on the [`Agenda`], and small answers (a pod to place, a victim to
//! evict, a replica to replace, a target to apply) that the loop routes to the room that owns
//! them. Rooms never call each other; this module is the one place that does.
//!
//! - `serving.rs`: the APIs' request path — arrivals, activator, routing, process queues,
//!   completions, timeouts — and their scrapes and decisions (hot path, see there);
//!   `outcomes.rs`: how each ended request is counted; `tenancy.rs`: tenants on that path
//!   (merged arrivals, per-tenant 429 limits, fair and priority queues, per-tenant tallies).
//! - `routers.rs`: routers in front of APIs (weighted, by class, shadow copies);
//!   `pipelines.rs`: chains of APIs, each request's flow from stage to stage. Both are feeds:
//!   sources of arrivals beside the APIs' own, ordered with them by the serving room;
//!   `feed_routes.rs`: the loop's routing of their requests (kept apart only for size).
//! - `replicas.rs`: the serving room's replicas as pods (create, start, ready, stop, evict,
//!   remove, kill).
//! - `autoscaling.rs`: one API's autoscaler (the `autoscaler` crate's core on simulated time).
//! - `kubelet.rs`: node memory, node-pressure eviction, OOM kills and CrashLoopBackOff.
//! - `scheduler.rs`: pending pods, placeholders, placement and preemption plans.
//! - `cluster_autoscaler.rs`: node launches, backoff, scale-up, scale-down, draining.
//! - `spot_market.rs`: spot reclaims.
//! - `karpenter.rs`: Karpenter's batch window, launches, consolidation in flight, expiry;
//!   `karpenter_routes.rs`: the loop's routing of that room's answers.
//! - `batch_jobs.rs`: batch jobs' workers and queues; `batch_routes.rs`: the loop's routing of
//!   that room's answers (kept apart only for size).
//! - `timeline.rs`, `finish.rs`: the timeline's series and the results; `attribution.rs`: why
//!   an SLO was missed (intervals and causes), from the timeline room's per-step facts.
//! - `agenda.rs`: the event heap and the event log every room writes to.
//!
//! Behaviour is defined by order: the heap breaks ties by the order of `schedule` calls, and
//! every random stream is drawn in a fixed order, so the loop calls rooms in the order the
//! events' consequences happen (depth first).

mod agenda;
mod async_queue;
mod attribution;
pub mod autoscaling;
mod batch_jobs;
mod batch_routes;
mod ca_why;
mod cluster_autoscaler;
mod feed_routes;
mod finish;
mod karpenter;
mod karpenter_routes;
mod kubelet;
mod llm_serving;
mod observed;
mod outcomes;
mod pipelines;
mod placement_routes;
mod replicas;
mod routers;
mod scheduler;
mod serving;
mod spot_market;
mod startup;
mod tenancy;
mod timeline;
mod vertical;
mod vertical_routes;

use agenda::Agenda;
pub(crate) use agenda::EventKind;
use batch_jobs::BatchJobs;
use cluster_autoscaler::{ClusterAutoscaler, Removal};
use kubelet::Kubelet;
use replicas::{Evicted, Stop};
use scheduler::{PodNames, PodSpecs, Scheduler};
use serving::{ApiState, ReplicaState, Serving};
use spot_market::SpotMarket;
use timeline::TimelineRecorder;

use crate::batch::JobStatus;
use crate::cluster::{Cluster, NodeId, NodeState, PodRef};
use crate::results::{Event, Results, Timeline};
use crate::scenario::Scenario;
use crate::time::SimTime;
use crate::traffic::DataFileError;

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A trace turned out malformed while streaming it.
    #[error(transparent)]
    Data(#[from] DataFileError),
}

/// A simulation in progress. Use [`run`] for a whole run, or [`Simulation::advance_to`] to step it
/// (the live view does) and [`Simulation::finish`] to get the results.
pub struct Simulation {
    scenario: Scenario,
    now: SimTime,
    agenda: Agenda,
    serving: Serving,
    cluster: Cluster,
    timeline: TimelineRecorder,
    scheduler: Scheduler,
    batch: BatchJobs,
    kubelet: Kubelet,
    cluster_autoscaler: ClusterAutoscaler,
    spot: SpotMarket,
    /// Karpenter, for scenarios with `[[node_pools]]`.
    karpenter: Option<karpenter::KarpenterRoom>,
    /// Each API's VPA recommender, for APIs with `[apis.vpa]`.
    vertical: Vec<Option<vertical::Recorder>>,
    /// `[[routers]]`.
    routers: Vec<routers::RouterState>,
    /// `[[pipelines]]` and their requests in flight.
    pipelines: pipelines::Pipelines,
}

/// Run a scenario to its end.
pub fn run(scenario: &Scenario) -> Result<Results, SimError> {
    let mut sim = Simulation::new(scenario.clone())?;
    sim.advance_to(scenario.duration)?;
    Ok(sim.finish())
}

impl Simulation {
    /// Set up the cluster, the APIs' initial replicas (running and ready at t = 0) and the
    /// first events.
    pub fn new(scenario: Scenario) -> Result<Simulation, SimError> {
        let cluster = Cluster::new(
            &scenario.node_groups,
            scenario.apis.len(),
            scenario.batch_jobs.len(),
        );
        let mut sim = Simulation {
            now: SimTime::ZERO,
            agenda: Agenda::default(),
            serving: Serving::new(scenario.apis.len()),
            cluster,
            timeline: TimelineRecorder::new(
                scenario.timeline_step,
                scenario.apis.len(),
                scenario.node_groups.len(),
            ),
            scheduler: Scheduler::new(),
            kubelet: Kubelet::new(&scenario),
            batch: BatchJobs::new(&scenario),
            cluster_autoscaler: ClusterAutoscaler::new(&scenario),
            spot: SpotMarket::new(&scenario),
            karpenter: karpenter::KarpenterRoom::new(&scenario),
            vertical: scenario
                .apis
                .iter()
                .map(|a| a.vpa.clone().map(vertical::Recorder::new))
                .collect(),
            routers: scenario
                .routers
                .iter()
                .map(|r| routers::RouterState::new(r.clone(), scenario.seed))
                .collect::<Result<_, _>>()?,
            pipelines: pipelines::Pipelines::new(&scenario.pipelines, scenario.seed)?,
            scenario,
        };
        for (i, spec) in sim.scenario.apis.clone().into_iter().enumerate() {
            let seed = sim.scenario.seed;
            sim.serving.apis.push(ApiState::new(spec, seed)?);
            let target = sim.serving.apis[i].autoscaler.initial_replicas();
            sim.scale_to(i, target, true);
            let tick = sim.serving.apis[i].autoscaler.tick_interval();
            sim.agenda
                .schedule(tick, EventKind::PolicyTick { api: i as u32 });
            if let Some(every) = sim.serving.apis[i].autoscaler.sample_interval() {
                sim.agenda
                    .schedule(every, EventKind::Scrape { api: i as u32 });
            }
            if let Some(v) = &sim.vertical[i] {
                sim.agenda
                    .schedule(v.interval(), EventKind::VpaSample { api: i as u32 });
                if v.mode().updates() {
                    sim.agenda
                        .schedule(v.updater_interval(), EventKind::VpaUpdate { api: i as u32 });
                }
            }
        }
        let feeds: Vec<SimTime> = sim
            .routers
            .iter()
            .map(|r| r.next.0)
            .chain((0..sim.pipelines.len()).map(|p| sim.pipelines.next_arrival(p)))
            .collect();
        sim.serving.open(&feeds);
        for p in 0..sim.scenario.placeholders.len() {
            for _ in 0..sim.scenario.placeholders[p].replicas {
                let pod = sim.scheduler.add_placeholder(&sim.scenario, p);
                if !sim.try_place(pod, false) {
                    sim.scheduler.pend(pod);
                }
            }
        }
        if sim.scenario.cluster_autoscaler.enabled {
            let every = sim.scenario.cluster_autoscaler.scan_interval;
            sim.agenda.schedule(every, EventKind::ClusterScan);
        }
        sim.start_karpenter();
        for g in 0..sim.scenario.node_groups.len() {
            sim.spot
                .schedule_next(g, SimTime::ZERO, &sim.cluster, &mut sim.agenda);
        }
        for j in 0..sim.batch.jobs().len() {
            let at = sim.batch.jobs()[j].spec.submit_at;
            if at <= sim.scenario.duration {
                sim.agenda
                    .schedule(at, EventKind::BatchSubmit { job: j as u32 });
            }
        }
        sim.agenda
            .schedule(sim.scenario.timeline_step, EventKind::TimelineTick);
        Ok(sim)
    }

    /// Simulated time reached so far.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The timeline recorded so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline.timeline
    }

    /// The event log so far.
    pub fn events(&self) -> &[Event] {
        self.agenda.events()
    }

    /// The 99th percentile inter-token latency of API `api` (scenario index) over the run so
    /// far, ms: `None` for a request-level API, or before any second token (the live view shows
    /// it; the timeline has no per-step inter-token series).
    pub fn llm_itl_p99_so_far_ms(&self, api: usize) -> Option<f64> {
        let itl = &self.serving.apis.get(api)?.llm.as_ref()?.itl;
        (!itl.is_empty()).then(|| itl.value_at_quantile(0.99) as f64 / 1000.0)
    }

    /// Nodes plus control plane, USD, up to the current time.
    pub fn cost_so_far_usd(&self) -> f64 {
        self.cluster.node_cost_until(self.now)
            + self.now.as_secs_f64() / 3600.0 * self.scenario.control_plane_usd_per_hour
    }

    /// Process every event up to and including `until` (capped at the scenario's end).
    pub fn advance_to(&mut self, until: SimTime) -> Result<(), SimError> {
        let until = until.min(self.scenario.duration);
        loop {
            // Earliest pending arrival across APIs (ties: lowest API index).
            let (next_arrival, next_api) = self.serving.next_arrival();
            let next_event = self.agenda.next_at();
            if next_event <= next_arrival {
                if next_event > until {
                    break;
                }
                let Some(event) = self.agenda.pop() else {
                    break;
                };
                self.now = event.at;
                self.handle(event.kind);
            } else {
                if next_arrival > until {
                    break;
                }
                self.now = next_arrival;
                if next_api >= self.serving.apis.len() {
                    self.feed_arrival(next_api)?;
                    continue;
                }
                let wake =
                    self.serving
                        .arrive(next_api, self.now, &mut self.cluster, &mut self.agenda);
                if wake {
                    self.decide(next_api, false);
                }
                self.serving.advance_arrivals(next_api)?;
            }
            if !self.pipelines.stage_apis.is_empty() {
                self.settle_flows();
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Completion {
                api,
                process,
                tenant,
                replica,
                epoch,
                arrival,
                flow,
            } => {
                let (a, r) = (api as usize, replica as usize);
                if self.serving.apis[a].replicas[r].epoch == epoch
                    && self.serving.complete(
                        a,
                        r,
                        process as usize,
                        (arrival, tenant, flow),
                        self.now,
                        &mut self.cluster,
                        &mut self.agenda,
                    )
                {
                    self.remove_replica(a, r);
                }
            }
            EventKind::LlmIteration {
                api,
                replica,
                epoch,
            } => {
                let (a, r) = (api as usize, replica as usize);
                if self.serving.apis[a].replicas[r].epoch == epoch
                    && self.serving.apis[a].iteration_done(
                        a,
                        r,
                        self.now,
                        &mut self.cluster,
                        &mut self.agenda,
                    )
                {
                    self.remove_replica(a, r);
                }
            }
            EventKind::ReplicaReady {
                api,
                replica,
                epoch,
            } => {
                if self.serving.apis[api as usize].replicas[replica as usize].epoch == epoch {
                    self.serving.replica_ready(
                        api as usize,
                        replica,
                        self.now,
                        &mut self.cluster,
                        &mut self.agenda,
                    )
                }
            }
            EventKind::NodeReady { node } => self.node_ready(NodeId(node)),
            EventKind::NodeLaunchTimeout { node } => {
                if !self.karpenter_launch_timeout(NodeId(node)) {
                    self.cluster_autoscaler.launch_timeout(
                        NodeId(node),
                        self.now,
                        &mut self.cluster,
                        &mut self.agenda,
                    )
                }
            }
            EventKind::KarpenterBatch => self.karpenter_batch(),
            EventKind::KarpenterDisrupt => self.karpenter_disrupt(),
            EventKind::KarpenterExpire { node } => self.karpenter_expire(NodeId(node)),
            EventKind::NodeTerminate { node } => self.terminate_node(NodeId(node)),
            EventKind::ClusterScan => {
                self.cluster_scan();
                let next = self.now + self.scenario.cluster_autoscaler.scan_interval;
                self.agenda.schedule(next, EventKind::ClusterScan);
            }
            EventKind::SpotReclaim { group } => self.spot_reclaim(group),
            EventKind::PolicyTick { api } => {
                let a = api as usize;
                self.decide(a, true);
                let tick = self.serving.apis[a].autoscaler.tick_interval();
                self.agenda
                    .schedule(self.now + tick, EventKind::PolicyTick { api });
            }
            EventKind::Scrape { api } => {
                self.serving
                    .scrape(api as usize, self.now, &mut self.agenda)
            }
            EventKind::BatchSubmit { job } => {
                let j = job as usize;
                for _ in 0..self.batch.submit(j, self.now, &mut self.agenda) {
                    self.add_worker(j);
                }
            }
            EventKind::WorkerReady { job, worker, epoch } => {
                let (j, w) = (job as usize, worker as usize);
                if self.batch.ready(j, w, epoch) {
                    self.pull(j, w);
                }
            }
            EventKind::BatchDone { job, worker, epoch } => {
                let (j, w) = (job as usize, worker as usize);
                if let Some(stopping) =
                    self.batch
                        .batch_done(j, w, epoch, self.now, &mut self.agenda)
                {
                    if stopping {
                        self.remove_worker_pod(j, w);
                    } else {
                        self.pull(j, w);
                    }
                    self.wake_idle(j);
                }
            }
            EventKind::BatchVisible { job, batch } => {
                let j = job as usize;
                if self.batch.visible(j, batch, self.now, &mut self.agenda) {
                    self.wake_idle(j);
                }
            }
            EventKind::BatchTimeout { job } => {
                let j = job as usize;
                if self.batch.running(j) {
                    self.finish_job(j, JobStatus::TimedOut);
                }
            }
            EventKind::MemoryCheck { node } => {
                self.kubelet.checked(NodeId(node));
                self.relieve_memory_pressure(NodeId(node))
            }
            EventKind::Redeliver { api } => {
                let a = api as usize;
                self.serving.apis[a].redeliver(a, self.now, &mut self.cluster, &mut self.agenda);
            }
            EventKind::QueueWake { api } => {
                let a = api as usize;
                self.serving.apis[a].queue_wake(a, self.now, &mut self.cluster, &mut self.agenda);
            }
            EventKind::VpaSample { api } => self.vpa_sample(api as usize),
            EventKind::VpaUpdate { api } => self.vpa_update(api as usize),
            EventKind::TimelineTick => {
                self.timeline.sample(
                    self.now,
                    &mut self.serving.apis,
                    self.batch.jobs(),
                    &self.cluster,
                    &self.scenario,
                );
                self.sample_pipelines();
                let next = self.now + self.scenario.timeline_step;
                if next <= self.scenario.duration {
                    self.agenda.schedule(next, EventKind::TimelineTick);
                }
            }
        }
    }

    /// The kubelet's memory check of a node: evict one pod if the node is out of memory and
    /// tell its owner.
    fn relieve_memory_pressure(&mut self, node: NodeId) {
        let now = self.now;
        let names = PodNames {
            apis: &self.serving.apis,
            batch: self.batch.jobs(),
        };
        let Some(victim) = self.kubelet.pick_victim(
            node,
            now,
            &mut self.cluster,
            &mut self.agenda,
            |p| names.label(p),
            |p| names.api_name(p),
        ) else {
            return;
        };
        match victim {
            PodRef::Placeholder(i) => {
                self.scheduler.set_placeholder_node(i, None);
                self.scheduler.pend(victim);
            }
            PodRef::Replica { api, slot } => {
                self.serving.unbound(api as usize, slot);
                self.kill_replica(api as usize, slot as usize);
            }
            PodRef::BatchWorker { job, worker } => {
                self.batch.unbound(job as usize, worker as usize);
                self.kill_worker(job as usize, worker as usize);
            }
        }
        self.kubelet
            .recheck(node, now, &self.cluster, &mut self.agenda);
    }

    /// Ask API `a`'s autoscaler for a decision and apply it.
    fn decide(&mut self, a: usize, tick: bool) {
        if let Some(target) = self.serving.decide(a, tick, self.now, &mut self.agenda) {
            self.scale_to(a, target, false);
        }
    }

    /// Create or remove replicas to reach `target`. Initial replicas are ready at once.
    fn scale_to(&mut self, a: usize, target: u32, initial: bool) {
        let current = self.serving.set_desired(a, target);
        if target > current {
            for _ in current..target {
                self.add_replica(a, initial);
            }
        } else {
            for _ in target..current {
                if let Some(v) = self.serving.retiree(a) {
                    self.stop_replica(a, v);
                }
            }
        }
    }

    /// API `a`'s ReplicaSet creates a replica: placed now or pending.
    fn add_replica(&mut self, a: usize, initial: bool) {
        let pod = self.serving.new_replica(a, initial, self.now);
        if !self.try_place(pod, true) {
            self.make_pending(pod);
        }
    }

    /// Stop a replica gracefully (see [`Serving::stop`]).
    fn stop_replica(&mut self, a: usize, v: usize) {
        match self.serving.stop(a, v, self.now) {
            Stop::Unpend(pod) => self.scheduler.unpend(pod),
            Stop::Remove => self.remove_replica(a, v),
            Stop::Nothing => {}
        }
    }

    /// Evict a pod from its node (drain, spot notice, preemption). A replica is replaced by a
    /// new pending one (its ReplicaSet keeps the count) and finishes its in-flight requests; a
    /// placeholder goes back to pending.
    fn evict(&mut self, pod: PodRef, log: bool) {
        let now = self.now;
        if log {
            let message = format!("{} evicted", self.pod_label(pod));
            self.log_pod(pod, crate::results::EventKind::Eviction, message);
        }
        match pod {
            PodRef::Placeholder(i) => {
                if let Some(node) = self.scheduler.placeholder_node(i) {
                    self.scheduler.set_placeholder_node(i, None);
                    self.cluster.unbind(node, pod, now);
                }
                self.scheduler.pend(pod);
            }
            PodRef::BatchWorker { job, worker } => self.evict_worker(job as usize, worker as usize),
            PodRef::Replica { api: a, slot } => {
                let (a, v) = (a as usize, slot as usize);
                match self.serving.evict(a, v, now) {
                    Evicted::Ignored => return,
                    Evicted::Draining => {}
                    Evicted::Stop => self.stop_replica(a, v),
                }
                self.add_replica(a, false);
            }
        }
    }

    /// Log `message` about `pod`, with its API and the node group it is on.
    fn log_pod(&mut self, pod: PodRef, kind: crate::results::EventKind, message: String) {
        let group = self.pod_node(pod).map(|n| self.cluster.node(n).group);
        self.agenda.log(Event {
            t_s: self.now.as_secs_f64(),
            kind,
            api: self.pod_api_name(pod),
            node_group: group.map(|g| self.cluster.groups()[g].name.clone()),
            message,
        });
    }

    fn pod_node(&self, pod: PodRef) -> Option<NodeId> {
        match pod {
            PodRef::Replica { api, slot } => self.serving.node_of(api as usize, slot),
            PodRef::Placeholder(i) => self.scheduler.placeholder_node(i),
            PodRef::BatchWorker { job, worker } => {
                self.batch.node_of(job as usize, worker as usize)
            }
        }
    }

    /// A replica's pod goes; its node may now be empty (a drained node terminates) or have
    /// room for a pending pod.
    fn remove_replica(&mut self, a: usize, r: usize) {
        if let Some(node) = self.serving.remove(a, r, self.now, &mut self.cluster) {
            self.pod_left(node);
        }
    }

    /// A pod left `node`: a draining node that is now empty terminates, otherwise pending pods
    /// may fit.
    fn pod_left(&mut self, node: NodeId) {
        if self.cluster_autoscaler.is_draining(node) && self.cluster.node(node).pods.is_empty() {
            self.terminate_node(node);
        } else {
            self.schedule_pending();
        }
    }

    /// A node is lost: requests still in flight on its replicas fail (`interrupted`), its
    /// placeholders go back to pending.
    fn terminate_node(&mut self, node: NodeId) {
        let now = self.now;
        if self.cluster.node(node).state == NodeState::Gone {
            return;
        }
        let pods: Vec<PodRef> = self.cluster.node(node).pods.iter().map(|p| p.0).collect();
        for pod in pods {
            match pod {
                PodRef::Placeholder(i) => {
                    self.scheduler.set_placeholder_node(i, None);
                    self.scheduler.pend(pod);
                }
                PodRef::Replica { api: a, slot } => self.kill_replica(a as usize, slot as usize),
                PodRef::BatchWorker { job, worker } => {
                    self.kill_worker(job as usize, worker as usize)
                }
            }
        }
        let group = self.cluster.node(node).group;
        self.cluster.terminate(node, now);
        self.cluster_autoscaler.forget(node);
        self.agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::NodeTerminate,
            api: None,
            node_group: Some(self.cluster.groups()[group].name.clone()),
            message: format!("node {} terminated", node.0),
        });
        self.schedule_pending();
    }

    /// A replica dies with its node or is preempted; its ReplicaSet replaces it.
    fn kill_replica(&mut self, a: usize, r: usize) {
        if self
            .serving
            .kill(a, r, self.now, &mut self.cluster, &mut self.agenda)
        {
            self.add_replica(a, false);
        }
    }

    fn node_ready(&mut self, node: NodeId) {
        if self
            .cluster_autoscaler
            .node_ready(node, self.now, &mut self.cluster, &mut self.agenda)
        {
            self.karpenter_node_ready(node);
            self.schedule_pending();
        }
    }

    /// One cluster-autoscaler loop: retry pending pods, scale up for those that fit nowhere,
    /// scale down nodes unneeded for long enough.
    fn cluster_scan(&mut self) {
        self.schedule_pending();
        let pending = self
            .scheduler
            .pending()
            .iter()
            .map(|p| {
                let (r, g, prio) = self.pod_spec(*p);
                (r, g.to_vec(), prio, self.pod_owner(*p))
            })
            .collect();
        self.cluster_autoscaler
            .scale_up(pending, self.now, &mut self.cluster, &mut self.agenda);
        self.scale_down();
    }

    fn scale_down(&mut self) {
        let now = self.now;
        let Some(mut pass) =
            self.cluster_autoscaler
                .scale_down(now, &self.cluster, &mut self.agenda)
        else {
            return;
        };
        for id in std::mem::take(&mut pass.candidates) {
            let specs = PodSpecs {
                apis: &self.serving.apis,
                scheduler: &self.scheduler,
                batch: self.batch.jobs(),
            };
            let removal = self.cluster_autoscaler.consider(
                &mut pass,
                id,
                now,
                &mut self.cluster,
                &mut self.agenda,
                |p| specs.spec(p).1,
            );
            match removal {
                Some(Removal::Terminate) => self.terminate_node(id),
                Some(Removal::Drain) => self.drain(id),
                None => {}
            }
        }
    }

    /// Cordon a node and evict its pods; it terminates when empty, or after the longest
    /// graceful termination (600 s) with whatever is left.
    fn drain(&mut self, node: NodeId) {
        self.cluster_autoscaler.start_drain(node, &mut self.cluster);
        let pods: Vec<PodRef> = self.cluster.node(node).pods.iter().map(|p| p.0).collect();
        for pod in pods {
            self.evict(pod, true);
        }
        if self.cluster.node(node).pods.is_empty() {
            self.terminate_node(node);
        } else {
            self.agenda.schedule(
                self.now + SimTime::from_secs(600),
                EventKind::NodeTerminate { node: node.0 },
            );
        }
    }

    /// A spot reclaim event: each reclaimed node is cordoned, its pods evicted, and it goes in
    /// two minutes.
    fn spot_reclaim(&mut self, group: usize) {
        let now = self.now;
        for node in self.spot.reclaim(group, &self.cluster) {
            self.spot
                .notice(group, node, now, &self.cluster, &mut self.agenda);
            self.karpenter_interrupted(node);
            self.cluster.cordon(node);
            let pods: Vec<PodRef> = self.cluster.node(node).pods.iter().map(|p| p.0).collect();
            for pod in pods {
                self.evict(pod, true);
            }
            self.agenda.schedule(
                now + SimTime::from_secs(120),
                EventKind::NodeTerminate { node: node.0 },
            );
        }
        self.spot
            .schedule_next(group, now, &self.cluster, &mut self.agenda);
    }
}

#[cfg(test)]
mod tests;
