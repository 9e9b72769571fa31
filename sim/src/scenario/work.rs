//! How much work a scenario is, known before running it, so a run that would take days says
//! so instead of starting silently.

use super::model::Scenario;
use crate::traffic::Traffic;

/// The size of a run, from its rates and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkEstimate {
    /// Expected requests over all APIs (a trace counts all its requests, times its rate scale).
    pub requests: f64,
    /// Everything the engine does: the requests, batches of batch jobs, autoscaler ticks,
    /// cluster-autoscaler scans and timeline points (each costs about what a request does).
    pub events: f64,
    /// Whether some API replays a trace, whose size is not known before reading it.
    pub has_traces: bool,
}

impl WorkEstimate {
    /// Wall-clock seconds at `events_per_s` simulated requests (events) per second.
    pub fn seconds_at(&self, events_per_s: f64) -> f64 {
        self.events / events_per_s
    }
}

impl Scenario {
    /// The expected number of requests of one run.
    pub fn work_estimate(&self) -> WorkEstimate {
        let end_s = self.duration.as_secs_f64();
        let mut requests = 0.0;
        let mut iterations = 0.0;
        let mut has_traces = false;
        for api in &self.apis {
            let api_requests: f64 = api
                .traffics()
                .map(|t| expected_requests(t, end_s, &mut has_traces))
                .sum();
            requests += api_requests;
            if let Some(llm) = &api.llm {
                // At most one iteration per output token, and no more than the replicas can
                // run back to back; an iteration costs about a fifth of a request (bench).
                let tokens = llm.output_tokens.as_ref().map_or(256.0, |d| d.mean());
                let base_s = (llm.engine.step.base_ns * 1e-9).max(1e-4);
                let most = f64::from(api.autoscaling.max_replicas) * end_s / base_s;
                iterations += (api_requests * tokens).min(most) * 0.2;
            }
        }
        // A router's request reaches one API (and maybe its shadow); a pipeline's, every stage.
        for router in &self.routers {
            let copies = router.shadow().map_or(0.0, |s| {
                let most = router.weights.iter().map(|(_, w)| w[s]).max();
                f64::from(most.unwrap_or(0)) / 100.0
            });
            requests += expected_requests(&router.traffic, end_s, &mut has_traces) * (1.0 + copies);
        }
        for pipeline in &self.pipelines {
            requests += expected_requests(&pipeline.traffic, end_s, &mut has_traces)
                * pipeline.stages.len() as f64;
        }
        let ticks: f64 = self
            .apis
            .iter()
            .map(|a| {
                end_s
                    / a.autoscaling
                        .decision_step()
                        .tick_interval()
                        .as_secs_f64()
                        .max(1e-9)
            })
            .sum();
        let scans = if self.cluster_autoscaler.enabled {
            end_s
                / self
                    .cluster_autoscaler
                    .scan_interval
                    .as_secs_f64()
                    .max(1e-9)
        } else {
            0.0
        };
        let batches: f64 = self
            .batch_jobs
            .iter()
            .map(|b| b.items as f64 / b.batch_size.max(1) as f64)
            .sum();
        let points = end_s / self.timeline_step.as_secs_f64().max(1e-9);
        WorkEstimate {
            requests,
            events: requests + iterations + ticks + scans + batches + points,
            has_traces,
        }
    }
}

/// The expected requests of one arrival process over `end_s` seconds; a trace sets
/// `has_traces`.
fn expected_requests(traffic: &Traffic, end_s: f64, has_traces: &mut bool) -> f64 {
    match traffic {
        Traffic::Poisson { rps } | Traffic::Constant { rps } => rps * end_s,
        Traffic::Diurnal { mean_rps, .. } => mean_rps * end_s,
        Traffic::Steps { steps, .. } => steps
            .iter()
            .enumerate()
            .map(|(i, (at, rps))| {
                let from = at.as_secs_f64().min(end_s);
                let to = steps
                    .get(i + 1)
                    .map_or(end_s, |n| n.0.as_secs_f64().min(end_s));
                rps * (to - from).max(0.0)
            })
            .sum(),
        Traffic::Trace(t) => {
            *has_traces = true;
            // The file was checked when the scenario loaded; a read error now only
            // leaves the estimate short.
            crate::recorded::total_requests(t.format, &t.path, &t.options)
                .map_or(0.0, |n| n * t.rate_scale)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn rates_times_duration() {
        let text = r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[apis]]
name = "a"
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "poisson"
rps = 10
[[apis]]
name = "b"
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "steps"
steps = [{ at = "0s", rps = 1 }, { at = "30m", rps = 3 }, { at = "2h", rps = 100 }]
"#;
        let s = Scenario::parse(text, "t.toml", Path::new(".")).expect("valid");
        let w = s.work_estimate();
        assert_eq!(w.requests, 36_000.0 + 1_800.0 + 3.0 * 1_800.0);
        // Two fixed policies ticking every 10 s, the cluster autoscaler every 10 s, 10 s points.
        assert_eq!(w.events, w.requests + 2.0 * 360.0 + 360.0 + 360.0);
        assert!(!w.has_traces);
    }
}
