//! Waiting for a request's scheduled time to within tens of microseconds, without spinning.
//!
//! Every latency is measured from the scheduled time, so a request sent late carries its lateness
//! in its latency. tokio's timer fires on the first millisecond tick at or after a deadline,
//! which alone would send ~0.5 ms late on average. Yielding in a loop through the last tick
//! removes that bias but keeps a core busy: at 5,000 streamed requests/s it doubled loadgen's
//! CPU, CPU a server on the same machine then lacks. On Linux a task instead arms a timerfd
//! for the remaining time: the kernel's high-resolution timer wakes it through tokio's reactor
//! just after the due time, at the cost of two system calls. Elsewhere (or if a timerfd cannot
//! be had) it yields through the last tick as before.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Timers for the tasks waiting on imminent requests; only those need one, so a pool of a few
/// serves any number of connections.
#[derive(Default)]
pub(crate) struct Pacers {
    idle: Mutex<Vec<Pacer>>,
}

impl Pacers {
    /// Return at `due` or just after. Cancel-safe: dropping the future drops its timer.
    pub(crate) async fn wait_until(&self, due: Instant) {
        if Instant::now() >= due {
            return;
        }
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut pacer = taken.unwrap_or_else(Pacer::new);
        pacer.wait_until(due).await;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pacer);
    }
}

#[cfg(target_os = "linux")]
struct Pacer {
    /// `None` when no timerfd could be created (out of file descriptors): yield instead.
    timer: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

#[cfg(target_os = "linux")]
impl Pacer {
    fn new() -> Self {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        // CLOCK_MONOTONIC, the clock `Instant` reads on Linux.
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()
        .and_then(|fd| {
            // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same
            // for the AsyncFd's whole life.
            unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            }
            .ok()
        });
        Pacer { timer }
    }

    async fn wait_until(&mut self, due: Instant) {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        loop {
            let now = Instant::now();
            if now >= due {
                return;
            }
            let Some(timer) = &self.timer else {
                return yield_until(due).await;
            };
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // At least 1 ns: an all-zero value would disarm the timer.
            let Ok(value) = Timespec::try_from((due - now).max(Duration::from_nanos(1))) else {
                return yield_until(due).await;
            };
            let spec = Itimerspec {
                it_interval: zero,
                it_value: value,
            };
            if timerfd_settime(timer.get_ref(), TimerfdTimerFlags::empty(), &spec).is_err() {
                return yield_until(due).await;
            }
            let Ok(mut ready) = timer.readable().await else {
                return yield_until(due).await;
            };
            // Reading the expiry count disarms the descriptor until it is armed again.
            let mut count = [0u8; 8];
            match rustix::io::read(timer.get_ref(), &mut count) {
                Ok(_) => ready.clear_ready(),
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(_) => return yield_until(due).await,
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
struct Pacer;

#[cfg(not(target_os = "linux"))]
impl Pacer {
    fn new() -> Self {
        Pacer
    }

    async fn wait_until(&mut self, due: Instant) {
        yield_until(due).await
    }
}

/// Sleep to within a tick of `due`, then yield until it passes.
async fn yield_until(due: Instant) {
    if due > Instant::now() + TIMER_TICK {
        tokio::time::sleep_until(tokio::time::Instant::from_std(due - TIMER_TICK)).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait never ends before the due time, and ends nearer it than tokio's millisecond
    /// timer does (the bias the pacer exists to remove), measured side by side in one process
    /// so a loaded machine slows both alike; a due time already past returns at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_nearer_the_due_time_than_tokios_timer() {
        let pacers = Pacers::default();
        let (mut paced, mut slept) = (Vec::new(), Vec::new());
        for i in 0..100u64 {
            let lead = Duration::from_micros(300 + 37 * (i % 50));
            let due = Instant::now() + lead;
            pacers.wait_until(due).await;
            let woke = Instant::now();
            assert!(woke >= due, "woke {:?} early", due - woke);
            paced.push(woke - due);
            let due = Instant::now() + lead;
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
            slept.push(Instant::now().saturating_duration_since(due));
        }
        paced.sort();
        slept.sort();
        let (paced, slept) = (paced[paced.len() / 2], slept[slept.len() / 2]);
        assert!(
            paced < slept,
            "median lateness {paced:?} paced, {slept:?} with tokio's timer"
        );
        let past = Instant::now() - Duration::from_millis(5);
        pacers.wait_until(past).await;
        let idle = pacers.idle.lock().map(|p| p.len()).unwrap_or(0);
        assert_eq!(idle, 1, "one timer, reused by every wait");
    }
}
