//! The batch jobs room: each job's queue of batches and its worker pods. Workers are
//! scheduled like replicas (node groups, priority, preemption, cluster-autoscaler scale-ups),
//! pull batches from the job's queue while ready, and hand a batch back to the queue (after the
//! visibility timeout) when their node goes away.
//!
//! Each method changes only the jobs' state and answers the loop with what it must do next:
//! place a new worker pod, remove one from its node, end the job.

use super::{Agenda, EventKind};
use crate::batch::{Attempt, BatchRuntime, JobStatus, Worker, WorkerState, VISIBILITY_TIMEOUT};
use crate::cluster::{Cluster, NodeId, PodRef, SharedGpu};
use crate::results::{BatchJobResults, Event};
use crate::rng::stream;
use crate::scenario::Scenario;
use crate::service_time::ServiceSampler;
use crate::time::SimTime;

/// What a worker pulling from its job's queue leaves the loop to do.
pub(super) enum Pull {
    /// The job is over: the worker's pod goes.
    Remove,
    /// Nothing is left: the job ends with this status.
    Finish(JobStatus),
    /// It took a batch, or waits for one.
    Nothing,
}

/// What evicting a worker leaves the loop to do.
pub(super) enum WorkerEvicted {
    /// Nothing: it was not on a node, or already going.
    Ignored,
    /// It finishes its batch first; a replacement starts now.
    Stopping,
    /// Its pod goes now; a replacement starts.
    Remove,
}

/// What ending a job does to one of its workers.
pub(super) enum Retire {
    /// It was waiting for a node: take it off the pending list.
    Unpend(PodRef),
    /// Its pod goes.
    Remove,
    /// Nothing (already gone).
    Nothing,
}

/// Every batch job of the scenario.
pub(super) struct BatchJobs {
    jobs: Vec<BatchRuntime>,
}

fn log(
    agenda: &mut Agenda,
    now: SimTime,
    job: &BatchRuntime,
    kind: crate::results::EventKind,
    message: String,
) {
    let name = &job.spec.name;
    let message = format!("batch job {name}: {message}");
    agenda.log(Event {
        t_s: now.as_secs_f64(),
        kind,
        api: None,
        node_group: None,
        message,
    });
}

impl BatchJobs {
    /// The scenario's jobs, not submitted yet, each with its own service and failure streams.
    pub(super) fn new(scenario: &Scenario) -> Self {
        BatchJobs {
            jobs: scenario
                .batch_jobs
                .iter()
                .map(|j| {
                    BatchRuntime::new(
                        j.clone(),
                        ServiceSampler::new(
                            j.service_time.clone(),
                            stream(scenario.seed, &format!("batch-service/{}", j.name)),
                        ),
                        stream(scenario.seed, &format!("batch-failures/{}", j.name)),
                    )
                })
                .collect(),
        }
    }

    /// The jobs, for the scheduler's and the timeline's reads.
    pub(super) fn jobs(&self) -> &[BatchRuntime] {
        &self.jobs
    }

    /// Submit job `j`: its batches are queued and its timeout armed; returns how many workers
    /// the loop creates.
    pub(super) fn submit(&mut self, j: usize, now: SimTime, agenda: &mut Agenda) -> u32 {
        let job = &mut self.jobs[j];
        job.submit();
        let (batches, workers) = (job.spec.batches(), job.spec.workers);
        log(
            agenda,
            now,
            job,
            crate::results::EventKind::BatchSubmit,
            format!("{batches} batches for {workers} workers"),
        );
        if let Some(timeout) = job.spec.timeout {
            agenda.schedule(now + timeout, EventKind::BatchTimeout { job: j as u32 });
        }
        workers
    }

    /// A new worker pod (at submission, or replacing one that was lost), for the loop to place.
    pub(super) fn new_worker(&mut self, j: usize) -> PodRef {
        let job = &mut self.jobs[j];
        job.workers.push(Worker {
            state: WorkerState::Pending,
            node: None,
            current: None,
            epoch: 0,
            shared_gpu: None,
        });
        PodRef::BatchWorker {
            job: j as u32,
            worker: (job.workers.len() - 1) as u32,
        }
    }

    /// The worker's pod is bound to `node`: it starts.
    pub(super) fn bound(
        &mut self,
        j: usize,
        w: usize,
        node: NodeId,
        shared_gpu: Option<SharedGpu>,
        now: SimTime,
        agenda: &mut Agenda,
    ) {
        let job = &mut self.jobs[j];
        job.worker_starts += 1;
        let at = now + job.spec.startup_time;
        let worker = &mut job.workers[w];
        worker.node = Some(node);
        worker.shared_gpu = shared_gpu;
        worker.state = WorkerState::Starting;
        let epoch = worker.epoch;
        agenda.schedule(
            at,
            EventKind::WorkerReady {
                job: j as u32,
                worker: w as u32,
                epoch,
            },
        );
    }

    /// The worker's startup is over (false if it is stale or not starting).
    pub(super) fn ready(&mut self, j: usize, w: usize, epoch: u32) -> bool {
        let worker = &mut self.jobs[j].workers[w];
        if worker.epoch != epoch || worker.state != WorkerState::Starting {
            return false;
        }
        worker.state = WorkerState::Ready;
        true
    }

    /// A ready, idle worker takes the next batch, or the job ends when nothing is left.
    pub(super) fn pull(&mut self, j: usize, w: usize, now: SimTime, agenda: &mut Agenda) -> Pull {
        let job = &mut self.jobs[j];
        if job.finished.is_some() {
            return Pull::Remove;
        }
        match job.receive() {
            Some(b) => {
                let service = job.service.sample();
                let worker = &mut job.workers[w];
                worker.current = Some(b);
                let epoch = worker.epoch;
                agenda.schedule(
                    now + service,
                    EventKind::BatchDone {
                        job: j as u32,
                        worker: w as u32,
                        epoch,
                    },
                );
                Pull::Nothing
            }
            None if job.all_done() => Pull::Finish(job.done_status()),
            // Batches are still out with other workers (or waiting to reappear).
            None => Pull::Nothing,
        }
    }

    /// Job `j`'s idle ready workers.
    pub(super) fn idle_workers(&self, j: usize) -> Vec<usize> {
        self.jobs[j].idle_workers()
    }

    /// Whether an idle worker of job `j` has nothing to do (no batch queued, job not done).
    pub(super) fn nothing_to_pull(&self, j: usize) -> bool {
        self.jobs[j].queue.is_empty() && !self.jobs[j].all_done()
    }

    /// A worker finished its batch: `Some(stopping)` when the attempt counts (a stopping
    /// worker's pod goes, any other pulls again), `None` for a stale event.
    pub(super) fn batch_done(
        &mut self,
        j: usize,
        w: usize,
        epoch: u32,
        now: SimTime,
        agenda: &mut Agenda,
    ) -> Option<bool> {
        let job = &mut self.jobs[j];
        let worker = &mut job.workers[w];
        if worker.epoch != epoch {
            return None;
        }
        let b = worker.current.take()?;
        let stopping = worker.state == WorkerState::Stopping;
        if job.finish_attempt(b) == Attempt::DeadLettered {
            log(
                agenda,
                now,
                job,
                crate::results::EventKind::BatchDeadLetter,
                format!("batch {b} failed its last receive"),
            );
        }
        Some(stopping)
    }

    /// A lost batch is visible in the queue again (false if the job is over).
    pub(super) fn visible(&mut self, j: usize, b: u32, now: SimTime, agenda: &mut Agenda) -> bool {
        let job = &mut self.jobs[j];
        if job.finished.is_some() {
            return false;
        }
        if job.reappear(b) == Attempt::DeadLettered {
            log(
                agenda,
                now,
                job,
                crate::results::EventKind::BatchDeadLetter,
                format!("batch {b} lost with its worker after its last receive"),
            );
        }
        true
    }

    /// Whether job `j` is still running.
    pub(super) fn running(&self, j: usize) -> bool {
        self.jobs[j].finished.is_none()
    }

    /// The job is over; returns its worker count for the loop to retire each.
    pub(super) fn finish(
        &mut self,
        j: usize,
        status: JobStatus,
        now: SimTime,
        agenda: &mut Agenda,
    ) -> usize {
        let job = &mut self.jobs[j];
        job.finished = Some((now, status));
        let took = now.since(job.spec.submit_at).as_secs_f64();
        let (ok, n) = (job.succeeded, job.spec.batches());
        log(
            agenda,
            now,
            job,
            crate::results::EventKind::BatchComplete,
            format!(
                "{} after {took:.0} s, {ok} of {n} batches succeeded",
                status.name()
            ),
        );
        job.workers.len()
    }

    /// One worker of an ended job goes (a batch still running is abandoned).
    pub(super) fn retire(&mut self, j: usize, w: usize) -> Retire {
        let worker = &mut self.jobs[j].workers[w];
        match worker.state {
            WorkerState::Pending => {
                worker.state = WorkerState::Gone;
                Retire::Unpend(PodRef::BatchWorker {
                    job: j as u32,
                    worker: w as u32,
                })
            }
            WorkerState::Gone => Retire::Nothing,
            _ => Retire::Remove,
        }
    }

    /// The worker's pod leaves its node (the job is done, or it was evicted and finished);
    /// returns the node for the loop.
    pub(super) fn remove(
        &mut self,
        j: usize,
        w: usize,
        now: SimTime,
        cluster: &mut Cluster,
    ) -> Option<NodeId> {
        let worker = &mut self.jobs[j].workers[w];
        worker.state = WorkerState::Gone;
        worker.current = None;
        worker.epoch = worker.epoch.wrapping_add(1);
        if let Some(gpu) = worker.shared_gpu.take() {
            cluster.release_gpu(gpu);
        }
        let node = worker.node.take()?;
        let pod = PodRef::BatchWorker {
            job: j as u32,
            worker: w as u32,
        };
        cluster.unbind(node, pod, now);
        Some(node)
    }

    /// The worker's node is gone or it was preempted: its batch reappears after the
    /// visibility timeout. True when the job's controller starts a replacement.
    pub(super) fn kill(
        &mut self,
        j: usize,
        w: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) -> bool {
        let job = &mut self.jobs[j];
        let worker = &mut job.workers[w];
        let was = worker.state;
        worker.state = WorkerState::Gone;
        worker.epoch = worker.epoch.wrapping_add(1);
        worker.node = None;
        if let Some(gpu) = worker.shared_gpu.take() {
            cluster.release_gpu(gpu);
        }
        if let Some(b) = worker.current.take() {
            job.interrupted_attempts += 1;
            agenda.schedule(
                now + VISIBILITY_TIMEOUT,
                EventKind::BatchVisible {
                    job: j as u32,
                    batch: b,
                },
            );
            log(
                agenda,
                now,
                job,
                crate::results::EventKind::BatchRequeue,
                format!("worker {w} lost; batch {b} visible again in 30 s"),
            );
        }
        // An evicted (stopping) worker was replaced already.
        let replace = matches!(was, WorkerState::Starting | WorkerState::Ready);
        replace && job.finished.is_none()
    }

    /// Drain or spot notice: a busy worker finishes its batch first; a replacement starts now.
    pub(super) fn evict(&mut self, j: usize, w: usize) -> WorkerEvicted {
        let worker = &mut self.jobs[j].workers[w];
        match worker.state {
            WorkerState::Gone | WorkerState::Stopping => WorkerEvicted::Ignored,
            WorkerState::Ready if worker.current.is_some() => {
                worker.state = WorkerState::Stopping;
                WorkerEvicted::Stopping
            }
            // Not on a node: nothing to evict.
            WorkerState::Pending => WorkerEvicted::Ignored,
            _ => WorkerEvicted::Remove,
        }
    }

    /// Whether the worker still waits for a node.
    pub(super) fn is_pending(&self, j: usize, w: usize) -> bool {
        self.jobs[j].workers[w].state == WorkerState::Pending
    }

    /// The node the worker is on.
    pub(super) fn node_of(&self, j: usize, w: usize) -> Option<NodeId> {
        self.jobs[j].workers[w].node
    }

    /// The scheduler took the worker's pod off its node (preemption, memory pressure).
    pub(super) fn unbound(&mut self, j: usize, w: usize) {
        self.jobs[j].workers[w].node = None;
    }

    /// Each job's figures at `end`; `costs` are the jobs' attributed node costs.
    pub(super) fn results(&self, costs: &[f64]) -> Vec<BatchJobResults> {
        self.jobs
            .iter()
            .enumerate()
            .map(|(j, job)| {
                let batches = job.spec.batches();
                let status = match job.finished {
                    Some((_, status)) => status.name(),
                    None if job.submitted => "running",
                    None => "not_submitted",
                };
                BatchJobResults {
                    name: job.spec.name.clone(),
                    status: status.into(),
                    submitted_at_s: job.spec.submit_at.as_secs_f64(),
                    completion_time_s: job
                        .finished
                        .map(|(at, _)| at.since(job.spec.submit_at).as_secs_f64()),
                    batches,
                    succeeded: job.succeeded,
                    failed: job.failed,
                    dead_lettered: job.dead_lettered,
                    unfinished: batches - job.succeeded - job.failed - job.dead_lettered,
                    items_processed: job.items_done,
                    attempts: job.attempts,
                    failed_attempts: job.failed_attempts,
                    interrupted_attempts: job.interrupted_attempts,
                    worker_starts: job.worker_starts,
                    cost_usd: costs[j],
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::results::BatchJobResults;
    use crate::{run, Scenario};

    fn job_results(text: &str) -> (BatchJobResults, crate::Results) {
        let s = Scenario::parse(text, "t.toml", Path::new(".")).expect("valid");
        let r = run(&s).expect("runs");
        (r.batch_jobs[0].clone(), r)
    }

    fn balanced(j: &BatchJobResults) {
        assert_eq!(
            j.batches,
            j.succeeded + j.failed + j.dead_lettered + j.unfinished,
            "{j:?}"
        );
    }

    #[test]
    fn completion_time_of_a_hand_checkable_job() {
        // 2 workers, 10 batches of 10 s, ready at once: 5 rounds = 50 s after submission.
        let (j, r) = job_results(
            r#"
duration = "10m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[batch_jobs]]
name = "j"
submit_at = "20s"
workers = 2
items = 95
batch_size = 10
[batch_jobs.compute]
cpu = "1"
[batch_jobs.service_time]
distribution = "constant"
value = "10s"
"#,
        );
        assert_eq!(j.status, "succeeded");
        assert_eq!(j.completion_time_s, Some(50.0));
        assert_eq!((j.batches, j.succeeded, j.items_processed), (10, 10, 95));
        assert_eq!((j.attempts, j.worker_starts), (10, 2));
        balanced(&j);
        // The workers' share of the one node for 50 s: 2 of 3.92 allocatable CPUs.
        let node_cost = r.node_groups[0].cost_usd;
        assert!(j.cost_usd > 0.0 && j.cost_usd < node_cost);
    }

    #[test]
    fn a_worker_waits_for_a_node_the_cluster_autoscaler_adds() {
        // No node at first: the pending worker triggers a scale-up (boot ~ minutes).
        let (j, r) = job_results(
            r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 0
max_instances = 2
[[batch_jobs]]
name = "j"
workers = 1
items = 3
[batch_jobs.compute]
cpu = "1"
[batch_jobs.service_time]
distribution = "constant"
value = "1m"
"#,
        );
        assert_eq!(j.status, "succeeded");
        let took = j.completion_time_s.expect("finished");
        assert!(took > 180.0 && took < 900.0, "{took}");
        assert!(r.node_groups[0].peak_nodes >= 1);
    }

    #[test]
    fn failures_go_to_the_dead_letter_queue_after_max_receive_count() {
        let (j, _) = job_results(
            r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[batch_jobs]]
name = "j"
workers = 3
items = 200
failure_rate = 0.5
[batch_jobs.compute]
cpu = "1"
[batch_jobs.service_time]
distribution = "constant"
value = "1s"
[batch_jobs.sqs_dead_letter_queue]
max_receive_count = 2
"#,
        );
        assert_eq!(j.status, "completed_with_failures");
        balanced(&j);
        // Each batch fails both of its receives with probability 1/4.
        let share = j.dead_lettered as f64 / 200.0;
        assert!((share - 0.25).abs() < 0.1, "{share}");
        assert_eq!(j.attempts, j.succeeded + j.failed_attempts);
    }

    #[test]
    fn interrupted_batches_are_retried_and_never_counted_twice() {
        // Long batches on a spot group reclaimed often: lost batches reappear and are redone.
        let (j, r) = job_results(
            r#"
duration = "6h"
seed = 4
[[node_groups]]
name = "spot"
instance_type = "m5.xlarge"
spot = true
min_instances = 2
max_instances = 4
interruption_rate = 2.0
[[batch_jobs]]
name = "j"
workers = 4
items = 60
timeout = "5h"
[batch_jobs.compute]
cpu = "3"
[batch_jobs.service_time]
distribution = "constant"
value = "5m"
[batch_jobs.sqs_dead_letter_queue]
max_receive_count = 100
"#,
        );
        assert!(r.node_groups[0].interruptions > 0);
        assert!(j.interrupted_attempts > 0, "{j:?}");
        balanced(&j);
        // Every attempt ends exactly once: done, failed, lost, or cut short at the end.
        assert!(j.attempts >= j.succeeded + j.interrupted_attempts);
        assert!(j.attempts <= j.succeeded + j.interrupted_attempts + 4);
        assert_eq!(j.items_processed, j.succeeded);
        assert!(j.worker_starts > 4);
    }

    #[test]
    fn timeout_stops_the_job() {
        let (j, _) = job_results(
            r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
[[batch_jobs]]
name = "j"
workers = 1
items = 100
timeout = "10m30s"
[batch_jobs.compute]
cpu = "1"
[batch_jobs.service_time]
distribution = "constant"
value = "1m"
"#,
        );
        assert_eq!(j.status, "timed_out");
        assert_eq!(j.completion_time_s, Some(630.0));
        assert_eq!((j.succeeded, j.unfinished), (10, 90));
        balanced(&j);
    }
}
