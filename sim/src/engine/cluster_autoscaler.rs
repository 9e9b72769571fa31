//! The cluster autoscaler room: node launches (boot times, spot capacity, launch failures and
//! the group's backoff), scale-up for pods that fit nowhere, scale-down of unneeded nodes and
//! the nodes it is draining.
//!
//! It owns what the cluster autoscaler remembers between scans; the loop lends it the cluster
//! and carries out what it cannot do alone (terminating and draining nodes, whose pods belong
//! to the other rooms).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::ca_why::{self, PendingPod};
use super::{Agenda, EventKind};
use crate::cluster::{take_if_fits, Cluster, NodeId, NodeState, PodRef};
use crate::results::Event;
use crate::rng::{stream, Stream};
use crate::scenario::{ClusterAutoscaler as Config, Expander, Requests, Scenario};
use crate::time::SimTime;

/// Pods with a lower priority never trigger a scale-up (the cluster autoscaler's default).
const EXPENDABLE_CUTOFF: i32 = -10;

/// What the cluster autoscaler tracks per node group.
struct GroupState {
    backoff_until: SimTime,
    backoff_level: u32,
    failed_launches: u64,
    /// Boot times and launch failures.
    rng: Stream,
}

/// The cluster autoscaler's memory: backoffs, draining nodes, the last scale-up.
pub(super) struct ClusterAutoscaler {
    config: Config,
    groups: Vec<GroupState>,
    /// Nodes being drained by a scale-down.
    draining: Vec<NodeId>,
    last_scale_up: SimTime,
    /// Every failed launch: (time in seconds, group name), for the attribution of SLO misses.
    pub(super) failures: Vec<(f64, String)>,
    /// The random expander's choices.
    rng: Stream,
    /// The last "no scale-up" reasons logged (without times), so a repeated one is not logged
    /// again; cleared when a pass acts or nothing is pending.
    last_no_scale_up: Option<String>,
    /// The scale-up whose `scale_down_delay_after_add` was last logged as pausing scale-down.
    last_delay_logged: Option<SimTime>,
    /// Per node, the last "not removed" reason logged.
    not_removed: std::collections::BTreeMap<usize, String>,
}

/// How a scale-down removes a node it found unneeded for long enough.
pub(super) enum Removal {
    /// An empty node: terminate it now.
    Terminate,
    /// A node with pods that fit elsewhere: drain it.
    Drain,
}

/// One scale-down pass in progress: the candidates in order and what was removed so far.
pub(super) struct ScaleDown {
    /// Ready, uncordoned nodes, empty ones first.
    pub(super) candidates: Vec<NodeId>,
    alive: Vec<u32>,
    removed: Vec<NodeId>,
    empty_removed: u32,
    drained: u32,
}

impl ClusterAutoscaler {
    /// Nothing launched, nothing backed off; each group's boot times from `nodes/<group>`.
    pub(super) fn new(scenario: &Scenario) -> Self {
        ClusterAutoscaler {
            config: scenario.cluster_autoscaler.clone(),
            groups: scenario
                .node_groups
                .iter()
                .map(|g| GroupState {
                    backoff_until: SimTime::ZERO,
                    backoff_level: 0,
                    failed_launches: 0,
                    rng: stream(scenario.seed, &format!("nodes/{}", g.name)),
                })
                .collect(),
            draining: Vec::new(),
            last_scale_up: SimTime::ZERO,
            failures: Vec::new(),
            rng: stream(scenario.seed, "cluster-autoscaler"),
            last_no_scale_up: None,
            last_delay_logged: None,
            not_removed: std::collections::BTreeMap::new(),
        }
    }

    /// Launches of `group` that failed so far.
    pub(super) fn failed_launches(&self, group: usize) -> u64 {
        self.groups[group].failed_launches
    }

    /// Whether a scale-down is draining `node`.
    pub(super) fn is_draining(&self, node: NodeId) -> bool {
        self.draining.contains(&node)
    }

    /// Cordon a node to drain it; the loop evicts its pods.
    pub(super) fn start_drain(&mut self, node: NodeId, cluster: &mut Cluster) {
        cluster.cordon(node);
        self.draining.push(node);
    }

    /// The node is gone: no longer draining.
    pub(super) fn forget(&mut self, node: NodeId) {
        self.draining.retain(|n| *n != node);
        self.not_removed.remove(&node.0);
    }

    /// Log why pods got no node, unless the same reasons were logged last.
    fn note_no_scale_up(
        &mut self,
        unserved: &[ca_why::Unserved],
        now: SimTime,
        agenda: &mut Agenda,
    ) {
        let key: Vec<String> = unserved
            .iter()
            .map(|u| format!("{}|{}|{}", u.owner, u.rule, u.key))
            .collect();
        let key = key.join("\n");
        if self.last_no_scale_up.as_ref() == Some(&key) {
            return;
        }
        self.last_no_scale_up = Some(key);
        for u in unserved {
            agenda.log_why(ca_why::no_scale_up_event(u, now));
        }
    }

    /// Log why `node` (or the pass) was not removed, unless it is the reason logged last.
    #[allow(clippy::too_many_arguments)]
    fn note_not_removed(
        &mut self,
        node: Option<NodeId>,
        rule: &str,
        key: String,
        sentence: String,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        if let Some(n) = node {
            if self.not_removed.get(&n.0) == Some(&key) {
                return;
            }
            self.not_removed.insert(n.0, key);
        }
        agenda.log_why(ca_why::not_removed_event(
            rule, sentence, node, cluster, now,
        ));
    }

    /// A booting node is ready (false if it is not booting any more).
    pub(super) fn node_ready(
        &mut self,
        node: NodeId,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        if cluster.node(node).state != NodeState::Booting {
            return false;
        }
        cluster.node_ready(node, now);
        let group = cluster.node(node).group;
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::NodeReady,
            api: None,
            node_group: Some(cluster.groups()[group].name.clone()),
            message: format!("node {} ready", node.0),
        });
        true
    }

    /// A node still booting after `max_node_provision_time` is given up on.
    pub(super) fn launch_timeout(
        &mut self,
        node: NodeId,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        if cluster.node(node).state != NodeState::Booting {
            return;
        }
        let group = cluster.node(node).group;
        cluster.terminate(node, now);
        self.launch_failed(
            group,
            "not ready within max_node_provision_time",
            now,
            cluster,
            agenda,
        );
    }

    fn launch_failed(
        &mut self,
        group: usize,
        why: &str,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) {
        let ca = &self.config;
        let g = &mut self.groups[group];
        g.failed_launches += 1;
        let factor = 1u64 << g.backoff_level.min(20);
        let backoff = SimTime(ca.initial_backoff.0.saturating_mul(factor)).min(ca.max_backoff);
        g.backoff_until = now + backoff;
        g.backoff_level += 1;
        let name = cluster.groups()[group].name.clone();
        self.failures.push((now.as_secs_f64(), name.clone()));
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::FailedLaunch,
            api: None,
            node_group: Some(name),
            message: format!(
                "launch failed ({why}); group backed off for {}",
                crate::units::DurationSpec(backoff)
            ),
        });
    }

    /// Launch one node in `group`, unless spot capacity says no.
    fn launch_node(
        &mut self,
        group: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let spec = &cluster.groups()[group];
        if cluster.next_launch_is_spot(group) {
            let out_of_capacity = cluster.spot_nodes(group) >= spec.spot_capacity;
            let failure = spec.spot_launch_failure;
            let unlucky = failure > 0.0 && self.groups[group].rng.random::<f64>() < failure;
            if out_of_capacity || unlucky {
                self.launch_failed(group, "InsufficientInstanceCapacity", now, cluster, agenda);
                return false;
            }
        }
        let (mu, sigma) = (spec.boot_mu, spec.boot_sigma);
        let z: f64 = StandardNormal.sample(&mut self.groups[group].rng);
        let boot = SimTime::from_secs_f64((mu + sigma * z).exp());
        let node = cluster.launch(group, now);
        let max = self.config.max_node_provision_time;
        if boot > max {
            agenda.schedule(now + max, EventKind::NodeLaunchTimeout { node: node.0 });
        } else {
            agenda.schedule(now + boot, EventKind::NodeReady { node: node.0 });
        }
        let name = cluster.groups()[group].name.clone();
        agenda.log(Event {
            t_s: now.as_secs_f64(),
            kind: crate::results::EventKind::NodeLaunch,
            api: None,
            node_group: Some(name),
            message: format!("node {} launched", node.0),
        });
        true
    }

    /// Launch nodes for the pending pods (requests, allowed groups, priority) that fit neither
    /// anywhere now nor on a node already booting, in the group the expander picks.
    pub(super) fn scale_up(
        &mut self,
        pending: Vec<PendingPod>,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        let pods: Vec<PendingPod> = pending
            .into_iter()
            .filter(|(_, _, prio, _)| *prio >= EXPENDABLE_CUTOFF)
            .collect();
        if pods.is_empty() {
            self.last_no_scale_up = None;
            return;
        }
        // Pods that will fit on nodes already booting need no new node.
        let all: Vec<usize> = (0..cluster.groups().len()).collect();
        let mut booting = cluster.booting_capacity(&all);
        let mut waiting: Vec<(&PendingPod, usize)> = Vec::new();
        let remaining: Vec<&PendingPod> = pods
            .iter()
            .filter(|pod| {
                let (r, allowed, _, _) = pod;
                match booting
                    .iter_mut()
                    .position(|(g, free)| allowed.contains(g) && take_if_fits(free, r))
                {
                    Some(i) => {
                        waiting.push((pod, booting[i].0));
                        false
                    }
                    None => true,
                }
            })
            .collect();
        if remaining.is_empty() {
            let booting: Vec<&PendingPod> = waiting.iter().map(|(p, _)| *p).collect();
            let unserved = ca_why::by_owner(&booting, |pod| {
                let g = waiting
                    .iter()
                    .find(|(p, _)| std::ptr::eq(*p, pod))
                    .map_or(0, |(_, g)| *g);
                let name = cluster.groups()[g].name.clone();
                let text = format!("a node of {name} is still booting for them");
                ("node_booting", Some(name), text.clone(), text)
            });
            self.note_no_scale_up(&unserved, now, agenda);
            return;
        }
        let remaining_pods = remaining.clone();
        let remaining: Vec<(Requests, Vec<usize>)> = remaining
            .into_iter()
            .map(|(r, g, _, _)| (*r, g.clone()))
            .collect();
        let mut options: Vec<(usize, u32, f64)> = Vec::new();
        for g in 0..cluster.groups().len() {
            let spec = &cluster.groups()[g];
            if self.groups[g].backoff_until > now {
                continue;
            }
            let limit = spec
                .max_instances
                .saturating_sub(cluster.nodes_per_group()[g]);
            if limit == 0 {
                continue;
            }
            let for_group: Vec<Requests> = remaining
                .iter()
                .filter(|(_, allowed)| allowed.contains(&g))
                .map(|(r, _)| *r)
                .collect();
            let (nodes, helped, waste) = cluster.plan_scale_up(g, &for_group, limit);
            if nodes > 0 && helped > 0 {
                options.push((g, nodes, waste));
            }
        }
        if options.is_empty() {
            let until: Vec<SimTime> = self.groups.iter().map(|g| g.backoff_until).collect();
            let unserved = ca_why::by_owner(&remaining_pods, |pod| {
                ca_why::no_group(pod, cluster, &until, now)
            });
            self.note_no_scale_up(&unserved, now, agenda);
            return;
        }
        let by_waste =
            |a: &(usize, u32, f64), b: &(usize, u32, f64)| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0));
        let chosen = match self.config.expander {
            Expander::Priority => {
                let top = options
                    .iter()
                    .map(|o| cluster.groups()[o.0].priority)
                    .max()
                    .unwrap_or(0);
                options
                    .iter()
                    .filter(|o| cluster.groups()[o.0].priority == top)
                    .min_by(|a, b| by_waste(a, b))
                    .copied()
            }
            Expander::LeastWaste => options.iter().min_by(|a, b| by_waste(a, b)).copied(),
            Expander::Random => {
                let i = self.rng.random_range(0..options.len());
                Some(options[i])
            }
        };
        let Some((group, nodes, _)) = chosen else {
            return;
        };
        let mut launched = 0;
        for _ in 0..nodes {
            if !self.launch_node(group, now, cluster, agenda) {
                break;
            }
            launched += 1;
        }
        if launched > 0 {
            self.last_scale_up = now;
        }
        self.last_no_scale_up = None;
    }

    /// Start a scale-down pass (`None` too soon after a scale-up): the candidates, empty nodes
    /// first, as the cluster autoscaler removes them before draining busy ones.
    pub(super) fn scale_down(
        &mut self,
        now: SimTime,
        cluster: &Cluster,
        agenda: &mut Agenda,
    ) -> Option<ScaleDown> {
        let delay = self.config.scale_down_delay_after_add;
        if now < self.last_scale_up + delay {
            // Say so once per scale-up, when a node would otherwise be a candidate.
            let threshold = self.config.scale_down_utilization_threshold;
            let idle = cluster.nodes().any(|(id, n)| {
                n.state == NodeState::Ready
                    && !n.cordoned
                    && cluster.utilization(id) < threshold
                    && cluster.nodes_per_group()[n.group] > cluster.groups()[n.group].min_instances
            });
            if idle && self.last_delay_logged != Some(self.last_scale_up) {
                self.last_delay_logged = Some(self.last_scale_up);
                let sentence = format!(
                    "scale-down paused until {}: scale_down_delay_after_add {} after the scale-up at {}",
                    ca_why::clock(self.last_scale_up + delay),
                    ca_why::span(delay),
                    ca_why::clock(self.last_scale_up)
                );
                self.note_not_removed(
                    None,
                    "delay_after_add",
                    String::new(),
                    sentence,
                    now,
                    cluster,
                    agenda,
                );
            }
            return None;
        }
        let mut candidates: Vec<(bool, NodeId)> = cluster
            .nodes()
            .filter(|(_, n)| n.state == NodeState::Ready && !n.cordoned)
            .map(|(id, n)| (!n.pods.is_empty(), id))
            .collect();
        candidates.sort();
        Some(ScaleDown {
            candidates: candidates.into_iter().map(|(_, id)| id).collect(),
            alive: cluster.nodes_per_group().to_vec(),
            removed: Vec::new(),
            empty_removed: 0,
            drained: 0,
        })
    }

    /// Whether to remove candidate `id` now (it has been unneeded long enough and the pass's
    /// limits allow); tracks how long each node has been unneeded. `groups_of` gives a pod's
    /// allowed node groups.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn consider<'a>(
        &mut self,
        pass: &mut ScaleDown,
        id: NodeId,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
        groups_of: impl Fn(PodRef) -> &'a [usize],
    ) -> Option<Removal> {
        let threshold = self.config.scale_down_utilization_threshold;
        let unneeded_time = self.config.scale_down_unneeded_time;
        let node = cluster.node(id);
        let g = node.group;
        let min = cluster.groups()[g].min_instances;
        let utilization = cluster.utilization(id);
        let was_unneeded = node.unneeded_since.is_some();
        // The first rule that keeps the node, in the order the checks run.
        let kept: Option<(&str, String)> = if pass.alive[g] <= min {
            (utilization < threshold)
                .then(|| {
                    (
                        "group_at_min",
                        format!("its group is at min_instances {min}"),
                    )
                })
                .or(Some(("", String::new())))
        } else if utilization >= threshold {
            if was_unneeded {
                Some((
                    "utilization_over_threshold",
                    format!(
                        "utilization {:.2} is not under scale_down_utilization_threshold {threshold}",
                        utilization
                    ),
                ))
            } else {
                Some(("", String::new()))
            }
        } else {
            let pods: Vec<(Requests, Vec<usize>)> = node
                .pods
                .iter()
                .map(|(p, r, _)| (*r, groups_of(*p).to_vec()))
                .collect();
            let mut excluded = pass.removed.clone();
            excluded.push(id);
            (!cluster.can_reschedule(&pods, &excluded)).then(|| {
                (
                    "pods_cannot_move",
                    format!(
                        "utilization {utilization:.2} is under {threshold} but {} fit on any other ready node",
                        match pods.len() {
                            1 => "its pod does not".to_string(),
                            n => format!("its {n} pods do not all"),
                        }
                    ),
                )
            })
        };
        if let Some((rule, reason)) = kept {
            cluster.set_unneeded(id, None);
            if !rule.is_empty() {
                let sentence = format!("{} not removed: {reason}", ca_why::node_name(id, cluster));
                self.note_not_removed(
                    Some(id),
                    rule,
                    rule.to_string(),
                    sentence,
                    now,
                    cluster,
                    agenda,
                );
            }
            return None;
        }
        let since = node.unneeded_since.unwrap_or(now);
        cluster.set_unneeded(id, Some(since));
        if now.since(since) < unneeded_time {
            let sentence = format!(
                "{} not removed yet: unneeded since {} (utilization {utilization:.2} under {threshold}), removable after scale_down_unneeded_time {}, at {}",
                ca_why::node_name(id, cluster),
                ca_why::clock(since),
                ca_why::span(unneeded_time),
                ca_why::clock(since + unneeded_time)
            );
            let key = format!("unneeded_time {}", since.0);
            self.note_not_removed(
                Some(id),
                "unneeded_time",
                key,
                sentence,
                now,
                cluster,
                agenda,
            );
            return None;
        }
        let empty = cluster.node(id).pods.is_empty();
        let removal = if empty && pass.empty_removed < 10 {
            pass.empty_removed += 1;
            Removal::Terminate
        } else if !empty && pass.drained == 0 {
            pass.drained += 1;
            Removal::Drain
        } else {
            let sentence = format!(
                "{} not removed this pass: {}",
                ca_why::node_name(id, cluster),
                if empty {
                    "at most 10 empty nodes go in one pass"
                } else {
                    "one node with pods is drained at a time"
                }
            );
            self.note_not_removed(
                Some(id),
                "pass_limit",
                "pass_limit".into(),
                sentence,
                now,
                cluster,
                agenda,
            );
            return None;
        };
        pass.removed.push(id);
        pass.alive[g] -= 1;
        Some(removal)
    }
}

#[cfg(test)]
impl ClusterAutoscaler {
    /// Launch a node of `group` by hand (tests set up a cluster this way).
    pub(super) fn launch_by_hand(
        &mut self,
        group: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        self.launch_node(group, now, cluster, agenda)
    }

    /// Pretend the last scale-up happened at `at`.
    pub(super) fn set_last_scale_up(&mut self, at: SimTime) {
        self.last_scale_up = at;
    }
}
