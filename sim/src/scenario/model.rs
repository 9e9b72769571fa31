//! The validated scenario the engine runs: every value checked, every default applied, names
//! resolved to indices. Built from the [`schema`](super::schema) types by the rest of this module.

use super::policy::Autoscaling;
use super::schema::{ScenarioFile, SloSpec};
use crate::catalog::InstanceType;
use crate::service_time::ServiceTime;
use crate::time::SimTime;
use crate::traffic::Traffic;

/// A validated scenario, ready to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as written (echoed in results).
    pub file: ScenarioFile,
    /// Display name.
    pub name: String,
    /// Simulated span.
    pub duration: SimTime,
    /// Seed of every random stream.
    pub seed: u64,
    /// Step of the results timeline.
    pub timeline_step: SimTime,
    /// EKS control-plane fee.
    pub control_plane_usd_per_hour: f64,
    /// Node groups, in the order of the file.
    pub node_groups: Vec<NodeGroup>,
    /// APIs, in the order of the file.
    pub apis: Vec<Api>,
    /// Cluster-autoscaler settings.
    pub cluster_autoscaler: ClusterAutoscaler,
    /// Karpenter's pools and offerings (with `[[node_pools]]`; the cluster autoscaler is then
    /// off and the offerings' synthetic groups follow the file's node groups).
    pub karpenter: Option<crate::karpenter::Karpenter>,
    /// Placeholder pods (overprovisioning).
    pub placeholders: Vec<Placeholder>,
    /// Batch jobs.
    pub batch_jobs: Vec<BatchJob>,
    /// Routers in front of APIs (`[[routers]]`).
    pub routers: Vec<super::Router>,
    /// Chains of APIs (`[[pipelines]]`).
    pub pipelines: Vec<super::Pipeline>,
}

/// Validated cluster-autoscaler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterAutoscaler {
    /// Off: groups stay at `min_instances`.
    pub enabled: bool,
    /// Loop period.
    pub scan_interval: SimTime,
    /// Which group to grow.
    pub expander: Expander,
    /// Idle time before a node is removed.
    pub scale_down_unneeded_time: SimTime,
    /// Quiet time after a scale-up.
    pub scale_down_delay_after_add: SimTime,
    /// Utilisation under which a node is a removal candidate.
    pub scale_down_utilization_threshold: f64,
    /// Launch deadline.
    pub max_node_provision_time: SimTime,
    /// First backoff after a failed launch.
    pub initial_backoff: SimTime,
    /// Longest backoff.
    pub max_backoff: SimTime,
}

/// The cluster autoscaler's expander.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expander {
    /// Highest `priority` first; ties by least waste.
    Priority,
    /// Least idle CPU + memory fraction after the scale-up.
    LeastWaste,
    /// A random fitting group (from the cluster autoscaler's own random stream).
    Random,
}

/// Validated placeholder pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    /// Groups they may use.
    pub node_groups: Vec<usize>,
    /// How many.
    pub replicas: u32,
    /// Requests of each.
    pub requests: Requests,
    /// Priority class value.
    pub priority: i32,
}

/// A validated batch job (see [`BatchJobSpec`](super::schema::BatchJobSpec)).
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// Unique name.
    pub name: String,
    /// Submission time.
    pub submit_at: SimTime,
    /// Worker pods.
    pub workers: u32,
    /// Items in the job.
    pub items: u64,
    /// Items per batch.
    pub batch_size: u64,
    /// Groups the workers may use.
    pub node_groups: Vec<usize>,
    /// Requests of one worker.
    pub requests: Requests,
    /// Scheduling to ready.
    pub startup_time: SimTime,
    /// Time for one batch.
    pub service_time: ServiceTime,
    /// Probability that an attempt fails.
    pub failure_rate: f64,
    /// Stop the job this long after submission.
    pub timeout: Option<SimTime>,
    /// Receives per batch before it is dead-lettered; `None`: no DLQ, one attempt per batch.
    pub max_receive_count: Option<u32>,
    /// Priority class value.
    pub priority: i32,
}

impl BatchJob {
    /// Batches in the job (the last one may be short).
    pub fn batches(&self) -> u64 {
        self.items.div_ceil(self.batch_size)
    }
}

/// A node group with its instance type resolved and DaemonSet overhead subtracted.
#[derive(Debug, Clone)]
pub struct NodeGroup {
    /// Unique name.
    pub name: String,
    /// The resolved instance type.
    pub instance: InstanceType,
    /// Spot capacity.
    pub spot: bool,
    /// Priority-expander priority.
    pub priority: i32,
    /// Nodes kept at all times.
    pub min_instances: u32,
    /// Upper bound on nodes.
    pub max_instances: u32,
    /// CPU left for workload pods on one node, millicores.
    pub pod_cpu_m: u64,
    /// Memory left for workload pods on one node, MiB.
    pub pod_mem_mib: u64,
    /// Price of one node, USD per hour (spot discount applied).
    pub price_usd_per_hour: f64,
    /// Launch-to-Ready time: ln(seconds) ~ Normal(mu, sigma).
    pub boot_mu: f64,
    /// See `boot_mu`.
    pub boot_sigma: f64,
    /// Spot nodes obtainable at once (spot groups; `u32::MAX` = unlimited).
    pub spot_capacity: u32,
    /// Probability a spot launch fails for lack of capacity.
    pub spot_launch_failure: f64,
    /// Spot interruptions per instance-hour (0 for on-demand).
    pub interruption_rate: f64,
    /// Probability each other node goes in the same reclaim event.
    pub co_interruption: f64,
    /// GPU time-slicing / MPS: (pods per physical GPU, context-switch overhead).
    pub gpu_sharing: Option<(u32, f64)>,
    /// A mixed spot group's on-demand share and spot pools (Cortex `spot_config`).
    pub spot_mix: Option<SpotMix>,
    /// GPU memory one sharer may load (MPS caps each client at 1/replicas); `None` under
    /// time-slicing, where memory is not isolated and only the sharers' total is bounded.
    pub gpu_memory_per_client_mib: Option<u64>,
    /// MIG instances one node offers, per profile kind (all zero without MIG).
    pub mig: [u16; crate::mig::KINDS],
    /// Hard taints (NoSchedule / NoExecute) as (key, value).
    pub taints: Vec<(String, Option<String>)>,
}

/// How a spot group with `spot_config` mixes capacity, as an ASG mixed instances policy does:
/// the first `on_demand_base` nodes and `on_demand_percent` % of the rest (rounded up) are
/// on-demand; spot nodes spread over the cheapest pools in turn.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotMix {
    /// On-demand nodes before any spot one.
    pub on_demand_base: u32,
    /// Percentage of nodes above the base that are on-demand.
    pub on_demand_percent: u32,
    /// Spot pools used: (instance type, spot price USD/h), cheapest first. Nodes keep the
    /// primary type's allocatable (Cortex expects the distribution's types to be at least as
    /// large), and pay their pool's price.
    pub pools: Vec<(String, f64)>,
}

impl SpotMix {
    /// On-demand nodes wanted among `total`.
    pub fn on_demand_of(&self, total: u32) -> u32 {
        let base = total.min(self.on_demand_base);
        let above = total - base;
        base + (u64::from(above) * u64::from(self.on_demand_percent)).div_ceil(100) as u32
    }
}

impl NodeGroup {
    /// Schedulable whole GPUs on one node: physical GPUs × sharing replicas; none when the
    /// GPUs are MIG-partitioned (pods then request MIG instances).
    pub fn gpu_slots(&self) -> u32 {
        if self.mig.iter().any(|n| *n > 0) {
            return 0;
        }
        self.instance.gpus * self.gpu_sharing.map_or(1, |(r, _)| r)
    }
}

/// Resources one replica requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requests {
    /// CPU, millicores.
    pub cpu_m: u64,
    /// Memory, MiB.
    pub mem_mib: u64,
    /// Whole GPUs (or shared-GPU slots).
    pub gpu: u32,
    /// MIG instances per profile kind (see [`crate::mig`]).
    pub mig: [u16; crate::mig::KINDS],
}

/// A validated API.
#[derive(Debug, Clone)]
pub struct Api {
    /// Unique name.
    pub name: String,
    /// Indices of the node groups its replicas may run on.
    pub node_groups: Vec<usize>,
    /// Resources of one replica (memory includes the per-process model copies).
    pub requests: Requests,
    /// Server processes per replica.
    pub processes: u32,
    /// Workers per process.
    pub threads: u32,
    /// Queued requests allowed per replica beyond its concurrency.
    pub max_queue_length: u32,
    /// How requests pick a process: `None` per request at random; `Some(keep_alive)` per
    /// connection, idle connections closed after `keep_alive` (`pod.process_routing`).
    pub per_connection: Option<SimTime>,
    /// `per_connection`: the share of new connections process 0 takes before a uniform draw
    /// (`pod.accept_skew`, 0 = uniform).
    pub accept_skew: f64,
    /// Scheduling to readiness.
    pub startup_time: SimTime,
    /// `[apis.startup]`: start-up drawn per replica from its parts (then `startup_time` is 0).
    pub startup: Option<super::StartupModel>,
    /// Client-side timeout.
    pub timeout: Option<SimTime>,
    /// Added to every latency: time outside the replica.
    pub network_latency: SimTime,
    /// Service time model (request-level APIs; `Constant(0)` and never drawn for LLM APIs).
    pub service_time: ServiceTime,
    /// A token-level LLM replica instead of workers and a service time.
    pub llm: Option<std::sync::Arc<super::llm::LlmModel>>,
    /// Arrival process. For an API whose traffic is a sum of tenants, the first tenant's:
    /// read `tenants` for the whole.
    pub traffic: Traffic,
    /// The tenants whose traffic adds up to the API's (empty: anonymous traffic, `traffic`).
    pub tenants: Vec<super::Tenant>,
    /// The order a replica's queue is served in (FIFO without tenants).
    pub queue_discipline: super::QueueDiscipline,
    /// Replica-count policy, bounds and overprovisioning.
    pub autoscaling: Autoscaling,
    /// Objectives.
    pub slo: SloSpec,
    /// Priority class value of its pods.
    pub priority: i32,
    /// Service-time multiplier of its GPU slice (7 / compute slices on MIG, else 1).
    pub service_scale: f64,
    /// GPU memory one replica loads, MiB (0: not modelled); checked on shared GPUs.
    pub gpu_memory_mib: u64,
    /// Memory one replica really uses, MiB.
    pub mem_usage_mib: u64,
    /// CPU a replica uses with every worker busy, millicores (its request unless
    /// `compute.cpu_usage` says otherwise, at most its limit).
    pub cpu_usage_m: u64,
    /// Memory limit, MiB.
    pub mem_limit_mib: Option<u64>,
    /// Kubernetes QoS class of its pods.
    pub qos: QosClass,
    /// Requests wait in one queue every worker pulls from (Cortex's AsyncAPI, an SQS queue),
    /// instead of being routed to a replica and queued there.
    pub is_async: bool,
    /// An async API's idle workers long-poll for `.0` (a message arriving then is taken at
    /// once), then sleep for `.1` before polling again.
    pub dequeuer: (SimTime, SimTime),
    /// A Vertical Pod Autoscaler recommending its pods' requests from their usage.
    pub vpa: Option<super::Vpa>,
}

/// Kubernetes QoS class: decides who goes first when a node runs out of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Limits equal requests for CPU and memory.
    Guaranteed,
    /// Some requests or limits, not Guaranteed.
    Burstable,
    /// Neither requests nor limits.
    BestEffort,
}

impl QosClass {
    /// Classify as Kubernetes does (one container per pod).
    pub fn of(
        cpu_m: u64,
        mem_mib: u64,
        cpu_limit_m: Option<u64>,
        mem_limit_mib: Option<u64>,
    ) -> Self {
        if cpu_m == 0 && mem_mib == 0 && cpu_limit_m.is_none() && mem_limit_mib.is_none() {
            QosClass::BestEffort
        } else if cpu_limit_m == Some(cpu_m)
            && mem_limit_mib == Some(mem_mib)
            && cpu_m > 0
            && mem_mib > 0
        {
            QosClass::Guaranteed
        } else {
            QosClass::Burstable
        }
    }

    /// The name Kubernetes uses.
    pub fn name(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

impl Api {
    /// Every arrival process feeding the API: its tenants' or its own.
    pub fn traffics(&self) -> impl Iterator<Item = &Traffic> {
        let own = self.tenants.is_empty().then_some(&self.traffic);
        own.into_iter()
            .chain(self.tenants.iter().map(|t| &t.traffic))
    }

    /// Requests one replica can hold before it answers 503: concurrency + queue.
    pub fn capacity(&self) -> u32 {
        self.processes * self.threads + self.max_queue_length
    }
}
