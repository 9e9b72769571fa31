use super::*;
use contract::tune::{Search, SCHEMA};

fn candidate(
    id: u64,
    cost: f64,
    ratio: f64,
    params: &[(&str, serde_json::Value)],
) -> CandidateResult {
    CandidateResult {
        id,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        error: None,
        seeds_evaluated: 1,
        meets_slo: ratio <= 1.0,
        cost_usd_mean: cost,
        slo_ratio: ratio,
        apis: Vec::new(),
        start_dominated: None,
        why_missed: None,
        risk: None,
    }
}

const SCENARIO: &str = r#"# Tune the classifier against recorded traffic.
#
#   cargo run --release -- tune this.toml --write-scenario tuned.toml
#
# The tuner searches the floor.

name = "t"
duration = "1h"

[[node_groups]]
name = "cpu"
instance_type = "m5.large"
min_instances = 1
max_instances = 4

[[apis]]
name = "clf"
[apis.service_time]
distribution = "constant"
value = "10ms"
[apis.traffic]
kind = "poisson"
rps = 5
[apis.autoscaling]
policy = "fixed"   # the starting point; the space switches to cortex
min_replicas = 1
max_replicas = 8

# The space to search.
[tune.space]
"apis.clf.autoscaling.min_replicas" = [1, 2, 3]
"apis.clf.autoscaling.overprovisioning" = [0, 1]
"#;

fn report(candidates: Vec<CandidateResult>) -> TuneReport {
    TuneReport {
        schema: SCHEMA.into(),
        scenario_name: "t".into(),
        scenario_toml: SCENARIO.into(),
        seeds: vec![1],
        search: Search::Grid,
        parameters: vec![
            Parameter {
                path: "apis.clf.autoscaling.min_replicas".into(),
                values: vec![1.into(), 2.into(), 3.into()],
            },
            Parameter {
                path: "apis.clf.autoscaling.overprovisioning".into(),
                values: vec![0.into(), 1.into()],
            },
        ],
        grid_size: 6,
        shard: None,
        interrupted: false,
        candidates,
        best: None,
        pareto: Vec::new(),
        recommendation: None,
        traffic_bootstrap_block_s: None,
        warnings: Vec::new(),
        risk: None,
    }
}

const MIN: &str = "apis.clf.autoscaling.min_replicas";
const OVER: &str = "apis.clf.autoscaling.overprovisioning";

#[test]
fn a_tie_goes_to_fewer_moving_parts_and_says_so() {
    // #1 (1 + overprovisioning 1) and #2 (2, none) cost the same: the plain one wins.
    let mut r = report(vec![
        candidate(1, 10.0, 0.5, &[(MIN, 1.into()), (OVER, 1.into())]),
        candidate(2, 10.001, 0.6, &[(MIN, 2.into()), (OVER, 0.into())]),
        candidate(3, 12.0, 0.3, &[(MIN, 3.into()), (OVER, 0.into())]),
    ]);
    finalize(&mut r);
    assert_eq!(r.best, Some(2));
    let rec = r.recommendation.expect("recommendation");
    assert!(
        rec.notes[0].starts_with(
            "2 qualifying candidates cost 10.00 USD; #2 is chosen for the fewest moving parts"
        ),
        "{:?}",
        rec.notes
    );
}

#[test]
fn among_equals_more_headroom_wins() {
    let mut r = report(vec![
        candidate(1, 10.0, 0.9, &[(MIN, 2.into()), (OVER, 0.into())]),
        candidate(4, 10.0, 0.4, &[(MIN, 2.into()), (OVER, 0.into())]),
    ]);
    finalize(&mut r);
    assert_eq!(r.best, Some(4));
}

#[test]
fn a_recommendation_on_an_edge_is_flagged_with_which_edge() {
    let mut r = report(vec![candidate(
        5,
        9.0,
        0.5,
        &[(MIN, 3.into()), (OVER, 1.into())],
    )]);
    finalize(&mut r);
    let notes = r.recommendation.expect("recommendation").notes;
    assert!(
        notes.iter().any(|n| n.starts_with(
            "apis.clf.autoscaling.min_replicas = 3 is the highest value searched (1–3)"
        )),
        "{notes:?}"
    );
    assert!(notes
        .iter()
        .any(|n| n.contains("overprovisioning = 1 is the highest")));

    // In the middle: nothing; at a zero floor: nothing (there is nothing below).
    let mut r = report(vec![candidate(
        2,
        9.0,
        0.5,
        &[(MIN, 2.into()), (OVER, 0.into())],
    )]);
    finalize(&mut r);
    assert!(r.recommendation.expect("recommendation").notes.is_empty());
    // The lowest value above zero is an edge too.
    let mut r = report(vec![candidate(
        0,
        9.0,
        0.5,
        &[(MIN, 1.into()), (OVER, 0.into())],
    )]);
    finalize(&mut r);
    let notes = r.recommendation.expect("recommendation").notes;
    assert!(
        notes[0].contains("is the lowest value searched"),
        "{notes:?}"
    );
}

#[test]
fn the_tuned_scenario_drops_stale_comments_and_says_where_it_came_from() {
    let mut r = report(vec![candidate(
        2,
        9.0,
        0.5,
        &[(MIN, 2.into()), (OVER, 0.into())],
    )]);
    finalize(&mut r);
    let text = r.recommendation.expect("recommendation").tuned_scenario;
    assert!(
        text.starts_with("# Written by `simctl tune` from \"t\": candidate 2"),
        "{text}"
    );
    assert!(
        text.contains("# Tune the classifier against recorded traffic."),
        "{text}"
    );
    assert!(!text.contains("--write-scenario"), "{text}");
    assert!(!text.contains("The tuner searches"), "{text}");
    assert!(!text.contains("[tune"), "{text}");
    assert!(!text.contains("The space to search"), "{text}");
    assert!(text.contains("min_replicas = 2  # tuned (was 1)"), "{text}");
    crate::Scenario::parse(&text, "tuned.toml", std::path::Path::new("."))
        .expect("the tuned scenario is valid");
}

#[test]
fn fragment_names_the_entries() {
    let params = BTreeMap::from([
        (MIN.to_string(), serde_json::json!(2)),
        (
            "apis.clf.pod.threads_per_process".to_string(),
            serde_json::json!(4),
        ),
    ]);
    let f = fragment(&params).expect("fragment");
    assert!(f.contains("[[apis]]\nname = \"clf\""), "{f}");
    assert!(f.contains("min_replicas = 2"), "{f}");
}

#[test]
fn the_manifests_come_with_the_recommendation() {
    let mut r = report(vec![candidate(
        2,
        9.0,
        0.5,
        &[(MIN, 2.into()), (OVER, 1.into())],
    )]);
    finalize(&mut r);
    let rec = r.recommendation.expect("recommendation");
    let cortex: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rec.cortex_yaml).expect("yaml");
    assert_eq!(cortex[0]["autoscaling"]["min_replicas"].as_u64(), Some(3));
    assert_eq!(cortex[0]["autoscaling"]["max_replicas"].as_u64(), Some(3));
    let cluster: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rec.cluster_yaml).expect("yaml");
    assert_eq!(cluster["node_groups"][0]["name"].as_str(), Some("cpu"));
}
