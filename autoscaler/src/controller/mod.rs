//! The real autoscaler: every policy tick, read metrics, ask the same [`ScalingPolicy`] the
//! simulator runs, and actuate — so a configuration tuned in simulation deploys unchanged.
//!
//! The loop is split into parts that can be swapped and tested alone:
//! - a [`MetricsSource`] turns real metrics into the [`Observation`] the simulator would build
//!   ([`source::ScrapeSource`] scrapes pods directly and emulates the windowed query;
//!   [`source::PrometheusSource`] runs the query on a Prometheus server);
//! - an [`Actuator`] reads and sets the replica count ([`actuator::KubeScale`] patches a
//!   Deployment's scale subresource, [`local::LocalReplicas`] runs `simctl serve` processes behind
//!   a reverse proxy, [`actuator::DryRun`] only logs);
//! - [`DecisionStep`] is the pure part (policy + bounds + headroom + hold on missing data), shared
//!   with tests that compare the controller with the simulator;
//! - [`lease::LeaderElector`] makes sure only one controller replica acts.
//!
//! Faults never move replicas: missing or stale metrics hold the current count, and API errors
//! are retried with backoff and jitter until the next tick.

pub mod actuator;
pub mod backoff;
pub mod lease;
pub mod local;
pub mod source;
pub mod status;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::{MetricSpec, Observation, PodObservation, ReplicaBounds, ScalingPolicy};

/// Re-exported so the CLI and tests use the same versions as the controller.
pub use {k8s_openapi, kube, reqwest};

pub use actuator::{Actuator, ActuatorError, DryRun, KubeScale, ReplicaCount};
pub use source::{MetricsSource, Reading, SourceError};
pub use status::ControllerMetrics;

/// A boxed future, so sources and actuators can be chosen at run time (`Box<dyn …>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors that stop the controller (everything else is retried and logged).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The configuration cannot work (e.g. a metric the chosen source cannot provide).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file or socket the controller needs could not be used.
    #[error("{0}")]
    Io(String),
}

/// Extra replicas on top of the policy's recommendation (the scenario's `overprovisioning`),
/// given as a function so this crate does not depend on the scenario types.
pub type Headroom = Box<dyn Fn(u32, u32) -> u32 + Send + Sync>;

/// One tick's decision, with what led to it (logged, exported and written to `--decisions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Time since the controller started.
    pub now: Duration,
    /// `spec.replicas` read from the actuator.
    pub spec_replicas: u32,
    /// Ready replicas read from the actuator.
    pub ready_replicas: u32,
    /// The aggregated metric the policy saw (`None`: missing or stale).
    pub metric: Option<f64>,
    /// The policy's recommendation clamped into the bounds (`None` when the policy was not asked
    /// because the metric was missing).
    pub recommended: Option<u32>,
    /// The replica count to run (recommendation + headroom, within the bounds).
    pub target: u32,
    /// Why the count did not change when the metric was missing.
    pub held: Option<&'static str>,
    /// The policy's named inputs.
    pub inputs: Vec<(&'static str, f64)>,
}

/// The pure part of a tick: observation in, target replicas out. The simulator's engine does the
/// same (clamp, then headroom), so the two make the same decisions on the same metric values.
pub struct DecisionStep {
    policy: Box<dyn ScalingPolicy>,
    bounds: ReplicaBounds,
    headroom: Option<Headroom>,
    /// (target written, policy recommendation behind it): the policy sees its own count, as in
    /// the simulator, as long as nobody else changed the Deployment.
    last: Option<(u32, u32)>,
}

impl DecisionStep {
    /// A decision step for `policy` within `bounds`, with optional headroom.
    pub fn new(
        policy: Box<dyn ScalingPolicy>,
        bounds: ReplicaBounds,
        headroom: Option<Headroom>,
    ) -> Self {
        Self {
            policy,
            bounds,
            headroom,
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

    /// Replicas to start with (policy's initial count, within bounds, plus headroom).
    pub fn initial_target(&mut self) -> u32 {
        let policy = self.bounds.clamp(self.policy.initial_replicas());
        let target = self.with_headroom(policy);
        self.last = Some((target, policy));
        target
    }

    fn with_headroom(&self, policy: u32) -> u32 {
        let target = match &self.headroom {
            Some(h) => h(policy, self.bounds.max_replicas),
            None => policy,
        };
        self.bounds.clamp(target)
    }

    /// Decide from the actuator's counts and the metrics reading. Missing data holds the current
    /// count without asking the policy (real autoscalers take no action on an empty query).
    pub fn decide(&mut self, now: Duration, current: ReplicaCount, reading: &Reading) -> Decision {
        let spec = current.spec;
        let policy_current = match self.last {
            Some((written, policy)) if written == spec => policy,
            _ => spec,
        };
        let missing = match self.policy.metric_spec() {
            MetricSpec::None => None,
            MetricSpec::InFlightWindowAverage { .. }
            | MetricSpec::StableAndPanicConcurrency { .. } => reading
                .metric
                .is_none()
                .then_some("metric missing or stale"),
            MetricSpec::PerPod { .. } => (reading.pods.iter().all(|p| p.value.is_none()))
                .then_some("no pod reported the metric"),
        };
        let mut decision = Decision {
            now,
            spec_replicas: spec,
            ready_replicas: current.ready,
            metric: reading.metric,
            recommended: None,
            // Holding never moves the count, even when it is outside the bounds: a human (or
            // another controller) set it, and missing data is no reason to act.
            target: spec,
            held: missing,
            inputs: Vec::new(),
        };
        if missing.is_some() {
            return decision;
        }
        let observation = Observation {
            current_replicas: policy_current,
            ready_replicas: current.ready,
            metric: reading.metric,
            panic_metric: reading.panic_metric,
            pods: reading.pods.clone(),
            waiting_requests: 0,
        };
        let recommendation = self.policy.recommend(now, &observation);
        let policy = self.bounds.clamp(recommendation.replicas);
        let target = self.with_headroom(policy);
        self.last = Some((target, policy));
        decision.recommended = Some(policy);
        decision.target = target;
        decision.inputs = recommendation.inputs;
        decision
    }

    /// Record that the actuator did not apply the last decision, so the next tick starts from
    /// what is really deployed.
    pub fn forget_last(&mut self) {
        self.last = None;
    }
}

/// Plain settings of the loop (no scenario types: the CLI translates).
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// API name (logs, metric labels).
    pub api_name: String,
    /// Override of the policy's tick interval (tests); `None` uses the policy's.
    pub tick_interval: Option<Duration>,
    /// Set the initial replica count at start (local actuator); a real Deployment keeps its own.
    pub apply_initial: bool,
    /// Stop after this long (`None`: until cancelled).
    pub duration: Option<Duration>,
    /// Append one JSON line per tick to this file.
    pub decisions_out: Option<PathBuf>,
    /// How long to keep retrying a failed API call within one tick.
    pub retry: backoff::Backoff,
}

/// The control loop.
pub struct Controller {
    settings: ControllerSettings,
    step: DecisionStep,
    source: Box<dyn MetricsSource>,
    actuator: Box<dyn Actuator>,
    metrics: Arc<ControllerMetrics>,
    leader: Option<watch::Receiver<bool>>,
}

impl Controller {
    /// A controller; call [`Controller::run`] to start it.
    pub fn new(
        settings: ControllerSettings,
        step: DecisionStep,
        source: Box<dyn MetricsSource>,
        actuator: Box<dyn Actuator>,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        Self {
            settings,
            step,
            source,
            actuator,
            metrics,
            leader: None,
        }
    }

    /// Act only while `leader` says so (leader election); without it the controller always acts.
    pub fn with_leadership(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = Some(leader);
        self
    }

    fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(|l| *l.borrow())
    }

    /// Run until `stop` resolves (or the configured duration passes). Returns the decisions made.
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<Vec<Decision>, ControllerError> {
        let tick = self
            .settings
            .tick_interval
            .unwrap_or_else(|| self.step.tick_interval());
        let mut out = match &self.settings.decisions_out {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| {
                    ControllerError::Io(format!("cannot write {}: {e}", path.display()))
                })?,
            )),
            None => None,
        };
        let start = Instant::now();
        let deadline = self.settings.duration.map(|d| start + d);
        tracing::info!(
            api = %self.settings.api_name,
            policy = self.step.policy_name(),
            actuator = self.actuator.name(),
            tick_s = tick.as_secs_f64(),
            min = self.step.bounds().min_replicas,
            max = self.step.bounds().max_replicas,
            "controller started"
        );
        if self.settings.apply_initial && self.is_leader() {
            let target = self.step.initial_target();
            self.scale(target).await;
        }
        let mut decisions = Vec::new();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                _ = until_deadline => break,
                _ = ticker.tick() => {}
            }
            let now = start.elapsed();
            let leader = self.is_leader();
            self.metrics.leader.set(i64::from(leader));
            if !leader {
                tracing::debug!("not the leader; not acting");
                continue;
            }
            if let Some(d) = self.tick(now).await {
                if let Some(w) = out.as_mut() {
                    let line = decision_json(&d);
                    if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
                        tracing::warn!(error = %e, "cannot write the decisions file");
                    }
                }
                decisions.push(d);
            }
        }
        tracing::info!(decisions = decisions.len(), "controller stopped");
        self.actuator.shutdown().await;
        Ok(decisions)
    }

    /// One tick: read, decide, act. `None` when the replica count could not be read.
    async fn tick(&mut self, now: Duration) -> Option<Decision> {
        let retry = self.settings.retry.clone();
        let metrics = &self.metrics;
        let current = match retry
            .run(
                "read replicas",
                &mut self.actuator,
                |a: &mut Box<dyn Actuator>| a.current(),
                |_| metrics.error("actuator"),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replica count; holding this tick");
                return None;
            }
        };
        let reading = match self.source.observe(now).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.error("metrics");
                tracing::warn!(error = %e, "cannot read metrics; holding");
                Reading::default()
            }
        };
        let decision = self.step.decide(now, current, &reading);
        self.metrics.record(&decision);
        match decision.held {
            Some(why) => tracing::info!(
                t_s = now.as_secs_f64(),
                replicas = current.spec,
                ready = current.ready,
                reason = why,
                "holding"
            ),
            None => tracing::info!(
                t_s = now.as_secs_f64(),
                metric = decision.metric,
                replicas = current.spec,
                ready = current.ready,
                recommended = decision.recommended,
                target = decision.target,
                "decision"
            ),
        }
        if decision.target != current.spec {
            if !self.is_leader() {
                tracing::info!("lost leadership before acting");
                self.step.forget_last();
                return Some(decision);
            }
            if !self.scale(decision.target).await {
                self.step.forget_last();
            }
        }
        Some(decision)
    }

    /// Set the replica count with retries; false when it could not be done this tick.
    async fn scale(&mut self, target: u32) -> bool {
        let retry = self.settings.retry.clone();
        let metrics = &self.metrics;
        match retry
            .run(
                "scale",
                &mut self.actuator,
                |a: &mut Box<dyn Actuator>| a.scale(target),
                |_| metrics.error("actuator"),
            )
            .await
        {
            Ok(()) => {
                tracing::info!(replicas = target, "scaled");
                self.metrics.scaled.inc();
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, replicas = target, "cannot scale; will retry next tick");
                false
            }
        }
    }
}

/// A decision as one JSON object (the `--decisions` file).
pub fn decision_json(d: &Decision) -> serde_json::Value {
    let inputs: serde_json::Map<String, serde_json::Value> = d
        .inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
        .collect();
    serde_json::json!({
        "t_s": d.now.as_secs_f64(),
        "spec_replicas": d.spec_replicas,
        "ready_replicas": d.ready_replicas,
        "metric": d.metric,
        "recommended": d.recommended,
        "target": d.target,
        "held": d.held,
        "inputs": inputs,
    })
}

/// A per-pod value as the HPA would see it: ready, with its value, unknown age treated as old.
pub fn pod(ready: bool, value: Option<f64>, age: Duration) -> PodObservation {
    PodObservation {
        ready,
        value,
        age,
        request: 1.0,
    }
}
