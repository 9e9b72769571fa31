//! What a simulated scenario becomes in a cluster, so the configuration that was simulated is
//! the one that gets deployed: Cortex `RealtimeAPI` specs for the APIs Cortex scales (`fixed`
//! and `cortex` policies), Cortex's `cluster.yaml` node groups for the cluster side, and
//! Kubernetes manifests for the APIs a Kubernetes autoscaler scales (`hpa`: a Deployment with an
//! autoscaling/v2 HorizontalPodAutoscaler; `kpa`: a Knative Service), Karpenter NodePools
//! for `[[node_pools]]`, and a Cortex `TrafficSplitter` per `[[routers]]` entry.
//!
//! Every setting the simulator used is written out explicitly, defaults included, so a change
//! of default upstream cannot change what runs. What a target system cannot express (extra
//! replicas on top of an autoscaler's recommendation, cluster-wide flags, MIG slices in Cortex)
//! is approximated where an equivalent exists and always stated in [`Manifests::notes`].
//!
//! Built from the scenario text alone (no trace is read), so a merged tune report can render it
//! on any machine.

mod cortex;
mod karpenter;
mod kubernetes;
mod traffic_splitter;

use serde::Serialize;

pub use cortex::{
    ClusterConfig, CortexAutoscaling, CortexCompute, CortexContainer, CortexNodeGroup, CortexPod,
    CortexSpotConfig, RealtimeApi,
};
pub use karpenter::NODE_CLASS;
pub use traffic_splitter::{SplitterApi, TrafficSplitter};

use crate::scenario::{Overprovisioning, PolicyChoice, ScenarioError};

/// Everything needed to deploy a scenario's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// Cortex specs (`cortex deploy`) of the APIs scaled by `fixed` or `cortex`.
    pub cortex_apis: Vec<RealtimeApi>,
    /// Cortex `TrafficSplitter`s (`cortex deploy`, after the APIs), one per router.
    pub cortex_splitters: Vec<TrafficSplitter>,
    /// Cortex cluster configuration (`cortex cluster up`): the node groups.
    pub cortex_cluster: ClusterConfig,
    /// Kubernetes objects (`kubectl apply`) of the APIs scaled by `hpa` or `kpa`.
    pub kubernetes: Vec<serde_json::Value>,
    /// Karpenter `karpenter.sh/v1` NodePools (`kubectl apply`), one per `[[node_pools]]`.
    pub karpenter: Vec<serde_json::Value>,
    /// What differs from the simulation or must be set elsewhere, one sentence each.
    pub notes: Vec<String>,
}

/// Why the manifests could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The scenario is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A manifest cannot be serialized.
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A Kubernetes object cannot be serialized.
    #[error("cannot write a Kubernetes object: {0}")]
    Json(#[from] serde_json::Error),
}

/// The image written when the scenario names none (`apis.image`): deploying fails loudly on it.
pub const IMAGE_PLACEHOLDER: &str = "SET-apis.image-IN-THE-SCENARIO";

/// Port the containers listen on (Cortex's default, exported as `$CORTEX_PORT`).
pub const PORT: u16 = 8080;

/// The manifests of a scenario; `file_name` names it in errors.
pub fn manifests(text: &str, file_name: &str) -> Result<Manifests, DeployError> {
    let (file, shapes, tenancy_note) = crate::scenario::deployable(text, file_name)?;
    let mut notes: Vec<String> = tenancy_note.into_iter().collect();
    let mut cortex_apis = Vec::new();
    let mut kubernetes = Vec::new();
    for (spec, shape) in file.apis.iter().zip(&shapes) {
        if spec.image.is_none() {
            notes.push(format!(
                "{}: no `image` in the scenario; the manifests carry {IMAGE_PLACEHOLDER} until you set it",
                spec.name
            ));
        }
        if shape.autoscaling.forecast.is_some() {
            notes.push(format!(
                "{}: [apis.autoscaling.forecast] (predictive scaling) has no upstream manifest: what is written here is the reactive policy alone, which does NOT reproduce the simulated forecast floor; run the simulated policy itself with `simctl autoscale` against the Deployment",
                spec.name
            ));
        }
        match &shape.autoscaling.policy {
            PolicyChoice::Fixed | PolicyChoice::Cortex(_) => {
                cortex_apis.push(cortex::api(spec, shape, &mut notes));
            }
            PolicyChoice::Hpa(c) => {
                kubernetes.extend(kubernetes::hpa(spec, shape, c, &mut notes)?);
            }
            PolicyChoice::Kpa(c) => {
                kubernetes.push(kubernetes::knative_service(spec, shape, c, &mut notes));
            }
            PolicyChoice::Keda(c) => {
                kubernetes.extend(kubernetes::keda(spec, shape, c, &mut notes)?);
            }
            PolicyChoice::Saturation(_) => notes.push(format!(
                "{}: policy \"saturation\" is llm-d's Workload Variant Autoscaler; its VariantAutoscaling resource and the HPA that actuates it are not emitted",
                spec.name
            )),
        }
    }
    for spec in &file.apis {
        if let Some(v) = &spec.vpa {
            kubernetes.push(vertical_pod_autoscaler(spec, v, &mut notes));
        }
    }
    let cortex_names: Vec<&str> = cortex_apis.iter().map(|a| a.name.as_str()).collect();
    let cortex_splitters = traffic_splitter::splitters(&file, &cortex_names, &mut notes);
    let cortex_cluster = cortex::cluster(&file, &mut notes);
    let karpenter = karpenter::node_pools(&file, &mut notes);
    Ok(Manifests {
        cortex_apis,
        cortex_splitters,
        cortex_cluster,
        kubernetes,
        karpenter,
        notes,
    })
}

/// The VerticalPodAutoscaler (`autoscaling.k8s.io/v1`) of an API with `[apis.vpa]`, on the
/// Deployment of its name.
fn vertical_pod_autoscaler(
    spec: &crate::scenario::schema::ApiSpec,
    vpa: &crate::scenario::schema::VpaSpec,
    notes: &mut Vec<String>,
) -> serde_json::Value {
    let bound = |b: &crate::scenario::schema::VpaResourcesSpec| {
        let mut m = serde_json::Map::new();
        if let Some(cpu) = &b.cpu {
            m.insert("cpu".into(), cpu.text.clone().into());
        }
        if let Some(mem) = &b.mem {
            m.insert("memory".into(), mem.text.clone().into());
        }
        serde_json::Value::Object(m)
    };
    let mut policy = serde_json::json!({
        "containerName": "*",
        "controlledResources": ["cpu", "memory"],
    });
    if let Some(b) = &vpa.min_allowed {
        policy["minAllowed"] = bound(b);
    }
    if let Some(b) = &vpa.max_allowed {
        policy["maxAllowed"] = bound(b);
    }
    notes.push(format!(
        "{}: the VerticalPodAutoscaler targets the Deployment \"{}\"; for an API Cortex or Knative deploys, point its targetRef at the Deployment they create. Its recommender runs with upstream's defaults (--recommender-interval {}), as simulated",
        spec.name,
        spec.name,
        vpa.recommender_interval.map_or("1m".to_string(), |d| format!("{}s", d.0.as_secs_f64()))
    ));
    if vpa.updater_interval.is_some() {
        notes.push(format!(
            "{}: the simulated updater ran every {}s; --updater-interval is a flag of the cluster's VPA updater, not of this object",
            spec.name,
            vpa.updater_interval.map_or(60.0, |d| d.0.as_secs_f64())
        ));
    }
    let mut update_policy = serde_json::json!({
        "updateMode": vpa.update_mode.clone().unwrap_or_else(|| "Off".into())
    });
    if let Some(n) = vpa.min_replicas {
        update_policy["minReplicas"] = n.into();
    }
    serde_json::json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": { "name": spec.name },
        "spec": {
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name },
            "updatePolicy": update_policy,
            "resourcePolicy": { "containerPolicies": [policy] },
        },
    })
}

impl Manifests {
    /// The Cortex API specs as `cortex.yaml`, the TrafficSplitters after the RealtimeAPIs they
    /// route to (empty when Cortex deploys nothing).
    pub fn cortex_yaml(&self) -> Result<String, DeployError> {
        /// One entry of `cortex.yaml`, written as the spec itself.
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Api(&'a RealtimeApi),
            Splitter(&'a TrafficSplitter),
        }
        if self.cortex_apis.is_empty() && self.cortex_splitters.is_empty() {
            return Ok(String::new());
        }
        let entries: Vec<Entry> = self
            .cortex_apis
            .iter()
            .map(Entry::Api)
            .chain(self.cortex_splitters.iter().map(Entry::Splitter))
            .collect();
        Ok(serde_yaml_ng::to_string(&entries)?)
    }

    /// The node groups as Cortex's `cluster.yaml`.
    pub fn cluster_yaml(&self) -> Result<String, DeployError> {
        Ok(serde_yaml_ng::to_string(&self.cortex_cluster)?)
    }

    /// The Kubernetes objects as one multi-document YAML (empty when there are none).
    pub fn kubernetes_yaml(&self) -> Result<String, DeployError> {
        documents(&self.kubernetes)
    }

    /// The NodePools as one multi-document YAML (empty without `[[node_pools]]`).
    pub fn karpenter_yaml(&self) -> Result<String, DeployError> {
        documents(&self.karpenter)
    }
}

/// Objects as one multi-document YAML, each after `---`.
fn documents(objects: &[serde_json::Value]) -> Result<String, DeployError> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(object)?);
    }
    Ok(out)
}

/// How an autoscaler that has no notion of headroom can carry the simulated overprovisioning.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Headroom {
    /// Nothing to carry.
    None,
    /// Divide the per-replica target by this factor: the recommendation grows by it, as a
    /// fractional overprovisioning does (up to rounding).
    TargetDivisor(f64),
    /// Raise the floor by this many replicas: exact while the API sits at its floor, fewer
    /// replicas than simulated above it.
    FloorPlus(u32),
}

impl Headroom {
    fn of(overprovisioning: Overprovisioning) -> Headroom {
        match overprovisioning {
            Overprovisioning::None => Headroom::None,
            Overprovisioning::Fraction(f) => Headroom::TargetDivisor(1.0 + f),
            Overprovisioning::Replicas(0) => Headroom::None,
            Overprovisioning::Replicas(n) => Headroom::FloorPlus(n),
        }
    }

    /// The floor (`min_replicas` raised by a fixed headroom, within `max_replicas`) and the
    /// divisor of the per-replica target that carry this headroom.
    fn floor_and_divisor(self, min_replicas: u32, max_replicas: u32) -> (u32, f64) {
        match self {
            Headroom::None => (min_replicas, 1.0),
            Headroom::TargetDivisor(d) => (min_replicas, d),
            Headroom::FloorPlus(n) => (min_replicas.saturating_add(n).min(max_replicas), 1.0),
        }
    }

    /// The note that says what was done, for `api` scaled by `system`.
    fn note(self, api: &str, system: &str, target_name: &str) -> Option<String> {
        match self {
            Headroom::None => None,
            Headroom::TargetDivisor(d) => Some(format!(
                "{api}: {system} has no overprovisioning; the simulated {:.0} % headroom is written as {target_name} divided by {d:.2} (the same recommendation up to rounding)",
                (d - 1.0) * 100.0
            )),
            Headroom::FloorPlus(n) => Some(format!(
                "{api}: {system} cannot add {n} replica(s) on top of its recommendation as simulated; the floor is raised by {n} instead, which matches the simulation only while the API runs at its floor (tune with fractional overprovisioning, e.g. \"25%\", for an exact equivalent)"
            )),
        }
    }
}

/// A CPU request as Kubernetes writes it: whole cores, else millicores.
fn cpu_text(millicores: u64) -> String {
    if millicores.is_multiple_of(1000) {
        (millicores / 1000).to_string()
    } else {
        format!("{millicores}m")
    }
}

/// A memory request in MiB as Kubernetes writes it (`Gi` when whole).
fn mem_text(mib: u64) -> String {
    if mib > 0 && mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// A duration as Go's `time.ParseDuration` (Cortex, Knative) and Kubernetes read it.
fn duration_text(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A decimal with at most 3 decimals, the way YAML and Kubernetes quantities read well.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Serialize as YAML via JSON, for values whose serde form is already right.
fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value, DeployError> {
    Ok(serde_json::to_value(value)?)
}

#[cfg(test)]
mod tests;
