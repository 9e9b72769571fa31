//! Upstream's updater tests, translated with their numbers (kubernetes/autoscaler
//! `vertical-pod-autoscaler/pkg/updater/priority/priority_processor_test.go`,
//! `update_priority_calculator_test.go`, `restriction/pods_eviction_restriction_test.go` at
//! 55c37cd). CPU in cores as upstream writes it ("10" = 10 000 m); memory "10M" = 10⁷ bytes.

use std::time::Duration;

use super::*;

fn cores(c: f64) -> i64 {
    (c * 1000.0).round() as i64
}

fn res(cpu_cores: f64, mem_bytes: i64) -> Resources {
    Resources {
        cpu_millicores: cores(cpu_cores),
        memory_bytes: mem_bytes,
    }
}

/// A recommendation with only a target (bounds unset).
fn target(cpu_cores: f64, mem_bytes: i64) -> Recommendation {
    Recommendation {
        target: res(cpu_cores, mem_bytes),
        lower_bound: res(0.0, 0),
        upper_bound: res(0.0, 0),
    }
}

const M: i64 = 1_000_000;

/// `TestGetUpdatePriority`: each case's pod requests, recommendation and expected priority.
#[test]
fn get_update_priority() {
    let bounded = |t: f64, lo: f64, hi: f64| Recommendation {
        target: res(t, 0),
        lower_bound: res(lo, 0),
        upper_bound: res(hi, 0),
    };
    let cases = [
        (
            "simple scale up",
            res(2.0, 0),
            target(10.0, 0),
            false,
            4.0,
            true,
        ),
        (
            "simple scale down",
            res(4.0, 0),
            target(2.0, 0),
            false,
            0.5,
            false,
        ),
        (
            "no resource diff",
            res(2.0, 0),
            target(2.0, 0),
            false,
            0.0,
            false,
        ),
        (
            "scale up on milliquanitites",
            res(0.010, 0),
            target(0.9, 0),
            false,
            89.0,
            true,
        ),
        (
            "scale up outside recommended range",
            res(4.0, 0),
            bounded(10.0, 6.0, 14.0),
            true,
            1.5,
            true,
        ),
        (
            "scale down outside recommended range",
            res(8.0, 0),
            bounded(2.0, 1.0, 3.0),
            true,
            0.75,
            false,
        ),
        (
            "multiple resources, both scale up",
            res(3.0, 10 * M),
            target(6.0, 20 * M),
            false,
            2.0,
            true,
        ),
        (
            "multiple resources, only one scale up",
            res(4.0, 10 * M),
            target(2.0, 20 * M),
            false,
            1.5,
            true,
        ),
        (
            "multiple resources, both scale down",
            res(4.0, 20 * M),
            target(2.0, 10 * M),
            false,
            1.0,
            false,
        ),
    ];
    for (name, requests, rec, outside, diff, up) in cases {
        let p = PodPriority::of(requests, &rec);
        assert_eq!(p.outside_recommended_range, outside, "{name}");
        assert_eq!(p.scale_up, up, "{name}");
        assert!((p.resource_diff - diff).abs() < 1e-9, "{name}: {p:?}");
    }
    // "multiple resources, one outside recommended range": memory 20M above its upper bound.
    let rec = Recommendation {
        target: res(2.0, 10 * M),
        lower_bound: res(1.0, 5 * M),
        upper_bound: res(3.0, 15 * M),
    };
    let p = PodPriority::of(res(4.0, 20 * M), &rec);
    assert!(p.outside_recommended_range && !p.scale_up, "{p:?}");
    assert!((p.resource_diff - 1.0).abs() < 1e-9, "{p:?}");
}

fn prio(outside: bool, up: bool, diff: f64) -> PodPriority {
    PodPriority {
        outside_recommended_range: outside,
        scale_up: up,
        resource_diff: diff,
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// `TestSortPriority`: by resource diff, largest first.
#[test]
fn sort_priority() {
    let pods = [
        (prio(false, false, 4.0), DAY),
        (prio(false, false, 1.5), DAY),
        (prio(false, false, 9.0), DAY),
        (prio(false, false, 2.33), DAY),
    ];
    assert_eq!(
        pods_to_update(&UpdaterConfig::default(), &pods),
        vec![2, 0, 3, 1]
    );
}

/// `TestSortPriorityResourcesDecrease`: a pod that wants to grow goes before larger decreases.
#[test]
fn sort_priority_resources_decrease() {
    let pods = [
        (prio(false, true, 0.25), DAY),
        (prio(false, false, 0.25), DAY),
        (prio(false, false, 0.5), DAY),
    ];
    assert_eq!(
        pods_to_update(&UpdaterConfig::default(), &pods),
        vec![0, 2, 1]
    );
}

/// `TestUpdateNotRequired`: no change, no update.
#[test]
fn update_not_required() {
    let pods = [(prio(false, false, 0.0), DAY)];
    assert!(pods_to_update(&UpdaterConfig::default(), &pods).is_empty());
}

/// `TestUpdateLonglivedPods`: after 13 h, pods within the range are updated when their change
/// reaches MinChangePriority (0.5 here); a pod outside the range always is.
#[test]
fn update_long_lived_pods() {
    let config = UpdaterConfig {
        min_change_priority: 0.5,
        ..UpdaterConfig::default()
    };
    let age = Duration::from_secs(13 * 3600);
    let pods = [
        (prio(false, true, 0.25), age),
        (prio(false, true, 4.0), age),
        (prio(true, false, 0.25), age),
    ];
    assert_eq!(pods_to_update(&config, &pods), vec![1, 2]);
}

/// `TestUpdateShortlivedPods`: before 12 h only a pod outside the range is updated.
#[test]
fn update_short_lived_pods() {
    let config = UpdaterConfig {
        min_change_priority: 0.5,
        ..UpdaterConfig::default()
    };
    let age = Duration::from_secs(11 * 3600);
    let pods = [
        (prio(false, true, 0.25), age),
        (prio(false, true, 0.0), age),
        (prio(true, false, 0.9), age),
    ];
    assert_eq!(pods_to_update(&config, &pods), vec![2]);
}

/// `TestLessPodPriority`.
#[test]
fn less_pod_priority() {
    let empty = PodPriority::default();
    for (name, p, other, is_less) in [
        (
            "scale down more than empty",
            prio(false, false, 0.1),
            empty,
            false,
        ),
        (
            "scale up more than empty",
            prio(false, true, 0.1),
            empty,
            false,
        ),
        (
            "two scale ups",
            prio(false, true, 0.1),
            prio(false, true, 1.0),
            true,
        ),
        (
            "two scale downs",
            prio(false, false, 0.9),
            prio(false, false, 0.1),
            false,
        ),
    ] {
        assert_eq!(p.less(&other), is_less, "{name}");
        assert_eq!(other.less(&p), !is_less, "{name}");
    }
}

fn evictable(config: &UpdaterConfig, configured: u32, running: u32, tries: u32) -> u32 {
    let mut budget = EvictionBudget::new(config, configured, running);
    let mut n = 0;
    for _ in 0..tries {
        if budget.can_evict() {
            budget.evicted();
            n += 1;
        }
    }
    n
}

/// `TestEvictTooFewReplicas`: 5 replicas under a minimum of 10: none may go.
#[test]
fn evict_too_few_replicas() {
    let config = UpdaterConfig {
        min_replicas: 10,
        ..UpdaterConfig::default()
    };
    assert_eq!(evictable(&config, 5, 5, 5), 0);
}

/// `TestEvictionTolerance`: 5 replicas, tolerance 0.8: four go, the fifth is refused.
#[test]
fn eviction_tolerance() {
    let config = UpdaterConfig {
        eviction_tolerance: 0.8,
        ..UpdaterConfig::default()
    };
    assert_eq!(evictable(&config, 5, 5, 5), 4);
}

/// `TestEvictAtLeastOne`: 5 replicas, tolerance 0.1 (rounds to none): one still goes.
#[test]
fn evict_at_least_one() {
    let config = UpdaterConfig {
        eviction_tolerance: 0.1,
        ..UpdaterConfig::default()
    };
    assert_eq!(evictable(&config, 5, 5, 5), 1);
}
