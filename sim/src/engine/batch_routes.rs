//! The loop's routing of the batch-jobs room's answers: part of the loop (see the module above),
//! in a file of its own so that `mod.rs` stays a size a reader can hold.

use super::batch_jobs::{Pull, Retire, WorkerEvicted};
use super::Simulation;
use crate::batch::JobStatus;

impl Simulation {
    /// Job `j`'s controller creates a worker: placed now or pending.
    pub(super) fn add_worker(&mut self, j: usize) {
        let pod = self.batch.new_worker(j);
        if !self.try_place(pod, true) {
            self.make_pending(pod);
        }
    }

    /// A ready, idle worker takes the next batch, or its pod goes, or the job ends.
    pub(super) fn pull(&mut self, j: usize, w: usize) {
        match self.batch.pull(j, w, self.now, &mut self.agenda) {
            Pull::Remove => self.remove_worker_pod(j, w),
            Pull::Finish(status) => self.finish_job(j, status),
            Pull::Nothing => {}
        }
    }

    /// Idle workers of job `j` pull while there is something to pull.
    pub(super) fn wake_idle(&mut self, j: usize) {
        for w in self.batch.idle_workers(j) {
            if self.batch.nothing_to_pull(j) {
                break;
            }
            self.pull(j, w);
        }
    }

    /// The job is over: its workers go (a batch still running is abandoned).
    pub(super) fn finish_job(&mut self, j: usize, status: JobStatus) {
        let workers = self.batch.finish(j, status, self.now, &mut self.agenda);
        for w in 0..workers {
            match self.batch.retire(j, w) {
                Retire::Unpend(pod) => self.scheduler.unpend(pod),
                Retire::Remove => self.remove_worker_pod(j, w),
                Retire::Nothing => {}
            }
        }
    }

    /// A worker's pod leaves its node.
    pub(super) fn remove_worker_pod(&mut self, j: usize, w: usize) {
        if let Some(node) = self.batch.remove(j, w, self.now, &mut self.cluster) {
            self.pod_left(node);
        }
    }

    /// A worker dies with its node or is preempted; the job's controller replaces it.
    pub(super) fn kill_worker(&mut self, j: usize, w: usize) {
        if self
            .batch
            .kill(j, w, self.now, &mut self.cluster, &mut self.agenda)
        {
            self.add_worker(j);
        }
    }

    /// Drain or spot notice for a worker: a replacement starts now.
    pub(super) fn evict_worker(&mut self, j: usize, w: usize) {
        match self.batch.evict(j, w) {
            WorkerEvicted::Ignored => return,
            WorkerEvicted::Stopping => {}
            WorkerEvicted::Remove => self.remove_worker_pod(j, w),
        }
        if self.batch.running(j) {
            self.add_worker(j);
        }
    }
}
