//! vLLM's Prometheus metrics, written in the text exposition format by hand: the names carry a
//! `:` (`vllm:num_requests_running`), which prometheus-client refuses.
//!
//! Names, types, help strings and histogram buckets are vLLM V1's (`vllm/v1/metrics/
//! loggers.py`, `PrometheusStatLogger`). Counters are exposed as Python's prometheus_client
//! writes them in the classic text format: the sample and the `# TYPE` line both carry `_total`.

use std::fmt::Write as _;

/// `vllm:time_to_first_token_seconds` buckets.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// `vllm:inter_token_latency_seconds` buckets.
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// `vllm:e2e_request_latency_seconds` buckets (vLLM's `request_latency_buckets`).
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A cumulative Prometheus histogram over fixed upper bounds.
#[derive(Debug, Clone)]
pub(super) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), the last one `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// `n` observations of `seconds`.
    pub(super) fn observe_n(&mut self, seconds: f64, n: u64) {
        let bucket = self.bounds.partition_point(|&b| b < seconds);
        self.counts[bucket] += n;
        self.sum += seconds * n as f64;
        self.count += n;
    }

    /// Observations so far.
    #[cfg(test)]
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations.
    #[cfg(test)]
    pub(super) fn sum(&self) -> f64 {
        self.sum
    }
}

/// What one replica reports: gauges set after every scheduling step, counters and histograms
/// fed as tokens are emitted.
#[derive(Debug, Clone)]
pub(super) struct LlmMetrics {
    /// `vllm:num_requests_running`.
    pub(super) running: u32,
    /// `vllm:num_requests_waiting`.
    pub(super) waiting: u32,
    /// `vllm:kv_cache_usage_perc` (and the legacy `vllm:gpu_cache_usage_perc`), 0–1.
    pub(super) kv_usage: f64,
    /// `vllm:prompt_tokens_total`: prompt tokens of requests that emitted their first token.
    pub(super) prompt_tokens: u64,
    /// `vllm:generation_tokens_total`.
    pub(super) generation_tokens: u64,
    /// `vllm:num_preemptions_total`.
    pub(super) preemptions: u64,
    /// `vllm:request_success_total{finished_reason="length"}`.
    pub(super) successes: u64,
    /// `vllm:request_success_total{finished_reason="abort"}`: requests whose client went away.
    pub(super) aborted: u64,
    /// `vllm:time_to_first_token_seconds`.
    pub(super) ttft: Histogram,
    /// `vllm:inter_token_latency_seconds`.
    pub(super) itl: Histogram,
    /// `vllm:e2e_request_latency_seconds`.
    pub(super) e2e: Histogram,
}

impl Default for LlmMetrics {
    fn default() -> Self {
        Self {
            running: 0,
            waiting: 0,
            kv_usage: 0.0,
            prompt_tokens: 0,
            generation_tokens: 0,
            preemptions: 0,
            successes: 0,
            aborted: 0,
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

impl LlmMetrics {
    /// The text exposition (format 0.0.4) with label `model_name`.
    pub(super) fn render(&self, model_name: &str) -> String {
        let labels = format!("model_name=\"{}\"", escape(model_name));
        let mut out = String::with_capacity(8192);
        let mut scalar = |name: &str, kind: &str, help: &str, extra: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{{extra}{labels}}} {value}");
        };
        scalar(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            "",
            self.running.to_string(),
        );
        scalar(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            "",
            self.waiting.to_string(),
        );
        scalar(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            "",
            number(self.kv_usage),
        );
        scalar(
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
            "",
            number(self.kv_usage),
        );
        scalar(
            "vllm:num_preemptions_total",
            "counter",
            "Cumulative number of preemption from the engine.",
            "",
            self.preemptions.to_string(),
        );
        scalar(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            "",
            self.prompt_tokens.to_string(),
        );
        scalar(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            "",
            self.generation_tokens.to_string(),
        );
        scalar(
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            "finished_reason=\"length\",",
            self.successes.to_string(),
        );
        // Same family, second series (vLLM V1 labels aborts `finished_reason="abort"`).
        let _ = writeln!(
            out,
            "vllm:request_success_total{{finished_reason=\"abort\",{labels}}} {}",
            self.aborted
        );
        for (name, help, h) in [
            (
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                &self.ttft,
            ),
            (
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                &self.itl,
            ),
            (
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                &self.e2e,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} histogram");
            let mut cumulative = 0;
            for (i, n) in h.counts.iter().enumerate() {
                cumulative += n;
                let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                    number(le)
                );
            }
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", number(h.sum));
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_an_inf_bucket() {
        let mut m = LlmMetrics::default();
        m.ttft.observe_n(0.001, 1);
        m.ttft.observe_n(0.03, 2);
        m.ttft.observe_n(9999.0, 1);
        m.generation_tokens = 12;
        m.kv_usage = 0.25;
        let text = m.render("my \"model\"");
        let label = r#"model_name="my \"model\"""#;
        for line in [
            "# TYPE vllm:num_requests_running gauge".to_string(),
            "# TYPE vllm:generation_tokens_total counter".to_string(),
            "# TYPE vllm:time_to_first_token_seconds histogram".to_string(),
            format!("vllm:generation_tokens_total{{{label}}} 12"),
            format!("vllm:kv_cache_usage_perc{{{label}}} 0.25"),
            format!("vllm:gpu_cache_usage_perc{{{label}}} 0.25"),
            format!("vllm:request_success_total{{finished_reason=\"length\",{label}}} 0"),
            format!("vllm:time_to_first_token_seconds_bucket{{{label},le=\"0.001\"}} 1"),
            format!("vllm:time_to_first_token_seconds_bucket{{{label},le=\"0.02\"}} 1"),
            format!("vllm:time_to_first_token_seconds_bucket{{{label},le=\"0.04\"}} 3"),
            format!("vllm:time_to_first_token_seconds_bucket{{{label},le=\"2560\"}} 3"),
            format!("vllm:time_to_first_token_seconds_bucket{{{label},le=\"+Inf\"}} 4"),
            format!("vllm:time_to_first_token_seconds_count{{{label}}} 4"),
            format!("vllm:e2e_request_latency_seconds_bucket{{{label},le=\"7680\"}} 0"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("vllm:inter_token_latency_seconds_bucket"))
                .count(),
            ITL_BUCKETS.len() + 1
        );
    }
}
