//! How long one request occupies a worker.

use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use statrs::distribution::ContinuousCDF as _;

use crate::recorded::read_column;
use crate::rng::Stream;
use crate::scenario::schema::ServiceTimeSpec;
use crate::scenario::{
    check_kind_fields, present_fields, required, resolve, FieldError, LoadError,
};
use crate::time::SimTime;

fn standard_normal() -> statrs::distribution::Normal {
    statrs::distribution::Normal::standard()
}

/// z such that Φ(z) = 0.99, to turn a (median, p99) pair into a lognormal σ.
const Z_99: f64 = 2.326_347_874_040_841;

/// A validated service-time distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceTime {
    /// Always the same.
    Constant(SimTime),
    /// Exponential with this mean in seconds.
    Exponential {
        /// Mean, seconds.
        mean_s: f64,
    },
    /// ln(seconds) ~ Normal(mu, sigma).
    LogNormal {
        /// Mean of ln(seconds).
        mu: f64,
        /// Standard deviation of ln(seconds).
        sigma: f64,
    },
    /// Resampled uniformly from observed durations.
    Empirical {
        /// Observed durations.
        values: Arc<Vec<SimTime>>,
    },
}

impl ServiceTime {
    /// The distribution's mean in seconds (offered load = rate × mean).
    pub fn mean_s(&self) -> f64 {
        match self {
            ServiceTime::Constant(t) => t.as_secs_f64(),
            ServiceTime::Exponential { mean_s } => *mean_s,
            ServiceTime::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            ServiceTime::Empirical { values } => {
                values.iter().map(|v| v.as_secs_f64()).sum::<f64>() / values.len() as f64
            }
        }
    }

    /// Validate a service-time spec; empirical files are read in full (they are samples, not
    /// traces, so they are small).
    pub(crate) fn from_spec(
        spec: &ServiceTimeSpec,
        path: &str,
        base_dir: &Path,
    ) -> Result<ServiceTime, LoadError> {
        let present = present_fields(spec, "distribution");
        let present: Vec<&str> = present.iter().map(String::as_str).collect();
        let kind = spec.distribution.as_str();
        let check =
            |allowed: &[&str]| check_kind_fields(path, "distribution", kind, &present, allowed);
        let positive = |value: Option<crate::units::DurationSpec>, field: &str| {
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
                    .map_err(|e| FieldError::new(format!("{path}.path"), e))?;
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
}

/// How [`ServiceTime::fit`] turns measured service times into a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Resample the measurements themselves: no shape assumed, tails as observed.
    Empirical,
    /// Maximum-likelihood lognormal (mean and standard deviation of the logs): smooth tails
    /// beyond the largest measurement, two numbers to paste into a scenario.
    LogNormal,
}

impl ServiceTime {
    /// The model that best explains measured service times (seconds); `None` without at least
    /// two positive, finite measurements.
    pub fn fit(samples_s: &[f64], how: Fit) -> Option<ServiceTime> {
        let positive: Vec<f64> = samples_s
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if positive.len() < 2 {
            return None;
        }
        Some(match how {
            Fit::Empirical => ServiceTime::Empirical {
                values: Arc::new(
                    positive
                        .iter()
                        .map(|v| SimTime::from_secs_f64(*v))
                        .collect(),
                ),
            },
            Fit::LogNormal => {
                let n = positive.len() as f64;
                let mu = positive.iter().map(|v| v.ln()).sum::<f64>() / n;
                let var = positive.iter().map(|v| (v.ln() - mu).powi(2)).sum::<f64>() / n;
                if var <= 0.0 {
                    ServiceTime::Constant(SimTime::from_secs_f64(mu.exp()))
                } else {
                    ServiceTime::LogNormal {
                        mu,
                        sigma: var.sqrt(),
                    }
                }
            }
        })
    }

    /// One line for people: the family and its parameters in milliseconds.
    pub fn describe(&self) -> String {
        let ms = |s: f64| s * 1000.0;
        match self {
            ServiceTime::Constant(t) => format!("constant {:.2} ms", ms(t.as_secs_f64())),
            ServiceTime::Exponential { mean_s } => {
                format!("exponential, mean {:.2} ms", ms(*mean_s))
            }
            ServiceTime::LogNormal { mu, sigma } => format!(
                "lognormal, median {:.2} ms, p99 {:.2} ms (mu {mu:.4}, sigma {sigma:.4})",
                ms(mu.exp()),
                ms((mu + sigma * Z_99).exp())
            ),
            ServiceTime::Empirical { values } => format!(
                "empirical, {} values, mean {:.2} ms",
                values.len(),
                ms(self.mean_s())
            ),
        }
    }
}

/// Carries a service time drawn from one model to the time of the same rank under another
/// (quantile mapping), so that two models compare on common random numbers: a calibrated model
/// applied to the very draws the original model made.
pub struct QuantileMap {
    from: ServiceTime,
    to: ServiceTime,
}

impl QuantileMap {
    /// The map from `from` to `to`.
    pub fn new(from: &ServiceTime, to: &ServiceTime) -> Self {
        Self {
            from: sorted(from),
            to: sorted(to),
        }
    }

    /// The time under `to` of the rank `t_s` has under `from`, seconds.
    pub fn map(&self, t_s: f64) -> f64 {
        quantile(&self.to, mid_cdf(&self.from, t_s))
    }
}

fn sorted(model: &ServiceTime) -> ServiceTime {
    match model {
        ServiceTime::Empirical { values } => {
            let mut v = values.as_ref().clone();
            v.sort_unstable();
            ServiceTime::Empirical {
                values: Arc::new(v),
            }
        }
        other => other.clone(),
    }
}

/// Where `t_s` falls in the distribution: P(S < t) + P(S = t) / 2, so that an atom (a constant,
/// a repeated measurement) maps to the middle of its mass. Empirical values must be sorted.
fn mid_cdf(model: &ServiceTime, t_s: f64) -> f64 {
    match model {
        ServiceTime::Constant(c) => {
            let c = c.as_secs_f64();
            if t_s < c {
                0.0
            } else if t_s > c {
                1.0
            } else {
                0.5
            }
        }
        ServiceTime::Exponential { mean_s } => 1.0 - (-t_s.max(0.0) / mean_s).exp(),
        ServiceTime::LogNormal { mu, sigma } => {
            if t_s <= 0.0 {
                0.0
            } else {
                standard_normal().cdf((t_s.ln() - mu) / sigma)
            }
        }
        ServiceTime::Empirical { values } => {
            let t = SimTime::from_secs_f64(t_s.max(0.0));
            let below = values.partition_point(|v| *v < t);
            let through = values.partition_point(|v| *v <= t);
            (below + through) as f64 / 2.0 / values.len() as f64
        }
    }
}

/// The time below which a share `u` of service times fall. Empirical values must be sorted.
fn quantile(model: &ServiceTime, u: f64) -> f64 {
    let u = u.clamp(1e-12, 1.0 - 1e-12);
    match model {
        ServiceTime::Constant(c) => c.as_secs_f64(),
        ServiceTime::Exponential { mean_s } => -mean_s * (1.0 - u).ln(),
        ServiceTime::LogNormal { mu, sigma } => {
            (mu + sigma * standard_normal().inverse_cdf(u)).exp()
        }
        ServiceTime::Empirical { values } => {
            let i = ((u * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i].as_secs_f64()
        }
    }
}

fn read_durations(path: &Path, column: &str, scale: f64) -> Result<Vec<SimTime>, String> {
    let mut values = Vec::new();
    for (v, line) in read_column(path, column).map_err(|e| e.to_string())? {
        if v < 0.0 {
            return Err(format!(
                "{}:{line}: {column}: expected a duration ≥ 0, found {v}",
                path.display()
            ));
        }
        values.push(SimTime::from_secs_f64(v * scale));
    }
    if values.is_empty() {
        return Err(format!("{}: no rows", path.display()));
    }
    Ok(values)
}

/// Draws service times from one API's own random stream.
pub struct ServiceSampler {
    model: ServiceTime,
    rng: Stream,
}

impl ServiceSampler {
    /// A sampler for `model` on `rng`.
    pub fn new(model: ServiceTime, rng: Stream) -> Self {
        Self { model, rng }
    }

    /// One service time.
    #[inline]
    pub fn sample(&mut self) -> SimTime {
        match &self.model {
            ServiceTime::Constant(t) => *t,
            ServiceTime::Exponential { mean_s } => {
                let e: f64 = Exp1.sample(&mut self.rng);
                SimTime::from_secs_f64(e * mean_s)
            }
            ServiceTime::LogNormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                SimTime::from_secs_f64((mu + sigma * z).exp())
            }
            ServiceTime::Empirical { values } => {
                let i = self.rng.random_range(0..values.len());
                values[i]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn mean_of(model: ServiceTime, n: usize) -> f64 {
        let mut s = ServiceSampler::new(model, stream(3, "s"));
        (0..n).map(|_| s.sample().as_secs_f64()).sum::<f64>() / n as f64
    }

    #[test]
    fn fitting_recovers_the_model_that_drew_the_samples() {
        let truth = ServiceTime::LogNormal {
            mu: (0.05f64).ln(),
            sigma: 0.6,
        };
        let mut s = ServiceSampler::new(truth, stream(5, "fit"));
        let samples: Vec<f64> = (0..50_000).map(|_| s.sample().as_secs_f64()).collect();
        match ServiceTime::fit(&samples, Fit::LogNormal) {
            Some(ServiceTime::LogNormal { mu, sigma }) => {
                assert!((mu.exp() - 0.05).abs() < 0.0005, "median {}", mu.exp());
                assert!((sigma - 0.6).abs() < 0.006, "sigma {sigma}");
            }
            other => panic!("{other:?}"),
        }
        let empirical = ServiceTime::fit(&samples, Fit::Empirical).expect("fits");
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((empirical.mean_s() - mean).abs() < 1e-6);
        assert!(ServiceTime::fit(&[0.0, -1.0, f64::NAN, 0.1], Fit::LogNormal).is_none());
        assert_eq!(
            ServiceTime::fit(&[0.1, 0.1], Fit::LogNormal),
            Some(ServiceTime::Constant(SimTime::from_secs_f64(0.1)))
        );
    }

    #[test]
    fn quantile_mapping_keeps_each_draw_s_rank() {
        let from = ServiceTime::Exponential { mean_s: 0.05 };
        let to = ServiceTime::LogNormal {
            mu: (0.04f64).ln(),
            sigma: 0.5,
        };
        let map = QuantileMap::new(&from, &to);
        // The exponential's median goes to the lognormal's median, and order is kept.
        let median = 0.05 * std::f64::consts::LN_2;
        assert!((map.map(median) - 0.04).abs() < 1e-9);
        assert!(map.map(0.01) < map.map(0.02) && map.map(0.2) > map.map(0.1));
        // Mapped draws follow the target distribution.
        let mut s = ServiceSampler::new(from.clone(), stream(9, "q"));
        let mut mapped: Vec<f64> = (0..20_000)
            .map(|_| map.map(s.sample().as_secs_f64()))
            .collect();
        mapped.sort_by(f64::total_cmp);
        let p99 = mapped[(0.99 * mapped.len() as f64) as usize];
        let want = (0.04f64.ln() + 0.5 * Z_99).exp();
        assert!((p99 / want - 1.0).abs() < 0.03, "p99 {p99} vs {want}");
        // Onto an empirical model: ranks pick the order statistics; a constant maps to the middle.
        let measured = ServiceTime::Empirical {
            values: Arc::new(
                [0.03, 0.01, 0.02, 0.04]
                    .iter()
                    .map(|v| SimTime::from_secs_f64(*v))
                    .collect(),
            ),
        };
        let map = QuantileMap::new(
            &ServiceTime::Constant(SimTime::from_secs_f64(0.1)),
            &measured,
        );
        assert!((map.map(0.1) - 0.02).abs() < 1e-9);
        let map = QuantileMap::new(&measured, &measured);
        assert!((map.map(0.03) - 0.03).abs() < 1e-9);
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
        let model = ServiceTime::from_spec(&spec, "s", Path::new(".")).expect("valid");
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
        let model = ServiceTime::from_spec(&spec("latency_ms"), "s", &dir).expect("valid");
        assert!((model.mean_s() - 0.2).abs() < 1e-12);
        let mut s = ServiceSampler::new(model, stream(1, "s"));
        let draws: Vec<SimTime> = (0..100).map(|_| s.sample()).collect();
        assert!(draws.contains(&SimTime::from_secs_f64(0.1)));
        assert!(draws.contains(&SimTime::from_secs_f64(0.3)));
        assert!(draws
            .iter()
            .all(|d| *d == SimTime::from_secs_f64(0.1) || *d == SimTime::from_secs_f64(0.3)));

        std::fs::write(dir.join("lat.csv"), "latency_ms\n100\n-5\n").expect("write");
        let Err(LoadError::Field(e)) = ServiceTime::from_spec(&spec("latency_ms"), "s", &dir)
        else {
            panic!("negative duration accepted");
        };
        assert!(e.message.contains("lat.csv:3"), "{}", e.message);
    }

    #[test]
    fn exponential_mean() {
        let m = mean_of(ServiceTime::Exponential { mean_s: 0.05 }, 200_000);
        assert!((m - 0.05).abs() < 0.05 * 0.01, "{m}");
    }
}
