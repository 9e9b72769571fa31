//! An async API for real: `simctl autoscale --actuator local` puts Cortex's async gateway in
//! front of `simctl serve` replicas (submit answers an id, GET /{id} answers the status and then
//! the result), and `simctl validate` runs the same scenario through the gateway, the dequeuers
//! and the load generator's submit-and-poll against the simulator.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    http_get, http_request, ok, printed_url, read_json, scratch, send_signal, simctl,
};

fn scenario() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/validate-async.toml")
        .to_str()
        .expect("utf-8")
        .to_string()
}

/// The status answer of `GET {gateway}/{id}`.
fn poll(gateway: &str, id: &str) -> (u16, serde_json::Value) {
    let (code, body) = http_get(&format!("{gateway}/{id}")).expect("the gateway answers");
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn the_gateway_answers_an_id_then_the_status_then_the_result() {
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["autoscale", &scenario()])
        .args(["--actuator", "local", "--listen", "127.0.0.1:0"])
        .args(["--proxy-listen", "127.0.0.1:0", "--duration", "20s"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simctl autoscale starts");
    let gateway = printed_url(&mut controller, "proxy");

    // Submitted before any replica is ready: queued, never refused.
    let submit = |id: &str, ms: &str| {
        http_request(
            "POST",
            &format!("{gateway}/"),
            &[("x-request-id", id), ("x-service-time-ms", ms)],
            "{\"doc\": 1}",
        )
        .expect("the gateway answers")
    };
    let (code, body) = submit("job-1", "300");
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["id"], "job-1");
    let (code, status) = poll(&gateway, "job-1");
    assert_eq!(code, 200);
    assert!(
        ["in_queue", "in_progress"].contains(&status["status"].as_str().unwrap_or("")),
        "{status}"
    );
    assert!(status.get("result").is_none(), "{status}");

    // An id is used once; an unknown one is not found.
    assert_eq!(submit("job-1", "300").0, 400);
    let (code, body) = http_get(&format!("{gateway}/no-such-id")).expect("answers");
    assert_eq!(code, 404);
    assert!(body.contains("not found"), "{body}");
    // Without x-request-id the gateway makes an id.
    let (code, body) = http_request("POST", &format!("{gateway}/"), &[], "{}").expect("answers");
    assert_eq!(code, 200);
    let made: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        made["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{made}"
    );

    // The replica starts (1 s), its dequeuer takes the job and the result is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let (_, status) = poll(&gateway, "job-1");
        if status["status"] == "completed" {
            break status;
        }
        assert!(Instant::now() < deadline, "still {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(done["result"].is_object(), "{done}");
    let stored = done["timestamp"].as_str().expect("a timestamp");
    assert!(
        stored.ends_with('Z') && stored.contains('T'),
        "RFC 3339: {stored}"
    );
    // SIGINT, not SIGKILL: the controller stops the replicas it started (a SIGKILL left them
    // running after the test).
    send_signal(&controller, "-INT");
    let _ = controller.wait();
}

#[test]
fn validating_an_async_api_submits_polls_and_agrees_with_the_simulation() {
    let dir = scratch("validate-async");
    let out = ok(simctl(&[
        "validate",
        &scenario(),
        "--out-dir",
        dir.to_str().expect("utf-8"),
    ]));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("latency p99 (ms)"), "{printed}");
    let files = dir.join("validate-async");
    let real = read_json(&files.join("real.json"));
    let sim = read_json(&files.join("simulated.json"));
    let r = &real["apis"][0];
    // Every job the simulator submits was submitted, and every one came back with a result.
    assert_eq!(r["requests"], sim["apis"][0]["requests"]);
    assert_eq!(r["completed"], r["requests"], "{r}");
    // The gateway reported each message's queue age: time to result is above it.
    assert!(
        r["queue_wait_ms"]["p50"].as_f64() < r["latency_ms"]["p50"].as_f64(),
        "{r}"
    );
    // Time to result agrees; loose bounds, the real run shares two cores with other tests.
    let v = read_json(&files.join("validation.json"));
    for metric in ["latency p50 (ms)", "latency p99 (ms)"] {
        let m = v["simulated"]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["metric"] == metric)
            .expect(metric);
        let e = m["relative_error"].as_f64().expect("error");
        assert!(e.abs() < 0.25, "{metric}: error {e}: {m}");
    }
    // The queue scaled the replicas in both.
    let peak = |key: &str| {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .fold(0.0, f64::max)
    };
    assert!(peak("real_replicas") >= 2.0, "{v}");
    assert!(peak("simulated_replicas") >= 2.0, "{v}");
}

#[test]
fn serve_gateway_and_loadgen_speak_the_async_protocol() {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["serve", &scenario(), "--port", "0", "--gateway", "0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simctl serve starts");
    let gateway = printed_url(&mut serve, "async gateway");
    let dir = scratch("serve-gateway");
    let out = dir.join("lg.json");
    // The scenario's API is async: loadgen submits and polls without being told.
    ok(simctl(&[
        "loadgen",
        &scenario(),
        "--target",
        &format!("{gateway}/"),
        "--duration",
        "8s",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let _ = serve.kill();
    let _ = serve.wait();
    let r = read_json(&out);
    let a = &r["apis"][0];
    assert!(a["requests"].as_u64() > Some(5), "{a}");
    assert_eq!(a["completed"], a["requests"], "{a}");
    // The time to result is at least the replica's work (300 ms median).
    assert!(a["latency_ms"]["p50"].as_f64() > Some(200.0), "{a}");
    // A realtime API has no gateway.
    let bad = simctl(&[
        "serve",
        "scenarios/quickstart.toml",
        "--port",
        "0",
        "--gateway",
        "0",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an async API"));
}
