//! The decision step: a reading in, the replica count to run out — the one place that applies
//! bounds and overprovisioning, holds on missing data and wakes a scaled-to-zero API, for the
//! simulator and the controller alike.
//!
//! The rules, in order:
//! 1. **Wake from zero.** When the API has no replica and the activator holds requests, the
//!    policy is asked whatever the metric says (Cortex's Awaken, Knative's activator poke).
//! 2. **Hold on missing data.** When the metric the policy needs is missing or stale (no
//!    windowed sample, or no pod reported), the count stays as it is and the policy is not
//!    asked, as every upstream autoscaler takes no action on an empty query. The count is held
//!    even outside the bounds: someone else set it, and missing data is no reason to act.
//! 3. **Decide.** Otherwise the policy's recommendation is clamped into the bounds and
//!    overprovisioning is added on top, never past `max_replicas`.
//!
//! The policy sees its own last recommendation as the current count (not the count with
//! overprovisioning), as long as nobody else changed the Deployment since.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pipeline::Reading;
use crate::why::{Rule, Why};
use crate::{MetricSpec, Observation, ReplicaBounds, ScalingPolicy};

/// Replicas as the real autoscaler reads them from the Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaCount {
    /// `spec.replicas`: requested.
    pub spec: u32,
    /// Ready to serve.
    pub ready: u32,
}

/// Extra replicas on top of what the policy recommends, so there is headroom while new replicas
/// start. Written as a count (`overprovisioning = 2`) or a fraction of the recommendation
/// (`overprovisioning = "25%"`, rounded up). The total never exceeds `max_replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Overprovisioning {
    /// None.
    #[default]
    None,
    /// A fixed number of extra replicas.
    Replicas(u32),
    /// A fraction of the recommendation (0.25 = 25 %).
    Fraction(f64),
}

impl Overprovisioning {
    /// Replicas to run for a policy recommendation of `recommended`.
    pub fn apply(self, recommended: u32, max_replicas: u32) -> u32 {
        let extra = match self {
            Overprovisioning::None => 0,
            Overprovisioning::Replicas(n) => n,
            Overprovisioning::Fraction(f) => (f64::from(recommended) * f - 1e-9).ceil() as u32,
        };
        recommended
            .saturating_add(extra)
            .min(max_replicas.max(recommended))
    }
}

/// Why a tick left the count as it was without asking the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// The windowed metric had no fresh sample.
    MetricMissing,
    /// No pod reported the per-pod metric.
    NoPodMetric,
}

impl HoldReason {
    /// The reason in words, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::MetricMissing => "metric missing or stale",
            HoldReason::NoPodMetric => "no pod reported the metric",
        }
    }
}

/// One tick's decision, with what led to it (the simulator's `scale` events, the controller's
/// logs, metrics and `--decisions` lines are all made from it).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Time since the run or the controller started.
    pub now: Duration,
    /// `spec.replicas` before the decision.
    pub spec_replicas: u32,
    /// Ready replicas before the decision.
    pub ready_replicas: u32,
    /// The aggregated metric the policy saw (`None`: missing or stale).
    pub metric: Option<f64>,
    /// Knative's panic-window metric.
    pub panic_metric: Option<f64>,
    /// Requests the activator held.
    pub waiting_requests: u32,
    /// Whether this was a wake from zero.
    pub wake: bool,
    /// The policy's recommendation clamped into the bounds (`None` when the policy was not asked
    /// because the data was missing).
    pub recommended: Option<u32>,
    /// The replica count to run (recommendation + headroom, within the bounds).
    pub target: u32,
    /// Why the count was held without asking the policy.
    pub held: Option<HoldReason>,
    /// The policy's named inputs.
    pub inputs: Vec<(&'static str, f64)>,
    /// The raw recommendation and the rules that bound the outcome (policy, bounds, headroom,
    /// holds), so that the decision can be explained in one sentence.
    pub why: Why,
}

impl Decision {
    /// The decision in one sentence ("held at 6: scale-down stabilization, …").
    pub fn sentence(&self) -> String {
        self.why.sentence(self.spec_replicas, self.target)
    }

    /// Whether a rule bound this decision: a hold, or an outcome other than the raw
    /// recommendation. Callers record a "why" for these (and for every change) only, so that
    /// a steady state does not flood the log.
    pub fn bound_by_rule(&self) -> bool {
        self.why
            .rules
            .iter()
            .any(|r| !matches!(r, Rule::Overprovisioning { .. }))
    }
}

/// The pure part of a tick: a reading in, target replicas out.
pub struct DecisionStep {
    policy: Box<dyn ScalingPolicy>,
    bounds: ReplicaBounds,
    overprovisioning: Overprovisioning,
    /// (target written, policy recommendation behind it).
    last: Option<(u32, u32)>,
}

impl DecisionStep {
    /// A decision step for `policy` within `bounds`, with `overprovisioning` on top.
    pub fn new(
        policy: Box<dyn ScalingPolicy>,
        bounds: ReplicaBounds,
        overprovisioning: Overprovisioning,
    ) -> Self {
        Self {
            policy,
            bounds,
            overprovisioning,
            last: None,
        }
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// The policy's tick interval.
    pub fn tick_interval(&self) -> Duration {
        self.policy.tick_interval()
    }

    /// The metric pipeline the policy needs.
    pub fn metric_spec(&self) -> MetricSpec {
        self.policy.metric_spec()
    }

    /// Replica bounds.
    pub fn bounds(&self) -> ReplicaBounds {
        self.bounds
    }

    /// Replicas to start with (the policy's initial count within the bounds, plus headroom).
    pub fn initial_target(&mut self) -> u32 {
        let policy = self.bounds.clamp(self.policy.initial_replicas());
        let target = self.with_headroom(policy);
        self.last = Some((target, policy));
        target
    }

    fn with_headroom(&self, policy: u32) -> u32 {
        self.bounds.clamp(
            self.overprovisioning
                .apply(policy, self.bounds.max_replicas),
        )
    }

    /// Why a reading cannot be acted on, if it cannot.
    fn missing(&self, reading: &Reading) -> Option<HoldReason> {
        match self.policy.metric_spec() {
            MetricSpec::None => None,
            MetricSpec::InFlightWindowAverage { .. }
            | MetricSpec::StableAndPanicConcurrency { .. } => reading
                .metric
                .is_none()
                .then_some(HoldReason::MetricMissing),
            MetricSpec::PerPod { .. } => reading
                .pods
                .iter()
                .all(|p| p.value.is_none())
                .then_some(HoldReason::NoPodMetric),
            MetricSpec::PerPodPeak { .. } => reading
                .pods
                .iter()
                .all(|p| p.peak.is_none())
                .then_some(HoldReason::NoPodMetric),
        }
    }

    /// Decide at `now` from the Deployment's counts and the reading (see the module's rules).
    pub fn decide(&mut self, now: Duration, current: ReplicaCount, reading: &Reading) -> Decision {
        let spec = current.spec;
        let policy_current = match self.last {
            Some((written, policy)) if written == spec => policy,
            _ => spec,
        };
        let wake = policy_current == 0 && reading.waiting_requests > 0;
        let held = if wake { None } else { self.missing(reading) };
        let mut decision = Decision {
            now,
            spec_replicas: spec,
            ready_replicas: current.ready,
            metric: reading.metric,
            panic_metric: reading.panic_metric,
            waiting_requests: reading.waiting_requests,
            wake,
            recommended: None,
            target: spec,
            held,
            inputs: Vec::new(),
            why: Why::default(),
        };
        if let Some(reason) = held {
            decision.why.push(Rule::Hold(reason));
            return decision;
        }
        let observation = Observation {
            current_replicas: policy_current,
            ready_replicas: current.ready,
            metric: reading.metric,
            panic_metric: reading.panic_metric,
            pods: reading.pods.clone(),
            waiting_requests: reading.waiting_requests,
            extra_metrics: Vec::new(),
        };
        let recommendation = self.policy.recommend(now, &observation);
        let policy = self.bounds.clamp(recommendation.replicas);
        let target = self.with_headroom(policy);
        self.last = Some((target, policy));
        let mut why = recommendation.why;
        if why.raw.is_none() && why.rules.is_empty() {
            why.raw = Some(recommendation.replicas);
        }
        if policy > recommendation.replicas {
            why.push(Rule::MinReplicas {
                min: self.bounds.min_replicas,
            });
        } else if policy < recommendation.replicas {
            why.push(Rule::MaxReplicas {
                max: self.bounds.max_replicas,
            });
        }
        if target > policy {
            why.push(Rule::Overprovisioning {
                extra: target - policy,
            });
        }
        decision.recommended = Some(policy);
        decision.target = target;
        decision.inputs = recommendation.inputs;
        decision.why = why;
        decision
    }

    /// Record that the last decision was not applied, so the next tick starts from what is
    /// really deployed.
    pub fn forget_last(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cortex, CortexConfig, Fixed, PodObservation};

    fn cortex(min: u32, max: u32) -> DecisionStep {
        let mut c = CortexConfig::with_concurrency(1);
        c.bounds = ReplicaBounds {
            min_replicas: min,
            max_replicas: max,
        };
        c.init_replicas = min;
        DecisionStep::new(
            Box::new(Cortex::new(c)),
            ReplicaBounds {
                min_replicas: min,
                max_replicas: max,
            },
            Overprovisioning::None,
        )
    }

    #[test]
    fn overprovisioning_adds_within_max() {
        assert_eq!(Overprovisioning::Replicas(2).apply(3, 10), 5);
        assert_eq!(Overprovisioning::Replicas(2).apply(9, 10), 10);
        assert_eq!(Overprovisioning::Fraction(0.25).apply(4, 10), 5);
        assert_eq!(Overprovisioning::Fraction(0.25).apply(5, 10), 7);
        assert_eq!(Overprovisioning::None.apply(12, 10), 12);
    }

    #[test]
    fn missing_metric_holds_without_asking_the_policy() {
        let mut step = cortex(1, 10);
        step.initial_target();
        let d = step.decide(
            Duration::from_secs(10),
            ReplicaCount { spec: 3, ready: 3 },
            &Reading::default(),
        );
        assert_eq!(d.held, Some(HoldReason::MetricMissing));
        assert_eq!(d.target, 3);
        assert_eq!(d.recommended, None);
    }

    #[test]
    fn held_requests_wake_a_scaled_to_zero_api_without_a_metric() {
        let mut step = cortex(0, 10);
        assert_eq!(step.initial_target(), 0);
        let d = step.decide(
            Duration::from_secs(3),
            ReplicaCount { spec: 0, ready: 0 },
            &Reading {
                waiting_requests: 1,
                ..Reading::default()
            },
        );
        assert!(d.wake);
        assert_eq!(d.held, None);
        assert_eq!(d.target, 1);
    }

    #[test]
    fn per_pod_hold_when_no_pod_reported() {
        let mut step = DecisionStep::new(
            Box::new(crate::Hpa::new(crate::HpaConfig::new(
                crate::HpaMetric::PodsAverageValue {
                    kind: crate::PodMetricKind::Concurrency,
                    target: 1.0,
                },
                ReplicaBounds {
                    min_replicas: 1,
                    max_replicas: 5,
                },
            ))),
            ReplicaBounds {
                min_replicas: 1,
                max_replicas: 5,
            },
            Overprovisioning::None,
        );
        let reading = Reading {
            pods: vec![PodObservation {
                ready: true,
                value: None,
                age: Duration::from_secs(100),
                ready_since: Some(Duration::from_secs(100)),
                ..PodObservation::default()
            }],
            ..Reading::default()
        };
        let d = step.decide(
            Duration::from_secs(15),
            ReplicaCount { spec: 2, ready: 2 },
            &reading,
        );
        assert_eq!(d.held, Some(HoldReason::NoPodMetric));
        assert_eq!(d.target, 2);
    }

    #[test]
    fn headroom_on_top_and_the_policy_sees_its_own_count() {
        let mut step = DecisionStep::new(
            Box::new(Fixed::new(3)),
            ReplicaBounds {
                min_replicas: 3,
                max_replicas: 4,
            },
            Overprovisioning::Replicas(2),
        );
        assert_eq!(step.initial_target(), 4, "capped at max_replicas");
        let d = step.decide(
            Duration::from_secs(1),
            ReplicaCount { spec: 4, ready: 4 },
            &Reading::default(),
        );
        assert_eq!((d.recommended, d.target), (Some(3), 4));
    }
}
