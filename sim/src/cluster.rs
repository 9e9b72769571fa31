//! Nodes, pod placement and the bill.
//!
//! In this version each node group runs `min_instances` nodes for the whole run; the cluster
//! autoscaler will add and remove nodes through [`Cluster::add_node`] and [`Cluster::remove_node`]
//! (the seam is here). Pods are placed first-fit on the highest-priority group that fits, as the
//! scheduler plus the priority expander would.

use crate::scenario::{NodeGroup, Requests};
use crate::time::SimTime;

/// Where a pod runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId(pub usize);

/// One node and what is left on it.
#[derive(Debug, Clone)]
struct Node {
    group: usize,
    free_cpu_m: u64,
    free_mem_mib: u64,
    free_gpu: u32,
    /// Requests of pods on the node per API, for cost attribution.
    used_by_api: Vec<Requests>,
    alive: bool,
}

/// The cluster's nodes, their occupancy, and the running cost.
#[derive(Debug)]
pub struct Cluster {
    groups: Vec<NodeGroup>,
    nodes: Vec<Node>,
    api_count: usize,
    /// Groups in placement order: priority descending, then file order.
    placement_order: Vec<usize>,
    nodes_per_group: Vec<u32>,
    peak_per_group: Vec<u32>,
    node_seconds: Vec<f64>,
    api_cost_usd: Vec<f64>,
    attributed_rate: Vec<f64>,
    last_update: SimTime,
}

impl Cluster {
    /// A cluster with each group at `min_instances`.
    pub fn new(groups: &[NodeGroup], api_count: usize) -> Cluster {
        let mut placement_order: Vec<usize> = (0..groups.len()).collect();
        placement_order.sort_by_key(|&g| std::cmp::Reverse(groups[g].priority));
        let mut cluster = Cluster {
            groups: groups.to_vec(),
            nodes: Vec::new(),
            api_count,
            placement_order,
            nodes_per_group: vec![0; groups.len()],
            peak_per_group: vec![0; groups.len()],
            node_seconds: vec![0.0; groups.len()],
            api_cost_usd: vec![0.0; api_count],
            attributed_rate: vec![0.0; api_count],
            last_update: SimTime::ZERO,
        };
        for (g, group) in groups.iter().enumerate() {
            for _ in 0..group.min_instances {
                cluster.add_node(g, SimTime::ZERO);
            }
        }
        cluster
    }

    /// Launch a node in `group` (ready at once in this version).
    pub fn add_node(&mut self, group: usize, now: SimTime) -> NodeId {
        self.accrue(now);
        let g = &self.groups[group];
        self.nodes.push(Node {
            group,
            free_cpu_m: g.pod_cpu_m,
            free_mem_mib: g.pod_mem_mib,
            free_gpu: g.instance.gpus,
            used_by_api: vec![Requests::default(); self.api_count],
            alive: true,
        });
        self.nodes_per_group[group] += 1;
        self.peak_per_group[group] = self.peak_per_group[group].max(self.nodes_per_group[group]);
        self.refresh_rates();
        NodeId(self.nodes.len() - 1)
    }

    /// Terminate a node; its pods must have been moved off first.
    pub fn remove_node(&mut self, node: NodeId, now: SimTime) {
        self.accrue(now);
        if let Some(n) = self.nodes.get_mut(node.0) {
            if n.alive {
                n.alive = false;
                self.nodes_per_group[n.group] -= 1;
            }
        }
        self.refresh_rates();
    }

    /// Place a pod of `api` on the first node that fits, trying groups by priority. `None` means
    /// the pod stays pending.
    pub fn place(
        &mut self,
        api: usize,
        requests: Requests,
        allowed_groups: &[usize],
        now: SimTime,
    ) -> Option<NodeId> {
        let order = self.placement_order.clone();
        for g in order.into_iter().filter(|g| allowed_groups.contains(g)) {
            let found = self.nodes.iter().position(|n| {
                n.alive
                    && n.group == g
                    && n.free_cpu_m >= requests.cpu_m
                    && n.free_mem_mib >= requests.mem_mib
                    && n.free_gpu >= requests.gpu
            });
            if let Some(i) = found {
                self.accrue(now);
                let n = &mut self.nodes[i];
                n.free_cpu_m -= requests.cpu_m;
                n.free_mem_mib -= requests.mem_mib;
                n.free_gpu -= requests.gpu;
                let used = &mut n.used_by_api[api];
                used.cpu_m += requests.cpu_m;
                used.mem_mib += requests.mem_mib;
                used.gpu += requests.gpu;
                self.refresh_rates();
                return Some(NodeId(i));
            }
        }
        None
    }

    /// Free a pod's resources.
    pub fn release(&mut self, node: NodeId, api: usize, requests: Requests, now: SimTime) {
        self.accrue(now);
        if let Some(n) = self.nodes.get_mut(node.0) {
            n.free_cpu_m += requests.cpu_m;
            n.free_mem_mib += requests.mem_mib;
            n.free_gpu += requests.gpu;
            let used = &mut n.used_by_api[api];
            used.cpu_m = used.cpu_m.saturating_sub(requests.cpu_m);
            used.mem_mib = used.mem_mib.saturating_sub(requests.mem_mib);
            used.gpu = used.gpu.saturating_sub(requests.gpu);
        }
        self.refresh_rates();
    }

    /// Nodes alive in each group now.
    pub fn nodes_per_group(&self) -> &[u32] {
        &self.nodes_per_group
    }

    /// Cluster cost rate now (nodes only), USD per hour.
    pub fn cost_rate_usd_per_hour(&self) -> f64 {
        self.nodes_per_group
            .iter()
            .zip(&self.groups)
            .map(|(&n, g)| f64::from(n) * g.price_usd_per_hour)
            .sum()
    }

    /// Bring the integrals up to `now`.
    pub fn accrue(&mut self, now: SimTime) {
        let dt = now.since(self.last_update).as_secs_f64();
        if dt > 0.0 {
            for (g, &n) in self.nodes_per_group.iter().enumerate() {
                self.node_seconds[g] += f64::from(n) * dt;
            }
            for (cost, rate) in self.api_cost_usd.iter_mut().zip(&self.attributed_rate) {
                *cost += rate * dt / 3600.0;
            }
        }
        self.last_update = self.last_update.max(now);
    }

    /// Each API's share of every node, by its dominant requested resource (GPU, CPU or memory);
    /// shares on a node are scaled down if they add up to more than the whole node.
    fn refresh_rates(&mut self) {
        self.attributed_rate.iter_mut().for_each(|r| *r = 0.0);
        for n in self.nodes.iter().filter(|n| n.alive) {
            let g = &self.groups[n.group];
            let share = |u: &Requests| {
                let mut s = (u.cpu_m as f64 / g.pod_cpu_m.max(1) as f64)
                    .max(u.mem_mib as f64 / g.pod_mem_mib.max(1) as f64);
                if g.instance.gpus > 0 {
                    s = s.max(f64::from(u.gpu) / f64::from(g.instance.gpus));
                }
                s
            };
            let total: f64 = n.used_by_api.iter().map(share).sum();
            let scale = if total > 1.0 { 1.0 / total } else { 1.0 };
            for (api, used) in n.used_by_api.iter().enumerate() {
                self.attributed_rate[api] += share(used) * scale * g.price_usd_per_hour;
            }
        }
    }

    /// Node cost up to `now` without changing the books (for live views).
    pub fn node_cost_until(&self, now: SimTime) -> f64 {
        let extra_s = now.since(self.last_update).as_secs_f64();
        self.groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                (self.node_seconds[g] + f64::from(self.nodes_per_group[g]) * extra_s) / 3600.0
                    * group.price_usd_per_hour
            })
            .sum()
    }

    /// Node-hours per group so far.
    pub fn node_hours(&self) -> Vec<f64> {
        self.node_seconds.iter().map(|s| s / 3600.0).collect()
    }

    /// Most nodes at once per group.
    pub fn peak_nodes(&self) -> &[u32] {
        &self.peak_per_group
    }

    /// Node cost attributed to each API so far.
    pub fn api_cost_usd(&self) -> &[f64] {
        &self.api_cost_usd
    }

    /// The groups.
    pub fn groups(&self) -> &[NodeGroup] {
        &self.groups
    }
}
