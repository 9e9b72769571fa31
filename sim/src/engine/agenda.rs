//! The agenda: the event heap every room schedules into and the event log every room writes to.
//!
//! The heap pops the earliest event and breaks ties by the order of `schedule` calls (a sequence
//! number), so the order in which rooms schedule is part of the simulation's behaviour.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::results::Event;
use crate::time::SimTime;

/// Events kept in the results; more are counted in `events_dropped`.
const MAX_EVENTS: usize = 100_000;
/// "Why" events (`scale_held`, `no_scale_up`, `not_removed`) kept besides them: a budget of
/// their own, so that explanations never crowd out what happened.
const MAX_WHY_EVENTS: usize = 20_000;

#[derive(Debug, Clone, Copy)]
pub(crate) enum EventKind {
    Completion {
        api: u16,
        process: u16,
        /// The request's tenant (0 without tenants).
        tenant: u16,
        replica: u32,
        /// The replica slot's epoch when the request started; a killed replica's completions
        /// are stale.
        epoch: u32,
        arrival: SimTime,
        /// Its pipeline request (`NO_FLOW` outside pipelines).
        flow: u32,
    },
    ReplicaReady {
        api: u32,
        replica: u32,
        epoch: u32,
    },
    /// An LLM replica's iteration ends.
    LlmIteration {
        api: u16,
        replica: u32,
        epoch: u32,
    },
    NodeReady {
        node: usize,
    },
    NodeLaunchTimeout {
        node: usize,
    },
    NodeTerminate {
        node: usize,
    },
    ClusterScan,
    SpotReclaim {
        group: usize,
    },
    PolicyTick {
        api: u32,
    },
    Scrape {
        api: u32,
    },
    TimelineTick,
    /// An async API's dequeuer: a sleeping worker's next long poll opens.
    QueueWake {
        api: u32,
    },
    /// An async API's message whose worker died is visible in the queue again.
    Redeliver {
        api: u32,
    },
    /// A Vertical Pod Autoscaler's recommender samples its API's pods.
    VpaSample {
        api: u32,
    },
    /// A Vertical Pod Autoscaler's updater considers its API's running pods.
    VpaUpdate {
        api: u32,
    },
    BatchSubmit {
        job: u32,
    },
    WorkerReady {
        job: u32,
        worker: u32,
        epoch: u32,
    },
    BatchDone {
        job: u32,
        worker: u32,
        epoch: u32,
    },
    BatchVisible {
        job: u32,
        batch: u32,
    },
    BatchTimeout {
        job: u32,
    },
    MemoryCheck {
        node: usize,
    },
    /// Karpenter's provisioner looks at the pending pods' batch window.
    KarpenterBatch,
    /// Karpenter's disruption controller polls.
    KarpenterDisrupt,
    /// A Karpenter node reached its pool's `expire_after`.
    KarpenterExpire {
        node: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheduled {
    pub(super) at: SimTime,
    seq: u64,
    pub(super) kind: EventKind,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so the std max-heap pops the earliest event; FIFO among equal times.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Future events and the log of what happened, shared by the rooms through the loop.
#[derive(Default)]
pub(crate) struct Agenda {
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    events: Vec<Event>,
    events_dropped: u64,
    /// Events logged with [`Agenda::log`] (the others are "why" events).
    logged: usize,
    /// "Why" events logged.
    whys: usize,
}

impl Agenda {
    /// Schedule `kind` at `at`, after everything already scheduled at the same instant.
    #[inline]
    pub(crate) fn schedule(&mut self, at: SimTime, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            kind,
        });
    }

    /// Record an event in the results' log (bounded; the rest are only counted).
    pub(crate) fn log(&mut self, event: Event) {
        if self.logged < MAX_EVENTS {
            self.logged += 1;
            self.events.push(event);
        } else {
            self.events_dropped += 1;
        }
    }

    /// Record a "why" event (a decision held by a rule, a cluster-autoscaler pass that did not
    /// act), within its own budget; past it they are left out without counting, as they only
    /// explain what the other events record.
    pub(crate) fn log_why(&mut self, event: Event) {
        if self.whys < MAX_WHY_EVENTS {
            self.whys += 1;
            self.events.push(event);
        }
    }

    /// When the earliest scheduled event happens, `NEVER` if none is.
    #[inline]
    pub(super) fn next_at(&self) -> SimTime {
        self.heap.peek().map_or(SimTime::NEVER, |e| e.at)
    }

    /// Take the earliest scheduled event.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<Scheduled> {
        self.heap.pop()
    }

    /// The log so far.
    pub(super) fn events(&self) -> &[Event] {
        &self.events
    }

    /// The log and how many events did not fit in it.
    pub(super) fn into_log(self) -> (Vec<Event>, u64) {
        (self.events, self.events_dropped)
    }
}
