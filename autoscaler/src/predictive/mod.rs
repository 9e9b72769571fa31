//! Predictive scaling: a seasonal forecast of the load, taken ahead by the replicas' measured
//! start-up time, as a floor under a reactive policy (the higher of the two wins).
//!
//! Reactive policies lag by their averaging window plus a replica's start-up, which for GPU
//! models is minutes; on daily-cyclic traffic every morning ramp is then served short. AWS
//! predictive scaling (`replicas(t) = max(reactive(t), ceil(forecast(t + buffer) / target))`)
//! and the Predictive HPA (jthomperoo/predictive-horizontal-pod-autoscaler: HPA logic, then a
//! Holt–Winters or linear-regression model, combined by `decisionType = maximum`) both take this
//! shape; so does [`Predictive`]. The forecaster is fitted online from the metric the reactive
//! policy itself reads, so the same wrapper works over Cortex, the HPA, Knative or KEDA, and,
//! being pure like every policy, runs unchanged in the simulator and in `simctl autoscale`.
//!
//! The lead time is *measured*: the policy times each requested replica from the decision that
//! asked for it to the moment the ready count rises ([`StartupClock`]), so a slower image pull
//! or a node that must boot first moves the forecast further ahead without configuration.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{InvalidSetting, MetricSpec, Observation, Recommendation, Rule, ScalingPolicy};

pub mod forecast;
#[cfg(test)]
mod tests;

pub use forecast::{ForecastModel, Forecaster};

/// The `forecast` block: which model, at what resolution, and how its forecast becomes a
/// replica count.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// The forecaster.
    pub model: ForecastModel,
    /// The season (a day for diurnal traffic, a week for weekly patterns).
    pub period: Duration,
    /// The forecaster's resolution: the metric is averaged over each step and the forecaster
    /// sees one value per step (AWS predictive scaling forecasts hourly; 5 minutes suits
    /// start-ups of minutes).
    pub step: Duration,
    /// How far ahead to provision; `None`: the measured start-up time of this API's replicas
    /// (0 until one has been measured).
    pub lead: Option<Duration>,
    /// The load one replica should carry, in the reactive policy's metric (Cortex's
    /// `target_in_flight`, Knative's target concurrency, the HPA's target average value).
    pub target_per_replica: f64,
    /// Extra share on top of the forecast (0.1 = 10 %), for forecast error.
    pub headroom: f64,
}

impl ForecastConfig {
    /// Steps per period.
    pub fn steps_per_period(&self) -> usize {
        (self.period.as_nanos() / self.step.as_nanos().max(1)) as usize
    }

    /// Check the settings against what the forecaster can use.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.step.is_zero() {
            return Err(InvalidSetting::new("step", "expected a duration > 0s"));
        }
        if self.period < self.step * 2
            || !self.period.as_nanos().is_multiple_of(self.step.as_nanos())
        {
            return Err(InvalidSetting::new(
                "period",
                format!(
                    "expected a whole number (≥ 2) of steps of {}s, found {}s",
                    self.step.as_secs_f64(),
                    self.period.as_secs_f64()
                ),
            ));
        }
        if self.steps_per_period() > 100_000 {
            return Err(InvalidSetting::new(
                "step",
                "expected at most 100000 steps per period (a longer step)",
            ));
        }
        if !(self.target_per_replica.is_finite() && self.target_per_replica > 0.0) {
            return Err(InvalidSetting::new(
                "target_per_replica",
                format!("expected a number > 0, found {}", self.target_per_replica),
            ));
        }
        if !(self.headroom.is_finite() && self.headroom >= 0.0) {
            return Err(InvalidSetting::new(
                "headroom",
                format!("expected a share ≥ 0, found {}", self.headroom),
            ));
        }
        match self.model {
            ForecastModel::HoltWinters { alpha, beta, gamma } => {
                for (field, v, low_open) in [
                    ("alpha", alpha, true),
                    ("beta", beta, false),
                    ("gamma", gamma, false),
                ] {
                    let ok = v.is_finite() && v <= 1.0 && if low_open { v > 0.0 } else { v >= 0.0 };
                    if !ok {
                        return Err(InvalidSetting::new(
                            field,
                            format!(
                                "expected a smoothing factor in {}0, 1], found {v}",
                                if low_open { "(" } else { "[" }
                            ),
                        ));
                    }
                }
            }
            ForecastModel::MovingAverage { points: 0 } => {
                return Err(InvalidSetting::new(
                    "points",
                    "expected an integer ≥ 1, found 0",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Times replicas from the decision that asked for them to the moment they are ready, from
/// what any policy sees: the requested count (`current_replicas`) and the ready count. Each
/// rise of the request opens that many clocks (oldest first); each rise of the ready count
/// stops the oldest open clocks; a fall of the request cancels the newest. The resolution is
/// the decision interval.
#[derive(Debug, Clone, Default)]
pub struct StartupClock {
    started: bool,
    requested: u32,
    ready: u32,
    open: VecDeque<Duration>,
    recent: VecDeque<Duration>,
}

impl StartupClock {
    /// How many recent start-ups the mean is over.
    const KEEP: usize = 16;

    /// Update from one observation at `now`.
    pub fn observe(&mut self, now: Duration, requested: u32, ready: u32) {
        if !self.started {
            // The replicas there at the first look were not asked for by this policy.
            (self.started, self.requested, self.ready) = (true, requested, ready);
            return;
        }
        if requested > self.requested {
            for _ in self.requested..requested {
                self.open.push_back(now);
            }
        } else {
            for _ in requested..self.requested {
                self.open.pop_back();
            }
        }
        if ready > self.ready {
            for _ in self.ready..ready {
                let Some(asked) = self.open.pop_front() else {
                    break;
                };
                self.recent.push_back(now.saturating_sub(asked));
                if self.recent.len() > Self::KEEP {
                    self.recent.pop_front();
                }
            }
        }
        self.requested = requested;
        self.ready = ready;
    }

    /// The mean of the recent start-ups, `None` before the first.
    pub fn mean(&self) -> Option<Duration> {
        if self.recent.is_empty() {
            return None;
        }
        let total: Duration = self.recent.iter().sum();
        Some(total / self.recent.len() as u32)
    }
}

/// A reactive policy with a forecast floor: `max(reactive, ceil(forecast(now + lead) ×
/// (1 + headroom) / target_per_replica))`.
pub struct Predictive {
    inner: Box<dyn ScalingPolicy>,
    config: ForecastConfig,
    forecaster: Forecaster,
    /// The step being averaged, its sum and sample count.
    bucket: Option<u64>,
    sum: f64,
    count: u32,
    /// The last closed step's mean, carried over steps without a sample.
    last_mean: Option<f64>,
    clock: StartupClock,
}

impl Predictive {
    /// `inner` with a forecast floor set by `config` (validated by the caller).
    pub fn new(inner: Box<dyn ScalingPolicy>, config: ForecastConfig) -> Self {
        let forecaster = Forecaster::new(config.model, config.steps_per_period());
        Self {
            inner,
            config,
            forecaster,
            bucket: None,
            sum: 0.0,
            count: 0,
            last_mean: None,
            clock: StartupClock::default(),
        }
    }

    /// The total load the reactive policy sees: its aggregated metric, or the sum of the
    /// pods' values for per-pod policies.
    fn load(observation: &Observation) -> Option<f64> {
        observation.metric.or_else(|| {
            let values: Vec<f64> = observation.pods.iter().filter_map(|p| p.value).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        })
    }

    /// Feed the sample at `now` into the step averages, closing every step that ended.
    fn record(&mut self, now: Duration, load: Option<f64>) -> u64 {
        let step = (now.as_nanos() / self.config.step.as_nanos()) as u64;
        match self.bucket {
            None => self.bucket = Some(step),
            Some(open) if step > open => {
                let mean = if self.count > 0 {
                    Some(self.sum / f64::from(self.count))
                } else {
                    self.last_mean
                };
                if let Some(mean) = mean {
                    // Steps without a decision (longer ticks than the step) repeat the mean.
                    for _ in open..step {
                        self.forecaster.observe(mean);
                    }
                    self.last_mean = Some(mean);
                }
                self.bucket = Some(step);
                self.sum = 0.0;
                self.count = 0;
            }
            Some(_) => {}
        }
        if let Some(v) = load.filter(|v| v.is_finite()) {
            self.sum += v;
            self.count += 1;
        }
        step
    }

    /// The lead in use: the configured one, else the measured start-up.
    pub fn lead(&self) -> Duration {
        self.config
            .lead
            .or_else(|| self.clock.mean())
            .unwrap_or(Duration::ZERO)
    }
}

impl ScalingPolicy for Predictive {
    fn name(&self) -> &'static str {
        match self.inner.name() {
            "cortex" => "cortex+forecast",
            "hpa" => "hpa+forecast",
            "kpa" => "kpa+forecast",
            "keda" => "keda+forecast",
            "saturation" => "saturation+forecast",
            _ => "predictive",
        }
    }

    fn tick_interval(&self) -> Duration {
        self.inner.tick_interval()
    }

    fn metric_spec(&self) -> MetricSpec {
        self.inner.metric_spec()
    }

    fn initial_replicas(&self) -> u32 {
        self.inner.initial_replicas()
    }

    fn recommend(&mut self, now: Duration, observation: &Observation) -> Recommendation {
        self.clock.observe(
            now,
            observation.current_replicas,
            observation.ready_replicas,
        );
        let step = self.record(now, Self::load(observation));
        let mut rec = self.inner.recommend(now, observation);
        let lead = self.lead();
        // The last step the forecaster saw is `step − 1`; capacity asked for now is ready at
        // now + lead, in step `target`; the step after it is taken too, one step of margin for
        // a start-up slower than the mean.
        let target = ((now + lead).as_nanos() / self.config.step.as_nanos()) as u64;
        let h = (target + 1).saturating_sub(step) as usize;
        let forecast = [h, h + 1]
            .iter()
            .filter_map(|&h| self.forecaster.forecast(h))
            .fold(None, |m: Option<f64>, f| Some(m.map_or(f, |m| m.max(f))));
        rec.inputs.push(("lead_s", lead.as_secs_f64()));
        if let Some(f) = forecast {
            let wanted = f.max(0.0) * (1.0 + self.config.headroom) / self.config.target_per_replica;
            let replicas = (wanted - 1e-9).ceil().max(0.0) as u32;
            rec.inputs.push(("forecast", f));
            rec.inputs.push(("forecast_replicas", f64::from(replicas)));
            if replicas > rec.replicas {
                rec.why.rules.push(Rule::Forecast {
                    forecast: f,
                    lead,
                    replicas,
                });
                rec.replicas = replicas;
            }
        }
        rec
    }
}
