//! Calibrating the simulator from a real run: the service-time model and network latency of a
//! request-level API, or the iteration's base cost and network latency of an LLM API; each
//! writes `calibration.toml` and the calibrated simulation's results.

use std::path::Path;
use std::sync::Arc;

use sim::fidelity::{self, Fidelity, Observed};
use sim::recorded::{FormatOptions, TraceFormat};
use sim::service_time::{Fit, QuantileMap, ServiceTime};
use sim::traffic::{TraceSpec, Traffic};
use sim::{Scenario, SimTime};

use super::{schedule_of, simulate};
use crate::commands::{write_atomically, write_json, Failure};

/// What a calibration gives: its description, the comparison after it, and the calibrated
/// simulation's ready replicas per second.
pub(super) type Calibrated = (String, Fidelity, Vec<f64>);

/// A request-level API's calibration: the service-time model fitted (`fit`) to the service
/// times the replicas measured, applied to the same draws by rank, and the network latency set
/// to the median time a request spent outside the replica.
pub(super) fn calibrate_service(
    path: &Path,
    scenario: &Scenario,
    fit: Fit,
    observed: &Observed,
    dir: &Path,
    max_offset_s: f64,
) -> Result<Option<Calibrated>, Failure> {
    let measured = loadgen::read_measured(&dir.join("requests.csv"))
        .map_err(|m| Failure::Other(anyhow::anyhow!(m)))?;
    let service: Vec<f64> = measured.iter().map(|m| m.service_s).collect();
    let Some(model) = ServiceTime::fit(&service, fit) else {
        eprintln!("warning: too few successful requests to calibrate from");
        return Ok(None);
    };
    let mut outside: Vec<f64> = measured.iter().filter_map(|m| m.outside_s()).collect();
    outside.sort_by(f64::total_cmp);
    let network = fidelity::median(&outside).unwrap_or(0.0);
    write_calibration(dir, path, &model, network, &measured)?;
    let mut tuned = calibrated_scenario(path, scenario, &model, dir)?;
    tuned.apis[0].network_latency = SimTime::from_secs_f64(network);
    let (results, observed_sim) = simulate(&tuned)?;
    write_json(&dir.join("calibrated.json"), &results)?;
    let after = fidelity::compare(observed, &observed_sim, max_offset_s);
    Ok(Some((
        format!(
            "{}; network latency {:.2} ms",
            model.describe(),
            network * 1000.0
        ),
        after,
        observed_sim.replicas,
    )))
}

/// An LLM API's calibration: the iteration's fixed cost raised by what the real replicas add to
/// every iteration (the median inter-token latency's difference: timer wake-ups, the loop's own
/// work), and the network latency set to what is left of the time to first token's difference
/// (proxy and loopback). Written to calibration.toml as scenario lines.
pub(super) fn calibrate_llm(
    scenario: &Scenario,
    model: &sim::scenario::LlmModel,
    real: &Observed,
    simulated: &Observed,
    dir: &Path,
    max_offset_s: f64,
) -> Result<Option<Calibrated>, Failure> {
    let (Some(rt), Some(st), Some(ri), Some(si)) = (
        real.ttft_ms,
        simulated.ttft_ms,
        real.itl_ms,
        simulated.itl_ms,
    ) else {
        eprintln!("warning: no token timings to calibrate from");
        return Ok(None);
    };
    let base_ms = (ri.p50 - si.p50).max(0.0);
    let network_ms = (rt.p50 - st.p50 - base_ms).max(0.0);
    let mut tuned_model = model.clone();
    tuned_model.engine.step.base_ns += base_ms * 1e6;
    let step = tuned_model.engine.step;
    let network = SimTime::from_secs_f64(network_ms / 1000.0);
    let mut tuned = scenario.clone();
    tuned.apis[0].llm = Some(Arc::new(tuned_model));
    tuned.apis[0].network_latency = network;
    // Nanoseconds, each coefficient in its shortest exact form: pasted back, the lines give
    // exactly the calibrated simulation.
    let lines = format!(
        "# The iteration cost and network latency `simctl validate` measured in the real run in {dir}\n\
         # (every iteration {base_ms:.3} ms longer, {network_ms:.3} ms outside the replica): paste\n\
         # network_latency into the API's [[apis]] entry and replace its [apis.llm.step_time].\n\
         network_latency = \"{network_ns}ns\"\n\n[apis.llm.step_time]\nbase = \"{base}ns\"\nper_prefill_token = \"{prefill}ns\"\nper_decode_token = \"{decode}ns\"\n",
        dir = dir.display(),
        network_ns = network.0,
        base = step.base_ns,
        prefill = step.per_prefill_token_ns,
        decode = step.per_decode_token_ns,
    );
    write_atomically(&dir.join("calibration.toml"), lines.as_bytes())?;
    let (results, observed_sim) = simulate(&tuned)?;
    write_json(&dir.join("calibrated.json"), &results)?;
    let after = fidelity::compare(real, &observed_sim, max_offset_s);
    Ok(Some((
        format!(
            "step base +{base_ms:.2} ms ({:.2} ms); network latency {network_ms:.2} ms",
            step.base_ns / 1e6
        ),
        after,
        observed_sim.replicas,
    )))
}

/// The scenario with its service-time model replaced by `model` on the same random numbers:
/// each request's drawn service time carried to the same rank under `model`, written as a
/// per-request trace (`calibration-trace.csv`) that the calibrated simulation replays.
fn calibrated_scenario(
    path: &Path,
    scenario: &Scenario,
    model: &ServiceTime,
    dir: &Path,
) -> Result<Scenario, Failure> {
    use std::fmt::Write as _;
    let mut schedule = schedule_of(path, scenario)?;
    let mut planned = Vec::new();
    while let Some(p) = schedule
        .next_planned()
        .map_err(|e| Failure::BadInput(e.to_string()))?
    {
        planned.push((p.at, p.service.unwrap_or_default()));
    }
    // Ranks among this run's own draws (not under the scenario's model, whose tail the sample
    // only approximates), so with an empirical fit each request gets the measurement of its rank.
    let drawn = ServiceTime::Empirical {
        values: Arc::new(planned.iter().map(|(_, s)| SimTime::from(*s)).collect()),
    };
    let map = QuantileMap::new(&drawn, model);
    let mut csv = String::from("timestamp_s,service_ms\n");
    for (at, service) in &planned {
        let _ = writeln!(
            csv,
            "{:.9},{:.6}",
            at.as_secs_f64(),
            map.map(service.as_secs_f64()) * 1000.0
        );
    }
    let trace = dir.join("calibration-trace.csv");
    write_atomically(&trace, csv.as_bytes())?;
    let mut tuned = scenario.clone();
    tuned.apis[0].traffic = Traffic::Trace(TraceSpec {
        path: trace,
        format: TraceFormat::Timestamps,
        options: FormatOptions {
            column: Some("timestamp_s".into()),
            service_column: Some("service_ms".into()),
            service_unit_s: 1e-3,
            ..FormatOptions::default()
        },
        use_recorded_service: true,
        start_s: 0.0,
        end_s: f64::INFINITY,
        speedup: 1.0,
        rate_scale: 1.0,
        bootstrap_block_s: None,
        looped: false,
    });
    tuned.apis[0].service_time = model.clone();
    Ok(tuned)
}

/// `calibration.toml`: the calibrated model as scenario lines to paste into the API (with
/// `service-times.csv` for an empirical fit).
fn write_calibration(
    dir: &Path,
    scenario: &Path,
    model: &ServiceTime,
    network_s: f64,
    measured: &[loadgen::Measured],
) -> Result<(), Failure> {
    use std::fmt::Write as _;
    let mut toml = format!(
        "# The service-time model and network latency `simctl validate` measured in the real run\n\
         # of {}: paste into its [[apis]] entry.\n\
         network_latency = \"{:.3}ms\"\n\n[apis.service_time]\n",
        scenario.display(),
        network_s * 1000.0
    );
    match model {
        ServiceTime::LogNormal { mu, sigma } => {
            let _ = writeln!(
                toml,
                "distribution = \"lognormal\"\nmu = {mu:.6}\nsigma = {sigma:.6}"
            );
        }
        ServiceTime::Constant(t) => {
            let _ = writeln!(
                toml,
                "distribution = \"constant\"\nvalue = \"{:.3}ms\"",
                t.as_secs_f64() * 1000.0
            );
        }
        _ => {
            let mut csv = String::from("service_ms\n");
            for m in measured {
                let _ = writeln!(csv, "{:.3}", m.service_s * 1000.0);
            }
            let file = dir.join("service-times.csv");
            write_atomically(&file, csv.as_bytes())?;
            // Absolute: the lines are pasted into a scenario that may live anywhere.
            let file = std::path::absolute(&file).unwrap_or(file);
            let _ = writeln!(
                toml,
                "distribution = \"empirical\"\npath = {:?}\ncolumn = \"service_ms\"",
                file.display().to_string()
            );
        }
    }
    write_atomically(&dir.join("calibration.toml"), toml.as_bytes())?;
    Ok(())
}
