//! The serving room's token-level path: an LLM API's replicas each run the `llm` crate's engine
//! (vLLM's iteration loop), one heap event per iteration.
//!
//! A request is routed (least outstanding, or lowest KV usage), waits in its replica's engine,
//! and leaves when it has emitted its output tokens. A replica iterates back to back while it has
//! work: each iteration's end is an `LlmIteration` event that emits tokens, records time to first
//! token, inter-token gaps and completions, and plans the next iteration. Iterations on a MIG
//! slice take the full-GPU time over the slice's compute share; on a time-sliced or MPS GPU they
//! stretch with the busy sharers, as request-level service does.

use hdrhistogram::Histogram;
use llm::{Engine, EngineConfig, Finished, Observer};

use super::outcomes::record;
use super::serving::{ApiState, Queued};
use super::{Agenda, EventKind};
use crate::cluster::Cluster;
use crate::results::{encode_histogram, new_histogram, share, LlmResults, Percentiles, SloCheck};
use crate::rng::Stream;
use crate::scenario::{LlmModel, LlmRouting};
use crate::time::SimTime;

/// One replica's engine; requests are tagged with their arrival time.
pub(super) type ReplicaEngine = Engine<SimTime>;

/// An LLM API's token-level counters and histograms.
#[derive(Debug)]
pub(super) struct LlmState {
    /// Draws prompt and output lengths the traffic does not carry.
    pub(super) lengths: Stream,
    pub(super) ttft: Histogram<u64>,
    pub(super) itl: Histogram<u64>,
    /// Time to first token of requests that arrived before the SLO warmup.
    pub(super) warmup_ttft: Histogram<u64>,
    /// Inter-token gaps emitted before the warmup's end.
    pub(super) warmup_itl: Histogram<u64>,
    /// Prompt tokens of completed requests.
    pub(super) prompt_tokens: u64,
    pub(super) output_tokens: u64,
    /// Prompt tokens computed, recomputation after preemption included.
    pub(super) prefill_tokens: u64,
    pub(super) preemptions: u64,
    pub(super) iterations: u64,
    /// Finished requests that met both the TTFT and the inter-token objective.
    pub(super) good: u64,
    /// Of which arrived before the warmup.
    pub(super) warmup_good: u64,
    /// Output tokens emitted in the current timeline step.
    pub(super) step_output_tokens: u64,
    /// Times to first token in the current timeline step.
    pub(super) step_ttft: Histogram<u64>,
}

impl LlmState {
    pub(super) fn new(lengths: Stream) -> Self {
        LlmState {
            lengths,
            ttft: new_histogram(),
            itl: new_histogram(),
            warmup_ttft: new_histogram(),
            warmup_itl: new_histogram(),
            prompt_tokens: 0,
            output_tokens: 0,
            prefill_tokens: 0,
            preemptions: 0,
            iterations: 0,
            good: 0,
            warmup_good: 0,
            step_output_tokens: 0,
            step_ttft: new_histogram(),
        }
    }
}

/// A new engine for a replica of `model` placed on node group `group`.
pub(super) fn engine_for(model: &LlmModel, group: usize) -> Box<ReplicaEngine> {
    Box::new(Engine::new(EngineConfig {
        kv_blocks: model.kv_blocks_by_group[group],
        ..model.engine
    }))
}

/// Records an iteration's tokens and completions into the API's counters.
struct Recorder<'a> {
    api: &'a mut ApiState,
    now: SimTime,
    /// TTFT and mean inter-token limits of the goodput objective, µs.
    limits_us: Option<(u64, u64)>,
}

impl Observer<SimTime> for Recorder<'_> {
    fn first_token(&mut self, arrival: &SimTime, now_ns: u64) {
        let ttft = SimTime(now_ns).since(*arrival) + self.api.spec.network_latency;
        let early = *arrival < self.api.warmup.until;
        if let Some(llm) = self.api.llm.as_mut() {
            record(&mut llm.ttft, ttft.as_micros());
            record(&mut llm.step_ttft, ttft.as_micros());
            if early {
                record(&mut llm.warmup_ttft, ttft.as_micros());
            }
            llm.output_tokens += 1;
            llm.step_output_tokens += 1;
        }
    }

    fn tokens(&mut self, gap_ns: u64, count: u32) {
        // Gaps emitted before the SLO warmup's end are not judged.
        let early = self.now < self.api.warmup.until;
        if let Some(llm) = self.api.llm.as_mut() {
            let us = (gap_ns / 1000).min(crate::results::HISTOGRAM_MAX_US);
            llm.itl.saturating_record_n(us, u64::from(count));
            if early {
                llm.warmup_itl.saturating_record_n(us, u64::from(count));
            }
            llm.output_tokens += u64::from(count);
            llm.step_output_tokens += u64::from(count);
        }
    }

    fn finished(&mut self, done: Finished<SimTime>, now_ns: u64) {
        let now = SimTime(now_ns);
        let arrival = done.tag;
        let in_time = self.api.count_finished(arrival, 0, now);
        let Some(llm) = self.api.llm.as_mut() else {
            return;
        };
        if !in_time {
            return;
        }
        llm.prompt_tokens += u64::from(done.prompt);
        if let Some((ttft_limit, itl_limit)) = self.limits_us {
            let ttft = SimTime(done.first_token_ns).since(arrival) + self.api.spec.network_latency;
            let decode = now.since(SimTime(done.first_token_ns)).as_micros();
            let mean_itl = decode / u64::from(done.output.saturating_sub(1).max(1));
            if ttft.as_micros() <= ttft_limit && mean_itl <= itl_limit {
                llm.good += 1;
                if arrival < self.api.warmup.until {
                    llm.warmup_good += 1;
                }
            }
        }
    }
}

impl ApiState {
    /// Prompt and output lengths of an arriving request: the trace's, else drawn (both drawn in
    /// a fixed order for every request, so configurations see the same lengths).
    pub(super) fn draw_lengths(&mut self, recorded: workload::recorded::Tokens) -> (u32, u32) {
        let (Some(model), Some(state)) = (self.spec.llm.as_ref(), self.llm.as_mut()) else {
            return (0, 0);
        };
        let input = match (&model.input_tokens, recorded.input) {
            (_, Some(v)) => v,
            (Some(d), None) => d.sample(&mut state.lengths),
            (None, None) => 1,
        };
        let output = match (&model.output_tokens, recorded.output) {
            (_, Some(v)) => v,
            (Some(d), None) => d.sample(&mut state.lengths),
            (None, None) => 1,
        };
        (input, output)
    }

    /// Pick an LLM replica: fewest outstanding requests, or lowest KV usage (then fewest
    /// waiting); ties round-robin.
    fn route_llm(&mut self) -> Option<u32> {
        let routing = self.spec.llm.as_ref().map(|m| m.routing)?;
        if routing == LlmRouting::LeastOutstanding {
            return self.route();
        }
        let n = self.ready.len();
        if n == 0 {
            return None;
        }
        let start = self.next_round_robin(n);
        Some(self.least_by(start, |r| {
            let engine = r.llm.as_ref();
            (
                engine.map_or(0, |e| e.used_blocks()) as u64 * 1_000_000
                    / u64::from(engine.map_or(1, |e| e.config().kv_blocks.max(1))),
                engine.map_or(0, |e| e.waiting()),
            )
        }))
    }

    /// Route a request to an LLM replica's engine, or refuse it: no ready replica, a full
    /// waiting queue, or a request longer than a replica can ever hold.
    pub(super) fn dispatch_llm(
        &mut self,
        a: usize,
        request: Queued,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        let Some(r) = self.route_llm() else {
            self.count_rejected(request.arrival, request.tenant);
            self.rejected_no_replica += 1;
            self.step.rejected_no_replica += 1;
            return;
        };
        let max_waiting = self.spec.max_queue_length;
        let replica = &mut self.replicas[r as usize];
        let Some(engine) = replica.llm.as_mut() else {
            return;
        };
        if engine.waiting() >= max_waiting
            || engine
                .push(request.arrival, request.prompt, request.output)
                .is_err()
        {
            self.count_rejected(request.arrival, request.tenant);
            return;
        }
        replica.in_flight += 1;
        replica.arrivals += 1;
        self.in_flight += 1;
        self.queued += 1;
        if !engine.is_iterating() {
            self.start_iteration(a, r as usize, now, cluster, agenda);
        }
    }

    /// Plan replica `r`'s next iteration and schedule its end, or let it idle.
    pub(super) fn start_iteration(
        &mut self,
        a: usize,
        r: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        let scale = self.spec.service_scale;
        let workers = self.spec.threads;
        let replica = &mut self.replicas[r];
        let Some(engine) = replica.llm.as_mut() else {
            return;
        };
        let before = engine.stats();
        let waiting_before = engine.waiting();
        let planned = engine.start_iteration(now.0);
        let after = engine.stats();
        let waiting_after = engine.waiting();
        self.queued = self.queued + u64::from(waiting_after) - u64::from(waiting_before);
        if let Some(llm) = self.llm.as_mut() {
            llm.preemptions += after.preemptions - before.preemptions;
            llm.iterations += after.iterations - before.iterations;
            llm.prefill_tokens += after.prefill_tokens - before.prefill_tokens;
        }
        let Some(ns) = planned else {
            if replica.busy > 0 {
                replica.busy = 0;
                if let Some(gpu) = replica.shared_gpu {
                    cluster.gpu_sharer_idle(gpu);
                }
            }
            return;
        };
        let mut seconds = ns as f64 * 1e-9 * scale;
        if let Some(gpu) = replica.shared_gpu {
            let sharers = if replica.busy == 0 {
                cluster.gpu_sharer_busy(gpu)
            } else {
                cluster.gpu_sharers(gpu)
            };
            seconds *= gpu.stretch(sharers);
        }
        replica.busy = workers;
        let epoch = replica.epoch;
        agenda.schedule(
            now + SimTime::from_secs_f64(seconds).max(SimTime(1)),
            EventKind::LlmIteration {
                api: a as u16,
                replica: r as u32,
                epoch,
            },
        );
    }

    /// Replica `r`'s iteration ended: tokens and completions are recorded and the next
    /// iteration planned. True when the replica was terminating and has drained.
    pub(super) fn iteration_done(
        &mut self,
        a: usize,
        r: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        self.touch(now);
        let Some(mut engine) = self.replicas[r].llm.take() else {
            return false;
        };
        let outstanding_before = engine.outstanding();
        let slo = &self.spec.slo;
        let limits_us = slo
            .ttft_p99
            .zip(slo.itl_p99)
            .map(|(t, i)| (t.0.as_micros(), i.0.as_micros()));
        engine.finish_iteration(
            now.0,
            &mut Recorder {
                api: self,
                now,
                limits_us,
            },
        );
        let done = outstanding_before - engine.outstanding();
        let replica = &mut self.replicas[r];
        replica.in_flight -= done;
        self.in_flight -= u64::from(done);
        self.replicas[r].llm = Some(engine);
        self.start_iteration(a, r, now, cluster, agenda);
        let replica = &self.replicas[r];
        replica.state == super::ReplicaState::Terminating && replica.in_flight == 0
    }
}

/// An LLM API's token-level results, and the objectives they are judged against.
pub(super) fn results(api: &ApiState, duration_s: f64) -> Option<(LlmResults, Vec<SloCheck>)> {
    let llm = api.llm.as_ref()?;
    let warmup = api.warmup.until;
    let judged = |all: &Histogram<u64>, early: &Histogram<u64>| {
        let mut h = all.clone();
        // The early histogram holds a subset of the same records: subtracting cannot fail.
        let _ = h.subtract(early);
        Percentiles::from_histogram(&h)
    };
    let ttft = judged(&llm.ttft, &llm.warmup_ttft);
    let itl = judged(&llm.itl, &llm.warmup_itl);
    let slo = &api.spec.slo;
    let goodput = slo.ttft_p99.zip(slo.itl_p99).map(|_| {
        // Requests still in flight at the end have no verdict yet.
        let unfinished = api
            .replicas
            .iter()
            .filter_map(|r| r.llm.as_ref())
            .flat_map(|e| e.tags())
            .chain(api.held.iter().map(|q| &q.arrival))
            .filter(|&&t| t >= warmup)
            .count() as u64;
        let finished = (api.requests - api.warmup.requests).saturating_sub(unfinished);
        share((llm.good - llm.warmup_good) as f64, finished as f64)
    });
    let mut checks = Vec::new();
    let ms = |d: Option<crate::units::DurationSpec>| d.map(|d| d.as_secs_f64() * 1000.0);
    for (objective, limit, actual) in [
        ("ttft_p99_ms", ms(slo.ttft_p99), ttft.p99),
        ("itl_p99_ms", ms(slo.itl_p99), itl.p99),
    ] {
        super::finish::push_ceiling(&mut checks, objective, limit, actual);
    }
    if let (Some(limit), Some(actual)) = (slo.min_goodput, goodput) {
        checks.push(SloCheck {
            objective: "goodput".into(),
            limit,
            actual,
            met: actual >= limit,
        });
    }
    Some((
        LlmResults {
            ttft_ms: Percentiles::from_histogram(&llm.ttft),
            itl_ms: Percentiles::from_histogram(&llm.itl),
            prompt_tokens: llm.prompt_tokens,
            output_tokens: llm.output_tokens,
            output_tokens_per_s: if duration_s > 0.0 {
                llm.output_tokens as f64 / duration_s
            } else {
                0.0
            },
            prefill_tokens: llm.prefill_tokens,
            preemptions: llm.preemptions,
            iterations: llm.iterations,
            goodput,
            ttft_histogram: encode_histogram(&llm.ttft),
            itl_histogram: encode_histogram(&llm.itl),
        },
        checks,
    ))
}
