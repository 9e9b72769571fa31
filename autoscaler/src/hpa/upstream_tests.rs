//! Upstream's own tests, translated case by case with their names and expected numbers:
//! `pkg/controller/podautoscaler/replica_calculator_test.go` (the version whose harness has
//! `podDeletionTimestamp` and ContainerResource cases) and the behavior, stabilization and
//! rate-limit tests of `horizontal_test.go` at kubernetes/kubernetes@003e86297d18. Cases left
//! out are listed in the README with the reason.
//!
//! Harness conventions, as upstream's fake clients set them: a pod without a start time or a
//! Ready transition time has the zero time (here: started and transitioned `LONG` ago); the
//! metric timestamp is the zero time (here `LONG` ago) with a 1-minute window; the testing
//! CPU initialization period is 2 min and the readiness delay 10 s
//! (`defaultTestingCPUInitializationPeriod`, `defaultTestingDelayOfInitialReadinessStatus`);
//! a "hot" pod started inside that period, a "cool" one before it. Resource levels are the same
//! in both containers of a pod, so a pod's utilization is one container's.

use std::collections::VecDeque;
use std::time::Duration;

use super::behavior::{self, Limit, PeriodStart, ScaleEvent, TimedRecommendation};
use super::calculator::{self, CalculatorSettings, MetricError, PodTarget, Tolerances};
use super::*;
use crate::{PodObservation, PodPhase};

const LONG: Duration = Duration::from_secs(1_000_000);
const HOT: Duration = Duration::from_secs(60);
const COOL: Duration = Duration::from_secs(600);

fn settings() -> CalculatorSettings {
    CalculatorSettings {
        tolerances: Tolerances::both(0.1),
        cpu_initialization_period: Duration::from_secs(120),
        initial_readiness_delay: Duration::from_secs(10),
        missing_pods_only_above_one: true,
    }
}

/// A pod as upstream's fake pod lister builds it.
#[derive(Clone, Copy)]
struct P {
    ready: bool,
    phase: PodPhase,
    deleting: bool,
    start: Duration,
    request: f64,
}

const R: P = P {
    ready: true,
    phase: PodPhase::Running,
    deleting: false,
    start: LONG,
    request: 1.0,
};

impl P {
    fn unready(self) -> P {
        P {
            ready: false,
            ..self
        }
    }
    fn phase(self, phase: PodPhase) -> P {
        P { phase, ..self }
    }
    fn deleting(self) -> P {
        P {
            deleting: true,
            ..self
        }
    }
    fn started(self, start: Duration) -> P {
        P { start, ..self }
    }
    fn request(self, request: f64) -> P {
        P { request, ..self }
    }
}

/// Pods with per-pod levels in milli-units (CPU: millicores of usage), the first
/// `levels.len()` pods having a metric.
fn pods(specs: &[P], levels: &[i64], cpu: bool) -> Vec<PodObservation> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| PodObservation {
            ready: p.ready,
            value: levels.get(i).map(|&l| {
                let v = l as f64 / 1000.0;
                if cpu {
                    v / p.request
                } else {
                    v
                }
            }),
            age: p.start,
            request: p.request,
            phase: p.phase,
            terminating: p.deleting,
            ready_since: Some(LONG),
            metric_age: LONG,
            metric_window: Duration::from_secs(60),
            ..PodObservation::default()
        })
        .collect()
}

fn n(count: usize) -> Vec<P> {
    vec![R; count]
}

/// GetResourceReplicas with a CPU utilization target in percent.
fn cpu(current: u32, specs: &[P], levels: &[i64], percent: i64) -> Result<u32, MetricError> {
    calculator::pod_metric_replicas(
        current,
        &pods(specs, levels, true),
        |p| p.value,
        PodTarget::Utilization { percent },
        &settings(),
    )
}

/// GetMetricReplicas (Pods metric) with a target in milli-units.
fn plain(current: u32, specs: &[P], levels: &[i64], target: i64) -> Result<u32, MetricError> {
    calculator::pod_metric_replicas(
        current,
        &pods(specs, levels, false),
        |p| p.value,
        PodTarget::AverageValue {
            target: target as f64 / 1000.0,
            cpu: false,
        },
        &settings(),
    )
}

/// GetObjectMetricReplicas / GetExternalMetricReplicas (`Value`): ready pods from the list.
fn value(current: u32, specs: &[P], level: i64, target: i64) -> u32 {
    let ready = specs
        .iter()
        .filter(|p| p.ready && p.phase == PodPhase::Running)
        .count() as u32;
    calculator::value_replicas(
        current,
        ready,
        level as f64 / 1000.0,
        target as f64 / 1000.0,
        Tolerances::both(0.1),
    )
}

/// GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas (`AverageValue`).
fn per_pod(status: u32, level: i64, target: i64) -> u32 {
    calculator::average_value_replicas(
        status,
        level as f64 / 1000.0,
        target as f64 / 1000.0,
        Tolerances::both(0.1),
    )
}

#[test]
fn replica_calc_scale_up() {
    // TestReplicaCalcScaleUp
    assert_eq!(cpu(3, &n(3), &[300, 500, 700], 30), Ok(5));
    // TestReplicaCalcContainerScaleUp (container2 levels 300, 500, 700)
    assert_eq!(cpu(3, &n(3), &[300, 500, 700], 30), Ok(5));
    // TestReplicaCalcScaleUpUnreadyLessScale
    assert_eq!(cpu(3, &[R.unready(), R, R], &[300, 500, 700], 30), Ok(4));
    // TestReplicaCalcScaleUpContainerHotCpuLessScale
    let hot = [R.started(HOT), R.started(COOL), R.started(COOL)];
    assert_eq!(cpu(3, &hot, &[300, 500, 700], 30), Ok(4));
    // TestReplicaCalcScaleUpHotCpuLessScale
    assert_eq!(cpu(3, &hot, &[300, 500, 700], 30), Ok(4));
    // TestReplicaCalcScaleUpUnreadyNoScale
    assert_eq!(
        cpu(3, &[R, R.unready(), R.unready()], &[400, 500, 700], 30),
        Ok(3)
    );
    // TestReplicaCalcScaleHotCpuNoScale
    let specs = [
        R.started(COOL),
        R.unready().started(HOT),
        R.unready().started(HOT),
    ];
    assert_eq!(cpu(3, &specs, &[400, 500, 700], 30), Ok(3));
}

#[test]
fn replica_calc_scale_up_ignores_failed_and_deleted_pods() {
    let failed = [
        R,
        R,
        R.unready().phase(PodPhase::Failed),
        R.unready().phase(PodPhase::Failed),
    ];
    // TestReplicaCalcScaleUpIgnoresFailedPods
    assert_eq!(cpu(2, &failed, &[500, 700], 30), Ok(4));
    // TestReplicaCalcMissingContainerMetricScaleUpIgnoresFailedPods (container2 of the
    // failed pods has no metric)
    assert_eq!(cpu(2, &failed, &[500, 700], 30), Ok(4));
    // TestReplicaCalcScaleUpContainerIgnoresFailedPods
    assert_eq!(cpu(2, &failed, &[500, 700], 30), Ok(4));
    let deleted = [R, R, R.unready().deleting(), R.unready().deleting()];
    // TestReplicaCalcScaleUpIgnoresDeletionPods
    assert_eq!(cpu(2, &deleted, &[500, 700], 30), Ok(4));
    // TestReplicaCalcScaleUpContainerIgnoresDeletionPods
    assert_eq!(cpu(2, &deleted, &[500, 700], 30), Ok(4));
}

#[test]
fn replica_calc_custom_metrics_scale_up() {
    // TestReplicaCalcScaleUpCM
    assert_eq!(plain(3, &n(3), &[20000, 10000, 30000], 15000), Ok(4));
    // TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness is for CPU only.
    let specs = [R.started(COOL), R.started(COOL), R.unready().started(HOT)];
    assert_eq!(plain(3, &specs, &[50000, 10000, 30000], 15000), Ok(6));
    // TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown
    let specs = [
        R.unready().started(HOT),
        R.started(COOL),
        R.unready().started(HOT),
    ];
    assert_eq!(plain(3, &specs, &[50000, 15000, 30000], 15000), Ok(7));
    // TestReplicaCalcScaleUpCMObject
    assert_eq!(value(3, &n(3), 20000, 15000), 4);
    // TestReplicaCalcScaleUpCMPerPodObject
    assert_eq!(per_pod(3, 20000, 5000), 4);
    // TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods
    assert_eq!(value(3, &[R.unready(), R, R.unready()], 50000, 10000), 5);
    // TestReplicaCalcScaleUpCMExternal (a Pods metric in the harness)
    assert_eq!(plain(1, &n(1), &[8600], 4400), Ok(2));
    // TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods
    assert_eq!(value(3, &[R.unready(), R, R.unready()], 8600, 4400), 2);
    // TestReplicaCalcScaleUpCMExternalNoLabels
    assert_eq!(plain(1, &n(1), &[8600], 4400), Ok(2));
    // TestReplicaCalcScaleUpPerPodCMExternal
    assert_eq!(per_pod(3, 8600, 2150), 4);
}

#[test]
fn replica_calc_scale_down() {
    let levels = [100, 300, 500, 250, 250];
    // TestReplicaCalcScaleDown
    assert_eq!(cpu(5, &n(5), &levels, 50), Ok(3));
    // TestReplicaCalcContainerScaleDown
    assert_eq!(cpu(5, &n(5), &levels, 50), Ok(3));
    // TestReplicaCalcScaleDownCM
    assert_eq!(plain(5, &n(5), &[12000; 5], 20000), Ok(3));
    // TestReplicaCalcScaleDownPerPodCMObject
    assert_eq!(per_pod(5, 6000, 2000), 3);
    // TestReplicaCalcScaleDownCMObject
    assert_eq!(value(5, &n(5), 12000, 20000), 3);
    // TestReplicaCalcScaleDownCMExternal
    assert_eq!(value(5, &n(5), 8600, 14334), 3);
    // TestReplicaCalcScaleDownPerPodCMExternal
    assert_eq!(per_pod(5, 8600, 2867), 3);
    let unready = [R, R, R, R.unready(), R.unready()];
    // TestReplicaCalcScaleDownExcludeUnreadyPods
    assert_eq!(cpu(5, &unready, &levels, 50), Ok(2));
    // TestReplicaCalcScaleDownContainerExcludeUnreadyPods
    assert_eq!(cpu(5, &unready, &levels, 50), Ok(2));
    let pending = [R.unready().phase(PodPhase::Pending); 4];
    let specs: Vec<P> = std::iter::once(R).chain(pending).collect();
    // TestReplicaCalcScaleDownExcludeUnscheduledPods
    assert_eq!(cpu(5, &specs, &[100], 50), Ok(1));
    // TestReplicaCalcScaleDownContainerExcludeUnscheduledPods (pending pods report levels)
    assert_eq!(cpu(5, &specs, &levels, 50), Ok(1));
    let hot = [
        R.started(COOL),
        R.started(COOL),
        R.started(COOL),
        R.started(HOT),
        R.started(HOT),
    ];
    // TestReplicaCalcScaleDownIgnoreHotCpuPods
    assert_eq!(cpu(5, &hot, &levels, 50), Ok(2));
    // TestReplicaCalcScaleDownContainerIgnoreHotCpuPods
    assert_eq!(cpu(5, &hot, &[100, 300, 500, 1000, 1000], 50), Ok(2));
    let failed: Vec<P> = n(5)
        .into_iter()
        .chain([R.unready().phase(PodPhase::Failed); 2])
        .collect();
    // TestReplicaCalcScaleDownIgnoresFailedPods
    assert_eq!(cpu(5, &failed, &levels, 50), Ok(3));
    // TestReplicaCalcScaleDownContainerIgnoresFailedPods
    assert_eq!(cpu(5, &failed, &levels, 50), Ok(3));
    let deleting: Vec<P> = n(5)
        .into_iter()
        .chain([R.unready().deleting(); 2])
        .collect();
    // TestReplicaCalcScaleDownIgnoresDeletionPods
    assert_eq!(cpu(5, &deleting, &levels, 50), Ok(3));
    // TestReplicaCalcScaleDownIgnoresDeletionPods_StillRunning
    assert_eq!(cpu(5, &deleting, &levels, 50), Ok(3));
}

#[test]
fn replica_calc_tolerance() {
    // TestReplicaCalcTolerance: requests 0.9, 1.0, 1.1.
    let specs = [R.request(0.9), R.request(1.0), R.request(1.1)];
    assert_eq!(cpu(3, &specs, &[1010, 1030, 1020], 100), Ok(3));
    // TestReplicaCalcToleranceCM
    assert_eq!(plain(3, &n(3), &[20000, 21000, 21000], 20000), Ok(3));
    // TestReplicaCalcToleranceCMObject
    assert_eq!(value(3, &n(3), 20666, 20000), 3);
    // TestReplicaCalcTolerancePerPodCMObject
    assert_eq!(per_pod(4, 20166, 5000), 4);
    // TestReplicaCalcToleranceCMExternal
    assert_eq!(value(3, &n(3), 8600, 8888), 3);
    // TestReplicaCalcTolerancePerPodCMExternal
    assert_eq!(per_pod(3, 8600, 2900), 3);
}

#[test]
fn replica_calc_missing_and_empty_metrics() {
    // TestReplicaCalcSuperfluousMetrics (the metrics of pods that do not exist are dropped)
    assert_eq!(cpu(4, &n(4), &[4000, 9500, 3000, 7000], 100), Ok(24));
    // TestReplicaCalcMissingMetrics
    assert_eq!(cpu(4, &n(4), &[400, 95], 100), Ok(3));
    // TestReplicaCalcEmptyMetrics
    assert_eq!(cpu(4, &n(3), &[], 100), Err(MetricError::NoMetrics));
    // TestReplicaCalcEmptyCPURequest
    assert_eq!(
        cpu(1, &[R.request(0.0)], &[200], 100),
        Err(MetricError::MissingRequest)
    );
    // TestPlainMetricReplicaCalcMissingMetricsNoChangeEq
    assert_eq!(plain(5, &n(5), &[20000, 19000, 21000], 20000), Ok(5));
    // TestReplicaCalcMissingMetricsNoChangeEq
    assert_eq!(cpu(2, &n(2), &[1000], 100), Ok(2));
    // TestReplicaCalcMissingMetricsNoChangeGt
    assert_eq!(cpu(2, &n(2), &[1900], 100), Ok(2));
    // TestReplicaCalcMissingMetricsNoChangeLt
    assert_eq!(cpu(2, &n(2), &[600], 100), Ok(2));
    // TestReplicaCalcMissingMetricsUnreadyChange
    assert_eq!(cpu(3, &[R.unready(), R, R], &[100, 450], 50), Ok(3));
    // TestReplicaCalcMissingMetricsHotCpuNoChange
    let hot = [R.started(HOT), R.started(COOL), R.started(COOL)];
    assert_eq!(cpu(3, &hot, &[100, 450], 50), Ok(3));
    // TestReplicaCalcMissingMetricsUnreadyScaleUp
    assert_eq!(cpu(3, &[R.unready(), R, R], &[100, 2000], 50), Ok(4));
    // TestReplicaCalcMissingMetricsHotCpuScaleUp
    let specs = [R.unready().started(HOT), R.started(COOL), R.started(COOL)];
    assert_eq!(cpu(3, &specs, &[100, 2000], 50), Ok(4));
    // TestReplicaCalcMissingMetricsUnreadyScaleDown
    assert_eq!(cpu(4, &[R.unready(), R, R, R], &[100, 100, 100], 50), Ok(3));
    // TestReplicaCalcMissingMetricsScaleDownTargetOver100
    let specs = [
        R.unready().request(1.0),
        R.request(1.0),
        R.request(2.0),
        R.request(2.0),
    ];
    assert_eq!(cpu(4, &specs, &[200, 100, 100], 300), Ok(2));
    // TestReplicaCalcDuringRollingUpdateWithMaxSurge
    assert_eq!(cpu(2, &n(3), &[100, 100], 50), Ok(2));
    // TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM
    assert_eq!(plain(2, &n(3), &[10000, 10000], 17000), Ok(2));
}

#[test]
fn missing_pods_metric_at_ratio_one_before_1_28() {
    // TestPlainMetricReplicaCalcMissingMetricsNoChangeEq under the pre-1.28 rule: the two
    // missing pods count as 0 at a ratio of exactly 1, and the HPA scales down to 3.
    let s = CalculatorSettings {
        missing_pods_only_above_one: false,
        ..settings()
    };
    let r = calculator::pod_metric_replicas(
        5,
        &pods(&n(5), &[20000, 19000, 21000], false),
        |p| p.value,
        PodTarget::AverageValue {
            target: 20.0,
            cpu: false,
        },
        &s,
    );
    assert_eq!(r, Ok(3));
}

#[test]
fn replica_calc_computed_tolerance_alg_implementation() {
    // TestReplicaCalcComputedToleranceAlgImplementation, computed as upstream does.
    let start_pods: i64 = 10;
    let total_used = start_pods * 150;
    let total_requested = 2 * total_used;
    let requested_to_used = (total_requested / total_used) as f64;
    let per_pod_requested = total_requested / start_pods;
    let target = (1.0 / (requested_to_used * (1.0 - 0.1))).abs() + 0.01;
    let final_percent = (target * 100.0) as i64;
    let used_ratio = total_used as f64 / (total_requested as f64 * target);
    let final_pods = (used_ratio * start_pods as f64).ceil() as u32;
    let offsets = [100, -100, 10, -10, 2, -2, 1, -1, 0, 0];
    let specs: Vec<P> = offsets
        .iter()
        .map(|o| R.request((per_pod_requested + o) as f64 / 1000.0))
        .collect();
    let levels = vec![total_used / 10; 10];
    assert_eq!(cpu(10, &specs, &levels, final_percent), Ok(final_pods));
    let target = (1.0 / (requested_to_used * (1.0 - 0.1))).abs() + 0.004;
    assert_eq!(cpu(10, &specs, &levels, (target * 100.0) as i64), Ok(10));
}

#[test]
fn group_pods_cases() {
    // TestGroupPods, with ages in place of timestamps (now − time).
    let s = settings();
    let pod = |ready: bool,
               age: Duration,
               since: Option<Duration>,
               metric_age: Duration,
               window: Duration| {
        PodObservation {
            ready,
            value: Some(1.0),
            age,
            ready_since: since,
            metric_age,
            metric_window: window,
            ..PodObservation::default()
        }
    };
    let group = |p: &[PodObservation], cpu: bool| {
        let g = calculator::group_pods(p, |x| x.value, cpu, &s);
        (g.ready.len(), g.unready, g.missing, g.ignored)
    };
    let min = |m: u64| Duration::from_secs(60 * m);
    let sec = Duration::from_secs;
    // "void"
    assert_eq!(group(&[], true), (0, vec![], vec![], vec![]));
    // "count in a ready pod - memory"
    assert_eq!(
        group(&[pod(false, LONG, None, sec(0), min(1))], false),
        (1, vec![], vec![], vec![])
    );
    // "unready a pod without ready condition - CPU"
    assert_eq!(
        group(&[pod(false, sec(0), None, LONG, sec(0))], true),
        (0, vec![0], vec![], vec![])
    );
    // "count in a ready pod with fresh metrics during initialization period - CPU"
    assert_eq!(
        group(&[pod(true, min(1), Some(sec(30)), sec(0), sec(30))], true),
        (1, vec![], vec![], vec![])
    );
    // "unready a ready pod without fresh metrics during initialization period - CPU"
    assert_eq!(
        group(&[pod(true, min(1), Some(sec(30)), sec(0), sec(60))], true),
        (0, vec![0], vec![], vec![])
    );
    // "unready an unready pod during initialization period - CPU"
    assert_eq!(
        group(
            &[pod(false, min(10), Some(sec(9 * 60 + 54)), LONG, sec(0))],
            true
        ),
        (0, vec![0], vec![], vec![])
    );
    // "count in a ready pod without fresh metrics after initialization period - CPU"
    assert_eq!(
        group(&[pod(true, min(3), Some(min(3)), min(2), min(1))], true),
        (1, vec![], vec![], vec![])
    );
    // "count in an unready pod that was ready after initialization period - CPU"
    assert_eq!(
        group(&[pod(false, min(10), Some(min(9)), LONG, sec(0))], true),
        (1, vec![], vec![], vec![])
    );
    // "unready pod that has never been ready after initialization period - CPU"
    assert_eq!(
        group(
            &[pod(false, min(10), Some(sec(9 * 60 + 50)), LONG, sec(0))],
            true
        ),
        (1, vec![], vec![], vec![])
    );
    // "a missing pod"
    let mut missing = pod(false, min(3), None, sec(0), sec(0));
    missing.value = None;
    assert_eq!(
        group(&[missing.clone()], true),
        (0, vec![], vec![0], vec![])
    );
    // "several pods"
    let several = [
        pod(false, sec(0), None, LONG, sec(0)),
        pod(true, min(3), Some(min(3)), LONG, sec(0)),
        missing,
    ];
    assert_eq!(group(&several, true), (1, vec![0], vec![2], vec![]));
    // "pending pods are unreadied"
    let mut pending = pod(false, sec(0), None, sec(0), sec(0));
    pending.phase = PodPhase::Pending;
    pending.value = None;
    assert_eq!(
        group(&[pending.clone()], true),
        (0, vec![0], vec![], vec![])
    );
    // "ignore pods with deletion timestamps"
    let mut deleted = pending;
    deleted.terminating = true;
    deleted.value = Some(1.0);
    assert_eq!(group(&[deleted], true), (0, vec![], vec![], vec![0]));
    // "ignore pods in a failed state"
    let mut failed = pod(false, sec(0), None, sec(0), sec(0));
    failed.phase = PodPhase::Failed;
    assert_eq!(group(&[failed], true), (0, vec![], vec![], vec![0]));
}

// ---- horizontal_test.go ----

const NOW: Duration = Duration::from_secs(100_000);

fn ago(s: u64) -> Duration {
    NOW - Duration::from_secs(s)
}

/// `generateScalingRules(pods, podsPeriod, percent, percentPeriod, stabilizationWindow)`.
fn rules(
    pods: u32,
    pods_period: u64,
    percent: u32,
    percent_period: u64,
    window: u64,
) -> ScalingRules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(RatePolicy::Pods {
            value: pods,
            period: Duration::from_secs(pods_period),
        });
    }
    if percent != 0 {
        policies.push(RatePolicy::Percent {
            value: percent,
            period: Duration::from_secs(percent_period),
        });
    }
    ScalingRules {
        stabilization_window: Duration::from_secs(window),
        select_policy: SelectPolicy::Max,
        policies,
        tolerance: None,
    }
}

/// `generateEventsUniformDistribution(rawEvents, periodSeconds)`: each event in the middle of
/// its segment of the last `period` seconds (whole seconds, as `time.Duration(float)` cuts).
fn uniform(raw: &[u32], period: u64) -> VecDeque<ScaleEvent> {
    let segment = period as f64 / raw.len() as f64;
    raw.iter()
        .enumerate()
        .map(|(i, &change)| {
            let boundary = (period as f64 - segment * (i + 1) as f64 + segment / 2.0) as u64;
            ScaleEvent {
                at: ago(boundary),
                change,
            }
        })
        .collect()
}

#[test]
fn normalize_desired_replicas() {
    // TestNormalizeDesiredReplicas (5-minute downscale stabilization)
    type Case = (&'static str, &'static [(u32, u64)], u32, u32);
    let cases: [Case; 5] = [
        ("empty log", &[], 5, 5),
        ("stabilize", &[(4, 120), (5, 60)], 3, 5),
        ("no stabilize", &[(1, 120), (2, 60)], 3, 3),
        (
            "no stabilize - old recommendations",
            &[(10, 600), (9, 540)],
            3,
            3,
        ),
        (
            "stabilize - old recommendations",
            &[(10, 600), (4, 60), (5, 120), (9, 540)],
            3,
            5,
        ),
    ];
    for (name, log, desired, expected) in cases {
        let mut log: VecDeque<TimedRecommendation> = log
            .iter()
            .map(|&(replicas, s)| TimedRecommendation {
                at: ago(s),
                replicas,
            })
            .collect();
        let got = behavior::stabilize(&mut log, NOW, desired, Duration::from_secs(300));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn normalize_desired_replicas_with_behavior() {
    // TestNormalizeDesiredReplicasWithBehavior: (name, log, current, desired, expected, up, down)
    type Case = (&'static str, &'static [(u32, u64)], u32, u32, u32, u64, u64);
    let cases: [Case; 11] = [
        (
            "empty recommendations for scaling down",
            &[],
            100,
            5,
            5,
            0,
            0,
        ),
        (
            "simple scale down stabilization",
            &[(4, 120), (5, 60)],
            100,
            3,
            5,
            0,
            180,
        ),
        (
            "simple scale up stabilization",
            &[(4, 120), (5, 60)],
            1,
            7,
            4,
            300,
            0,
        ),
        (
            "no scale down stabilization",
            &[(1, 120), (2, 60)],
            100,
            3,
            3,
            300,
            0,
        ),
        (
            "no scale up stabilization",
            &[(4, 120), (5, 60)],
            1,
            3,
            3,
            0,
            300,
        ),
        (
            "no scale down stabilization, reuse recommendation element",
            &[(10, 600), (9, 540)],
            100,
            3,
            3,
            0,
            0,
        ),
        (
            "no scale up stabilization, reuse recommendation element",
            &[(10, 600), (9, 540)],
            1,
            100,
            100,
            0,
            0,
        ),
        (
            "scale down stabilization, reuse one of obsolete recommendation element",
            &[(10, 600), (4, 60), (5, 120), (9, 540)],
            100,
            3,
            5,
            0,
            180,
        ),
        (
            "scale up stabilization, reuse one of obsolete recommendation element",
            &[(10, 6000), (6, 60), (5, 120), (9, 180)],
            1,
            100,
            5,
            300,
            0,
        ),
        (
            "scale up and down stabilization, do not scale up when prenormalized rec goes down",
            &[(2, 6000), (3, 180)],
            2,
            1,
            2,
            300,
            300,
        ),
        (
            "scale up and down stabilization, do not scale down when prenormalized rec goes up",
            &[(2, 6000), (1, 180)],
            2,
            3,
            2,
            300,
            300,
        ),
    ];
    for (name, log, current, desired, expected, up, down) in cases {
        let mut log: VecDeque<TimedRecommendation> = log
            .iter()
            .map(|&(replicas, s)| TimedRecommendation {
                at: ago(s),
                replicas,
            })
            .collect();
        let got = behavior::stabilize_with_behavior(
            &mut log,
            NOW,
            current,
            desired,
            Duration::from_secs(up),
            Duration::from_secs(down),
        );
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn convert_desired_replicas_with_rules() {
    // TestConvertDesiredReplicasWithRules: (current, desired, min, max, expected, condition)
    let cases = [
        (5, 7, 3, 8, 7, Limit::DesiredWithinRange),
        (3, 1, 2, 8, 2, Limit::TooFewReplicas),
        (1, 0, 0, 10, 0, Limit::DesiredWithinRange),
        (20, 1000, 1, 10, 10, Limit::TooManyReplicas),
        (3, 1000, 1, 2000, 6, Limit::ScaleUpLimit), // calculateScaleUpLimit(3)
    ];
    for (current, desired, min, max, expected, limit) in cases {
        assert_eq!(
            behavior::convert_with_rules(current, desired, min, max),
            (expected, limit),
            "{current} → {desired}"
        );
    }
}

#[test]
fn calculate_scale_limits_with_min_select_policy() {
    let mut r = rules(2, 60, 50, 60, 300);
    r.select_policy = SelectPolicy::Min;
    let none = VecDeque::new();
    // TestCalculateScaleUpLimitWithScalingRules
    assert_eq!(
        behavior::scale_up_limit(1, &none, &none, &r, NOW, PeriodStart::BothDirections),
        2
    );
    // TestCalculateScaleDownLimitWithBehaviors
    assert_eq!(
        behavior::scale_down_limit(5, &none, &none, &r, NOW, PeriodStart::BothDirections),
        3
    );
}

#[test]
fn scaling_with_rules() {
    // TestScalingWithRules: convertDesiredReplicasWithBehaviorRate. `None` rules take the
    // defaults (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules).
    struct Case {
        name: &'static str,
        up_events: VecDeque<ScaleEvent>,
        down_events: VecDeque<ScaleEvent>,
        min: u32,
        max: u32,
        up: Option<ScalingRules>,
        down: Option<ScalingRules>,
        current: u32,
        desired: u32,
        expected: u32,
        limit: Limit,
    }
    let none = VecDeque::new;
    let c = |name, min, max, up, down, current, desired, expected, limit| Case {
        name,
        up_events: none(),
        down_events: none(),
        min,
        max,
        up,
        down,
        current,
        desired,
        expected,
        limit,
    };
    use Limit::*;
    let mut cases = vec![
        c("prenormalized desired replicas within range", 3, 8, None, None, 5, 7, 7, DesiredWithinRange),
        c("prenormalized desired replicas < minReplicas", 2, 8, None, None, 3, 1, 2, TooFewReplicas),
        c("prenormalized desired replicas within range when minReplicas is 0", 0, 10, None, None, 1, 0, 0, DesiredWithinRange),
        c("maxReplicas is the limit because maxReplicas < scaleUpLimit", 1, 10, None, None, 20, 1000, 10, TooManyReplicas),
        c("desired replica count is more than the maximum replica count", 100, 150, None, None, 100, 1000, 150, TooManyReplicas),
        c("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", 1, 2000, Some(rules(0, 0, 1, 60, 0)), None, 3, 1000, 4, ScaleUpLimit),
        // Skipped upstream (testThis), consistent with the rules.
        c("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", 3, 2000, None, Some(rules(20, 60, 0, 0, 0)), 1000, 3, 980, ScaleDownLimit),
        c("scaleUp with default behavior", 1, 1000, None, None, 10, 50, 20, ScaleUpLimit),
        c("scaleUp with pods policy larger than percent policy", 1, 1000, Some(rules(100, 60, 100, 60, 0)), None, 10, 500, 110, ScaleUpLimit),
        c("scaleUp with percent policy larger than pods policy", 1, 1000, Some(rules(2, 60, 100, 60, 0)), None, 10, 500, 20, ScaleUpLimit),
        c("scaleUp with spec MaxReplicas limitation with large pod policy", 1, 1000, Some(rules(100, 60, 0, 0, 0)), None, 10, 50, 50, DesiredWithinRange),
        c("scaleUp with spec MaxReplicas limitation with large percent policy", 1, 1000, Some(rules(10000, 60, 0, 0, 0)), None, 10, 50, 50, DesiredWithinRange),
        c("scaleUp with pod policy limitation", 1, 1000, Some(rules(30, 60, 0, 0, 0)), None, 10, 50, 40, ScaleUpLimit),
        c("scaleUp with percent policy limitation", 1, 1000, Some(rules(0, 0, 200, 60, 0)), None, 10, 50, 30, ScaleUpLimit),
        c("scaleDown with percent policy larger than pod policy", 1, 1000, None, Some(rules(20, 60, 1, 60, 300)), 100, 2, 80, ScaleDownLimit),
        c("scaleDown with pod policy larger than percent policy", 1, 1000, None, Some(rules(2, 60, 1, 60, 300)), 100, 2, 98, ScaleDownLimit),
        c("scaleDown with spec MinReplicas=nil limitation with large pod policy", 1, 1000, None, Some(rules(100, 60, 0, 0, 300)), 10, 0, 1, TooFewReplicas),
        c("scaleDown with spec MinReplicas limitation with large pod policy", 1, 1000, None, Some(rules(100, 60, 0, 0, 300)), 10, 0, 1, TooFewReplicas),
        c("scaleDown with spec MinReplicas limitation with large percent policy", 5, 1000, None, Some(rules(0, 0, 100, 60, 300)), 10, 2, 5, TooFewReplicas),
        c("scaleDown with pod policy limitation", 1, 1000, None, Some(rules(5, 60, 0, 0, 300)), 10, 2, 5, ScaleDownLimit),
        c("scaleDown with percent policy limitation", 1, 1000, None, Some(rules(0, 0, 50, 60, 300)), 10, 5, 5, DesiredWithinRange),
    ];
    let with = |mut case: Case, up: &[u32], down: &[u32], period: u64| {
        if !up.is_empty() {
            case.up_events = uniform(up, period);
        }
        if !down.is_empty() {
            case.down_events = uniform(down, period);
        }
        case
    };
    let more = vec![
        with(c("scaleUp with spec MaxReplicas limitation with large pod policy and events", 1, 200, Some(rules(300, 60, 0, 0, 0)), None, 100, 500, 200, TooManyReplicas), &[1, 5, 9], &[], 120),
        with(c("scaleUp with spec MaxReplicas limitation with large percent policy and events", 1, 200, Some(rules(0, 0, 10000, 60, 0)), None, 100, 500, 200, TooManyReplicas), &[1, 5, 9], &[], 120),
        with(c("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", 1, 1000, Some(rules(5, 120, 0, 0, 0)), None, 100, 500, 100, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with pod policy and previous scale up events", 1, 1000, Some(rules(150, 120, 0, 0, 0)), None, 100, 500, 235, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with percent policy and previous scale up events", 1, 1000, Some(rules(0, 0, 200, 120, 0)), None, 100, 500, 255, ScaleUpLimit), &[1, 5, 9], &[], 120),
        with(c("scaleUp with percent policy and previous scale up and down events", 1, 1000, Some(rules(0, 0, 300, 300, 0)), None, 6, 24, 16, ScaleUpLimit), &[4], &[2], 120),
        with(c("scaleDown with default policy and previous events", 1, 1000, None, None, 10, 5, 5, DesiredWithinRange), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", 1, 1000, None, Some(rules(115, 120, 0, 0, 300)), 100, 0, 1, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas limitation with large pod policy and previous events", 5, 1000, None, Some(rules(130, 120, 0, 0, 300)), 100, 0, 5, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with spec MinReplicas limitation with large percent policy and previous events", 5, 1000, None, Some(rules(0, 0, 100, 120, 300)), 100, 2, 5, TooFewReplicas), &[], &[1, 5, 9], 120),
        with(c("scaleDown with pod policy limitation and previous events", 1, 1000, None, Some(rules(5, 120, 0, 0, 300)), 100, 2, 100, ScaleDownLimit), &[], &[1, 5, 9], 120),
        with(c("scaleDown with percent policy limitation and previous events", 1, 1000, None, Some(rules(0, 0, 50, 120, 300)), 100, 0, 56, ScaleDownLimit), &[], &[2, 4, 6], 120),
        with(c("scaleDown with percent policy and previous scale up and down events", 1, 1000, None, Some(rules(0, 0, 50, 180, 0)), 10, 1, 6, ScaleDownLimit), &[2], &[4], 120),
        with(c("scaleDown with previous events preventing further scale down", 1, 1000, None, Some(rules(0, 0, 10, 120, 300)), 100, 0, 100, ScaleDownLimit), &[], &[10, 10, 10], 120),
        with(c("scaleDown with with previous events still allowing more scale down", 1, 1000, None, Some(rules(0, 0, 1000, 120, 300)), 10, 5, 5, DesiredWithinRange), &[], &[10, 10, 10], 120),
        with(c("check 'outdated' flag for events for one behavior for up", 1, 1000, Some(rules(1000, 60, 0, 0, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check that events were not marked 'outdated' for two different policies in the behavior for up", 1, 1000, Some(rules(1000, 120, 100, 60, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check that events were marked 'outdated' for two different policies in the behavior for up", 1, 1000, Some(rules(1000, 30, 100, 60, 0)), None, 100, 200, 200, DesiredWithinRange), &[8, 12, 9, 11], &[], 120),
        with(c("check 'outdated' flag for events for one behavior for down", 1, 1000, None, Some(rules(1000, 60, 0, 0, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
        with(c("check that events were not marked 'outdated' for two different policies in the behavior for down", 1, 1000, None, Some(rules(1000, 120, 100, 60, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
        with(c("check that events were marked 'outdated' for two different policies in the behavior for down", 1, 1000, None, Some(rules(1000, 30, 100, 60, 300)), 100, 5, 5, DesiredWithinRange), &[], &[8, 12, 9, 11], 120),
    ];
    cases.extend(more);
    for case in cases {
        let up = case.up.unwrap_or_else(ScalingRules::default_scale_up);
        let down = case.down.unwrap_or_else(ScalingRules::default_scale_down);
        let got = behavior::convert_with_behavior_rate(
            case.current,
            case.desired,
            case.min,
            case.max,
            &up,
            &down,
            &case.up_events,
            &case.down_events,
            NOW,
            PeriodStart::BothDirections,
        );
        assert_eq!(got, (case.expected, case.limit), "{}", case.name);
    }
}

#[test]
fn rate_limits_before_109058_count_one_direction() {
    // "scaleUp with percent policy and previous scale up and down events" under the old rule:
    // the period started at 6 − 4 = 2, so 300 % allows 8 (upstream since v1.26: 16).
    let up = rules(0, 0, 300, 300, 0);
    let got = behavior::convert_with_behavior_rate(
        6,
        24,
        1,
        1000,
        &up,
        &ScalingRules::default_scale_down(),
        &uniform(&[4], 120),
        &uniform(&[2], 120),
        NOW,
        PeriodStart::SameDirection,
    );
    assert_eq!(got, (8, Limit::ScaleUpLimit));
}

#[test]
fn store_scale_events_replica_change() {
    // TestStoreScaleEvents: getReplicasChangePerPeriod(60, previous events).
    let ev = |list: &[(u32, u64)]| -> VecDeque<ScaleEvent> {
        list.iter()
            .map(|&(change, s)| ScaleEvent { at: ago(s), change })
            .collect()
    };
    let p = Duration::from_secs(60);
    assert_eq!(behavior::change_in_period(&ev(&[]), NOW, p), 0);
    assert_eq!(behavior::change_in_period(&ev(&[(7, 61)]), NOW, p), 0);
    assert_eq!(behavior::change_in_period(&ev(&[(7, 58)]), NOW, p), 7);
    assert_eq!(
        behavior::change_in_period(&ev(&[(7, 61), (6, 59)]), NOW, p),
        6
    );
    assert_eq!(
        behavior::change_in_period(&ev(&[(8, 29), (6, 59), (7, 61), (9, 61)]), NOW, p),
        14
    );
    assert_eq!(
        behavior::change_in_period(&ev(&[(7, 58), (6, 59)]), NOW, p),
        13
    );
}

fn controller_pods(levels: &[f64]) -> Vec<PodObservation> {
    levels
        .iter()
        .map(|l| PodObservation {
            ready: true,
            value: Some(l / 1000.0),
            age: COOL,
            ready_since: Some(COOL),
            metric_age: Duration::ZERO,
            metric_window: Duration::from_secs(60),
            ..PodObservation::default()
        })
        .collect()
}

fn two_metric_hpa(min: u32, max: u32, cpu_percent: f64, external_target: f64) -> Hpa {
    let mut cfg = HpaConfig::new(
        HpaMetric::CpuUtilization {
            target: cpu_percent / 100.0,
        },
        ReplicaBounds {
            min_replicas: min,
            max_replicas: max,
        },
    );
    cfg.cpu_initialization_period = Duration::from_secs(120);
    cfg.initial_readiness_delay = Duration::from_secs(10);
    cfg.metrics.push(HpaMetric::ExternalValue {
        target: external_target,
        window: Duration::from_secs(60),
    });
    Hpa::new(cfg)
}

#[test]
fn one_metric_invalid_or_empty() {
    let obs = |current: u32, levels: &[f64]| Observation {
        current_replicas: current,
        ready_replicas: current,
        pods: controller_pods(levels),
        extra_metrics: vec![None],
        ..Observation::default()
    };
    // TestScaleUpOneMetricEmpty: CPU asks for 4, the external metric fails: scale up to 4.
    let mut h = two_metric_hpa(2, 6, 30.0, 0.1);
    assert_eq!(
        h.recommend(NOW, &obs(3, &[300.0, 400.0, 500.0])).replicas,
        4
    );
    // TestNoScaleDownOneMetricInvalid / TestNoScaleDownOneMetricEmpty: CPU asks for less, one
    // metric fails: no scale-down.
    let mut h = two_metric_hpa(2, 6, 50.0, 1.0);
    let o = obs(5, &[100.0, 300.0, 500.0, 250.0, 250.0]);
    assert_eq!(h.recommend(NOW, &o).replicas, 5);
}
