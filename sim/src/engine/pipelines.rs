//! The pipelines room: each `[[pipelines]]` chain's arrivals and its requests in flight (flows).
//! A flow enters stage 0's API as an ordinary request tagged with its flow id; when the serving
//! room ends a tagged request it reports how ([`FlowEnd`]) and the loop asks this room what
//! follows: the next stage at the same instant, or the end of the flow — answered (its
//! end-to-end latency the sum of its stages' latencies), or failed at that stage.
//!
//! Arrivals come from the stream `arrivals/pipeline/<name>`; stages draw their own service times
//! from their APIs' streams, so adding a pipeline perturbs no other stream.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::finish::verdict;
use super::outcomes::record;
use super::SimError;
use crate::results::{encode_histogram, new_histogram, Metric, Percentiles, SeriesKey};
use crate::rng::stream;
use crate::scenario::Pipeline;
use crate::time::SimTime;
use crate::traffic::ArrivalStream;
use contract::routing::{PipelineResults, StageResults};

/// A request not in any pipeline.
pub(super) const NO_FLOW: u32 = u32::MAX;

/// How a pipeline's request left a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlowEnd {
    /// Answered at `now`, after waiting `wait` for a worker, within the stage's timeout.
    Answered { wait: SimTime },
    /// Answered 503 (queue full, no replica, the activator's breaker).
    Rejected,
    /// The client gave up (the stage's timeout).
    TimedOut,
    /// Its replica was lost.
    Interrupted,
}

/// One pipeline request in flight.
#[derive(Debug, Clone, Copy)]
struct Flow {
    pipeline: u16,
    stage: u8,
    /// Arrival at the pipeline.
    arrival: SimTime,
    /// Arrival at the current stage.
    entered: SimTime,
    /// The stages' network latencies so far (each API's latency includes its own).
    network: SimTime,
}

#[derive(Debug, Default, Clone)]
struct StageTally {
    entered: u64,
    passed: u64,
    /// Σ time in the stage of the requests it answered, µs.
    time_us: u128,
    /// Σ time waiting for a worker of those, µs.
    wait_us: u128,
    rejected: u64,
    timed_out: u64,
    interrupted: u64,
}

/// One pipeline during a run.
struct PipelineState {
    spec: Pipeline,
    arrivals: ArrivalStream,
    next: SimTime,
    requests: u64,
    completed: u64,
    latency: Histogram<u64>,
    stages: Vec<StageTally>,
    /// The timeline step's arrivals, completions and end-to-end latencies.
    step_arrivals: u64,
    step_completed: u64,
    step_latency: Histogram<u64>,
}

/// Every pipeline, their flows, and the order of their next arrivals.
pub(super) struct Pipelines {
    pipes: Vec<PipelineState>,
    flows: Vec<Flow>,
    /// Free slots of `flows`.
    free: Vec<u32>,
    /// Scenario indices of every stage API (the serving room reports their flows' ends).
    pub(super) stage_apis: Vec<usize>,
}

impl Pipelines {
    /// Open every pipeline's arrivals from the scenario's seed.
    pub(super) fn new(specs: &[Pipeline], seed: u64) -> Result<Pipelines, SimError> {
        let mut pipes = Vec::with_capacity(specs.len());
        let mut stage_apis: Vec<usize> = Vec::new();
        for spec in specs {
            let mut arrivals = ArrivalStream::open(
                &spec.traffic,
                stream(seed, &format!("arrivals/pipeline/{}", spec.name)),
            )?;
            let next = arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
            stage_apis.extend(&spec.stages);
            pipes.push(PipelineState {
                stages: vec![StageTally::default(); spec.stages.len()],
                spec: spec.clone(),
                arrivals,
                next,
                requests: 0,
                completed: 0,
                latency: new_histogram(),
                step_arrivals: 0,
                step_completed: 0,
                step_latency: new_histogram(),
            });
        }
        Ok(Pipelines {
            pipes,
            flows: Vec::new(),
            free: Vec::new(),
            stage_apis,
        })
    }

    /// How many pipelines there are.
    pub(super) fn len(&self) -> usize {
        self.pipes.len()
    }

    /// Pipeline `p`'s next arrival.
    pub(super) fn next_arrival(&self, p: usize) -> SimTime {
        self.pipes[p].next
    }

    /// A request arrives at pipeline `p`: its flow id and its first stage's API.
    pub(super) fn arrive(&mut self, p: usize, now: SimTime) -> Result<(u32, usize), SimError> {
        let pipe = &mut self.pipes[p];
        pipe.requests += 1;
        pipe.step_arrivals += 1;
        pipe.stages[0].entered += 1;
        pipe.next = pipe.arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
        let flow = Flow {
            pipeline: p as u16,
            stage: 0,
            arrival: now,
            entered: now,
            network: SimTime::ZERO,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.flows[id as usize] = flow;
                id
            }
            None => {
                self.flows.push(flow);
                (self.flows.len() - 1) as u32
            }
        };
        Ok((id, pipe.spec.stages[0]))
    }

    /// Flow `id` left its stage at `now` as `end`, after the stage API's `network` latency: the
    /// next stage's API when it goes on (it enters it at `now`).
    pub(super) fn stage_ended(
        &mut self,
        id: u32,
        end: FlowEnd,
        now: SimTime,
        network: SimTime,
    ) -> Option<usize> {
        let flow = &mut self.flows[id as usize];
        let pipe = &mut self.pipes[usize::from(flow.pipeline)];
        let s = usize::from(flow.stage);
        let tally = &mut pipe.stages[s];
        match end {
            FlowEnd::Answered { wait } => {
                tally.passed += 1;
                tally.time_us += u128::from((now.since(flow.entered) + network).as_micros());
                tally.wait_us += u128::from(wait.as_micros());
                flow.network += network;
                if s + 1 < pipe.spec.stages.len() {
                    flow.stage += 1;
                    flow.entered = now;
                    pipe.stages[s + 1].entered += 1;
                    return Some(pipe.spec.stages[s + 1]);
                }
                pipe.completed += 1;
                let latency = now.since(flow.arrival) + flow.network;
                record(&mut pipe.latency, latency.as_micros());
                record(&mut pipe.step_latency, latency.as_micros());
                pipe.step_completed += 1;
            }
            FlowEnd::Rejected => tally.rejected += 1,
            FlowEnd::TimedOut => tally.timed_out += 1,
            FlowEnd::Interrupted => tally.interrupted += 1,
        }
        self.free.push(id);
        None
    }

    /// Close a timeline step of `step_s` seconds: each pipeline's point of its series, which
    /// then hold `points` values (a step already closed is left alone).
    pub(super) fn sample(
        &mut self,
        series: &mut BTreeMap<SeriesKey, Vec<Option<f64>>>,
        step_s: f64,
        points: usize,
    ) {
        for pipe in &mut self.pipes {
            let name = &pipe.spec.name;
            let values = [
                (Metric::Rps, Some(pipe.step_arrivals as f64 / step_s)),
                (
                    Metric::ThroughputRps,
                    Some(pipe.step_completed as f64 / step_s),
                ),
                (
                    Metric::LatencyP99Ms,
                    (!pipe.step_latency.is_empty())
                        .then(|| pipe.step_latency.value_at_quantile(0.99) as f64 / 1000.0),
                ),
            ];
            for (metric, value) in values {
                let s = series.entry(SeriesKey::new(metric, name)).or_default();
                if s.len() < points {
                    s.resize(points - 1, None);
                    s.push(value);
                }
            }
            pipe.step_arrivals = 0;
            pipe.step_completed = 0;
            pipe.step_latency.reset();
        }
    }

    /// Each pipeline's figures at `end`; `api_names` are the scenario's APIs.
    pub(super) fn results(&self, end: SimTime, api_names: &[&str]) -> Vec<PipelineResults> {
        let duration_s = end.as_secs_f64();
        self.pipes
            .iter()
            .map(|pipe| {
                let sum = |f: fn(&StageTally) -> u64| pipe.stages.iter().map(f).sum::<u64>();
                let (rejected, timed_out, interrupted) = (
                    sum(|s| s.rejected),
                    sum(|s| s.timed_out),
                    sum(|s| s.interrupted),
                );
                let latency_ms = Percentiles::from_histogram(&pipe.latency);
                let requests = pipe.requests.max(1) as f64;
                let slo = verdict(
                    &pipe.spec.slo,
                    &latency_ms,
                    rejected as f64 / requests,
                    timed_out as f64 / requests,
                );
                let mean_ms = |s: &StageTally, us: u128| {
                    if s.passed == 0 {
                        0.0
                    } else {
                        us as f64 / 1000.0 / s.passed as f64
                    }
                };
                // A stage's share: its mean time over the sum of the stages' means (what an
                // answered request spends where, on average).
                let total_ms: f64 = pipe.stages.iter().map(|s| mean_ms(s, s.time_us)).sum();
                let stages = pipe
                    .stages
                    .iter()
                    .zip(&pipe.spec.stages)
                    .map(|(s, &a)| StageResults {
                        api: api_names[a].into(),
                        entered: s.entered,
                        passed: s.passed,
                        mean_ms: mean_ms(s, s.time_us),
                        mean_wait_ms: mean_ms(s, s.wait_us),
                        share_of_latency: if total_ms > 0.0 {
                            mean_ms(s, s.time_us) / total_ms
                        } else {
                            0.0
                        },
                        rejected: s.rejected,
                        timed_out: s.timed_out,
                        interrupted: s.interrupted,
                    })
                    .collect();
                PipelineResults {
                    name: pipe.spec.name.clone(),
                    requests: pipe.requests,
                    completed: pipe.completed,
                    rejected,
                    timed_out,
                    interrupted,
                    in_flight_at_end: pipe.requests
                        - pipe.completed
                        - rejected
                        - timed_out
                        - interrupted,
                    latency_ms,
                    throughput_rps: if duration_s > 0.0 {
                        pipe.completed as f64 / duration_s
                    } else {
                        0.0
                    },
                    stages,
                    slo,
                    latency_histogram: encode_histogram(&pipe.latency),
                }
            })
            .collect()
    }
}
