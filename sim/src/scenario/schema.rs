//! The scenario file as users write it. Field names follow Cortex wherever Cortex has one, so a
//! Cortex user can read a scenario without a manual. Every struct denies unknown fields: a typo is
//! an error naming the field, never a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::units::{DurationSpec, Quantity};

mod karpenter;
mod llm;
mod routing;
mod startup;
mod tenants;
mod tune;
mod vpa;

pub use karpenter::{
    BudgetSpec, DisruptionSpec, KarpenterSpec, LimitsSpec, NodePoolSpec, RequirementSpec,
};
pub use llm::{LlmSpec, StepTimeSpec, TokenLengthSpec};
pub use routing::{ClassSpec, PipelineSpec, RouteSpec, RouterSpec, RouterStepSpec};
pub use startup::StartupSpec;
pub use tenants::{FairnessSpec, TenancySpec, TenantSpec};
pub use tune::{RiskTuneSpec, TuneSpec};
pub use vpa::{VpaResourcesSpec, VpaSpec};

/// A whole scenario: the cluster, the APIs on it, and their traffic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Simulated time span.
    pub duration: DurationSpec,
    /// Seed for every random stream (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Step of the results timeline (default: 10 s, widened so a run has at most 2,000 points).
    #[serde(default)]
    pub timeline_step: Option<DurationSpec>,
    /// Service-level objectives every API is judged against (each API may override).
    #[serde(default)]
    pub slo: SloSpec,
    /// Cluster-wide settings.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Extra or overridden instance types for the embedded catalog.
    #[serde(default)]
    pub instance_types: Vec<InstanceTypeSpec>,
    /// Node groups (at least one, unless `node_pools` provision the nodes).
    #[serde(default)]
    pub node_groups: Vec<NodeGroupSpec>,
    /// Karpenter NodePools: Karpenter provisions and consolidates nodes instead of the
    /// cluster autoscaler.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<NodePoolSpec>,
    /// Inference APIs (at least one API or batch job).
    #[serde(default)]
    pub apis: Vec<ApiSpec>,
    /// Tenants shared by every API that has neither `traffic` nor tenants of its own
    /// (`[[tenants]]`): each such API sees the same tenants' arrivals and service times (common
    /// random numbers), so APIs that differ in one setting compare like for like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantSpec>,
    /// How the tenants are deployed (`[tenancy]`): on shared workers (the default), on a node
    /// pool each, or on a cluster each — the design `simctl tune` can search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<TenancySpec>,
    /// Routers in front of several APIs (weighted splits, classes, shadows): the APIs behind
    /// one have no traffic of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<RouterSpec>,
    /// Chains of APIs a request passes through in order (`retriever -> reader`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<PipelineSpec>,
    /// Placeholder pods holding spare capacity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overprovisioning: Vec<PlaceholderSpec>,
    /// Cortex Batch API jobs submitted during the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_jobs: Vec<BatchJobSpec>,
    /// What `simctl tune` searches (ignored by `simctl run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
}

fn default_seed() -> u64 {
    1
}

/// Latency and error objectives. Unset objectives are not checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Bound on the 50th percentile of end-to-end latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50: Option<DurationSpec>,
    /// Bound on the 99th percentile of end-to-end latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<DurationSpec>,
    /// Bound on the 99.9th percentile of end-to-end latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p999: Option<DurationSpec>,
    /// LLM APIs: bound on the 99th percentile of time to first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p99: Option<DurationSpec>,
    /// LLM APIs: bound on the 99th percentile of inter-token latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_p99: Option<DurationSpec>,
    /// LLM APIs: least acceptable goodput, the share of requests whose time to first token is
    /// within `ttft_p99` and whose mean inter-token latency is within `itl_p99`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_goodput: Option<f64>,
    /// Highest acceptable fraction of requests rejected with 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejection_rate: Option<f64>,
    /// Highest acceptable fraction of requests that time out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_rate: Option<f64>,
    /// Requests arriving before this time are not judged (they still count in the totals):
    /// leaves a run's start-up out of the verdict. Default 0. An API's own `[apis.slo]` without
    /// a warmup takes the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<DurationSpec>,
}

/// Cluster-wide settings that are not per node group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// EKS control-plane fee in USD per hour ($0.10 standard support).
    pub control_plane_usd_per_hour: f64,
    /// CPU requested by DaemonSets on every node (aws-node 25m + kube-proxy 100m).
    pub daemonset_cpu: Quantity,
    /// Memory requested by DaemonSets on every node.
    pub daemonset_mem: Quantity,
    /// The cluster autoscaler.
    pub autoscaler: ClusterAutoscalerSpec,
    /// Karpenter's provisioner settings (with `[[node_pools]]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub karpenter: Option<KarpenterSpec>,
}

/// Cluster-autoscaler settings; defaults are upstream's (FAQ flags table), except the expander,
/// which is `priority` as Cortex configures it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterAutoscalerSpec {
    /// Off: every group keeps `min_instances` nodes.
    pub enabled: bool,
    /// How often pending pods and idle nodes are looked at (10s; Cortex used 20s).
    pub scan_interval: DurationSpec,
    /// `priority`, `least-waste` or `random`.
    pub expander: String,
    /// How long a node must stay under the utilisation threshold before removal.
    pub scale_down_unneeded_time: DurationSpec,
    /// No scale-down this long after a scale-up.
    pub scale_down_delay_after_add: DurationSpec,
    /// A node is a removal candidate below this requested fraction (GPU nodes: of their GPUs).
    pub scale_down_utilization_threshold: f64,
    /// A node not ready after this long counts as a failed launch.
    pub max_node_provision_time: DurationSpec,
    /// Backoff of a group after a failed launch; doubles per failure.
    pub initial_node_group_backoff: DurationSpec,
    /// Longest backoff.
    pub max_node_group_backoff: DurationSpec,
}

impl Default for ClusterAutoscalerSpec {
    fn default() -> Self {
        let d = |s: u64| DurationSpec(crate::time::SimTime::from_secs(s));
        Self {
            enabled: true,
            scan_interval: d(10),
            expander: "priority".into(),
            scale_down_unneeded_time: d(600),
            scale_down_delay_after_add: d(600),
            scale_down_utilization_threshold: 0.5,
            max_node_provision_time: d(900),
            initial_node_group_backoff: d(300),
            max_node_group_backoff: d(1800),
        }
    }
}

/// A Cortex Batch API job: `workers` pods pull batches of `batch_size` items from a queue (SQS
/// in Cortex); a failed batch is retried until `max_receive_count` receives, then
/// dead-lettered; a batch whose worker dies (a spot reclaim) reappears after the 30 s
/// visibility timeout.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchJobSpec {
    /// Unique among batch jobs.
    pub name: String,
    /// When the job is submitted (default at the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_at: Option<DurationSpec>,
    /// Worker pods (Cortex `workers`; no autoscaling).
    pub workers: u32,
    /// Items in the job (`item_list.items`).
    pub items: u64,
    /// Items per batch (`item_list.batch_size`, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// Node groups the workers may use (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<String>,
    /// Resources of one worker.
    pub compute: ComputeSpec,
    /// Scheduling to ready, per worker pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_time: Option<DurationSpec>,
    /// Time one worker takes for one whole batch.
    pub service_time: ServiceTimeSpec,
    /// Probability that one attempt at a batch fails (an error in the user's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// The job is stopped this long after submission (Cortex `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Retry failed batches through a dead-letter queue (without one, each batch is attempted
    /// once, as in Cortex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs_dead_letter_queue: Option<DeadLetterSpec>,
    /// Priority class value of the workers.
    #[serde(default)]
    pub priority: i32,
    /// Taints the workers tolerate (as for APIs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<String>,
}

/// `sqs_dead_letter_queue`: how often a batch may be received before it is dead-lettered.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSpec {
    /// Receives (attempts) per batch, at least 1.
    pub max_receive_count: u32,
}

/// Placeholder pods that hold spare capacity (the cluster-autoscaler overprovisioning pattern):
/// low priority, preempted as soon as a real pod needs their room, then rescheduled — which makes
/// the cluster autoscaler add a node ahead of the next real need.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderSpec {
    /// Node groups the placeholders may use (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<String>,
    /// Number of placeholder pods.
    pub replicas: u32,
    /// CPU each requests.
    #[serde(default)]
    pub cpu: Quantity,
    /// Memory each requests.
    #[serde(default)]
    pub mem: Quantity,
    /// GPUs each requests.
    #[serde(default)]
    pub gpu: u32,
    /// Priority class value (−10 as in the cluster-autoscaler FAQ: the lowest that still
    /// triggers scale-ups).
    #[serde(default = "placeholder_priority")]
    pub priority: i32,
    /// Taints the placeholders tolerate (as for APIs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<String>,
}

fn placeholder_priority() -> i32 {
    -10
}

/// Time from launch request to a Ready node: lognormal given its median and p99.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BootTimeSpec {
    /// Median.
    pub median: DurationSpec,
    /// 99th percentile.
    pub p99: DurationSpec,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            control_plane_usd_per_hour: 0.10,
            daemonset_cpu: Quantity {
                text: "125m".into(),
                value: 0.125,
            },
            daemonset_mem: Quantity {
                text: "100Mi".into(),
                value: 100.0 * 1024.0 * 1024.0,
            },
            autoscaler: ClusterAutoscalerSpec::default(),
            karpenter: None,
        }
    }
}

/// An instance type to add to (or override in) the embedded catalog.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeSpec {
    /// e.g. `g4dn.xlarge`.
    pub name: String,
    /// Allocatable CPU (after kube-reserved).
    pub cpu: Quantity,
    /// Allocatable memory (after kube-reserved and the eviction threshold).
    pub mem: Quantity,
    /// GPUs on the node.
    #[serde(default)]
    pub gpu: u32,
    /// On-demand price in USD per hour.
    pub price_usd_per_hour: f64,
    /// Typical spot discount as a fraction (0.64 = 64 % cheaper).
    #[serde(default)]
    pub spot_discount: f64,
}

/// A node group, as in Cortex's cluster config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupSpec {
    /// Unique name, used by APIs' `node_groups` selectors and in results.
    pub name: String,
    /// An instance type from the catalog or `instance_types`.
    pub instance_type: String,
    /// Spot instances (priced at the type's spot discount).
    #[serde(default)]
    pub spot: bool,
    /// Priority for the priority expander (higher is preferred; also the placement order).
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Nodes kept at all times (and, until the cluster autoscaler lands, the group's size).
    #[serde(default)]
    pub min_instances: u32,
    /// Upper bound on nodes.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Launch-to-Ready time (default: CPU median 55s / p99 100s; GPU median 180s / p99 300s,
    /// which includes the driver and device plugin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<BootTimeSpec>,
    /// Spot only: at most this many spot nodes of this group can be had at once; launches beyond
    /// fail with insufficient capacity (default: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_capacity: Option<u32>,
    /// Spot only: probability that a launch fails for lack of capacity (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_launch_failure: Option<f64>,
    /// Spot only: interruptions per instance-hour (default: from the instance type's Spot
    /// Advisor bucket; 0 disables interruptions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruption_rate: Option<f64>,
    /// Spot only: probability that each other node of the group goes in the same reclaim
    /// event (default 0.5: reclaims cluster in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_interruption: Option<f64>,
    /// Taints on the group's nodes, `key[=value]:Effect` (e.g. `nvidia.com/gpu:NoSchedule`):
    /// only pods that tolerate them are placed there (`PreferNoSchedule` is not enforced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
    /// GPU sharing configured by the NVIDIA device plugin for the whole group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_sharing: Option<GpuSharingSpec>,
    /// Cortex's mixed-instances settings of a spot group (an ASG mixed instances policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_config: Option<SpotConfigSpec>,
}

/// `spot_config`: which nodes of a spot group are on-demand, and which spot pools it draws on.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpotConfigSpec {
    /// More instance types for spot capacity; the group's `instance_type` comes first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_distribution: Vec<String>,
    /// The first this many nodes are on-demand (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_base_capacity: Option<u32>,
    /// Percentage of the nodes above the base that are on-demand (default 0, as in Cortex's
    /// code; its docs say 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_percentage_above_base_capacity: Option<u32>,
    /// Spot pools to spread over, cheapest first (default: all, at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_pools: Option<u32>,
    /// Highest spot price paid (default: the primary type's on-demand price); dearer pools are
    /// not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
}

/// Time-slicing or MPS: each GPU is advertised as `replicas` schedulable GPUs; pods sharing a
/// physical GPU split its time, so a request's service time stretches with the number of pods
/// busy on that GPU when it starts (plus a context-switch overhead for time-slicing).
/// Memory is not isolated.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuSharingSpec {
    /// `time-slicing`, `mps` or `mig`.
    pub mode: String,
    /// Schedulable GPUs advertised per physical GPU (`sharing.*.resources[].replicas`);
    /// time-slicing and MPS only.
    #[serde(default)]
    pub replicas: u32,
    /// MIG: the instances each GPU is partitioned into (mig-parted), e.g.
    /// `["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]`; pods request them with
    /// `compute.mig_profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// Extra service time per request while sharers are busy, as a fraction (time-slicing
    /// default 0.05; MPS default 0: clients run concurrently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switch_overhead: Option<f64>,
}

fn default_priority() -> i32 {
    1
}

fn default_max_instances() -> u32 {
    5
}

/// One inference API (a Cortex RealtimeAPI).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// Unique name, used in results series (`rps/<name>`).
    pub name: String,
    /// `realtime` (the default: requests routed to replicas and answered on the connection) or
    /// `async` (Cortex's AsyncAPI: requests wait in one queue that every worker pulls from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Node groups this API may run on (all groups when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<String>,
    /// Container image, written into the manifests `simctl tune` emits (the simulator does not
    /// run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Resources requested by one replica.
    #[serde(default)]
    pub compute: ComputeSpec,
    /// Concurrency and queueing inside one replica.
    #[serde(default)]
    pub pod: PodSpec,
    /// Time from a replica being scheduled to passing its readiness probe (image pull + model
    /// load), on top of any node boot time.
    #[serde(default)]
    pub startup_time: Option<DurationSpec>,
    /// Start-up as the sum of image pull, model fetch and load, drawn per replica (instead of
    /// `startup_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<StartupSpec>,
    /// Client-side request timeout (e.g. the API gateway's 29 s); unset = no timeout.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Time a request spends outside the replica — load balancer, proxies, network — added to
    /// every latency but never to a worker's time (`simctl validate` measures it); default 0.
    #[serde(default)]
    pub network_latency: Option<DurationSpec>,
    /// How long a request takes to serve once a worker picks it up (request-level APIs; an
    /// API with `llm` has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<ServiceTimeSpec>,
    /// A token-level LLM replica (vLLM's iteration loop) instead of `pod` and `service_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSpec>,
    /// Arrivals (leave out when the API's traffic is a sum of tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSpec>,
    /// Its traffic as a sum of tenants, instead of `traffic` (`[[apis.tenants]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantSpec>,
    /// How its replicas are shared between its tenants (`[apis.fairness]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<FairnessSpec>,
    /// Priority class value of the API's pods (higher preempts lower; default 0).
    #[serde(default)]
    pub priority: i32,
    /// Taints the API's pods tolerate: `key` (any value and effect) or `key=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<String>,
    /// Replica count policy.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,
    /// Objectives overriding the scenario-wide ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSpec>,
    /// An async API's dequeuer (`[apis.dequeuer]`): how its workers poll the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequeuer: Option<DequeuerSpec>,
    /// A Vertical Pod Autoscaler on the API's pods (`[apis.vpa]`): its recommendation from
    /// the run's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpa: Option<VpaSpec>,
}

/// Resource requests of one replica, Kubernetes style.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeSpec {
    /// CPU request.
    pub cpu: Quantity,
    /// Memory request of the replica (proxy + server, excluding per-process model copies).
    pub mem: Quantity,
    /// Memory each process adds (its copy of the model), so more processes cost memory.
    pub mem_per_process: Quantity,
    /// Whole GPUs (or one shared-GPU slot).
    pub gpu: u32,
    /// GPU memory the model and its activations take. On time-sliced GPUs (memory not
    /// isolated) the sharers must fit together and on MPS each within 1/replicas, or the
    /// replica is OOM-killed as it loads (and restarts with CrashLoopBackOff).
    #[serde(skip_serializing_if = "Quantity::is_zero")]
    pub gpu_memory: Quantity,
    /// CPU limit (throttling; with `mem_limit` equal to the requests the pod is Guaranteed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<Quantity>,
    /// Memory limit: a replica using more is OOM-killed (and restarts with CrashLoopBackOff).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<Quantity>,
    /// CPU the replica uses with every worker busy (default: its request); a busy worker uses
    /// its share. What a VPA and a CPU-utilization HPA see; above `cpu_limit` it is throttled
    /// to the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<Quantity>,
    /// Memory the replica really uses (default: its request). Above the request it is first
    /// in line when its node runs out of memory (node-pressure eviction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_usage: Option<Quantity>,
    /// A MIG instance of this profile instead of a whole GPU (e.g. `1g.5gb`, `3g.40gb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig_profile: Option<String>,
}

impl Default for ComputeSpec {
    fn default() -> Self {
        Self {
            cpu: Quantity {
                text: "200m".into(),
                value: 0.2,
            },
            mem: Quantity::default(),
            mem_per_process: Quantity::default(),
            gpu: 0,
            gpu_memory: Quantity::default(),
            cpu_limit: None,
            mem_limit: None,
            cpu_usage: None,
            mem_usage: None,
            mig_profile: None,
        }
    }
}

/// Workers and queue of a replica. Cortex ≤0.35 describes concurrency as processes × threads;
/// later Cortex as `max_concurrency`. Both are accepted (not together).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PodSpec {
    /// Server processes per replica (default 1); requests are routed to one at random.
    pub processes_per_replica: Option<u32>,
    /// Worker threads per process (default 1).
    pub threads_per_process: Option<u32>,
    /// Cortex ≥0.36 concurrency: one process with this many workers.
    pub max_concurrency: Option<u32>,
    /// Queued requests allowed per replica beyond its concurrency before 503 (default 100).
    pub max_queue_length: Option<u32>,
    /// How a request picks a process inside the replica: `per_request` (default; each request
    /// goes to a process uniformly at random, the model `simctl serve` emulates) or
    /// `per_connection`: the processes share one listening socket (uvicorn/gunicorn
    /// `--workers`), so a process accepts a *connection* and every request the proxy sends on
    /// it; the proxy reuses its most recently idle connection and opens a new one (accepted by
    /// a process at random) only when all are busy. What a real multi-process server behind a
    /// keep-alive reverse proxy does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_routing: Option<ProcessRoutingSpec>,
    /// With `per_connection`: how long an idle connection stays open before the server closes
    /// it (uvicorn's `--timeout-keep-alive`, default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout: Option<DurationSpec>,
    /// With `per_connection`: the share of new connections the first process accepts before
    /// the others get a uniform chance (default 0: uniform). Worker processes that share a
    /// socket all wake for a connection and the first to call accept() wins, so one process
    /// takes more than its share; 0.2–0.4 measured for uvicorn --workers 4 here (README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_skew: Option<f64>,
}

/// `pod.process_routing`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProcessRoutingSpec {
    /// Each request to a process at random.
    PerRequest,
    /// Each connection to a process at random; requests follow their connection.
    PerConnection,
}

/// Service time distributions. `distribution` selects which other fields apply.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceTimeSpec {
    /// `constant`, `exponential`, `lognormal` or `empirical`.
    pub distribution: String,
    /// constant: the service time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<DurationSpec>,
    /// exponential: the mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<DurationSpec>,
    /// lognormal: the median (with `p99`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<DurationSpec>,
    /// lognormal: the 99th percentile (with `median`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<DurationSpec>,
    /// lognormal: μ of ln(seconds) (with `sigma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mu: Option<f64>,
    /// lognormal: σ of ln(seconds) (with `mu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// empirical: CSV file of observed durations, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// empirical: column holding the durations (default `latency_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// empirical: unit of the column, `ms` or `s` (default: `ms` when the column name ends in
    /// `_ms`, else `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Arrival processes. `kind` selects which other fields apply.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// `poisson`, `constant`, `steps`, `diurnal` or `trace`.
    pub kind: String,
    /// poisson / constant: requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// steps: the rate from each `at` onwards (rate 0 before the first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepSpec>>,
    /// steps: `poisson` (default) or `constant` arrivals within each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<String>,
    /// diurnal: mean requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_rps: Option<f64>,
    /// diurnal: peak rate / trough rate (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_to_trough: Option<f64>,
    /// diurnal: period of the sinusoid (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<DurationSpec>,
    /// diurnal: time of the first peak (default a quarter period, i.e. the sinusoid starts at the mean and rising).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_at: Option<DurationSpec>,
    /// trace: the recorded traffic, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// trace: `timestamps` (default), `counts`, `prometheus_json`, `prometheus_text` or
    /// `access_log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// trace: timestamps column (default `timestamp_s`), or for `counts` the count column
    /// (default `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// trace, counts: the interval-start column (default `timestamp_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// trace, timestamps: a column of per-request service times, used instead of
    /// `service_time` (access logs use their request duration when `use_recorded_service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_column: Option<String>,
    /// trace: a per-request prompt-length column, in tokens (LLM APIs; e.g. `input_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_column: Option<String>,
    /// trace: a per-request output-length column, in tokens (LLM APIs; e.g. `output_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_column: Option<String>,
    /// trace: unit of the service column, `ms` or `s` (default: `ms` when it ends in `_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_unit: Option<String>,
    /// trace, access_log: serve each request for its logged duration (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_recorded_service: Option<bool>,
    /// trace, counts: width of the last interval (default: the previous gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    /// trace, prometheus_text: the counter to follow (default: first metric ending in _total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// trace, prometheus_json: `rate` (default) or `counter` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_kind: Option<String>,
    /// trace: replay only from this time of the trace (after re-basing to its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DurationSpec>,
    /// trace: replay only up to this time of the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DurationSpec>,
    /// trace: replay faster (2 = twice as fast, the trace's time axis divided by 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// trace: multiply the request rate (growth what-if: 2 = twice the requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_scale: Option<f64>,
    /// trace: resample the recording per seed, a circular block bootstrap with blocks this long
    /// (trace time), instead of replaying it as recorded. `simctl tune` does this by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_block: Option<DurationSpec>,
    /// trace: replay the `start`–`end` window again and again, end to end (a one-hour trace
    /// looped to several days); needs `end`.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub looped: Option<bool>,
}

/// One step of a piecewise-constant rate.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When the rate takes effect.
    pub at: DurationSpec,
    /// Requests per second from then on.
    pub rps: f64,
}

/// `[apis.autoscaling]` as written. `policy` selects the policy (`fixed` by default) and the
/// other keys are that policy's settings (checked against the policy's own fields), plus
/// `overprovisioning`. Kept as a table so each policy owns its schema and defaults.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(transparent)]
pub struct AutoscalingSpec(pub toml::Table);

/// `[apis.dequeuer]`: Cortex's dequeuer constants (`pkg/dequeuer/dequeuer.go`), which its
/// AsyncAPI workers poll the queue with.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DequeuerSpec {
    /// SQS long poll: an idle worker waits this long for a message (`_waitTime`, 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_wait: Option<DurationSpec>,
    /// After a long poll that found nothing, the worker sleeps this long before polling again
    /// (`_notFoundSleepTime`, 10s; 0s: it polls again at once, always listening).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_receive_sleep: Option<DurationSpec>,
}
