//! Why an SLO was missed: at the end of a run, each API that missed its objectives gets the
//! intervals where its offending requests (rejected, timed out, or slower than a missed latency
//! limit) fell, each with the cause the engine saw then — no ready replica after a spot reclaim,
//! a scale-up waiting for nodes or pod start-up, a burst at `max_replicas`, a cold start from
//! zero, or a burst the autoscaler had not caught up with.
//!
//! The timeline room records one [`StepFacts`] per API and step (never written to the results)
//! and the spot market one [`Reclaim`] per node it takes back; [`attribute`] is a pure function
//! of those, so it is deterministic and tested on hand-built steps.

use crate::results::{MissCause, MissInterval};

/// Bad steps this close (in steps) are one interval.
const MERGE_GAP_STEPS: usize = 2;
/// Intervals reported per API; smaller ones (and any under 1 % of the offending requests) are
/// folded into one entry.
const MAX_INTERVALS: usize = 5;
/// A reclaim counts for a shortage if it came at most this long before the step (notice, drain,
/// node boot and pod start-up), seconds.
const RECLAIM_WINDOW_S: f64 = 1800.0;
/// The two-minute notice plus a margin: a reclaim this long before the last healthy step still
/// explains what follows, seconds.
const NOTICE_S: f64 = 180.0;

/// What one API looked like over one timeline step (engine-internal).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StepFacts {
    /// End of the step, seconds.
    pub t_end_s: f64,
    /// Length of the step, seconds.
    pub step_s: f64,
    /// Arrivals in the step.
    pub arrivals: u64,
    /// Refused in the step.
    pub rejected: u64,
    /// Refused because no replica was ready.
    pub rejected_no_replica: u64,
    /// Given up in the step.
    pub timed_out: u64,
    /// Completions over each latency limit: p50, p99, p999 (0 where the objective is unset).
    pub slow: [u64; 3],
    /// Ready replicas at the end of the step.
    pub ready: u32,
    /// Replicas asked for at the end of the step.
    pub desired: u32,
    /// Replicas waiting for a node at the end of the step.
    pub pending: u32,
}

/// A spot reclaim notice that reached a node, with the APIs that had replicas on it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reclaim {
    /// Notice time, seconds.
    pub t_s: f64,
    /// The node's group name.
    pub group: String,
    /// APIs (by index) with a replica on the node.
    pub apis: Vec<usize>,
}

/// Which offending requests count: those of the objectives that were missed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Counting {
    /// The rejection-rate objective was missed.
    pub rejected: bool,
    /// The timeout-rate objective was missed.
    pub timed_out: bool,
    /// A latency objective was missed: index into [`StepFacts::slow`].
    pub slow: Option<usize>,
}

/// What [`attribute`] needs to know about the API besides its steps.
#[derive(Debug, Clone)]
pub(crate) struct ApiContext<'a> {
    /// Its index (to find the reclaims of its nodes).
    pub index: usize,
    /// `max_replicas`.
    pub max_replicas: u32,
    /// Its policy is `fixed`: no autoscaler will add replicas.
    pub fixed: bool,
    /// It may run on a time-sliced or MPS GPU.
    pub shared_gpu: bool,
    /// Scheduling to readiness, seconds.
    pub startup_s: f64,
    /// Steps ending before this are out of the SLO's judgement, seconds.
    pub warmup_s: f64,
    /// What to count.
    pub counting: Counting,
    /// Every reclaim notice of the run.
    pub reclaims: &'a [Reclaim],
    /// Every failed node launch of the run: (seconds, group name).
    pub failed_launches: &'a [(f64, String)],
    /// Names of the node groups the API may run on.
    pub groups: Vec<String>,
}

impl StepFacts {
    fn bad(&self, c: Counting) -> (u64, u64, u64) {
        (
            if c.rejected { self.rejected } else { 0 },
            if c.timed_out { self.timed_out } else { 0 },
            c.slow.map_or(0, |k| self.slow[k]),
        )
    }

    fn bad_total(&self, c: Counting) -> u64 {
        let (r, t, s) = self.bad(c);
        r + t + s
    }
}

const CAUSES: [MissCause; 8] = [
    MissCause::SpotReclaim,
    MissCause::NoReadyReplica,
    MissCause::ColdStart,
    MissCause::ScaleUpNodeBoot,
    MissCause::ScaleUpPodStart,
    MissCause::AtMaxReplicas,
    MissCause::Burst,
    MissCause::SharedGpu,
];

fn cause_index(c: MissCause) -> usize {
    CAUSES.iter().position(|x| *x == c).unwrap_or(0)
}

/// The reclaims of nodes that held the API's replicas, in `[from_s, to_s]`.
fn reclaims_between<'a>(
    ctx: &'a ApiContext<'_>,
    from_s: f64,
    to_s: f64,
) -> impl Iterator<Item = &'a Reclaim> + 'a {
    let api = ctx.index;
    // Reclaims are logged in time order.
    let first = ctx.reclaims.partition_point(|r| r.t_s < from_s);
    ctx.reclaims[first..]
        .iter()
        .take_while(move |r| r.t_s <= to_s)
        .filter(move |r| r.apis.contains(&api))
}

/// Whether the API had all it asked for at the end of a step.
fn healthy(p: &StepFacts) -> bool {
    p.ready >= p.desired && p.pending == 0 && p.rejected_no_replica == 0 && p.ready > 0
}

/// Why step `i` (which has offending requests) went wrong; `healthy_s` is the end of the last
/// earlier step at which the API had all it asked for. The replica counts are sampled at the
/// ends of steps, so the step is judged by the worse of its two ends: fewest ready, most desired
/// and pending.
fn classify(steps: &[StepFacts], i: usize, healthy_s: f64, ctx: &ApiContext<'_>) -> MissCause {
    let mut s = steps[i];
    if i > 0 {
        let p = &steps[i - 1];
        s.ready = s.ready.min(p.ready);
        s.desired = s.desired.max(p.desired);
        s.pending = s.pending.max(p.pending);
    }
    let s = &s;
    let zero_ready = s.rejected_no_replica > 0 || s.ready == 0;
    // The shortage started after the last step at which the API had all it asked for.
    let window_from = (healthy_s - NOTICE_S).max(s.t_end_s - RECLAIM_WINDOW_S);
    let reclaimed = reclaims_between(ctx, window_from, s.t_end_s)
        .next()
        .is_some();
    let short = zero_ready || s.pending > 0 || s.desired > s.ready;
    if short && reclaimed {
        return MissCause::SpotReclaim;
    }
    if zero_ready {
        // A cold start when the stretch without ready replicas began scaled to zero.
        let mut j = i;
        while j > 0 && steps[j - 1].ready == 0 {
            j -= 1;
        }
        let from_zero = steps[j.saturating_sub(1)..=i]
            .iter()
            .any(|p| p.desired == 0);
        return if from_zero {
            MissCause::ColdStart
        } else {
            MissCause::NoReadyReplica
        };
    }
    let only_slow = s.rejected == 0 && s.timed_out == 0;
    if s.pending > 0 {
        MissCause::ScaleUpNodeBoot
    } else if s.desired > s.ready {
        MissCause::ScaleUpPodStart
    } else if only_slow && ctx.shared_gpu {
        MissCause::SharedGpu
    } else if ctx.fixed || s.ready >= ctx.max_replicas {
        MissCause::AtMaxReplicas
    } else {
        MissCause::Burst
    }
}

/// One interval under construction: its steps (indices) and their causes.
struct Group {
    steps: Vec<(usize, MissCause)>,
}

/// `h:mm:ss`.
fn clock(t_s: f64) -> String {
    let t = t_s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}

/// A request rate: whole numbers from 10 req/s, one decimal below.
fn rate(rps: f64) -> String {
    if rps >= 10.0 {
        format!("{rps:.0}")
    } else {
        format!("{rps:.1}")
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The sentence of an interval of `cause` over steps `idx`.
fn detail(steps: &[StepFacts], idx: &[usize], cause: MissCause, ctx: &ApiContext<'_>) -> String {
    let of = |f: fn(&StepFacts) -> u32| -> Vec<u32> { idx.iter().map(|&i| f(&steps[i])).collect() };
    let min_ready = of(|s| s.ready).into_iter().min().unwrap_or(0);
    let max_desired = of(|s| s.desired).into_iter().max().unwrap_or(0);
    let max_pending = of(|s| s.pending).into_iter().max().unwrap_or(0);
    let peak_rps = idx
        .iter()
        .map(|&i| steps[i].arrivals as f64 / steps[i].step_s.max(1e-9))
        .fold(0.0, f64::max);
    let first = steps[idx[0]];
    let from_s = first.t_end_s - first.step_s;
    let to_s = steps[idx[idx.len() - 1]].t_end_s;
    match cause {
        MissCause::SpotReclaim => {
            let found: Vec<&Reclaim> =
                reclaims_between(ctx, from_s - RECLAIM_WINDOW_S, to_s).collect();
            // The reclaims nearest the interval: those after the last healthy moment.
            let last = found.last().map_or(from_s, |r| r.t_s);
            let burst: Vec<&&Reclaim> = found.iter().filter(|r| last - r.t_s <= 600.0).collect();
            let nodes = burst.len() as u32;
            let mut groups: Vec<&str> = burst.iter().map(|r| r.group.as_str()).collect();
            groups.dedup();
            let at = burst.first().map_or(last, |r| r.t_s);
            let mut text = format!(
                "{} after a spot reclaim of {} {} at {}",
                plural(min_ready, "ready replica", "ready replicas"),
                nodes,
                if nodes == 1 {
                    format!("{} node", groups.join("/"))
                } else {
                    format!("{} nodes", groups.join("/"))
                },
                clock(at)
            );
            if max_pending > 0 {
                text.push_str(&format!(
                    "; {} waiting for a node to boot",
                    plural(max_pending, "replacement", "replacements")
                ));
            }
            text
        }
        MissCause::NoReadyReplica => format!(
            "0 ready replicas of {max_desired} desired (pods evicted, killed or not started)"
        ),
        MissCause::ColdStart => format!(
            "cold start from zero replicas: the first replica needs {:.0} s to start",
            ctx.startup_s
        ),
        MissCause::ScaleUpNodeBoot => {
            let mut text = format!(
                "traffic up to {} req/s; scale-up to {max_desired} replicas with {} waiting for a node to boot ({min_ready} ready)",
                rate(peak_rps),
                plural(max_pending, "replica", "replicas")
            );
            let failed = ctx
                .failed_launches
                .iter()
                .find(|(t, g)| *t >= from_s && *t <= to_s && ctx.groups.contains(g));
            if let Some((t, g)) = failed {
                text.push_str(&format!(
                    "; a {g} launch failed at {} (no capacity), so the cluster autoscaler backed off and fell back",
                    clock(*t)
                ));
            }
            text
        }
        MissCause::ScaleUpPodStart => format!(
            "traffic up to {} req/s; scale-up to {max_desired} replicas, pods starting (startup {:.0} s; {min_ready} ready)",
            rate(peak_rps),
            ctx.startup_s
        ),
        MissCause::AtMaxReplicas if ctx.fixed => format!(
            "burst above capacity: traffic up to {} req/s on a fixed {}",
            rate(peak_rps),
            plural(min_ready, "replica", "replicas")
        ),
        MissCause::AtMaxReplicas => format!(
            "burst above capacity: traffic up to {} req/s at max_replicas = {}",
            rate(peak_rps),
            ctx.max_replicas
        ),
        MissCause::SharedGpu => format!(
            "slow, not refused, on a shared GPU: service times stretch with its busy sharers ({} ready, traffic up to {} req/s)",
            plural(min_ready, "replica", "replicas"),
            rate(peak_rps)
        ),
        MissCause::Burst => format!(
            "traffic up to {} req/s filled the queues of {} before the autoscaler scaled up",
            rate(peak_rps),
            plural(min_ready, "ready replica", "ready replicas")
        ),
    }
}

/// The cause carrying most offending requests among `steps` (ties: the first in [`CAUSES`]).
fn main_cause(steps: &[StepFacts], members: &[(usize, MissCause)], c: Counting) -> MissCause {
    let mut weight = [0u64; CAUSES.len()];
    for &(i, cause) in members {
        weight[cause_index(cause)] += steps[i].bad_total(c);
    }
    let best = (0..CAUSES.len())
        .max_by(|&a, &b| weight[a].cmp(&weight[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    CAUSES[best]
}

/// The intervals where an API's offending requests fell, largest share first; shares sum to 1.
/// Empty when nothing counted (no offending request after the warmup).
pub(crate) fn attribute(steps: &[StepFacts], ctx: &ApiContext<'_>) -> Vec<MissInterval> {
    let c = ctx.counting;
    let mut groups: Vec<Group> = Vec::new();
    let mut last_bad: Option<usize> = None;
    // End of the last step before each step at which the API had all it asked for.
    let mut healthy_s = 0.0;
    for i in 0..steps.len() {
        let s = &steps[i];
        let before = healthy_s;
        if healthy(s) {
            healthy_s = s.t_end_s;
        }
        if s.t_end_s <= ctx.warmup_s || s.bad_total(c) == 0 {
            continue;
        }
        let cause = classify(steps, i, before, ctx);
        match (last_bad, groups.last_mut()) {
            (Some(prev), Some(g)) if i - prev <= MERGE_GAP_STEPS + 1 => g.steps.push((i, cause)),
            _ => groups.push(Group {
                steps: vec![(i, cause)],
            }),
        }
        last_bad = Some(i);
    }
    let total: u64 = groups
        .iter()
        .flat_map(|g| &g.steps)
        .map(|&(i, _)| steps[i].bad_total(c))
        .sum();
    if total == 0 {
        return Vec::new();
    }
    let weight = |g: &Group| -> u64 { g.steps.iter().map(|&(i, _)| steps[i].bad_total(c)).sum() };
    // Largest first (ties: earliest), the tail folded into one entry.
    groups.sort_by(|a, b| {
        weight(b)
            .cmp(&weight(a))
            .then(a.steps[0].0.cmp(&b.steps[0].0))
    });
    // Intervals under 1 % of the offending requests are folded in with the tail.
    let big = groups
        .iter()
        .take_while(|g| weight(g) * 100 >= total)
        .count()
        .max(1);
    let keep = if groups.len() > MAX_INTERVALS || big < groups.len() {
        big.min(MAX_INTERVALS - 1)
    } else {
        groups.len()
    };
    let folded = if keep < groups.len() {
        let rest = groups.split_off(keep);
        let count = rest.len();
        let mut members: Vec<(usize, MissCause)> = rest.into_iter().flat_map(|g| g.steps).collect();
        members.sort_by_key(|&(i, _)| i);
        Some((count, members))
    } else {
        None
    };
    let interval = |members: &[(usize, MissCause)], text: Option<String>| {
        let cause = main_cause(steps, members, c);
        let idx: Vec<usize> = members.iter().map(|&(i, _)| i).collect();
        let (mut rejected, mut timed_out, mut slow) = (0, 0, 0);
        for &i in &idx {
            let (r, t, s) = steps[i].bad(c);
            rejected += r;
            timed_out += t;
            slow += s;
        }
        let first = steps[idx[0]];
        let main: Vec<usize> = members
            .iter()
            .filter(|(_, k)| *k == cause)
            .map(|&(i, _)| i)
            .collect();
        MissInterval {
            from_s: first.t_end_s - first.step_s,
            to_s: steps[idx[idx.len() - 1]].t_end_s,
            share: (rejected + timed_out + slow) as f64 / total as f64,
            rejected,
            timed_out,
            slow,
            cause,
            detail: match text {
                Some(t) => format!("{t}; mostly {}", detail(steps, &main, cause, ctx)),
                None => detail(steps, &main, cause, ctx),
            },
        }
    };
    let mut out: Vec<MissInterval> = groups.iter().map(|g| interval(&g.steps, None)).collect();
    if let Some((count, members)) = folded {
        out.push(interval(
            &members,
            Some(format!(
                "{count} shorter interval{} across the run",
                if count == 1 { "" } else { "s" }
            )),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(t: f64, rejected: u64, ready: u32, desired: u32, pending: u32) -> StepFacts {
        StepFacts {
            t_end_s: t,
            step_s: 10.0,
            arrivals: 100,
            rejected,
            rejected_no_replica: if ready == 0 { rejected } else { 0 },
            ready,
            desired,
            pending,
            ..StepFacts::default()
        }
    }

    fn ctx(reclaims: &[Reclaim]) -> ApiContext<'_> {
        ApiContext {
            index: 0,
            max_replicas: 6,
            fixed: false,
            shared_gpu: false,
            startup_s: 90.0,
            warmup_s: 0.0,
            counting: Counting {
                rejected: true,
                ..Counting::default()
            },
            reclaims,
            failed_launches: &[],
            groups: vec!["spot".into()],
        }
    }

    /// Healthy steps at 2 replicas from `from` to `to` (exclusive), every 10 s.
    fn healthy(from: u32, to: u32) -> Vec<StepFacts> {
        (from..to)
            .map(|k| step(f64::from(k) * 10.0, 0, 2, 2, 0))
            .collect()
    }

    #[test]
    fn a_reclaim_that_empties_the_api_is_named_and_takes_its_share() {
        let reclaims = [
            Reclaim {
                t_s: 300.0,
                group: "gpu-spot".into(),
                apis: vec![0],
            },
            Reclaim {
                t_s: 300.0,
                group: "gpu-spot".into(),
                apis: vec![0],
            },
        ];
        let mut steps = healthy(1, 43);
        // 430–480 s: no ready replica, replacements pending.
        steps.extend((43..48).map(|k| step(f64::from(k) * 10.0, 60, 0, 2, 2)));
        steps.extend(healthy(48, 60));
        // 600–620 s: a scale-up waiting for a node, fewer rejections.
        steps.extend((60..62).map(|k| step(f64::from(k) * 10.0, 50, 2, 4, 2)));
        steps.extend(healthy(62, 70));
        let misses = attribute(&steps, &ctx(&reclaims));
        assert_eq!(misses.len(), 2, "{misses:?}");
        assert_eq!(misses[0].cause, MissCause::SpotReclaim);
        assert_eq!(misses[0].rejected, 300);
        assert!((misses[0].share - 0.75).abs() < 1e-9);
        assert_eq!((misses[0].from_s, misses[0].to_s), (420.0, 470.0));
        assert!(
            misses[0].detail.starts_with(
                "0 ready replicas after a spot reclaim of 2 gpu-spot nodes at 0:05:00"
            ),
            "{}",
            misses[0].detail
        );
        assert_eq!(misses[1].cause, MissCause::ScaleUpNodeBoot);
        assert!((misses[1].share - 0.25).abs() < 1e-9);
        let total: f64 = misses.iter().map(|m| m.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn reclaims_of_other_apis_or_long_ago_do_not_count() {
        let reclaims = [Reclaim {
            t_s: 10.0,
            group: "spot".into(),
            apis: vec![1],
        }];
        let mut steps = healthy(1, 10);
        steps.push(step(100.0, 20, 0, 2, 1));
        let misses = attribute(&steps, &ctx(&reclaims));
        assert_eq!(misses[0].cause, MissCause::NoReadyReplica);
        let far = [Reclaim {
            t_s: 5.0,
            group: "spot".into(),
            apis: vec![0],
        }];
        // Healthy long after the reclaim: a later shortage is not its doing.
        let mut steps = healthy(1, 300);
        steps.push(step(3010.0, 20, 2, 4, 2));
        assert_eq!(
            attribute(&steps, &ctx(&far))[0].cause,
            MissCause::ScaleUpNodeBoot
        );
    }

    #[test]
    fn causes_without_reclaims() {
        let c = ctx(&[]);
        // Cold start: nothing desired, then the first replica starting.
        let steps = vec![step(10.0, 0, 0, 0, 0), step(20.0, 30, 0, 1, 0)];
        assert_eq!(attribute(&steps, &c)[0].cause, MissCause::ColdStart);
        // Pods starting (no node needed).
        let mut steps = healthy(1, 5);
        steps.push(step(50.0, 30, 2, 4, 0));
        let m = attribute(&steps, &c);
        assert_eq!(m[0].cause, MissCause::ScaleUpPodStart);
        assert!(m[0].detail.contains("startup 90 s"), "{}", m[0].detail);
        // At max replicas.
        let mut steps: Vec<StepFacts> = (1..5)
            .map(|k| step(f64::from(k) * 10.0, 0, 6, 6, 0))
            .collect();
        steps.push(step(50.0, 30, 6, 6, 0));
        let m = attribute(&steps, &c);
        assert_eq!(m[0].cause, MissCause::AtMaxReplicas);
        assert!(m[0].detail.contains("max_replicas = 6"), "{}", m[0].detail);
        // A burst below max before any scale-up.
        let mut steps = healthy(1, 5);
        steps.push(step(50.0, 30, 2, 2, 0));
        assert_eq!(attribute(&steps, &c)[0].cause, MissCause::Burst);
        // The same burst on a fixed policy is above capacity: nothing will scale.
        let fixed = ApiContext {
            fixed: true,
            ..c.clone()
        };
        let m = attribute(&steps, &fixed);
        assert_eq!(m[0].cause, MissCause::AtMaxReplicas);
        assert_eq!(
            m[0].detail,
            "burst above capacity: traffic up to 10 req/s on a fixed 2 replicas"
        );
        // Only slow requests on a shared GPU: contention, not capacity.
        let mut steps = healthy(1, 5);
        let mut slow = step(50.0, 0, 2, 2, 0);
        slow.slow = [0, 12, 0];
        steps.push(slow);
        let shared = ApiContext {
            fixed: true,
            shared_gpu: true,
            counting: Counting {
                slow: Some(1),
                ..Counting::default()
            },
            ..c
        };
        assert_eq!(attribute(&steps, &shared)[0].cause, MissCause::SharedGpu);
    }

    #[test]
    fn warmup_steps_are_left_out_and_only_missed_objectives_count() {
        let mut c = ctx(&[]);
        let mut steps = vec![step(10.0, 50, 0, 1, 0), step(20.0, 50, 0, 1, 0)];
        steps.extend(healthy(3, 10));
        steps.push(step(100.0, 10, 2, 2, 0));
        assert_eq!(attribute(&steps, &c).len(), 2);
        c.warmup_s = 30.0;
        let m = attribute(&steps, &c);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].share, 1.0);
        // Only the timeout objective missed: rejections do not count.
        c.counting = Counting {
            timed_out: true,
            ..Counting::default()
        };
        assert!(attribute(&steps, &c).is_empty());
        steps[9].timed_out = 4;
        steps[9].slow = [0, 7, 0];
        c.counting.slow = Some(1);
        let m = attribute(&steps, &c);
        assert_eq!((m[0].rejected, m[0].timed_out, m[0].slow), (0, 4, 7));
    }

    #[test]
    fn many_intervals_fold_into_one_entry_and_shares_sum_to_one() {
        let c = ctx(&[]);
        let mut steps = Vec::new();
        for k in 1..=100u32 {
            // A bad step every 10 steps, of growing size.
            let bad = if k % 10 == 0 { u64::from(k) } else { 0 };
            steps.push(step(f64::from(k) * 10.0, bad, 2, 2, 0));
        }
        let m = attribute(&steps, &c);
        assert_eq!(m.len(), MAX_INTERVALS);
        assert!(m[..4].windows(2).all(|w| w[0].share >= w[1].share));
        // A sliver under 1 % joins the tail even when there are few intervals.
        let mut few = healthy(1, 40);
        few[9].rejected = 1000;
        few[29].rejected = 5;
        let f = attribute(&few, &c);
        assert_eq!(f.len(), 2);
        assert!(
            f[1].detail.starts_with("1 shorter interval across the run"),
            "{}",
            f[1].detail
        );
        assert!(
            m[4].detail
                .starts_with("6 shorter intervals across the run; mostly"),
            "{}",
            m[4].detail
        );
        let total: f64 = m.iter().map(|x| x.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(attribute(&steps, &c), m, "deterministic");
    }
}
