//! Nodes, what runs on them, and the bill.
//!
//! The cluster knows nodes (booting, ready, gone), which pods sit on each and what is left free;
//! it places pods first-fit on the highest-priority group that fits, as the scheduler plus the
//! priority expander would, and integrates cost. Decisions that change replicas (eviction,
//! preemption, scale-up, interruption) are the engine's, which owns the replicas.

use crate::scenario::{NodeGroup, Requests};
use crate::time::SimTime;

/// A node, by index; indices are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A pod, as the engine identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodRef {
    /// A replica of an API (API index, replica slot).
    Replica {
        /// API index.
        api: u32,
        /// Replica slot.
        slot: u32,
    },
    /// A placeholder pod (overprovisioning), by index.
    Placeholder(u32),
    /// A worker pod of a batch job (job index, worker slot).
    BatchWorker {
        /// Batch job index.
        job: u32,
        /// Worker slot.
        worker: u32,
    },
}

/// A pod's share of a time-sliced (or MPS) physical GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedGpu {
    /// The node.
    pub node: NodeId,
    /// Physical GPU index on the node.
    pub gpu: u32,
    /// Context-switch overhead while several sharers are busy.
    pub overhead: f64,
}

impl SharedGpu {
    /// Service-time multiplier with `busy` sharers executing: each gets 1/busy of the GPU,
    /// plus the switching overhead when there is more than one.
    pub fn stretch(&self, busy: u32) -> f64 {
        if busy <= 1 {
            1.0
        } else {
            f64::from(busy) * (1.0 + self.overhead)
        }
    }
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Launched, not Ready yet (billed already).
    Booting,
    /// Schedulable unless cordoned.
    Ready,
    /// Terminated.
    Gone,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its group.
    pub group: usize,
    /// Lifecycle state.
    pub state: NodeState,
    /// No new pods (draining, or under a spot interruption notice).
    pub cordoned: bool,
    /// Requests still free.
    pub free: Requests,
    /// Pods on the node with their requests and priority.
    pub pods: Vec<(PodRef, Requests, i32)>,
    /// Since when the cluster autoscaler has found it unneeded.
    pub unneeded_since: Option<SimTime>,
    /// Spot capacity (reclaimable), or on-demand.
    pub spot: bool,
    /// Its instance type (a mixed spot group draws on several).
    pub instance_type: String,
    /// What it costs.
    pub price_usd_per_hour: f64,
    /// What it would cost on demand.
    pub on_demand_usd_per_hour: f64,
    /// Shared GPUs: pods assigned to each physical GPU.
    gpu_pods: Vec<u32>,
    /// Shared GPUs: pods with a request executing on each physical GPU.
    gpu_busy: Vec<u32>,
    /// GPU memory loaded by sharers, per physical GPU, MiB.
    gpu_mem_loaded: Vec<u64>,
}

/// The cluster's nodes, their occupancy, and the running cost.
#[derive(Debug)]
pub struct Cluster {
    groups: Vec<NodeGroup>,
    nodes: Vec<Node>,
    api_count: usize,
    /// Cost owners: the APIs, then the batch jobs.
    owners: usize,
    /// Groups in placement order: priority descending, then file order.
    placement_order: Vec<usize>,
    alive_per_group: Vec<u32>,
    ready_per_group: Vec<u32>,
    peak_per_group: Vec<u32>,
    node_seconds: Vec<f64>,
    /// Price of the group's alive nodes together, USD/h, and its on-demand equivalent.
    rate_per_group: Vec<f64>,
    on_demand_rate_per_group: Vec<f64>,
    cost_per_group: Vec<f64>,
    on_demand_cost_per_group: Vec<f64>,
    spot_alive_per_group: Vec<u32>,
    spot_launches: Vec<u64>,
    api_cost_usd: Vec<f64>,
    attributed_rate: Vec<f64>,
    last_update: SimTime,
}

fn fits(free: &Requests, r: &Requests) -> bool {
    free.cpu_m >= r.cpu_m
        && free.mem_mib >= r.mem_mib
        && free.gpu >= r.gpu
        && free.mig.iter().zip(&r.mig).all(|(f, w)| f >= w)
}

fn take(free: &mut Requests, r: &Requests) {
    free.cpu_m -= r.cpu_m;
    free.mem_mib -= r.mem_mib;
    free.gpu -= r.gpu;
    free.mig.iter_mut().zip(&r.mig).for_each(|(f, w)| *f -= w);
}

fn give(free: &mut Requests, r: &Requests) {
    free.cpu_m += r.cpu_m;
    free.mem_mib += r.mem_mib;
    free.gpu += r.gpu;
    free.mig.iter_mut().zip(&r.mig).for_each(|(f, w)| *f += w);
}

impl Cluster {
    /// A cluster with each group at `min_instances` Ready nodes; node cost is attributed to
    /// `api_count` APIs and `job_count` batch jobs.
    pub fn new(groups: &[NodeGroup], api_count: usize, job_count: usize) -> Cluster {
        let owners = api_count + job_count;
        let mut placement_order: Vec<usize> = (0..groups.len()).collect();
        placement_order.sort_by_key(|&g| std::cmp::Reverse(groups[g].priority));
        let n = groups.len();
        let mut cluster = Cluster {
            groups: groups.to_vec(),
            nodes: Vec::new(),
            api_count,
            owners,
            placement_order,
            alive_per_group: vec![0; n],
            ready_per_group: vec![0; n],
            peak_per_group: vec![0; n],
            node_seconds: vec![0.0; n],
            rate_per_group: vec![0.0; n],
            on_demand_rate_per_group: vec![0.0; n],
            cost_per_group: vec![0.0; n],
            on_demand_cost_per_group: vec![0.0; n],
            spot_alive_per_group: vec![0; n],
            spot_launches: vec![0; n],
            api_cost_usd: vec![0.0; owners],
            attributed_rate: vec![0.0; owners],
            last_update: SimTime::ZERO,
        };
        for (g, group) in groups.iter().enumerate() {
            for _ in 0..group.min_instances {
                let id = cluster.launch(g, SimTime::ZERO);
                cluster.node_ready(id, SimTime::ZERO);
            }
        }
        cluster
    }

    /// An empty node of `group` as the scheduler sees it.
    pub fn template(&self, group: usize) -> Requests {
        let g = &self.groups[group];
        Requests {
            cpu_m: g.pod_cpu_m,
            mem_mib: g.pod_mem_mib,
            gpu: g.gpu_slots(),
            mig: g.mig,
        }
    }

    /// Whether the group's next node is spot: a spot group's, unless its `spot_config` wants
    /// more on-demand nodes.
    pub fn next_launch_is_spot(&self, group: usize) -> bool {
        let g = &self.groups[group];
        match &g.spot_mix {
            None => g.spot,
            Some(mix) => {
                let alive = self.alive_per_group[group];
                let on_demand = alive - self.spot_alive_per_group[group];
                on_demand >= mix.on_demand_of(alive + 1)
            }
        }
    }

    /// Spot nodes alive in a group.
    pub fn spot_nodes(&self, group: usize) -> u32 {
        self.spot_alive_per_group[group]
    }

    /// Launch a node in `group`: billed from now, schedulable once [`Cluster::node_ready`].
    pub fn launch(&mut self, group: usize, now: SimTime) -> NodeId {
        self.accrue(now);
        let spot = self.next_launch_is_spot(group);
        let g = &self.groups[group];
        let on_demand_price = g.instance.on_demand_usd_per_hour;
        let (instance_type, price) = match &g.spot_mix {
            Some(mix) if spot => {
                let k = (self.spot_launches[group] % mix.pools.len() as u64) as usize;
                mix.pools[k].clone()
            }
            Some(_) => (g.instance.name.clone(), on_demand_price),
            None => (g.instance.name.clone(), g.price_usd_per_hour),
        };
        if spot {
            self.spot_launches[group] += 1;
            self.spot_alive_per_group[group] += 1;
        }
        self.rate_per_group[group] += price;
        self.on_demand_rate_per_group[group] += on_demand_price;
        let shared_gpus = if self.groups[group].gpu_sharing.is_some() {
            self.groups[group].instance.gpus as usize
        } else {
            0
        };
        self.nodes.push(Node {
            group,
            state: NodeState::Booting,
            cordoned: false,
            free: self.template(group),
            pods: Vec::new(),
            unneeded_since: None,
            spot,
            instance_type,
            price_usd_per_hour: price,
            on_demand_usd_per_hour: on_demand_price,
            gpu_pods: vec![0; shared_gpus],
            gpu_busy: vec![0; shared_gpus],
            gpu_mem_loaded: vec![0; shared_gpus],
        });
        self.alive_per_group[group] += 1;
        self.peak_per_group[group] = self.peak_per_group[group].max(self.alive_per_group[group]);
        NodeId(self.nodes.len() - 1)
    }

    /// A booting node passed its readiness checks.
    pub fn node_ready(&mut self, node: NodeId, now: SimTime) {
        self.accrue(now);
        let n = &mut self.nodes[node.0];
        if n.state == NodeState::Booting {
            n.state = NodeState::Ready;
            self.ready_per_group[n.group] += 1;
        }
    }

    /// Terminate a node. Its pods must have been taken care of by the caller; any left are
    /// dropped from the books.
    pub fn terminate(&mut self, node: NodeId, now: SimTime) {
        self.accrue(now);
        let n = &mut self.nodes[node.0];
        match n.state {
            NodeState::Gone => return,
            NodeState::Ready => self.ready_per_group[n.group] -= 1,
            NodeState::Booting => {}
        }
        n.state = NodeState::Gone;
        n.pods.clear();
        self.alive_per_group[n.group] -= 1;
        self.rate_per_group[n.group] -= n.price_usd_per_hour;
        self.on_demand_rate_per_group[n.group] -= n.on_demand_usd_per_hour;
        if n.spot {
            self.spot_alive_per_group[n.group] -= 1;
        }
        self.refresh_rates();
    }

    /// Stop scheduling onto a node.
    pub fn cordon(&mut self, node: NodeId) {
        self.nodes[node.0].cordoned = true;
    }

    /// The node.
    pub fn node(&self, node: NodeId) -> &Node {
        &self.nodes[node.0]
    }

    /// All nodes ever launched, by id.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    /// Mark or clear the cluster autoscaler's unneeded timestamp.
    pub fn set_unneeded(&mut self, node: NodeId, since: Option<SimTime>) {
        self.nodes[node.0].unneeded_since = since;
    }

    /// First Ready, uncordoned node that fits, trying groups by priority.
    pub fn find_node(&self, requests: Requests, allowed_groups: &[usize]) -> Option<NodeId> {
        for &g in self
            .placement_order
            .iter()
            .filter(|g| allowed_groups.contains(g))
        {
            let found = self.nodes.iter().position(|n| {
                n.state == NodeState::Ready
                    && !n.cordoned
                    && n.group == g
                    && fits(&n.free, &requests)
            });
            if let Some(i) = found {
                return Some(NodeId(i));
            }
        }
        None
    }

    /// The node (in placement order) where evicting the fewest pods of priority below
    /// `priority` makes room, with those victims (lowest priority first).
    pub fn preemption_plan(
        &self,
        requests: Requests,
        allowed_groups: &[usize],
        priority: i32,
    ) -> Option<(NodeId, Vec<PodRef>)> {
        let mut best: Option<(NodeId, Vec<PodRef>)> = None;
        for &g in self
            .placement_order
            .iter()
            .filter(|g| allowed_groups.contains(g))
        {
            for (i, n) in self.nodes.iter().enumerate() {
                if n.state != NodeState::Ready || n.cordoned || n.group != g {
                    continue;
                }
                let mut candidates: Vec<&(PodRef, Requests, i32)> =
                    n.pods.iter().filter(|p| p.2 < priority).collect();
                candidates.sort_by_key(|p| (p.2, p.0));
                let mut free = n.free;
                let mut victims = Vec::new();
                for (pod, r, _) in candidates {
                    if fits(&free, &requests) {
                        break;
                    }
                    give(&mut free, r);
                    victims.push(*pod);
                }
                if fits(&free, &requests)
                    && !victims.is_empty()
                    && best.as_ref().is_none_or(|(_, v)| victims.len() < v.len())
                {
                    best = Some((NodeId(i), victims));
                }
            }
        }
        best
    }

    /// Put a pod on a node (which must fit it). On a node with shared GPUs a pod requesting a
    /// GPU is assigned the physical GPU with the fewest pods, returned with the sharing overhead.
    pub fn bind(
        &mut self,
        node: NodeId,
        pod: PodRef,
        requests: Requests,
        priority: i32,
        now: SimTime,
    ) -> Option<SharedGpu> {
        self.accrue(now);
        let overhead = self.groups[self.nodes[node.0].group]
            .gpu_sharing
            .map(|(_, o)| o);
        let n = &mut self.nodes[node.0];
        take(&mut n.free, &requests);
        n.pods.push((pod, requests, priority));
        let shared = match overhead {
            Some(overhead) if requests.gpu > 0 => n
                .gpu_pods
                .iter()
                .enumerate()
                .min_by_key(|(_, count)| **count)
                .map(|(i, _)| i)
                .map(|gpu| {
                    n.gpu_pods[gpu] += 1;
                    SharedGpu {
                        node,
                        gpu: gpu as u32,
                        overhead,
                    }
                }),
            _ => None,
        };
        self.refresh_rates();
        shared
    }

    /// A pod on a shared GPU started executing: the number of busy sharers now.
    pub fn gpu_sharer_busy(&mut self, gpu: SharedGpu) -> u32 {
        let count = &mut self.nodes[gpu.node.0].gpu_busy[gpu.gpu as usize];
        *count += 1;
        *count
    }

    /// A pod on a shared GPU has nothing executing any more.
    pub fn gpu_sharer_idle(&mut self, gpu: SharedGpu) {
        let count = &mut self.nodes[gpu.node.0].gpu_busy[gpu.gpu as usize];
        *count = count.saturating_sub(1);
    }

    /// Busy sharers on a shared GPU.
    pub fn gpu_sharers(&self, gpu: SharedGpu) -> u32 {
        self.nodes[gpu.node.0].gpu_busy[gpu.gpu as usize]
    }

    /// Physical GPUs with work on them in a group (for utilisation of shared GPUs).
    pub fn busy_shared_gpus(&self, group: usize) -> u32 {
        self.nodes
            .iter()
            .filter(|n| n.group == group && n.state == NodeState::Ready)
            .map(|n| n.gpu_busy.iter().filter(|b| **b > 0).count() as u32)
            .sum()
    }

    /// Whether a sharer can load `mib` of GPU memory now: within its MPS client limit, and
    /// with the memory the other sharers have loaded within the GPU's (time-slicing does not
    /// isolate memory). Unknown GPU memory never fails.
    pub fn gpu_memory_fits(&self, gpu: SharedGpu, mib: u64) -> bool {
        let group = &self.groups[self.nodes[gpu.node.0].group];
        if group
            .gpu_memory_per_client_mib
            .is_some_and(|limit| mib > limit)
        {
            return false;
        }
        let Some(total) = group.instance.gpu_memory_mib() else {
            return true;
        };
        self.nodes[gpu.node.0].gpu_mem_loaded[gpu.gpu as usize] + mib <= total
    }

    /// A sharer loaded (`mib` > 0) or freed (`mib` < 0) GPU memory.
    pub fn load_gpu_memory(&mut self, gpu: SharedGpu, mib: i64) {
        let loaded = &mut self.nodes[gpu.node.0].gpu_mem_loaded[gpu.gpu as usize];
        *loaded = loaded.saturating_add_signed(mib);
    }

    /// Release a pod's share of a physical GPU.
    pub fn release_gpu(&mut self, gpu: SharedGpu) {
        let n = &mut self.nodes[gpu.node.0];
        n.gpu_pods[gpu.gpu as usize] = n.gpu_pods[gpu.gpu as usize].saturating_sub(1);
    }

    /// Change a bound pod's requests in place (Kubernetes' in-place pod resize): `false`, and
    /// nothing changes, when its node has no room for what it grows by.
    pub fn resize(&mut self, node: NodeId, pod: PodRef, requests: Requests, now: SimTime) -> bool {
        let n = &self.nodes[node.0];
        let Some(i) = n.pods.iter().position(|p| p.0 == pod) else {
            return false;
        };
        let mut free = n.free;
        give(&mut free, &n.pods[i].1);
        if !take_if_fits(&mut free, &requests) {
            return false;
        }
        self.accrue(now);
        let n = &mut self.nodes[node.0];
        n.free = free;
        n.pods[i].1 = requests;
        self.refresh_rates();
        true
    }

    /// Take a pod off its node.
    pub fn unbind(&mut self, node: NodeId, pod: PodRef, now: SimTime) {
        self.accrue(now);
        let n = &mut self.nodes[node.0];
        if let Some(i) = n.pods.iter().position(|p| p.0 == pod) {
            let (_, r, _) = n.pods.swap_remove(i);
            give(&mut n.free, &r);
        }
        self.refresh_rates();
    }

    /// Nodes alive (booting or ready) in each group now.
    pub fn nodes_per_group(&self) -> &[u32] {
        &self.alive_per_group
    }

    /// Ready nodes in each group now.
    pub fn ready_per_group(&self) -> &[u32] {
        &self.ready_per_group
    }

    /// Cluster cost rate now (nodes only), USD per hour.
    pub fn cost_rate_usd_per_hour(&self) -> f64 {
        self.rate_per_group.iter().sum()
    }

    /// Bring the integrals up to `now`.
    pub fn accrue(&mut self, now: SimTime) {
        let dt = now.since(self.last_update).as_secs_f64();
        if dt > 0.0 {
            for (g, &n) in self.alive_per_group.iter().enumerate() {
                self.node_seconds[g] += f64::from(n) * dt;
                self.cost_per_group[g] += self.rate_per_group[g] * dt / 3600.0;
                self.on_demand_cost_per_group[g] += self.on_demand_rate_per_group[g] * dt / 3600.0;
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
        let mut used = vec![Requests::default(); self.owners];
        for n in self.nodes.iter().filter(|n| n.state != NodeState::Gone) {
            let g = &self.groups[n.group];
            used.iter_mut().for_each(|u| *u = Requests::default());
            for (pod, r, _) in &n.pods {
                match pod {
                    PodRef::Replica { api, .. } => give(&mut used[*api as usize], r),
                    PodRef::BatchWorker { job, .. } => {
                        give(&mut used[self.api_count + *job as usize], r)
                    }
                    PodRef::Placeholder(_) => {}
                }
            }
            let share = |u: &Requests| {
                let mut s = (u.cpu_m as f64 / g.pod_cpu_m.max(1) as f64)
                    .max(u.mem_mib as f64 / g.pod_mem_mib.max(1) as f64);
                if g.gpu_slots() > 0 {
                    s = s.max(f64::from(u.gpu) / f64::from(g.gpu_slots()));
                }
                if g.instance.gpus > 0 {
                    // MIG instances count by their share of the GPUs' compute.
                    let mig: f64 = u
                        .mig
                        .iter()
                        .enumerate()
                        .map(|(k, n)| f64::from(*n) * crate::mig::compute_fraction(k))
                        .sum();
                    s = s.max(mig / f64::from(g.instance.gpus));
                }
                s
            };
            let total: f64 = used.iter().map(share).sum();
            let scale = if total > 1.0 { 1.0 / total } else { 1.0 };
            for (api, u) in used.iter().enumerate() {
                self.attributed_rate[api] += share(u) * scale * n.price_usd_per_hour;
            }
        }
    }

    /// Node cost up to `now` without changing the books (for live views).
    pub fn node_cost_until(&self, now: SimTime) -> f64 {
        let extra_s = now.since(self.last_update).as_secs_f64();
        (0..self.groups.len())
            .map(|g| self.cost_per_group[g] + self.rate_per_group[g] * extra_s / 3600.0)
            .sum()
    }

    /// Node cost per group so far (each node at its own price).
    pub fn group_cost_usd(&self) -> &[f64] {
        &self.cost_per_group
    }

    /// What the same node-hours would have cost on demand, per group.
    pub fn group_on_demand_cost_usd(&self) -> &[f64] {
        &self.on_demand_cost_per_group
    }

    /// Node-hours per group so far.
    pub fn node_hours(&self) -> Vec<f64> {
        self.node_seconds.iter().map(|s| s / 3600.0).collect()
    }

    /// Most nodes at once per group.
    pub fn peak_nodes(&self) -> &[u32] {
        &self.peak_per_group
    }

    /// Node cost attributed to each API so far, then to each batch job.
    pub fn api_cost_usd(&self) -> &[f64] {
        &self.api_cost_usd
    }

    /// The groups.
    pub fn groups(&self) -> &[NodeGroup] {
        &self.groups
    }

    /// Requested fraction of a node: its GPUs on a GPU node, else the larger of CPU and memory
    /// (the cluster autoscaler's utilisation).
    pub fn utilization(&self, node: NodeId) -> f64 {
        let n = &self.nodes[node.0];
        let t = self.template(n.group);
        if t.gpu > 0 {
            1.0 - f64::from(n.free.gpu) / f64::from(t.gpu)
        } else {
            let cpu = 1.0 - n.free.cpu_m as f64 / t.cpu_m.max(1) as f64;
            let mem = 1.0 - n.free.mem_mib as f64 / t.mem_mib.max(1) as f64;
            cpu.max(mem)
        }
    }

    /// Whether `pods` could all be placed on other Ready, uncordoned nodes (first-fit, without
    /// the nodes in `excluded`).
    pub fn can_reschedule(&self, pods: &[(Requests, Vec<usize>)], excluded: &[NodeId]) -> bool {
        let mut free: Vec<(usize, usize, Requests)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                n.state == NodeState::Ready && !n.cordoned && !excluded.contains(&NodeId(*i))
            })
            .map(|(i, n)| (i, n.group, n.free))
            .collect();
        pods.iter().all(|(r, allowed)| {
            match free
                .iter_mut()
                .find(|(_, g, f)| allowed.contains(g) && fits(f, r))
            {
                Some((_, _, f)) => {
                    take(f, r);
                    true
                }
                None => false,
            }
        })
    }

    /// How many new nodes of `group` the pods need (first-fit onto empty template nodes, at most
    /// `limit`), how many pods they take, and the idle CPU + memory fraction left on them
    /// (the least-waste expander's score).
    pub fn plan_scale_up(&self, group: usize, pods: &[Requests], limit: u32) -> (u32, usize, f64) {
        let template = self.template(group);
        let mut bins: Vec<Requests> = Vec::new();
        let mut helped = 0;
        for r in pods {
            if !fits(&template, r) {
                continue;
            }
            if let Some(bin) = bins.iter_mut().find(|b| fits(b, r)) {
                take(bin, r);
                helped += 1;
            } else if (bins.len() as u32) < limit {
                let mut bin = template;
                take(&mut bin, r);
                bins.push(bin);
                helped += 1;
            }
        }
        let waste = if bins.is_empty() {
            0.0
        } else {
            let n = bins.len() as f64;
            let cpu: f64 = bins.iter().map(|b| b.cpu_m as f64).sum::<f64>()
                / (n * template.cpu_m.max(1) as f64);
            let mem: f64 = bins.iter().map(|b| b.mem_mib as f64).sum::<f64>()
                / (n * template.mem_mib.max(1) as f64);
            cpu + mem
        };
        (bins.len() as u32, helped, waste)
    }

    /// Free capacity on booting nodes (pods that will fit there do not need new nodes).
    pub fn booting_capacity(&self, group_filter: &[usize]) -> Vec<(usize, Requests)> {
        self.nodes
            .iter()
            .filter(|n| n.state == NodeState::Booting && group_filter.contains(&n.group))
            .map(|n| (n.group, n.free))
            .collect()
    }
}

/// Whether `r` fits in `free`, and if so take it (used for virtual bin-packing by the engine).
pub fn take_if_fits(free: &mut Requests, r: &Requests) -> bool {
    if fits(free, r) {
        take(free, r);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    fn groups() -> Vec<NodeGroup> {
        let text = r#"
duration = "1h"
[[node_groups]]
name = "small"
instance_type = "m5.large"
priority = 1
min_instances = 1
[[node_groups]]
name = "big"
instance_type = "m5.xlarge"
priority = 10
min_instances = 1
[[apis]]
name = "a"
[apis.service_time]
distribution = "constant"
value = "1s"
[apis.traffic]
kind = "poisson"
rps = 1
"#;
        Scenario::parse(text, "t.toml", Path::new("."))
            .expect("valid")
            .node_groups
    }

    fn req(cpu_m: u64) -> Requests {
        Requests {
            cpu_m,
            mem_mib: 100,
            ..Requests::default()
        }
    }

    #[test]
    fn placement_prefers_priority_then_fits() {
        let mut c = Cluster::new(&groups(), 1, 0);
        // m5.xlarge: 3920m − 125m DaemonSets = 3795m free.
        let first = c.find_node(req(3000), &[0, 1]).expect("fits on big");
        assert_eq!(c.node(first).group, 1);
        c.bind(
            first,
            PodRef::Replica { api: 0, slot: 0 },
            req(3000),
            0,
            SimTime::ZERO,
        );
        let second = c.find_node(req(1000), &[0, 1]).expect("fits on small");
        assert_eq!(c.node(second).group, 0);
        assert_eq!(c.find_node(req(2000), &[0, 1]), None);
    }

    #[test]
    fn preemption_picks_fewest_lower_priority_victims() {
        let mut c = Cluster::new(&groups(), 1, 0);
        let big = c.find_node(req(1), &[1]).expect("big");
        for i in 0..3 {
            c.bind(big, PodRef::Placeholder(i), req(1200), -10, SimTime::ZERO);
        }
        let (node, victims) = c.preemption_plan(req(2000), &[1], 0).expect("plan");
        assert_eq!(node, big);
        assert_eq!(victims.len(), 2);
        assert!(c.preemption_plan(req(2000), &[1], -20).is_none());
    }

    #[test]
    fn scale_up_plan_counts_nodes_and_waste() {
        let c = Cluster::new(&groups(), 1, 0);
        let pods = vec![req(1000); 5];
        let (nodes, helped, waste) = c.plan_scale_up(1, &pods, 10);
        assert_eq!((nodes, helped), (2, 5));
        assert!(waste > 0.0);
        assert_eq!(c.plan_scale_up(1, &pods, 1).0, 1);
    }

    #[test]
    fn cost_of_a_known_node_hour_mix_to_the_cent() {
        let mut c = Cluster::new(&groups(), 1, 0);
        let extra = c.launch(1, SimTime::from_secs(1800));
        c.node_ready(extra, SimTime::from_secs(1900));
        c.terminate(extra, SimTime::from_secs(5400));
        c.accrue(SimTime::from_secs(7200));
        // 2 h of m5.large (0.096) + 2 h + 1 h of m5.xlarge (0.192): 0.192 + 0.576 = 0.768.
        let cost = c.node_cost_until(SimTime::from_secs(7200));
        assert!((cost - 0.768).abs() < 0.005, "{cost}");
        assert_eq!(c.peak_nodes(), &[1, 2]);
    }
}
