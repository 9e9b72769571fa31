//! The controller on LLM signals through a real Prometheus: `simctl autoscale --actuator local
//! --metrics prometheus` keeps a `file_sd_configs` list of its emulated vLLM replicas, a real
//! Prometheus server (Debian's package; `.ci/run` installs it) scrapes their `/metrics` every
//! second, and the HPA runs on `vllm:num_requests_waiting` as PromQL — the path a cluster runs.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{http_get as get, ok, read_json, scratch, simctl};

fn prometheus_binary() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A port free at the time of asking (Prometheus takes its address on the command line).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Prometheus server killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Start `binary` scraping the targets listed in `targets` every second, and wait until it
    /// is ready.
    fn start(binary: &Path, dir: &Path, targets: &Path) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: llm\n    file_sd_configs:\n      \
                 - files: [\"{}\"]\n        refresh_interval: 1s\n",
                targets.display()
            ),
        )
        .expect("config written");
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log file"))
            .spawn()
            .expect("prometheus starts");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(&format!("{}/-/ready", server.url)).is_some_and(|(code, _)| code == 200) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "prometheus not ready in 30 s: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.url,
            form_urlencoded::byte_serialize(promql.as_bytes()).collect::<String>()
        );
        let (_, body) = get(&url).expect("prometheus answers");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

#[test]
fn the_controller_scales_llm_replicas_on_waiting_requests_read_from_a_real_prometheus() {
    let Some(binary) = prometheus_binary() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "prometheus is not installed, and CI=true requires the real-Prometheus check: \
                 install it with `apt-get install -y prometheus` (.ci/run does this)"
            );
        }
        eprintln!("SKIPPED the real-Prometheus check: prometheus not installed (apt-get install -y prometheus)");
        return;
    };
    let dir = scratch("prometheus-llm");
    let targets = dir.join("targets.json");
    std::fs::write(&targets, "[]\n").expect("targets written");
    let prometheus = Prometheus::start(&binary, &dir, &targets);

    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/autoscale-llm.toml");
    let decisions = dir.join("decisions.jsonl");
    let mut controller = Command::new(env!("CARGO_BIN_EXE_simctl"))
        .args(["autoscale", scenario.to_str().expect("utf-8")])
        .args(["--actuator", "local", "--listen", "127.0.0.1:0"])
        .args(["--proxy-listen", "127.0.0.1:0"])
        .args([
            "--metrics",
            "prometheus",
            "--prometheus-url",
            &prometheus.url,
        ])
        .arg("--prometheus-file-sd")
        .arg(&targets)
        .args(["--duration", "82s", "--decisions"])
        .arg(&decisions)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("autoscale.log")).expect("log file"))
        .spawn()
        .expect("simctl autoscale starts");
    let mut lines = std::io::BufReader::new(controller.stdout.take().expect("stdout")).lines();
    let proxy = loop {
        let line = lines
            .next()
            .expect("autoscale printed its proxy address")
            .expect("utf-8");
        if line.starts_with("proxy") {
            break line[line.find("http://").expect("url")..]
                .trim()
                .to_string();
        }
    };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).count());
    // The first replica ready (1 s) and scraped before the load starts.
    std::thread::sleep(Duration::from_secs(3));
    let lg = dir.join("lg.json");
    ok(simctl(&[
        "loadgen",
        scenario.to_str().expect("utf-8"),
        "--target",
        &format!("{proxy}/v1/completions"),
        "--openai",
        "--quiet",
        "--out",
        lg.to_str().expect("utf-8"),
    ]));
    // Every replica's series, while the controller still runs.
    let pods = prometheus
        .query("count(count_over_time(vllm:num_requests_waiting{model_name=\"chat\"}[2m]))");
    let status = controller.wait().expect("controller exits");
    rest.join().expect("stdout drained");
    let log = || std::fs::read_to_string(dir.join("autoscale.log")).unwrap_or_default();
    assert!(status.success(), "autoscale exit {status:?}: {}", log());

    let series = pods
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        series >= 3.0,
        "Prometheus scraped each new replica: {pods:?}"
    );
    let d: Vec<serde_json::Value> = std::fs::read_to_string(&decisions)
        .expect("decisions written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let targets: Vec<u64> = d.iter().filter_map(|x| x["target"].as_u64()).collect();
    let peak = targets.iter().copied().max().unwrap_or(0);
    assert!(
        peak >= 3,
        "scaled up on PromQL's waiting requests: {targets:?}\n{}",
        log()
    );
    let at_peak = targets.iter().position(|t| *t == peak).unwrap_or(0);
    assert!(
        targets[at_peak..].iter().any(|t| *t < peak),
        "and back down after the step: {targets:?}"
    );
    let r = read_json(&lg);
    assert!(r["apis"][0]["completed"].as_u64().unwrap_or(0) > 200, "{r}");
}
