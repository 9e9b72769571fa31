//! `pod.process_routing`: per-request random routing to processes (the default) against
//! per-connection routing (a multi-process server sharing one listening socket behind a
//! keep-alive proxy).

use std::path::Path;

fn scenario(routing: &str, rps: f64) -> sim::Scenario {
    let text = format!(
        r#"
duration = "120s"
seed = 9
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "q"
[apis.compute]
cpu = "100m"
[apis.pod]
processes_per_replica = 4
threads_per_process = 1
max_queue_length = 1000
{routing}
[apis.service_time]
distribution = "exponential"
mean = "20ms"
[apis.traffic]
kind = "poisson"
rps = {rps}
"#
    );
    sim::Scenario::parse(&text, "routing.toml", Path::new(".")).expect("valid scenario")
}

fn api_json(routing: &str, rps: f64) -> String {
    let r = sim::run(&scenario(routing, rps)).expect("runs");
    serde_json::to_string(&r.apis).expect("json")
}

#[test]
fn per_request_is_the_default_and_per_connection_is_reproducible() {
    let default = api_json("", 120.0);
    assert_eq!(
        default,
        api_json("process_routing = \"per_request\"", 120.0)
    );
    let per_connection = "process_routing = \"per_connection\"";
    let a = api_json(per_connection, 120.0);
    assert_eq!(a, api_json(per_connection, 120.0));
    assert_ne!(a, default);
}

#[test]
fn connections_that_never_stay_open_route_like_requests() {
    // With a 0 s keep-alive every request opens a connection, accepted by a process at random:
    // the same draws in the same order as per-request routing (nothing is rejected here).
    let closed = "process_routing = \"per_connection\"\nkeep_alive_timeout = \"0s\"";
    assert_eq!(api_json(closed, 120.0), api_json("", 120.0));
}

#[test]
fn an_accept_skew_outside_zero_to_one_is_refused_with_its_field() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validate/python-4x1.toml"),
    )
    .expect("scenario")
    .replace("accept_skew = 0.25", "accept_skew = 1.5");
    let err = sim::Scenario::parse(&text, "skew.toml", Path::new("."))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("apis[0].pod.accept_skew"), "{err}");
}

#[test]
fn a_skewed_accept_sends_more_to_the_first_process_and_waits_longer() {
    let mean_wait = |routing: &str| {
        let r = sim::run(&scenario(routing, 120.0)).expect("runs");
        r.apis[0].queue_wait_ms.mean
    };
    let uniform = mean_wait("process_routing = \"per_connection\"");
    let skewed = mean_wait("process_routing = \"per_connection\"\naccept_skew = 0.5");
    assert!(skewed > uniform, "{skewed} ms vs {uniform} ms");
}
