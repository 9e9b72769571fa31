//! How many tokens of KV cache a replica has, derived the way vLLM sizes it at start-up: the
//! GPU memory it may use (`gpu_memory_utilization`, 0.9 by default) minus the model's weights,
//! divided by the KV bytes one token takes in every layer (2 × layers × KV heads × head size ×
//! bytes per value), after the activation peak and non-torch memory it profiles. Those two are
//! taken as llm-d-benchmark's capacity planner takes them (5.5 GiB of activations for a dense
//! model, 0.15 GiB non-torch at TP1; inference-sim `sim/latency/kv_capacity.go`), so a
//! derived capacity is an estimate: give `kv_cache_tokens` to set it from vLLM's log.

/// Activation peak of a dense model, bytes (llm-d-benchmark's `capacity_planner.py` constant).
pub const ACTIVATION_BYTES: u64 = 5_905_580_032; // 5.5 GiB
/// Non-torch memory per GPU, bytes (0.15 GiB at TP1, the same planner).
pub const NON_TORCH_BYTES: u64 = 161_061_274; // 0.15 GiB

/// A public model's sizes, for deriving the KV capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPreset {
    /// Name used in scenarios (`model = "…"`).
    pub name: &'static str,
    /// Weights in bytes at the serving precision.
    pub weights_bytes: u64,
    /// KV-cache bytes per token, all layers.
    pub kv_bytes_per_token: u64,
    /// Where the configuration values come from.
    pub source: &'static str,
}

const CONFIGS: &str = "config.json copies in inference-sim/inference-sim model_configs/ at f90a1e3a6787da17c2cd463dab6fb2660b1b1760; weights = parameters × 2 bytes (16-bit), KV = 2 × layers × KV heads × head size × 2 bytes";

/// The models a scenario can name (16-bit weights and KV cache).
pub const MODEL_PRESETS: &[ModelPreset] = &[
    ModelPreset {
        // 32 layers, 32 KV heads, head size 128; 6,738,415,616 parameters.
        name: "llama-2-7b",
        weights_bytes: 13_476_831_232,
        kv_bytes_per_token: 524_288,
        source: CONFIGS,
    },
    ModelPreset {
        // 32 layers, 8 KV heads, head size 128; 8,030,261,248 parameters. vLLM's own log for
        // Llama-3-8B reads "model weights take 14.96GiB" (vllm-project/vllm#12330).
        name: "llama-3.1-8b",
        weights_bytes: 16_060_522_496,
        kv_bytes_per_token: 131_072,
        source: CONFIGS,
    },
    ModelPreset {
        // 80 layers, 8 KV heads, head size 128; 70,553,706,496 parameters (3.3-70B alike).
        name: "llama-3.1-70b",
        weights_bytes: 141_107_412_992,
        kv_bytes_per_token: 327_680,
        source: CONFIGS,
    },
    ModelPreset {
        // 28 layers, 4 KV heads, head size 128; 7,615,616,512 parameters.
        name: "qwen2.5-7b",
        weights_bytes: 15_231_233_024,
        kv_bytes_per_token: 57_344,
        source: CONFIGS,
    },
];

/// The KV capacity cannot be derived: the weights leave no room.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "the weights ({weights_gib:.1} GiB) leave no KV cache in {usable_gib:.1} GiB of usable GPU memory"
)]
pub struct SizingError {
    /// The model's weights, GiB.
    pub weights_gib: f64,
    /// GPU memory × utilisation, GiB.
    pub usable_gib: f64,
}

/// KV-cache tokens of one replica with `gpu_memory_bytes` of GPU memory, after the weights and
/// `reserved_bytes` (activations and non-torch memory).
pub fn kv_cache_tokens(
    gpu_memory_bytes: u64,
    gpu_memory_utilization: f64,
    weights_bytes: u64,
    reserved_bytes: u64,
    kv_bytes_per_token: u64,
) -> Result<u64, SizingError> {
    let usable = gpu_memory_bytes as f64 * gpu_memory_utilization;
    let free = usable - weights_bytes as f64 - reserved_bytes as f64;
    let gib = |b: f64| b / f64::from(1u32 << 30);
    if free <= 0.0 || kv_bytes_per_token == 0 {
        return Err(SizingError {
            weights_gib: gib(weights_bytes as f64),
            usable_gib: gib(usable),
        });
    }
    Ok((free / kv_bytes_per_token as f64).floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_what_the_weights_leave() {
        // 80 GiB × 0.9 = 72 GiB; 16 GiB of weights leave 56 GiB; 128 KiB per token.
        let tokens = kv_cache_tokens(80 << 30, 0.9, 16 << 30, 0, 128 << 10).expect("fits");
        assert_eq!(tokens, (56u64 << 30) / (128 << 10));
        assert!(kv_cache_tokens(16 << 30, 0.9, 16 << 30, 0, 1).is_err());
    }

    #[test]
    fn matches_vllms_own_log_within_its_activation_estimate() {
        // vllm-project/vllm#12330: Llama-3-8B on an A100 40GB (39.50 GiB) at 0.90 reserved
        // 11.12 GiB for KV (5691 blocks of 16 tokens) after a profiled 9.37 GiB activation peak
        // and 0.10 GiB non-torch. With those measured reserves the formula gives the same.
        let gpu = (39.50 * f64::from(1u32 << 30)) as u64;
        let reserved = ((9.37 + 0.10) * f64::from(1u32 << 30)) as u64;
        let weights = (14.96 * f64::from(1u32 << 30)) as u64;
        let tokens = kv_cache_tokens(gpu, 0.90, weights, reserved, 131_072).expect("fits");
        let blocks = tokens / 16;
        assert!((blocks as i64 - 5691).abs() <= 3, "{blocks}");
    }
}
