//! A token-level LLM replica, as vLLM serves one: an iteration loop that batches running
//! sequences (continuous batching), admits waiting requests while sequence, token and KV-cache
//! limits allow, and preempts the newest sequence when the KV cache runs out.
//!
//! The crate is pure and clock-free so that the simulator (on simulated time) and the emulated
//! OpenAI-compatible server (on the wall clock) run the same scheduler, the same step-time model
//! and the same KV accounting. Both depend on it; it depends on nothing of ours.

mod engine;
mod fit;
mod sizing;
mod step;

pub use engine::{Engine, EngineConfig, EngineStats, Finished, Observer, TooLong};
pub use fit::{fit_step_time, FitError, FitReport, Measurement};
pub use sizing::{
    kv_cache_tokens, ModelPreset, SizingError, ACTIVATION_BYTES, MODEL_PRESETS, NON_TORCH_BYTES,
};
pub use step::{StepPreset, StepTime, STEP_PRESETS};
