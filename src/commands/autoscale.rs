//! `simctl autoscale`: the simulator's autoscaling policy, run for real against a Deployment,
//! local `simctl serve` replicas, or nothing (dry run).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use autoscaler::controller::lease::{LeaderElector, LeaseSettings};
use autoscaler::controller::local;
use autoscaler::controller::prometheus::{self, PrometheusSource};
use autoscaler::controller::source::{
    KubePods, ScrapeSettings, ScrapeSource, StaticTargets, Target, Targets,
};
use autoscaler::controller::{
    self, backoff::Backoff, Actuator, Controller, ControllerMetrics, ControllerSettings,
    DecisionStep, DryRun, KubeScale, MetricsSource,
};
use autoscaler::controller::{kube, reqwest};
use clap::{Args, ValueEnum};
use sim::Scenario;
use tokio_util::sync::CancellationToken;

use super::replicas::{start_local, ReplicaArgs};
use super::{duration_arg, outln, pick_api, terminated, write_atomically, Failure};

/// Where replicas are changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ActuatorKind {
    /// Patch the `scale` subresource of a Deployment (in-cluster config or kubeconfig).
    Kubernetes,
    /// Start and stop `simctl serve` processes behind a reverse proxy on this machine.
    Local,
    /// Only log what would be done.
    DryRun,
}

/// Where the policy's metric comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SourceKind {
    /// Scrape the pods' /metrics directly and compute the windowed average here.
    Scrape,
    /// Run the real autoscaler's query on a Prometheus server (--prometheus-url).
    Prometheus,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line (for log pipelines).
    Json,
}

/// Arguments of `simctl autoscale`.
#[derive(Args)]
#[command(
    after_help = "The policy is the API's [apis.autoscaling] block of the scenario: the \
same file and syntax as `simctl run`, so a tuned configuration deploys unchanged.\n\n\
Examples:\n  \
simctl autoscale scenarios/step-cortex.toml --actuator local --proxy-listen 127.0.0.1:8000\n  \
simctl autoscale /config/scenario.toml --api model --actuator kubernetes --deployment model \\\n    \
--metrics prometheus --prometheus-url http://prometheus:9090 --leader-election --listen 0.0.0.0:9090\n  \
simctl autoscale scenario.toml --actuator dry-run --targets http://127.0.0.1:8080"
)]
pub(crate) struct AutoscaleArgs {
    /// Scenario file whose API's `[apis.autoscaling]` is the policy to run.
    pub scenario: PathBuf,
    /// The scenario's API (needed when it has several).
    #[arg(long)]
    pub api: Option<String>,
    /// What to scale.
    #[arg(long, value_enum, default_value = "dry-run")]
    pub actuator: ActuatorKind,
    /// Where the metric comes from.
    #[arg(long, value_enum, default_value = "scrape")]
    pub metrics: SourceKind,
    /// Prometheus base URL, for --metrics prometheus.
    #[arg(long)]
    pub prometheus_url: Option<String>,
    /// With --actuator local: keep this file a Prometheus `file_sd_configs` target list of the
    /// local replicas (one group per replica, labelled `pod`), so a real Prometheus scrapes
    /// them as it would scrape a Deployment's pods.
    #[arg(long, value_name = "PATH")]
    pub prometheus_file_sd: Option<PathBuf>,
    /// Pods to scrape (base URLs, comma-separated); by default the local replicas or the
    /// Deployment's pods.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// The in-flight gauge: cortex_in_flight_requests (Cortex's 10 s mean) or
    /// simctl_in_flight_requests (instantaneous, what the simulator samples).
    #[arg(long, default_value = "cortex_in_flight_requests")]
    pub metric_name: String,
    /// Hold the replica count when the newest metric sample is older than this.
    #[arg(long, value_parser = duration_arg, default_value = "5s")]
    pub stale_after: Duration,
    /// Kubernetes namespace (default: the pod's or the kubeconfig's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Deployment to scale (default: the API's name).
    #[arg(long)]
    pub deployment: Option<String>,
    /// Label selector of the pods to scrape (default: app=<deployment>).
    #[arg(long)]
    pub pod_selector: Option<String>,
    /// Port of the pods' /metrics.
    #[arg(long, default_value_t = 8080)]
    pub pod_port: u16,
    /// Act only while holding a Lease, so several controller replicas never both act.
    #[arg(long)]
    pub leader_election: bool,
    /// Lease name.
    #[arg(long, default_value = "simctl-autoscaler")]
    pub lease_name: String,
    /// This candidate's identity (default: $POD_NAME, else the host name and process id).
    #[arg(long)]
    pub identity: Option<String>,
    /// Lease validity without renewal.
    #[arg(long, value_parser = duration_arg, default_value = "15s")]
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long stops acting.
    #[arg(long, value_parser = duration_arg, default_value = "10s")]
    pub renew_deadline: Duration,
    /// How often to acquire or renew the Lease.
    #[arg(long, value_parser = duration_arg, default_value = "2s")]
    pub retry_period: Duration,
    /// Address of the controller's /metrics and /healthz (port 0 picks one, printed at start).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Address of the local actuator's reverse proxy (port 0 picks one, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub proxy_listen: SocketAddr,
    /// Append one JSON line per tick (metric, recommendation, target) to this file.
    #[arg(long)]
    pub decisions: Option<PathBuf>,
    /// Stop after this long (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Override the policy's tick interval (testing only: the policy's is what real systems use).
    #[arg(long, value_parser = duration_arg)]
    pub tick: Option<Duration>,
    /// Log format (stderr); the level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What the local replicas are (--actuator local).
    #[command(flatten)]
    pub replica: ReplicaArgs,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn identity(args: &AutoscaleArgs) -> String {
    if let Some(id) = &args.identity {
        return id.clone();
    }
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "simctl".into());
    format!("{host}-{}", std::process::id())
}

async fn bind(
    addr: SocketAddr,
    what: &str,
    flag: &str,
) -> Result<tokio::net::TcpListener, Failure> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::BadInput(format!("{flag}: cannot listen on {addr}: {e}")))?;
    let bound = l.local_addr().context("listener address")?;
    outln!("{what} listening on http://{bound}");
    Ok(l)
}

/// Run the controller until Ctrl-C, SIGTERM or --duration.
pub(crate) fn run(mut args: AutoscaleArgs) -> Result<(), Failure> {
    // An empty --prometheus-url (e.g. an unset Helm value) means none.
    args.prometheus_url = args.prometheus_url.filter(|u| !u.trim().is_empty());
    let scenario = Scenario::load(&args.scenario).map_err(|e| Failure::BadInput(e.to_string()))?;
    let api = pick_api(&scenario, args.api.as_deref(), &args.scenario)?.clone();
    let step = api.autoscaling.decision_step();
    let spec = step.metric_spec();
    if args.metrics == SourceKind::Prometheus && args.prometheus_url.is_none() {
        return Err(Failure::BadInput(
            "--metrics prometheus needs --prometheus-url".into(),
        ));
    }
    if args.metrics == SourceKind::Scrape
        && args.actuator == ActuatorKind::DryRun
        && args.targets.is_empty()
        && !matches!(spec, autoscaler::MetricSpec::None)
    {
        return Err(Failure::BadInput(
            "--actuator dry-run with --metrics scrape needs --targets (the pods to scrape)".into(),
        ));
    }
    if args.prometheus_file_sd.is_some() && args.actuator != ActuatorKind::Local {
        return Err(Failure::BadInput(
            "--prometheus-file-sd lists the local replicas: it needs --actuator local".into(),
        ));
    }
    if args.tick.is_some_and(|t| t.is_zero()) {
        return Err(Failure::BadInput(
            "--tick: expected a positive duration".into(),
        ));
    }
    let lease_settings = LeaseSettings {
        name: args.lease_name.clone(),
        identity: identity(&args),
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    };
    if args.leader_election {
        lease_settings
            .validate()
            .map_err(|e| Failure::BadInput(e.to_string()))?;
    }
    init_logs(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminated() => {}
                }
                stop.cancel();
            });
        }
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let metrics = ControllerMetrics::new(&api.name);
        let status = bind(args.listen, "status (/metrics, /healthz)", "--listen").await?;
        {
            let stop = stop.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    controller::status::serve(
                        status,
                        metrics,
                        async move { stop.cancelled().await },
                    )
                    .await
                {
                    tracing::error!(error = %e, "status server stopped");
                }
            });
        }
        let needs_kube = args.actuator == ActuatorKind::Kubernetes || args.leader_election;
        let kube = if needs_kube {
            Some(
                kube::Client::try_default()
                    .await
                    .context("cannot configure the Kubernetes client (in-cluster or kubeconfig)")?,
            )
        } else {
            None
        };
        let namespace = match (&args.namespace, &kube) {
            (Some(ns), _) => ns.clone(),
            (None, Some(c)) => c.default_namespace().to_string(),
            (None, None) => "default".into(),
        };
        let deployment = args.deployment.clone().unwrap_or_else(|| api.name.clone());
        let mut pool_targets: Option<Arc<dyn Targets>> = None;
        let mut pool = None;
        let actuator: Box<dyn Actuator> = match args.actuator {
            ActuatorKind::DryRun => Box::new(DryRun::new(step_initial(&step))),
            ActuatorKind::Kubernetes => {
                let client = kube.clone().context("no Kubernetes client")?;
                Box::new(KubeScale::new(
                    kube::Api::namespaced(client, &namespace),
                    deployment.clone(),
                ))
            }
            ActuatorKind::Local => {
                let proxy = bind(args.proxy_listen, "proxy", "--proxy-listen").await?;
                let replicas = start_local(
                    &args.scenario,
                    &api,
                    &args.replica,
                    proxy,
                    http.clone(),
                    stop.clone(),
                )?;
                if let Some(path) = args.prometheus_file_sd.clone() {
                    // Fail at start-up, not on the first change, when the file cannot be written.
                    write_file_sd(&path, &[])?;
                    tokio::spawn(keep_file_sd(path, replicas.pool(), stop.clone()));
                }
                pool_targets = Some(Arc::new(replicas.pool()));
                pool = Some(replicas.pool());
                Box::new(replicas)
            }
        };
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let source: Box<dyn MetricsSource> = match args.metrics {
            SourceKind::Prometheus => Box::new(
                PrometheusSource::new(
                    http.clone(),
                    args.prometheus_url.clone().unwrap_or_default(),
                    &spec,
                    &args.metric_name,
                    &api.name,
                    Duration::from_secs(5),
                )
                .map_err(|e| Failure::BadInput(e.to_string()))?,
            ),
            SourceKind::Scrape => {
                let targets: Arc<dyn Targets> = if !args.targets.is_empty() {
                    Arc::new(StaticTargets(
                        args.targets
                            .iter()
                            .map(|u| Target { url: u.clone() })
                            .collect(),
                    ))
                } else if let Some(t) = pool_targets {
                    t
                } else {
                    let client = kube.clone().context("no Kubernetes client")?;
                    let selector = args
                        .pod_selector
                        .clone()
                        .unwrap_or_else(|| format!("app={deployment}"));
                    Arc::new(KubePods::new(
                        kube::Api::namespaced(client, &namespace),
                        selector,
                        args.pod_port,
                    ))
                };
                let mut settings = ScrapeSettings::new(&api.name);
                settings.metric_name = args.metric_name.clone();
                settings.sample_interval = api.autoscaling.scrape_interval;
                settings.stale_after = args.stale_after;
                Box::new(
                    ScrapeSource::start(spec.clone(), settings, targets, http.clone())
                        .map_err(|e| Failure::BadInput(e.to_string()))?,
                )
            }
        };
        let tick = args.tick.unwrap_or_else(|| step.tick_interval());
        let settings = ControllerSettings {
            api_name: api.name.clone(),
            tick_interval: args.tick,
            apply_initial: args.actuator != ActuatorKind::Kubernetes,
            duration: args.duration,
            decisions_out: args.decisions.clone(),
            retry: Backoff {
                budget: tick.mul_f64(0.8).max(Duration::from_millis(200)),
                ..Backoff::default()
            },
        };
        let mut ctl = Controller::new(settings, step, source, actuator, metrics.clone());
        if args.leader_election {
            let client = kube.clone().context("no Kubernetes client")?;
            let elector =
                LeaderElector::new(kube::Api::namespaced(client, &namespace), lease_settings)
                    .map_err(|e| Failure::BadInput(e.to_string()))?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            let stop = stop.clone();
            tokio::spawn(elector.run(tx, async move { stop.cancelled().await }));
            ctl = ctl.with_leadership(rx);
        }
        if let Some(pool) = &pool {
            ctl = ctl.with_activator(pool.activator());
        }
        // A replica command that dies before it is ever ready stops the controller with its
        // output, rather than leaving it to retry forever.
        let failed = Arc::new(std::sync::Mutex::new(None));
        if let Some(pool) = pool {
            let (stop, failed) = (stop.clone(), failed.clone());
            tokio::spawn(async move {
                loop {
                    if let Some(f) = pool.failure() {
                        if let Ok(mut slot) = failed.lock() {
                            *slot = Some(f);
                        }
                        stop.cancel();
                        return;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            });
        }
        let stopped = stop.clone();
        let decisions = ctl
            .run(async move { stopped.cancelled().await })
            .await
            .map_err(|e| match e {
                controller::ControllerError::Config(m) => Failure::BadInput(m),
                other => Failure::Other(other.into()),
            })?;
        stop.cancel();
        if let Some(f) = failed.lock().ok().and_then(|mut f| f.take()) {
            return Err(Failure::Other(anyhow::anyhow!("--replica-cmd: {f}")));
        }
        let changes = decisions
            .iter()
            .filter(|d| d.target != d.spec_replicas)
            .count();
        outln!(
            "stopped after {} ticks, {changes} scale changes",
            decisions.len()
        );
        // Give the lease release a moment to go out.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    })
}

/// Write the replicas at `urls` as a Prometheus `file_sd_configs` file, atomically (Prometheus
/// watches the file and must never read half of it).
fn write_file_sd(path: &std::path::Path, urls: &[String]) -> anyhow::Result<()> {
    let groups = prometheus::file_sd_groups(urls);
    let mut bytes = serde_json::to_vec_pretty(&groups).context("file_sd JSON")?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
        .with_context(|| format!("--prometheus-file-sd {}", path.display()))
}

/// Rewrite the file_sd file whenever the local replicas change, until stopped.
async fn keep_file_sd(path: PathBuf, pool: local::Pool, stop: CancellationToken) {
    let mut written = Vec::new();
    loop {
        let urls = pool.urls();
        if urls != written {
            match write_file_sd(&path, &urls) {
                Ok(()) => written = urls,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot update the Prometheus targets")
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// The replicas a dry run starts from.
fn step_initial(step: &DecisionStep) -> u32 {
    step.bounds().min_replicas.max(1)
}
