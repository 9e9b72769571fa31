//! One recorded stream of pod metrics, fed to the simulator's autoscaler (the engine's
//! autoscaling room, which takes samples as the engine measures them) and to the controller's
//! (rounds of `/metrics` scrapes: gauges, request counters, in-flight integrals), must give the
//! same decisions tick by tick, for every policy — through a burst, a stretch with no scrapes at
//! all, a scale to zero and the activator's wake-up.
//!
//! The two paths share the core (metric pipeline and decision step) but not their ingest: the
//! engine sums its replicas' in-flight counts and integrates concurrency itself, the controller
//! turns counters into rates and integrals into time-weighted buckets, and holds back the round
//! of a tick's own instant. This test is what keeps those two honest with each other.

use std::path::Path;
use std::time::Duration;

use autoscaler::controller::source::{PodScrape, ScrapeReadings};
use autoscaler::{Decision, PodSample, ReplicaCount};
use sim::engine::autoscaling::ApiAutoscaler;
use sim::SimTime;

/// One pod in one second of the recorded stream.
#[derive(Debug, Clone)]
struct Pod {
    name: String,
    /// In-flight during the whole second (so the integral grows by exactly this much).
    in_flight: u32,
    /// The request counter at the scrape.
    requests: f64,
    /// The in-flight integral at the scrape, request-seconds.
    area: f64,
    born_s: u64,
}

/// One second of the stream: the pods, the activator's held requests, and whether any scrape
/// succeeded.
#[derive(Debug, Clone)]
struct Round {
    t_s: u64,
    pods: Vec<Pod>,
    waiting: u32,
    scraped: bool,
}

const END_S: u64 = 220;

/// Two pods under steady load, a burst, 20 s without any scrape, a quiet stretch in which the
/// pods go away, requests held at zero, one pod back.
fn stream() -> Vec<Round> {
    let mut counters: Vec<(f64, f64)> = vec![(0.0, 0.0); 3];
    let mut rounds = Vec::new();
    for t in 1..=END_S {
        let (pods, per_pod, waiting): (&[usize], u32, u32) = match t {
            0..40 => (&[0, 1], 3, 0),
            40..60 => (&[0, 1], 9, 0),
            60..100 => (&[0, 1], 1, 0),
            100..120 => (&[0, 1], 0, 0),
            120..=150 => (&[], 0, 0),
            151..=155 => (&[], 0, 3),
            _ => (&[2], 2, 0),
        };
        let pods = pods
            .iter()
            .map(|&i| {
                let c = &mut counters[i];
                c.0 += f64::from(per_pod * 2);
                c.1 += f64::from(per_pod);
                Pod {
                    name: format!("http://10.0.0.{i}:8080"),
                    in_flight: per_pod,
                    requests: c.0,
                    area: c.1,
                    born_s: if i == 2 { 156 } else { 0 },
                }
            })
            .collect();
        rounds.push(Round {
            t_s: t,
            pods,
            waiting,
            scraped: !(70..90).contains(&t),
        });
    }
    rounds
}

fn autoscaling(policy: &str) -> sim::scenario::Autoscaling {
    let text = format!(
        r#"
name = "differential"
duration = "220s"
[[node_groups]]
name = "cpu"
instance_type = "c5.4xlarge"
min_instances = 1
max_instances = 4
[[apis]]
name = "model"
[apis.compute]
cpu = "1"
mem = "1Gi"
[apis.pod]
max_concurrency = 4
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "constant"
rps = 1
[apis.autoscaling]
{policy}
"#
    );
    let s = sim::Scenario::parse(&text, "differential.toml", Path::new("."))
        .unwrap_or_else(|e| panic!("{policy}: {e}"));
    s.apis[0].autoscaling.clone()
}

/// What a tick decided, in the terms both paths share.
type Step = (u64, u32, u32, Option<&'static str>, bool, Option<u32>);

fn step(t_s: u64, d: &Decision) -> Step {
    (
        t_s,
        d.spec_replicas,
        d.target,
        d.held.map(|h| h.as_str()),
        d.wake,
        d.recommended,
    )
}

fn current(spec: u32, round: &Round) -> ReplicaCount {
    ReplicaCount {
        spec,
        ready: spec.min(round.pods.len() as u32),
    }
}

/// The engine's path: at a tick, decide before the sample of the same instant; the sample is
/// in-flight plus held (or the time-averaged concurrency) and one sample per pod.
fn engine_path(policy: &str, rounds: &[Round]) -> Vec<Step> {
    let auto = autoscaling(policy);
    let mut a = ApiAutoscaler::new("model", &auto);
    let tick = a.tick_interval().as_duration().as_secs();
    let mut spec = a.initial_replicas();
    let mut out = Vec::new();
    let mut previous: Vec<Pod> = Vec::new();
    let mut previous_s = 0;
    for r in rounds {
        let now = SimTime::from_secs(r.t_s);
        if r.t_s % tick == 0 {
            let d = a.tick(now, current(spec, r), r.waiting);
            out.push(step(r.t_s, &d));
            spec = d.target;
        } else if spec == 0 && r.waiting > 0 {
            let d = a.wake(now, current(spec, r), r.waiting);
            out.push(step(r.t_s, &d));
            spec = d.target;
        }
        if !r.scraped {
            continue;
        }
        let before = |p: &Pod| previous.iter().find(|q| q.name == p.name).cloned();
        // The engine's time average: the concurrency integral (pods and activator) over the
        // time since the previous sample.
        let total = if a.wants_time_average() {
            let area: f64 = r
                .pods
                .iter()
                .map(|p| p.area - before(p).map_or(0.0, |q| q.area))
                .sum();
            let held: f64 = rounds[previous_s as usize..r.t_s as usize]
                .iter()
                .map(|x| f64::from(x.waiting))
                .sum();
            (area + held) / (r.t_s - previous_s) as f64
        } else {
            r.pods.iter().map(|p| f64::from(p.in_flight)).sum::<f64>() + f64::from(r.waiting)
        };
        let pods: Vec<(usize, PodSample)> = r
            .pods
            .iter()
            .enumerate()
            .map(|(slot, p)| {
                (
                    slot,
                    PodSample {
                        ready: true,
                        reported: true,
                        in_flight: f64::from(p.in_flight),
                        busy_fraction: 0.0,
                        arrivals: before(p).map_or(0.0, |q| p.requests - q.requests),
                        age: Duration::from_secs(r.t_s - p.born_s),
                        llm: Default::default(),
                    },
                )
            })
            .collect();
        a.sample(now, total, &pods);
        previous = r.pods.clone();
        previous_s = r.t_s;
    }
    out
}

/// The controller's path: every round of scrapes is recorded as it finishes (the activator is
/// one more target exporting its held requests), and a tick reads what was taken before it.
fn controller_path(policy: &str, rounds: &[Round]) -> Vec<Step> {
    let auto = autoscaling(policy);
    let mut decisions = auto.decision_step();
    let tick = decisions.tick_interval().as_secs();
    let mut readings = ScrapeReadings::new(
        decisions.metric_spec(),
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    let mut spec = decisions.initial_target();
    // The activator is scraped like a pod where the metric is an API-wide total.
    let activator_scraped = matches!(
        decisions.metric_spec(),
        autoscaler::MetricSpec::InFlightWindowAverage { .. }
            | autoscaler::MetricSpec::StableAndPanicConcurrency { .. }
    );
    let mut activator_area = 0.0;
    let mut out = Vec::new();
    for r in rounds {
        let now = Duration::from_secs(r.t_s);
        activator_area += f64::from(r.waiting);
        if r.scraped {
            let mut answers: Vec<(String, Option<PodScrape>)> = r
                .pods
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        Some(PodScrape {
                            in_flight: Some(f64::from(p.in_flight)),
                            requests: Some(p.requests),
                            in_flight_seconds: Some(p.area),
                            ready: true,
                            vllm: Default::default(),
                        }),
                    )
                })
                .collect();
            if activator_scraped {
                answers.push((
                    "http://activator:8012".into(),
                    Some(PodScrape {
                        in_flight: Some(f64::from(r.waiting)),
                        requests: None,
                        in_flight_seconds: Some(activator_area),
                        ready: true,
                        vllm: Default::default(),
                    }),
                ));
            }
            readings.record(now, answers);
        }
        let wake = spec == 0 && r.waiting > 0;
        if r.t_s % tick == 0 || wake {
            let mut reading = readings.reading(now);
            reading.waiting_requests = r.waiting;
            let d = decisions.decide(now, current(spec, r), &reading);
            out.push(step(r.t_s, &d));
            spec = d.target;
        }
    }
    out
}

fn same_decisions(policy: &str) -> Vec<Step> {
    let rounds = stream();
    let engine = engine_path(policy, &rounds);
    let controller = controller_path(policy, &rounds);
    assert_eq!(
        engine.len(),
        controller.len(),
        "{policy}\nengine {engine:?}\ncontroller {controller:?}"
    );
    for (e, c) in engine.iter().zip(&controller) {
        assert_eq!(e, c, "{policy}: engine {e:?} vs controller {c:?}");
    }
    engine
}

fn targets(steps: &[Step]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for s in steps {
        if out.last() != Some(&s.2) {
            out.push(s.2);
        }
    }
    out
}

#[test]
fn cortex_scales_holds_goes_to_zero_and_wakes_the_same_in_both() {
    let steps = same_decisions(
        "policy = \"cortex\"\nmin_replicas = 0\ninit_replicas = 2\nmax_replicas = 10\nwindow = \"10s\"\ndownscale_stabilization_period = \"0s\"\nupscale_stabilization_period = \"0s\"",
    );
    assert!(
        steps.iter().any(|s| s.3 == Some("metric missing or stale")),
        "the scrape outage holds: {steps:?}"
    );
    let t = targets(&steps);
    assert!(t.iter().max() > Some(&2), "the burst scales up: {t:?}");
    let zero = t.iter().position(|&n| n == 0).expect("scales to zero");
    assert!(t[zero + 1..].contains(&1), "wakes up: {t:?}");
    assert!(steps.iter().any(|s| s.4), "a wake-up decision: {steps:?}");
}

#[test]
fn kpa_panics_goes_to_zero_and_wakes_the_same_in_both() {
    let steps = same_decisions(
        "policy = \"kpa\"\nmin_replicas = 0\nmax_replicas = 10\ninitial_scale = 2\ncontainer_concurrency = 4\nstable_window = \"20s\"\nscale_to_zero_grace_period = \"0s\"",
    );
    assert!(steps.iter().any(|s| s.3.is_some()), "holds: {steps:?}");
    let t = targets(&steps);
    assert!(t.iter().max() > Some(&2), "{t:?}");
    let zero = t.iter().position(|&n| n == 0).expect("scales to zero");
    assert!(t[zero + 1..].iter().any(|&n| n >= 1), "wakes up: {t:?}");
}

#[test]
fn hpa_on_pod_concurrency_and_rate_the_same_in_both() {
    for metric in [
        "metric = \"concurrency\"\ntarget_average_value = 2",
        "metric = \"rps\"\ntarget_average_value = 4",
    ] {
        let steps = same_decisions(&format!(
            "policy = \"hpa\"\nmin_replicas = 1\nmax_replicas = 10\n{metric}\ndownscale_stabilization = \"30s\""
        ));
        assert!(
            steps
                .iter()
                .any(|s| s.3 == Some("no pod reported the metric")),
            "{metric}: holds with no pod metric: {steps:?}"
        );
        assert!(targets(&steps).len() >= 3, "{metric}: {steps:?}");
    }
}

#[test]
fn hpa_on_an_external_total_the_same_in_both() {
    let steps = same_decisions(
        "policy = \"hpa\"\nmin_replicas = 1\nmax_replicas = 10\nmetric = \"external_in_flight\"\ntarget_average_value = 2\nmetric_window = \"10s\"",
    );
    assert!(targets(&steps).len() >= 3, "{steps:?}");
}

#[test]
fn fixed_the_same_in_both() {
    let steps = same_decisions("policy = \"fixed\"\nmin_replicas = 3");
    assert_eq!(targets(&steps), vec![3]);
}
