//! The serving room as its autoscaler sees it: each scrape of the replicas for the policy's
//! metric pipeline, and each decision asked of the autoscaling core — in a file of its own so
//! that `serving.rs` stays a size a reader can hold.

use autoscaler::{PodSample, ReplicaCount};

use super::serving::{Replica, ReplicaState, Serving};
use super::{Agenda, EventKind};
use crate::time::SimTime;

impl Serving {
    /// One scrape of the API's replicas for the policy's metric pipeline.
    pub(super) fn scrape(&mut self, a: usize, now: SimTime, agenda: &mut Agenda) {
        let api = &mut self.apis[a];
        api.touch(now);
        let Some(every) = api.autoscaler.sample_interval() else {
            return;
        };
        let total = if api.track_area {
            let avg = (api.area - api.area_at_scrape) / every.as_secs_f64();
            api.area_at_scrape = api.area;
            avg
        } else {
            (api.in_flight + api.waiting_messages()) as f64
        };
        let workers = f64::from(api.spec.processes * api.spec.threads);
        // CPU in use over CPU requested when every worker is busy (1 unless `cpu_usage` is set).
        let usage_per_request = api.spec.cpu_usage_m as f64 / api.spec.requests.cpu_m.max(1) as f64;
        let mut pods = Vec::new();
        if api.autoscaler.wants_pods() {
            for (slot, replica) in api.replicas.iter_mut().enumerate() {
                if matches!(
                    replica.state,
                    ReplicaState::Gone | ReplicaState::Terminating
                ) {
                    continue;
                }
                let busy = replica.busy;
                pods.push((
                    slot,
                    PodSample {
                        ready: replica.state == ReplicaState::Ready,
                        reported: replica.node.is_some(),
                        in_flight: f64::from(replica.in_flight),
                        busy_fraction: f64::from(busy) / workers * usage_per_request,
                        arrivals: replica.arrivals as f64,
                        age: now.since(replica.created).as_duration(),
                        llm: llm_signals(replica),
                    },
                ));
                replica.arrivals = 0;
            }
        }
        api.autoscaler.sample(now, total, &pods);
        agenda.schedule(now + every, EventKind::Scrape { api: a as u32 });
    }

    /// Ask the autoscaling core for a decision from what it can observe now: the new replica
    /// target when it changes (logged), for the loop to apply. `tick` is false for the
    /// activator's out-of-band wake-up of a scaled-to-zero API.
    pub(super) fn decide(
        &mut self,
        a: usize,
        tick: bool,
        now: SimTime,
        agenda: &mut Agenda,
    ) -> Option<u32> {
        let api = &mut self.apis[a];
        let current = ReplicaCount {
            spec: api.desired,
            ready: api.ready.len() as u32,
        };
        let waiting = u32::try_from(api.held.len()).unwrap_or(u32::MAX);
        let decision = if tick {
            api.autoscaler.tick(now, current, waiting)
        } else {
            api.autoscaler.wake(now, current, waiting)
        };
        if let Some(held) = api.autoscaler.held_event(&decision) {
            agenda.log_why(held);
        }
        let event = api.autoscaler.scale_event(&decision, tick)?;
        agenda.log(event);
        Some(decision.target)
    }
}

/// What a vLLM replica's `/metrics` shows at a scrape: its gauges, and the tokens processed since
/// the previous scrape (vLLM's counters' increases). Zero for request-level replicas.
fn llm_signals(replica: &mut Replica) -> autoscaler::LlmSignals {
    let Some(engine) = replica.llm.as_ref() else {
        return autoscaler::LlmSignals::default();
    };
    let stats = engine.stats();
    let previous = std::mem::replace(&mut replica.scraped, stats);
    autoscaler::LlmSignals {
        running: f64::from(engine.running()),
        waiting: f64::from(engine.waiting()),
        kv_usage: engine.kv_usage(),
        prompt_tokens: (stats.prefill_tokens - previous.prefill_tokens) as f64,
        generation_tokens: (stats.output_tokens - previous.output_tokens) as f64,
    }
}
