//! End-to-end tests of `simctl tune` on the shipped real trace.

use std::path::Path;

use crate::common::{ok, read_json as json, run_on_seed, scratch, simctl};

const SCENARIO: &str = "scenarios/tune-quickstart.toml";

#[test]
fn tuned_configuration_holds_on_new_seeds_and_is_cheaper() {
    let dir = scratch("holds");
    let report = dir.join("tune.json");
    // Written into another directory than the scenario's: its trace path must still resolve.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let tuned = elsewhere.join("tuned.toml");
    let manifests = dir.join("deploy");
    ok(simctl(&[
        "tune",
        SCENARIO,
        "--quiet",
        "--out",
        report.to_str().expect("utf-8"),
        "--write-scenario",
        tuned.to_str().expect("utf-8"),
        "--write-manifests",
        manifests.to_str().expect("utf-8"),
    ]));
    let r = json(&report);
    assert_eq!(r["schema"], "simctl.tune/v1");
    assert!(r["best"].is_u64(), "a configuration qualifies");
    let fragment = r["recommendation"]["scenario_fragment"]
        .as_str()
        .expect("fragment");
    assert!(fragment.contains("[[apis]]"), "{fragment}");
    assert_eq!(
        r["traffic_bootstrap_block_s"].as_f64(),
        Some(300.0),
        "seeds resample the recorded trace"
    );
    let notes = r["recommendation"]["notes"].as_array().expect("notes");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("value searched"))),
        "the example's recommendation sits on an edge of its space: {notes:?}"
    );
    check_manifests(&r["recommendation"]["params"], &manifests);
    let mut costs = Vec::new();
    for seed in ["1001", "1002", "1003"] {
        let res = run_on_seed(&tuned, seed, &dir.join(format!("run-{seed}.json")));
        for api in res["apis"].as_array().expect("apis") {
            assert_eq!(api["slo"]["met"], true, "seed {seed}: {}", api["slo"]);
        }
        costs.push(res["cost_usd_total"].as_f64().expect("cost"));
    }
    let start = run_on_seed(Path::new(SCENARIO), "1001", &dir.join("start.json"));
    for api in start["apis"].as_array().expect("apis") {
        assert_eq!(
            api["slo"]["met"], true,
            "the starting point meets the SLO too"
        );
    }
    let start_cost = start["cost_usd_total"].as_f64().expect("cost");
    assert!(
        costs.iter().all(|c| *c < start_cost),
        "tuned {costs:?} vs start {start_cost}"
    );
}

#[test]
fn sharded_and_unsharded_reports_are_identical() {
    let dir = scratch("shards");
    let whole = dir.join("whole.json");
    ok(simctl(&[
        "tune",
        SCENARIO,
        "--quiet",
        "--seeds",
        "2",
        "--search",
        "grid",
        "--out",
        whole.to_str().expect("utf-8"),
    ]));
    let mut parts = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let part = dir.join(format!("part-{}.json", &shard[..1]));
        ok(simctl(&[
            "tune",
            SCENARIO,
            "--quiet",
            "--seeds",
            "2",
            "--search",
            "grid",
            "--shard",
            shard,
            "--out",
            part.to_str().expect("utf-8"),
        ]));
        parts.push(part);
    }
    let merged = dir.join("merged.json");
    let mut args = vec!["tune", "merge"];
    // Out of order on purpose: merging must not depend on the order of the inputs.
    for p in parts.iter().rev() {
        args.push(p.to_str().expect("utf-8"));
    }
    args.extend(["--out", merged.to_str().expect("utf-8")]);
    ok(simctl(&args));
    let whole = std::fs::read_to_string(&whole).expect("whole");
    let merged = std::fs::read_to_string(&merged).expect("merged");
    if let Some((i, (a, b))) = whole
        .lines()
        .zip(merged.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!("line {}: unsharded {a:?} vs merged {b:?}", i + 1);
    }
    assert_eq!(whole.len(), merged.len());
    // A missing shard is an error, not a silently smaller sweep.
    let incomplete = simctl(&[
        "tune",
        "merge",
        parts[0].to_str().expect("utf-8"),
        "--out",
        dir.join("bad.json").to_str().expect("utf-8"),
    ]);
    assert_eq!(incomplete.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&incomplete.stderr).contains("missing shards: 1/3, 2/3"));
}

#[test]
fn successive_halving_finds_the_grid_optimum() {
    let dir = scratch("halving");
    let best = |search: &str| {
        let out = dir.join(format!("{search}.json"));
        ok(simctl(&[
            "tune",
            SCENARIO,
            "--quiet",
            "--search",
            search,
            "--out",
            out.to_str().expect("utf-8"),
        ]));
        let r = json(&out);
        (
            r["best"].as_u64().expect("best"),
            r["candidates"].as_array().map(Vec::len),
        )
    };
    let (grid, grid_n) = best("grid");
    let (halving, _) = best("halving");
    assert_eq!(grid, halving);
    assert_eq!(grid_n, Some(144));
}

#[test]
fn scenario_without_tune_section_is_bad_input() {
    let out = simctl(&["tune", "scenarios/quickstart.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [tune] section"));
}

/// The emitted Cortex spec and cluster config, parsed back, say what the candidate says.
fn check_manifests(params: &serde_json::Value, dir: &Path) {
    let yaml = |name: &str| -> serde_yaml_ng::Value {
        let text = std::fs::read_to_string(dir.join(name)).expect(name);
        serde_yaml_ng::from_str(&text).expect("valid YAML")
    };
    let p = |key: &str| params[key].clone();
    let api = &yaml("cortex.yaml")[0];
    assert_eq!(api["kind"].as_str(), Some("RealtimeAPI"));
    assert_eq!(api["name"].as_str(), Some("classifier"));
    assert_eq!(
        api["pod"]["max_concurrency"].as_u64(),
        p("apis.classifier.pod.threads_per_process").as_u64(),
        "one process × threads"
    );
    let a = &api["autoscaling"];
    let min = p("apis.classifier.autoscaling.min_replicas")
        .as_u64()
        .expect("min");
    let over = p("apis.classifier.autoscaling.overprovisioning")
        .as_u64()
        .expect("over");
    match p("apis.classifier.autoscaling.policy").as_str() {
        Some("fixed") => {
            for key in ["min_replicas", "max_replicas", "init_replicas"] {
                assert_eq!(a[key].as_u64(), Some(min + over), "{key}: a fixed count");
            }
        }
        Some("cortex") => {
            assert_eq!(a["min_replicas"].as_u64(), Some(min + over));
            assert_eq!(a["max_replicas"].as_u64(), Some(8));
            assert!(a["target_in_flight"].as_f64().is_some());
        }
        other => panic!("policy {other:?}"),
    }
    let cluster = yaml("cluster.yaml");
    for group in cluster["node_groups"].as_sequence().expect("node groups") {
        let name = group["name"].as_str().expect("name");
        assert_eq!(
            group["min_instances"].as_u64(),
            p(&format!("node_groups.{name}.min_instances")).as_u64(),
            "{name}"
        );
    }
    assert!(!dir.join("kubernetes.yaml").exists(), "no hpa/kpa API");
}
