//! How long one request occupies a worker.

use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use statrs::distribution::ContinuousCDF as _;

use crate::rng::Stream;
use crate::time::SimTime;

fn standard_normal() -> statrs::distribution::Normal {
    statrs::distribution::Normal::standard()
}

/// z such that Φ(z) = 0.99, to turn a (median, p99) pair into a lognormal σ.
pub const Z_99: f64 = 2.326_347_874_040_841;

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
    fn exponential_mean() {
        let m = mean_of(ServiceTime::Exponential { mean_s: 0.05 }, 200_000);
        assert!((m - 0.05).abs() < 0.05 * 0.01, "{m}");
    }
}
