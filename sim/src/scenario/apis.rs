//! `[[apis]]`: pod shape, requests, MIG slices, limits and QoS, autoscaling, service time and
//! traffic of one API.

use std::path::Path;

use super::cluster::{check_fits, group_selector};
use super::diagnostics::{FieldError, LoadError};
use super::fields::{at_most, check_slo, positive_u32};
use super::model::{Api, NodeGroup, QosClass, Requests};
use super::policy;
use super::schema::{ApiSpec, LlmSpec, ScenarioFile};
use super::{llm, service_time, traffic};
use crate::service_time::ServiceTime;
use crate::time::SimTime;
use crate::units::DurationSpec;

/// Most workers one replica may run (processes × threads).
const MAX_CONCURRENCY: u32 = 10_000;
/// Longest queue of one replica.
const MAX_QUEUE_LENGTH: u32 = 1_000_000;

/// What one replica is, from the `pod`, `compute` and `autoscaling` sections alone (no node
/// group, no file): shared by the model and by the manifests that deploy it.
pub(crate) struct ReplicaShape {
    /// Server processes per replica.
    pub(crate) processes: u32,
    /// Workers per process.
    pub(crate) threads: u32,
    /// Queued requests allowed per replica beyond its concurrency.
    pub(crate) max_queue_length: u32,
    /// Memory request including each process's copy of the model, MiB.
    pub(crate) mem_mib: u64,
    /// The validated policy, bounds and overprovisioning.
    pub(crate) autoscaling: policy::Autoscaling,
}

/// Check the replica-shaping sections of one API spec at `path` (`apis[i]`).
pub(crate) fn replica_shape(spec: &ApiSpec, path: &str) -> Result<ReplicaShape, FieldError> {
    let pod = &spec.pod;
    if let Some(llm) = &spec.llm {
        return llm_shape(spec, llm, path);
    }
    let (processes, threads) = match pod.max_concurrency {
        Some(_) if pod.processes_per_replica.is_some() || pod.threads_per_process.is_some() => {
            return Err(FieldError::new(
                format!("{path}.pod.max_concurrency"),
                "set either max_concurrency (Cortex ≥0.36) or processes_per_replica and threads_per_process (Cortex ≤0.35), not both",
            ))
        }
        Some(c) => (1, positive_u32(Some(c), 1, format!("{path}.pod.max_concurrency"))?),
        None => (
            positive_u32(
                pod.processes_per_replica,
                1,
                format!("{path}.pod.processes_per_replica"),
            )?,
            positive_u32(
                pod.threads_per_process,
                1,
                format!("{path}.pod.threads_per_process"),
            )?,
        ),
    };
    let concurrency = processes.saturating_mul(threads);
    at_most(
        concurrency,
        MAX_CONCURRENCY,
        if pod.max_concurrency.is_some() {
            format!("{path}.pod.max_concurrency")
        } else {
            format!("{path}.pod.threads_per_process")
        },
    )
    .map_err(|e| {
        FieldError::new(
            e.path,
            format!("a replica's workers (processes × threads) {}", e.message),
        )
    })?;
    let max_queue_length = at_most(
        pod.max_queue_length.unwrap_or(100),
        MAX_QUEUE_LENGTH,
        format!("{path}.pod.max_queue_length"),
    )?;
    let mem_mib = spec.compute.mem.mebibytes()
        + u64::from(processes) * spec.compute.mem_per_process.mebibytes();
    let autoscaling = policy::parse(
        &spec.autoscaling,
        &format!("{path}.autoscaling"),
        processes * threads,
        processes * threads + max_queue_length,
    )?;
    let max_queue_length = match autoscaling.max_replica_concurrency {
        Some(_) if pod.max_queue_length.is_some() => {
            return Err(FieldError::new(
                format!("{path}.autoscaling.max_replica_concurrency"),
                "set max_replica_concurrency (Cortex ≤0.35) or pod.max_queue_length, not both",
            ))
        }
        Some(m) => m - processes * threads,
        None => max_queue_length,
    };
    Ok(ReplicaShape {
        processes,
        threads,
        max_queue_length,
        mem_mib,
        autoscaling,
    })
}

/// An LLM replica is one engine: `max_num_seqs` running sequences and `max_waiting` queued.
fn llm_shape(spec: &ApiSpec, llm: &LlmSpec, path: &str) -> Result<ReplicaShape, FieldError> {
    let pod = &spec.pod;
    if pod.max_concurrency.is_some()
        || pod.processes_per_replica.is_some()
        || pod.threads_per_process.is_some()
        || pod.max_queue_length.is_some()
    {
        return Err(FieldError::new(
            format!("{path}.pod"),
            "an LLM replica's concurrency is llm.max_num_seqs and its queue llm.max_waiting: leave out the pod's workers and queue",
        ));
    }
    let threads = at_most(
        llm.max_num_seqs.unwrap_or(256).max(1),
        MAX_CONCURRENCY,
        format!("{path}.llm.max_num_seqs"),
    )?;
    let max_queue_length = at_most(
        llm.max_waiting.unwrap_or(MAX_QUEUE_LENGTH),
        MAX_QUEUE_LENGTH,
        format!("{path}.llm.max_waiting"),
    )?;
    let autoscaling = policy::parse(
        &spec.autoscaling,
        &format!("{path}.autoscaling"),
        threads,
        threads + max_queue_length,
    )?;
    Ok(ReplicaShape {
        processes: 1,
        threads,
        max_queue_length,
        mem_mib: spec.compute.mem.mebibytes() + spec.compute.mem_per_process.mebibytes(),
        autoscaling,
    })
}

/// Check one API spec at `path` (`apis[i]`) and build its runtime model.
pub(super) fn build_api(
    spec: &ApiSpec,
    path: &str,
    file: &ScenarioFile,
    groups: &[NodeGroup],
    base_dir: &Path,
) -> Result<Api, LoadError> {
    let ReplicaShape {
        processes,
        threads,
        max_queue_length,
        mem_mib,
        autoscaling,
    } = replica_shape(spec, path)?;
    let mut requests = Requests {
        cpu_m: spec.compute.cpu.millicores(),
        mem_mib,
        gpu: spec.compute.gpu,
        ..Requests::default()
    };
    let allowed = group_selector(&spec.node_groups, &spec.tolerations, groups, path)?;
    // On a MIG slice, service takes the full-GPU time divided by the slice's compute fraction.
    let mut service_scale = 1.0;
    if let Some(profile) = &spec.compute.mig_profile {
        let field = format!("{path}.compute.mig_profile");
        if spec.compute.gpu > 1 {
            return Err(FieldError::new(
                format!("{path}.compute.gpu"),
                "a replica with mig_profile takes one MIG instance; set gpu to 0 or 1",
            )
            .into());
        }
        let group = allowed
            .iter()
            .map(|&g| &groups[g])
            .find(|g| g.mig.iter().any(|n| *n > 0))
            .ok_or_else(|| {
                FieldError::new(
                    field.clone(),
                    "none of the API's node groups is MIG-partitioned",
                )
            })?;
        let kind = crate::mig::kind(group.instance.accelerator.unwrap_or("no GPU"), profile)
            .map_err(|m| FieldError::new(field.clone(), m.to_string()))?;
        requests.gpu = 0;
        requests.mig[kind] = 1;
        service_scale = 1.0 / crate::mig::compute_fraction(kind);
    }
    check_fits(
        requests,
        &allowed,
        groups,
        &format!("{path}.compute"),
        "a replica",
    )?;

    let timeout = match spec.timeout {
        Some(DurationSpec(t)) if t == SimTime::ZERO => {
            return Err(
                FieldError::new(format!("{path}.timeout"), "expected a duration > 0").into(),
            )
        }
        other => other.map(|d| d.0),
    };
    let cpu_limit_m = spec.compute.cpu_limit.as_ref().map(|q| q.millicores());
    let mem_limit_mib = spec.compute.mem_limit.as_ref().map(|q| q.mebibytes());
    for (limit, request, field) in [
        (cpu_limit_m, requests.cpu_m, "cpu_limit"),
        (mem_limit_mib, requests.mem_mib, "mem_limit"),
    ] {
        if limit.is_some_and(|l| l < request) {
            return Err(FieldError::new(
                format!("{path}.compute.{field}"),
                "a limit below the request is rejected by Kubernetes; raise it to at least the request",
            )
            .into());
        }
    }
    let mem_usage_mib = spec
        .compute
        .mem_usage
        .as_ref()
        .map_or(requests.mem_mib, |q| q.mebibytes());
    let cpu_usage_m = spec
        .compute
        .cpu_usage
        .as_ref()
        .map_or(requests.cpu_m, |q| q.millicores());
    let cpu_usage_m = cpu_limit_m.map_or(cpu_usage_m, |limit| cpu_usage_m.min(limit));
    let qos = QosClass::of(requests.cpu_m, requests.mem_mib, cpu_limit_m, mem_limit_mib);
    let mut slo = spec.slo.clone().unwrap_or_else(|| file.slo.clone());
    if slo.warmup.is_none() {
        slo.warmup = file.slo.warmup;
    }
    if let Some(own) = &spec.slo {
        check_slo(own, &format!("{path}.slo"), file.duration.0)?;
    }

    let fed_by = super::routing::feeder_of(file, &spec.name);
    let (tenants, queue_discipline) =
        super::tenants::build(spec, path, file, base_dir, fed_by.as_deref())?;
    let traffic = match (&spec.traffic, tenants.first()) {
        (Some(t), _) => traffic::build(t, &format!("{path}.traffic"), base_dir)?,
        (None, Some(first)) => first.traffic.clone(),
        // Its requests come from a router or a pipeline, not from a stream of its own.
        (None, None) if fed_by.is_some() => crate::traffic::Traffic::Steps {
            steps: Vec::new(),
            poisson: false,
        },
        (None, None) => return Err(FieldError::new(format!("{path}.traffic"), "required").into()),
    };
    let (service_time, llm_model) = match (&spec.service_time, &spec.llm) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                format!("{path}.service_time"),
                "an LLM API's time comes from [llm.step_time]: leave out service_time",
            )
            .into())
        }
        (Some(s), None) => (
            service_time::build(s, &format!("{path}.service_time"), base_dir)?,
            None,
        ),
        (None, Some(l)) => {
            let has = |column: fn(&crate::recorded::FormatOptions) -> bool| match &traffic {
                crate::traffic::Traffic::Trace(t) => column(&t.options),
                _ => false,
            };
            let model = llm::build(
                l,
                &llm::LlmContext {
                    path,
                    groups,
                    allowed: &allowed,
                    requests,
                    mig_profile: spec.compute.mig_profile.as_deref(),
                    traffic_has_lengths: (
                        has(|o| o.input_column.is_some()),
                        has(|o| o.output_column.is_some()),
                    ),
                    base_dir,
                },
            )?;
            (
                ServiceTime::Constant(SimTime::ZERO),
                Some(std::sync::Arc::new(model)),
            )
        }
        (None, None) => {
            return Err(FieldError::new(
                format!("{path}.service_time"),
                "required: a service_time, or an [llm] table for a token-level LLM API",
            )
            .into())
        }
    };
    if llm_model.is_none() && autoscaling.needs_llm() {
        return Err(FieldError::new(
            format!("{path}.autoscaling"),
            "this policy reads vLLM's signals (waiting or running requests, KV-cache usage, tokens), which only an LLM API has: add an [llm] table or pick another metric",
        )
        .into());
    }
    if llm_model.is_none() {
        if let crate::traffic::Traffic::Trace(t) = &traffic {
            if t.options.input_column.is_some() || t.options.output_column.is_some() {
                return Err(FieldError::new(
                    format!("{path}.traffic.input_column"),
                    "token columns are read by LLM APIs only (add an [llm] table)",
                )
                .into());
            }
        }
    }
    let is_async = match spec.kind.as_deref() {
        None | Some("realtime") => false,
        Some("async") => true,
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.kind"),
                format!("expected \"realtime\" or \"async\", found {other:?}"),
            )
            .into())
        }
    };
    if is_async && llm_model.is_some() {
        return Err(FieldError::new(
            format!("{path}.kind"),
            "an LLM API is served token by token by its replicas' engines: kind = \"async\" is for request-level APIs",
        )
        .into());
    }
    if is_async && timeout.is_some() {
        return Err(FieldError::new(
            format!("{path}.timeout"),
            "an async request waits in its queue until a worker takes it and its result is kept: leave out timeout",
        )
        .into());
    }
    if autoscaling.needs_queue() && !is_async {
        return Err(FieldError::new(
            format!("{path}.autoscaling.trigger"),
            "the aws-sqs-queue trigger reads an async API's queue: add kind = \"async\" or use trigger = \"in_flight\"",
        )
        .into());
    }
    if spec.dequeuer.is_some() && !is_async {
        return Err(FieldError::new(
            format!("{path}.dequeuer"),
            "the dequeuer is an async API's: add kind = \"async\" or leave it out",
        )
        .into());
    }
    let dequeuer_spec = spec.dequeuer.clone().unwrap_or_default();
    let dequeuer = (
        dequeuer_spec
            .receive_wait
            .map_or(SimTime::from_secs(10), |d| d.0),
        dequeuer_spec
            .empty_receive_sleep
            .map_or(SimTime::from_secs(10), |d| d.0),
    );
    if dequeuer.0 == SimTime::ZERO && dequeuer.1 != SimTime::ZERO {
        return Err(FieldError::new(
            format!("{path}.dequeuer.receive_wait"),
            "expected a duration > 0 (a worker that never waits for a message would only sleep)",
        )
        .into());
    }
    let vpa = spec
        .vpa
        .as_ref()
        .map(|v| super::vpa::build(v, &format!("{path}.vpa"), llm_model.is_some()))
        .transpose()?;
    let accept_skew = spec.pod.accept_skew.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&accept_skew) {
        return Err(FieldError::new(
            format!("{path}.pod.accept_skew"),
            format!("expected a share in [0, 1], found {accept_skew}"),
        )
        .into());
    }
    if spec.startup.is_some() && spec.startup_time.is_some() {
        return Err(FieldError::new(
            format!("{path}.startup"),
            "set startup_time (one total) or [startup] (its parts), not both",
        )
        .into());
    }
    let startup = spec
        .startup
        .as_ref()
        .map(|s| super::startup::build(s, &format!("{path}.startup"), base_dir))
        .transpose()?;
    Ok(Api {
        startup,
        name: spec.name.clone(),
        node_groups: allowed,
        requests,
        processes,
        threads,
        max_queue_length,
        per_connection: match spec.pod.process_routing {
            Some(super::schema::ProcessRoutingSpec::PerConnection) => Some(
                spec.pod
                    .keep_alive_timeout
                    .map_or(SimTime::from_secs_f64(5.0), |d| d.0),
            ),
            _ => None,
        },
        accept_skew,
        startup_time: spec.startup_time.map(|d| d.0).unwrap_or(SimTime::ZERO),
        timeout,
        network_latency: spec.network_latency.map_or(SimTime::ZERO, |d| d.0),
        service_time,
        llm: llm_model,
        traffic,
        tenants,
        queue_discipline,
        autoscaling,
        slo,
        priority: spec.priority,
        service_scale,
        gpu_memory_mib: spec.compute.gpu_memory.mebibytes(),
        mem_usage_mib,
        cpu_usage_m,
        mem_limit_mib,
        qos,
        is_async,
        dequeuer,
        vpa,
    })
}
