//! Loading a scenario file into a validated [`Scenario`].
//!
//! Errors name the file, the line and column, the field's path (`apis[0].pod.threads_per_process`)
//! and what was expected. Parsing happens in two passes: serde reads the file into the
//! [`schema`] types (type errors and unknown fields), then [`Scenario::from_file`] checks values and
//! cross-field rules and builds the typed model the engine runs. Errors of the second pass carry
//! a field path that is looked up in the TOML syntax tree to find its line.
//!
//! One module per part of the spec: [`schema`] (the file as written), `diagnostics` (errors and
//! their location), `model` (the validated types), `cluster`, `apis`, `batch`, `traffic`,
//! `service_time` and [`policy`] (spec -> model, one part each) and `fields` (checks they
//! share). The runtime modules ([`crate::traffic`], [`crate::service_time`],
//! [`crate::recorded`]) know nothing of the spec: this module depends on them, never the reverse.

pub(crate) mod apis;
mod batch;
mod cluster;
mod diagnostics;
pub(crate) mod fields;
mod karpenter;
mod llm;
mod model;
pub mod policy;
mod relocate;
mod routing;
pub mod schema;
mod service_time;
pub mod startup;
mod tenancy_design;
mod tenants;
mod traffic;
mod vpa;
mod work;

use std::path::Path;

use crate::time::SimTime;
use crate::units::DurationSpec;
use diagnostics::{locate, parse_file};
use fields::check_slo;
use schema::ScenarioFile;

pub use diagnostics::ScenarioError;
pub(crate) use diagnostics::{FieldError, LoadError};
pub use llm::{LlmModel, LlmRouting, TokenLengths};
pub use model::{
    Api, BatchJob, ClusterAutoscaler, Expander, NodeGroup, Placeholder, QosClass, Requests,
    Scenario, SpotMix,
};
pub use policy::{Autoscaling, Overprovisioning, PolicyChoice};
pub use relocate::relocate;
pub use routing::{end_to_end_slo, Pipeline, Route, RouteClass, Router};
pub use startup::{ModelSource, StartupModel};
pub use tenants::{QueueDiscipline, Tenant, TokenBucket};
pub use vpa::{UpdateMode, Vpa};
pub use work::WorkEstimate;

impl Scenario {
    /// Read, parse and validate a scenario file. Relative trace paths resolve against the
    /// scenario file's directory.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: display.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read scenario: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Scenario::parse(&text, &display, &base)
    }

    /// Parse and validate scenario text; `file_name` is used in errors and `base_dir` to resolve
    /// relative paths.
    pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
        let file = parse_file(text, file_name)?;
        Scenario::from_file(file, base_dir).map_err(|e| match e {
            LoadError::Field(field) => locate(text, file_name, field),
            LoadError::Other(other) => other,
        })
    }

    fn from_file(file: ScenarioFile, base_dir: &Path) -> Result<Scenario, LoadError> {
        let duration = file.duration.0;
        if duration == SimTime::ZERO {
            return Err(FieldError::new("duration", "expected a duration > 0").into());
        }
        let timeline_step = match file.timeline_step {
            Some(step) if step.0 == SimTime::ZERO => {
                return Err(
                    FieldError::new("timeline_step", "expected a duration > 0, found 0s").into(),
                )
            }
            Some(step) => step.0,
            None => default_timeline_step(duration),
        };
        check_slo(&file.slo, "slo", duration)?;
        if let Some(tune) = &file.tune {
            if let Some(slo) = &tune.slo {
                check_slo(slo, "tune.slo", duration)?;
            }
            if tune.seeds.is_some_and(|s| s > MAX_TUNE_SEEDS) {
                return Err(FieldError::new(
                    "tune.seeds",
                    format!(
                        "expected at most {MAX_TUNE_SEEDS} seeds per candidate, found {}",
                        tune.seeds.unwrap_or_default()
                    ),
                )
                .into());
            }
        }
        let fee = file.cluster.control_plane_usd_per_hour;
        if !(0.0..=fields::MAX_PRICE_USD_PER_HOUR).contains(&fee) {
            return Err(FieldError::new(
                "cluster.control_plane_usd_per_hour",
                format!(
                    "expected a price from 0 to {} USD per hour, found {fee}",
                    fields::MAX_PRICE_USD_PER_HOUR
                ),
            )
            .into());
        }
        // More timeline points than this hold memory for nothing a chart can show.
        if timeline_step.as_secs_f64() * MAX_TIMELINE_POINTS < duration.as_secs_f64() {
            return Err(FieldError::new(
                "timeline_step",
                format!(
                    "expected at least {:.3}s (duration / {MAX_TIMELINE_POINTS}), found {}",
                    duration.as_secs_f64() / MAX_TIMELINE_POINTS,
                    DurationSpec(timeline_step)
                ),
            )
            .into());
        }
        let catalog = cluster::build_catalog(&file)?;
        let mut node_groups = if file.node_groups.is_empty() && !file.node_pools.is_empty() {
            Vec::new()
        } else {
            cluster::build_node_groups(&file, &catalog)?
        };
        let karpenter = karpenter::build_karpenter(&file, &catalog, &mut node_groups)?;
        if file.apis.is_empty() && file.batch_jobs.is_empty() {
            return Err(FieldError::new(
                "apis",
                "expected at least one [[apis]] or [[batch_jobs]] entry",
            )
            .into());
        }
        let mut cluster_autoscaler = cluster::build_cluster_autoscaler(&file.cluster.autoscaler)?;
        if karpenter.is_some() {
            cluster_autoscaler.enabled = false;
        }
        let mut placeholders = Vec::new();
        for (i, p) in file.overprovisioning.iter().enumerate() {
            let path = format!("overprovisioning[{i}]");
            let groups =
                cluster::group_selector(&p.node_groups, &p.tolerations, &node_groups, &path)?;
            let requests = Requests {
                cpu_m: p.cpu.millicores(),
                mem_mib: p.mem.mebibytes(),
                gpu: p.gpu,
                ..Requests::default()
            };
            cluster::check_fits(requests, &groups, &node_groups, &path, "a placeholder pod")?;
            placeholders.push(Placeholder {
                node_groups: groups,
                replicas: fields::at_most(
                    p.replicas,
                    fields::MAX_FLEET,
                    format!("{path}.replicas"),
                )?,
                requests,
                priority: p.priority,
            });
        }
        let mut apis = Vec::with_capacity(file.apis.len());
        for (i, spec) in file.apis.iter().enumerate() {
            let path = format!("apis[{i}]");
            if file.apis[..i].iter().any(|a| a.name == spec.name) {
                return Err(FieldError::new(
                    format!("{path}.name"),
                    format!("duplicate API name \"{}\"", spec.name),
                )
                .into());
            }
            apis.push(apis::build_api(spec, &path, &file, &node_groups, base_dir)?);
        }
        let shared_used = apis.iter().any(|a| a.tenants.iter().any(|t| t.shared));
        if !file.tenants.is_empty() && !shared_used {
            return Err(FieldError::new(
                "tenants",
                "no API takes these tenants: they feed APIs that have neither [apis.traffic] nor [[apis.tenants]]",
            )
            .into());
        }
        let (routers, pipelines) = routing::build(&file, &apis, base_dir)?;
        let mut batch_jobs = Vec::with_capacity(file.batch_jobs.len());
        for (i, spec) in file.batch_jobs.iter().enumerate() {
            let path = format!("batch_jobs[{i}]");
            if file.batch_jobs[..i].iter().any(|j| j.name == spec.name) {
                return Err(FieldError::new(
                    format!("{path}.name"),
                    format!("duplicate batch job name \"{}\"", spec.name),
                )
                .into());
            }
            batch_jobs.push(batch::build_batch_job(spec, &path, &node_groups, base_dir)?);
        }
        let tenancy = file.tenancy.clone();
        let mut scenario = Scenario {
            name: file.name.clone().unwrap_or_else(|| "scenario".into()),
            duration,
            seed: file.seed,
            timeline_step,
            control_plane_usd_per_hour: file.cluster.control_plane_usd_per_hour,
            node_groups,
            apis,
            cluster_autoscaler,
            karpenter,
            placeholders,
            batch_jobs,
            routers,
            pipelines,
            file,
        };
        if let Some(tenancy) = &tenancy {
            tenancy_design::apply(&mut scenario, tenancy)?;
        }
        Ok(scenario)
    }
}

impl Scenario {
    /// Multiply every API's traffic by `factor` (a growth what-if: 2 = twice the requests),
    /// in the model and in the file echoed into the results. A factor of 1 changes nothing.
    /// Batch jobs are left as they are.
    pub fn scale_traffic(&mut self, factor: f64) {
        if factor == 1.0 {
            return;
        }
        for api in &mut self.apis {
            api.traffic = api.traffic.scaled(factor);
            for tenant in &mut api.tenants {
                tenant.traffic = tenant.traffic.scaled(factor);
            }
        }
        for router in &mut self.routers {
            router.traffic = router.traffic.scaled(factor);
        }
        for pipeline in &mut self.pipelines {
            pipeline.traffic = pipeline.traffic.scaled(factor);
        }
        let file = &mut self.file;
        let specs = file.apis.iter_mut().flat_map(|a| {
            a.traffic
                .iter_mut()
                .chain(a.tenants.iter_mut().map(|t| &mut t.traffic))
        });
        let feeds = file
            .routers
            .iter_mut()
            .map(|r| &mut r.traffic)
            .chain(file.pipelines.iter_mut().map(|p| &mut p.traffic));
        for t in specs
            .chain(file.tenants.iter_mut().map(|t| &mut t.traffic))
            .chain(feeds)
        {
            t.rps = t.rps.map(|r| r * factor);
            t.mean_rps = t.mean_rps.map(|r| r * factor);
            if let Some(steps) = &mut t.steps {
                steps.iter_mut().for_each(|s| s.rps *= factor);
            }
            if t.kind == "trace" {
                t.rate_scale = Some(t.rate_scale.unwrap_or(1.0) * factor);
            }
        }
    }
}

/// 10 s, widened to whole minutes when the run would have more than 2,000 points.
/// Most seeds a tune may run each candidate on.
const MAX_TUNE_SEEDS: u32 = 1_000;

/// Most timeline points a run may ask for with `timeline_step`.
const MAX_TIMELINE_POINTS: f64 = 100_000.0;

fn default_timeline_step(duration: SimTime) -> SimTime {
    const MAX_POINTS: u64 = 2_000;
    let ten_s = SimTime::from_secs(10);
    if duration.0 / ten_s.0 <= MAX_POINTS {
        return ten_s;
    }
    let minute = SimTime::from_secs(60).0;
    let raw = duration.0.div_ceil(MAX_POINTS);
    SimTime(raw.div_ceil(minute) * minute)
}

/// What the manifests of a scenario are made from: the file as deployed (its `[tenancy]` design
/// applied), per API the validated replica shape, and a note when the design needs more than
/// the manifests say. Reads no trace or sample file, so it works wherever the text is.
pub(crate) fn deployable(
    text: &str,
    file_name: &str,
) -> Result<(ScenarioFile, Vec<apis::ReplicaShape>, Option<String>), ScenarioError> {
    let mut file = parse_file(text, file_name)?;
    // The NodePools are written from the file's text: check them as a run would first.
    if !file.node_pools.is_empty() {
        cluster::build_catalog(&file)
            .and_then(|catalog| {
                let mut groups = if file.node_groups.is_empty() {
                    Vec::new()
                } else {
                    cluster::build_node_groups(&file, &catalog)?
                };
                karpenter::build_karpenter(&file, &catalog, &mut groups)
            })
            .map_err(|field| locate(text, file_name, field))?;
    }
    let note = tenancy_design::deployed_file(&mut file);
    let shapes = file
        .apis
        .iter()
        .enumerate()
        .map(|(i, spec)| apis::replica_shape(spec, &format!("apis[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|field| locate(text, file_name, field))?;
    Ok((file, shapes, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
duration = "1h"

[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1

[[apis]]
name = "echo"
[apis.pod]
threads_per_process = 2
[apis.service_time]
distribution = "constant"
value = "100ms"
[apis.traffic]
kind = "poisson"
rps = 5
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "t.toml", Path::new("."))
    }

    #[test]
    fn absurd_sizes_prices_and_nan_are_refused_with_their_field() {
        for (edit, field) in [
            (
                "duration = \"1h\"\n[cluster]\ncontrol_plane_usd_per_hour = inf\n",
                "cluster.control_plane_usd_per_hour",
            ),
            (
                "duration = \"1h\"\n[cluster]\ncontrol_plane_usd_per_hour = nan\n",
                "cluster.control_plane_usd_per_hour",
            ),
            (
                "duration = \"1h\"\n[cluster]\ncontrol_plane_usd_per_hour = -1\n",
                "cluster.control_plane_usd_per_hour",
            ),
            ("duration = \"1h\"\ntimeline_step = \"1ns\"\n", "timeline_step"),
            ("duration = \"600years\"\n", "duration"),
            (
                "duration = \"1h\"\n[tune]\nslo = { max_rejection_rate = nan }\nspace = {}\n",
                "tune.slo.max_rejection_rate",
            ),
            (
                "duration = \"1h\"\n[tune]\nseeds = 4294967295\nspace = {}\n",
                "tune.seeds",
            ),
            (
                "duration = \"1h\"\n[[instance_types]]\nname = \"x\"\ncpu = \"4\"\nmem = \"16Gi\"\nprice_usd_per_hour = 1e308\n",
                "instance_types[0].price_usd_per_hour",
            ),
        ] {
            let text = MINIMAL.replace("duration = \"1h\"\n", edit);
            let e = parse(&text).expect_err(edit);
            assert_eq!(e.field.as_deref(), Some(field), "{edit}: {e}");
            assert!(e.line.is_some(), "{edit}: located: {e}");
        }
    }

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = parse(MINIMAL).expect("valid");
        assert_eq!(s.apis[0].threads, 2);
        assert_eq!(s.apis[0].max_queue_length, 100);
        assert_eq!(s.timeline_step, SimTime::from_secs(10));
        assert_eq!(s.seed, 1);
    }

    #[test]
    fn zero_threads_is_located() {
        let text = MINIMAL.replace("threads_per_process = 2", "threads_per_process = 0");
        let e = parse(&text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml:12:23: apis[0].pod.threads_per_process: expected an integer ≥ 1, found 0"
        );
    }

    #[test]
    fn unknown_field_is_located() {
        let text = MINIMAL.replace("rps = 5", "rpss = 5");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(18));
        assert_eq!(e.field.as_deref(), Some("apis[0].traffic.rpss"));
        assert!(e.message.contains("unknown field `rpss`"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let text = MINIMAL.replace("rps = 5", "rps = \"fast\"");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(18));
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn min_above_max_is_rejected() {
        let text = format!("{MINIMAL}[apis.autoscaling]\nmin_replicas = 5\nmax_replicas = 2\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("apis[0].autoscaling.min_replicas"));
        assert_eq!(e.line, Some(20));
    }

    #[test]
    fn replica_that_fits_nowhere_is_rejected() {
        let text = format!("{MINIMAL}[apis.compute]\ngpu = 1\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("fits on no node"), "{e}");
    }

    #[test]
    fn traffic_scales_in_the_model_and_the_echo() {
        let mut s = parse(MINIMAL).expect("valid");
        s.scale_traffic(2.5);
        assert_eq!(
            s.apis[0].traffic,
            crate::traffic::Traffic::Poisson { rps: 12.5 }
        );
        assert_eq!(
            s.file.apis[0].traffic.as_ref().and_then(|t| t.rps),
            Some(12.5)
        );
        let text = MINIMAL.replace(
            "kind = \"poisson\"\nrps = 5",
            "kind = \"steps\"\nsteps = [{ at = \"0s\", rps = 2 }, { at = \"1m\", rps = 4 }]",
        );
        let mut s = parse(&text).expect("valid");
        s.scale_traffic(1.5);
        let rates: Vec<f64> = s.file.apis[0]
            .traffic
            .as_ref()
            .and_then(|t| t.steps.as_ref())
            .expect("steps")
            .iter()
            .map(|x| x.rps)
            .collect();
        assert_eq!(rates, [3.0, 6.0]);
    }

    #[test]
    fn warmup_is_inherited_and_bounded_by_the_run() {
        let text = MINIMAL.replace(
            "duration = \"1h\"",
            "duration = \"1h\"\n[slo]\nwarmup = \"5m\"\nlatency_p99 = \"1s\"",
        );
        let s = parse(&text).expect("valid");
        assert_eq!(
            s.apis[0].slo.warmup.map(|w| w.0),
            Some(SimTime::from_secs(300))
        );
        let e = parse(&text.replace("\"5m\"", "\"2h\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("slo.warmup"), "{e}");
    }

    #[test]
    fn timeline_step_widens_for_long_runs() {
        assert_eq!(
            default_timeline_step(SimTime::from_secs(3600)),
            SimTime::from_secs(10)
        );
        assert_eq!(
            default_timeline_step(SimTime::from_secs(86_400)),
            SimTime::from_secs(60)
        );
    }

    #[test]
    fn taints_keep_untolerating_pods_off_a_group() {
        let text = MINIMAL.replace(
            "min_instances = 1\n",
            "min_instances = 1\ntaints = [\"nvidia.com/gpu:NoSchedule\"]\n",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("apis[0].tolerations"));
        assert!(e.message.contains("cpu (taints: nvidia.com/gpu)"), "{e}");
        let ok = text.replace(
            "name = \"echo\"\n",
            "name = \"echo\"\ntolerations = [\"nvidia.com/gpu\"]\n",
        );
        assert_eq!(parse(&ok).expect("tolerated").apis[0].node_groups, vec![0]);
        let bad = text.replace(":NoSchedule", ":Sometimes");
        assert!(parse(&bad)
            .unwrap_err()
            .message
            .contains("expected key[=value]"));
    }
}
