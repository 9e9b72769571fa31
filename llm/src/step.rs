//! How long one iteration takes: the linear batch model that BLIS (inference-sim) and
//! Splitwise fit to measured vLLM iterations, `base + per_prefill_token × prompt tokens in the
//! iteration + per_decode_token × sequences decoding in it`.

/// The step-time coefficients, in nanoseconds so that durations are exact integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTime {
    /// Fixed cost of an iteration (scheduling, sampling, kernel launches).
    pub base_ns: f64,
    /// Cost of each prompt token computed in the iteration.
    pub per_prefill_token_ns: f64,
    /// Cost of each sequence that decodes one token in the iteration.
    pub per_decode_token_ns: f64,
}

impl StepTime {
    /// One iteration's duration, rounded to the nanosecond (at least 1 ns, so time advances).
    #[inline]
    pub fn duration_ns(&self, prefill_tokens: u64, decoding: u64) -> u64 {
        let ns = self.base_ns
            + self.per_prefill_token_ns * prefill_tokens as f64
            + self.per_decode_token_ns * decoding as f64;
        (ns.round() as u64).max(1)
    }
}

/// Published step-time coefficients of one model on one GPU, with where they come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPreset {
    /// Name used in scenarios (`preset = "…"`).
    pub name: &'static str,
    /// The model and GPU they were measured on.
    pub model: &'static str,
    /// The GPU.
    pub gpu: &'static str,
    /// The coefficients.
    pub step: StepTime,
    /// Where the numbers are published.
    pub source: &'static str,
}

const BLIS: &str = "BLIS blackbox beta_coeffs (µs), inference-sim/inference-sim defaults.yaml at b563c4405b7847eaf682c6d603065c1faca3ca03, fitted to vLLM v0.8.4/v0.11.0 runs";

const fn micros(base: f64, prefill: f64, decode: f64) -> StepTime {
    StepTime {
        base_ns: base * 1e3,
        per_prefill_token_ns: prefill * 1e3,
        per_decode_token_ns: decode * 1e3,
    }
}

/// The presets a scenario can name instead of writing coefficients: BLIS's trained linear
/// step models (beta0 per step, beta1 per prefill token, beta2 per decoding sequence). Only the
/// pairs whose coefficients are physically plausible are offered (BLIS's Llama-3.1-8B on one
/// H100 charges 15× more per decoding sequence than per prompt token, so it is left out).
pub const STEP_PRESETS: &[StepPreset] = &[
    StepPreset {
        name: "llama-3.1-8b/a100-80gb",
        model: "meta-llama/llama-3.1-8b-instruct, TP1",
        gpu: "A100 80GB",
        step: micros(16441.531547147923, 47.837412108198656, 18.20560632171683),
        source: BLIS,
    },
    StepPreset {
        name: "qwen2.5-7b/a100-80gb",
        model: "qwen/qwen2.5-7b-instruct, TP1",
        gpu: "A100 80GB",
        step: micros(10041.674273463475, 81.12095792183437, 59.98624422876753),
        source: BLIS,
    },
    StepPreset {
        name: "qwen2.5-7b/h100",
        model: "qwen/qwen2.5-7b-instruct, TP1",
        gpu: "H100 80GB",
        step: micros(7051.796874715078, 19.538416565504026, 25.431830886933543),
        source: BLIS,
    },
    StepPreset {
        name: "llama-3.3-70b/h100-tp4",
        model: "meta-llama/llama-3.3-70b-instruct, TP4",
        gpu: "4 × H100 80GB",
        step: micros(12601.271149123822, 76.42284100369776, 66.84396200500741),
        source: BLIS,
    },
];
