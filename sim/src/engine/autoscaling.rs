//! The autoscaling room: one API's autoscaler as the simulated cluster runs it.
//!
//! It is the `autoscaler` crate's core — the metric pipeline and the decision step that
//! `simctl autoscale` runs in a real cluster — with simulated time in and the results' `scale`
//! events out. The engine measures its replicas (in-flight, busy workers, arrivals) and feeds
//! them here at every scrape; at every policy tick, or when the activator wakes a scaled-to-zero
//! API, it asks for a decision and applies the target.

use autoscaler::{Decision, DecisionStep, MetricPipeline, PodSample, ReplicaCount};

use crate::results::{Event, EventKind, ScaleChange, ScaleHeld, Why};
use crate::scenario::Autoscaling;
use crate::time::SimTime;

/// One API's autoscaler: decision step and metric pipeline.
pub struct ApiAutoscaler {
    api: String,
    decisions: DecisionStep,
    metrics: MetricPipeline,
    /// The last `scale_held` recorded (rule, count) since the last change, so that a rule
    /// holding the count tick after tick is recorded once.
    last_held: Option<(String, u32)>,
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
            last_held: None,
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

    /// The results' `scale_held` event for a decision a rule kept at the current count, when
    /// the rule or the count differs from the last one recorded (`None` otherwise).
    pub fn held_event(&mut self, d: &Decision) -> Option<Event> {
        if d.target != d.spec_replicas || !d.bound_by_rule() {
            return None;
        }
        let rule = d.why.rule_name().unwrap_or_default();
        let key = (rule.clone(), d.target);
        if self.last_held.as_ref() == Some(&key) {
            return None;
        }
        self.last_held = Some(key);
        Some(Event {
            t_s: SimTime::from(d.now).as_secs_f64(),
            kind: EventKind::ScaleHeld(ScaleHeld {
                replicas: d.target,
                recommended: d.why.raw,
                why: Why {
                    rule,
                    sentence: d.sentence(),
                },
            }),
            api: Some(self.api.clone()),
            node_group: None,
            message: format!(
                "{} held at {} replicas",
                self.decisions.policy_name(),
                d.target
            ),
        })
    }

    /// The results' `scale` event for a decision that changes the count (`None` otherwise).
    pub fn scale_event(&mut self, d: &Decision, tick: bool) -> Option<Event> {
        if d.target == d.spec_replicas {
            return None;
        }
        self.last_held = None;
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
                why: Some(Why {
                    rule: d.why.rule_name().unwrap_or_default(),
                    sentence: d.sentence(),
                }),
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
