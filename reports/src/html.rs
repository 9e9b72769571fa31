//! The HTML rendering: one self-contained page (inline SVG charts, inline CSS and a tiny
//! inline script; nothing fetched from the network).

use std::fmt::Write as _;

use crate::chart;
use crate::doc::{build, Block, Document};
use crate::xml::escape;
use crate::Report;

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto; max-width: 1040px; padding: 1rem 1.5rem 3rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 1rem 0; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: #555; }
.verdict { padding: .5rem .8rem; border-radius: 4px; font-weight: 600; }
.verdict.ok { background: #e6f4ea; color: #1e5e2f; }
.verdict.bad { background: #fce8e6; color: #8c1d18; }
pre { background: #f6f8fa; padding: .7rem; overflow-x: auto; font-size: .85rem; }
nav ul { columns: 2; font-size: .9rem; }
.inputs { color: #555; font-size: .9rem; }
"#;

/// Records script errors on the page (for the headless-browser check and for users).
const ERROR_HOOK: &str = r#"
window.reportErrors = [];
window.onerror = function (message, source, line) {
  window.reportErrors.push(String(message) + " (line " + line + ")");
  document.documentElement.setAttribute("data-errors", window.reportErrors.join(" | "));
};
"#;

/// Counts the charts that actually rendered (non-empty SVG with a size) into `data-charts-rendered`.
const CHECK: &str = r#"
(function () {
  function check() {
    var rendered = 0;
    document.querySelectorAll("figure.chart").forEach(function (f) {
      var svg = f.querySelector("svg:not(.chart-error)");
      if (!svg) { return; }
      var box = svg.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && svg.querySelectorAll("text").length > 0) {
        rendered += 1;
        f.setAttribute("data-rendered", "yes");
      }
    });
    document.body.setAttribute("data-charts-rendered", String(rendered));
    document.body.setAttribute("data-errors", window.reportErrors.join(" | "));
  }
  check();
  window.addEventListener("load", check);
})();
"#;

/// The report as one self-contained HTML page. `<body data-charts-expected>` holds the number
/// of charts, and after load `data-charts-rendered` the number that rendered and
/// `data-errors` any script errors, so a headless browser can check the page.
pub fn render_html(report: &Report) -> String {
    document_html(&build(report))
}

fn document_html(doc: &Document) -> String {
    let charts = doc.charts().count();
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"simctl report\">\n<title>{}</title>\n<script>{ERROR_HOOK}</script>\n<style>{STYLE}</style>\n</head>\n<body data-charts-expected=\"{charts}\" data-charts-rendered=\"pending\" data-errors=\"\">\n<h1>{}</h1>\n",
        escape(&doc.title),
        escape(&doc.title)
    );
    out.push_str("<p class=\"inputs\">Inputs:</p>\n<ul class=\"inputs\">\n");
    for i in &doc.inputs {
        let _ = writeln!(out, "<li>{}</li>", escape(i));
    }
    out.push_str("</ul>\n<nav><ul>\n");
    for s in &doc.sections {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(&s.id),
            escape(&s.title)
        );
    }
    out.push_str("</ul></nav>\n");
    for s in &doc.sections {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h{lvl}>{}</h{lvl}>",
            escape(&s.id),
            escape(&s.title),
            lvl = s.level
        );
        for b in &s.blocks {
            block_html(&mut out, b);
        }
        out.push_str("</section>\n");
    }
    let _ = write!(out, "<script>{CHECK}</script>\n</body>\n</html>\n");
    out
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Para(text) => {
            let _ = writeln!(out, "<p>{}</p>", escape(text));
        }
        Block::Verdict { ok, text } => {
            let _ = writeln!(
                out,
                "<p class=\"verdict {}\">{}</p>",
                if *ok { "ok" } else { "bad" },
                escape(text)
            );
        }
        Block::Table {
            header,
            rows,
            numeric,
        } => {
            let class = |i: usize| {
                if numeric.get(i).copied().unwrap_or(false) {
                    " class=\"num\""
                } else {
                    ""
                }
            };
            out.push_str("<table>\n<thead><tr>");
            for (i, h) in header.iter().enumerate() {
                let _ = write!(out, "<th{}>{}</th>", class(i), escape(h));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for (i, cell) in row.iter().enumerate() {
                    let _ = write!(out, "<td{}>{}</td>", class(i), escape(cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
        }
        Block::Chart(c) => {
            let _ = writeln!(
                out,
                "<figure class=\"chart\" id=\"chart-{}\" data-chart=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                escape(&c.id),
                escape(&c.id),
                chart::to_svg(c).trim_end(),
                escape(&c.title)
            );
        }
        Block::Code { lang, text } => {
            let _ = writeln!(
                out,
                "<pre><code class=\"language-{}\">{}</code></pre>",
                escape(lang),
                escape(text)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_counts_its_charts() {
        let mut report = Report::default();
        report.push_run("small.json".into(), crate::testdata::small_results());
        let html = render_html(&report);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("data-charts-expected=\"11\""));
        assert_eq!(html.matches("<figure class=\"chart\"").count(), 11);
        assert_eq!(html.matches("<svg").count(), 11);
        assert!(!html.contains("chart-error\""), "every chart drew");
        for banned in ["http://cdn", "https://", "<link", "src=\""] {
            assert!(!html.contains(banned), "{banned}");
        }
        assert_eq!(render_html(&report), html, "deterministic");
    }
}
