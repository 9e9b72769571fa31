//! `simctl tune` on a scenario with a router and a pipeline (`tests/data/tune-routing.toml`):
//! the pipeline judged end to end in every candidate, only the candidates meeting its
//! end-to-end SLO qualifying, a Cortex TrafficSplitter written for the router, and the tuned
//! scenario reproducing, under `simctl run` on the tune's seeds, the figures the tuner reported.

use crate::common::{ok, read_json as json, run_on_seed, scratch, simctl, test_data};

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// A candidate's summary entry `name`.
fn entry<'a>(c: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    c["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} in candidate {}", c["id"]))
}

/// Every objective of the entry held on every seed.
fn held(e: &serde_json::Value) -> bool {
    e["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|k| f(k, "margin") >= 0.0)
}

#[test]
fn tune_judges_the_pipeline_end_to_end_and_deploys_the_router() {
    let dir = scratch("routing-tune");
    let report = dir.join("tune.json");
    let tuned = dir.join("tuned.toml");
    let manifests = dir.join("deploy");
    let out = ok(simctl(&[
        "tune",
        test_data("tune-routing.toml").to_str().expect("utf-8"),
        "--out",
        report.to_str().expect("utf-8"),
        "--write-scenario",
        tuned.to_str().expect("utf-8"),
        "--write-manifests",
        manifests.to_str().expect("utf-8"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("e2e p99 ms"), "{text}");
    assert!(text.contains("pipeline qa latency_p99_ms"), "{text}");
    let r = json(&report);
    let candidates = r["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 6);
    let (mut passing, mut failing) = (Vec::new(), Vec::new());
    for c in candidates {
        let qa = entry(c, "qa");
        assert_eq!(qa["pipeline"], true, "{qa}");
        // The APIs are not marked: an old report's entries read the same.
        assert!(entry(c, "reader").get("pipeline").is_none());
        assert_eq!(qa["checks"][0]["objective"], "latency_p99_ms");
        // Every API meets its own SLO in every candidate: the pipeline alone decides.
        for api in ["v1", "v2", "v3", "retriever", "reader"] {
            assert!(held(entry(c, api)), "{api} in {}", c["id"]);
        }
        assert_eq!(c["meets_slo"].as_bool(), Some(held(qa)), "{}", c["id"]);
        let p99 = f(qa, "latency_p99_ms_worst");
        if held(qa) {
            passing.push(p99);
        } else {
            failing.push(p99);
            assert!(
                c["why_missed"]
                    .as_str()
                    .is_some_and(|w| w.contains("pipeline qa")),
                "{c}"
            );
        }
    }
    assert!(
        !passing.is_empty() && !failing.is_empty(),
        "only some qualify: {passing:?} / {failing:?}"
    );
    let limit = 1000.0;
    assert!(passing.iter().all(|p| *p <= limit) && failing.iter().all(|p| *p > limit));

    // The router becomes a Cortex TrafficSplitter after the RealtimeAPIs.
    let cortex: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(manifests.join("cortex.yaml")).expect("cortex.yaml"),
    )
    .expect("YAML");
    let specs = cortex.as_sequence().expect("a list of specs");
    let last = specs.last().expect("specs");
    assert_eq!(last["kind"].as_str(), Some("TrafficSplitter"));
    assert_eq!(last["name"].as_str(), Some("front"));
    let apis: Vec<(String, u64, bool)> = last["apis"]
        .as_sequence()
        .expect("apis")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().expect("name").to_string(),
                a["weight"].as_u64().expect("weight"),
                a["shadow"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        apis,
        [
            ("v1".to_string(), 80, false),
            ("v2".to_string(), 20, false),
            ("v3".to_string(), 10, true)
        ]
    );
    assert!(specs[..specs.len() - 1]
        .iter()
        .all(|s| s["kind"].as_str() == Some("RealtimeAPI")));

    // Round trip: the tuned scenario, run on the tune's seeds, gives the reported figures.
    let best = r["best"].as_u64().expect("a candidate qualifies");
    let chosen = candidates
        .iter()
        .find(|c| c["id"].as_u64() == Some(best))
        .expect("best");
    let (mut p99, mut cost) = (0.0_f64, 0.0);
    let seeds = r["seeds"].as_array().expect("seeds");
    for seed in seeds {
        let seed = seed.as_u64().expect("seed").to_string();
        let res = run_on_seed(&tuned, &seed, &dir.join(format!("run-{seed}.json")));
        let qa = &res["pipelines"][0];
        assert_eq!(qa["slo"]["met"], true, "seed {seed}: {qa}");
        p99 = p99.max(f(&qa["latency_ms"], "p99"));
        cost += f(&res, "cost_usd_total");
    }
    cost /= seeds.len() as f64;
    let reported = f(entry(chosen, "qa"), "latency_p99_ms_worst");
    assert!((p99 - reported).abs() < 1e-9, "{p99} vs {reported}");
    let reported = f(chosen, "cost_usd_mean");
    assert!((cost - reported).abs() < 1e-9, "{cost} vs {reported}");

    // The report shows the pipeline, candidate by candidate.
    let md = dir.join("tune.md");
    ok(simctl(&[
        "report",
        report.to_str().expect("utf-8"),
        "--out",
        md.to_str().expect("utf-8"),
    ]));
    let md = std::fs::read_to_string(&md).expect("report");
    assert!(
        md.contains("every pipeline end to end") && md.contains("qa: end-to-end p99, rejected"),
        "{md}"
    );
    assert!(md.contains("pipeline qa (end to end)"), "{md}");
    // And the tuned run's report, the pipeline's end-to-end objectives.
    let run_md = dir.join("run.md");
    ok(simctl(&[
        "report",
        dir.join("run-7.json").to_str().expect("utf-8"),
        "--out",
        run_md.to_str().expect("utf-8"),
    ]));
    let run_md = std::fs::read_to_string(&run_md).expect("report");
    assert!(
        run_md.contains("| pipeline (end to end) | objective |")
            && run_md.contains("| qa | latency_p99_ms | ≤ 1000 |"),
        "{run_md}"
    );
}
