//! `[apis.vpa]`: a Vertical Pod Autoscaler on an API's pods, checked field by field.

use autoscaler::vpa::{Resources, VpaConfig};

use super::diagnostics::FieldError;
use super::schema::{VpaResourcesSpec, VpaSpec};
use crate::time::SimTime;

/// A validated `[apis.vpa]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vpa {
    /// The recommender's settings and the resource policy.
    pub config: VpaConfig,
    /// How often each pod's usage is sampled.
    pub interval: SimTime,
}

/// Amounts of a bound; an unset resource is no bound (0 below, the largest amount above).
fn bound(spec: &VpaResourcesSpec, unset: i64) -> Resources {
    Resources {
        cpu_millicores: spec
            .cpu
            .as_ref()
            .map_or(unset, |q| i64::try_from(q.millicores()).unwrap_or(i64::MAX)),
        memory_bytes: spec.mem.as_ref().map_or(unset, |q| q.value as i64),
    }
}

/// Check `spec` at `path` (`apis[0].vpa`).
pub(super) fn build(spec: &VpaSpec, path: &str, llm: bool) -> Result<Vpa, FieldError> {
    if llm {
        return Err(FieldError::new(
            path.to_string(),
            "the simulator models an LLM replica's GPU iterations, not its CPU and memory use: a VPA recommends for request-level APIs only",
        ));
    }
    match spec.update_mode.as_deref() {
        None | Some("Off") => {}
        Some(mode @ ("Initial" | "Recreate" | "Auto" | "InPlaceOrRecreate")) => {
            return Err(FieldError::new(
                format!("{path}.update_mode"),
                format!("\"{mode}\" would apply the recommendation to the pods, which the simulator does not do yet: use \"Off\" (recommend only) and apply the target to compute.cpu/mem"),
            ))
        }
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.update_mode"),
                format!("expected \"Off\", \"Initial\", \"Recreate\", \"Auto\" or \"InPlaceOrRecreate\", found {other:?}"),
            ))
        }
    }
    let mut config = VpaConfig::default();
    let min = spec.min_allowed.as_ref().map(|b| bound(b, 0));
    let max = spec
        .max_allowed
        .as_ref()
        .map(|b| bound(b, autoscaler::vpa::MAX_RESOURCE_AMOUNT));
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo.cpu_millicores > hi.cpu_millicores || lo.memory_bytes > hi.memory_bytes {
            return Err(FieldError::new(
                format!("{path}.max_allowed"),
                "expected at least min_allowed in each resource",
            ));
        }
    }
    config.min_allowed = min;
    config.max_allowed = max;
    let interval = spec
        .recommender_interval
        .map_or(SimTime::from_secs(60), |d| d.0);
    if interval == SimTime::ZERO {
        return Err(FieldError::new(
            format!("{path}.recommender_interval"),
            "expected a duration > 0 (the recommender samples every minute by default)",
        ));
    }
    Ok(Vpa { config, interval })
}
