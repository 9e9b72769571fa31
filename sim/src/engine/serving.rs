//! The serving room: each API's request path — arrivals, the activator, routing to replicas,
//! process queues and workers, completions and timeouts — and the replicas' serving state, plus
//! the measurements it feeds the autoscaling room (scrapes) and the decisions it asks for.
//!
//! Hot path: an arrival is not a heap event — each API keeps its next arrival time and the loop
//! takes whichever is earlier, the API's next arrival or the top of the event heap (heap first on
//! ties, so a completing worker is free for an arrival at the same instant). A request costs one
//! heap push and pop (its completion), two random draws and two histogram records.
//!
//! Routing: a request goes to the ready replica with the fewest requests in flight (ties broken
//! round-robin), which is what Kubernetes' Service routing with Cortex's proxy approximates with a
//! least-request load balancer; inside the replica it goes to one process uniformly at random,
//! each process with its own queue — FIFO, or weighted fair or by priority between an API's
//! tenants (`tenancy.rs`) — and `threads_per_process` workers.
//!
//! Timeouts are client-side: a request executing past the timeout still occupies its worker (the
//! server cannot see the client leave) and counts as timed out when it finishes; a queued request
//! past the timeout is dropped when it reaches the head of its queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hdrhistogram::Histogram;
use rand::Rng;

use super::autoscaling::ApiAutoscaler;
use super::llm_serving::{LlmState, ReplicaEngine};
use super::outcomes::{record, StepCounters, Warmup};
use super::pipelines::{FlowEnd, NO_FLOW};
use super::tenancy::Tenancy;
use super::{Agenda, EventKind, SimError};
use crate::cluster::{Cluster, NodeId, SharedGpu};
use crate::results::new_histogram;
use crate::rng::{stream, Stream};
use crate::scenario::{Api, Requests};
use crate::service_time::ServiceSampler;
use crate::time::SimTime;
use crate::traffic::{ArrivalStream, Traffic};
use workload::fairness::FairClock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplicaState {
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
pub(super) struct Queued {
    pub(super) arrival: SimTime,
    pub(super) service: SimTime,
    /// LLM APIs: prompt tokens (0 for request-level APIs).
    pub(super) prompt: u32,
    /// LLM APIs: output tokens.
    pub(super) output: u32,
    /// Its tenant's index in the API's tenants (0 without tenants).
    pub(super) tenant: u16,
    /// Its place in a fair or priority queue, smaller first (0 in a FIFO queue): see
    /// `tenancy.rs`.
    pub(super) rank: u64,
    /// Its pipeline request (`NO_FLOW` outside pipelines): see `pipelines.rs`.
    pub(super) flow: u32,
}

#[derive(Debug, Default)]
pub(super) struct Process {
    pub(super) busy: u32,
    pub(super) queue: VecDeque<Queued>,
    /// An async API's idle workers, by when each last became idle (its dequeuer's poll cycle
    /// starts then).
    pub(super) idle_since: Vec<SimTime>,
    /// Weighted fair queueing's clock of this queue.
    pub(super) fair: FairClock,
    /// APIs with tenants: each tenant's requests here, queued or executing (empty until one
    /// arrives), so a lost replica's requests are charged to their tenants.
    pub(super) tenant_in_flight: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct Replica {
    pub(super) state: ReplicaState,
    pub(super) node: Option<NodeId>,
    pub(super) in_flight: u32,
    pub(super) processes: Vec<Process>,
    /// `per_connection` routing: the proxy's idle keep-alive connections to this replica, each
    /// as (the process that accepted it, idle since), most recently idle last — the proxy
    /// reuses that one first (hyper's pool is LIFO).
    pub(super) idle_connections: Vec<(u16, SimTime)>,
    pub(super) created: SimTime,
    /// Requests routed here since the last scrape.
    pub(super) arrivals: u64,
    /// Bumped each time the slot's replica is killed or the slot reused.
    pub(super) epoch: u32,
    /// Created at t = 0 (ready at once, no cold start).
    pub(super) initial: bool,
    /// Workers executing a request, over all processes.
    pub(super) busy: u32,
    /// Its share of a time-sliced / MPS GPU.
    pub(super) shared_gpu: Option<SharedGpu>,
    /// GPU memory it has loaded on that shared GPU, MiB.
    pub(super) gpu_loaded: u64,
    /// OOM kills of this pod so far (its CrashLoopBackOff).
    pub(super) crashes: u32,
    /// LLM APIs: its engine, from the moment it is placed on a node.
    pub(super) llm: Option<Box<ReplicaEngine>>,
    /// LLM APIs: the engine's counters at the previous scrape (token rates are increases).
    pub(super) scraped: llm::EngineStats,
    /// What its pod requests (the API's, or what a VPA gave it).
    pub(super) requests: Requests,
    /// An async API: the messages its workers are processing, each with when it was taken
    /// (a message whose worker dies is redelivered after its visibility timeout).
    pub(super) taken: Vec<(Queued, SimTime)>,
    /// A pipeline stage: the flows its workers are executing, each with when it started (a lost
    /// replica fails them).
    pub(super) flows: Vec<(u32, SimTime)>,
}

pub(super) struct ApiState {
    pub(super) spec: Api,
    pub(super) arrivals: ArrivalStream,
    pub(super) next_arrival: SimTime,
    /// The recorded service time of the next arrival, when the trace has one.
    pub(super) next_service: Option<SimTime>,
    pub(super) service: ServiceSampler,
    pub(super) routing: Stream,
    /// The autoscaling core, fed with samples of the simulated replicas.
    pub(super) autoscaler: ApiAutoscaler,
    /// Replicas asked of the cluster: the policy's count plus overprovisioning.
    pub(super) desired: u32,
    /// Requests held by the activator while the API has no ready replica (scale-to-zero).
    pub(super) held: VecDeque<Queued>,
    /// An async API's next dequeuer wake-up already on the agenda.
    pub(super) queue_wake: Option<SimTime>,
    /// An async API's messages whose worker died while processing them, each with when its
    /// visibility timeout ends and it is back in the queue (SQS: not visible, still counted).
    pub(super) invisible: Vec<(SimTime, Queued)>,
    /// What a new pod requests: the API's requests, or a VPA's target once its admission
    /// controller has one.
    pub(super) admitted: Requests,
    /// ∫ (in flight + held) dt, in request-seconds, for time-averaged concurrency.
    pub(super) area: f64,
    pub(super) area_at: SimTime,
    pub(super) area_at_scrape: f64,
    pub(super) track_area: bool,
    pub(super) replicas: Vec<Replica>,
    /// Indices of ready replicas, the routing candidates.
    pub(super) ready: Vec<u32>,
    pub(super) round_robin: usize,
    pub(super) in_flight: u64,
    pub(super) queued: u64,
    pub(super) pending_replicas: u32,
    pub(super) peak_pending: u32,
    pub(super) cold_starts: u64,
    pub(super) replica_seconds: f64,
    pub(super) last_ready_change: SimTime,
    pub(super) requests: u64,
    pub(super) completed: u64,
    pub(super) rejected: u64,
    pub(super) rejected_no_replica: u64,
    pub(super) timed_out: u64,
    pub(super) interrupted: u64,
    pub(super) oom_kills: u64,
    pub(super) latency: Histogram<u64>,
    pub(super) wait: Histogram<u64>,
    pub(super) step: StepCounters,
    pub(super) warmup: Warmup,
    /// LLM APIs: token-level counters.
    pub(super) llm: Option<LlmState>,
    /// Its tenants, when its traffic is a sum of tenants.
    pub(super) tenancy: Option<Box<Tenancy>>,
    /// `[apis.startup]`: start-ups drawn from their parts, and where the time went.
    pub(super) startups: Option<super::startup::Startups>,
    /// A pipeline stage: its flows that ended since the loop last asked, and how (the loop hands
    /// them to the pipelines room).
    pub(super) ended_flows: Vec<(u32, FlowEnd)>,
}

impl ApiState {
    /// Bring the concurrency integral up to `now`; call before changing in-flight or held.
    #[inline]
    /// Requests waiting for a replica or a worker: those the activator or an async API's queue
    /// holds, and an async API's messages in their visibility timeout.
    pub(super) fn waiting_messages(&self) -> u64 {
        (self.held.len() + self.invisible.len()) as u64
    }

    pub(super) fn touch(&mut self, now: SimTime) {
        if self.track_area {
            let dt = now.since(self.area_at).as_secs_f64();
            self.area += (self.in_flight + self.waiting_messages()) as f64 * dt;
            self.area_at = now;
        }
    }

    pub(super) fn set_ready_count_changed(&mut self, now: SimTime) {
        let dt = now.since(self.last_ready_change).as_secs_f64();
        self.replica_seconds += dt * self.ready.len() as f64;
        self.last_ready_change = now;
    }

    /// Pick the ready replica with the fewest in flight, ties round-robin.
    #[inline]
    pub(super) fn route(&mut self) -> Option<u32> {
        let n = self.ready.len();
        match n {
            0 => None,
            1 => Some(self.ready[0]),
            _ => {
                let start = self.next_round_robin(n);
                Some(self.least_by(start, |r| r.in_flight))
            }
        }
    }

    /// Where the next scan over `n` ready replicas starts (ties go round-robin).
    #[inline]
    pub(super) fn next_round_robin(&mut self, n: usize) -> usize {
        let start = self.round_robin % n;
        self.round_robin = self.round_robin.wrapping_add(1);
        start
    }

    /// The ready replica with the smallest `key`, scanning from `start`; the first found wins a
    /// tie.
    #[inline]
    pub(super) fn least_by<K: Ord>(&self, start: usize, key: impl Fn(&Replica) -> K) -> u32 {
        let n = self.ready.len();
        let mut best = self.ready[start];
        let mut best_key = key(&self.replicas[best as usize]);
        for k in 1..n {
            let candidate = self.ready[(start + k) % n];
            let candidate_key = key(&self.replicas[candidate as usize]);
            if candidate_key < best_key {
                best = candidate;
                best_key = candidate_key;
            }
        }
        best
    }
}

impl ApiState {
    /// An API with no replica yet, its streams opened from the scenario's seed.
    pub(super) fn new(spec: Api, seed: u64) -> Result<ApiState, SimError> {
        let tenancy = Tenancy::open(&spec, seed)?;
        // With tenants, the API's own stream is empty: its arrivals are its tenants'.
        let no_traffic = Traffic::Steps {
            steps: Vec::new(),
            poisson: false,
        };
        let own = if tenancy.is_some() {
            &no_traffic
        } else {
            &spec.traffic
        };
        let mut arrivals =
            ArrivalStream::open(own, stream(seed, &format!("arrivals/{}", spec.name)))?;
        let (next_arrival, next_service) = match &tenancy {
            Some(t) => t.next_arrival(),
            None => (
                arrivals.next_arrival()?.unwrap_or(SimTime::NEVER),
                arrivals.recorded_service(),
            ),
        };
        let autoscaler = ApiAutoscaler::new(&spec.name, &spec.autoscaling);
        Ok(ApiState {
            service: ServiceSampler::new(
                spec.service_time.clone(),
                stream(seed, &format!("service/{}", spec.name)),
            ),
            routing: stream(seed, &format!("routing/{}", spec.name)),
            arrivals,
            next_arrival,
            next_service,
            track_area: autoscaler.wants_time_average(),
            autoscaler,
            desired: 0,
            held: VecDeque::new(),
            queue_wake: None,
            invisible: Vec::new(),
            admitted: spec.requests,
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
            interrupted: 0,
            oom_kills: 0,
            latency: new_histogram(),
            wait: new_histogram(),
            step: StepCounters {
                arrivals: 0,
                completed: 0,
                rejected: 0,
                rejected_no_replica: 0,
                timed_out: 0,
                interrupted: 0,
                latency: new_histogram(),
            },
            warmup: Warmup {
                until: spec.slo.warmup.map_or(SimTime::ZERO, |d| d.0),
                requests: 0,
                rejected: 0,
                timed_out: 0,
                latency: new_histogram(),
            },
            llm: spec
                .llm
                .as_ref()
                .map(|_| LlmState::new(stream(seed, &format!("tokens/{}", spec.name)))),
            tenancy,
            startups: spec
                .startup
                .clone()
                .map(|m| super::startup::Startups::new(m, &spec.name, seed)),
            ended_flows: Vec::new(),
            spec,
        })
    }

    /// Route a request to a ready replica, start it or queue it, or reject it.
    #[inline]
    fn dispatch(
        &mut self,
        a: usize,
        request: Queued,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        if self.spec.llm.is_some() {
            return self.dispatch_llm(a, request, now, cluster, agenda);
        }
        let api = self;
        let Some(r) = api.route() else {
            api.count_rejected(request.arrival, request.tenant);
            api.end_flow(request.flow, FlowEnd::Rejected);
            api.rejected_no_replica += 1;
            api.step.rejected_no_replica += 1;
            return;
        };
        let capacity = api.spec.capacity();
        let processes = api.spec.processes;
        let threads = api.spec.threads;
        // Per request, the draw comes first, rejected or not (the stream's order is the
        // results' byte-identity); per connection, only a new connection draws.
        let random = match api.spec.per_connection {
            None if processes > 1 => Some(api.routing.random_range(0..processes)),
            _ => None,
        };
        if api.replicas[r as usize].in_flight >= capacity
            && !api.push_out(r as usize, random.unwrap_or(0) as usize, &request)
        {
            api.count_rejected(request.arrival, request.tenant);
            api.end_flow(request.flow, FlowEnd::Rejected);
            return;
        }
        let replica = &mut api.replicas[r as usize];
        let process = match (random, api.spec.per_connection) {
            (Some(p), _) => p,
            (None, Some(keep_alive)) if processes > 1 => {
                // Connections idle past the server's keep-alive timeout were closed (the oldest
                // are first); then reuse the most recently idle, or open one.
                let idle = &mut replica.idle_connections;
                let open = idle
                    .iter()
                    .position(|(_, since)| now.since(*since) < keep_alive)
                    .unwrap_or(idle.len());
                idle.drain(..open);
                match idle.pop() {
                    Some((p, _)) => u32::from(p),
                    // A new connection: the favoured process, or any.
                    None if api.spec.accept_skew > 0.0
                        && api.routing.random::<f64>() < api.spec.accept_skew =>
                    {
                        0
                    }
                    None => api.routing.random_range(0..processes),
                }
            }
            _ => 0,
        };
        replica.in_flight += 1;
        replica.arrivals += 1;
        api.in_flight += 1;
        let proc_ = &mut replica.processes[process as usize];
        if let Some(tenancy) = &api.tenancy {
            tenancy.count_on(proc_, request.tenant);
            if proc_.busy >= threads {
                api.queued += 1;
                return tenancy.enqueue(proc_, request);
            }
            tenancy.start_now(proc_, &request);
        }
        if proc_.busy < threads {
            api.start(
                a,
                r as usize,
                process as usize,
                request,
                now,
                cluster,
                agenda,
            );
        } else {
            proc_.queue.push_back(request);
            api.queued += 1;
        }
    }

    /// A free worker of process `p` on replica `r` starts `request` (in flight already counted):
    /// its wait is recorded and its completion scheduled, stretched on a shared GPU.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &mut self,
        a: usize,
        r: usize,
        p: usize,
        request: Queued,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        let replica = &mut self.replicas[r];
        let epoch = replica.epoch;
        replica.processes[p].busy += 1;
        replica.busy += 1;
        let mut service = request.service;
        if let Some(gpu) = replica.shared_gpu {
            let sharers = if replica.busy == 1 {
                cluster.gpu_sharer_busy(gpu)
            } else {
                cluster.gpu_sharers(gpu)
            };
            service = SimTime::from_secs_f64(service.as_secs_f64() * gpu.stretch(sharers));
        }
        record(&mut self.wait, now.since(request.arrival).as_micros());
        if request.flow != NO_FLOW {
            replica.flows.push((request.flow, now));
        }
        if let Some(tenancy) = &mut self.tenancy {
            tenancy.started(request.tenant, service);
        }
        agenda.schedule(
            now + service,
            EventKind::Completion {
                api: a as u16,
                process: p as u16,
                tenant: request.tenant,
                replica: r as u32,
                epoch,
                arrival: request.arrival,
                flow: request.flow,
            },
        );
    }
}

/// Every API's serving state and the order of their next arrivals.
pub(super) struct Serving {
    pub(super) apis: Vec<ApiState>,
    /// Each API's next arrival, earliest on top: an arrival costs O(log APIs), a completion
    /// nothing.
    arrival_order: BinaryHeap<Reverse<(SimTime, usize)>>,
}

impl Serving {
    /// No API yet.
    pub(super) fn new(apis: usize) -> Self {
        Serving {
            apis: Vec::with_capacity(apis),
            arrival_order: BinaryHeap::new(),
        }
    }

    /// Every API is added: order their first arrivals and the feeds' (routers, then
    /// pipelines: `feeds[k]` is source `apis.len() + k`) — the doors open.
    pub(super) fn open(&mut self, feeds: &[SimTime]) {
        let n = self.apis.len();
        self.arrival_order = self
            .apis
            .iter()
            .map(|a| a.next_arrival)
            .chain(feeds.iter().copied())
            .enumerate()
            .map(|(i, at)| Reverse((at, i)))
            .collect();
        debug_assert_eq!(self.arrival_order.len(), n + feeds.len());
    }

    /// A feed's request arrived (it was the earliest source): its next arrival is `next`.
    pub(super) fn feed_advanced(&mut self, source: usize, next: SimTime) {
        if let Some(mut top) = self.arrival_order.peek_mut() {
            top.0 = (next, source);
        }
    }

    /// The earliest pending arrival across APIs and feeds and its source (ties: lowest index;
    /// APIs first, then routers, then pipelines).
    #[inline]
    pub(super) fn next_arrival(&self) -> (SimTime, usize) {
        self.arrival_order
            .peek()
            .map_or((SimTime::NEVER, usize::MAX), |r| r.0)
    }

    /// Read API `a`'s next arrival from its stream after one arrived.
    #[inline]
    pub(super) fn advance_arrivals(&mut self, a: usize) -> Result<(), SimError> {
        let api = &mut self.apis[a];
        if let Some(tenancy) = &mut api.tenancy {
            tenancy.advance()?;
            (api.next_arrival, api.next_service) = tenancy.next_arrival();
        } else {
            api.next_arrival = api.arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
            api.next_service = api.arrivals.recorded_service();
        }
        let next = api.next_arrival;
        if let Some(mut top) = self.arrival_order.peek_mut() {
            top.0 = (next, a);
        }
        Ok(())
    }

    /// A request arrives at API `a`: dispatched, held by the activator, or rejected. True when
    /// the activator wakes a scaled-to-zero API (the loop asks the autoscaler to decide).
    #[inline]
    pub(super) fn arrive(
        &mut self,
        a: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let recorded = self.apis[a].next_service;
        self.arrive_request(a, now, (recorded, NO_FLOW), cluster, agenda)
    }

    /// A request arrives at API `a` with its recorded service time, if any, and its pipeline
    /// flow (`NO_FLOW` for none), from its own stream, a router or a pipeline: as
    /// [`Self::arrive`].
    #[inline]
    pub(super) fn arrive_request(
        &mut self,
        a: usize,
        now: SimTime,
        (recorded, flow): (Option<SimTime>, u32),
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let api = &mut self.apis[a];
        api.touch(now);
        api.requests += 1;
        api.step.arrivals += 1;
        if now < api.warmup.until {
            api.warmup.requests += 1;
        }
        // Drawn for every request, served or not, so every configuration sees the same
        // service time for the same request (common random numbers); a tenant's from its own
        // stream.
        let (sampled, tenant) = match &mut api.tenancy {
            None => (api.service.sample(), 0),
            Some(t) => (t.draw_service(), t.next),
        };
        let mut service = recorded.unwrap_or(sampled);
        if api.spec.service_scale != 1.0 {
            service = SimTime::from_secs_f64(service.as_secs_f64() * api.spec.service_scale);
        }
        let (prompt, output) = if api.llm.is_some() {
            let recorded = api.arrivals.recorded_tokens();
            api.draw_lengths(recorded)
        } else {
            (0, 0)
        };
        let request = Queued {
            arrival: now,
            service,
            prompt,
            output,
            tenant,
            rank: 0,
            flow,
        };
        if let Some(t) = &mut api.tenancy {
            if !t.admit(tenant, now) {
                // The gateway answers 429: a rejection that never reaches a replica.
                api.rejected += 1;
                api.step.rejected += 1;
                if now < api.warmup.until {
                    api.warmup.rejected += 1;
                }
                return false;
            }
        }
        if api.spec.is_async {
            // Into the queue (SQS: no limit, no rejection); a free worker takes it at once.
            api.held.push_back(request);
            api.pull(a, now, cluster, agenda);
            return api.desired == 0;
        }
        if api.ready.is_empty() && api.spec.autoscaling.holds_requests_at_zero() {
            // The activator holds the request (behind a breaker of one replica's capacity) and
            // wakes a scaled-to-zero API at once.
            if api.held.len() as u64 >= u64::from(api.spec.capacity()) {
                api.count_rejected(now, tenant);
                api.end_flow(flow, FlowEnd::Rejected);
                api.step.rejected_no_replica += 1;
                return false;
            }
            api.held.push_back(request);
            return api.desired == 0;
        }
        api.dispatch(a, request, now, cluster, agenda);
        false
    }

    /// A request finishes on process `p` of replica `r`: counted, and the process takes the next
    /// request of its queue. True when the replica was terminating and has drained (the loop
    /// removes it).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn complete(
        &mut self,
        a: usize,
        r: usize,
        p: usize,
        (arrival, tenant, flow): (SimTime, u16, u32),
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let api = &mut self.apis[a];
        api.touch(now);
        let timeout = api.spec.timeout;
        let in_time = api.count_finished(arrival, tenant, now);
        if flow != NO_FLOW {
            let flows = &mut api.replicas[r].flows;
            let started = flows.iter().position(|f| f.0 == flow).map_or(now, |i| {
                let (_, started) = flows.swap_remove(i);
                started
            });
            let end = if in_time {
                FlowEnd::Answered {
                    wait: started.since(arrival),
                }
            } else {
                FlowEnd::TimedOut
            };
            api.ended_flows.push((flow, end));
        }
        let replica = &mut api.replicas[r];
        replica.in_flight -= 1;
        api.in_flight -= 1;
        if let Some(i) = replica.taken.iter().position(|(q, _)| q.arrival == arrival) {
            replica.taken.swap_remove(i);
        }
        if api.tenancy.is_some() {
            replica.processes[p].tenant_in_flight[usize::from(tenant)] -= 1;
        }
        if api.spec.per_connection.is_some() && api.spec.processes > 1 {
            // The answer is out: its connection is idle again, on the same process.
            replica.idle_connections.push((p as u16, now));
        }
        let proc_ = &mut replica.processes[p];
        proc_.busy -= 1;
        replica.busy -= 1;
        let mut next = None;
        while let Some(q) = proc_.queue.pop_front() {
            api.queued -= 1;
            let waited = now.since(q.arrival);
            if timeout.is_some_and(|t| waited >= t) {
                // The client gave up while the request was queued: the slot frees, no work done.
                // (Counted inline: the replica's queue is borrowed here.)
                api.timed_out += 1;
                api.step.timed_out += 1;
                if q.arrival < api.warmup.until {
                    api.warmup.timed_out += 1;
                }
                replica.in_flight -= 1;
                api.in_flight -= 1;
                if let Some(tenancy) = &mut api.tenancy {
                    tenancy.timed_out(q.tenant);
                    proc_.tenant_in_flight[usize::from(q.tenant)] -= 1;
                }
                if q.flow != NO_FLOW {
                    api.ended_flows.push((q.flow, FlowEnd::TimedOut));
                }
                continue;
            }
            proc_.busy += 1;
            replica.busy += 1;
            // Weighted fair queueing's clock: the tag of the request that starts.
            proc_.fair.started(q.rank);
            record(&mut api.wait, waited.as_micros());
            if q.flow != NO_FLOW {
                replica.flows.push((q.flow, now));
            }
            next = Some(q);
            break;
        }
        let mut next_service = next.map(|q| q.service);
        if let Some(gpu) = replica.shared_gpu {
            if replica.busy == 0 {
                cluster.gpu_sharer_idle(gpu);
            } else if let Some(service) = next_service.as_mut() {
                let stretch = gpu.stretch(cluster.gpu_sharers(gpu));
                *service = SimTime::from_secs_f64(service.as_secs_f64() * stretch);
            }
        }
        let drained = replica.state == ReplicaState::Terminating && replica.in_flight == 0;
        let epoch = replica.epoch;
        if api.spec.is_async {
            // The freed worker polls at once: it takes the next message if there is one.
            if replica.state == ReplicaState::Ready {
                replica.processes[p].idle_since.push(now);
            }
            api.pull(a, now, cluster, agenda);
            return drained;
        }
        if let (Some(q), Some(service)) = (next, next_service) {
            if let Some(tenancy) = &mut api.tenancy {
                tenancy.started(q.tenant, service);
            }
            agenda.schedule(
                now + service,
                EventKind::Completion {
                    api: a as u16,
                    process: p as u16,
                    tenant: q.tenant,
                    replica: r as u32,
                    epoch,
                    arrival: q.arrival,
                    flow: q.flow,
                },
            );
        }
        drained
    }

    /// Hand the activator's held requests to the ready replicas, oldest first.
    pub(super) fn release_held(
        &mut self,
        a: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        self.apis[a].touch(now);
        if self.apis[a].spec.is_async {
            return self.apis[a].pull(a, now, cluster, agenda);
        }
        while let Some(request) = self.apis[a].held.pop_front() {
            let api = &mut self.apis[a];
            if api
                .spec
                .timeout
                .is_some_and(|t| now.since(request.arrival) >= t)
            {
                api.count_timed_out(request.arrival, request.tenant);
                api.end_flow(request.flow, FlowEnd::TimedOut);
                continue;
            }
            api.dispatch(a, request, now, cluster, agenda);
        }
    }
}
