//! The `hpa` and `keda` settings of `[apis.autoscaling]`: autoscaling/v2's metrics, tolerances
//! and `behavior`, and KEDA's ScaledObject fields, checked into the policies' configurations.

use autoscaler::{
    Behavior, HpaConfig, HpaMetric, KedaConfig, KedaFallback, KedaTrigger, PodMetricKind,
    RatePolicy, ReplicaBounds, ScalingRules, SelectPolicy,
};
use serde::Deserialize;

use super::{concurrency, dur, hundred, in_flight, one};
use crate::scenario::FieldError;
use crate::time::SimTime;
use crate::units::DurationSpec;

/// `hpa`: autoscaling/v2.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HpaSettings {
    #[serde(default = "one")]
    pub(super) min_replicas: u32,
    #[serde(default = "hundred")]
    pub(super) max_replicas: u32,
    /// `concurrency`, `rps` (per pod, averageValue), `cpu` (averageUtilization),
    /// `external_in_flight` (total in flight, averageValue per replica, as KEDA gives it), or
    /// vLLM's per-pod `num_requests_waiting`, `num_requests_running`, `kv_cache_usage` (0–1),
    /// `generation_tokens_per_s` (LLM APIs only).
    #[serde(default = "concurrency")]
    metric: String,
    target_average_value: Option<f64>,
    /// Percent of the CPU request.
    target_average_utilization: Option<f64>,
    tolerance: Option<f64>,
    sync_period: Option<DurationSpec>,
    metrics_lag: Option<DurationSpec>,
    downscale_stabilization: Option<DurationSpec>,
    /// Averaging window of the external metric's query.
    metric_window: Option<DurationSpec>,
    /// `Value` target of `external_value` / `object_value`.
    target_value: Option<f64>,
    /// The release whose HPA rules apply, "1.35" by default.
    kubernetes_version: Option<String>,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5m).
    cpu_initialization_period: Option<DurationSpec>,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30s).
    initial_readiness_delay: Option<DurationSpec>,
    /// Prometheus's scrape interval of the pods' metrics (default 1s).
    pub(super) scrape_interval: Option<DurationSpec>,
    behavior: Option<BehaviorSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviorSettings {
    scale_up: Option<RulesSettings>,
    scale_down: Option<RulesSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesSettings {
    stabilization_window: Option<DurationSpec>,
    /// KEP-4951 per-direction tolerance (Kubernetes ≥ 1.33).
    tolerance: Option<f64>,
    select_policy: Option<String>,
    policies: Option<Vec<RatePolicySettings>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatePolicySettings {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    kind: String,
    value: u32,
    period: DurationSpec,
}

/// `keda`: a ScaledObject with one trigger (KEDA's field names in snake_case).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KedaSettings {
    /// `minReplicaCount` (default 0).
    #[serde(default)]
    pub(super) min_replicas: u32,
    /// `maxReplicaCount` (default 100).
    #[serde(default = "hundred")]
    pub(super) max_replicas: u32,
    /// `in_flight` (queue length: requests in flight, held ones included), `rps`, the vLLM
    /// gauges `num_requests_waiting`, `num_requests_running` summed over pods, or an async API's
    /// queue `aws-sqs-queue`.
    #[serde(default = "in_flight")]
    pub(super) trigger: String,
    threshold: Option<f64>,
    /// `aws-sqs-queue`: count messages being processed too (default true).
    scale_on_in_flight: Option<bool>,
    activation_threshold: Option<f64>,
    /// Averaging window of the `in_flight` query (default 1m).
    query_window: Option<DurationSpec>,
    polling_interval: Option<DurationSpec>,
    cooldown_period: Option<DurationSpec>,
    initial_cooldown_period: Option<DurationSpec>,
    fallback: Option<KedaFallbackSettings>,
    advanced: Option<KedaAdvancedSettings>,
    /// Kubernetes release of the HPA KEDA creates.
    kubernetes_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KedaFallbackSettings {
    failure_threshold: u32,
    replicas: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KedaAdvancedSettings {
    horizontal_pod_autoscaler_config: Option<KedaHpaSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KedaHpaSettings {
    behavior: Option<BehaviorSettings>,
}

fn rules(
    r: Option<RulesSettings>,
    default: ScalingRules,
    path: &str,
) -> Result<ScalingRules, FieldError> {
    let Some(r) = r else { return Ok(default) };
    let select_policy = match r.select_policy.as_deref() {
        None | Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.select_policy"),
                format!("expected \"Max\", \"Min\" or \"Disabled\", found \"{other}\""),
            ))
        }
    };
    let policies = match r.policies {
        None => default.policies,
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, p)| match p.kind.as_str() {
                _ if p.value == 0 => Err(FieldError::new(
                    format!("{path}.policies[{i}].value"),
                    "expected an integer ≥ 1, found 0",
                )),
                _ if p.period.0 == SimTime::ZERO => Err(FieldError::new(
                    format!("{path}.policies[{i}].period"),
                    "expected a period > 0s",
                )),
                "Pods" => Ok(RatePolicy::Pods {
                    value: p.value,
                    period: p.period.0.as_duration(),
                }),
                "Percent" => Ok(RatePolicy::Percent {
                    value: p.value,
                    period: p.period.0.as_duration(),
                }),
                other => Err(FieldError::new(
                    format!("{path}.policies[{i}].type"),
                    format!("expected \"Pods\" or \"Percent\", found \"{other}\""),
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(t) = r.tolerance {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(FieldError::new(
                format!("{path}.tolerance"),
                format!("expected a finite number ≥ 0, found {t}"),
            ));
        }
    }
    Ok(ScalingRules {
        stabilization_window: dur(r.stabilization_window, default.stabilization_window),
        select_policy,
        policies,
        tolerance: r.tolerance,
    })
}

/// Build and validate an HPA from its settings at `path` (shared by `hpa` and KEDA's
/// `advanced.horizontal_pod_autoscaler_config`).
pub(super) fn hpa_config(s: HpaSettings, path: &str) -> Result<HpaConfig, FieldError> {
    let value = |what: &str| {
        s.target_average_value.ok_or_else(|| {
            FieldError::new(
                format!("{path}.target_average_value"),
                format!("required for metric = \"{what}\""),
            )
        })
    };
    let target_value = |what: &str| {
        s.target_value.ok_or_else(|| {
            FieldError::new(
                format!("{path}.target_value"),
                format!("required for metric = \"{what}\""),
            )
        })
    };
    let window = dur(s.metric_window, std::time::Duration::from_secs(60));
    let utilization = |what: &str| {
        s.target_average_utilization
            .ok_or_else(|| {
                FieldError::new(
                    format!("{path}.target_average_utilization"),
                    format!("required for metric = \"{what}\" (percent of the CPU request)"),
                )
            })
            .map(|t| t / 100.0)
    };
    let pods = |kind: PodMetricKind, what: &str| -> Result<HpaMetric, FieldError> {
        Ok(HpaMetric::PodsAverageValue {
            kind,
            target: value(what)?,
        })
    };
    let metric = match s.metric.as_str() {
        "concurrency" => pods(PodMetricKind::Concurrency, "concurrency")?,
        "rps" => pods(PodMetricKind::Rps, "rps")?,
        "cpu" => HpaMetric::CpuUtilization {
            target: utilization("cpu")?,
        },
        "container_cpu" => HpaMetric::ContainerCpuUtilization {
            target: utilization("container_cpu")?,
        },
        "external_in_flight" => HpaMetric::ExternalAverageValue {
            target: value("external_in_flight")?,
            window,
        },
        "external_value" => HpaMetric::ExternalValue {
            target: target_value("external_value")?,
            window,
        },
        "object_value" => HpaMetric::ObjectValue {
            target: target_value("object_value")?,
            window,
        },
        "object_average_value" => HpaMetric::ObjectAverageValue {
            target: value("object_average_value")?,
            window,
        },
        "num_requests_waiting" => pods(PodMetricKind::RequestsWaiting, "num_requests_waiting")?,
        "num_requests_running" => pods(PodMetricKind::RequestsRunning, "num_requests_running")?,
        "kv_cache_usage" => {
            let target = value("kv_cache_usage")?;
            if !(target > 0.0 && target <= 1.0) {
                return Err(FieldError::new(
                    format!("{path}.target_average_value"),
                    format!("expected a KV-cache fraction in (0, 1] for metric = \"kv_cache_usage\", found {target}"),
                ));
            }
            HpaMetric::PodsAverageValue {
                kind: PodMetricKind::KvCacheUsage,
                target,
            }
        }
        "generation_tokens_per_s" => pods(
            PodMetricKind::GenerationTokensPerSecond,
            "generation_tokens_per_s",
        )?,
        other => {
            return Err(FieldError::new(
                format!("{path}.metric"),
                format!("expected \"concurrency\", \"rps\", \"cpu\", \"container_cpu\", \"external_in_flight\", \"external_value\", \"object_value\", \"object_average_value\", \"num_requests_waiting\", \"num_requests_running\", \"kv_cache_usage\" or \"generation_tokens_per_s\", found \"{other}\""),
            ))
        }
    };
    if !(metric.target() > 0.0 && metric.target().is_finite()) {
        return Err(FieldError::new(path, "expected a target > 0"));
    }
    if s.min_replicas == 0 && !metric.is_object_or_external() {
        return Err(FieldError::new(
            format!("{path}.min_replicas"),
            "expected ≥ 1 (HPA scale-to-zero, HPAScaleToZero, needs an Object or External metric: metric = \"external_in_flight\", \"external_value\", \"object_value\" or \"object_average_value\"; or use kpa, keda or cortex)",
        ));
    }
    let mut c = HpaConfig::new(
        metric,
        ReplicaBounds {
            min_replicas: s.min_replicas,
            max_replicas: s.max_replicas,
        },
    );
    if let Some(v) = &s.kubernetes_version {
        c.kubernetes_version = autoscaler::KubernetesVersion::parse(v)
            .map_err(|e| FieldError::new(format!("{path}.kubernetes_version"), e.problem))?;
    }
    c.tolerance = s.tolerance.unwrap_or(c.tolerance);
    c.sync_period = dur(s.sync_period, c.sync_period);
    if c.sync_period.is_zero() {
        return Err(FieldError::new(
            format!("{path}.sync_period"),
            "expected a period > 0s",
        ));
    }
    c.metrics_lag = dur(s.metrics_lag, c.metrics_lag);
    c.downscale_stabilization = dur(s.downscale_stabilization, c.downscale_stabilization);
    c.cpu_initialization_period = dur(s.cpu_initialization_period, c.cpu_initialization_period);
    c.initial_readiness_delay = dur(s.initial_readiness_delay, c.initial_readiness_delay);
    if let Some(b) = s.behavior {
        let mut down = ScalingRules::default_scale_down();
        down.stabilization_window = c.downscale_stabilization;
        c.behavior = Some(Behavior {
            scale_up: rules(
                b.scale_up,
                ScalingRules::default_scale_up(),
                &format!("{path}.behavior.scale_up"),
            )?,
            scale_down: rules(b.scale_down, down, &format!("{path}.behavior.scale_down"))?,
        });
    }
    c.validate()
        .map_err(|e| FieldError::new(format!("{path}.{}", e.field), e.problem))?;
    Ok(c)
}

/// Build and validate a KEDA ScaledObject from its settings at `path`.
pub(super) fn keda_config(s: KedaSettings, path: &str) -> Result<KedaConfig, FieldError> {
    let window = dur(s.query_window, std::time::Duration::from_secs(60));
    let sqs = s.trigger == "aws-sqs-queue";
    if sqs && s.query_window.is_some() {
        return Err(FieldError::new(
            format!("{path}.query_window"),
            "the aws-sqs-queue trigger reads the queue at each poll: leave out query_window",
        ));
    }
    if !sqs && s.scale_on_in_flight.is_some() {
        return Err(FieldError::new(
            format!("{path}.scale_on_in_flight"),
            "applies to the aws-sqs-queue trigger only",
        ));
    }
    let trigger = match s.trigger.as_str() {
        "in_flight" => KedaTrigger::InFlight { window },
        "aws-sqs-queue" => KedaTrigger::SqsQueue {
            scale_on_in_flight: s.scale_on_in_flight.unwrap_or(true),
        },
        "rps" => KedaTrigger::PodsSum {
            kind: PodMetricKind::Rps,
        },
        "num_requests_waiting" => KedaTrigger::PodsSum {
            kind: PodMetricKind::RequestsWaiting,
        },
        "num_requests_running" => KedaTrigger::PodsSum {
            kind: PodMetricKind::RequestsRunning,
        },
        other => {
            return Err(FieldError::new(
                format!("{path}.trigger"),
                format!("expected \"in_flight\", \"aws-sqs-queue\", \"rps\", \"num_requests_waiting\" or \"num_requests_running\", found \"{other}\""),
            ))
        }
    };
    // The SQS scaler's queueLength defaults to 5 messages per replica.
    let threshold = match (s.threshold, sqs) {
        (Some(t), _) => t,
        (None, true) => 5.0,
        (None, false) => {
            return Err(FieldError::new(
                format!("{path}.threshold"),
                "required: the trigger's target value per replica",
            ))
        }
    };
    let mut c = KedaConfig::new(
        trigger,
        threshold,
        ReplicaBounds {
            min_replicas: s.min_replicas,
            max_replicas: s.max_replicas,
        },
    );
    c.activation_threshold = s.activation_threshold.unwrap_or(c.activation_threshold);
    c.polling_interval = dur(s.polling_interval, c.polling_interval);
    c.cooldown_period = dur(s.cooldown_period, c.cooldown_period);
    c.initial_cooldown_period = dur(s.initial_cooldown_period, c.initial_cooldown_period);
    c.fallback = s.fallback.map(|f| KedaFallback {
        failure_threshold: f.failure_threshold,
        replicas: f.replicas,
    });
    if let Some(v) = &s.kubernetes_version {
        c.hpa.kubernetes_version = autoscaler::KubernetesVersion::parse(v)
            .map_err(|e| FieldError::new(format!("{path}.kubernetes_version"), e.problem))?;
    }
    if let Some(b) = s
        .advanced
        .and_then(|a| a.horizontal_pod_autoscaler_config)
        .and_then(|h| h.behavior)
    {
        let bpath = format!("{path}.advanced.horizontal_pod_autoscaler_config.behavior");
        c.hpa.behavior = Some(Behavior {
            scale_up: rules(
                b.scale_up,
                ScalingRules::default_scale_up(),
                &format!("{bpath}.scale_up"),
            )?,
            scale_down: rules(
                b.scale_down,
                ScalingRules::default_scale_down(),
                &format!("{bpath}.scale_down"),
            )?,
        });
    }
    c.validate()
        .map_err(|e| FieldError::new(format!("{path}.{}", e.field), e.problem))?;
    Ok(c)
}
