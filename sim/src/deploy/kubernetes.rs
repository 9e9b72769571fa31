//! Kubernetes manifests: a Deployment with an autoscaling/v2 HorizontalPodAutoscaler for `hpa`
//! (the real API types of k8s-openapi), a Knative Service with its per-revision autoscaling
//! annotations for `kpa` (`autoscaling.knative.dev/*`, knative.dev/docs serving/autoscaling).

use std::collections::BTreeMap;

use autoscaler::{
    Behavior, HpaConfig, HpaMetric, KpaConfig, PodMetricKind, RatePolicy, ScalingRules,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HPAScalingPolicy, HPAScalingRules,
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;

use super::{
    cpu_text, duration_text, mem_text, round3, to_value, DeployError, Headroom, IMAGE_PLACEHOLDER,
    PORT,
};
use crate::scenario::apis::ReplicaShape;
use crate::scenario::schema::ApiSpec;

/// Pods metric of in-flight requests per replica (as a Prometheus adapter names it).
pub(super) const IN_FLIGHT_METRIC: &str = "in_flight_requests";
/// Pods metric of requests per second per replica.
pub(super) const RPS_METRIC: &str = "requests_per_second";

/// Kubernetes' defaults for the cluster-wide HPA flags the simulation may have changed.
const DEFAULT_TOLERANCE: f64 = 0.1;
const DEFAULT_SYNC_PERIOD_S: u64 = 15;

/// A Deployment and its HPA.
pub(super) fn hpa(
    spec: &ApiSpec,
    shape: &ReplicaShape,
    c: &HpaConfig,
    notes: &mut Vec<String>,
) -> Result<Vec<serde_json::Value>, DeployError> {
    let a = &shape.autoscaling;
    let headroom = Headroom::of(a.overprovisioning);
    let (floor, divisor) = headroom.floor_and_divisor(a.min_replicas, a.max_replicas);
    notes.extend(headroom.note(&spec.name, "the HPA", "the metric target"));
    let average_value = |t: f64| MetricTarget {
        type_: "AverageValue".into(),
        average_value: Some(quantity(t / divisor)),
        ..MetricTarget::default()
    };
    let value = |t: f64| MetricTarget {
        type_: "Value".into(),
        value: Some(quantity(t / divisor)),
        ..MetricTarget::default()
    };
    let in_flight = |name: &str| MetricIdentifier {
        name: IN_FLIGHT_METRIC.into(),
        selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("api_name".to_string(), name.to_string())])),
            ..LabelSelector::default()
        }),
    };
    let mut to_spec = |m: &HpaMetric| match *m {
        HpaMetric::PodsAverageValue { kind, target } => MetricSpec {
            type_: "Pods".into(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier {
                    name: match kind {
                        PodMetricKind::Concurrency => IN_FLIGHT_METRIC,
                        PodMetricKind::Rps => RPS_METRIC,
                        PodMetricKind::CpuUtilization => "cpu_utilization",
                        PodMetricKind::RequestsWaiting => "vllm_num_requests_waiting",
                        PodMetricKind::RequestsRunning => "vllm_num_requests_running",
                        PodMetricKind::KvCacheUsage => "vllm_kv_cache_usage_perc",
                        PodMetricKind::GenerationTokensPerSecond => {
                            "vllm_generation_tokens_per_second"
                        }
                    }
                    .into(),
                    selector: None,
                },
                target: average_value(target),
            }),
            ..MetricSpec::default()
        },
        HpaMetric::CpuUtilization { target } | HpaMetric::ContainerCpuUtilization { target } => {
            MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some((target * 100.0 / divisor).round() as i32),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }
        }
        HpaMetric::CpuAverageValue { target } => MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: average_value(target),
            }),
            ..MetricSpec::default()
        },
        HpaMetric::ExternalValue { target, window }
        | HpaMetric::ObjectValue { target, window }
        | HpaMetric::ObjectAverageValue { target, window } => {
            notes.push(format!(
                "{}: an Object or External metric was simulated as the API's total in-flight requests averaged over {}; it is written as the External metric {IN_FLIGHT_METRIC}{{api_name=\"{}\"}}",
                spec.name,
                duration_text(window),
                spec.name
            ));
            let target = if matches!(m, HpaMetric::ObjectAverageValue { .. }) {
                average_value(target)
            } else {
                value(target)
            };
            MetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: in_flight(&spec.name),
                    target,
                }),
                ..MetricSpec::default()
            }
        }
        HpaMetric::ExternalAverageValue { target, window } => {
            notes.push(format!(
                "{}: the external metric {IN_FLIGHT_METRIC}{{api_name=\"{}\"}} must be the API's total in-flight requests averaged over {} (as simulated)",
                spec.name,
                spec.name,
                duration_text(window)
            ));
            MetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: IN_FLIGHT_METRIC.into(),
                        selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "api_name".to_string(),
                                spec.name.clone(),
                            )])),
                            ..LabelSelector::default()
                        }),
                    },
                    target: average_value(target),
                }),
                ..MetricSpec::default()
            }
        }
    };
    let metrics: Vec<MetricSpec> = c.metrics.iter().map(&mut to_spec).collect();
    if c.metrics
        .iter()
        .any(|m| matches!(m, HpaMetric::ContainerCpuUtilization { .. }))
    {
        notes.push(format!(
            "{}: a ContainerResource cpu metric was simulated on the pod's one container; it is written as a Resource cpu metric",
            spec.name
        ));
    }
    if let Some(b) = &c.behavior {
        if b.scale_up.tolerance.is_some() || b.scale_down.tolerance.is_some() {
            notes.push(format!(
                "{}: behavior.scaleUp/scaleDown.tolerance (KEP-4951, Kubernetes {}) was simulated; add it to the HPA's behavior by hand (tolerance up {:?}, down {:?})",
                spec.name, c.kubernetes_version, b.scale_up.tolerance, b.scale_down.tolerance
            ));
        }
    }
    if (c.tolerance - DEFAULT_TOLERANCE).abs() > 1e-12 {
        notes.push(format!(
            "{}: tolerance {} was simulated; it is the cluster-wide kube-controller-manager flag --horizontal-pod-autoscaler-tolerance (default 0.1)",
            spec.name, c.tolerance
        ));
    }
    if c.sync_period.as_secs() != DEFAULT_SYNC_PERIOD_S || c.sync_period.subsec_nanos() != 0 {
        notes.push(format!(
            "{}: sync period {} was simulated; it is the cluster-wide flag --horizontal-pod-autoscaler-sync-period (default 15s)",
            spec.name,
            duration_text(c.sync_period)
        ));
    }
    // The behaviour the simulation ran, written out whole: without `behavior` Kubernetes
    // applies these same defaults, with the scale-down window from the cluster flag.
    let behavior = c.behavior.clone().unwrap_or_else(|| {
        let mut down = ScalingRules::default_scale_down();
        down.stabilization_window = c.downscale_stabilization;
        Behavior {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: down,
        }
    });
    let hpa = HorizontalPodAutoscaler {
        metadata: meta(&spec.name),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: spec.name.clone(),
            },
            min_replicas: Some(clamp_i32(floor)),
            max_replicas: clamp_i32(a.max_replicas),
            metrics: Some(metrics),
            behavior: Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(rules(&behavior.scale_up)),
                scale_down: Some(rules(&behavior.scale_down)),
            }),
        }),
        status: None,
    };
    let deployment = Deployment {
        metadata: meta(&spec.name),
        spec: Some(DeploymentSpec {
            replicas: Some(clamp_i32(floor)),
            selector: LabelSelector {
                match_labels: Some(labels(&spec.name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&spec.name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(spec, shape)),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    Ok(vec![to_value(&deployment)?, to_value(&hpa)?])
}

/// A Deployment and the KEDA ScaledObject that was simulated (the HPA is KEDA's to create).
pub(super) fn keda(
    spec: &ApiSpec,
    shape: &ReplicaShape,
    c: &autoscaler::KedaConfig,
    notes: &mut Vec<String>,
) -> Result<Vec<serde_json::Value>, DeployError> {
    let mut objects = hpa(spec, shape, &c.hpa, notes)?;
    // Keep the Deployment only: KEDA creates the HPA from the ScaledObject.
    objects.truncate(1);
    let prometheus = |query: String| {
        serde_json::json!({
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": "http://prometheus.monitoring:9090",
                "query": query,
                "threshold": c.threshold.to_string(),
                "activationThreshold": c.activation_threshold.to_string(),
            },
        })
    };
    let trigger = match c.trigger {
        autoscaler::KedaTrigger::InFlight { window } => prometheus(format!(
            "sum(avg_over_time({IN_FLIGHT_METRIC}{{api_name=\"{}\"}}[{}]))",
            spec.name,
            duration_text(window)
        )),
        autoscaler::KedaTrigger::PodsSum { kind } => prometheus(format!(
            "sum({}{{api_name=\"{}\"}})",
            match kind {
                PodMetricKind::Rps => RPS_METRIC,
                PodMetricKind::RequestsWaiting => "vllm_num_requests_waiting",
                PodMetricKind::RequestsRunning => "vllm_num_requests_running",
                _ => IN_FLIGHT_METRIC,
            },
            spec.name
        )),
        autoscaler::KedaTrigger::SqsQueue { scale_on_in_flight } => {
            serde_json::json!({
                "type": "aws-sqs-queue",
                "metadata": {
                    "queueURL": format!("https://sqs.us-east-1.amazonaws.com/ACCOUNT_ID/{}", spec.name),
                    "awsRegion": "us-east-1",
                    "queueLength": c.threshold.to_string(),
                    "activationQueueLength": c.activation_threshold.to_string(),
                    "scaleOnInFlight": scale_on_in_flight.to_string(),
                },
            })
        }
    };
    notes.push(match c.trigger {
        autoscaler::KedaTrigger::SqsQueue { .. } => format!(
            "{}: the KEDA trigger reads the API's SQS queue; set queueURL, awsRegion and authentication to yours",
            spec.name
        ),
        _ => format!(
            "{}: the KEDA trigger is a prometheus query over the simulated signal; point serverAddress at your Prometheus and check the metric names",
            spec.name
        ),
    });
    objects.push(scaled_object(spec, shape, c, trigger));
    Ok(objects)
}

/// The ScaledObject that was simulated, with its one `trigger`.
fn scaled_object(
    spec: &ApiSpec,
    shape: &ReplicaShape,
    c: &autoscaler::KedaConfig,
    trigger: serde_json::Value,
) -> serde_json::Value {
    let rules_json = |r: &ScalingRules| {
        serde_json::json!({
            "stabilizationWindowSeconds": r.stabilization_window.as_secs(),
            "selectPolicy": match r.select_policy {
                autoscaler::SelectPolicy::Max => "Max",
                autoscaler::SelectPolicy::Min => "Min",
                autoscaler::SelectPolicy::Disabled => "Disabled",
            },
            "policies": r.policies.iter().map(|p| match p {
                RatePolicy::Pods { value, period } => serde_json::json!({"type": "Pods", "value": value, "periodSeconds": period.as_secs()}),
                RatePolicy::Percent { value, period } => serde_json::json!({"type": "Percent", "value": value, "periodSeconds": period.as_secs()}),
            }).collect::<Vec<_>>(),
        })
    };
    let mut so = serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": spec.name},
        "spec": {
            "scaleTargetRef": {"name": spec.name},
            "minReplicaCount": shape.autoscaling.min_replicas,
            "maxReplicaCount": shape.autoscaling.max_replicas,
            "pollingInterval": c.polling_interval.as_secs(),
            "cooldownPeriod": c.cooldown_period.as_secs(),
            "initialCooldownPeriod": c.initial_cooldown_period.as_secs(),
            "triggers": [trigger],
        },
    });
    if let Some(f) = c.fallback {
        so["spec"]["fallback"] =
            serde_json::json!({"failureThreshold": f.failure_threshold, "replicas": f.replicas});
    }
    if let Some(b) = &c.hpa.behavior {
        so["spec"]["advanced"] = serde_json::json!({"horizontalPodAutoscalerConfig": {"behavior": {
            "scaleUp": rules_json(&b.scale_up),
            "scaleDown": rules_json(&b.scale_down),
        }}});
    }
    so
}

/// A Knative Service whose revision template carries the KPA settings that were simulated.
pub(super) fn knative_service(
    spec: &ApiSpec,
    shape: &ReplicaShape,
    c: &KpaConfig,
    notes: &mut Vec<String>,
) -> serde_json::Value {
    let a = &shape.autoscaling;
    let headroom = Headroom::of(a.overprovisioning);
    let (floor, divisor) = headroom.floor_and_divisor(a.min_replicas, a.max_replicas);
    notes.extend(headroom.note(&spec.name, "the KPA", "the concurrency target"));
    let k = |key: &str| format!("autoscaling.knative.dev/{key}");
    let mut annotations = BTreeMap::from([
        (k("class"), "kpa.autoscaling.knative.dev".to_string()),
        (k("metric"), "concurrency".to_string()),
        (k("min-scale"), floor.to_string()),
        (k("max-scale"), a.max_replicas.to_string()),
        (k("initial-scale"), c.initial_scale.to_string()),
        (k("activation-scale"), c.activation_scale.to_string()),
        (k("window"), duration_text(c.stable_window)),
        (
            k("panic-window-percentage"),
            format!("{:.1}", c.panic_window_percentage),
        ),
        (
            k("panic-threshold-percentage"),
            format!("{:.1}", c.panic_threshold_percentage),
        ),
        (k("scale-down-delay"), duration_text(c.scale_down_delay)),
    ]);
    match c.target {
        Some(t) => {
            annotations.insert(k("target"), format!("{}", round3(t / divisor)));
            annotations.insert(
                k("target-utilization-percentage"),
                format!("{}", round3(c.target_utilization * 100.0)),
            );
        }
        None => {
            annotations.insert(
                k("target-utilization-percentage"),
                format!("{}", round3(c.target_utilization * 100.0 / divisor)),
            );
        }
    }
    let defaults = KpaConfig::default();
    let mut cluster_wide = Vec::new();
    if c.max_scale_up_rate != defaults.max_scale_up_rate {
        cluster_wide.push(format!("max-scale-up-rate: \"{}\"", c.max_scale_up_rate));
    }
    if c.max_scale_down_rate != defaults.max_scale_down_rate {
        cluster_wide.push(format!(
            "max-scale-down-rate: \"{}\"",
            c.max_scale_down_rate
        ));
    }
    if c.scale_to_zero_grace_period != defaults.scale_to_zero_grace_period {
        cluster_wide.push(format!(
            "scale-to-zero-grace-period: \"{}\"",
            duration_text(c.scale_to_zero_grace_period)
        ));
    }
    if !cluster_wide.is_empty() {
        notes.push(format!(
            "{}: set in the knative-serving/config-autoscaler ConfigMap (cluster-wide, no per-revision annotation): {}",
            spec.name,
            cluster_wide.join(", ")
        ));
    }
    let mut pod = match to_value(&pod_spec(spec, shape)) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    pod.insert(
        "containerConcurrency".into(),
        json!(c.container_concurrency),
    );
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": { "name": spec.name, "labels": labels(&spec.name) },
        "spec": {
            "template": {
                "metadata": { "annotations": annotations },
                "spec": pod,
            }
        }
    })
}

fn rules(r: &ScalingRules) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: Some(clamp_i32(r.stabilization_window.as_secs() as u32)),
        select_policy: Some(
            match r.select_policy {
                autoscaler::SelectPolicy::Max => "Max",
                autoscaler::SelectPolicy::Min => "Min",
                autoscaler::SelectPolicy::Disabled => "Disabled",
            }
            .into(),
        ),
        policies: Some(
            r.policies
                .iter()
                .map(|p| {
                    let (type_, value, period) = match *p {
                        RatePolicy::Pods { value, period } => ("Pods", value, period),
                        RatePolicy::Percent { value, period } => ("Percent", value, period),
                    };
                    HPAScalingPolicy {
                        type_: type_.into(),
                        value: clamp_i32(value),
                        period_seconds: clamp_i32(period.as_secs() as u32),
                    }
                })
                .collect(),
        ),
    }
}

/// The pod the simulation placed: one container with its requests (and limits where set; GPUs
/// need limits equal to requests), the tolerations it was given.
fn pod_spec(spec: &ApiSpec, shape: &ReplicaShape) -> PodSpec {
    let mut requests = BTreeMap::from([
        (
            "cpu".to_string(),
            Quantity(cpu_text(spec.compute.cpu.millicores())),
        ),
        ("memory".to_string(), Quantity(mem_text(shape.mem_mib))),
    ]);
    let mut limits = BTreeMap::new();
    if spec.compute.gpu > 0 {
        let gpus = Quantity(spec.compute.gpu.to_string());
        requests.insert("nvidia.com/gpu".into(), gpus.clone());
        limits.insert("nvidia.com/gpu".to_string(), gpus);
    }
    if let Some(q) = &spec.compute.cpu_limit {
        limits.insert("cpu".into(), Quantity(cpu_text(q.millicores())));
    }
    if let Some(q) = &spec.compute.mem_limit {
        limits.insert("memory".into(), Quantity(mem_text(q.mebibytes())));
    }
    let tolerations: Vec<Toleration> = spec
        .tolerations
        .iter()
        .map(|t| match t.split_once('=') {
            Some((key, value)) => Toleration {
                key: Some(key.into()),
                operator: Some("Equal".into()),
                value: Some(value.into()),
                ..Toleration::default()
            },
            None => Toleration {
                key: Some(t.clone()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            },
        })
        .collect();
    PodSpec {
        containers: vec![Container {
            name: "api".into(),
            image: Some(
                spec.image
                    .clone()
                    .unwrap_or_else(|| IMAGE_PLACEHOLDER.into()),
            ),
            ports: Some(vec![ContainerPort {
                container_port: i32::from(PORT),
                ..ContainerPort::default()
            }]),
            resources: Some(ResourceRequirements {
                requests: Some(requests),
                limits: (!limits.is_empty()).then_some(limits),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }],
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        ..PodSpec::default()
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(labels(name)),
        ..ObjectMeta::default()
    }
}

fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), name.to_string())])
}

fn clamp_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A Kubernetes quantity for a per-pod target: whole numbers plain, else in milli-units.
fn quantity(x: f64) -> Quantity {
    let milli = (x * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}
