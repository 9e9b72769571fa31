//! Disruption by consolidation (`pkg/controllers/disruption/`): empty nodes are deleted
//! (`emptiness.go`); under-used nodes are deleted when their pods fit on the other nodes, or
//! replaced by one cheaper node (`consolidation.go` `computeConsolidation`), several at once
//! (`multinodeconsolidation.go`) or one at a time (`singlenodeconsolidation.go`). Every
//! decision first simulates where the pods would go.

use super::provision::{provision, NodeClaim};
use super::{packing_order, ConsolidationPolicy, NodePool, Offering, Pod, Reason, Resources};
use crate::scenario::Requests;

/// A node Karpenter may disrupt.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The caller's id for the node.
    pub node: usize,
    /// Its offering.
    pub offering: usize,
    /// Its pods.
    pub pods: Vec<Pod>,
    /// `consolidateAfter` has passed since a pod last came or went.
    pub consolidatable: bool,
}

/// A Ready, schedulable node pods could move to (candidates included).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// The caller's id for the node.
    pub node: usize,
    /// Its node group.
    pub group: usize,
    /// Room left on it.
    pub free: Requests,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drain and delete these nodes; their pods fit elsewhere.
    Delete {
        /// Node ids.
        nodes: Vec<usize>,
        /// Empty or Underutilized.
        reason: Reason,
    },
    /// Launch one node from `claim.options` (all cheaper than the nodes together), then drain
    /// and delete the nodes.
    Replace {
        /// Node ids.
        nodes: Vec<usize>,
        /// The replacement.
        claim: NodeClaim,
    },
}

/// One disruption pass over the candidates, in upstream's order: empty nodes (within the
/// pools' Empty budgets), then multi-node, then single-node consolidation (within the
/// Underutilized budgets) for pools with `WhenEmptyOrUnderutilized`. `allowed[p]` is pool p's
/// budget for (Empty, Underutilized) now; `used` each pool's launched capacity (for limits of a
/// replacement).
#[allow(clippy::too_many_arguments)]
pub fn disrupt(
    candidates: &[Candidate],
    nodes: &[NodeView],
    pools: &[NodePool],
    offerings: &[Offering],
    used: &[Resources],
    allowed: &[(u32, u32)],
    available: &dyn Fn(usize) -> bool,
) -> Option<Command> {
    let pool_of = |c: &Candidate| offerings[c.offering].pool;
    // Emptiness.
    let mut budget: Vec<u32> = allowed.iter().map(|a| a.0).collect();
    let empty: Vec<usize> = candidates
        .iter()
        .filter(|c| c.pods.is_empty() && c.consolidatable)
        .filter(|c| {
            let b = &mut budget[pool_of(c)];
            (*b > 0).then(|| *b -= 1).is_some()
        })
        .map(|c| c.node)
        .collect();
    if !empty.is_empty() {
        return Some(Command::Delete {
            nodes: empty,
            reason: Reason::Empty,
        });
    }
    // Consolidation candidates: the highest price per pod moved first (`sortCandidates`:
    // savings over disruption cost), within the Underutilized budgets.
    let mut order: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.consolidatable
                && !c.pods.is_empty()
                && pools[pool_of(c)].policy == ConsolidationPolicy::WhenEmptyOrUnderutilized
        })
        .collect();
    let ratio =
        |c: &Candidate| offerings[c.offering].price_usd_per_hour / (1 + c.pods.len()) as f64;
    order.sort_by(|a, b| ratio(b).total_cmp(&ratio(a)).then(a.node.cmp(&b.node)));
    let mut budget: Vec<u32> = allowed.iter().map(|a| a.1).collect();
    order.retain(|c| {
        let b = &mut budget[pool_of(c)];
        (*b > 0).then(|| *b -= 1).is_some()
    });
    let sim = |set: &[&Candidate]| compute(set, nodes, pools, offerings, used, available);
    // Multi-node: a binary search for the longest prefix (2 to 100 nodes) that consolidates,
    // as `firstNConsolidationOption` does; the last command that worked wins.
    if order.len() >= 2 {
        let (mut lo, mut hi) = (1, (order.len() - 1).min(super::MAX_MULTI_NODE_CANDIDATES));
        let mut found = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            match sim(&order[..=mid]) {
                Some(cmd) => {
                    found = Some(cmd);
                    lo = mid + 1;
                }
                None => hi = mid - 1,
            }
        }
        if found.is_some() {
            return found;
        }
    }
    // Single-node.
    order.iter().find_map(|c| sim(&[*c]))
}

/// `computeConsolidation` for a set of candidates: their pods go first-fit onto the other
/// nodes, then onto new NodeClaims; all must be placed with at most one new node, which must
/// be cheaper than the candidates together. Spot candidates are never replaced by spot
/// (`SpotToSpotConsolidation` is off by default); an on-demand candidate whose replacement may
/// be spot is replaced by spot only, so a failed spot launch never costs more.
fn compute(
    set: &[&Candidate],
    nodes: &[NodeView],
    pools: &[NodePool],
    offerings: &[Offering],
    used: &[Resources],
    available: &dyn Fn(usize) -> bool,
) -> Option<Command> {
    let ids: Vec<usize> = set.iter().map(|c| c.node).collect();
    let pods: Vec<Pod> = set.iter().flat_map(|c| c.pods.iter().cloned()).collect();
    let mut free: Vec<&NodeView> = nodes.iter().filter(|n| !ids.contains(&n.node)).collect();
    let mut room: Vec<Requests> = free.iter().map(|n| n.free).collect();
    let mut left: Vec<Pod> = Vec::new();
    for i in packing_order(&pods) {
        let pod = &pods[i];
        let placed = free.iter().zip(room.iter_mut()).any(|(n, r)| {
            pod.groups.contains(&n.group) && crate::cluster::take_if_fits(r, &pod.requests)
        });
        if !placed {
            left.push(pod.clone());
        }
    }
    free.clear();
    if left.is_empty() {
        return Some(Command::Delete {
            nodes: ids,
            reason: Reason::Underutilized,
        });
    }
    let plan = provision(&left, &[], pools, offerings, used, available);
    if !plan.unschedulable.is_empty() || plan.claims.len() != 1 {
        return None;
    }
    let mut claim = plan.claims.into_iter().next()?;
    let price: f64 = set
        .iter()
        .map(|c| offerings[c.offering].price_usd_per_hour)
        .sum();
    let all_spot = set.iter().all(|c| offerings[c.offering].spot);
    let may_spot = claim.options.iter().any(|&o| offerings[o].spot);
    if all_spot && may_spot {
        return None;
    }
    if may_spot && claim.options.iter().any(|&o| !offerings[o].spot) {
        claim.options.retain(|&o| offerings[o].spot);
    }
    claim
        .options
        .retain(|&o| offerings[o].price_usd_per_hour < price);
    if set.len() > 1 {
        // `filterOutSameInstanceType`: replacing several nodes with one of a type among them
        // must beat that node's own price, or deleting the others alone disrupts fewer pods.
        let same_type_price = claim
            .options
            .iter()
            .flat_map(|&o| {
                set.iter()
                    .filter(move |c| {
                        offerings[c.offering].instance_type == offerings[o].instance_type
                    })
                    .map(|c| offerings[c.offering].price_usd_per_hour)
            })
            .fold(f64::INFINITY, f64::min);
        claim
            .options
            .retain(|&o| offerings[o].price_usd_per_hour < same_type_price);
    }
    if claim.options.is_empty() {
        return None;
    }
    Some(Command::Replace { nodes: ids, claim })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn all(_: usize) -> bool {
        true
    }

    fn view(node: usize, offerings: &[Offering], o: usize, used: Requests) -> NodeView {
        let mut free = offerings[o].capacity;
        crate::cluster::take_if_fits(&mut free, &used);
        NodeView {
            node,
            group: offerings[o].group,
            free,
        }
    }

    fn cand(node: usize, o: usize, pods: Vec<Pod>) -> Candidate {
        Candidate {
            node,
            offering: o,
            pods,
            consolidatable: true,
        }
    }

    /// Each candidate's node view (what is free on it) and the candidates themselves.
    fn cluster(
        offerings: &[Offering],
        nodes: &[(usize, Vec<Pod>)],
    ) -> (Vec<Candidate>, Vec<NodeView>) {
        let mut cands = Vec::new();
        let mut views = Vec::new();
        for (i, (o, pods)) in nodes.iter().enumerate() {
            let used = pods.iter().fold(Requests::default(), |a, p| {
                super::super::add(&a, &p.requests)
            });
            views.push(view(i, offerings, *o, used));
            cands.push(cand(i, *o, pods.clone()));
        }
        (cands, views)
    }

    const NO_LIMIT: (u32, u32) = (u32::MAX, u32::MAX);

    /// `disrupt` with one pool using nothing yet, no budget limit and every offering available.
    fn disrupt_unbounded(
        cands: &[Candidate],
        views: &[NodeView],
        pools: &[NodePool],
        offerings: &[Offering],
    ) -> Option<Command> {
        disrupt(
            cands,
            views,
            pools,
            offerings,
            &[Resources::default()],
            &[NO_LIMIT],
            &all,
        )
    }

    // Upstream: emptiness_test.go, It("can delete empty nodes").
    #[test]
    fn deletes_an_empty_node() {
        let (pools, offerings) = on_demand_pool(&["m5.large"]);
        let (cands, views) = cluster(&offerings, &[(0, vec![])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(
            cmd,
            Some(Command::Delete {
                nodes: vec![0],
                reason: Reason::Empty
            })
        );
    }

    // Upstream: emptiness_test.go, It("should wait for the node TTL for empty nodes before
    // consolidating"): not consolidatable yet (consolidateAfter running) → nothing.
    #[test]
    fn waits_for_consolidate_after() {
        let (pools, offerings) = on_demand_pool(&["m5.large"]);
        let (mut cands, views) = cluster(&offerings, &[(0, vec![])]);
        cands[0].consolidatable = false;
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(cmd, None);
    }

    // Upstream: emptiness_test.go (Context "Budgets"), It("should only allow 3 empty nodes to
    // be disrupted"): 10 empty nodes, budget nodes "30%" → 3 deleted. And It("should allow no
    // empty nodes to be disrupted") with nodes "0".
    #[test]
    fn empty_deletions_respect_the_budget() {
        let (mut pools, offerings) = on_demand_pool(&["m5.large"]);
        pools[0].budgets = vec![super::super::Budget {
            nodes: super::super::BudgetNodes::parse("30%").unwrap(),
            reasons: vec![],
            window: None,
        }];
        let nodes: Vec<(usize, Vec<Pod>)> = (0..10).map(|_| (0, vec![])).collect();
        let (cands, views) = cluster(&offerings, &nodes);
        let now = crate::time::SimTime::ZERO;
        let allow =
            |reason| super::super::budget::allowed_by_reason(&pools[0].budgets, 10, reason, now);
        let allowed = [(allow(Reason::Empty), allow(Reason::Underutilized))];
        match disrupt(
            &cands,
            &views,
            &pools,
            &offerings,
            &[Resources::default()],
            &allowed,
            &all,
        ) {
            Some(Command::Delete {
                nodes,
                reason: Reason::Empty,
            }) => assert_eq!(nodes.len(), 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            disrupt(
                &cands,
                &views,
                &pools,
                &offerings,
                &[Resources::default()],
                &[(0, 0)],
                &all
            ),
            None
        );
    }

    // Upstream: consolidation_test.go (Context "Delete"), It("can delete nodes"): two nodes of
    // one type, two pods on the first and one on the second → the second is deleted ("we
    // don't need a new node"), not both replaced by one node of the same type.
    #[test]
    fn deletes_a_node_whose_pods_fit_elsewhere() {
        let (pools, offerings) = on_demand_pool(&["m5.xlarge"]);
        let (cands, views) = cluster(
            &offerings,
            &[
                (0, vec![pod(1000, 512), pod(1000, 512)]),
                (0, vec![pod(1000, 512)]),
            ],
        );
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(
            cmd,
            Some(Command::Delete {
                nodes: vec![1],
                reason: Reason::Underutilized
            })
        );
    }

    // Upstream: consolidation_test.go (Context "Replace"), DescribeTable("can replace node")
    // without spot-to-spot: one
    // on-demand node whose pod fits a cheaper type → replaced by the cheaper type.
    #[test]
    fn replaces_a_node_with_a_cheaper_one() {
        let (pools, offerings) = on_demand_pool(&["m5.large", "c5.4xlarge"]);
        // offerings: 0 = m5.large ($0.096), 1 = c5.4xlarge ($0.68).
        let (cands, views) = cluster(&offerings, &[(1, vec![pod(1000, 1024)])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        match cmd {
            Some(Command::Replace { nodes, claim }) => {
                assert_eq!(nodes, vec![0]);
                assert_eq!(claim.options, vec![0]);
            }
            other => panic!("{other:?}"),
        }
    }

    // Upstream: consolidation_test.go, It("won't replace on-demand node if on-demand
    // replacement is more expensive").
    #[test]
    fn no_replacement_that_costs_more() {
        let (pools, offerings) = on_demand_pool(&["m5.large", "m5.xlarge"]);
        let (cands, views) = cluster(&offerings, &[(0, vec![pod(1000, 1024)])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(cmd, None);
    }

    // Upstream: consolidation_test.go, It("cannot replace spot with spot if the
    // spotToSpotConsolidation is disabled").
    #[test]
    fn no_spot_to_spot_replacement() {
        let (pools, offerings) = spot_only_pool(&["m5.large", "c5.4xlarge"]);
        let (cands, views) = cluster(&offerings, &[(1, vec![pod(1000, 1024)])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(cmd, None);
    }

    // Upstream: consolidation_test.go, the on-demand → [on-demand, spot] rule in
    // computeConsolidation ("we also need to add a requirement to the node to ensure that if
    // spot capacity is insufficient we don't replace the node with a more expensive on-demand
    // node"): the replacement of an on-demand node may only be spot.
    #[test]
    fn on_demand_replacement_is_spot_only_when_spot_is_allowed() {
        let (pools, offerings) = spot_and_on_demand_pool(&["m5.large", "m5.xlarge"]);
        // offerings: 0 m5.large od, 1 m5.large spot, 2 m5.xlarge od, 3 m5.xlarge spot.
        let (cands, views) = cluster(&offerings, &[(2, vec![pod(1000, 1024)])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        match cmd {
            Some(Command::Replace { claim, .. }) => {
                assert!(
                    claim.options.iter().all(|&o| offerings[o].spot),
                    "{:?}",
                    claim.options
                );
                assert!(claim.options.contains(&1));
            }
            other => panic!("{other:?}"),
        }
    }

    // Upstream: consolidation_test.go (Context "Budgets"), It("should allow no nodes from each
    // nodePool to be deleted"): nodes "0" blocks consolidation of under-used nodes.
    #[test]
    fn zero_budget_blocks_consolidation() {
        let (pools, offerings) = on_demand_pool(&["m5.xlarge"]);
        let (cands, views) = cluster(
            &offerings,
            &[(0, vec![pod(1000, 512)]), (0, vec![pod(1000, 512)])],
        );
        let cmd = disrupt(
            &cands,
            &views,
            &pools,
            &offerings,
            &[Resources::default()],
            &[(u32::MAX, 0)],
            &all,
        );
        assert_eq!(cmd, None);
    }

    // Upstream: consolidation_test.go, It("should fire an event for ConsolidationDisabled when
    // the NodePool has consolidation set to WhenEmpty") — WhenEmpty pools only lose empty
    // nodes.
    #[test]
    fn when_empty_does_not_consolidate_underutilized_nodes() {
        let (mut pools, offerings) = on_demand_pool(&["m5.xlarge"]);
        pools[0].policy = ConsolidationPolicy::WhenEmpty;
        let (cands, views) = cluster(
            &offerings,
            &[(0, vec![pod(1000, 512)]), (0, vec![pod(1000, 512)])],
        );
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(cmd, None);
        let (cands, views) = cluster(&offerings, &[(0, vec![pod(1000, 512)]), (0, vec![])]);
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(
            cmd,
            Some(Command::Delete {
                nodes: vec![1],
                reason: Reason::Empty
            })
        );
    }

    // Upstream: consolidation_test.go (Context "Multi-NodeClaim"), the same-type rule of
    // multinodeconsolidation.go `filterOutSameInstanceType` as the Context's merge tests use
    // it: three one-pod nodes of one type are not replaced by one node of that type; two are
    // deleted, their pods moving to the third.
    #[test]
    fn merges_several_nodes() {
        let (pools, offerings) = on_demand_pool(&["m5.xlarge"]);
        let (cands, views) = cluster(
            &offerings,
            &[
                (0, vec![pod(1000, 512)]),
                (0, vec![pod(1000, 512)]),
                (0, vec![pod(1000, 512)]),
            ],
        );
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        match cmd {
            Some(Command::Delete {
                nodes,
                reason: Reason::Underutilized,
            }) => assert_eq!(nodes.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    // Upstream: consolidation_test.go, It("won't delete nodes if it would make a non-pending
    // pod go pending"): a full node's pods fit nowhere else and no cheaper type fits them.
    #[test]
    fn keeps_nodes_whose_pods_fit_nowhere() {
        let (pools, offerings) = on_demand_pool(&["m5.large"]);
        let (cands, views) = cluster(
            &offerings,
            &[(0, vec![pod(1500, 512)]), (0, vec![pod(1500, 512)])],
        );
        let cmd = disrupt_unbounded(&cands, &views, &pools, &offerings);
        assert_eq!(cmd, None);
    }
}
