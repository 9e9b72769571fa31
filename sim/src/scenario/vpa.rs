//! `[apis.vpa]`: a Vertical Pod Autoscaler on an API's pods, checked field by field.

use autoscaler::vpa::updater::UpdaterConfig;
use autoscaler::vpa::{Resources, VpaConfig};

use super::diagnostics::FieldError;
use super::schema::{VpaResourcesSpec, VpaSpec};
use crate::time::SimTime;

/// `updatePolicy.updateMode`: what the VPA does with its recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// Recommend only.
    Off,
    /// New pods get the target (the admission controller); running pods keep their requests.
    Initial,
    /// `Initial`, and the updater evicts pods whose requests are off the recommendation so
    /// their replacements get it (`Auto` is the same, deprecated upstream).
    Recreate,
    /// `Initial`, and the updater resizes pods in place (Kubernetes' in-place pod resize) where
    /// their node has room, evicting them where it does not.
    InPlaceOrRecreate,
}

impl UpdateMode {
    /// As the VPA object spells it.
    pub fn name(self) -> &'static str {
        match self {
            UpdateMode::Off => "Off",
            UpdateMode::Initial => "Initial",
            UpdateMode::Recreate => "Recreate",
            UpdateMode::InPlaceOrRecreate => "InPlaceOrRecreate",
        }
    }

    /// Whether new pods get the recommendation.
    pub fn admits(self) -> bool {
        self != UpdateMode::Off
    }

    /// Whether the updater changes running pods.
    pub fn updates(self) -> bool {
        matches!(self, UpdateMode::Recreate | UpdateMode::InPlaceOrRecreate)
    }
}

/// A validated `[apis.vpa]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vpa {
    /// The recommender's settings and the resource policy.
    pub config: VpaConfig,
    /// How often each pod's usage is sampled.
    pub interval: SimTime,
    /// What is done with the recommendation.
    pub mode: UpdateMode,
    /// The updater's settings (`Recreate`, `InPlaceOrRecreate`).
    pub updater: UpdaterConfig,
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
    let mode = match spec.update_mode.as_deref() {
        None | Some("Off") => UpdateMode::Off,
        Some("Initial") => UpdateMode::Initial,
        Some("Recreate" | "Auto") => UpdateMode::Recreate,
        Some("InPlaceOrRecreate") => UpdateMode::InPlaceOrRecreate,
        Some("InPlace") => {
            return Err(FieldError::new(
                format!("{path}.update_mode"),
                "\"InPlace\" (alpha, behind the VPA's InPlace feature gate) is not modelled: use \"InPlaceOrRecreate\"",
            ))
        }
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.update_mode"),
                format!("expected \"Off\", \"Initial\", \"Recreate\", \"Auto\" or \"InPlaceOrRecreate\", found {other:?}"),
            ))
        }
    };
    let mut updater = UpdaterConfig::default();
    if let Some(d) = spec.updater_interval {
        if d.0 == SimTime::ZERO {
            return Err(FieldError::new(
                format!("{path}.updater_interval"),
                "expected a duration > 0 (the updater runs every minute by default)",
            ));
        }
        updater.interval = d.0.as_duration();
    }
    if let Some(n) = spec.min_replicas {
        if n == 0 {
            return Err(FieldError::new(
                format!("{path}.min_replicas"),
                "expected at least 1 (updatePolicy.minReplicas)",
            ));
        }
        updater.min_replicas = n;
    }
    if !mode.updates() {
        for (set, field) in [
            (spec.updater_interval.is_some(), "updater_interval"),
            (spec.min_replicas.is_some(), "min_replicas"),
        ] {
            if set {
                return Err(FieldError::new(
                    format!("{path}.{field}"),
                    format!("applies to the updater, which update_mode = \"{}\" does not run: leave it out or use \"Recreate\" or \"InPlaceOrRecreate\"", mode.name()),
                ));
            }
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
    Ok(Vpa {
        config,
        interval,
        mode,
        updater,
    })
}
