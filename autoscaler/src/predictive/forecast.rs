//! Forecasters fitted online from a metric history sampled at a fixed step: additive
//! Holt–Winters (level, trend and one seasonal component) and two baselines a forecaster must
//! beat to be worth its parameters — the seasonal-naive "same time last period" and a moving
//! average.
//!
//! Each forecaster sees one value per step ([`Forecaster::observe`]) and answers the value
//! `h` steps after the last one ([`Forecaster::forecast`]), or `None` while it has too little
//! history. Nothing here knows about replicas or time: the policy in the parent module turns
//! wall-clock samples into steps and forecasts into replicas.

use std::collections::VecDeque;

/// Which forecaster, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ForecastModel {
    /// Additive Holt–Winters, the recursions of Hyndman & Athanasopoulos, *Forecasting:
    /// Principles and Practice* §8.3 (the ones statsmodels' `ExponentialSmoothing(trend="add",
    /// seasonal="add")` runs), initialised from the first two periods.
    HoltWinters {
        /// Level smoothing, 0 < α ≤ 1.
        alpha: f64,
        /// Trend smoothing, 0 ≤ β ≤ 1.
        beta: f64,
        /// Seasonal smoothing, 0 ≤ γ ≤ 1.
        gamma: f64,
    },
    /// The value one period earlier (for a daily period: this time yesterday).
    SeasonalNaive,
    /// The mean of the last `points` values, whatever the horizon.
    MovingAverage {
        /// How many steps to average.
        points: usize,
    },
}

/// A forecaster's state: the history it keeps and, for Holt–Winters, its components.
#[derive(Debug, Clone)]
pub struct Forecaster {
    model: ForecastModel,
    /// Steps in one period (seasonal models).
    period: usize,
    /// The values kept: two periods for Holt–Winters until it is initialised, one period for
    /// the seasonal-naive model, `points` for the moving average.
    history: VecDeque<f64>,
    /// Holt–Winters' components once initialised.
    components: Option<Components>,
}

/// Holt–Winters' level, trend and seasonal indices; `season[i]` belongs to the step whose
/// index is `i` modulo the period.
#[derive(Debug, Clone)]
struct Components {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    /// Steps observed so far (the index of the next one).
    t: usize,
}

impl Components {
    /// One step of the additive recursions (FPP §8.3, eq. for ℓ, b, s):
    /// ℓ = α(y − s₋ₘ) + (1 − α)(ℓ₋₁ + b₋₁); b = β(ℓ − ℓ₋₁) + (1 − β)b₋₁;
    /// s = γ(y − ℓ₋₁ − b₋₁) + (1 − γ)s₋ₘ.
    fn update(&mut self, y: f64, alpha: f64, beta: f64, gamma: f64) {
        let i = self.t % self.season.len();
        let (level0, trend0, s_prev) = (self.level, self.trend, self.season[i]);
        self.level = alpha * (y - s_prev) + (1.0 - alpha) * (level0 + trend0);
        self.trend = beta * (self.level - level0) + (1.0 - beta) * trend0;
        self.season[i] = gamma * (y - level0 - trend0) + (1.0 - gamma) * s_prev;
        self.t += 1;
    }
}

impl Forecaster {
    /// A forecaster with no history, for a series with `period` steps per season (at least 1).
    pub fn new(model: ForecastModel, period: usize) -> Self {
        Self {
            model,
            period: period.max(1),
            history: VecDeque::new(),
            components: None,
        }
    }

    /// The value of the next step.
    pub fn observe(&mut self, y: f64) {
        match self.model {
            ForecastModel::SeasonalNaive => {
                self.history.push_back(y);
                if self.history.len() > self.period {
                    self.history.pop_front();
                }
            }
            ForecastModel::MovingAverage { points } => {
                self.history.push_back(y);
                if self.history.len() > points.max(1) {
                    self.history.pop_front();
                }
            }
            ForecastModel::HoltWinters { alpha, beta, gamma } => match &mut self.components {
                Some(c) => c.update(y, alpha, beta, gamma),
                None => {
                    self.history.push_back(y);
                    if self.history.len() == 2 * self.period {
                        self.components = Some(self.initialise());
                        self.history.clear();
                    }
                }
            },
        }
    }

    /// Holt–Winters' start from two full periods (the classical heuristic): the level is the
    /// first period's mean, the trend the change of the mean from the first period to the
    /// second per step, each seasonal index the first period's value less its mean. The
    /// recursions then run over the second period, so the state is that after `2m` steps.
    fn initialise(&self) -> Components {
        let m = self.period;
        let first: f64 = self.history.iter().take(m).sum::<f64>() / m as f64;
        let second: f64 = self.history.iter().skip(m).take(m).sum::<f64>() / m as f64;
        let mut c = Components {
            level: first,
            trend: (second - first) / m as f64,
            season: self.history.iter().take(m).map(|y| y - first).collect(),
            t: m,
        };
        if let ForecastModel::HoltWinters { alpha, beta, gamma } = self.model {
            for &y in self.history.iter().skip(m) {
                c.update(y, alpha, beta, gamma);
            }
        }
        c
    }

    /// The value `h ≥ 1` steps after the last observed one; `None` until the model has the
    /// history it needs (two periods for Holt–Winters, one for seasonal-naive, one value for
    /// the moving average).
    pub fn forecast(&self, h: usize) -> Option<f64> {
        let h = h.max(1);
        match self.model {
            ForecastModel::SeasonalNaive => {
                if self.history.len() < self.period {
                    return None;
                }
                // The last value kept is step T; step T + h − k·m (k periods back) is at
                // index (h − 1) mod m of the period kept.
                self.history.get((h - 1) % self.period).copied()
            }
            ForecastModel::MovingAverage { .. } => {
                if self.history.is_empty() {
                    return None;
                }
                Some(self.history.iter().sum::<f64>() / self.history.len() as f64)
            }
            ForecastModel::HoltWinters { .. } => {
                let c = self.components.as_ref()?;
                let i = (c.t + h - 1) % self.period;
                Some(c.level + h as f64 * c.trend + c.season[i])
            }
        }
    }

    /// Steps in one period.
    pub fn period(&self) -> usize {
        self.period
    }
}
