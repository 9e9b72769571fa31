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

/// The presets a scenario can name instead of writing coefficients.
pub const STEP_PRESETS: &[StepPreset] = &[];
