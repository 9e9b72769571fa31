//! Why the HPA decided what it did: the metric behind the proposal (with the pods set aside and
//! the tolerance), the stabilization recommendation that won, and the rate policy or bound that
//! capped the change. Computed from the same state the decision read, before it is updated, so
//! the explanation never changes a decision.

use std::collections::VecDeque;
use std::time::Duration;

use super::behavior::{self, Limit, ScaleEvent, TimedRecommendation};
use super::calculator::{self, Kept, PodTarget};
use super::{pod_value, Hpa, HpaMetric, RatePolicy, ScalingRules, SelectPolicy};
use crate::why::{Direction, MetricValue, RateKind, Rule, SetAside, Why};
use crate::{Observation, PodMetricKind};

/// A metric's name in words, for sentences.
fn metric_name(metric: &HpaMetric) -> String {
    let kind = |k: PodMetricKind| match k {
        PodMetricKind::Concurrency => "in-flight requests per pod",
        PodMetricKind::Rps => "requests per second per pod",
        PodMetricKind::CpuUtilization => "CPU utilization",
        PodMetricKind::RequestsWaiting => "vllm:num_requests_waiting per pod",
        PodMetricKind::RequestsRunning => "vllm:num_requests_running per pod",
        PodMetricKind::KvCacheUsage => "vllm:kv_cache_usage_perc per pod",
        PodMetricKind::GenerationTokensPerSecond => "generation tokens per second per pod",
    };
    match metric {
        HpaMetric::PodsAverageValue { kind: k, .. } => kind(*k).into(),
        HpaMetric::CpuUtilization { .. } | HpaMetric::ContainerCpuUtilization { .. } => {
            "CPU utilization".into()
        }
        HpaMetric::CpuAverageValue { .. } => "CPU cores per pod".into(),
        HpaMetric::ObjectValue { .. } => "object metric".into(),
        HpaMetric::ObjectAverageValue { .. } => "object metric (total)".into(),
        HpaMetric::ExternalValue { .. } => "external metric".into(),
        HpaMetric::ExternalAverageValue { .. } => "external metric (total)".into(),
    }
}

impl Hpa {
    /// The metric `index`'s value and target, the pods its calculator set aside, and the rule
    /// (tolerance, or set-aside pods reversing the direction) that kept `current`.
    pub(super) fn metric_why(&self, index: usize, current: u32, obs: &Observation) -> Why {
        let mut why = Why::default();
        let Some(metric) = self.config.metrics.get(index) else {
            return why;
        };
        let s = self.config.calculator();
        let target = metric.target();
        let per_pod = match *metric {
            HpaMetric::PodsAverageValue { target, .. } => {
                Some(PodTarget::AverageValue { target, cpu: false })
            }
            HpaMetric::CpuAverageValue { target } => {
                Some(PodTarget::AverageValue { target, cpu: true })
            }
            HpaMetric::CpuUtilization { target }
            | HpaMetric::ContainerCpuUtilization { target } => Some(PodTarget::Utilization {
                percent: (target * 100.0).round() as i64,
            }),
            _ => None,
        };
        let name = metric_name(metric);
        if let Some(pod_target) = per_pod {
            let value = |p: &crate::PodObservation| pod_value(p, index);
            if let Ok(d) = calculator::pod_metric_detail(current, &obs.pods, value, pod_target, &s)
            {
                why.metric = Some(MetricValue {
                    name,
                    value: d.average,
                    target: Some(target),
                });
                why.set_aside = SetAside {
                    unready: d.grouping.unready.len() as u32,
                    missing: d.grouping.missing.len() as u32,
                    ignored: d.grouping.ignored.len() as u32,
                };
                match d.kept {
                    Some(Kept::Tolerance) => why.push(self.tolerance_rule(d.ratio)),
                    Some(Kept::Reversal) => why.push(Rule::SetAsideReversal),
                    None => {}
                }
            }
            return why;
        }
        let usage = if index == 0 {
            obs.metric
        } else {
            obs.extra_metrics.get(index - 1).copied().flatten()
        };
        let Some(usage) = usage else {
            return why;
        };
        why.metric = Some(MetricValue {
            name,
            value: usage,
            target: Some(target),
        });
        let ratio = match metric {
            HpaMetric::ObjectAverageValue { .. } | HpaMetric::ExternalAverageValue { .. } => {
                usage / (target * f64::from(current.max(1)))
            }
            _ => usage / target,
        };
        let tolerances = s.tolerances;
        if current > 0 && tolerances.is_within(ratio) {
            let untolerated = match metric {
                HpaMetric::ObjectAverageValue { .. } | HpaMetric::ExternalAverageValue { .. } => {
                    (usage / target).ceil()
                }
                _ => (ratio * f64::from(obs.ready_replicas)).ceil(),
            };
            if untolerated as u32 != current {
                why.push(self.tolerance_rule(ratio));
            }
        }
        why
    }

    fn tolerance_rule(&self, ratio: f64) -> Rule {
        let t = self.config.tolerances();
        Rule::Tolerance {
            ratio,
            low: 1.0 - t.scale_down,
            high: 1.0 + t.scale_up,
        }
    }
}

/// The stabilization window that moved `desired` to `stabilized`, with the recommendation that
/// won. `log` is the recommendation log as it was before this tick.
pub(super) fn stabilization_rule(
    hpa: &Hpa,
    log: &VecDeque<TimedRecommendation>,
    now: Duration,
    desired: u32,
    stabilized: u32,
) -> Option<Rule> {
    if stabilized == desired {
        return None;
    }
    let (direction, window) = match &hpa.config.behavior {
        None => (Direction::Down, hpa.config.downscale_stabilization),
        Some(b) if stabilized > desired => (Direction::Down, b.scale_down.stabilization_window),
        Some(b) => (Direction::Up, b.scale_up.stabilization_window),
    };
    // The legacy window includes its edge (`>=`), behavior's does not (`>`).
    let inside = |r: &TimedRecommendation| {
        if hpa.config.behavior.is_none() {
            r.at + window >= now
        } else {
            r.at + window > now
        }
    };
    let in_window = log.iter().filter(|r| inside(r));
    let winner = match direction {
        Direction::Down => in_window.max_by_key(|r| (r.replicas, r.at)),
        Direction::Up => in_window.min_by_key(|r| (r.replicas, std::cmp::Reverse(r.at))),
    };
    let (value, at) = winner.map_or((desired, now), |r| (r.replicas, r.at));
    Some(Rule::Stabilization {
        direction,
        window,
        value,
        at,
    })
}

/// The rule behind a normalization `limit` that capped the stabilized recommendation at
/// `result`: the rate policy that allowed exactly `result`, the legacy scale-up limit, or a
/// bound.
#[allow(clippy::too_many_arguments)]
pub(super) fn limit_rule(
    hpa: &Hpa,
    limit: Limit,
    current: u32,
    result: u32,
    up_events: &VecDeque<ScaleEvent>,
    down_events: &VecDeque<ScaleEvent>,
    now: Duration,
) -> Option<Rule> {
    let b = hpa.config.bounds;
    match limit {
        Limit::DesiredWithinRange => None,
        Limit::TooManyReplicas => Some(Rule::MaxReplicas {
            max: b.max_replicas,
        }),
        Limit::TooFewReplicas => Some(Rule::MinReplicas {
            min: b.min_replicas,
        }),
        Limit::ScaleUpLimit | Limit::ScaleDownLimit => {
            let up = limit == Limit::ScaleUpLimit;
            let direction = if up { Direction::Up } else { Direction::Down };
            let Some(beh) = &hpa.config.behavior else {
                return Some(Rule::LegacyScaleUpLimit { limit: result });
            };
            let rules = if up { &beh.scale_up } else { &beh.scale_down };
            if rules.select_policy == SelectPolicy::Disabled {
                return Some(Rule::Disabled { direction });
            }
            let start = hpa.config.kubernetes_version.period_start();
            Some(
                rules
                    .policies
                    .iter()
                    .find(|p| {
                        let one = ScalingRules {
                            policies: vec![**p],
                            ..(*rules).clone()
                        };
                        let allowed = if up {
                            behavior::scale_up_limit(
                                current,
                                up_events,
                                down_events,
                                &one,
                                now,
                                start,
                            )
                        } else {
                            behavior::scale_down_limit(
                                current,
                                up_events,
                                down_events,
                                &one,
                                now,
                                start,
                            )
                        };
                        allowed == i64::from(result)
                    })
                    .map_or(
                        Rule::RateLimit {
                            direction,
                            kind: RateKind::Pods,
                            value: result.abs_diff(current),
                            period: Duration::ZERO,
                            limit: result,
                        },
                        |p| {
                            let (kind, value) = match p {
                                RatePolicy::Pods { value, .. } => (RateKind::Pods, *value),
                                RatePolicy::Percent { value, .. } => (RateKind::Percent, *value),
                            };
                            Rule::RateLimit {
                                direction,
                                kind,
                                value,
                                period: p.period(),
                                limit: result,
                            }
                        },
                    ),
            )
        }
    }
}
