//! `simctl serve`: emulated inference replicas on 127.0.0.1 (or another local address).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use loadgen::replica::{self, ReplicaSpec};
use sim::service_time::ServiceTime;
use sim::{Scenario, SimTime};

use super::{duration_arg, outln, pick_api, terminated, Failure};

/// Arguments of `simctl serve`.
#[derive(Args)]
#[command(after_help = "Endpoints of each replica:\n  \
POST /  (or /predict)  a prediction; the service time is drawn from the model, or taken from the\n                       x-service-time-ms header or a JSON body field service_time_ms\n  \
GET /healthz           200 once the startup delay has passed, 503 before\n  \
GET /metrics           Prometheus text: cortex_in_flight_requests (Cortex's 1 s-sampled, 10 s-published\n                       mean), simctl_in_flight_requests, simctl_requests_total{status}, latency histogram\n\n\
Examples:\n  simctl serve --service-time 100ms --threads 4 --max-queue-length 8\n  \
simctl serve scenarios/quickstart.toml --replicas 3 --port 8080")]
pub(crate) struct ServeArgs {
    /// Take the replica's processes, threads, queue, startup time and service-time model from an
    /// API of this scenario (flags below override).
    pub scenario: Option<PathBuf>,
    /// The scenario's API to emulate (needed when it has several).
    #[arg(long)]
    pub api: Option<String>,
    /// How many replicas to start, on consecutive ports from --port.
    #[arg(long, default_value_t = 1)]
    pub replicas: u16,
    /// First port; 0 picks free ports (printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Server processes per replica, each with its own queue.
    #[arg(long)]
    pub processes: Option<u32>,
    /// Worker threads per process.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Requests queued per replica beyond its workers before it answers 503.
    #[arg(long)]
    pub max_queue_length: Option<u32>,
    /// Constant service time (e.g. 100ms); with --exponential, the mean of an exponential one.
    #[arg(long, value_parser = duration_arg)]
    pub service_time: Option<Duration>,
    /// Draw exponential service times with mean --service-time.
    #[arg(long, requires = "service_time")]
    pub exponential: bool,
    /// Time before /healthz reports ready and predictions are served.
    #[arg(long, value_parser = duration_arg)]
    pub startup_delay: Option<Duration>,
    /// Seed of the service-time and routing draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of the first replica: replica i draws from its own stream and is labelled
    /// `first_index + i`, so replicas started one per process (as `simctl autoscale --actuator
    /// local` does) do not all draw the same service times.
    #[arg(long, default_value_t = 0)]
    pub first_index: u32,
    /// Close a connection that sends no request head for this long (idle keep-alive and
    /// slowloris connections alike).
    #[arg(long, value_parser = duration_arg, default_value = "30s")]
    pub idle_timeout: Duration,
}

fn spec_from(args: &ServeArgs) -> Result<ReplicaSpec, Failure> {
    let mut spec = ReplicaSpec {
        api_name: "api".into(),
        processes: 1,
        threads: 1,
        max_queue_length: 100,
        startup_delay: Duration::ZERO,
        service_time: ServiceTime::Constant(SimTime::from_secs_f64(0.1)),
        seed: args.seed,
        sample_interval: Duration::from_secs(1),
        publish_interval: Duration::from_secs(10),
        idle_timeout: args.idle_timeout,
    };
    if args.idle_timeout.is_zero() {
        return Err(Failure::BadInput(
            "--idle-timeout: expected a duration > 0".into(),
        ));
    }
    if let Some(path) = &args.scenario {
        let scenario = Scenario::load(path).map_err(|e| Failure::BadInput(e.to_string()))?;
        let api = pick_api(&scenario, args.api.as_deref(), path)?;
        spec.api_name = api.name.clone();
        spec.processes = api.processes;
        spec.threads = api.threads;
        spec.max_queue_length = api.max_queue_length;
        spec.startup_delay = api.startup_time.as_duration();
        spec.service_time = api.service_time.clone();
    } else if let Some(name) = &args.api {
        spec.api_name = name.clone();
    }
    for (value, field, name) in [
        (args.processes, &mut spec.processes, "--processes"),
        (args.threads, &mut spec.threads, "--threads"),
    ] {
        if let Some(v) = value {
            if v == 0 {
                return Err(Failure::BadInput(format!("{name}: expected at least 1")));
            }
            *field = v;
        }
    }
    if let Some(q) = args.max_queue_length {
        spec.max_queue_length = q;
    }
    if let Some(d) = args.startup_delay {
        spec.startup_delay = d;
    }
    if let Some(d) = args.service_time {
        spec.service_time = if args.exponential {
            if d.is_zero() {
                return Err(Failure::BadInput(
                    "--service-time: an exponential mean must be positive".into(),
                ));
            }
            ServiceTime::Exponential {
                mean_s: d.as_secs_f64(),
            }
        } else {
            ServiceTime::Constant(SimTime::from(d))
        };
    }
    if args.replicas == 0 {
        return Err(Failure::BadInput("--replicas: expected at least 1".into()));
    }
    Ok(spec)
}

/// Start the replicas and serve until Ctrl-C.
pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let spec = spec_from(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut servers = tokio::task::JoinSet::new();
        for i in 0..args.replicas {
            let index = args.first_index.saturating_add(u32::from(i));
            let port = if args.port == 0 {
                0
            } else {
                args.port.checked_add(i).ok_or_else(|| {
                    Failure::BadInput(format!(
                        "--port {} + {} replicas runs past port 65535",
                        args.port, args.replicas
                    ))
                })?
            };
            let addr = SocketAddr::new(args.host, port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::BadInput(format!("cannot listen on {addr}: {e}")))?;
            let bound = listener.local_addr().context("listener address")?;
            outln!(
                "replica {index} of API {:?} listening on {} (workers {}×{}, queue {}, capacity {})",
                spec.api_name,
                replica::url_of(bound),
                spec.processes,
                spec.threads,
                spec.max_queue_length,
                spec.capacity()
            );
            let stop = shutdown.clone();
            servers.spawn(replica::serve(
                listener,
                spec.clone(),
                index,
                async move { stop.cancelled().await },
            ));
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
            Some(ended) = servers.join_next() => {
                ended.context("a replica task failed")?.context("a replica stopped")?;
            }
        }
        shutdown.cancel();
        while servers.join_next().await.is_some() {}
        eprintln!("stopped");
        Ok(())
    })
}
