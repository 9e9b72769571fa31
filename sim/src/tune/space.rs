//! The search space: parameter paths, their values, and how a candidate rewrites the scenario.
//!
//! A candidate is a list of (path, value) overrides applied to the scenario's own text with
//! `toml_edit`, so the tuned scenario keeps the user's comments and layout, and is validated
//! exactly like a hand-written one.

use std::collections::BTreeMap;

pub use contract::tune::Parameter;
use toml_edit::{DocumentMut, Item, Table, Value};

/// Why `[tune.space]` or a candidate's overrides cannot be used. The messages are the ones the
/// user sees (`simctl tune` prints them), naming the parameter path at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpaceError {
    /// One `[tune.space]` entry is wrong, or cannot be applied to the scenario.
    #[error("tune.space.\"{path}\": {problem}")]
    Parameter {
        /// The parameter's dotted path.
        path: String,
        /// What is wrong with it.
        problem: ParameterError,
    },
    /// A candidate's value cannot be written into TOML.
    #[error("{path}: {problem}")]
    Value {
        /// The parameter's dotted path.
        path: String,
        /// What is wrong with the value.
        problem: ParameterError,
    },
    /// `[tune.space]` lists nothing.
    #[error("tune.space: expected at least one parameter to search")]
    Empty,
}

/// What is wrong with one parameter of the space, its values or its path in the scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParameterError {
    /// Neither a list nor a range table.
    #[error("expected a list of values or a range {{ from, to, step }}, found {found}")]
    NotListOrRange {
        /// TOML type found.
        found: &'static str,
    },
    /// An empty list.
    #[error("expected at least one value")]
    NoValues,
    /// A list item that is not a scalar.
    #[error("values must be numbers, strings or booleans, found {found}")]
    NotScalar {
        /// TOML type found.
        found: &'static str,
    },
    /// A range key other than from, to, step.
    #[error("unknown key `{key}` in range, expected from, to, step")]
    UnknownRangeKey {
        /// The key.
        key: String,
    },
    /// A range bound or step that is not a number.
    #[error("`{key}` must be a number, found {found}")]
    RangeNotNumber {
        /// `from`, `to` or `step`.
        key: &'static str,
        /// TOML type found.
        found: &'static str,
    },
    /// A range without `from` or `to`.
    #[error("range needs `{key}`")]
    RangeMissing {
        /// `from` or `to`.
        key: &'static str,
    },
    /// `to < from`, a step ≤ 0, or a bound that is not finite.
    #[error("expected from ≤ to and step > 0, found from = {from}, to = {to}, step = {step}")]
    BadRange {
        /// First value.
        from: f64,
        /// Last value.
        to: f64,
        /// Increment.
        step: f64,
    },
    /// A range with too many values to search.
    #[error("range has {count} values; at most 10,000")]
    TooManyValues {
        /// Values the range would give.
        count: u64,
    },
    /// A JSON number TOML cannot hold.
    #[error("number out of range")]
    NumberOutOfRange,
    /// A JSON value TOML cannot hold as a setting.
    #[error("cannot set {value}")]
    CannotSet {
        /// The value, as JSON.
        value: String,
    },
    /// The path goes through `[[apis]]`, `[[node_groups]]` or `[[node_pools]]` but the
    /// scenario has none.
    #[error("the scenario has no [[{key}]]")]
    NoArray {
        /// `apis` or `node_groups`.
        key: String,
    },
    /// No entry of that name (or index).
    #[error("no entry named \"{name}\" in [[{key}]] (found: {found})")]
    NoEntryNamed {
        /// The name in the path.
        name: String,
        /// `apis` or `node_groups`.
        key: String,
        /// The names there are, comma-separated.
        found: String,
    },
    /// An index past the end.
    #[error("no entry {position} in [[{key}]]")]
    NoEntryAt {
        /// The index.
        position: usize,
        /// `apis` or `node_groups`.
        key: String,
    },
    /// A path segment that is a value, not a table.
    #[error("`{key}` is not a table")]
    NotATable {
        /// The segment.
        key: String,
    },
    /// A path through an inline array (`requirements`, `budgets`), which has no names to pick
    /// an entry by.
    #[error("`{key}` is a list; only whole values of tables can be searched (list entries have no names to address them by)")]
    ArrayNotTable {
        /// The segment.
        key: String,
    },
    /// An empty path or one ending in `.`.
    #[error("empty path")]
    EmptyPath,
    /// The path names a table, which a value cannot replace.
    #[error("`{key}` is a table, not a value")]
    TableNotValue {
        /// The last segment.
        key: String,
    },
}

/// Parse `[tune.space]` into parameters, in path order. Errors name the path.
pub fn parse_space(space: &BTreeMap<String, toml::Value>) -> Result<Vec<Parameter>, SpaceError> {
    let mut out = Vec::new();
    for (path, spec) in space {
        let values = match spec {
            toml::Value::Array(items) => items
                .iter()
                .map(toml_to_json)
                .collect::<Result<Vec<_>, _>>(),
            toml::Value::Table(t) => range_values(t),
            other => Err(ParameterError::NotListOrRange {
                found: other.type_str(),
            }),
        }
        .map_err(|problem| SpaceError::Parameter {
            path: path.clone(),
            problem,
        })?;
        if values.is_empty() {
            return Err(SpaceError::Parameter {
                path: path.clone(),
                problem: ParameterError::NoValues,
            });
        }
        out.push(Parameter {
            path: path.clone(),
            values,
        });
    }
    if out.is_empty() {
        return Err(SpaceError::Empty);
    }
    Ok(out)
}

fn toml_to_json(v: &toml::Value) -> Result<serde_json::Value, ParameterError> {
    Ok(match v {
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::from(*b),
        toml::Value::String(s) => serde_json::Value::from(s.clone()),
        other => {
            return Err(ParameterError::NotScalar {
                found: other.type_str(),
            })
        }
    })
}

fn range_values(t: &toml::Table) -> Result<Vec<serde_json::Value>, ParameterError> {
    for key in t.keys() {
        if !["from", "to", "step"].contains(&key.as_str()) {
            return Err(ParameterError::UnknownRangeKey { key: key.clone() });
        }
    }
    let number = |k: &'static str| match t.get(k) {
        Some(toml::Value::Integer(i)) => Ok(Some((*i as f64, true))),
        Some(toml::Value::Float(f)) => Ok(Some((*f, false))),
        Some(other) => Err(ParameterError::RangeNotNumber {
            key: k,
            found: other.type_str(),
        }),
        None => Ok(None),
    };
    let (from, from_int) = number("from")?.ok_or(ParameterError::RangeMissing { key: "from" })?;
    let (to, to_int) = number("to")?.ok_or(ParameterError::RangeMissing { key: "to" })?;
    let (step, step_int) = number("step")?.unwrap_or((1.0, true));
    if step.is_nan() || step <= 0.0 || !from.is_finite() || !to.is_finite() || to < from {
        return Err(ParameterError::BadRange { from, to, step });
    }
    let count = ((to - from) / step + 1e-9).floor() as u64 + 1;
    if count > 10_000 {
        return Err(ParameterError::TooManyValues { count });
    }
    let integers = from_int && to_int && step_int;
    Ok((0..count)
        .map(|k| {
            let v = from + step * k as f64;
            if integers {
                serde_json::Value::from(v.round() as i64)
            } else {
                serde_json::Value::from((v * 1e9).round() / 1e9)
            }
        })
        .collect())
}

/// Number of candidates in the full grid.
pub fn grid_size(params: &[Parameter]) -> u64 {
    params
        .iter()
        .map(|p| p.values.len() as u64)
        .fold(1u64, u64::saturating_mul)
}

/// The value indices of candidate `id` (the last parameter varies fastest).
pub fn candidate_indices(params: &[Parameter], mut id: u64) -> Vec<usize> {
    let mut idx = vec![0; params.len()];
    for (slot, p) in idx.iter_mut().zip(params).rev() {
        let n = p.values.len() as u64;
        *slot = (id % n) as usize;
        id /= n;
    }
    idx
}

/// The overrides of candidate `id`, as path → value.
pub fn candidate_params(params: &[Parameter], id: u64) -> BTreeMap<String, serde_json::Value> {
    candidate_indices(params, id)
        .into_iter()
        .zip(params)
        .map(|(i, p)| (p.path.clone(), p.values[i].clone()))
        .collect()
}

fn json_to_value(v: &serde_json::Value) -> Result<Value, ParameterError> {
    Ok(match v {
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().ok_or(ParameterError::NumberOutOfRange)?),
        },
        other => {
            return Err(ParameterError::CannotSet {
                value: other.to_string(),
            })
        }
    })
}

/// Apply overrides to a scenario document. Path segments after `apis` / `node_groups` /
/// `node_pools` pick the array entry whose `name` matches (or an index); missing tables on the way are created.
pub fn apply(
    doc: &mut DocumentMut,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<(), SpaceError> {
    for (path, value) in overrides {
        let value = json_to_value(value).map_err(|problem| SpaceError::Value {
            path: path.clone(),
            problem,
        })?;
        set_path(doc.as_table_mut(), path, value).map_err(|problem| SpaceError::Parameter {
            path: path.clone(),
            problem,
        })?;
    }
    Ok(())
}

/// The arrays of tables whose entries a path picks by `name` (or index): `apis.<api>.…`,
/// `node_groups.<group>.…`, `node_pools.<pool>.…`.
const NAMED_ARRAYS: &[&str] = &["apis", "node_groups", "node_pools"];

fn set_path(root: &mut Table, path: &str, value: Value) -> Result<(), ParameterError> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut table = root;
    let mut i = 0;
    while i + 1 < segments.len() {
        let key = segments[i];
        if NAMED_ARRAYS.contains(&key) && i + 2 < segments.len() {
            let name = segments[i + 1];
            let Some(Item::ArrayOfTables(array)) = table.get_mut(key) else {
                return Err(ParameterError::NoArray { key: key.into() });
            };
            let position = array
                .iter()
                .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
                .or_else(|| name.parse::<usize>().ok().filter(|&n| n < array.len()));
            let Some(position) = position else {
                let names: Vec<&str> = array
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Item::as_str))
                    .collect();
                return Err(ParameterError::NoEntryNamed {
                    name: name.into(),
                    key: key.into(),
                    found: names.join(", "),
                });
            };
            table = array
                .get_mut(position)
                .ok_or_else(|| ParameterError::NoEntryAt {
                    position,
                    key: key.into(),
                })?;
            i += 2;
            continue;
        }
        if let Some(Item::Value(Value::Array(_))) = table.get(key) {
            return Err(ParameterError::ArrayNotTable { key: key.into() });
        }
        let entry = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        if let Some(inline) = entry.as_inline_table().cloned() {
            *entry = Item::Table(inline.into_table());
        }
        table = entry
            .as_table_mut()
            .ok_or_else(|| ParameterError::NotATable { key: key.into() })?;
        i += 1;
    }
    let last = segments.last().copied().unwrap_or_default();
    if last.is_empty() {
        return Err(ParameterError::EmptyPath);
    }
    match table.get_mut(last) {
        Some(item) if item.is_value() => {
            // The user's trailing comment described the old value: say what it was instead.
            let mut value = value;
            if let Some(old) = item.as_value() {
                let had_comment = old
                    .decor()
                    .suffix()
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| s.contains('#'));
                let mut old_text = old.clone();
                old_text.decor_mut().clear();
                let prefix = old.decor().prefix().cloned();
                value.decor_mut().clear();
                if let Some(prefix) = prefix {
                    value.decor_mut().set_prefix(prefix);
                }
                let (old_text, new_text) = (old_text.to_string(), value.to_string());
                if old_text.trim() != new_text.trim() {
                    value
                        .decor_mut()
                        .set_suffix(format!("  # tuned (was {})", old_text.trim()));
                } else if had_comment {
                    value.decor_mut().set_suffix("  # tuned (unchanged)");
                }
            }
            *item = Item::Value(value);
        }
        Some(_) => return Err(ParameterError::TableNotValue { key: last.into() }),
        None => {
            table.insert(last, Item::Value(value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        let mut space = BTreeMap::new();
        space.insert(
            "a".to_string(),
            toml::Value::Array(vec![toml::Value::Integer(1), toml::Value::Integer(2)]),
        );
        let mut range = toml::Table::new();
        range.insert("from".into(), toml::Value::Integer(2));
        range.insert("to".into(), toml::Value::Integer(6));
        range.insert("step".into(), toml::Value::Integer(2));
        space.insert("b".to_string(), toml::Value::Table(range));
        let params = parse_space(&space).expect("valid");
        assert_eq!(grid_size(&params), 6);
        assert_eq!(
            candidate_params(&params, 4),
            BTreeMap::from([
                ("a".to_string(), serde_json::json!(2)),
                ("b".to_string(), serde_json::json!(4))
            ])
        );
    }

    #[test]
    fn overrides_keep_comments_and_find_entries_by_name() {
        let text = "duration = \"1h\"\n\n[[apis]]\nname = \"x\"\n[apis.pod]\nthreads_per_process = 2 # measured\n\n[[apis]]\nname = \"y\"\n";
        let mut doc: DocumentMut = text.parse().expect("toml");
        let overrides = BTreeMap::from([
            (
                "apis.x.pod.threads_per_process".to_string(),
                serde_json::json!(8),
            ),
            (
                "apis.y.autoscaling.min_replicas".to_string(),
                serde_json::json!(3),
            ),
            ("duration".to_string(), serde_json::json!("2h")),
        ]);
        apply(&mut doc, &overrides).expect("applies");
        let out = doc.to_string();
        assert!(
            out.contains("threads_per_process = 8  # tuned (was 2)"),
            "the old comment described the old value: {out}"
        );
        assert!(
            out.contains("[apis.autoscaling]\nmin_replicas = 3"),
            "{out}"
        );
        assert!(out.contains("duration = \"2h\""), "{out}");
        let missing = BTreeMap::from([(
            "apis.z.pod.threads_per_process".to_string(),
            serde_json::json!(1),
        )]);
        let err = apply(&mut doc, &missing).unwrap_err();
        assert!(err.to_string().contains("no entry named \"z\""), "{err}");
    }

    #[test]
    fn node_pools_are_addressed_by_name_like_node_groups() {
        let text = "[[node_pools]]\nname = \"cpu\"\n\n[[node_pools]]\nname = \"gpu\"\nweight = 10\nrequirements = [{ key = \"karpenter.sh/capacity-type\", operator = \"In\", values = [\"spot\"] }]\n[node_pools.disruption]\nconsolidate_after = \"5m\"\n\n[cluster]\n";
        let mut doc: DocumentMut = text.parse().expect("toml");
        let overrides = BTreeMap::from([
            (
                "node_pools.gpu.disruption.consolidate_after".to_string(),
                serde_json::json!("30s"),
            ),
            ("node_pools.gpu.weight".to_string(), serde_json::json!(50)),
            (
                "node_pools.cpu.expire_after".to_string(),
                serde_json::json!("24h"),
            ),
            (
                "cluster.karpenter.batch_idle_duration".to_string(),
                serde_json::json!("2s"),
            ),
        ]);
        apply(&mut doc, &overrides).expect("applies");
        let out = doc.to_string();
        let parsed: toml::Table = out.parse().expect("still TOML");
        let pools = parsed["node_pools"].as_array().expect("pools");
        assert_eq!(pools[0]["expire_after"].as_str(), Some("24h"), "{out}");
        assert_eq!(pools[1]["weight"].as_integer(), Some(50), "{out}");
        assert_eq!(
            pools[1]["disruption"]["consolidate_after"].as_str(),
            Some("30s"),
            "{out}"
        );
        assert!(
            pools[0].get("disruption").is_none(),
            "only gpu changed: {out}"
        );
        assert_eq!(
            parsed["cluster"]["karpenter"]["batch_idle_duration"].as_str(),
            Some("2s"),
            "{out}"
        );
        let into_list = BTreeMap::from([(
            "node_pools.gpu.requirements.values".to_string(),
            serde_json::json!("on-demand"),
        )]);
        let err = apply(&mut doc, &into_list).unwrap_err().to_string();
        assert!(err.contains("`requirements` is a list"), "{err}");
        let missing = BTreeMap::from([("node_pools.tpu.weight".to_string(), serde_json::json!(1))]);
        let err = apply(&mut doc, &missing).unwrap_err().to_string();
        assert!(
            err.contains("no entry named \"tpu\" in [[node_pools]] (found: cpu, gpu)"),
            "{err}"
        );
    }
}
