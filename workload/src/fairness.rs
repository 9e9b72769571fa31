//! How a server shares itself between tenants: the gateway's per-tenant token bucket and the
//! order a replica's queue starts requests in (arrival order, weighted fair, or by priority).
//!
//! The simulator's replicas and `simctl serve`'s real ones use these same pieces, so a tenant
//! scenario run both ways is one model, not two.
//!
//! Weighted fair queueing is self-clocked fair queueing (Golestani 1994) per queue, with every
//! request costing one unit (a gateway does not know a request's service time): a request of
//! tenant `i` gets the tag `F = max(F_last(i), V) + 1 / w_i`, where `V` is the tag of the request
//! that last started on the queue, and the queue starts the smallest tag first (ties in arrival
//! order). Each backlogged tenant then gets its weight's share of the starts. Priority queueing
//! orders the queue by the tenant's priority, arrival order within one priority; neither preempts
//! a request that has started.

/// The order in which a replica's queued requests start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueDiscipline {
    /// Arrival order (what Cortex's proxy and most servers do).
    #[default]
    Fifo,
    /// Self-clocked weighted fair queueing across tenants (each request costs one unit over its
    /// tenant's weight): a backlogged tenant gets its weight's share of the starts.
    WeightedFair,
    /// The highest tenant priority first, arrival order within a priority (non-preemptive).
    Priority,
}

impl QueueDiscipline {
    /// The scenario's spelling (`[apis.fairness] queue`), for messages and round trips.
    pub fn name(self) -> &'static str {
        match self {
            QueueDiscipline::Fifo => "fifo",
            QueueDiscipline::WeightedFair => "weighted_fair",
            QueueDiscipline::Priority => "priority",
        }
    }
}

/// Virtual time one request of a weight-1 tenant costs under weighted fair queueing (a power of
/// two, so integer tags keep weights' ratios exact enough).
const FAIR_UNIT: f64 = 1_048_576.0;

/// What one request of a tenant of `weight` (> 0) adds to its virtual clock.
pub fn fair_cost(weight: f64) -> u64 {
    ((FAIR_UNIT / weight).round() as u64).max(1)
}

/// A priority queue's sort key for a tenant of `priority` (smaller starts first).
pub fn priority_rank(priority: i32) -> u64 {
    (i64::from(i32::MAX) - i64::from(priority)) as u64
}

/// One queue's weighted-fair-queueing clock: the tag of the request that last started, and each
/// tenant's last tag.
#[derive(Debug, Clone, Default)]
pub struct FairClock {
    virtual_now: u64,
    last_finish: Vec<u64>,
}

impl FairClock {
    /// The tag a request of tenant `t` costing `cost` would get now, without taking it.
    pub fn peek(&self, t: usize, cost: u64) -> u64 {
        let last = self.last_finish.get(t).copied().unwrap_or(0);
        last.max(self.virtual_now) + cost
    }

    /// The next tag of tenant `t`, recorded as its last.
    pub fn tag(&mut self, t: usize, cost: u64) -> u64 {
        if self.last_finish.len() <= t {
            self.last_finish.resize(t + 1, 0);
        }
        let tag = self.last_finish[t].max(self.virtual_now) + cost;
        self.last_finish[t] = tag;
        tag
    }

    /// A request of tag `tag` starts: the clock moves to it.
    pub fn started(&mut self, tag: u64) {
        self.virtual_now = tag;
    }

    /// Tenant `t`'s queued request of tag `tag` was pushed out: its clock goes back to before it.
    pub fn give_back(&mut self, t: usize, tag: u64, cost: u64) {
        if let Some(last) = self.last_finish.get_mut(t) {
            *last = tag.saturating_sub(cost);
        }
    }
}

/// A gateway's token bucket: `rate_per_s` tokens a second up to `size`, one per request
/// admitted. It starts full. The caller keeps the clock and says how much time passed.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate_per_s: f64,
    size: f64,
    tokens: f64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_s: f64, size: u32) -> TokenBucket {
        TokenBucket {
            rate_per_s,
            size: f64::from(size),
            tokens: f64::from(size),
        }
    }

    /// Add what `elapsed_s` seconds earn, up to the bucket's size.
    pub fn refill(&mut self, elapsed_s: f64) {
        self.tokens = (self.tokens + elapsed_s * self.rate_per_s).min(self.size);
    }

    /// Take a token if there is one.
    pub fn take(&mut self) -> bool {
        let ok = self.tokens >= 1.0;
        if ok {
            self.tokens -= 1.0;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlogged_tenants_start_in_proportion_to_their_weights() {
        // Tenant 0 weight 3, tenant 1 weight 1, both with 400 requests queued at once: of the
        // first 200 starts, 150 and 50.
        let costs = [fair_cost(3.0), fair_cost(1.0)];
        let mut clock = FairClock::default();
        let mut queue: Vec<(u64, usize, usize)> = Vec::new();
        let mut seq = 0;
        for _ in 0..400 {
            for (t, &cost) in costs.iter().enumerate() {
                queue.push((clock.tag(t, cost), seq, t));
                seq += 1;
            }
        }
        queue.sort();
        let mut started = [0; 2];
        for &(tag, _, t) in queue.iter().take(200) {
            clock.started(tag);
            started[t] += 1;
        }
        assert_eq!(started, [150, 50]);
    }

    #[test]
    fn an_idle_tenant_does_not_bank_credit() {
        // Tenant 1 arrives after tenant 0 has run far ahead: it starts from the clock, not
        // from zero, so it gets no burst of back pay.
        let mut clock = FairClock::default();
        let unit = fair_cost(1.0);
        for _ in 0..100 {
            let tag = clock.tag(0, unit);
            clock.started(tag);
        }
        assert_eq!(clock.peek(1, unit), 101 * unit);
        let tag = clock.tag(1, unit);
        clock.give_back(1, tag, unit);
        assert_eq!(clock.peek(1, unit), 101 * unit);
    }

    #[test]
    fn priority_ranks_put_higher_priorities_first() {
        assert!(priority_rank(10) < priority_rank(0));
        assert!(priority_rank(0) < priority_rank(-5));
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(2.0, 3);
        assert_eq!((0..5).filter(|_| b.take()).count(), 3);
        b.refill(1.0);
        assert_eq!((0..5).filter(|_| b.take()).count(), 2);
        b.refill(100.0);
        assert_eq!((0..5).filter(|_| b.take()).count(), 3);
    }
}
