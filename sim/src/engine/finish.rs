//! The finish room: closing the books at the end of a run — each API's figures and SLO verdict,
//! each node group's cost, the batch jobs, and the log — into the [`Results`].

use super::attribution::{attribute, ApiContext, Counting};
use super::timeline::group_hours;
use super::Simulation;
use crate::results::{
    encode_histogram, ApiResults, NodeGroupResults, Percentiles, Results, SloCheck, SloVerdict,
    SCHEMA,
};
use crate::scenario::schema::SloSpec;
use crate::time::SimTime;

impl Simulation {
    /// Close the books at the current time and produce the results.
    pub fn finish(mut self) -> Results {
        let end = self.now;
        if self.timeline.behind(end) {
            self.timeline.sample(
                end,
                &mut self.serving.apis,
                self.batch.jobs(),
                &self.cluster,
                &self.scenario,
            );
            self.sample_pipelines();
        }
        self.cluster.accrue(end);
        let duration_s = end.as_secs_f64();
        let mut apis = Vec::with_capacity(self.serving.apis.len());
        for (a, api) in self.serving.apis.iter_mut().enumerate() {
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
            // Requests the activator still holds are in flight too: they were neither served nor
            // refused (past their timeout, given up on like any other).
            let held_stale = api.spec.timeout.map_or(0, |t| {
                api.held
                    .iter()
                    .filter(|q| end.since(q.arrival) >= t)
                    .count() as u64
            });
            let timed_out = api.timed_out + stale + held_stale;
            let interrupted = api.interrupted;
            let in_flight_at_end = api.in_flight - stale + api.waiting_messages() - held_stale;
            let requests = api.requests.max(1) as f64;
            let latency_ms = Percentiles::from_histogram(&api.latency);
            let warmup = api.warmup.until;
            let mut slo = if warmup == SimTime::ZERO {
                verdict(
                    &api.spec.slo,
                    &latency_ms,
                    api.rejected as f64 / requests,
                    timed_out as f64 / requests,
                )
            } else {
                // Requests that arrived before the warmup are not judged.
                let early_stale = api.spec.timeout.map_or(0, |t| {
                    let early = |q: &&super::serving::Queued| {
                        q.arrival < warmup && end.since(q.arrival) >= t
                    };
                    api.replicas
                        .iter()
                        .flat_map(|r| &r.processes)
                        .map(|p| p.queue.iter().filter(early).count() as u64)
                        .sum::<u64>()
                        + api.held.iter().filter(early).count() as u64
                });
                let mut judged = api.latency.clone();
                // The early histogram holds a subset of the same records: subtracting cannot fail.
                let _ = judged.subtract(&api.warmup.latency);
                let judged_requests = (api.requests - api.warmup.requests).max(1) as f64;
                let mut v = verdict(
                    &api.spec.slo,
                    &Percentiles::from_histogram(&judged),
                    (api.rejected - api.warmup.rejected) as f64 / judged_requests,
                    (timed_out - api.warmup.timed_out - early_stale) as f64 / judged_requests,
                );
                v.warmup_s = Some(warmup.as_secs_f64());
                v
            };
            let llm = super::llm_serving::results(api, duration_s).map(|(results, checks)| {
                slo.checks.extend(checks);
                slo.met = slo.checks.iter().all(|c| c.met);
                results
            });
            if !slo.met {
                let failed = |name: &str| slo.checks.iter().any(|c| c.objective == name && !c.met);
                let counting = Counting {
                    rejected: failed("rejection_rate"),
                    timed_out: failed("timeout_rate"),
                    slow: [
                        ("latency_p99_ms", 1),
                        ("latency_p999_ms", 2),
                        ("latency_p50_ms", 0),
                    ]
                    .into_iter()
                    .find(|(name, _)| failed(name))
                    .map(|(_, k)| k),
                };
                slo.misses = attribute(
                    &self.timeline.facts[a],
                    &ApiContext {
                        index: a,
                        max_replicas: api.spec.autoscaling.max_replicas,
                        shared_gpu: api
                            .spec
                            .node_groups
                            .iter()
                            .any(|&g| self.scenario.node_groups[g].gpu_sharing.is_some()),
                        fixed: matches!(
                            api.spec.autoscaling.policy,
                            crate::scenario::PolicyChoice::Fixed
                        ),
                        startup_s: api
                            .startups
                            .as_ref()
                            .and_then(|s| s.mean_total_s())
                            .unwrap_or(api.spec.startup_time.as_secs_f64()),
                        warmup_s: warmup.as_secs_f64(),
                        counting,
                        reclaims: &self.spot.reclaims,
                        failed_launches: &self.cluster_autoscaler.failures,
                        groups: api
                            .spec
                            .node_groups
                            .iter()
                            .map(|&g| self.scenario.node_groups[g].name.clone())
                            .collect(),
                    },
                );
            }
            apis.push(ApiResults {
                name: api.spec.name.clone(),
                requests: api.requests,
                completed: api.completed,
                rejected: api.rejected,
                rejected_no_replica: api.rejected_no_replica,
                timed_out,
                interrupted,
                oom_kills: api.oom_kills,
                qos_class: api.spec.qos.name().into(),
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
                utilisation: Some(self.timeline.api_use[a].finish()),
                llm,
                vpa: self.vertical[a]
                    .as_ref()
                    .map(|v| v.finish(api, &self.scenario)),
                startup: api.startups.as_ref().map(|s| s.breakdown()),
                slo,
                latency_histogram: encode_histogram(&api.latency),
                queue_wait_histogram: encode_histogram(&api.wait),
                tenants: super::tenancy::results(api, end, self.cluster.api_cost_usd()[a]),
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
                cost_usd: self.cluster.group_cost_usd()[g],
                peak_nodes: self.cluster.peak_nodes()[g],
                interruptions: self.spot.interruptions(g),
                failed_launches: self.cluster_autoscaler.failed_launches(g),
                spot_savings_usd: self.cluster.group_on_demand_cost_usd()[g]
                    - self.cluster.group_cost_usd()[g],
                utilisation: Some(group_hours(&self.timeline.group_use[g])),
            })
            .collect();
        let batch_jobs = self
            .batch
            .results(&self.cluster.api_cost_usd()[self.serving.apis.len()..]);
        let node_cost: f64 = node_groups.iter().map(|g| g.cost_usd).sum();
        let attributed: f64 = apis.iter().map(|a| a.cost_usd).sum::<f64>()
            + batch_jobs.iter().map(|j| j.cost_usd).sum::<f64>();
        let control_plane_cost_usd = duration_s / 3600.0 * self.scenario.control_plane_usd_per_hour;
        let api_names: Vec<&str> = self.scenario.apis.iter().map(|a| a.name.as_str()).collect();
        let routers = self.routers.iter().map(|r| r.results(&api_names)).collect();
        let pipelines = self.pipelines.results(end, &api_names);
        let (events, events_dropped) = self.agenda.into_log();
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
            batch_jobs,
            karpenter: self.karpenter.as_ref().map(|k| k.results(&self.cluster)),
            routers,
            pipelines,
            control_plane_cost_usd,
            idle_cost_usd: (node_cost - attributed).max(0.0),
            cost_usd_total: node_cost + control_plane_cost_usd,
            timeline: self.timeline.timeline,
            events,
            events_dropped,
        }
    }
}

/// A ceiling objective's check (met when `actual <= limit`), when the SLO sets a limit.
pub(super) fn push_ceiling(
    checks: &mut Vec<SloCheck>,
    objective: &str,
    limit: Option<f64>,
    actual: f64,
) {
    if let Some(limit) = limit {
        checks.push(SloCheck {
            objective: objective.into(),
            limit,
            actual,
            met: actual <= limit,
        });
    }
}

/// Whether an API met its service-level objectives, objective by objective.
pub(super) fn verdict(
    slo: &SloSpec,
    latency: &Percentiles,
    rejection_rate: f64,
    timeout_rate: f64,
) -> SloVerdict {
    let mut checks = Vec::new();
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
        push_ceiling(&mut checks, objective, limit, actual);
    }
    SloVerdict {
        met: checks.iter().all(|c| c.met),
        checks,
        ..SloVerdict::default()
    }
}
