//! Provisioning: pack a batch of pending pods onto in-flight nodes, then onto new NodeClaims
//! (`pkg/controllers/provisioning/scheduling/scheduler.go`), and pick the offering a NodeClaim
//! launches as (the AWS provider's `instance.go`).

use super::{add, fits, packing_order, NodePool, Offering, Pod, Resources};
use crate::scenario::Requests;

/// A node being launched (booting) that pods can be packed onto first.
#[derive(Debug, Clone, PartialEq)]
pub struct Inflight {
    /// Its node group.
    pub group: usize,
    /// Room left on it.
    pub free: Requests,
}

/// A node to launch: its pool, the pods packed onto it, and every offering that still fits them
/// all (what CreateFleet chooses among).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeClaim {
    /// The NodePool.
    pub pool: usize,
    /// Pods (indices into the batch).
    pub pods: Vec<usize>,
    /// Offerings that fit the pods, by index, cheapest first.
    pub options: Vec<usize>,
    /// The pods' requests together.
    pub requests: Requests,
}

/// What a provisioning pass decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New nodes to launch.
    pub claims: Vec<NodeClaim>,
    /// Pods that will fit on in-flight nodes (index into the batch, index into `inflight`).
    pub on_inflight: Vec<(usize, usize)>,
    /// Pods no pool can take (limits, requirements, or too big for every offering).
    pub unschedulable: Vec<usize>,
}

/// Pack `pods` (CPU then memory descending) first onto in-flight nodes, then onto open
/// NodeClaims, then onto a new NodeClaim from the highest-weight pool with an offering that
/// fits the pod and stays within the pool's `limits` given `used` (each pool's launched
/// capacity). A new NodeClaim reserves the largest capacity among its options against the
/// limits, as upstream's `subtractMax` does. `available` says whether an offering may be
/// launched now (not in the unavailable-offerings cache).
pub fn provision(
    pods: &[Pod],
    inflight: &[Inflight],
    pools: &[NodePool],
    offerings: &[Offering],
    used: &[Resources],
    available: &dyn Fn(usize) -> bool,
) -> Plan {
    let mut plan = Plan::default();
    let mut inflight: Vec<Inflight> = inflight.to_vec();
    let mut reserved: Vec<Resources> = used.to_vec();
    let mut pool_order: Vec<usize> = (0..pools.len()).collect();
    pool_order.sort_by_key(|&p| std::cmp::Reverse(pools[p].weight));
    for i in packing_order(pods) {
        let pod = &pods[i];
        if let Some(n) = inflight.iter_mut().position(|f| {
            pod.groups.contains(&f.group)
                && crate::cluster::take_if_fits(&mut f.free, &pod.requests)
        }) {
            plan.on_inflight.push((i, n));
            continue;
        }
        let joined = plan.claims.iter_mut().any(|claim| {
            let total = add(&claim.requests, &pod.requests);
            let still: Vec<usize> = claim
                .options
                .iter()
                .copied()
                .filter(|&o| {
                    pod.groups.contains(&offerings[o].group) && fits(&offerings[o].capacity, &total)
                })
                .collect();
            if still.is_empty() {
                return false;
            }
            claim.options = still;
            claim.requests = total;
            claim.pods.push(i);
            true
        });
        if joined {
            continue;
        }
        let new = pool_order.iter().find_map(|&p| {
            let options: Vec<usize> = pools[p]
                .offerings
                .iter()
                .copied()
                .filter(|&o| {
                    let off = &offerings[o];
                    pod.groups.contains(&off.group)
                        && available(o)
                        && fits(&off.capacity, &pod.requests)
                        && pools[p].limits.allow(reserved[p].plus(off.resources))
                })
                .collect();
            (!options.is_empty()).then_some((p, options))
        });
        match new {
            Some((pool, options)) => {
                let biggest = options
                    .iter()
                    .fold(Resources::default(), |m, &o| m.max(offerings[o].resources));
                reserved[pool] = reserved[pool].plus(biggest);
                plan.claims.push(NodeClaim {
                    pool,
                    pods: vec![i],
                    options,
                    requests: pod.requests,
                });
            }
            None => plan.unschedulable.push(i),
        }
    }
    plan
}

/// The offering a NodeClaim launches as, among its `options` still `available`:
///
/// - Spot when any spot option is left: spot options priced above the cheapest on-demand
///   option are dropped (`SpotOfferingFilter`), the cheapest [`super::MAX_INSTANCE_TYPES`] kept,
///   and EC2's **price-capacity-optimized** strategy picks "the lowest price among the pools
///   with the most available capacity". The simulator knows no live capacity, so it takes the
///   Spot Advisor interruption bucket as the capacity proxy: the lowest bucket first, then the
///   lowest price.
/// - Otherwise on-demand at the **lowest price** (CreateFleet's `lowest-price`).
///
/// `None` when nothing is available. After an insufficient-capacity failure the caller marks
/// the offering unavailable and asks again, which falls back to the next spot pool and, when
/// spot is exhausted, to on-demand if the pool allows it.
pub fn choose_offering(
    options: &[usize],
    offerings: &[Offering],
    available: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let price = |o: usize| offerings[o].price_usd_per_hour;
    let by_price = |a: &usize, b: &usize| price(*a).total_cmp(&price(*b)).then(a.cmp(b));
    let open: Vec<usize> = options.iter().copied().filter(|&o| available(o)).collect();
    let cheapest_on_demand = open
        .iter()
        .filter(|&&o| !offerings[o].spot)
        .map(|&o| price(o))
        .fold(f64::INFINITY, f64::min);
    let mut spot: Vec<usize> = open
        .iter()
        .copied()
        .filter(|&o| offerings[o].spot && price(o) <= cheapest_on_demand)
        .collect();
    if !spot.is_empty() {
        spot.sort_by(by_price);
        spot.truncate(super::MAX_INSTANCE_TYPES);
        return spot.into_iter().min_by(|a, b| {
            offerings[*a]
                .interruption_rank
                .cmp(&offerings[*b].interruption_rank)
                .then(by_price(a, b))
        });
    }
    open.into_iter()
        .filter(|&o| !offerings[o].spot)
        .min_by(by_price)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn all(_: usize) -> bool {
        true
    }

    /// `provision` of `pods` with no node in flight, the first pool using nothing yet and every
    /// offering available.
    fn provision_fresh(pods: &[Pod], pools: &[NodePool], offerings: &[Offering]) -> Plan {
        provision(pods, &[], pools, offerings, &[Resources::default()], &all)
    }

    // Upstream: scheduling/instance_selection_test.go, It("should schedule on one of the
    // cheapest instances"): the launched type is the cheapest that fits.
    #[test]
    fn cheapest_fitting_instance() {
        let (pools, offerings) = on_demand_pool(&["m5.large", "m5.xlarge", "c5.4xlarge"]);
        let plan = provision_fresh(&[pod(1000, 1024)], &pools, &offerings);
        assert_eq!(plan.claims.len(), 1);
        let chosen = choose_offering(&plan.claims[0].options, &offerings, &all).unwrap();
        assert_eq!(offerings[chosen].instance_type, "m5.large");
        // A pod too big for m5.large goes to the cheapest type that fits it.
        let plan = provision_fresh(&[pod(3000, 1024)], &pools, &offerings);
        let chosen = choose_offering(&plan.claims[0].options, &offerings, &all).unwrap();
        assert_eq!(offerings[chosen].instance_type, "m5.xlarge");
    }

    // Upstream: provisioning/suite_test.go, It("should schedule if limits would be met"):
    // cpu limit 2, a 1.75-CPU pod, "A 2 CPU node can be launched".
    #[test]
    fn schedules_when_limits_would_be_met() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large", "m5.xlarge"]);
        pools[0].limits.cpu_m = Some(2000);
        let plan = provision_fresh(&[pod(1750, 512)], &pools, &offerings);
        assert_eq!(plan.claims.len(), 1);
        assert_eq!(plan.unschedulable, Vec::<usize>::new());
        let names: Vec<&str> = plan.claims[0]
            .options
            .iter()
            .map(|&o| offerings[o].instance_type.as_str())
            .collect();
        assert_eq!(names, vec!["m5.large"]);
    }

    // Upstream: It("should not schedule if limits would be exceeded"): cpu limit 2, a
    // 2.1-CPU pod needs a 4-CPU node.
    #[test]
    fn does_not_schedule_when_limits_would_be_exceeded() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large", "m5.xlarge"]);
        pools[0].limits.cpu_m = Some(2000);
        let plan = provision_fresh(&[pod(2100, 512)], &pools, &offerings);
        assert!(plan.claims.is_empty());
        assert_eq!(plan.unschedulable, vec![0]);
    }

    // Upstream: It("should not schedule when limits are exceeded"): the pool already has
    // 100 CPUs of capacity against a limit of 20.
    #[test]
    fn does_not_schedule_when_limits_are_exceeded() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large"]);
        pools[0].limits.cpu_m = Some(20_000);
        let used = [Resources {
            cpu_m: 100_000,
            ..Resources::default()
        }];
        let plan = provision(&[pod(100, 100)], &[], &pools, &offerings, &used, &all);
        assert_eq!(plan.unschedulable, vec![0]);
    }

    // Upstream: It("should partially schedule if limits would be exceeded"): cpu limit 3, two
    // 1.5-CPU pods that cannot share a node: one is scheduled, one is not.
    #[test]
    fn partially_schedules_when_limits_would_be_exceeded() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large", "m5.xlarge"]);
        pools[0].limits.cpu_m = Some(3000);
        let plan = provision_fresh(&[pod(1500, 512), pod(1500, 512)], &pools, &offerings);
        assert_eq!(plan.claims.len(), 1);
        assert_eq!(plan.unschedulable.len(), 1);
    }

    // Upstream: It("should not schedule to a nodepool after a scheduling round if limits
    // would be exceeded"): after one 2-CPU node, a second 1.75-CPU pod breaks the limit.
    #[test]
    fn limits_count_nodes_launched_in_earlier_rounds() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large"]);
        pools[0].limits.cpu_m = Some(2000);
        let first = provision_fresh(&[pod(1750, 512)], &pools, &offerings);
        let o = choose_offering(&first.claims[0].options, &offerings, &all).unwrap();
        let used = [offerings[o].resources];
        let second = provision(&[pod(1750, 512)], &[], &pools, &offerings, &used, &all);
        assert_eq!(second.unschedulable, vec![0]);
    }

    // Upstream: It("should not schedule if limits would be exceeded (node)"): a `nodes`
    // limit of 2 with three pods that each need their own node.
    #[test]
    fn node_limit() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large"]);
        pools[0].limits.nodes = Some(2);
        let pods = vec![pod(1500, 512); 3];
        let plan = provision(
            &pods,
            &[],
            &pools,
            &offerings,
            &[Resources::default()],
            &all,
        );
        assert_eq!((plan.claims.len(), plan.unschedulable.len()), (2, 1));
    }

    // Upstream: scheduling/scheduler.go orders NodePools by weight before any new NodeClaim
    // (no single It() isolates it; the weighted Context of scheduling/suite_test.go relies on
    // it): the heavier pool's offerings are used even when the other pool's are cheaper.
    #[test]
    fn highest_weight_pool_first() {
        let (pools, offerings) = two_pools(&["m5.large"], 10, &["m5.xlarge"], 50);
        let plan = provision(
            &[pod(500, 512)],
            &[],
            &pools,
            &offerings,
            &[Resources::default(); 2],
            &all,
        );
        assert_eq!(plan.claims[0].pool, 1);
        let o = choose_offering(&plan.claims[0].options, &offerings, &all).unwrap();
        assert_eq!(offerings[o].instance_type, "m5.xlarge");
    }

    // Upstream: scheduling/suite_test.go, It("should pack in-flight nodes before launching new
    // nodes"): one "medium" type with room for four 1-CPU pods, ten batches of pods, and at
    // most one node may end with a CPU free. (Upstream draws the batch sizes at random; these
    // are fixed.)
    #[test]
    fn packs_inflight_nodes_before_launching_new_ones() {
        let (pools, offerings) = on_demand_pool(&["m5.xlarge"]);
        let group = offerings[0].group;
        let mut nodes: Vec<Inflight> = Vec::new();
        for batch in [3, 7, 0, 9, 1, 4, 6, 2, 8, 5] {
            let pods = vec![pod(900, 512); batch];
            let plan = provision(
                &pods,
                &nodes,
                &pools,
                &offerings,
                &[Resources::default()],
                &all,
            );
            assert!(plan.unschedulable.is_empty());
            for (p, n) in &plan.on_inflight {
                crate::cluster::take_if_fits(&mut nodes[*n].free, &pods[*p].requests);
            }
            for claim in &plan.claims {
                let mut free = offerings[claim.options[0]].capacity;
                crate::cluster::take_if_fits(&mut free, &claim.requests);
                nodes.push(Inflight { group, free });
            }
        }
        let with_cpu_free = nodes.iter().filter(|n| n.free.cpu_m >= 900).count();
        assert!(
            with_cpu_free <= 1,
            "{with_cpu_free} nodes with a pod's CPU free"
        );
        assert_eq!(nodes.len(), 12, "45 pods, four per node");
    }

    // Upstream: instance_selection_test.go, It("should schedule on one of the cheapest
    // instances (prov ct = spot)"), with the AWS provider's price-capacity-optimized choice
    // (instance.go; the bucket as capacity proxy, see `choose_offering`).
    #[test]
    fn spot_preferred_price_capacity_optimized() {
        let (pools, offerings) = spot_and_on_demand_pool(&["m5.large", "c5.xlarge", "t3.medium"]);
        let plan = provision_fresh(&[pod(1000, 2000)], &pools, &offerings);
        let o = choose_offering(&plan.claims[0].options, &offerings, &all).unwrap();
        // m5.large spot $0.0326 (bucket 15-20 %) vs c5.xlarge spot $0.0748 (<5 %): the
        // capacity proxy prefers c5.xlarge; t3.medium (<5 %, $0.0183) fits too and is cheaper.
        assert!(offerings[o].spot);
        assert_eq!(offerings[o].instance_type, "t3.medium");
        // Without t3.medium in the options, the lowest bucket wins over the lower price.
        let opts: Vec<usize> = plan.claims[0]
            .options
            .iter()
            .copied()
            .filter(|&o| offerings[o].instance_type != "t3.medium")
            .collect();
        let o = choose_offering(&opts, &offerings, &all).unwrap();
        assert_eq!(
            (offerings[o].instance_type.as_str(), offerings[o].spot),
            ("c5.xlarge", true)
        );
    }

    // AWS provider: instance.go / pkg/cache/cache.go — an insufficient-capacity error marks
    // the spot offering unavailable and the retry launches on-demand (docs: "fallback takes
    // milliseconds"); no single upstream It() isolates this.
    #[test]
    fn spot_falls_back_to_on_demand_when_unavailable() {
        let (pools, offerings) = spot_and_on_demand_pool(&["m5.large"]);
        let plan = provision_fresh(&[pod(1000, 2000)], &pools, &offerings);
        let first = choose_offering(&plan.claims[0].options, &offerings, &all).unwrap();
        assert!(offerings[first].spot);
        let no_spot = |o: usize| !offerings[o].spot;
        let second = choose_offering(&plan.claims[0].options, &offerings, &no_spot).unwrap();
        assert!(!offerings[second].spot);
        assert_eq!(offerings[second].instance_type, "m5.large");
        let nothing = |_: usize| false;
        assert_eq!(
            choose_offering(&plan.claims[0].options, &offerings, &nothing),
            None
        );
    }

    // AWS provider: filter_test.go, It("should filter out expensive spot offerings while
    // keeping instance types with remaining offerings"): on-demand at 5.0, spot at 1.0 and at
    // 10.0 — the 10.0 spot offering is never chosen while a cheaper on-demand one exists.
    #[test]
    fn spot_priced_above_on_demand_is_filtered() {
        let (_, mut offerings) = spot_and_on_demand_pool(&["m5.large", "m5.xlarge"]);
        // [m5.large od, m5.large spot, m5.xlarge od, m5.xlarge spot] as priced upstream.
        offerings[0].price_usd_per_hour = 5.0;
        offerings[1].price_usd_per_hour = 10.0;
        offerings[2].price_usd_per_hour = 6.0;
        offerings[3].price_usd_per_hour = 1.0;
        for o in &mut offerings {
            o.interruption_rank = 0;
        }
        offerings[3].interruption_rank = 4;
        let options = vec![0, 1, 2, 3];
        assert_eq!(choose_offering(&options, &offerings, &all), Some(3));
        let not_cheap_spot = |o: usize| o != 3;
        // Only the 10.0 spot is left, dearer than on-demand at 5.0: on-demand it is.
        assert_eq!(
            choose_offering(&options, &offerings, &not_cheap_spot),
            Some(0)
        );
    }

    #[test]
    fn spot_only_pool_does_not_fall_back() {
        let (pools, offerings) = spot_only_pool(&["m5.large"]);
        let plan = provision_fresh(&[pod(1000, 2000)], &pools, &offerings);
        let no_spot = |o: usize| !offerings[o].spot;
        assert_eq!(
            choose_offering(&plan.claims[0].options, &offerings, &no_spot),
            None
        );
    }
}
