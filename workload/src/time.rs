//! Simulated time as an integer, so runs are reproducible bit for bit on any machine.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// Nanoseconds since the start of the scenario. Integer arithmetic only: a floating-point clock
/// would make event order depend on rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of the scenario.
    pub const ZERO: SimTime = SimTime(0);
    /// Later than any event a scenario can produce.
    pub const NEVER: SimTime = SimTime(u64::MAX);
    const NANOS_PER_SEC: f64 = 1e9;

    /// From (possibly fractional) seconds, rounded to the nearest nanosecond; negative and
    /// non-finite inputs saturate to zero and `NEVER`.
    pub fn from_secs_f64(secs: f64) -> SimTime {
        if secs.is_nan() || secs <= 0.0 {
            SimTime::ZERO
        } else if secs * Self::NANOS_PER_SEC >= u64::MAX as f64 {
            SimTime::NEVER
        } else {
            SimTime((secs * Self::NANOS_PER_SEC).round() as u64)
        }
    }

    /// Whole seconds.
    pub fn from_secs(secs: u64) -> SimTime {
        SimTime(secs.saturating_mul(1_000_000_000))
    }

    /// Seconds as a float, for reporting.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_SEC
    }

    /// Microseconds, the resolution of the latency histograms.
    pub fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// Saturating difference, for durations between two instants.
    pub fn since(self, earlier: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(earlier.0))
    }

    /// As a standard duration, the time type the autoscaler crate speaks.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl From<Duration> for SimTime {
    fn from(d: Duration) -> Self {
        SimTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        self.since(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(SimTime::from_secs_f64(1.5), SimTime(1_500_000_000));
        assert_eq!(SimTime::from_secs_f64(-3.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(f64::INFINITY), SimTime::NEVER);
        assert_eq!(SimTime::from_secs(2).as_secs_f64(), 2.0);
        assert_eq!(SimTime(5) - SimTime(7), SimTime::ZERO);
    }
}
