//! `simctl serve`: emulated inference replicas on 127.0.0.1 (or another local address) —
//! request-level replicas with the simulator's queueing, or (`--llm`, or a scenario API with
//! `[apis.llm]`) emulated vLLM replicas running the `llm` crate's engine in real time.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use autoscaler::controller::local::{self, QueueSettings};
use autoscaler::controller::reqwest;
use clap::Args;
use loadgen::llm_replica::{self, LlmReplicaSpec};
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
Endpoints of an --llm replica (OpenAI-compatible, vLLM's metrics):\n  \
POST /v1/completions       prompt: a string (words × 4/3 tokens, rounded up) or a list of\n                             token ids (counted exactly); header x-prompt-tokens overrides.\n                             max_tokens (default 16) are all generated, each \" token\";\n                             stream: true answers one server-sent event per token, then [DONE]\n  \
POST /v1/chat/completions  the same with messages (their words estimate the prompt)\n  \
GET /v1/models             the one model (--model-name)\n  \
GET /health                200 once the startup delay has passed, 503 before\n  \
GET /metrics               vllm:num_requests_running, vllm:num_requests_waiting,\n                             vllm:kv_cache_usage_perc, vllm:*_tokens_total,\n                             vllm:num_preemptions_total, vllm:request_success_total,\n                             TTFT, inter-token and e2e latency histograms (vLLM's buckets)\n\n\
Examples:\n  simctl serve --service-time 100ms --threads 4 --max-queue-length 8\n  \
simctl serve scenarios/quickstart.toml --replicas 3 --port 8080\n  \
simctl serve --llm --preset qwen2.5-7b/h100 --kv-cache-tokens 400000\n  \
simctl serve --llm --step-base 10ms --step-per-prefill-token 0.05ms --step-per-decode-token 0.03ms\n  \
simctl serve scenarios/llm-hpa.toml --api chat")]
pub(crate) struct ServeArgs {
    /// Take the replica's processes, threads, queue, startup time and service-time model from an
    /// API of this scenario (flags below override); an API with `[apis.llm]` is served as an
    /// emulated vLLM replica with its engine, KV cache (that of its first node group) and MIG
    /// slow-down.
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
    /// An async API (kind = "async"): also serve Cortex's async gateway on this port of --host
    /// in front of the replicas — POST submits and answers {"id"}, GET /<id> answers the status
    /// and then the result — with each replica's dequeuer taking the queued requests (its
    /// workers and poll cycle from the scenario). 0 picks a free port.
    #[arg(long, value_name = "PORT", requires = "scenario")]
    pub gateway: Option<u16>,
    /// A scenario API whose traffic is a sum of tenants: the header naming each request's
    /// tenant (what `simctl loadgen --tenant-header` sends). The replicas apply the tenants'
    /// rate and concurrency limits (429), shared by all the replicas of this process as a
    /// gateway's are, and order each process's queue by `[apis.fairness] queue`.
    #[arg(long, default_value = "x-tenant", value_name = "NAME")]
    pub tenant_header: String,
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// The emulated vLLM replica's flags (`--llm`); with a scenario's LLM API they override it.
#[derive(Args)]
#[command(next_help_heading = "Emulated vLLM replica (--llm)")]
pub(crate) struct LlmArgs {
    /// Serve an emulated vLLM replica (OpenAI-compatible API, vLLM's metrics) instead of a
    /// request-level one: the simulator's token-level engine, in real time.
    #[arg(long)]
    pub llm: bool,
    #[arg(long, value_parser = preset_arg, help = preset_help())]
    pub preset: Option<&'static llm::StepPreset>,
    /// Fixed time of an iteration (e.g. 10ms, fractions allowed: 7.05ms).
    #[arg(long, value_parser = coefficient_arg)]
    pub step_base: Option<f64>,
    /// Time per prompt token computed in an iteration (e.g. 0.05ms or 47.8us).
    #[arg(long, value_parser = coefficient_arg)]
    pub step_per_prefill_token: Option<f64>,
    /// Time per sequence decoding a token in an iteration (e.g. 0.02ms).
    #[arg(long, value_parser = coefficient_arg)]
    pub step_per_decode_token: Option<f64>,
    /// KV-cache capacity of a replica, tokens (rounded down to whole blocks) [default: 200000].
    #[arg(long)]
    pub kv_cache_tokens: Option<u64>,
    /// Most sequences running at once (vLLM's --max-num-seqs) [default: 256].
    #[arg(long)]
    pub max_num_seqs: Option<u32>,
    /// Most tokens computed per iteration (vLLM's --max-num-batched-tokens) [default: 2048].
    #[arg(long)]
    pub max_num_batched_tokens: Option<u32>,
    /// Tokens per KV-cache block (vLLM's --block-size) [default: 16].
    #[arg(long)]
    pub block_size: Option<u32>,
    /// Do not split long prompts across iterations (a prompt waits for a whole iteration).
    #[arg(long)]
    pub no_chunked_prefill: bool,
    /// Requests waiting for admission before a new one gets 503 [default: no limit, as vLLM].
    #[arg(long)]
    pub max_waiting: Option<u32>,
    /// The model name served (/v1/models, answers, the model_name label) [default: simctl-llm,
    /// or the scenario's API name].
    #[arg(long)]
    pub model_name: Option<String>,
}

impl LlmArgs {
    /// The flags given, by name (to refuse them where they do not apply).
    fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        for (set, name) in [
            (self.preset.is_some(), "--preset"),
            (self.step_base.is_some(), "--step-base"),
            (
                self.step_per_prefill_token.is_some(),
                "--step-per-prefill-token",
            ),
            (
                self.step_per_decode_token.is_some(),
                "--step-per-decode-token",
            ),
            (self.kv_cache_tokens.is_some(), "--kv-cache-tokens"),
            (self.max_num_seqs.is_some(), "--max-num-seqs"),
            (
                self.max_num_batched_tokens.is_some(),
                "--max-num-batched-tokens",
            ),
            (self.block_size.is_some(), "--block-size"),
            (self.no_chunked_prefill, "--no-chunked-prefill"),
            (self.max_waiting.is_some(), "--max-waiting"),
            (self.model_name.is_some(), "--model-name"),
        ] {
            if set {
                given.push(name);
            }
        }
        given
    }
}

/// The help of `--preset`, with the names it takes.
fn preset_help() -> String {
    let names: Vec<&str> = llm::STEP_PRESETS.iter().map(|p| p.name).collect();
    format!(
        "Published step-time coefficients (BLIS's fits to vLLM runs): {}; --step-* flags override single coefficients",
        names.join(", ")
    )
}

/// `--preset NAME`: one of [`llm::STEP_PRESETS`].
fn preset_arg(name: &str) -> Result<&'static llm::StepPreset, String> {
    llm::STEP_PRESETS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = llm::STEP_PRESETS.iter().map(|p| p.name).collect();
            format!("unknown preset; expected one of {}", names.join(", "))
        })
}

/// A step-time coefficient such as `5ms`, `0.05ms`, `47.8us`, in nanoseconds.
fn coefficient_arg(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return Err(
                "expected a duration such as 5ms, 0.05ms or 47.8us (units ns, us, ms, s)".into(),
            )
        }
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v * scale <= 3.6e12 => Ok(v * scale),
        _ => Err("expected a duration such as 5ms, 0.05ms or 47.8us, at most an hour".into()),
    }
}

/// What `simctl serve` starts.
enum Replicas {
    /// Request-level replicas.
    Request(ReplicaSpec),
    /// Emulated vLLM replicas.
    Llm(LlmReplicaSpec),
}

/// The emulated vLLM replica of `args`: from the scenario's LLM API (`api`, if any), overridden
/// by the flags.
fn llm_spec_from(
    args: &ServeArgs,
    api: Option<&sim::scenario::Api>,
) -> Result<LlmReplicaSpec, Failure> {
    let bad = Failure::BadInput;
    for (set, name) in [
        (args.processes.is_some(), "--processes"),
        (args.threads.is_some(), "--threads"),
        (args.max_queue_length.is_some(), "--max-queue-length"),
        (args.service_time.is_some(), "--service-time"),
    ] {
        if set {
            return Err(bad(format!(
                "{name} is for request-level replicas: an LLM replica's concurrency is --max-num-seqs, its queue --max-waiting and its time the step model"
            )));
        }
    }
    let flags = &args.llm;
    let model = api.and_then(|a| a.llm.as_deref());
    let mut spec = match (api, model) {
        (Some(api), Some(model)) => {
            let mut spec = LlmReplicaSpec::new(api.name.clone(), model.engine);
            spec.service_scale = api.service_scale;
            spec.max_waiting = model.max_waiting;
            spec.startup_delay = api.startup_time.as_duration();
            spec
        }
        _ => {
            if flags.preset.is_none() && flags.step_base.is_none() {
                let names: Vec<&str> = llm::STEP_PRESETS.iter().map(|p| p.name).collect();
                return Err(bad(format!(
                    "--llm needs a step time: --preset NAME ({}) or --step-base with --step-per-prefill-token and --step-per-decode-token",
                    names.join(", ")
                )));
            }
            let engine = llm::EngineConfig {
                max_num_seqs: 256,
                max_num_batched_tokens: 2048,
                chunked_prefill: true,
                block_size: 16,
                kv_blocks: 0,
                step: llm::StepTime {
                    base_ns: 0.0,
                    per_prefill_token_ns: 0.0,
                    per_decode_token_ns: 0.0,
                },
            };
            LlmReplicaSpec::new("simctl-llm", engine)
        }
    };
    let engine = &mut spec.engine;
    if let Some(preset) = flags.preset {
        engine.step = preset.step;
    }
    for (value, field) in [
        (flags.step_base, &mut engine.step.base_ns),
        (
            flags.step_per_prefill_token,
            &mut engine.step.per_prefill_token_ns,
        ),
        (
            flags.step_per_decode_token,
            &mut engine.step.per_decode_token_ns,
        ),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    for (value, field, name) in [
        (
            flags.max_num_seqs,
            &mut engine.max_num_seqs,
            "--max-num-seqs",
        ),
        (
            flags.max_num_batched_tokens,
            &mut engine.max_num_batched_tokens,
            "--max-num-batched-tokens",
        ),
        (flags.block_size, &mut engine.block_size, "--block-size"),
    ] {
        if let Some(v) = value {
            if v == 0 {
                return Err(bad(format!("{name}: expected at least 1")));
            }
            *field = v;
        }
    }
    if flags.no_chunked_prefill {
        engine.chunked_prefill = false;
    }
    let kv_tokens = match flags.kv_cache_tokens {
        Some(t) => Some(t),
        None if model.is_none() => Some(200_000),
        None => None,
    };
    if let Some(tokens) = kv_tokens {
        let blocks = tokens / u64::from(engine.block_size);
        if blocks == 0 {
            return Err(bad(format!(
                "--kv-cache-tokens: {tokens} is less than one block of {} tokens",
                engine.block_size
            )));
        }
        engine.kv_blocks = u32::try_from(blocks)
            .map_err(|_| bad(format!("--kv-cache-tokens: {tokens} is too many")))?;
    }
    if engine.kv_blocks == 0 {
        return Err(bad(
            "the API's first node group holds no KV cache for it (give --kv-cache-tokens)".into(),
        ));
    }
    if flags.max_waiting.is_some() {
        spec.max_waiting = flags.max_waiting;
    }
    if let Some(name) = &flags.model_name {
        spec.model_name = name.clone();
    }
    if let Some(d) = args.startup_delay {
        spec.startup_delay = d;
    }
    spec.idle_timeout = args.idle_timeout;
    Ok(spec)
}

/// What to start: an LLM replica for `--llm` or a scenario's LLM API, else a request-level one.
/// What to start, and an async API's gateway settings when `--gateway` asks for one.
fn replicas_from(args: &ServeArgs) -> Result<(Replicas, Option<QueueSettings>), Failure> {
    if args.idle_timeout.is_zero() {
        return Err(Failure::BadInput(
            "--idle-timeout: expected a duration > 0".into(),
        ));
    }
    if args.replicas == 0 {
        return Err(Failure::BadInput("--replicas: expected at least 1".into()));
    }
    let scenario = match &args.scenario {
        Some(path) => Some((
            Scenario::load(path).map_err(|e| Failure::BadInput(e.to_string()))?,
            path,
        )),
        None => None,
    };
    let api = match &scenario {
        Some((scenario, path)) => Some(pick_api(scenario, args.api.as_deref(), path)?),
        None => None,
    };
    let gateway = match (args.gateway, api) {
        (None, _) => None,
        (Some(_), Some(api)) if api.is_async => Some(QueueSettings {
            workers: api.processes * api.threads,
            receive_wait: api.dequeuer.0.as_duration(),
            empty_receive_sleep: api.dequeuer.1.as_duration(),
        }),
        (Some(_), api) => {
            return Err(Failure::BadInput(format!(
                "--gateway: the API {:?} is not an async API (kind = \"async\")",
                api.map_or("", |a| a.name.as_str())
            )))
        }
    };
    let llm_api = api.is_some_and(|a| a.llm.is_some());
    if args.llm.llm || llm_api {
        if api.is_some() && !llm_api {
            return Err(Failure::BadInput(format!(
                "--llm: the API {:?} has no [apis.llm] table",
                api.map_or("", |a| a.name.as_str())
            )));
        }
        return llm_spec_from(args, api).map(|s| (Replicas::Llm(s), None));
    }
    if let Some(flag) = args.llm.given().first() {
        return Err(Failure::BadInput(format!(
            "{flag} is for emulated vLLM replicas: add --llm"
        )));
    }
    spec_from(args, api).map(|s| (Replicas::Request(s), gateway))
}

fn spec_from(args: &ServeArgs, api: Option<&sim::scenario::Api>) -> Result<ReplicaSpec, Failure> {
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
        tenants: None,
    };
    if let Some(api) = api {
        spec.api_name = api.name.clone();
        spec.processes = api.processes;
        spec.threads = api.threads;
        spec.max_queue_length = api.max_queue_length;
        spec.startup_delay = api.startup_time.as_duration();
        spec.service_time = api.service_time.clone();
        if !api.tenants.is_empty() {
            let rules = api
                .tenants
                .iter()
                .map(|t| replica::TenantRule {
                    name: t.name.clone(),
                    weight: t.weight,
                    priority: t.priority,
                    rate_limit: t.rate_limit,
                    max_concurrency: t.max_concurrency,
                })
                .collect();
            let mut policy = replica::TenantPolicy::new(rules, api.queue_discipline);
            policy.header = args.tenant_header.clone();
            spec.tenants = Some(policy);
        }
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
    Ok(spec)
}

/// Start the replicas and serve until Ctrl-C.
pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let (replicas, gateway) = replicas_from(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut servers = tokio::task::JoinSet::new();
        let mut urls = Vec::new();
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
            urls.push(replica::url_of(bound).trim_end_matches('/').to_string());
            let stop = shutdown.clone();
            let stop = async move { stop.cancelled().await };
            match &replicas {
                Replicas::Request(spec) => {
                    outln!(
                        "replica {index} of API {:?} listening on {} (workers {}×{}, queue {}, capacity {})",
                        spec.api_name,
                        replica::url_of(bound),
                        spec.processes,
                        spec.threads,
                        spec.max_queue_length,
                        spec.capacity()
                    );
                    servers.spawn(replica::serve(listener, spec.clone(), index, stop));
                }
                Replicas::Llm(spec) => {
                    let e = &spec.engine;
                    outln!(
                        "LLM replica {index} of model {:?} listening on {} (max_num_seqs {}, max_num_batched_tokens {}, KV {} blocks of {} tokens, step {:.3} ms + {:.4} ms/prefill token + {:.4} ms/decoding sequence{})",
                        spec.model_name,
                        replica::url_of(bound),
                        e.max_num_seqs,
                        e.max_num_batched_tokens,
                        e.kv_blocks,
                        e.block_size,
                        e.step.base_ns * 1e-6,
                        e.step.per_prefill_token_ns * 1e-6,
                        e.step.per_decode_token_ns * 1e-6,
                        if spec.service_scale == 1.0 {
                            String::new()
                        } else {
                            format!(", × {:.3} on its slice", spec.service_scale)
                        }
                    );
                    servers.spawn(llm_replica::serve(listener, spec.clone(), stop));
                }
            }
        }
        if let Some(queue) = gateway {
            let addr = SocketAddr::new(args.host, args.gateway.unwrap_or(0));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::BadInput(format!("--gateway: cannot listen on {addr}: {e}")))?;
            let bound = listener.local_addr().context("listener address")?;
            outln!(
                "async gateway listening on {} (POST submits, GET /<id> polls; {} dequeuer workers per replica)",
                replica::url_of(bound),
                queue.workers
            );
            let client = reqwest::Client::builder()
                .build()
                .context("cannot build the gateway's HTTP client")?;
            let stop = shutdown.clone();
            servers.spawn(async move {
                local::serve_gateway(listener, urls, queue, client, async move {
                    stop.cancelled().await
                })
                .await
            });
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
