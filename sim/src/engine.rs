//! The discrete-event loop: arrivals, queues, workers, replicas, policy ticks and the timeline.
//!
//! Hot path: an arrival is not a heap event — each API keeps its next arrival time and the loop
//! takes whichever is earlier, the API's next arrival or the top of the event heap (heap first on
//! ties, so a completing worker is free for an arrival at the same instant). A request costs one
//! heap push and pop (its completion), two random draws and two histogram records.
//!
//! Routing: a request goes to the ready replica with the fewest requests in flight (ties broken
//! round-robin), which is what Kubernetes' Service routing with Cortex's proxy approximates with a
//! least-request load balancer; inside the replica it goes to one process uniformly at random,
//! each process with its own FIFO queue and `threads_per_process` workers.
//!
//! Timeouts are client-side: a request executing past the timeout still occupies its worker (the
//! server cannot see the client leave) and counts as timed out when it finishes; a queued request
//! past the timeout is dropped when it reaches the head of its queue.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use autoscaler::{Observation, ScalingPolicy};
use hdrhistogram::Histogram;
use rand::Rng;

use crate::cluster::{Cluster, NodeId};
use crate::metrics::{MetricPipeline, PodSample};
use crate::results::{
    encode_histogram, ApiResults, Event, NodeGroupResults, Percentiles, Results, SloCheck,
    SloVerdict, Timeline, SCHEMA,
};
use crate::rng::{stream, Stream};
use crate::scenario::{Api, Scenario};
use crate::service_time::ServiceSampler;
use crate::time::SimTime;
use crate::traffic::{ArrivalStream, DataFileError};

/// Largest latency the histograms resolve (1 h, in microseconds); longer values are clamped.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Events kept in the results; more are counted in `events_dropped`.
const MAX_EVENTS: usize = 100_000;

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A trace turned out malformed while streaming it.
    #[error(transparent)]
    Data(#[from] DataFileError),
}

#[derive(Debug, Clone, Copy)]
enum EventKind {
    Completion {
        api: u32,
        replica: u32,
        process: u32,
        arrival: SimTime,
    },
    ReplicaReady {
        api: u32,
        replica: u32,
    },
    PolicyTick {
        api: u32,
    },
    Scrape {
        api: u32,
    },
    TimelineTick,
}

#[derive(Debug, Clone, Copy)]
struct Scheduled {
    at: SimTime,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so the std max-heap pops the earliest event; FIFO among equal times.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplicaState {
    /// Waiting for a node.
    Pending,
    /// On a node, not ready yet.
    Starting,
    /// Serving.
    Ready,
    /// Removed from routing, finishing its in-flight requests.
    Terminating,
    /// Gone; the slot may be reused.
    Gone,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    arrival: SimTime,
    service: SimTime,
}

#[derive(Debug, Default)]
struct Process {
    busy: u32,
    queue: VecDeque<Queued>,
}

#[derive(Debug)]
struct Replica {
    state: ReplicaState,
    node: Option<NodeId>,
    in_flight: u32,
    processes: Vec<Process>,
    created: SimTime,
    /// Requests routed here since the last scrape.
    arrivals: u64,
}

/// Per-step counters for the timeline.
#[derive(Debug)]
struct StepCounters {
    arrivals: u64,
    completed: u64,
    rejected: u64,
    timed_out: u64,
    latency: Histogram<u64>,
}

struct ApiState {
    spec: Api,
    arrivals: ArrivalStream,
    next_arrival: SimTime,
    service: ServiceSampler,
    routing: Stream,
    policy: Box<dyn ScalingPolicy>,
    metrics: MetricPipeline,
    /// What the policy last asked for (before overprovisioning).
    policy_replicas: u32,
    /// Replicas asked of the cluster: the policy's count plus overprovisioning.
    desired: u32,
    /// Requests held by the activator while the API has no ready replica (scale-to-zero).
    held: VecDeque<Queued>,
    /// ∫ (in flight + held) dt, in request-seconds, for time-averaged concurrency.
    area: f64,
    area_at: SimTime,
    area_at_scrape: f64,
    track_area: bool,
    replicas: Vec<Replica>,
    /// Indices of ready replicas, the routing candidates.
    ready: Vec<u32>,
    round_robin: usize,
    in_flight: u64,
    queued: u64,
    pending_replicas: u32,
    peak_pending: u32,
    cold_starts: u64,
    replica_seconds: f64,
    last_ready_change: SimTime,
    requests: u64,
    completed: u64,
    rejected: u64,
    rejected_no_replica: u64,
    timed_out: u64,
    latency: Histogram<u64>,
    wait: Histogram<u64>,
    step: StepCounters,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("constant bounds are valid")
}

impl ApiState {
    /// Bring the concurrency integral up to `now`; call before changing in-flight or held.
    #[inline]
    fn touch(&mut self, now: SimTime) {
        if self.track_area {
            let dt = now.since(self.area_at).as_secs_f64();
            self.area += (self.in_flight + self.held.len() as u64) as f64 * dt;
            self.area_at = now;
        }
    }

    fn set_ready_count_changed(&mut self, now: SimTime) {
        let dt = now.since(self.last_ready_change).as_secs_f64();
        self.replica_seconds += dt * self.ready.len() as f64;
        self.last_ready_change = now;
    }

    /// Pick the ready replica with the fewest in flight, ties round-robin.
    #[inline]
    fn route(&mut self) -> Option<u32> {
        let n = self.ready.len();
        match n {
            0 => None,
            1 => Some(self.ready[0]),
            _ => {
                let start = self.round_robin % n;
                self.round_robin = self.round_robin.wrapping_add(1);
                let mut best = self.ready[start];
                let mut best_load = self.replicas[best as usize].in_flight;
                for k in 1..n {
                    let candidate = self.ready[(start + k) % n];
                    let load = self.replicas[candidate as usize].in_flight;
                    if load < best_load {
                        best = candidate;
                        best_load = load;
                    }
                }
                Some(best)
            }
        }
    }
}

/// A simulation in progress. Use [`run`] for a whole run, or [`Simulation::advance_to`] to step it
/// (the live view does) and [`Simulation::finish`] to get the results.
pub struct Simulation {
    scenario: Scenario,
    now: SimTime,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    apis: Vec<ApiState>,
    cluster: Cluster,
    timeline: Timeline,
    events: Vec<Event>,
    events_dropped: u64,
    last_tick: SimTime,
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
        let cluster = Cluster::new(&scenario.node_groups, scenario.apis.len());
        let mut sim = Simulation {
            now: SimTime::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            apis: Vec::with_capacity(scenario.apis.len()),
            cluster,
            timeline: Timeline {
                step_s: scenario.timeline_step.as_secs_f64(),
                ..Timeline::default()
            },
            events: Vec::new(),
            events_dropped: 0,
            last_tick: SimTime::ZERO,
            scenario,
        };
        for (i, spec) in sim.scenario.apis.clone().into_iter().enumerate() {
            let seed = sim.scenario.seed;
            let mut arrivals = ArrivalStream::open(
                &spec.traffic,
                stream(seed, &format!("arrivals/{}", spec.name)),
            )?;
            let next_arrival = arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
            let policy = spec.autoscaling.build();
            let metrics = MetricPipeline::new(policy.metric_spec());
            let initial = policy.initial_replicas();
            sim.apis.push(ApiState {
                service: ServiceSampler::new(
                    spec.service_time.clone(),
                    stream(seed, &format!("service/{}", spec.name)),
                ),
                routing: stream(seed, &format!("routing/{}", spec.name)),
                arrivals,
                next_arrival,
                track_area: metrics.wants_time_average(),
                metrics,
                policy,
                policy_replicas: initial,
                desired: 0,
                held: VecDeque::new(),
                area: 0.0,
                area_at: SimTime::ZERO,
                area_at_scrape: 0.0,
                replicas: Vec::new(),
                ready: Vec::new(),
                round_robin: 0,
                in_flight: 0,
                queued: 0,
                pending_replicas: 0,
                peak_pending: 0,
                cold_starts: 0,
                replica_seconds: 0.0,
                last_ready_change: SimTime::ZERO,
                requests: 0,
                completed: 0,
                rejected: 0,
                rejected_no_replica: 0,
                timed_out: 0,
                latency: new_histogram(),
                wait: new_histogram(),
                step: StepCounters {
                    arrivals: 0,
                    completed: 0,
                    rejected: 0,
                    timed_out: 0,
                    latency: new_histogram(),
                },
                spec,
            });
            let auto = &sim.apis[i].spec.autoscaling;
            let target = auto.overprovisioning.apply(
                initial.clamp(auto.min_replicas, auto.max_replicas),
                auto.max_replicas,
            );
            sim.scale_to(i, target, true);
            let tick = SimTime::from(sim.apis[i].policy.tick_interval());
            sim.schedule(tick, EventKind::PolicyTick { api: i as u32 });
            if let Some(every) = sim.apis[i].metrics.scrape_interval() {
                sim.schedule(every, EventKind::Scrape { api: i as u32 });
            }
        }
        sim.schedule(sim.scenario.timeline_step, EventKind::TimelineTick);
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
        &self.timeline
    }

    /// The event log so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Nodes plus control plane, USD, up to the current time.
    pub fn cost_so_far_usd(&self) -> f64 {
        self.cluster.node_cost_until(self.now)
            + self.now.as_secs_f64() / 3600.0 * self.scenario.control_plane_usd_per_hour
    }

    #[inline]
    fn schedule(&mut self, at: SimTime, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            kind,
        });
    }

    fn log(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        } else {
            self.events_dropped += 1;
        }
    }

    /// Process every event up to and including `until` (capped at the scenario's end).
    pub fn advance_to(&mut self, until: SimTime) -> Result<(), SimError> {
        let until = until.min(self.scenario.duration);
        loop {
            // Earliest pending arrival across APIs.
            let mut next_api = usize::MAX;
            let mut next_arrival = SimTime::NEVER;
            for (i, api) in self.apis.iter().enumerate() {
                if api.next_arrival < next_arrival {
                    next_arrival = api.next_arrival;
                    next_api = i;
                }
            }
            let next_event = self.heap.peek().map_or(SimTime::NEVER, |e| e.at);
            if next_event <= next_arrival {
                if next_event > until {
                    break;
                }
                let Some(event) = self.heap.pop() else { break };
                self.now = event.at;
                self.handle(event.kind);
            } else {
                if next_arrival > until {
                    break;
                }
                self.now = next_arrival;
                self.arrive(next_api);
                let api = &mut self.apis[next_api];
                api.next_arrival = api.arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    #[inline]
    fn arrive(&mut self, a: usize) {
        let now = self.now;
        let api = &mut self.apis[a];
        api.touch(now);
        api.requests += 1;
        api.step.arrivals += 1;
        // Drawn for every request, served or not, so every configuration sees the same
        // service time for the same request (common random numbers).
        let service = api.service.sample();
        let request = Queued {
            arrival: now,
            service,
        };
        if api.ready.is_empty() && api.spec.autoscaling.holds_requests_at_zero() {
            // The activator holds the request (behind a breaker of one replica's capacity) and
            // wakes a scaled-to-zero API at once.
            if api.held.len() as u64 >= u64::from(api.spec.capacity()) {
                api.rejected += 1;
                api.step.rejected += 1;
                return;
            }
            api.held.push_back(request);
            if api.desired == 0 {
                self.decide(a, false);
            }
            return;
        }
        self.dispatch(a, request);
    }

    /// Route a request to a ready replica, start it or queue it, or reject it.
    #[inline]
    fn dispatch(&mut self, a: usize, request: Queued) {
        let now = self.now;
        let api = &mut self.apis[a];
        let Some(r) = api.route() else {
            api.rejected += 1;
            api.rejected_no_replica += 1;
            api.step.rejected += 1;
            return;
        };
        let capacity = api.spec.capacity();
        let processes = api.spec.processes;
        let threads = api.spec.threads;
        let process = if processes == 1 {
            0
        } else {
            api.routing.random_range(0..processes)
        };
        let replica = &mut api.replicas[r as usize];
        if replica.in_flight >= capacity {
            api.rejected += 1;
            api.step.rejected += 1;
            return;
        }
        replica.in_flight += 1;
        replica.arrivals += 1;
        api.in_flight += 1;
        let proc_ = &mut replica.processes[process as usize];
        if proc_.busy < threads {
            proc_.busy += 1;
            record(&mut api.wait, now.since(request.arrival).as_micros());
            self.schedule(
                now + request.service,
                EventKind::Completion {
                    api: a as u32,
                    replica: r,
                    process,
                    arrival: request.arrival,
                },
            );
        } else {
            proc_.queue.push_back(request);
            api.queued += 1;
        }
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Completion {
                api,
                replica,
                process,
                arrival,
            } => self.complete(api as usize, replica as usize, process as usize, arrival),
            EventKind::ReplicaReady { api, replica } => self.replica_ready(api as usize, replica),
            EventKind::PolicyTick { api } => {
                let a = api as usize;
                self.decide(a, true);
                let tick = SimTime::from(self.apis[a].policy.tick_interval());
                self.schedule(self.now + tick, EventKind::PolicyTick { api });
            }
            EventKind::Scrape { api } => self.scrape(api as usize),
            EventKind::TimelineTick => {
                self.sample_timeline();
                let next = self.now + self.scenario.timeline_step;
                if next <= self.scenario.duration {
                    self.schedule(next, EventKind::TimelineTick);
                }
            }
        }
    }

    #[inline]
    fn complete(&mut self, a: usize, r: usize, p: usize, arrival: SimTime) {
        let now = self.now;
        let api = &mut self.apis[a];
        api.touch(now);
        let timeout = api.spec.timeout;
        let latency = now.since(arrival);
        if timeout.is_some_and(|t| latency > t) {
            api.timed_out += 1;
            api.step.timed_out += 1;
        } else {
            api.completed += 1;
            api.step.completed += 1;
            record(&mut api.latency, latency.as_micros());
            record(&mut api.step.latency, latency.as_micros());
        }
        let replica = &mut api.replicas[r];
        replica.in_flight -= 1;
        api.in_flight -= 1;
        let proc_ = &mut replica.processes[p];
        proc_.busy -= 1;
        let mut next = None;
        while let Some(q) = proc_.queue.pop_front() {
            api.queued -= 1;
            let waited = now.since(q.arrival);
            if timeout.is_some_and(|t| waited >= t) {
                // The client gave up while the request was queued: the slot frees, no work done.
                api.timed_out += 1;
                api.step.timed_out += 1;
                replica.in_flight -= 1;
                api.in_flight -= 1;
                continue;
            }
            proc_.busy += 1;
            record(&mut api.wait, waited.as_micros());
            next = Some(q);
            break;
        }
        let drained = replica.state == ReplicaState::Terminating && replica.in_flight == 0;
        if let Some(q) = next {
            self.schedule(
                now + q.service,
                EventKind::Completion {
                    api: a as u32,
                    replica: r as u32,
                    process: p as u32,
                    arrival: q.arrival,
                },
            );
        }
        if drained {
            self.remove_replica(a, r);
        }
    }

    fn replica_ready(&mut self, a: usize, r: u32) {
        let now = self.now;
        let api = &mut self.apis[a];
        if api.replicas[r as usize].state != ReplicaState::Starting {
            return;
        }
        api.set_ready_count_changed(now);
        api.replicas[r as usize].state = ReplicaState::Ready;
        api.ready.push(r);
        let name = api.spec.name.clone();
        self.log(Event {
            t_s: now.as_secs_f64(),
            kind: "replica_ready".into(),
            api: Some(name),
            node_group: None,
            message: format!("replica {r} ready"),
            inputs: BTreeMap::new(),
        });
        self.release_held(a);
    }

    /// Hand the activator's held requests to the ready replicas, oldest first.
    fn release_held(&mut self, a: usize) {
        let now = self.now;
        self.apis[a].touch(now);
        while let Some(request) = self.apis[a].held.pop_front() {
            let api = &mut self.apis[a];
            if api
                .spec
                .timeout
                .is_some_and(|t| now.since(request.arrival) >= t)
            {
                api.timed_out += 1;
                api.step.timed_out += 1;
                continue;
            }
            self.dispatch(a, request);
        }
    }

    /// One scrape of the API's replicas for the policy's metric pipeline.
    fn scrape(&mut self, a: usize) {
        let now = self.now;
        let api = &mut self.apis[a];
        api.touch(now);
        let Some(every) = api.metrics.scrape_interval() else {
            return;
        };
        let total = if api.track_area {
            let avg = (api.area - api.area_at_scrape) / every.as_secs_f64();
            api.area_at_scrape = api.area;
            avg
        } else {
            (api.in_flight + api.held.len() as u64) as f64
        };
        let workers = f64::from(api.spec.processes * api.spec.threads);
        let mut pods = Vec::new();
        if api.metrics.wants_pods() {
            for (slot, replica) in api.replicas.iter_mut().enumerate() {
                if matches!(
                    replica.state,
                    ReplicaState::Gone | ReplicaState::Terminating
                ) {
                    continue;
                }
                let busy: u32 = replica.processes.iter().map(|p| p.busy).sum();
                pods.push((
                    slot,
                    PodSample {
                        ready: replica.state == ReplicaState::Ready,
                        scheduled: replica.node.is_some(),
                        in_flight: f64::from(replica.in_flight),
                        busy_fraction: f64::from(busy) / workers,
                        arrivals: replica.arrivals,
                        age: now.since(replica.created),
                    },
                ));
                replica.arrivals = 0;
            }
        }
        api.metrics.scrape(now, total, &pods);
        self.schedule(now + every, EventKind::Scrape { api: a as u32 });
    }

    /// Ask the policy for a decision from what it can observe now and apply it. `tick` is false
    /// for the activator's out-of-band wake-up of a scaled-to-zero API.
    fn decide(&mut self, a: usize, tick: bool) {
        let now = self.now;
        let api = &mut self.apis[a];
        if tick {
            api.metrics.sync(now);
        }
        let (metric, panic_metric, pods) = api.metrics.observe(now);
        let observation = Observation {
            current_replicas: api.policy_replicas,
            ready_replicas: api.ready.len() as u32,
            metric,
            panic_metric,
            pods,
            waiting_requests: u32::try_from(api.held.len()).unwrap_or(u32::MAX),
        };
        let recommendation = api.policy.recommend(now.as_duration(), &observation);
        let auto = &api.spec.autoscaling;
        let policy_replicas = recommendation
            .replicas
            .clamp(auto.min_replicas, auto.max_replicas);
        let target = auto
            .overprovisioning
            .apply(policy_replicas, auto.max_replicas);
        api.policy_replicas = policy_replicas;
        if target == api.desired {
            return;
        }
        let mut inputs: BTreeMap<String, f64> = recommendation
            .inputs
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        if let Some(m) = metric {
            inputs.insert("metric".into(), m);
        }
        if let Some(p) = panic_metric {
            inputs.insert("panic_metric".into(), p);
        }
        inputs.insert("ready".into(), f64::from(observation.ready_replicas));
        inputs.insert("from".into(), f64::from(api.desired));
        inputs.insert("to".into(), f64::from(target));
        let event = Event {
            t_s: now.as_secs_f64(),
            kind: "scale".into(),
            api: Some(api.spec.name.clone()),
            node_group: None,
            message: format!(
                "{}{} {} → {} replicas",
                api.policy.name(),
                if tick { "" } else { " (wake-up)" },
                api.desired,
                target
            ),
            inputs,
        };
        self.log(event);
        self.scale_to(a, target, false);
    }

    /// Create or remove replicas to reach `target`. Initial replicas are ready at once.
    fn scale_to(&mut self, a: usize, target: u32, initial: bool) {
        let current = self.apis[a].desired;
        self.apis[a].desired = target;
        if target > current {
            for _ in current..target {
                self.add_replica(a, initial);
            }
        } else {
            for _ in target..current {
                self.retire_one_replica(a);
            }
        }
    }

    fn add_replica(&mut self, a: usize, initial: bool) {
        let now = self.now;
        let api = &mut self.apis[a];
        let processes = (0..api.spec.processes)
            .map(|_| Process::default())
            .collect();
        let replica = Replica {
            state: ReplicaState::Pending,
            node: None,
            in_flight: 0,
            processes,
            created: now,
            arrivals: 0,
        };
        let slot = match api
            .replicas
            .iter()
            .position(|r| r.state == ReplicaState::Gone)
        {
            Some(i) => {
                api.replicas[i] = replica;
                i
            }
            None => {
                api.replicas.push(replica);
                api.replicas.len() - 1
            }
        };
        let node = self
            .cluster
            .place(a, api.spec.requests, &api.spec.node_groups, now);
        match node {
            Some(node) => {
                api.replicas[slot].node = Some(node);
                if initial || api.spec.startup_time == SimTime::ZERO {
                    if !initial {
                        api.cold_starts += 1;
                    }
                    api.replicas[slot].state = ReplicaState::Starting;
                    self.replica_ready_now(a, slot as u32, initial);
                } else {
                    api.cold_starts += 1;
                    api.replicas[slot].state = ReplicaState::Starting;
                    let at = now + api.spec.startup_time;
                    self.schedule(
                        at,
                        EventKind::ReplicaReady {
                            api: a as u32,
                            replica: slot as u32,
                        },
                    );
                }
            }
            None => {
                api.pending_replicas += 1;
                api.peak_pending = api.peak_pending.max(api.pending_replicas);
                let name = api.spec.name.clone();
                let requests = api.spec.requests;
                self.log(Event {
                    t_s: now.as_secs_f64(),
                    kind: "replica_unschedulable".into(),
                    api: Some(name),
                    node_group: None,
                    message: format!(
                        "replica {slot} pending: no node has cpu {}m, mem {}Mi, gpu {} free",
                        requests.cpu_m, requests.mem_mib, requests.gpu
                    ),
                    inputs: BTreeMap::new(),
                });
            }
        }
    }

    fn replica_ready_now(&mut self, a: usize, r: u32, quiet: bool) {
        if quiet {
            let now = self.now;
            let api = &mut self.apis[a];
            api.set_ready_count_changed(now);
            api.replicas[r as usize].state = ReplicaState::Ready;
            api.ready.push(r);
        } else {
            self.replica_ready(a, r);
        }
    }

    /// Remove one replica the way a ReplicaSet picks its victim: pending before starting before
    /// ready, and among those the newest.
    fn retire_one_replica(&mut self, a: usize) {
        let now = self.now;
        let api = &mut self.apis[a];
        let rank = |s: ReplicaState| match s {
            ReplicaState::Pending => Some(0),
            ReplicaState::Starting => Some(1),
            ReplicaState::Ready => Some(2),
            _ => None,
        };
        let victim = api
            .replicas
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rank(r.state).map(|k| (k, std::cmp::Reverse(i), i)))
            .min()
            .map(|(_, _, i)| i);
        let Some(v) = victim else { return };
        match api.replicas[v].state {
            ReplicaState::Pending => {
                api.pending_replicas -= 1;
                api.replicas[v].state = ReplicaState::Gone;
            }
            ReplicaState::Starting => self.remove_replica(a, v),
            ReplicaState::Ready => {
                api.set_ready_count_changed(now);
                api.ready.retain(|&r| r as usize != v);
                api.replicas[v].state = ReplicaState::Terminating;
                if api.replicas[v].in_flight == 0 {
                    self.remove_replica(a, v);
                }
            }
            _ => {}
        }
    }

    fn remove_replica(&mut self, a: usize, r: usize) {
        let now = self.now;
        let api = &mut self.apis[a];
        let requests = api.spec.requests;
        let replica = &mut api.replicas[r];
        replica.state = ReplicaState::Gone;
        if let Some(node) = replica.node.take() {
            self.cluster.release(node, a, requests, now);
        }
    }

    fn sample_timeline(&mut self) {
        let now = self.now;
        let step_s = now.since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if step_s <= 0.0 {
            return;
        }
        self.timeline.t_s.push(now.as_secs_f64());
        let series = &mut self.timeline.series;
        let mut push = |name: String, value: Option<f64>| {
            series.entry(name).or_default().push(value);
        };
        for api in &mut self.apis {
            let n = &api.spec.name;
            let s = &mut api.step;
            let quantile = |h: &Histogram<u64>, q: f64| {
                (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
            };
            push(format!("rps/{n}"), Some(s.arrivals as f64 / step_s));
            push(
                format!("throughput_rps/{n}"),
                Some(s.completed as f64 / step_s),
            );
            push(format!("rejected/{n}"), Some(s.rejected as f64));
            push(format!("timed_out/{n}"), Some(s.timed_out as f64));
            push(format!("latency_p50_ms/{n}"), quantile(&s.latency, 0.5));
            push(format!("latency_p99_ms/{n}"), quantile(&s.latency, 0.99));
            push(format!("in_flight/{n}"), Some(api.in_flight as f64));
            push(
                format!("queue/{n}"),
                Some((api.queued + api.held.len() as u64) as f64),
            );
            push(
                format!("replicas_desired/{n}"),
                Some(f64::from(api.desired)),
            );
            push(format!("replicas_ready/{n}"), Some(api.ready.len() as f64));
            push(
                format!("replicas_pending/{n}"),
                Some(f64::from(api.pending_replicas)),
            );
            s.arrivals = 0;
            s.completed = 0;
            s.rejected = 0;
            s.timed_out = 0;
            s.latency.reset();
        }
        for (g, count) in self.cluster.nodes_per_group().iter().enumerate() {
            push(
                format!("nodes/{}", self.scenario.node_groups[g].name),
                Some(f64::from(*count)),
            );
        }
        push(
            "cost_usd_per_hour/cluster".into(),
            Some(self.cluster.cost_rate_usd_per_hour() + self.scenario.control_plane_usd_per_hour),
        );
    }

    /// Close the books at the current time and produce the results.
    pub fn finish(mut self) -> Results {
        let end = self.now;
        if end > self.last_tick {
            self.sample_timeline();
        }
        self.cluster.accrue(end);
        let duration_s = end.as_secs_f64();
        let mut apis = Vec::with_capacity(self.apis.len());
        for (a, api) in self.apis.iter_mut().enumerate() {
            api.set_ready_count_changed(end);
            // Requests still waiting past their timeout at the end have been given up on.
            let mut stale = 0;
            if let Some(t) = api.spec.timeout {
                for replica in &api.replicas {
                    for p in &replica.processes {
                        stale +=
                            p.queue.iter().filter(|q| end.since(q.arrival) >= t).count() as u64;
                    }
                }
            }
            let timed_out = api.timed_out + stale;
            let in_flight_at_end = api.in_flight - stale;
            let requests = api.requests.max(1) as f64;
            let latency_ms = Percentiles::from_histogram(&api.latency);
            let slo = verdict(
                &api.spec,
                &latency_ms,
                api.rejected as f64 / requests,
                timed_out as f64 / requests,
            );
            apis.push(ApiResults {
                name: api.spec.name.clone(),
                requests: api.requests,
                completed: api.completed,
                rejected: api.rejected,
                rejected_no_replica: api.rejected_no_replica,
                timed_out,
                in_flight_at_end,
                latency_ms,
                queue_wait_ms: Percentiles::from_histogram(&api.wait),
                throughput_rps: if duration_s > 0.0 {
                    api.completed as f64 / duration_s
                } else {
                    0.0
                },
                replica_seconds: api.replica_seconds,
                cold_starts: api.cold_starts,
                peak_pending_replicas: api.peak_pending,
                cost_usd: self.cluster.api_cost_usd()[a],
                slo,
                latency_histogram: encode_histogram(&api.latency),
                queue_wait_histogram: encode_histogram(&api.wait),
            });
        }
        let node_hours = self.cluster.node_hours();
        let node_groups: Vec<NodeGroupResults> = self
            .cluster
            .groups()
            .iter()
            .enumerate()
            .map(|(g, group)| NodeGroupResults {
                name: group.name.clone(),
                instance_type: group.instance.name.clone(),
                spot: group.spot,
                price_usd_per_hour: group.price_usd_per_hour,
                node_hours: node_hours[g],
                cost_usd: node_hours[g] * group.price_usd_per_hour,
                peak_nodes: self.cluster.peak_nodes()[g],
                spot_interruptions: 0,
                failed_launches: 0,
            })
            .collect();
        let node_cost: f64 = node_groups.iter().map(|g| g.cost_usd).sum();
        let attributed: f64 = apis.iter().map(|a| a.cost_usd).sum();
        let control_plane_cost_usd = duration_s / 3600.0 * self.scenario.control_plane_usd_per_hour;
        Results {
            schema: SCHEMA.into(),
            simctl_version: env!("CARGO_PKG_VERSION").into(),
            scenario_name: self.scenario.name.clone(),
            scenario: serde_json::to_value(&self.scenario.file).unwrap_or(serde_json::Value::Null),
            seed: self.scenario.seed,
            duration_s: self.scenario.duration.as_secs_f64(),
            truncated_at_s: (end < self.scenario.duration).then_some(duration_s),
            apis,
            node_groups,
            control_plane_cost_usd,
            idle_cost_usd: (node_cost - attributed).max(0.0),
            cost_usd_total: node_cost + control_plane_cost_usd,
            timeline: self.timeline,
            events: self.events,
            events_dropped: self.events_dropped,
        }
    }
}

#[inline]
fn record(h: &mut Histogram<u64>, micros: u64) {
    h.saturating_record(micros.min(HISTOGRAM_MAX_US));
}

fn verdict(api: &Api, latency: &Percentiles, rejection_rate: f64, timeout_rate: f64) -> SloVerdict {
    let mut checks = Vec::new();
    let slo = &api.slo;
    for (objective, limit, actual) in [
        (
            "latency_p50_ms",
            slo.latency_p50.map(|d| d.as_secs_f64() * 1000.0),
            latency.p50,
        ),
        (
            "latency_p99_ms",
            slo.latency_p99.map(|d| d.as_secs_f64() * 1000.0),
            latency.p99,
        ),
        (
            "latency_p999_ms",
            slo.latency_p999.map(|d| d.as_secs_f64() * 1000.0),
            latency.p999,
        ),
        ("rejection_rate", slo.max_rejection_rate, rejection_rate),
        ("timeout_rate", slo.max_timeout_rate, timeout_rate),
    ] {
        if let Some(limit) = limit {
            checks.push(SloCheck {
                objective: objective.into(),
                limit,
                actual,
                met: actual <= limit,
            });
        }
    }
    SloVerdict {
        met: checks.iter().all(|c| c.met),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(extra_api: &str) -> Scenario {
        let text = format!(
            r#"
duration = "10m"
seed = 9
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[apis]]
name = "a"
timeout = "2s"
[apis.compute]
cpu = "1"
[apis.pod]
processes_per_replica = 2
threads_per_process = 2
max_queue_length = 8
[apis.service_time]
distribution = "exponential"
mean = "200ms"
[apis.traffic]
kind = "poisson"
rps = 30
[apis.autoscaling]
min_replicas = 2
{extra_api}
"#
        );
        Scenario::parse(&text, "t.toml", Path::new(".")).expect("valid")
    }

    #[test]
    fn stepping_in_slices_gives_the_same_results() {
        let s = scenario("");
        let whole = run(&s).expect("runs");
        let mut sim = Simulation::new(s.clone()).expect("starts");
        while sim.now() < s.duration {
            let next = sim.now() + SimTime::from_secs_f64(7.3);
            sim.advance_to(next).expect("advances");
        }
        let sliced = sim.finish();
        assert_eq!(
            serde_json::to_string(&whole).expect("json"),
            serde_json::to_string(&sliced).expect("json")
        );
    }

    #[test]
    fn overload_rejects_and_balances() {
        // Capacity of 2 replicas × (4 workers + 8 queued); 30 req/s × 0.2 s = 6 busy of 8.
        let r = run(&scenario("")).expect("runs");
        let a = &r.apis[0];
        assert_eq!(
            a.requests,
            a.completed + a.rejected + a.timed_out + a.in_flight_at_end
        );
        assert!(
            a.rejected > 0,
            "random routing to processes overflows queues"
        );
    }

    #[test]
    fn replica_that_does_not_fit_stays_pending() {
        let mut s = scenario("");
        // Three replicas of 1.5 CPU on one m5.xlarge (3.8 CPU allocatable) → one pending.
        s.apis[0].requests.cpu_m = 1500;
        s.apis[0].autoscaling.min_replicas = 3;
        let r = run(&s).expect("runs");
        assert_eq!(r.apis[0].peak_pending_replicas, 1);
        assert!(r.events.iter().any(|e| e.kind == "replica_unschedulable"));
        let ready = &r.timeline.series["replicas_ready/a"];
        assert!(ready.iter().all(|v| *v == Some(2.0)));
    }
}
