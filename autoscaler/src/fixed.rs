//! A fixed replica count: the baseline every other policy is compared against.

use std::time::Duration;

use crate::{MetricSpec, Observation, Recommendation, ScalingPolicy};

/// Keeps `replicas` replicas whatever the load (Cortex with `min_replicas = max_replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    replicas: u32,
}

impl Fixed {
    /// A policy that always wants `replicas` replicas.
    pub fn new(replicas: u32) -> Self {
        Self { replicas }
    }
}

impl ScalingPolicy for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn tick_interval(&self) -> Duration {
        Duration::from_secs(10)
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::None
    }

    fn initial_replicas(&self) -> u32 {
        self.replicas
    }

    fn recommend(&mut self, _now: Duration, _observation: &Observation) -> Recommendation {
        Recommendation::plain(self.replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn always_its_count_whatever_the_load(
            replicas in 0u32..100,
            loads in proptest::collection::vec(0.0f64..1e6, 1..50),
        ) {
            let mut policy = Fixed::new(replicas);
            for (i, load) in loads.iter().enumerate() {
                let obs = Observation {
                    current_replicas: replicas,
                    ready_replicas: replicas,
                    metric: Some(*load),
                    ..Observation::default()
                };
                prop_assert_eq!(policy.recommend(Duration::from_secs(i as u64), &obs).replicas, replicas);
            }
        }
    }

    #[test]
    fn ignores_load() {
        let mut policy = Fixed::new(3);
        let busy = Observation {
            current_replicas: 3,
            ready_replicas: 3,
            metric: Some(1e6),
            ..Observation::default()
        };
        assert_eq!(policy.recommend(Duration::from_secs(60), &busy).replicas, 3);
        assert_eq!(policy.initial_replicas(), 3);
    }
}
