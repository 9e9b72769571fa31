//! End-to-end: each autoscaling policy's characteristic response to a traffic step
//! (10 → 40 req/s at 10 min, back to 10 at 20 min), from the real binary's results.

/// (time s, from, to, inputs) of every scale decision.
fn scale_events(policy: &str) -> Vec<(f64, f64, f64, serde_json::Value)> {
    let r = crate::common::run_results(&crate::common::example(&format!("step-{policy}.toml")));
    for api in r["apis"].as_array().expect("apis") {
        assert_eq!(
            api["slo"]["met"], true,
            "{policy}: the autoscaler keeps the SLO"
        );
    }
    r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "scale")
        .map(|e| {
            (
                e["t_s"].as_f64().expect("t"),
                e["inputs"]["from"].as_f64().expect("from"),
                e["inputs"]["to"].as_f64().expect("to"),
                e["inputs"].clone(),
            )
        })
        .collect()
}

const STEP_UP: f64 = 600.0;
const STEP_DOWN: f64 = 1200.0;

fn first_after(events: &[(f64, f64, f64, serde_json::Value)], t: f64, up: bool) -> (f64, f64, f64) {
    events
        .iter()
        .find(|e| e.0 > t && (e.2 > e.1) == up)
        .map(|e| (e.0, e.1, e.2))
        .unwrap_or_else(|| {
            panic!(
                "no {} after {t}",
                if up { "scale-up" } else { "scale-down" }
            )
        })
}

#[test]
fn cortex_waits_for_window_and_upscale_stabilization() {
    let events = scale_events("cortex");
    let (t, _, _) = first_after(&events, STEP_UP, true);
    // The 60 s window must fill and the 1-minute upscale stabilization must pass: the docs'
    // "up to 2 minutes" (window + upscale period); never faster than the stabilization period.
    let lag = t - STEP_UP;
    assert!(
        (60.0..=130.0).contains(&lag),
        "first scale-up {lag} s after the step"
    );
    // Decisions only on the 10 s tick.
    assert!(events.iter().all(|e| e.0 % 10.0 == 0.0));
    // No scale-down within the 5-minute downscale stabilization after the last scale-up.
    let (down, _, _) = first_after(&events, STEP_DOWN, false);
    let last_up = events
        .iter()
        .filter(|e| e.0 < down && e.2 > e.1)
        .map(|e| e.0)
        .fold(0.0, f64::max);
    assert!(
        down - last_up >= 300.0,
        "scale-down at {down}, last scale-up at {last_up}"
    );
}

#[test]
fn kpa_panics_within_seconds() {
    let events = scale_events("kpa");
    let (t, from, _) = first_after(&events, STEP_UP, true);
    assert!(
        t - STEP_UP <= 10.0,
        "panic scale-up {} s after the step",
        t - STEP_UP
    );
    // Within 20 s of the step, panic mode has at least tripled the replicas (Cortex and HPA
    // have not moved yet by then).
    let by_20s = events
        .iter()
        .rev()
        .find(|e| e.0 <= STEP_UP + 20.0)
        .map(|e| e.2)
        .expect("decisions");
    assert!(by_20s >= 3.0 * from, "{from} → {by_20s} within 20 s");
    let panicking = events
        .iter()
        .find(|e| e.0 == t)
        .map(|e| e.3["panicking"].as_f64())
        .expect("event");
    assert_eq!(panicking, Some(1.0));
    // Decisions only on the 2 s tick; no scale-down while panicking.
    assert!(events.iter().all(|e| e.0 % 2.0 == 0.0));
    assert!(events
        .iter()
        .filter(|e| e.2 < e.1)
        .all(|e| e.3["panicking"].as_f64() == Some(0.0)));
}

#[test]
fn hpa_keeps_its_cadence_and_holds_five_minutes() {
    let events = scale_events("hpa");
    // Every decision on the 15 s sync period.
    assert!(events.iter().all(|e| e.0 % 15.0 == 0.0), "{events:?}");
    let (t, from, to) = first_after(&events, STEP_UP, true);
    assert!(
        t - STEP_UP <= 30.0,
        "first scale-up {} s after the step",
        t - STEP_UP
    );
    // Without behavior a step is capped at max(2 × current, 4).
    assert!(to <= (2.0 * from).max(4.0));
    // The load drops at 20 min: the default 5-minute downscale stabilization holds replicas.
    let (down, _, _) = first_after(&events, STEP_DOWN, false);
    assert!(down >= STEP_DOWN + 285.0, "scale-down at {down}");
}
