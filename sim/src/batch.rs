//! The bookkeeping of a Cortex Batch API job: a queue of batches (SQS in Cortex), the receive
//! count of each, and what became of them. The engine owns the worker pods and time; this
//! module decides what happens to a batch.

use std::collections::VecDeque;

use rand::Rng;

use crate::cluster::{NodeId, SharedGpu};
use crate::rng::Stream;
use crate::scenario::BatchJob;
use crate::service_time::ServiceSampler;
use crate::time::SimTime;

/// A batch whose worker died reappears in the queue after this long (the dequeuer's SQS
/// visibility timeout; a live worker renews it every 10 s).
pub(crate) const VISIBILITY_TIMEOUT: SimTime = SimTime(30_000_000_000);

/// Where a worker pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerState {
    /// Waiting for a node.
    Pending,
    /// Bound, starting up.
    Starting,
    /// Pulling and processing batches.
    Ready,
    /// Evicted: finishes its batch, then its pod goes.
    Stopping,
    /// Gone.
    Gone,
}

/// One worker pod.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub state: WorkerState,
    pub node: Option<NodeId>,
    /// The batch it is processing.
    pub current: Option<u32>,
    /// Bumped whenever the slot's pod changes, so stale events are ignored.
    pub epoch: u32,
    pub shared_gpu: Option<SharedGpu>,
}

/// How a job ended (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobStatus {
    /// Every batch succeeded.
    Succeeded,
    /// Every batch was dealt with, some failed or were dead-lettered.
    CompletedWithFailures,
    /// The job's timeout passed first.
    TimedOut,
}

impl JobStatus {
    pub(crate) fn name(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::CompletedWithFailures => "completed_with_failures",
            JobStatus::TimedOut => "timed_out",
        }
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Succeeded,
    /// Failed; back in the queue for another receive.
    Retried,
    /// Failed for the last time, into the dead-letter queue.
    DeadLettered,
    /// Failed without a dead-letter queue: the message is deleted.
    Failed,
}

/// The visible batches of a job, in order: those never received yet (a range, so a job of a
/// billion batches takes no memory for them) and then those handed back, in the order they came
/// back — the order of one FIFO queue that started with every batch.
#[derive(Debug, Default)]
pub(crate) struct BatchQueue {
    fresh: std::ops::Range<u32>,
    returned: VecDeque<u32>,
}

impl BatchQueue {
    /// Batches waiting.
    pub(crate) fn len(&self) -> usize {
        self.fresh.len() + self.returned.len()
    }

    /// Nothing waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pop_front(&mut self) -> Option<u32> {
        self.fresh.next().or_else(|| self.returned.pop_front())
    }

    fn push_back(&mut self, batch: u32) {
        self.returned.push_back(batch);
    }
}

/// One batch job during a run.
pub(crate) struct BatchRuntime {
    pub spec: BatchJob,
    pub submitted: bool,
    pub finished: Option<(SimTime, JobStatus)>,
    /// Visible batches, in order.
    pub queue: BatchQueue,
    /// Receives of each batch received so far (batches are first received in order, so this
    /// grows with the work done, not with the job's size).
    receives: Vec<u32>,
    pub workers: Vec<Worker>,
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    pub interrupted_attempts: u64,
    pub items_done: u64,
    pub worker_starts: u64,
    pub service: ServiceSampler,
    failures: Stream,
}

impl BatchRuntime {
    pub(crate) fn new(spec: BatchJob, service: ServiceSampler, failures: Stream) -> Self {
        Self {
            spec,
            submitted: false,
            finished: None,
            queue: BatchQueue::default(),
            receives: Vec::new(),
            workers: Vec::new(),
            succeeded: 0,
            failed: 0,
            dead_lettered: 0,
            attempts: 0,
            failed_attempts: 0,
            interrupted_attempts: 0,
            items_done: 0,
            worker_starts: 0,
            service,
            failures,
        }
    }

    /// The enqueuer has split the items into batches.
    pub(crate) fn submit(&mut self) {
        let n = self.spec.batches() as u32;
        self.submitted = true;
        self.queue = BatchQueue {
            fresh: 0..n,
            returned: VecDeque::new(),
        };
        self.receives = Vec::new();
    }

    /// A worker receives the next visible batch.
    pub(crate) fn receive(&mut self) -> Option<u32> {
        let b = self.queue.pop_front()?;
        match self.receives.get_mut(b as usize) {
            Some(n) => *n += 1,
            None => self.receives.push(1),
        }
        self.attempts += 1;
        Some(b)
    }

    fn items_in(&self, b: u32) -> u64 {
        let start = u64::from(b) * self.spec.batch_size;
        self.spec.batch_size.min(self.spec.items - start)
    }

    /// A worker finished an attempt at `b`; the user's code failed with the job's failure rate.
    pub(crate) fn finish_attempt(&mut self, b: u32) -> Attempt {
        let failed =
            self.spec.failure_rate > 0.0 && self.failures.random::<f64>() < self.spec.failure_rate;
        if !failed {
            self.succeeded += 1;
            self.items_done += self.items_in(b);
            return Attempt::Succeeded;
        }
        self.failed_attempts += 1;
        match self.spec.max_receive_count {
            Some(max) if self.receives[b as usize] < max => {
                // Cortex sets the visibility to 0: the batch is visible again at once.
                self.queue.push_back(b);
                Attempt::Retried
            }
            Some(_) => {
                self.dead_lettered += 1;
                Attempt::DeadLettered
            }
            None => {
                self.failed += 1;
                Attempt::Failed
            }
        }
    }

    /// A batch whose worker died is visible again (its receive already counted): SQS moves it
    /// to the dead-letter queue when it has used up its receives.
    pub(crate) fn reappear(&mut self, b: u32) -> Attempt {
        match self.spec.max_receive_count {
            Some(max) if self.receives[b as usize] >= max => {
                self.dead_lettered += 1;
                Attempt::DeadLettered
            }
            _ => {
                self.queue.push_back(b);
                Attempt::Retried
            }
        }
    }

    /// Every batch has an outcome.
    pub(crate) fn all_done(&self) -> bool {
        self.submitted && self.succeeded + self.failed + self.dead_lettered == self.spec.batches()
    }

    /// The status once every batch has an outcome.
    pub(crate) fn done_status(&self) -> JobStatus {
        if self.succeeded == self.spec.batches() {
            JobStatus::Succeeded
        } else {
            JobStatus::CompletedWithFailures
        }
    }

    /// Workers that could take a batch now.
    pub(crate) fn idle_workers(&self) -> Vec<usize> {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.state == WorkerState::Ready && w.current.is_none())
            .map(|(i, _)| i)
            .collect()
    }

    /// Ready workers (busy or idle).
    pub(crate) fn ready_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.state == WorkerState::Ready)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::scenario::Requests;
    use crate::service_time::ServiceTime;

    fn job(items: u64, batch_size: u64, failure_rate: f64, dlq: Option<u32>) -> BatchRuntime {
        let spec = BatchJob {
            name: "j".into(),
            submit_at: SimTime::ZERO,
            workers: 1,
            items,
            batch_size,
            node_groups: vec![0],
            requests: Requests::default(),
            startup_time: SimTime::ZERO,
            service_time: ServiceTime::Constant(SimTime::from_secs(1)),
            failure_rate,
            timeout: None,
            max_receive_count: dlq,
            priority: 0,
        };
        let service = ServiceSampler::new(spec.service_time.clone(), stream(1, "s"));
        BatchRuntime::new(spec, service, stream(1, "f"))
    }

    #[test]
    fn batches_cover_the_items_and_the_last_is_short() {
        let mut j = job(10, 4, 0.0, None);
        j.submit();
        assert_eq!(j.queue.len(), 3);
        while let Some(b) = j.receive() {
            assert_eq!(j.finish_attempt(b), Attempt::Succeeded);
        }
        assert_eq!(j.items_done, 10);
        assert!(j.all_done());
        assert_eq!(j.done_status(), JobStatus::Succeeded);
    }

    #[test]
    fn failures_retry_up_to_max_receive_count_then_dead_letter() {
        // Always failing (rate just below 1): each batch is received exactly 3 times.
        let mut j = job(5, 1, 0.999_999, Some(3));
        j.submit();
        let mut outcomes = Vec::new();
        while let Some(b) = j.receive() {
            outcomes.push(j.finish_attempt(b));
        }
        assert_eq!(j.attempts, 15);
        assert_eq!(j.dead_lettered, 5);
        assert_eq!(
            outcomes.iter().filter(|o| **o == Attempt::Retried).count(),
            10
        );
        assert_eq!(j.done_status(), JobStatus::CompletedWithFailures);
        // Without a dead-letter queue each batch is attempted once.
        let mut j = job(5, 1, 0.999_999, None);
        j.submit();
        while let Some(b) = j.receive() {
            assert_eq!(j.finish_attempt(b), Attempt::Failed);
        }
        assert_eq!((j.attempts, j.failed), (5, 5));
    }

    #[test]
    fn a_lost_batch_reappears_until_its_receives_are_used_up() {
        let mut j = job(1, 1, 0.0, Some(2));
        j.submit();
        let b = j.receive().unwrap();
        assert_eq!(j.reappear(b), Attempt::Retried);
        let b = j.receive().unwrap();
        assert_eq!(j.reappear(b), Attempt::DeadLettered);
        assert!(j.all_done());
    }
}
