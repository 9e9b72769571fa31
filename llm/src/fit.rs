//! Fitting the step-time coefficients to measured requests.
//!
//! With requests sent one at a time (a benchmark at concurrency 1), a request's time to first
//! token is its prefill: `ceil(prompt / max_num_batched_tokens)` iterations carrying `prompt`
//! prefill tokens in all, so `TTFT = iterations × base + prompt × per_prefill_token`; each later
//! token takes one iteration with `batch` decoding sequences (1 when alone), so the mean
//! inter-token latency is `base + batch × per_decode_token`. Both equations are linear in the
//! three coefficients, which are fitted together by least squares.

use crate::StepTime;

/// One measured request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Time to first token, seconds.
    pub ttft_s: f64,
    /// Mean inter-token latency, seconds (`None` with a single output token).
    pub itl_s: Option<f64>,
    /// Sequences decoding beside it (1 when requests ran one at a time).
    pub batch: f64,
}

/// The fitted coefficients and how well they explain the measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitReport {
    /// The coefficients.
    pub step: StepTime,
    /// Requests used.
    pub requests: usize,
    /// Mean |predicted − measured| / measured of the time to first token.
    pub ttft_error: f64,
    /// The same for the inter-token latency.
    pub itl_error: f64,
}

/// Why no fit was possible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Too few or too similar measurements to separate the coefficients.
    #[error("{0}")]
    Underdetermined(String),
    /// A fitted coefficient came out negative: the measurements do not follow the model.
    #[error("the fit gives a negative {name} ({value_ms:.4} ms): the measurements do not follow base + per_prefill_token × prompt + per_decode_token × batch (were requests sent one at a time, without prefix caching?)")]
    Negative {
        /// The coefficient.
        name: &'static str,
        /// Its value, ms.
        value_ms: f64,
    },
}

/// Fit `base`, `per_prefill_token` and `per_decode_token` to `measurements`.
pub fn fit_step_time(
    measurements: &[Measurement],
    max_num_batched_tokens: u32,
) -> Result<FitReport, FitError> {
    let mut rows: Vec<([f64; 3], f64)> = Vec::new();
    for m in measurements {
        let prompt = f64::from(m.prompt_tokens.max(1));
        let iterations = f64::from(
            m.prompt_tokens
                .max(1)
                .div_ceil(max_num_batched_tokens.max(1)),
        );
        rows.push(([iterations, prompt, 0.0], m.ttft_s));
        if let Some(itl) = m.itl_s {
            rows.push(([1.0, 0.0, m.batch], itl));
        }
    }
    let itl_rows = rows.iter().filter(|(x, _)| x[1] == 0.0).count();
    if itl_rows == 0 {
        return Err(FitError::Underdetermined(
            "no request has more than one output token, so nothing measures decoding".into(),
        ));
    }
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for (x, y) in &rows {
        for i in 0..3 {
            atb[i] += x[i] * y;
            for j in 0..3 {
                ata[i][j] += x[i] * x[j];
            }
        }
    }
    let solution = solve3(ata, atb).ok_or_else(|| {
        FitError::Underdetermined(
            "the measurements cannot separate the coefficients: use requests of at least two different prompt lengths".into(),
        )
    })?;
    let step = StepTime {
        base_ns: solution[0] * 1e9,
        per_prefill_token_ns: solution[1] * 1e9,
        per_decode_token_ns: solution[2] * 1e9,
    };
    for (name, value) in [
        ("base", step.base_ns),
        ("per_prefill_token", step.per_prefill_token_ns),
        ("per_decode_token", step.per_decode_token_ns),
    ] {
        if value < 0.0 {
            return Err(FitError::Negative {
                name,
                value_ms: value / 1e6,
            });
        }
    }
    let (mut ttft_err, mut ttft_n, mut itl_err, mut itl_n) = (0.0, 0usize, 0.0, 0usize);
    for (x, y) in &rows {
        let predicted: f64 = (0..3).map(|i| x[i] * solution[i]).sum();
        let err = if *y > 0.0 {
            (predicted - y).abs() / y
        } else {
            0.0
        };
        if x[1] == 0.0 {
            itl_err += err;
            itl_n += 1;
        } else {
            ttft_err += err;
            ttft_n += 1;
        }
    }
    Ok(FitReport {
        step,
        requests: measurements.len(),
        ttft_error: ttft_err / ttft_n.max(1) as f64,
        itl_error: itl_err / itl_n.max(1) as f64,
    })
}

/// Gaussian elimination with partial pivoting; `None` when (nearly) singular.
#[allow(clippy::needless_range_loop)] // row operations read clearer with indices
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return None;
    }
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            for k in col..3 {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_coefficients_of_exact_measurements() {
        let truth = StepTime {
            base_ns: 5e6,
            per_prefill_token_ns: 5e4,
            per_decode_token_ns: 2e5,
        };
        let budget = 2048;
        let measurements: Vec<Measurement> = [100u32, 700, 3000, 5000]
            .iter()
            .flat_map(|&p| {
                [1.0, 4.0].map(|batch| {
                    let iterations = f64::from(p.div_ceil(budget));
                    Measurement {
                        prompt_tokens: p,
                        output_tokens: 50,
                        ttft_s: (iterations * truth.base_ns
                            + f64::from(p) * truth.per_prefill_token_ns)
                            / 1e9,
                        itl_s: Some((truth.base_ns + batch * truth.per_decode_token_ns) / 1e9),
                        batch,
                    }
                })
            })
            .collect();
        let fit = fit_step_time(&measurements, budget).expect("fits");
        assert!((fit.step.base_ns - truth.base_ns).abs() < 1.0);
        assert!((fit.step.per_prefill_token_ns - truth.per_prefill_token_ns).abs() < 1e-3);
        assert!((fit.step.per_decode_token_ns - truth.per_decode_token_ns).abs() < 1e-3);
        assert!(fit.ttft_error < 1e-9 && fit.itl_error < 1e-9);
    }

    #[test]
    fn one_prompt_length_cannot_separate_base_from_prefill() {
        let m = Measurement {
            prompt_tokens: 100,
            output_tokens: 10,
            ttft_s: 0.01,
            itl_s: Some(0.005),
            batch: 1.0,
        };
        assert!(matches!(
            fit_step_time(&[m, m, m], 8192),
            Err(FitError::Underdetermined(_))
        ));
    }
}
