//! The tuned configuration as Cortex `RealtimeAPI` specs, so the recommendation can be pasted
//! into a `cortex.yaml`.
//!
//! Scenario field names follow Cortex, so each API's `pod`, `compute` and `autoscaling` sections
//! are carried over key for key (minus what only the simulator reads), and serialized with a
//! YAML library: nested values (lists, tables) come out as YAML, strings are quoted when YAML
//! would read them as something else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why the Cortex snippets could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CortexYamlError {
    /// The tuned scenario does not parse.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// The specs cannot be written as YAML.
    #[error("{0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// One API as Cortex's `RealtimeAPI` spec takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CortexApi {
    /// The API's name.
    pub name: String,
    /// Always `RealtimeAPI`: the simulator models realtime APIs.
    pub kind: String,
    /// Processes, threads, concurrency and queue length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Section>,
    /// Resource requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Section>,
    /// Replica bounds and the policy's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Section>,
}

/// The settings of one section, in key order, values as the scenario wrote them.
pub type Section = BTreeMap<String, toml::Value>;

/// The sections carried over and the scenario-only keys left out of each: `mem_per_process` is
/// folded into the memory request by the simulator, `policy` and `overprovisioning` choose the
/// simulator's policy, which is Cortex's own in a cluster.
const SECTIONS: [(&str, &[&str]); 3] = [
    ("pod", &[]),
    ("compute", &["mem_per_process"]),
    ("autoscaling", &["policy", "overprovisioning"]),
];

/// The Cortex specs of every `[[apis]]` of a scenario, in file order.
pub fn apis(scenario_text: &str) -> Result<Vec<CortexApi>, CortexYamlError> {
    let value: toml::Table = toml::from_str(scenario_text)?;
    let apis = value
        .get("apis")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(apis
        .iter()
        .filter_map(toml::Value::as_table)
        .map(|api| {
            let mut sections = SECTIONS.iter().map(|(section, skip)| {
                let kept: Section = api
                    .get(*section)
                    .and_then(toml::Value::as_table)
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !skip.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (!kept.is_empty()).then_some(kept)
            });
            CortexApi {
                name: api
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("api")
                    .to_string(),
                kind: "RealtimeAPI".into(),
                pod: sections.next().flatten(),
                compute: sections.next().flatten(),
                autoscaling: sections.next().flatten(),
            }
        })
        .collect())
}

/// The specs as a YAML list (empty text when the scenario has no API).
pub fn yaml(scenario_text: &str) -> Result<String, CortexYamlError> {
    let apis = apis(scenario_text)?;
    if apis.is_empty() {
        return Ok(String::new());
    }
    Ok(serde_yaml_ng::to_string(&apis)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
[[apis]]
name = "clf"
[apis.pod]
threads_per_process = 4
[apis.compute]
cpu = "1"
mem = "2Gi"
mem_per_process = "1Gi"
[apis.autoscaling]
policy = "hpa"
min_replicas = 2
target_utilization = 0.7
behavior = { scale_down = { stabilization_window = "5m", policies = [{ type = "Pods", value = 1, period = "60s" }] } }
"#;

    #[test]
    fn specs_keep_the_keys_and_values_and_parse_back() {
        let text = yaml(SCENARIO).expect("yaml");
        assert!(
            text.starts_with("- name: clf\n  kind: RealtimeAPI\n"),
            "{text}"
        );
        let back: Vec<CortexApi> = serde_yaml_ng::from_str(&text).expect("valid YAML");
        assert_eq!(back, apis(SCENARIO).expect("apis"));
        let api = &back[0];
        let compute = api.compute.as_ref().expect("compute");
        assert_eq!(compute.get("cpu"), Some(&toml::Value::String("1".into())));
        assert!(!compute.contains_key("mem_per_process"));
        let autoscaling = api.autoscaling.as_ref().expect("autoscaling");
        assert!(!autoscaling.contains_key("policy"));
        assert_eq!(autoscaling["min_replicas"], toml::Value::Integer(2));
    }

    #[test]
    fn nested_values_are_yaml() {
        let text = yaml(SCENARIO).expect("yaml");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
        let policy = &doc[0]["autoscaling"]["behavior"]["scale_down"]["policies"][0];
        assert_eq!(policy["type"].as_str(), Some("Pods"));
        assert_eq!(policy["value"].as_i64(), Some(1));
        assert_eq!(
            doc[0]["autoscaling"]["behavior"]["scale_down"]["stabilization_window"].as_str(),
            Some("5m")
        );
        assert!(!text.contains('{'), "no TOML inline tables: {text}");
        assert_eq!(yaml("duration = \"1h\"\n").expect("no APIs"), "");
    }
}
