//! End-to-end tests of `simctl run`: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_balanced, ok, read_json, scratch, simctl};

#[test]
fn quickstart_prints_summary_and_writes_balanced_results() {
    let out = scratch("quickstart").join("r.json");
    let run = simctl(&[
        "run",
        "scenarios/quickstart.toml",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("classifier"), "{stdout}");
    assert!(stdout.contains("p99 ms"), "{stdout}");

    let r = read_json(&out);
    assert_eq!(r["schema"], "simctl.results/v1");
    assert_eq!(r["seed"], 42);
    for api in r["apis"].as_array().expect("apis") {
        let n = |k: &str| api[k].as_u64().expect(k);
        assert!(n("requests") > 100_000);
        assert_eq!(
            n("requests"),
            n("completed")
                + n("rejected")
                + n("timed_out")
                + n("interrupted")
                + n("in_flight_at_end")
        );
        for key in ["mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(api["latency_ms"][key].as_f64().expect(key) > 0.0);
            assert!(api["queue_wait_ms"][key].is_number());
        }
    }
    let group = &r["node_groups"][0];
    for key in [
        "name",
        "instance_type",
        "spot",
        "node_hours",
        "cost_usd",
        "peak_nodes",
    ] {
        assert!(!group[key].is_null(), "node_groups[0].{key}");
    }
    // 4 on-demand g4dn.xlarge for 4 h at 0.526 USD/h, plus 0.10 USD/h of control plane.
    let expected = 4.0 * 4.0 * 0.526 + 0.4;
    assert!((r["cost_usd_total"].as_f64().expect("cost") - expected).abs() < 1e-6);
    let series = &r["timeline"]["series"];
    for name in [
        "rps/classifier",
        "replicas_ready/classifier",
        "queue/classifier",
        "nodes/gpu",
    ] {
        assert_eq!(
            series[name].as_array().expect(name).len(),
            r["timeline"]["t_s"].as_array().expect("t_s").len()
        );
    }
    assert!(r["events"].is_array());
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let dir = scratch("determinism");
    let paths: Vec<PathBuf> = ["a.json", "b.json", "c.json"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    for (path, seed) in paths.iter().zip(["5", "5", "6"]) {
        let run = simctl(&[
            "run",
            "scenarios/steps.toml",
            "--quiet",
            "--seed",
            seed,
            "--out",
            path.to_str().expect("utf-8"),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let bytes: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(bytes[0], bytes[1]);
    assert_ne!(bytes[0], bytes[2]);
}

#[test]
fn every_example_scenario_runs() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
        .expect("scenarios dir")
    {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let run = simctl(&["run", "--quiet", path.to_str().expect("utf-8")]);
            assert!(
                run.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
}

const GOOD: &str = r#"duration = "10m"

[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1

[[apis]]
name = "echo"

[apis.service_time]
distribution = "constant"
value = "50ms"

[apis.traffic]
kind = "poisson"
rps = 5

[apis.autoscaling]
min_replicas = 1
max_replicas = 3
"#;

/// Run a scenario text that must be rejected; return its single stderr line.
fn rejected(name: &str, text: &str, extra_files: &[(&str, &str)]) -> String {
    let dir = scratch(name);
    for (file, content) in extra_files {
        std::fs::write(dir.join(file), content).expect("write extra file");
    }
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).expect("write scenario");
    let out = dir.join("r.json");
    let run = simctl(&[
        "run",
        path.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status.code(), Some(2), "{name}: expected exit code 2");
    assert!(!out.exists(), "{name}: no results may be written");
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{name}: one line: {stderr}"
    );
    assert!(
        stderr.contains("bad.toml") || stderr.contains(".csv"),
        "{stderr}"
    );
    stderr
}

#[test]
fn good_scenario_is_accepted() {
    let dir = scratch("good");
    let path = dir.join("good.toml");
    std::fs::write(&path, GOOD).expect("write");
    let run = simctl(&["run", "--quiet", path.to_str().expect("utf-8")]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn unknown_field_names_line_and_field() {
    let e = rejected("unknown", &GOOD.replace("rps = 5", "rsp = 5"), &[]);
    assert!(
        e.contains("bad.toml:17:1: apis[0].traffic.rsp: unknown field `rsp`"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line_and_field() {
    let e = rejected(
        "type",
        &GOOD.replace("min_instances = 1", "min_instances = \"one\""),
        &[],
    );
    assert!(
        e.contains("bad.toml:6:17: node_groups[0].min_instances"),
        "{e}"
    );
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn negative_rate_is_rejected() {
    let e = rejected("negative", &GOOD.replace("rps = 5", "rps = -5"), &[]);
    assert!(
        e.contains("bad.toml:17:7: apis[0].traffic.rps: expected a rate > 0, found -5"),
        "{e}"
    );
}

#[test]
fn min_above_max_is_rejected() {
    let e = rejected(
        "minmax",
        &GOOD.replace("min_replicas = 1", "min_replicas = 4"),
        &[],
    );
    assert!(
        e.contains(
            "apis[0].autoscaling.min_replicas: expected min_replicas ≤ max_replicas (3), found 4"
        ),
        "{e}"
    );
}

#[test]
fn missing_trace_file_is_rejected() {
    let text = GOOD.replace(
        "kind = \"poisson\"\nrps = 5",
        "kind = \"trace\"\npath = \"nowhere.csv\"",
    );
    let e = rejected("missing-trace", &text, &[]);
    assert!(e.contains("apis[0].traffic.path"), "{e}");
    assert!(
        e.contains("nowhere.csv") && e.contains("cannot open"),
        "{e}"
    );
}

#[test]
fn malformed_trace_row_names_file_and_line() {
    let text = GOOD.replace(
        "kind = \"poisson\"\nrps = 5",
        "kind = \"trace\"\npath = \"t.csv\"",
    );
    let csv = "timestamp_s,tokens\n0.5,10\n1.0,11\nsoon,12\n2.0,13\n";
    let e = rejected("malformed-trace", &text, &[("t.csv", csv)]);
    assert!(
        e.contains("t.csv:4: timestamp_s: expected a number, found \"soon\""),
        "{e}"
    );
}

#[test]
fn unreadable_scenario_is_bad_input() {
    let run = simctl(&["run", "does-not-exist.toml"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("does-not-exist.toml"));
}

#[test]
fn ctrl_c_keeps_partial_results() {
    let dir = scratch("interrupt");
    let scenario = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml"),
    )
    .expect("quickstart")
    .replace("duration = \"4h\"", "duration = \"20000h\"");
    let path = dir.join("long.toml");
    std::fs::write(&path, scenario).expect("write");
    let out = dir.join("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args([
            "run",
            "--quiet",
            "--yes",
            path.to_str().expect("utf-8"),
            "--out",
        ])
        .arg(&out)
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let done = child.wait_with_output().expect("exits");
    assert_eq!(done.status.code(), Some(130));
    let r = read_json(&out);
    let truncated = r["truncated_at_s"].as_f64().expect("truncated_at_s set");
    assert!(truncated > 0.0 && truncated < 20000.0 * 3600.0);
    assert_balanced(&r);
}

#[test]
fn days_of_work_need_yes_and_say_how_long() {
    let e = rejected("huge", &GOOD.replace("rps = 5", "rps = 1e9"), &[]);
    assert!(e.contains("simulates about"), "{e}");
    assert!(e.contains("pass --yes"), "{e}");
}

#[test]
fn an_unwritable_output_is_bad_input() {
    let dir = scratch("unwritable");
    let out = dir.join("no-such-dir").join("r.json");
    let run = simctl(&[
        "run",
        "--quiet",
        "scenarios/steps.toml",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot write") && stderr.contains("r.json"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn kill_9_during_a_write_leaves_the_old_file_or_the_new_one() {
    let dir = scratch("kill9");
    let out = dir.join("r.json");
    let old = "{\"old\": true}\n";
    // quickstart writes ~1 MB of results after ~0.1 s of simulation: kill at times around it.
    for k in 0..16u64 {
        std::fs::write(&out, old).expect("old file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_simctl"))
            .args(["run", "--quiet", "scenarios/quickstart.toml", "--out"])
            .arg(&out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(20 * k));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let text = std::fs::read_to_string(&out).expect("a file is there");
        if text != old {
            let r: serde_json::Value = serde_json::from_str(&text).expect("the new file, whole");
            assert_balanced(&r);
        }
    }
    // A later write clears what killed writes left behind.
    ok(simctl(&[
        "run",
        "--quiet",
        "scenarios/steps.toml",
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
