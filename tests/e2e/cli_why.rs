//! End-to-end tests of "why it missed, and what it costs": the attribution of SLO misses in
//! `simctl run` (summary and results), the `[slo] warmup`, the tuner's warning when a run's start
//! dominates a miss, and `simctl report --growth`.

use std::path::Path;

use crate::common::{example, ok, read_json, run_results, scratch, simctl};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn spot_fallback_names_the_spot_reclaim_behind_its_rejections() {
    let results = run_results(&example("spot-fallback.toml"));
    let api = &results["apis"][0];
    assert_eq!(api["slo"]["met"], false);
    let misses = api["slo"]["misses"].as_array().expect("misses recorded");
    let total: f64 = misses
        .iter()
        .map(|m| m["share"].as_f64().expect("share"))
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "shares sum to 1: {total}");
    let reclaim = misses
        .iter()
        .find(|m| m["cause"] == "spot_reclaim")
        .expect("a spot reclaim is named");
    let detail = reclaim["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("0 ready replicas after a spot reclaim of 1 gpu-spot node at 2:29:29"),
        "{detail}"
    );
    // Every rejection that found no ready replica falls in the reclaim's interval: the reclaim
    // is the cause of all of them. The other interval is the 30-minute scale-up.
    assert_eq!(reclaim["rejected"], api["rejected_no_replica"]);
    assert!(reclaim["share"].as_f64().expect("share") > 0.4, "{reclaim}");
    assert_eq!(reclaim["from_s"], 8960.0);
    let other = misses
        .iter()
        .find(|m| m["cause"] != "spot_reclaim")
        .expect("scale-up");
    assert_eq!(other["cause"], "scale_up_node_boot");
    assert_eq!(other["from_s"], 1800.0);

    // The summary says it in words; the report has the section, the table and the chart.
    let out = ok(simctl(&["run", s(&example("spot-fallback.toml"))]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("why detector missed its SLO (rejection_rate 2.74 % > 1.00 %):"),
        "{text}"
    );
    assert!(
        text.contains("45 % from 149–155 min: 0 ready replicas after a spot reclaim"),
        "{text}"
    );
    assert!(text.contains("of which unrequested capacity"), "{text}");
    assert!(text.contains("USD per month (730 h)"), "{text}");
    assert!(!text.contains("idle"), "{text}");
    let dir = scratch("why-spot");
    let json = dir.join("spot.json");
    std::fs::write(&json, serde_json::to_vec(&results).expect("json")).expect("written");
    let md = dir.join("spot.md");
    ok(simctl(&["report", "--quiet", s(&json), "-o", s(&md)]));
    let report = std::fs::read_to_string(&md).expect("report");
    for wanted in [
        "## Why the SLO was missed",
        "| detector | 2:29:20–2:35:00 | 45 % |",
        "spot reclaim",
        "rejections.png",
        "## Utilisation and headroom",
        "gpu-util.png",
        "USD per month (730 h)",
    ] {
        assert!(report.contains(wanted), "report lacks {wanted:?}");
    }
}

/// A run whose start is busier than its one replica: everything it rejects, it rejects in the
/// first three minutes.
const BUSY_START: &str = r#"
name = "busy start"
duration = "30m"
seed = 3

[slo]
max_rejection_rate = 0.01

[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 2

[[apis]]
name = "echo"
startup_time = "60s"

[apis.compute]
cpu = "500m"
mem = "512Mi"

[apis.pod]
max_concurrency = 4
max_queue_length = 4

[apis.service_time]
distribution = "constant"
value = "100ms"

[apis.traffic]
kind = "steps"
steps = [{ at = "0s", rps = 100 }, { at = "3m", rps = 20 }]

[apis.autoscaling]
policy = "cortex"
min_replicas = 1
max_replicas = 10
target_in_flight = 2

[tune]
seeds = 1

[tune.space]
"apis.echo.autoscaling.target_in_flight" = [2, 4]
"#;

#[test]
fn warmup_leaves_the_start_out_of_the_verdict_and_the_tuner_suggests_it() {
    let dir = scratch("why-warmup");
    let cold = dir.join("cold.toml");
    std::fs::write(&cold, BUSY_START).expect("written");
    let warm = dir.join("warm.toml");
    std::fs::write(
        &warm,
        BUSY_START.replace(
            "max_rejection_rate = 0.01",
            "max_rejection_rate = 0.01\nwarmup = \"3m\"",
        ),
    )
    .expect("written");
    let a = run_results(&cold);
    let b = run_results(&warm);
    let (a, b) = (&a["apis"][0], &b["apis"][0]);
    assert_eq!(a["slo"]["met"], false);
    assert_eq!(a["slo"]["misses"][0]["from_s"], 0.0);
    assert!(a["slo"].get("warmup_s").is_none());
    // Same run, same totals; only the judgement changes.
    for k in ["requests", "rejected", "completed"] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert!(a["rejected"].as_u64().expect("rejected") > 1000);
    assert_eq!(b["slo"]["met"], true, "{}", b["slo"]);
    assert_eq!(b["slo"]["warmup_s"], 180.0);
    assert_eq!(b["slo"]["checks"][0]["actual"], 0.0);
    assert!(b["slo"].get("misses").is_none());

    let tune_out = dir.join("tune.json");
    let out = ok(simctl(&[
        "tune",
        "--quiet",
        s(&cold),
        "--out",
        s(&tune_out),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: 2 of 2 candidates that miss the SLO miss it mostly at the start of the run"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("[slo] warmup = \"3m\""), "{stderr}");
    let tune = read_json(&tune_out);
    assert_eq!(tune["warnings"].as_array().expect("warnings").len(), 1);
    assert!(tune["candidates"][0]["start_dominated"].is_string());
}

#[test]
fn report_growth_runs_the_scenario_at_each_multiple() {
    let dir = scratch("why-growth");
    let md = dir.join("growth.md");
    let out = ok(simctl(&[
        "report",
        "--growth",
        "1,1.5,2",
        "--keep-results",
        "reports/tests/fixtures/small.toml",
        "-o",
        s(&md),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2× traffic simulated"), "{stderr}");
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(report.contains("## Growth sweep"), "{report}");
    for (label, traffic) in [("1x", "1.00×"), ("1.5x", "1.50×"), ("2x", "2.00×")] {
        assert!(
            report.contains(&format!("| {label} | report fixture")),
            "no row for {label}"
        );
        assert!(report.contains(&format!("| {traffic} |")), "no {traffic}");
    }
    assert!(
        report.contains("compare-slo.png"),
        "SLO against growth charted"
    );
    let requests = |m: &str| {
        read_json(&dir.join(format!("growth-{m}x.json")))["apis"][0]["requests"]
            .as_u64()
            .expect("requests")
    };
    let (one, two) = (requests("1"), requests("2"));
    assert!(two > one * 19 / 10 && two < one * 21 / 10, "{one} → {two}");
    // The 1× run is the plain run of the scenario, byte for byte.
    let plain = dir.join("plain.json");
    ok(simctl(&[
        "run",
        "--quiet",
        "reports/tests/fixtures/small.toml",
        "--out",
        s(&plain),
    ]));
    assert_eq!(
        std::fs::read(&plain).expect("plain"),
        std::fs::read(dir.join("growth-1x.json")).expect("1x")
    );
    // Bad multiples are bad input.
    let bad = simctl(&[
        "report",
        "--growth",
        "0",
        "reports/tests/fixtures/small.toml",
        "-o",
        s(&md),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
