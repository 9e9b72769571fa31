//! Tenants end to end: the noisy-neighbour example through `simctl run` (results JSON, text
//! summary, timeline series, byte-identical reruns) and `simctl report`, and the commands that
//! cannot replay tenants yet saying so.

use crate::common::{example, ok, read_json, run_results, scratch, simctl};

fn tenant<'a>(api: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    api["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("tenant {name} in {}", api["name"]))
}

fn p99(t: &serde_json::Value) -> f64 {
    t["latency_ms"]["p99"].as_f64().expect("p99")
}

#[test]
fn the_noisy_neighbour_hurts_the_others_under_fifo_and_each_fairness_option_protects_them() {
    let results = run_results(&example("tenants-noisy-neighbour.toml"));
    let apis = results["apis"].as_array().expect("apis");
    assert_eq!(apis.len(), 5);
    let noisy_requests = tenant(&apis[0], "noisy")["requests"].clone();
    for api in apis {
        let name = api["name"].as_str().expect("name");
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().expect(k);
        let tenants = api["tenants"].as_array().expect("tenants");
        for key in [
            "requests",
            "completed",
            "rejected",
            "timed_out",
            "in_flight_at_end",
        ] {
            let sum: u64 = tenants.iter().map(|t| n(t, key)).sum();
            assert_eq!(sum, n(api, key), "{name} {key}");
        }
        // Shared tenants: every variant sees the same requests.
        assert_eq!(tenant(api, "noisy")["requests"], noisy_requests, "{name}");
        for quiet in ["acme", "globex"] {
            let t = tenant(api, quiet);
            let met = t["slo"]["met"].as_bool().expect("own SLO");
            if name == "fifo" {
                assert!(p99(t) > 250.0 && !met, "{name}/{quiet}: {}", p99(t));
            } else {
                assert!(p99(t) < 200.0 && met, "{name}/{quiet}: {}", p99(t));
            }
        }
        let limited = n(tenant(api, "noisy"), "rate_limited");
        let limits = matches!(name, "rate-limit" | "concurrency-limit");
        assert_eq!(limited > 0, limits, "{name}: {limited} 429s");
    }
    let series = results["timeline"]["series"].as_object().expect("series");
    for key in [
        "latency_p99_ms/fifo/acme",
        "rps/priority/noisy",
        "rejected/weighted-fair/globex",
    ] {
        assert!(series.contains_key(key), "{key}");
    }
}

#[test]
fn tenants_runs_are_byte_identical_and_show_in_the_summary_and_the_report() {
    let dir = scratch("tenants-cli");
    let scenario = example("tenants-noisy-neighbour.toml");
    let scenario = scenario.to_str().expect("utf-8");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let out = ok(simctl(&[
        "run",
        scenario,
        "--out",
        a.to_str().expect("utf-8"),
    ]));
    ok(simctl(&[
        "run",
        "--quiet",
        scenario,
        "--out",
        b.to_str().expect("utf-8"),
    ]));
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "same seed, same bytes"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\n  noisy "), "{text}");
    assert!(text.contains("429)"), "{text}");
    let md = dir.join("report.md");
    ok(simctl(&[
        "report",
        a.to_str().expect("utf-8"),
        "--out",
        md.to_str().expect("utf-8"),
    ]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(report.contains("## Tenants"), "{report}");
    assert!(report.contains("| rate-limit | noisy |"), "{report}");
    let _ = read_json(&a);
}

#[test]
fn loadgen_refuses_a_tenant_api_by_name() {
    let scenario = example("tenants-noisy-neighbour.toml");
    let out = simctl(&[
        "loadgen",
        scenario.to_str().expect("utf-8"),
        "--api",
        "fifo",
        "--target",
        "http://127.0.0.1:9",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sum of tenants") && err.contains("fifo"),
        "{err}"
    );
}
