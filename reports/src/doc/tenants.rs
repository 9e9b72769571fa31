//! The "Tenants" section, shown when some API's traffic is a sum of tenants: each tenant's
//! requests, refusals (429s of its own limits among them), latency, cost share and SLO, and each
//! API's tenants' p99 over time — where a noisy neighbour shows.

use contract::results::{Metric, Results};

use crate::chart::{format_number, Axis, Chart, HLine, Plot, Series, Style, XyChart};
use crate::palette::{nth_colour, ALERT};

use super::timeline::{line, series_points};
use super::{ms, pct, slug, table, time_unit, Block};

/// Whether any API of the run has tenants.
pub(super) fn any_tenants(r: &Results) -> bool {
    r.apis.iter().any(|a| !a.tenants.is_empty())
}

/// The section's blocks; call only when [`any_tenants`].
pub(super) fn tenants(r: &Results, prefix: &str) -> Vec<Block> {
    let rows = r
        .apis
        .iter()
        .flat_map(|a| {
            a.tenants.iter().map(move |t| {
                let requests = t.requests.max(1) as f64;
                let slo = match &t.slo {
                    None => "–".to_string(),
                    Some(v) if v.met => "met".to_string(),
                    Some(_) => "MISSED".to_string(),
                };
                vec![
                    a.name.clone(),
                    t.name.clone(),
                    t.requests.to_string(),
                    pct(t.rejected as f64 / requests),
                    t.rate_limited.to_string(),
                    pct(t.timed_out as f64 / requests),
                    ms(t.latency_ms.p50),
                    ms(t.latency_ms.p99),
                    format_number(t.busy_worker_s),
                    // A tenant's share of a short run is often under a cent.
                    format!("{:.4}", t.cost_usd),
                    slo,
                ]
            })
        })
        .collect();
    let mut blocks = vec![
        table(
            &[
                "API",
                "tenant",
                "requests",
                "refused",
                "429s",
                "timed out",
                "p50 ms",
                "p99 ms",
                "busy worker-s",
                "cost USD",
                "own SLO",
            ],
            &[
                false, false, true, true, true, true, true, true, true, true, false,
            ],
            rows,
        ),
        Block::Para(
            "Every request belongs to one tenant, so each column adds up to its API's figure. Refused counts 503s (a full replica, no replica) and the 429s of the tenant's own rate or concurrency limit, which are also shown apart. A tenant's cost is its API's cost shared by busy worker-seconds — the service time of the tenant's requests that started — so a tenant pays for the workers it kept busy, not for its request count. A tenant's own SLO is judged on its requests over the whole run.".into(),
        ),
    ];
    let (div, x_label) = time_unit(r.simulated_s());
    for a in r.apis.iter().filter(|a| !a.tenants.is_empty()) {
        let series: Vec<Series> = a
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut s = line(t.name.clone(), nth_colour(i), Style::Line, Axis::Left);
                let subject = format!("{}/{}", a.name, t.name);
                if let Some(seg) = series_points(r, Metric::LatencyP99Ms, &subject, div) {
                    s.segments = seg;
                }
                s
            })
            .collect();
        let hlines = a
            .slo
            .checks
            .iter()
            .find(|c| c.objective == "latency_p99_ms")
            .map(|c| HLine {
                name: format!("API's SLO p99 limit ({} ms)", format_number(c.limit)),
                color: ALERT,
                y: c.limit,
            })
            .into_iter()
            .collect();
        blocks.push(Block::Chart(Chart {
            id: format!("{prefix}tenants-p99-{}", slug(&a.name)),
            title: format!("{}: p99 latency per timeline step, by tenant", a.name),
            plot: Plot::Xy(XyChart {
                x_label: x_label.into(),
                y_label: "p99 latency (ms)".into(),
                y2_label: None,
                log_x: false,
                log_y: false,
                series,
                events: vec![],
                markers: vec![],
                hlines,
            }),
        }));
    }
    blocks
}
