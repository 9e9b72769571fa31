//! Where a scenario went wrong, in the words a user can act on: the file, the line and column,
//! the field's dotted path and what was expected.
//!
//! Type errors and unknown fields come from serde with a span; value errors found later
//! ([`FieldError`]) carry only a field path, which is looked up in the TOML syntax tree here.

use std::fmt;

use super::schema::ScenarioFile;

/// A scenario that failed to load: where, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// The file at fault (the scenario, or a trace it names).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted path of the field (`apis[0].traffic.rps`), when the error is about one field.
    pub field: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {}", crate::units::one_line(field, 120))?;
        }
        write!(f, ": {}", crate::units::one_line(&self.message, 300))
    }
}

/// An error about one field, before its line is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The result of checking one field.
pub(crate) type FieldResult<T> = Result<T, FieldError>;

/// Either a field error (to be located in the file) or an error in another file.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// A field of the scenario, to be located in its text.
    Field(FieldError),
    /// Already located: an error in a file the scenario names (a trace, a sample file).
    Other(ScenarioError),
}

impl From<FieldError> for LoadError {
    fn from(e: FieldError) -> Self {
        LoadError::Field(e)
    }
}

impl From<ScenarioError> for LoadError {
    fn from(e: ScenarioError) -> Self {
        LoadError::Other(e)
    }
}

/// Deserialize the file into its schema, locating serde's error when there is one.
pub(super) fn parse_file(text: &str, file_name: &str) -> Result<ScenarioFile, ScenarioError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize::<_, ScenarioFile>(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = match inner.span() {
            Some(span) => {
                let (l, c) = line_col(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let located = ScenarioError {
            file: file_name.to_string(),
            line,
            column,
            field: (path != "." && !path.is_empty()).then_some(path.clone()),
            message: inner.message().trim().replace('\n', "; "),
        };
        if line.is_none() && located.field.is_some() {
            locate(text, file_name, FieldError::new(path, located.message))
        } else {
            located
        }
    })
}

/// Turn a field error into a located one by finding the field in the TOML syntax tree (the
/// nearest existing ancestor when the field itself is absent).
pub(super) fn locate(text: &str, file_name: &str, error: FieldError) -> ScenarioError {
    let span = toml_edit::ImDocument::parse(text)
        .ok()
        .and_then(|doc| find_span(doc.as_table(), &error.path));
    let (line, column) = match span {
        Some(offset) => {
            let (l, c) = line_col(text, offset);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ScenarioError {
        file: file_name.to_string(),
        line,
        column,
        field: Some(error.path),
        message: error.message,
    }
}

/// Split `apis[0].pod.threads` into keys and indices.
fn path_segments(path: &str) -> Vec<Result<&str, usize>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let (key, idx) = rest.split_at(open);
            if !key.is_empty() {
                out.push(Ok(key));
            }
            rest = idx;
            for index in rest.split('[').filter(|s| !s.is_empty()) {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    out.push(Err(i));
                }
            }
        } else if !rest.is_empty() {
            out.push(Ok(rest));
        }
    }
    out
}

enum Node<'a> {
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
    Table(&'a toml_edit::Table),
}

impl Node<'_> {
    fn span_start(&self) -> Option<usize> {
        match self {
            Node::Item(item) => item.span().map(|s| s.start),
            Node::Value(value) => value.span().map(|s| s.start),
            Node::Table(table) => table.span().map(|s| s.start),
        }
    }
}

fn find_span(root: &toml_edit::Table, path: &str) -> Option<usize> {
    let mut node = Node::Table(root);
    let mut best = None;
    for segment in path_segments(path) {
        let next = match (&node, segment) {
            (Node::Table(t), Ok(key)) => t.get(key).map(Node::Item),
            (Node::Item(toml_edit::Item::Table(t)), Ok(key)) => t.get(key).map(Node::Item),
            (Node::Item(toml_edit::Item::Value(v)), seg) | (&Node::Value(v), seg) => {
                match (v, seg) {
                    (toml_edit::Value::InlineTable(t), Ok(key)) => t.get(key).map(Node::Value),
                    (toml_edit::Value::Array(a), Err(i)) => a.get(i).map(Node::Value),
                    _ => None,
                }
            }
            (Node::Item(toml_edit::Item::ArrayOfTables(a)), Err(i)) => a.get(i).map(Node::Table),
            _ => None,
        };
        match next {
            Some(n) => {
                if let Some(start) = n.span_start() {
                    best = Some(start);
                }
                node = n;
            }
            None => break,
        }
    }
    best
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_split_keys_and_indices() {
        assert_eq!(
            path_segments("apis[0].traffic.steps[2].rps"),
            vec![
                Ok("apis"),
                Err(0),
                Ok("traffic"),
                Ok("steps"),
                Err(2),
                Ok("rps")
            ]
        );
    }
}
