//! The "Summary and SLO verdict" section of a run: the verdict, the headline figures and the
//! per-API and per-node-group tables.

use contract::results::Results;

use crate::Run;

use super::{checks_table, missed_sign, ms, objective_value, pct, span, table, usd, Block};

fn mean_replicas(r: &Results, api: &contract::results::ApiResults) -> f64 {
    api.replica_seconds / r.simulated_s().max(1e-9)
}

pub(super) fn summary(run: &Run) -> Vec<Block> {
    let r = &run.results;
    let mut blocks = vec![Block::Para(format!(
        "Scenario \"{}\" from {}: {} simulated{}, seed {}, simctl {}. {} API(s) on {} node group(s); total cost {} USD.",
        r.scenario_name,
        run.file_name,
        span(r.simulated_s()),
        match r.truncated_at_s {
            Some(_) => format!(" (interrupted; planned {})", span(r.duration_s)),
            None => String::new(),
        },
        r.seed,
        r.simctl_version,
        r.apis.len(),
        r.node_groups.len(),
        usd(r.cost_usd_total),
    ))];
    let missed: Vec<String> = r
        .apis
        .iter()
        .flat_map(|a| {
            a.slo.checks.iter().filter(|c| !c.met).map(move |c| {
                format!(
                    "{} {} = {} {} {}",
                    a.name,
                    c.objective,
                    objective_value(&c.objective, c.actual),
                    missed_sign(&c.objective),
                    objective_value(&c.objective, c.limit)
                )
            })
        })
        .collect();
    let checks: usize = r.apis.iter().map(|a| a.slo.checks.len()).sum();
    blocks.push(if checks == 0 {
        Block::Verdict {
            ok: true,
            text: "No SLO objectives set.".into(),
        }
    } else if missed.is_empty() {
        Block::Verdict {
            ok: true,
            text: format!("SLO met: all {checks} objective(s) held."),
        }
    } else {
        Block::Verdict {
            ok: false,
            text: format!("SLO missed: {}.", missed.join("; ")),
        }
    });
    let rows = r
        .apis
        .iter()
        .map(|a| {
            let n = a.requests.max(1) as f64;
            vec![
                a.name.clone(),
                a.requests.to_string(),
                a.completed.to_string(),
                pct(a.rejected as f64 / n),
                pct(a.timed_out as f64 / n),
                pct(a.interrupted as f64 / n),
                ms(a.latency_ms.p50),
                ms(a.latency_ms.p99),
                format!("{:.1}", mean_replicas(r, a)),
                a.cold_starts.to_string(),
                usd(a.cost_usd),
                if a.slo.checks.is_empty() {
                    "–".into()
                } else if a.slo.met {
                    "met".into()
                } else {
                    "MISSED".into()
                },
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "API",
            "requests",
            "completed",
            "rejected",
            "timed out",
            "interrupted",
            "p50 ms",
            "p99 ms",
            "mean replicas",
            "cold starts",
            "cost USD",
            "SLO",
        ],
        &[
            false, true, true, true, true, true, true, true, true, true, true, false,
        ],
        rows,
    ));
    blocks.extend(checks_table(
        "API",
        r.apis
            .iter()
            .map(|a| (a.name.clone(), a.slo.checks.as_slice())),
    ));
    blocks
}
