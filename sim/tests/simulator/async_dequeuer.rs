//! An async API's dequeuer cycle, message by message: an idle worker long-polls for 10 s (a
//! message then is taken at once), sleeps 10 s after an empty poll, and polls again — so a
//! message reaching an idle API waits for the next open poll (Cortex's `dequeuer.go`).

use std::path::Path;

fn run(arrivals_s: &[f64], dequeuer: &str) -> sim::results::Results {
    let dir = std::env::temp_dir().join(format!("simctl-dequeuer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let trace = dir.join(format!("arrivals-{}.csv", arrivals_s.len()));
    let mut csv = String::from("timestamp_s\n");
    for t in arrivals_s {
        csv.push_str(&format!("{t}\n"));
    }
    std::fs::write(&trace, csv).expect("trace");
    let text = format!(
        r#"
duration = "2m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "jobs"
kind = "async"
[apis.compute]
cpu = "100m"
[apis.pod]
threads_per_process = 1
[apis.service_time]
distribution = "constant"
value = "1s"
[apis.traffic]
kind = "trace"
path = "{}"
column = "timestamp_s"
{dequeuer}
[apis.autoscaling]
policy = "fixed"
min_replicas = 1
max_replicas = 1
"#,
        trace.display()
    );
    let s = sim::Scenario::parse(&text, "dequeuer.toml", Path::new(".")).expect("valid");
    sim::run(&s).expect("runs")
}

#[test]
fn a_message_waits_for_the_next_open_poll() {
    // The worker is idle from 0: polls [0, 10), sleeps [10, 20), polls [20, 30), sleeps …
    // 5 s: taken at once. Its 1 s job ends at 6 s and the worker polls from 6: [6, 16), sleeps
    // [16, 26), polls [26, 36). 18 s: waits until 26 (8 s). Done at 27, polls [27, 37): 30 s is
    // taken at once.
    let r = run(&[5.0, 18.0, 30.0], "");
    let a = &r.apis[0];
    assert_eq!(a.completed, 3);
    // (The histograms keep three significant digits.)
    assert!(
        (a.queue_wait_ms.max - 8000.0).abs() < 10.0,
        "{:?}",
        a.queue_wait_ms
    );
    assert!(
        (a.queue_wait_ms.mean - 8000.0 / 3.0).abs() < 10.0,
        "{:?}",
        a.queue_wait_ms
    );
    // Without the sleep, nothing waits.
    let r = run(
        &[5.0, 18.0, 30.0],
        "[apis.dequeuer]\nempty_receive_sleep = \"0s\"",
    );
    assert_eq!(r.apis[0].queue_wait_ms.max, 0.0);
}

/// A spot reclaim kills workers mid-job: their messages are not lost but come back to the queue
/// when the visibility timeout Cortex's dequeuer keeps renewing runs out, and another worker
/// does the job again — no request is interrupted, every one is counted once.
#[test]
fn messages_of_a_killed_worker_are_redelivered_not_lost() {
    let text = r#"
duration = "6h"
seed = 3
[[node_groups]]
name = "spot"
instance_type = "m5.xlarge"
spot = true
priority = 10
min_instances = 2
max_instances = 4
interruption_rate = 1.0
[[node_groups]]
name = "on-demand"
instance_type = "m5.xlarge"
min_instances = 0
max_instances = 4
[[apis]]
name = "jobs"
kind = "async"
startup_time = "30s"
[apis.compute]
cpu = "1500m"
[apis.pod]
threads_per_process = 1
[apis.service_time]
distribution = "constant"
value = "5m"
[apis.traffic]
kind = "poisson"
rps = 0.008
[apis.autoscaling]
policy = "fixed"
min_replicas = 4
max_replicas = 4
"#;
    let s = sim::Scenario::parse(text, "redelivery.toml", Path::new(".")).expect("valid");
    let r = sim::run(&s).expect("runs");
    let a = &r.apis[0];
    let reclaims = r
        .events
        .iter()
        .filter(|e| e.kind == sim::results::EventKind::SpotInterruption)
        .count();
    assert!(reclaims >= 2, "the test needs spot reclaims: {reclaims}");
    assert_eq!(a.interrupted, 0, "{a:?}");
    assert_eq!(a.requests, a.completed + a.in_flight_at_end, "{a:?}");
    // A redelivered job's time to result includes its lost work and the visibility timeout:
    // the slowest is well past one job (5 min) plus the longest poll wait.
    assert!(a.latency_ms.max > 600_000.0, "{:?}", a.latency_ms);
}
