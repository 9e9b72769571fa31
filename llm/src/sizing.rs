//! How many tokens of KV cache a replica has, derived the way vLLM sizes it at start-up: the
//! GPU memory it may use (`gpu_memory_utilization`, 0.9 by default) minus the model's weights,
//! divided by the KV bytes one token takes in every layer (2 × layers × KV heads × head size ×
//! bytes per value). vLLM also subtracts the activation peak it profiles; that is not modelled,
//! so the derived capacity is an upper bound (give `kv_cache_tokens` to set it exactly).

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

/// The models a scenario can name.
pub const MODEL_PRESETS: &[ModelPreset] = &[];

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

/// KV-cache tokens of one replica with `gpu_memory_bytes` of GPU memory.
pub fn kv_cache_tokens(
    gpu_memory_bytes: u64,
    gpu_memory_utilization: f64,
    weights_bytes: u64,
    kv_bytes_per_token: u64,
) -> Result<u64, SizingError> {
    let usable = gpu_memory_bytes as f64 * gpu_memory_utilization;
    let free = usable - weights_bytes as f64;
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
        let tokens = kv_cache_tokens(80 << 30, 0.9, 16 << 30, 128 << 10).expect("fits");
        assert_eq!(tokens, (56u64 << 30) / (128 << 10));
        assert!(kv_cache_tokens(16 << 30, 0.9, 16 << 30, 1).is_err());
    }
}
