//! Replicas that are the user's own server (`--replica-cmd`): a shell command template started
//! once per replica in a process group of its own, so that a multi-process server (uvicorn's
//! `--workers`, gunicorn, …) is stopped whole — its workers included — on scale-down, on exit
//! and on Ctrl-C.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::super::ActuatorError;

/// How to run one replica of a foreign server.
#[derive(Debug, Clone)]
pub struct ReplicaCommand {
    /// A shell command line; `{port}`, `{processes}`, `{threads}` and `{index}` are replaced by
    /// the replica's port on 127.0.0.1, the API's processes per replica and threads per process,
    /// and the replica's number (0, 1, 2, … in start order).
    pub template: String,
    /// `processes_per_replica` of the API, for `{processes}`.
    pub processes: u32,
    /// `threads_per_process` of the API, for `{threads}`.
    pub threads: u32,
    /// Path the replica answers 2xx on once it is ready (`/healthz`).
    pub readiness_path: String,
}

impl ReplicaCommand {
    /// The command line of replica `index` listening on `port`.
    pub fn render(&self, port: u16, index: u32) -> String {
        self.template
            .replace("{port}", &port.to_string())
            .replace("{processes}", &self.processes.to_string())
            .replace("{threads}", &self.threads.to_string())
            .replace("{index}", &index.to_string())
    }

    /// Refuse a template that cannot work: without `{port}` every replica would listen on the
    /// same port (or one the proxy does not know).
    pub fn check(&self) -> Result<(), String> {
        if self.template.trim().is_empty() {
            return Err("--replica-cmd is empty".into());
        }
        if !self.template.contains("{port}") {
            return Err(format!(
                "--replica-cmd {:?} has no {{port}}: each replica must listen on the port the proxy gives it",
                self.template
            ));
        }
        if !self.readiness_path.starts_with('/') {
            return Err(format!(
                "--readiness-path {:?} must start with '/'",
                self.readiness_path
            ));
        }
        Ok(())
    }
}

/// The last lines a replica printed (stdout and stderr), for the error when it dies.
#[derive(Debug, Clone, Default)]
pub(super) struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    const LINES: usize = 20;

    fn push(&self, line: String) {
        let mut t = match self.0.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if t.len() == Self::LINES {
            t.pop_front();
        }
        t.push_back(line);
    }

    /// The lines, oldest first, joined.
    pub(super) fn text(&self) -> String {
        let t = match self.0.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn follow(&self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let tail = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tail.push(line);
            }
        });
    }
}

/// A port on 127.0.0.1 that was free a moment ago. The replica binds it itself; another program
/// could take it in between, which shows up as a replica that exits at start (reported, retried).
fn free_port() -> Result<u16, ActuatorError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ActuatorError::Local(format!("cannot find a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| ActuatorError::Local(format!("cannot find a free port: {e}")))
}

/// A started foreign replica: its base URL, the child (`sh -c`, leader of its process group) and
/// what it prints.
pub(super) struct Started {
    pub(super) url: String,
    pub(super) child: Child,
    pub(super) tail: Tail,
    pub(super) command: String,
}

/// Start replica `index` of `cmd` in a new process group.
pub(super) fn start(cmd: &ReplicaCommand, index: u32) -> Result<Started, ActuatorError> {
    let port = free_port()?;
    let line = cmd.render(port, index);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| ActuatorError::Local(format!("cannot start `sh -c {line:?}`: {e}")))?;
    let tail = Tail::default();
    if let Some(out) = child.stdout.take() {
        tail.follow(out);
    }
    if let Some(err) = child.stderr.take() {
        tail.follow(err);
    }
    tracing::info!(command = %line, port, "replica command started");
    Ok(Started {
        url: format!("http://127.0.0.1:{port}"),
        child,
        tail,
        command: line,
    })
}

/// Send `signal` to the process group led by `pid` (every process the command started).
#[cfg(unix)]
pub(super) fn signal_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 0 {
            // SAFETY: killpg only sends a signal; a group that is already gone gives ESRCH.
            unsafe {
                libc::killpg(pid, signal);
            }
        }
    }
}

/// Stop a foreign replica: SIGTERM to its group (a graceful shutdown for servers that have one),
/// then SIGKILL to whatever is left of the group after `grace`.
pub(super) async fn stop(mut child: Child, grace: Duration) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        signal_group(pid, libc::SIGTERM);
        let _ = tokio::time::timeout(grace, child.wait()).await;
        // The leader may be gone while workers linger: the group gets SIGKILL either way.
        signal_group(pid, libc::SIGKILL);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_a_portless_template_is_refused() {
        let cmd = ReplicaCommand {
            template: "serve --port {port} -w {processes} -t {threads} --name r{index}".into(),
            processes: 2,
            threads: 4,
            readiness_path: "/healthz".into(),
        };
        assert_eq!(cmd.render(8123, 3), "serve --port 8123 -w 2 -t 4 --name r3");
        assert!(cmd.check().is_ok());
        let bad = ReplicaCommand {
            template: "serve".into(),
            ..cmd.clone()
        };
        assert!(bad.check().unwrap_err().contains("{port}"));
        let bad = ReplicaCommand {
            readiness_path: "healthz".into(),
            ..cmd
        };
        assert!(bad.check().is_err());
    }
}
