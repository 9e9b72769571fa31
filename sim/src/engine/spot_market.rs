//! The spot market room: when the cloud reclaims spot nodes.
//!
//! Reclaim events come as a thinned Poisson process per spot group; each takes one node plus
//! each other node with probability `co_interruption`. The room only decides which nodes go and
//! when the next candidate event is; the loop cordons and drains them.

use rand::Rng;
use rand_distr::{Distribution, Exp1};

use super::attribution::Reclaim;
use super::{Agenda, EventKind};
use crate::cluster::{Cluster, NodeId, NodeState, PodRef};
use crate::results::Event;
use crate::rng::{stream, Stream};
use crate::scenario::Scenario;
use crate::time::SimTime;

/// Per node group: the reclaim stream and how many nodes were reclaimed.
pub(super) struct SpotMarket {
    rngs: Vec<Stream>,
    interruptions: Vec<u64>,
    duration: SimTime,
    /// Every reclaim notice, with the APIs that had replicas on the node (for the attribution
    /// of SLO misses; kept whole, unlike the capped event log).
    pub(super) reclaims: Vec<Reclaim>,
}

impl SpotMarket {
    /// One reclaim stream per node group (`spot/<group>`), independent of every other draw.
    pub(super) fn new(scenario: &Scenario) -> Self {
        SpotMarket {
            rngs: scenario
                .node_groups
                .iter()
                .map(|g| stream(scenario.seed, &format!("spot/{}", g.name)))
                .collect(),
            interruptions: vec![0; scenario.node_groups.len()],
            duration: scenario.duration,
            reclaims: Vec::new(),
        }
    }

    /// Nodes of `group` reclaimed so far.
    pub(super) fn interruptions(&self, group: usize) -> u64 {
        self.interruptions[group]
    }

    /// Schedule the next candidate reclaim event of a spot group (thinning against the rate
    /// at the group's maximum size).
    pub(super) fn schedule_next(
        &mut self,
        group: usize,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        let spec = &cluster.groups()[group];
        let peak_rate_per_s = spec.interruption_rate * f64::from(spec.max_instances) / 3600.0;
        if !(spec.spot && peak_rate_per_s > 0.0) {
            return;
        }
        let e: f64 = Exp1.sample(&mut self.rngs[group]);
        let at = now + SimTime::from_secs_f64(e / peak_rate_per_s);
        if at <= self.duration {
            agenda.schedule(at, EventKind::SpotReclaim { group });
        }
    }

    /// A possible reclaim event: with n nodes, events come at rate λ·n / (1 + q·(n − 1)) and
    /// take one node plus each other node with probability q, so each node is interrupted at
    /// λ per hour on average while reclaims cluster in time. Returns the nodes reclaimed.
    pub(super) fn reclaim(&mut self, group: usize, cluster: &Cluster) -> Vec<NodeId> {
        let spec = &cluster.groups()[group];
        let targets: Vec<NodeId> = cluster
            .nodes()
            .filter(|(_, n)| {
                n.group == group && n.spot && n.state != NodeState::Gone && !n.cordoned
            })
            .map(|(id, _)| id)
            .collect();
        let n = targets.len() as f64;
        if n > 0.0 {
            let q = spec.co_interruption;
            let accept = (n / (1.0 + q * (n - 1.0))) / f64::from(spec.max_instances);
            let rng = &mut self.rngs[group];
            if rng.random::<f64>() < accept {
                let first = rng.random_range(0..targets.len());
                return targets
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i == first || rng.random::<f64>() < q)
                    .map(|(_, id)| *id)
                    .collect();
            }
        }
        Vec::new()
    }

    /// Count and log the two-minute notice of one reclaimed node.
    pub(super) fn notice(
        &mut self,
        group: usize,
        node: NodeId,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        self.interruptions[group] += 1;
        let mut apis: Vec<usize> = cluster
            .node(node)
            .pods
            .iter()
            .filter_map(|(pod, _, _)| match pod {
                PodRef::Replica { api, .. } => Some(*api as usize),
                _ => None,
            })
            .collect();
        apis.sort_unstable();
        apis.dedup();
        self.reclaims.push(Reclaim {
            t_s: now.as_secs_f64(),
            group: cluster.groups()[group].name.clone(),
            apis,
        });
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::SpotInterruption,
            api: None,
            node_group: Some(cluster.groups()[group].name.clone()),
            message: format!("node {} reclaimed in 2 minutes; draining", node.0),
        });
    }
}
