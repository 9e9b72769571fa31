//! End-to-end tests of `[tune] risk` on scenarios/tune-spot-risk.toml: the risk-aware tuner
//! rejects the all-spot configuration that passes the three search seeds but breaches on more
//! than 5 % of 200, and sharding splits the risk seeds' work with the candidates.

use crate::common::{ok, read_json as json, scratch, simctl};

const SCENARIO: &str = "scenarios/tune-spot-risk.toml";
const SPOT: &str = "node_groups.gpu-spot.min_instances";
const ON_DEMAND: &str = "node_groups.gpu.min_instances";

fn tune(scenario: &str, out: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "tune",
        scenario,
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend(extra);
    ok(simctl(&args));
    json(out)
}

fn candidate(r: &serde_json::Value, spot: u64, on_demand: u64) -> &serde_json::Value {
    r["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["params"][SPOT] == spot && c["params"][ON_DEMAND] == on_demand)
        .expect("candidate in the space")
}

#[test]
fn risk_tuner_rejects_spot_that_passes_three_seeds_but_breaches_often() {
    let dir = scratch("risk");
    let r = tune(SCENARIO, &dir.join("tune.json"), &[]);
    let spot = candidate(&r, 2, 0);
    // It passes the search: every objective met on the 3 seeds.
    assert_eq!(spot["seeds_evaluated"], 3);
    assert_eq!(spot["meets_slo"], true);
    // But breaches on more than 5 % of 200 seeds.
    let risk = &spot["risk"];
    assert_eq!(risk["seeds"], 200);
    let breaches = risk["breaches"].as_u64().expect("breaches");
    assert!(breaches > 10, "{breaches} of 200");
    assert!(risk["upper_bound"].as_f64().expect("bound") > 0.05);
    // The recommendation is a safer, costlier one whose upper bound is under the limit.
    let best = r["best"].as_u64().expect("a candidate qualifies");
    assert_ne!(Some(best), spot["id"].as_u64());
    let chosen = r["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["id"] == best)
        .expect("best");
    assert!(chosen["risk"]["upper_bound"].as_f64().expect("bound") <= 0.05);
    assert!(chosen["cost_usd_mean"].as_f64() > spot["cost_usd_mean"].as_f64());
    let notes = r["recommendation"]["notes"].to_string();
    assert!(notes.contains("cheaper but too risky"), "{notes}");
    // The report shows cost against breach probability, the spot candidate marked too risky.
    let md = dir.join("report.md");
    ok(simctl(&[
        "report",
        dir.join("tune.json").to_str().expect("utf-8"),
        "-o",
        md.to_str().expect("utf-8"),
    ]));
    let md = std::fs::read_to_string(&md).expect("report");
    assert!(
        md.contains("## Tuning: cost against breach probability"),
        "{md}"
    );
    assert!(md.contains("| 0.120 | 0.165 | too risky |"), "{md}");
    // Without `risk`, the same search recommends the spot configuration: the risk phase is what
    // rejects it.
    let text = std::fs::read_to_string(SCENARIO).expect("scenario");
    let plain = dir.join("plain.toml");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("risk ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text);
    std::fs::write(&plain, without).expect("write");
    let p = tune(plain.to_str().expect("utf-8"), &dir.join("plain.json"), &[]);
    assert_eq!(p["best"], spot["id"]);
    assert!(p.get("risk").is_none(), "no risk field without [tune] risk");
    assert!(candidate(&p, 2, 0).get("risk").is_none());
}

#[test]
fn sharded_risk_tune_merges_to_the_unsharded_report() {
    let dir = scratch("risk-shards");
    let whole = dir.join("whole.json");
    tune(SCENARIO, &whole, &[]);
    let mut args = vec!["tune".to_string(), "merge".to_string()];
    for shard in ["0/2", "1/2"] {
        let part = dir.join(format!("part-{}.json", &shard[..1]));
        tune(SCENARIO, &part, &["--shard", shard]);
        args.push(part.to_str().expect("utf-8").to_string());
    }
    let merged = dir.join("merged.json");
    args.extend(["--out".into(), merged.to_str().expect("utf-8").into()]);
    ok(simctl(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let whole = std::fs::read_to_string(&whole).expect("whole");
    let merged = std::fs::read_to_string(&merged).expect("merged");
    assert!(
        whole == merged,
        "merged shards differ from the unsharded report"
    );
}

#[test]
fn bad_risk_settings_name_the_file_and_field() {
    let dir = scratch("risk-bad");
    let text = std::fs::read_to_string(SCENARIO).expect("scenario");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        text.replace(
            "max_breach_probability = 0.05",
            "max_breach_probability = 5",
        ),
    )
    .expect("write");
    let out = simctl(&["tune", bad.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml: tune.risk.max_breach_probability: expected a probability"),
        "{err}"
    );
}
