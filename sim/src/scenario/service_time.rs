//! `[apis.service_time]` and `[batch_jobs.service_time]` -> [`ServiceTime`]: checks each
//! distribution's fields and reads empirical sample files in full (they are samples, not traces,
//! so they are small).

use std::path::Path;
use std::sync::Arc;

use super::diagnostics::{FieldError, LoadError};
use super::fields::{check_kind_fields, present_fields, required, resolve};
use super::schema::ServiceTimeSpec;
use crate::recorded::{read_column, DataFileError};
use crate::service_time::{ServiceTime, Z_99};
use crate::time::SimTime;
use crate::units::DurationSpec;

/// Validate a service-time spec; empirical files are read in full (they are samples, not
/// traces, so they are small).
pub(super) fn build(
    spec: &ServiceTimeSpec,
    path: &str,
    base_dir: &Path,
) -> Result<ServiceTime, LoadError> {
    let present = present_fields(spec, "distribution");
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    let kind = spec.distribution.as_str();
    let check = |allowed: &[&str]| check_kind_fields(path, "distribution", kind, &present, allowed);
    let positive = |value: Option<DurationSpec>, field: &str| {
        let v = required(value, path, field, kind)?;
        if v.0 == SimTime::ZERO {
            Err(FieldError::new(
                format!("{path}.{field}"),
                "expected a duration > 0",
            ))
        } else {
            Ok(v.0)
        }
    };
    Ok(match kind {
        "constant" => {
            check(&["value"])?;
            ServiceTime::Constant(positive(spec.value, "value")?)
        }
        "exponential" => {
            check(&["mean"])?;
            ServiceTime::Exponential {
                mean_s: positive(spec.mean, "mean")?.as_secs_f64(),
            }
        }
        "lognormal" => {
            check(&["median", "p99", "mu", "sigma"])?;
            if spec.mu.is_some() || spec.sigma.is_some() {
                if spec.median.is_some() || spec.p99.is_some() {
                    return Err(FieldError::new(
                        format!("{path}.mu"),
                        "give either median and p99, or mu and sigma, not both",
                    )
                    .into());
                }
                let mu = required(spec.mu, path, "mu", kind)?;
                let sigma = required(spec.sigma, path, "sigma", kind)?;
                if !mu.is_finite() {
                    return Err(FieldError::new(
                        format!("{path}.mu"),
                        format!("expected a finite number, found {mu}"),
                    )
                    .into());
                }
                if !(sigma.is_finite() && sigma > 0.0) {
                    return Err(FieldError::new(
                        format!("{path}.sigma"),
                        format!("expected sigma > 0, found {sigma}"),
                    )
                    .into());
                }
                ServiceTime::LogNormal { mu, sigma }
            } else {
                let median = positive(spec.median, "median")?.as_secs_f64();
                let p99 = positive(spec.p99, "p99")?.as_secs_f64();
                if p99 <= median {
                    return Err(FieldError::new(
                        format!("{path}.p99"),
                        format!("expected p99 > median ({median}s), found {p99}s"),
                    )
                    .into());
                }
                ServiceTime::LogNormal {
                    mu: median.ln(),
                    sigma: (p99.ln() - median.ln()) / Z_99,
                }
            }
        }
        "empirical" => {
            check(&["path", "column", "unit"])?;
            let file = spec.path.as_deref().ok_or_else(|| {
                FieldError::new(format!("{path}.path"), "required for \"empirical\"")
            })?;
            let column = spec.column.clone().unwrap_or_else(|| "latency_ms".into());
            let scale = match spec.unit.as_deref() {
                Some("ms") => 1e-3,
                Some("s") => 1.0,
                None if column.ends_with("_ms") => 1e-3,
                None => 1.0,
                Some(other) => {
                    return Err(FieldError::new(
                        format!("{path}.unit"),
                        format!("expected \"ms\" or \"s\", found \"{other}\""),
                    )
                    .into())
                }
            };
            let values = read_durations(&resolve(base_dir, file), &column, scale)
                .map_err(|e| FieldError::new(format!("{path}.path"), e.to_string()))?;
            ServiceTime::Empirical {
                values: Arc::new(values),
            }
        }
        other => {
            return Err(FieldError::new(
                format!("{path}.distribution"),
                format!("expected one of \"constant\", \"exponential\", \"lognormal\", \"empirical\", found \"{other}\""),
            )
            .into())
        }
    })
}

/// Every value of `column` as a duration (`scale` seconds per unit); at least one row.
fn read_durations(path: &Path, column: &str, scale: f64) -> Result<Vec<SimTime>, DataFileError> {
    let mut values = Vec::new();
    for (v, line) in read_column(path, column)? {
        if v < 0.0 {
            return Err(DataFileError {
                file: path.display().to_string(),
                line: Some(line),
                column: None,
                message: format!("{column}: expected a duration ≥ 0, found {v}"),
            });
        }
        values.push(SimTime::from_secs_f64(v * scale));
    }
    if values.is_empty() {
        return Err(DataFileError {
            file: path.display().to_string(),
            line: None,
            column: None,
            message: "no rows".into(),
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::service_time::ServiceSampler;

    fn mean_of(model: ServiceTime, n: usize) -> f64 {
        let mut s = ServiceSampler::new(model, stream(3, "s"));
        (0..n).map(|_| s.sample().as_secs_f64()).sum::<f64>() / n as f64
    }

    #[test]
    fn lognormal_from_median_and_p99() {
        let spec = ServiceTimeSpec {
            distribution: "lognormal".into(),
            value: None,
            mean: None,
            median: Some(crate::units::DurationSpec::parse("100ms").expect("d")),
            p99: Some(crate::units::DurationSpec::parse("400ms").expect("d")),
            mu: None,
            sigma: None,
            path: None,
            column: None,
            unit: None,
        };
        let model = build(&spec, "s", Path::new(".")).expect("valid");
        let mut s = ServiceSampler::new(model.clone(), stream(3, "s"));
        let mut v: Vec<f64> = (0..200_000).map(|_| s.sample().as_secs_f64()).collect();
        v.sort_by(f64::total_cmp);
        assert!((v[100_000] - 0.1).abs() < 0.002, "median {}", v[100_000]);
        assert!((v[198_000] - 0.4).abs() < 0.012, "p99 {}", v[198_000]);
        assert!((mean_of(model.clone(), 200_000) - model.mean_s()).abs() / model.mean_s() < 0.01);
    }

    #[test]
    fn empirical_resamples_the_file_and_reports_bad_rows() {
        let dir = std::env::temp_dir().join(format!("simctl-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("lat.csv"),
            "timestamp_s,latency_ms\n0,100\n1,300\n",
        )
        .expect("write");
        let spec = |column: &str| ServiceTimeSpec {
            distribution: "empirical".into(),
            value: None,
            mean: None,
            median: None,
            p99: None,
            mu: None,
            sigma: None,
            path: Some("lat.csv".into()),
            column: Some(column.into()),
            unit: None,
        };
        let model = build(&spec("latency_ms"), "s", &dir).expect("valid");
        assert!((model.mean_s() - 0.2).abs() < 1e-12);
        let mut s = ServiceSampler::new(model, stream(1, "s"));
        let draws: Vec<SimTime> = (0..100).map(|_| s.sample()).collect();
        assert!(draws.contains(&SimTime::from_secs_f64(0.1)));
        assert!(draws.contains(&SimTime::from_secs_f64(0.3)));
        assert!(draws
            .iter()
            .all(|d| *d == SimTime::from_secs_f64(0.1) || *d == SimTime::from_secs_f64(0.3)));

        std::fs::write(dir.join("lat.csv"), "latency_ms\n100\n-5\n").expect("write");
        let Err(LoadError::Field(e)) = build(&spec("latency_ms"), "s", &dir) else {
            panic!("negative duration accepted");
        };
        assert!(e.message.contains("lat.csv:3"), "{}", e.message);
    }
}
