//! Loading a scenario file into a validated [`Scenario`].
//!
//! Errors name the file, the line and column, the field's path (`apis[0].pod.threads_per_process`)
//! and what was expected. Parsing happens in two passes: serde reads the file into the
//! [`schema`] types (type errors and unknown fields), then [`Scenario::from_file`] checks values and
//! cross-field rules and builds the typed model the engine runs. Errors of the second pass carry
//! a field path that is looked up in the TOML syntax tree to find its line.

pub mod policy;
pub mod schema;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalog::{self, InstanceType};
use crate::service_time::ServiceTime;
use crate::time::SimTime;
use crate::traffic::Traffic;
use crate::units::DurationSpec;
pub use policy::{Autoscaling, Overprovisioning, PolicyChoice};
use schema::{ApiSpec, BatchJobSpec, ScenarioFile, SloSpec};

/// A scenario that failed to load: where, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// The file at fault (the scenario, or a trace it names).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted path of the field (`apis[0].traffic.rps`), when the error is about one field.
    pub field: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An error about one field, before its line is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

type FieldResult<T> = Result<T, FieldError>;

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
    /// Placeholder pods (overprovisioning).
    pub placeholders: Vec<Placeholder>,
    /// Batch jobs.
    pub batch_jobs: Vec<BatchJob>,
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

/// A validated batch job (see [`schema::BatchJobSpec`]).
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
    /// Scheduling to readiness.
    pub startup_time: SimTime,
    /// Client-side timeout.
    pub timeout: Option<SimTime>,
    /// Added to every latency: time outside the replica.
    pub network_latency: SimTime,
    /// Service time model.
    pub service_time: ServiceTime,
    /// Arrival process.
    pub traffic: Traffic,
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
    /// Memory limit, MiB.
    pub mem_limit_mib: Option<u64>,
    /// Kubernetes QoS class of its pods.
    pub qos: QosClass,
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
    /// Requests one replica can hold before it answers 503: concurrency + queue.
    pub fn capacity(&self) -> u32 {
        self.processes * self.threads + self.max_queue_length
    }
}

impl Scenario {
    /// Read, parse and validate a scenario file. Relative trace paths resolve against the
    /// scenario file's directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: display.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read scenario: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Scenario::parse(&text, &display, &base)
    }

    /// Parse and validate scenario text; `file_name` is used in errors and `base_dir` to resolve
    /// relative paths.
    pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
        let file = parse_file(text, file_name)?;
        Scenario::from_file(file, base_dir).map_err(|e| match e {
            LoadError::Field(field) => locate(text, file_name, field),
            LoadError::Other(other) => other,
        })
    }

    fn from_file(file: ScenarioFile, base_dir: &Path) -> Result<Scenario, LoadError> {
        let duration = file.duration.0;
        if duration == SimTime::ZERO {
            return Err(FieldError::new("duration", "expected a duration > 0").into());
        }
        let timeline_step = match file.timeline_step {
            Some(step) if step.0 == SimTime::ZERO => {
                return Err(
                    FieldError::new("timeline_step", "expected a duration > 0, found 0s").into(),
                )
            }
            Some(step) => step.0,
            None => default_timeline_step(duration),
        };
        check_slo(&file.slo, "slo")?;
        let catalog = build_catalog(&file)?;
        let node_groups = build_node_groups(&file, &catalog)?;
        if file.apis.is_empty() && file.batch_jobs.is_empty() {
            return Err(FieldError::new(
                "apis",
                "expected at least one [[apis]] or [[batch_jobs]] entry",
            )
            .into());
        }
        let cluster_autoscaler = build_cluster_autoscaler(&file.cluster.autoscaler)?;
        let mut placeholders = Vec::new();
        for (i, p) in file.overprovisioning.iter().enumerate() {
            let path = format!("overprovisioning[{i}]");
            let groups = group_selector(&p.node_groups, &p.tolerations, &node_groups, &path)?;
            let requests = Requests {
                cpu_m: p.cpu.millicores(),
                mem_mib: p.mem.mebibytes(),
                gpu: p.gpu,
                ..Requests::default()
            };
            check_fits(requests, &groups, &node_groups, &path, "a placeholder pod")?;
            placeholders.push(Placeholder {
                node_groups: groups,
                replicas: p.replicas,
                requests,
                priority: p.priority,
            });
        }
        let mut apis = Vec::with_capacity(file.apis.len());
        for (i, spec) in file.apis.iter().enumerate() {
            let path = format!("apis[{i}]");
            if file.apis[..i].iter().any(|a| a.name == spec.name) {
                return Err(FieldError::new(
                    format!("{path}.name"),
                    format!("duplicate API name \"{}\"", spec.name),
                )
                .into());
            }
            apis.push(build_api(spec, &path, &file, &node_groups, base_dir)?);
        }
        let mut batch_jobs = Vec::with_capacity(file.batch_jobs.len());
        for (i, spec) in file.batch_jobs.iter().enumerate() {
            let path = format!("batch_jobs[{i}]");
            if file.batch_jobs[..i].iter().any(|j| j.name == spec.name) {
                return Err(FieldError::new(
                    format!("{path}.name"),
                    format!("duplicate batch job name \"{}\"", spec.name),
                )
                .into());
            }
            batch_jobs.push(build_batch_job(spec, &path, &node_groups, base_dir)?);
        }
        Ok(Scenario {
            name: file.name.clone().unwrap_or_else(|| "scenario".into()),
            duration,
            seed: file.seed,
            timeline_step,
            control_plane_usd_per_hour: file.cluster.control_plane_usd_per_hour,
            node_groups,
            apis,
            cluster_autoscaler,
            placeholders,
            batch_jobs,
            file,
        })
    }
}

/// Either a field error (to be located in the file) or an error in another file.
#[derive(Debug)]
pub(crate) enum LoadError {
    Field(FieldError),
    Other(ScenarioError),
}

impl From<FieldError> for LoadError {
    fn from(e: FieldError) -> Self {
        LoadError::Field(e)
    }
}

impl From<ScenarioError> for LoadError {
    fn from(e: ScenarioError) -> Self {
        LoadError::Other(e)
    }
}

/// 10 s, widened to whole minutes when the run would have more than 2,000 points.
fn default_timeline_step(duration: SimTime) -> SimTime {
    const MAX_POINTS: u64 = 2_000;
    let ten_s = SimTime::from_secs(10);
    if duration.0 / ten_s.0 <= MAX_POINTS {
        return ten_s;
    }
    let minute = SimTime::from_secs(60).0;
    let raw = duration.0.div_ceil(MAX_POINTS);
    SimTime(raw.div_ceil(minute) * minute)
}

fn parse_file(text: &str, file_name: &str) -> Result<ScenarioFile, ScenarioError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize::<_, ScenarioFile>(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = match inner.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let located = ScenarioError {
            file: file_name.to_string(),
            line,
            column,
            field: (path != "." && !path.is_empty()).then_some(path.clone()),
            message: inner.message().trim().replace('\n', "; "),
        };
        if line.is_none() && located.field.is_some() {
            locate(text, file_name, FieldError::new(path, located.message))
        } else {
            located
        }
    })
}

/// Turn a field error into a located one by finding the field in the TOML syntax tree (the
/// nearest existing ancestor when the field itself is absent).
fn locate(text: &str, file_name: &str, error: FieldError) -> ScenarioError {
    let span = toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| find_span(doc.as_table(), &error.path));
    let (line, column) = match span {
        Some(offset) => {
            let (l, c) = line_col(text, offset);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ScenarioError {
        file: file_name.to_string(),
        line,
        column,
        field: Some(error.path),
        message: error.message,
    }
}

/// Split `apis[0].pod.threads` into keys and indices.
fn path_segments(path: &str) -> Vec<Result<&str, usize>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let (key, idx) = rest.split_at(open);
            if !key.is_empty() {
                out.push(Ok(key));
            }
            rest = idx;
            for index in rest.split('[').filter(|s| !s.is_empty()) {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    out.push(Err(i));
                }
            }
        } else if !rest.is_empty() {
            out.push(Ok(rest));
        }
    }
    out
}

enum Node<'a> {
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
    Table(&'a toml_edit::Table),
}

impl Node<'_> {
    fn span_start(&self) -> Option<usize> {
        match self {
            Node::Item(item) => item.span().map(|s| s.start),
            Node::Value(value) => value.span().map(|s| s.start),
            Node::Table(table) => table.span().map(|s| s.start),
        }
    }
}

fn find_span(root: &toml_edit::Table, path: &str) -> Option<usize> {
    let mut node = Node::Table(root);
    let mut best = None;
    for segment in path_segments(path) {
        let next = match (&node, segment) {
            (Node::Table(t), Ok(key)) => t.get(key).map(Node::Item),
            (Node::Item(toml_edit::Item::Table(t)), Ok(key)) => t.get(key).map(Node::Item),
            (Node::Item(toml_edit::Item::Value(v)), seg) | (&Node::Value(v), seg) => {
                match (v, seg) {
                    (toml_edit::Value::InlineTable(t), Ok(key)) => t.get(key).map(Node::Value),
                    (toml_edit::Value::Array(a), Err(i)) => a.get(i).map(Node::Value),
                    _ => None,
                }
            }
            (Node::Item(toml_edit::Item::ArrayOfTables(a)), Err(i)) => a.get(i).map(Node::Table),
            _ => None,
        };
        match next {
            Some(n) => {
                if let Some(start) = n.span_start() {
                    best = Some(start);
                }
                node = n;
            }
            None => break,
        }
    }
    best
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn check_slo(slo: &SloSpec, path: &str) -> FieldResult<()> {
    for (name, rate) in [
        ("max_rejection_rate", slo.max_rejection_rate),
        ("max_timeout_rate", slo.max_timeout_rate),
    ] {
        if let Some(r) = rate {
            if !(0.0..=1.0).contains(&r) {
                return Err(FieldError::new(
                    format!("{path}.{name}"),
                    format!("expected a fraction between 0 and 1, found {r}"),
                ));
            }
        }
    }
    Ok(())
}

fn build_catalog(file: &ScenarioFile) -> FieldResult<Vec<InstanceType>> {
    let mut catalog = catalog::builtin();
    for (i, t) in file.instance_types.iter().enumerate() {
        let path = format!("instance_types[{i}]");
        if !(t.price_usd_per_hour.is_finite() && t.price_usd_per_hour >= 0.0) {
            return Err(FieldError::new(
                format!("{path}.price_usd_per_hour"),
                format!("expected a price ≥ 0, found {}", t.price_usd_per_hour),
            ));
        }
        if !(0.0..1.0).contains(&t.spot_discount) {
            return Err(FieldError::new(
                format!("{path}.spot_discount"),
                format!("expected a fraction in [0, 1), found {}", t.spot_discount),
            ));
        }
        let entry = InstanceType {
            name: t.name.clone(),
            vcpu: t.cpu.value.ceil() as u32,
            alloc_cpu_m: t.cpu.millicores(),
            alloc_mem_mib: t.mem.mebibytes(),
            gpus: t.gpu,
            accelerator: None,
            on_demand_usd_per_hour: t.price_usd_per_hour,
            spot_discount: t.spot_discount,
            interruption_bucket: "unknown",
        };
        match catalog.iter_mut().find(|c| c.name == t.name) {
            Some(existing) => *existing = entry,
            None => catalog.push(entry),
        }
    }
    Ok(catalog)
}

fn build_node_groups(file: &ScenarioFile, catalog: &[InstanceType]) -> FieldResult<Vec<NodeGroup>> {
    if file.node_groups.is_empty() {
        return Err(FieldError::new(
            "node_groups",
            "expected at least one [[node_groups]] entry",
        ));
    }
    let ds_cpu = file.cluster.daemonset_cpu.millicores();
    let ds_mem = file.cluster.daemonset_mem.mebibytes();
    let mut groups = Vec::with_capacity(file.node_groups.len());
    for (i, g) in file.node_groups.iter().enumerate() {
        let path = format!("node_groups[{i}]");
        if file.node_groups[..i].iter().any(|o| o.name == g.name) {
            return Err(FieldError::new(
                format!("{path}.name"),
                format!("duplicate node group name \"{}\"", g.name),
            ));
        }
        let Some(instance) = catalog.iter().find(|t| t.name == g.instance_type) else {
            let known: Vec<&str> = catalog.iter().map(|t| t.name.as_str()).collect();
            return Err(FieldError::new(
                format!("{path}.instance_type"),
                format!(
                    "unknown instance type \"{}\"; expected one of {} or an [[instance_types]] entry",
                    g.instance_type,
                    known.join(", ")
                ),
            ));
        };
        if g.max_instances == 0 {
            return Err(FieldError::new(
                format!("{path}.max_instances"),
                "expected an integer ≥ 1, found 0",
            ));
        }
        if g.min_instances > g.max_instances {
            return Err(FieldError::new(
                format!("{path}.min_instances"),
                format!(
                    "expected min_instances ≤ max_instances ({}), found {}",
                    g.max_instances, g.min_instances
                ),
            ));
        }
        let (default_median, default_p99) = if instance.gpus > 0 {
            (180.0, 300.0)
        } else {
            (55.0, 100.0)
        };
        let (median, p99) = match g.boot_time {
            Some(b) => (b.median.as_secs_f64(), b.p99.as_secs_f64()),
            None => (default_median, default_p99),
        };
        if median <= 0.0 || p99 <= median {
            return Err(FieldError::new(
                format!("{path}.boot_time"),
                format!("expected 0 < median < p99, found median {median}s, p99 {p99}s"),
            ));
        }
        for (field, value) in [
            ("spot_launch_failure", g.spot_launch_failure),
            ("co_interruption", g.co_interruption),
        ] {
            if let Some(v) = value {
                if !(0.0..=1.0).contains(&v) {
                    return Err(FieldError::new(
                        format!("{path}.{field}"),
                        format!("expected a probability between 0 and 1, found {v}"),
                    ));
                }
            }
        }
        if let Some(rate) = g.interruption_rate {
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(FieldError::new(
                    format!("{path}.interruption_rate"),
                    format!("expected a rate ≥ 0 per instance-hour, found {rate}"),
                ));
            }
        }
        if let Some(cap) = g.spot_capacity {
            if g.min_instances > cap {
                return Err(FieldError::new(
                    format!("{path}.min_instances"),
                    format!(
                        "expected min_instances ≤ spot_capacity ({cap}), found {}",
                        g.min_instances
                    ),
                ));
            }
        }
        if !g.spot {
            for (field, set) in [
                ("spot_capacity", g.spot_capacity.is_some()),
                ("spot_launch_failure", g.spot_launch_failure.is_some()),
                ("interruption_rate", g.interruption_rate.is_some()),
                ("co_interruption", g.co_interruption.is_some()),
            ] {
                if set {
                    return Err(FieldError::new(
                        format!("{path}.{field}"),
                        "only applies to spot groups (spot = true)",
                    ));
                }
            }
        }
        let mut mig = [0u16; crate::mig::KINDS];
        let gpu_sharing = match &g.gpu_sharing {
            None => None,
            Some(sh) if sh.mode == "mig" => {
                let accelerator = instance.accelerator.unwrap_or("no GPU");
                let profiles = sh.profiles.as_ref().ok_or_else(|| {
                    FieldError::new(
                        format!("{path}.gpu_sharing.profiles"),
                        "required for mode = \"mig\": the MIG instances of each GPU",
                    )
                })?;
                let kinds = profiles
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        crate::mig::kind(accelerator, name).map_err(|m| {
                            FieldError::new(format!("{path}.gpu_sharing.profiles[{i}]"), m)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                crate::mig::validate_partition(&kinds).map_err(|m| {
                    FieldError::new(
                        format!("{path}.gpu_sharing.profiles"),
                        format!("not a valid MIG partition of one GPU: {m}"),
                    )
                })?;
                for k in kinds {
                    mig[k] += instance.gpus as u16;
                }
                None
            }
            Some(sh) => {
                if sh.profiles.is_some() {
                    return Err(FieldError::new(
                        format!("{path}.gpu_sharing.profiles"),
                        "only for mode = \"mig\"",
                    ));
                }
                let default_overhead = match sh.mode.as_str() {
                    "time-slicing" => 0.05,
                    "mps" => 0.0,
                    other => {
                        return Err(FieldError::new(
                            format!("{path}.gpu_sharing.mode"),
                            format!(
                                "expected \"time-slicing\", \"mps\" or \"mig\", found \"{other}\""
                            ),
                        ))
                    }
                };
                if instance.gpus == 0 {
                    return Err(FieldError::new(
                        format!("{path}.gpu_sharing"),
                        format!("{} has no GPU to share", instance.name),
                    ));
                }
                if sh.replicas < 2 {
                    return Err(FieldError::new(
                        format!("{path}.gpu_sharing.replicas"),
                        format!("expected at least 2 pods per GPU, found {}", sh.replicas),
                    ));
                }
                let overhead = sh.context_switch_overhead.unwrap_or(default_overhead);
                if !(0.0..=10.0).contains(&overhead) {
                    return Err(FieldError::new(
                        format!("{path}.gpu_sharing.context_switch_overhead"),
                        format!("expected a fraction between 0 and 10, found {overhead}"),
                    ));
                }
                Some((sh.replicas, overhead))
            }
        };
        let mut taints = Vec::new();
        for (i, t) in g.taints.iter().enumerate() {
            let bad = || {
                FieldError::new(
                    format!("{path}.taints[{i}]"),
                    format!(
                        "expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute, found \"{t}\""
                    ),
                )
            };
            let (kv, effect) = t.rsplit_once(':').ok_or_else(bad)?;
            let (key, value) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (kv, None),
            };
            if key.is_empty() {
                return Err(bad());
            }
            match effect {
                "NoSchedule" | "NoExecute" => taints.push((key.to_string(), value)),
                "PreferNoSchedule" => {}
                _ => return Err(bad()),
            }
        }
        let gpu_memory_per_client_mib = match (&g.gpu_sharing, gpu_sharing) {
            (Some(sh), Some((replicas, _))) if sh.mode == "mps" => {
                instance.gpu_memory_mib().map(|m| m / u64::from(replicas))
            }
            _ => None,
        };
        let spot_mix = match &g.spot_config {
            None => None,
            Some(_) if !g.spot => {
                return Err(FieldError::new(
                    format!("{path}.spot_config"),
                    "spot_config needs spot = true",
                ))
            }
            Some(sc) => Some(build_spot_mix(sc, instance, catalog, &path)?),
        };
        groups.push(NodeGroup {
            gpu_sharing,
            spot_mix,
            gpu_memory_per_client_mib,
            mig,
            taints,
            boot_mu: median.ln(),
            boot_sigma: (p99.ln() - median.ln()) / 2.326_347_874_040_841,
            spot_capacity: g.spot_capacity.unwrap_or(u32::MAX),
            spot_launch_failure: g.spot_launch_failure.unwrap_or(0.0),
            interruption_rate: if g.spot {
                g.interruption_rate
                    .unwrap_or_else(|| instance.interruption_rate_per_hour())
            } else {
                0.0
            },
            co_interruption: g.co_interruption.unwrap_or(0.5),
            name: g.name.clone(),
            instance: instance.clone(),
            spot: g.spot,
            priority: g.priority,
            min_instances: g.min_instances,
            max_instances: g.max_instances,
            pod_cpu_m: instance.alloc_cpu_m.saturating_sub(ds_cpu),
            pod_mem_mib: instance.alloc_mem_mib.saturating_sub(ds_mem),
            price_usd_per_hour: instance.price_usd_per_hour(g.spot),
        });
    }
    Ok(groups)
}

fn positive_u32(value: Option<u32>, default: u32, path: String) -> FieldResult<u32> {
    match value {
        Some(0) => Err(FieldError::new(path, "expected an integer ≥ 1, found 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn build_api(
    spec: &ApiSpec,
    path: &str,
    file: &ScenarioFile,
    groups: &[NodeGroup],
    base_dir: &Path,
) -> Result<Api, LoadError> {
    let pod = &spec.pod;
    let (processes, threads) = match pod.max_concurrency {
        Some(_) if pod.processes_per_replica.is_some() || pod.threads_per_process.is_some() => {
            return Err(FieldError::new(
                format!("{path}.pod.max_concurrency"),
                "set either max_concurrency (Cortex ≥0.36) or processes_per_replica and threads_per_process (Cortex ≤0.35), not both",
            )
            .into())
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
    let max_queue_length = pod.max_queue_length.unwrap_or(100);

    let mem_mib = spec.compute.mem.mebibytes()
        + u64::from(processes) * spec.compute.mem_per_process.mebibytes();
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
            .map_err(|m| FieldError::new(field.clone(), m))?;
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
            )
            .into())
        }
        Some(m) => m - processes * threads,
        None => max_queue_length,
    };

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
    let qos = QosClass::of(requests.cpu_m, requests.mem_mib, cpu_limit_m, mem_limit_mib);
    let slo = spec.slo.clone().unwrap_or_else(|| file.slo.clone());
    if let Some(own) = &spec.slo {
        check_slo(own, &format!("{path}.slo"))?;
    }

    Ok(Api {
        name: spec.name.clone(),
        node_groups: allowed,
        requests,
        processes,
        threads,
        max_queue_length,
        startup_time: spec.startup_time.map(|d| d.0).unwrap_or(SimTime::ZERO),
        timeout,
        network_latency: spec.network_latency.map_or(SimTime::ZERO, |d| d.0),
        service_time: ServiceTime::from_spec(
            &spec.service_time,
            &format!("{path}.service_time"),
            base_dir,
        )?,
        traffic: Traffic::from_spec(&spec.traffic, &format!("{path}.traffic"), base_dir)?,
        autoscaling,
        slo,
        priority: spec.priority,
        service_scale,
        gpu_memory_mib: spec.compute.gpu_memory.mebibytes(),
        mem_usage_mib,
        mem_limit_mib,
        qos,
    })
}

fn build_spot_mix(
    sc: &schema::SpotConfigSpec,
    primary: &InstanceType,
    catalog: &[InstanceType],
    path: &str,
) -> FieldResult<SpotMix> {
    let percent = sc.on_demand_percentage_above_base_capacity.unwrap_or(0);
    if percent > 100 {
        return Err(FieldError::new(
            format!("{path}.spot_config.on_demand_percentage_above_base_capacity"),
            format!("expected a percentage in 0..=100, found {percent}"),
        ));
    }
    let max_price = sc.max_price.unwrap_or(primary.on_demand_usd_per_hour);
    if !(max_price.is_finite() && max_price > 0.0) {
        return Err(FieldError::new(
            format!("{path}.spot_config.max_price"),
            format!("expected a price > 0, found {max_price}"),
        ));
    }
    let mut types = vec![primary.clone()];
    for (j, name) in sc.instance_distribution.iter().enumerate() {
        let t = catalog.iter().find(|t| &t.name == name).ok_or_else(|| {
            FieldError::new(
                format!("{path}.spot_config.instance_distribution[{j}]"),
                format!("unknown instance type \"{name}\""),
            )
        })?;
        if t.vcpu < primary.vcpu || t.alloc_mem_mib < primary.alloc_mem_mib || t.gpus < primary.gpus
        {
            return Err(FieldError::new(
                format!("{path}.spot_config.instance_distribution[{j}]"),
                format!(
                    "{name} is smaller than {}; the distribution's types must be at least as large",
                    primary.name
                ),
            ));
        }
        if !types.iter().any(|o| o.name == t.name) {
            types.push(t.clone());
        }
    }
    let mut pools: Vec<(String, f64)> = types
        .iter()
        .map(|t| (t.name.clone(), t.price_usd_per_hour(true)))
        .filter(|(_, price)| *price <= max_price)
        .collect();
    pools.sort_by(|a, b| a.1.total_cmp(&b.1));
    let wanted = sc.instance_pools.unwrap_or(20);
    if !(1..=20).contains(&wanted) {
        return Err(FieldError::new(
            format!("{path}.spot_config.instance_pools"),
            format!("expected 1..=20, found {wanted}"),
        ));
    }
    pools.truncate(wanted as usize);
    if pools.is_empty() {
        return Err(FieldError::new(
            format!("{path}.spot_config.max_price"),
            format!("{max_price} USD/h is below every spot price of the distribution"),
        ));
    }
    Ok(SpotMix {
        on_demand_base: sc.on_demand_base_capacity.unwrap_or(0),
        on_demand_percent: percent,
        pools,
    })
}

fn build_batch_job(
    spec: &BatchJobSpec,
    path: &str,
    groups: &[NodeGroup],
    base_dir: &Path,
) -> Result<BatchJob, LoadError> {
    let workers = positive_u32(Some(spec.workers), 1, format!("{path}.workers"))?;
    if spec.items == 0 {
        return Err(
            FieldError::new(format!("{path}.items"), "expected an integer ≥ 1, found 0").into(),
        );
    }
    let batch_size = match spec.batch_size {
        Some(0) => {
            return Err(FieldError::new(
                format!("{path}.batch_size"),
                "expected an integer ≥ 1, found 0",
            )
            .into())
        }
        Some(n) => n,
        None => 1,
    };
    let failure_rate = spec.failure_rate.unwrap_or(0.0);
    if !(0.0..1.0).contains(&failure_rate) {
        return Err(FieldError::new(
            format!("{path}.failure_rate"),
            format!("expected a probability in [0, 1), found {failure_rate}"),
        )
        .into());
    }
    let max_receive_count = match &spec.sqs_dead_letter_queue {
        Some(dlq) => Some(positive_u32(
            Some(dlq.max_receive_count),
            1,
            format!("{path}.sqs_dead_letter_queue.max_receive_count"),
        )?),
        None => None,
    };
    let timeout = match spec.timeout {
        Some(DurationSpec(t)) if t == SimTime::ZERO => {
            return Err(
                FieldError::new(format!("{path}.timeout"), "expected a duration > 0").into(),
            )
        }
        other => other.map(|d| d.0),
    };
    if spec.compute.mig_profile.is_some() {
        return Err(FieldError::new(
            format!("{path}.compute.mig_profile"),
            "batch workers take whole GPUs (or a time-sliced share); MIG is for APIs",
        )
        .into());
    }
    let requests = Requests {
        cpu_m: spec.compute.cpu.millicores(),
        mem_mib: spec.compute.mem.mebibytes(),
        gpu: spec.compute.gpu,
        ..Requests::default()
    };
    let allowed = group_selector(&spec.node_groups, &spec.tolerations, groups, path)?;
    check_fits(
        requests,
        &allowed,
        groups,
        &format!("{path}.compute"),
        "a worker",
    )?;
    Ok(BatchJob {
        name: spec.name.clone(),
        submit_at: spec.submit_at.map_or(SimTime::ZERO, |d| d.0),
        workers,
        items: spec.items,
        batch_size,
        node_groups: allowed,
        requests,
        startup_time: spec.startup_time.map_or(SimTime::ZERO, |d| d.0),
        service_time: ServiceTime::from_spec(
            &spec.service_time,
            &format!("{path}.service_time"),
            base_dir,
        )?,
        failure_rate,
        timeout,
        max_receive_count,
        priority: spec.priority,
    })
}

/// Resolve a `node_groups = [...]` selector (all groups when empty), keeping the groups whose
/// taints the pod tolerates.
fn group_selector(
    names: &[String],
    tolerations: &[String],
    groups: &[NodeGroup],
    path: &str,
) -> FieldResult<Vec<usize>> {
    let selected: Vec<usize> = if names.is_empty() {
        (0..groups.len()).collect()
    } else {
        names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                groups.iter().position(|g| &g.name == name).ok_or_else(|| {
                    FieldError::new(
                        format!("{path}.node_groups[{j}]"),
                        format!("no node group named \"{name}\""),
                    )
                })
            })
            .collect::<FieldResult<_>>()?
    };
    let tolerates = |(key, value): &(String, Option<String>)| {
        tolerations.iter().any(|t| match t.split_once('=') {
            Some((k, v)) => k == key && value.as_deref() == Some(v),
            None => t == key,
        })
    };
    let allowed: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&g| groups[g].taints.iter().all(tolerates))
        .collect();
    if allowed.is_empty() {
        let blocked: Vec<String> = selected
            .iter()
            .map(|&g| {
                let taints: Vec<String> = groups[g]
                    .taints
                    .iter()
                    .map(|(k, v)| v.as_ref().map_or(k.clone(), |v| format!("{k}={v}")))
                    .collect();
                format!("{} (taints: {})", groups[g].name, taints.join(", "))
            })
            .collect();
        return Err(FieldError::new(
            format!("{path}.tolerations"),
            format!(
                "tolerates the taints of none of its node groups: {}",
                blocked.join("; ")
            ),
        ));
    }
    Ok(allowed)
}

/// A pod must fit on an empty node of at least one of its groups.
fn check_fits(
    requests: Requests,
    allowed: &[usize],
    groups: &[NodeGroup],
    path: &str,
    what: &str,
) -> FieldResult<()> {
    let fits = allowed.iter().any(|&g| {
        let group = &groups[g];
        // A pod gets at most one shared GPU (failRequestsGreaterThanOne).
        let gpu_ok = match group.gpu_sharing {
            Some(_) => requests.gpu <= 1,
            None => requests.gpu <= group.instance.gpus,
        };
        let mig_ok = requests
            .mig
            .iter()
            .zip(&group.mig)
            .all(|(want, have)| want <= have);
        requests.cpu_m <= group.pod_cpu_m
            && requests.mem_mib <= group.pod_mem_mib
            && gpu_ok
            && mig_ok
    });
    if fits {
        return Ok(());
    }
    let offered: Vec<String> = allowed
        .iter()
        .map(|&g| {
            let group = &groups[g];
            format!(
                "{} ({}: cpu {}m, mem {}Mi, gpu {})",
                group.name,
                group.instance.name,
                group.pod_cpu_m,
                group.pod_mem_mib,
                group.gpu_slots()
            )
        })
        .collect();
    Err(FieldError::new(
        path,
        format!(
            "{what} (cpu {}m, mem {}Mi, gpu {}) fits on no node of its node groups: {}",
            requests.cpu_m,
            requests.mem_mib,
            requests.gpu,
            offered.join("; ")
        ),
    ))
}

fn build_cluster_autoscaler(
    spec: &schema::ClusterAutoscalerSpec,
) -> FieldResult<ClusterAutoscaler> {
    let path = "cluster.autoscaler";
    let positive = |d: DurationSpec, field: &str| {
        if d.0 == SimTime::ZERO {
            Err(FieldError::new(
                format!("{path}.{field}"),
                "expected a duration > 0",
            ))
        } else {
            Ok(d.0)
        }
    };
    let expander = match spec.expander.as_str() {
        "priority" => Expander::Priority,
        "least-waste" => Expander::LeastWaste,
        "random" => Expander::Random,
        other => {
            return Err(FieldError::new(
                format!("{path}.expander"),
                format!("expected \"priority\", \"least-waste\" or \"random\", found \"{other}\""),
            ))
        }
    };
    if !(0.0..=1.0).contains(&spec.scale_down_utilization_threshold) {
        return Err(FieldError::new(
            format!("{path}.scale_down_utilization_threshold"),
            format!(
                "expected a fraction between 0 and 1, found {}",
                spec.scale_down_utilization_threshold
            ),
        ));
    }
    Ok(ClusterAutoscaler {
        enabled: spec.enabled,
        scan_interval: positive(spec.scan_interval, "scan_interval")?,
        expander,
        scale_down_unneeded_time: spec.scale_down_unneeded_time.0,
        scale_down_delay_after_add: spec.scale_down_delay_after_add.0,
        scale_down_utilization_threshold: spec.scale_down_utilization_threshold,
        max_node_provision_time: positive(spec.max_node_provision_time, "max_node_provision_time")?,
        initial_backoff: spec.initial_node_group_backoff.0,
        max_backoff: spec.max_node_group_backoff.0,
    })
}

/// Check that a `kind`-selected spec sets only the fields that kind uses. `present` are the
/// fields set in the file (besides the selector); `allowed` the ones the kind takes.
pub(crate) fn check_kind_fields(
    path: &str,
    selector: &str,
    kind: &str,
    present: &[&str],
    allowed: &[&str],
) -> FieldResult<()> {
    for field in present {
        if !allowed.contains(field) {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                format!(
                    "not used by {selector} = \"{kind}\", which takes {}",
                    if allowed.is_empty() {
                        "no other field".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The fields set in a spec, found by serializing it (unset options are skipped).
pub(crate) fn present_fields<T: serde::Serialize>(spec: &T, selector: &str) -> Vec<String> {
    match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(map)) => {
            map.keys().filter(|k| *k != selector).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// Resolve a path from the scenario against its directory.
pub(crate) fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// A required field of a `kind`-selected spec.
pub(crate) fn required<T: Copy>(
    value: Option<T>,
    path: &str,
    field: &str,
    kind: &str,
) -> FieldResult<T> {
    value.ok_or_else(|| {
        FieldError::new(
            format!("{path}.{field}"),
            format!("required for \"{kind}\""),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
duration = "1h"

[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1

[[apis]]
name = "echo"
[apis.pod]
threads_per_process = 2
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "poisson"
rps = 5
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "t.toml", Path::new("."))
    }

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = parse(MINIMAL).expect("valid");
        assert_eq!(s.apis[0].threads, 2);
        assert_eq!(s.apis[0].max_queue_length, 100);
        assert_eq!(s.timeline_step, SimTime::from_secs(10));
        assert_eq!(s.seed, 1);
    }

    #[test]
    fn zero_threads_is_located() {
        let text = MINIMAL.replace("threads_per_process = 2", "threads_per_process = 0");
        let e = parse(&text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml:12:23: apis[0].pod.threads_per_process: expected an integer ≥ 1, found 0"
        );
    }

    #[test]
    fn unknown_field_is_located() {
        let text = MINIMAL.replace("rps = 5", "rpss = 5");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(18));
        assert_eq!(e.field.as_deref(), Some("apis[0].traffic.rpss"));
        assert!(e.message.contains("unknown field `rpss`"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let text = MINIMAL.replace("rps = 5", "rps = \"fast\"");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(18));
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn min_above_max_is_rejected() {
        let text = format!("{MINIMAL}[apis.autoscaling]\nmin_replicas = 5\nmax_replicas = 2\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("apis[0].autoscaling.min_replicas"));
        assert_eq!(e.line, Some(20));
    }

    #[test]
    fn replica_that_fits_nowhere_is_rejected() {
        let text = format!("{MINIMAL}[apis.compute]\ngpu = 1\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("fits on no node"), "{e}");
    }

    #[test]
    fn timeline_step_widens_for_long_runs() {
        assert_eq!(
            default_timeline_step(SimTime::from_secs(3600)),
            SimTime::from_secs(10)
        );
        assert_eq!(
            default_timeline_step(SimTime::from_secs(86_400)),
            SimTime::from_secs(60)
        );
    }

    #[test]
    fn path_segments_split_keys_and_indices() {
        assert_eq!(
            path_segments("apis[0].traffic.steps[2].rps"),
            vec![
                Ok("apis"),
                Err(0),
                Ok("traffic"),
                Ok("steps"),
                Err(2),
                Ok("rps")
            ]
        );
    }

    #[test]
    fn taints_keep_untolerating_pods_off_a_group() {
        let text = MINIMAL.replace(
            "min_instances = 1\n",
            "min_instances = 1\ntaints = [\"nvidia.com/gpu:NoSchedule\"]\n",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("apis[0].tolerations"));
        assert!(e.message.contains("cpu (taints: nvidia.com/gpu)"), "{e}");
        let ok = text.replace(
            "name = \"echo\"\n",
            "name = \"echo\"\ntolerations = [\"nvidia.com/gpu\"]\n",
        );
        assert_eq!(parse(&ok).expect("tolerated").apis[0].node_groups, vec![0]);
        let bad = text.replace(":NoSchedule", ":Sometimes");
        assert!(parse(&bad)
            .unwrap_err()
            .message
            .contains("expected key[=value]"));
    }
}
