//! A fake Kubernetes API server on 127.0.0.1 that speaks the real JSON, for testing the
//! controller's Kubernetes code without a cluster: the `autoscaling/v1` Scale subresource of a
//! Deployment (and the Deployment itself), and `coordination.k8s.io/v1` Leases.
//!
//! The API: [`FakeKube::start`] with the Deployment's replica count; [`FakeKube::client`] for a
//! `kube::Client` aimed at it; [`FakeKube::set_faults`] to make the next scale or lease reads
//! fail (a status code, or a hang); and, to check what the controller did, [`FakeKube::replicas`],
//! [`FakeKube::patches`] (every scale PATCH received), [`FakeKube::lease`],
//! [`FakeKube::faults_left`] and [`FakeKube::failures_served`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoscaler::controller::kube;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

/// A failure served instead of the next answer to a scale request (GET or PATCH) or a lease read.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Answer with this status (409 as a `Conflict`, anything else as an `InternalError`).
    Status(u16),
    /// Answer nothing for this long, then a 504.
    Hang(Duration),
}

/// A scale PATCH the fake received.
#[derive(Debug, Clone)]
pub(crate) struct Patch {
    /// Its `content-type` header (which patch strategy the client asked for).
    pub(crate) content_type: String,
    /// Its JSON body.
    pub(crate) body: Value,
}

/// What the fake API server holds, shared with its handlers.
#[derive(Default)]
struct Cluster {
    replicas: u32,
    faults: VecDeque<Fault>,
    patches: Vec<Patch>,
    failures_served: u32,
    lease: Option<Value>,
    lease_rv: u64,
}

type Shared = Arc<Mutex<Cluster>>;

/// A running fake API server; it serves until the test's runtime shuts down.
pub(crate) struct FakeKube {
    addr: SocketAddr,
    state: Shared,
}

impl FakeKube {
    /// Start a fake API server on a free port of 127.0.0.1 whose Deployments have `replicas`
    /// replicas (spec and ready), with no lease and no faults.
    pub(crate) async fn start(replicas: u32) -> FakeKube {
        let state: Shared = Arc::new(Mutex::new(Cluster {
            replicas,
            ..Cluster::default()
        }));
        let app = Router::new()
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
                get(scale).patch(scale),
            )
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                get(deployment),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                post(lease_create),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(lease_get).put(lease_replace),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeKube { addr, state }
    }

    /// A client for it, namespace `default`, with short timeouts so a hang fault costs little.
    pub(crate) fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().expect("url"));
        config.default_namespace = "default".into();
        config.read_timeout = Some(Duration::from_millis(400));
        config.connect_timeout = Some(Duration::from_millis(400));
        kube::Client::try_from(config).expect("client")
    }

    /// Serve these faults, in order, instead of the next scale or lease-read answers (replacing
    /// any faults not served yet).
    pub(crate) fn set_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults = faults.into_iter().collect();
    }

    /// The Deployment's replica count now.
    pub(crate) fn replicas(&self) -> u32 {
        self.lock().replicas
    }

    /// Every scale PATCH received, oldest first.
    pub(crate) fn patches(&self) -> Vec<Patch> {
        self.lock().patches.clone()
    }

    /// The lease object as stored, if one was created.
    pub(crate) fn lease(&self) -> Option<Value> {
        self.lock().lease.clone()
    }

    /// Faults set but not served yet.
    pub(crate) fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    /// Faults served so far.
    pub(crate) fn failures_served(&self) -> u32 {
        self.lock().failures_served
    }

    fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.state.lock().expect("lock")
    }
}

/// A Kubernetes `Status` error answer.
fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).expect("status"),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A 200 with a JSON body.
pub(crate) fn json_ok(v: Value) -> Response {
    ([("content-type", "application/json")], v.to_string()).into_response()
}

async fn fault(state: &Shared) -> Option<Response> {
    let f = state.lock().expect("lock").faults.pop_front();
    match f {
        None => None,
        Some(Fault::Status(code)) => {
            state.lock().expect("lock").failures_served += 1;
            let reason = if code == 409 {
                "Conflict"
            } else {
                "InternalError"
            };
            Some(status(code, reason, "injected"))
        }
        Some(Fault::Hang(d)) => {
            state.lock().expect("lock").failures_served += 1;
            tokio::time::sleep(d).await;
            Some(status(504, "Timeout", "injected hang"))
        }
    }
}

fn scale_json(ns: &str, name: &str, replicas: u32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": "app=model"}})
}

async fn scale(
    State(state): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = fault(&state).await {
        return r;
    }
    let mut s = state.lock().expect("lock");
    if method == Method::PATCH {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return status(400, "BadRequest", "not JSON");
        };
        let Some(n) = v["spec"]["replicas"].as_u64() else {
            return status(422, "Invalid", "no spec.replicas");
        };
        s.replicas = n as u32;
        s.patches.push(Patch {
            content_type,
            body: v,
        });
    }
    json_ok(scale_json(&ns, &name, s.replicas))
}

async fn deployment(
    State(state): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let s = state.lock().expect("lock");
    json_ok(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": s.replicas, "selector": {"matchLabels": {"app": "model"}},
                 "template": {"metadata": {"labels": {"app": "model"}}}},
        "status": {"replicas": s.replicas, "readyReplicas": s.replicas}}))
}

async fn lease_get(
    State(state): State<Shared>,
    Path((_ns, _name)): Path<(String, String)>,
) -> Response {
    if let Some(r) = fault(&state).await {
        return r;
    }
    match &state.lock().expect("lock").lease {
        Some(l) => json_ok(l.clone()),
        None => status(404, "NotFound", "leases not found"),
    }
}

async fn lease_create(
    State(state): State<Shared>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("lock");
    if s.lease.is_some() {
        return status(409, "AlreadyExists", "lease exists");
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    s.lease_rv += 1;
    v["metadata"]["resourceVersion"] = json!(s.lease_rv.to_string());
    v["metadata"]["namespace"] = json!(ns);
    v["apiVersion"] = json!("coordination.k8s.io/v1");
    v["kind"] = json!("Lease");
    s.lease = Some(v.clone());
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn lease_replace(
    State(state): State<Shared>,
    Path((_ns, _name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("lock");
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let current = s.lease_rv.to_string();
    if v["metadata"]["resourceVersion"].as_str() != Some(current.as_str()) {
        return status(409, "Conflict", "the object has been modified");
    }
    s.lease_rv += 1;
    v["metadata"]["resourceVersion"] = json!(s.lease_rv.to_string());
    s.lease = Some(v.clone());
    json_ok(v)
}
