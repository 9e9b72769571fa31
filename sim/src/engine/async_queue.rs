//! An async API's queue (Cortex's AsyncAPI on SQS): requests wait in one queue and the
//! replicas' workers take them, as Cortex's dequeuer does (`pkg/dequeuer/dequeuer.go` at
//! cortexlabs/cortex@dc48c02e). A worker that finishes polls at once; an idle worker long-polls
//! for `receive_wait` (a message arriving then is delivered at once), and when the poll comes
//! back empty sleeps `empty_receive_sleep` before polling again. So a message reaching an idle
//! API waits for the first worker whose poll is open: up to the sleep.

use super::agenda::{Agenda, EventKind};
use super::serving::ApiState;
use crate::cluster::Cluster;
use crate::time::SimTime;

impl ApiState {
    /// Whether a worker idle since `since` is in a long poll at `now`, and if not, when its
    /// next poll opens.
    fn next_poll(&self, since: SimTime, now: SimTime) -> SimTime {
        let (wait, sleep) = self.spec.dequeuer;
        let idle = now.since(since).as_duration();
        match autoscaler::dequeuer_poll(idle, wait.as_duration(), sleep.as_duration()) {
            autoscaler::DequeuerPoll::Open { .. } => now,
            autoscaler::DequeuerPoll::Asleep { opens_in } => now + SimTime::from(opens_in),
        }
    }

    /// Every worker of ready replica `r` is idle and polls from `now` (it just became ready).
    pub(super) fn workers_poll(&mut self, r: usize, now: SimTime) {
        let threads = self.spec.threads as usize;
        for p in &mut self.replicas[r].processes {
            p.idle_since = vec![now; threads.saturating_sub(p.busy as usize)];
        }
    }

    /// Idle workers whose poll is open take messages from the queue, oldest first (the first
    /// such worker in readiness order); if messages remain and no poll is open, the dequeuer
    /// wakes when the first one opens.
    pub(super) fn pull(
        &mut self,
        a: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        while !self.held.is_empty() {
            let mut open = None;
            let mut next = SimTime::NEVER;
            'find: for &r in &self.ready {
                for (p, process) in self.replicas[r as usize].processes.iter().enumerate() {
                    for (w, &since) in process.idle_since.iter().enumerate() {
                        let at = self.next_poll(since, now);
                        if at == now {
                            open = Some((r as usize, p, w));
                            break 'find;
                        }
                        next = next.min(at);
                    }
                }
            }
            let Some((r, p, w)) = open else {
                if next != SimTime::NEVER && self.queue_wake.is_none_or(|t| next < t) {
                    self.queue_wake = Some(next);
                    agenda.schedule(next, EventKind::QueueWake { api: a as u32 });
                }
                return;
            };
            let Some(request) = self.held.pop_front() else {
                return;
            };
            let replica = &mut self.replicas[r];
            replica.taken.push((request, now));
            replica.processes[p].idle_since.swap_remove(w);
            replica.in_flight += 1;
            replica.arrivals += 1;
            self.in_flight += 1;
            self.start(a, r, p, request, now, cluster, agenda);
        }
    }

    /// Messages whose visibility timeout ended are back in the queue (at its end, as SQS's
    /// standard queues keep no order), and free workers take what waits.
    pub(super) fn redeliver(
        &mut self,
        a: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        self.touch(now);
        let (due, later): (Vec<_>, Vec<_>) = self.invisible.drain(..).partition(|(t, _)| *t <= now);
        self.invisible = later;
        self.held.extend(due.into_iter().map(|(_, m)| m));
        self.pull(a, now, cluster, agenda);
    }

    /// The dequeuer's wake-up: workers whose poll opens now take what waits.
    pub(super) fn queue_wake(
        &mut self,
        a: usize,
        now: SimTime,
        cluster: &mut Cluster,
        agenda: &mut Agenda,
    ) {
        if self.queue_wake == Some(now) {
            self.queue_wake = None;
        }
        self.pull(a, now, cluster, agenda);
    }
}

/// When a message a worker took at `taken` is visible again after the worker died at `died`
/// (see [`autoscaler::message_hidden_for`]).
pub(super) fn visible_again(taken: SimTime, died: SimTime) -> SimTime {
    taken
        + SimTime::from(autoscaler::message_hidden_for(
            died.since(taken).as_duration(),
        ))
}
