//! `[[apis.tenants]]` / `[[tenants]]` and `[apis.fairness]` -> [`Tenant`]s and a
//! [`QueueDiscipline`]: who an API's requests come from and how its replicas share out their
//! workers between them.

use std::path::Path;

use super::diagnostics::{FieldError, LoadError};
use super::fields::{check_slo, not_request_level};
use super::schema::{ApiSpec, ScenarioFile, SloSpec, TenantSpec};
use super::traffic;
use crate::time::SimTime;
use crate::traffic::Traffic;

/// Most tenants one API may have (the request record holds a tenant as a `u16`).
const MAX_TENANTS: usize = 1_000;

/// A gateway's token bucket: (requests per second admitted on average, bucket size).
pub type TokenBucket = (f64, u32);

/// One validated tenant of an API.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Unique within the API.
    pub name: String,
    /// Its arrivals.
    pub traffic: Traffic,
    /// Its share of the workers under weighted fair queueing (> 0).
    pub weight: f64,
    /// Under priority queueing, higher starts first.
    pub priority: i32,
    /// The gateway's token bucket as (requests per second, bucket size); `None`: no rate limit.
    pub rate_limit: Option<TokenBucket>,
    /// The gateway's cap on its requests in flight; `None`: no cap.
    pub max_concurrency: Option<u32>,
    /// Its own objectives, when it has some.
    pub slo: Option<SloSpec>,
    /// Declared at the top level (`[[tenants]]`) and shared by several APIs.
    pub shared: bool,
    /// The scope its random streams are named after (`arrivals/<scope>`, `service/<scope>`):
    /// `tenants/<tenant>` for a shared tenant, so every API it feeds sees the same arrivals and
    /// service times; `<api>/<tenant>` for an API's own. A tenancy design that moves the tenant
    /// to an API of its own keeps the scope, so the designs compare on the same requests.
    pub stream: String,
}

pub use workload::fairness::QueueDiscipline;

/// The API's tenants — its own, or the scenario's shared ones when it has neither traffic nor
/// tenants of its own — and its queue discipline. Empty tenants: anonymous traffic. An API fed
/// by a router or a pipeline (`fed_by` names it) has neither.
pub(super) fn build(
    spec: &ApiSpec,
    path: &str,
    file: &ScenarioFile,
    base_dir: &Path,
    fed_by: Option<&str>,
) -> Result<(Vec<Tenant>, QueueDiscipline), LoadError> {
    if let Some(feeder) = fed_by {
        let own = if spec.traffic.is_some() {
            Some("traffic")
        } else if !spec.tenants.is_empty() {
            Some("tenants")
        } else if spec.fairness.is_some() {
            Some("fairness")
        } else {
            None
        };
        if let Some(field) = own {
            return Err(FieldError::new(
                format!("{path}.{field}"),
                format!("this API's requests come from {feeder}: leave out its own {field}"),
            )
            .into());
        }
        return Ok((Vec::new(), QueueDiscipline::Fifo));
    }
    let (specs, shared, list_path) = match (&spec.traffic, spec.tenants.is_empty()) {
        (Some(_), false) => {
            return Err(FieldError::new(
                format!("{path}.tenants"),
                "an API's traffic is either [apis.traffic] or the sum of its [[apis.tenants]]: keep one",
            )
            .into())
        }
        (Some(_), true) => (&[][..], false, String::new()),
        (None, false) => (&spec.tenants[..], false, format!("{path}.tenants")),
        (None, true) if !file.tenants.is_empty() => (&file.tenants[..], true, "tenants".into()),
        (None, true) => {
            return Err(FieldError::new(
                format!("{path}.traffic"),
                "required: [apis.traffic], [[apis.tenants]], top-level [[tenants]], or a [[routers]] or [[pipelines]] entry naming this API",
            )
            .into())
        }
    };
    if specs.len() > MAX_TENANTS {
        return Err(FieldError::new(
            list_path,
            format!(
                "expected at most {MAX_TENANTS} tenants, found {}",
                specs.len()
            ),
        )
        .into());
    }
    let defaults = spec.fairness.clone().unwrap_or_default();
    if spec.fairness.is_some() && specs.is_empty() {
        return Err(FieldError::new(
            format!("{path}.fairness"),
            "fairness is between tenants: give the API [[apis.tenants]] (or leave [apis.fairness] out)",
        )
        .into());
    }
    limits(
        defaults.rate_limit_rps,
        defaults.burst,
        defaults.max_concurrency,
        &format!("{path}.fairness"),
    )?;
    let mut tenants: Vec<Tenant> = Vec::with_capacity(specs.len());
    for (i, t) in specs.iter().enumerate() {
        let at = format!("{list_path}[{i}]");
        let mut t = t.clone();
        if t.rate_limit_rps.is_none() && t.burst.is_none() {
            t.rate_limit_rps = defaults.rate_limit_rps;
            t.burst = defaults.burst;
        }
        t.max_concurrency = t.max_concurrency.or(defaults.max_concurrency);
        let t = &t;
        let stream = if shared {
            format!("tenants/{}", t.name)
        } else {
            format!("{}/{}", spec.name, t.name)
        };
        tenants.push(tenant(t, &at, shared, stream, file.duration.0, base_dir)?);
        if tenants[..i].iter().any(|other| other.name == t.name) {
            return Err(FieldError::new(
                format!("{at}.name"),
                format!("expected a unique tenant name, found {:?} twice", t.name),
            )
            .into());
        }
    }
    let queue = spec.fairness.as_ref().and_then(|f| f.queue.as_deref());
    let discipline = match queue {
        None | Some("fifo") => QueueDiscipline::Fifo,
        Some("weighted_fair") => QueueDiscipline::WeightedFair,
        Some("priority") => QueueDiscipline::Priority,
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.fairness.queue"),
                format!("expected \"fifo\", \"weighted_fair\" or \"priority\", found {other:?}"),
            )
            .into())
        }
    };
    if !tenants.is_empty() {
        let is_async = spec.kind.as_deref() == Some("async");
        if let Some(what) = not_request_level(spec.llm.is_some(), is_async) {
            return Err(FieldError::new(
                list_path,
                format!("tenants are not modelled for {what} yet: give it [apis.traffic] instead"),
            )
            .into());
        }
    }
    Ok((tenants, discipline))
}

fn tenant(
    t: &TenantSpec,
    path: &str,
    shared: bool,
    stream: String,
    duration: SimTime,
    base_dir: &Path,
) -> Result<Tenant, LoadError> {
    if t.name.is_empty() || t.name.contains('/') {
        return Err(FieldError::new(
            format!("{path}.name"),
            format!("expected a non-empty name without '/', found {:?}", t.name),
        )
        .into());
    }
    let traffic = traffic::build(&t.traffic, &format!("{path}.traffic"), base_dir)?;
    let positive = |value: f64, field: &str| {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(FieldError::new(
                format!("{path}.{field}"),
                format!("expected a number > 0, found {value}"),
            ))
        }
    };
    let weight = positive(t.weight.unwrap_or(1.0), "weight")?;
    let (rate_limit, max_concurrency) = limits(t.rate_limit_rps, t.burst, t.max_concurrency, path)?;
    if let Some(slo) = &t.slo {
        check_slo(slo, &format!("{path}.slo"), duration)?;
        // Judged on the tenant's requests over the whole run, request by request.
        for (field, set) in [
            ("warmup", slo.warmup.is_some()),
            ("ttft_p99", slo.ttft_p99.is_some()),
            ("itl_p99", slo.itl_p99.is_some()),
            ("min_goodput", slo.min_goodput.is_some()),
        ] {
            if set {
                return Err(FieldError::new(
                    format!("{path}.slo.{field}"),
                    "a tenant's SLO holds latency_p50/p99/p999, max_rejection_rate and max_timeout_rate, judged over the whole run: leave it out",
                )
                .into());
            }
        }
    }
    Ok(Tenant {
        name: t.name.clone(),
        traffic,
        weight,
        priority: t.priority.unwrap_or(0),
        rate_limit,
        max_concurrency,
        slo: t.slo.clone(),
        shared,
        stream,
    })
}

/// A token bucket (rate, size) and a concurrency limit, checked; `path` names the table they are
/// in.
fn limits(
    rate_limit_rps: Option<f64>,
    burst: Option<u32>,
    max_concurrency: Option<u32>,
    path: &str,
) -> Result<(Option<TokenBucket>, Option<u32>), FieldError> {
    if burst.is_some() && rate_limit_rps.is_none() {
        return Err(FieldError::new(
            format!("{path}.burst"),
            "burst is the rate limit's bucket: set rate_limit_rps too",
        ));
    }
    let rate_limit = match rate_limit_rps {
        Some(rps) if !(rps.is_finite() && rps > 0.0) => {
            return Err(FieldError::new(
                format!("{path}.rate_limit_rps"),
                format!("expected a rate > 0, found {rps}"),
            ))
        }
        Some(rps) => {
            let size = match burst {
                Some(0) => {
                    return Err(FieldError::new(
                        format!("{path}.burst"),
                        "expected at least 1",
                    ))
                }
                Some(b) => b,
                None => rps.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            };
            Some((rps, size))
        }
        None => None,
    };
    if max_concurrency == Some(0) {
        return Err(FieldError::new(
            format!("{path}.max_concurrency"),
            "expected at least 1",
        ));
    }
    Ok((rate_limit, max_concurrency))
}
