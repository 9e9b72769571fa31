//! Snapshots of the Markdown report for fixed small scenarios (fixtures/small.toml, run and
//! tuned into fixtures/small*.json; fixtures/llm.toml, an LLM API, run into fixtures/llm.json):
//! any change to the report's text shows up as a reviewable diff.
//! Update with `INSTA_UPDATE=always cargo test -p reports --release` and review the change.

use std::path::{Path, PathBuf};

use reports::{render_html, render_markdown, Report};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn report() -> Report {
    Report::from_files(&[fixture("small.json"), fixture("small-tune.json")]).expect("fixtures load")
}

#[test]
fn markdown_report_of_small_scenario() {
    let rendered = render_markdown(&report(), "report_files").expect("renders");
    let md = &rendered.markdown;
    // No local paths or times: the text depends on the inputs only.
    for leak in [env!("CARGO_MANIFEST_DIR"), "/tmp/", "/work/", "/home/"] {
        assert!(!md.contains(leak), "report contains {leak}");
    }
    assert_eq!(
        rendered.assets.len(),
        12,
        "11 run charts + the Pareto chart"
    );
    insta::assert_snapshot!("small_markdown", md);
}

#[test]
fn markdown_report_of_an_llm_api() {
    let report = Report::from_files(&[fixture("llm.json")]).expect("fixture loads");
    let rendered = render_markdown(&report, "report_files").expect("renders");
    let md = &rendered.markdown;
    for leak in [env!("CARGO_MANIFEST_DIR"), "/tmp/", "/work/", "/home/"] {
        assert!(!md.contains(leak), "report contains {leak}");
    }
    assert!(md.contains("## LLM serving"), "{md}");
    assert!(md.contains("| chat | goodput | ≥ 90.00 % |"), "{md}");
    let charts: Vec<&str> = rendered
        .assets
        .iter()
        .map(|a| a.file_name.as_str())
        .collect();
    for id in ["llm-sequences", "llm-kv-cache", "llm-ttft-p99"] {
        assert!(charts.iter().any(|c| c.contains(id)), "{id} in {charts:?}");
    }
    insta::assert_snapshot!("llm_markdown", md);
}

#[test]
fn same_inputs_same_bytes() {
    let a = render_markdown(&report(), "report_files").expect("renders");
    let b = render_markdown(&report(), "report_files").expect("renders");
    assert_eq!(a, b, "markdown and PNGs are byte-identical");
    assert_eq!(render_html(&report()), render_html(&report()));
}

#[test]
fn markdown_report_of_tenants() {
    let report = Report::from_files(&[fixture("tenants.json")]).expect("fixture loads");
    let rendered = render_markdown(&report, "report_files").expect("renders");
    let md = &rendered.markdown;
    for leak in [env!("CARGO_MANIFEST_DIR"), "/tmp/", "/work/", "/home/"] {
        assert!(!md.contains(leak), "report contains {leak}");
    }
    assert!(md.contains("## Tenants"), "{md}");
    assert!(md.contains("| search | noisy |"), "{md}");
    assert!(
        rendered
            .assets
            .iter()
            .any(|a| a.file_name.contains("tenants-p99-search")),
        "a p99-by-tenant chart"
    );
    insta::assert_snapshot!("tenants_markdown", md);
}
