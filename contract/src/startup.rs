//! Where replica start-up time went, for an API whose start-up is modelled by its parts
//! (`[apis.startup]`): scheduling, image pull, model fetch and load.

use serde::{Deserialize, Serialize};

/// One part of the start-up over the replicas started during the run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct StartupPart {
    /// Mean, seconds.
    pub mean_s: f64,
    /// Median, seconds.
    pub p50_s: f64,
    /// Longest, seconds.
    pub max_s: f64,
}

impl StartupPart {
    /// The mean, median and maximum of `values` (all zero when empty).
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // The lower median, so that the value is one that occurred.
        Self {
            mean_s: sorted.iter().sum::<f64>() / n as f64,
            p50_s: sorted[(n - 1) / 2],
            max_s: sorted[n - 1],
        }
    }
}

/// Start-up time of an API's replicas by part, over the replicas started after t = 0 (the
/// initial replicas are ready at once).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StartupBreakdown {
    /// Replicas started.
    pub replicas: u64,
    /// Of those, how many found the image already on their node (no pull, or a wait for a
    /// pull already under way).
    pub cached_pulls: u64,
    /// Where the weights came from (`s3`, `efs`, `ebs`, `nvme`, `image`).
    pub model_source: String,
    /// Pod creation to binding on a node: waiting for room, including a node's boot.
    pub scheduling: StartupPart,
    /// Pulling the image (and the weights, when baked in); 0 when cached.
    pub image_pull: StartupPart,
    /// Downloading or reading the weights.
    pub model_fetch: StartupPart,
    /// Loading the weights and warming up.
    pub load: StartupPart,
    /// Creation to ready: the sum of the parts.
    pub total: StartupPart,
}

impl StartupBreakdown {
    /// One line for a run summary: "where start-up time went".
    pub fn summary_line(&self, api: &str) -> String {
        format!(
            "{api}: where start-up time went (mean of {} replicas, {:.0} s): scheduling {:.0} s, image pull {:.0} s ({} of {} cached), model fetch from {} {:.0} s, load {:.0} s",
            self.replicas,
            self.total.mean_s,
            self.scheduling.mean_s,
            self.image_pull.mean_s,
            self.cached_pulls,
            self.replicas,
            self.model_source,
            self.model_fetch.mean_s,
            self.load.mean_s,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_summarise_their_values() {
        let p = StartupPart::of(&[4.0, 1.0, 10.0, 5.0]);
        assert_eq!((p.mean_s, p.p50_s, p.max_s), (5.0, 4.0, 10.0));
        assert_eq!(StartupPart::of(&[]), StartupPart::default());
    }
}
