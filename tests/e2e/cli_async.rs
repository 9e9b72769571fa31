//! `kind = "async"` end to end: the example runs, nothing is refused, every submitted job is
//! served or still queued, the queue scales the replicas, and bad settings name their field.

use crate::common::{example, run_results, scratch, simctl};

#[test]
fn an_async_api_queues_every_job_and_scales_on_the_queue() {
    let r = run_results(&example("async-batchy.toml"));
    let a = &r["apis"][0];
    let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k}"));
    assert_eq!(n("rejected"), 0, "a queue refuses nothing");
    assert_eq!(n("timed_out"), 0);
    assert_eq!(
        n("requests"),
        n("completed") + n("interrupted") + n("in_flight_at_end")
    );
    // Time to result is queue age plus service: above the queue wait at every percentile.
    for p in ["p50", "p99"] {
        assert!(
            a["latency_ms"][p].as_f64() > a["queue_wait_ms"][p].as_f64(),
            "{p}"
        );
    }
    // The burst grows the replicas from one, 1.5× per step.
    let targets: Vec<f64> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "scale")
        .filter_map(|e| e["inputs"]["to"].as_f64())
        .collect();
    let peak = targets.iter().copied().fold(0.0, f64::max);
    assert!(peak >= 20.0, "{targets:?}");
}

#[test]
fn async_settings_that_do_not_apply_are_refused_by_field() {
    let text = std::fs::read_to_string(example("async-batchy.toml")).expect("scenario");
    let dir = scratch("async-bad");
    for (from, to, field, says) in [
        (
            "kind = \"async\"",
            "kind = \"batch\"",
            "apis[0].kind",
            "expected \"realtime\" or \"async\"",
        ),
        (
            "startup_time = \"2m\"",
            "startup_time = \"2m\"\ntimeout = \"30s\"",
            "apis[0].timeout",
            "leave out timeout",
        ),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            text.replace(from, to)
                .replace("traces/", &format!("{}/traces/", example("").display())),
        )
        .expect("written");
        let out = simctl(&["run", "--quiet", path.to_str().expect("utf-8")]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field) && err.contains(says), "{err}");
    }
}
