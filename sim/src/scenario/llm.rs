//! `[apis.llm]` -> [`LlmModel`]: the engine's limits, the step time (coefficients or a cited
//! preset), the KV capacity (given, or derived per node group from its GPU memory and a model
//! preset), routing, and the token lengths drawn when the traffic carries none.

use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::diagnostics::{FieldError, LoadError};
use super::fields::{at_most, check_kind_fields, present_fields, resolve};
use super::model::{NodeGroup, Requests};
use super::schema::{LlmSpec, StepTimeSpec, TokenLengthSpec};
use crate::recorded::read_column;
use crate::rng::Stream;
use crate::service_time::Z_99;

/// Longest prompt or output a distribution may draw, tokens.
const MAX_TOKENS: u32 = 10_000_000;

/// How a request picks an LLM replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmRouting {
    /// Fewest running + waiting requests, ties round-robin (the request-level rule).
    LeastOutstanding,
    /// Lowest KV-cache usage, then fewest waiting: the signal llm-d's and the production stack's
    /// routers score replicas on (a simplification of their weighted scorers).
    KvAware,
}

/// Prompt or output lengths drawn per request.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenLengths {
    /// Always the same.
    Constant(u32),
    /// ln(tokens) ~ Normal(mu, sigma), rounded, at least 1.
    LogNormal {
        /// Mean of ln(tokens).
        mu: f64,
        /// Standard deviation of ln(tokens).
        sigma: f64,
    },
    /// Drawn uniformly from observed lengths.
    Empirical(Arc<Vec<u32>>),
}

impl TokenLengths {
    /// One length; always draws the same amount of randomness for a given distribution, so
    /// every configuration sees the same lengths (common random numbers).
    #[inline]
    pub fn sample(&self, rng: &mut Stream) -> u32 {
        match self {
            TokenLengths::Constant(v) => *v,
            TokenLengths::LogNormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                ((mu + sigma * z).exp().round() as u32).clamp(1, MAX_TOKENS)
            }
            TokenLengths::Empirical(values) => values[rng.random_range(0..values.len())],
        }
    }

    /// The mean length (for work estimates).
    pub fn mean(&self) -> f64 {
        match self {
            TokenLengths::Constant(v) => f64::from(*v),
            TokenLengths::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            TokenLengths::Empirical(values) => {
                values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64
            }
        }
    }
}

/// A validated `[apis.llm]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmModel {
    /// The engine's limits and step time; `kv_blocks` is that of the first allowed group.
    pub engine: llm::EngineConfig,
    /// KV blocks of a replica on each node group (by group index; 0 where it may not run).
    pub kv_blocks_by_group: Vec<u32>,
    /// Routing between replicas.
    pub routing: LlmRouting,
    /// Waiting requests per replica before a 503.
    pub max_waiting: Option<u32>,
    /// Prompt lengths when the trace has none.
    pub input_tokens: Option<TokenLengths>,
    /// Output lengths when the trace has none.
    pub output_tokens: Option<TokenLengths>,
}

/// What the API around `[apis.llm]` tells it.
pub(super) struct LlmContext<'a> {
    /// `apis[i]`.
    pub(super) path: &'a str,
    /// Node groups of the scenario.
    pub(super) groups: &'a [NodeGroup],
    /// Groups the API may use.
    pub(super) allowed: &'a [usize],
    /// One replica's requests (GPUs or a MIG instance).
    pub(super) requests: Requests,
    /// Its MIG profile, if any.
    pub(super) mig_profile: Option<&'a str>,
    /// Whether the traffic carries prompt / output lengths.
    pub(super) traffic_has_lengths: (bool, bool),
    /// The scenario file's directory.
    pub(super) base_dir: &'a Path,
}

/// Validate `[apis.llm]`.
pub(super) fn build(spec: &LlmSpec, cx: &LlmContext<'_>) -> Result<LlmModel, LoadError> {
    let path = format!("{}.llm", cx.path);
    let field = |name: &str| format!("{path}.{name}");
    let positive = |value: Option<u32>, default: u32, name: &str, max: u32| {
        let v = value.unwrap_or(default);
        if v == 0 {
            return Err(FieldError::new(field(name), "expected a number ≥ 1"));
        }
        at_most(v, max, field(name))
    };
    let max_num_seqs = positive(spec.max_num_seqs, 256, "max_num_seqs", 100_000)?;
    let max_num_batched_tokens = positive(
        spec.max_num_batched_tokens,
        2048,
        "max_num_batched_tokens",
        10_000_000,
    )?;
    let block_size = positive(spec.block_size, 16, "block_size", 4096)?;
    let step = step_time(spec, &path)?;
    let kv_blocks_by_group = kv_blocks(spec, cx, &path, block_size)?;
    let engine = llm::EngineConfig {
        max_num_seqs,
        max_num_batched_tokens,
        chunked_prefill: spec.chunked_prefill.unwrap_or(true),
        block_size,
        kv_blocks: cx.allowed.first().map_or(0, |&g| kv_blocks_by_group[g]),
        step,
    };
    let routing = match spec.routing.as_deref() {
        None | Some("least_outstanding") => LlmRouting::LeastOutstanding,
        Some("kv_aware") => LlmRouting::KvAware,
        Some(other) => {
            return Err(FieldError::new(
                field("routing"),
                format!("expected \"least_outstanding\" or \"kv_aware\", found \"{other}\""),
            )
            .into())
        }
    };
    let lengths = |spec: &Option<TokenLengthSpec>, has: bool, name: &str| {
        match (spec, has) {
            (Some(s), _) => lengths(s, &field(name), cx.base_dir).map(Some),
            (None, true) => Ok(None),
            (None, false) => Err(LoadError::from(FieldError::new(
                field(name),
                format!("required: the traffic carries no {name} (give a distribution, or a trace with {} = \"…\")", if name == "input_tokens" { "input_column" } else { "output_column" }),
            ))),
        }
    };
    Ok(LlmModel {
        engine,
        kv_blocks_by_group,
        routing,
        max_waiting: spec.max_waiting,
        input_tokens: lengths(&spec.input_tokens, cx.traffic_has_lengths.0, "input_tokens")?,
        output_tokens: lengths(
            &spec.output_tokens,
            cx.traffic_has_lengths.1,
            "output_tokens",
        )?,
    })
}

/// A step-time coefficient such as `"5ms"`, `"0.05ms"`, `"47.8us"`, in nanoseconds.
fn coefficient_ns(text: &str, path: &str) -> Result<f64, FieldError> {
    let t = text.trim();
    let split = t
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+')
        })
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && scale.is_finite() && v * scale <= 3.6e12 => {
            Ok(v * scale)
        }
        _ => Err(FieldError::new(
            path,
            format!("expected a duration such as \"5ms\" or \"0.05ms\" (units ns, us, ms, s; at most an hour), found \"{text}\""),
        )),
    }
}

fn step_time(spec: &LlmSpec, path: &str) -> Result<llm::StepTime, FieldError> {
    match (&spec.preset, &spec.step_time) {
        (Some(_), Some(_)) => Err(FieldError::new(
            format!("{path}.preset"),
            "give a preset or [step_time], not both",
        )),
        (Some(name), None) => llm::STEP_PRESETS
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.step)
            .ok_or_else(|| {
                FieldError::new(
                    format!("{path}.preset"),
                    format!(
                        "unknown preset \"{name}\"; expected one of {}",
                        llm::STEP_PRESETS
                            .iter()
                            .map(|p| format!("\"{}\"", p.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }),
        (
            None,
            Some(StepTimeSpec {
                base,
                per_prefill_token,
                per_decode_token,
            }),
        ) => {
            let step = llm::StepTime {
                base_ns: coefficient_ns(base, &format!("{path}.step_time.base"))?,
                per_prefill_token_ns: coefficient_ns(
                    per_prefill_token,
                    &format!("{path}.step_time.per_prefill_token"),
                )?,
                per_decode_token_ns: coefficient_ns(
                    per_decode_token,
                    &format!("{path}.step_time.per_decode_token"),
                )?,
            };
            if step.base_ns + step.per_prefill_token_ns + step.per_decode_token_ns <= 0.0 {
                return Err(FieldError::new(
                    format!("{path}.step_time"),
                    "an iteration must take some time: set base or a per-token cost > 0",
                ));
            }
            Ok(step)
        }
        (None, None) => Err(FieldError::new(
            format!("{path}.step_time"),
            "required: [step_time] (base, per_prefill_token, per_decode_token) or a preset",
        )),
    }
}

/// KV blocks per replica on each node group.
fn kv_blocks(
    spec: &LlmSpec,
    cx: &LlmContext<'_>,
    path: &str,
    block_size: u32,
) -> Result<Vec<u32>, FieldError> {
    let mut out = vec![0u32; cx.groups.len()];
    let to_blocks = |tokens: u64, field: &str| -> Result<u32, FieldError> {
        let blocks = tokens / u64::from(block_size);
        if blocks == 0 {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                format!("a KV cache of {tokens} tokens holds no block of {block_size}"),
            ));
        }
        u32::try_from(blocks)
            .map_err(|_| FieldError::new(format!("{path}.{field}"), "expected at most 4e9 blocks"))
    };
    if let Some(tokens) = spec.kv_cache_tokens {
        for field in [
            "model",
            "weights",
            "kv_bytes_per_token",
            "gpu_memory_utilization",
        ] {
            let given = match field {
                "model" => spec.model.is_some(),
                "weights" => spec.weights.is_some(),
                "kv_bytes_per_token" => spec.kv_bytes_per_token.is_some(),
                _ => spec.gpu_memory_utilization.is_some(),
            };
            if given {
                return Err(FieldError::new(
                    format!("{path}.{field}"),
                    "kv_cache_tokens is given: leave out what would derive it",
                ));
            }
        }
        let blocks = to_blocks(tokens, "kv_cache_tokens")?;
        for &g in cx.allowed {
            out[g] = blocks;
        }
        return Ok(out);
    }
    let (weights, kv_per_token) = match &spec.model {
        Some(name) => {
            if spec.weights.is_some() || spec.kv_bytes_per_token.is_some() {
                return Err(FieldError::new(
                    format!("{path}.model"),
                    "a model preset gives weights and kv_bytes_per_token: leave them out",
                ));
            }
            let m = llm::MODEL_PRESETS
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| {
                    FieldError::new(
                        format!("{path}.model"),
                        format!(
                            "unknown model \"{name}\"; expected one of {}",
                            llm::MODEL_PRESETS
                                .iter()
                                .map(|m| format!("\"{}\"", m.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            (m.weights_bytes, m.kv_bytes_per_token)
        }
        None => match (&spec.weights, spec.kv_bytes_per_token) {
            (Some(w), Some(kv)) if kv > 0 => (w.mebibytes() << 20, kv),
            _ => {
                return Err(FieldError::new(
                    format!("{path}.kv_cache_tokens"),
                    "required: kv_cache_tokens, or a model preset (model = \"…\"), or weights and kv_bytes_per_token to derive it from the GPU memory",
                ))
            }
        },
    };
    let utilization = spec.gpu_memory_utilization.unwrap_or(0.9);
    if !(utilization > 0.0 && utilization <= 1.0) {
        return Err(FieldError::new(
            format!("{path}.gpu_memory_utilization"),
            format!("expected a fraction in (0, 1], found {utilization}"),
        ));
    }
    for &g in cx.allowed {
        let group = &cx.groups[g];
        let memory_mib = match cx.mig_profile {
            Some(profile) => mig_memory_gib(profile).map(|gib| gib * 1024),
            // Time-sliced and MPS sharers of a GPU split its memory (each engine must be started
            // with a gpu_memory_utilization of its share).
            None => group.instance.gpu_memory_mib().map(|m| {
                m * u64::from(cx.requests.gpu)
                    / u64::from(group.gpu_sharing.map_or(1, |(n, _)| n.max(1)))
            }),
        };
        let memory_mib = memory_mib.filter(|m| *m > 0).ok_or_else(|| {
            FieldError::new(
                format!("{path}.kv_cache_tokens"),
                format!(
                    "cannot derive the KV capacity on node group \"{}\" ({}): a replica there has no GPU memory; set compute.gpu, or give kv_cache_tokens",
                    group.name, group.instance.name
                ),
            )
        })?;
        let gpus = u64::from(cx.requests.gpu.max(1));
        let reserved = llm::ACTIVATION_BYTES + gpus * llm::NON_TORCH_BYTES;
        let tokens = llm::kv_cache_tokens(
            memory_mib << 20,
            utilization,
            weights,
            reserved,
            kv_per_token,
        )
        .map_err(|e| {
            FieldError::new(
                format!("{path}.model"),
                format!("on node group \"{}\": {e}", group.name),
            )
        })?;
        out[g] = to_blocks(tokens, "kv_cache_tokens")?;
    }
    Ok(out)
}

/// The memory of a MIG profile named like `3g.40gb` (or `1g.10gb+me`), GiB.
fn mig_memory_gib(profile: &str) -> Option<u64> {
    let memory = profile.split('.').nth(1)?;
    let digits: String = memory.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn lengths(spec: &TokenLengthSpec, path: &str, base_dir: &Path) -> Result<TokenLengths, LoadError> {
    let present = present_fields(spec, "distribution");
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    let kind = spec.distribution.as_str();
    let check = |allowed: &[&str]| check_kind_fields(path, "distribution", kind, &present, allowed);
    let need = |v: Option<f64>, name: &str| {
        v.filter(|x| x.is_finite() && *x >= 1.0 && *x <= f64::from(MAX_TOKENS))
            .ok_or_else(|| {
                FieldError::new(
                    format!("{path}.{name}"),
                    format!("required for \"{kind}\": a length of 1 to {MAX_TOKENS} tokens"),
                )
            })
    };
    Ok(match kind {
        "constant" => {
            check(&["value"])?;
            let v = need(spec.value.map(f64::from), "value")?;
            TokenLengths::Constant(v as u32)
        }
        "lognormal" => {
            check(&["median", "p99"])?;
            let median = need(spec.median, "median")?;
            let p99 = need(spec.p99, "p99")?;
            if p99 < median {
                return Err(FieldError::new(
                    format!("{path}.p99"),
                    format!("expected p99 ≥ median ({median}), found {p99}"),
                )
                .into());
            }
            TokenLengths::LogNormal {
                mu: median.ln(),
                sigma: (p99.ln() - median.ln()) / Z_99,
            }
        }
        "empirical" => {
            check(&["path", "column"])?;
            let file = spec.path.as_deref().ok_or_else(|| {
                FieldError::new(format!("{path}.path"), "required for \"empirical\"")
            })?;
            let column = spec.column.as_deref().unwrap_or("tokens");
            let values = read_column(&resolve(base_dir, file), column)
                .map_err(|e| FieldError::new(format!("{path}.path"), e.to_string()))?;
            let mut out = Vec::with_capacity(values.len());
            for (v, line) in values {
                if !(v.is_finite() && v >= 0.0 && v <= f64::from(MAX_TOKENS)) {
                    return Err(FieldError::new(
                        format!("{path}.path"),
                        format!("{file}:{line}: {column}: expected a token count of 0 to {MAX_TOKENS}, found {v}"),
                    )
                    .into());
                }
                out.push((v.round() as u32).max(1));
            }
            if out.is_empty() {
                return Err(FieldError::new(
                    format!("{path}.path"),
                    format!("{file}: no lengths in column \"{column}\""),
                )
                .into());
            }
            TokenLengths::Empirical(Arc::new(out))
        }
        other => {
            return Err(FieldError::new(
                format!("{path}.distribution"),
                format!("expected \"constant\", \"lognormal\" or \"empirical\", found \"{other}\""),
            )
            .into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_coefficients_parse_to_nanoseconds() {
        assert_eq!(coefficient_ns("0.05ms", "p").expect("ok"), 50_000.0);
        assert_eq!(coefficient_ns("5ms", "p").expect("ok"), 5e6);
        assert_eq!(coefficient_ns("47.8us", "p").expect("ok"), 47_800.0);
        assert!(coefficient_ns("5", "p").is_err());
        assert!(coefficient_ns("-1ms", "p").is_err());
        assert!(coefficient_ns("2h", "p").is_err());
    }

    #[test]
    fn mig_profile_memory_is_read_from_its_name() {
        assert_eq!(mig_memory_gib("3g.40gb"), Some(40));
        assert_eq!(mig_memory_gib("1g.10gb+me"), Some(10));
        assert_eq!(mig_memory_gib("1g.5gb"), Some(5));
    }
}
