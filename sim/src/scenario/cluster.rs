//! The cluster side of the spec: instance types, node groups (spot, boot times, GPU sharing,
//! taints, mixed spot pools), the cluster autoscaler, and which groups a pod may use and fit on.

use super::diagnostics::{FieldError, FieldResult};
use super::model::{ClusterAutoscaler, Expander, NodeGroup, Requests, SpotMix};
use super::schema::{self, ScenarioFile};
use crate::catalog::{self, InstanceType};
use crate::time::SimTime;
use crate::units::DurationSpec;

/// The built-in catalog with the file's `[[instance_types]]` added or overriding entries.
pub(super) fn build_catalog(file: &ScenarioFile) -> FieldResult<Vec<InstanceType>> {
    let mut catalog = catalog::builtin();
    for (i, t) in file.instance_types.iter().enumerate() {
        let path = format!("instance_types[{i}]");
        if !(0.0..=super::fields::MAX_PRICE_USD_PER_HOUR).contains(&t.price_usd_per_hour) {
            return Err(FieldError::new(
                format!("{path}.price_usd_per_hour"),
                format!(
                    "expected a price from 0 to {} USD per hour, found {}",
                    super::fields::MAX_PRICE_USD_PER_HOUR,
                    t.price_usd_per_hour
                ),
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

/// Node groups with their instance types resolved and every spot and sharing setting checked.
pub(super) fn build_node_groups(
    file: &ScenarioFile,
    catalog: &[InstanceType],
) -> FieldResult<Vec<NodeGroup>> {
    if file.node_groups.is_empty() && file.node_pools.is_empty() {
        return Err(FieldError::new(
            "node_groups",
            "expected at least one [[node_groups]] (or [[node_pools]]) entry",
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
        super::fields::at_most(
            g.max_instances,
            super::fields::MAX_FLEET,
            format!("{path}.max_instances"),
        )?;
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
            // One a minute is far above any spot market's (a few per instance-day at worst).
            if !(0.0..=60.0).contains(&rate) {
                return Err(FieldError::new(
                    format!("{path}.interruption_rate"),
                    format!("expected a rate from 0 to 60 per instance-hour, found {rate}"),
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
                            FieldError::new(
                                format!("{path}.gpu_sharing.profiles[{i}]"),
                                m.to_string(),
                            )
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

/// Cortex `spot_config`: the on-demand share and the spot pools within `max_price`.
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

/// Resolve a `node_groups = [...]` selector (all groups when empty), keeping the groups whose
/// taints the pod tolerates.
pub(super) fn group_selector(
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
                if let Some(g) = groups.iter().position(|g| &g.name == name) {
                    return Ok(vec![g]);
                }
                // A Karpenter NodePool's name selects its offerings' synthetic groups.
                let prefix = format!("{name}/");
                let pool: Vec<usize> = (0..groups.len())
                    .filter(|&g| groups[g].name.starts_with(&prefix))
                    .collect();
                if pool.is_empty() {
                    return Err(FieldError::new(
                        format!("{path}.node_groups[{j}]"),
                        format!("no node group or node pool named \"{name}\""),
                    ));
                }
                Ok(pool)
            })
            .collect::<FieldResult<Vec<Vec<usize>>>>()?
            .concat()
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
pub(super) fn check_fits(
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

/// `[cluster.autoscaler]` with its durations and expander checked.
pub(super) fn build_cluster_autoscaler(
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
