//! Per-tenant figures of a load test whose schedule is a sum of tenants: the same
//! [`TenantResults`] the simulator writes, so a real run and a simulated one compare tenant by
//! tenant.

use std::sync::Mutex;

use contract::results::{
    encode_histogram, new_histogram, Percentiles, TenantResults, HISTOGRAM_MAX_US,
};
use hdrhistogram::Histogram;

use crate::record::{Outcome, Row};

/// HTTP 429: refused by the tenant's own rate or concurrency limit.
const TOO_MANY_REQUESTS: u16 = 429;

#[derive(Debug)]
struct Tally {
    requests: u64,
    completed: u64,
    rejected: u64,
    rate_limited: u64,
    timed_out: u64,
    failed: u64,
    unfinished: u64,
    latency: Histogram<u64>,
}

/// Each tenant's tally (one lock: a tenant run is not the highest-rate case).
pub(crate) struct TenantTallies {
    names: Vec<String>,
    tallies: Mutex<Vec<Tally>>,
}

impl TenantTallies {
    /// Tallies for `names` (empty: a run without tenants, which records nothing here).
    pub(crate) fn new(names: &[String]) -> Self {
        Self {
            names: names.to_vec(),
            tallies: Mutex::new(
                names
                    .iter()
                    .map(|_| Tally {
                        requests: 0,
                        completed: 0,
                        rejected: 0,
                        rate_limited: 0,
                        timed_out: 0,
                        failed: 0,
                        unfinished: 0,
                        latency: new_histogram(),
                    })
                    .collect(),
            ),
        }
    }

    fn with(&self, tenant: Option<u16>, f: impl FnOnce(&mut Tally)) {
        let Some(t) = tenant else { return };
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tally) = tallies.get_mut(usize::from(t)) {
            f(tally);
        }
    }

    /// A request of the run ended.
    pub(crate) fn record(&self, row: &Row) {
        self.with(row.tenant, |t| {
            t.requests += 1;
            match &row.outcome {
                Outcome::Answered(a) if (200..300).contains(&a.status) => {
                    t.completed += 1;
                    let us = u64::try_from(row.latency.as_micros()).unwrap_or(u64::MAX);
                    t.latency.saturating_record(us.min(HISTOGRAM_MAX_US));
                }
                Outcome::Answered(a) if a.status == TOO_MANY_REQUESTS => {
                    t.rejected += 1;
                    t.rate_limited += 1;
                }
                Outcome::Answered(a) if a.status == 503 => t.rejected += 1,
                Outcome::TimedOut => t.timed_out += 1,
                Outcome::Answered(_) | Outcome::Failed(_) => t.failed += 1,
            }
        });
    }

    /// A request of `tenant` was still outstanding when the run stopped.
    pub(crate) fn unfinished(&self, tenant: Option<u16>) {
        self.with(tenant, |t| {
            t.requests += 1;
            t.unfinished += 1;
        });
    }

    /// Each tenant's figures over a run of `elapsed_s` (cost and busy time are not measured by a
    /// client: zero).
    pub(crate) fn results(&self, elapsed_s: f64) -> Vec<TenantResults> {
        let tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        self.names
            .iter()
            .zip(tallies.iter())
            .map(|(name, t)| TenantResults {
                name: name.clone(),
                requests: t.requests,
                completed: t.completed,
                rejected: t.rejected,
                rate_limited: t.rate_limited,
                timed_out: t.timed_out,
                interrupted: t.failed,
                in_flight_at_end: t.unfinished,
                latency_ms: Percentiles::from_histogram(&t.latency),
                throughput_rps: if elapsed_s > 0.0 {
                    t.completed as f64 / elapsed_s
                } else {
                    0.0
                },
                busy_worker_s: 0.0,
                cost_usd: 0.0,
                slo: None,
                latency_histogram: encode_histogram(&t.latency),
            })
            .collect()
    }
}
