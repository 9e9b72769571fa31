//! Tenants on an emulated replica: the gateway's per-tenant limits (token bucket and
//! concurrency, answered 429) and each process's queue ordered between tenants (arrival order,
//! weighted fair, or by priority) with the shared buffer's push-out — the simulator's rules
//! (`sim`'s `engine/tenancy.rs`), from the same [`workload::fairness`] pieces, in real time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;
use workload::fairness::{fair_cost, priority_rank, FairClock, QueueDiscipline, TokenBucket};

/// Request header naming a request's tenant (`simctl loadgen --tenant-header` sets another).
pub const TENANT_HEADER: &str = "x-tenant";

/// One tenant as the replica sees it.
#[derive(Debug, Clone)]
pub struct TenantRule {
    /// The name its requests carry in the tenant header.
    pub name: String,
    /// Weighted fair queueing: its share (> 0).
    pub weight: f64,
    /// Priority queueing: higher starts first.
    pub priority: i32,
    /// The gateway's token bucket: (requests per second, bucket size).
    pub rate_limit: Option<(f64, u32)>,
    /// The gateway's cap on its requests in flight.
    pub max_concurrency: Option<u32>,
}

/// How the replicas of one `simctl serve` share themselves between tenants. Cloned specs share
/// the gate: the limits hold across all the replicas of the process, as a gateway's do.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    /// The header that names a request's tenant.
    pub header: String,
    /// Queue order within each process.
    pub discipline: QueueDiscipline,
    rules: Arc<Vec<TenantRule>>,
    gate: Arc<Mutex<Vec<Limits>>>,
}

#[derive(Debug)]
struct Limits {
    bucket: Option<TokenBucket>,
    refilled: Instant,
    in_flight: u64,
    max_concurrency: Option<u64>,
}

impl TenantPolicy {
    /// The policy for `rules` under `discipline`, with full token buckets.
    pub fn new(rules: Vec<TenantRule>, discipline: QueueDiscipline) -> TenantPolicy {
        let now = Instant::now();
        let gate = rules
            .iter()
            .map(|r| Limits {
                bucket: r.rate_limit.map(|(rps, size)| TokenBucket::new(rps, size)),
                refilled: now,
                in_flight: 0,
                max_concurrency: r.max_concurrency.map(u64::from),
            })
            .collect();
        TenantPolicy {
            header: TENANT_HEADER.into(),
            discipline,
            rules: Arc::new(rules),
            gate: Arc::new(Mutex::new(gate)),
        }
    }

    /// The tenant a request named `name` belongs to; requests naming no known tenant are one
    /// extra anonymous tenant of weight 1 and priority 0, without limits.
    pub(crate) fn tenant_of(&self, name: Option<&str>) -> usize {
        name.and_then(|n| self.rules.iter().position(|r| r.name == n))
            .unwrap_or(self.rules.len())
    }

    fn gate(&self) -> MutexGuard<'_, Vec<Limits>> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gateway sees a request of tenant `t`: admitted (the guard holds its place under the
    /// concurrency limit until dropped) or refused by its limits (`None`: answer 429). As in
    /// the simulator, a request refused by the concurrency limit takes no token.
    pub(crate) fn admit(&self, t: usize) -> Option<GateGuard> {
        let mut gate = self.gate();
        let Some(limits) = gate.get_mut(t) else {
            return Some(GateGuard(None));
        };
        let mut admitted = limits
            .max_concurrency
            .is_none_or(|cap| limits.in_flight < cap);
        if let Some(bucket) = &mut limits.bucket {
            let now = Instant::now();
            bucket.refill(now.duration_since(limits.refilled).as_secs_f64());
            limits.refilled = now;
            admitted = admitted && bucket.take();
        }
        if !admitted {
            return None;
        }
        limits.in_flight += 1;
        Some(GateGuard(Some((self.gate.clone(), t))))
    }

    fn cost(&self, t: usize) -> u64 {
        fair_cost(self.rules.get(t).map_or(1.0, |r| r.weight))
    }

    fn rank(&self, t: usize) -> u64 {
        priority_rank(self.rules.get(t).map_or(0, |r| r.priority))
    }
}

/// A request's place under its tenant's concurrency limit, given back when dropped.
pub(crate) struct GateGuard(Option<(Arc<Mutex<Vec<Limits>>>, usize)>);

impl Drop for GateGuard {
    fn drop(&mut self) {
        if let Some((gate, t)) = self.0.take() {
            let mut gate = gate.lock().unwrap_or_else(|p| p.into_inner());
            gate[t].in_flight -= 1;
        }
    }
}

/// Why a queued request did not get a worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PushedOut;

struct Waiter {
    rank: u64,
    tenant: usize,
    start: oneshot::Sender<()>,
}

struct Queue {
    busy: u32,
    waiting: std::collections::VecDeque<Waiter>,
    clock: FairClock,
}

/// One process's workers and queue, ordered between tenants.
pub(crate) struct TenantQueue {
    threads: u32,
    policy: TenantPolicy,
    queue: Mutex<Queue>,
}

impl TenantQueue {
    /// `threads` workers and an empty queue under `policy`.
    pub(crate) fn new(threads: u32, policy: TenantPolicy) -> TenantQueue {
        TenantQueue {
            threads: threads.max(1),
            policy,
            queue: Mutex::new(Queue {
                busy: 0,
                waiting: std::collections::VecDeque::new(),
                clock: FairClock::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for a worker for a request of tenant `t`; `Err` when a request that should start
    /// before it pushed it out of the full queue (answer 503). The worker is held until the
    /// [`Worker`] is dropped.
    pub(crate) async fn acquire(&self, t: usize) -> Result<Worker<'_>, PushedOut> {
        let wait = {
            let mut q = self.lock();
            if q.busy < self.threads && q.waiting.is_empty() {
                q.busy += 1;
                if self.policy.discipline == QueueDiscipline::WeightedFair {
                    let tag = q.clock.tag(t, self.policy.cost(t));
                    q.clock.started(tag);
                }
                return Ok(Worker(self));
            }
            let rank = match self.policy.discipline {
                QueueDiscipline::Fifo => 0,
                QueueDiscipline::WeightedFair => q.clock.tag(t, self.policy.cost(t)),
                QueueDiscipline::Priority => self.policy.rank(t),
            };
            let (start, wait) = oneshot::channel();
            // After every request of a rank as small (arrival order among equals).
            let at = q.waiting.partition_point(|w| w.rank <= rank);
            q.waiting.insert(
                at,
                Waiter {
                    rank,
                    tenant: t,
                    start,
                },
            );
            wait
        };
        match wait.await {
            Ok(()) => Ok(Worker(self)),
            Err(_) => Err(PushedOut),
        }
    }

    /// A request of tenant `t` finds the replica full: under a fair or priority queue it pushes
    /// out the queued request that would start last, when that one would start after it (the
    /// simulator's longest-queue drop). True: there is room now.
    pub(crate) fn push_out(&self, t: usize) -> bool {
        let mut q = self.lock();
        let rank = match self.policy.discipline {
            QueueDiscipline::Fifo => return false,
            QueueDiscipline::WeightedFair => q.clock.peek(t, self.policy.cost(t)),
            QueueDiscipline::Priority => self.policy.rank(t),
        };
        if q.waiting.back().is_none_or(|last| last.rank <= rank) {
            return false;
        }
        let Some(victim) = q.waiting.pop_back() else {
            return false;
        };
        if self.policy.discipline == QueueDiscipline::WeightedFair {
            let cost = self.policy.cost(victim.tenant);
            q.clock.give_back(victim.tenant, victim.rank, cost);
        }
        // Dropping its sender tells the victim it lost its place.
        drop(victim.start);
        true
    }

    /// A worker finished: the first waiter still waiting gets it.
    fn release(&self) {
        let mut q = self.lock();
        while let Some(next) = q.waiting.pop_front() {
            if next.start.send(()).is_ok() {
                q.clock.started(next.rank);
                return;
            }
        }
        q.busy -= 1;
    }
}

/// A worker of a [`TenantQueue`], handed to the next waiter when dropped.
pub(crate) struct Worker<'a>(&'a TenantQueue);

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(weights: &[f64]) -> Vec<TenantRule> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| TenantRule {
                name: format!("t{i}"),
                weight,
                priority: i as i32,
                rate_limit: None,
                max_concurrency: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn backlogged_tenants_get_their_weights_share_of_one_worker() {
        // One worker held; 30 requests of each of two tenants (weights 2 and 1) queue; as the
        // worker is handed on, the first 30 starts go 20 / 10.
        let policy = TenantPolicy::new(rules(&[2.0, 1.0]), QueueDiscipline::WeightedFair);
        let queue = Arc::new(TenantQueue::new(1, policy));
        let first = queue.acquire(0).await.expect("a free worker");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for _ in 0..30 {
            for t in 0..2 {
                let queue = queue.clone();
                let tx = tx.clone();
                tasks.push(tokio::spawn(async move {
                    let worker = queue.acquire(t).await.expect("not pushed out");
                    tx.send(t).expect("open");
                    drop(worker);
                }));
                // Queued in this order.
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for task in tasks {
            task.await.expect("task");
        }
        let mut started = [0; 2];
        for _ in 0..30 {
            started[rx.recv().await.expect("start")] += 1;
        }
        assert_eq!(started, [20, 10]);
    }

    #[tokio::test]
    async fn a_higher_priority_pushes_out_the_last_lower_one() {
        let policy = TenantPolicy::new(rules(&[1.0, 1.0]), QueueDiscipline::Priority);
        let queue = Arc::new(TenantQueue::new(1, policy));
        let held = queue.acquire(0).await.expect("a free worker");
        let low = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.acquire(0).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        // Tenant 1 has the higher priority: it may take tenant 0's place, not the reverse.
        assert!(queue.push_out(1));
        assert_eq!(low.await.expect("task"), Err(PushedOut));
        assert!(!queue.push_out(0));
        drop(held);
    }

    #[test]
    fn the_gate_refuses_past_the_bucket_and_the_concurrency_cap() {
        let mut r = rules(&[1.0, 1.0]);
        r[0].rate_limit = Some((0.001, 2));
        r[1].max_concurrency = Some(1);
        let policy = TenantPolicy::new(r, QueueDiscipline::Fifo);
        assert!(policy.admit(0).is_some());
        assert!(policy.admit(0).is_some());
        assert!(policy.admit(0).is_none());
        let held = policy.admit(1);
        assert!(held.is_some());
        assert!(policy.admit(1).is_none());
        drop(held);
        assert!(policy.admit(1).is_some());
        // Unknown names are the anonymous tenant, never limited.
        assert_eq!(policy.tenant_of(Some("nobody")), 2);
        assert!(policy.admit(2).is_some());
    }
}
