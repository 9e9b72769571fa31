//! Hostile input through the real binary: mutated example scenarios and traces, and a corpus of
//! cases that once broke something. Every input must end in one of two ways:
//!
//! - exit 0 with results whose counts balance, or
//! - exit 2 with one line naming the file (and the line and field when it is the scenario's);
//!
//! never a panic (101), an abort (134) or another signal, a run past [`WALL_LIMIT`], or memory
//! past [`MEMORY_LIMIT_KIB`]. Work is bounded by the CLI's own estimate: the runs get
//! `SIMCTL_LONG_WORK_S` = [`WORK_LIMIT_S`], so anything estimated longer must be refused (exit 2).
//!
//! `SIMCTL_FUZZ_CASES` sets how many mutants [`mutated_examples_never_crash`] tries (default
//! [`DEFAULT_CASES`], what CI runs) and `SIMCTL_FUZZ_SEED` which ones (default fixed, so CI is
//! repeatable). A failing input is kept under `target/fuzz-failures/` to be added to the corpus
//! (`tests/fuzz-corpus/`), which [`corpus_never_crashes`] replays.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::common::{assert_balanced, read_json, scratch};

/// Mutants tried in CI.
const DEFAULT_CASES: u64 = 120;
/// The work estimate above which a run must be refused.
const WORK_LIMIT_S: &str = "5";
/// Longest a case may run.
const WALL_LIMIT: Duration = Duration::from_secs(60);
/// Address space a case may take (`ulimit -v`), KiB.
const MEMORY_LIMIT_KIB: u64 = 1024 * 1024;

/// Values that have broken parsers and engines elsewhere.
const HOSTILE_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "1e300",
    "-1e300",
    "nan",
    "inf",
    "-inf",
    "4294967295",
    "18446744073709551615",
    "9223372036854775807",
    "2147483648",
    "1e-300",
    "0.5",
    "100000000",
    "1e9",
    "\"\"",
    "\"0s\"",
    "\"1ns\"",
    "\"600years\"",
    "\"abc\"",
    "\"-5m\"",
    "\"1e9h\"",
    "\"nan\"",
    "\"99999999999Gi\"",
    "\"0.000001m\"",
    "\"\u{1F4A5}\"",
    "[]",
    "{}",
    "true",
    "[1, \"a\"]",
];

/// A private copy of the binary, so a rebuild during a long fuzz run cannot pull it away.
fn binary() -> &'static Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let copy = scratch("fuzz-bin").join("simctl");
        match std::fs::copy(env!("CARGO_BIN_EXE_simctl"), &copy) {
            Ok(_) => copy,
            Err(_) => PathBuf::from(env!("CARGO_BIN_EXE_simctl")),
        }
    })
}

/// How one case ended.
#[derive(Debug)]
enum Verdict {
    /// Exit 0, balanced results; or exit 2 with one located line.
    Fine,
    /// Anything else, with what happened.
    Broken(String),
}

/// Run `simctl run` on `scenario` under the limits and judge the outcome.
fn judge(scenario: &Path) -> Verdict {
    judge_with(scenario, &[])
}

/// [`judge`] with more flags (a corpus case's `# simctl-args:` line, e.g. `--yes` to run work
/// the estimate would refuse: memory must stay bounded then too).
fn judge_with(scenario: &Path, extra: &[&str]) -> Verdict {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    let out = dir.join("results.json");
    let _ = std::fs::remove_file(&out);
    let script = format!("ulimit -v {MEMORY_LIMIT_KIB} 2>/dev/null; exec \"$0\" \"$@\"");
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(binary())
        .args(["run", "--quiet"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .arg(scenario)
        .env("SIMCTL_LONG_WORK_S", WORK_LIMIT_S)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Verdict::Broken(format!("cannot start: {e}")),
    };
    // Read stderr as it comes: a long message must not fill the pipe and stall the child.
    let reader = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > WALL_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Verdict::Broken(format!("still running after {WALL_LIMIT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Verdict::Broken(format!("cannot wait: {e}")),
        }
    };
    let stderr = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let name = scenario
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match status.code() {
        Some(0) => {
            if !out.exists() {
                return Verdict::Broken("exit 0 without results".into());
            }
            let results = read_json(&out);
            match std::panic::catch_unwind(|| assert_balanced(&results)) {
                Ok(()) => Verdict::Fine,
                Err(_) => Verdict::Broken("exit 0 with unbalanced counts".into()),
            }
        }
        Some(2) => {
            let lines: Vec<&str> = stderr.trim_end().lines().collect();
            let located = lines
                .first()
                .is_some_and(|l| l.contains(&name) || l.contains(".csv") || l.contains(".json"));
            if lines.len() == 1 && located && !out.exists() {
                if std::env::var_os("SIMCTL_FUZZ_VERBOSE").is_some() {
                    eprintln!("refused: {}", lines[0]);
                }
                Verdict::Fine
            } else {
                Verdict::Broken(format!("exit 2 but not one located line: {stderr:?}"))
            }
        }
        code => Verdict::Broken(format!("exit {code:?} (signal or crash): {stderr}")),
    }
}

/// The shipped examples, with the files they name.
fn examples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("validate")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p) {
                out.push((p.display().to_string(), text));
            }
        }
    }
    out
}

/// A recorded trace cut short, so mutants of it stay quick.
fn short_trace() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/traces/azure-llm-conv-2023.csv");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .take(2_000)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One to three mutations: a value replaced by a hostile one, a line deleted or duplicated, the
/// text cut, a byte changed.
fn mutate(text: &str, rng: &mut Pcg64) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Mostly one change, so most mutants get past validation and exercise the engine.
    let changes = match rng.random_range(0..20) {
        0..=11 => 1,
        12..=16 => 2,
        _ => 3,
    };
    for _ in 0..changes {
        if lines.is_empty() {
            break;
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..13) {
            10..=12 => {
                // A plausible change: a number scaled, so the engine runs other shapes.
                let numbers: Vec<usize> = (0..lines.len())
                    .filter(|&k| {
                        let l = lines[k].trim_start();
                        !l.starts_with('#')
                            && l.split(" = ")
                                .nth(1)
                                .is_some_and(|v| v.trim().parse::<f64>().is_ok())
                    })
                    .collect();
                if let Some(&k) = numbers.choose(rng) {
                    let (key, value) = lines[k].split_once(" = ").unwrap_or_default();
                    let v: f64 = value.trim().parse().unwrap_or(0.0);
                    let factor = *[0.0, 0.5, 2.0, 3.0, 10.0].choose(rng).unwrap_or(&2.0);
                    let scaled = v * factor;
                    let text = if value.contains('.') || scaled.fract() != 0.0 {
                        format!("{scaled:?}")
                    } else {
                        format!("{}", scaled as i64)
                    };
                    lines[k] = format!("{key} = {text}");
                }
            }
            0..=5 => {
                // A value: keep the key, replace what follows `=`.
                let assignments: Vec<usize> = (0..lines.len())
                    .filter(|&k| {
                        let l = lines[k].trim_start();
                        !l.starts_with('#') && l.contains(" = ")
                    })
                    .collect();
                if let Some(&k) = assignments.choose(rng) {
                    let key = lines[k].split(" = ").next().unwrap_or_default().to_string();
                    let value = HOSTILE_VALUES.choose(rng).copied().unwrap_or("0");
                    lines[k] = format!("{key} = {value}");
                }
            }
            6 => {
                lines.remove(i);
            }
            7 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            8 => lines.truncate(i.max(1)),
            _ => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = rng.random_range(0..bytes.len());
                    bytes[j] = *b"\"[]{}=#\\\n0-.x".choose(rng).unwrap_or(&b'x');
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Point the scenario's relative paths at the directory of the example it came from (or at
/// the mutated trace beside it, now and then).
fn anchor_paths(text: &str, origin: &str, trace: Option<&str>) -> String {
    let root = Path::new(origin).parent().unwrap_or(Path::new("."));
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("path = \"") && !t.starts_with("path = \"/") {
                match trace {
                    Some(name) => format!("path = \"{name}\""),
                    None => l.replacen("path = \"", &format!("path = \"{}/", root.display()), 1),
                }
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn mutated_examples_never_crash() {
    let cases: u64 = std::env::var("SIMCTL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("SIMCTL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_130);
    let mut rng = Pcg64::seed_from_u64(seed);
    let examples = examples();
    assert!(!examples.is_empty());
    let trace = short_trace();
    let dir = scratch("fuzz");
    let failures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for case in 0..cases {
        let (origin, text) = &examples[rng.random_range(0..examples.len())];
        let mutate_trace = text.contains("kind = \"trace\"") && rng.random_bool(0.3);
        let trace_name = "trace.csv";
        let (scenario_text, trace_text) = if mutate_trace {
            (
                anchor_paths(text, origin, Some(trace_name)),
                Some(mutate(&trace, &mut rng)),
            )
        } else {
            (anchor_paths(&mutate(text, &mut rng), origin, None), None)
        };
        let case_dir = dir.join(format!("case-{case}"));
        std::fs::create_dir_all(&case_dir).expect("case dir");
        let path = case_dir.join("mutant.toml");
        std::fs::write(&path, &scenario_text).expect("write");
        if let Some(t) = &trace_text {
            std::fs::write(case_dir.join(trace_name), t).expect("write trace");
        }
        match judge(&path) {
            Verdict::Fine => {
                if case_dir.join("results.json").exists() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                let _ = std::fs::remove_dir_all(&case_dir);
            }
            Verdict::Broken(why) => {
                let keep = failures_dir.join(format!("seed{seed}-case{case}"));
                let _ = std::fs::create_dir_all(&keep);
                let _ = std::fs::write(keep.join("mutant.toml"), &scenario_text);
                if let Some(t) = &trace_text {
                    let _ = std::fs::write(keep.join(trace_name), t);
                }
                failures.push(format!("case {case} (from {origin}): {why}"));
            }
        }
    }
    eprintln!(
        "fuzz: {cases} mutants (seed {seed}): {accepted} ran, {refused} refused, {} broke",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} mutants broke simctl (kept in target/fuzz-failures/):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_never_crashes() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("tests/fuzz-corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "the corpus holds the known cases");
    let dir = scratch("corpus");
    let mut failures = Vec::new();
    for case in &cases {
        // Each case runs from a copy beside the corpus's data files.
        let name = case.file_name().expect("name");
        let path = dir.join(name);
        let text = std::fs::read_to_string(case).expect("read");
        let text = text.replace("@CORPUS@", &corpus.display().to_string());
        let extra: Vec<&str> = text
            .lines()
            .find_map(|l| l.strip_prefix("# simctl-args:"))
            .map(|a| a.split_whitespace().collect())
            .unwrap_or_default();
        std::fs::write(&path, &text).expect("write");
        if let Verdict::Broken(why) = judge_with(&path, &extra) {
            failures.push(format!("{}: {why}", name.to_string_lossy()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a broken server does with each connection.
type Misbehaviour = fn(std::net::TcpStream);

/// A server on 127.0.0.1 that misbehaves in one way on every connection, until dropped.
struct BrokenServer {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BrokenServer {
    fn start(answer: Misbehaviour) -> BrokenServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        std::thread::spawn(move || answer(conn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        BrokenServer { url, stop }
    }
}

impl Drop for BrokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Read what the client sent (the request head), so the answer comes after it.
fn read_head(conn: &mut std::net::TcpStream) {
    use std::io::Read;
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
}

#[test]
fn loadgen_ends_on_time_against_broken_servers() {
    use std::io::Write;
    let cases: [(&str, Misbehaviour); 4] = [
        ("never answers", |mut c| {
            read_head(&mut c);
            std::thread::sleep(Duration::from_secs(30));
        }),
        ("answers garbage", |mut c| {
            read_head(&mut c);
            let _ = c.write_all(b"\x00\xffgarbage\r\n\r\nmore garbage");
        }),
        ("closes mid-response", |mut c| {
            read_head(&mut c);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc");
        }),
        ("answers an absurd length", |mut c| {
            read_head(&mut c);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\nx");
            std::thread::sleep(Duration::from_secs(30));
        }),
    ];
    let dir = scratch("lg-broken");
    for (name, answer) in cases {
        let server = BrokenServer::start(answer);
        let out = dir.join(format!("{}.json", name.replace(' ', "-")));
        let start = Instant::now();
        let run = Command::new(env!("CARGO_BIN_EXE_simctl"))
            .args(["loadgen", "--target", &server.url, "--rate", "50"])
            .args([
                "--duration",
                "2s",
                "--timeout",
                "1s",
                "--max-in-flight",
                "5",
            ])
            .args(["--quiet", "--out"])
            .arg(&out)
            .output()
            .expect("loadgen runs");
        let took = start.elapsed();
        assert_eq!(
            run.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            took < Duration::from_secs(8),
            "{name}: a 2 s test with a 1 s timeout took {took:?}"
        );
        let r = read_json(&out);
        assert_balanced(&r);
        drop(server);
    }
}

#[test]
fn serve_survives_malformed_http() {
    use std::io::{Read, Write};
    let served = crate::common::Served::start(&["--service-time", "1ms"]);
    let addr = served.urls[0]
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut rng = Pcg64::seed_from_u64(5);
    let good = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}".to_vec();
    for case in 0..200 {
        // Mutate a good request: flip, drop or insert bytes; sometimes a huge header.
        let mut req = good.clone();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..req.len());
            match rng.random_range(0..4) {
                0 => req[i] = rng.random(),
                1 => {
                    req.remove(i);
                }
                2 => req.insert(i, rng.random()),
                _ => req
                    .splice(i..i, std::iter::repeat_n(b'a', 70_000))
                    .for_each(drop),
            }
        }
        if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.write_all(&req);
            let _ = conn.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer);
        }
        // After each, a good request is still answered.
        if case % 20 == 19 {
            let mut conn = std::net::TcpStream::connect(&addr).expect("still listening");
            conn.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            conn.write_all(&good).expect("send");
            let mut head = [0u8; 12];
            conn.read_exact(&mut head).expect("an answer");
            assert_eq!(&head, b"HTTP/1.1 200", "case {case}");
        }
    }
}

#[test]
fn serve_drops_a_queued_request_whose_client_left() {
    use std::io::{Read, Write};
    // One worker, 400 ms per request: A runs, B queues and its client leaves, C queues.
    let served = crate::common::Served::start(&["--service-time", "400ms", "--threads", "1"]);
    let addr = served.urls[0]
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let request = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
    let send = || {
        let mut c = std::net::TcpStream::connect(&addr).expect("connect");
        c.write_all(request).expect("send");
        c
    };
    let start = Instant::now();
    let mut a = send();
    std::thread::sleep(Duration::from_millis(50));
    let b = send();
    std::thread::sleep(Duration::from_millis(50));
    drop(b); // B's client gives up while B waits for the worker.
    let mut c = send();
    let mut head = [0u8; 12];
    a.read_exact(&mut head).expect("A answered");
    c.read_exact(&mut head).expect("C answered");
    assert_eq!(&head, b"HTTP/1.1 200");
    let took = start.elapsed();
    // A then C: ~800 ms; had B been served too, ~1,200 ms.
    assert!(
        took < Duration::from_millis(1_100),
        "C answered after {took:?}"
    );
    let mut m = std::net::TcpStream::connect(&addr).expect("connect");
    m.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("send");
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).expect("metrics");
    assert!(
        metrics.contains("status=\"499\"} 1"),
        "B counted as dropped: {metrics}"
    );
}

#[test]
fn serve_closes_idle_and_slow_connections() {
    use std::io::{Read, Write};
    let served = crate::common::Served::start(&["--service-time", "1ms", "--idle-timeout", "1s"]);
    let addr = served.urls[0]
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let closed_within = |mut c: std::net::TcpStream| {
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let start = Instant::now();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        start.elapsed()
    };
    // Silent from the start, then half a request head (slowloris): closed after ~1 s.
    let silent = std::net::TcpStream::connect(&addr).expect("connect");
    assert!(closed_within(silent) < Duration::from_secs(3));
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
        .expect("send");
    assert!(closed_within(slow) < Duration::from_secs(3));
    // Idle after an answered request on a kept-alive connection: closed too.
    let mut kept = std::net::TcpStream::connect(&addr).expect("connect");
    kept.write_all(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .expect("send");
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).expect("answered");
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(closed_within(kept) < Duration::from_secs(3));
}
