//! The local replicas `simctl autoscale --actuator local` and `simctl validate` run: `simctl
//! serve` processes, or the user's own server (`--replica-cmd`), behind the least-request proxy.

use std::time::Duration;

use anyhow::Context;
use autoscaler::controller::local::{
    self, HoldSettings, Launch, LocalReplicas, LocalSettings, ProxySettings, QueueSettings,
    ReplicaCommand,
};
use autoscaler::controller::reqwest;
use clap::{Args, ValueEnum};
use sim::scenario::Api;
use tokio_util::sync::CancellationToken;

use super::Failure;

/// On or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// What the local replicas are and how the proxy reaches them.
#[derive(Args, Clone, Debug)]
pub(crate) struct ReplicaArgs {
    /// Run your own server as the replicas instead of `simctl serve`: a shell command line in
    /// which {port} (required: the replica must listen on 127.0.0.1:{port}), {processes} and
    /// {threads} (the API's processes_per_replica and threads_per_process) and {index} (the
    /// replica's number, 0, 1, … in start order) are replaced. Each replica runs in a process
    /// group of its own, stopped whole (SIGTERM, then SIGKILL) on scale-down, exit and Ctrl-C.
    /// The proxy measures what it sees from outside (in flight per replica, latency) and exports
    /// it as the metrics the controller scrapes, and enforces max_concurrency +
    /// max_queue_length per replica (503 beyond, as Cortex's proxy did). Example:
    /// --replica-cmd 'python3 examples/python-predictor/serve.py --port {port} --processes {processes} --threads {threads}'
    #[arg(long, value_name = "TEMPLATE")]
    pub replica_cmd: Option<String>,
    /// With --replica-cmd: the path that answers 2xx once a replica is ready to serve (polled
    /// every 100 ms; until then it gets no request).
    #[arg(long, value_name = "PATH", default_value = "/healthz")]
    pub readiness_path: String,
    /// Keep the proxy's connections to the replicas open between requests (on, as every reverse
    /// proxy does) or open a new one per request (off). It matters to multi-process servers
    /// that share one listening socket, like uvicorn --workers: a process takes a connection,
    /// not a request, so with keep-alive a request goes where its connection was accepted.
    #[arg(long, value_enum, value_name = "ON|OFF", default_value = "on")]
    pub replica_keep_alive: Switch,
}

impl ReplicaArgs {
    /// The foreign server's command of `api`, checked, when one was given.
    pub(crate) fn command(&self, api: &Api) -> Result<Option<ReplicaCommand>, Failure> {
        let Some(template) = &self.replica_cmd else {
            return Ok(None);
        };
        let cmd = ReplicaCommand {
            template: template.clone(),
            processes: api.processes,
            threads: api.threads,
            readiness_path: self.readiness_path.clone(),
        };
        cmd.check().map_err(Failure::BadInput)?;
        if api.llm.is_some() {
            return Err(Failure::BadInput(
                "--replica-cmd runs request-level servers; an LLM API's replicas are `simctl serve --llm`".into(),
            ));
        }
        Ok(Some(cmd))
    }
}

/// Local replicas of `api` (none started yet) and the least-request proxy in front of them on
/// `proxy`, which runs until `stop`: `simctl serve SCENARIO --api API` processes, or the
/// `--replica-cmd` server with an exporter of what the proxy measures. An API that scales to
/// zero gets the activator: requests are held (one replica's capacity, up to the API's timeout
/// or 60 s) while no replica is ready. An async API (`kind = "async"`) gets the gateway instead:
/// requests are queued and answered with an id to poll, and each replica's dequeuers take them.
pub(crate) fn start_local(
    scenario: &std::path::Path,
    api: &Api,
    replica: &ReplicaArgs,
    proxy: tokio::net::TcpListener,
    http: reqwest::Client,
    stop: CancellationToken,
) -> Result<LocalReplicas, Failure> {
    if let Some(t) = api
        .tenants
        .iter()
        .find(|t| t.rate_limit.is_some() || t.max_concurrency.is_some())
    {
        // Each local replica is its own `simctl serve` process: limits kept there would hold
        // per replica, not across the API as a gateway's do.
        return Err(Failure::BadInput(format!(
            "API {:?}: tenant {:?} has a rate or concurrency limit, which local replicas (one process each) cannot share; `simctl serve SCENARIO --replicas N` applies them across its replicas",
            api.name, t.name
        )));
    }
    let foreign = replica.command(api)?;
    let launch = match &foreign {
        Some(cmd) => Launch::Command(cmd.clone()),
        None => {
            let program = std::env::current_exe().context("cannot find the simctl binary")?;
            let scenario_arg = scenario
                .to_str()
                .context("the scenario path is not UTF-8")?
                .to_string();
            Launch::Simctl {
                program,
                args: vec![
                    "serve".into(),
                    scenario_arg,
                    "--api".into(),
                    api.name.clone(),
                ],
            }
        }
    };
    let replicas = LocalReplicas::new(LocalSettings::launching(launch), http.clone());
    let routed = replicas.pool();
    // An async API's front door is the gateway: requests wait in its queue (never refused),
    // not in the activator.
    let queue = api.is_async.then(|| QueueSettings {
        workers: api.processes * api.threads,
        receive_wait: api.dequeuer.0.as_duration(),
        empty_receive_sleep: api.dequeuer.1.as_duration(),
    });
    let settings = ProxySettings {
        hold: (api.autoscaling.holds_requests_at_zero() && queue.is_none()).then(|| HoldSettings {
            capacity: api.capacity(),
            timeout: api
                .timeout
                .map_or(Duration::from_secs(60), sim::SimTime::as_duration),
        }),
        replica_limit: foreign.as_ref().map(|_| u64::from(api.capacity())),
        queue,
    };
    let client = match replica.replica_keep_alive {
        Switch::On => http,
        Switch::Off => reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .context("cannot build the proxy's HTTP client")?,
    };
    let exported = local::Exported {
        replicas: foreign.is_some(),
        activator: (settings.hold.is_some() || settings.queue.is_some())
            && matches!(
                api.autoscaling.decision_step().metric_spec(),
                autoscaler::MetricSpec::InFlightWindowAverage { .. }
                    | autoscaler::MetricSpec::StableAndPanicConcurrency { .. }
            ),
    };
    if exported.replicas || exported.activator {
        let exporter = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .context("cannot open the metrics exporter's port on 127.0.0.1")?;
        let stop = stop.clone();
        let serve = local::serve_exporter(exporter, routed.clone(), exported, async move {
            stop.cancelled().await
        })
        .context("metrics exporter")?;
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "metrics exporter stopped");
            }
        });
    }
    tokio::spawn(async move {
        if let Err(e) = local::serve_proxy(proxy, routed, client, settings, async move {
            stop.cancelled().await
        })
        .await
        {
            tracing::error!(error = %e, "proxy stopped");
        }
    });
    Ok(replicas)
}
