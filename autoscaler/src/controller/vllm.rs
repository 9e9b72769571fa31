//! vLLM's series in a pod's `/metrics`: the gauges and counters LLM autoscalers read (llm-d
//! WVA, KEDA or HPA on vLLM metrics), turned into [`crate::LlmSignals`] by the scrape source.
//!
//! Names and help strings from vLLM's `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger`)
//! and <https://docs.vllm.ai/en/stable/usage/metrics/>. Newer vLLM names its counters without
//! `_total` and `prometheus_client` appends it on exposition, older V1 code spelled `_total` in
//! the name: either way the scraped names are `vllm:prompt_tokens_total` and
//! `vllm:generation_tokens_total`. `vllm:gpu_cache_usage_perc` is the deprecated name of
//! `vllm:kv_cache_usage_perc` ("DEPRECATED: Use vllm:kv_cache_usage_perc instead.").

use crate::LlmSignals;

/// vLLM's series in one pod's `/metrics` (names from vLLM's `vllm/v1/metrics/loggers.py` and
/// <https://docs.vllm.ai/en/stable/usage/metrics/>), each `None` when absent. Gauges and counters
/// are summed over their series (one per engine), except KV usage, a fraction, which is the
/// largest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VllmScrape {
    /// `vllm:num_requests_running`.
    pub running: Option<f64>,
    /// `vllm:num_requests_waiting`.
    pub waiting: Option<f64>,
    /// `vllm:kv_cache_usage_perc` (0–1), or the deprecated `vllm:gpu_cache_usage_perc` of older
    /// vLLM ("DEPRECATED: Use vllm:kv_cache_usage_perc instead.") when only that is exported.
    pub kv_usage: Option<f64>,
    /// The counter `vllm:prompt_tokens_total` (exposed with `_total` by old and new vLLM alike).
    pub prompt_tokens: Option<f64>,
    /// The counter `vllm:generation_tokens_total`.
    pub generation_tokens: Option<f64>,
}

impl VllmScrape {
    /// Whether any of vLLM's gauges was exported.
    pub fn reported(&self) -> bool {
        self.running.is_some() || self.waiting.is_some() || self.kv_usage.is_some()
    }

    /// The signals of this scrape: gauges as they are (0 when absent), counters as their
    /// increase since `previous`, which is updated.
    pub(super) fn signals(&self, previous: &mut TokenCounters) -> LlmSignals {
        let s = LlmSignals {
            running: self.running.unwrap_or(0.0),
            waiting: self.waiting.unwrap_or(0.0),
            kv_usage: self.kv_usage.unwrap_or(0.0),
            prompt_tokens: counter_increase(previous.prompt, self.prompt_tokens),
            generation_tokens: counter_increase(previous.generation, self.generation_tokens),
        };
        previous.prompt = self.prompt_tokens.or(previous.prompt);
        previous.generation = self.generation_tokens.or(previous.generation);
        s
    }
}

/// One pod's token counters at its previous scrape.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TokenCounters {
    prompt: Option<f64>,
    generation: Option<f64>,
}

/// vLLM's metric names as they are scraped.
mod names {
    pub(super) const RUNNING: &str = "vllm:num_requests_running";
    pub(super) const WAITING: &str = "vllm:num_requests_waiting";
    pub(super) const KV_USAGE: &str = "vllm:kv_cache_usage_perc";
    pub(super) const KV_USAGE_LEGACY: &str = "vllm:gpu_cache_usage_perc";
    pub(super) const PROMPT_TOKENS: &str = "vllm:prompt_tokens_total";
    pub(super) const GENERATION_TOKENS: &str = "vllm:generation_tokens_total";
}

/// `prometheus-parse` reads metric names as `\w+` and skips lines whose name has a colon (legal
/// in Prometheus names, used by vLLM's `vllm:` prefix). Spell the colon of the name (the first
/// token of a sample line, the third of a `# TYPE`/`# HELP` line) as this instead.
pub(super) const COLON: &str = "__colon__";

pub(super) fn colon_free(line: &str) -> String {
    let (prefix, rest) = match line.strip_prefix('#') {
        Some(comment) => {
            let trimmed = comment.trim_start();
            match trimmed
                .strip_prefix("TYPE")
                .or_else(|| trimmed.strip_prefix("HELP"))
            {
                Some(after) => {
                    let after = after.trim_start();
                    (&line[..line.len() - after.len()], after)
                }
                None => return line.to_string(),
            }
        }
        None => ("", line),
    };
    let end = rest
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(rest.len());
    format!(
        "{prefix}{}{}",
        rest[..end].replace(':', COLON),
        &rest[end..]
    )
}

/// A counter's increase since its previous value, reset-safe as Prometheus' `increase()`: a
/// counter that went down restarted from 0, so all of its current value is new. Nothing before
/// the first value.
pub(super) fn counter_increase(before: Option<f64>, now: Option<f64>) -> f64 {
    match (before, now) {
        (Some(before), Some(now)) if now >= before => now - before,
        (Some(_), Some(now)) => now,
        _ => 0.0,
    }
}

/// Accumulates vLLM's samples of one scrape.
#[derive(Debug, Default)]
pub(super) struct VllmParser {
    out: VllmScrape,
    legacy_kv: Option<f64>,
}

impl VllmParser {
    /// Take one sample whose (colon-free, see [`colon_free`]) name is `metric`; other names are
    /// ignored.
    pub(super) fn take(&mut self, metric: &str, v: f64) {
        let is = |name: &str| metric == name.replace(':', COLON);
        let add = |slot: &mut Option<f64>| *slot.get_or_insert(0.0) += v;
        let max = |slot: &mut Option<f64>| {
            let m = slot.get_or_insert(v);
            *m = m.max(v);
        };
        if is(names::RUNNING) {
            add(&mut self.out.running);
        } else if is(names::WAITING) {
            add(&mut self.out.waiting);
        } else if is(names::KV_USAGE) {
            max(&mut self.out.kv_usage);
        } else if is(names::KV_USAGE_LEGACY) {
            max(&mut self.legacy_kv);
        } else if is(names::PROMPT_TOKENS) {
            add(&mut self.out.prompt_tokens);
        } else if is(names::GENERATION_TOKENS) {
            add(&mut self.out.generation_tokens);
        }
    }

    /// The scrape's values, the legacy KV gauge standing in for a missing current one.
    pub(super) fn finish(mut self) -> VllmScrape {
        self.out.kv_usage = self.out.kv_usage.or(self.legacy_kv);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::source::{parse_pod_metrics, ScrapeSettings};

    #[test]
    fn parses_vllm_exposition_text() {
        let body =
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 12.0\n\
vllm:num_requests_running{engine=\"1\",model_name=\"llama\"} 3.0\n\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
# TYPE vllm:num_requests_waiting gauge\n\
vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 4.0\n\
# TYPE vllm:kv_cache_usage_perc gauge\n\
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.25\n\
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"llama\"} 0.625\n\
# TYPE vllm:gpu_cache_usage_perc gauge\n\
vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.9\n\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n\
# TYPE vllm:prompt_tokens_total counter\n\
vllm:prompt_tokens_total{engine=\"0\",model_name=\"llama\"} 4096.0\n\
# TYPE vllm:generation_tokens counter\n\
vllm:generation_tokens_total{engine=\"0\",model_name=\"llama\"} 512.0\n\
vllm:generation_tokens_created{engine=\"0\",model_name=\"llama\"} 1.7e9\n";
        let p = parse_pod_metrics(body, &ScrapeSettings::new("llama")).expect("parses");
        assert_eq!(
            p.vllm,
            VllmScrape {
                running: Some(15.0),
                waiting: Some(4.0),
                kv_usage: Some(0.625),
                prompt_tokens: Some(4096.0),
                generation_tokens: Some(512.0),
            }
        );
        assert_eq!(p.in_flight, None, "no Cortex gauge on a vLLM server");
        assert!(p.ready);
    }

    #[test]
    fn the_legacy_kv_gauge_stands_in() {
        let body = "# TYPE vllm:gpu_cache_usage_perc gauge\n\
vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n";
        let p = parse_pod_metrics(body, &ScrapeSettings::new("m")).expect("parses");
        assert_eq!(p.vllm.kv_usage, Some(0.5));
        assert!(p.vllm.reported());
        let none = parse_pod_metrics("", &ScrapeSettings::new("m")).expect("parses");
        assert!(!none.vllm.reported());
    }

    #[test]
    fn colons_only_in_the_name_are_respelled() {
        assert_eq!(
            colon_free("vllm:x{a=\"b:c\"} 1"),
            format!("vllm{COLON}x{{a=\"b:c\"}} 1")
        );
        assert_eq!(
            colon_free("# TYPE vllm:x gauge"),
            format!("# TYPE vllm{COLON}x gauge")
        );
        assert_eq!(colon_free("# a comment: here"), "# a comment: here");
        assert_eq!(colon_free("plain 2"), "plain 2");
    }

    #[test]
    fn scrapes_become_signals_through_the_pipeline() {
        use crate::controller::source::{PodScrape, ScrapeReadings};
        use crate::{MetricSpec, PodMetricKind};
        use std::time::Duration;
        let secs = Duration::from_secs;
        let scrape = |waiting, generation| {
            Some(PodScrape {
                in_flight: None,
                requests: None,
                in_flight_seconds: None,
                ready: true,
                vllm: VllmScrape {
                    running: Some(8.0),
                    waiting: Some(waiting),
                    kv_usage: Some(0.5),
                    prompt_tokens: Some(100.0),
                    generation_tokens: Some(generation),
                },
            })
        };
        let tokens = MetricSpec::PerPod {
            kind: PodMetricKind::GenerationTokensPerSecond,
            lag: Duration::ZERO,
        };
        let peaks = MetricSpec::PerPodPeak {
            window: secs(60),
            lag: Duration::ZERO,
        };
        let waiting = MetricSpec::PerPod {
            kind: PodMetricKind::RequestsWaiting,
            lag: Duration::ZERO,
        };
        let mut readings: Vec<_> = [tokens, peaks, waiting]
            .into_iter()
            .map(|spec| ScrapeReadings::new(spec, secs(1), secs(5)))
            .collect();
        for r in &mut readings {
            r.record(secs(1), vec![("http://a".into(), scrape(2.0, 1000.0))]);
            r.record(secs(2), vec![("http://a".into(), scrape(6.0, 1250.0))]);
            // The server restarted: its counter starts again from 0.
            r.record(secs(3), vec![("http://a".into(), scrape(1.0, 40.0))]);
        }
        // Increases 0 (first scrape), 250 and 40 over three 1-second samples.
        let rate = readings[0].reading(secs(4)).pods[0].value.expect("a rate");
        assert!((rate - 290.0 / 3.0).abs() < 1e-9, "{rate}");
        let peak = readings[1].reading(secs(4)).pods[0].peak.expect("a peak");
        assert_eq!((peak.kv_usage, peak.waiting), (0.5, 6.0));
        assert_eq!(readings[2].reading(secs(4)).pods[0].value, Some(3.0));
    }

    #[test]
    fn counter_increases_are_reset_safe() {
        assert_eq!(counter_increase(None, Some(10.0)), 0.0);
        assert_eq!(counter_increase(Some(10.0), Some(25.0)), 15.0);
        assert_eq!(counter_increase(Some(25.0), Some(4.0)), 4.0, "restarted");
        assert_eq!(counter_increase(Some(25.0), None), 0.0);
    }
}
