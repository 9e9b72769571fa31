//! Moving a scenario: the files it names (traces, service-time samples) are relative to the
//! scenario's own directory, so a scenario written elsewhere (`simctl tune --write-scenario`)
//! must have them rewritten to still name the same files.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Value};

/// The sections whose `path` names a file, under each `[[apis]]`, `[[batch_jobs]]`,
/// `[[routers]]` and `[[pipelines]]` entry.
const FILE_FIELDS: [(&str, &str); 5] = [
    ("apis", "traffic"),
    ("apis", "service_time"),
    ("batch_jobs", "service_time"),
    ("routers", "traffic"),
    ("pipelines", "traffic"),
];

/// `text`, read from a file in `from_dir`, rewritten to be written into `to_dir`: each relative
/// file path is resolved against `from_dir` and written relative to `to_dir` (absolute when no
/// relative path leads there). Comments and layout are kept.
pub fn relocate(
    text: &str,
    from_dir: &Path,
    to_dir: &Path,
) -> Result<String, toml_edit::TomlError> {
    let mut doc: DocumentMut = text.parse()?;
    let from = absolute(from_dir);
    let to = absolute(to_dir);
    for (array, section) in FILE_FIELDS {
        let Some(Item::ArrayOfTables(entries)) = doc.get_mut(array) else {
            continue;
        };
        for entry in entries.iter_mut() {
            let Some(table) = entry.get_mut(section).and_then(Item::as_table_like_mut) else {
                continue;
            };
            let Some(item) = table.get_mut("path") else {
                continue;
            };
            let Some(old) = item.as_str().map(str::to_string) else {
                continue;
            };
            if Path::new(&old).is_absolute() {
                continue;
            }
            let target = absolute(&from.join(&old));
            let new = pathdiff::diff_paths(&target, &to).unwrap_or(target);
            let decor = item.as_value().map(|v| v.decor().clone());
            let mut value = Value::from(new.to_string_lossy().replace('\\', "/"));
            if let Some(decor) = decor {
                *value.decor_mut() = decor;
            }
            *item = Item::Value(value);
        }
    }
    Ok(doc.to_string())
}

/// `path` made absolute against the working directory, `.` and `..` folded.
fn absolute(path: &Path) -> PathBuf {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[[apis]]\nname = \"a\"\n[apis.traffic]\nkind = \"trace\"\npath = \"traces/x.csv\" # recorded\n[apis.service_time]\ndistribution = \"empirical\"\npath = \"/abs/s.csv\"\n\n[[batch_jobs]]\nname = \"b\"\n[batch_jobs.service_time]\npath = \"../s.csv\"\n";

    #[test]
    fn relative_paths_follow_the_file_and_absolute_ones_stay() {
        let out =
            relocate(TEXT, Path::new("/work/scenarios"), Path::new("/tmp/out")).expect("toml");
        assert!(
            out.contains("path = \"../../work/scenarios/traces/x.csv\" # recorded"),
            "{out}"
        );
        assert!(out.contains("path = \"/abs/s.csv\""), "{out}");
        assert!(out.contains("path = \"../../work/s.csv\""), "{out}");
    }

    #[test]
    fn a_routers_and_a_pipelines_trace_follow_the_file() {
        let text = "[[routers]]\nname = \"r\"\ntraffic = { kind = \"trace\", path = \"r.csv\" }\n[[pipelines]]\nname = \"p\"\n[pipelines.traffic]\nkind = \"trace\"\npath = \"p.csv\"\n";
        let out = relocate(text, Path::new("/work/scenarios"), Path::new("/work")).expect("toml");
        assert!(out.contains("path = \"scenarios/r.csv\" }"), "{out}");
        assert!(out.contains("path = \"scenarios/p.csv\""), "{out}");
    }

    #[test]
    fn same_directory_is_unchanged_and_relative_dirs_resolve() {
        let out = relocate(TEXT, Path::new("scenarios"), Path::new("scenarios/./")).expect("toml");
        assert_eq!(out, TEXT);
        let out = relocate(TEXT, Path::new("scenarios"), Path::new("")).expect("toml");
        assert!(out.contains("path = \"scenarios/traces/x.csv\""), "{out}");
    }
}
