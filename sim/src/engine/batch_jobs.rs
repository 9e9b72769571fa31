//! Batch jobs in the event loop: worker pods are scheduled like replicas (node groups,
//! priority, preemption, cluster-autoscaler scale-ups), pull batches from the job's queue
//! while ready, and hand a batch back to the queue (after the visibility timeout) when their
//! node goes away.

use std::collections::BTreeMap;

use super::{EventKind, Simulation};
use crate::batch::{Attempt, JobStatus, Worker, WorkerState, VISIBILITY_TIMEOUT};
use crate::cluster::{NodeId, PodRef, SharedGpu};
use crate::results::{BatchJobResults, Event};

impl Simulation {
    fn batch_event(&mut self, j: usize, kind: &str, message: String) {
        let name = &self.batch[j].spec.name;
        let message = format!("batch job {name}: {message}");
        self.agenda.log(Event {
            t_s: self.now.as_secs_f64(),
            kind: kind.into(),
            api: None,
            node_group: None,
            message,
            inputs: BTreeMap::new(),
        });
    }

    pub(super) fn submit_batch_job(&mut self, j: usize) {
        self.batch[j].submit();
        let (batches, workers) = (self.batch[j].spec.batches(), self.batch[j].spec.workers);
        self.batch_event(
            j,
            "batch_submit",
            format!("{batches} batches for {workers} workers"),
        );
        if let Some(timeout) = self.batch[j].spec.timeout {
            self.agenda.schedule(
                self.now + timeout,
                EventKind::BatchTimeout { job: j as u32 },
            );
        }
        for _ in 0..workers {
            self.add_worker(j);
        }
    }

    /// A new worker pod (at submission, or replacing one that was lost).
    fn add_worker(&mut self, j: usize) {
        let job = &mut self.batch[j];
        job.workers.push(Worker {
            state: WorkerState::Pending,
            node: None,
            current: None,
            epoch: 0,
            shared_gpu: None,
        });
        let pod = PodRef::BatchWorker {
            job: j as u32,
            worker: (job.workers.len() - 1) as u32,
        };
        if !self.try_place(pod, true) {
            self.make_pending(pod);
        }
    }

    pub(super) fn worker_bound(
        &mut self,
        j: usize,
        w: usize,
        node: NodeId,
        shared_gpu: Option<SharedGpu>,
    ) {
        let job = &mut self.batch[j];
        job.worker_starts += 1;
        let at = self.now + job.spec.startup_time;
        let worker = &mut job.workers[w];
        worker.node = Some(node);
        worker.shared_gpu = shared_gpu;
        worker.state = WorkerState::Starting;
        let epoch = worker.epoch;
        self.agenda.schedule(
            at,
            EventKind::WorkerReady {
                job: j as u32,
                worker: w as u32,
                epoch,
            },
        );
    }

    pub(super) fn worker_ready(&mut self, j: usize, w: usize, epoch: u32) {
        let worker = &mut self.batch[j].workers[w];
        if worker.epoch != epoch || worker.state != WorkerState::Starting {
            return;
        }
        worker.state = WorkerState::Ready;
        self.pull(j, w);
    }

    /// A ready, idle worker takes the next batch, or the job ends when nothing is left.
    fn pull(&mut self, j: usize, w: usize) {
        let job = &mut self.batch[j];
        if job.finished.is_some() {
            self.remove_worker_pod(j, w);
            return;
        }
        match job.receive() {
            Some(b) => {
                let service = job.service.sample();
                let worker = &mut job.workers[w];
                worker.current = Some(b);
                let epoch = worker.epoch;
                self.agenda.schedule(
                    self.now + service,
                    EventKind::BatchDone {
                        job: j as u32,
                        worker: w as u32,
                        epoch,
                    },
                );
            }
            None if job.all_done() => {
                let status = job.done_status();
                self.finish_job(j, status);
            }
            // Batches are still out with other workers (or waiting to reappear).
            None => {}
        }
    }

    fn wake_idle(&mut self, j: usize) {
        for w in self.batch[j].idle_workers() {
            if self.batch[j].queue.is_empty() && !self.batch[j].all_done() {
                break;
            }
            self.pull(j, w);
        }
    }

    pub(super) fn batch_done(&mut self, j: usize, w: usize, epoch: u32) {
        let job = &mut self.batch[j];
        let worker = &mut job.workers[w];
        if worker.epoch != epoch {
            return;
        }
        let Some(b) = worker.current.take() else {
            return;
        };
        let stopping = worker.state == WorkerState::Stopping;
        if job.finish_attempt(b) == Attempt::DeadLettered {
            self.batch_event(
                j,
                "batch_dead_letter",
                format!("batch {b} failed its last receive"),
            );
        }
        if stopping {
            self.remove_worker_pod(j, w);
        } else {
            self.pull(j, w);
        }
        self.wake_idle(j);
    }

    pub(super) fn batch_visible(&mut self, j: usize, b: u32) {
        if self.batch[j].finished.is_some() {
            return;
        }
        if self.batch[j].reappear(b) == Attempt::DeadLettered {
            self.batch_event(
                j,
                "batch_dead_letter",
                format!("batch {b} lost with its worker after its last receive"),
            );
        }
        self.wake_idle(j);
    }

    pub(super) fn batch_timeout(&mut self, j: usize) {
        if self.batch[j].finished.is_none() {
            self.finish_job(j, JobStatus::TimedOut);
        }
    }

    /// The job is over: its workers go (a batch still running is abandoned).
    fn finish_job(&mut self, j: usize, status: JobStatus) {
        let now = self.now;
        let job = &mut self.batch[j];
        job.finished = Some((now, status));
        let took = now.since(job.spec.submit_at).as_secs_f64();
        let (ok, n) = (job.succeeded, job.spec.batches());
        self.batch_event(
            j,
            "batch_complete",
            format!(
                "{} after {took:.0} s, {ok} of {n} batches succeeded",
                status.name()
            ),
        );
        for w in 0..self.batch[j].workers.len() {
            match self.batch[j].workers[w].state {
                WorkerState::Pending => {
                    self.batch[j].workers[w].state = WorkerState::Gone;
                    let pod = PodRef::BatchWorker {
                        job: j as u32,
                        worker: w as u32,
                    };
                    self.scheduler.unpend(pod);
                }
                WorkerState::Gone => {}
                _ => self.remove_worker_pod(j, w),
            }
        }
    }

    /// The worker's pod leaves its node (the job is done, or it was evicted and finished).
    fn remove_worker_pod(&mut self, j: usize, w: usize) {
        let now = self.now;
        let worker = &mut self.batch[j].workers[w];
        worker.state = WorkerState::Gone;
        worker.current = None;
        worker.epoch = worker.epoch.wrapping_add(1);
        if let Some(gpu) = worker.shared_gpu.take() {
            self.cluster.release_gpu(gpu);
        }
        if let Some(node) = worker.node.take() {
            let pod = PodRef::BatchWorker {
                job: j as u32,
                worker: w as u32,
            };
            self.cluster.unbind(node, pod, now);
            if self.cluster_autoscaler.is_draining(node) && self.cluster.node(node).pods.is_empty()
            {
                self.terminate_node(node);
            } else {
                self.schedule_pending();
            }
        }
    }

    /// The worker's node is gone or it was preempted: its batch reappears after the
    /// visibility timeout, and the job's controller starts a replacement.
    pub(super) fn kill_worker(&mut self, j: usize, w: usize) {
        let job = &mut self.batch[j];
        let worker = &mut job.workers[w];
        let was = worker.state;
        worker.state = WorkerState::Gone;
        worker.epoch = worker.epoch.wrapping_add(1);
        worker.node = None;
        if let Some(gpu) = worker.shared_gpu.take() {
            self.cluster.release_gpu(gpu);
        }
        if let Some(b) = worker.current.take() {
            job.interrupted_attempts += 1;
            self.agenda.schedule(
                self.now + VISIBILITY_TIMEOUT,
                EventKind::BatchVisible {
                    job: j as u32,
                    batch: b,
                },
            );
            self.batch_event(
                j,
                "batch_requeue",
                format!("worker {w} lost; batch {b} visible again in 30 s"),
            );
        }
        // An evicted (stopping) worker was replaced already.
        let replace = matches!(was, WorkerState::Starting | WorkerState::Ready);
        if replace && self.batch[j].finished.is_none() {
            self.add_worker(j);
        }
    }

    /// Drain or spot notice: a busy worker finishes its batch first; a replacement starts now.
    pub(super) fn evict_worker(&mut self, j: usize, w: usize) {
        let worker = &mut self.batch[j].workers[w];
        match worker.state {
            WorkerState::Gone | WorkerState::Stopping => return,
            WorkerState::Ready if worker.current.is_some() => {
                worker.state = WorkerState::Stopping;
            }
            WorkerState::Pending => {
                // Not on a node: nothing to evict.
                return;
            }
            _ => self.remove_worker_pod(j, w),
        }
        if self.batch[j].finished.is_none() {
            self.add_worker(j);
        }
    }
}

impl Simulation {
    /// Each job's figures at `end`.
    pub(super) fn batch_results(&self) -> Vec<BatchJobResults> {
        let apis = self.serving.apis.len();
        self.batch
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
                    cost_usd: self.cluster.api_cost_usd()[apis + j],
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
