//! The timeline room: one point per step of every series (traffic, latency, replicas, nodes,
//! GPU use, cost), sampled from the other rooms' state at each timeline tick.

use hdrhistogram::Histogram;

use super::{ApiState, ReplicaState};
use crate::batch::BatchRuntime;
use crate::cluster::Cluster;
use crate::results::{Metric, SeriesKey, Timeline};
use crate::scenario::Scenario;
use crate::time::SimTime;

/// The series recorded so far and when the last step closed.
pub(super) struct TimelineRecorder {
    pub(super) timeline: Timeline,
    last_tick: SimTime,
}

impl TimelineRecorder {
    /// An empty timeline with steps of `step`.
    pub(super) fn new(step: SimTime) -> Self {
        TimelineRecorder {
            timeline: Timeline {
                step_s: step.as_secs_f64(),
                ..Timeline::default()
            },
            last_tick: SimTime::ZERO,
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
        let series = &mut self.timeline.series;
        let mut push = |name: SeriesKey, value: Option<f64>| {
            series.entry(name).or_default().push(value);
        };
        for api in apis.iter_mut() {
            let n = &api.spec.name;
            let s = &mut api.step;
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
            s.arrivals = 0;
            s.interrupted = 0;
            s.completed = 0;
            s.rejected = 0;
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
                    let busy: u32 = r.processes.iter().map(|p| p.busy).sum();
                    busy_gpus[cluster.node(node).group] += gpus * f64::from(busy) / workers;
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
}
