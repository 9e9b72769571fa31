//! Offline checks of deploy/ (kubectl and helm are not available here): every manifest parses
//! into the Kubernetes API types, RBAC is least-privilege, the pod is hardened, and the policy in
//! the ConfigMap (and the Helm values) is a valid scenario.

use std::collections::BTreeSet;
use std::path::Path;

use autoscaler::controller::k8s_openapi::api::apps::v1::Deployment;
use autoscaler::controller::k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use autoscaler::controller::k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::Deserialize;

fn deploy(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(path),
    )
    .expect("manifest exists")
}

fn docs(text: &str) -> Vec<serde_yaml_ng::Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(docs: &[serde_yaml_ng::Value], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .map(|d| serde_yaml_ng::from_value(d.clone()).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

/// (apiGroup, resource, verb) triples a Role grants.
fn grants(role: &Role) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role.rules.as_deref().unwrap_or_default() {
        // The Deployment and the Lease are named by the controller's flags at run time, and
        // Kubernetes cannot restrict `create` or `list` by name: a rule naming resources would
        // either break the controller or pretend to a restriction it does not have.
        assert_eq!(rule.resource_names, None, "no resourceNames in {rule:?}");
        assert!(
            !rule.api_groups.as_deref().unwrap_or_default().is_empty()
                && !rule.resources.as_deref().unwrap_or_default().is_empty()
                && !rule.verbs.is_empty(),
            "a rule that grants nothing: {rule:?}"
        );
        for g in rule.api_groups.as_deref().unwrap_or_default() {
            for r in rule.resources.as_deref().unwrap_or_default() {
                for v in &rule.verbs {
                    assert_ne!(v, "*", "no wildcard verbs");
                    assert_ne!(r, "*", "no wildcard resources");
                    out.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out
}

fn expected_grants() -> BTreeSet<(String, String, String)> {
    [
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "patch"),
        ("apps", "deployments", "get"),
        ("", "pods", "list"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
    ]
    .into_iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .collect()
}

fn check_pod(d: &Deployment, service_account: &str) {
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(service_account));
    let psc = pod.security_context.as_ref().expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    let c = &pod.containers[0];
    let sc = c
        .security_context
        .as_ref()
        .expect("container security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let args = c.args.as_deref().expect("args");
    assert_eq!(args[0], "autoscale");
    assert!(args.iter().any(|a| a == "--leader-election"));
    assert!(args.iter().any(|a| a == "--actuator=kubernetes"));
    assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());
}

fn check_scenario(text: &str) {
    let s = sim::Scenario::parse(text, "scenario.toml", Path::new(".")).expect("valid scenario");
    assert_eq!(s.apis[0].name, "model");
    assert_eq!(s.apis[0].autoscaling.build().name(), "cortex");
}

#[test]
fn plain_manifests_parse_and_rbac_is_least_privilege() {
    let rbac = docs(&deploy("autoscaler-rbac.yaml"));
    assert_eq!(of_kind::<ServiceAccount>(&rbac, "ServiceAccount").len(), 1);
    let roles = of_kind::<Role>(&rbac, "Role");
    assert_eq!(roles.len(), 1);
    assert_eq!(grants(&roles[0]), expected_grants());
    assert!(rbac
        .iter()
        .all(|d| d["kind"].as_str() != Some("ClusterRole")));
    let bindings = of_kind::<RoleBinding>(&rbac, "RoleBinding");
    assert_eq!(bindings[0].role_ref.kind, "Role");
    assert_eq!(
        bindings[0].subjects.as_deref().expect("subjects")[0].name,
        "simctl-autoscaler"
    );

    let dep = docs(&deploy("autoscaler.yaml"));
    let d = of_kind::<Deployment>(&dep, "Deployment");
    check_pod(&d[0], "simctl-autoscaler");

    // The tuning Job's pods are locked down like the controller's.
    let job = docs(&deploy("tune-job.yaml"));
    let job = job
        .iter()
        .find(|d| d["kind"].as_str() == Some("Job"))
        .expect("a Job");
    let psc = &job["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        psc["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );

    let cm = docs(&deploy("autoscaler-config.yaml"));
    let cm = of_kind::<ConfigMap>(&cm, "ConfigMap");
    let data = cm[0].data.as_ref().expect("data");
    check_scenario(&data["scenario.toml"]);
}

/// Just enough of Helm's templating for these templates: `.Release.*`, `.Values.a.b`, and the
/// `indent`/`sha256sum` pipes.
fn render(template: &str, values: &serde_yaml_ng::Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").expect("closed") + at;
        let expr = rest[at + 2..end].trim().trim_start_matches('-').trim();
        let mut parts = expr.split('|').map(str::trim);
        let head = parts.next().expect("expr");
        let mut value = match head {
            ".Release.Name" => "simctl-autoscaler".to_string(),
            ".Release.Namespace" => "default".to_string(),
            v if v.starts_with(".Values.") => {
                let mut cur = values;
                for k in v[".Values.".len()..].split('.') {
                    cur = &cur[k];
                }
                match cur {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    other => panic!("unsupported value {v}: {other:?}"),
                }
            }
            other => panic!("unsupported template expression {other}"),
        };
        for pipe in parts {
            if let Some(n) = pipe.strip_prefix("indent ") {
                let pad = " ".repeat(n.trim().parse().expect("indent"));
                value = value
                    .lines()
                    .map(|l| format!("{pad}{l}"))
                    .collect::<Vec<_>>()
                    .join("\n");
            } else if pipe == "sha256sum" {
                value = "checksum".into();
            } else {
                panic!("unsupported pipe {pipe}");
            }
        }
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn helm_chart_renders_to_the_same_least_privilege_objects() {
    let chart: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&deploy("helm/simctl-autoscaler/Chart.yaml")).expect("Chart.yaml");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "simctl-autoscaler");
    let values: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&deploy("helm/simctl-autoscaler/values.yaml"))
            .expect("values.yaml");
    check_scenario(values["scenario"].as_str().expect("scenario"));
    let t = |name: &str| {
        docs(&render(
            &deploy(&format!("helm/simctl-autoscaler/templates/{name}")),
            &values,
        ))
    };
    assert_eq!(
        of_kind::<ServiceAccount>(&t("serviceaccount.yaml"), "ServiceAccount").len(),
        1
    );
    assert_eq!(
        grants(&of_kind::<Role>(&t("role.yaml"), "Role")[0]),
        expected_grants()
    );
    assert_eq!(
        of_kind::<RoleBinding>(&t("rolebinding.yaml"), "RoleBinding").len(),
        1
    );
    let cm = of_kind::<ConfigMap>(&t("configmap.yaml"), "ConfigMap");
    check_scenario(&cm[0].data.as_ref().expect("data")["scenario.toml"]);
    let d = of_kind::<Deployment>(&t("deployment.yaml"), "Deployment");
    check_pod(&d[0], "simctl-autoscaler");
    assert_eq!(d[0].spec.as_ref().and_then(|s| s.replicas), Some(2));
}

#[test]
fn dockerfile_is_multi_stage_and_non_root() {
    let text = deploy("Dockerfile");
    assert!(text.lines().filter(|l| l.starts_with("FROM ")).count() >= 2);
    assert!(text.lines().any(|l| l.starts_with("USER 10001")));
}
