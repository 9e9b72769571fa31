//! Cortex `TrafficSplitter` specs of a scenario's `[[routers]]` (fields from
//! `docs/workloads/realtime/traffic-splitter.md` of cortexlabs/cortex: `name`, `kind`, and
//! `apis = [{ name, weight, shadow }]`, the non-shadow weights summing to 100, at most one
//! shadow), and notes for what a splitter cannot carry: weight steps (a canary ramp is a
//! redeploy per step), classes read from a trace column, and pipelines (Cortex has none).

use serde::{Deserialize, Serialize};

use crate::scenario::schema::{RouterSpec, ScenarioFile};

/// One router as `cortex deploy` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSplitter {
    /// The router's name (Cortex's endpoint defaults to it).
    pub name: String,
    /// Always `TrafficSplitter`.
    pub kind: String,
    /// The RealtimeAPIs it splits between, and its shadow.
    pub apis: Vec<SplitterApi>,
}

/// One API behind a TrafficSplitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitterApi {
    /// A RealtimeAPI's name.
    pub name: String,
    /// Percentage of the requests (the non-shadow weights sum to 100); for the shadow, the
    /// percentage of requests mirrored to it.
    pub weight: u32,
    /// Fire-and-forget copies (Istio's mirror); written only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// The splitters of `file`'s routers; `cortex` names the APIs written as Cortex specs (a
/// splitter targets RealtimeAPIs only). What cannot be carried is said in `notes`.
pub(super) fn splitters(
    file: &ScenarioFile,
    cortex: &[&str],
    notes: &mut Vec<String>,
) -> Vec<TrafficSplitter> {
    let mut out = Vec::new();
    for router in &file.routers {
        if let Some(column) = &router.class_column {
            notes.push(format!(
                "router {}: it routes each request by its class (the trace's {column:?} column), which a TrafficSplitter cannot do (it draws the API at random by weight); no TrafficSplitter is written for it: route by class in front of the APIs (e.g. an Istio VirtualService matching a header)",
                router.name
            ));
            continue;
        }
        let splitter = TrafficSplitter {
            name: router.name.clone(),
            kind: "TrafficSplitter".into(),
            apis: if router.classes.is_empty() {
                by_weight(router, notes)
            } else {
                by_share(router, notes)
            },
        };
        for api in &splitter.apis {
            if !cortex.contains(&api.name.as_str()) {
                notes.push(format!(
                    "router {}: {} is not deployed as a Cortex RealtimeAPI (its autoscaler is not Cortex's), and a TrafficSplitter routes only to RealtimeAPIs: put the splitter's weights on a mesh route (e.g. an Istio VirtualService) instead",
                    router.name, api.name
                ));
            }
        }
        out.push(splitter);
    }
    for p in &file.pipelines {
        notes.push(format!(
            "pipeline {}: Cortex has no pipeline; each stage ({}) is written as its own API, and each stage (or the caller) must call the next, as simulated",
            p.name,
            p.stages.join(" → ")
        ));
    }
    out
}

/// The weights in effect at the start of the run; later steps noted as redeploys.
fn by_weight(router: &RouterSpec, notes: &mut Vec<String>) -> Vec<SplitterApi> {
    let mut apis: Vec<SplitterApi> = router
        .apis
        .iter()
        .map(|a| SplitterApi {
            name: a.name.clone(),
            weight: a.weight,
            shadow: a.shadow,
        })
        .collect();
    for step in &router.steps {
        let weights = step
            .weights
            .iter()
            .map(|(name, w)| format!("{name} = {w}"))
            .collect::<Vec<_>>()
            .join(", ");
        if step.at.0 == crate::time::SimTime::ZERO {
            for api in &mut apis {
                if let Some(w) = step.weights.get(&api.name) {
                    api.weight = *w;
                }
            }
        } else {
            notes.push(format!(
                "router {}: the simulated weights change at {} ({weights}); a TrafficSplitter holds one set of weights: redeploy it with these at that time",
                router.name, step.at
            ));
        }
    }
    apis
}

/// A router by class with shares: each API's share of the requests as integer weights summing
/// to 100 (largest remainders), which is the same per-request draw up to rounding.
fn by_share(router: &RouterSpec, notes: &mut Vec<String>) -> Vec<SplitterApi> {
    let total: f64 = router.classes.iter().filter_map(|c| c.share).sum();
    let mut shares: Vec<(String, f64)> = Vec::new();
    for class in &router.classes {
        let share = class.share.unwrap_or(0.0) / total.max(f64::MIN_POSITIVE);
        match shares.iter_mut().find(|(name, _)| *name == class.api) {
            Some((_, s)) => *s += share,
            None => shares.push((class.api.clone(), share)),
        }
    }
    let exact: Vec<f64> = shares.iter().map(|(_, s)| 100.0 * s).collect();
    let mut weights: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let missing = 100u32.saturating_sub(weights.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order.iter().take(missing as usize) {
        weights[i] += 1;
    }
    if exact
        .iter()
        .zip(&weights)
        .any(|(x, w)| (x - f64::from(*w)).abs() > 1e-9)
    {
        notes.push(format!(
            "router {}: its classes' shares are written as whole-percent weights ({})",
            router.name,
            shares
                .iter()
                .zip(&weights)
                .map(|((name, s), w)| format!("{name} {:.2} % → {w}", 100.0 * s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut apis: Vec<SplitterApi> = shares
        .into_iter()
        .zip(weights)
        .map(|((name, _), weight)| SplitterApi {
            name,
            weight,
            shadow: false,
        })
        .collect();
    apis.extend(
        router
            .apis
            .iter()
            .filter(|a| a.shadow)
            .map(|a| SplitterApi {
                name: a.name.clone(),
                weight: a.weight,
                shadow: true,
            }),
    );
    apis
}

#[cfg(test)]
mod tests {
    use crate::deploy::manifests;

    fn api(name: &str) -> String {
        format!(
            "[[apis]]\nname = \"{name}\"\n[apis.compute]\ncpu = \"1\"\n[apis.service_time]\ndistribution = \"constant\"\nvalue = \"50ms\"\n[apis.autoscaling]\npolicy = \"fixed\"\nmin_replicas = 1\n"
        )
    }

    #[test]
    fn routers_become_traffic_splitters_after_the_apis() {
        let mut text = String::from(
            r#"
duration = "1h"
[[node_groups]]
name = "cpu"
instance_type = "c5.4xlarge"
[[routers]]
name = "canary"
traffic = { kind = "poisson", rps = 10 }
apis = [{ name = "v1", weight = 90 }, { name = "v2", weight = 10 }, { name = "v3", weight = 5, shadow = true }]
steps = [{ at = "0s", weights = { v1 = 95, v2 = 5 } }, { at = "30m", weights = { v1 = 50, v2 = 50 } }]
[[routers]]
name = "by-class"
traffic = { kind = "poisson", rps = 10 }
classes = [{ name = "s", share = 1, api = "small" }, { name = "l", share = 2, api = "large" }]
[[pipelines]]
name = "qa"
stages = ["retriever", "reader"]
traffic = { kind = "poisson", rps = 1 }
"#,
        );
        for name in ["v1", "v2", "v3", "small", "large", "retriever", "reader"] {
            text += &api(name);
        }
        let m = manifests(&text, "t.toml").expect("manifests");
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&m.cortex_yaml().expect("yaml")).expect("parses");
        let specs = yaml.as_sequence().expect("list");
        assert_eq!(specs.len(), 9);
        assert!(specs[..7].iter().all(|s| s["kind"] == "RealtimeAPI"));
        let canary = &specs[7];
        assert_eq!(canary["kind"], "TrafficSplitter");
        assert_eq!(canary["name"], "canary");
        let apis = canary["apis"].as_sequence().expect("apis");
        // The weights of the step at 0 s; the shadow keeps its copy percentage.
        assert_eq!(
            (&apis[0]["name"], &apis[0]["weight"]),
            (&"v1".into(), &95.into())
        );
        assert_eq!(apis[1]["weight"], 5);
        assert!(apis[0].get("shadow").is_none(), "written only when set");
        assert_eq!(
            (&apis[2]["weight"], &apis[2]["shadow"]),
            (&5.into(), &true.into())
        );
        // Shares 1 : 2 as whole percentages summing to 100.
        let by_class = specs[8]["apis"].as_sequence().expect("apis");
        assert_eq!(
            (&by_class[0]["weight"], &by_class[1]["weight"]),
            (&33.into(), &67.into())
        );
        for says in [
            "router canary: the simulated weights change at 30m",
            "router by-class: its classes' shares are written as whole-percent weights",
            "pipeline qa: Cortex has no pipeline",
        ] {
            assert!(
                m.notes.iter().any(|n| n.contains(says)),
                "{says}: {:?}",
                m.notes
            );
        }
    }
}
