//! Tenants on the serving room's request path: each tenant's arrivals merged into its API's,
//! the gateway's per-tenant limits (token bucket and concurrency, answered 429), the replica
//! queue's order between tenants (weighted fair or by priority), and each tenant's tally.
//!
//! An API without tenants has no [`Tenancy`] and pays one `Option` check per request. With
//! tenants, a request carries its tenant as a `u16` index (no name, no lookup); merging the
//! tenants' streams costs a scan of the tenants per arrival.
//!
//! Weighted fair queueing is self-clocked fair queueing (Golestani 1994) per process queue, with
//! every request costing one unit (a gateway does not know a request's service time): a request
//! of tenant `i` gets the tag `F = max(F_last(i), V) + 1 / w_i`, where `V` is the tag of the
//! request that last started on the process, and the queue starts the smallest tag first (ties
//! in arrival order). Each backlogged tenant then gets its weight's share of the starts. Priority
//! queueing orders the queue by the tenant's priority, arrival order within one priority; neither
//! preempts a request that has started.

use hdrhistogram::Histogram;

use super::finish::verdict;
use super::outcomes::record;
use super::serving::{ApiState, Process, Queued};
use super::SimError;
use crate::results::{encode_histogram, new_histogram, Percentiles, TenantResults};
use crate::rng::stream;
use crate::scenario::{Api, QueueDiscipline};
use crate::service_time::ServiceSampler;
use crate::time::SimTime;
use crate::traffic::ArrivalStream;
use workload::fairness::{fair_cost, priority_rank, TokenBucket};

/// One tenant's arrival process and service-time draws.
struct Source {
    arrivals: ArrivalStream,
    next: SimTime,
    next_service: Option<SimTime>,
    service: ServiceSampler,
}

/// One tenant's gateway limits and their state.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Token bucket and when it was last refilled.
    bucket: Option<TokenBucket>,
    refilled: SimTime,
    max_concurrency: Option<u64>,
}

/// One step's counts of a tenant, for the timeline.
#[derive(Debug)]
pub(super) struct TenantStep {
    pub(super) arrivals: u64,
    pub(super) completed: u64,
    pub(super) rejected: u64,
    pub(super) latency: Histogram<u64>,
}

/// What one tenant's requests did so far.
#[derive(Debug)]
pub(super) struct TenantTally {
    pub(super) requests: u64,
    pub(super) completed: u64,
    pub(super) rejected: u64,
    pub(super) rate_limited: u64,
    pub(super) timed_out: u64,
    pub(super) interrupted: u64,
    /// Admitted and not finished: held, queued or executing.
    pub(super) in_flight: u64,
    pub(super) latency: Histogram<u64>,
    /// Service time of its started requests, worker-seconds.
    pub(super) busy_s: f64,
    pub(super) step: TenantStep,
}

/// An API's tenants at run time.
pub(super) struct Tenancy {
    pub(super) discipline: QueueDiscipline,
    sources: Vec<Source>,
    /// The tenant of the API's next arrival.
    pub(super) next: u16,
    pub(super) tally: Vec<TenantTally>,
    limits: Vec<Limits>,
    /// Weighted fair queueing: a request's virtual cost per tenant (`FAIR_UNIT / weight`).
    cost: Vec<u64>,
    /// Priority queueing: the queue's sort key per tenant (smaller starts first).
    rank: Vec<u64>,
}

impl Tenancy {
    /// The tenants of `api`, their streams opened from the scenario's seed; `None` for an API
    /// without tenants. Shared (top-level) tenants draw from streams named after the tenant
    /// alone, so every API they feed sees the same requests.
    pub(super) fn open(api: &Api, seed: u64) -> Result<Option<Box<Tenancy>>, SimError> {
        if api.tenants.is_empty() {
            return Ok(None);
        }
        let mut sources = Vec::with_capacity(api.tenants.len());
        for t in &api.tenants {
            let scope = &t.stream;
            let mut arrivals =
                ArrivalStream::open(&t.traffic, stream(seed, &format!("arrivals/{scope}")))?;
            let next = arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
            sources.push(Source {
                next_service: arrivals.recorded_service(),
                arrivals,
                next,
                service: ServiceSampler::new(
                    api.service_time.clone(),
                    stream(seed, &format!("service/{scope}")),
                ),
            });
        }
        let mut tenancy = Tenancy {
            discipline: api.queue_discipline,
            sources,
            next: 0,
            tally: api
                .tenants
                .iter()
                .map(|_| TenantTally {
                    requests: 0,
                    completed: 0,
                    rejected: 0,
                    rate_limited: 0,
                    timed_out: 0,
                    interrupted: 0,
                    in_flight: 0,
                    latency: new_histogram(),
                    busy_s: 0.0,
                    step: TenantStep {
                        arrivals: 0,
                        completed: 0,
                        rejected: 0,
                        latency: new_histogram(),
                    },
                })
                .collect(),
            limits: api
                .tenants
                .iter()
                .map(|t| Limits {
                    bucket: t.rate_limit.map(|(rps, size)| TokenBucket::new(rps, size)),
                    refilled: SimTime::ZERO,
                    max_concurrency: t.max_concurrency.map(u64::from),
                })
                .collect(),
            cost: api.tenants.iter().map(|t| fair_cost(t.weight)).collect(),
            rank: api
                .tenants
                .iter()
                .map(|t| priority_rank(t.priority))
                .collect(),
        };
        tenancy.pick_next();
        Ok(Some(Box::new(tenancy)))
    }

    /// The API's next arrival (the earliest of its tenants', ties to the first tenant) and its
    /// recorded service time.
    #[inline]
    pub(super) fn next_arrival(&self) -> (SimTime, Option<SimTime>) {
        let s = &self.sources[usize::from(self.next)];
        (s.next, s.next_service)
    }

    /// The tenant whose arrival came moves on to its next; the earliest tenant goes next.
    pub(super) fn advance(&mut self) -> Result<(), SimError> {
        let s = &mut self.sources[usize::from(self.next)];
        s.next = s.arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
        s.next_service = s.arrivals.recorded_service();
        self.pick_next();
        Ok(())
    }

    fn pick_next(&mut self) {
        let mut best = 0;
        for (i, s) in self.sources.iter().enumerate().skip(1) {
            if s.next < self.sources[best].next {
                best = i;
            }
        }
        self.next = best as u16;
    }

    /// A service time for the arriving request, from its tenant's own stream.
    #[inline]
    pub(super) fn draw_service(&mut self) -> SimTime {
        self.sources[usize::from(self.next)].service.sample()
    }

    /// The gateway sees a request of tenant `t` at `now`: counted, then admitted (true) or
    /// answered 429 by the tenant's token bucket or concurrency limit (false, counted rejected).
    pub(super) fn admit(&mut self, t: u16, now: SimTime) -> bool {
        let i = usize::from(t);
        let tally = &mut self.tally[i];
        tally.requests += 1;
        tally.step.arrivals += 1;
        let limits = &mut self.limits[i];
        let over_concurrency = limits
            .max_concurrency
            .is_some_and(|cap| tally.in_flight >= cap);
        let mut admitted = !over_concurrency;
        if let Some(bucket) = &mut limits.bucket {
            bucket.refill(now.since(limits.refilled).as_secs_f64());
            limits.refilled = now;
            // A request refused by the concurrency limit takes no token.
            admitted = admitted && bucket.take();
        }
        if admitted {
            tally.in_flight += 1;
        } else {
            tally.rate_limited += 1;
            tally.rejected += 1;
            tally.step.rejected += 1;
        }
        admitted
    }

    /// An admitted request of tenant `t` answered 503.
    #[inline]
    pub(super) fn rejected(&mut self, t: u16) {
        let tally = &mut self.tally[usize::from(t)];
        tally.rejected += 1;
        tally.step.rejected += 1;
        tally.in_flight -= 1;
    }

    /// A request of tenant `t` timed out.
    #[inline]
    pub(super) fn timed_out(&mut self, t: u16) {
        let tally = &mut self.tally[usize::from(t)];
        tally.timed_out += 1;
        tally.in_flight -= 1;
    }

    /// A request of tenant `t` completed in `latency_us`.
    #[inline]
    pub(super) fn completed(&mut self, t: u16, latency_us: u64) {
        let tally = &mut self.tally[usize::from(t)];
        tally.completed += 1;
        tally.step.completed += 1;
        tally.in_flight -= 1;
        record(&mut tally.latency, latency_us);
        record(&mut tally.step.latency, latency_us);
    }

    /// A request of tenant `t` started on a worker for `service`.
    #[inline]
    pub(super) fn started(&mut self, t: u16, service: SimTime) {
        self.tally[usize::from(t)].busy_s += service.as_secs_f64();
    }

    /// A replica died with `per_tenant[t]` requests of each tenant on it.
    pub(super) fn interrupted(&mut self, per_tenant: &[u32]) {
        for (tally, &n) in self.tally.iter_mut().zip(per_tenant) {
            tally.interrupted += u64::from(n);
            tally.in_flight -= u64::from(n);
        }
    }

    /// A request of tenant `t` is routed to process `p` (queued or started there).
    #[inline]
    pub(super) fn count_on(&self, p: &mut Process, t: u16) {
        let i = usize::from(t);
        if p.tenant_in_flight.len() <= i {
            p.tenant_in_flight.resize(self.tally.len(), 0);
        }
        p.tenant_in_flight[i] += 1;
    }

    /// `request` starts at once on process `p` (a worker is free): under weighted fair queueing
    /// its tag becomes the process's virtual time.
    #[inline]
    pub(super) fn start_now(&self, p: &mut Process, request: &Queued) {
        if self.discipline == QueueDiscipline::WeightedFair {
            let tag = self.fair_tag(p, request.tenant);
            p.fair.started(tag);
        }
    }

    /// `request` waits in process `p`'s queue, in the order of the discipline.
    pub(super) fn enqueue(&self, p: &mut Process, mut request: Queued) {
        request.rank = match self.discipline {
            QueueDiscipline::Fifo => return p.queue.push_back(request),
            QueueDiscipline::WeightedFair => self.fair_tag(p, request.tenant),
            QueueDiscipline::Priority => self.rank[usize::from(request.tenant)],
        };
        // After every request of a rank as small (arrival order among equals).
        let at = p.queue.partition_point(|q| q.rank <= request.rank);
        p.queue.insert(at, request);
    }

    /// The tag or rank a request of tenant `t` would take in process `p`'s queue now.
    fn rank_of(&self, p: &Process, t: u16) -> u64 {
        let i = usize::from(t);
        match self.discipline {
            QueueDiscipline::Fifo => 0,
            QueueDiscipline::WeightedFair => p.fair.peek(i, self.cost[i]),
            QueueDiscipline::Priority => self.rank[i],
        }
    }

    /// The next weighted-fair tag of tenant `t` on process `p`, recorded as its last.
    fn fair_tag(&self, p: &mut Process, t: u16) -> u64 {
        let i = usize::from(t);
        p.fair.tag(i, self.cost[i])
    }
}

impl ApiState {
    /// A request of `request.tenant` finds replica `r` full: under a fair or priority queue it
    /// pushes out the queued request of process `p` that would start last, when that one would
    /// start after it (answered 503 in its place) — the shared buffer's longest-queue drop, so a
    /// tenant that floods the queue cannot lock the others out. False: no room (FIFO, per-
    /// connection routing over several processes, or nothing queued behind it).
    pub(super) fn push_out(&mut self, r: usize, p: usize, request: &Queued) -> bool {
        let Some(tenancy) = &self.tenancy else {
            return false;
        };
        if self.spec.per_connection.is_some() && self.spec.processes > 1 {
            return false;
        }
        let process = &mut self.replicas[r].processes[p];
        let rank = tenancy.rank_of(process, request.tenant);
        if tenancy.discipline == QueueDiscipline::Fifo
            || process.queue.back().is_none_or(|last| last.rank <= rank)
        {
            return false;
        }
        let Some(victim) = process.queue.pop_back() else {
            return false;
        };
        let v = usize::from(victim.tenant);
        if tenancy.discipline == QueueDiscipline::WeightedFair {
            // Its tenant's clock goes back to before the request it loses.
            process.fair.give_back(v, victim.rank, tenancy.cost[v]);
        }
        process.tenant_in_flight[v] -= 1;
        self.replicas[r].in_flight -= 1;
        self.in_flight -= 1;
        self.queued -= 1;
        self.count_rejected(victim.arrival, victim.tenant);
        true
    }
}

/// Each tenant's figures at the end of a run (`end`); empty for an API without tenants. The
/// API's cost (`api_cost_usd`) is shared by busy worker-seconds (by requests when no request
/// started); requests still queued or held past their timeout at the end are timed out, as the
/// API's own figures count them.
pub(super) fn results(api: &ApiState, end: SimTime, api_cost_usd: f64) -> Vec<TenantResults> {
    let Some(tenancy) = &api.tenancy else {
        return Vec::new();
    };
    let mut stale = vec![0u64; tenancy.tally.len()];
    if let Some(timeout) = api.spec.timeout {
        let queued = api
            .replicas
            .iter()
            .flat_map(|r| &r.processes)
            .flat_map(|p| &p.queue);
        for q in queued.chain(&api.held) {
            if end.since(q.arrival) >= timeout {
                stale[usize::from(q.tenant)] += 1;
            }
        }
    }
    let busy_total: f64 = tenancy.tally.iter().map(|t| t.busy_s).sum();
    let requests_total: u64 = tenancy.tally.iter().map(|t| t.requests).sum();
    let duration_s = end.as_secs_f64();
    api.spec
        .tenants
        .iter()
        .zip(&tenancy.tally)
        .zip(stale)
        .map(|((spec, t), stale)| {
            let latency_ms = Percentiles::from_histogram(&t.latency);
            let timed_out = t.timed_out + stale;
            let requests = t.requests.max(1) as f64;
            let share = if busy_total > 0.0 {
                t.busy_s / busy_total
            } else if requests_total > 0 {
                t.requests as f64 / requests_total as f64
            } else {
                0.0
            };
            TenantResults {
                name: spec.name.clone(),
                requests: t.requests,
                completed: t.completed,
                rejected: t.rejected,
                rate_limited: t.rate_limited,
                timed_out,
                interrupted: t.interrupted,
                in_flight_at_end: t.in_flight - stale,
                throughput_rps: if duration_s > 0.0 {
                    t.completed as f64 / duration_s
                } else {
                    0.0
                },
                busy_worker_s: t.busy_s,
                cost_usd: api_cost_usd * share,
                slo: spec.slo.as_ref().map(|slo| {
                    verdict(
                        slo,
                        &latency_ms,
                        t.rejected as f64 / requests,
                        timed_out as f64 / requests,
                    )
                }),
                latency_ms,
                latency_histogram: encode_histogram(&t.latency),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The merged gaps of Poisson tenants at 30 and 70 req/s are exponential at 100 req/s:
    /// a Kolmogorov–Smirnov distance under the 1 % critical value, 1.63 / √n.
    #[test]
    fn merged_poisson_tenants_have_exponential_gaps_at_the_summed_rate() {
        let text = r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
[[apis]]
name = "a"
[apis.service_time]
distribution = "constant"
value = "1ms"
[[apis.tenants]]
name = "x"
traffic = { kind = "poisson", rps = 30 }
[[apis.tenants]]
name = "y"
traffic = { kind = "poisson", rps = 70 }
"#;
        let s = crate::scenario::Scenario::parse(text, "t.toml", Path::new(".")).expect("valid");
        let mut t = Tenancy::open(&s.apis[0], 11)
            .expect("opens")
            .expect("tenants");
        let mut gaps = Vec::new();
        let mut last = SimTime::ZERO;
        let mut per_tenant = [0u64; 2];
        for _ in 0..50_000 {
            let (at, _) = t.next_arrival();
            assert!(at >= last, "arrivals in order");
            gaps.push(at.since(last).as_secs_f64());
            per_tenant[usize::from(t.next)] += 1;
            last = at;
            t.advance().expect("advances");
        }
        gaps.sort_by(f64::total_cmp);
        let n = gaps.len() as f64;
        let distance = gaps
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let cdf = 1.0 - (-100.0 * g).exp();
                (cdf - i as f64 / n)
                    .abs()
                    .max((cdf - (i + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max);
        assert!(distance < 1.63 / n.sqrt(), "KS distance {distance}");
        let share = per_tenant[0] as f64 / n;
        assert!((share - 0.3).abs() < 4.0 * (0.21 / n).sqrt(), "{share}");
    }
}
