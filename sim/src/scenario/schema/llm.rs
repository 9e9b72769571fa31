//! `[apis.llm]` as users write it: vLLM's engine settings, step time and token lengths.

use serde::{Deserialize, Serialize};

use crate::units::Quantity;

/// `[apis.llm]`: one replica is a vLLM engine. Field names and defaults are vLLM's
/// (`vllm serve` on an A100: 256 sequences, 2048 batched tokens; block size 16; chunked prefill
/// on; GPU memory utilisation 0.9).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// Running sequences per replica (`--max-num-seqs`, default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
    /// Tokens computed per iteration (`--max-num-batched-tokens`, default 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_batched_tokens: Option<u32>,
    /// Split long prompts across iterations (default true, as vLLM V1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunked_prefill: Option<bool>,
    /// KV-cache block, tokens (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// KV capacity per replica, tokens; without it, derived from the GPU memory and the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_tokens: Option<u64>,
    /// Share of GPU memory vLLM may use (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_utilization: Option<f64>,
    /// A model preset giving `weights` and `kv_bytes_per_token` (see `simctl explain llm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model weights in GPU memory (e.g. `"15Gi"`), when no preset is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Quantity>,
    /// KV-cache bytes per token, all layers, when no preset is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_bytes_per_token: Option<u64>,
    /// A step-time preset (published coefficients of a model on a GPU) instead of `step_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Most requests waiting per replica before it answers 503 (default: no limit, as vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting: Option<u32>,
    /// How requests pick a replica: `least_outstanding` (default) or `kv_aware`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<String>,
    /// One iteration's duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_time: Option<StepTimeSpec>,
    /// Prompt lengths when the traffic does not carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<TokenLengthSpec>,
    /// Output lengths when the traffic does not carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<TokenLengthSpec>,
}

/// `[apis.llm.step_time]`: `base + per_prefill_token × prompt tokens in the iteration +
/// per_decode_token × sequences decoding in it`. Durations may be fractional (`"0.05ms"`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepTimeSpec {
    /// Fixed cost per iteration.
    pub base: String,
    /// Cost per prompt token scheduled in the iteration.
    pub per_prefill_token: String,
    /// Cost per sequence decoding in the iteration.
    pub per_decode_token: String,
}

/// A token-length distribution: `constant` (value), `lognormal` (median, p99) or `empirical`
/// (path, column).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenLengthSpec {
    /// `constant`, `lognormal` or `empirical`.
    pub distribution: String,
    /// constant: the length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
    /// lognormal: the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
    /// lognormal: the 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// empirical: a CSV file, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// empirical: its column of lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}
