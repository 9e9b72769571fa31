//! The "Routers and pipelines" section, shown when the run has `[[routers]]` or
//! `[[pipelines]]`: how each router split its requests (per weight step for a canary ramp, and
//! the shadow's copies), and for each pipeline its end-to-end figures and where the time went,
//! stage by stage, with the failures each stage caused.

use contract::results::Results;

use super::{checks_table, ms, pct, table, Block};

/// Whether the run has a router or a pipeline.
pub(super) fn any_routing(r: &Results) -> bool {
    !r.routers.is_empty() || !r.pipelines.is_empty()
}

/// The section's blocks; call only when [`any_routing`].
pub(super) fn routing(r: &Results) -> Vec<Block> {
    let mut blocks = Vec::new();
    if !r.routers.is_empty() {
        let mut rows = Vec::new();
        for router in &r.routers {
            for route in &router.routes {
                let api = r.apis.iter().find(|a| a.name == route.api);
                rows.push(vec![
                    router.name.clone(),
                    route.api.clone(),
                    "route".into(),
                    route.requests.to_string(),
                    pct(route.share),
                    api.map_or("–".into(), |a| ms(a.latency_ms.p99)),
                ]);
            }
            if let Some(shadow) = &router.shadow {
                let api = r.apis.iter().find(|a| a.name == shadow.api);
                rows.push(vec![
                    router.name.clone(),
                    shadow.api.clone(),
                    "shadow".into(),
                    shadow.requests.to_string(),
                    pct(shadow.share),
                    api.map_or("–".into(), |a| ms(a.latency_ms.p99)),
                ]);
            }
        }
        blocks.push(table(
            &["router", "API", "as", "requests", "share", "API p99 ms"],
            &[false, false, false, true, true, true],
            rows,
        ));
        let mut steps = Vec::new();
        for router in r.routers.iter().filter(|x| x.steps.len() > 1) {
            for step in &router.steps {
                steps.push(vec![
                    router.name.clone(),
                    format!("{:.0} s", step.from_s),
                    step.weights
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(" / "),
                    step.requests
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(" / "),
                ]);
            }
        }
        if !steps.is_empty() {
            blocks.push(table(
                &["router", "from", "weights", "requests"],
                &[false, true, false, false],
                steps,
            ));
        }
        blocks.push(Block::Para(
            "A router draws each request's API at random by weight (Cortex's TrafficSplitter, which configures Istio's weighted routes; the non-shadow weights sum to 100), or by the class drawn for the request. The shadow receives a copy of its weight's percentage of the requests, as Istio's mirror does: its answers are discarded and count in no caller's latency, but it is loaded, scales and costs like any API. Weights and requests of a ramp are listed in the router's API order, the shadow included.".into(),
        ));
    }
    for p in &r.pipelines {
        let requests = p.requests.max(1) as f64;
        blocks.push(Block::Para(format!(
            "Pipeline {}: {} requests, {} answered; end to end p50 {} ms, p99 {} ms, mean {} ms; failed {} (rejected {}, timed out {}, interrupted {}); SLO {}.",
            p.name,
            p.requests,
            p.completed,
            ms(p.latency_ms.p50),
            ms(p.latency_ms.p99),
            ms(p.latency_ms.mean),
            pct((p.rejected + p.timed_out + p.interrupted) as f64 / requests),
            p.rejected,
            p.timed_out,
            p.interrupted,
            if p.slo.checks.is_empty() {
                "–"
            } else if p.slo.met {
                "met"
            } else {
                "MISSED"
            }
        )));
        let rows = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                vec![
                    (i + 1).to_string(),
                    s.api.clone(),
                    s.entered.to_string(),
                    ms(s.mean_ms),
                    ms(s.mean_wait_ms),
                    pct(s.share_of_latency),
                    s.rejected.to_string(),
                    s.timed_out.to_string(),
                    s.interrupted.to_string(),
                ]
            })
            .collect();
        blocks.push(table(
            &[
                "stage",
                "API",
                "entered",
                "mean ms",
                "waiting ms",
                "share of time",
                "rejected here",
                "timed out here",
                "interrupted here",
            ],
            &[true, false, true, true, true, true, true, true, true],
            rows,
        ));
    }
    // Each pipeline's own objectives, judged on its end-to-end figures (what `simctl tune`
    // holds a candidate to, beside every API's SLO).
    blocks.extend(checks_table(
        "pipeline (end to end)",
        r.pipelines
            .iter()
            .map(|p| (p.name.clone(), p.slo.checks.as_slice())),
    ));
    if !r.pipelines.is_empty() {
        blocks.push(Block::Para(
            "A pipeline's request enters each stage when the previous one answers it; its end-to-end latency is the sum of its stages' latencies, and a 503, a timeout or a lost replica at any stage fails it there. A stage's mean is over the requests it answered (queue and activator wait plus service); its share is that mean over the sum of the stages' means.".into(),
        ));
    }
    blocks
}
