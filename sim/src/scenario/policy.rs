//! `[apis.autoscaling]`: which policy, its settings, and overprovisioning.

use autoscaler::{
    Cortex, CortexConfig, DecisionStep, Fixed, ForecastConfig, Hpa, HpaConfig, HpaMetric, Keda,
    KedaConfig, KedaTrigger, Kpa, KpaConfig, Predictive, ReplicaBounds, Saturation,
    SaturationConfig, ScalingPolicy,
};
use serde::Deserialize;

use super::schema::AutoscalingSpec;
use super::FieldError;
use crate::units::DurationSpec;

pub use autoscaler::Overprovisioning;

mod forecast;
mod hpa;
use hpa::{hpa_config, keda_config, HpaSettings, KedaSettings};

/// A validated policy choice with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChoice {
    /// `replicas = min_replicas`.
    Fixed,
    /// Cortex v0.42.
    Cortex(CortexConfig),
    /// Kubernetes HPA (autoscaling/v2).
    Hpa(HpaConfig),
    /// Knative KPA.
    Kpa(KpaConfig),
    /// KEDA ScaledObject (its operator plus the HPA it creates).
    Keda(KedaConfig),
    /// llm-d Workload Variant Autoscaler's V1 saturation analyzer (LLM APIs only).
    Saturation(SaturationConfig),
}

/// The validated `[apis.autoscaling]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    /// The policy and its settings.
    pub policy: PolicyChoice,
    /// Lower bound on replicas.
    pub min_replicas: u32,
    /// Upper bound on replicas.
    pub max_replicas: u32,
    /// Headroom on top of the policy.
    pub overprovisioning: Overprovisioning,
    /// Cortex ≤0.35 `max_replica_concurrency`: replica-wide limit (executing + queued).
    pub max_replica_concurrency: Option<u32>,
    /// How often per-pod metrics are scraped (`hpa`, `saturation`: Prometheus's scrape
    /// interval); `None`: every second.
    pub scrape_interval: Option<std::time::Duration>,
    /// `[apis.autoscaling.forecast]`: a forecast floor under the policy (predictive scaling).
    pub forecast: Option<ForecastConfig>,
}

impl Autoscaling {
    /// The whole decision step for one run (the simulator's and the controller's): a fresh
    /// policy within the bounds, with overprovisioning on top.
    pub fn decision_step(&self) -> DecisionStep {
        DecisionStep::new(
            self.build(),
            ReplicaBounds {
                min_replicas: self.min_replicas,
                max_replicas: self.max_replicas,
            },
            self.overprovisioning,
        )
    }

    /// A fresh policy instance for one run.
    pub fn build(&self) -> Box<dyn ScalingPolicy> {
        let reactive = self.build_reactive();
        match &self.forecast {
            Some(forecast) => Box::new(Predictive::new(reactive, forecast.clone())),
            None => reactive,
        }
    }

    /// The reactive policy alone, without the forecast floor.
    fn build_reactive(&self) -> Box<dyn ScalingPolicy> {
        match &self.policy {
            PolicyChoice::Fixed => Box::new(Fixed::new(self.min_replicas)),
            PolicyChoice::Cortex(c) => Box::new(Cortex::new(c.clone())),
            PolicyChoice::Hpa(c) => Box::new(Hpa::new(c.clone())),
            PolicyChoice::Kpa(c) => Box::new(Kpa::new(c.clone())),
            PolicyChoice::Keda(c) => Box::new(Keda::new(c.clone())),
            PolicyChoice::Saturation(c) => Box::new(Saturation::new(c.clone())),
        }
    }

    /// Whether the policy reads a signal only an LLM server exports (vLLM's queue, batch, KV
    /// cache or token counters), so that the scenario loader can refuse it on a non-LLM API.
    pub(crate) fn needs_llm(&self) -> bool {
        match &self.policy {
            PolicyChoice::Saturation(_) => true,
            PolicyChoice::Hpa(c) => c
                .metrics
                .iter()
                .any(|m| matches!(m, HpaMetric::PodsAverageValue { kind, .. } if kind.is_llm())),
            PolicyChoice::Keda(c) => {
                matches!(c.trigger, KedaTrigger::PodsSum { kind } if kind.is_llm())
            }
            PolicyChoice::Fixed | PolicyChoice::Cortex(_) | PolicyChoice::Kpa(_) => false,
        }
    }

    /// Whether the policy reads an async API's queue (KEDA's `aws-sqs-queue` trigger), so that
    /// the scenario loader can refuse it on a realtime API.
    pub(crate) fn needs_queue(&self) -> bool {
        matches!(&self.policy, PolicyChoice::Keda(c) if matches!(c.trigger, KedaTrigger::SqsQueue { .. }))
    }

    /// Whether requests are held (not rejected) while the API has no replica, as Cortex's and
    /// Knative's activators do for scale-to-zero.
    pub fn holds_requests_at_zero(&self) -> bool {
        self.min_replicas == 0 && !matches!(self.policy, PolicyChoice::Fixed)
    }
}

/// `fixed`: only bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedSettings {
    #[serde(default = "one")]
    min_replicas: u32,
    #[serde(default = "hundred")]
    max_replicas: u32,
}

/// `cortex`: Cortex v0.42 field names (and ≤0.35 aliases), defaults from its validations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CortexSettings {
    #[serde(default = "one")]
    min_replicas: u32,
    #[serde(default = "hundred")]
    max_replicas: u32,
    init_replicas: Option<u32>,
    target_in_flight: Option<f64>,
    /// Cortex ≤0.35 name of `target_in_flight`.
    target_replica_concurrency: Option<f64>,
    /// Cortex ≤0.35: replica-wide limit; sets `max_queue_length = this − concurrency`.
    max_replica_concurrency: Option<u32>,
    window: Option<DurationSpec>,
    downscale_stabilization_period: Option<DurationSpec>,
    upscale_stabilization_period: Option<DurationSpec>,
    max_downscale_factor: Option<f64>,
    max_upscale_factor: Option<f64>,
    downscale_tolerance: Option<f64>,
    upscale_tolerance: Option<f64>,
}

/// `kpa`: Knative's config-autoscaler keys in snake_case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpaSettings {
    #[serde(default)]
    min_replicas: u32,
    #[serde(default = "hundred")]
    max_replicas: u32,
    /// Defaults to the pod's concurrency (processes × threads).
    container_concurrency: Option<u32>,
    target: Option<f64>,
    target_utilization: Option<f64>,
    stable_window: Option<DurationSpec>,
    panic_window_percentage: Option<f64>,
    panic_threshold_percentage: Option<f64>,
    max_scale_up_rate: Option<f64>,
    max_scale_down_rate: Option<f64>,
    scale_to_zero_grace_period: Option<DurationSpec>,
    scale_down_delay: Option<DurationSpec>,
    initial_scale: Option<u32>,
    activation_scale: Option<u32>,
}

/// `saturation`: llm-d WVA's `saturation-scaling-config` keys in snake_case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaturationSettings {
    #[serde(default = "one")]
    min_replicas: u32,
    #[serde(default = "hundred")]
    max_replicas: u32,
    kv_cache_threshold: Option<f64>,
    queue_length_threshold: Option<f64>,
    kv_spare_trigger: Option<f64>,
    queue_spare_trigger: Option<f64>,
    interval: Option<DurationSpec>,
    window: Option<DurationSpec>,
    metrics_lag: Option<DurationSpec>,
    /// Prometheus's scrape interval of the pods' gauges (default 1s).
    scrape_interval: Option<DurationSpec>,
    /// The actuating HPA's stabilization window, both directions (default 240s, WVA's chart).
    stabilization_window: Option<DurationSpec>,
}

fn in_flight() -> String {
    "in_flight".into()
}

fn concurrency() -> String {
    "concurrency".into()
}

fn one() -> u32 {
    1
}

fn hundred() -> u32 {
    100
}

/// Deserialize a policy's settings from the table, with error paths under `path`.
fn settings<T: for<'de> Deserialize<'de>>(table: toml::Table, path: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let inner = e.path().to_string();
        let message = e.into_inner().message().trim().replace('\n', "; ");
        let field = if inner.is_empty() || inner == "." {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        FieldError::new(field, message)
    })
}

fn dur(d: Option<DurationSpec>, default: std::time::Duration) -> std::time::Duration {
    d.map_or(default, |d| d.0.as_duration())
}

/// Validate `[apis.autoscaling]` at `path` for a replica of `concurrency` workers and
/// `capacity` in-flight requests (concurrency + queue).
pub(crate) fn parse(
    spec: &AutoscalingSpec,
    path: &str,
    concurrency: u32,
    capacity: u32,
) -> Result<Autoscaling, FieldError> {
    let mut table = spec.0.clone();
    let policy = match table.remove("policy") {
        None => "fixed".to_string(),
        Some(toml::Value::String(s)) => s,
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.policy"),
                format!(
                    "expected a string such as \"fixed\", found {}",
                    other.type_str()
                ),
            ))
        }
    };
    let forecast = table.remove("forecast");
    let overprovisioning = match table.remove("overprovisioning") {
        None => Overprovisioning::None,
        Some(value) => parse_overprovisioning(&value, &format!("{path}.overprovisioning"))?,
    };
    let invalid = |m: String| {
        let (field, message) = m.split_once(": ").unwrap_or(("", m.as_str()));
        FieldError::new(
            if field.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{field}")
            },
            message.to_string(),
        )
    };
    let mut max_replica_concurrency = None;
    let mut scrape_interval = None;
    let mut scrape = |value: Option<DurationSpec>| -> Result<(), FieldError> {
        if let Some(d) = value {
            let d = d.0.as_duration();
            if d.is_zero() || d > std::time::Duration::from_secs(600) {
                return Err(FieldError::new(
                    format!("{path}.scrape_interval"),
                    format!(
                        "expected a period of more than 0s and at most 10m, found {}",
                        DurationSpec(d.into())
                    ),
                ));
            }
            scrape_interval = Some(d);
        }
        Ok(())
    };
    let (choice, min_replicas, max_replicas) = match policy.as_str() {
        "fixed" => {
            let s: FixedSettings = settings(table, path)?;
            (PolicyChoice::Fixed, s.min_replicas, s.max_replicas)
        }
        "cortex" => {
            let s: CortexSettings = settings(table, path)?;
            if s.target_in_flight.is_some() && s.target_replica_concurrency.is_some() {
                return Err(FieldError::new(
                    format!("{path}.target_replica_concurrency"),
                    "set target_in_flight (Cortex ≥0.36) or target_replica_concurrency (≤0.35), not both",
                ));
            }
            let mut c = CortexConfig::with_concurrency(concurrency);
            c.bounds = ReplicaBounds {
                min_replicas: s.min_replicas,
                max_replicas: s.max_replicas,
            };
            c.init_replicas = s.init_replicas.unwrap_or(s.min_replicas);
            if let Some(t) = s.target_in_flight.or(s.target_replica_concurrency) {
                c.target_in_flight = t;
            }
            c.window = dur(s.window, c.window);
            c.downscale_stabilization_period = dur(
                s.downscale_stabilization_period,
                c.downscale_stabilization_period,
            );
            c.upscale_stabilization_period = dur(
                s.upscale_stabilization_period,
                c.upscale_stabilization_period,
            );
            c.max_downscale_factor = s.max_downscale_factor.unwrap_or(c.max_downscale_factor);
            c.max_upscale_factor = s.max_upscale_factor.unwrap_or(c.max_upscale_factor);
            c.downscale_tolerance = s.downscale_tolerance.unwrap_or(c.downscale_tolerance);
            c.upscale_tolerance = s.upscale_tolerance.unwrap_or(c.upscale_tolerance);
            max_replica_concurrency = s.max_replica_concurrency;
            let capacity = s.max_replica_concurrency.unwrap_or(capacity);
            if s.max_replica_concurrency.is_some_and(|m| m < concurrency) {
                return Err(FieldError::new(
                    format!("{path}.max_replica_concurrency"),
                    format!("expected ≥ the replica's concurrency ({concurrency})"),
                ));
            }
            if s.max_replicas > 0 && s.min_replicas <= s.max_replicas {
                c.validate(capacity).map_err(|e| invalid(e.to_string()))?;
            }
            (PolicyChoice::Cortex(c), s.min_replicas, s.max_replicas)
        }
        "kpa" => {
            let s: KpaSettings = settings(table, path)?;
            let d = KpaConfig::default();
            let c = KpaConfig {
                bounds: ReplicaBounds {
                    min_replicas: s.min_replicas,
                    max_replicas: s.max_replicas,
                },
                container_concurrency: s.container_concurrency.unwrap_or(concurrency),
                target: s.target,
                target_utilization: s.target_utilization.unwrap_or(d.target_utilization),
                stable_window: dur(s.stable_window, d.stable_window),
                panic_window_percentage: s
                    .panic_window_percentage
                    .unwrap_or(d.panic_window_percentage),
                panic_threshold_percentage: s
                    .panic_threshold_percentage
                    .unwrap_or(d.panic_threshold_percentage),
                max_scale_up_rate: s.max_scale_up_rate.unwrap_or(d.max_scale_up_rate),
                max_scale_down_rate: s.max_scale_down_rate.unwrap_or(d.max_scale_down_rate),
                scale_to_zero_grace_period: dur(
                    s.scale_to_zero_grace_period,
                    d.scale_to_zero_grace_period,
                ),
                scale_down_delay: dur(s.scale_down_delay, d.scale_down_delay),
                initial_scale: s.initial_scale.unwrap_or(d.initial_scale),
                activation_scale: s.activation_scale.unwrap_or(d.activation_scale),
            };
            c.validate().map_err(|e| invalid(e.to_string()))?;
            (PolicyChoice::Kpa(c), s.min_replicas, s.max_replicas)
        }
        "hpa" => {
            let s: HpaSettings = settings(table, path)?;
            scrape(s.scrape_interval)?;
            let (min, max) = (s.min_replicas, s.max_replicas);
            (PolicyChoice::Hpa(hpa_config(s, path)?), min, max)
        }
        "keda" => {
            let s: KedaSettings = settings(table, path)?;
            let (min, max) = (s.min_replicas, s.max_replicas);
            (PolicyChoice::Keda(keda_config(s, path)?), min, max)
        }
        "saturation" => {
            let s: SaturationSettings = settings(table, path)?;
            scrape(s.scrape_interval)?;
            if s.min_replicas == 0 {
                return Err(FieldError::new(
                    format!("{path}.min_replicas"),
                    "expected ≥ 1 (WVA never scales a variant below 1 replica)",
                ));
            }
            let d = SaturationConfig::default();
            let c = SaturationConfig {
                bounds: ReplicaBounds {
                    min_replicas: s.min_replicas,
                    max_replicas: s.max_replicas,
                },
                kv_cache_threshold: s.kv_cache_threshold.unwrap_or(d.kv_cache_threshold),
                queue_length_threshold: s
                    .queue_length_threshold
                    .unwrap_or(d.queue_length_threshold),
                kv_spare_trigger: s.kv_spare_trigger.unwrap_or(d.kv_spare_trigger),
                queue_spare_trigger: s.queue_spare_trigger.unwrap_or(d.queue_spare_trigger),
                interval: dur(s.interval, d.interval),
                window: dur(s.window, d.window),
                metrics_lag: dur(s.metrics_lag, d.metrics_lag),
                stabilization_window: dur(s.stabilization_window, d.stabilization_window),
            };
            c.validate().map_err(|e| invalid(e.to_string()))?;
            (PolicyChoice::Saturation(c), s.min_replicas, s.max_replicas)
        }
        other => {
            return Err(FieldError::new(
                format!("{path}.policy"),
                format!("expected \"fixed\", \"cortex\", \"hpa\", \"kpa\", \"keda\" or \"saturation\", found \"{other}\""),
            ))
        }
    };
    super::fields::at_most(
        max_replicas,
        super::fields::MAX_FLEET,
        format!("{path}.max_replicas"),
    )?;
    if max_replicas == 0 {
        return Err(FieldError::new(
            format!("{path}.max_replicas"),
            "expected an integer ≥ 1, found 0",
        ));
    }
    if min_replicas > max_replicas {
        return Err(FieldError::new(
            format!("{path}.min_replicas"),
            format!("expected min_replicas ≤ max_replicas ({max_replicas}), found {min_replicas}"),
        ));
    }
    let forecast = forecast
        .map(|value| forecast::parse(value, &format!("{path}.forecast"), &choice))
        .transpose()?;
    Ok(Autoscaling {
        policy: choice,
        min_replicas,
        max_replicas,
        overprovisioning,
        max_replica_concurrency,
        scrape_interval,
        forecast,
    })
}

/// `overprovisioning = 2` or `"25%"`; anything else is an error at `path`.
fn parse_overprovisioning(value: &toml::Value, path: &str) -> Result<Overprovisioning, FieldError> {
    let expected = "expected a replica count (e.g. 2) or a percentage (e.g. \"25%\")";
    let invalid = |found: String| FieldError::new(path, format!("{expected}, found {found}"));
    match value {
        toml::Value::Integer(n) => u32::try_from(*n)
            .map(Overprovisioning::Replicas)
            .map_err(|_| invalid(n.to_string())),
        toml::Value::String(s) => {
            let number = s.trim().strip_suffix('%').map(str::trim);
            match number.and_then(|n| n.parse::<f64>().ok()) {
                Some(p) if p.is_finite() && p >= 0.0 => Ok(Overprovisioning::Fraction(p / 100.0)),
                _ => Err(invalid(format!("\"{s}\""))),
            }
        }
        other => Err(invalid(other.type_str().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler::PodMetricKind;

    #[test]
    fn overprovisioning_as_count_or_percentage() {
        let p = |v: toml::Value| parse_overprovisioning(&v, "o");
        assert_eq!(
            p(toml::Value::Integer(2)),
            Ok(Overprovisioning::Replicas(2))
        );
        assert_eq!(
            p(toml::Value::String("25%".into())),
            Ok(Overprovisioning::Fraction(0.25))
        );
        assert!(p(toml::Value::String("lots".into())).is_err());
        assert!(p(toml::Value::Integer(-1)).is_err());
        assert_eq!(Overprovisioning::Fraction(0.25).apply(5, 100), 7);
        assert_eq!(Overprovisioning::Replicas(3).apply(5, 6), 6);
        assert_eq!(Overprovisioning::None.apply(5, 6), 5);
    }

    #[test]
    fn nan_zero_and_negative_settings_are_refused_with_their_field() {
        for (settings, field) in [
            ("policy = \"kpa\"\nmax_scale_up_rate = nan", "max_scale_up_rate"),
            ("policy = \"kpa\"\nmax_scale_down_rate = nan", "max_scale_down_rate"),
            ("policy = \"kpa\"\npanic_threshold_percentage = nan", "panic_threshold_percentage"),
            ("policy = \"kpa\"\ntarget = -1.0", "a.target"),
            ("policy = \"kpa\"\ntarget = inf", "a.target"),
            ("policy = \"cortex\"\nmax_upscale_factor = nan", "a.max_upscale_factor"),
            ("policy = \"cortex\"\nupscale_tolerance = nan", "a.upscale_tolerance"),
            ("policy = \"hpa\"\ntarget_average_value = 2\ntolerance = nan", "a.tolerance"),
            ("policy = \"hpa\"\ntarget_average_value = 2\ntolerance = -1.0", "a.tolerance"),
            ("policy = \"hpa\"\ntarget_average_value = 2\nsync_period = \"0s\"", "a.sync_period"),
            (
                "policy = \"hpa\"\ntarget_average_value = 2\n[behavior.scale_up]\npolicies = [{ type = \"Pods\", value = 0, period = \"15s\" }]",
                "a.behavior.scale_up.policies[0].value",
            ),
            (
                "policy = \"hpa\"\ntarget_average_value = 2\n[behavior.scale_up]\npolicies = [{ type = \"Pods\", value = 4, period = \"0s\" }]",
                "a.behavior.scale_up.policies[0].period",
            ),
            ("policy = \"hpa\"\ntarget_average_value = nan", "a"),
            (
                "policy = \"hpa\"\nmetric = \"kv_cache_usage\"\ntarget_average_value = 1.5",
                "a.target_average_value",
            ),
            ("policy = \"hpa\"\nmetric = \"kv_cache_usage\"", "a.target_average_value"),
            ("policy = \"hpa\"\nmetric = \"vllm\"", "a.metric"),
            ("policy = \"saturation\"\nkv_cache_threshold = 0", "a.kv_cache_threshold"),
            ("policy = \"saturation\"\nkv_cache_threshold = nan", "a.kv_cache_threshold"),
            ("policy = \"saturation\"\nqueue_length_threshold = -1.0", "a.queue_length_threshold"),
            ("policy = \"saturation\"\nkv_spare_trigger = 0.8", "a.kv_spare_trigger"),
            ("policy = \"saturation\"\nqueue_spare_trigger = 5", "a.queue_spare_trigger"),
            ("policy = \"saturation\"\ninterval = \"0s\"", "a.interval"),
            ("policy = \"saturation\"\nwindow = \"0s\"", "a.window"),
            ("policy = \"saturation\"\nmin_replicas = 0", "a.min_replicas"),
            ("policy = \"saturation\"\nkv_threshold = 0.5", "kv_threshold"),
        ] {
            let table: toml::Table = settings.parse().expect("TOML");
            let e = parse(&AutoscalingSpec(table), "a", 4, 104).expect_err(settings);
            assert!(
                e.path.contains(field) || e.message.contains(field),
                "{settings}: {} {}",
                e.path,
                e.message
            );
        }
    }

    fn parsed(settings: &str) -> Autoscaling {
        let table: toml::Table = settings.parse().expect("TOML");
        parse(&AutoscalingSpec(table), "a", 4, 104).expect(settings)
    }

    #[test]
    fn llm_metrics_and_the_saturation_policy() {
        for (metric, kind) in [
            ("num_requests_waiting", PodMetricKind::RequestsWaiting),
            ("num_requests_running", PodMetricKind::RequestsRunning),
            ("kv_cache_usage", PodMetricKind::KvCacheUsage),
            (
                "generation_tokens_per_s",
                PodMetricKind::GenerationTokensPerSecond,
            ),
        ] {
            let a = parsed(&format!(
                "policy = \"hpa\"\nmetric = \"{metric}\"\ntarget_average_value = 0.7"
            ));
            let PolicyChoice::Hpa(c) = &a.policy else {
                panic!("{metric}: not an HPA");
            };
            assert_eq!(
                c.metrics,
                vec![HpaMetric::PodsAverageValue { kind, target: 0.7 }],
                "{metric}"
            );
            assert!(a.needs_llm(), "{metric}");
        }
        assert!(!parsed("policy = \"hpa\"\ntarget_average_value = 2").needs_llm());
        assert!(!parsed("policy = \"kpa\"").needs_llm());

        let a = parsed(
            "policy = \"saturation\"\nmax_replicas = 8\nkv_cache_threshold = 0.85\n\
             kv_spare_trigger = 0.15\nwindow = \"2m\"\nmetrics_lag = \"15s\"",
        );
        assert!(a.needs_llm());
        assert_eq!((a.min_replicas, a.max_replicas), (1, 8));
        let PolicyChoice::Saturation(c) = &a.policy else {
            panic!("not saturation");
        };
        assert_eq!((c.kv_cache_threshold, c.kv_spare_trigger), (0.85, 0.15));
        assert_eq!(
            (c.queue_length_threshold, c.queue_spare_trigger),
            (5.0, 3.0)
        );
        assert_eq!(c.interval, std::time::Duration::from_secs(30));
        assert_eq!(c.window, std::time::Duration::from_secs(120));
        assert_eq!(c.metrics_lag, std::time::Duration::from_secs(15));
        assert_eq!(a.build().name(), "saturation");
    }

    #[test]
    fn a_forecast_block_wraps_the_policy_with_its_target() {
        let a = parsed(
            "policy = \"cortex\"\ntarget_in_flight = 3\n[forecast]\nmodel = \"seasonal_naive\"\nperiod = \"1h\"\nstep = \"1m\"\nlead = \"2m\"",
        );
        let f = a.forecast.as_ref().expect("forecast");
        assert_eq!(f.model, autoscaler::ForecastModel::SeasonalNaive);
        assert_eq!(f.target_per_replica, 3.0);
        assert_eq!(f.lead, Some(std::time::Duration::from_secs(120)));
        assert_eq!(f.steps_per_period(), 60);
        assert_eq!(a.build().name(), "cortex+forecast");
        // The HPA's per-pod target; KPA's target per pod.
        let hpa = parsed("policy = \"hpa\"\ntarget_average_value = 2.5\n[forecast]");
        assert_eq!(hpa.forecast.expect("forecast").target_per_replica, 2.5);
        let kpa = parsed("policy = \"kpa\"\ntarget = 4\ntarget_utilization = 0.5\n[forecast]");
        assert_eq!(kpa.forecast.expect("forecast").target_per_replica, 2.0);
        assert!(parsed("policy = \"kpa\"").forecast.is_none());
    }
}
