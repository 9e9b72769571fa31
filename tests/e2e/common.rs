//! Helpers shared by the end-to-end tests: run the real binary, read what it wrote.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Run `simctl` from the repository root.
pub(crate) fn simctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("simctl runs")
}

/// Assert a run succeeded, showing its stderr otherwise.
pub(crate) fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch directory unique to this test process and `name`.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simctl-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Parse a JSON file.
pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("file written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// An example scenario's path.
pub(crate) fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// A file under tests/data.
pub(crate) fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Every API's counts balance.
pub(crate) fn assert_balanced(results: &serde_json::Value) {
    for api in results["apis"].as_array().expect("apis") {
        let n = |k: &str| api[k].as_u64().expect(k);
        assert_eq!(
            n("requests"),
            n("completed")
                + n("rejected")
                + n("timed_out")
                + n("interrupted")
                + n("in_flight_at_end"),
            "{}",
            api["name"]
        );
    }
}

/// `simctl run --quiet SCENARIO --out …` and the results, checked for balance.
pub(crate) fn run_results(scenario: &Path) -> serde_json::Value {
    let stem = scenario
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run");
    let out = scratch(stem).join("results.json");
    ok(simctl(&[
        "run",
        "--quiet",
        scenario.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]));
    let results = read_json(&out);
    assert_balanced(&results);
    results
}

/// `simctl run --quiet SCENARIO --seed SEED --out OUT` and the results: a tuned scenario re-run on
/// one of the tuner's seeds, to check it reproduces what the tuner reported.
pub(crate) fn run_on_seed(scenario: &Path, seed: &str, out: &Path) -> serde_json::Value {
    ok(simctl(&[
        "run",
        "--quiet",
        scenario.to_str().expect("utf-8 path"),
        "--seed",
        seed,
        "--out",
        out.to_str().expect("utf-8 path"),
    ]));
    read_json(out)
}

/// Run `scenario` twice into `dir` — once printing its summary, once `--quiet` — and check the
/// two results files are byte-identical (same seed, same bytes). Returns the printed summary and
/// the first results file.
pub(crate) fn run_twice(scenario: &Path, dir: &Path) -> (String, PathBuf) {
    let scenario = scenario.to_str().expect("utf-8");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let out = ok(simctl(&[
        "run",
        scenario,
        "--out",
        a.to_str().expect("utf-8"),
    ]));
    ok(simctl(&[
        "run",
        "--quiet",
        scenario,
        "--out",
        b.to_str().expect("utf-8"),
    ]));
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "{scenario}: same seed, same bytes"
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), a)
}

/// `simctl serve` replicas on free ports of 127.0.0.1, stopped when dropped.
pub(crate) struct Served {
    child: std::process::Child,
    /// One `http://127.0.0.1:PORT` per replica.
    pub(crate) urls: Vec<String>,
}

impl Served {
    /// Start `simctl serve --port 0 <args>` and wait for every replica's address.
    pub(crate) fn start(args: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_simctl"))
            .arg("serve")
            .args(["--port", "0", "--host", "127.0.0.1"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("simctl serve starts");
        let replicas = args
            .iter()
            .position(|a| *a == "--replicas")
            .map_or(1, |i| args[i + 1].parse::<usize>().expect("replica count"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut urls = Vec::new();
        while urls.len() < replicas {
            let line = lines
                .next()
                .expect("serve printed its addresses")
                .expect("utf-8");
            if let Some(at) = line.find("http://") {
                let url = line[at..].split_whitespace().next().expect("url");
                urls.push(url.to_string());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, urls }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `signal` (`-INT`, `-TERM`) to `child`, as Ctrl-C or a supervisor would: unlike
/// `Child::kill` (SIGKILL) it lets a controller stop the replicas it started.
pub(crate) fn send_signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {}", child.id());
}

/// A blocking GET on 127.0.0.1: (status, body), `None` when nothing answers.
pub(crate) fn http_get(url: &str) -> Option<(u16, String)> {
    http_request("GET", url, &[], "")
}

/// A blocking request on 127.0.0.1 with extra `headers` and a `body`: (status, body), `None`
/// when nothing answers.
pub(crate) fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        if path.is_empty() { "/" } else { path }
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(stream, "{head}\r\n{body}").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Read `child`'s stdout until a line starting with `prefix` and return the first URL on it
/// (`http://…`, without a trailing `/`); the rest of its output is drained in the background so
/// it never blocks on a full pipe.
pub(crate) fn printed_url(child: &mut std::process::Child, prefix: &str) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("exited before printing {prefix:?}"))
            .expect("utf-8");
        if line.starts_with(prefix) {
            let at = line.find("http://").expect("a URL on the line");
            break line[at..]
                .split_whitespace()
                .next()
                .expect("url")
                .trim_end_matches('/')
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    url
}
