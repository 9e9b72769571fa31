//! Conventions every subcommand keeps: a closed standard output (`simctl tune … | head`) ends
//! the command quietly, and each `--help` starts with what the command does.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::scratch;

/// Run `simctl` with a standard output whose reader has gone before anything is printed, as
/// `| head` does once it has its lines.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simctl starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("simctl exits")
}

fn assert_quiet_exit(what: &str, out: &Output, expected: Option<i32>) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
    assert_eq!(out.status.code(), expected, "{what}: {stderr}");
}

/// A one-hour quickstart with a two-candidate, one-seed tuning space.
fn small_tune_scenario(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml"),
    )
    .expect("quickstart")
    .replace("duration = \"4h\"", "duration = \"1h\"");
    let path = dir.join("small-tune.toml");
    std::fs::write(
        &path,
        format!(
            "{text}\n[tune]\nseeds = 1\n\n[tune.space]\n\
             \"apis.classifier.autoscaling.min_replicas\" = [1, 2]\n"
        ),
    )
    .expect("write scenario");
    path
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let dir = scratch("closed-stdout");
    let scenario = small_tune_scenario(&dir);
    let scenario = scenario.to_str().expect("utf-8");
    let tune_json = dir.join("tune.json");
    let tune_json = tune_json.to_str().expect("utf-8");
    // One shard of one, so `tune merge` can take it below.
    let out = with_closed_stdout(&[
        "tune", scenario, "--jobs", "1", "--shard", "0/1", "--out", tune_json,
    ]);
    assert_quiet_exit("tune", &out, Some(0));
    assert!(
        Path::new(tune_json).exists(),
        "tune still writes its report"
    );

    let results = dir.join("results.json");
    let results = results.to_str().expect("utf-8");
    let out = with_closed_stdout(&["run", scenario, "--out", results]);
    assert_quiet_exit("run", &out, Some(0));
    // The summary is printed before the results are written: they are written all the same.
    assert!(Path::new(results).exists(), "run still writes its results");

    let merged = dir.join("merged.json");
    let out = with_closed_stdout(&[
        "tune",
        "merge",
        tune_json,
        "--out",
        merged.to_str().expect("utf-8"),
    ]);
    assert_quiet_exit("tune merge", &out, Some(0));

    let report = dir.join("report.html");
    let out = with_closed_stdout(&["report", results, "-o", report.to_str().expect("utf-8")]);
    assert_quiet_exit("report", &out, Some(0));

    // Bad input still says so on stderr, with its own exit code.
    let out = with_closed_stdout(&["run", "no-such-scenario.toml"]);
    assert_quiet_exit("run on a missing file", &out, Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}

/// Every subcommand, as `simctl --help` lists them.
fn subcommands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .arg("--help")
        .output()
        .expect("simctl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A name is indented by two; wrapped descriptions by more.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_help_starts_with_what_the_command_does() {
    let mut commands: Vec<Vec<String>> = subcommands().into_iter().map(|c| vec![c]).collect();
    assert!(commands.len() >= 7, "{commands:?}");
    commands.push(vec!["tune".into(), "merge".into()]);
    for command in commands {
        for flag in ["--help", "-h"] {
            let out = Command::new(env!("CARGO_BIN_EXE_simctl"))
                .args(&command)
                .arg(flag)
                .output()
                .expect("simctl runs");
            assert!(out.status.success(), "{command:?} {flag}");
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().next().unwrap_or_default();
            assert!(
                !first.starts_with("`simctl") && !first.starts_with("simctl "),
                "{command:?} {flag} starts by naming itself: {first:?}"
            );
            assert!(
                !first.starts_with("Arguments of"),
                "{command:?} {flag} starts with the name of its arguments struct: {first:?}"
            );
            // The opening paragraph says what the command does; it does not send the reader to
            // the very help they are reading.
            let opening: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .flat_map(str::split_whitespace)
                .collect();
            let opening = opening.join(" ");
            let itself = format!("simctl {} --help", command.join(" "));
            assert!(
                !opening.contains(&itself),
                "{command:?} {flag} points at itself: {opening:?}"
            );
            assert!(
                first.chars().next().is_some_and(char::is_uppercase) && first.len() > 20,
                "{command:?} {flag} starts with a sentence of what it does: {first:?}"
            );
        }
    }
}
