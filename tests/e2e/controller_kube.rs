//! The controller against a fake Kubernetes API server on 127.0.0.1 that speaks the real JSON
//! ([`crate::fake_kube`]): the `autoscaling/v1` Scale subresource of a Deployment and
//! `coordination.k8s.io/v1` Leases. Faults (500, hung requests, 409) are injected to check the
//! controller survives them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoscaler::controller::backoff::Backoff;
use autoscaler::controller::kube;
use autoscaler::controller::lease::{LeaderElector, LeaseSettings};
use autoscaler::controller::{
    Actuator, ActuatorError, BoxFuture, Controller, ControllerMetrics, ControllerSettings,
    DecisionStep, KubeScale, MetricsSource, Reading, ReplicaCount, SourceError,
};
use autoscaler::{
    Cortex, CortexConfig, MetricSpec, Observation, Recommendation, ReplicaBounds, ScalingPolicy,
};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::fake_kube::{FakeKube, Fault, Patch};

/// A metric that is whatever the test says.
struct FixedMetric(Option<f64>);

impl MetricsSource for FixedMetric {
    fn observe(&mut self, _now: Duration) -> BoxFuture<'_, Result<Reading, SourceError>> {
        let m = self.0;
        Box::pin(async move {
            Ok(Reading {
                metric: m,
                ..Reading::default()
            })
        })
    }
}

fn cortex(max: u32) -> DecisionStep {
    let mut c = CortexConfig::with_concurrency(4);
    c.bounds = ReplicaBounds {
        min_replicas: 1,
        max_replicas: max,
    };
    c.upscale_stabilization_period = Duration::ZERO;
    c.downscale_stabilization_period = Duration::ZERO;
    DecisionStep::new(
        Box::new(Cortex::new(c)),
        ReplicaBounds {
            min_replicas: 1,
            max_replicas: max,
        },
        autoscaler::Overprovisioning::None,
    )
}

fn settings(tick_ms: u64, run_ms: u64) -> ControllerSettings {
    ControllerSettings {
        api_name: "model".into(),
        tick_interval: Some(Duration::from_millis(tick_ms)),
        apply_initial: false,
        duration: Some(Duration::from_millis(run_ms)),
        decisions_out: None,
        retry: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            budget: Duration::from_millis(tick_ms * 4 / 5),
            attempt_timeout: Duration::from_millis(300),
        },
    }
}

fn deployment_api(
    fake: &FakeKube,
) -> kube::Api<autoscaler::controller::k8s_openapi::api::apps::v1::Deployment> {
    kube::Api::namespaced(fake.client(), "default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_patch_is_a_merge_patch_of_spec_replicas() {
    let fake = FakeKube::start(2).await;
    let mut a = KubeScale::new(deployment_api(&fake), "model");
    assert_eq!(
        a.current().await.expect("read"),
        ReplicaCount { spec: 2, ready: 2 }
    );
    a.scale(5).await.expect("patch");
    assert_eq!(fake.replicas(), 5);
    let patches = fake.patches();
    let Patch { content_type, body } = &patches[0];
    assert_eq!(content_type, "application/merge-patch+json");
    assert_eq!(body, &json!({"spec": {"replicas": 5}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_500s_timeouts_and_conflicts_and_stays_in_bounds() {
    let fake = FakeKube::start(1).await;
    fake.set_faults([
        Fault::Status(500),
        Fault::Hang(Duration::from_secs(2)),
        Fault::Status(409),
        Fault::Status(500),
        Fault::Status(409),
    ]);
    let metrics = ControllerMetrics::new("model");
    // A huge load: Cortex wants far more than max_replicas = 5.
    let ctl = Controller::new(
        settings(500, 6000),
        cortex(5),
        Box::new(FixedMetric(Some(1000.0))),
        Box::new(KubeScale::new(deployment_api(&fake), "model")),
        metrics.clone(),
    );
    let decisions = ctl
        .run(std::future::pending())
        .await
        .expect("runs to the end");
    assert_eq!(fake.faults_left(), 0, "every fault was served");
    assert_eq!(fake.failures_served(), 5);
    assert_eq!(
        fake.replicas(),
        5,
        "reached max_replicas despite the faults"
    );
    assert!(fake.patches().iter().all(|p| {
        let n = p.body["spec"]["replicas"].as_u64().unwrap_or(0);
        (1..=5).contains(&n)
    }));
    assert!(!decisions.is_empty(), "the controller decided");
    assert!(decisions.iter().all(|d| d.target <= 5 && d.target >= 1));
    let text = metrics.encode();
    assert!(
        text.contains("simctl_autoscaler_errors_total{api_name=\"model\",kind=\"actuator\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_metric_holds_the_replica_count() {
    let fake = FakeKube::start(4).await;
    let ctl = Controller::new(
        settings(200, 1100),
        cortex(10),
        Box::new(FixedMetric(None)),
        Box::new(KubeScale::new(deployment_api(&fake), "model")),
        ControllerMetrics::new("model"),
    );
    let decisions = ctl.run(std::future::pending()).await.expect("runs");
    assert!(decisions.len() >= 3);
    assert!(decisions.iter().all(|d| d.held.is_some() && d.target == 4));
    assert!(fake.patches().is_empty(), "no patch on missing data");
    assert_eq!(fake.replicas(), 4);
}

fn lease_settings(id: &str) -> LeaseSettings {
    LeaseSettings {
        name: "simctl-autoscaler".into(),
        identity: id.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_hand_over_when_the_leader_dies() {
    let fake = FakeKube::start(0).await;
    let api = || kube::Api::namespaced(fake.client(), "default");
    let mut a = LeaderElector::new(api(), lease_settings("a")).expect("valid");
    let mut b = LeaderElector::new(api(), lease_settings("b")).expect("valid");
    assert!(a.step().await);
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.step().await, "a renews");
        assert!(!b.step().await, "b never leads while a renews");
    }
    // a dies (stops renewing): b takes over only once the lease has gone unrenewed for its
    // duration, as measured on b's clock.
    let died = tokio::time::Instant::now();
    let mut took_over = None;
    while died.elapsed() < Duration::from_secs(5) {
        if b.step().await {
            took_over = Some(died.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = took_over.expect("b took over");
    assert!(after >= Duration::from_millis(1800), "too early: {after:?}");
    // a comes back: it sees b's lease and does not lead.
    assert!(!a.step().await);
    let lease = fake.lease().expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_that_cannot_renew_steps_down_before_the_lease_expires() {
    let fake = FakeKube::start(0).await;
    let mut a = LeaderElector::new(
        kube::Api::namespaced(fake.client(), "default"),
        lease_settings("a"),
    )
    .expect("valid");
    assert!(a.step().await);
    // The API server fails every call for a while.
    fake.set_faults((0..40).map(|_| Fault::Status(500)));
    let t = tokio::time::Instant::now();
    while a.step().await {
        assert!(
            t.elapsed() < Duration::from_millis(1900),
            "still leading after the deadline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "stepped down before the lease expired"
    );
}

/// Always asks for a different count, so every tick is an action.
struct Flip;

impl ScalingPolicy for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }
    fn tick_interval(&self) -> Duration {
        Duration::from_millis(100)
    }
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::None
    }
    fn initial_replicas(&self) -> u32 {
        2
    }
    fn recommend(&mut self, _now: Duration, obs: &Observation) -> Recommendation {
        Recommendation::plain(if obs.current_replicas == 2 { 3 } else { 2 })
    }
}

/// The shared replica count and who scaled when.
type SharedLog = Arc<Mutex<(u32, Vec<(tokio::time::Instant, &'static str)>)>>;

/// Records who scaled when, on a replica count shared by both controllers.
struct Recording {
    who: &'static str,
    shared: SharedLog,
}

impl Actuator for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn current(&mut self) -> BoxFuture<'_, Result<ReplicaCount, ActuatorError>> {
        let n = self.shared.lock().expect("lock").0;
        Box::pin(async move { Ok(ReplicaCount { spec: n, ready: n }) })
    }
    fn scale(&mut self, replicas: u32) -> BoxFuture<'_, Result<(), ActuatorError>> {
        let mut s = self.shared.lock().expect("lock");
        s.0 = replicas;
        s.1.push((tokio::time::Instant::now(), self.who));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_never_both_act() {
    let fake = FakeKube::start(0).await;
    let shared = Arc::new(Mutex::new((2u32, Vec::new())));
    let start = |who: &'static str, run_ms: u64| {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let elector = LeaderElector::new(
            kube::Api::namespaced(fake.client(), "default"),
            lease_settings(who),
        )
        .expect("valid");
        let stop = tokio_util_like_stop(run_ms);
        tokio::spawn(elector.run(tx, stop));
        let ctl = Controller::new(
            settings(100, run_ms),
            DecisionStep::new(
                Box::new(Flip),
                ReplicaBounds {
                    min_replicas: 1,
                    max_replicas: 5,
                },
                autoscaler::Overprovisioning::None,
            ),
            Box::new(FixedMetric(None)),
            Box::new(Recording {
                who,
                shared: shared.clone(),
            }),
            ControllerMetrics::new("model"),
        )
        .with_leadership(rx);
        tokio::spawn(ctl.run(std::future::pending()))
    };
    let a = start("a", 2000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = start("b", 5000);
    a.await.expect("a ran").expect("a ok");
    b.await.expect("b ran").expect("b ok");
    let log = shared.lock().expect("lock").1.clone();
    let last_a = log
        .iter()
        .filter(|(_, w)| *w == "a")
        .map(|(t, _)| *t)
        .max()
        .expect("a acted");
    let first_b = log
        .iter()
        .filter(|(_, w)| *w == "b")
        .map(|(t, _)| *t)
        .min()
        .expect("b acted after a left");
    assert!(first_b > last_a, "b acted while a was leading");
}

/// A future that resolves after `ms` milliseconds (the elector's stop signal).
fn tokio_util_like_stop(ms: u64) -> impl std::future::Future<Output = ()> + Send {
    tokio::time::sleep(Duration::from_millis(ms))
}

/// A fake Prometheus answering `/api/v1/query` with `answer`, recording the queries.
async fn start_prometheus(answer: Value, seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let app = Router::new().route(
        "/api/v1/query",
        get(move |uri: axum::http::Uri| {
            let answer = answer.clone();
            let seen = seen.clone();
            async move {
                let query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "query")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                seen.lock().expect("lock").push(query);
                ([("content-type", "application/json")], answer.to_string()).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_source_runs_cortex_query_and_treats_empty_as_missing() {
    use autoscaler::controller::prometheus::PrometheusSource;
    let spec = MetricSpec::InFlightWindowAverage {
        sample_interval: Duration::from_secs(1),
        window: Duration::from_secs(60),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = start_prometheus(
        json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1700000000.0, "3.5"]}]}}),
        seen.clone(),
    )
    .await;
    let http = autoscaler::controller::reqwest::Client::new();
    let mut source = PrometheusSource::new(
        http.clone(),
        format!("http://{addr}"),
        &spec,
        "cortex_in_flight_requests",
        "model",
        Duration::from_secs(2),
    )
    .expect("source");
    let r = source.observe(Duration::ZERO).await.expect("reading");
    assert_eq!(r.metric, Some(3.5));
    assert_eq!(
        seen.lock().expect("lock")[0],
        "sum(sum_over_time(cortex_in_flight_requests{api_name=\"model\"}[60s])) / max(count_over_time(cortex_in_flight_requests{api_name=\"model\"}[60s]))"
    );
    let empty = start_prometheus(
        json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
        Arc::new(Mutex::new(Vec::new())),
    )
    .await;
    let mut source = PrometheusSource::new(
        http,
        format!("http://{empty}"),
        &spec,
        "cortex_in_flight_requests",
        "model",
        Duration::from_secs(2),
    )
    .expect("source");
    assert_eq!(
        source
            .observe(Duration::ZERO)
            .await
            .expect("reading")
            .metric,
        None
    );
}
