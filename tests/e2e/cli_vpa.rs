//! `[apis.vpa]` end to end: the VPA recommender watches a day of `simctl run`, its target lands
//! on the recommender's buckets plus the 15 % margin, applying it is a fixed point that costs
//! less, the report shows it, and unsupported settings are refused by field.

use autoscaler::vpa::{cpu_buckets, memory_buckets, BucketScheme};

use crate::common::{example, ok, read_json, run_results, scratch, simctl};

/// Upstream's estimate at `value`: the end of its bucket, truncated, plus 15 %, truncated.
fn estimate(scheme: BucketScheme, value: f64, scale: f64) -> i64 {
    let end = scheme.bucket_start(scheme.find_bucket(value) + 1);
    let base = (end * scale) as i64;
    base + (base as f64 * 0.15) as i64
}

fn amount(v: &serde_json::Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn the_vpa_right_sizes_the_classifier_and_applying_it_is_a_fixed_point() {
    let results = run_results(&example("vpa-rightsizing.toml"));
    let api = &results["apis"][0];
    let vpa = &api["vpa"];
    assert_eq!(vpa["update_mode"], "Off");
    assert_eq!(amount(&vpa["requested"], "cpu_millicores"), 2000);
    assert_eq!(amount(&vpa["requested"], "memory_bytes"), 6 << 30);
    // Memory: every pod holds 2.5 GiB, so every peak is 2.5 GiB.
    let memory = amount(&vpa["target"], "memory_bytes");
    assert_eq!(
        memory,
        estimate(memory_buckets(), 2.5 * (1u64 << 30) as f64, 1.0)
    );
    // CPU: a sample is busy workers × 250m (1 core over 4 workers), so the p90 is one of them.
    let cpu = amount(&vpa["target"], "cpu_millicores");
    let candidates: Vec<i64> = (1..=4)
        .map(|k| estimate(cpu_buckets(), f64::from(k) * 0.25, 1000.0))
        .collect();
    assert!(candidates.contains(&cpu), "{cpu} not in {candidates:?}");
    assert!(amount(&vpa["lower_bound"], "cpu_millicores") <= cpu);
    assert!(amount(&vpa["upper_bound"], "cpu_millicores") >= cpu);
    // One sample per ready pod per minute.
    let minutes = api["replica_seconds"].as_f64().expect("replica-seconds") / 60.0;
    let samples = vpa["samples"].as_f64().expect("samples");
    assert!(
        (samples - minutes).abs() / minutes < 0.05,
        "{samples} vs {minutes}"
    );
    assert_eq!(vpa["pods_per_node"][0]["at_requests"], 1);
    // m5.xlarge: 3,920 millicores and 14,162 MiB allocatable.
    assert_eq!(
        vpa["pods_per_node"][0]["at_target"],
        (3920 / cpu).min(14162 * (1 << 20) / memory)
    );

    // Applied: the same usage gives the same target, and the cluster costs less.
    let text = std::fs::read_to_string(example("vpa-rightsizing.toml")).expect("scenario");
    let applied = text
        .replace("cpu = \"2\"\n", &format!("cpu = \"{cpu}m\"\n"))
        .replace("mem = \"6Gi\"\n", &format!("mem = \"{}\"\n", memory));
    assert_ne!(applied, text);
    let dir = scratch("vpa-applied");
    let path = dir.join("vpa-applied.toml");
    std::fs::write(&path, applied).expect("written");
    let again = run_results(&path);
    let v2 = &again["apis"][0]["vpa"];
    assert_eq!(amount(&v2["target"], "cpu_millicores"), cpu);
    assert_eq!(amount(&v2["target"], "memory_bytes"), memory);
    let cost = |r: &serde_json::Value| r["cost_usd_total"].as_f64().expect("cost");
    assert!(
        cost(&again) < cost(&results),
        "{} !< {}",
        cost(&again),
        cost(&results)
    );
    // The same requests, served alike (pods start on other nodes at other times, so the mean
    // moves in its fifth digit).
    for p in ["p50", "p99"] {
        assert_eq!(
            again["apis"][0]["latency_ms"][p], api["latency_ms"][p],
            "{p}"
        );
    }

    // The report shows it.
    let out = dir.join("vpa.json");
    ok(simctl(&[
        "run",
        "--quiet",
        example("vpa-rightsizing.toml").to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    let md = dir.join("vpa.md");
    ok(simctl(&[
        "report",
        out.to_str().expect("utf-8"),
        "--out",
        md.to_str().expect("utf-8"),
    ]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(report.contains("## Vertical sizing"), "{report}");
    assert!(
        report.contains(&format!("| classifier | target | {cpu}m |")),
        "{report}"
    );
    let _ = read_json(&out);
}

#[test]
fn vpa_settings_that_do_not_apply_are_refused_by_field() {
    let text = std::fs::read_to_string(example("vpa-rightsizing.toml")).expect("scenario");
    let dir = scratch("vpa-bad");
    for (from, to, field, says) in [
        (
            "update_mode = \"Off\"",
            "update_mode = \"InPlace\"",
            "apis[0].vpa.update_mode",
            "not modelled",
        ),
        (
            "update_mode = \"Off\"",
            "update_mode = \"Initial\"\nupdater_interval = \"30s\"",
            "apis[0].vpa.updater_interval",
            "does not run",
        ),
        (
            "update_mode = \"Off\"",
            "update_mode = \"Recreate\"\nmin_replicas = 0",
            "apis[0].vpa.min_replicas",
            "at least 1",
        ),
        (
            "update_mode = \"Off\"",
            "update_mode = \"off\"",
            "apis[0].vpa.update_mode",
            "expected \"Off\"",
        ),
        (
            "min_allowed = { cpu = \"250m\", mem = \"1Gi\" }",
            "min_allowed = { cpu = \"250m\", mem = \"1Gi\" }\nmax_allowed = { cpu = \"100m\" }",
            "apis[0].vpa.max_allowed",
            "at least min_allowed",
        ),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text.replace(from, to)).expect("written");
        let out = simctl(&["run", "--quiet", path.to_str().expect("utf-8")]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field) && err.contains(says), "{err}");
    }
}

/// The modes that apply the recommendation, on the example: each pays less for the API than
/// recommending only, `Initial` changes new pods only, `Recreate` evicts (one pod per updater
/// pass: the eviction tolerance of 2 replicas is 1) and `InPlaceOrRecreate` resizes in place
/// where the node has room — every update no earlier than the 12 h lifetime rule allows.
#[test]
fn applying_the_recommendation_evicts_or_resizes_and_saves() {
    let text = std::fs::read_to_string(example("vpa-rightsizing.toml")).expect("scenario");
    let dir = scratch("vpa-modes");
    let run = |mode: &str| {
        let path = dir.join(format!("{mode}.toml"));
        std::fs::write(
            &path,
            text.replace(
                "update_mode = \"Off\"",
                &format!("update_mode = \"{mode}\""),
            ),
        )
        .expect("written");
        let out = dir.join(format!("{mode}.json"));
        ok(simctl(&[
            "run",
            "--quiet",
            path.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ]));
        read_json(&out)
    };
    let off = run("Off");
    let cost = |r: &serde_json::Value| r["apis"][0]["cost_usd"].as_f64().expect("cost");
    let updates = |r: &serde_json::Value, kind: &str| -> Vec<f64> {
        r["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| {
                e["kind"] == kind
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("VPA updater"))
            })
            .map(|e| e["t_s"].as_f64().expect("t"))
            .collect()
    };
    for mode in ["Initial", "Recreate", "InPlaceOrRecreate"] {
        let r = run(mode);
        let v = &r["apis"][0]["vpa"];
        assert_eq!(v["update_mode"], mode);
        // New pods got the target.
        assert_eq!(
            v["admitted"]["cpu_millicores"], v["target"]["cpu_millicores"],
            "{v}"
        );
        assert!(
            cost(&r) < cost(&off),
            "{mode}: {} vs {}",
            cost(&r),
            cost(&off)
        );
        let (evicted, resized) = (updates(&r, "eviction"), updates(&r, "pod_resized"));
        assert_eq!(
            v["evictions"].as_u64().unwrap_or(0),
            evicted.len() as u64,
            "{v}"
        );
        assert_eq!(
            v["in_place_resizes"].as_u64().unwrap_or(0),
            resized.len() as u64,
            "{v}"
        );
        match mode {
            "Initial" => assert!(evicted.is_empty() && resized.is_empty(), "{v}"),
            "Recreate" => assert!(!evicted.is_empty() && resized.is_empty(), "{v}"),
            _ => assert!(!resized.is_empty(), "{v}"),
        }
        // Within the bounds, a pod is updated only once it has run 12 h.
        for t in evicted.iter().chain(&resized) {
            assert!(*t >= 12.0 * 3600.0, "{mode}: an update at {t} s");
        }
        // One eviction per pass: never two at the same instant.
        let mut sorted = evicted.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), evicted.len(), "{evicted:?}");
    }
}
