//! `[[routers]]` and `[[pipelines]]` -> [`Router`]s and [`Pipeline`]s: which APIs a router
//! splits its requests between (by weight, Cortex's TrafficSplitter rules, or by class), its
//! shadow and its weight steps; which APIs a pipeline chains. The APIs behind a router or in a
//! pipeline take their requests from it alone.

use std::path::Path;

use super::diagnostics::{FieldError, LoadError};
use super::fields::{check_slo, not_request_level};
use super::model::Api;
use super::schema::{RouterSpec, ScenarioFile, SloSpec, TrafficSpec};
use super::traffic;
use crate::time::SimTime;
use crate::traffic::Traffic;

/// Most stages a pipeline may have.
const MAX_STAGES: usize = 16;
/// Most routers, and most pipelines, a scenario may have (a request's record holds its
/// pipeline as a `u16`).
const MAX_FEEDS: usize = 1_000;

/// A validated router.
#[derive(Debug, Clone)]
pub struct Router {
    /// Unique among routers and pipelines.
    pub name: String,
    /// Its arrivals.
    pub traffic: Traffic,
    /// The APIs of its `apis` list (scenario indices), the shadow among them.
    pub routes: Vec<Route>,
    /// Weights per route (same order as `routes`; the shadow's is its copy percentage) from
    /// each time on; the first at 0, the only one when routing by class.
    pub weights: Vec<(SimTime, Vec<u32>)>,
    /// Routing by class: each class with its share (normalised to sum to 1) and API.
    pub classes: Vec<RouteClass>,
}

impl Router {
    /// The index in `routes` of the shadow, if the router has one.
    pub fn shadow(&self) -> Option<usize> {
        self.routes.iter().position(|r| r.shadow)
    }
}

/// One API behind a router.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Scenario index of the API.
    pub api: usize,
    /// It receives copies whose answers are discarded.
    pub shadow: bool,
}

/// A class of requests and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteClass {
    /// As written.
    pub name: String,
    /// Fraction of the requests (the classes' fractions sum to 1).
    pub share: f64,
    /// Scenario index of the API serving it.
    pub api: usize,
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Unique among routers and pipelines.
    pub name: String,
    /// Arrivals at the first stage.
    pub traffic: Traffic,
    /// Scenario indices of the stages' APIs, in order.
    pub stages: Vec<usize>,
    /// Objectives on end-to-end figures.
    pub slo: SloSpec,
}

/// Who feeds API `name`, as a phrase for errors ("router \"front\""), when a router or a
/// pipeline does.
pub(super) fn feeder_of(file: &ScenarioFile, name: &str) -> Option<String> {
    let routed = file
        .routers
        .iter()
        .find(|r| r.apis.iter().any(|a| a.name == name) || r.classes.iter().any(|c| c.api == name));
    if let Some(r) = routed {
        return Some(format!("router {:?}", r.name));
    }
    file.pipelines
        .iter()
        .find(|p| p.stages.iter().any(|s| s == name))
        .map(|p| format!("pipeline {:?}", p.name))
}

/// Build every router and pipeline; `apis` are the scenario's, already built.
pub(super) fn build(
    file: &ScenarioFile,
    apis: &[Api],
    base_dir: &Path,
) -> Result<(Vec<Router>, Vec<Pipeline>), LoadError> {
    // Which router or pipeline already feeds each API.
    let mut fed: Vec<Option<String>> = vec![None; apis.len()];
    // Routers' and pipelines' names are timeline subjects beside the APIs'.
    let mut names: Vec<&str> = apis.iter().map(|a| a.name.as_str()).collect();
    for (section, n) in [
        ("routers", file.routers.len()),
        ("pipelines", file.pipelines.len()),
    ] {
        if n > MAX_FEEDS {
            return Err(FieldError::new(
                section,
                format!("expected at most {MAX_FEEDS} entries, found {n}"),
            )
            .into());
        }
    }
    let mut routers = Vec::with_capacity(file.routers.len());
    for (i, spec) in file.routers.iter().enumerate() {
        let path = format!("routers[{i}]");
        check_name(&spec.name, &path, &mut names)?;
        routers.push(router(spec, &path, file, apis, &mut fed, base_dir)?);
    }
    let mut pipelines = Vec::with_capacity(file.pipelines.len());
    for (i, spec) in file.pipelines.iter().enumerate() {
        let path = format!("pipelines[{i}]");
        check_name(&spec.name, &path, &mut names)?;
        let traffic = feed_traffic(&spec.traffic, &path, base_dir, false)?;
        if spec.stages.is_empty() || spec.stages.len() > MAX_STAGES {
            return Err(FieldError::new(
                format!("{path}.stages"),
                format!(
                    "expected 1 to {MAX_STAGES} API names, found {}",
                    spec.stages.len()
                ),
            )
            .into());
        }
        let mut stages = Vec::with_capacity(spec.stages.len());
        for (j, stage) in spec.stages.iter().enumerate() {
            let at = format!("{path}.stages[{j}]");
            let a = api_index(apis, stage, &at)?;
            let api = &apis[a];
            if let Some(what) = not_request_level(api.llm.is_some(), api.is_async) {
                return Err(FieldError::new(
                    at,
                    format!("pipeline stages are request-level APIs; {stage:?} is {what}"),
                )
                .into());
            }
            claim(&mut fed, a, &format!("pipeline {:?}", spec.name), &at)?;
            stages.push(a);
        }
        let slo = match &spec.slo {
            Some(own) => {
                check_slo(own, &format!("{path}.slo"), file.duration.0)?;
                end_to_end_only(own, &format!("{path}.slo"))?;
                own.clone()
            }
            // The scenario's objectives that apply to a request end to end.
            None => end_to_end_slo(&file.slo),
        };
        pipelines.push(Pipeline {
            name: spec.name.clone(),
            traffic,
            stages,
            slo,
        });
    }
    Ok((routers, pipelines))
}

fn router(
    spec: &RouterSpec,
    path: &str,
    file: &ScenarioFile,
    apis: &[Api],
    fed: &mut [Option<String>],
    base_dir: &Path,
) -> Result<Router, LoadError> {
    let mut traffic = feed_traffic(&spec.traffic, path, base_dir, true)?;
    let who = format!("router {:?}", spec.name);
    if let Some(column) = &spec.class_column {
        let trace = match &mut traffic {
            Traffic::Trace(t) if t.format == crate::recorded::TraceFormat::Timestamps => t,
            _ => {
                return Err(FieldError::new(
                    format!("{path}.class_column"),
                    "classes are read from a trace of one row per request: give the router traffic of kind = \"trace\" in the timestamps CSV format",
                )
                .into())
            }
        };
        if spec.classes.is_empty() {
            return Err(FieldError::new(
                format!("{path}.classes"),
                "class_column names each request's class: list the classes and their APIs, `classes = [{ name, api }]`",
            )
            .into());
        }
        trace.options.class_column = Some(column.clone());
        trace.options.classes = spec.classes.iter().map(|c| c.name.clone()).collect();
    }
    if spec.apis.is_empty() && spec.classes.is_empty() {
        return Err(FieldError::new(
            format!("{path}.apis"),
            "a router needs APIs to route to: `apis = [{ name, weight }]` (weights summing to 100) or `classes = [{ name, share, api }]`",
        )
        .into());
    }
    let mut routes = Vec::with_capacity(spec.apis.len());
    let mut weights = Vec::with_capacity(spec.apis.len());
    for (j, route) in spec.apis.iter().enumerate() {
        let at = format!("{path}.apis[{j}]");
        if spec.apis[..j].iter().any(|r| r.name == route.name) {
            // Cortex: `traffic_splitter_apis_not_unique`.
            return Err(FieldError::new(
                format!("{at}.name"),
                format!("{:?} is listed twice: each API once", route.name),
            )
            .into());
        }
        let a = api_index(apis, &route.name, &format!("{at}.name"))?;
        if route.weight > 100 {
            return Err(FieldError::new(
                format!("{at}.weight"),
                format!(
                    "expected a percentage from 0 to 100, found {}",
                    route.weight
                ),
            )
            .into());
        }
        if route.shadow && spec.apis[..j].iter().any(|r| r.shadow) {
            // Cortex: `one_shadow_per_traffic_splitter`.
            return Err(FieldError::new(
                format!("{at}.shadow"),
                "only one API of a router may be its shadow",
            )
            .into());
        }
        if !route.shadow && !spec.classes.is_empty() {
            return Err(FieldError::new(
                format!("{at}.name"),
                "a router with classes sends each request to its class's API: `apis` may only hold the shadow",
            )
            .into());
        }
        claim(fed, a, &who, &format!("{at}.name"))?;
        routes.push(Route {
            api: a,
            shadow: route.shadow,
        });
        weights.push(route.weight);
    }
    let mut classes = Vec::with_capacity(spec.classes.len());
    let read = spec.class_column.is_some();
    let total: f64 = spec.classes.iter().filter_map(|c| c.share).sum();
    for (j, class) in spec.classes.iter().enumerate() {
        let at = format!("{path}.classes[{j}]");
        if class.name.is_empty() || spec.classes[..j].iter().any(|c| c.name == class.name) {
            return Err(FieldError::new(
                format!("{at}.name"),
                format!(
                    "expected a unique, non-empty class name, found {:?}",
                    class.name
                ),
            )
            .into());
        }
        let share = match (class.share, read) {
            (Some(_), true) => {
                return Err(FieldError::new(
                    format!("{at}.share"),
                    "the trace's class column decides each request's class: leave share out",
                )
                .into())
            }
            (None, true) => 0.0,
            (None, false) => {
                return Err(FieldError::new(
                    format!("{at}.share"),
                    "required: the class's share of the requests (or read classes from a trace with class_column)",
                )
                .into())
            }
            (Some(share), false) if share.is_finite() && share > 0.0 => share / total,
            (Some(share), false) => {
                return Err(FieldError::new(
                    format!("{at}.share"),
                    format!("expected a number > 0, found {share}"),
                )
                .into())
            }
        };
        let a = api_index(apis, &class.api, &format!("{at}.api"))?;
        if !spec.classes[..j].iter().any(|c| c.api == class.api) {
            claim(fed, a, &who, &format!("{at}.api"))?;
        }
        classes.push(RouteClass {
            name: class.name.clone(),
            share,
            api: a,
        });
    }
    if classes.is_empty() {
        check_total(&routes, &weights, &format!("{path}.apis"))?;
    }
    let mut steps = vec![(SimTime::ZERO, weights)];
    for (k, step) in spec.steps.iter().enumerate() {
        let at = format!("{path}.steps[{k}]");
        if !classes.is_empty() {
            return Err(FieldError::new(
                at,
                "steps change weights; a router with classes has none",
            )
            .into());
        }
        let previous = steps.last().map_or(SimTime::ZERO, |s| s.0);
        if step.at.0 <= previous && k > 0 || step.at.0 > file.duration.0 {
            return Err(FieldError::new(
                format!("{at}.at"),
                format!(
                    "expected times in increasing order within the run, found {}",
                    step.at
                ),
            )
            .into());
        }
        let mut next = steps.last().map(|s| s.1.clone()).unwrap_or_default();
        for (name, &weight) in &step.weights {
            let Some(j) = spec.apis.iter().position(|r| &r.name == name) else {
                return Err(FieldError::new(
                    format!("{at}.weights"),
                    format!(
                        "{name:?} is not one of this router's apis ({})",
                        spec.apis
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .into());
            };
            if weight > 100 {
                return Err(FieldError::new(
                    format!("{at}.weights"),
                    format!("expected percentages from 0 to 100, found {weight} for {name:?}"),
                )
                .into());
            }
            next[j] = weight;
        }
        check_total(&routes, &next, &format!("{at}.weights"))?;
        if step.at.0 == SimTime::ZERO {
            steps[0].1 = next;
        } else {
            steps.push((step.at.0, next));
        }
    }
    Ok(Router {
        name: spec.name.clone(),
        traffic,
        routes,
        weights: steps,
        classes,
    })
}

/// Cortex's `verifyTotalWeight`: the weights of the non-shadow APIs sum to 100.
fn check_total(routes: &[Route], weights: &[u32], path: &str) -> Result<(), FieldError> {
    let total: u32 = routes
        .iter()
        .zip(weights)
        .filter(|(r, _)| !r.shadow)
        .map(|(_, w)| w)
        .sum();
    if total == 100 {
        return Ok(());
    }
    Err(FieldError::new(
        path,
        format!("expected the weights of the non-shadow APIs to sum to 100, found {total}"),
    ))
}

/// A router's or pipeline's traffic. A pipeline's stages draw their own service times, so a
/// recorded one has nowhere to go.
fn feed_traffic(
    spec: &TrafficSpec,
    path: &str,
    base_dir: &Path,
    recorded_service: bool,
) -> Result<Traffic, LoadError> {
    if !recorded_service && (spec.service_column.is_some() || spec.use_recorded_service.is_some()) {
        return Err(FieldError::new(
            format!("{path}.traffic.service_column"),
            "each stage of a pipeline draws its own service time: leave out recorded service times",
        )
        .into());
    }
    for (field, set) in [
        ("input_column", spec.input_column.is_some()),
        ("output_column", spec.output_column.is_some()),
    ] {
        if set {
            return Err(FieldError::new(
                format!("{path}.traffic.{field}"),
                "token lengths are an LLM API's: give them in the API's [apis.llm]",
            )
            .into());
        }
    }
    traffic::build(spec, &format!("{path}.traffic"), base_dir)
}

/// A name unique among APIs, routers and pipelines (a pipeline's timeline series are named after
/// it, beside the APIs').
fn check_name<'a>(name: &'a str, path: &str, names: &mut Vec<&'a str>) -> Result<(), FieldError> {
    if name.is_empty() || name.contains('/') {
        return Err(FieldError::new(
            format!("{path}.name"),
            format!("expected a non-empty name without '/', found {name:?}"),
        ));
    }
    if names.contains(&name) {
        return Err(FieldError::new(
            format!("{path}.name"),
            format!(
                "expected a name unique among APIs, routers and pipelines, found {name:?} twice"
            ),
        ));
    }
    names.push(name);
    Ok(())
}

fn api_index(apis: &[Api], name: &str, path: &str) -> Result<usize, FieldError> {
    apis.iter().position(|a| a.name == name).ok_or_else(|| {
        FieldError::new(
            path,
            format!(
                "no API named {name:?} (APIs: {})",
                apis.iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Record that `who` feeds API `a`; an API takes its requests from one router or pipeline.
fn claim(fed: &mut [Option<String>], a: usize, who: &str, path: &str) -> Result<(), FieldError> {
    if let Some(other) = &fed[a] {
        return Err(FieldError::new(
            path,
            format!("this API already takes its requests from {other}: an API is behind one router or in one pipeline"),
        ));
    }
    fed[a] = Some(who.to_string());
    Ok(())
}

/// The objectives of `slo` that apply to a request end to end (latency percentiles, rejection
/// and timeout rates): a pipeline without an SLO of its own is judged on these of the
/// scenario's `[slo]` (or of `[tune] slo` when tuning).
pub fn end_to_end_slo(slo: &SloSpec) -> SloSpec {
    SloSpec {
        latency_p50: slo.latency_p50,
        latency_p99: slo.latency_p99,
        latency_p999: slo.latency_p999,
        max_rejection_rate: slo.max_rejection_rate,
        max_timeout_rate: slo.max_timeout_rate,
        ..SloSpec::default()
    }
}

/// A pipeline's SLO judges whole requests: no warmup, no token-level objectives.
fn end_to_end_only(slo: &SloSpec, path: &str) -> Result<(), FieldError> {
    for (field, set) in [
        ("warmup", slo.warmup.is_some()),
        ("ttft_p99", slo.ttft_p99.is_some()),
        ("itl_p99", slo.itl_p99.is_some()),
        ("min_goodput", slo.min_goodput.is_some()),
    ] {
        if set {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                "a pipeline's SLO holds latency_p50/p99/p999, max_rejection_rate and max_timeout_rate on end-to-end figures: leave it out",
            ));
        }
    }
    Ok(())
}
