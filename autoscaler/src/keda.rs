//! KEDA ScaledObject semantics (kedacore/keda `pkg/scaling/scale_handler.go`,
//! `pkg/scaling/executor/scale_scaledobjects.go`, `pkg/fallback/fallback.go`,
//! `controllers/keda/hpa.go`, `pkg/scalers/prometheus_scaler.go`): KEDA's operator polls the
//! trigger every `pollingInterval` and itself scales 0 ↔ 1 (activation when the value exceeds
//! `activationThreshold`; deactivation to zero once no poll has been active for
//! `cooldownPeriod`), while the HPA it creates scales 1 ↔ N on an External metric with an
//! `AverageValue` target equal to the trigger's threshold, with
//! `advanced.horizontalPodAutoscalerConfig.behavior`. When the scaler errs (the metric is
//! missing), the metrics adapter counts failures and, past `fallback.failureThreshold`, serves
//! `fallback.replicas × threshold` so that the HPA asks for the fallback replicas.
//!
//! The `aws-sqs-queue` trigger (`pkg/scalers/aws_sqs_queue_scaler.go`) reads an async API's
//! queue at each poll: `ApproximateNumberOfMessages`, plus `…NotVisible` (the messages being
//! processed) unless `scaleOnInFlight` is false; `queueLength` (5) is its target per replica and
//! `activationQueueLength` (0) its activation threshold.

use std::time::Duration;

use crate::hpa::{Behavior, Hpa, HpaConfig, HpaMetric};
use crate::why::{MetricValue, Rule};
use crate::{
    InvalidSetting, MetricSpec, Observation, PodMetricKind, Recommendation, ReplicaBounds,
    ScalingPolicy,
};

/// The signal a trigger reads: a Prometheus query over the API's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KedaTrigger {
    /// `sum(in_flight)` averaged over a query window: the queue length of the API (requests
    /// executing or waiting, including those held while it has no replica).
    InFlight {
        /// The query's averaging window.
        window: Duration,
    },
    /// An async API's SQS queue read at the poll: the messages waiting, plus those being
    /// processed when `scale_on_in_flight` (KEDA's default).
    SqsQueue {
        /// `scaleOnInFlight`: count the messages workers have taken and not finished.
        scale_on_in_flight: bool,
    },
    /// The sum over pods of a per-pod signal (requests per second, or a vLLM gauge).
    PodsSum {
        /// Which per-pod signal.
        kind: PodMetricKind,
    },
}

/// `spec.fallback`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KedaFallback {
    /// `failureThreshold`: consecutive failures before the fallback applies.
    pub failure_threshold: u32,
    /// `replicas` (behavior `static`).
    pub replicas: u32,
}

/// A ScaledObject with one trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct KedaConfig {
    /// `minReplicaCount` (0) / `maxReplicaCount` (100).
    pub bounds: ReplicaBounds,
    /// The trigger's signal.
    pub trigger: KedaTrigger,
    /// The trigger's `threshold`: the HPA's AverageValue target per replica.
    pub threshold: f64,
    /// `activationThreshold` (0): the trigger is active when its value is above it.
    pub activation_threshold: f64,
    /// `pollingInterval` (30 s).
    pub polling_interval: Duration,
    /// `cooldownPeriod` (300 s): inactive this long before scaling to zero.
    pub cooldown_period: Duration,
    /// `initialCooldownPeriod` (0 s): after creation, no scale to zero before this.
    pub initial_cooldown_period: Duration,
    /// `fallback`, `None` when unset.
    pub fallback: Option<KedaFallback>,
    /// The HPA KEDA creates (its metric is set from the trigger; behavior from
    /// `advanced.horizontalPodAutoscalerConfig`).
    pub hpa: HpaConfig,
}

impl KedaConfig {
    /// KEDA's defaults for a trigger with `threshold`.
    pub fn new(trigger: KedaTrigger, threshold: f64, bounds: ReplicaBounds) -> Self {
        let hpa = HpaConfig::new(
            HpaMetric::ExternalAverageValue {
                target: threshold,
                window: match trigger {
                    KedaTrigger::InFlight { window } => window,
                    KedaTrigger::SqsQueue { .. } | KedaTrigger::PodsSum { .. } => Duration::ZERO,
                },
            },
            ReplicaBounds {
                // controllers/keda/hpa.go: the HPA's minReplicas is max(minReplicaCount, 1).
                min_replicas: bounds.min_replicas.max(1),
                max_replicas: bounds.max_replicas,
            },
        );
        Self {
            bounds,
            trigger,
            threshold,
            activation_threshold: 0.0,
            polling_interval: Duration::from_secs(30),
            cooldown_period: Duration::from_secs(300),
            initial_cooldown_period: Duration::ZERO,
            fallback: None,
            hpa,
        }
    }

    /// Set the HPA's behavior (`advanced.horizontalPodAutoscalerConfig.behavior`).
    pub fn with_behavior(mut self, behavior: Option<Behavior>) -> Self {
        self.hpa.behavior = behavior;
        self
    }

    /// Reject what KEDA's admission webhook would.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(self.threshold > 0.0 && self.threshold.is_finite()) {
            return Err(InvalidSetting::new(
                "threshold",
                format!("expected a number > 0, found {}", self.threshold),
            ));
        }
        if !(self.activation_threshold >= 0.0 && self.activation_threshold.is_finite()) {
            return Err(InvalidSetting::new(
                "activation_threshold",
                format!(
                    "expected a finite number ≥ 0, found {}",
                    self.activation_threshold
                ),
            ));
        }
        if self.polling_interval.is_zero() {
            return Err(InvalidSetting::new(
                "polling_interval",
                "expected a period > 0s",
            ));
        }
        if self.bounds.min_replicas > self.bounds.max_replicas {
            return Err(InvalidSetting::new(
                "min_replicas",
                "expected minReplicaCount ≤ maxReplicaCount",
            ));
        }
        self.hpa.validate()
    }
}

/// KEDA's operator and the HPA it drives, for one ScaledObject.
#[derive(Debug, Clone)]
pub struct Keda {
    config: KedaConfig,
    hpa: Hpa,
    next_poll: Option<Duration>,
    next_hpa: Option<Duration>,
    created: Option<Duration>,
    last_active: Option<Duration>,
    failures: u32,
}

impl Keda {
    /// A fresh ScaledObject.
    pub fn new(config: KedaConfig) -> Self {
        Self {
            hpa: Hpa::new(config.hpa.clone()),
            config,
            next_poll: None,
            next_hpa: None,
            created: None,
            last_active: None,
            failures: 0,
        }
    }

    /// The trigger's value: `None` when the scaler errs (the query returns nothing).
    fn trigger_value(&self, obs: &Observation) -> Option<f64> {
        match self.config.trigger {
            KedaTrigger::InFlight { .. }
            | KedaTrigger::SqsQueue {
                scale_on_in_flight: true,
            } => obs.metric,
            // The queue's visible messages are the requests waiting for a worker.
            KedaTrigger::SqsQueue {
                scale_on_in_flight: false,
            } => Some(f64::from(obs.waiting_requests)),
            KedaTrigger::PodsSum { .. } => {
                if obs.pods.is_empty() {
                    // No pod: the sum is empty (0), plus any request waiting for a replica.
                    return Some(f64::from(obs.waiting_requests));
                }
                let values: Vec<f64> = obs.pods.iter().filter_map(|p| p.value).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>())
            }
        }
    }

    /// The operator's scale loop at one poll (`RequestScale`); returns the replicas it sets,
    /// if it sets any.
    /// One poll of the trigger: the replicas the operator sets itself (0 ↔ 1), if any, and the
    /// rule behind its choice (activation, deactivation, the cooldown that kept replicas).
    fn poll(
        &mut self,
        now: Duration,
        current: u32,
        value: Option<f64>,
    ) -> (Option<u32>, Option<Rule>) {
        let min = self.config.bounds.min_replicas;
        let active = value.is_some_and(|v| v > self.config.activation_threshold);
        let error = value.is_none();
        if active {
            if current == 0 {
                // scaleFromZeroOrIdle: to minReplicaCount, or 1.
                let rule = Rule::Activation {
                    value: value.unwrap_or(0.0),
                    threshold: self.config.activation_threshold,
                };
                return (Some(min.max(1)), Some(rule));
            }
            if !error {
                self.last_active = Some(now);
            }
            return (None, None);
        }
        if error && self.config.fallback.is_some_and(|f| f.replicas != 0) {
            return (None, None);
        }
        if error && self.config.fallback.is_none() {
            return (None, None);
        }
        if current > 0 && min == 0 {
            let cooled = match self.last_active {
                None => {
                    self.created.unwrap_or(now) + self.config.initial_cooldown_period < now
                        || self.config.initial_cooldown_period.is_zero()
                }
                Some(t) => t + self.config.cooldown_period < now,
            };
            let period = self.config.cooldown_period;
            return if cooled {
                (Some(0), Some(Rule::Deactivation { period }))
            } else {
                (None, Some(Rule::Cooldown { period }))
            };
        }
        if current < min {
            return (Some(min), Some(Rule::MinReplicas { min }));
        }
        (None, None)
    }
}

impl ScalingPolicy for Keda {
    fn name(&self) -> &'static str {
        "keda"
    }

    fn tick_interval(&self) -> Duration {
        self.config
            .hpa
            .sync_period
            .min(self.config.polling_interval)
    }

    fn metric_spec(&self) -> MetricSpec {
        match self.config.trigger {
            KedaTrigger::InFlight { window } => MetricSpec::InFlightWindowAverage {
                sample_interval: Duration::from_secs(1),
                window,
            },
            // The queue's attributes as they are at the poll: the newest 1 s sample.
            KedaTrigger::SqsQueue {
                scale_on_in_flight: true,
            } => MetricSpec::InFlightWindowAverage {
                sample_interval: Duration::from_secs(1),
                window: Duration::from_secs(1),
            },
            KedaTrigger::SqsQueue {
                scale_on_in_flight: false,
            } => MetricSpec::None,
            KedaTrigger::PodsSum { kind } => MetricSpec::PerPod {
                kind,
                lag: self.config.hpa.metrics_lag,
            },
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.bounds.min_replicas.max(1)
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let current = obs.current_replicas;
        self.created.get_or_insert(now);
        let value = self.trigger_value(obs);
        let mut inputs = vec![("trigger", value.unwrap_or(f64::NAN))];
        let mut cooling = None;
        if self.next_poll.is_none_or(|t| now >= t) {
            self.next_poll = Some(now + self.config.polling_interval);
            inputs.push(("polled", 1.0));
            let (set, rule) = self.poll(now, current, value);
            if let Some(replicas) = set {
                inputs.push(("operator", 1.0));
                let mut r = Recommendation::with_inputs(replicas, inputs);
                r.why.metric = trigger_metric(value, self.config.activation_threshold);
                r.why.rules.extend(rule);
                return r;
            }
            cooling = rule;
        }
        if current == 0 || self.next_hpa.is_some_and(|t| now < t) {
            // The HPA does nothing at zero replicas (scaling disabled) or between its syncs.
            return Recommendation::with_inputs(current, inputs);
        }
        self.next_hpa = Some(now + self.config.hpa.sync_period);
        // The metrics adapter: the value, or after too many failures the fallback.
        let mut fallback = None;
        let metric = match value {
            Some(v) => {
                self.failures = 0;
                Some(v)
            }
            None => {
                self.failures += 1;
                match self.config.fallback {
                    Some(f) if self.failures > f.failure_threshold => {
                        inputs.push(("fallback", 1.0));
                        fallback = Some(Rule::Fallback {
                            failures: self.failures,
                            replicas: f.replicas,
                        });
                        Some(f64::from(f.replicas) * self.config.threshold)
                    }
                    _ => None,
                }
            }
        };
        let hpa_obs = Observation {
            metric,
            pods: Vec::new(),
            ..obs.clone()
        };
        let r = self.hpa.recommend(now, &hpa_obs);
        inputs.extend(r.inputs);
        let mut why = r.why;
        if let Some(rule) = fallback {
            why.rules.insert(0, rule);
        }
        // The cooldown kept the replicas the HPA holds at its floor from going to zero.
        if let Some(rule) = cooling.filter(|_| r.replicas <= 1 && current <= 1) {
            why.push(rule);
        }
        Recommendation {
            replicas: r.replicas,
            inputs,
            why,
        }
    }
}

/// The trigger's value as the operator compares it with `activationThreshold`.
fn trigger_metric(value: Option<f64>, threshold: f64) -> Option<MetricValue> {
    value.map(|v| MetricValue {
        name: "trigger".into(),
        value: v,
        target: Some(threshold),
    })
}

#[cfg(test)]
mod tests;
