//! `[apis.autoscaling]`: which policy, its settings, and overprovisioning.

use autoscaler::{Fixed, ScalingPolicy};
use serde::Deserialize;

use super::schema::AutoscalingSpec;
use super::FieldError;

/// Extra replicas on top of what the policy recommends, so there is headroom while new replicas
/// start. Written as a count (`overprovisioning = 2`) or a fraction of the recommendation
/// (`overprovisioning = "25%"`, rounded up). The total never exceeds `max_replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Overprovisioning {
    /// None.
    #[default]
    None,
    /// A fixed number of extra replicas.
    Replicas(u32),
    /// A fraction of the recommendation (0.25 = 25 %).
    Fraction(f64),
}

impl Overprovisioning {
    /// Replicas to run for a policy recommendation of `recommended`.
    pub fn apply(self, recommended: u32, max_replicas: u32) -> u32 {
        let extra = match self {
            Overprovisioning::None => 0,
            Overprovisioning::Replicas(n) => n,
            Overprovisioning::Fraction(f) => (f64::from(recommended) * f - 1e-9).ceil() as u32,
        };
        recommended
            .saturating_add(extra)
            .min(max_replicas.max(recommended))
    }
}

/// A validated policy choice with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChoice {
    /// `replicas = min_replicas`.
    Fixed,
}

/// The validated `[apis.autoscaling]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    /// The policy and its settings.
    pub policy: PolicyChoice,
    /// Lower bound on replicas.
    pub min_replicas: u32,
    /// Upper bound on replicas.
    pub max_replicas: u32,
    /// Headroom on top of the policy.
    pub overprovisioning: Overprovisioning,
}

impl Autoscaling {
    /// A fresh policy instance for one run.
    pub fn build(&self) -> Box<dyn ScalingPolicy> {
        match &self.policy {
            PolicyChoice::Fixed => Box::new(Fixed::new(self.min_replicas)),
        }
    }

    /// Whether requests are held (not rejected) while the API has no replica, as Cortex's and
    /// Knative's activators do for scale-to-zero.
    pub fn holds_requests_at_zero(&self) -> bool {
        self.min_replicas == 0 && !matches!(self.policy, PolicyChoice::Fixed)
    }
}

/// `fixed`: only bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedSettings {
    #[serde(default = "one")]
    min_replicas: u32,
    #[serde(default = "hundred")]
    max_replicas: u32,
}

fn one() -> u32 {
    1
}

fn hundred() -> u32 {
    100
}

/// Deserialize a policy's settings from the table, with error paths under `path`.
fn settings<T: for<'de> Deserialize<'de>>(table: toml::Table, path: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let inner = e.path().to_string();
        let message = e.into_inner().message().trim().replace('\n', "; ");
        let field = if inner.is_empty() || inner == "." {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        FieldError::new(field, message)
    })
}

/// Validate `[apis.autoscaling]` at `path`.
pub(crate) fn parse(spec: &AutoscalingSpec, path: &str) -> Result<Autoscaling, FieldError> {
    let mut table = spec.0.clone();
    let policy = match table.remove("policy") {
        None => "fixed".to_string(),
        Some(toml::Value::String(s)) => s,
        Some(other) => {
            return Err(FieldError::new(
                format!("{path}.policy"),
                format!(
                    "expected a string such as \"fixed\", found {}",
                    other.type_str()
                ),
            ))
        }
    };
    let overprovisioning = match table.remove("overprovisioning") {
        None => Overprovisioning::None,
        Some(value) => parse_overprovisioning(&value)
            .map_err(|m| FieldError::new(format!("{path}.overprovisioning"), m))?,
    };
    let (choice, min_replicas, max_replicas) = match policy.as_str() {
        "fixed" => {
            let s: FixedSettings = settings(table, path)?;
            (PolicyChoice::Fixed, s.min_replicas, s.max_replicas)
        }
        other => {
            return Err(FieldError::new(
                format!("{path}.policy"),
                format!("expected \"fixed\", found \"{other}\""),
            ))
        }
    };
    if max_replicas == 0 {
        return Err(FieldError::new(
            format!("{path}.max_replicas"),
            "expected an integer ≥ 1, found 0",
        ));
    }
    if min_replicas > max_replicas {
        return Err(FieldError::new(
            format!("{path}.min_replicas"),
            format!("expected min_replicas ≤ max_replicas ({max_replicas}), found {min_replicas}"),
        ));
    }
    Ok(Autoscaling {
        policy: choice,
        min_replicas,
        max_replicas,
        overprovisioning,
    })
}

fn parse_overprovisioning(value: &toml::Value) -> Result<Overprovisioning, String> {
    let expected = "expected a replica count (e.g. 2) or a percentage (e.g. \"25%\")";
    match value {
        toml::Value::Integer(n) => u32::try_from(*n)
            .map(Overprovisioning::Replicas)
            .map_err(|_| format!("{expected}, found {n}")),
        toml::Value::String(s) => {
            let number = s.trim().strip_suffix('%').map(str::trim);
            match number.and_then(|n| n.parse::<f64>().ok()) {
                Some(p) if p.is_finite() && p >= 0.0 => Ok(Overprovisioning::Fraction(p / 100.0)),
                _ => Err(format!("{expected}, found \"{s}\"")),
            }
        }
        other => Err(format!("{expected}, found {}", other.type_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overprovisioning_as_count_or_percentage() {
        let p = |v: toml::Value| parse_overprovisioning(&v);
        assert_eq!(
            p(toml::Value::Integer(2)),
            Ok(Overprovisioning::Replicas(2))
        );
        assert_eq!(
            p(toml::Value::String("25%".into())),
            Ok(Overprovisioning::Fraction(0.25))
        );
        assert!(p(toml::Value::String("lots".into())).is_err());
        assert!(p(toml::Value::Integer(-1)).is_err());
        assert_eq!(Overprovisioning::Fraction(0.25).apply(5, 100), 7);
        assert_eq!(Overprovisioning::Replicas(3).apply(5, 6), 6);
        assert_eq!(Overprovisioning::None.apply(5, 6), 5);
    }
}
