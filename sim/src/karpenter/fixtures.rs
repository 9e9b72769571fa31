//! Small pools over the built-in catalog for the translated upstream tests.

use super::*;

/// DaemonSets' CPU on every node (the scenario default: aws-node + kube-proxy).
const DS_CPU_M: u64 = 125;

/// Requests of `cpu_m` millicores and `mem_mib` MiB.
pub(crate) fn req(cpu_m: u64, mem_mib: u64) -> Requests {
    Requests {
        cpu_m,
        mem_mib,
        ..Requests::default()
    }
}

/// A pod that may run anywhere.
pub(crate) fn pod(cpu_m: u64, mem_mib: u64) -> Pod {
    Pod {
        requests: req(cpu_m, mem_mib),
        groups: (0..64).collect(),
    }
}

fn offering(pool: usize, group: usize, name: &str, spot: bool) -> Offering {
    let t = crate::catalog::builtin()
        .into_iter()
        .find(|t| t.name == name)
        .expect("catalog type");
    Offering {
        pool,
        group,
        instance_type: t.name.clone(),
        spot,
        price_usd_per_hour: t.price_usd_per_hour(spot),
        capacity: Requests {
            cpu_m: t.alloc_cpu_m - DS_CPU_M,
            mem_mib: t.alloc_mem_mib,
            gpu: t.gpus,
            ..Requests::default()
        },
        resources: Resources {
            cpu_m: u64::from(t.vcpu) * 1000,
            mem_mib: t.alloc_mem_mib,
            gpu: u64::from(t.gpus),
            nodes: 1,
        },
        interruption_rank: interruption_rank(t.interruption_bucket),
    }
}

/// A NodePool with default disruption settings over `offerings`.
pub(crate) fn pool(name: &str, weight: i32, offerings: Vec<usize>) -> NodePool {
    NodePool {
        name: name.into(),
        weight,
        offerings,
        limits: Limits::default(),
        policy: ConsolidationPolicy::WhenEmptyOrUnderutilized,
        consolidate_after: Some(SimTime::ZERO),
        budgets: vec![Budget::default_budget()],
        expire_after: None,
    }
}

fn build(spec: &[(&[&str], i32, &[bool])]) -> (Vec<NodePool>, Vec<Offering>) {
    let mut pools = Vec::new();
    let mut offerings = Vec::new();
    for (p, (types, weight, capacity_types)) in spec.iter().enumerate() {
        let mut mine = Vec::new();
        for name in *types {
            for &spot in *capacity_types {
                mine.push(offerings.len());
                let group = offerings.len();
                offerings.push(offering(p, group, name, spot));
            }
        }
        pools.push(pool(&format!("pool-{p}"), *weight, mine));
    }
    (pools, offerings)
}

/// One on-demand pool.
pub(crate) fn on_demand_pool(types: &[&str]) -> (Vec<NodePool>, Vec<Offering>) {
    build(&[(types, 0, &[false])])
}

/// One pool allowing both capacity types: per type, on-demand then spot.
pub(crate) fn spot_and_on_demand_pool(types: &[&str]) -> (Vec<NodePool>, Vec<Offering>) {
    build(&[(types, 0, &[false, true])])
}

/// One spot-only pool.
pub(crate) fn spot_only_pool(types: &[&str]) -> (Vec<NodePool>, Vec<Offering>) {
    build(&[(types, 0, &[true])])
}

/// Two on-demand pools with weights.
pub(crate) fn two_pools(
    a: &[&str],
    weight_a: i32,
    b: &[&str],
    weight_b: i32,
) -> (Vec<NodePool>, Vec<Offering>) {
    build(&[(a, weight_a, &[false]), (b, weight_b, &[false])])
}
