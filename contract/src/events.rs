//! The results' event log: what happened when (scaling, scheduling, node changes) and why an
//! autoscaler did (not) act. In the JSON an event is `{t_s, kind, api, node_group, message,
//! inputs, rule, why}` as `simctl.results/v1` has always written it (`rule` and `why` were
//! added later and are optional); in Rust the kind is typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Something that happened during the run. In the JSON, `kind` names what and `inputs` carries its
/// numbers (a `scale` event's `from`, `to`, `ready`, `metric`, `panic_metric` and the policy's
/// own inputs), as `simctl.results/v1` has always written it; in Rust the kind is typed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(into = "WireEvent", try_from = "WireEvent")]
pub struct Event {
    /// Simulated time, seconds.
    pub t_s: f64,
    /// What happened, with what it carries.
    pub kind: EventKind,
    /// The API concerned.
    pub api: Option<String>,
    /// The node group concerned.
    pub node_group: Option<String>,
    /// Human-readable detail.
    pub message: String,
}

/// What an [`Event`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The autoscaler changed an API's replica count.
    Scale(ScaleChange),
    /// A replica passed its readiness probe.
    ReplicaReady,
    /// A replica's pod fits no node group it may use.
    ReplicaUnschedulable,
    /// The kubelet evicted a pod (node memory pressure) or a drain moved it.
    Eviction,
    /// A replica was OOM-killed (memory limit, or an over-committed shared GPU).
    OomKill,
    /// A Vertical Pod Autoscaler resized a running pod in place (its requests changed, the pod
    /// kept running).
    PodResized,
    /// A lower-priority pod (a placeholder) was preempted to make room.
    Preemption,
    /// The cluster autoscaler launched a node.
    NodeLaunch,
    /// A launched node became ready.
    NodeReady,
    /// A node went away (scale-down or spot reclaim).
    NodeTerminate,
    /// A node launch failed (no spot capacity, or not ready in time).
    FailedLaunch,
    /// A spot reclaim notice reached a node.
    SpotInterruption,
    /// A batch job was submitted.
    BatchSubmit,
    /// A batch job finished.
    BatchComplete,
    /// A batch went to the dead-letter queue (or failed with none).
    BatchDeadLetter,
    /// A batch went back to the queue after its worker's node went away.
    BatchRequeue,
    /// The autoscaler decided but a rule (stabilization, tolerance, a rate limit, a bound, a
    /// hold on missing metrics…) kept the count where it was.
    ScaleHeld(ScaleHeld),
    /// The cluster autoscaler saw pending pods and launched no node for them.
    NoScaleUp(Why),
    /// The cluster autoscaler did not remove a node that is (nearly) unneeded.
    NotRemoved(Why),
}

/// Why something did (not) happen: the rule that bound it and one sentence a user can read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Why {
    /// A short snake_case name of the rule (`scale_down_stabilization`, `group_at_max`, …).
    pub rule: String,
    /// The whole reason in one sentence, with its numbers.
    pub sentence: String,
}

/// A `scale_held` event's numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScaleHeld {
    /// The replica count kept.
    pub replicas: u32,
    /// The policy's raw recommendation, when it made one.
    pub recommended: Option<u32>,
    /// The rule and the sentence.
    pub why: Why,
}

/// A `scale` event's numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScaleChange {
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
    /// Ready replicas when the decision was made.
    pub ready: u32,
    /// The metric the policy saw (stable window for Knative).
    pub metric: Option<f64>,
    /// Knative's panic-window metric.
    pub panic_metric: Option<f64>,
    /// The policy's own named inputs (`raw`, `stabilized`, `panicking`, …).
    pub policy_inputs: BTreeMap<String, f64>,
    /// Why the count went where it did; absent in files written before "why" records (the
    /// `rule` is empty when no rule bound the change).
    pub why: Option<Why>,
}

const SCALE_KEYS: [&str; 5] = ["from", "to", "ready", "metric", "panic_metric"];

impl EventKind {
    /// The name written in the JSON's `kind`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Scale(_) => "scale",
            EventKind::ReplicaReady => "replica_ready",
            EventKind::PodResized => "pod_resized",
            EventKind::ReplicaUnschedulable => "replica_unschedulable",
            EventKind::Eviction => "eviction",
            EventKind::OomKill => "oom_kill",
            EventKind::Preemption => "preemption",
            EventKind::NodeLaunch => "node_launch",
            EventKind::NodeReady => "node_ready",
            EventKind::NodeTerminate => "node_terminate",
            EventKind::FailedLaunch => "failed_launch",
            EventKind::SpotInterruption => "spot_interruption",
            EventKind::BatchSubmit => "batch_submit",
            EventKind::BatchComplete => "batch_complete",
            EventKind::BatchDeadLetter => "batch_dead_letter",
            EventKind::BatchRequeue => "batch_requeue",
            EventKind::ScaleHeld(_) => "scale_held",
            EventKind::NoScaleUp(_) => "no_scale_up",
            EventKind::NotRemoved(_) => "not_removed",
        }
    }

    /// Why it happened (or did not), for the kinds that say.
    pub fn why(&self) -> Option<&Why> {
        match self {
            EventKind::Scale(s) => s.why.as_ref(),
            EventKind::ScaleHeld(h) => Some(&h.why),
            EventKind::NoScaleUp(w) | EventKind::NotRemoved(w) => Some(w),
            _ => None,
        }
    }

    fn unit(name: &str) -> Option<EventKind> {
        Some(match name {
            "replica_ready" => EventKind::ReplicaReady,
            "pod_resized" => EventKind::PodResized,
            "replica_unschedulable" => EventKind::ReplicaUnschedulable,
            "eviction" => EventKind::Eviction,
            "oom_kill" => EventKind::OomKill,
            "preemption" => EventKind::Preemption,
            "node_launch" => EventKind::NodeLaunch,
            "node_ready" => EventKind::NodeReady,
            "node_terminate" => EventKind::NodeTerminate,
            "failed_launch" => EventKind::FailedLaunch,
            "spot_interruption" => EventKind::SpotInterruption,
            "batch_submit" => EventKind::BatchSubmit,
            "batch_complete" => EventKind::BatchComplete,
            "batch_dead_letter" => EventKind::BatchDeadLetter,
            "batch_requeue" => EventKind::BatchRequeue,
            _ => return None,
        })
    }
}

/// An event as `simctl.results/v1` writes it.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    t_s: f64,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_group: Option<String>,
    message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    inputs: BTreeMap<String, f64>,
    /// The rule that bound the decision (absent in files written before "why" records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    /// The reason in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

impl From<Event> for WireEvent {
    fn from(e: Event) -> Self {
        let kind = e.kind.name().to_string();
        let (rule, why) = match e.kind.why() {
            Some(w) => (
                (!w.rule.is_empty()).then(|| w.rule.clone()),
                Some(w.sentence.clone()),
            ),
            None => (None, None),
        };
        let inputs = match e.kind {
            EventKind::ScaleHeld(h) => {
                let mut inputs = BTreeMap::new();
                inputs.insert("replicas".into(), f64::from(h.replicas));
                if let Some(r) = h.recommended {
                    inputs.insert("recommended".into(), f64::from(r));
                }
                inputs
            }
            EventKind::Scale(s) => {
                let mut inputs = s.policy_inputs;
                inputs.insert("from".into(), f64::from(s.from));
                inputs.insert("to".into(), f64::from(s.to));
                inputs.insert("ready".into(), f64::from(s.ready));
                if let Some(m) = s.metric {
                    inputs.insert("metric".into(), m);
                }
                if let Some(p) = s.panic_metric {
                    inputs.insert("panic_metric".into(), p);
                }
                inputs
            }
            _ => BTreeMap::new(),
        };
        WireEvent {
            t_s: e.t_s,
            kind,
            api: e.api,
            node_group: e.node_group,
            message: e.message,
            inputs,
            rule,
            why,
        }
    }
}

/// Why an event in a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A `kind` this version does not know.
    #[error("unknown event kind \"{0}\"")]
    UnknownKind(String),
    /// A `scale` event without one of its counts.
    #[error("scale event without inputs.{0}")]
    MissingInput(&'static str),
}

impl TryFrom<WireEvent> for Event {
    type Error = EventError;

    fn try_from(w: WireEvent) -> Result<Self, EventError> {
        let kind = if w.kind == "scale" {
            let count = |key: &'static str| {
                w.inputs
                    .get(key)
                    .map(|v| *v as u32)
                    .ok_or(EventError::MissingInput(key))
            };
            EventKind::Scale(ScaleChange {
                from: count("from")?,
                to: count("to")?,
                ready: count("ready")?,
                metric: w.inputs.get("metric").copied(),
                panic_metric: w.inputs.get("panic_metric").copied(),
                policy_inputs: w
                    .inputs
                    .iter()
                    .filter(|(k, _)| !SCALE_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                why: w.why.clone().map(|sentence| Why {
                    rule: w.rule.clone().unwrap_or_default(),
                    sentence,
                }),
            })
        } else if let Some(kind) = why_kind(&w)? {
            kind
        } else {
            EventKind::unit(&w.kind).ok_or_else(|| EventError::UnknownKind(w.kind.clone()))?
        };
        Ok(Event {
            t_s: w.t_s,
            kind,
            api: w.api,
            node_group: w.node_group,
            message: w.message,
        })
    }
}

/// The kinds that are nothing but a "why": `scale_held`, `no_scale_up`, `not_removed`.
fn why_kind(w: &WireEvent) -> Result<Option<EventKind>, EventError> {
    let why = || Why {
        rule: w.rule.clone().unwrap_or_default(),
        sentence: w.why.clone().unwrap_or_else(|| w.message.clone()),
    };
    Ok(Some(match w.kind.as_str() {
        "scale_held" => EventKind::ScaleHeld(ScaleHeld {
            replicas: w
                .inputs
                .get("replicas")
                .map(|v| *v as u32)
                .ok_or(EventError::MissingInput("replicas"))?,
            recommended: w.inputs.get("recommended").map(|v| *v as u32),
            why: why(),
        }),
        "no_scale_up" => EventKind::NoScaleUp(why()),
        "not_removed" => EventKind::NotRemoved(why()),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_v1_json() {
        let text = r#"{"t_s":12.0,"kind":"scale","api":"a","message":"cortex 1 → 3 replicas","inputs":{"from":1.0,"metric":7.5,"raw":2.5,"ready":1.0,"to":3.0}}"#;
        let e: Event = serde_json::from_str(text).expect("reads");
        let EventKind::Scale(s) = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!((s.from, s.to, s.ready, s.metric), (1, 3, 1, Some(7.5)));
        assert_eq!(s.policy_inputs.len(), 1);
        assert_eq!(serde_json::to_string(&e).expect("writes"), text);
        let plain = r#"{"t_s":1.5,"kind":"node_launch","node_group":"gpu","message":"m"}"#;
        let e: Event = serde_json::from_str(plain).expect("reads");
        assert_eq!(e.kind, EventKind::NodeLaunch);
        assert_eq!(serde_json::to_string(&e).expect("writes"), plain);
        let bad = r#"{"t_s":1.5,"kind":"nope","message":"m"}"#;
        let err = serde_json::from_str::<Event>(bad).expect_err("unknown kind");
        assert!(err.to_string().contains("unknown event kind"), "{err}");
    }

    #[test]
    fn why_events_round_trip_and_old_files_read() {
        let held = r#"{"t_s":60.0,"kind":"scale_held","api":"a","message":"hpa held at 2 replicas","inputs":{"recommended":1.0,"replicas":2.0},"rule":"scale_down_stabilization","why":"held at 2: scale-down stabilization"}"#;
        let e: Event = serde_json::from_str(held).expect("reads");
        let EventKind::ScaleHeld(h) = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!((h.replicas, h.recommended), (2, Some(1)));
        assert_eq!(h.why.rule, "scale_down_stabilization");
        assert_eq!(serde_json::to_string(&e).expect("writes"), held);
        let ca = r#"{"t_s":5.0,"kind":"no_scale_up","api":"a","node_group":"cpu","message":"m","rule":"group_at_max","why":"no scale-up for 1 pending pod of a: cpu at max_instances 3"}"#;
        let e: Event = serde_json::from_str(ca).expect("reads");
        assert_eq!(e.kind.why().map(|w| w.rule.as_str()), Some("group_at_max"));
        assert_eq!(serde_json::to_string(&e).expect("writes"), ca);
        let scale = r#"{"t_s":12.0,"kind":"scale","message":"m","inputs":{"from":1.0,"ready":1.0,"to":3.0},"rule":"max_replicas","why":"scale-up capped at 3 by max_replicas 3"}"#;
        let e: Event = serde_json::from_str(scale).expect("reads");
        assert_eq!(e.kind.why().map(|w| w.rule.as_str()), Some("max_replicas"));
        assert_eq!(serde_json::to_string(&e).expect("writes"), scale);
        // An old scale event has no why.
        let old = r#"{"t_s":12.0,"kind":"scale","message":"m","inputs":{"from":1.0,"ready":1.0,"to":3.0}}"#;
        let e: Event = serde_json::from_str(old).expect("reads");
        assert!(e.kind.why().is_none());
    }
}
