//! Retries with exponential backoff and jitter, bounded in time so one tick's retries never run
//! into the next tick: the API server may be briefly down, slow or in conflict, and the controller
//! must keep running rather than fail or hammer it.

use std::fmt::Display;
use std::time::Duration;

use rand::Rng;

use super::BoxFuture;

/// How to retry one call.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First wait.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Give up once this much time has been spent (the caller tries again next tick).
    pub budget: Duration,
    /// Each attempt is abandoned after this long (a hung API server counts as an error).
    pub attempt_timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            budget: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a retried call failed in the end.
#[derive(Debug, thiserror::Error)]
#[error("{what}: gave up after {attempts} attempts: {last}")]
pub struct GaveUp {
    /// The call.
    pub what: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last: String,
}

impl Backoff {
    /// The wait before attempt `n + 1` (n ≥ 1): exponential, with "equal jitter" (half fixed,
    /// half random) so that several controllers do not retry in lockstep.
    pub fn wait(&self, n: u32) -> Duration {
        let exp = self.initial.saturating_mul(
            1u32.checked_shl(n.saturating_sub(1).min(16))
                .unwrap_or(u32::MAX),
        );
        let capped = exp.min(self.max);
        let half = capped / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }

    /// Call `op(state)` until it succeeds or the budget is spent; `on_error` sees every failure.
    pub async fn run<S: ?Sized, T, E: Display>(
        &self,
        what: &'static str,
        state: &mut S,
        mut op: impl for<'a> FnMut(&'a mut S) -> BoxFuture<'a, Result<T, E>>,
        mut on_error: impl FnMut(&str),
    ) -> Result<T, GaveUp> {
        let started = tokio::time::Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let last = match tokio::time::timeout(self.attempt_timeout, op(state)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("timed out after {:?}", self.attempt_timeout),
            };
            on_error(&last);
            let wait = self.wait(attempts);
            if started.elapsed() + wait >= self.budget {
                return Err(GaveUp {
                    what,
                    attempts,
                    last,
                });
            }
            tracing::debug!(what, attempt = attempts, error = %last, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..Backoff::default()
        };
        for n in 1..40 {
            let w = b.wait(n);
            assert!(w <= Duration::from_secs(1), "{n}: {w:?}");
        }
        let w1 = b.wait(1);
        assert!(w1 >= Duration::from_millis(50) && w1 <= Duration::from_millis(100));
        assert!(b.wait(10) >= Duration::from_millis(500));
    }

    #[tokio::test]
    async fn retries_until_success_within_budget() {
        let b = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            budget: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
        };
        let mut calls = 0u32;
        let mut errors = 0u32;
        let r = b
            .run(
                "test",
                &mut calls,
                |c: &mut u32| {
                    Box::pin(async move {
                        *c += 1;
                        if *c < 4 {
                            Err("boom")
                        } else {
                            Ok(*c)
                        }
                    })
                },
                |_| errors += 1,
            )
            .await;
        assert_eq!(r.ok(), Some(4));
        assert_eq!(errors, 3);
    }
}
