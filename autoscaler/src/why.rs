//! "Why (not)": the rule that bound a decision, with its numbers, and one sentence a user can
//! read ("held at 6: scale-down stabilization, highest recommendation in the last 300s was 6 at
//! 0:12:03").
//!
//! Every policy reports the raw recommendation it computed from its metric and the rules that
//! moved the outcome away from it (tolerance, stabilization windows, rate limits, bounds, pods
//! set aside, holds on missing metrics, …); the [`crate::DecisionStep`] adds the bounds,
//! overprovisioning, holds and wake-ups it applies itself. The simulator's results events, the
//! controller's `--decisions` lines and `simctl explain` all render the same [`Why`], so the
//! answer to "why did it (not) scale?" reads the same wherever it is asked.

use std::fmt::Write as _;
use std::time::Duration;

use crate::HoldReason;

/// Which way a rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Adding replicas.
    Up,
    /// Removing replicas.
    Down,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Up => "scale-up",
            Direction::Down => "scale-down",
        }
    }

    fn snake(self) -> &'static str {
        match self {
            Direction::Up => "scale_up",
            Direction::Down => "scale_down",
        }
    }
}

/// The unit of an HPA rate policy (`type: Pods` or `type: Percent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    /// At most `value` pods per period.
    Pods,
    /// At most `value` percent per period.
    Percent,
}

/// One rule that bound a decision, with the numbers a user needs to check it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The metric was missing or stale: the count was held without asking the policy.
    Hold(HoldReason),
    /// Every metric of an HPA was invalid (or some were and the rest would scale down):
    /// upstream takes no action.
    InvalidMetric {
        /// The calculator's error, as upstream words it.
        error: String,
    },
    /// The usage ratio was within the tolerance band: no change.
    Tolerance {
        /// Usage over target.
        ratio: f64,
        /// Lowest ratio that changes nothing (1 − scale-down tolerance).
        low: f64,
        /// Highest ratio that changes nothing (1 + scale-up tolerance).
        high: f64,
    },
    /// Counting the pods set aside (unready, missing) would reverse the direction: no change.
    SetAsideReversal,
    /// A stabilization window: the highest (scale-down) or lowest (scale-up) recommendation
    /// in the window won.
    Stabilization {
        /// The direction the window holds back.
        direction: Direction,
        /// The window's length.
        window: Duration,
        /// The recommendation that won.
        value: u32,
        /// When it was made (time since the caller started).
        at: Duration,
    },
    /// Cortex's start-up guard: no scaling in a direction before its stabilization period has
    /// passed since the autoscaler started.
    StartupGuard {
        /// The direction held back.
        direction: Direction,
        /// The period that must pass first.
        period: Duration,
    },
    /// An HPA rate policy (`behavior.scaleUp/scaleDown.policies`) capped the change.
    RateLimit {
        /// The direction capped.
        direction: Direction,
        /// Pods or Percent.
        kind: RateKind,
        /// The policy's value.
        value: u32,
        /// The policy's `periodSeconds`.
        period: Duration,
        /// The count the policy allowed.
        limit: u32,
    },
    /// The HPA without `behavior`: a scale-up goes at most to `max(2 × current, 4)`.
    LegacyScaleUpLimit {
        /// The count allowed.
        limit: u32,
    },
    /// A factor or rate limit per decision (Cortex's `max_upscale_factor` /
    /// `max_downscale_factor`, Knative's `max-scale-up-rate` / `max-scale-down-rate`).
    FactorLimit {
        /// The direction capped.
        direction: Direction,
        /// The setting's name.
        setting: &'static str,
        /// The setting's value.
        factor: f64,
        /// The count allowed.
        limit: u32,
    },
    /// `selectPolicy: Disabled`: no scaling in this direction.
    Disabled {
        /// The direction disabled.
        direction: Direction,
    },
    /// The upper bound.
    MaxReplicas {
        /// `max_replicas`.
        max: u32,
    },
    /// The lower bound.
    MinReplicas {
        /// `min_replicas`.
        min: u32,
    },
    /// Knative's panic mode: no scale-down while panicking, the highest count since the
    /// panic began is kept.
    Panic {
        /// The count kept.
        highest: u32,
    },
    /// Knative's `scale-down-delay`: the highest recommendation in the delay window is kept.
    ScaleDownDelay {
        /// The delay.
        window: Duration,
        /// The count kept.
        highest: u32,
    },
    /// Knative's scale-to-zero grace period (or the revision not yet active for a stable
    /// window) keeps one replica.
    ScaleToZeroGrace {
        /// The grace period.
        grace: Duration,
    },
    /// KEDA's cooldown: the trigger is inactive but the last active poll is not yet
    /// `cooldownPeriod` old, so the replicas are not taken to zero.
    Cooldown {
        /// `cooldownPeriod`.
        period: Duration,
    },
    /// KEDA's activation: the trigger's value rose above `activationThreshold` at zero
    /// replicas, so the operator scaled out of zero.
    Activation {
        /// The trigger's value.
        value: f64,
        /// `activationThreshold`.
        threshold: f64,
    },
    /// KEDA's deactivation: no poll was active for `cooldownPeriod`, so the operator scaled to
    /// zero.
    Deactivation {
        /// `cooldownPeriod`.
        period: Duration,
    },
    /// KEDA's fallback: after more than `failureThreshold` scaler errors the metrics adapter
    /// serves `replicas × threshold`.
    Fallback {
        /// Consecutive failures.
        failures: u32,
        /// `fallback.replicas`.
        replicas: u32,
    },
    /// Replicas still starting: the policy waits for them before adding more (llm-d WVA).
    PendingReplicas {
        /// Replicas requested but not ready.
        pending: u32,
    },
    /// The forecast floor: the load forecast for when a replica asked for now would be ready
    /// needed more replicas than the reactive policy (see `crate::predictive`).
    Forecast {
        /// The load forecast, in the reactive policy's metric.
        forecast: f64,
        /// How far ahead it was taken (the measured start-up time).
        lead: Duration,
        /// The replicas it asked for.
        replicas: u32,
    },
    /// Requests held by the activator woke a scaled-to-zero API.
    Wake {
        /// Requests waiting.
        waiting: u32,
    },
    /// Overprovisioning added headroom on top of the recommendation.
    Overprovisioning {
        /// Extra replicas.
        extra: u32,
    },
}

impl Rule {
    /// A short snake_case name, stable across releases, for machines (`rule` in results
    /// events, filters in tests).
    pub fn name(&self) -> String {
        match self {
            Rule::Hold(HoldReason::MetricMissing) => "metric_missing".into(),
            Rule::Hold(HoldReason::NoPodMetric) => "no_pod_metric".into(),
            Rule::InvalidMetric { .. } => "invalid_metric".into(),
            Rule::Tolerance { .. } => "tolerance".into(),
            Rule::SetAsideReversal => "set_aside_reversal".into(),
            Rule::Stabilization { direction, .. } => format!("{}_stabilization", direction.snake()),
            Rule::StartupGuard { direction, .. } => format!("{}_startup_guard", direction.snake()),
            Rule::RateLimit { direction, .. } => format!("{}_rate_limit", direction.snake()),
            Rule::LegacyScaleUpLimit { .. } => "scale_up_limit".into(),
            Rule::FactorLimit { direction, .. } => format!("{}_factor_limit", direction.snake()),
            Rule::Disabled { direction } => format!("{}_disabled", direction.snake()),
            Rule::MaxReplicas { .. } => "max_replicas".into(),
            Rule::MinReplicas { .. } => "min_replicas".into(),
            Rule::Panic { .. } => "panic".into(),
            Rule::ScaleDownDelay { .. } => "scale_down_delay".into(),
            Rule::ScaleToZeroGrace { .. } => "scale_to_zero_grace".into(),
            Rule::Cooldown { .. } => "cooldown".into(),
            Rule::Activation { .. } => "activation".into(),
            Rule::Deactivation { .. } => "deactivation".into(),
            Rule::Fallback { .. } => "fallback".into(),
            Rule::PendingReplicas { .. } => "pending_replicas".into(),
            Rule::Forecast { .. } => "forecast".into(),
            Rule::Wake { .. } => "wake".into(),
            Rule::Overprovisioning { .. } => "overprovisioning".into(),
        }
    }

    /// The rule in words, without the outcome ("scale-down stabilization, highest
    /// recommendation in the last 300s was 6 at 0:12:03").
    pub fn phrase(&self) -> String {
        match self {
            Rule::Hold(r) => format!("{}, no action", r.as_str()),
            Rule::InvalidMetric { error } => format!("no valid metric ({error}), no action"),
            Rule::Tolerance { ratio, low, high } => format!(
                "usage ratio {} within tolerance ({}–{})",
                num(*ratio),
                num(*low),
                num(*high)
            ),
            Rule::SetAsideReversal => {
                "counting the pods set aside would reverse the direction".into()
            }
            Rule::Stabilization {
                direction,
                window,
                value,
                at,
            } => format!(
                "{} stabilization, {} recommendation in the last {} was {value} at {}",
                direction.word(),
                match direction {
                    Direction::Down => "highest",
                    Direction::Up => "lowest",
                },
                span(*window),
                clock(*at)
            ),
            Rule::StartupGuard { direction, period } => format!(
                "{} not allowed in the first {} after the autoscaler started",
                direction.word(),
                span(*period)
            ),
            Rule::RateLimit {
                kind,
                value,
                period,
                ..
            } => format!(
                "policy {} {value} per {}",
                match kind {
                    RateKind::Pods => "Pods",
                    RateKind::Percent => "Percent",
                },
                span(*period)
            ),
            Rule::LegacyScaleUpLimit { limit } => {
                format!("the scale-up limit max(2 × current, 4) = {limit}")
            }
            Rule::FactorLimit {
                setting, factor, ..
            } => format!("{setting} {}", num(*factor)),
            Rule::Disabled { direction } => {
                format!("{} disabled (selectPolicy: Disabled)", direction.word())
            }
            Rule::MaxReplicas { max } => format!("max_replicas {max}"),
            Rule::MinReplicas { min } => format!("min_replicas {min}"),
            Rule::Panic { highest } => {
                format!("panic mode, no scale-down below the panic's highest count {highest}")
            }
            Rule::ScaleDownDelay { window, highest } => format!(
                "scale-down delay, highest recommendation in the last {} was {highest}",
                span(*window)
            ),
            Rule::ScaleToZeroGrace { grace } => format!(
                "scale-to-zero grace period ({}) or stable window not yet passed",
                span(*grace)
            ),
            Rule::Cooldown { period } => format!(
                "cooldown, the trigger was active less than {} ago",
                span(*period)
            ),
            Rule::Activation { value, threshold } => format!(
                "activation, trigger {} > activation threshold {}",
                num(*value),
                num(*threshold)
            ),
            Rule::Deactivation { period } => {
                format!(
                    "deactivation, trigger inactive for the cooldown of {}",
                    span(*period)
                )
            }
            Rule::Fallback { failures, replicas } => {
                format!("fallback to {replicas} replicas after {failures} scaler errors")
            }
            Rule::PendingReplicas { pending } => {
                format!("{pending} replicas still starting, waiting for them")
            }
            Rule::Forecast {
                forecast,
                lead,
                replicas,
            } => format!(
                "forecast floor, load {forecast:.1} expected in {} needs {replicas} replicas",
                span(*lead)
            ),
            Rule::Wake { waiting } => {
                format!("wake from zero, {waiting} requests waiting at the activator")
            }
            Rule::Overprovisioning { extra } => format!("overprovisioning +{extra}"),
        }
    }
}

/// The metric a raw recommendation came from.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// What it measures, in words ("concurrency per pod", "avg in flight").
    pub name: String,
    /// Its value as the policy saw it.
    pub value: f64,
    /// The policy's target for it, when it has one.
    pub target: Option<f64>,
}

/// Pods a calculator did not count with their own metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAside {
    /// Pending pods, and for CPU pods still initialising or never ready.
    pub unready: u32,
    /// Running pods with no metric.
    pub missing: u32,
    /// Failed or terminating pods.
    pub ignored: u32,
}

impl SetAside {
    fn is_empty(&self) -> bool {
        self.unready == 0 && self.missing == 0 && self.ignored == 0
    }
}

/// What bound one decision: the raw recommendation, the metric behind it, the pods set aside
/// and the rules, in the order they were applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Why {
    /// The policy's recommendation from its metric, before any rule.
    pub raw: Option<u32>,
    /// The metric the raw recommendation came from.
    pub metric: Option<MetricValue>,
    /// Pods set aside by the calculator.
    pub set_aside: SetAside,
    /// Rules that moved the outcome (or held it), in the order applied.
    pub rules: Vec<Rule>,
}

impl Why {
    /// Whether a rule bound the decision (something a user may ask about).
    pub fn binds(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The rule applied last: the one that fixed the outcome.
    pub fn binding(&self) -> Option<&Rule> {
        self.rules
            .iter()
            .rev()
            .find(|r| !matches!(r, Rule::Overprovisioning { .. }))
            .or(self.rules.last())
    }

    /// The binding rule's name ([`Rule::name`]), `None` when no rule bound.
    pub fn rule_name(&self) -> Option<String> {
        self.binding().map(Rule::name)
    }

    /// Add a rule.
    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// One sentence for a decision that took `spec.replicas` from `from` to `to`: the outcome,
    /// the binding rule with its numbers, and the raw recommendation with its metric. Times are
    /// written as H:MM:SS since the run (or the controller) started.
    pub fn sentence(&self, from: u32, to: u32) -> String {
        let mut s = String::new();
        let binding = self.binding();
        match binding {
            Some(rule @ (Rule::Hold(_) | Rule::InvalidMetric { .. })) => {
                let _ = write!(s, "held at {to}: {}", rule.phrase());
            }
            Some(
                rule @ (Rule::RateLimit { direction, .. } | Rule::FactorLimit { direction, .. }),
            ) if to == from => {
                let _ = write!(
                    s,
                    "held at {to}: {} capped by {}",
                    direction.word(),
                    rule.phrase()
                );
            }
            Some(rule @ Rule::LegacyScaleUpLimit { .. }) if to == from => {
                let _ = write!(s, "held at {to}: scale-up capped by {}", rule.phrase());
            }
            Some(rule) if to == from => {
                let _ = write!(s, "held at {to}: {}", rule.phrase());
            }
            Some(rule @ (Rule::Wake { .. } | Rule::Activation { .. } | Rule::Fallback { .. })) => {
                let _ = write!(s, "scaled {from} → {to}: {}", rule.phrase());
            }
            Some(rule @ Rule::Forecast { .. }) => {
                let _ = write!(s, "scaled {from} → {to}: {}", rule.phrase());
            }
            Some(rule @ (Rule::Deactivation { .. } | Rule::Overprovisioning { .. })) => {
                let _ = write!(s, "scaled {from} → {to}: {}", rule.phrase());
            }
            Some(rule) if to > from => {
                let _ = write!(s, "scale-up capped at {to} by {}", rule.phrase());
            }
            Some(rule) => {
                let _ = write!(s, "scale-down stopped at {to} by {}", rule.phrase());
            }
            None if to == from => {
                let _ = write!(s, "kept at {to}");
            }
            None => {
                let _ = write!(s, "scaled {from} → {to}");
            }
        }
        let mut notes = Vec::new();
        if let Some(raw) = self.raw {
            let mut n = format!("recommended {raw}");
            if let Some(m) = &self.metric {
                let _ = write!(n, " from {} {}", m.name, num(m.value));
                if let Some(t) = m.target {
                    let _ = write!(n, " against a target of {}", num(t));
                }
            }
            notes.push(n);
        } else if let Some(m) = &self.metric {
            notes.push(format!("{} {}", m.name, num(m.value)));
        }
        for rule in &self.rules {
            if Some(rule) != binding {
                notes.push(format!("after {}", rule.phrase()));
            }
        }
        let a = self.set_aside;
        if !a.is_empty() {
            let mut parts = Vec::new();
            if a.unready > 0 {
                parts.push(format!("{} unready", a.unready));
            }
            if a.missing > 0 {
                parts.push(format!("{} without a metric", a.missing));
            }
            if a.ignored > 0 {
                parts.push(format!("{} failed or terminating", a.ignored));
            }
            notes.push(format!("pods set aside: {}", parts.join(", ")));
        }
        if !notes.is_empty() {
            let _ = write!(s, " ({})", notes.join("; "));
        }
        s
    }
}

/// A number for a sentence: integers as integers, others with up to 3 significant decimals.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "none".into();
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{}", v.round() as i64);
    }
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration in seconds, as upstream's `periodSeconds` and `stabilizationWindowSeconds`.
fn span(d: Duration) -> String {
    format!("{}s", num(d.as_secs_f64()))
}

/// A moment as H:MM:SS since the start.
pub fn clock(at: Duration) -> String {
    let s = at.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests;
