//! Checks shared by every part of the spec: SLO fractions, counts ≥ 1, required and
//! kind-selected fields, and paths relative to the scenario file.

use std::path::{Path, PathBuf};

use super::diagnostics::{FieldError, FieldResult};
use super::schema::SloSpec;
use crate::time::SimTime;
use crate::units::DurationSpec;

/// What an API is when it is not a request-level API (an LLM API's requests are token streams,
/// an async API's are polled results): features modelled per request (tenants, pipeline
/// stages) name it in their refusal. `None` for a request-level API.
pub(crate) fn not_request_level(llm: bool, is_async: bool) -> Option<&'static str> {
    if llm {
        Some("an LLM API")
    } else if is_async {
        Some("an async API")
    } else {
        None
    }
}

/// SLO rates are fractions of requests.
pub(crate) fn check_slo(slo: &SloSpec, path: &str, duration: SimTime) -> FieldResult<()> {
    if let Some(w) = slo.warmup {
        if w.0 >= duration {
            return Err(FieldError::new(
                format!("{path}.warmup"),
                format!(
                    "expected a warmup shorter than the run ({}), found {w}",
                    DurationSpec(duration)
                ),
            ));
        }
    }
    for (name, rate) in [
        ("max_rejection_rate", slo.max_rejection_rate),
        ("max_timeout_rate", slo.max_timeout_rate),
        ("min_goodput", slo.min_goodput),
    ] {
        if let Some(r) = rate {
            if !(0.0..=1.0).contains(&r) {
                return Err(FieldError::new(
                    format!("{path}.{name}"),
                    format!("expected a fraction between 0 and 1, found {r}"),
                ));
            }
        }
    }
    if slo.min_goodput.is_some() && (slo.ttft_p99.is_none() || slo.itl_p99.is_none()) {
        return Err(FieldError::new(
            format!("{path}.min_goodput"),
            "goodput counts requests within both ttft_p99 and itl_p99: set both",
        ));
    }
    Ok(())
}

/// Highest hourly price accepted (an instance, the control plane): far above any real one, low
/// enough that a year of a thousand nodes stays a finite cost.
pub(crate) const MAX_PRICE_USD_PER_HOUR: f64 = 1e6;

/// Most replicas of one API, nodes of one group, placeholder pods or batch workers: far above
/// any real fleet, low enough that the engine's per-pod state fits in memory.
pub(crate) const MAX_FLEET: u32 = 10_000;

/// `value` if it is at most `max`, else an error at `path` saying so.
pub(crate) fn at_most<T: PartialOrd + std::fmt::Display>(
    value: T,
    max: T,
    path: impl Into<String>,
) -> FieldResult<T> {
    if value <= max {
        Ok(value)
    } else {
        Err(FieldError::new(
            path,
            format!("expected at most {max}, found {value}"),
        ))
    }
}

/// A count that must be at least 1 when given.
pub(super) fn positive_u32(value: Option<u32>, default: u32, path: String) -> FieldResult<u32> {
    match value {
        Some(0) => Err(FieldError::new(path, "expected an integer ≥ 1, found 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// Check that a `kind`-selected spec sets only the fields that kind uses. `present` are the
/// fields set in the file (besides the selector); `allowed` the ones the kind takes.
pub(crate) fn check_kind_fields(
    path: &str,
    selector: &str,
    kind: &str,
    present: &[&str],
    allowed: &[&str],
) -> FieldResult<()> {
    for field in present {
        if !allowed.contains(field) {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                format!(
                    "not used by {selector} = \"{kind}\", which takes {}",
                    if allowed.is_empty() {
                        "no other field".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The fields set in a spec, found by serializing it (unset options are skipped).
pub(crate) fn present_fields<T: serde::Serialize>(spec: &T, selector: &str) -> Vec<String> {
    match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(map)) => {
            map.keys().filter(|k| *k != selector).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// Resolve a path from the scenario against its directory.
pub(crate) fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// A required field of a `kind`-selected spec.
pub(crate) fn required<T: Copy>(
    value: Option<T>,
    path: &str,
    field: &str,
    kind: &str,
) -> FieldResult<T> {
    value.ok_or_else(|| {
        FieldError::new(
            format!("{path}.{field}"),
            format!("required for \"{kind}\""),
        )
    })
}
