//! The replica calculator (`pkg/controller/podautoscaler/replica_calculator.go`): from one
//! metric's values to the replica count it proposes, with upstream's pod grouping (ready,
//! unready, missing, ignored), its milli-unit integer arithmetic and its tolerances.

use std::time::Duration;

use crate::{PodObservation, PodPhase};

/// Scale-down and scale-up tolerances on the usage ratio (`Tolerances` upstream): no change
/// while `1 − scale_down ≤ ratio ≤ 1 + scale_up`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Tolerance below the target (`behavior.scaleDown.tolerance`, else the cluster flag).
    pub scale_down: f64,
    /// Tolerance above the target (`behavior.scaleUp.tolerance`, else the cluster flag).
    pub scale_up: f64,
}

impl Tolerances {
    /// The same tolerance both ways (the cluster-wide `--horizontal-pod-autoscaler-tolerance`).
    pub fn both(tolerance: f64) -> Self {
        Self {
            scale_down: tolerance,
            scale_up: tolerance,
        }
    }

    /// `isWithin`: whether the ratio is close enough to 1 to change nothing.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// Controller settings the calculator needs besides the metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalculatorSettings {
    /// Usage-ratio tolerances.
    pub tolerances: Tolerances,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min).
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
    pub initial_readiness_delay: Duration,
    /// Kubernetes ≥ 1.28: a Pods metric fills in missing pods only when the ratio is > 1 on a
    /// scale-up (before, also at exactly 1, which then scaled down).
    pub missing_pods_only_above_one: bool,
}

/// Why a metric gives no proposal (the HPA's "invalid metric").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// "no pods returned by selector while calculating replica count".
    #[error("no pods returned by selector")]
    NoPods,
    /// "did not receive metrics for targeted pods (pods might be unready)".
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// "missing request for cpu": utilization needs every pod's CPU request.
    #[error("missing request for cpu")]
    MissingRequest,
}

/// The result of `groupPods`: indices into the pod list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grouping {
    /// Pods counted with their metric.
    pub ready: Vec<usize>,
    /// Pending pods, and for CPU the pods still initialising or never ready.
    pub unready: Vec<usize>,
    /// Running pods with no metric.
    pub missing: Vec<usize>,
    /// Failed or terminating pods.
    pub ignored: Vec<usize>,
}

/// `groupPods`: sort pods into ready, unready, missing and ignored. Readiness and the CPU
/// initialization period apply to CPU only; for other metrics only Pending pods are unready.
pub fn group_pods(
    pods: &[PodObservation],
    value: impl Fn(&PodObservation) -> Option<f64>,
    cpu: bool,
    s: &CalculatorSettings,
) -> Grouping {
    let mut g = Grouping::default();
    for (i, pod) in pods.iter().enumerate() {
        if pod.terminating || pod.phase == PodPhase::Failed {
            g.ignored.push(i);
            continue;
        }
        if pod.phase == PodPhase::Pending {
            g.unready.push(i);
            continue;
        }
        if value(pod).is_none() {
            g.missing.push(i);
            continue;
        }
        if cpu {
            let unready = match pod.ready_since {
                None => true,
                Some(since) => {
                    if pod.age < s.cpu_initialization_period {
                        // Inside the initialisation period: unready, or no full metric window
                        // collected since the last readiness change.
                        !pod.ready || since < pod.metric_age + pod.metric_window
                    } else {
                        // Afterwards: only a pod that is unready and has never been ready
                        // (its condition changed within the initial readiness delay).
                        !pod.ready && since + s.initial_readiness_delay > pod.age
                    }
                }
            };
            if unready {
                g.unready.push(i);
                continue;
            }
        }
        g.ready.push(i);
    }
    g
}

fn milli(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

/// How a per-pod metric is turned into a ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PodTarget {
    /// CPU `Utilization`: usage over request, target in percent of the request.
    Utilization {
        /// Target percent (60 = 60 %).
        percent: i64,
    },
    /// `AverageValue` on a per-pod metric (Pods metric, or CPU `AverageValue` in cores).
    AverageValue {
        /// Target per pod.
        target: f64,
        /// Whether the metric is CPU (readiness and initialisation rules apply).
        cpu: bool,
    },
}

/// `GetResourceReplicas` (CPU utilization) and `calcPlainMetricReplicas` (Pods metrics and CPU
/// `AverageValue`): the replicas one per-pod metric proposes for `current` replicas.
pub fn pod_metric_replicas(
    current: u32,
    pods: &[PodObservation],
    value: impl Fn(&PodObservation) -> Option<f64>,
    target: PodTarget,
    s: &CalculatorSettings,
) -> Result<u32, MetricError> {
    pod_metric_detail(current, pods, value, target, s).map(|d| d.replicas)
}

/// Why the calculator kept `current` although the ratio asked for a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kept {
    /// The ratio was within the tolerances.
    Tolerance,
    /// Counting the pods set aside would reverse the direction of the change.
    Reversal,
}

/// A per-pod metric's proposal with what led to it, for "why" records.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetricDetail {
    /// The proposal.
    pub replicas: u32,
    /// Usage over target of the ready pods.
    pub ratio: f64,
    /// The count the ratio asks for before tolerance (`ceil(ratio × ready pods)`).
    pub untolerated: u32,
    /// The ready pods' average (per-pod value, or utilization as a fraction of the request).
    pub average: f64,
    /// Why `current` was kept, when it was although the ratio asked otherwise.
    pub kept: Option<Kept>,
    /// How the pods were grouped.
    pub grouping: Grouping,
}

/// [`pod_metric_replicas`] with the ratio, the grouping and the rule that kept the count.
pub fn pod_metric_detail(
    current: u32,
    pods: &[PodObservation],
    value: impl Fn(&PodObservation) -> Option<f64>,
    target: PodTarget,
    s: &CalculatorSettings,
) -> Result<PodMetricDetail, MetricError> {
    if pods.is_empty() {
        return Err(MetricError::NoPods);
    }
    let cpu = match target {
        PodTarget::Utilization { .. } => true,
        PodTarget::AverageValue { cpu, .. } => cpu,
    };
    let g = group_pods(pods, &value, cpu, s);
    if g.ready.is_empty() {
        return Err(MetricError::NoMetrics);
    }
    // (usage, request) in milli-units per pod that enters the ratio.
    let request_of = |i: usize| milli(pods[i].request);
    let utilization = matches!(target, PodTarget::Utilization { .. });
    if utilization && pods.iter().any(|p| p.request <= 0.0) {
        return Err(MetricError::MissingRequest);
    }
    let usage_of = |i: usize| {
        let v = value(&pods[i]).unwrap_or(0.0);
        if utilization {
            milli(v * pods[i].request)
        } else {
            milli(v)
        }
    };
    let mut metrics: Vec<(i64, i64)> = g
        .ready
        .iter()
        .map(|&i| (usage_of(i), request_of(i)))
        .collect();
    let ratio_of = |m: &[(i64, i64)]| -> f64 {
        match target {
            PodTarget::Utilization { percent } => {
                let usage: i64 = m.iter().map(|x| x.0).sum();
                let requests: i64 = m.iter().map(|x| x.1).sum();
                let current_utilization = if requests == 0 {
                    0
                } else {
                    usage * 100 / requests
                };
                current_utilization as f64 / percent as f64
            }
            PodTarget::AverageValue { target, .. } => {
                let usage: i64 = m.iter().map(|x| x.0).sum();
                let average = usage / m.len() as i64;
                average as f64 / milli(target) as f64
            }
        }
    };
    let ratio = ratio_of(&metrics);
    let untolerated = (ratio * g.ready.len() as f64).ceil() as u32;
    let average = match target {
        PodTarget::Utilization { percent } => ratio * percent as f64 / 100.0,
        PodTarget::AverageValue { target, .. } => ratio * target,
    };
    let detail = |replicas: u32, kept: Option<Kept>, grouping: &Grouping| PodMetricDetail {
        replicas,
        ratio,
        untolerated,
        average,
        kept: kept.filter(|_| untolerated != current),
        grouping: grouping.clone(),
    };
    let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if s.tolerances.is_within(ratio) {
            return Ok(detail(current, Some(Kept::Tolerance), &g));
        }
        return Ok(detail(untolerated, None, &g));
    }
    if !g.missing.is_empty() {
        let fill_up = if utilization || s.missing_pods_only_above_one {
            ratio > 1.0
        } else {
            ratio >= 1.0
        };
        if ratio < 1.0 {
            for &i in &g.missing {
                let assumed = match target {
                    // 100 % of the request, or the target if it is above 100 %.
                    PodTarget::Utilization { percent } => request_of(i) * percent.max(100) / 100,
                    PodTarget::AverageValue { target, .. } => milli(target),
                };
                metrics.push((assumed, request_of(i)));
            }
        } else if fill_up {
            for &i in &g.missing {
                metrics.push((0, request_of(i)));
            }
        }
    }
    if scale_up_with_unready {
        for &i in &g.unready {
            metrics.push((0, request_of(i)));
        }
    }
    let new_ratio = ratio_of(&metrics);
    if s.tolerances.is_within(new_ratio) {
        return Ok(detail(current, Some(Kept::Tolerance), &g));
    }
    if (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(detail(current, Some(Kept::Reversal), &g));
    }
    let new = (new_ratio * metrics.len() as f64).ceil() as u32;
    if (new_ratio < 1.0 && new > current) || (new_ratio > 1.0 && new < current) {
        return Ok(detail(current, Some(Kept::Reversal), &g));
    }
    Ok(detail(new, None, &g))
}

/// `getUsageRatioReplicaCount` (Object and External metrics with a `Value` target): within
/// tolerance keep `current`, else `ceil(ratio × ready pods)`; at zero replicas `ceil(ratio)`,
/// which is how an HPA with `minReplicas: 0` scales to and from zero.
pub fn value_replicas(
    current: u32,
    ready_pods: u32,
    usage: f64,
    target: f64,
    t: Tolerances,
) -> u32 {
    let ratio = milli(usage) as f64 / milli(target) as f64;
    if current == 0 {
        return ratio.ceil().max(0.0) as u32;
    }
    if t.is_within(ratio) {
        return current;
    }
    (ratio * f64::from(ready_pods))
        .ceil()
        .min(f64::from(i32::MAX)) as u32
}

/// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas` (`AverageValue`
/// target): within tolerance of `status_replicas × target` keep them, else
/// `ceil(total / target)`.
pub fn average_value_replicas(status_replicas: u32, total: f64, target: f64, t: Tolerances) -> u32 {
    let (usage, target) = (milli(total) as f64, milli(target) as f64);
    let ratio = usage / (target * f64::from(status_replicas));
    if t.is_within(ratio) {
        return status_replicas;
    }
    (usage / target).ceil().min(f64::from(i32::MAX)).max(0.0) as u32
}
