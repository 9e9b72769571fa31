//! `simctl loadgen` against `simctl serve` on 127.0.0.1: the load generator keeps its schedule
//! and measures what queueing theory predicts.

use crate::common::{assert_balanced, ok, read_json, scratch, send_signal, simctl, Served};

fn api(results: &serde_json::Value) -> &serde_json::Value {
    &results["apis"][0]
}

#[test]
fn fixed_rate_against_constant_service_time() {
    let served = Served::start(&["--service-time", "100ms", "--threads", "8"]);
    let dir = scratch("lg-fixed");
    let out = dir.join("lg.json");
    ok(simctl(&[
        "loadgen",
        "--target",
        &format!("{}/", served.urls[0]),
        "--rate",
        "20",
        "--arrivals",
        "constant",
        "--duration",
        "5s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let r = read_json(&out);
    assert_balanced(&r);
    let a = api(&r);
    // Evenly spaced at 50 ms from 50 ms: 99 requests before 5 s.
    assert_eq!(a["requests"], 99, "{a}");
    assert_eq!(a["completed"], 99, "{a}");
    let p50 = a["latency_ms"]["p50"].as_f64().unwrap();
    assert!((100.0..106.0).contains(&p50), "p50 {p50} ms");
    let rate = a["requests"].as_f64().unwrap() / r["planned_s"].as_f64().unwrap();
    assert!((rate - 20.0).abs() < 0.5, "sent {rate} req/s");
    // Sends keep their schedule (a busy CI machine may delay a few).
    assert!(r["late"].as_u64().unwrap() <= 5, "{}", r["late"]);
    assert!(r["schedule_lag_ms"]["p50"].as_f64().unwrap() < 5.0);
}

/// Erlang's M/M/c/K: blocking probability with `c` servers, room for `k` in all, offered load
/// `a = λ/μ`.
fn mmck_blocking(c: u32, k: u32, a: f64) -> f64 {
    let mut p = vec![1.0f64];
    for n in 1..=k {
        let servers = f64::from(n.min(c));
        let prev = p[p.len() - 1];
        p.push(prev * a / servers);
    }
    p[k as usize] / p.iter().sum::<f64>()
}

#[test]
fn rejections_over_capacity_match_mmck() {
    // c = 2 workers, K = 2 + 2 queued, exponential 50 ms service, Poisson 60 req/s: a = 3.
    let served = Served::start(&[
        "--threads",
        "2",
        "--max-queue-length",
        "2",
        "--service-time",
        "50ms",
        "--exponential",
    ]);
    let dir = scratch("lg-mmck");
    let out = dir.join("lg.json");
    ok(simctl(&[
        "loadgen",
        "--target",
        &served.urls[0],
        "--rate",
        "60",
        "--duration",
        "20s",
        "--seed",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let r = read_json(&out);
    assert_balanced(&r);
    let a = api(&r);
    let requests = a["requests"].as_f64().unwrap();
    let measured = a["rejected"].as_f64().unwrap() / requests;
    let predicted = mmck_blocking(2, 4, 3.0);
    assert!((predicted - 0.399).abs() < 0.001);
    assert!(
        (measured - predicted).abs() < 0.06,
        "503 rate {measured:.3}, M/M/c/K predicts {predicted:.3} ({requests} requests)"
    );
}

#[test]
fn trace_replay_sends_the_recorded_requests_at_their_times() {
    let served = Served::start(&["--service-time", "1ms", "--threads", "16"]);
    let dir = scratch("lg-trace");
    let trace = crate::common::example("traces/azure-llm-conv-2023.csv");
    let (out, csv) = (dir.join("lg.json"), dir.join("requests.csv"));
    ok(simctl(&[
        "loadgen",
        "--target",
        &served.urls[0],
        "--trace",
        trace.to_str().unwrap(),
        "--speedup",
        "4",
        "--duration",
        "10s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--requests-csv",
        csv.to_str().unwrap(),
    ]));
    // The first 40 s of the trace, at 4× speed.
    let text = std::fs::read_to_string(&trace).unwrap();
    let expected: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse::<f64>().unwrap() / 4.0)
        .take_while(|t| *t < 10.0)
        .collect();
    let sent = std::fs::read_to_string(&csv).unwrap();
    let mut rows = sent.lines();
    assert_eq!(
        rows.next(),
        Some("timestamp_s,latency_ms,status,service_ms,error,queue_wait_ms")
    );
    let sent: Vec<f64> = rows
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sent.len(), expected.len());
    for (s, e) in sent.iter().zip(&expected) {
        assert!((s - e).abs() < 1e-6, "scheduled {s}, trace {e}");
    }
    let r = read_json(&out);
    assert_eq!(api(&r)["requests"].as_u64().unwrap(), expected.len() as u64);
    assert_eq!(api(&r)["completed"], api(&r)["requests"]);
    let lag_p99 = r["schedule_lag_ms"]["p99"].as_f64().unwrap();
    assert!(lag_p99 < 20.0, "schedule error p99 {lag_p99} ms");
    // The request log reads back as a trace and as a service-time sample.
    let scenario = dir.join("replay.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "replay of a load test"
duration = "10s"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "api"
[apis.compute]
cpu = "1"
[apis.service_time]
distribution = "empirical"
path = "{csv}"
column = "service_ms"
[apis.traffic]
kind = "trace"
path = "{csv}"
"#,
            csv = csv.display()
        ),
    )
    .unwrap();
    let sim_out = dir.join("sim.json");
    ok(simctl(&[
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        sim_out.to_str().unwrap(),
    ]));
    let s = read_json(&sim_out);
    assert_eq!(s["apis"][0]["requests"], api(&r)["requests"]);
}

#[test]
fn scenario_traffic_is_the_simulators() {
    // The same scenario and seed: loadgen sends exactly the arrivals the simulator simulates.
    let served = Served::start(&["--service-time", "1ms", "--threads", "16"]);
    let dir = scratch("lg-scenario");
    let scenario = dir.join("s.toml");
    std::fs::write(
        &scenario,
        r#"name = "steps"
duration = "6s"
seed = 11
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "api"
[apis.compute]
cpu = "1"
[apis.service_time]
distribution = "constant"
value = "1ms"
[apis.traffic]
kind = "steps"
steps = [{ at = "0s", rps = 10 }, { at = "3s", rps = 40 }]
"#,
    )
    .unwrap();
    let (lg, sim) = (dir.join("lg.json"), dir.join("sim.json"));
    ok(simctl(&[
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        sim.to_str().unwrap(),
    ]));
    ok(simctl(&[
        "loadgen",
        scenario.to_str().unwrap(),
        "--target",
        &served.urls[0],
        "--quiet",
        "--out",
        lg.to_str().unwrap(),
    ]));
    let (lg, sim) = (read_json(&lg), read_json(&sim));
    assert_eq!(api(&lg)["requests"], sim["apis"][0]["requests"]);
    let sent: Vec<f64> = lg["timeline"]["series"]["rps/api"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(sent[0] < 20.0 && sent[4] > 25.0, "{sent:?}");
}

#[test]
fn unreachable_targets_are_counted_not_fatal() {
    // Bind a port, then free it: connecting to it is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scratch("lg-refused");
    let out = dir.join("lg.json");
    ok(simctl(&[
        "loadgen",
        "--target",
        &format!("http://127.0.0.1:{port}/"),
        "--rate",
        "20",
        "--duration",
        "1s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let r = read_json(&out);
    assert_balanced(&r);
    let a = api(&r);
    assert!(a["requests"].as_u64().unwrap() > 5);
    assert_eq!(a["interrupted"], a["requests"]);
    assert_eq!(r["errors"]["connection refused"], a["requests"]);
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, expect) in [
        (
            vec![
                "loadgen",
                "--target",
                "https://127.0.0.1/",
                "--rate",
                "1",
                "--duration",
                "1s",
            ],
            "https is not supported",
        ),
        (
            vec!["loadgen", "--target", "http://127.0.0.1:9/", "--rate", "5"],
            "--rate needs --duration",
        ),
        (
            vec!["loadgen", "--target", "http://127.0.0.1:9/"],
            "no schedule",
        ),
        (
            vec![
                "loadgen",
                "--target",
                "http://127.0.0.1:9/",
                "--steps",
                "0s=1,0s=2",
                "--duration",
                "1s",
            ],
            "start times must increase",
        ),
        (
            vec!["serve", "--threads", "0"],
            "--threads: expected at least 1",
        ),
        (
            vec![
                "loadgen",
                "--target",
                "http://127.0.0.1:9/",
                "--users",
                "5",
                "--ramp-up",
                "99y",
                "--duration",
                "2s",
            ],
            "--ramp-up: expected at most --duration",
        ),
        (
            vec![
                "loadgen",
                "--target",
                "http://127.0.0.1:9/",
                "--rate",
                "5",
                "--duration",
                "600years",
            ],
            "at most 100 years",
        ),
        (
            vec!["serve", "--idle-timeout", "0s"],
            "--idle-timeout: expected a duration > 0",
        ),
    ] {
        let out = simctl(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn serve_exposes_health_and_prometheus_metrics() {
    let served = Served::start(&["--replicas", "2", "--startup-delay", "1s"]);
    assert_eq!(served.urls.len(), 2);
    let get = |url: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let addr = url.trim_start_matches("http://");
        let (host_port, path) = addr
            .split_once('/')
            .map_or((addr, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut s = std::net::TcpStream::connect(host_port).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        (status, text)
    };
    assert_eq!(get(&format!("{}/healthz", served.urls[1])).0, 503);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(get(&format!("{}/healthz", served.urls[1])).0, 200);
    let (status, metrics) = get(&format!("{}/metrics", served.urls[0]));
    assert_eq!(status, 200);
    let body = metrics.split("\r\n\r\n").nth(1).unwrap();
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for name in [
        "cortex_in_flight_requests",
        "simctl_in_flight_requests",
        "simctl_in_flight_seconds_total",
        "simctl_replica_ready",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn closed_model_users_pace_themselves() {
    // 4 users, 50 ms service, 100 ms think time: each user sends every ~150 ms.
    let served = Served::start(&["--service-time", "50ms", "--threads", "4"]);
    let dir = scratch("lg-closed");
    let out = dir.join("lg.json");
    ok(simctl(&[
        "loadgen",
        "--target",
        &served.urls[0],
        "--users",
        "4",
        "--think-time",
        "100ms",
        "--duration",
        "3s",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let r = read_json(&out);
    assert_eq!(r["model"], "closed");
    assert_balanced(&r);
    let a = api(&r);
    let expected = 4.0 * r["elapsed_s"].as_f64().unwrap() / 0.150;
    let sent = a["requests"].as_f64().unwrap();
    assert!(
        (sent - expected).abs() < 0.2 * expected,
        "{sent} requests, expected about {expected}"
    );
    let p50 = a["latency_ms"]["p50"].as_f64().unwrap();
    assert!((50.0..60.0).contains(&p50), "p50 {p50} ms");
}

#[test]
fn ctrl_c_stops_cleanly_and_keeps_the_results() {
    stops_cleanly_on("-INT");
}

#[test]
fn sigterm_stops_cleanly_and_keeps_the_results() {
    stops_cleanly_on("-TERM");
}

/// Signal a 60 s load test after 1.5 s: it ends with exit 130 and balanced results of what it
/// sent, its request log agreeing.
fn stops_cleanly_on(signal: &str) {
    let served = Served::start(&["--service-time", "10ms", "--threads", "4"]);
    let dir = scratch(&format!("lg-interrupt{signal}"));
    let (out, csv) = (dir.join("lg.json"), dir.join("requests.csv"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["loadgen", "--target", &served.urls[0], "--rate", "50"])
        .args(["--duration", "60s", "--quiet", "--out"])
        .arg(&out)
        .arg("--requests-csv")
        .arg(&csv)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    send_signal(&child, signal);
    let exit = child.wait_with_output().unwrap();
    assert_eq!(exit.status.code(), Some(130));
    let r = read_json(&out);
    assert_balanced(&r);
    assert!(r["truncated_at_s"].as_f64().unwrap() < 5.0);
    let sent = api(&r)["requests"].as_u64().unwrap();
    assert!(sent > 30, "{sent}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() as u64 - 1;
    assert_eq!(rows + api(&r)["in_flight_at_end"].as_u64().unwrap(), sent);
}
