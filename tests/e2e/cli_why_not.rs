//! End-to-end tests of "why (not)": every decision a rule bound and every cluster-autoscaler
//! pass that did not act carries one sentence, in `simctl run`'s results events, in
//! `simctl explain` around a moment, and in `simctl autoscale --decisions` lines.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{ok, printed_url, run_results, scratch, simctl, test_data};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The events of `kind` whose `rule` is `rule`.
fn whys<'a>(results: &'a serde_json::Value, kind: &str, rule: &str) -> Vec<&'a serde_json::Value> {
    results["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == kind && e["rule"] == rule)
        .collect()
}

fn sentence(e: &serde_json::Value) -> &str {
    e["why"].as_str().expect("why sentence")
}

#[test]
fn run_and_explain_say_why_it_did_not_scale() {
    let scenario = test_data("why-hpa.toml");
    let results = run_results(&scenario);

    // A rate-capped scale-up: the HPA asked for more than the Pods policy allows per minute.
    let capped = whys(&results, "scale", "scale_up_rate_limit");
    let first = capped.first().expect("a rate-capped scale-up");
    assert!(
        sentence(first).starts_with("scale-up capped at 3 by policy Pods 2 per 60s (recommended "),
        "{first}"
    );
    assert_eq!(first["inputs"]["from"], 1.0);
    assert_eq!(first["inputs"]["to"], 3.0);

    // A held scale-down: the 5-minute stabilization window keeps the highest recommendation.
    let held = whys(&results, "scale_held", "scale_down_stabilization");
    let held = held.first().expect("a scale-down held by stabilization");
    let text = sentence(held);
    assert!(
        text.starts_with("held at 5: scale-down stabilization, highest recommendation in the last 300s was 5 at "),
        "{text}"
    );
    assert!(
        text.contains("(recommended 1 from in-flight requests per pod"),
        "{text}"
    );
    assert_eq!(held["inputs"]["replicas"], 5.0);

    // A pending pod the cluster autoscaler did not serve: the only group is at its maximum.
    let unserved = whys(&results, "no_scale_up", "group_at_max");
    let unserved = unserved
        .first()
        .expect("pods left pending at max_instances");
    assert_eq!(unserved["api"], "model");
    assert_eq!(unserved["node_group"], "cpu");
    assert_eq!(
        sentence(unserved),
        "no scale-up for 2 pending pods of model: cpu at max_instances 3"
    );

    // Same seed, same sentences: the why records are deterministic too.
    assert_eq!(run_results(&scenario)["events"], results["events"]);

    // `simctl explain` prints the same sentences around a moment.
    let dir = scratch("why-not");
    let json = dir.join("why.json");
    std::fs::write(&json, serde_json::to_vec(&results).expect("json")).expect("written");
    let out = ok(simctl(&[
        "explain",
        s(&json),
        "--api",
        "model",
        "--at",
        "4m",
        "--window",
        "1m",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("model around 0:04:00 (from 0:03:00 to 0:05:00):"),
        "{text}"
    );
    assert!(
        text.contains("scale-up capped at 3 by policy Pods 2 per 60s"),
        "{text}"
    );
    assert!(
        text.contains("no scale-up for 2 pending pods of model: cpu at max_instances 3"),
        "{text}"
    );
    let out = ok(simctl(&[
        "explain",
        s(&json),
        "--at",
        "11m",
        "--window",
        "30s",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "held at 5: scale-down stabilization, highest recommendation in the last 300s"
        ),
        "{text}"
    );

    // Clear errors, naming the file or the flag.
    let out = simctl(&["explain", s(&json), "--api", "nope", "--at", "1m"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("why.json") && err.contains("no API named \"nope\""),
        "{err}"
    );
    let out = simctl(&["explain", s(&json), "--at", "2h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the end of the run"));
    let out = simctl(&["explain", s(&json), "--at", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--at"));
    let out = simctl(&["explain", s(&dir.join("missing.json")), "--at", "1m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
    let help = ok(simctl(&["explain", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--window") && help.contains("stabilization"),
        "{help}"
    );

    // A results file from before "why" records still reads, and says so.
    let mut old = results.clone();
    let events = old["events"].as_array_mut().expect("events");
    events.retain(|e| e["kind"] == "scale" || e["kind"] == "replica_ready");
    for e in events.iter_mut() {
        let e = e.as_object_mut().expect("event");
        e.remove("why");
        e.remove("rule");
    }
    let old_json = dir.join("old.json");
    std::fs::write(&old_json, serde_json::to_vec(&old).expect("json")).expect("written");
    let out = ok(simctl(&["explain", s(&old_json), "--at", "4m"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no reason recorded"), "{text}");

    // The report lists the why sentences.
    let md = dir.join("why.md");
    ok(simctl(&["report", "--quiet", s(&json), "-o", s(&md)]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(
        report.contains("Why it did (not) scale"),
        "report lacks the why table"
    );
    assert!(
        report.contains("cpu at max_instances 3"),
        "report lacks the CA reason"
    );
}

#[test]
fn autoscale_decisions_say_why() {
    let dir = scratch("why-autoscale");
    let decisions = dir.join("decisions.jsonl");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["autoscale", s(&test_data("why-autoscale.toml"))])
        .args(["--actuator", "local", "--listen", "127.0.0.1:0"])
        .args(["--proxy-listen", "127.0.0.1:0"])
        .args(["--metric-name", "simctl_in_flight_requests"])
        .args(["--duration", "44s", "--decisions"])
        .arg(&decisions)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simctl autoscale starts");
    let proxy = printed_url(&mut controller, "proxy");
    std::thread::sleep(Duration::from_millis(1500));
    ok(simctl(&[
        "loadgen",
        "--target",
        &format!("{proxy}/"),
        "--steps",
        "0s=5,5s=80,25s=2",
        "--duration",
        "40s",
        "--quiet",
        "--out",
        s(&dir.join("lg.json")),
    ]));
    let status = controller.wait().expect("controller exits");
    assert!(status.success(), "autoscale exit {status:?}");

    let d: Vec<serde_json::Value> = std::fs::read_to_string(&decisions)
        .expect("decisions written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(d.iter().all(|x| x["why"].is_string()), "{d:?}");
    let rule = |r: &str| d.iter().find(|x| x["rule"] == r);
    let capped = rule("scale_up_rate_limit").expect("a rate-capped scale-up");
    let text = capped["why"].as_str().expect("why");
    assert!(
        text.contains("by policy Pods 1 per 10s (recommended"),
        "{text}"
    );
    let held = rule("scale_down_stabilization").expect("a held scale-down");
    let text = held["why"].as_str().expect("why");
    assert!(
        text.contains("scale-down stabilization, highest recommendation in the last 20s was"),
        "{text}"
    );
}
