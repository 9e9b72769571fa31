//! Each emitted document is parsed back with a YAML parser and checked field by field against
//! the scenario it came from.

use super::*;

const CLUSTER: &str = r#"
name = "Deploy: test"
duration = "1h"

[[node_groups]]
name = "gpu"
instance_type = "g4dn.xlarge"
min_instances = 1
max_instances = 4

[[node_groups]]
name = "gpu-spot"
instance_type = "g4dn.xlarge"
spot = true
priority = 10
max_instances = 4
spot_capacity = 2
"#;

fn api(name: &str, autoscaling: &str) -> String {
    format!(
        r#"
[[apis]]
name = "{name}"
image = "registry.example/{name}:1"
tolerations = ["nvidia.com/gpu"]
[apis.compute]
cpu = "1500m"
mem = "2Gi"
mem_per_process = "1Gi"
gpu = 1
[apis.pod]
processes_per_replica = 2
threads_per_process = 3
max_queue_length = 16
[apis.service_time]
distribution = "constant"
value = "50ms"
[apis.traffic]
kind = "poisson"
rps = 10
[apis.autoscaling]
{autoscaling}
"#
    )
}

/// The Kubernetes manifests, one value per YAML document.
fn kubernetes_docs(m: &Manifests) -> Vec<serde_yaml_ng::Value> {
    m.kubernetes_yaml()
        .expect("yaml")
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(yaml)
        .collect()
}

/// The first document of `kind`.
fn of_kind<'a>(docs: &'a [serde_yaml_ng::Value], kind: &str) -> &'a serde_yaml_ng::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in {docs:?}"))
}

fn yaml(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).expect("emitted YAML parses")
}

#[test]
fn fixed_with_overprovisioning_is_a_fixed_count_in_cortex() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "clf",
            "policy = \"fixed\"\nmin_replicas = 1\nmax_replicas = 8\noverprovisioning = 1"
        )
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    let doc = yaml(&m.cortex_yaml().expect("yaml"));
    let a = &doc[0];
    assert_eq!(a["name"].as_str(), Some("clf"));
    assert_eq!(a["kind"].as_str(), Some("RealtimeAPI"));
    for key in ["min_replicas", "max_replicas", "init_replicas"] {
        assert_eq!(a["autoscaling"][key].as_u64(), Some(2), "{key}");
    }
    assert!(a["autoscaling"]["target_in_flight"].is_null());
    assert_eq!(a["pod"]["max_concurrency"].as_u64(), Some(6));
    assert_eq!(a["pod"]["max_queue_length"].as_u64(), Some(16));
    assert_eq!(a["pod"]["port"].as_u64(), Some(8080));
    let c = &a["pod"]["containers"][0];
    assert_eq!(c["image"].as_str(), Some("registry.example/clf:1"));
    assert_eq!(c["compute"]["cpu"].as_str(), Some("1500m"));
    assert_eq!(c["compute"]["mem"].as_str(), Some("4Gi"), "2Gi + 2 × 1Gi");
    assert_eq!(c["compute"]["gpu"].as_u64(), Some(1));
    assert!(m.notes.iter().any(|n| n.contains("processes_per_replica")));
    assert_eq!(m.kubernetes_yaml().expect("yaml"), "");
    // Round trip through the typed spec too.
    let back: Vec<RealtimeApi> =
        serde_yaml_ng::from_str(&m.cortex_yaml().expect("yaml")).expect("typed");
    assert_eq!(back, m.cortex_apis);
}

#[test]
fn cortex_settings_are_explicit_and_headroom_is_stated() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "clf",
            "policy = \"cortex\"\nmin_replicas = 2\nmax_replicas = 10\ntarget_in_flight = 5\nwindow = \"30s\"\noverprovisioning = \"25%\""
        )
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    let a = &yaml(&m.cortex_yaml().expect("yaml"))[0]["autoscaling"];
    assert_eq!(a["min_replicas"].as_u64(), Some(2));
    assert_eq!(a["max_replicas"].as_u64(), Some(10));
    assert_eq!(a["init_replicas"].as_u64(), Some(2));
    assert_eq!(a["target_in_flight"].as_f64(), Some(4.0), "5 / 1.25");
    assert_eq!(a["window"].as_str(), Some("30s"));
    assert_eq!(a["downscale_stabilization_period"].as_str(), Some("300s"));
    assert_eq!(a["upscale_stabilization_period"].as_str(), Some("60s"));
    assert_eq!(a["max_upscale_factor"].as_f64(), Some(1.5));
    assert_eq!(a["max_downscale_factor"].as_f64(), Some(0.75));
    assert_eq!(a["upscale_tolerance"].as_f64(), Some(0.05));
    assert!(m.notes.iter().any(|n| n.contains("25 % headroom")));

    let text = text.replace("overprovisioning = \"25%\"", "overprovisioning = 2");
    let m = manifests(&text, "t.toml").expect("manifests");
    let a = &yaml(&m.cortex_yaml().expect("yaml"))[0]["autoscaling"];
    assert_eq!(a["min_replicas"].as_u64(), Some(4));
    assert_eq!(a["target_in_flight"].as_f64(), Some(5.0));
    assert!(m
        .notes
        .iter()
        .any(|n| n.contains("cannot add 2 replica(s)")));
}

#[test]
fn cluster_config_carries_the_node_groups() {
    let text = format!("{CLUSTER}{}", api("clf", "policy = \"fixed\""));
    let m = manifests(&text, "t.toml").expect("manifests");
    let doc = yaml(&m.cluster_yaml().expect("yaml"));
    assert_eq!(doc["cluster_name"].as_str(), Some("deploy-test"));
    let groups = doc["node_groups"].as_sequence().expect("list");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"].as_str(), Some("gpu"));
    assert_eq!(groups[0]["instance_type"].as_str(), Some("g4dn.xlarge"));
    assert_eq!(groups[0]["min_instances"].as_u64(), Some(1));
    assert_eq!(groups[0]["max_instances"].as_u64(), Some(4));
    assert_eq!(groups[0]["priority"].as_u64(), Some(1));
    assert_eq!(groups[0]["spot"].as_bool(), Some(false));
    assert!(groups[0]["spot_config"].is_null());
    assert_eq!(groups[1]["priority"].as_u64(), Some(10));
    assert_eq!(groups[1]["spot"].as_bool(), Some(true));
    assert_eq!(
        groups[1]["spot_config"]["on_demand_percentage_above_base_capacity"].as_u64(),
        Some(0),
        "explicit: Cortex's docs default to 50"
    );
    assert!(m.notes.iter().any(|n| n.contains("gpu-spot")));
}

#[test]
fn hpa_is_a_deployment_and_an_autoscaling_v2_hpa_with_behavior() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "clf",
            "policy = \"hpa\"\nmin_replicas = 2\nmax_replicas = 12\nmetric = \"concurrency\"\ntarget_average_value = 4.5\ntolerance = 0.2\nbehavior = { scale_down = { stabilization_window = \"2m\", policies = [{ type = \"Pods\", value = 1, period = \"60s\" }] } }"
        )
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    assert!(m.cortex_apis.is_empty());
    let docs = kubernetes_docs(&m);
    assert_eq!(docs.len(), 2);
    let (deployment, hpa) = (&docs[0], &docs[1]);
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    assert_eq!(deployment["apiVersion"].as_str(), Some("apps/v1"));
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["resources"]["requests"]["cpu"].as_str(),
        Some("1500m")
    );
    assert_eq!(
        container["resources"]["requests"]["memory"].as_str(),
        Some("4Gi")
    );
    assert_eq!(
        container["resources"]["limits"]["nvidia.com/gpu"].as_str(),
        Some("1")
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["tolerations"][0]["operator"].as_str(),
        Some("Exists")
    );
    assert_eq!(hpa["kind"].as_str(), Some("HorizontalPodAutoscaler"));
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    let s = &hpa["spec"];
    assert_eq!(s["minReplicas"].as_u64(), Some(2));
    assert_eq!(s["maxReplicas"].as_u64(), Some(12));
    assert_eq!(s["scaleTargetRef"]["name"].as_str(), Some("clf"));
    assert_eq!(s["metrics"][0]["type"].as_str(), Some("Pods"));
    assert_eq!(
        s["metrics"][0]["pods"]["metric"]["name"].as_str(),
        Some("in_flight_requests")
    );
    assert_eq!(
        s["metrics"][0]["pods"]["target"]["averageValue"].as_str(),
        Some("4500m")
    );
    let down = &s["behavior"]["scaleDown"];
    assert_eq!(down["stabilizationWindowSeconds"].as_u64(), Some(120));
    assert_eq!(down["policies"][0]["type"].as_str(), Some("Pods"));
    assert_eq!(down["policies"][0]["value"].as_u64(), Some(1));
    assert_eq!(down["policies"][0]["periodSeconds"].as_u64(), Some(60));
    let up = &s["behavior"]["scaleUp"];
    assert_eq!(up["stabilizationWindowSeconds"].as_u64(), Some(0));
    assert_eq!(up["selectPolicy"].as_str(), Some("Max"));
    assert!(m
        .notes
        .iter()
        .any(|n| n.contains("--horizontal-pod-autoscaler-tolerance")));
}

#[test]
fn kpa_is_a_knative_service_with_annotations() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "clf",
            "policy = \"kpa\"\nmin_replicas = 0\nmax_replicas = 6\ntarget = 4\nstable_window = \"90s\"\nmax_scale_up_rate = 4"
        )
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    let doc = yaml(
        m.kubernetes_yaml()
            .expect("yaml")
            .trim_start_matches("---\n"),
    );
    assert_eq!(doc["apiVersion"].as_str(), Some("serving.knative.dev/v1"));
    assert_eq!(doc["kind"].as_str(), Some("Service"));
    let t = &doc["spec"]["template"];
    let ann = &t["metadata"]["annotations"];
    assert_eq!(ann["autoscaling.knative.dev/min-scale"].as_str(), Some("0"));
    assert_eq!(ann["autoscaling.knative.dev/max-scale"].as_str(), Some("6"));
    assert_eq!(ann["autoscaling.knative.dev/target"].as_str(), Some("4"));
    assert_eq!(ann["autoscaling.knative.dev/window"].as_str(), Some("90s"));
    assert_eq!(
        ann["autoscaling.knative.dev/class"].as_str(),
        Some("kpa.autoscaling.knative.dev")
    );
    assert_eq!(t["spec"]["containerConcurrency"].as_u64(), Some(6));
    assert!(m.notes.iter().any(|n| n.contains("max-scale-up-rate")));
}

#[test]
fn no_image_is_a_loud_placeholder_and_a_note() {
    let text = format!("{CLUSTER}{}", api("clf", "policy = \"fixed\""))
        .replace("image = \"registry.example/clf:1\"\n", "");
    let m = manifests(&text, "t.toml").expect("manifests");
    assert_eq!(m.cortex_apis[0].pod.containers[0].image, IMAGE_PLACEHOLDER);
    assert!(m.notes.iter().any(|n| n.contains("no `image`")));
}

#[test]
fn an_invalid_scenario_is_a_located_error() {
    let text = format!("{CLUSTER}{}", api("clf", "policy = \"nope\""));
    let e = manifests(&text, "t.toml").expect_err("invalid policy");
    assert!(e.to_string().contains("apis[0].autoscaling.policy"), "{e}");
}

#[test]
fn a_vpa_becomes_a_vertical_pod_autoscaler_on_the_deployment() {
    let text = format!(
        "{CLUSTER}{}[apis.vpa]\nmin_allowed = {{ cpu = \"250m\", mem = \"1Gi\" }}\nmax_allowed = {{ mem = \"8Gi\" }}\n",
        api("ranker", "policy = \"hpa\"\nmetric = \"concurrency\"\ntarget_average_value = 2\nmax_replicas = 4")
    );
    let m = manifests(&text, "vpa.toml").expect("manifests");
    let docs = kubernetes_docs(&m);
    let vpa = of_kind(&docs, "VerticalPodAutoscaler");
    assert_eq!(vpa["apiVersion"], "autoscaling.k8s.io/v1");
    assert_eq!(vpa["spec"]["targetRef"]["kind"], "Deployment");
    assert_eq!(vpa["spec"]["targetRef"]["name"], "ranker");
    assert_eq!(vpa["spec"]["updatePolicy"]["updateMode"], "Off");
    let policy = &vpa["spec"]["resourcePolicy"]["containerPolicies"][0];
    assert_eq!(policy["minAllowed"]["cpu"], "250m");
    assert_eq!(policy["minAllowed"]["memory"], "1Gi");
    assert_eq!(policy["maxAllowed"]["memory"], "8Gi");
    assert!(policy["maxAllowed"].get("cpu").is_none());
    // The Deployment it points at is emitted beside it.
    assert!(docs
        .iter()
        .any(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "ranker"));
}

#[test]
fn a_vpa_that_applies_keeps_its_update_mode_and_min_replicas() {
    let text = format!(
        "{CLUSTER}{}[apis.vpa]\nupdate_mode = \"InPlaceOrRecreate\"\nmin_replicas = 3\n",
        api("ranker", "policy = \"hpa\"\nmetric = \"concurrency\"\ntarget_average_value = 2\nmax_replicas = 4")
    );
    let m = manifests(&text, "vpa.toml").expect("manifests");
    let docs = kubernetes_docs(&m);
    let vpa = of_kind(&docs, "VerticalPodAutoscaler");
    assert_eq!(
        vpa["spec"]["updatePolicy"]["updateMode"],
        "InPlaceOrRecreate"
    );
    assert_eq!(vpa["spec"]["updatePolicy"]["minReplicas"], 3);
}

#[test]
fn an_async_api_is_a_cortex_async_api_without_a_per_replica_queue() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "jobs",
            "policy = \"cortex\"\nmax_replicas = 4\ntarget_in_flight = 2"
        )
        .replace("name = \"jobs\"\n", "name = \"jobs\"\nkind = \"async\"\n")
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    let doc = yaml(&m.cortex_yaml().expect("yaml"));
    let a = &doc[0];
    assert_eq!(a["kind"].as_str(), Some("AsyncAPI"));
    assert_eq!(a["pod"]["max_concurrency"].as_u64(), Some(6));
    assert!(a["pod"].get("max_queue_length").is_none(), "{a:?}");
    assert_eq!(a["autoscaling"]["target_in_flight"].as_f64(), Some(2.0));
}

#[test]
fn keda_on_an_async_queue_is_an_aws_sqs_queue_trigger() {
    let text = format!(
        "{CLUSTER}{}",
        api(
            "jobs",
            "policy = \"keda\"\ntrigger = \"aws-sqs-queue\"\nscale_on_in_flight = false\nmin_replicas = 0\nmax_replicas = 4"
        )
        .replace("name = \"jobs\"\n", "name = \"jobs\"\nkind = \"async\"\n")
        .replace("max_queue_length = 16\n", "")
    );
    let m = manifests(&text, "t.toml").expect("manifests");
    let docs = kubernetes_docs(&m);
    let so = of_kind(&docs, "ScaledObject");
    let t = &so["spec"]["triggers"][0];
    assert_eq!(t["type"].as_str(), Some("aws-sqs-queue"));
    // KEDA's defaults, as the simulation used them: queueLength 5, activation 0.
    assert_eq!(t["metadata"]["queueLength"].as_str(), Some("5"));
    assert_eq!(t["metadata"]["activationQueueLength"].as_str(), Some("0"));
    assert_eq!(t["metadata"]["scaleOnInFlight"].as_str(), Some("false"));
    assert_eq!(so["spec"]["minReplicaCount"].as_u64(), Some(0));
    assert!(
        m.notes.iter().any(|n| n.contains("SQS queue")),
        "{:?}",
        m.notes
    );
}
