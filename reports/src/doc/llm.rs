//! The "LLM serving" section of a run, shown when some API is served token by token: time to
//! first token, inter-token and end-to-end latency, tokens, preemptions and goodput per LLM
//! API, and the engines' running and waiting sequences, KV-cache usage and TTFT p99 over time.

use contract::results::{ApiResults, LlmResults, Metric, Results};

use crate::chart::{format_number, Axis, Chart, HLine, Plot, Series, Style, XyChart};
use crate::palette::{Palette, ALERT};

use super::timeline::{interruption_lines, line, series_points};
use super::{ms, pct, slo_limit, table, time_unit, Block};

/// Whether any API of the run is an LLM API.
pub(super) fn any_llm(r: &Results) -> bool {
    r.apis.iter().any(|a| a.llm.is_some())
}

/// The LLM APIs of a run with their token-level figures.
fn llm_apis(r: &Results) -> impl Iterator<Item = (&ApiResults, &LlmResults)> {
    r.apis.iter().filter_map(|a| a.llm.as_ref().map(|l| (a, l)))
}

/// The section's blocks; call only when [`any_llm`].
pub(super) fn llm(r: &Results, palette: &Palette, prefix: &str) -> Vec<Block> {
    let (div, x_label) = time_unit(r.simulated_s());
    let mut blocks = Vec::new();
    let rows = llm_apis(r)
        .flat_map(|(a, l)| {
            [
                ("time to first token", l.ttft_ms),
                ("inter-token latency", l.itl_ms),
                ("end to end", a.latency_ms),
            ]
            .into_iter()
            .map(move |(what, p)| {
                vec![
                    a.name.clone(),
                    what.to_string(),
                    ms(p.mean),
                    ms(p.p50),
                    ms(p.p90),
                    ms(p.p99),
                    ms(p.max),
                ]
            })
        })
        .collect();
    blocks.push(table(
        &["API", "ms", "mean", "p50", "p90", "p99", "max"],
        &[false, false, true, true, true, true, true],
        rows,
    ));
    blocks.push(Block::Para(
        "Time to first token (TTFT) runs from a request's arrival to the end of the engine iteration that completes its prompt: waiting for a place in the batch, prefill, and any recomputation after a preemption. Inter-token latency (ITL) is the gap before each output token after the first, and grows with the number of sequences sharing each decode iteration. End to end is arrival to the last token, for completed requests.".into(),
    ));
    let rows = llm_apis(r)
        .map(|(a, l)| {
            vec![
                a.name.clone(),
                format_number(l.output_tokens_per_s),
                l.prompt_tokens.to_string(),
                l.output_tokens.to_string(),
                l.prefill_tokens.to_string(),
                l.preemptions.to_string(),
                l.iterations.to_string(),
                l.goodput.map_or("–".into(), pct),
            ]
        })
        .collect();
    blocks.push(table(
        &[
            "API",
            "output tokens/s",
            "prompt tokens",
            "output tokens",
            "prefill tokens",
            "preemptions",
            "iterations",
            "goodput",
        ],
        &[false, true, true, true, true, true, true, true],
        rows,
    ));
    blocks.push(Block::Para(
        "Prefill tokens are the prompt tokens the engines computed, recomputation of preempted sequences included; a preemption evicts a running sequence when the KV cache has no free block. Goodput is the share of finished requests whose TTFT met ttft_p99 and whose mean ITL met itl_p99 (– without both objectives).".into(),
    ));
    let events = interruption_lines(r, div);
    let xy = |y_label: &str, series: Vec<Series>, hlines: Vec<HLine>| {
        Plot::Xy(XyChart {
            x_label: x_label.into(),
            y_label: y_label.into(),
            y2_label: None,
            log_x: false,
            log_y: false,
            series,
            events: events.clone(),
            markers: vec![],
            hlines,
        })
    };
    let per_api = |metric: Metric, label: &str, style: Style, scale: f64| {
        llm_apis(r)
            .map(|(a, _)| {
                let mut s = line(
                    format!("{} {label}", a.name),
                    palette.api(&a.name),
                    style,
                    Axis::Left,
                );
                if let Some(seg) = series_points(r, metric, &a.name, div) {
                    s.segments = seg
                        .into_iter()
                        .map(|run| run.into_iter().map(|(t, v)| (t, v * scale)).collect())
                        .collect();
                }
                s
            })
            .collect::<Vec<_>>()
    };
    let mut series = Vec::new();
    for (running, waiting) in per_api(Metric::RunningSequences, "running", Style::Line, 1.0)
        .into_iter()
        .zip(per_api(
            Metric::WaitingSequences,
            "waiting",
            Style::Dashed,
            1.0,
        ))
    {
        series.extend([running, waiting]);
    }
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}llm-sequences"),
        title: "LLM engines: running and waiting sequences".into(),
        plot: xy("sequences (all replicas)", series, vec![]),
    }));
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}llm-kv-cache"),
        title: "LLM engines: KV-cache usage".into(),
        plot: xy(
            "KV-cache blocks in use (%)",
            per_api(Metric::KvCacheUsage, "KV cache", Style::Line, 100.0),
            vec![],
        ),
    }));
    let hlines = slo_limit(r, "ttft_p99_ms")
        .map(|y| HLine {
            name: format!("SLO TTFT p99 limit ({} ms)", format_number(y)),
            color: ALERT,
            y,
        })
        .into_iter()
        .collect();
    blocks.push(Block::Chart(Chart {
        id: format!("{prefix}llm-ttft-p99"),
        title: "p99 time to first token per timeline step".into(),
        plot: xy(
            "TTFT p99 (ms)",
            per_api(Metric::TtftP99Ms, "TTFT p99", Style::Line, 1.0),
            hlines,
        ),
    }));
    blocks
}
