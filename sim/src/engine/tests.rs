//! The engine's unit tests: whole small scenarios run through the loop, one behaviour each.

use super::*;
use std::path::Path;

fn scenario(extra_api: &str) -> Scenario {
    let text = format!(
        r#"
duration = "10m"
seed = 9
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[apis]]
name = "a"
timeout = "2s"
[apis.compute]
cpu = "1"
[apis.pod]
processes_per_replica = 2
threads_per_process = 2
max_queue_length = 8
[apis.service_time]
distribution = "exponential"
mean = "200ms"
[apis.traffic]
kind = "poisson"
rps = 30
[apis.autoscaling]
min_replicas = 2
{extra_api}
"#
    );
    Scenario::parse(&text, "t.toml", Path::new(".")).expect("valid")
}

#[test]
fn stepping_in_slices_gives_the_same_results() {
    let s = scenario("");
    let whole = run(&s).expect("runs");
    let mut sim = Simulation::new(s.clone()).expect("starts");
    while sim.now() < s.duration {
        let next = sim.now() + SimTime::from_secs_f64(7.3);
        sim.advance_to(next).expect("advances");
    }
    let sliced = sim.finish();
    assert_eq!(
        serde_json::to_string(&whole).expect("json"),
        serde_json::to_string(&sliced).expect("json")
    );
}

#[test]
fn network_latency_adds_to_every_latency_and_to_nothing_else() {
    let base = scenario("");
    let mut with = base.clone();
    with.apis[0].network_latency = SimTime::from_secs_f64(0.005);
    let (a, b) = (run(&base).expect("runs"), run(&with).expect("runs"));
    let (a, b) = (&a.apis[0], &b.apis[0]);
    assert_eq!((a.completed, a.rejected), (b.completed, b.rejected));
    assert_eq!(a.queue_wait_ms, b.queue_wait_ms);
    assert!(
        (b.latency_ms.mean - a.latency_ms.mean - 5.0).abs() < 0.05,
        "{a:?} {b:?}"
    );
    assert!(
        (b.latency_ms.p50 - a.latency_ms.p50 - 5.0).abs() < 0.5,
        "{a:?} {b:?}"
    );
}

#[test]
fn overload_rejects_and_balances() {
    // Capacity of 2 replicas × (4 workers + 8 queued); 30 req/s × 0.2 s = 6 busy of 8.
    let r = run(&scenario("")).expect("runs");
    let a = &r.apis[0];
    assert_eq!(
        a.requests,
        a.completed + a.rejected + a.timed_out + a.interrupted + a.in_flight_at_end
    );
    assert!(
        a.rejected > 0,
        "random routing to processes overflows queues"
    );
}

#[test]
fn replica_that_does_not_fit_stays_pending() {
    let mut s = scenario("");
    s.cluster_autoscaler.enabled = false;
    // Three replicas of 1.5 CPU on one m5.xlarge (3.8 CPU allocatable) → one pending.
    s.apis[0].requests.cpu_m = 1500;
    s.apis[0].autoscaling.min_replicas = 3;
    let r = run(&s).expect("runs");
    assert_eq!(r.apis[0].peak_pending_replicas, 1);
    assert!(r
        .events
        .iter()
        .any(|e| e.kind == crate::results::EventKind::ReplicaUnschedulable));
    let ready = &r
        .timeline
        .get(crate::results::Metric::ReplicasReady, "a")
        .expect("series");
    assert!(ready.iter().all(|v| *v == Some(2.0)));
}

fn cluster(text: &str) -> Scenario {
    Scenario::parse(text, "t.toml", Path::new(".")).expect("valid")
}

fn balanced(r: &Results) {
    for a in &r.apis {
        assert_eq!(
            a.requests,
            a.completed + a.rejected + a.timed_out + a.interrupted + a.in_flight_at_end,
            "{}",
            a.name
        );
        let served = crate::results::decode_histogram(&a.latency_histogram).expect("hist");
        assert_eq!(served.len(), a.completed, "each completion recorded once");
    }
}

#[test]
fn requests_held_at_zero_when_the_run_ends_are_in_flight() {
    // Scale from zero: 20 req/s from 100 s, a 90 s start-up, the run ends at 120 s with the
    // activator holding one replica's worth of requests and rejecting the rest.
    let text = r#"
duration = "120s"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[apis]]
name = "a"
startup_time = "90s"
[apis.compute]
cpu = "1"
[apis.pod]
max_concurrency = 1
max_queue_length = 100
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "steps"
steps = [{ at = "0s", rps = 0 }, { at = "100s", rps = 20 }]
arrivals = "constant"
[apis.autoscaling]
policy = "cortex"
min_replicas = 0
"#;
    let s = Scenario::parse(text, "t.toml", Path::new(".")).expect("valid");
    let r = run(&s).expect("runs");
    let a = &r.apis[0];
    assert!(a.requests > 300, "{}", a.requests);
    assert_eq!(a.completed, 0);
    assert_eq!(
        a.in_flight_at_end, 101,
        "the activator holds one replica's capacity"
    );
    balanced(&r);
}

const API: &str = r#"
[[apis]]
name = "a"
startup_time = "30s"
[apis.compute]
cpu = "1500m"
[apis.service_time]
distribution = "exponential"
mean = "100ms"
[apis.traffic]
kind = "poisson"
rps = 20
"#;

#[test]
fn pod_that_fits_only_after_a_scale_up() {
    // Two 1.5-CPU replicas fit on one m5.xlarge (3795m free), the third needs a new node.
    let s = cluster(&format!(
        r#"duration = "10m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 3
boot_time = {{ median = "60s", p99 = "61s" }}
{API}
[apis.autoscaling]
min_replicas = 3
max_replicas = 3
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    assert_eq!(r.apis[0].peak_pending_replicas, 1);
    assert_eq!(r.node_groups[0].peak_nodes, 2);
    let t = |kind: &str| {
        r.events
            .iter()
            .find(|e| e.kind.name() == kind)
            .map(|e| e.t_s)
            .unwrap_or_else(|| panic!("no {kind} event"))
    };
    // Scan at 10 s launches; Ready ≈ 60 s later; the replica is ready 30 s after that.
    assert_eq!(t("node_launch"), 10.0);
    assert!((t("node_ready") - 70.0).abs() < 1.0);
    assert!((t("replica_ready") - t("node_ready") - 30.0).abs() < 1e-6);
    assert_eq!(r.apis[0].cold_starts, 1);
}

#[test]
fn priority_expander_falls_back_after_a_failed_spot_launch() {
    let s = cluster(&format!(
        r#"duration = "10m"
[[node_groups]]
name = "spot"
instance_type = "m5.xlarge"
spot = true
priority = 100
min_instances = 0
max_instances = 4
spot_capacity = 0
[[node_groups]]
name = "on-demand"
instance_type = "m5.xlarge"
priority = 1
min_instances = 0
max_instances = 4
{API}
[apis.autoscaling]
min_replicas = 2
max_replicas = 2
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    assert_eq!(
        r.node_groups[0].failed_launches, 1,
        "spot tried once, then backed off"
    );
    assert_eq!(r.node_groups[0].peak_nodes, 0);
    assert_eq!(r.node_groups[1].peak_nodes, 1);
    let failed = r
        .events
        .iter()
        .find(|e| e.kind == crate::results::EventKind::FailedLaunch)
        .expect("failure");
    let launch = r
        .events
        .iter()
        .find(|e| e.kind == crate::results::EventKind::NodeLaunch)
        .expect("fallback");
    assert_eq!(failed.node_group.as_deref(), Some("spot"));
    assert_eq!(launch.node_group.as_deref(), Some("on-demand"));
    assert_eq!((failed.t_s, launch.t_s), (10.0, 20.0));
    // Spot savings are zero without spot node-hours; cost is the on-demand node's.
    assert_eq!(r.node_groups[0].spot_savings_usd, 0.0);
}

#[test]
fn interruptions_reschedule_without_counting_a_request_twice() {
    let s = cluster(&format!(
        r#"duration = "6h"
[[node_groups]]
name = "spot"
instance_type = "m5.xlarge"
spot = true
priority = 100
min_instances = 2
max_instances = 4
interruption_rate = 0.5
[[node_groups]]
name = "on-demand"
instance_type = "m5.xlarge"
min_instances = 0
max_instances = 4
{API}
[apis.pod]
threads_per_process = 2
[apis.autoscaling]
min_replicas = 4
max_replicas = 4
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    let spot = &r.node_groups[0];
    assert!(spot.interruptions >= 2, "{}", spot.interruptions);
    assert!(r
        .events
        .iter()
        .any(|e| e.kind == crate::results::EventKind::Eviction));
    assert!(r.apis[0].cold_starts >= 2, "evicted replicas were replaced");
    assert!(spot.spot_savings_usd > 0.0);
}

#[test]
fn placeholders_are_preempted_and_make_room_ahead_of_need() {
    let s = cluster(&format!(
        r#"duration = "10m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 3
[[overprovisioning]]
replicas = 2
cpu = "1500m"
{API}
[apis.autoscaling]
min_replicas = 1
max_replicas = 1
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    // The API's replica is placed first at t = 0; the placeholders take the rest of the node
    // (one fits) and the other triggers a scale-up: a warm node waits.
    assert_eq!(r.node_groups[0].peak_nodes, 2);
    assert_eq!(r.apis[0].peak_pending_replicas, 0);

    // Now the replica arrives after the placeholders: it preempts one.
    let mut s2 = s.clone();
    s2.apis[0].priority = 5;
    let mut sim = Simulation::new(s2).expect("starts");
    sim.advance_to(SimTime::from_secs(120)).expect("runs");
    sim.scale_to(0, 2, false);
    sim.scale_to(0, 3, false);
    assert!(sim
        .events()
        .iter()
        .any(|e| e.kind == crate::results::EventKind::Preemption));
}

#[test]
fn unneeded_node_is_removed_after_the_unneeded_time() {
    let s = cluster(&format!(
        r#"duration = "30m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 3
boot_time = {{ median = "60s", p99 = "61s" }}
{API}
[apis.autoscaling]
min_replicas = 1
max_replicas = 1
"#
    ));
    let mut sim = Simulation::new(s).expect("starts");
    let now = sim.now;
    assert!(sim
        .cluster_autoscaler
        .launch_by_hand(0, now, &mut sim.cluster, &mut sim.agenda));
    sim.cluster_autoscaler.set_last_scale_up(SimTime::ZERO);
    let r = {
        sim.advance_to(SimTime::from_secs(1800)).expect("runs");
        sim.finish()
    };
    let term = r
        .events
        .iter()
        .find(|e| e.kind == crate::results::EventKind::NodeTerminate)
        .expect("scaled down");
    // Scale-down evaluation resumes 10 min after the scale-up (t = 0); the empty node is
    // unneeded from then and removed 10 min later; the busy one stays.
    assert_eq!(term.t_s, 1200.0);
    assert!(term.message.contains("node 1"), "{}", term.message);
    assert!(!r
        .events
        .iter()
        .any(|e| e.kind == crate::results::EventKind::Eviction));
    // 1 node × 30 min + 1 node × 20 min of m5.xlarge at 0.192 $/h.
    let expected = (1800.0 + 1200.0) / 3600.0 * 0.192;
    assert!((r.node_groups[0].cost_usd - expected).abs() < 0.005);
}

#[test]
fn recorded_service_times_and_trace_window() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workload/tests/fixtures/traces"
    );
    let s = Scenario::parse(
        r#"duration = "1m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[apis]]
name = "a"
[apis.pod]
threads_per_process = 8
[apis.service_time]
distribution = "constant"
value = "1s"
[apis.traffic]
kind = "trace"
path = "requests.csv"
service_column = "latency_ms"
start = "500ms"
end = "2500ms"
"#,
        "t.toml",
        Path::new(dir),
    )
    .expect("valid");
    let r = run(&s).expect("runs");
    let a = &r.apis[0];
    // Rows at 0.5, 1.0, 2.0 s of the trace fall in [0.5 s, 2.5 s); their recorded service
    // times (120, 95, 101 ms) replace the 1 s model, with no queueing on 8 workers.
    assert_eq!(a.requests, 3);
    assert!(
        (a.latency_ms.max - 120.0).abs() < 0.2,
        "{}",
        a.latency_ms.max
    );
    assert!(
        (a.latency_ms.mean - 105.3).abs() < 0.3,
        "{}",
        a.latency_ms.mean
    );
}

fn time_sliced(replicas: u32, rps: f64, arrivals: &str) -> Results {
    let s = cluster(&format!(
        r#"duration = "10m"
[[node_groups]]
name = "gpu"
instance_type = "g5.xlarge"
min_instances = 1
max_instances = 1
gpu_sharing = {{ mode = "time-slicing", replicas = 4, context_switch_overhead = 0.05 }}
[[apis]]
name = "m"
[apis.compute]
cpu = "500m"
gpu = 1
[apis.pod]
max_concurrency = 1
max_queue_length = 1000
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "{arrivals}"
rps = {rps}
[apis.autoscaling]
min_replicas = {replicas}
max_replicas = {replicas}
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    r
}

#[test]
fn spot_config_mixes_on_demand_base_and_percentage_with_spot_pools() {
    // 5 nodes: the base 1 and 50 % of the 4 above it are on-demand (3); the 2 spot nodes
    // take the cheapest pools in turn (g4dn.xlarge, then g4dn.2xlarge).
    let s = cluster(
        r#"duration = "1h"
[[node_groups]]
name = "mixed"
instance_type = "g4dn.xlarge"
spot = true
min_instances = 5
max_instances = 5
interruption_rate = 0
spot_config = { instance_distribution = ["g4dn.2xlarge"], on_demand_base_capacity = 1, on_demand_percentage_above_base_capacity = 50 }
[[apis]]
name = "a"
[apis.compute]
cpu = "1"
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "constant"
rps = 1
"#,
    );
    let sim = Simulation::new(s.clone()).expect("starts");
    let spot: Vec<bool> = sim.cluster.nodes().map(|(_, n)| n.spot).collect();
    assert_eq!(spot.iter().filter(|s| **s).count(), 2, "{spot:?}");
    let r = run(&s).expect("runs");
    let g = &r.node_groups[0];
    let expected = 3.0 * 0.526 + 0.526 * (1.0 - 0.64) + 0.752 * (1.0 - 0.61);
    assert!(
        (g.cost_usd - expected).abs() < 0.005,
        "{} vs {expected}",
        g.cost_usd
    );
    assert!((g.spot_savings_usd - (5.0 * 0.526 - expected)).abs() < 0.005);
    // Without spot_config every node of a spot group is spot.
    let mix = crate::scenario::SpotMix {
        on_demand_base: 0,
        on_demand_percent: 0,
        pools: vec![],
    };
    assert_eq!(mix.on_demand_of(7), 0);
    let mix = crate::scenario::SpotMix {
        on_demand_base: 2,
        on_demand_percent: 25,
        pools: vec![],
    };
    assert_eq!(
        (1..=7).map(|n| mix.on_demand_of(n)).collect::<Vec<_>>(),
        vec![1, 2, 3, 3, 3, 3, 4]
    );
}

fn memory_scenario(hog: &str) -> Results {
    let s = cluster(&format!(
        r#"duration = "5m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "steady"
priority = 0
[apis.compute]
cpu = "1"
mem = "6Gi"
cpu_limit = "1"
mem_limit = "6Gi"
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "constant"
rps = 5
[[apis]]
name = "hog"
priority = 10
[apis.compute]
cpu = "1"
{hog}
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "constant"
rps = 5
"#
    ));
    let r = run(&s).expect("runs");
    balanced(&r);
    r
}

#[test]
fn memory_pressure_evicts_pods_over_their_request_first_whatever_their_priority() {
    // The hog requests 1 GiB but uses 10: with the Guaranteed 6 GiB pod the node (about
    // 13.4 GiB for pods) runs out, and the hog goes first despite its higher priority.
    let r = memory_scenario("mem = \"1Gi\"\nmem_usage = \"10Gi\"");
    assert_eq!(r.apis[0].qos_class, "Guaranteed");
    assert_eq!(r.apis[1].qos_class, "Burstable");
    let evicted: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e.kind == crate::results::EventKind::Eviction)
        .filter_map(|e| e.api.as_deref())
        .collect();
    assert!(!evicted.is_empty());
    assert!(evicted.iter().all(|a| *a == "hog"), "{evicted:?}");
    assert!(r.events.iter().any(|e| e.message.contains("out of memory")));
    // Using no more than requested, nobody is evicted.
    let r = memory_scenario("mem = \"6Gi\"");
    assert!(r
        .events
        .iter()
        .all(|e| e.kind != crate::results::EventKind::Eviction));
}

#[test]
fn a_replica_over_its_memory_limit_is_oom_killed() {
    let r = memory_scenario("mem = \"1Gi\"\nmem_limit = \"2Gi\"\nmem_usage = \"3Gi\"");
    assert!(r.apis[1].oom_kills > 0);
    assert_eq!(r.apis[1].completed, 0);
    assert_eq!(r.apis[0].oom_kills, 0);
    assert!(r.events.iter().any(
        |e| e.kind == crate::results::EventKind::OomKill && e.message.contains("memory limit")
    ));
}

fn shared_gpu_memory(mode: &str, models_gib: &[u32]) -> Results {
    let mut text = format!(
        r#"duration = "30m"
[[node_groups]]
name = "gpu"
instance_type = "g4dn.xlarge"
min_instances = 1
max_instances = 1
gpu_sharing = {{ mode = "{mode}", replicas = 4 }}
"#
    );
    for (i, gib) in models_gib.iter().enumerate() {
        text.push_str(&format!(
            r#"[[apis]]
name = "m{i}"
startup_time = "30s"
[apis.compute]
cpu = "500m"
gpu = 1
gpu_memory = "{gib}Gi"
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "poisson"
rps = 1
[apis.autoscaling]
min_replicas = 1
max_replicas = 1
"#
        ));
    }
    let r = run(&cluster(&text)).expect("runs");
    balanced(&r);
    r
}

#[test]
fn over_committed_time_sliced_gpu_memory_oom_kills_the_last_to_load() {
    // A T4 has 16 GB: two 6 GiB models fit, the third does not and crash-loops
    // (restarts at 10, 20, 40, 80, 160, 300 s backoff + 30 s load each).
    let r = shared_gpu_memory("time-slicing", &[6, 6, 6]);
    let kills: Vec<u64> = r.apis.iter().map(|a| a.oom_kills).collect();
    assert_eq!(kills.iter().filter(|k| **k > 0).count(), 1, "{kills:?}");
    let victim = kills.iter().position(|k| *k > 0).unwrap();
    assert!((6..=10).contains(&kills[victim]), "{kills:?}");
    assert_eq!(r.apis[victim].completed, 0);
    assert!(r.apis[victim].rejected > 0);
    assert!(r
        .events
        .iter()
        .any(|e| e.kind == crate::results::EventKind::OomKill));
    // Within memory, nobody is killed.
    let r = shared_gpu_memory("time-slicing", &[5, 5, 5]);
    assert!(r.apis.iter().all(|a| a.oom_kills == 0));
}

#[test]
fn mps_caps_each_client_at_its_share_of_gpu_memory() {
    // MPS with 4 clients on a 16 GB T4: 4 GiB each, so a 5 GiB model never loads even alone.
    let r = shared_gpu_memory("mps", &[5, 3]);
    assert!(r.apis[0].oom_kills > 0 && r.apis[0].completed == 0);
    assert_eq!(r.apis[1].oom_kills, 0);
    assert!(r.apis[1].completed > 0);
}

#[test]
fn time_slicing_alone_runs_at_full_speed() {
    // One request at a time: no other sharer is busy, no stretch.
    let r = time_sliced(4, 1.0, "constant");
    assert!((r.apis[0].latency_ms.max - 100.0).abs() < 0.2);
}

#[test]
fn time_slicing_k_busy_sharers_split_the_gpu() {
    // Saturated: whatever the number of sharers k ≥ 2, each request takes k × 100 ms ×
    // 1.05, so the GPU completes 10 / 1.05 = 9.52 requests per second in all.
    for k in [2, 4] {
        let r = time_sliced(k, 40.0, "poisson");
        let throughput = r.apis[0].completed as f64 / 600.0;
        assert!(
            (throughput - 10.0 / 1.05).abs() < 0.1,
            "k = {k}: {throughput}"
        );
        assert!(r.apis[0].latency_ms.p50 >= f64::from(k) * 105.0 - 0.5);
    }
    // Four pods fit on one GPU; a fifth would not (4 slots).
    let s = cluster(
        r#"duration = "1m"
[cluster.autoscaler]
enabled = false
[[node_groups]]
name = "gpu"
instance_type = "g5.xlarge"
min_instances = 1
gpu_sharing = { mode = "time-slicing", replicas = 4 }
[[apis]]
name = "m"
[apis.compute]
cpu = "500m"
gpu = 1
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "poisson"
rps = 1
[apis.autoscaling]
min_replicas = 5
max_replicas = 5
"#,
    );
    assert_eq!(run(&s).expect("runs").apis[0].peak_pending_replicas, 1);
}

#[test]
fn mig_slices_limit_placement_and_scale_service_time() {
    // One p5.48xlarge (8 × H100 80GB), each GPU split into 3g.40gb + 3g.40gb: 16 slices.
    let s = cluster(
        r#"duration = "10m"
[cluster.autoscaler]
enabled = false
[[node_groups]]
name = "h100"
instance_type = "p5.48xlarge"
min_instances = 1
gpu_sharing = { mode = "mig", profiles = ["3g.40gb", "3g.40gb"] }
[[apis]]
name = "llm"
[apis.compute]
cpu = "1"
mig_profile = "3g.40gb"
[apis.service_time]
distribution = "constant"
value = "300ms"
[apis.traffic]
kind = "constant"
rps = 1
[apis.autoscaling]
min_replicas = 17
max_replicas = 17
"#,
    );
    let r = run(&s).expect("runs");
    balanced(&r);
    assert_eq!(
        r.apis[0].peak_pending_replicas, 1,
        "16 slices for 17 replicas"
    );
    // 300 ms on a whole GPU takes 300 × 7/3 = 700 ms on 3 of its 7 compute slices.
    assert!(
        (r.apis[0].latency_ms.max - 700.0).abs() < 0.5,
        "{}",
        r.apis[0].latency_ms.max
    );
    let echoed = toml::to_string(&s.file).expect("toml");
    assert!(
        Scenario::parse(&echoed, "echo.toml", Path::new(".")).is_ok(),
        "echo parses"
    );
    let text = echoed.replace("\"3g.40gb\", \"3g.40gb\"", "\"4g.40gb\", \"4g.40gb\"");
    let e = Scenario::parse(&text, "t.toml", Path::new(".")).unwrap_err();
    assert!(e.message.contains("not a valid MIG partition"), "{e}");
}
