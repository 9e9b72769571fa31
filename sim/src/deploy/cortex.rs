//! Cortex v0.42 `RealtimeAPI` and `AsyncAPI` specs and `cluster.yaml` node groups (field names and ranges from
//! `docs/workloads/realtime/configuration.md` and `pkg/types/clusterconfig/cluster_config.go`
//! of cortexlabs/cortex at v0.42.1).

use serde::{Deserialize, Serialize};

use super::{cpu_text, duration_text, mem_text, round3, Headroom, IMAGE_PLACEHOLDER, PORT};
use crate::scenario::apis::ReplicaShape;
use crate::scenario::schema::{ApiSpec, ScenarioFile};
use crate::scenario::PolicyChoice;

/// One API as `cortex deploy` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealtimeApi {
    /// The API's name.
    pub name: String,
    /// `RealtimeAPI`, or `AsyncAPI` for an API of `kind = "async"`.
    pub kind: String,
    /// Concurrency, queue and container.
    pub pod: CortexPod,
    /// Replica bounds and Cortex's autoscaler settings.
    pub autoscaling: CortexAutoscaling,
    /// Node groups the API may run on (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<String>,
}

/// `pod`: what one replica accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexPod {
    /// Port requests are sent to.
    pub port: u16,
    /// Requests sent into the container at once: processes × threads of the simulation.
    pub max_concurrency: u32,
    /// Requests queued per replica beyond `max_concurrency` before 503 (a RealtimeAPI's only:
    /// an AsyncAPI's queue is SQS, and Cortex rejects the field there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_length: Option<u32>,
    /// The serving container.
    pub containers: Vec<CortexContainer>,
}

/// One container of the pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexContainer {
    /// Container name.
    pub name: String,
    /// Image (the scenario's `apis.image`).
    pub image: String,
    /// Resource requests.
    pub compute: CortexCompute,
}

/// `compute`: the requests the simulator placed on nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexCompute {
    /// CPU request (`"1"`, `"500m"`).
    pub cpu: String,
    /// Whole GPUs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpu: u32,
    /// Memory request, per-process model copies included.
    pub mem: String,
}

/// `autoscaling`: every setting explicit, defaults included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexAutoscaling {
    /// Floor.
    pub min_replicas: u32,
    /// Ceiling.
    pub max_replicas: u32,
    /// Replicas at deploy time.
    pub init_replicas: u32,
    /// In-flight requests per replica the autoscaler aims for (absent for a fixed count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_in_flight: Option<f64>,
    /// Averaging window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Scale-down stabilization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downscale_stabilization_period: Option<String>,
    /// Scale-up stabilization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale_stabilization_period: Option<String>,
    /// Largest factor of one scale-down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downscale_factor: Option<f64>,
    /// Largest factor of one scale-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upscale_factor: Option<f64>,
    /// Scale-down dead band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downscale_tolerance: Option<f64>,
    /// Scale-up dead band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale_tolerance: Option<f64>,
}

/// The part of Cortex's `cluster.yaml` the simulation decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Cluster name (from the scenario's name).
    pub cluster_name: String,
    /// The region whose prices were simulated.
    pub region: String,
    /// The node groups, in the scenario's order.
    pub node_groups: Vec<CortexNodeGroup>,
}

/// One node group as Cortex's cluster config takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexNodeGroup {
    /// Group name.
    pub name: String,
    /// EC2 instance type.
    pub instance_type: String,
    /// Nodes kept at all times.
    pub min_instances: u32,
    /// Upper bound on nodes.
    pub max_instances: u32,
    /// Priority-expander priority, 1–100.
    pub priority: i64,
    /// Spot instances.
    pub spot: bool,
    /// The spot mix (spot groups only), explicit so Cortex's documented 50 % on-demand default
    /// cannot apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_config: Option<CortexSpotConfig>,
}

/// `spot_config` of a spot group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexSpotConfig {
    /// More instance types for spot capacity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_distribution: Vec<String>,
    /// The first this many nodes are on-demand.
    pub on_demand_base_capacity: u32,
    /// Percentage of the nodes above the base that are on-demand.
    pub on_demand_percentage_above_base_capacity: u32,
    /// Highest spot price, USD per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// Spot pools to draw on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_pools: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The Cortex spec of an API scaled by `fixed` or `cortex`.
pub(super) fn api(spec: &ApiSpec, shape: &ReplicaShape, notes: &mut Vec<String>) -> RealtimeApi {
    let a = &shape.autoscaling;
    let headroom = Headroom::of(a.overprovisioning);
    let autoscaling = match &a.policy {
        PolicyChoice::Cortex(c) => {
            let (floor, divisor) = headroom.floor_and_divisor(a.min_replicas, a.max_replicas);
            let target = c.target_in_flight / divisor;
            notes.extend(headroom.note(&spec.name, "Cortex", "target_in_flight"));
            CortexAutoscaling {
                min_replicas: floor,
                max_replicas: a.max_replicas,
                init_replicas: c.init_replicas.max(floor).min(a.max_replicas),
                target_in_flight: Some(round3(target)),
                window: Some(duration_text(c.window)),
                downscale_stabilization_period: Some(duration_text(
                    c.downscale_stabilization_period,
                )),
                upscale_stabilization_period: Some(duration_text(c.upscale_stabilization_period)),
                max_downscale_factor: Some(c.max_downscale_factor),
                max_upscale_factor: Some(c.max_upscale_factor),
                downscale_tolerance: Some(c.downscale_tolerance),
                upscale_tolerance: Some(c.upscale_tolerance),
            }
        }
        // A fixed count, overprovisioning included, is min = max = init: Cortex then never
        // scales, as the simulation did not.
        _ => {
            let count = a.overprovisioning.apply(a.min_replicas, a.max_replicas);
            CortexAutoscaling {
                min_replicas: count,
                max_replicas: count,
                init_replicas: count,
                target_in_flight: None,
                window: None,
                downscale_stabilization_period: None,
                upscale_stabilization_period: None,
                max_downscale_factor: None,
                max_upscale_factor: None,
                downscale_tolerance: None,
                upscale_tolerance: None,
            }
        }
    };
    if shape.processes > 1 {
        notes.push(format!(
            "{}: Cortex v0.42 has no processes_per_replica; run {} server processes of {} threads in the container (e.g. gunicorn --workers {} --threads {}) behind max_concurrency {}",
            spec.name,
            shape.processes,
            shape.threads,
            shape.processes,
            shape.threads,
            shape.processes * shape.threads
        ));
    }
    if spec.compute.mig_profile.is_some() {
        notes.push(format!(
            "{}: Cortex cannot request a MIG slice; the spec asks for a whole GPU",
            spec.name
        ));
    }
    let is_async = spec.kind.as_deref() == Some("async");
    RealtimeApi {
        name: spec.name.clone(),
        kind: if is_async { "AsyncAPI" } else { "RealtimeAPI" }.into(),
        pod: CortexPod {
            port: PORT,
            max_concurrency: shape.processes * shape.threads,
            max_queue_length: (!is_async).then_some(shape.max_queue_length),
            containers: vec![CortexContainer {
                name: "api".into(),
                image: spec
                    .image
                    .clone()
                    .unwrap_or_else(|| IMAGE_PLACEHOLDER.into()),
                compute: CortexCompute {
                    cpu: cpu_text(spec.compute.cpu.millicores()),
                    gpu: spec
                        .compute
                        .gpu
                        .max(u32::from(spec.compute.mig_profile.is_some())),
                    mem: mem_text(shape.mem_mib),
                },
            }],
        },
        autoscaling,
        node_groups: spec.node_groups.clone(),
    }
}

/// The node groups as Cortex's `cluster.yaml`. Priorities outside Cortex's 1–100 are mapped by
/// rank, which keeps the priority expander's order.
pub(super) fn cluster(file: &ScenarioFile, notes: &mut Vec<String>) -> ClusterConfig {
    let mut priorities: Vec<i32> = file.node_groups.iter().map(|g| g.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let in_range = priorities.iter().all(|p| (1..=100).contains(p));
    if !in_range {
        notes.push(
            "cluster: Cortex takes node-group priorities 1–100; the scenario's are mapped by rank (same order)".into(),
        );
    }
    let priority = |p: i32| -> i64 {
        if in_range {
            i64::from(p)
        } else {
            priorities.iter().position(|q| *q == p).unwrap_or(0) as i64 + 1
        }
    };
    let mut unmodelled = Vec::new();
    let node_groups = file
        .node_groups
        .iter()
        .map(|g| {
            if g.spot_capacity.is_some()
                || g.interruption_rate.is_some()
                || g.spot_launch_failure.is_some()
            {
                unmodelled.push(g.name.clone());
            }
            CortexNodeGroup {
                name: g.name.clone(),
                instance_type: g.instance_type.clone(),
                min_instances: g.min_instances,
                max_instances: g.max_instances,
                priority: priority(g.priority),
                spot: g.spot,
                spot_config: g.spot.then(|| {
                    let sc = g.spot_config.as_ref();
                    CortexSpotConfig {
                        instance_distribution: sc
                            .map(|s| s.instance_distribution.clone())
                            .unwrap_or_default(),
                        on_demand_base_capacity: sc
                            .and_then(|s| s.on_demand_base_capacity)
                            .unwrap_or(0),
                        on_demand_percentage_above_base_capacity: sc
                            .and_then(|s| s.on_demand_percentage_above_base_capacity)
                            .unwrap_or(0),
                        max_price: sc.and_then(|s| s.max_price),
                        instance_pools: sc.and_then(|s| s.instance_pools),
                    }
                }),
            }
        })
        .collect();
    if !unmodelled.is_empty() {
        notes.push(format!(
            "cluster: spot capacity, interruption and launch-failure rates of {} are assumptions of the simulation, not settings; check them against your region's spot history",
            unmodelled.join(", ")
        ));
    }
    let slug: String = file
        .name
        .as_deref()
        .unwrap_or("simctl")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let cluster_name = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    // Cortex names AWS resources after the cluster; keep it short.
    let cluster_name: String = cluster_name.chars().take(40).collect();
    let cluster_name = cluster_name.trim_end_matches('-').to_string();
    ClusterConfig {
        cluster_name: if cluster_name.is_empty() {
            "simctl".into()
        } else {
            cluster_name
        },
        region: "us-east-1".into(),
        node_groups,
    }
}
