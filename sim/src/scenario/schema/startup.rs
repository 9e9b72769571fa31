//! `[apis.startup]`: a replica's start-up as the sum of its parts.

use serde::{Deserialize, Serialize};

use super::ServiceTimeSpec;

/// What a replica does between being bound to a node and passing its readiness probe: pull its
/// image (unless the node already has it), fetch or mount its model, load and warm up. Each part
/// is drawn per replica; the time spent waiting for a node (scheduling, node boot) is measured,
/// not drawn. The shortcut `startup_time` gives one fixed total instead.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StartupSpec {
    /// Compressed image size, GB (default 0: nothing to pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_gb: Option<f64>,
    /// `in_region` (default) or `remote`: the registry's effective pull throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The pull throughput in MB/s, instead of the `registry` preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_mb_s: Option<f64>,
    /// Model weights, GB (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_gb: Option<f64>,
    /// Where the weights come from: `s3` (default), `efs`, `ebs`, `nvme`, or `image` (baked
    /// into the image: pulled with it, and cached with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_source: Option<String>,
    /// The model fetch throughput in MB/s, instead of the `model_source` preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_mb_s: Option<f64>,
    /// Loading the weights onto the device and warming up (a distribution, as service times;
    /// default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<ServiceTimeSpec>,
    /// Spread of each transfer's throughput: σ of its natural log (default 0.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_sigma: Option<f64>,
}
