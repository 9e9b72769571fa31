//! The timeline room: one point per step of every series (traffic, latency, replicas, nodes,
//! GPU use, cost), sampled from the other rooms' state at each timeline tick.

use hdrhistogram::Histogram;

use super::attribution::StepFacts;
use super::{ApiState, ReplicaState};
use crate::batch::BatchRuntime;
use crate::cluster::{Cluster, NodeState};
use crate::results::{ApiUtilisation, GroupUtilisation, Metric, SeriesKey, Timeline};
use crate::scenario::Scenario;
use crate::time::SimTime;

/// The series recorded so far and when the last step closed.
pub(super) struct TimelineRecorder {
    pub(super) timeline: Timeline,
    last_tick: SimTime,
    /// Per API, what each step looked like (for the attribution of SLO misses; not written).
    pub(super) facts: Vec<Vec<StepFacts>>,
    /// Per API, busy and requested resources integrated over the steps (seconds, not hours).
    pub(super) api_use: Vec<ApiUse>,
    /// Per node group, capacity, requested and busy resources integrated over the steps.
    pub(super) group_use: Vec<GroupUtilisation>,
}

/// An API's resource integrals so far; [`ApiUse::finish`] turns them into the results' shares
/// and hours.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ApiUse {
    busy_worker_s: f64,
    ready_worker_s: f64,
    peak_busy_share: f64,
    cpu_requested_core_s: f64,
    cpu_busy_core_s: f64,
    gpu_requested_s: f64,
    gpu_busy_s: f64,
}

impl ApiUse {
    /// Shares and hours for the results.
    pub(super) fn finish(&self) -> ApiUtilisation {
        ApiUtilisation {
            busy_share: crate::results::share(self.busy_worker_s, self.ready_worker_s),
            peak_busy_share: self.peak_busy_share,
            cpu_requested_core_hours: self.cpu_requested_core_s / 3600.0,
            cpu_busy_core_hours: self.cpu_busy_core_s / 3600.0,
            gpu_requested_hours: self.gpu_requested_s / 3600.0,
            gpu_busy_hours: self.gpu_busy_s / 3600.0,
        }
    }
}

/// A group's integrals in seconds as hours.
pub(super) fn group_hours(g: &GroupUtilisation) -> GroupUtilisation {
    GroupUtilisation {
        cpu_capacity_core_hours: g.cpu_capacity_core_hours / 3600.0,
        cpu_requested_core_hours: g.cpu_requested_core_hours / 3600.0,
        cpu_busy_core_hours: g.cpu_busy_core_hours / 3600.0,
        gpu_capacity_hours: g.gpu_capacity_hours / 3600.0,
        gpu_requested_hours: g.gpu_requested_hours / 3600.0,
        gpu_busy_hours: g.gpu_busy_hours / 3600.0,
    }
}

/// MIG instances as GPUs, by their share of a GPU's compute.
fn mig_gpus(mig: &[u16; crate::mig::KINDS]) -> f64 {
    mig.iter()
        .enumerate()
        .map(|(k, n)| f64::from(*n) * crate::mig::compute_fraction(k))
        .sum()
}

/// Completions of a step slower than `limit` (µs).
fn slower_than(h: &Histogram<u64>, limit_us: Option<u64>) -> u64 {
    match limit_us {
        Some(l) if !h.is_empty() => h.len() - h.count_between(0, l).min(h.len()),
        _ => 0,
    }
}

impl TimelineRecorder {
    /// An empty timeline with steps of `step`.
    pub(super) fn new(step: SimTime, apis: usize, groups: usize) -> Self {
        TimelineRecorder {
            timeline: Timeline {
                step_s: step.as_secs_f64(),
                ..Timeline::default()
            },
            last_tick: SimTime::ZERO,
            facts: vec![Vec::new(); apis],
            api_use: vec![ApiUse::default(); apis],
            group_use: vec![GroupUtilisation::default(); groups],
        }
    }

    /// Whether time has passed since the last sample (the run's end closes a partial step).
    pub(super) fn behind(&self, now: SimTime) -> bool {
        now > self.last_tick
    }

    /// Close the step ending at `now`: one point of every series, and the APIs' per-step
    /// counters start again.
    pub(super) fn sample(
        &mut self,
        now: SimTime,
        apis: &mut [ApiState],
        batch: &[BatchRuntime],
        cluster: &Cluster,
        scenario: &Scenario,
    ) {
        let step_s = now.since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if step_s <= 0.0 {
            return;
        }
        self.timeline.t_s.push(now.as_secs_f64());
        self.record_use(step_s, apis, cluster, scenario);
        let series = &mut self.timeline.series;
        let mut push = |name: SeriesKey, value: Option<f64>| {
            series.entry(name).or_default().push(value);
        };
        for (a, api) in apis.iter_mut().enumerate() {
            let n = &api.spec.name;
            let s = &mut api.step;
            let limit = |d: Option<crate::units::DurationSpec>| d.map(|d| d.0.as_micros());
            let slo = &api.spec.slo;
            self.facts[a].push(StepFacts {
                t_end_s: now.as_secs_f64(),
                step_s,
                arrivals: s.arrivals,
                rejected: s.rejected,
                rejected_no_replica: s.rejected_no_replica,
                timed_out: s.timed_out,
                slow: [
                    slower_than(&s.latency, limit(slo.latency_p50)),
                    slower_than(&s.latency, limit(slo.latency_p99)),
                    slower_than(&s.latency, limit(slo.latency_p999)),
                ],
                ready: api.ready.len() as u32,
                desired: api.desired,
                pending: api.pending_replicas,
            });
            let quantile = |h: &Histogram<u64>, q: f64| {
                (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
            };
            push(
                SeriesKey::new(Metric::Rps, n),
                Some(s.arrivals as f64 / step_s),
            );
            push(
                SeriesKey::new(Metric::ThroughputRps, n),
                Some(s.completed as f64 / step_s),
            );
            push(SeriesKey::new(Metric::Rejected, n), Some(s.rejected as f64));
            push(
                SeriesKey::new(Metric::TimedOut, n),
                Some(s.timed_out as f64),
            );
            push(
                SeriesKey::new(Metric::Interrupted, n),
                Some(s.interrupted as f64),
            );
            push(
                SeriesKey::new(Metric::LatencyP50Ms, n),
                quantile(&s.latency, 0.5),
            );
            push(
                SeriesKey::new(Metric::LatencyP99Ms, n),
                quantile(&s.latency, 0.99),
            );
            push(
                SeriesKey::new(Metric::InFlight, n),
                Some(api.in_flight as f64),
            );
            push(
                SeriesKey::new(Metric::Queue, n),
                Some((api.queued + api.held.len() as u64) as f64),
            );
            push(
                SeriesKey::new(Metric::ReplicasDesired, n),
                Some(f64::from(api.desired)),
            );
            push(
                SeriesKey::new(Metric::ReplicasReady, n),
                Some(api.ready.len() as f64),
            );
            push(
                SeriesKey::new(Metric::PendingPods, n),
                Some(f64::from(api.pending_replicas)),
            );
            if let Some(llm) = api.llm.as_mut() {
                let (mut running, mut waiting, mut used, mut blocks) = (0u64, 0u64, 0u64, 0u64);
                for r in &api.replicas {
                    if let (Some(e), ReplicaState::Ready | ReplicaState::Terminating) =
                        (r.llm.as_ref(), r.state)
                    {
                        running += u64::from(e.running());
                        waiting += u64::from(e.waiting());
                        used += u64::from(e.used_blocks());
                        blocks += u64::from(e.config().kv_blocks);
                    }
                }
                push(
                    SeriesKey::new(Metric::RunningSequences, n),
                    Some(running as f64),
                );
                push(
                    SeriesKey::new(Metric::WaitingSequences, n),
                    Some(waiting as f64),
                );
                push(
                    SeriesKey::new(Metric::KvCacheUsage, n),
                    (blocks > 0).then(|| used as f64 / blocks as f64),
                );
                push(
                    SeriesKey::new(Metric::OutputTokensPerS, n),
                    Some(llm.step_output_tokens as f64 / step_s),
                );
                push(
                    SeriesKey::new(Metric::TtftP99Ms, n),
                    quantile(&llm.step_ttft, 0.99),
                );
                llm.step_output_tokens = 0;
                llm.step_ttft.reset();
            }
            if let Some(tenancy) = api.tenancy.as_mut() {
                // Each tenant's traffic and latency, as `<metric>/<api>/<tenant>`.
                for (spec, t) in api.spec.tenants.iter().zip(&mut tenancy.tally) {
                    let subject = format!("{n}/{}", spec.name);
                    let st = &mut t.step;
                    push(
                        SeriesKey::new(Metric::Rps, subject.clone()),
                        Some(st.arrivals as f64 / step_s),
                    );
                    push(
                        SeriesKey::new(Metric::ThroughputRps, subject.clone()),
                        Some(st.completed as f64 / step_s),
                    );
                    push(
                        SeriesKey::new(Metric::Rejected, subject.clone()),
                        Some(st.rejected as f64),
                    );
                    push(
                        SeriesKey::new(Metric::LatencyP99Ms, subject),
                        quantile(&st.latency, 0.99),
                    );
                    st.arrivals = 0;
                    st.completed = 0;
                    st.rejected = 0;
                    st.latency.reset();
                }
            }
            s.arrivals = 0;
            s.interrupted = 0;
            s.completed = 0;
            s.rejected = 0;
            s.rejected_no_replica = 0;
            s.timed_out = 0;
            s.latency.reset();
        }
        for job in batch {
            let n = &job.spec.name;
            push(
                SeriesKey::new(Metric::BatchQueue, n),
                Some(job.queue.len() as f64),
            );
            push(
                SeriesKey::new(Metric::BatchWorkers, n),
                Some(job.ready_workers() as f64),
            );
            push(
                SeriesKey::new(Metric::BatchesDone, n),
                Some(job.succeeded as f64),
            );
        }
        // Busy GPUs per group: each replica's GPUs, weighted by its busy workers.
        let mut busy_gpus = vec![0.0; scenario.node_groups.len()];
        for api in apis.iter() {
            let workers = f64::from(api.spec.processes * api.spec.threads);
            let gpus = f64::from(api.spec.requests.gpu);
            if gpus == 0.0 {
                continue;
            }
            for r in &api.replicas {
                if let (Some(node), ReplicaState::Ready | ReplicaState::Terminating) =
                    (r.node, r.state)
                {
                    busy_gpus[cluster.node(node).group] += gpus * f64::from(r.busy) / workers;
                }
            }
        }
        for (g, group) in scenario.node_groups.iter().enumerate() {
            let name = &group.name;
            push(
                SeriesKey::new(Metric::Nodes, name),
                Some(f64::from(cluster.nodes_per_group()[g])),
            );
            let ready = cluster.ready_per_group()[g];
            push(
                SeriesKey::new(Metric::NodesReady, name),
                Some(f64::from(ready)),
            );
            if group.instance.gpus > 0 {
                let total = f64::from(ready * group.instance.gpus);
                let busy = if group.gpu_sharing.is_some() {
                    f64::from(cluster.busy_shared_gpus(g))
                } else {
                    busy_gpus[g]
                };
                push(
                    SeriesKey::new(Metric::GpuUtil, name),
                    (total > 0.0).then(|| busy / total),
                );
            }
        }
        push(
            SeriesKey::new(Metric::CostUsdPerHour, "cluster"),
            Some(cluster.cost_rate_usd_per_hour() + scenario.control_plane_usd_per_hour),
        );
    }

    /// Integrate each API's and node group's busy and requested resources over the step that
    /// ends now (the state at its end standing for the whole step, as the series do).
    fn record_use(
        &mut self,
        step_s: f64,
        apis: &[ApiState],
        cluster: &Cluster,
        scenario: &Scenario,
    ) {
        let groups = &mut self.group_use;
        for (a, api) in apis.iter().enumerate() {
            let workers = f64::from(api.spec.processes * api.spec.threads).max(1.0);
            let cpu_used = api.spec.cpu_usage_m as f64 / 1000.0;
            // Whole GPUs (or shared slots, scaled below), plus MIG slices by their compute.
            let gpu = f64::from(api.spec.requests.gpu);
            let mig = mig_gpus(&api.spec.requests.mig);
            let u = &mut self.api_use[a];
            let (mut busy, mut ready) = (0.0, 0.0);
            for r in &api.replicas {
                let Some(node) = r.node else { continue };
                let g = cluster.node(node).group;
                let shared = scenario.node_groups[g]
                    .gpu_sharing
                    .map_or(1.0, |(n, _)| f64::from(n));
                let gpus = gpu / shared + mig;
                let cpu = r.requests.cpu_m as f64 / 1000.0;
                u.cpu_requested_core_s += cpu * step_s;
                u.gpu_requested_s += gpus * step_s;
                if matches!(r.state, ReplicaState::Ready | ReplicaState::Terminating) {
                    let b = f64::from(r.busy) / workers;
                    busy += f64::from(r.busy);
                    u.cpu_busy_core_s += cpu_used * b * step_s;
                    u.gpu_busy_s += gpus * b * step_s;
                    groups[g].cpu_busy_core_hours += cpu_used * b * step_s;
                    if scenario.node_groups[g].gpu_sharing.is_none() {
                        groups[g].gpu_busy_hours += gpus * b * step_s;
                    }
                }
                if r.state == ReplicaState::Ready {
                    ready += workers;
                }
            }
            u.busy_worker_s += busy * step_s;
            u.ready_worker_s += ready * step_s;
            if ready > 0.0 {
                u.peak_busy_share = u.peak_busy_share.max(busy / ready);
            }
        }
        for (g, group) in scenario.node_groups.iter().enumerate() {
            let template = cluster.template(g);
            let ready = f64::from(cluster.ready_per_group()[g]);
            let u = &mut groups[g];
            u.cpu_capacity_core_hours += template.cpu_m as f64 / 1000.0 * ready * step_s;
            u.gpu_capacity_hours += f64::from(group.instance.gpus) * ready * step_s;
            if group.gpu_sharing.is_some() {
                u.gpu_busy_hours += f64::from(cluster.busy_shared_gpus(g)) * step_s;
            }
        }
        for (_, node) in cluster.nodes() {
            if node.state != NodeState::Ready {
                continue;
            }
            let template = cluster.template(node.group);
            let u = &mut groups[node.group];
            u.cpu_requested_core_hours +=
                template.cpu_m.saturating_sub(node.free.cpu_m) as f64 / 1000.0 * step_s;
            if template.gpu > 0 {
                let used = f64::from(template.gpu.saturating_sub(node.free.gpu));
                let gpus = f64::from(scenario.node_groups[node.group].instance.gpus);
                u.gpu_requested_hours += used / f64::from(template.gpu) * gpus * step_s;
            }
            let mut used_mig = template.mig;
            for (u, free) in used_mig.iter_mut().zip(&node.free.mig) {
                *u = u.saturating_sub(*free);
            }
            u.gpu_requested_hours += mig_gpus(&used_mig) * step_s;
        }
    }
}
