//! Durations ("90s", "5m", "2h") and Kubernetes quantities ("500m", "2Gi") as users write them.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::time::SimTime;

/// A duration the user wrote that is not one (or is beyond what a simulation can mean); the
/// message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration like \"250ms\", \"90s\", \"5m\" or \"2h\"{limit}, found \"{text}\"")]
pub struct DurationError {
    /// What was written.
    pub text: String,
    /// What bound it broke, if it parsed.
    limit: &'static str,
}

/// The longest duration accepted anywhere (run length, periods, flags): 100 years. Beyond it
/// nanosecond simulated time would overflow (at 584 years) and nothing real is that long.
pub const MAX_DURATION_S: u64 = 100 * 365 * 24 * 3600;

/// A Kubernetes quantity the user wrote that is not one; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a Kubernetes quantity like \"500m\", \"2\", \"512Mi\" or \"2Gi\", found \"{text}\""
)]
pub struct QuantityError {
    /// What was written.
    pub text: String,
}

/// A duration written as a string with a unit, e.g. `"250ms"`, `"90s"`, `"5m"`, `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct DurationSpec(pub SimTime);

impl DurationSpec {
    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Parse the user's notation.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let trimmed = text.trim();
        match humantime::parse_duration(trimmed) {
            Ok(d) if d.as_secs() > MAX_DURATION_S => Err(DurationError {
                text: text.to_string(),
                limit: " of at most 100 years",
            }),
            Ok(d) => Ok(DurationSpec(SimTime::from(d))),
            Err(_) => Err(DurationError {
                text: text.to_string(),
                limit: "",
            }),
        }
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0.as_duration();
        if d.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(d)).map(|_| ())
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like \"90s\", \"5m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                DurationSpec::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A Kubernetes quantity: CPU in millicores ("500m", "2", "1.5") or bytes ("2Gi", "512Mi", "1G").
/// Integers are accepted as well as strings, as in a Kubernetes manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    /// The text the user wrote, echoed back in results.
    pub text: String,
    /// The value in base units (cores or bytes).
    pub value: f64,
}

impl Default for Quantity {
    /// Zero, written "0" so that a scenario echoed back parses again.
    fn default() -> Self {
        Quantity {
            text: "0".into(),
            value: 0.0,
        }
    }
}

impl Quantity {
    /// Parse Kubernetes quantity notation.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let t = text.trim();
        let split = t
            .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(split);
        let multiplier = match suffix {
            "" => 1.0,
            "m" => 1e-3,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "Ki" => 1024.0,
            "Mi" => 1024.0 * 1024.0,
            "Gi" => 1024.0 * 1024.0 * 1024.0,
            "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => f64::NAN,
        };
        let parsed: Result<f64, _> = number.parse();
        match parsed {
            Ok(n) if n.is_finite() && n >= 0.0 && multiplier.is_finite() => Ok(Quantity {
                text: t.to_string(),
                value: n * multiplier,
            }),
            _ => Err(QuantityError {
                text: text.to_string(),
            }),
        }
    }

    /// CPU in millicores, rounded up as Kubernetes does.
    pub fn millicores(&self) -> u64 {
        (self.value * 1000.0 - 1e-9).ceil().max(0.0) as u64
    }

    /// Memory in MiB, rounded up.
    pub fn mebibytes(&self) -> u64 {
        (self.value / (1024.0 * 1024.0) - 1e-9).ceil().max(0.0) as u64
    }

    /// Nothing requested (left out of echoed scenarios).
    pub fn is_zero(&self) -> bool {
        self.value == 0.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity like \"500m\" or \"2Gi\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Text from a user's file, made fit for a one-line error message: newlines shown as `⏎`, and
/// at most `max_chars` characters (a megabyte key or an unterminated quote is not echoed whole).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c == '\n' || c == '\r' { '⏎' } else { c })
        .collect();
    if count > max_chars {
        out.push_str(&format!("… ({count} characters)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(DurationSpec::parse("90s").unwrap().as_secs_f64(), 90.0);
        assert_eq!(DurationSpec::parse("5m").unwrap().as_secs_f64(), 300.0);
        assert_eq!(DurationSpec::parse("2h").unwrap().as_secs_f64(), 7200.0);
        assert_eq!(DurationSpec::parse("250ms").unwrap().as_secs_f64(), 0.25);
        assert!(DurationSpec::parse("ten").is_err());
        assert_eq!(DurationSpec::parse("90s").unwrap().to_string(), "1m 30s");
    }

    #[test]
    fn quantities() {
        assert_eq!(Quantity::parse("500m").unwrap().millicores(), 500);
        assert_eq!(Quantity::parse("2").unwrap().millicores(), 2000);
        assert_eq!(Quantity::parse("1.5").unwrap().millicores(), 1500);
        assert_eq!(Quantity::parse("2Gi").unwrap().mebibytes(), 2048);
        assert_eq!(Quantity::parse("512Mi").unwrap().mebibytes(), 512);
        assert!(Quantity::parse("2GB").is_err());
        assert!(Quantity::parse("-1").is_err());
    }

    #[test]
    fn one_line_clips_and_shows_newlines() {
        assert_eq!(one_line("a\nb", 10), "a⏎b");
        assert_eq!(one_line(&"k".repeat(1000), 3), "kkk… (1000 characters)");
    }
}
