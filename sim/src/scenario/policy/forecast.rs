//! `[apis.autoscaling.forecast]`: the forecast floor any reactive policy can take (see
//! `autoscaler::predictive`).

use autoscaler::{ForecastConfig, ForecastModel, HpaMetric};
use serde::Deserialize;

use super::{dur, settings, PolicyChoice};
use crate::scenario::FieldError;
use crate::units::DurationSpec;

/// The block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForecastSettings {
    /// `holt_winters` (default), `seasonal_naive` or `moving_average`.
    model: Option<String>,
    /// The season (default 24h).
    period: Option<DurationSpec>,
    /// The forecaster's resolution (default 5m).
    step: Option<DurationSpec>,
    alpha: Option<f64>,
    beta: Option<f64>,
    gamma: Option<f64>,
    /// Steps the moving average spans (default 12).
    points: Option<usize>,
    /// `"measured"` (default) or a duration.
    lead: Option<String>,
    /// Load one replica carries, in the reactive policy's metric (default: its target).
    target_per_replica: Option<f64>,
    /// Extra share on top of the forecast (default 0).
    headroom: Option<f64>,
}

/// Holt–Winters' smoothing defaults. No upstream default exists to follow (the Predictive HPA
/// makes α, β and γ required); these weigh the last few hours of 5-minute steps for the level,
/// nearly ignore trend (diurnal traffic has none within a day) and let each step's seasonal
/// index move halfway to what it saw yesterday.
const ALPHA: f64 = 0.5;
const BETA: f64 = 0.05;
const GAMMA: f64 = 0.5;

/// Parse the block at `path` for the reactive policy `choice`.
pub(super) fn parse(
    value: toml::Value,
    path: &str,
    choice: &PolicyChoice,
) -> Result<ForecastConfig, FieldError> {
    let toml::Value::Table(table) = value else {
        return Err(FieldError::new(
            path,
            format!("expected a table, found {}", value.type_str()),
        ));
    };
    if matches!(choice, PolicyChoice::Fixed | PolicyChoice::Saturation(_)) {
        return Err(FieldError::new(
            path,
            "this policy reads no load metric to forecast: use it with cortex, hpa, kpa or keda",
        ));
    }
    let s: ForecastSettings = settings(table, path)?;
    let model = match s.model.as_deref().unwrap_or("holt_winters") {
        "holt_winters" => ForecastModel::HoltWinters {
            alpha: s.alpha.unwrap_or(ALPHA),
            beta: s.beta.unwrap_or(BETA),
            gamma: s.gamma.unwrap_or(GAMMA),
        },
        "seasonal_naive" => ForecastModel::SeasonalNaive,
        "moving_average" => ForecastModel::MovingAverage {
            points: s.points.unwrap_or(12),
        },
        other => {
            return Err(FieldError::new(
                format!("{path}.model"),
                format!(
                    "expected \"holt_winters\", \"seasonal_naive\" or \"moving_average\", found \"{other}\""
                ),
            ))
        }
    };
    let is_hw = matches!(model, ForecastModel::HoltWinters { .. });
    for (field, given) in [
        ("alpha", s.alpha.is_some()),
        ("beta", s.beta.is_some()),
        ("gamma", s.gamma.is_some()),
    ] {
        if given && !is_hw {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                "a Holt–Winters setting: set model = \"holt_winters\" or leave it out",
            ));
        }
    }
    if s.points.is_some() && !matches!(model, ForecastModel::MovingAverage { .. }) {
        return Err(FieldError::new(
            format!("{path}.points"),
            "a moving-average setting: set model = \"moving_average\" or leave it out",
        ));
    }
    let lead = match s.lead.as_deref() {
        None | Some("measured") => None,
        Some(text) => Some(
            DurationSpec::parse(text)
                .map_err(|e| {
                    FieldError::new(
                        format!("{path}.lead"),
                        format!("expected \"measured\" or a duration such as \"3m\": {e}"),
                    )
                })?
                .0
                .as_duration(),
        ),
    };
    let target_per_replica = match s.target_per_replica {
        Some(t) => t,
        None => reactive_target(choice).ok_or_else(|| {
            FieldError::new(
                format!("{path}.target_per_replica"),
                "required for this policy: the load one replica should carry, in its metric",
            )
        })?,
    };
    let config = ForecastConfig {
        model,
        period: dur(s.period, std::time::Duration::from_secs(24 * 3600)),
        step: dur(s.step, std::time::Duration::from_secs(300)),
        lead,
        target_per_replica,
        headroom: s.headroom.unwrap_or(0.0),
    };
    config
        .validate()
        .map_err(|e| FieldError::new(format!("{path}.{}", e.field), e.problem.clone()))?;
    Ok(config)
}

/// The per-replica target of the reactive policy, when its metric is a per-replica load: a
/// forecast of the total divided by it is a replica count.
fn reactive_target(choice: &PolicyChoice) -> Option<f64> {
    match choice {
        PolicyChoice::Cortex(c) => Some(c.target_in_flight),
        PolicyChoice::Kpa(c) => Some(c.target_per_pod()),
        PolicyChoice::Hpa(c) => match c.metrics.first()? {
            HpaMetric::PodsAverageValue { target, .. }
            | HpaMetric::CpuUtilization { target }
            | HpaMetric::CpuAverageValue { target }
            | HpaMetric::ContainerCpuUtilization { target } => Some(*target),
            _ => None,
        },
        PolicyChoice::Fixed | PolicyChoice::Keda(_) | PolicyChoice::Saturation(_) => None,
    }
}
