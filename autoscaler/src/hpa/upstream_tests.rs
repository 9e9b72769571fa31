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

use std::time::Duration;

use super::calculator::{self, CalculatorSettings, MetricError, PodTarget, Tolerances};
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
