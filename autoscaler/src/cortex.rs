//! Cortex v0.42's RealtimeAPI autoscaler (`pkg/autoscaler/autoscaler.go`), decision for
//! decision: 10 s ticks on the windowed average of in-flight requests, tolerance bands, factor
//! limits that always allow ±1, stabilization over a history of recommendations, the start-up
//! guard, and scale-to-zero with the activator's wake-up.
//!
//! Cortex ≤0.35 field names map as follows (see [`CortexConfig::from_legacy`]):
//! `processes_per_replica × threads_per_process` is the replica's concurrency (v0.36+
//! `max_concurrency`), `target_replica_concurrency` is `target_in_flight`, and
//! `max_replica_concurrency` (the replica-wide limit, executing + queued) becomes
//! `max_queue_length = max_replica_concurrency − concurrency`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::why::{Direction, MetricValue, Rule, Why};
use crate::{
    InvalidSetting, MetricSpec, Observation, Recommendation, ReplicaBounds, ScalingPolicy,
};

/// Settings of the Cortex autoscaler, with v0.42's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CortexConfig {
    /// Replica bounds (0 allows scale-to-zero, as in v0.38+).
    pub bounds: ReplicaBounds,
    /// Replicas at deployment (defaults to `min_replicas`).
    pub init_replicas: u32,
    /// Desired in-flight requests per replica.
    pub target_in_flight: f64,
    /// Averaging window of the in-flight metric.
    pub window: Duration,
    /// History window for scale-down decisions, and the start-up guard for them.
    pub downscale_stabilization_period: Duration,
    /// History window for scale-up decisions, and the start-up guard for them.
    pub upscale_stabilization_period: Duration,
    /// Largest fraction kept in one downscale step (0.75: at most a quarter removed).
    pub max_downscale_factor: f64,
    /// Largest growth in one upscale step.
    pub max_upscale_factor: f64,
    /// No scale-down while the raw recommendation is within this fraction below current.
    pub downscale_tolerance: f64,
    /// No scale-up while the raw recommendation is within this fraction above current.
    pub upscale_tolerance: f64,
}

impl CortexConfig {
    /// v0.42 defaults for a replica of the given concurrency (`target_in_flight` defaults to
    /// `max_concurrency`).
    pub fn with_concurrency(max_concurrency: u32) -> Self {
        Self {
            bounds: ReplicaBounds {
                min_replicas: 1,
                max_replicas: 100,
            },
            init_replicas: 1,
            target_in_flight: f64::from(max_concurrency.max(1)),
            window: Duration::from_secs(60),
            downscale_stabilization_period: Duration::from_secs(300),
            upscale_stabilization_period: Duration::from_secs(60),
            max_downscale_factor: 0.75,
            max_upscale_factor: 1.5,
            downscale_tolerance: 0.05,
            upscale_tolerance: 0.05,
        }
    }

    /// Map Cortex ≤0.35 fields: returns (concurrency, target_in_flight, max_queue_length).
    pub fn from_legacy(
        processes_per_replica: u32,
        threads_per_process: u32,
        target_replica_concurrency: Option<f64>,
        max_replica_concurrency: Option<u32>,
    ) -> (u32, f64, Option<u32>) {
        let concurrency = processes_per_replica.max(1) * threads_per_process.max(1);
        let target = target_replica_concurrency.unwrap_or(f64::from(concurrency));
        let queue = max_replica_concurrency.map(|m| m.saturating_sub(concurrency));
        (concurrency, target, queue)
    }

    /// Check the constraints of `pkg/types/spec/validations.go`; the error names the field.
    pub fn validate(&self, capacity: u32) -> Result<(), InvalidSetting> {
        let b = self.bounds;
        if b.max_replicas == 0 {
            return Err(InvalidSetting::new("max_replicas", "expected > 0"));
        }
        if b.min_replicas > b.max_replicas {
            return Err(InvalidSetting::new(
                "min_replicas",
                format!(
                    "expected ≤ max_replicas ({}), found {}",
                    b.max_replicas, b.min_replicas
                ),
            ));
        }
        if self.init_replicas < b.min_replicas || self.init_replicas > b.max_replicas {
            return Err(InvalidSetting::new(
                "init_replicas",
                format!(
                    "expected between min_replicas ({}) and max_replicas ({}), found {}",
                    b.min_replicas, b.max_replicas, self.init_replicas
                ),
            ));
        }
        if !(self.target_in_flight > 0.0 && self.target_in_flight <= f64::from(capacity)) {
            return Err(InvalidSetting::new(
                "target_in_flight",
                format!(
                    "expected > 0 and ≤ max_concurrency + max_queue_length ({capacity}), found {}",
                    self.target_in_flight
                ),
            ));
        }
        let w = self.window.as_secs();
        if w < 10 || !w.is_multiple_of(10) || self.window.subsec_nanos() != 0 {
            return Err(InvalidSetting::new(
                "window",
                format!(
                    "expected at least 10s and a multiple of 10s, found {:?}",
                    self.window
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.max_downscale_factor) {
            return Err(InvalidSetting::new(
                "max_downscale_factor",
                format!("expected in [0, 1), found {}", self.max_downscale_factor),
            ));
        }
        if !(self.max_upscale_factor > 1.0 && self.max_upscale_factor.is_finite()) {
            return Err(InvalidSetting::new(
                "max_upscale_factor",
                format!("expected > 1, found {}", self.max_upscale_factor),
            ));
        }
        if !(0.0..1.0).contains(&self.downscale_tolerance) {
            return Err(InvalidSetting::new(
                "downscale_tolerance",
                format!("expected in [0, 1), found {}", self.downscale_tolerance),
            ));
        }
        if !(self.upscale_tolerance >= 0.0 && self.upscale_tolerance.is_finite()) {
            return Err(InvalidSetting::new(
                "upscale_tolerance",
                format!("expected ≥ 0, found {}", self.upscale_tolerance),
            ));
        }
        Ok(())
    }
}

/// The Cortex autoscaler for one API.
#[derive(Debug, Clone)]
pub struct Cortex {
    config: CortexConfig,
    start: Option<Duration>,
    /// Post-clamp recommendations inside the longest stabilization period.
    history: VecDeque<(Duration, u32)>,
}

impl Cortex {
    /// A fresh autoscaler; its start-up guard starts at its first decision.
    pub fn new(config: CortexConfig) -> Self {
        Self {
            config,
            start: None,
            history: VecDeque::new(),
        }
    }

    fn window_extreme(&self, now: Duration, period: Duration, max: bool) -> Option<u32> {
        let cutoff = now.saturating_sub(period);
        let values = self
            .history
            .iter()
            .filter(|(t, _)| *t >= cutoff)
            .map(|(_, r)| *r);
        if max {
            values.max()
        } else {
            values.min()
        }
    }
}

impl ScalingPolicy for Cortex {
    fn name(&self) -> &'static str {
        "cortex"
    }

    fn tick_interval(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::InFlightWindowAverage {
            sample_interval: Duration::from_secs(1),
            window: self.config.window,
        }
    }

    fn initial_replicas(&self) -> u32 {
        self.config.init_replicas
    }

    fn recommend(&mut self, now: Duration, obs: &Observation) -> Recommendation {
        let c = &self.config;
        let start = *self.start.get_or_insert(now);
        let cur = obs.current_replicas;
        // The activator's Awaken: from zero to one on the first held request.
        if cur == 0 && obs.waiting_requests > 0 {
            self.history.push_back((now, 1));
            let mut r = Recommendation::with_inputs(1, vec![("awaken", 1.0)]);
            r.why.push(Rule::Wake {
                waiting: obs.waiting_requests,
            });
            return r;
        }
        let Some(avg) = obs.metric else {
            let mut r = Recommendation::with_inputs(cur, vec![("no_metric", 1.0)]);
            r.why.push(Rule::Hold(crate::HoldReason::MetricMissing));
            return r;
        };
        let mut why = Why {
            metric: Some(MetricValue {
                name: "in-flight requests".into(),
                value: avg,
                target: Some(c.target_in_flight),
            }),
            ..Why::default()
        };
        let curf = f64::from(cur);
        let raw = avg / c.target_in_flight;
        let mut rec = raw.ceil() as i64;
        why.raw = Some(rec.max(0) as u32);
        let within_down = raw < curf && raw > curf * (1.0 - c.downscale_tolerance);
        let within_up = raw > curf && raw < curf * (1.0 + c.upscale_tolerance);
        if within_down || within_up {
            if rec != i64::from(cur) {
                why.push(Rule::Tolerance {
                    ratio: raw / curf,
                    low: 1.0 - c.downscale_tolerance,
                    high: 1.0 + c.upscale_tolerance,
                });
            }
            rec = i64::from(cur);
        }
        let floor = (i64::from(cur) - 1).min((curf * c.max_downscale_factor).ceil() as i64);
        if rec < floor {
            why.push(Rule::FactorLimit {
                direction: Direction::Down,
                setting: "max_downscale_factor",
                factor: c.max_downscale_factor,
                limit: floor.max(0) as u32,
            });
        }
        rec = rec.max(floor);
        let ceiling = (i64::from(cur) + 1).max((curf * c.max_upscale_factor).ceil() as i64);
        if rec > ceiling {
            why.push(Rule::FactorLimit {
                direction: Direction::Up,
                setting: "max_upscale_factor",
                factor: c.max_upscale_factor,
                limit: ceiling.max(0) as u32,
            });
        }
        rec = rec.min(ceiling);
        let unclamped = rec.max(0) as u32;
        let rec = unclamped.clamp(c.bounds.min_replicas, c.bounds.max_replicas);
        if rec > unclamped {
            why.push(Rule::MinReplicas {
                min: c.bounds.min_replicas,
            });
        } else if rec < unclamped {
            why.push(Rule::MaxReplicas {
                max: c.bounds.max_replicas,
            });
        }

        let before: Vec<(Duration, u32)> = self.history.iter().copied().collect();
        self.history.push_back((now, rec));
        let keep = c
            .downscale_stabilization_period
            .max(c.upscale_stabilization_period);
        while self
            .history
            .front()
            .is_some_and(|(t, _)| *t < now.saturating_sub(keep))
        {
            self.history.pop_front();
        }

        let since_start = now.saturating_sub(start);
        let mut req = rec;
        if req < cur {
            if since_start < c.downscale_stabilization_period {
                req = cur;
                why.push(Rule::StartupGuard {
                    direction: Direction::Down,
                    period: c.downscale_stabilization_period,
                });
            } else if let Some(max) =
                self.window_extreme(now, c.downscale_stabilization_period, true)
            {
                let stabilized = req.max(max.min(cur));
                if stabilized != req {
                    why.push(Rule::Stabilization {
                        direction: Direction::Down,
                        window: c.downscale_stabilization_period,
                        value: max,
                        at: latest_with(&before, now, c.downscale_stabilization_period, max),
                    });
                }
                req = stabilized;
            }
        }
        if req > cur {
            if since_start < c.upscale_stabilization_period {
                req = cur;
                why.push(Rule::StartupGuard {
                    direction: Direction::Up,
                    period: c.upscale_stabilization_period,
                });
            } else if let Some(min) =
                self.window_extreme(now, c.upscale_stabilization_period, false)
            {
                let stabilized = req.min(min.max(cur));
                if stabilized != req {
                    why.push(Rule::Stabilization {
                        direction: Direction::Up,
                        window: c.upscale_stabilization_period,
                        value: min,
                        at: latest_with(&before, now, c.upscale_stabilization_period, min),
                    });
                }
                req = stabilized;
            }
        }
        Recommendation {
            replicas: req,
            inputs: vec![
                ("avg_in_flight", avg),
                ("raw", raw),
                ("recommendation", f64::from(rec)),
            ],
            why,
        }
    }
}

/// When the most recent recommendation of `value` inside the window was made (`now` when it is
/// this tick's own).
fn latest_with(
    history: &[(Duration, u32)],
    now: Duration,
    period: Duration,
    value: u32,
) -> Duration {
    let cutoff = now.saturating_sub(period);
    history
        .iter()
        .rev()
        .find(|(t, r)| *t >= cutoff && *r == value)
        .map_or(now, |(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cortex(min: u32, max: u32) -> Cortex {
        let mut c = CortexConfig::with_concurrency(4);
        c.bounds = ReplicaBounds {
            min_replicas: min,
            max_replicas: max,
        };
        c.init_replicas = min;
        Cortex::new(c)
    }

    fn obs(cur: u32, in_flight: f64) -> Observation {
        Observation {
            current_replicas: cur,
            ready_replicas: cur,
            metric: Some(in_flight),
            ..Observation::default()
        }
    }

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A policy past its start-up guards (first tick long ago, neutral history).
    fn settled(min: u32, max: u32, cur: u32) -> Cortex {
        let mut p = cortex(min, max);
        p.recommend(at(0), &obs(cur, f64::from(cur) * 4.0));
        p.history.clear();
        p
    }

    #[test]
    fn tolerance_band_is_strict() {
        // cur 10, target 4: raw 10.4 is within +5 % (10.5) → hold; raw 10.5 is not (< fails).
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 41.6)).replicas, 10);
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 42.0)).replicas, 11);
        // Below: raw 9.6 > 9.5 → hold; raw 9.5 is not > 9.5 → scale down to ceil(9.5) = 10?
        // ceil(9.5) = 10 = cur, so use raw 9.4: 10 → 10 (ceil 9.4 = 10). Raw 8.8 → 9.
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 38.4)).replicas, 10);
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 35.2)).replicas, 9);
    }

    #[test]
    fn factor_limits_always_allow_one_step() {
        // cur 1: ceil(1.5) = 2 = cur + 1 → a huge load still only doubles to 2.
        let mut p = settled(1, 100, 1);
        assert_eq!(p.recommend(at(1000), &obs(1, 400.0)).replicas, 2);
        // cur 10: up to ceil(15) = 15; down to min(9, ceil(7.5) = 8) = 8.
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 400.0)).replicas, 15);
        let mut p = settled(1, 100, 10);
        assert_eq!(p.recommend(at(1000), &obs(10, 0.0)).replicas, 8);
        // cur 2: down to min(1, ceil(1.5) = 2) = 1: always allows −1.
        let mut p = settled(1, 100, 2);
        assert_eq!(p.recommend(at(1000), &obs(2, 0.0)).replicas, 1);
    }

    #[test]
    fn start_up_guard_blocks_both_directions() {
        let mut p = cortex(1, 100);
        assert_eq!(
            p.recommend(at(0), &obs(2, 400.0)).replicas,
            2,
            "no scale-up in 1st minute"
        );
        assert_eq!(p.recommend(at(50), &obs(2, 400.0)).replicas, 2);
        assert_eq!(
            p.recommend(at(60), &obs(2, 400.0)).replicas,
            3,
            "after upscale period"
        );
        let mut p = cortex(1, 100);
        assert_eq!(p.recommend(at(0), &obs(8, 0.0)).replicas, 8);
        assert_eq!(
            p.recommend(at(290), &obs(8, 0.0)).replicas,
            8,
            "no scale-down in 5 min"
        );
        assert_eq!(p.recommend(at(300), &obs(8, 0.0)).replicas, 6);
    }

    #[test]
    fn downscale_waits_for_the_history_window() {
        let mut p = settled(1, 100, 10);
        // A peak recommendation of 15 at t = 1000 keeps a later downscale at cur for 5 minutes.
        assert_eq!(p.recommend(at(1000), &obs(10, 60.0)).replicas, 15);
        assert_eq!(p.recommend(at(1010), &obs(15, 4.0)).replicas, 15);
        assert_eq!(p.recommend(at(1290), &obs(15, 4.0)).replicas, 15);
        // Once the peak left the window, the max of recent recommendations (12) applies.
        assert_eq!(p.recommend(at(1310), &obs(15, 4.0)).replicas, 12);
    }

    #[test]
    fn upscale_needs_a_minute_of_high_recommendations() {
        let mut p = settled(1, 100, 4);
        // A low recommendation (3) at 1000 (held at 4 by the 4 recommended at 990), then high
        // load: the min over the last minute, capped below by cur, holds at 4 until the low
        // one leaves the window.
        assert_eq!(p.recommend(at(990), &obs(4, 16.0)).replicas, 4);
        assert_eq!(p.recommend(at(1000), &obs(4, 12.0)).replicas, 4);
        assert_eq!(p.recommend(at(1010), &obs(4, 40.0)).replicas, 4);
        assert_eq!(p.recommend(at(1061), &obs(4, 40.0)).replicas, 6);
    }

    #[test]
    fn scale_to_zero_and_wake_up() {
        let mut p = settled(0, 10, 1);
        assert_eq!(p.recommend(at(1000), &obs(1, 0.0)).replicas, 0);
        // At zero with a request held by the activator: Awaken sets 1 at once.
        let wake = Observation {
            current_replicas: 0,
            waiting_requests: 1,
            metric: Some(0.0),
            ..Observation::default()
        };
        assert_eq!(p.recommend(at(1001), &wake).replicas, 1);
        // Missing metric: no action.
        let missing = Observation {
            current_replicas: 3,
            ..Observation::default()
        };
        assert_eq!(p.recommend(at(1002), &missing).replicas, 3);
    }

    #[test]
    fn legacy_fields_map() {
        assert_eq!(
            CortexConfig::from_legacy(2, 4, None, Some(100)),
            (8, 8.0, Some(92))
        );
        assert_eq!(
            CortexConfig::from_legacy(1, 1, Some(2.5), None),
            (1, 2.5, None)
        );
    }

    proptest! {
        #[test]
        fn stays_within_bounds(
            min in 0u32..5, span in 0u32..20,
            loads in proptest::collection::vec(0.0f64..500.0, 1..80),
        ) {
            let max = (min + span).max(1);
            let mut p = cortex(min, max);
            let mut cur = min.max(1).min(max);
            for (i, load) in loads.iter().enumerate() {
                let r = p.recommend(at(10 * i as u64), &obs(cur, *load)).replicas;
                prop_assert!(r >= min && r <= max, "{} not in [{}, {}]", r, min, max);
                cur = r;
            }
        }

        #[test]
        fn load_at_target_changes_nothing(cur in 1u32..50) {
            let mut p = cortex(1, 100);
            for i in 0..100 {
                let r = p.recommend(at(10 * i), &obs(cur, 4.0 * f64::from(cur))).replicas;
                prop_assert_eq!(r, cur);
            }
        }

        #[test]
        fn constant_load_does_not_oscillate(load in 0.0f64..400.0, start in 1u32..40) {
            let mut p = cortex(1, 100);
            let mut cur = start;
            let mut seen = vec![cur];
            for i in 0..200 {
                cur = p.recommend(at(10 * i), &obs(cur, load)).replicas;
                seen.push(cur);
            }
            // Monotone: never goes up and then down, or down and then up.
            let ups = seen.windows(2).any(|w| w[1] > w[0]);
            let downs = seen.windows(2).any(|w| w[1] < w[0]);
            prop_assert!(!(ups && downs), "{:?}", seen);
        }
    }
}

/// How long after a worker took an async API's message it stays hidden when the worker stops
/// (dies) after working `worked` on it: Cortex's dequeuer receives with a 30 s visibility
/// timeout and, every 10 s while it works, extends it to the time worked so far plus 10 s
/// (`StartMessageRenewer` in `pkg/dequeuer/dequeuer.go` at cortexlabs/cortex@dc48c02e), so after
/// k renewals the message is hidden until 20k + 10 s after it was taken. SQS then redelivers it.
pub fn message_hidden_for(worked: Duration) -> Duration {
    const RENEWAL_S: u64 = 10;
    let renewals = worked.as_secs() / RENEWAL_S;
    Duration::from_secs(if renewals == 0 {
        30
    } else {
        2 * RENEWAL_S * renewals + RENEWAL_S
    })
}

/// Where an idle worker of Cortex's dequeuer is in its poll cycle (`pkg/dequeuer/dequeuer.go`):
/// it long-polls for `receive_wait` (a message arriving then is taken at once) and, when the
/// poll comes back empty, sleeps `empty_receive_sleep` before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DequeuerPoll {
    /// In a long poll, which comes back empty in this long (never, `Duration::MAX`, when
    /// there is no sleep: the next poll follows at once).
    Open {
        /// Until the poll comes back empty.
        closes_in: Duration,
    },
    /// Asleep after an empty poll; the next opens in this long.
    Asleep {
        /// Until the next poll opens.
        opens_in: Duration,
    },
}

/// The poll cycle of a worker idle for `idle_for` (see [`DequeuerPoll`]); the simulator and the
/// local async gateway's dequeuers follow the same cycle.
pub fn dequeuer_poll(
    idle_for: Duration,
    receive_wait: Duration,
    empty_receive_sleep: Duration,
) -> DequeuerPoll {
    if empty_receive_sleep.is_zero() {
        return DequeuerPoll::Open {
            closes_in: Duration::MAX,
        };
    }
    let cycle = (receive_wait + empty_receive_sleep).as_nanos();
    let phase = Duration::from_nanos((idle_for.as_nanos() % cycle) as u64);
    if phase < receive_wait {
        DequeuerPoll::Open {
            closes_in: receive_wait - phase,
        }
    } else {
        DequeuerPoll::Asleep {
            opens_in: receive_wait + empty_receive_sleep - phase,
        }
    }
}

#[cfg(test)]
mod message_visibility {
    use super::*;

    #[test]
    fn hidden_for_the_initial_timeout_then_as_renewed() {
        let s = Duration::from_secs;
        // Dies before the first renewal (10 s): the receive's 30 s.
        assert_eq!(message_hidden_for(s(3)), s(30));
        assert_eq!(message_hidden_for(s(9)), s(30));
        // Renewed at 10 s to 10 + 10 s from then: hidden until 30 s after it was taken.
        assert_eq!(message_hidden_for(s(15)), s(30));
        // Renewed at 20 s to 20 + 10 s from then: until 50 s.
        assert_eq!(message_hidden_for(s(25)), s(50));
        // After 30 renewals (a 5-minute job): 610 s.
        assert_eq!(message_hidden_for(s(300)), s(610));
    }

    #[test]
    fn the_dequeuer_polls_then_sleeps_then_polls() {
        let s = Duration::from_secs;
        let at = |idle| dequeuer_poll(s(idle), s(10), s(10));
        assert_eq!(at(0), DequeuerPoll::Open { closes_in: s(10) });
        assert_eq!(at(4), DequeuerPoll::Open { closes_in: s(6) });
        assert_eq!(at(10), DequeuerPoll::Asleep { opens_in: s(10) });
        assert_eq!(at(18), DequeuerPoll::Asleep { opens_in: s(2) });
        assert_eq!(at(20), DequeuerPoll::Open { closes_in: s(10) });
        // No sleep: always in a poll.
        assert_eq!(
            dequeuer_poll(s(15), s(10), Duration::ZERO),
            DequeuerPoll::Open {
                closes_in: Duration::MAX
            }
        );
    }
}
