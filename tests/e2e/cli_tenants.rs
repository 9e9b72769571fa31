//! Tenants end to end: the noisy-neighbour example through `simctl run` (results JSON, text
//! summary, timeline series, byte-identical reruns) and `simctl report`, and a tenant scenario
//! run for real (`simctl serve` + `simctl loadgen`) against its simulation.

use std::path::Path;

use crate::common::{
    example, ok, read_json, run_results, run_twice, scratch, simctl, test_data, Served,
};

fn tenant<'a>(api: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    api["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("tenant {name} in {}", api["name"]))
}

fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().expect(key)
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
    let (text, a) = run_twice(&example("tenants-noisy-neighbour.toml"), &dir);
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
fn tenants_run_for_real_as_simulated() {
    // serve honours the tenants' limits and the fair queue; loadgen sends each tenant's
    // requests (the simulator's very arrivals) with its x-tenant header and reports per tenant.
    let dir = scratch("tenants-real");
    let scenario = test_data("tenants-real.toml");
    let scenario = scenario.to_str().expect("utf-8");
    let simulated = run_results(Path::new(scenario));
    let served = Served::start(&[scenario]);
    let real_path = dir.join("real.json");
    let out = ok(simctl(&[
        "loadgen",
        scenario,
        "--target",
        &served.urls[0],
        "--out",
        real_path.to_str().expect("utf-8"),
    ]));
    drop(served);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\n  quiet "), "{text}");
    let real = read_json(&real_path);
    let (sim, real) = (&simulated["apis"][0], &real["apis"][0]);
    for name in ["quiet", "noisy"] {
        let (s, r) = (tenant(sim, name), tenant(real, name));
        // The same requests, arrival by arrival.
        assert_eq!(n(s, "requests"), n(r, "requests"), "{name}");
        // The token bucket sees the same arrival times, give or take the send jitter.
        assert!(
            n(s, "rate_limited").abs_diff(n(r, "rate_limited")) <= 10,
            "{name}: {s} {r}"
        );
    }
    assert!(n(tenant(sim, "noisy"), "rate_limited") > 100);
    // Fair queueing keeps the quiet tenant served through the burst, for real as simulated.
    assert_eq!(n(tenant(real, "quiet"), "rejected"), 0);
    let (sim_p99, real_p99) = (p99(tenant(sim, "quiet")), p99(tenant(real, "quiet")));
    assert!(
        (real_p99 - sim_p99).abs() <= 0.25 * sim_p99,
        "quiet p99: simulated {sim_p99} ms, real {real_p99} ms"
    );
    let (s, r) = (
        n(tenant(sim, "noisy"), "completed"),
        n(tenant(real, "noisy"), "completed"),
    );
    assert!(
        s.abs_diff(r) as f64 <= 0.1 * s as f64,
        "noisy completed: {s} vs {r}"
    );
}
