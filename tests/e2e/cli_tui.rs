//! The live views (`simctl run --tui`, `simctl loadgen --tui`) in a real pseudo-terminal
//! (util-linux `script`): quitting early with `q` writes results that cover the time actually
//! run, not the planned length.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{assert_balanced, read_json, scratch, Served};

/// Run `simctl ARGS` in a pseudo-terminal and press `q` after `after`; `None` when `script` is
/// not installed.
fn quit_after(args: &[&str], after: Duration) -> Option<Output> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command = std::iter::once(env!("CARGO_BIN_EXE_simctl"))
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    // A new pseudo-terminal has no size; give it one so the frames are drawn.
    let command = format!("stty rows 30 cols 100 && exec {command}");
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts");
    std::thread::sleep(after);
    let mut keys = child.stdin.take().expect("stdin");
    keys.write_all(b"q").expect("press q");
    keys.flush().expect("flush");
    // Keep the terminal open until simctl has gone: a closed stdin would end `script` first.
    let output = std::thread::spawn(move || child.wait_with_output().expect("script exits"));
    std::thread::sleep(Duration::from_secs(3));
    drop(keys);
    Some(output.join().expect("waits"))
}

#[test]
fn quitting_the_simulation_view_keeps_the_time_simulated() {
    let dir = scratch("tui-run");
    let out = dir.join("r.json");
    let Some(done) = quit_after(
        &[
            "run",
            "scenarios/steps.toml",
            "--tui",
            "--speed",
            "60",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_millis(1500),
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&done.stdout);
    assert_eq!(done.status.code(), Some(130), "{text}");
    let r = read_json(&out);
    assert_balanced(&r);
    let planned = r["duration_s"].as_f64().expect("duration_s");
    let simulated = r["truncated_at_s"].as_f64().expect("truncated_at_s set");
    assert_eq!(planned, 1800.0, "duration_s stays the scenario's length");
    assert!(simulated > 0.0 && simulated < 600.0, "{simulated}");
    let last = r["timeline"]["t_s"]
        .as_array()
        .and_then(|t| t.last())
        .and_then(serde_json::Value::as_f64)
        .expect("timeline");
    assert!((last - simulated).abs() < 1e-6, "{last} vs {simulated}");
    assert!(
        text.contains(&format!(
            "{simulated:.0} s simulated (interrupted; of 1800 s)"
        )),
        "{text}"
    );
}

#[test]
fn quitting_the_load_test_view_keeps_the_time_run() {
    let served = Served::start(&["--service-time", "20ms", "--threads", "4"]);
    let dir = scratch("tui-loadgen");
    let out = dir.join("lg.json");
    let target = format!("{}/", served.urls[0]);
    let Some(done) = quit_after(
        &[
            "loadgen",
            "--target",
            &target,
            "--rate",
            "30",
            "--duration",
            "60s",
            "--tui",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_millis(2500),
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&done.stdout);
    assert_eq!(done.status.code(), Some(130), "{text}");
    // The live view showed the client's own figures, not replicas or nodes it cannot see
    // (words, as the terminal moves the cursor over blanks).
    for word in ["generator", "totals", "measured", "503/s"] {
        assert!(text.contains(word), "{word}: {text}");
    }
    assert!(!text.contains("pend"), "{text}");
    let r = read_json(&out);
    assert_balanced(&r);
    assert_eq!(r["planned_s"], 60.0);
    let elapsed = r["elapsed_s"].as_f64().expect("elapsed_s");
    assert_eq!(r["truncated_at_s"].as_f64(), Some(elapsed));
    assert!(elapsed > 1.0 && elapsed < 20.0, "{elapsed}");
    let last = r["timeline"]["t_s"]
        .as_array()
        .and_then(|t| t.last())
        .and_then(serde_json::Value::as_f64)
        .expect("timeline");
    assert!(last <= elapsed + 1e-6, "{last} vs {elapsed}");
    // Throughput is over the time run, not the planned minute.
    let a = &r["apis"][0];
    let throughput = a["throughput_rps"].as_f64().expect("throughput");
    let completed = a["completed"].as_f64().expect("completed");
    assert!((throughput - completed / elapsed).abs() < 1e-6);
}
