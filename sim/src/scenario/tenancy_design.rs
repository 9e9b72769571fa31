//! `[tenancy] design`: the same tenants deployed three ways, so their cost and every tenant's
//! SLO compare on the same requests.
//!
//! - `shared`: as written — an API's tenants share its replicas and node groups.
//! - `pool_per_tenant`: every API with tenants becomes one API per tenant (`<api>-<tenant>`,
//!   same settings, that tenant's traffic alone) on its own copies of the API's node groups
//!   (`<group>-<tenant>`, same `min_instances`, so each pool pays for its own idle nodes).
//! - `cluster_per_tenant`: the same, with each tenant's copies in a cluster of its own: one more
//!   control plane (and `cluster_overhead_usd_per_hour`) per tenant cluster, plus the original
//!   cluster when anything is left in it.
//!
//! Each tenant keeps its random streams (see [`super::Tenant::stream`]), so every design sees the
//! same arrivals and service times.

use super::diagnostics::{FieldError, LoadError};
use super::model::{Api, NodeGroup, Scenario};
use super::schema::{ScenarioFile, TenancySpec};

/// The deployment designs `[tenancy] design` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    Shared,
    PoolPerTenant,
    ClusterPerTenant,
}

/// Most a cluster's extra cost may be, USD per hour (a sanity bound on typos).
const MAX_OVERHEAD_USD_PER_HOUR: f64 = 1_000.0;

/// Rewrite `scenario` into the design `spec` names.
pub(super) fn apply(scenario: &mut Scenario, spec: &TenancySpec) -> Result<(), LoadError> {
    let design = match spec.design.as_str() {
        "shared" => Design::Shared,
        "pool_per_tenant" => Design::PoolPerTenant,
        "cluster_per_tenant" => Design::ClusterPerTenant,
        other => {
            return Err(FieldError::new(
                "tenancy.design",
                format!(
                    "expected \"shared\", \"pool_per_tenant\" or \"cluster_per_tenant\", found {other:?}"
                ),
            )
            .into())
        }
    };
    let overhead = spec.cluster_overhead_usd_per_hour.unwrap_or(0.0);
    if !(0.0..=MAX_OVERHEAD_USD_PER_HOUR).contains(&overhead) {
        return Err(FieldError::new(
            "tenancy.cluster_overhead_usd_per_hour",
            format!("expected a price from 0 to {MAX_OVERHEAD_USD_PER_HOUR} USD per hour, found {overhead}"),
        )
        .into());
    }
    if spec.cluster_overhead_usd_per_hour.is_some() && design != Design::ClusterPerTenant {
        return Err(FieldError::new(
            "tenancy.cluster_overhead_usd_per_hour",
            "is what each tenant's own cluster costs: it applies to design = \"cluster_per_tenant\" only",
        )
        .into());
    }
    if !scenario.apis.iter().any(|a| !a.tenants.is_empty()) {
        return Err(FieldError::new(
            "tenancy",
            "a tenancy design deploys tenants: give an API [[apis.tenants]] or the scenario [[tenants]]",
        )
        .into());
    }
    if design == Design::Shared {
        return Ok(());
    }
    if scenario.karpenter.is_some() {
        // Karpenter's offerings are node groups tied to their NodePool: copying them per tenant
        // would leave the copies outside every pool's limits and consolidation.
        return Err(FieldError::new(
            "tenancy.design",
            "a pool or cluster per tenant copies node groups, which [[node_pools]] (Karpenter) provision: give each tenant a NodePool of its own instead",
        )
        .into());
    }
    let split: Vec<bool> = scenario
        .apis
        .iter()
        .map(|a| !a.tenants.is_empty())
        .collect();
    // Groups still used by what stays in the original cluster.
    let mut kept_used = vec![false; scenario.node_groups.len()];
    let stays = scenario
        .apis
        .iter()
        .zip(&split)
        .filter(|(_, &s)| !s)
        .flat_map(|(a, _)| &a.node_groups)
        .chain(scenario.placeholders.iter().flat_map(|p| &p.node_groups))
        .chain(scenario.batch_jobs.iter().flat_map(|j| &j.node_groups));
    for &g in stays {
        kept_used[g] = true;
    }
    let old_groups = std::mem::take(&mut scenario.node_groups);
    let mut renumber = vec![usize::MAX; old_groups.len()];
    for (g, group) in old_groups.iter().enumerate() {
        if kept_used[g] {
            renumber[g] = scenario.node_groups.len();
            scenario.node_groups.push(group.clone());
        }
    }
    let remap = |groups: &mut Vec<usize>| {
        for g in groups.iter_mut() {
            *g = renumber[*g];
        }
    };
    for p in &mut scenario.placeholders {
        remap(&mut p.node_groups);
    }
    for j in &mut scenario.batch_jobs {
        remap(&mut j.node_groups);
    }
    // (tenant, original group) -> its copy, shared by the tenant's APIs.
    let mut copies: Vec<((String, usize), usize)> = Vec::new();
    let mut tenants: Vec<String> = Vec::new();
    let mut apis = Vec::with_capacity(scenario.apis.len());
    // Where each API that stays whole lands (routers and pipelines feed only such APIs: an API
    // with tenants has traffic of its own).
    let mut api_renumber = vec![usize::MAX; split.len()];
    for (i, (api, split)) in std::mem::take(&mut scenario.apis)
        .into_iter()
        .zip(split)
        .enumerate()
    {
        if !split {
            let mut api = api;
            remap(&mut api.node_groups);
            api_renumber[i] = apis.len();
            apis.push(api);
            continue;
        }
        for tenant in &api.tenants {
            if !tenants.contains(&tenant.name) {
                tenants.push(tenant.name.clone());
            }
            let mut own: Api = api.clone();
            own.name = format!("{}-{}", api.name, tenant.name);
            own.tenants = vec![tenant.clone()];
            own.node_groups = api
                .node_groups
                .iter()
                .map(|&g| {
                    let key = (tenant.name.clone(), g);
                    if let Some((_, copy)) = copies.iter().find(|(k, _)| *k == key) {
                        return *copy;
                    }
                    let copy = scenario.node_groups.len();
                    scenario
                        .node_groups
                        .push(copy_of(&old_groups[g], &tenant.name));
                    copies.push((key, copy));
                    copy
                })
                .collect();
            apis.push(own);
        }
    }
    if let Some(clash) = name_clash(&apis, &scenario.node_groups) {
        return Err(FieldError::new("tenancy.design", clash).into());
    }
    scenario.apis = apis;
    for router in &mut scenario.routers {
        router
            .routes
            .iter_mut()
            .for_each(|r| r.api = api_renumber[r.api]);
        router
            .classes
            .iter_mut()
            .for_each(|c| c.api = api_renumber[c.api]);
    }
    for pipeline in &mut scenario.pipelines {
        pipeline
            .stages
            .iter_mut()
            .for_each(|a| *a = api_renumber[*a]);
    }
    if design == Design::ClusterPerTenant {
        let original = usize::from(kept_used.iter().any(|&u| u) || !scenario.batch_jobs.is_empty());
        let per_cluster = scenario.control_plane_usd_per_hour;
        scenario.control_plane_usd_per_hour =
            (original as f64) * per_cluster + tenants.len() as f64 * (per_cluster + overhead);
    }
    Ok(())
}

/// The scenario file as deployed under its `[tenancy]` design, for the manifests: with a pool or
/// a cluster per tenant, every API with tenants becomes one API per tenant (`<api>-<tenant>`)
/// on its copies of the node groups (`<group>-<tenant>`), as [`apply`] simulates it. Returns
/// a note for the deployer when the design needs more than one cluster.
pub(crate) fn deployed_file(file: &mut ScenarioFile) -> Option<String> {
    let design = file.tenancy.as_ref()?.design.clone();
    if design != "pool_per_tenant" && design != "cluster_per_tenant" {
        return None;
    }
    let all_groups: Vec<String> = file.node_groups.iter().map(|g| g.name.clone()).collect();
    let shared = file.tenants.clone();
    let mut used: Vec<String> = Vec::new();
    let mut groups = Vec::new();
    let mut apis = Vec::new();
    for api in std::mem::take(&mut file.apis) {
        let tenants = match (&api.traffic, api.tenants.is_empty()) {
            (None, true) => shared.clone(),
            (_, false) => api.tenants.clone(),
            (Some(_), true) => Vec::new(),
        };
        if tenants.is_empty() {
            used.extend(api.node_groups.iter().cloned());
            if api.node_groups.is_empty() {
                used.extend(all_groups.iter().cloned());
            }
            apis.push(api);
            continue;
        }
        let own_groups = if api.node_groups.is_empty() {
            all_groups.clone()
        } else {
            api.node_groups.clone()
        };
        for tenant in tenants {
            let mut copy = api.clone();
            copy.name = format!("{}-{}", api.name, tenant.name);
            copy.node_groups = own_groups
                .iter()
                .map(|g| format!("{g}-{}", tenant.name))
                .collect();
            for (g, name) in own_groups.iter().zip(&copy.node_groups) {
                if groups.iter().any(|(n, _)| n == name) {
                    continue;
                }
                if let Some(spec) = file.node_groups.iter().find(|s| &s.name == g) {
                    let mut spec = spec.clone();
                    spec.name = name.clone();
                    groups.push((name.clone(), spec));
                }
            }
            copy.traffic = Some(tenant.traffic.clone());
            copy.tenants = Vec::new();
            copy.fairness = None;
            apis.push(copy);
        }
    }
    file.apis = apis;
    file.tenants = Vec::new();
    let kept = std::mem::take(&mut file.node_groups)
        .into_iter()
        .filter(|g| used.contains(&g.name));
    file.node_groups = kept.chain(groups.into_iter().map(|(_, g)| g)).collect();
    (design == "cluster_per_tenant").then(|| {
        "tenancy design \"cluster_per_tenant\": the simulation gave each tenant a cluster of its own; cluster.yaml lists every tenant's node groups (<group>-<tenant>) — split them into one cluster per tenant, each API with its tenant's groups".to_string()
    })
}

/// A tenant's copy of a node group: same machines and bounds, its own nodes.
fn copy_of(group: &NodeGroup, tenant: &str) -> NodeGroup {
    let mut copy = group.clone();
    copy.name = format!("{}-{tenant}", group.name);
    copy
}

/// A generated name that collides with one already there.
fn name_clash(apis: &[Api], groups: &[NodeGroup]) -> Option<String> {
    for (i, a) in apis.iter().enumerate() {
        if apis[..i].iter().any(|b| b.name == a.name) {
            return Some(format!(
                "the per-tenant API {:?} would have the name of another API: rename one",
                a.name
            ));
        }
    }
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].iter().any(|h| h.name == g.name) {
            return Some(format!(
                "the per-tenant node group {:?} would have the name of another group: rename one",
                g.name
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Scenario;

    const BASE: &str = r#"
duration = "10m"
[cluster]
control_plane_usd_per_hour = 0.10
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 4
[[tenants]]
name = "a"
traffic = { kind = "poisson", rps = 5 }
[[tenants]]
name = "b"
traffic = { kind = "poisson", rps = 20 }
[[apis]]
name = "api"
[apis.compute]
cpu = "1"
mem = "1Gi"
[apis.service_time]
distribution = "constant"
value = "50ms"
"#;

    fn parse(extra: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{BASE}{extra}"), "t.toml", Path::new("."))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_pool_per_tenant_gives_each_tenant_its_api_and_groups() {
        let s = parse("[tenancy]\ndesign = \"pool_per_tenant\"\n").expect("valid");
        let apis: Vec<&str> = s.apis.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(apis, ["api-a", "api-b"]);
        let groups: Vec<&str> = s.node_groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(groups, ["cpu-a", "cpu-b"]);
        assert_eq!(s.apis[1].node_groups, vec![1]);
        assert_eq!(s.apis[1].tenants.len(), 1);
        // Same streams as in the shared design: the same requests.
        assert_eq!(s.apis[1].tenants[0].stream, "tenants/b");
        assert_eq!(s.control_plane_usd_per_hour, 0.10);
    }

    #[test]
    fn a_cluster_per_tenant_pays_a_control_plane_each() {
        let s = parse(
            "[tenancy]\ndesign = \"cluster_per_tenant\"\ncluster_overhead_usd_per_hour = 0.05\n",
        )
        .expect("valid");
        assert!((s.control_plane_usd_per_hour - 2.0 * 0.15).abs() < 1e-12);
    }

    #[test]
    fn shared_changes_nothing() {
        let shared = parse("[tenancy]\ndesign = \"shared\"\n").expect("valid");
        let plain = parse("").expect("valid");
        let names = |s: &Scenario| {
            let apis = s.apis.iter().map(|a| a.name.clone());
            apis.chain(s.node_groups.iter().map(|g| g.name.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&shared), names(&plain));
        assert_eq!(
            shared.control_plane_usd_per_hour,
            plain.control_plane_usd_per_hour
        );
    }

    #[test]
    fn routers_and_pipelines_keep_their_apis() {
        let extra = r#"
[[apis]]
name = "behind"
[apis.compute]
cpu = "1"
mem = "1Gi"
[apis.service_time]
distribution = "constant"
value = "50ms"
[[apis]]
name = "stage"
[apis.compute]
cpu = "1"
mem = "1Gi"
[apis.service_time]
distribution = "constant"
value = "50ms"
[[routers]]
name = "front"
traffic = { kind = "poisson", rps = 5 }
apis = [{ name = "behind", weight = 100 }]
[[pipelines]]
name = "chain"
traffic = { kind = "poisson", rps = 5 }
stages = ["stage"]
[tenancy]
design = "pool_per_tenant"
"#;
        let s = parse(extra).expect("valid");
        let behind = s
            .apis
            .iter()
            .position(|a| a.name == "behind")
            .expect("kept");
        assert_eq!(behind, 2);
        assert_eq!(s.routers[0].routes[0].api, behind);
        assert_eq!(s.pipelines[0].stages, vec![behind + 1]);
        assert_eq!(s.apis[behind + 1].name, "stage");
    }

    #[test]
    fn bad_designs_are_named() {
        let e = parse("[tenancy]\ndesign = \"per_tenant\"\n").expect_err("invalid");
        assert!(
            e.contains("tenancy.design") && e.contains("pool_per_tenant"),
            "{e}"
        );
        let e = parse("[tenancy]\ndesign = \"shared\"\ncluster_overhead_usd_per_hour = 1\n")
            .expect_err("invalid");
        assert!(e.contains("\"cluster_per_tenant\" only"), "{e}");
    }
}
