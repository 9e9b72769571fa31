//! NodePool disruption budgets (`pkg/apis/v1/nodepool.go`: `GetAllowedDisruptionsByReason`,
//! `GetAllowedDisruptions`, `IsActive`): how many of a pool's nodes may be disrupted at once
//! for a reason, optionally only inside a cron-scheduled window.
//!
//! Simulated time has no calendar: t = 0 is midnight UTC of day 0, and schedules may only
//! constrain the minute and the hour (`*/15 9 * * *`, `@hourly`, `@daily`).

use super::Reason;
use crate::time::SimTime;

/// `nodes`: a count or a percentage of the pool's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetNodes {
    /// A number of nodes.
    Count(u32),
    /// A percentage of the pool's nodes, rounded up (as PDBs' `maxUnavailable`).
    Percent(u32),
}

impl BudgetNodes {
    /// Parse `"10"` or `"10%"` (upstream's validation pattern: digits, optional `%`, ≤ 100 %).
    pub fn parse(text: &str) -> Result<BudgetNodes, String> {
        let bad = || {
            format!(
                "expected a node count like \"5\" or a percentage like \"10%\", found \"{text}\""
            )
        };
        match text.strip_suffix('%') {
            Some(p) => {
                let v: u32 = p.parse().map_err(|_| bad())?;
                if v > 100 {
                    return Err(format!(
                        "expected a percentage from 0% to 100%, found \"{text}\""
                    ));
                }
                Ok(BudgetNodes::Percent(v))
            }
            None => text.parse().map(BudgetNodes::Count).map_err(|_| bad()),
        }
    }
}

/// A cron schedule restricted to minutes and hours (`minute hour * * *`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: [bool; 60],
    hours: [bool; 24],
}

impl CronSchedule {
    /// Parse a standard 5-field cron expression whose day, month and weekday fields are `*`,
    /// or `@hourly`, `@daily`, `@midnight`.
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            t if t.starts_with('@') => {
                return Err(format!(
                    "\"{t}\" needs a calendar, and simulated time has none (t = 0 is midnight of day 0); use \"@hourly\", \"@daily\" or a \"minute hour * * *\" cron"
                ))
            }
            t => t,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected a 5-field cron \"minute hour day month weekday\", found \"{text}\""
            ));
        }
        if fields[2..].iter().any(|f| *f != "*") {
            return Err(format!(
                "only the minute and hour fields may be set (simulated time has no calendar), found \"{text}\""
            ));
        }
        let mut minutes = [false; 60];
        let mut hours = [false; 24];
        field(fields[0], &mut minutes, text)?;
        field(fields[1], &mut hours, text)?;
        Ok(CronSchedule { minutes, hours })
    }

    /// The first minute boundary strictly after `t` that the schedule hits (robfig/cron's
    /// `Next`). Schedules repeat daily, so one day's search is enough.
    pub fn next_after(&self, t: SimTime) -> SimTime {
        let minute_ns = 60_000_000_000u64;
        let first = t.0 / minute_ns + 1;
        for m in first..first + 24 * 60 {
            let of_day = m % (24 * 60);
            if self.hours[(of_day / 60) as usize] && self.minutes[(of_day % 60) as usize] {
                return SimTime(m * minute_ns);
            }
        }
        SimTime::NEVER
    }
}

fn field(text: &str, out: &mut [bool], whole: &str) -> Result<(), String> {
    let n = out.len() as u32;
    let bad =
        || format!("cron field \"{text}\" in \"{whole}\": expected *, */N, N or N,M… with N < {n}");
    for part in text.split(',') {
        if part == "*" {
            out.iter_mut().for_each(|b| *b = true);
        } else if let Some(step) = part.strip_prefix("*/") {
            let s: u32 = step.parse().map_err(|_| bad())?;
            if s == 0 {
                return Err(bad());
            }
            (0..n)
                .step_by(s as usize)
                .for_each(|i| out[i as usize] = true);
        } else {
            let v: u32 = part.parse().map_err(|_| bad())?;
            if v >= n {
                return Err(bad());
            }
            out[v as usize] = true;
        }
    }
    Ok(())
}

/// One `disruption.budgets` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// `nodes`.
    pub nodes: BudgetNodes,
    /// `reasons` (empty: every reason).
    pub reasons: Vec<Reason>,
    /// `schedule` and `duration`: active only in the window after each hit.
    pub window: Option<(CronSchedule, SimTime)>,
}

impl Budget {
    /// The default budget: `nodes: 10%` for every reason, always.
    pub fn default_budget() -> Budget {
        Budget {
            nodes: BudgetNodes::Percent(10),
            reasons: Vec::new(),
            window: None,
        }
    }

    /// Whether the budget is active at `now`: walking back `duration`, the next schedule hit
    /// is not after `now` (`IsActive`).
    pub fn is_active(&self, now: SimTime) -> bool {
        match &self.window {
            None => true,
            Some((schedule, duration)) => {
                // Schedules repeat daily and hit at least once a day: a window of a day or
                // more is always open. Shorter ones are checked a day later, which changes
                // nothing and lets the window look back before t = 0 (the days before the run).
                let day = 86_400_000_000_000u64;
                if duration.0 >= day {
                    return true;
                }
                let now = SimTime(now.0.saturating_add(day));
                schedule.next_after(SimTime(now.0 - duration.0)) <= now
            }
        }
    }

    /// Nodes this budget allows to be disrupted out of `total`: unbounded when inactive
    /// (`GetAllowedDisruptions`).
    pub fn allowed(&self, total: u32, now: SimTime) -> u32 {
        if !self.is_active(now) {
            return u32::MAX;
        }
        match self.nodes {
            BudgetNodes::Count(n) => n,
            BudgetNodes::Percent(p) => (u64::from(total) * u64::from(p)).div_ceil(100) as u32,
        }
    }
}

/// The pool's allowed disruptions for `reason`: the smallest of the active budgets that name
/// it or name no reason (`GetAllowedDisruptionsByReason`).
pub fn allowed_by_reason(budgets: &[Budget], total: u32, reason: Reason, now: SimTime) -> u32 {
    budgets
        .iter()
        .filter(|b| b.reasons.is_empty() || b.reasons.contains(&reason))
        .map(|b| b.allowed(total, now))
        .min()
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour() -> SimTime {
        SimTime::from_secs(3600)
    }

    fn budget(
        nodes: &str,
        reasons: &[Reason],
        schedule: Option<&str>,
        duration: SimTime,
    ) -> Budget {
        Budget {
            nodes: BudgetNodes::parse(nodes).expect("valid"),
            reasons: reasons.to_vec(),
            window: schedule.map(|s| (CronSchedule::parse(s).expect("valid"), duration)),
        }
    }

    /// Upstream's BeforeEach in `pkg/apis/v1/nodepool_budgets_test.go`: six budgets, all "* * * *
    /// *" for 1 h except the last (`@weekly`, inactive at the test's clock). Simulated time has
    /// no weekdays, so that one is written as a daily window that is closed at the clock used
    /// (03:00 + 1 h, checked at 12:30).
    fn upstream_budgets() -> Vec<Budget> {
        use Reason::*;
        vec![
            budget("10", &[], Some("* * * * *"), hour()),
            budget("100", &[], Some("* * * * *"), hour()),
            budget("100%", &[], Some("* * * * *"), hour()),
            budget("15", &[Drifted, Underutilized], Some("* * * * *"), hour()),
            budget("5", &[Drifted], Some("* * * * *"), hour()),
            budget(
                "0",
                &[Underutilized, Drifted, Empty],
                Some("0 3 * * *"),
                hour(),
            ),
        ]
    }

    /// 12:30:30, the test's clock time of day.
    fn clock() -> SimTime {
        SimTime::from_secs(12 * 3600 + 30 * 60 + 30)
    }

    const ALL: [Reason; 3] = [Reason::Empty, Reason::Underutilized, Reason::Drifted];

    // Upstream: nodepool_budgets_test.go, It("should return 0 for all reasons if a budget is
    // active for all reasons").
    #[test]
    fn zero_for_all_reasons_when_a_zero_budget_is_active() {
        let mut b = upstream_budgets();
        b[5].window = Some((CronSchedule::parse("* * * * *").unwrap(), hour()));
        for r in ALL {
            assert_eq!(allowed_by_reason(&b, 100, r, clock()), 0);
        }
    }

    // Upstream: It("should ignore reason-defined budgets when inactive").
    #[test]
    fn inactive_reason_budgets_are_ignored() {
        let mut b = upstream_budgets();
        for i in [3, 4] {
            b[i].window = Some((CronSchedule::parse("0 3 * * *").unwrap(), hour()));
        }
        for r in ALL {
            assert_eq!(allowed_by_reason(&b, 100, r, clock()), 10);
        }
    }

    // Upstream: It("should get the minimum budget for each reason").
    #[test]
    fn minimum_budget_per_reason() {
        let mut b = upstream_budgets();
        b.push(budget("4", &[Reason::Empty], Some("* * * * *"), hour()));
        assert_eq!(allowed_by_reason(&b, 100, Reason::Empty, clock()), 4);
        assert_eq!(allowed_by_reason(&b, 100, Reason::Drifted, clock()), 5);
        // The budget without reasons (10) undercuts the Underutilized one (15).
        assert_eq!(
            allowed_by_reason(&b, 100, Reason::Underutilized, clock()),
            10
        );
    }

    // Upstream: It("should return MaxInt32 for all reasons when there are no active budgets").
    #[test]
    fn unbounded_without_active_budgets() {
        let mut b = upstream_budgets();
        for x in &mut b {
            x.window = Some((CronSchedule::parse("0 3 * * *").unwrap(), hour()));
        }
        for r in ALL {
            assert_eq!(allowed_by_reason(&b, 100, r, clock()), u32::MAX);
        }
    }

    // Upstream: It("should return the int value when a budget is active") and It("should
    // return the string value when a budget is active"): "10" → 10, "100%" of 100 → 100.
    #[test]
    fn count_and_percentage_values() {
        let b = upstream_budgets();
        assert_eq!(b[0].allowed(100, clock()), 10);
        assert_eq!(b[2].allowed(100, clock()), 100);
    }

    // Upstream: the rounding comment in nodepool.go `GetAllowedDisruptions` ("Take the case
    // with 5% disruptions, but 10 nodes. Karpenter will opt to allow 1 node").
    #[test]
    fn percentages_round_up() {
        let b = budget("5%", &[], None, SimTime::ZERO);
        assert_eq!(b.allowed(10, SimTime::ZERO), 1);
        let ten = Budget::default_budget();
        assert_eq!(ten.allowed(11, SimTime::ZERO), 2);
        assert_eq!(ten.allowed(0, SimTime::ZERO), 0);
    }

    // Upstream: It("should return zero values if a nodes value is invalid") — rejected at
    // parse time here, with a message.
    #[test]
    fn invalid_nodes_and_schedules_are_rejected() {
        assert!(BudgetNodes::parse("1000a%").is_err());
        assert!(BudgetNodes::parse("101%").is_err());
        assert!(CronSchedule::parse("@wrongly").is_err());
        assert!(CronSchedule::parse("30 6 * * SUN").is_err());
        assert!(CronSchedule::parse("61 * * * *").is_err());
    }

    // Upstream: It("should return that a schedule is active when the duration is longer than
    // the recurrence") and It("...inactive when the schedule hit is after the duration").
    #[test]
    fn windows_open_after_each_hit() {
        let daily_48h = budget("0", &[], Some("@daily"), SimTime::from_secs(48 * 3600));
        assert!(daily_48h.is_active(SimTime::from_secs(3 * 86_400)));
        let nine = budget("0", &[], Some("0 9 * * *"), hour());
        assert!(!nine.is_active(SimTime::from_secs(8 * 3600)));
        assert!(nine.is_active(SimTime::from_secs(9 * 3600)));
        assert!(nine.is_active(SimTime::from_secs(9 * 3600 + 3599)));
        // Exactly `duration` after the hit the next hit is tomorrow's: closed (`!After`).
        assert!(!nine.is_active(SimTime::from_secs(10 * 3600)));
        assert!(!nine.is_active(SimTime::from_secs(86_400 + 8 * 3600)));
        assert!(nine.is_active(SimTime::from_secs(86_400 + 9 * 3600 + 60)));
    }
}
