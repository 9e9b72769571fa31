//! End-to-end: `simctl tune` over `node_pools.<pool>.…` and `cluster.karpenter.…` paths writes
//! a karpenter.yaml and a tuned scenario that reproduce what it simulated (the round trip).

use crate::common::{ok, read_json as json, run_on_seed, scratch, simctl, test_data};

#[test]
fn tuned_node_pools_round_trip_through_karpenter_yaml_and_the_written_scenario() {
    let dir = scratch("karpenter-tune");
    let report = dir.join("tune.json");
    let tuned = dir.join("tuned.toml");
    let manifests = dir.join("deploy");
    let scenario = test_data("karpenter-tune.toml");
    ok(simctl(&[
        "tune",
        scenario.to_str().expect("utf-8"),
        "--quiet",
        "--out",
        report.to_str().expect("utf-8"),
        "--write-scenario",
        tuned.to_str().expect("utf-8"),
        "--write-manifests",
        manifests.to_str().expect("utf-8"),
    ]));
    let r = json(&report);
    let rec = &r["recommendation"];
    assert!(
        rec.is_object(),
        "a candidate qualifies: {:#}",
        r["candidates"]
    );
    let params = &rec["params"];
    for path in [
        "node_pools.gpu.disruption.consolidate_after",
        "node_pools.gpu.weight",
        "cluster.karpenter.batch_idle_duration",
    ] {
        assert!(params.get(path).is_some(), "{path} searched: {params}");
    }

    // karpenter.yaml, parsed back, carries the written scenario's pool field by field.
    let text = std::fs::read_to_string(manifests.join("karpenter.yaml")).expect("karpenter.yaml");
    let docs: Vec<serde_json::Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).expect("YAML"))
        .collect();
    assert_eq!(docs.len(), 1, "{text}");
    let written: toml::Table = std::fs::read_to_string(&tuned)
        .expect("tuned scenario")
        .parse()
        .expect("TOML");
    let pool = &written["node_pools"].as_array().expect("pools")[0];
    let np = &docs[0];
    assert_eq!(np["kind"], "NodePool");
    assert_eq!(np["metadata"]["name"], pool["name"].as_str().expect("name"));
    assert_eq!(np["spec"]["weight"].as_i64(), pool["weight"].as_integer());
    assert_eq!(np["spec"]["weight"], params["node_pools.gpu.weight"]);
    let reqs = np["spec"]["template"]["spec"]["requirements"]
        .as_array()
        .expect("requirements");
    let want = pool["requirements"].as_array().expect("requirements");
    assert_eq!(reqs.len(), want.len());
    for (got, want) in reqs.iter().zip(want) {
        assert_eq!(got["key"].as_str(), want["key"].as_str());
        assert_eq!(got["operator"].as_str(), want["operator"].as_str());
        let values: Vec<&str> = want["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        assert_eq!(got["values"], serde_json::json!(values));
    }
    assert_eq!(
        np["spec"]["limits"]["nvidia.com/gpu"].as_i64(),
        pool["limits"]["nvidia.com/gpu"].as_integer()
    );
    assert_eq!(
        np["spec"]["template"]["spec"]["expireAfter"].as_str(),
        pool["expire_after"].as_str()
    );
    let d = &pool["disruption"];
    assert_eq!(
        np["spec"]["disruption"]["consolidateAfter"].as_str(),
        d["consolidate_after"].as_str()
    );
    assert_eq!(
        np["spec"]["disruption"]["consolidateAfter"],
        params["node_pools.gpu.disruption.consolidate_after"]
    );
    assert_eq!(
        np["spec"]["disruption"]["consolidationPolicy"], "WhenEmptyOrUnderutilized",
        "the default, written out"
    );
    assert_eq!(
        np["spec"]["disruption"]["budgets"],
        serde_json::json!([{ "nodes": d["budgets"][0]["nodes"].as_str().expect("nodes") }])
    );
    assert_eq!(
        written["cluster"]["karpenter"]["batch_idle_duration"].as_str(),
        params["cluster.karpenter.batch_idle_duration"].as_str()
    );
    let cluster = std::fs::read_to_string(manifests.join("cluster.yaml")).expect("cluster.yaml");
    assert!(
        cluster.contains("node_groups: []"),
        "no per-offering groups in Cortex's cluster.yaml: {cluster}"
    );
    let notes = rec["deploy_notes"].to_string();
    assert!(notes.contains("EC2NodeClass"), "{notes}");
    assert!(notes.contains("BATCH_IDLE_DURATION"), "{notes}");

    // Running the written scenario on the tuner's first seed gives the tuner's figures.
    let seed = r["seeds"][0].as_u64().expect("seed").to_string();
    let rerun = run_on_seed(&tuned, &seed, &dir.join("rerun.json"));
    assert_eq!(
        r["seeds"].as_array().map(Vec::len),
        Some(1),
        "one seed: the mean is that run"
    );
    assert_eq!(
        rerun["cost_usd_total"].as_f64(),
        rec["cost_usd_mean"].as_f64()
    );
}
