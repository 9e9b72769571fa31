//! Successive halving's plan and the order it keeps candidates in, and the worst objective
//! ratio a candidate is ranked and reported by.

use super::judge::SeedOutcome;

/// (rung size, seeds per candidate) for successive halving with η = 3 over `seeds`.
pub(super) fn halving_plan(candidates: u64, seeds: u64) -> Vec<(u64, u64)> {
    let mut plan = Vec::new();
    let mut n = candidates;
    let mut budget = 1u64.min(seeds);
    loop {
        plan.push((n, budget));
        if budget >= seeds {
            break;
        }
        n = n.div_ceil(3).max(1);
        budget = (budget * 3).min(seeds);
    }
    plan
}

/// Ordering of candidates while halving: qualifying ones by cost, then the others by how far
/// their worst objective is over its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rank(pub(super) u8, f64);

impl Eq for Rank {}
impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0).then(self.1.total_cmp(&other.1))
    }
}

pub(super) fn rank(outcomes: &[SeedOutcome]) -> Rank {
    let meets = outcomes
        .iter()
        .flat_map(|o| o.apis.iter().flat_map(|a| a.checks.iter()))
        .all(|c| c.met);
    let cost = outcomes.iter().map(|o| o.cost_usd).sum::<f64>() / outcomes.len().max(1) as f64;
    if meets {
        Rank(0, cost)
    } else {
        Rank(1, worst_ratio(outcomes))
    }
}

/// Worst `actual / limit` over all objectives (a zero limit counts as infinitely missed when
/// exceeded). Serialized as a number: a JSON-safe large value stands in for infinity.
pub(super) fn worst_ratio(outcomes: &[SeedOutcome]) -> f64 {
    let mut worst: f64 = 0.0;
    for c in outcomes
        .iter()
        .flat_map(|o| o.apis.iter().flat_map(|a| a.checks.iter()))
    {
        worst = worst.max(c.pressure());
    }
    worst
}
