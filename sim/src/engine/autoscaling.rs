//! The autoscaling room: one API's autoscaler as the simulated cluster runs it.
//!
//! It is the `autoscaler` crate's core — the metric pipeline and the decision step that
//! `simctl autoscale` runs in a real cluster — with simulated time in and the results' `scale`
//! events out. The engine measures its replicas (in-flight, busy workers, arrivals) and feeds
//! them here at every scrape; at every policy tick, or when the activator wakes a scaled-to-zero
//! API, it asks for a decision and applies the target.

use autoscaler::{Decision, DecisionStep, MetricPipeline, PodSample, ReplicaCount};

use crate::results::{Event, EventKind, ScaleChange};
use crate::scenario::Autoscaling;
use crate::time::SimTime;

/// One API's autoscaler: decision step and metric pipeline.
pub struct ApiAutoscaler {
    api: String,
    decisions: DecisionStep,
    metrics: MetricPipeline,
}

impl ApiAutoscaler {
    /// The autoscaler of the API named `api`, built from its scenario settings exactly as the
    /// controller builds it.
    pub fn new(api: &str, autoscaling: &Autoscaling) -> Self {
        let decisions = autoscaling.decision_step();
        let mut metrics = MetricPipeline::new(decisions.metric_spec());
        if let Some(every) = autoscaling.scrape_interval {
            metrics = metrics.with_sample_interval(every);
        }
        Self {
            api: api.to_string(),
            decisions,
            metrics,
        }
    }

    /// Replicas to deploy at t = 0.
    pub fn initial_replicas(&mut self) -> u32 {
        self.decisions.initial_target()
    }

    /// How often the policy decides.
    pub fn tick_interval(&self) -> SimTime {
        SimTime::from(self.decisions.tick_interval())
    }

    /// How often the replicas must be sampled, `None` when the policy reads no metric.
    pub fn sample_interval(&self) -> Option<SimTime> {
        self.metrics.sample_interval().map(SimTime::from)
    }

    /// Whether samples need per-pod values (HPA).
    pub fn wants_pods(&self) -> bool {
        self.metrics.wants_pods()
    }

    /// Whether a sample's total is the time-averaged concurrency since the previous sample.
    pub fn wants_time_average(&self) -> bool {
        self.metrics.wants_time_average()
    }

    /// Feed one sample of the API's replicas.
    pub fn sample(&mut self, now: SimTime, total: f64, pods: &[(usize, PodSample)]) {
        self.metrics.sample(now.as_duration(), Some(total), pods);
    }

    /// A policy tick: close the per-pod sync period, read the metric and decide.
    pub fn tick(&mut self, now: SimTime, current: ReplicaCount, waiting: u32) -> Decision {
        self.metrics.sync(now.as_duration());
        self.decide(now, current, waiting)
    }

    /// The activator's out-of-band decision when a request arrives at a scaled-to-zero API.
    pub fn wake(&mut self, now: SimTime, current: ReplicaCount, waiting: u32) -> Decision {
        self.decide(now, current, waiting)
    }

    fn decide(&mut self, now: SimTime, current: ReplicaCount, waiting: u32) -> Decision {
        let mut reading = self.metrics.reading(now.as_duration());
        reading.waiting_requests = waiting;
        self.decisions.decide(now.as_duration(), current, &reading)
    }

    /// The results' `scale` event for a decision that changes the count (`None` otherwise).
    pub fn scale_event(&self, d: &Decision, tick: bool) -> Option<Event> {
        if d.target == d.spec_replicas {
            return None;
        }
        Some(Event {
            t_s: SimTime::from(d.now).as_secs_f64(),
            kind: EventKind::Scale(ScaleChange {
                from: d.spec_replicas,
                to: d.target,
                ready: d.ready_replicas,
                metric: d.metric,
                panic_metric: d.panic_metric,
                policy_inputs: d
                    .inputs
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
            }),
            api: Some(self.api.clone()),
            node_group: None,
            message: format!(
                "{}{} {} → {} replicas",
                self.decisions.policy_name(),
                if tick { "" } else { " (wake-up)" },
                d.spec_replicas,
                d.target
            ),
        })
    }
}
