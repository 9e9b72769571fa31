//! `[apis.vpa]` as users write it: a VerticalPodAutoscaler's update mode and resource policy.

use serde::{Deserialize, Serialize};

use crate::units::{DurationSpec, Quantity};

/// `[apis.vpa]`: a VerticalPodAutoscaler on an API's Deployment, as its `spec` spells it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VpaSpec {
    /// `updatePolicy.updateMode`: `Off` (recommend only; the default here, where upstream's
    /// is `Recreate`), `Initial`, `Recreate` (or `Auto`), `InPlaceOrRecreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mode: Option<String>,
    /// `resourcePolicy.containerPolicies[].minAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allowed: Option<VpaResourcesSpec>,
    /// `resourcePolicy.containerPolicies[].maxAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed: Option<VpaResourcesSpec>,
    /// How often the recommender samples each pod's usage (`--recommender-interval`, 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommender_interval: Option<DurationSpec>,
    /// How often the updater considers the pods (`--updater-interval`, 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updater_interval: Option<DurationSpec>,
    /// `updatePolicy.minReplicas`: fewer replicas than this are never evicted from (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<u32>,
}

/// CPU and memory bounds of a VPA's resource policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VpaResourcesSpec {
    /// CPU (`"250m"`, `"2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory (`"512Mi"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<Quantity>,
}
