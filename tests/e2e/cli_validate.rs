//! `simctl validate` end to end: a real run on 127.0.0.1 (serve replicas, the controller, the
//! load generator) against the simulator on the same arrivals, with the comparison written.

use std::path::Path;

use crate::common::{ok, read_json, scratch, simctl};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_str()
        .expect("utf-8")
        .to_string()
}

#[test]
fn a_short_step_agrees_with_the_simulation() {
    let dir = scratch("validate-short");
    let out = ok(simctl(&[
        "validate",
        &data("validate-short.toml"),
        "--out-dir",
        dir.to_str().expect("utf-8"),
    ]));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("latency p99 (ms)"), "{printed}");
    assert!(printed.contains("replicas within ±1"), "{printed}");

    let files = dir.join("validate-short");
    for f in [
        "real.json",
        "requests.csv",
        "decisions.jsonl",
        "simulated.json",
        "calibrated.json",
        "calibration.toml",
    ] {
        assert!(files.join(f).is_file(), "{f} missing");
    }
    let v = read_json(&files.join("validation.json"));
    assert_eq!(v["schema"], "simctl.validation/v1");

    // The load generator replayed exactly the simulator's arrivals.
    let real = read_json(&files.join("real.json"));
    let sim = read_json(&files.join("simulated.json"));
    assert_eq!(real["apis"][0]["requests"], sim["apis"][0]["requests"]);
    assert!(real["apis"][0]["requests"].as_u64().expect("requests") > 800);

    // The replicas rose in both, and the timelines agree.
    let peak = |key: &str| {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .fold(0.0, f64::max)
    };
    assert!(peak("real_replicas") >= 2.0, "{v}");
    assert!(peak("simulated_replicas") >= 2.0, "{v}");
    let within = v["simulated"]["replicas_within_one"]
        .as_f64()
        .expect("share");
    assert!(within >= 0.8, "replicas within ±1 only {within}: {v}");

    // Latency agrees; loose bounds: the real run shares two cores with the rest of the test.
    for metric in ["latency p50 (ms)", "latency p99 (ms)"] {
        for side in ["simulated", "calibrated"] {
            let m = v[side]["metrics"]
                .as_array()
                .expect("metrics")
                .iter()
                .find(|m| m["metric"] == metric)
                .expect(metric);
            let e = m["relative_error"].as_f64().expect("error");
            assert!(e.abs() < 0.25, "{side} {metric}: error {e}: {m}");
        }
    }
    assert!(
        v["calibrated_service_time"]
            .as_str()
            .is_some_and(|s| s.starts_with("empirical")),
        "{v}"
    );

    // The calibrated model, as lines to paste into the scenario, loads in a scenario.
    let lines = std::fs::read_to_string(files.join("calibration.toml")).expect("calibration");
    let (top, service) = lines
        .split_once("[apis.service_time]")
        .expect("a service_time table");
    let network = top
        .lines()
        .find(|l| l.starts_with("network_latency"))
        .expect("network_latency");
    let original = std::fs::read_to_string(data("validate-short.toml")).expect("scenario");
    let (head, tail) = original
        .split_once("[apis.service_time]\ndistribution = \"exponential\"\nmean = \"50ms\"\n")
        .expect("the test scenario's service time");
    let calibrated = head.replace(
        "startup_time = \"1s\"\n",
        &format!("startup_time = \"1s\"\n{network}\n"),
    ) + "[apis.service_time]"
        + service
        + tail;
    let path = dir.join("calibrated.toml");
    std::fs::write(&path, calibrated).expect("write");
    ok(simctl(&["run", path.to_str().expect("utf-8"), "--quiet"]));
}

#[test]
fn scenarios_it_cannot_run_for_real_are_refused_up_front() {
    // (Scale from zero is run now: tests/e2e/cli_foreign.rs.)
    let out = simctl(&["validate", "no-such-file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file.toml"));

    let out = simctl(&["validate", &data("validate-short.toml"), "--duration", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
}

#[test]
fn tenants_are_replayed_and_compared_tenant_by_tenant() {
    let dir = scratch("validate-tenants");
    let out = ok(simctl(&[
        "validate",
        &data("validate-tenants.toml"),
        "--out-dir",
        dir.to_str().expect("utf-8"),
        "--quiet",
    ]));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("tenant \"quiet\""), "{printed}");
    let files = dir.join("validate-tenants");
    let real = read_json(&files.join("real.json"));
    let sim = read_json(&files.join("simulated.json"));
    let v = read_json(&files.join("validation.json"));
    let compared = v["simulated"]["tenants"].as_array().expect("tenants");
    assert_eq!(compared.len(), 2, "{v}");
    for (i, name) in ["quiet", "noisy"].into_iter().enumerate() {
        // Each tenant's own arrivals, the simulator's, tagged for the replicas' fair queue.
        let (r, s) = (
            &real["apis"][0]["tenants"][i],
            &sim["apis"][0]["tenants"][i],
        );
        assert_eq!((&r["name"], &s["name"]), (&name.into(), &name.into()));
        assert_eq!(r["requests"], s["requests"], "{name}");
        assert_eq!(compared[i]["tenant"], name);
    }
    let metric = |tenant: usize, name: &str| {
        compared[tenant]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["metric"] == name)
            .cloned()
            .expect(name)
    };
    // Weighted fair queueing keeps the quiet tenant served on both sides while the noisy one
    // overflows the queues; loose bounds, the real run shares two cores with the other tests.
    let quiet_rejected = metric(0, "rejection rate");
    assert_eq!(quiet_rejected["real"], 0.0, "{quiet_rejected}");
    assert_eq!(quiet_rejected["simulated"], 0.0, "{quiet_rejected}");
    let noisy_rejected = metric(1, "rejection rate");
    let (r, s) = (
        noisy_rejected["real"].as_f64().expect("real"),
        noisy_rejected["simulated"].as_f64().expect("simulated"),
    );
    assert!(r > 0.03 && (r - s).abs() < 0.05, "{noisy_rejected}");
    let quiet_p50 = metric(0, "latency p50 (ms)");
    let e = quiet_p50["relative_error"].as_f64().expect("error");
    assert!(e.abs() < 0.3, "{quiet_p50}");
}
