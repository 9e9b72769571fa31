//! Karpenter in the engine: expiry, spot interruption handling, the ICE fallback and the
//! consolidation knob, each on a whole run. The decision functions' translated upstream cases
//! are unit tests in `sim/src/karpenter/`.

use std::path::Path;

use sim::results::Results;
use sim::Scenario;

/// One API of 1-GPU replicas on a pool over g4dn/g5/g6 xlarge; `pool_extra` is added to the
/// pool's table, `disruption` is its `[node_pools.disruption]` body.
fn run(pool_extra: &str, disruption: &str, rps_steps: &str, duration: &str) -> Results {
    let text = format!(
        r#"
duration = "{duration}"
seed = 3
[[node_pools]]
name = "gpu"
requirements = [
  {{ key = "karpenter.k8s.aws/instance-family", operator = "In", values = ["g4dn", "g5", "g6"] }},
  {{ key = "karpenter.k8s.aws/instance-size", operator = "In", values = ["xlarge"] }},
  {{ key = "karpenter.sh/capacity-type", operator = "In", values = ["spot", "on-demand"] }},
]
{pool_extra}
[node_pools.disruption]
{disruption}
[[apis]]
name = "a"
node_groups = ["gpu"]
startup_time = "60s"
[apis.compute]
cpu = "2"
mem = "8Gi"
gpu = 1
[apis.pod]
max_concurrency = 4
max_queue_length = 16
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "steps"
steps = [{rps_steps}]
[apis.autoscaling]
policy = "cortex"
min_replicas = 1
max_replicas = 10
target_in_flight = 2
"#
    );
    let scenario = Scenario::parse(&text, "karpenter.toml", Path::new(".")).expect("valid");
    sim::run(&scenario).expect("runs")
}

fn pool(r: &Results) -> &sim::results::NodePoolResults {
    &r.karpenter.as_ref().expect("karpenter results").pools[0]
}

// Upstream: pkg/controllers/nodeclaim/expiration/suite_test.go, It("should delete NodeClaims
// if the nodeClaim is expired but the node isn't") and It("should not remove the NodeClaims
// when expiration is disabled"): with expire_after 30m one steady replica's node is replaced
// about every 30 minutes; with "Never" it is kept.
#[test]
fn expire_after_replaces_old_nodes() {
    let steady = r#"{ at = "0s", rps = 5 }"#;
    let expiring = run(r#"expire_after = "30m""#, "", steady, "2h");
    let p = pool(&expiring);
    assert_eq!(p.terminations.expired, 3, "{p:?}");
    assert!(p.launches >= 4, "{p:?}");
    assert!(p.replica_restarts >= 3, "{p:?}");
    let never = run(r#"expire_after = "Never""#, "", steady, "2h");
    assert_eq!(pool(&never).terminations.expired, 0);
    assert_eq!(pool(&never).launches, 1);
}

// AWS provider: pkg/controllers/interruption/suite_test.go, It("should delete the NodeClaim
// when receiving a spot interruption warning") and It("should mark the ICE cache for the
// offering when getting a spot interruption warning"): each notice drains the node, and the
// replacement launches within the two-minute notice on another offering.
#[test]
fn spot_interruption_drains_and_replaces_at_once() {
    let r = run(
        "interruption_rate = 2.0\nco_interruption = 0.0",
        "",
        r#"{ at = "0s", rps = 5 }"#,
        "3h",
    );
    let p = pool(&r);
    assert!(p.terminations.interrupted >= 2, "{p:?}");
    for notice in r
        .events
        .iter()
        .filter(|e| e.kind == sim::results::EventKind::SpotInterruption)
    {
        let group = notice.node_group.clone().unwrap_or_default();
        let next = r
            .events
            .iter()
            .find(|e| e.kind == sim::results::EventKind::NodeLaunch && e.t_s >= notice.t_s)
            .expect("a replacement launch");
        assert!(
            next.t_s - notice.t_s < 120.0,
            "{} → {}",
            notice.t_s,
            next.t_s
        );
        assert_ne!(
            next.node_group.clone().unwrap_or_default(),
            group,
            "the interrupted offering is blocked for 3 min"
        );
    }
}

// AWS provider: instance.go and pkg/cache/cache.go — spot capacity for 1 node per type, then
// insufficient capacity on each spot offering and on-demand last; the blocked offerings are
// tried again once their 3 minutes are up.
#[test]
fn insufficient_spot_capacity_falls_back_across_types_then_on_demand() {
    let r = run(
        "spot_capacity = 1\ninterruption_rate = 0.0",
        "consolidate_after = \"Never\"",
        r#"{ at = "0s", rps = 60 }"#,
        "20m",
    );
    let p = pool(&r);
    assert!(p.insufficient_capacity >= 3, "{p:?}");
    let spot_types: Vec<&String> = p
        .node_hours_by_offering
        .iter()
        .filter(|(o, _)| o.ends_with("/spot"))
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        spot_types.len(),
        3,
        "one spot node of each type: {spot_types:?}"
    );
    assert!(
        p.launches > p.spot_launches,
        "on-demand after spot ran out: {p:?}"
    );
}

// The knob users ask for: a longer consolidate_after leaves nodes up through short lulls,
// so fewer replicas restart (and pay their start-up again).
#[test]
fn consolidate_after_trades_cost_for_restarts() {
    let bursty = r#"{ at = "0s", rps = 40 }, { at = "20m", rps = 5 }, { at = "30m", rps = 40 }, { at = "50m", rps = 5 }, { at = "1h", rps = 40 }, { at = "1h20m", rps = 5 }"#;
    let eager = run("", r#"consolidate_after = "0s""#, bursty, "2h");
    let patient = run("", r#"consolidate_after = "30m""#, bursty, "2h");
    let (e, p) = (pool(&eager), pool(&patient));
    let disrupted = |x: &sim::results::NodePoolResults| {
        x.terminations.empty
            + x.terminations.underutilized_deleted
            + x.terminations.underutilized_replaced
    };
    assert!(disrupted(e) > disrupted(p), "{e:?}\n{p:?}");
    assert!(e.launches > p.launches, "{e:?}\n{p:?}");
}

// Same seed, byte-identical results.
#[test]
fn karpenter_runs_are_reproducible() {
    let steps = r#"{ at = "0s", rps = 10 }, { at = "10m", rps = 40 }, { at = "30m", rps = 5 }"#;
    let a = run("interruption_rate = 0.5", "", steps, "1h");
    let b = run("interruption_rate = 0.5", "", steps, "1h");
    assert_eq!(
        serde_json::to_string(&a).expect("json"),
        serde_json::to_string(&b).expect("json")
    );
}

#[test]
fn bad_node_pools_get_errors_naming_the_field() {
    let err = |text: &str| {
        Scenario::parse(text, "k.toml", Path::new("."))
            .expect_err("invalid")
            .to_string()
    };
    let api = r#"
[[apis]]
name = "a"
[apis.service_time]
distribution = "constant"
value = "1s"
[apis.traffic]
kind = "poisson"
rps = 1
"#;
    let base = |pool: &str, extra: &str| {
        format!("duration = \"1h\"\n{extra}\n[[node_pools]]\nname = \"p\"\n{pool}\n{api}")
    };
    let e = err(&base(
        r#"requirements = [{ key = "kubernetes.io/os", operator = "In", values = ["linux"] }]"#,
        "",
    ));
    assert!(
        e.contains("node_pools[0].requirements[0].key") && e.contains("unsupported key"),
        "{e}"
    );
    let e = err(&base(
        r#"requirements = [{ key = "karpenter.k8s.aws/instance-family", operator = "In", values = ["x9"] }]"#,
        "",
    ));
    assert!(
        e.contains("node_pools[0].requirements") && e.contains("no instance type"),
        "{e}"
    );
    let e = err(&base(
        "[node_pools.disruption]\nbudgets = [{ nodes = \"1000a%\" }]",
        "",
    ));
    assert!(
        e.contains("node_pools[0].disruption.budgets[0].nodes"),
        "{e}"
    );
    let e = err(&base("[node_pools.disruption]\nbudgets = [{ nodes = \"0\", schedule = \"@weekly\", duration = \"1h\" }]", ""));
    assert!(
        e.contains("budgets[0].schedule") && e.contains("calendar"),
        "{e}"
    );
    let e = err(&base(
        "[node_pools.disruption]\nconsolidation_policy = \"Sometimes\"",
        "",
    ));
    assert!(e.contains("consolidation_policy"), "{e}");
    let e = err(&base("", "[cluster.autoscaler]\nscan_interval = \"20s\""));
    assert!(
        e.contains("cluster.autoscaler") && e.contains("node_pools"),
        "{e}"
    );
    let e = err(&base(
        "",
        "[[node_groups]]\nname = \"g\"\ninstance_type = \"m5.large\"",
    ));
    assert!(e.contains("node_groups[0].min_instances"), "{e}");
    let e = err(&base(r#"expire_after = "soon""#, ""));
    assert!(e.contains("node_pools[0].expire_after"), "{e}");
}

// Upstream: nodepool_budgets_test.go, It("should return 0 for all reasons if a budget is
// active for all reasons"), on a whole run: a nodes "0" budget whose daily window covers the
// run blocks every consolidation; outside its window (here: 12:00–13:00, the run ending at
// 02:00) consolidation goes on.
#[test]
fn a_zero_budget_window_blocks_consolidation() {
    let bursty = r#"{ at = "0s", rps = 40 }, { at = "30m", rps = 5 }, { at = "1h", rps = 40 }, { at = "1h30m", rps = 5 }"#;
    let blocked = run(
        "",
        "budgets = [{ nodes = \"0\", schedule = \"0 0 * * *\", duration = \"3h\" }]",
        bursty,
        "2h",
    );
    let t = &pool(&blocked).terminations;
    assert_eq!(
        t.empty + t.underutilized_deleted + t.underutilized_replaced,
        0,
        "{t:?}"
    );
    let open = run(
        "",
        "budgets = [{ nodes = \"0\", schedule = \"0 12 * * *\", duration = \"1h\" }]",
        bursty,
        "2h",
    );
    let t = &pool(&open).terminations;
    assert!(
        t.empty + t.underutilized_deleted + t.underutilized_replaced > 0,
        "{t:?}"
    );
}
