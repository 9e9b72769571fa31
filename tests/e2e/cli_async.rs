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

#[test]
fn keda_scales_an_async_api_on_its_sqs_queue_and_only_there() {
    let text = std::fs::read_to_string(example("async-batchy.toml")).expect("scenario");
    let text = text.replace("traces/", &format!("{}/traces/", example("").display()));
    let (head, _) = text.split_once("[apis.autoscaling]").expect("autoscaling");
    let dir = scratch("async-keda");
    let path = dir.join("keda.toml");
    let with = |autoscaling: &str, head: &str| {
        std::fs::write(&path, format!("{head}[apis.autoscaling]\n{autoscaling}")).expect("written");
        simctl(&[
            "run",
            "--quiet",
            path.to_str().expect("utf-8"),
            "--out",
            dir.join("r.json").to_str().expect("utf-8"),
        ])
    };
    // From zero on the queue (KEDA activates at the first poll with a message), nothing lost.
    let sqs = "policy = \"keda\"\ntrigger = \"aws-sqs-queue\"\nthreshold = 2\nmin_replicas = 0\nmax_replicas = 30\n";
    let out = with(sqs, head);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).expect("results"))
            .expect("JSON");
    let a = &r["apis"][0];
    assert_eq!(a["rejected"], 0);
    assert!(a["replica_seconds"].as_f64() > Some(0.0), "{a}");
    // Settings that do not apply are refused by field.
    for (autoscaling, head, field, says) in [
        (
            format!("{sqs}query_window = \"30s\"\n"),
            head.to_string(),
            "apis[0].autoscaling.query_window",
            "leave out query_window",
        ),
        (
            "policy = \"keda\"\nthreshold = 2\nscale_on_in_flight = false\n".to_string(),
            head.to_string(),
            "apis[0].autoscaling.scale_on_in_flight",
            "aws-sqs-queue trigger only",
        ),
        (
            sqs.to_string(),
            head.replace("kind = \"async\"\n", ""),
            "apis[0].autoscaling.trigger",
            "reads an async API's queue",
        ),
    ] {
        let out = with(&autoscaling, &head);
        assert!(!out.status.success(), "{autoscaling}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field) && err.contains(says), "{err}");
    }
}
