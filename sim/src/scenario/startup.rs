//! `[apis.startup]` -> [`StartupModel`]: image pull, model fetch and load as separate,
//! per-replica parts, with throughput presets whose sources are cited on each constant.

use std::path::Path;

use super::diagnostics::{FieldError, LoadError};
use super::schema::StartupSpec;
use super::service_time;
use crate::service_time::ServiceTime;

/// Effective cold-pull throughput from a registry in the cluster's region, MB/s: the top of
/// the ~17–42 MB/s range derived from published pulls of large AI images (a 20.2 GB
/// Llama-3.1-8B image pulled and extracted in 8–10 min, bentoml.com 2025; a 13 GB image in
/// 571 s, blog.vertexcover.io) — `reference/cluster.md` §3 "Provisioning and start-up timings".
pub const IN_REGION_REGISTRY_MB_S: f64 = 42.0;
/// Effective cold-pull throughput from a registry in another region or on the internet, MB/s:
/// the bottom of the same range (a 10 GB image in 7–10 min, tensorfuse.io). AWS's EKS guide
/// recommends an in-region registry "to accelerate scale-ups" for this reason.
pub const REMOTE_REGISTRY_MB_S: f64 = 17.0;
/// One S3 GET stream, MB/s: Amazon S3's performance guidelines size "one concurrent request
/// for each 85–90 MB/s of desired network throughput" (docs.aws.amazon.com/AmazonS3/latest/
/// userguide/optimizing-performance-guidelines.html); a loader with parallel range GETs goes
/// faster — set `model_mb_s`.
pub const S3_MB_S: f64 = 90.0;
/// Amazon EFS per-client read throughput, MB/s: 500 MiB/s (≈ 524 MB/s) for Provisioned and
/// Bursting file systems (docs.aws.amazon.com/efs/latest/ug/performance.html; Elastic
/// throughput allows 1,500 MiB/s per client — set `model_mb_s`).
pub const EFS_MB_S: f64 = 524.0;
/// Amazon EBS gp3 baseline throughput, MB/s: 125 MiB/s (≈ 131 MB/s), provisionable to 1,000
/// MiB/s (EC2/EMR API reference, `Throughput`: "from 125 - 1000 and is valid only for gp3").
pub const EBS_MB_S: f64 = 131.0;
/// Local NVMe instance store, MB/s: uncached sequential reads measured at 640–820 MB/s with
/// `hdparm -t` on m5d and earlier instance-store hosts (public benchmark gists, second-hand).
pub const NVME_MB_S: f64 = 700.0;
/// σ of ln(throughput) when none is given: transfers vary from replica to replica (registry
/// load, network neighbours); an assumption, not a measured figure — set `throughput_sigma`.
pub const THROUGHPUT_SIGMA: f64 = 0.25;

/// Where a replica's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// Downloaded from object storage.
    S3,
    /// Read from a shared NFS file system.
    Efs,
    /// Read from a block volume.
    Ebs,
    /// Read from the node's local NVMe disk.
    Nvme,
    /// Baked into the image: pulled with it (and cached with it on the node).
    Image,
}

impl ModelSource {
    /// The name as the scenario spells it.
    pub fn name(self) -> &'static str {
        match self {
            ModelSource::S3 => "s3",
            ModelSource::Efs => "efs",
            ModelSource::Ebs => "ebs",
            ModelSource::Nvme => "nvme",
            ModelSource::Image => "image",
        }
    }
}

/// A validated `[apis.startup]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupModel {
    /// Bytes pulled on a node's first pull: the image, plus the model when baked in, GB.
    pub pull_gb: f64,
    /// Median pull throughput, MB/s.
    pub registry_mb_s: f64,
    /// Weights fetched by every replica (0 when baked into the image), GB.
    pub fetch_gb: f64,
    /// Median fetch throughput, MB/s.
    pub model_mb_s: f64,
    /// Where the weights come from.
    pub model_source: ModelSource,
    /// Load and warm-up.
    pub load: Option<ServiceTime>,
    /// σ of ln(throughput) of each transfer.
    pub throughput_sigma: f64,
}

impl StartupModel {
    /// The start-up of a replica whose parts all take their medians, with a cold image, in
    /// seconds (what a user would estimate by hand).
    pub fn median_cold_s(&self) -> f64 {
        let load = self.load.as_ref().map_or(0.0, ServiceTime::mean_s);
        self.pull_gb * 1000.0 / self.registry_mb_s + self.fetch_gb * 1000.0 / self.model_mb_s + load
    }
}

/// Validate `[apis.startup]` at `path`.
pub(super) fn build(
    spec: &StartupSpec,
    path: &str,
    base_dir: &Path,
) -> Result<StartupModel, LoadError> {
    let size = |v: Option<f64>, field: &str| -> Result<f64, FieldError> {
        match v {
            None => Ok(0.0),
            Some(x) if x.is_finite() && (0.0..=10_000.0).contains(&x) => Ok(x),
            Some(x) => Err(FieldError::new(
                format!("{path}.{field}"),
                format!("expected a size in GB from 0 to 10000, found {x}"),
            )),
        }
    };
    let rate = |v: f64, field: &str| -> Result<f64, FieldError> {
        if v.is_finite() && v > 0.0 && v <= 1e6 {
            Ok(v)
        } else {
            Err(FieldError::new(
                format!("{path}.{field}"),
                format!("expected a throughput in MB/s above 0 and at most 1000000, found {v}"),
            ))
        }
    };
    let image_gb = size(spec.image_gb, "image_gb")?;
    let model_gb = size(spec.model_gb, "model_gb")?;
    if spec.registry.is_some() && spec.registry_mb_s.is_some() {
        return Err(FieldError::new(
            format!("{path}.registry_mb_s"),
            "set registry (a preset) or registry_mb_s, not both",
        )
        .into());
    }
    let registry_mb_s = match (spec.registry.as_deref(), spec.registry_mb_s) {
        (_, Some(v)) => rate(v, "registry_mb_s")?,
        (None | Some("in_region"), None) => IN_REGION_REGISTRY_MB_S,
        (Some("remote"), None) => REMOTE_REGISTRY_MB_S,
        (Some(other), None) => {
            return Err(FieldError::new(
                format!("{path}.registry"),
                format!("expected \"in_region\" or \"remote\", found \"{other}\""),
            )
            .into())
        }
    };
    let model_source = match spec.model_source.as_deref().unwrap_or("s3") {
        "s3" => ModelSource::S3,
        "efs" => ModelSource::Efs,
        "ebs" => ModelSource::Ebs,
        "nvme" => ModelSource::Nvme,
        "image" => ModelSource::Image,
        other => {
            return Err(FieldError::new(
                format!("{path}.model_source"),
                format!(
                    "expected \"s3\", \"efs\", \"ebs\", \"nvme\" or \"image\", found \"{other}\""
                ),
            )
            .into())
        }
    };
    if model_source == ModelSource::Image && spec.model_mb_s.is_some() {
        return Err(FieldError::new(
            format!("{path}.model_mb_s"),
            "a model baked into the image is pulled with it at the registry's throughput: leave model_mb_s out",
        )
        .into());
    }
    let model_mb_s = match spec.model_mb_s {
        Some(v) => rate(v, "model_mb_s")?,
        None => match model_source {
            ModelSource::S3 => S3_MB_S,
            ModelSource::Efs => EFS_MB_S,
            ModelSource::Ebs => EBS_MB_S,
            ModelSource::Nvme => NVME_MB_S,
            ModelSource::Image => registry_mb_s,
        },
    };
    let throughput_sigma = match spec.throughput_sigma {
        None => THROUGHPUT_SIGMA,
        Some(s) if s.is_finite() && (0.0..=3.0).contains(&s) => s,
        Some(s) => {
            return Err(FieldError::new(
                format!("{path}.throughput_sigma"),
                format!("expected a σ from 0 to 3, found {s}"),
            )
            .into())
        }
    };
    let load = spec
        .load
        .as_ref()
        .map(|l| service_time::build(l, &format!("{path}.load"), base_dir))
        .transpose()?;
    let baked = model_source == ModelSource::Image;
    Ok(StartupModel {
        pull_gb: image_gb + if baked { model_gb } else { 0.0 },
        registry_mb_s,
        fetch_gb: if baked { 0.0 } else { model_gb },
        model_mb_s,
        model_source,
        load,
        throughput_sigma,
    })
}
