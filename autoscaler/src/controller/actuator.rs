//! Reading and setting the replica count: a Kubernetes Deployment's `scale` subresource, or
//! nothing at all (dry run). The local actuator lives in [`super::local`].

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};

use super::BoxFuture;

pub use crate::ReplicaCount;

/// Why reading or setting the replica count failed; the loop retries either kind.
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    /// The Kubernetes API answered with an error status (500, 409 conflict, 404, 403…).
    #[error("Kubernetes API error {code}: {message}")]
    Api {
        /// HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The API server could not be reached or did not answer in time.
    #[error("Kubernetes API unreachable: {0}")]
    Transport(String),
    /// A local replica could not be started or stopped.
    #[error("local replica: {0}")]
    Local(String),
}

impl From<kube::Error> for ActuatorError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => ActuatorError::Api {
                code: s.code,
                message: s.message.clone(),
            },
            other => ActuatorError::Transport(other.to_string()),
        }
    }
}

/// Something whose replica count the controller reads and sets.
pub trait Actuator: Send {
    /// Short name for logs (`kubernetes`, `local`, `dry-run`).
    fn name(&self) -> &'static str;
    /// The current replica counts.
    fn current(&mut self) -> BoxFuture<'_, Result<ReplicaCount, ActuatorError>>;
    /// Set `spec.replicas`.
    fn scale(&mut self, replicas: u32) -> BoxFuture<'_, Result<(), ActuatorError>>;
    /// Release what the actuator holds (local processes); nothing for the others.
    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Logs what it would do and remembers the count, so a policy can be watched against real
/// metrics without touching anything.
#[derive(Debug)]
pub struct DryRun {
    replicas: u32,
}

impl DryRun {
    /// Start from `replicas` (all counted ready).
    pub fn new(replicas: u32) -> Self {
        Self { replicas }
    }
}

impl Actuator for DryRun {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn current(&mut self) -> BoxFuture<'_, Result<ReplicaCount, ActuatorError>> {
        let n = self.replicas;
        Box::pin(async move { Ok(ReplicaCount { spec: n, ready: n }) })
    }

    fn scale(&mut self, replicas: u32) -> BoxFuture<'_, Result<(), ActuatorError>> {
        tracing::info!(from = self.replicas, to = replicas, "dry run: would scale");
        self.replicas = replicas;
        Box::pin(async { Ok(()) })
    }
}

/// A Deployment's `scale` subresource (`autoscaling/v1` Scale): GET to read `spec.replicas`, a
/// merge PATCH to set it — exactly what `kubectl scale` and the HPA do, so RBAC can be limited to
/// `deployments/scale`. Ready replicas come from the Deployment's status (`deployments` get).
pub struct KubeScale {
    api: Api<Deployment>,
    name: String,
}

impl KubeScale {
    /// The Deployment `name` in the namespace of `api`.
    pub fn new(api: Api<Deployment>, name: impl Into<String>) -> Self {
        Self {
            api,
            name: name.into(),
        }
    }

    /// The body of the scale patch.
    pub fn patch_body(replicas: u32) -> serde_json::Value {
        serde_json::json!({ "spec": { "replicas": replicas } })
    }
}

fn non_negative(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

impl Actuator for KubeScale {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn current(&mut self) -> BoxFuture<'_, Result<ReplicaCount, ActuatorError>> {
        Box::pin(async move {
            let scale = self.api.get_scale(&self.name).await?;
            let spec = non_negative(scale.spec.and_then(|s| s.replicas));
            let from_scale = non_negative(scale.status.map(|s| s.replicas));
            // Ready replicas are only on the Deployment; without them, assume the scale's count.
            let ready = match self.api.get(&self.name).await {
                Ok(d) => non_negative(d.status.and_then(|s| s.ready_replicas)),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the Deployment's ready replicas");
                    from_scale
                }
            };
            Ok(ReplicaCount { spec, ready })
        })
    }

    fn scale(&mut self, replicas: u32) -> BoxFuture<'_, Result<(), ActuatorError>> {
        Box::pin(async move {
            let patch = Patch::Merge(Self::patch_body(replicas));
            self.api
                .patch_scale(&self.name, &PatchParams::default(), &patch)
                .await?;
            Ok(())
        })
    }
}
