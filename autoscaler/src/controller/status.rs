//! The controller's own `/metrics` (decisions, the observed metric, errors) and `/healthz`, so
//! it can be watched and alerted on like any other workload.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::Decision;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

/// Counters and gauges the controller exports.
pub struct ControllerMetrics {
    registry: Mutex<Registry>,
    decisions: Family<ActionLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    /// Scale calls that succeeded.
    pub scaled: Counter,
    metric: Gauge<f64, AtomicU64>,
    spec_replicas: Gauge,
    ready_replicas: Gauge,
    target_replicas: Gauge,
    /// 1 while this controller is the leader (or leader election is off).
    pub leader: Gauge,
}

impl ControllerMetrics {
    /// Metrics labelled with the API's name.
    pub fn new(api_name: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix_and_labels(
            "simctl_autoscaler",
            [("api_name".into(), api_name.to_string().into())].into_iter(),
        );
        let decisions = Family::<ActionLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let scaled = Counter::default();
        let metric = Gauge::<f64, AtomicU64>::default();
        let spec_replicas = Gauge::default();
        let ready_replicas = Gauge::default();
        let target_replicas = Gauge::default();
        let leader = Gauge::default();
        registry.register(
            "decisions",
            "Ticks by outcome: up, down, same, or hold (metric missing or stale)",
            decisions.clone(),
        );
        registry.register(
            "errors",
            "Errors by kind: metrics, actuator, lease",
            errors.clone(),
        );
        registry.register("scale_calls", "Successful scale calls", scaled.clone());
        registry.register(
            "observed_metric",
            "The aggregated metric the policy saw at the last tick",
            metric.clone(),
        );
        registry.register(
            "spec_replicas",
            "spec.replicas read at the last tick",
            spec_replicas.clone(),
        );
        registry.register(
            "ready_replicas",
            "Ready replicas read at the last tick",
            ready_replicas.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas the controller wants (after the policy, bounds and headroom)",
            target_replicas.clone(),
        );
        registry.register(
            "leader",
            "1 while this controller may act (leader or no election)",
            leader.clone(),
        );
        leader.set(1);
        Arc::new(Self {
            registry: Mutex::new(registry),
            decisions,
            errors,
            scaled,
            metric,
            spec_replicas,
            ready_replicas,
            target_replicas,
            leader,
        })
    }

    /// Count one error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Record one tick's decision.
    pub fn record(&self, d: &Decision) {
        let action = if d.held.is_some() {
            "hold"
        } else if d.target > d.spec_replicas {
            "up"
        } else if d.target < d.spec_replicas {
            "down"
        } else {
            "same"
        };
        self.decisions
            .get_or_create(&ActionLabel {
                action: action.into(),
            })
            .inc();
        if let Some(m) = d.metric {
            self.metric.set(m);
        }
        self.spec_replicas.set(i64::from(d.spec_replicas));
        self.ready_replicas.set(i64::from(d.ready_replicas));
        self.target_replicas.set(i64::from(d.target));
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Serve `/metrics` and `/healthz` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<ControllerMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route(
            "/metrics",
            get(|State(m): State<Arc<ControllerMetrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
                    .into_response()
            }),
        )
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
