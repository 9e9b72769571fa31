//! Start-up by parts and predictive scaling end to end: `scenarios/predictive-business-day.toml`
//! says where its replicas' start-up time went (results, summary line, report section), its
//! forecast floor acts only once Holt–Winters has two days of history and then provisions
//! ahead of the morning ramps, and bad settings are refused by field.

use std::path::Path;

use crate::common::{example, ok, read_json, run_results, scratch, simctl};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Run `scenario` (text) from scenarios/ and return the summary and the results.
fn run(text: &str, name: &str) -> (String, serde_json::Value) {
    let dir = scratch(name);
    let scenario = example(&format!("{name}.e2e.toml"));
    std::fs::write(&scenario, text).expect("write scenario");
    let out = dir.join("results.json");
    let output = simctl(&["run", s(&scenario), "--out", s(&out)]);
    std::fs::remove_file(&scenario).ok();
    let output = ok(output);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        read_json(&out),
    )
}

fn day_3_rejections(results: &serde_json::Value) -> f64 {
    let checks = results["apis"][0]["slo"]["checks"]
        .as_array()
        .expect("checks");
    checks
        .iter()
        .find(|c| c["objective"] == "rejection_rate")
        .and_then(|c| c["actual"].as_f64())
        .expect("rejection_rate check")
}

#[test]
fn the_business_day_says_where_start_up_went_and_forecasts_its_ramps() {
    let text = std::fs::read_to_string(example("predictive-business-day.toml")).expect("scenario");
    let (summary, results) = run(&text, "predictive-business-day");
    let api = &results["apis"][0];

    // Where start-up time went: the parts add up to the total, per replica and so on average.
    let b = &api["startup"];
    let mean = |part: &str| b[part]["mean_s"].as_f64().expect(part);
    let replicas = b["replicas"].as_u64().expect("replicas");
    assert_eq!(replicas, api["cold_starts"].as_u64().expect("cold starts"));
    assert!(replicas > 10, "{replicas}");
    let cached = b["cached_pulls"].as_u64().expect("cached");
    assert!(cached > 0 && cached < replicas, "{cached} of {replicas}");
    let sum = mean("scheduling") + mean("image_pull") + mean("model_fetch") + mean("load");
    assert!(
        (sum - mean("total")).abs() < 1e-6,
        "{sum} vs {}",
        mean("total")
    );
    assert_eq!(b["model_source"], "s3");
    // 4 GB from S3 at a median 90 MB/s: 44 s at the median, e^{σ²/2} more on average.
    assert!(
        (35.0..60.0).contains(&mean("model_fetch")),
        "{}",
        mean("model_fetch")
    );
    // A cold pull of 6 GB at a median 42 MB/s is 143 s; cached pulls bring the mean down.
    assert!(mean("image_pull") < 143.0 * 1.2, "{}", mean("image_pull"));
    assert!(b["image_pull"]["max_s"].as_f64().expect("max") > 100.0);
    assert!(
        summary.contains("classifier: where start-up time went"),
        "{summary}"
    );

    // The forecast floor binds only from day 3 (Holt–Winters needs two daily periods), and
    // then ahead of 07:00 (the first morning step).
    let forecast_at: Vec<f64> = results["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["rule"] == "forecast")
        .map(|e| e["t_s"].as_f64().expect("t"))
        .collect();
    assert!(!forecast_at.is_empty(), "the forecast never bound");
    assert!(
        forecast_at.iter().all(|&t| t >= 48.0 * 3600.0),
        "{forecast_at:?}"
    );
    let first = forecast_at[0] - 48.0 * 3600.0;
    assert!(
        (6.0 * 3600.0..7.0 * 3600.0).contains(&first),
        "first forecast scale-up at {first} s into day 3"
    );

    // Without the floor the same day-3 ramps are met late: more rejections.
    let reactive = text
        .split("[apis.autoscaling.forecast]")
        .next()
        .expect("head")
        .to_string();
    let (_, reactive) = run(&reactive, "predictive-business-day-reactive");
    assert!(reactive["apis"][0]["startup"].is_object());
    assert!(
        day_3_rejections(&results) < day_3_rejections(&reactive),
        "forecast {} vs reactive {}",
        day_3_rejections(&results),
        day_3_rejections(&reactive)
    );
    assert!(!reactive["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["rule"] == "forecast"));

    // The report has the section.
    let dir = scratch("predictive-report");
    let json = dir.join("r.json");
    std::fs::write(&json, serde_json::to_string(&results).expect("json")).expect("write");
    let md = dir.join("r.md");
    ok(simctl(&["report", s(&json), "-o", s(&md)]));
    let report = std::fs::read_to_string(&md).expect("report");
    assert!(report.contains("Where start-up time went"), "no section");
    assert!(report.contains("model fetch (s3)"), "no model row");
}

#[test]
fn start_up_and_forecast_settings_are_refused_by_field() {
    let base = std::fs::read_to_string(example("predictive-business-day.toml")).expect("scenario");
    for (from, to, field) in [
        (
            "timeout = \"29s\"\n",
            "timeout = \"29s\"\nstartup_time = \"90s\"\n",
            "apis[0].startup",
        ),
        (
            "model_source = \"s3\"",
            "model_source = \"ftp\"",
            "apis[0].startup.model_source",
        ),
        (
            "image_gb = 6.0",
            "image_gb = -1.0",
            "apis[0].startup.image_gb",
        ),
        (
            "registry = \"in_region\"",
            "registry = \"mars\"",
            "apis[0].startup.registry",
        ),
        (
            "model = \"holt_winters\"",
            "model = \"arima\"",
            "apis[0].autoscaling.forecast.model",
        ),
        (
            "step = \"5m\"",
            "step = \"7m\"",
            "apis[0].autoscaling.forecast.period",
        ),
        (
            "model = \"holt_winters\"",
            "model = \"holt_winters\"\nalpha = 0",
            "apis[0].autoscaling.forecast.alpha",
        ),
        (
            "policy = \"cortex\"\nmin_replicas = 1\nmax_replicas = 40\ntarget_in_flight = 3",
            "policy = \"fixed\"\nmin_replicas = 1\nmax_replicas = 40",
            "apis[0].autoscaling.forecast",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let dir = scratch("predictive-refused");
        let path = dir.join("bad.toml");
        std::fs::write(&path, base.replace(from, to)).expect("write");
        let out = simctl(&["run", s(&path)]);
        assert_eq!(out.status.code(), Some(2), "{to}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{to}: {err}");
    }
    // A looped trace needs the length of one repetition.
    let trace = std::fs::read_to_string(example("predictive-trace.toml")).expect("scenario");
    let path = example("predictive-trace.loop-e2e.toml");
    std::fs::write(&path, trace.replace("end = \"1h\"\n", "")).expect("write");
    let out = simctl(&["run", s(&path)]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("apis[0].traffic.loop"));
}

#[test]
fn manifests_say_the_forecast_floor_is_not_deployed() {
    let text = std::fs::read_to_string(example("predictive-diurnal.toml")).expect("scenario");
    let m = sim::deploy::manifests(&text, "predictive-diurnal.toml").expect("manifests");
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("forecast") && n.contains("does NOT reproduce")),
        "{:?}",
        m.notes
    );
    // The reactive policy is still written (Cortex scales it).
    assert_eq!(m.cortex_apis.len(), 1);
}

/// The forecast floor runs in the real controller as in the simulator: `simctl autoscale
/// --actuator local` on a 20-second "season" raises the replicas ahead of the third high phase
/// from the second one, and says so in its decisions.
#[test]
fn the_forecast_floor_scales_real_replicas_through_simctl_autoscale() {
    use std::process::{Command, Stdio};

    use crate::common::{printed_url, test_data};
    let scenario = test_data("forecast-autoscale.toml");
    let dir = scratch("forecast-autoscale");
    let decisions = dir.join("decisions.jsonl");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["autoscale", s(&scenario)])
        .args(["--actuator", "local", "--listen", "127.0.0.1:0"])
        .args(["--proxy-listen", "127.0.0.1:0"])
        .args(["--metric-name", "simctl_in_flight_requests"])
        .args(["--duration", "58s", "--decisions", s(&decisions)])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simctl autoscale starts");
    let proxy = printed_url(&mut controller, "proxy");
    ok(simctl(&[
        "loadgen",
        s(&scenario),
        "--target",
        &format!("{proxy}/"),
        "--quiet",
        "--duration",
        "55s",
    ]));
    assert!(controller.wait().expect("exits").success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&decisions)
        .expect("decisions written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let floored: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|d| {
            d["why"]
                .as_str()
                .is_some_and(|w| w.contains("forecast floor"))
        })
        .collect();
    assert!(!floored.is_empty(), "the forecast never bound: {lines:?}");
    // Only once a season of history exists (20 s), and it raised the count.
    for d in &floored {
        assert!(d["t_s"].as_f64() >= Some(20.0), "{d}");
        assert!(d["target"].as_u64() > d["spec_replicas"].as_u64(), "{d}");
    }
    // The simulator, on the same scenario, floors at the same kind of moment.
    let r = run_results(&scenario);
    assert!(r["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["why"]
            .as_str()
            .is_some_and(|w| w.contains("forecast floor"))));
}
