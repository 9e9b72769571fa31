//! [`PrometheusSource`]: asks a Prometheus server (`/api/v1/query`) the query the real
//! autoscaler runs, e.g. Cortex's `sum(sum_over_time(m[W])) / max(count_over_time(m[W]))`, or
//! vLLM's gauges per pod for the LLM policies.

use std::collections::HashMap;
use std::time::Duration;

use super::source::{plausible, MetricsSource, SourceError};
use super::{pod, BoxFuture, ControllerError};
use crate::pipeline::Reading;
use crate::{MetricSpec, PodMetricKind, PodObservation, PodPeak};

/// Asks a Prometheus server the policy's query.
pub struct PrometheusSource {
    client: reqwest::Client,
    base: String,
    queries: Vec<String>,
    answer: Answer,
    timeout: Duration,
}

/// How a [`PrometheusSource`]'s answers become a reading.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// One value (and a panic value for Knative).
    Aggregate,
    /// One value per series, each a pod.
    PerPod,
    /// Per pod, the KV-cache and waiting peaks.
    PerPodPeak,
}

/// The PromQL the real autoscaler would run for `spec`: one query, or stable and panic queries,
/// or (for the saturation policy) the KV-cache and waiting-queue peaks.
pub fn promql(spec: &MetricSpec, metric: &str, api_name: &str) -> Vec<String> {
    let name = api_name.replace('"', "\\\"");
    let sel = format!("{metric}{{api_name=\"{name}\"}}");
    // vLLM's series, selected by `model_name` as vLLM labels them (an API's replicas serve a
    // model of the API's name), one per pod as Prometheus' Kubernetes discovery labels them.
    let model = format!("{{model_name=\"{name}\"}}");
    let avg = |w: Duration| {
        let s = w.as_secs().max(1);
        format!("sum(sum_over_time({sel}[{s}s])) / max(count_over_time({sel}[{s}s]))")
    };
    match spec {
        MetricSpec::None => Vec::new(),
        MetricSpec::InFlightWindowAverage { window, .. } => vec![avg(*window)],
        MetricSpec::StableAndPanicConcurrency {
            stable_window,
            panic_window,
            ..
        } => vec![avg(*stable_window), avg(*panic_window)],
        MetricSpec::PerPod { lag, kind } => {
            let s = lag.as_secs().max(15);
            let gauge = |m: &str| format!("avg by (pod) (avg_over_time({m}{model}[{s}s]))");
            vec![match kind {
                PodMetricKind::RequestsWaiting => gauge("vllm:num_requests_waiting"),
                PodMetricKind::RequestsRunning => gauge("vllm:num_requests_running"),
                PodMetricKind::KvCacheUsage => gauge("vllm:kv_cache_usage_perc"),
                PodMetricKind::GenerationTokensPerSecond => {
                    format!("sum by (pod) (rate(vllm:generation_tokens_total{model}[{s}s]))")
                }
                PodMetricKind::Concurrency | PodMetricKind::Rps | PodMetricKind::CpuUtilization => {
                    format!("avg_over_time({sel}[{s}s])")
                }
            }]
        }
        // llm-d WVA's inputs (`internal/collector/registration/saturation.go`).
        MetricSpec::PerPodPeak { window, lag } => {
            let w = window.as_secs().max(1);
            let offset = match lag.as_secs() {
                0 => String::new(),
                l => format!(" offset {l}s"),
            };
            ["vllm:kv_cache_usage_perc", "vllm:num_requests_waiting"]
                .iter()
                .map(|m| format!("max by (pod) (max_over_time({m}{model}[{w}s]{offset}))"))
                .collect()
        }
    }
}

/// The saturation policy's per-pod peaks from its two answers (KV-cache usage, waiting), joined
/// on the `pod` label; a pod missing from either answer reported nothing in the window and is
/// left out, as the scrape source leaves out a pod that did not answer.
fn peaks_by_pod(kv: &[LabelledValue], waiting: &[LabelledValue]) -> Vec<PodObservation> {
    let pod_of = |labels: &HashMap<String, String>| labels.get("pod").cloned().unwrap_or_default();
    let waiting: HashMap<String, f64> = waiting.iter().map(|(l, v)| (pod_of(l), *v)).collect();
    let mut pods: Vec<(String, PodPeak)> = kv
        .iter()
        .filter_map(|(l, kv_usage)| {
            let name = pod_of(l);
            let waiting = *waiting.get(&name)?;
            Some((
                name,
                PodPeak {
                    kv_usage: *kv_usage,
                    waiting,
                },
            ))
        })
        .collect();
    pods.sort_by(|a, b| a.0.cmp(&b.0));
    pods.into_iter()
        .map(|(_, peak)| PodObservation {
            peak: Some(peak),
            ..pod(true, None, Duration::from_secs(3600))
        })
        .collect()
}

impl PrometheusSource {
    /// Query `base` (e.g. `http://prometheus:9090`) for `spec` on `metric` of `api_name`.
    pub fn new(
        client: reqwest::Client,
        base: impl Into<String>,
        spec: &MetricSpec,
        metric: &str,
        api_name: &str,
        timeout: Duration,
    ) -> Result<Self, ControllerError> {
        if matches!(
            spec,
            MetricSpec::PerPod {
                kind: PodMetricKind::CpuUtilization,
                ..
            }
        ) {
            return Err(ControllerError::Config(
                "the HPA's CPU metric is not read from Prometheus here; use the Kubernetes HPA"
                    .into(),
            ));
        }
        Ok(Self {
            client,
            base: base.into().trim_end_matches('/').to_string(),
            queries: promql(spec, metric, api_name),
            answer: match spec {
                MetricSpec::PerPod { .. } => Answer::PerPod,
                MetricSpec::PerPodPeak { .. } => Answer::PerPodPeak,
                _ => Answer::Aggregate,
            },
            timeout,
        })
    }

    async fn query(&self, q: &str) -> Result<Vec<LabelledValue>, SourceError> {
        let url = format!("{}/api/v1/query", self.base);
        let resp = self
            .client
            .get(&url)
            .query(&[("query", q)])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| SourceError::Backend(e.to_string()))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| SourceError::Backend(format!("HTTP {status}: {e}")))?;
        parse_vector(&body)
    }
}

/// One series of an instant-query answer: its labels and value.
pub type LabelledValue = (HashMap<String, String>, f64);

/// Parse an instant-query answer (`resultType: vector`) into (labels, value) pairs; NaN,
/// infinite, negative and absurd values (see [`plausible`]) are dropped, which means "no data".
pub fn parse_vector(body: &serde_json::Value) -> Result<Vec<LabelledValue>, SourceError> {
    if body["status"] != "success" {
        return Err(SourceError::Backend(format!(
            "query failed: {}",
            body["error"].as_str().unwrap_or("no status")
        )));
    }
    let Some(result) = body["data"]["result"].as_array() else {
        return Err(SourceError::Backend("no data.result in the answer".into()));
    };
    let mut out = Vec::new();
    for r in result {
        let value = r["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| plausible(*v));
        let Some(value) = value else { continue };
        let labels = r["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.push((labels, value));
    }
    Ok(out)
}

impl MetricsSource for PrometheusSource {
    fn observe(&mut self, _now: Duration) -> BoxFuture<'_, Result<Reading, SourceError>> {
        Box::pin(async move {
            let mut answers = Vec::new();
            for q in &self.queries {
                answers.push(self.query(q).await?);
            }
            let first = |i: usize| answers.get(i).and_then(|a| a.first()).map(|(_, v)| *v);
            Ok(match (self.answer, answers.as_slice()) {
                (Answer::PerPod, [values, ..]) => Reading {
                    pods: values
                        .iter()
                        .map(|(_, v)| pod(true, Some(*v), Duration::from_secs(3600)))
                        .collect(),
                    ..Reading::default()
                },
                (Answer::PerPodPeak, [kv, waiting, ..]) => Reading {
                    pods: peaks_by_pod(kv, waiting),
                    ..Reading::default()
                },
                _ => Reading {
                    metric: first(0),
                    panic_metric: if answers.len() > 1 { first(1) } else { None },
                    ..Reading::default()
                },
            })
        })
    }
}

/// A Prometheus `file_sd_configs` target list of replicas at `urls` (base URLs): one group per
/// replica, labelled `pod` with its address, the label Prometheus' Kubernetes discovery gives a
/// pod's series and the queries above group by.
pub fn file_sd_groups(urls: &[String]) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = urls
        .iter()
        .map(|url| {
            let address = url
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            serde_json::json!({ "targets": [address], "labels": { "pod": address } })
        })
        .collect();
    serde_json::Value::Array(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cortex_query() {
        let spec = MetricSpec::InFlightWindowAverage {
            sample_interval: Duration::from_secs(1),
            window: Duration::from_secs(60),
        };
        assert_eq!(
            promql(&spec, "cortex_in_flight_requests", "model"),
            vec!["sum(sum_over_time(cortex_in_flight_requests{api_name=\"model\"}[60s])) / max(count_over_time(cortex_in_flight_requests{api_name=\"model\"}[60s]))".to_string()]
        );
    }

    #[test]
    fn empty_and_nan_vectors_are_no_data() {
        let empty =
            serde_json::json!({"status":"success","data":{"resultType":"vector","result":[]}});
        assert!(parse_vector(&empty).expect("ok").is_empty());
        let nan = serde_json::json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"NaN"]}]}});
        assert!(parse_vector(&nan).expect("ok").is_empty());
        let one = serde_json::json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"3.5"]}]}});
        assert_eq!(parse_vector(&one).expect("ok")[0].1, 3.5);
        // A negative in-flight count is impossible and 1e308 is a broken exporter: no data, so
        // the controller holds instead of jumping to a bound.
        for absurd in ["-1e9", "-0.5", "1e308", "+Inf"] {
            let v = serde_json::json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,absurd]}]}});
            assert!(parse_vector(&v).expect("ok").is_empty(), "{absurd}");
        }
    }

    #[test]
    fn llm_signals_are_vllm_series_by_model_and_pod() {
        let per_pod = |kind| MetricSpec::PerPod {
            kind,
            lag: Duration::from_secs(30),
        };
        let q = |spec: &MetricSpec| promql(spec, "ignored", "llama").join(" | ");
        assert_eq!(
            q(&per_pod(PodMetricKind::RequestsWaiting)),
            "avg by (pod) (avg_over_time(vllm:num_requests_waiting{model_name=\"llama\"}[30s]))"
        );
        assert_eq!(
            q(&per_pod(PodMetricKind::GenerationTokensPerSecond)),
            "sum by (pod) (rate(vllm:generation_tokens_total{model_name=\"llama\"}[30s]))"
        );
        let peak = MetricSpec::PerPodPeak {
            window: Duration::from_secs(60),
            lag: Duration::ZERO,
        };
        assert_eq!(
            q(&peak),
            "max by (pod) (max_over_time(vllm:kv_cache_usage_perc{model_name=\"llama\"}[60s])) | \
             max by (pod) (max_over_time(vllm:num_requests_waiting{model_name=\"llama\"}[60s]))"
        );
    }

    #[test]
    fn peaks_join_on_the_pod_label_and_drop_half_reported_pods() {
        let v = |pod: &str, x: f64| (HashMap::from([("pod".to_string(), pod.to_string())]), x);
        let pods = peaks_by_pod(
            &[v("b", 0.5), v("a", 0.25), v("c", 0.9)],
            &[v("a", 2.0), v("b", 0.0)],
        );
        let peaks: Vec<_> = pods.iter().map(|p| p.peak.expect("peak")).collect();
        assert_eq!(
            peaks,
            [
                PodPeak {
                    kv_usage: 0.25,
                    waiting: 2.0
                },
                PodPeak {
                    kv_usage: 0.5,
                    waiting: 0.0
                }
            ]
        );
        assert!(pods.iter().all(|p| p.ready));
    }

    #[test]
    fn file_sd_lists_each_replica_as_a_pod() {
        let urls = [
            "http://127.0.0.1:4001".to_string(),
            "http://127.0.0.1:4002/".to_string(),
        ];
        assert_eq!(
            file_sd_groups(&urls),
            serde_json::json!([
                {"targets": ["127.0.0.1:4001"], "labels": {"pod": "127.0.0.1:4001"}},
                {"targets": ["127.0.0.1:4002"], "labels": {"pod": "127.0.0.1:4002"}},
            ])
        );
    }
}
