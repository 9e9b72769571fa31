//! Tenancy designs end to end: `simctl tune` searching the design with every tenant's own SLO
//! in the verdict, the report's tenant table, and what it writes for a pool per tenant.

use crate::common::{example, ok, read_json, scratch, simctl};

#[test]
fn tune_compares_the_designs_on_every_tenants_slo() {
    let dir = scratch("tenancy-tune");
    let out = dir.join("tune.json");
    let scenario = example("tenancy-designs.toml");
    ok(simctl(&[
        "tune",
        "--quiet",
        scenario.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let r = read_json(&out);
    let candidates = r["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 12);
    let find = |design: &str, target: u64, queue: &str| {
        candidates
            .iter()
            .find(|c| {
                c["params"]["tenancy.design"] == design
                    && c["params"]["apis.reader.autoscaling.target_in_flight"] == target
                    && c["params"]["apis.reader.fairness.queue"] == queue
            })
            .unwrap_or_else(|| panic!("{design} {target} {queue}"))
    };
    let cost = |c: &serde_json::Value| c["cost_usd_mean"].as_f64().expect("cost");
    for target in [2, 4] {
        // A cluster each is a pool each plus two more control planes (0.10 USD/h for 1 h).
        let (pool, cluster) = (
            find("pool_per_tenant", target, "fifo"),
            find("cluster_per_tenant", target, "fifo"),
        );
        assert!((cost(cluster) - cost(pool) - 0.2).abs() < 1e-9);
        // Every tenant is judged in every design: three tenant entries.
        for c in [pool, cluster, find("shared", target, "fifo")] {
            let tenants = c["apis"]
                .as_array()
                .expect("apis")
                .iter()
                .filter(|a| a["tenant"].is_string())
                .count();
            assert_eq!(tenants, 3, "{}", c["params"]);
        }
    }
    // Shared workers scaled late: the spiky tenant's batches hurt the others, whose own SLO
    // fails the candidate even where the API has no objective of its own.
    let noisy = find("shared", 4, "fifo");
    assert_eq!(noisy["meets_slo"], false);
    let bigco = noisy["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .find(|a| a["tenant"] == "bigco")
        .expect("bigco");
    assert!(bigco["latency_p99_ms_worst"].as_f64().expect("p99") > 300.0);
    // The cheapest design meeting every tenant's SLO: shared workers scaled early.
    let best = r["best"].as_u64().expect("a recommendation");
    let best = candidates.iter().find(|c| c["id"] == best).expect("best");
    assert_eq!(best["params"]["tenancy.design"], "shared");
    let md = dir.join("report.md");
    ok(simctl(&[
        "report",
        out.to_str().expect("utf-8"),
        "--out",
        md.to_str().expect("utf-8"),
    ]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(
        report.contains("every tenant, candidate by candidate"),
        "{report}"
    );
    assert!(report.contains("| bigco: p99, refused |"), "{report}");
    assert!(report.contains("MISSED"), "{report}");
}

#[test]
fn a_pool_per_tenant_is_written_as_it_was_simulated() {
    let dir = scratch("tenancy-pool");
    let text = std::fs::read_to_string(example("tenancy-designs.toml")).expect("example");
    let start = text.find("[tune.space]").expect("space");
    let text = format!(
        "{}[tune.space]\n\"tenancy.design\" = [\"pool_per_tenant\"]\n\"apis.reader.autoscaling.target_in_flight\" = [4]\n",
        &text[..start]
    );
    let scenario = dir.join("pool.toml");
    std::fs::write(&scenario, text).expect("write");
    let (tuned, manifests) = (dir.join("tuned.toml"), dir.join("deploy"));
    ok(simctl(&[
        "tune",
        "--quiet",
        scenario.to_str().expect("utf-8"),
        "--write-scenario",
        tuned.to_str().expect("utf-8"),
        "--write-manifests",
        manifests.to_str().expect("utf-8"),
    ]));
    let yaml = |name: &str| -> serde_yaml_ng::Value {
        let text = std::fs::read_to_string(manifests.join(name)).expect(name);
        serde_yaml_ng::from_str(&text).expect("valid YAML")
    };
    let apis: Vec<String> = yaml("cortex.yaml")
        .as_sequence()
        .expect("APIs")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(apis, ["reader-bigco", "reader-spiky", "reader-small"]);
    let cluster = yaml("cluster.yaml");
    let groups: Vec<(String, u64)> = cluster["node_groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .map(|g| {
            let name = g["name"].as_str().expect("name").to_string();
            (name, g["min_instances"].as_u64().expect("min"))
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("gpu-bigco".to_string(), 1),
            ("gpu-spiky".to_string(), 1),
            ("gpu-small".to_string(), 1)
        ]
    );
    // The written scenario runs as the same three APIs, each on its own pool.
    let out = dir.join("run.json");
    ok(simctl(&[
        "run",
        "--quiet",
        tuned.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let run = read_json(&out);
    let names: Vec<&str> = run["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, apis);
    for group in run["node_groups"].as_array().expect("groups") {
        assert!(group["name"].as_str().expect("name").starts_with("gpu-"));
    }
}
