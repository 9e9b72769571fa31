//! The Markdown rendering: text and tables in Markdown, charts as PNG files referenced by
//! relative links (Markdown cannot embed SVG portably, and PNGs show everywhere).

use std::fmt::Write as _;

use crate::chart;
use crate::doc::{build, Block};
use crate::{Report, ReportError};

/// A file that goes next to the Markdown (in its assets directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// File name inside the assets directory.
    pub file_name: String,
    /// Content (PNG).
    pub bytes: Vec<u8>,
}

/// A rendered Markdown report: the text and the images it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownReport {
    /// The Markdown text; images are linked as `<assets_dir>/<file_name>`.
    pub markdown: String,
    /// The PNG charts, to write into the assets directory.
    pub assets: Vec<Asset>,
}

/// Render the report as Markdown, with charts as PNGs linked under `assets_dir` (a path
/// relative to the Markdown file, e.g. `report_files`). Writes nothing: the caller writes the
/// text and the assets. Fails only if a chart cannot be drawn or encoded.
pub fn render_markdown(report: &Report, assets_dir: &str) -> Result<MarkdownReport, ReportError> {
    let doc = build(report);
    let mut md = String::with_capacity(16 * 1024);
    let mut assets = Vec::new();
    let _ = writeln!(md, "# {}\n", inline(&doc.title));
    md.push_str("Inputs:\n\n");
    for i in &doc.inputs {
        let _ = writeln!(md, "- {}", inline(i));
    }
    md.push('\n');
    for s in &doc.sections {
        let _ = writeln!(
            md,
            "{} {}\n",
            "#".repeat(usize::from(s.level)),
            inline(&s.title)
        );
        for b in &s.blocks {
            match b {
                Block::Para(text) => {
                    let _ = writeln!(md, "{}\n", inline(text));
                }
                Block::Verdict { ok, text } => {
                    let _ = writeln!(md, "**{} {}**\n", if *ok { "✔" } else { "✘" }, inline(text));
                }
                Block::Table {
                    header,
                    rows,
                    numeric,
                } => {
                    let cells = |row: &[String]| {
                        let inner: Vec<String> = row.iter().map(|c| cell(c)).collect();
                        format!("| {} |", inner.join(" | "))
                    };
                    let _ = writeln!(md, "{}", cells(header));
                    let rule: Vec<&str> = (0..header.len())
                        .map(|i| {
                            if numeric.get(i).copied().unwrap_or(false) {
                                "--:"
                            } else {
                                "---"
                            }
                        })
                        .collect();
                    let _ = writeln!(md, "| {} |", rule.join(" | "));
                    for row in rows {
                        let _ = writeln!(md, "{}", cells(row));
                    }
                    md.push('\n');
                }
                Block::Chart(c) => {
                    let file_name = format!("{}.png", c.id);
                    let bytes = chart::to_png(c).map_err(|e| ReportError::Chart {
                        chart: c.id.clone(),
                        message: e.to_string(),
                    })?;
                    let _ = writeln!(
                        md,
                        "![{}]({}/{})\n",
                        inline(&c.title),
                        assets_dir.trim_end_matches('/'),
                        file_name
                    );
                    assets.push(Asset { file_name, bytes });
                }
                Block::Code { lang, text } => {
                    let fence = if text.contains("```") { "~~~~" } else { "```" };
                    let _ = writeln!(md, "{fence}{lang}\n{text}\n{fence}\n");
                }
            }
        }
    }
    while md.ends_with("\n\n") {
        md.pop();
    }
    Ok(MarkdownReport {
        markdown: md,
        assets,
    })
}

/// Escape what would change running text: emphasis, code, links, HTML and table pipes; `_` only
/// where it could start or end emphasis (not inside words such as `latency_p99_ms`); `#` and
/// `>` only at the start, where they would make a heading or a quote.
fn inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let escape = match c {
            '\\' | '*' | '`' | '[' | ']' | '<' | '|' => true,
            '_' => !(word(i.checked_sub(1)) && word(Some(i + 1))),
            '#' | '>' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: inline escaping, and no line breaks.
fn cell(text: &str) -> String {
    inline(&text.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_one_png_per_chart() {
        let mut report = Report::default();
        report.push_run("small.json".into(), crate::testdata::small_results());
        let out = render_markdown(&report, "small_files").expect("renders");
        assert_eq!(out.assets.len(), 11);
        for a in &out.assets {
            assert!(
                out.markdown
                    .contains(&format!("(small_files/{})", a.file_name)),
                "{}",
                a.file_name
            );
            assert_eq!(&a.bytes[1..4], b"PNG");
        }
        assert!(out.markdown.starts_with("# Capacity report: small\n"));
        assert!(out.markdown.contains("| API | requests |"));
    }

    #[test]
    fn escapes_markdown() {
        assert_eq!(inline("a|b *c* [d]"), "a\\|b \\*c\\* \\[d\\]");
        assert_eq!(
            inline("latency_p99_ms _x_ > 1"),
            "latency_p99_ms \\_x\\_ > 1"
        );
        assert_eq!(inline("# 1"), "\\# 1");
        assert_eq!(cell("x\ny"), "x y");
    }
}
