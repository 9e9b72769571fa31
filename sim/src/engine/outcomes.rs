//! What became of each request — completed, refused, timed out — counted in an API's totals,
//! its timeline step, its warmup's share and its tenant's tally, and reported to its pipeline,
//! in one place for every path that ends a request (kept apart from `serving.rs` for size).

use hdrhistogram::Histogram;

use super::pipelines::{FlowEnd, NO_FLOW};
use super::serving::ApiState;
use crate::results::HISTOGRAM_MAX_US;
use crate::time::SimTime;

/// Per-step counters for the timeline.
#[derive(Debug)]
pub(super) struct StepCounters {
    pub(super) arrivals: u64,
    pub(super) completed: u64,
    pub(super) rejected: u64,
    pub(super) rejected_no_replica: u64,
    pub(super) timed_out: u64,
    pub(super) interrupted: u64,
    pub(super) latency: Histogram<u64>,
}

/// What requests that arrived before the SLO's warmup did: taken off the totals for the SLO
/// checks. Untouched (and free) without a warmup.
#[derive(Debug)]
pub(super) struct Warmup {
    /// Requests arriving before this are not judged.
    pub(super) until: SimTime,
    pub(super) requests: u64,
    pub(super) rejected: u64,
    pub(super) timed_out: u64,
    pub(super) latency: Histogram<u64>,
}

impl ApiState {
    /// Tell the pipelines room (through the loop) how a pipeline request ended here; nothing
    /// for other requests.
    #[inline]
    pub(super) fn end_flow(&mut self, flow: u32, end: FlowEnd) {
        if flow != NO_FLOW {
            self.ended_flows.push((flow, end));
        }
    }

    /// A 503 for a request of `tenant` that arrived at `arrival`: in the totals, the step, the
    /// tenant's, and the warmup's share when it came before the warmup's end.
    #[inline]
    pub(super) fn count_rejected(&mut self, arrival: SimTime, tenant: u16) {
        if let Some(t) = &mut self.tenancy {
            t.rejected(tenant);
        }
        self.rejected += 1;
        self.step.rejected += 1;
        if arrival < self.warmup.until {
            self.warmup.rejected += 1;
        }
    }

    /// A request that arrived at `arrival` timed out: counted as [`Self::count_rejected`] counts
    /// a 503.
    #[inline]
    pub(super) fn count_timed_out(&mut self, arrival: SimTime, tenant: u16) {
        if let Some(t) = &mut self.tenancy {
            t.timed_out(tenant);
        }
        self.timed_out += 1;
        self.step.timed_out += 1;
        if arrival < self.warmup.until {
            self.warmup.timed_out += 1;
        }
    }

    /// A request that arrived at `arrival` is done at `now`: a completion with its latency, or
    /// a timeout when the client gave up before. True for a completion.
    #[inline]
    pub(super) fn count_finished(&mut self, arrival: SimTime, tenant: u16, now: SimTime) -> bool {
        let latency = now.since(arrival) + self.spec.network_latency;
        if self.spec.timeout.is_some_and(|t| latency > t) {
            self.count_timed_out(arrival, tenant);
            return false;
        }
        if let Some(t) = &mut self.tenancy {
            t.completed(tenant, latency.as_micros());
        }
        self.completed += 1;
        self.step.completed += 1;
        record(&mut self.latency, latency.as_micros());
        record(&mut self.step.latency, latency.as_micros());
        if arrival < self.warmup.until {
            record(&mut self.warmup.latency, latency.as_micros());
        }
        true
    }
}

#[inline]
pub(super) fn record(h: &mut Histogram<u64>, micros: u64) {
    h.saturating_record(micros.min(HISTOGRAM_MAX_US));
}
