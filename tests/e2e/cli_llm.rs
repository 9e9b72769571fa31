//! LLM APIs from the command line: the shipped scenarios, `simctl fit` and its round trip into a
//! scenario, and bad LLM input.

use crate::common::{assert_balanced, example, ok, run_results, scratch, simctl};

#[test]
fn the_saturation_scenario_scales_on_kv_and_reports_tokens() {
    let r = run_results(&example("llm-saturation.toml"));
    assert_balanced(&r);
    let api = &r["apis"][0];
    let llm = &api["llm"];
    assert_eq!(
        api["requests"], 36093,
        "the whole Mooncake hour, three times"
    );
    assert!(llm["output_tokens"].as_u64().expect("tokens") > 3_000_000);
    assert!(llm["ttft_ms"]["p99"].as_f64().expect("ttft") > 0.0);
    assert!(llm["goodput"].as_f64().is_some());
    let scale_ups = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("saturation"))
        })
        .count();
    assert!(scale_ups > 3, "the saturation policy acts: {scale_ups}");
    let series = r["timeline"]["series"].as_object().expect("series");
    for key in [
        "kv_cache_usage/chat",
        "running_sequences/chat",
        "waiting_sequences/chat",
    ] {
        assert!(series.contains_key(key), "{key}");
    }
    let summary = ok(simctl(&["run", "scenarios/llm-hpa.toml"]));
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(
        text.contains("LLM API") && text.contains("TTFT p99"),
        "{text}"
    );
}

#[test]
fn fitted_coefficients_paste_into_a_scenario_and_reproduce_the_measurements() {
    let dir = scratch("llm-fit");
    // Measurements made with base 10 ms, 0.04 ms per prompt token, 0.5 ms per decoding sequence,
    // a 2048-token budget (the 3000-token prompt took two iterations).
    let mut csv = String::from("input_tokens,output_tokens,ttft_ms,itl_ms,batch\n");
    for (prompt, batch) in [(100, 1.0), (500, 2.0), (1000, 4.0), (3000, 8.0)] {
        let iterations = if prompt > 2048 { 2.0 } else { 1.0 };
        let ttft = iterations * 10.0 + 0.04 * f64::from(prompt);
        let itl = 10.0 + 0.5 * batch;
        csv.push_str(&format!("{prompt},64,{ttft},{itl},{batch}\n"));
    }
    let measured = dir.join("measured.csv");
    std::fs::write(&measured, csv).expect("write");
    let out = ok(simctl(&["fit", measured.to_str().expect("utf-8")]));
    let text = String::from_utf8_lossy(&out.stdout);
    let table = &text[text.find("[apis.llm.step_time]").expect("a table")..];
    assert!(table.contains("base = \"10.0000ms\""), "{table}");
    assert!(
        table.contains("per_prefill_token = \"0.040000ms\""),
        "{table}"
    );
    assert!(
        table.contains("per_decode_token = \"0.500000ms\""),
        "{table}"
    );

    // The table, pasted into a scenario, gives back the 100-token request's TTFT alone.
    let scenario = format!(
        r#"duration = "301s"
[[node_groups]]
name = "gpu"
instance_type = "p4d.24xlarge"
min_instances = 1
[[apis]]
name = "chat"
[apis.compute]
gpu = 1
[apis.llm]
kv_cache_tokens = 50000
[apis.llm.input_tokens]
distribution = "constant"
value = 100
[apis.llm.output_tokens]
distribution = "constant"
value = 64
{table}
[apis.traffic]
kind = "constant"
rps = 0.1
[apis.autoscaling]
min_replicas = 1
"#
    );
    let path = dir.join("fitted.toml");
    std::fs::write(&path, scenario).expect("write");
    let r = run_results(&path);
    let ttft = r["apis"][0]["llm"]["ttft_ms"]["p50"]
        .as_f64()
        .expect("ttft");
    assert!((ttft - 14.0).abs() < 0.05, "TTFT {ttft} ms, measured 14 ms");
}

#[test]
fn bad_llm_input_names_the_field() {
    let dir = scratch("llm-bad");
    let base = r#"duration = "10m"
[[node_groups]]
name = "gpu"
instance_type = "p4d.24xlarge"
min_instances = 1
[[apis]]
name = "chat"
[apis.compute]
gpu = 1
"#;
    let cases = [
        (
            "[apis.llm]\nkv_cache_tokens = 1000\n[apis.llm.step_time]\nbase = \"5\"\nper_prefill_token = \"1ms\"\nper_decode_token = \"1ms\"\n[apis.llm.input_tokens]\ndistribution = \"constant\"\nvalue = 10\n[apis.llm.output_tokens]\ndistribution = \"constant\"\nvalue = 10\n[apis.traffic]\nkind = \"poisson\"\nrps = 1\n",
            "apis[0].llm.step_time.base",
        ),
        (
            "[apis.llm]\nmodel = \"llama-3.1-70b\"\npreset = \"llama-3.3-70b/h100-tp4\"\n[apis.llm.input_tokens]\ndistribution = \"constant\"\nvalue = 10\n[apis.llm.output_tokens]\ndistribution = \"constant\"\nvalue = 10\n[apis.traffic]\nkind = \"poisson\"\nrps = 1\n",
            "apis[0].llm.model",
        ),
        (
            "[apis.service_time]\ndistribution = \"constant\"\nvalue = \"1s\"\n[apis.traffic]\nkind = \"poisson\"\nrps = 1\n[apis.autoscaling]\npolicy = \"saturation\"\n",
            "apis[0].autoscaling",
        ),
    ];
    for (i, (tail, field)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&path, format!("{base}{tail}")).expect("write");
        let run = simctl(&["run", path.to_str().expect("utf-8")]);
        assert_eq!(run.status.code(), Some(2), "case {i}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(field), "case {i}: {stderr}");
    }
}

/// The whole loop for real on 127.0.0.1 and in the simulator: emulated vLLM replicas behind the
/// local proxy, the real controller scaling them on `vllm:num_requests_waiting` scraped from
/// their /metrics, streamed load carrying the simulator's own token lengths.
#[test]
fn the_local_controller_scales_llm_replicas_on_waiting_requests_and_validate_compares_tokens() {
    let dir = scratch("llm-validate");
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/autoscale-llm.toml");
    let out = ok(simctl(&[
        "validate",
        scenario.to_str().expect("utf-8"),
        "--out-dir",
        dir.to_str().expect("utf-8"),
        "--quiet",
    ]));
    let printed = String::from_utf8_lossy(&out.stdout);
    for row in [
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "ITL p50 (ms)",
        "ITL p99 (ms)",
    ] {
        assert!(printed.contains(row), "{row}: {printed}");
    }
    let files = dir.join("autoscale-llm");
    let v = crate::common::read_json(&files.join("validation.json"));
    let real: Vec<f64> = v["real_replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect();
    let peak = real.iter().copied().fold(0.0, f64::max);
    assert!(
        peak >= 3.0,
        "the controller scaled up on waiting requests: {real:?}"
    );
    let last = *real.last().expect("a timeline");
    assert!(last < peak, "and back down after the step: {real:?}");

    // Same arrivals and lengths: the streamed load sent exactly the simulator's requests and
    // asked for exactly its tokens.
    let real_run = crate::common::read_json(&files.join("real.json"));
    let sim = crate::common::read_json(&files.join("simulated.json"));
    assert_eq!(real_run["apis"][0]["requests"], sim["apis"][0]["requests"]);
    assert_eq!(
        real_run["apis"][0]["completed"]
            .as_u64()
            .expect("completed")
            * 30,
        real_run["output_tokens"].as_u64().expect("tokens"),
        "every completed request streamed its 30 tokens"
    );
    // The engine's inter-token latency at the median is one iteration: within 20 % of the
    // simulator's on a busy 2-core machine (the README publishes the full comparison).
    let itl = |side: &str| {
        v[side]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["metric"] == "ITL p50 (ms)")
            .and_then(|m| m["relative_error"].as_f64())
            .expect("ITL p50 compared")
    };
    assert!(itl("simulated").abs() < 0.2, "{v}");
}
