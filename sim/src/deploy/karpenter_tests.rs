//! The NodePools are checked against upstream's own CRD (`testdata/karpenter.sh_nodepools.yaml`,
//! copied from kubernetes-sigs/karpenter): every field must be one the schema declares, with its
//! type, enum, pattern, bounds and required fields; then field by field against the scenario.

use super::super::manifests;
use serde_json::Value;

const CRD: &str = include_str!("testdata/karpenter.sh_nodepools.yaml");

const POOLS: &str = r#"
name = "pools"
duration = "1h"

[cluster.karpenter]
batch_idle_duration = "2s"

[[node_groups]]
name = "base"
instance_type = "m5.large"
min_instances = 1

[[node_pools]]
name = "gpu"
weight = 10
requirements = [
  { key = "karpenter.k8s.aws/instance-family", operator = "In", values = ["g4dn", "g5"] },
  { key = "karpenter.k8s.aws/instance-gpu-count", operator = "Lt", values = ["2"] },
  { key = "karpenter.sh/capacity-type", operator = "In", values = ["spot", "on-demand"] },
]
limits = { "nvidia.com/gpu" = 8, nodes = 8 }
spot_capacity = 2
expire_after = "90m"
[node_pools.disruption]
consolidation_policy = "WhenEmpty"
consolidate_after = "1.5m"
budgets = [{ nodes = "20%" }, { nodes = "0", reasons = ["Underutilized"], schedule = "0 9 * * *", duration = "8h30m" }]

[[node_pools]]
name = "cpu"
requirements = [
  { key = "karpenter.k8s.aws/instance-category", operator = "In", values = ["c", "m"] },
]
limits = { cpu = "64", memory = "256Gi" }

[[apis]]
name = "detector"
node_groups = ["gpu"]
[apis.compute]
cpu = "1"
mem = "2Gi"
gpu = 1
[apis.service_time]
distribution = "constant"
value = "50ms"
[apis.traffic]
kind = "poisson"
rps = 5
"#;

/// The `openAPIV3Schema` of the CRD's `v1` version.
fn schema() -> Value {
    let crd: Value = serde_yaml_ng::from_str(CRD).expect("the CRD parses");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Where `value` breaks `schema`, as `path: problem` lines (empty when it conforms). Covers
/// what the CRD uses for NodePool's spec: type, properties (unknown fields refused, as a
/// structural schema would prune them), required, enum, pattern, minimum/maximum, items,
/// additionalProperties and int-or-string.
fn violations(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    let int_or_string = schema["x-kubernetes-int-or-string"] == Value::Bool(true);
    let type_ok = match schema["type"].as_str() {
        _ if int_or_string => value.is_string() || value.is_i64() || value.is_u64(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(format!(
            "{path}: expected {}, found {value}",
            schema["type"]
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            out.push(format!("{path}: {value} not in {options:?}"));
        }
    }
    if let (Some(pattern), Some(text)) = (schema["pattern"].as_str(), value.as_str()) {
        let re = regex::Regex::new(pattern).expect("the CRD's pattern compiles");
        if !re.is_match(text) {
            out.push(format!("{path}: \"{text}\" does not match {pattern}"));
        }
    }
    if let Some(n) = value.as_i64() {
        if schema["minimum"].as_i64().is_some_and(|m| n < m)
            || schema["maximum"].as_i64().is_some_and(|m| n > m)
        {
            out.push(format!("{path}: {n} out of bounds"));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(key.as_str().unwrap_or_default()) {
                out.push(format!("{path}: missing required {key}"));
            }
        }
        for (key, v) in object {
            let at = format!("{path}.{key}");
            if let Some(s) = schema["properties"].get(key) {
                violations(v, s, &at, out);
            } else if schema["additionalProperties"].is_object() {
                violations(v, &schema["additionalProperties"], &at, out);
            } else if schema["properties"].is_object() {
                out.push(format!("{at}: not a field of the CRD"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, v) in items.iter().enumerate() {
            violations(v, &schema["items"], &format!("{path}[{i}]"), out);
        }
    }
}

fn pools(text: &str) -> (Vec<Value>, Vec<String>) {
    let m = manifests(text, "t.toml").expect("valid");
    let docs = m
        .karpenter_yaml()
        .expect("yaml")
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str::<Value>(d).expect("each document parses"))
        .collect();
    (docs, m.notes)
}

#[test]
fn node_pools_conform_to_upstreams_crd() {
    let (docs, _) = pools(POOLS);
    assert_eq!(docs.len(), 2);
    let schema = schema();
    for doc in &docs {
        let mut bad = Vec::new();
        violations(doc, &schema, "", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}\n{doc:#}");
    }
    // The validator does catch what the CRD forbids.
    let mut broken = docs[0].clone();
    broken["spec"]["disruption"]["consolidationPolicy"] = "Sometimes".into();
    broken["spec"]["disruption"]["consolidateAfter"] = "500ms".into();
    broken["spec"]["weight"] = 0.into();
    broken["spec"]["template"]["spec"]["nodeClassRef"]
        .as_object_mut()
        .expect("object")
        .remove("kind");
    broken["spec"]["disruption"]["budgets"][1]["duration"] = "30s".into();
    broken["spec"]["disruption"]["surprise"] = true.into();
    let mut bad = Vec::new();
    violations(&broken, &schema, "", &mut bad);
    assert_eq!(bad.len(), 6, "{bad:#?}");
}

#[test]
fn node_pools_carry_every_simulated_setting() {
    let (docs, notes) = pools(POOLS);
    let gpu = &docs[0];
    assert_eq!(gpu["apiVersion"], "karpenter.sh/v1");
    assert_eq!(gpu["kind"], "NodePool");
    assert_eq!(gpu["metadata"]["name"], "gpu");
    assert_eq!(gpu["spec"]["weight"], 10);
    let t = &gpu["spec"]["template"]["spec"];
    assert_eq!(
        t["requirements"],
        serde_json::json!([
            { "key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g4dn", "g5"] },
            { "key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Lt", "values": ["2"] },
            { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"] },
        ])
    );
    assert_eq!(
        t["nodeClassRef"],
        serde_json::json!({ "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default" })
    );
    assert_eq!(t["expireAfter"], "1h30m");
    assert_eq!(
        gpu["spec"]["limits"],
        serde_json::json!({ "nvidia.com/gpu": 8, "nodes": 8 })
    );
    assert_eq!(
        gpu["spec"]["disruption"],
        serde_json::json!({
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "1m30s",
            "budgets": [
                { "nodes": "20%" },
                { "nodes": "0", "reasons": ["Underutilized"], "schedule": "0 9 * * *", "duration": "8h30m" },
            ],
        })
    );
    // Defaults written out: weight 0 is no weight; on-demand only; upstream's disruption.
    let cpu = &docs[1];
    assert!(cpu["spec"].get("weight").is_none(), "{cpu:#}");
    assert_eq!(
        cpu["spec"]["template"]["spec"]["requirements"][1],
        serde_json::json!({ "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"] })
    );
    assert_eq!(cpu["spec"]["template"]["spec"]["expireAfter"], "720h");
    assert_eq!(
        cpu["spec"]["disruption"],
        serde_json::json!({
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "0s",
            "budgets": [{ "nodes": "10%" }],
        })
    );
    assert_eq!(
        cpu["spec"]["limits"],
        serde_json::json!({ "cpu": "64", "memory": "256Gi" })
    );
    let all = notes.join("\n");
    for expected in [
        "EC2NodeClass \"default\"",
        "BATCH_IDLE_DURATION=2s and BATCH_MAX_DURATION=10s",
        "assumptions of the simulation, not NodePool settings; check them against your region's history",
        "detector: runs on NodePool(s) gpu",
    ] {
        assert!(all.contains(expected), "{expected}: {all}");
    }
}

#[test]
fn the_cluster_yaml_keeps_static_groups_and_no_offering_groups() {
    let m = manifests(POOLS, "t.toml").expect("valid");
    let names: Vec<&str> = m
        .cortex_cluster
        .node_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(names, ["base"]);
}

#[test]
fn weights_outside_upstreams_range_are_mapped_by_rank_and_sub_units_rounded_up() {
    let text = POOLS
        .replace("weight = 10", "weight = 500")
        .replace("duration = \"8h30m\"", "duration = \"90s\"")
        .replace(
            "consolidate_after = \"1.5m\"",
            "consolidate_after = \"250ms\"",
        );
    let (docs, notes) = pools(&text);
    assert_eq!(docs[0]["spec"]["weight"], 2);
    assert_eq!(docs[1]["spec"]["weight"], 1);
    assert_eq!(
        docs[0]["spec"]["disruption"]["budgets"][1]["duration"],
        "2m"
    );
    assert_eq!(docs[0]["spec"]["disruption"]["consolidateAfter"], "1s");
    let all = notes.join("\n");
    assert!(all.contains("mapped by rank"), "{all}");
    assert!(all.contains("written as 2m"), "{all}");
    assert!(all.contains("rounded up"), "{all}");
    let schema = schema();
    for doc in &docs {
        let mut bad = Vec::new();
        violations(doc, &schema, "", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn an_invalid_pool_is_refused_with_its_field() {
    let text = POOLS.replace("\"WhenEmpty\"", "\"Sometimes\"");
    let err = manifests(&text, "t.toml").unwrap_err().to_string();
    assert!(
        err.contains("node_pools[0].disruption.consolidation_policy"),
        "{err}"
    );
}

#[test]
fn no_pools_no_node_pools() {
    let text = POOLS
        .split("[[node_pools]]")
        .next()
        .expect("head")
        .to_string()
        + &POOLS[POOLS.find("[[apis]]").expect("apis")..];
    let text = text
        .replace("[cluster.karpenter]\nbatch_idle_duration = \"2s\"\n", "")
        .replace("node_groups = [\"gpu\"]\n", "");
    let m = manifests(&text, "t.toml").expect("valid");
    assert_eq!(m.karpenter_yaml().expect("yaml"), "");
    assert!(
        !m.notes.iter().any(|n| n.contains("karpenter")),
        "{:?}",
        m.notes
    );
}

#[test]
fn the_e2e_tuning_scenario_deploys() {
    let text = include_str!("../../../tests/data/karpenter-tune.toml");
    let (docs, _) = pools(text);
    assert_eq!(docs.len(), 1);
}
