//! `[apis.traffic]` -> [`Traffic`]: checks each `kind`'s fields and opens trace files once so a
//! missing file or column fails before the run starts.

use std::path::Path;

use super::diagnostics::{FieldError, LoadError};
use super::fields::{at_most, check_kind_fields, present_fields, required, resolve};
use super::schema::TrafficSpec;
use crate::recorded::{self, FormatOptions, TraceFormat, ValueKind};
use crate::time::SimTime;
use crate::traffic::{TraceSpec, Traffic};
use crate::units::DurationSpec;

fn positive(value: f64, path: String, what: &str) -> Result<f64, FieldError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(FieldError::new(
            path,
            format!("expected {what} > 0, found {value}"),
        ))
    }
}

/// Validate a traffic spec; trace files are opened and their header checked.
pub(super) fn build(spec: &TrafficSpec, path: &str, base_dir: &Path) -> Result<Traffic, LoadError> {
    let present = present_fields(spec, "kind");
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    let kind = spec.kind.as_str();
    let check = |allowed: &[&str]| check_kind_fields(path, "kind", kind, &present, allowed);
    let traffic = match kind {
        "poisson" | "constant" => {
            check(&["rps"])?;
            let rps = positive(
                required(spec.rps, path, "rps", kind)?,
                format!("{path}.rps"),
                "a rate",
            )?;
            if kind == "poisson" {
                Traffic::Poisson { rps }
            } else {
                Traffic::Constant { rps }
            }
        }
        "steps" => {
            check(&["steps", "arrivals"])?;
            let list = spec.steps.as_ref().ok_or_else(|| {
                FieldError::new(format!("{path}.steps"), "required for \"steps\"")
            })?;
            if list.is_empty() {
                return Err(FieldError::new(
                    format!("{path}.steps"),
                    "expected at least one step",
                )
                .into());
            }
            let mut steps = Vec::with_capacity(list.len());
            for (i, s) in list.iter().enumerate() {
                if !(s.rps.is_finite() && s.rps >= 0.0) {
                    return Err(FieldError::new(
                        format!("{path}.steps[{i}].rps"),
                        format!("expected a rate ≥ 0, found {}", s.rps),
                    )
                    .into());
                }
                if let Some(&(prev, _)) = steps.last() {
                    if s.at.0 <= prev {
                        return Err(FieldError::new(
                            format!("{path}.steps[{i}].at"),
                            format!("expected steps in ascending order of `at`, found {} after {}", s.at, DurationSpec(prev)),
                        )
                        .into());
                    }
                }
                steps.push((s.at.0, s.rps));
            }
            let poisson = match spec.arrivals.as_deref() {
                None | Some("poisson") => true,
                Some("constant") => false,
                Some(other) => {
                    return Err(FieldError::new(
                        format!("{path}.arrivals"),
                        format!("expected \"poisson\" or \"constant\", found \"{other}\""),
                    )
                    .into())
                }
            };
            Traffic::Steps { steps, poisson }
        }
        "diurnal" => {
            check(&["mean_rps", "peak_to_trough", "period", "peak_at"])?;
            let mean_rps = positive(
                required(spec.mean_rps, path, "mean_rps", kind)?,
                format!("{path}.mean_rps"),
                "a rate",
            )?;
            let ratio = required(spec.peak_to_trough, path, "peak_to_trough", kind)?;
            if !(ratio.is_finite() && ratio >= 1.0) {
                return Err(FieldError::new(
                    format!("{path}.peak_to_trough"),
                    format!("expected a ratio ≥ 1, found {ratio}"),
                )
                .into());
            }
            let period_s = spec.period.map_or(86_400.0, |p| p.as_secs_f64());
            if period_s <= 0.0 {
                return Err(FieldError::new(
                    format!("{path}.period"),
                    "expected a duration > 0",
                )
                .into());
            }
            Traffic::Diurnal {
                mean_rps,
                amplitude: (ratio - 1.0) / (ratio + 1.0),
                period_s,
                peak_at_s: spec.peak_at.map_or(period_s / 4.0, |p| p.as_secs_f64()),
            }
        }
        "trace" => {
            check(&[
                "path",
                "format",
                "column",
                "time_column",
                "service_column",
                "service_unit",
                "input_column",
                "output_column",
                "use_recorded_service",
                "interval",
                "metric",
                "value_kind",
                "start",
                "end",
                "speedup",
                "rate_scale",
                "bootstrap_block",
                "loop",
            ])?;
            let file = spec.path.as_deref().ok_or_else(|| {
                FieldError::new(format!("{path}.path"), "required for \"trace\"")
            })?;
            let format = match spec.format.as_deref() {
                None => TraceFormat::Timestamps,
                Some(f) => TraceFormat::parse(f).ok_or_else(|| {
                    FieldError::new(
                        format!("{path}.format"),
                        format!("expected one of {}, found \"{f}\"", TraceFormat::NAMES),
                    )
                })?,
            };
            let service_unit_s = match spec.service_unit.as_deref() {
                Some("ms") => 1e-3,
                Some("s") => 1.0,
                None if spec.service_column.as_deref().is_some_and(|c| c.ends_with("_ms")) => 1e-3,
                None => 1.0,
                Some(other) => {
                    return Err(FieldError::new(
                        format!("{path}.service_unit"),
                        format!("expected \"ms\" or \"s\", found \"{other}\""),
                    )
                    .into())
                }
            };
            let value_kind = match spec.value_kind.as_deref() {
                None | Some("rate") => ValueKind::Rate,
                Some("counter") => ValueKind::Counter,
                Some(other) => {
                    return Err(FieldError::new(
                        format!("{path}.value_kind"),
                        format!("expected \"rate\" or \"counter\", found \"{other}\""),
                    )
                    .into())
                }
            };
            let start_s = spec.start.map_or(0.0, |d| d.as_secs_f64());
            let end_s = spec.end.map_or(f64::INFINITY, |d| d.as_secs_f64());
            if end_s <= start_s {
                return Err(FieldError::new(
                    format!("{path}.end"),
                    format!("expected end > start ({start_s}s)"),
                )
                .into());
            }
            let looped = spec.looped.unwrap_or(false);
            if looped && end_s.is_infinite() {
                return Err(FieldError::new(
                    format!("{path}.loop"),
                    "a loop needs `end`, the length of one repetition (e.g. end = \"1h\")",
                )
                .into());
            }
            if looped && spec.bootstrap_block.is_some() {
                return Err(FieldError::new(
                    format!("{path}.loop"),
                    "a bootstrap already fills the run: set loop or bootstrap_block, not both",
                )
                .into());
            }
            let trace = TraceSpec {
                looped,
                path: resolve(base_dir, file),
                format,
                options: FormatOptions {
                    column: spec.column.clone(),
                    time_column: spec.time_column.clone(),
                    service_column: spec.service_column.clone(),
                    service_unit_s,
                    input_column: spec.input_column.clone(),
                    output_column: spec.output_column.clone(),
                    class_column: None,
                    classes: Vec::new(),
                    interval_s: spec.interval.map(|d| d.as_secs_f64()),
                    metric: spec.metric.clone(),
                    value_kind,
                },
                use_recorded_service: spec.service_column.is_some()
                    || spec.use_recorded_service.unwrap_or(false),
                start_s,
                end_s,
                speedup: at_most(
                    positive(
                        spec.speedup.unwrap_or(1.0),
                        format!("{path}.speedup"),
                        "a factor",
                    )?,
                    1e6,
                    format!("{path}.speedup"),
                )?,
                rate_scale: at_most(
                    positive(
                        spec.rate_scale.unwrap_or(1.0),
                        format!("{path}.rate_scale"),
                        "a factor",
                    )?,
                    1e3,
                    format!("{path}.rate_scale"),
                )?,
                bootstrap_block_s: match spec.bootstrap_block {
                    Some(DurationSpec(d)) if d == SimTime::ZERO => {
                        return Err(FieldError::new(
                            format!("{path}.bootstrap_block"),
                            "expected a duration > 0 (leave it out to replay the trace as recorded)",
                        )
                        .into())
                    }
                    other => other.map(|d| d.as_secs_f64()),
                },
            };
            // Open it now so a missing file, column or malformed document fails before the
            // run starts.
            recorded::open(trace.format, &trace.path, &trace.options)
                .map_err(|e| FieldError::new(format!("{path}.path"), e.to_string()))?;
            Traffic::Trace(trace)
        }
        other => {
            return Err(FieldError::new(
                format!("{path}.kind"),
                format!(
                    "expected one of \"poisson\", \"constant\", \"steps\", \"diurnal\", \"trace\", found \"{other}\""
                ),
            )
            .into())
        }
    };
    Ok(traffic)
}
