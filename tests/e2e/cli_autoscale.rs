//! `simctl autoscale` end to end on one machine: the local actuator runs `simctl serve` replicas
//! behind its proxy, `simctl loadgen` steps the rate up and down, and the cortex policy from the
//! scenario scales the replicas — the loop a real cluster runs, on 127.0.0.1 only.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{assert_balanced, ok, read_json, scratch, simctl};
use autoscaler::{DecisionStep, MetricPipeline, Reading, ReplicaCount};

fn scenario() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/autoscale-local.toml")
}

/// A fresh decision step built exactly as `simctl autoscale` builds it.
fn step_for(path: &Path) -> DecisionStep {
    let s = sim::Scenario::load(path).expect("scenario loads");
    s.apis[0].autoscaling.decision_step()
}

fn read_decisions(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("decisions written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn local_loop_scales_up_and_down_without_losing_requests() {
    let dir = scratch("autoscale-local");
    let decisions = dir.join("decisions.jsonl");
    let lg = dir.join("lg.json");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["autoscale", scenario().to_str().expect("utf-8")])
        .args(["--actuator", "local", "--listen", "127.0.0.1:0"])
        .args(["--proxy-listen", "127.0.0.1:0"])
        .args(["--metric-name", "simctl_in_flight_requests"])
        .args(["--duration", "68s", "--decisions"])
        .arg(&decisions)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simctl autoscale starts");
    let stdout = controller.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut proxy = None;
    let mut status = None;
    while proxy.is_none() || status.is_none() {
        let line = lines
            .next()
            .expect("autoscale printed its addresses")
            .expect("utf-8");
        let url = line.find("http://").map(|at| line[at..].trim().to_string());
        if line.starts_with("proxy") {
            proxy = url;
        } else if line.starts_with("status") {
            status = url;
        }
    }
    let proxy = proxy.expect("proxy url");
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    // Let the first replica become ready (startup_time 1 s) before load starts.
    std::thread::sleep(Duration::from_millis(1500));
    ok(simctl(&[
        "loadgen",
        "--target",
        &format!("{proxy}/"),
        "--steps",
        "0s=10,15s=80,45s=10",
        "--duration",
        "65s",
        "--quiet",
        "--out",
        lg.to_str().expect("utf-8"),
    ]));
    let status = controller.wait().expect("controller exits");
    assert!(status.success(), "autoscale exit {status:?}");
    let printed = rest.join().expect("stdout drained");
    assert!(
        printed.iter().any(|l| l.starts_with("stopped after")),
        "{printed:?}"
    );

    // No request lost: everything sent was answered, 200 or a counted 503.
    let r = read_json(&lg);
    assert_balanced(&r);
    let a = &r["apis"][0];
    let n = |k: &str| a[k].as_u64().expect(k);
    assert_eq!(n("requests"), n("completed") + n("rejected"), "{a}");
    assert_eq!(
        n("timed_out") + n("interrupted") + n("in_flight_at_end"),
        0,
        "{a}"
    );
    assert!(n("requests") > 2000, "{a}");

    // Replicas rose under the step and fell after it.
    let d = read_decisions(&decisions);
    assert!(d.len() >= 5, "{d:?}");
    let targets: Vec<u64> = d
        .iter()
        .map(|x| x["target"].as_u64().expect("target"))
        .collect();
    let peak = targets.iter().copied().max().expect("ticks");
    let at_peak = targets.iter().position(|t| *t == peak).expect("peak");
    assert!(peak >= 3, "replicas never rose: {targets:?}");
    assert!(
        targets[at_peak..].iter().any(|t| *t <= 2),
        "replicas never fell: {targets:?}"
    );
    assert!(targets.iter().all(|t| (1..=8).contains(t)), "{targets:?}");

    // …exactly as the policy says: replaying the observed metrics through the same policy gives
    // the same targets.
    let mut step = step_for(&scenario());
    step.initial_target();
    for x in &d {
        let now = Duration::from_secs_f64(x["t_s"].as_f64().expect("t_s"));
        let current = ReplicaCount {
            spec: x["spec_replicas"].as_u64().expect("spec") as u32,
            ready: x["ready_replicas"].as_u64().expect("ready") as u32,
        };
        let reading = Reading {
            metric: x["metric"].as_f64(),
            ..Reading::default()
        };
        let replayed = step.decide(now, current, &reading);
        assert_eq!(
            u64::from(replayed.target),
            x["target"].as_u64().expect("t"),
            "{x}"
        );
    }
}

#[test]
fn bad_config_is_reported_at_start_up() {
    let dir = scratch("autoscale-bad");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(scenario())
        .expect("scenario")
        .replace("window = \"10s\"", "window = \"15s\"");
    std::fs::write(&bad, text).expect("write");
    let out = simctl(&[
        "autoscale",
        bad.to_str().expect("utf-8"),
        "--actuator",
        "local",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("window"), "{err}");

    let out = simctl(&[
        "autoscale",
        scenario().to_str().expect("utf-8"),
        "--metrics",
        "prometheus",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prometheus-url"));

    let out = simctl(&[
        "autoscale",
        scenario().to_str().expect("utf-8"),
        "--api",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API named"));
}

/// The autoscaling core and `simctl run` agree: the per-second in-flight the simulator recorded
/// in its timeline, fed through the metric pipeline and decision step at the policy's ticks,
/// gives the simulator's sequence of scaling decisions, each within one tick.
#[test]
fn controller_decisions_match_the_simulator_on_the_same_metrics() {
    let dir = scratch("autoscale-equivalence");
    let path = dir.join("scenario.toml");
    let text = std::fs::read_to_string(scenario())
        .expect("scenario")
        .replace("seed = 7\n", "seed = 7\ntimeline_step = \"1s\"\n");
    std::fs::write(&path, text).expect("write");
    let out = dir.join("results.json");
    ok(simctl(&[
        "run",
        "--quiet",
        path.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let r = read_json(&out);
    let times: Vec<f64> = r["timeline"]["t_s"]
        .as_array()
        .expect("t_s")
        .iter()
        .map(|t| t.as_f64().expect("t"))
        .collect();
    let in_flight: Vec<f64> = r["timeline"]["series"]["in_flight/model"]
        .as_array()
        .expect("in_flight")
        .iter()
        .map(|v| v.as_f64().expect("v"))
        .collect();
    let sim_decisions: Vec<(f64, u64, u64)> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "scale")
        .map(|e| {
            (
                e["t_s"].as_f64().expect("t"),
                e["inputs"]["from"].as_f64().expect("from") as u64,
                e["inputs"]["to"].as_f64().expect("to") as u64,
            )
        })
        .collect();
    assert!(sim_decisions.len() >= 3, "{sim_decisions:?}");

    let mut step = step_for(&path);
    let spec = step.metric_spec();
    let tick = step.tick_interval();
    let mut replicas = step.initial_target();
    let mut pipeline = MetricPipeline::new(spec);
    let mut ours = Vec::new();
    let mut next_tick = tick;
    for (t, v) in times.iter().zip(&in_flight) {
        let now = Duration::from_secs_f64(*t);
        if now.is_zero() {
            continue;
        }
        pipeline.sample(now, Some(*v), &[]);
        if now >= next_tick {
            next_tick += tick;
            let reading = pipeline.reading(now);
            let current = ReplicaCount {
                spec: replicas,
                ready: replicas,
            };
            let d = step.decide(now, current, &reading);
            if d.target != replicas {
                ours.push((t, u64::from(replicas), u64::from(d.target)));
                replicas = d.target;
            }
        }
    }
    let ours: Vec<(f64, u64, u64)> = ours.into_iter().map(|(t, a, b)| (*t, a, b)).collect();
    assert_eq!(
        ours.iter().map(|d| (d.1, d.2)).collect::<Vec<_>>(),
        sim_decisions.iter().map(|d| (d.1, d.2)).collect::<Vec<_>>(),
        "controller {ours:?} vs simulator {sim_decisions:?}"
    );
    for (a, b) in ours.iter().zip(&sim_decisions) {
        assert!((a.0 - b.0).abs() <= tick.as_secs_f64(), "{a:?} vs {b:?}");
    }
}
