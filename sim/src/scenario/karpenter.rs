//! `[[node_pools]]` → Karpenter's pools and offerings. Each offering (pool × instance type ×
//! capacity type) becomes a synthetic node group named `pool/type/spot|on-demand`, appended
//! after the file's node groups, with no nodes at the start; the engine's Karpenter room
//! launches and deletes its nodes. Node groups written beside pools are static capacity
//! (their `min_instances` nodes); the cluster autoscaler does not run.

use super::diagnostics::{FieldError, FieldResult};
use super::model::NodeGroup;
use super::schema::{self, NodePoolSpec, ScenarioFile};
use crate::catalog::InstanceType;
use crate::karpenter::{
    Budget, BudgetNodes, ConsolidationPolicy, CronSchedule, Karpenter, Limits, NodePool, Offering,
    Reason,
};
use crate::time::SimTime;
use crate::units::DurationSpec;

const KEYS: &[&str] = &[
    "karpenter.sh/capacity-type",
    "node.kubernetes.io/instance-type",
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-gpu-count",
];

/// The label `key` of an offering of `t`; `None` when the node would not carry it (GPU count
/// on a type without GPUs, as the AWS provider labels nodes).
fn label(t: &InstanceType, spot: bool, key: &str) -> Option<String> {
    let (family, size) = t.name.split_once('.').unwrap_or((&t.name, ""));
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let generation: String = family[category.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some(match key {
        "karpenter.sh/capacity-type" => if spot { "spot" } else { "on-demand" }.to_string(),
        "node.kubernetes.io/instance-type" => t.name.clone(),
        "karpenter.k8s.aws/instance-family" => family.to_string(),
        "karpenter.k8s.aws/instance-size" => size.to_string(),
        "karpenter.k8s.aws/instance-category" => category,
        "karpenter.k8s.aws/instance-generation" => generation,
        "karpenter.k8s.aws/instance-cpu" => t.vcpu.to_string(),
        "karpenter.k8s.aws/instance-gpu-count" if t.gpus > 0 => t.gpus.to_string(),
        _ => return None,
    })
}

/// Whether an offering satisfies every requirement (checked already).
fn matches(t: &InstanceType, spot: bool, reqs: &[schema::RequirementSpec]) -> bool {
    reqs.iter().all(|r| {
        let value = label(t, spot, &r.key);
        let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        let bound = r.values.first().and_then(|v| v.parse::<i64>().ok());
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| r.values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !r.values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" => matches!((number(&value), bound), (Some(v), Some(b)) if v > b),
            "Lt" => matches!((number(&value), bound), (Some(v), Some(b)) if v < b),
            _ => false,
        }
    })
}

fn check_requirements(spec: &NodePoolSpec, path: &str) -> FieldResult<()> {
    for (j, r) in spec.requirements.iter().enumerate() {
        let at = format!("{path}.requirements[{j}]");
        if !KEYS.contains(&r.key.as_str()) {
            return Err(FieldError::new(
                format!("{at}.key"),
                format!(
                    "unsupported key \"{}\"; expected one of {}",
                    r.key,
                    KEYS.join(", ")
                ),
            ));
        }
        match r.operator.as_str() {
            "In" | "NotIn" if r.values.is_empty() => {
                return Err(FieldError::new(
                    format!("{at}.values"),
                    format!("operator {} needs at least one value", r.operator),
                ))
            }
            "Gt" | "Lt" if r.values.len() != 1 || r.values[0].parse::<i64>().is_err() => {
                return Err(FieldError::new(
                    format!("{at}.values"),
                    format!("operator {} needs exactly one integer value", r.operator),
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            other => {
                return Err(FieldError::new(
                    format!("{at}.operator"),
                    format!(
                        "expected In, NotIn, Exists, DoesNotExist, Gt or Lt, found \"{other}\""
                    ),
                ))
            }
        }
        if r.key == "karpenter.sh/capacity-type" {
            if let Some(v) = r.values.iter().find(|v| *v != "spot" && *v != "on-demand") {
                return Err(FieldError::new(
                    format!("{at}.values"),
                    format!("expected \"spot\" or \"on-demand\", found \"{v}\""),
                ));
            }
        }
    }
    Ok(())
}

/// A duration or `"Never"`.
fn duration_or_never(text: &str, field: String) -> FieldResult<Option<SimTime>> {
    if text == "Never" {
        return Ok(None);
    }
    DurationSpec::parse(text).map(|d| Some(d.0)).map_err(|e| {
        FieldError::new(
            field,
            format!("expected a duration like \"30s\" or \"Never\": {e}"),
        )
    })
}

fn build_budgets(spec: &[schema::BudgetSpec], path: &str) -> FieldResult<Vec<Budget>> {
    if spec.is_empty() {
        return Ok(vec![Budget::default_budget()]);
    }
    spec.iter()
        .enumerate()
        .map(|(k, b)| {
            let at = format!("{path}.disruption.budgets[{k}]");
            let nodes = BudgetNodes::parse(&b.nodes)
                .map_err(|m| FieldError::new(format!("{at}.nodes"), m))?;
            let reasons = b
                .reasons
                .iter()
                .enumerate()
                .map(|(r, name)| match name.as_str() {
                    "Empty" => Ok(Reason::Empty),
                    "Underutilized" => Ok(Reason::Underutilized),
                    "Drifted" => Ok(Reason::Drifted),
                    other => Err(FieldError::new(
                        format!("{at}.reasons[{r}]"),
                        format!("expected Empty, Underutilized or Drifted, found \"{other}\""),
                    )),
                })
                .collect::<FieldResult<Vec<_>>>()?;
            let window = match (&b.schedule, b.duration) {
                (None, None) => None,
                (Some(s), Some(d)) => Some((
                    CronSchedule::parse(s)
                        .map_err(|m| FieldError::new(format!("{at}.schedule"), m))?,
                    d.0,
                )),
                (Some(_), None) => {
                    return Err(FieldError::new(
                        format!("{at}.duration"),
                        "a budget with a schedule needs a duration",
                    ))
                }
                (None, Some(_)) => {
                    return Err(FieldError::new(
                        format!("{at}.schedule"),
                        "a budget with a duration needs a schedule",
                    ))
                }
            };
            Ok(Budget {
                nodes,
                reasons,
                window,
            })
        })
        .collect()
}

fn build_limits(spec: &Option<schema::LimitsSpec>) -> Limits {
    match spec {
        None => Limits::default(),
        Some(l) => Limits {
            cpu_m: l.cpu.as_ref().map(|q| q.millicores()),
            mem_mib: l.memory.as_ref().map(|q| q.mebibytes()),
            gpu: l.gpu,
            nodes: l.nodes,
        },
    }
}

/// Build the pools and their offerings, appending one synthetic node group per offering to
/// `groups`. `None` without `[[node_pools]]`.
pub(super) fn build_karpenter(
    file: &ScenarioFile,
    catalog: &[InstanceType],
    groups: &mut Vec<NodeGroup>,
) -> FieldResult<Option<Karpenter>> {
    if file.node_pools.is_empty() {
        if file.cluster.karpenter.is_some() {
            return Err(FieldError::new(
                "cluster.karpenter",
                "only applies with [[node_pools]]",
            ));
        }
        return Ok(None);
    }
    if file.cluster.autoscaler != schema::ClusterAutoscalerSpec::default() {
        return Err(FieldError::new(
            "cluster.autoscaler",
            "the cluster autoscaler does not run with [[node_pools]] (Karpenter provisions the nodes); remove [cluster.autoscaler] or the node pools",
        ));
    }
    for (i, g) in file.node_groups.iter().enumerate() {
        if g.min_instances == 0 {
            return Err(FieldError::new(
                format!("node_groups[{i}].min_instances"),
                "with [[node_pools]] node groups are static capacity that nothing scales: expected min_instances ≥ 1 (Karpenter launches every other node)",
            ));
        }
    }
    let mut pools = Vec::new();
    let mut offerings: Vec<Offering> = Vec::new();
    for (p, spec) in file.node_pools.iter().enumerate() {
        let path = format!("node_pools[{p}]");
        if file.node_pools[..p].iter().any(|o| o.name == spec.name)
            || file.node_groups.iter().any(|g| g.name == spec.name)
        {
            return Err(FieldError::new(
                format!("{path}.name"),
                format!(
                    "duplicate name \"{}\" (node pools and node groups share names)",
                    spec.name
                ),
            ));
        }
        check_requirements(spec, &path)?;
        let capacity_typed = spec
            .requirements
            .iter()
            .any(|r| r.key == "karpenter.sh/capacity-type");
        let mut synthetic = Vec::new();
        for t in catalog {
            for spot in [false, true] {
                // Upstream defaults a pool without a capacity-type requirement to on-demand.
                if (!capacity_typed && spot) || !matches(t, spot, &spec.requirements) {
                    continue;
                }
                synthetic.push(schema::NodeGroupSpec {
                    name: format!(
                        "{}/{}/{}",
                        spec.name,
                        t.name,
                        if spot { "spot" } else { "on-demand" }
                    ),
                    instance_type: t.name.clone(),
                    spot,
                    priority: spec.weight,
                    min_instances: 0,
                    max_instances: super::fields::MAX_FLEET,
                    boot_time: spec.boot_time,
                    spot_capacity: spec.spot_capacity.filter(|_| spot),
                    spot_launch_failure: spec.spot_launch_failure.filter(|_| spot),
                    interruption_rate: spec.interruption_rate.filter(|_| spot),
                    co_interruption: spec.co_interruption.filter(|_| spot),
                    taints: Vec::new(),
                    gpu_sharing: None,
                    spot_config: None,
                });
            }
        }
        if synthetic.is_empty() {
            return Err(FieldError::new(
                format!("{path}.requirements"),
                "no instance type in the catalog (or [[instance_types]]) meets these requirements",
            ));
        }
        // The node groups' own checks (boot time, spot fields), reported at the pool.
        let mut one = file.clone();
        one.node_groups = synthetic;
        let built = super::cluster::build_node_groups(&one, catalog).map_err(|e| {
            let field = e.path.rsplit('.').next().unwrap_or("").to_string();
            FieldError::new(format!("{path}.{field}"), e.message)
        })?;
        let mut mine = Vec::new();
        for g in built {
            mine.push(offerings.len());
            offerings.push(Offering::of_group(p, groups.len(), &g));
            groups.push(g);
        }
        let d = spec.disruption.as_ref();
        let policy = match d.and_then(|d| d.consolidation_policy.as_deref()) {
            None | Some("WhenEmptyOrUnderutilized") => {
                ConsolidationPolicy::WhenEmptyOrUnderutilized
            }
            Some("WhenEmpty") => ConsolidationPolicy::WhenEmpty,
            Some(other) => {
                return Err(FieldError::new(
                    format!("{path}.disruption.consolidation_policy"),
                    format!(
                        "expected \"WhenEmpty\" or \"WhenEmptyOrUnderutilized\", found \"{other}\""
                    ),
                ))
            }
        };
        let consolidate_after = match d.and_then(|d| d.consolidate_after.as_deref()) {
            None => Some(SimTime::ZERO),
            Some(text) => duration_or_never(text, format!("{path}.disruption.consolidate_after"))?,
        };
        let expire_after = match spec.expire_after.as_deref() {
            None => Some(SimTime::from_secs(720 * 3600)),
            Some(text) => duration_or_never(text, format!("{path}.expire_after"))?,
        };
        if expire_after == Some(SimTime::ZERO) {
            return Err(FieldError::new(
                format!("{path}.expire_after"),
                "expected a duration > 0 or \"Never\"",
            ));
        }
        pools.push(NodePool {
            name: spec.name.clone(),
            weight: spec.weight,
            offerings: mine,
            limits: build_limits(&spec.limits),
            policy,
            consolidate_after,
            budgets: build_budgets(d.map_or(&[][..], |d| &d.budgets), &path)?,
            expire_after,
        });
    }
    let settings = file.cluster.karpenter.clone();
    let idle = settings
        .as_ref()
        .and_then(|k| k.batch_idle_duration)
        .map_or(SimTime::from_secs(1), |d| d.0);
    let max = settings
        .as_ref()
        .and_then(|k| k.batch_max_duration)
        .map_or(SimTime::from_secs(10), |d| d.0);
    if idle == SimTime::ZERO || max < idle {
        return Err(FieldError::new(
            "cluster.karpenter",
            format!(
                "expected 0 < batch_idle_duration ≤ batch_max_duration, found {} and {}",
                DurationSpec(idle),
                DurationSpec(max)
            ),
        ));
    }
    Ok(Some(Karpenter {
        pools,
        offerings,
        batch_idle: idle,
        batch_max: max,
    }))
}
