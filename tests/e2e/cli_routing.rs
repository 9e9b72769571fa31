//! Routers and pipelines end to end: the canary and question-answering examples through
//! `simctl run` (results JSON, text summary, byte-identical reruns) and `simctl report`, and the
//! commands that do not route or chain requests yet saying so (`simctl tune` does: see
//! `cli_routing_tune`).

use crate::common::{example, ok, run_results, run_twice, scratch, simctl};

fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn api<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("API {name}"))
}

#[test]
fn the_canary_ramp_moves_the_split_and_the_shadow_gets_its_copies() {
    let results = run_results(&example("canary.toml"));
    let router = &results["routers"][0];
    let steps = router["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{router}");
    let requests = |s: &serde_json::Value, i: usize| s["requests"][i].as_u64().expect("count");
    // 95/5, then 50/50, then 0/100 (the third column is the shadow's copies).
    let share_v2 = |s| requests(s, 1) as f64 / (requests(s, 0) + requests(s, 1)) as f64;
    assert!(
        (0.03..0.07).contains(&share_v2(&steps[0])),
        "{}",
        share_v2(&steps[0])
    );
    assert!(
        (0.45..0.55).contains(&share_v2(&steps[1])),
        "{}",
        share_v2(&steps[1])
    );
    assert_eq!(requests(&steps[2], 0), 0);
    let total = n(router, "requests");
    assert_eq!(
        n(api(&results, "v1"), "requests") + n(api(&results, "v2"), "requests"),
        total
    );
    let copies = n(&router["shadow"], "requests");
    assert_eq!(n(api(&results, "v3"), "requests"), copies);
    let copied = copies as f64 / total as f64;
    assert!((0.09..0.11).contains(&copied), "{copied}");
    // v1 hands its load to v2: v2 ends with more replicas than it started with, v1 with fewer.
    let ready = |name: &str| {
        results["timeline"]["series"][format!("replicas_ready/{name}")]
            .as_array()
            .expect("series")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect::<Vec<f64>>()
    };
    let (v1, v2) = (ready("v1"), ready("v2"));
    let peak = |s: &[f64]| s.iter().copied().fold(0.0, f64::max);
    assert!(
        v2.last() > v2.first() && peak(&v1) > *v1.last().expect("v1"),
        "{v1:?} {v2:?}"
    );
}

#[test]
fn the_pipeline_reports_end_to_end_latency_and_where_the_time_went() {
    let results = run_results(&example("pipeline-qa.toml"));
    let p = &results["pipelines"][0];
    let stages = p["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 2);
    assert_eq!(
        n(p, "requests"),
        n(p, "completed")
            + n(p, "rejected")
            + n(p, "timed_out")
            + n(p, "interrupted")
            + n(p, "in_flight_at_end")
    );
    assert_eq!(
        n(&stages[0], "entered"),
        n(api(&results, "retriever"), "requests")
    );
    assert_eq!(
        n(&stages[1], "entered"),
        n(api(&results, "reader"), "requests")
    );
    assert_eq!(n(&stages[1], "entered"), n(&stages[0], "passed"));
    assert_eq!(n(p, "completed"), n(&stages[1], "passed"));
    // The GPU reader is where the time goes.
    let share = |s: &serde_json::Value| s["share_of_latency"].as_f64().expect("share");
    assert!(share(&stages[1]) > share(&stages[0]), "{p}");
    let mean = |s: &serde_json::Value| s["mean_ms"].as_f64().expect("mean");
    let e2e = p["latency_ms"]["mean"].as_f64().expect("mean");
    // End to end is the sum of the stages (of the requests that went all the way).
    assert!(
        (e2e - mean(&stages[0]) - mean(&stages[1])).abs() < 0.1 * e2e,
        "{p}"
    );
}

#[test]
fn routing_runs_are_byte_identical_and_show_in_the_summary_and_the_report() {
    let dir = scratch("routing-cli");
    for (name, marks, section) in [
        (
            "canary.toml",
            ["router sentiment:", "shadow v3:"],
            "| sentiment | v3 | shadow |",
        ),
        (
            "pipeline-qa.toml",
            ["pipeline qa:", "stage 2 reader"],
            "| 2 | reader |",
        ),
    ] {
        let (text, a) = run_twice(&example(name), &dir);
        for mark in marks {
            assert!(text.contains(mark), "{name}: {mark}: {text}");
        }
        let md = dir.join("report.md");
        ok(simctl(&[
            "report",
            a.to_str().expect("utf-8"),
            "--out",
            md.to_str().expect("utf-8"),
        ]));
        let report = std::fs::read_to_string(&md).expect("report");
        assert!(report.contains("## Routers and pipelines"), "{report}");
        assert!(report.contains(section), "{name}: {report}");
    }
}

#[test]
fn loadgen_and_validate_refuse_routers_and_pipelines_by_section() {
    for (args, section) in [
        (
            vec![
                "loadgen",
                "canary.toml",
                "--api",
                "v1",
                "--target",
                "http://127.0.0.1:9",
            ],
            "[[routers]]",
        ),
        (vec!["validate", "pipeline-qa.toml"], "[[pipelines]]"),
    ] {
        let path = example(args[1]);
        let mut args = args.clone();
        args[1] = path.to_str().expect("utf-8");
        let out = simctl(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(section) && err.contains(args[0]),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_router_whose_weights_do_not_sum_to_100_is_refused_with_its_field() {
    let dir = scratch("routing-bad");
    let text = std::fs::read_to_string(example("canary.toml"))
        .expect("canary")
        .replace(
            "{ name = \"v2\", weight = 5 }",
            "{ name = \"v2\", weight = 15 }",
        );
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text).expect("write");
    let out = simctl(&["run", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routers[0].apis") && err.contains("sum to 100, found 110"),
        "{err}"
    );
}
