//! The real autoscaler: every policy tick, read metrics, ask the same [`ScalingPolicy`] the
//! simulator runs, and actuate — so a configuration tuned in simulation deploys unchanged.
//!
//! The loop is split into parts that can be swapped and tested alone:
//! - a [`MetricsSource`] turns real metrics into the [`Observation`] the simulator would build
//!   ([`source::ScrapeSource`] scrapes pods directly and emulates the windowed query;
//!   [`prometheus::PrometheusSource`] runs the query on a Prometheus server);
//! - an [`Actuator`] reads and sets the replica count ([`actuator::KubeScale`] patches a
//!   Deployment's scale subresource, [`local::LocalReplicas`] runs `simctl serve` processes behind
//!   a reverse proxy, [`actuator::DryRun`] only logs);
//! - [`DecisionStep`] (the crate's core, shared with the simulator) decides: bounds,
//!   overprovisioning, hold on missing data, wake from zero;
//! - [`lease::LeaderElector`] makes sure only one controller replica acts.
//!
//! Faults never move replicas: missing or stale metrics hold the current count, and API errors
//! are retried with backoff and jitter until the next tick.

pub mod actuator;
pub mod backoff;
pub mod lease;
pub mod local;
pub mod prometheus;
pub mod source;
pub mod status;
mod vllm;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::PodObservation;
pub use crate::{Decision, DecisionStep, Reading, ReplicaCount};

/// Re-exported so the CLI and tests use the same versions as the controller.
pub use {k8s_openapi, kube, reqwest};

pub use actuator::{Actuator, ActuatorError, DryRun, KubeScale};
pub use source::{MetricsSource, SourceError};
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
    activator: Option<local::Activator>,
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
            activator: None,
        }
    }

    /// Read the activator's held requests as `waiting_requests`, and decide at once when one is
    /// held while the API is at zero replicas — as the simulator does and Knative's activator
    /// pokes its autoscaler — instead of at the next tick.
    pub fn with_activator(mut self, activator: local::Activator) -> Self {
        self.activator = Some(activator);
        self
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
            Some(path) => Some(std::io::BufWriter::new(open_decision_log(path)?)),
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
            let activator = self.activator.clone();
            let woken = async move {
                match &activator {
                    Some(a) => a.woken().await,
                    None => std::future::pending().await,
                }
            };
            let mut wake = false;
            tokio::select! {
                _ = &mut stop => break,
                _ = until_deadline => break,
                _ = ticker.tick() => {}
                _ = woken => wake = true,
            }
            let now = start.elapsed();
            let leader = self.is_leader();
            self.metrics.leader.set(i64::from(leader));
            if !leader {
                tracing::debug!("not the leader; not acting");
                continue;
            }
            if let Some(d) = self.tick(now, wake).await {
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

    /// One tick: read, decide, act. `None` when the replica count could not be read, or when
    /// this is a wake-up (`wake`) but the API is not at zero.
    async fn tick(&mut self, now: Duration, wake: bool) -> Option<Decision> {
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
        if wake && current.spec != 0 {
            return None;
        }
        let mut reading = match self.source.observe(now).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.error("metrics");
                tracing::warn!(error = %e, "cannot read metrics; holding");
                Reading::default()
            }
        };
        if let Some(a) = &self.activator {
            reading.waiting_requests = reading.waiting_requests.max(a.held());
        }
        let decision = self.step.decide(now, current, &reading);
        self.metrics.record(&decision);
        match decision.held {
            Some(why) => tracing::info!(
                t_s = now.as_secs_f64(),
                replicas = current.spec,
                ready = current.ready,
                reason = why.as_str(),
                "holding"
            ),
            None => tracing::info!(
                t_s = now.as_secs_f64(),
                metric = decision.metric,
                replicas = current.spec,
                ready = current.ready,
                recommended = decision.recommended,
                target = decision.target,
                why = %decision.sentence(),
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

/// A decision as one JSON object (the `--decisions` file), with `why`, the decision in one
/// sentence, and `rule`, the name of the rule that bound it (null when none did).
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
        "held": d.held.map(crate::HoldReason::as_str),
        "wake": d.wake,
        "inputs": inputs,
        "rule": d.why.rule_name(),
        "why": d.sentence(),
    })
}

/// A per-pod value as the HPA would see it: ready, with its value, unknown age treated as old.
pub fn pod(ready: bool, value: Option<f64>, age: Duration) -> PodObservation {
    PodObservation {
        ready,
        value,
        age,
        ready_since: Some(age),
        ..PodObservation::default()
    }
}

/// Open the decision log for appending (a restarted controller continues its log), refusing a
/// symbolic link so the log cannot be pointed at another file to overwrite or grow.
fn open_decision_log(path: &std::path::Path) -> Result<std::fs::File, ControllerError> {
    let cannot = |e: &dyn std::fmt::Display| {
        ControllerError::Io(format!("cannot append to {}: {e}", path.display()))
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(cannot(&"it is a symbolic link; give the real file"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Closes the gap between the check above and the open.
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| cannot(&e))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::open_decision_log;

    #[test]
    fn the_decision_log_appends_and_refuses_a_symlink() {
        let dir = std::env::temp_dir().join(format!("simctl-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("decisions.jsonl");
        let _ = std::fs::remove_file(&log);
        for line in ["first\n", "second\n"] {
            let mut f = open_decision_log(&log).expect("opens");
            f.write_all(line.as_bytes()).expect("writes");
        }
        assert_eq!(
            std::fs::read_to_string(&log).expect("read"),
            "first\nsecond\n",
            "a restart continues the log"
        );
        #[cfg(unix)]
        {
            let target = dir.join("precious");
            std::fs::write(&target, "keep").expect("write");
            let link = dir.join("link.jsonl");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).expect("symlink");
            let e = open_decision_log(&link).expect_err("a symlink is refused");
            assert!(e.to_string().contains("symbolic link"), "{e}");
            assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
