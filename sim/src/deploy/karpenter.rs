//! Karpenter `karpenter.sh/v1` NodePools for a scenario's `[[node_pools]]` (field names and
//! shapes from kubernetes-sigs/karpenter `pkg/apis/v1/nodepool.go` and the CRD
//! `pkg/apis/crds/karpenter.sh_nodepools.yaml`). NodePool is a CRD, so there is no typed
//! Kubernetes binding: the objects are JSON built from the validated scenario, and a test checks
//! them against the CRD's own openAPIV3Schema.
//!
//! Every setting the simulator used is written, defaults included (consolidation policy,
//! `consolidateAfter`, budgets, `expireAfter`, the on-demand capacity type of a pool that names
//! none), so an upstream default change cannot change what runs.

use serde_json::{json, Map, Value};

use crate::scenario::schema::{BudgetSpec, NodePoolSpec, ScenarioFile};
use crate::time::SimTime;
use crate::units::DurationSpec;

/// Name of the `EC2NodeClass` every pool's `nodeClassRef` points at (subnets, security groups,
/// AMIs: nothing the simulation decides).
pub const NODE_CLASS: &str = "default";

/// The NodePools of `file` (none without `[[node_pools]]`), in the scenario's order.
/// The file's pools must have been validated (`scenario::deployable` does).
pub(super) fn node_pools(file: &ScenarioFile, notes: &mut Vec<String>) -> Vec<Value> {
    if file.node_pools.is_empty() {
        return Vec::new();
    }
    notes.push(format!(
        "karpenter: every NodePool's nodeClassRef names the EC2NodeClass \"{NODE_CLASS}\" (karpenter.k8s.aws); create it with your subnets, security groups and AMI family, which the simulation does not decide"
    ));
    let weight = weights(&file.node_pools, notes);
    let mut assumed = Vec::new();
    let pools = file
        .node_pools
        .iter()
        .map(|pool| {
            if pool.boot_time.is_some()
                || pool.spot_capacity.is_some()
                || pool.spot_launch_failure.is_some()
                || pool.interruption_rate.is_some()
                || pool.co_interruption.is_some()
            {
                assumed.push(pool.name.clone());
            }
            node_pool(pool, weight(pool.weight), notes)
        })
        .collect();
    if !assumed.is_empty() {
        notes.push(format!(
            "karpenter: boot time, spot capacity, launch failures and interruption rates of pool(s) {} are assumptions of the simulation, not NodePool settings; check them against your region's history",
            assumed.join(", ")
        ));
    }
    let batch = file.cluster.karpenter.as_ref();
    let idle = batch
        .and_then(|k| k.batch_idle_duration)
        .map_or(SimTime::from_secs(1), |d| d.0);
    let max = batch
        .and_then(|k| k.batch_max_duration)
        .map_or(SimTime::from_secs(10), |d| d.0);
    notes.push(format!(
        "karpenter: the simulated provisioner batched pending pods with BATCH_IDLE_DURATION={} and BATCH_MAX_DURATION={}; these are settings of the Karpenter controller (environment or --batch-idle-duration / --batch-max-duration), not of a NodePool",
        go_duration(idle),
        go_duration(max)
    ));
    for api in &file.apis {
        let on_pools: Vec<&str> = api
            .node_groups
            .iter()
            .filter(|g| file.node_pools.iter().any(|p| &p.name == *g))
            .map(String::as_str)
            .collect();
        if !on_pools.is_empty() {
            notes.push(format!(
                "{}: runs on NodePool(s) {}; select them with the node label karpenter.sh/nodepool (a nodeSelector or node affinity), not with Cortex node_groups",
                api.name,
                on_pools.join(", ")
            ));
        }
    }
    pools
}

/// The NodePool of one pool, with `weight` already mapped into upstream's range.
fn node_pool(pool: &NodePoolSpec, weight: Option<i64>, notes: &mut Vec<String>) -> Value {
    let mut requirements: Vec<Value> = pool
        .requirements
        .iter()
        .map(|r| {
            let mut req = json!({ "key": r.key, "operator": r.operator });
            if !r.values.is_empty() {
                req["values"] = json!(r.values);
            }
            req
        })
        .collect();
    if !pool
        .requirements
        .iter()
        .any(|r| r.key == "karpenter.sh/capacity-type")
    {
        // Upstream's default, as simulated: written so it cannot change under us.
        requirements.push(json!({
            "key": "karpenter.sh/capacity-type",
            "operator": "In",
            "values": ["on-demand"],
        }));
    }
    let d = pool.disruption.as_ref();
    let budgets: Vec<Value> = match d.map(|d| &d.budgets[..]) {
        Some(b) if !b.is_empty() => b.iter().map(|b| budget(b, &pool.name, notes)).collect(),
        _ => vec![json!({ "nodes": "10%" })],
    };
    let mut spec = json!({
        "template": {
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": NODE_CLASS,
                },
                "requirements": requirements,
                "expireAfter": never_or_duration(pool.expire_after.as_deref().unwrap_or("720h"), &format!("{}.expire_after", pool.name), notes),
            },
        },
        "disruption": {
            "consolidationPolicy": d
                .and_then(|d| d.consolidation_policy.clone())
                .unwrap_or_else(|| "WhenEmptyOrUnderutilized".into()),
            "consolidateAfter": never_or_duration(
                d.and_then(|d| d.consolidate_after.as_deref()).unwrap_or("0s"),
                &format!("{}.disruption.consolidate_after", pool.name),
                notes,
            ),
            "budgets": budgets,
        },
    });
    if let Some(limits) = &pool.limits {
        let mut m = Map::new();
        if let Some(cpu) = &limits.cpu {
            m.insert("cpu".into(), cpu.text.clone().into());
        }
        if let Some(mem) = &limits.memory {
            m.insert("memory".into(), mem.text.clone().into());
        }
        if let Some(gpu) = limits.gpu {
            m.insert("nvidia.com/gpu".into(), gpu.into());
        }
        if let Some(nodes) = limits.nodes {
            m.insert("nodes".into(), nodes.into());
        }
        if !m.is_empty() {
            spec["limits"] = Value::Object(m);
        }
    }
    if let Some(w) = weight {
        spec["weight"] = w.into();
    }
    if !is_dns_subdomain(&pool.name) {
        notes.push(format!(
            "{}: a NodePool's name must be a lowercase DNS subdomain (a-z, 0-9, '-', '.'); rename the pool before applying",
            pool.name
        ));
    }
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": { "name": pool.name },
        "spec": spec,
    })
}

/// One disruption budget; its window's duration in whole minutes, as the CRD requires.
fn budget(b: &BudgetSpec, pool: &str, notes: &mut Vec<String>) -> Value {
    let mut out = json!({ "nodes": b.nodes });
    if !b.reasons.is_empty() {
        out["reasons"] = json!(b.reasons);
    }
    if let Some(s) = &b.schedule {
        out["schedule"] = s.clone().into();
    }
    if let Some(DurationSpec(d)) = b.duration {
        let micros = d.as_micros();
        let minutes = micros.div_ceil(60_000_000);
        if minutes * 60_000_000 != micros {
            notes.push(format!(
                "{pool}: a budget's duration takes whole minutes (CRD pattern); {} is written as {minutes}m",
                DurationSpec(d)
            ));
        }
        out["duration"] = minutes_text(minutes).into();
    }
    out
}

/// `Never`, or a duration in Go's `time.Duration` notation restricted to h/m/s, as the CRD's
/// pattern `^(([0-9]+(s|m|h))+|Never)$` accepts. Sub-second parts are rounded up, with a note.
fn never_or_duration(text: &str, field: &str, notes: &mut Vec<String>) -> String {
    if text == "Never" {
        return text.into();
    }
    // Validated already; a failure here would be a bug upstream of this module.
    let t = DurationSpec::parse(text).map_or(SimTime::ZERO, |d| d.0);
    if !t.as_micros().is_multiple_of(1_000_000) {
        notes.push(format!(
            "{field}: NodePools take whole seconds; {text} is written rounded up"
        ));
    }
    go_duration(t)
}

/// A duration as `1h2m3s` (whole seconds, rounded up; `0s` for zero).
fn go_duration(t: SimTime) -> String {
    let secs = t.as_micros().div_ceil(1_000_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Whole minutes as `1h30m`, `45m` or `2h` (the budget duration's pattern).
fn minutes_text(minutes: u64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Upstream takes weights 1–100 and treats a missing weight as 0. Weights already in 0–100 are
/// written as they are (0 as no weight); otherwise they are mapped by rank, which keeps the order
/// pools are tried in.
fn weights(pools: &[NodePoolSpec], notes: &mut Vec<String>) -> impl Fn(i32) -> Option<i64> {
    let mut distinct: Vec<i32> = pools.iter().map(|p| p.weight).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let in_range = distinct.iter().all(|w| (0..=100).contains(w));
    if !in_range {
        notes.push(
            "karpenter: NodePool weights are 1–100; the scenario's are mapped by rank (same order)"
                .into(),
        );
    }
    move |w| {
        if in_range {
            (w != 0).then_some(i64::from(w))
        } else {
            distinct
                .iter()
                .position(|d| *d == w)
                .map(|rank| (rank as i64 + 1).min(100))
        }
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
#[path = "karpenter_tests.rs"]
mod tests;
