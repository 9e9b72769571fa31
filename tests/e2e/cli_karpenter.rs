//! End-to-end: scenarios/karpenter-vs-ca.toml and its cluster-autoscaler twin run the same
//! workload both ways, and the Karpenter run shows what its comments promise.

use crate::common::{example, ok, run_results as run, scratch, simctl};

#[test]
fn karpenter_and_the_cluster_autoscaler_run_the_same_workload() {
    let k = run(&example("karpenter-vs-ca.toml"));
    let ca = run(&example("karpenter-vs-ca.cluster-autoscaler.toml"));
    assert!(
        ca.get("karpenter").is_none(),
        "no karpenter key without node pools"
    );
    for api in 0..2 {
        assert_eq!(
            k["apis"][api]["requests"], ca["apis"][api]["requests"],
            "same traffic"
        );
    }
    let cost = |r: &serde_json::Value| r["cost_usd_total"].as_f64().expect("cost");
    assert!(cost(&k) < cost(&ca), "{} vs {}", cost(&k), cost(&ca));

    let pools = k["karpenter"]["pools"].as_array().expect("pools");
    assert_eq!(pools.len(), 2);
    let gpu = &pools[0];
    let n = |v: &serde_json::Value| v.as_u64().expect("count");
    assert!(n(&gpu["spot_launches"]) > 0 && n(&gpu["launches"]) > n(&gpu["spot_launches"]));
    assert!(n(&gpu["insufficient_capacity"]) > 0);
    let t = &gpu["terminations"];
    assert!(n(&t["underutilized_deleted"]) + n(&t["underutilized_replaced"]) + n(&t["empty"]) > 0);
    assert!(n(&t["interrupted"]) > 0);
    assert!(n(&gpu["replica_restarts"]) > 0);
    // Insufficient spot capacity is followed by a launch of another offering at once.
    let events = k["events"].as_array().expect("events");
    let ice = events
        .iter()
        .position(|e| {
            e["kind"] == "failed_launch"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("InsufficientInstanceCapacity"))
        })
        .expect("an insufficient-capacity failure");
    let next = events[ice..]
        .iter()
        .find(|e| e["kind"] == "node_launch")
        .expect("a launch after it");
    assert_eq!(
        next["t_s"], events[ice]["t_s"],
        "fallback in the same provisioning pass"
    );
    assert_ne!(next["node_group"], events[ice]["node_group"]);
}

#[test]
fn the_summary_and_the_report_show_the_node_pools() {
    let dir = scratch("karpenter-summary");
    let results = dir.join("k.json");
    let out = ok(simctl(&[
        "run",
        "scenarios/karpenter-vs-ca.toml",
        "--out",
        results.to_str().expect("utf-8"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("node pool") && text.contains("node churn"),
        "{text}"
    );
    assert!(
        !text.contains("g5.xlarge/on-demand"),
        "offerings without nodes are left out"
    );
    let md = dir.join("k.md");
    ok(simctl(&[
        "report",
        results.to_str().expect("utf-8"),
        "-o",
        md.to_str().expect("utf-8"),
    ]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(
        report.contains("## Karpenter") && report.contains("replica restarts"),
        "{report}"
    );
}

#[test]
fn node_pools_and_cluster_autoscaler_settings_do_not_mix() {
    let dir = scratch("karpenter-mix");
    let text = std::fs::read_to_string(example("karpenter-vs-ca.toml")).expect("read");
    let path = dir.join("mixed.toml");
    std::fs::write(
        &path,
        text.replace(
            "[slo]",
            "[cluster.autoscaler]\nscan_interval = \"20s\"\n\n[slo]",
        ),
    )
    .expect("write");
    let out = simctl(&["run", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.autoscaler") && err.contains("node_pools"),
        "{err}"
    );
}
