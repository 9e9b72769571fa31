//! `simctl fit`: the step-time coefficients of an LLM replica from measured requests.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{outln, Failure};

/// What `simctl fit` takes.
#[derive(Args)]
#[command(
    long_about = "Fit the LLM step-time coefficients (base, per_prefill_token, \
per_decode_token) to measured requests, and print the [apis.llm.step_time] table to paste \
into a scenario.\n\n\
Measurements come from either:\n\
  - a vLLM benchmark result saved with details (`vllm bench serve --save-result \
--save-detailed`, or benchmark_serving.py): its input_lens, output_lens, ttfts and itls; or\n\
  - a CSV with one row per request: input_tokens, output_tokens, ttft_ms, itl_ms (mean \
inter-token latency), and optionally batch (sequences decoding beside it; 1 if absent).\n\n\
Send the requests one at a time (e.g. --max-concurrency 1) with prompts of several lengths \
and prefix caching off: then a request's time to first token is its prefill and each later \
token one iteration alone, which is what the fit assumes. At one sequence an iteration's decode cost is hard to tell from its base cost: measure at a few concurrencies too and give the CSV's batch column (mean sequences decoding) to pin per_decode_token down."
)]
pub(crate) struct FitArgs {
    /// The measurements: a vLLM benchmark JSON (.json) or a CSV.
    measurements: PathBuf,
    /// The engine's --max-num-batched-tokens during the measurement (prompts longer than this
    /// were prefilled in several iterations).
    #[arg(long, default_value_t = 2048)]
    max_num_batched_tokens: u32,
}

/// Run `simctl fit`.
pub(crate) fn run(args: FitArgs) -> Result<(), Failure> {
    let measurements = read(&args.measurements)?;
    let report = llm::fit_step_time(&measurements, args.max_num_batched_tokens)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", args.measurements.display())))?;
    let ms = |ns: f64| ns / 1e6;
    outln!(
        "fitted to {} requests from {} (mean error: time to first token {:.1} %, inter-token latency {:.1} %)\n",
        report.requests,
        args.measurements.display(),
        100.0 * report.ttft_error,
        100.0 * report.itl_error
    );
    outln!("[apis.llm.step_time]");
    outln!("base = \"{:.4}ms\"", ms(report.step.base_ns));
    outln!(
        "per_prefill_token = \"{:.6}ms\"",
        ms(report.step.per_prefill_token_ns)
    );
    outln!(
        "per_decode_token = \"{:.6}ms\"",
        ms(report.step.per_decode_token_ns)
    );
    Ok(())
}

fn bad(path: &Path, message: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("{}: {message}", path.display()))
}

/// Read measurements from a vLLM benchmark JSON or a CSV.
fn read(path: &Path) -> Result<Vec<llm::Measurement>, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    let measurements = if path.extension().is_some_and(|e| e == "json") {
        from_vllm_json(&text).map_err(|m| bad(path, m))?
    } else {
        from_csv(&text).map_err(|m| bad(path, m))?
    };
    if measurements.is_empty() {
        return Err(bad(path, "no successful request to fit"));
    }
    Ok(measurements)
}

/// vLLM's detailed benchmark result: parallel arrays per request, times in seconds; failed
/// requests (an error, or no first token) are skipped.
fn from_vllm_json(text: &str) -> Result<Vec<llm::Measurement>, String> {
    #[derive(serde::Deserialize)]
    struct Detailed {
        input_lens: Vec<u32>,
        output_lens: Vec<u32>,
        ttfts: Vec<f64>,
        itls: Vec<Vec<f64>>,
        #[serde(default)]
        errors: Vec<String>,
    }
    let d: Detailed = serde_json::from_str(text).map_err(|e| {
        format!("not a detailed vLLM benchmark result (input_lens, output_lens, ttfts, itls; save it with --save-detailed): {e}")
    })?;
    let n = d.input_lens.len();
    if d.output_lens.len() != n || d.ttfts.len() != n || d.itls.len() != n {
        return Err(format!(
            "input_lens, output_lens, ttfts and itls must have one entry per request (found {}, {}, {}, {})",
            n,
            d.output_lens.len(),
            d.ttfts.len(),
            d.itls.len()
        ));
    }
    Ok((0..n)
        .filter(|&i| d.ttfts[i] > 0.0 && d.errors.get(i).is_none_or(String::is_empty))
        .map(|i| {
            let gaps = &d.itls[i];
            llm::Measurement {
                prompt_tokens: d.input_lens[i],
                output_tokens: d.output_lens[i],
                ttft_s: d.ttfts[i],
                itl_s: (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64),
                batch: 1.0,
            }
        })
        .collect())
}

/// One row per request: input_tokens, output_tokens, ttft_ms, itl_ms[, batch].
fn from_csv(text: &str) -> Result<Vec<llm::Measurement>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        column(name).ok_or_else(|| {
            format!(
                "no column \"{name}\" (expected input_tokens, output_tokens, ttft_ms, itl_ms and optionally batch; found {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (input, output, ttft, itl) = (
        need("input_tokens")?,
        need("output_tokens")?,
        need("ttft_ms")?,
        need("itl_ms")?,
    );
    let batch = column("batch");
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| format!("line {line}: malformed CSV: {e}"))?;
        let number = |i: usize, name: &str| -> Result<f64, String> {
            let raw = record.get(i).unwrap_or("");
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("line {line}: {name}: expected a number ≥ 0, found \"{raw}\"")
                })
        };
        let tokens = |i: usize, name: &str| -> Result<u32, String> {
            let v = number(i, name)?;
            if v.fract() != 0.0 || v > 1e7 {
                return Err(format!(
                    "line {line}: {name}: expected a whole token count, found {v}"
                ));
            }
            Ok(v as u32)
        };
        let output_tokens = tokens(output, "output_tokens")?;
        out.push(llm::Measurement {
            prompt_tokens: tokens(input, "input_tokens")?,
            output_tokens,
            ttft_s: number(ttft, "ttft_ms")? / 1000.0,
            itl_s: (output_tokens > 1)
                .then(|| number(itl, "itl_ms"))
                .transpose()?
                .map(|ms| ms / 1000.0),
            batch: match batch {
                Some(b) => number(b, "batch")?.max(1.0),
                None => 1.0,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllms_detailed_result_and_skips_failures() {
        let json = r#"{"input_lens":[100,900,50],"output_lens":[3,2,0],"ttfts":[0.02,0.06,0.0],
            "itls":[[0.01,0.012],[0.011],[]],"errors":["","","timeout"]}"#;
        let m = from_vllm_json(json).expect("parses");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].prompt_tokens, 100);
        assert!((m[0].itl_s.expect("gaps") - 0.011).abs() < 1e-12);
    }

    #[test]
    fn a_bad_csv_row_names_its_line_and_column() {
        let err = from_csv("input_tokens,output_tokens,ttft_ms,itl_ms\n100,5,20,6\n200,x,30,6\n")
            .expect_err("bad row");
        assert!(
            err.contains("line 3") && err.contains("output_tokens"),
            "{err}"
        );
    }
}
