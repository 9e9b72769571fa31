//! Why an SLO was missed (part of `simctl.results/v1`): the intervals an API's offending
//! requests fell in, each with the cause the simulator saw. Re-exported from [`crate::results`].

use serde::{Deserialize, Serialize};

/// What the simulator found going on while an SLO was being missed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum MissCause {
    /// No (or too few) ready replicas after a spot reclaim took their nodes.
    SpotReclaim,
    /// No ready replica, without a spot reclaim (evictions, OOM kills, failed launches).
    NoReadyReplica,
    /// Scale from zero: requests waited for or were refused before the first replica was ready.
    ColdStart,
    /// A scale-up was under way with replicas waiting for a node to boot.
    ScaleUpNodeBoot,
    /// A scale-up was under way with replicas starting (image pull, model load, probe).
    ScaleUpPodStart,
    /// The API ran at `max_replicas` and traffic exceeded what they can serve.
    AtMaxReplicas,
    /// Traffic rose faster than the autoscaler reacted: queues filled on the ready replicas.
    Burst,
    /// Requests were slow, not refused, on a time-sliced or MPS GPU: service times stretch with
    /// the number of busy sharers.
    SharedGpu,
}

impl MissCause {
    /// A short phrase for tables, e.g. `spot reclaim`.
    pub fn label(self) -> &'static str {
        match self {
            MissCause::SpotReclaim => "spot reclaim",
            MissCause::NoReadyReplica => "no ready replica",
            MissCause::ColdStart => "cold start from zero",
            MissCause::ScaleUpNodeBoot => "scale-up, pending node boot",
            MissCause::ScaleUpPodStart => "scale-up, pods starting",
            MissCause::AtMaxReplicas => "burst above capacity at max replicas",
            MissCause::Burst => "burst before the autoscaler reacted",
            MissCause::SharedGpu => "contention on a shared GPU",
        }
    }
}

/// One stretch of time in which an API's SLO-breaking requests (rejected, timed out, or slower
/// than a missed latency objective) piled up, with what the simulator saw then.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MissInterval {
    /// Start of the interval, seconds.
    pub from_s: f64,
    /// End of the interval, seconds.
    pub to_s: f64,
    /// Fraction of the API's SLO-breaking requests that fell here (the intervals sum to 1).
    pub share: f64,
    /// Requests refused (503) in the interval, when the rejection objective was missed.
    pub rejected: u64,
    /// Requests timed out in the interval, when the timeout objective was missed.
    pub timed_out: u64,
    /// Completions slower than the missed latency objective's limit in the interval.
    pub slow: u64,
    /// The main cause.
    pub cause: MissCause,
    /// One sentence with the figures, e.g. `0 ready replicas after a spot reclaim of 2
    /// gpu-spot nodes at 2:27:40`.
    pub detail: String,
}

impl MissInterval {
    /// `149–153 min` (or seconds / hours, by the interval's scale; a decimal when whole units
    /// would hide its length).
    pub fn span_text(&self) -> String {
        let (a, b) = (self.from_s, self.to_s);
        let (div, unit) = if b <= 300.0 {
            (1.0, "s")
        } else if b <= 6.0 * 3600.0 {
            (60.0, "min")
        } else {
            (3600.0, "h")
        };
        if (b - a) / div < 3.0 && div > 1.0 {
            format!("{:.1}–{:.1} {unit}", a / div, b / div)
        } else {
            format!("{:.0}–{:.0} {unit}", a / div, b / div)
        }
    }

    /// The share as a percentage, `<1 %` when it rounds to nothing.
    pub fn share_text(&self) -> String {
        if self.share > 0.0 && self.share < 0.005 {
            "<1 %".into()
        } else {
            format!("{:.0} %", 100.0 * self.share)
        }
    }

    /// `86 % from 149–153 min: 0 ready replicas after …`.
    pub fn sentence(&self) -> String {
        format!(
            "{} from {}: {}",
            self.share_text(),
            self.span_text(),
            self.detail
        )
    }
}
