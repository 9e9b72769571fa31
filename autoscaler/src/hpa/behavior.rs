//! Normalization of the metrics' proposal (`horizontal.go`): the legacy downscale
//! stabilization with `max(2·current, 4)` scale-up cap, or `spec.behavior`'s per-direction
//! stabilization windows and rate policies.

use std::collections::VecDeque;
use std::time::Duration;

use super::{RatePolicy, ScalingRules, SelectPolicy};

/// A past unstabilized recommendation (`timestampedRecommendation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedRecommendation {
    /// When it was made (time since the caller started).
    pub at: Duration,
    /// The metrics' proposal then.
    pub replicas: u32,
}

/// A past scaling (`timestampedScaleEvent`), kept per direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleEvent {
    /// When the target was resized.
    pub at: Duration,
    /// Replicas added (scale-up list) or removed (scale-down list).
    pub change: u32,
}

/// `getReplicasChangePerPeriod`: the replicas changed by events newer than `now − period`.
pub fn change_in_period(events: &VecDeque<ScaleEvent>, now: Duration, period: Duration) -> i64 {
    events
        .iter()
        .filter(|e| e.at + period > now)
        .map(|e| i64::from(e.change))
        .sum()
}

/// How the replicas at the start of a rate policy's period are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodStart {
    /// Since kubernetes/kubernetes#109058 (v1.26): `current − added + deleted`, from the events
    /// of both directions.
    BothDirections,
    /// Before: from the events of the limit's own direction only.
    SameDirection,
}

/// The starting value and the combiner of a direction's `selectPolicy`.
type Selector = (i64, fn(i64, i64) -> i64);

fn select(rules: &ScalingRules, up: bool) -> Option<Selector> {
    match (rules.select_policy, up) {
        (SelectPolicy::Disabled, _) => None,
        (SelectPolicy::Min, true) | (SelectPolicy::Max, false) => Some((i64::MAX, i64::min)),
        (SelectPolicy::Max, true) | (SelectPolicy::Min, false) => Some((i64::MIN, i64::max)),
    }
}

/// `calculateScaleUpLimitWithScalingRules`: the most replicas the rate policies allow now.
pub fn scale_up_limit(
    current: u32,
    up_events: &VecDeque<ScaleEvent>,
    down_events: &VecDeque<ScaleEvent>,
    rules: &ScalingRules,
    now: Duration,
    start: PeriodStart,
) -> i64 {
    let Some((mut result, pick)) = select(rules, true) else {
        return i64::from(current);
    };
    for policy in &rules.policies {
        let added = change_in_period(up_events, now, policy.period());
        let deleted = match start {
            PeriodStart::BothDirections => change_in_period(down_events, now, policy.period()),
            PeriodStart::SameDirection => 0,
        };
        let period_start = i64::from(current) - added + deleted;
        let proposed = match policy {
            RatePolicy::Pods { value, .. } => period_start + i64::from(*value),
            RatePolicy::Percent { value, .. } => {
                (period_start as f64 * (1.0 + f64::from(*value) / 100.0)).ceil() as i64
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: the fewest replicas the rate policies allow now.
pub fn scale_down_limit(
    current: u32,
    up_events: &VecDeque<ScaleEvent>,
    down_events: &VecDeque<ScaleEvent>,
    rules: &ScalingRules,
    now: Duration,
    start: PeriodStart,
) -> i64 {
    let Some((mut result, pick)) = select(rules, false) else {
        return i64::from(current);
    };
    for policy in &rules.policies {
        let added = match start {
            PeriodStart::BothDirections => change_in_period(up_events, now, policy.period()),
            PeriodStart::SameDirection => 0,
        };
        let deleted = change_in_period(down_events, now, policy.period());
        let period_start = i64::from(current) - added + deleted;
        let proposed = match policy {
            RatePolicy::Pods { value, .. } => period_start - i64::from(*value),
            RatePolicy::Percent { value, .. } => {
                (period_start as f64 * (1.0 - f64::from(*value) / 100.0)) as i64
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// Which rule bound a normalized recommendation (the `ScalingLimited` condition's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `DesiredWithinRange`.
    DesiredWithinRange,
    /// `ScaleUpLimit`: a rate policy (or the legacy `max(2·current, 4)`) capped a scale-up.
    ScaleUpLimit,
    /// `ScaleDownLimit`: a rate policy capped a scale-down.
    ScaleDownLimit,
    /// `TooManyReplicas`: `maxReplicas`.
    TooManyReplicas,
    /// `TooFewReplicas`: `minReplicas`.
    TooFewReplicas,
}

impl Limit {
    /// Upstream's condition reason, as `kubectl describe hpa` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::DesiredWithinRange => "DesiredWithinRange",
            Limit::ScaleUpLimit => "ScaleUpLimit",
            Limit::ScaleDownLimit => "ScaleDownLimit",
            Limit::TooManyReplicas => "TooManyReplicas",
            Limit::TooFewReplicas => "TooFewReplicas",
        }
    }
}

/// `convertDesiredReplicasWithRules` (no `behavior`): clamp to `[min, min(max, max(2·current,
/// 4))]`.
pub fn convert_with_rules(current: u32, desired: u32, min: u32, max: u32) -> (u32, Limit) {
    let scale_up_limit = (2 * current).max(4);
    let (maximum, max_reason) = if max > scale_up_limit {
        (scale_up_limit, Limit::ScaleUpLimit)
    } else {
        (max, Limit::TooManyReplicas)
    };
    if desired < min {
        (min, Limit::TooFewReplicas)
    } else if desired > maximum {
        (maximum, max_reason)
    } else {
        (desired, Limit::DesiredWithinRange)
    }
}

/// `convertDesiredReplicasWithBehaviorRate`: cap the stabilized recommendation by the rate
/// policies and the bounds.
#[allow(clippy::too_many_arguments)]
pub fn convert_with_behavior_rate(
    current: u32,
    desired: u32,
    min: u32,
    max: u32,
    up_rules: &ScalingRules,
    down_rules: &ScalingRules,
    up_events: &VecDeque<ScaleEvent>,
    down_events: &VecDeque<ScaleEvent>,
    now: Duration,
    start: PeriodStart,
) -> (u32, Limit) {
    if desired > current {
        let limit = scale_up_limit(current, up_events, down_events, up_rules, now, start)
            .max(i64::from(current));
        let (maximum, reason) = if i64::from(max) > limit {
            (limit, Limit::ScaleUpLimit)
        } else {
            (i64::from(max), Limit::TooManyReplicas)
        };
        if i64::from(desired) > maximum {
            return (maximum.clamp(0, i64::from(u32::MAX)) as u32, reason);
        }
    } else if desired < current {
        let limit = scale_down_limit(current, up_events, down_events, down_rules, now, start)
            .min(i64::from(current));
        let (minimum, reason) = if i64::from(min) < limit {
            (limit, Limit::ScaleDownLimit)
        } else {
            (i64::from(min), Limit::TooFewReplicas)
        };
        if i64::from(desired) < minimum {
            return (minimum.clamp(0, i64::from(u32::MAX)) as u32, reason);
        }
    }
    (desired, Limit::DesiredWithinRange)
}

/// `stabilizeRecommendation` (no `behavior`): the highest recommendation not older than the
/// downscale stabilization window, this one included; records this one.
pub fn stabilize(
    log: &mut VecDeque<TimedRecommendation>,
    now: Duration,
    desired: u32,
    window: Duration,
) -> u32 {
    let mut max = desired;
    for r in log.iter() {
        if r.at + window >= now {
            max = max.max(r.replicas);
        }
    }
    log.retain(|r| r.at + window >= now);
    log.push_back(TimedRecommendation {
        at: now,
        replicas: desired,
    });
    max
}

/// `stabilizeRecommendationWithBehaviors`: bring `current` within the lowest recommendation of
/// the scale-up window and the highest of the scale-down window; records this one.
pub fn stabilize_with_behavior(
    log: &mut VecDeque<TimedRecommendation>,
    now: Duration,
    current: u32,
    desired: u32,
    up_window: Duration,
    down_window: Duration,
) -> u32 {
    let mut up = desired;
    let mut down = desired;
    for r in log.iter() {
        if r.at + up_window > now {
            up = up.min(r.replicas);
        }
        if r.at + down_window > now {
            down = down.max(r.replicas);
        }
    }
    let mut recommendation = current;
    if recommendation < up {
        recommendation = up;
    }
    if recommendation > down {
        recommendation = down;
    }
    log.retain(|r| r.at + up_window > now || r.at + down_window > now);
    log.push_back(TimedRecommendation {
        at: now,
        replicas: desired,
    });
    recommendation
}
