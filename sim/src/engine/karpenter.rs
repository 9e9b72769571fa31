//! The Karpenter room: the provisioner's batch window, node launches with the
//! unavailable-offerings cache, consolidation commands in flight, expiry, and per-pool tallies.
//! The decisions themselves are [`crate::karpenter`]'s pure functions; the loop
//! (`karpenter_routes.rs`) lends this room the cluster and carries out drains.

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Agenda, EventKind};
use crate::cluster::{Cluster, NodeId, NodeState, PodRef};
use crate::karpenter::{self, Karpenter, Resources, UNAVAILABLE_OFFERING_TTL};
use crate::results::{Event, KarpenterResults, NodePoolResults};
use crate::rng::{stream, Stream};
use crate::scenario::Scenario;
use crate::time::SimTime;

/// A NodeClaim not registered within this long is deleted (`nodeclaim/lifecycle/liveness.go`,
/// registration TTL 15 min).
const REGISTRATION_TTL: SimTime = SimTime(900_000_000_000);

/// How often the disruption controller looks for something to do (`controller.go`, 10 s).
pub(super) const DISRUPTION_POLL: SimTime = SimTime(10_000_000_000);

/// What the room remembers of a node it launched.
struct NodeInfo {
    offering: usize,
    /// The pods seen on it at the last look, and since when they have not changed: a node is
    /// consolidatable `consolidate_after` after its last pod came or went.
    pods: Vec<PodRef>,
    since: SimTime,
    /// Being deleted (drained) or replaced: no longer a candidate.
    disrupting: bool,
}

/// The pending pods' batch window.
struct Batch {
    opened: SimTime,
    last_change: SimTime,
    seen: Vec<PodRef>,
}

/// Why the room drains a node, for the tallies.
#[derive(Debug, Clone, Copy)]
pub(super) enum Why {
    Empty,
    Underutilized,
    Replaced,
    Expired,
}

/// A replacement launched for consolidation: when it is Ready the old nodes are drained.
struct Replacement {
    new: NodeId,
    old: Vec<NodeId>,
}

/// The room.
pub(super) struct KarpenterRoom {
    pub(super) config: Karpenter,
    unavailable_until: Vec<SimTime>,
    rngs: Vec<Stream>,
    batch: Option<Batch>,
    nodes: BTreeMap<usize, NodeInfo>,
    replacements: Vec<Replacement>,
    tallies: Vec<NodePoolResults>,
    /// The last unschedulable count logged, so a standing one is logged once.
    last_unschedulable: usize,
}

impl KarpenterRoom {
    /// The room for a scenario with `[[node_pools]]`.
    pub(super) fn new(scenario: &Scenario) -> Option<Self> {
        let config = scenario.karpenter.clone()?;
        let rngs = config
            .offerings
            .iter()
            .map(|o| {
                let name = &scenario.node_groups[o.group].name;
                stream(scenario.seed, &format!("karpenter/{name}"))
            })
            .collect();
        let tallies = config
            .pools
            .iter()
            .map(|p| NodePoolResults {
                name: p.name.clone(),
                ..NodePoolResults::default()
            })
            .collect();
        Some(KarpenterRoom {
            unavailable_until: vec![SimTime::ZERO; config.offerings.len()],
            rngs,
            batch: None,
            nodes: BTreeMap::new(),
            replacements: Vec::new(),
            tallies,
            last_unschedulable: 0,
            config,
        })
    }

    /// Whether Karpenter launched `node`.
    pub(super) fn owns(&self, node: NodeId) -> bool {
        self.nodes.contains_key(&node.0)
    }

    /// Whether offering `o` may be launched at `now` (not in the unavailable-offerings cache).
    pub(super) fn available(&self, o: usize, now: SimTime) -> bool {
        self.unavailable_until[o] <= now
    }

    /// Each pool's launched capacity (booting and ready nodes), as `limits` count it.
    pub(super) fn used(&self, cluster: &Cluster) -> Vec<Resources> {
        let mut used = vec![Resources::default(); self.config.pools.len()];
        for (id, info) in &self.nodes {
            if cluster.node(NodeId(*id)).state != NodeState::Gone {
                let off = &self.config.offerings[info.offering];
                used[off.pool] = used[off.pool].plus(off.resources);
            }
        }
        used
    }

    /// The batch window after a look at the pending pods: `true` when the batch closes now
    /// (idle for `batch_idle`, or open for `batch_max`).
    pub(super) fn batch_closes(&mut self, pending: Vec<PodRef>, now: SimTime) -> bool {
        if pending.is_empty() {
            self.batch = None;
            return false;
        }
        let batch = self.batch.get_or_insert(Batch {
            opened: now,
            last_change: now,
            seen: Vec::new(),
        });
        if batch.seen != pending {
            batch.seen = pending;
            batch.last_change = now;
        }
        let closes = now.since(batch.last_change) >= self.config.batch_idle
            || now.since(batch.opened) >= self.config.batch_max;
        if closes {
            self.batch = None;
        }
        closes
    }

    /// Log pods that no pool can take, when their number changes.
    pub(super) fn note_unschedulable(&mut self, count: usize, now: SimTime, agenda: &mut Agenda) {
        if count != self.last_unschedulable && count > 0 {
            agenda.log(Event {
                t_s: now.as_secs_f64(),
                kind: crate::results::EventKind::FailedLaunch,
                api: None,
                node_group: None,
                message: format!(
                    "karpenter: {count} pending pods fit no node pool (limits, requirements or every offering unavailable)"
                ),
            });
        }
        self.last_unschedulable = count;
    }

    /// Launch one node for a NodeClaim: the offering [`karpenter::choose_offering`] picks,
    /// and on insufficient spot capacity the next one (the failed offering is unavailable for
    /// 3 minutes). `None` when every option failed.
    pub(super) fn launch(
        &mut self,
        options: &[usize],
        pods: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> Option<NodeId> {
        loop {
            let until = &self.unavailable_until;
            let o =
                karpenter::choose_offering(options, &self.config.offerings, &|o| until[o] <= now)?;
            let off = &self.config.offerings[o];
            let (group, pool) = (off.group, off.pool);
            let spec = &cluster.groups()[group];
            if off.spot {
                let out = cluster.spot_nodes(group) >= spec.spot_capacity;
                let failure = spec.spot_launch_failure;
                let unlucky = failure > 0.0 && self.rngs[o].random::<f64>() < failure;
                if out || unlucky {
                    self.unavailable_until[o] = now + UNAVAILABLE_OFFERING_TTL;
                    self.tallies[pool].insufficient_capacity += 1;
                    agenda.log(Event {
                        t_s: now.as_secs_f64(),
                        kind: crate::results::EventKind::FailedLaunch,
                        api: None,
                        node_group: Some(spec.name.clone()),
                        message: "karpenter: InsufficientInstanceCapacity; offering unavailable for 3m, trying the next".into(),
                    });
                    continue;
                }
            }
            let (mu, sigma) = (spec.boot_mu, spec.boot_sigma);
            let z: f64 = StandardNormal.sample(&mut self.rngs[o]);
            let boot = SimTime::from_secs_f64((mu + sigma * z).exp());
            let node = cluster.launch(group, now);
            if boot > REGISTRATION_TTL {
                agenda.schedule(
                    now + REGISTRATION_TTL,
                    EventKind::NodeLaunchTimeout { node: node.0 },
                );
            } else {
                agenda.schedule(now + boot, EventKind::NodeReady { node: node.0 });
            }
            if let Some(ttl) = self.config.pools[pool].expire_after {
                agenda.schedule(now + ttl, EventKind::KarpenterExpire { node: node.0 });
            }
            let t = &mut self.tallies[pool];
            t.launches += 1;
            t.spot_launches += u64::from(self.config.offerings[o].spot);
            self.nodes.insert(
                node.0,
                NodeInfo {
                    offering: o,
                    pods: Vec::new(),
                    since: now,
                    disrupting: false,
                },
            );
            agenda.log(Event {
                t_s: now.as_secs_f64(),
                kind: crate::results::EventKind::NodeLaunch,
                api: None,
                node_group: Some(cluster.groups()[group].name.clone()),
                message: format!(
                    "karpenter: node {} launched for {pods} pending pods",
                    node.0
                ),
            });
            return Some(node);
        }
    }

    /// Refresh each node's pod set and its consolidatable clock; the nodes a disruption may
    /// consider (Ready, schedulable, not already being disrupted), with whether
    /// `consolidate_after` has passed.
    pub(super) fn candidates(
        &mut self,
        now: SimTime,
        cluster: &Cluster,
    ) -> Vec<(NodeId, usize, bool)> {
        let mut out = Vec::new();
        for (id, info) in self.nodes.iter_mut() {
            let node = cluster.node(NodeId(*id));
            if node.state != NodeState::Ready {
                // Not initialized yet: its clock starts when it is.
                info.since = now;
                continue;
            }
            let mut pods: Vec<PodRef> = node.pods.iter().map(|p| p.0).collect();
            pods.sort();
            if pods != info.pods {
                info.pods = pods;
                info.since = now;
            }
            if info.disrupting || node.cordoned {
                continue;
            }
            let pool = self.config.offerings[info.offering].pool;
            let ready = self.config.pools[pool]
                .consolidate_after
                .is_some_and(|after| now.since(info.since) >= after);
            out.push((NodeId(*id), info.offering, ready));
        }
        out
    }

    /// Each pool's allowed disruptions now for (Empty, Underutilized): its budgets less the
    /// nodes already being disrupted or not ready.
    pub(super) fn allowed(&self, now: SimTime, cluster: &Cluster) -> Vec<(u32, u32)> {
        let pools = &self.config.pools;
        let mut total = vec![0u32; pools.len()];
        let mut busy = vec![0u32; pools.len()];
        for (id, info) in &self.nodes {
            let node = cluster.node(NodeId(*id));
            if node.state == NodeState::Gone {
                continue;
            }
            let p = self.config.offerings[info.offering].pool;
            total[p] += 1;
            if info.disrupting || node.cordoned || node.state == NodeState::Booting {
                busy[p] += 1;
            }
        }
        (0..pools.len())
            .map(|p| {
                let by = |reason| {
                    karpenter::budget::allowed_by_reason(&pools[p].budgets, total[p], reason, now)
                        .saturating_sub(busy[p])
                };
                (
                    by(karpenter::Reason::Empty),
                    by(karpenter::Reason::Underutilized),
                )
            })
            .collect()
    }

    /// `node` is about to be drained for `why`: count it and the `restarts` of the serving
    /// replicas on it.
    pub(super) fn disrupting(&mut self, node: NodeId, why: Why, restarts: u64) {
        let Some(info) = self.nodes.get_mut(&node.0) else {
            return;
        };
        info.disrupting = true;
        let pool = self.config.offerings[info.offering].pool;
        let t = &mut self.tallies[pool];
        let terms = &mut t.terminations;
        match why {
            Why::Empty => terms.empty += 1,
            Why::Underutilized => terms.underutilized_deleted += 1,
            Why::Replaced => terms.underutilized_replaced += 1,
            Why::Expired => terms.expired += 1,
        }
        t.replica_restarts += restarts;
    }

    /// A spot interruption notice reached `node`: count it, and block its offering for
    /// 3 minutes (`interruption/controller.go` marks the ICE cache).
    pub(super) fn interrupted(&mut self, node: NodeId, now: SimTime, restarts: u64) {
        let Some(info) = self.nodes.get_mut(&node.0) else {
            return;
        };
        info.disrupting = true;
        let o = info.offering;
        self.unavailable_until[o] = now + UNAVAILABLE_OFFERING_TTL;
        let t = &mut self.tallies[self.config.offerings[o].pool];
        t.terminations.interrupted += 1;
        t.replica_restarts += restarts;
        self.abandon_replacement(node);
    }

    /// A launch never registered: count it and block the offering.
    pub(super) fn launch_timed_out(&mut self, node: NodeId, now: SimTime) {
        let Some(info) = self.nodes.get(&node.0) else {
            return;
        };
        let o = info.offering;
        self.unavailable_until[o] = now + UNAVAILABLE_OFFERING_TTL;
        let pool = self.config.offerings[o].pool;
        self.tallies[pool].terminations.launch_timeouts += 1;
        self.abandon_replacement(node);
    }

    /// A replacement that will never be Ready: the nodes it was to replace are candidates
    /// again.
    fn abandon_replacement(&mut self, node: NodeId) {
        let Some(i) = self.replacements.iter().position(|r| r.new == node) else {
            return;
        };
        for old in self.replacements.swap_remove(i).old {
            if let Some(info) = self.nodes.get_mut(&old.0) {
                info.disrupting = false;
            }
        }
    }

    /// Whether `node` is past its `expire_after` and still alive and not being disrupted.
    pub(super) fn expires(&self, node: NodeId, cluster: &Cluster) -> bool {
        self.nodes
            .get(&node.0)
            .is_some_and(|i| !i.disrupting && cluster.node(node).state != NodeState::Gone)
    }

    /// A consolidation replacement was launched for `old`.
    pub(super) fn replacing(&mut self, new: NodeId, old: Vec<NodeId>) {
        for n in &old {
            if let Some(info) = self.nodes.get_mut(&n.0) {
                info.disrupting = true;
            }
        }
        self.replacements.push(Replacement { new, old });
    }

    /// Whether a replacement is still booting (one consolidation at a time).
    pub(super) fn replacement_pending(&self) -> bool {
        !self.replacements.is_empty()
    }

    /// `node` is Ready: the old nodes it replaces, to drain now.
    pub(super) fn replacement_ready(&mut self, node: NodeId) -> Vec<NodeId> {
        match self.replacements.iter().position(|r| r.new == node) {
            Some(i) => self.replacements.swap_remove(i).old,
            None => Vec::new(),
        }
    }

    /// The per-pool figures; node-hours and cost come from the cluster's books.
    pub(super) fn results(&self, cluster: &Cluster) -> KarpenterResults {
        let hours = cluster.node_hours();
        let cost = cluster.group_cost_usd();
        let mut pools = self.tallies.clone();
        for (p, pool) in self.config.pools.iter().enumerate() {
            let mut by: Vec<(String, f64)> = Vec::new();
            for &o in &pool.offerings {
                let off = &self.config.offerings[o];
                pools[p].node_hours += hours[off.group];
                pools[p].cost_usd += cost[off.group];
                if hours[off.group] > 0.0 {
                    let ct = if off.spot { "spot" } else { "on-demand" };
                    by.push((format!("{}/{ct}", off.instance_type), hours[off.group]));
                }
            }
            by.sort_by(|a, b| a.0.cmp(&b.0));
            pools[p].node_hours_by_offering = by;
        }
        KarpenterResults { pools }
    }
}
