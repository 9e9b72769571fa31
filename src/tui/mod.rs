//! The live view of a simulation (`simctl run --tui`): the run advances at a chosen multiple of
//! real time and the panels follow it. Drawing is a pure function of a [`LiveView`] so frames
//! can be snapshot-tested with ratatui's `TestBackend`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;
use sim::results::Metric;
use sim::{Results, SimError, SimTime, Simulation};

/// Colours assigned to APIs in order, so an API keeps its colour in every panel.
mod draw;

pub(crate) use draw::draw;

const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
];

/// Why the live view stopped without results.
#[derive(Debug)]
pub(crate) enum LiveError {
    /// Standard output is not a terminal.
    NoTerminal,
    /// The simulation failed (e.g. a malformed trace row).
    Sim(SimError),
    /// The terminal failed.
    Io(std::io::Error),
}

/// What drives the view: a simulation the user plays back, or a real run that moves with the
/// clock (a load test).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// A simulation at a chosen speed.
    Replay(Playback),
    /// Wall-clock time.
    Live,
}

/// Playback state the user controls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Playback {
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    /// Time stands still.
    pub paused: bool,
}

/// Everything one frame shows, read from the simulation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveView {
    /// Scenario name.
    pub title: String,
    /// Simulated time reached, seconds.
    pub now_s: f64,
    /// Scenario length, seconds.
    pub duration_s: f64,
    /// Cost so far, USD (none for a real run).
    pub cost_usd: Option<f64>,
    /// Per API: name, recent arrival rates, desired, ready, pending, in flight, queued,
    /// p50 and p99 of the last step (ms).
    pub apis: Vec<ApiPanel>,
    /// Per node group: name, instance type, spot, nodes now.
    pub groups: Vec<(String, String, bool, u32)>,
    /// Most recent events, newest last: (time s, kind, message).
    pub events: Vec<(f64, String, String)>,
    /// What a load test measured (a load test only): it replaces the replica and node panels,
    /// which a load generator cannot see.
    pub load: Option<LoadPanel>,
}

/// What a load generator knows: only its own side of the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LoadPanel {
    /// Requests sent so far.
    pub sent: u64,
    /// 2xx answers so far.
    pub completed: u64,
    /// 503 answers so far.
    pub rejected: u64,
    /// Timeouts, transport errors and other statuses so far.
    pub failed: u64,
    /// Requests that left later than the late threshold so far.
    pub late: u64,
    /// Requests outstanding at the client now.
    pub in_flight: u64,
    /// 2xx answers in the last second.
    pub completed_last_s: u64,
    /// 503 answers in the last second.
    pub rejected_last_s: u64,
}

/// One API's panel values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiPanel {
    /// API name.
    pub name: String,
    /// Arrival rate per timeline step, oldest first.
    pub rps: Vec<u64>,
    /// Replicas wanted (unknown to a load test).
    pub desired: Option<f64>,
    /// Replicas serving.
    pub ready: Option<f64>,
    /// Replicas waiting for a node.
    pub pending: Option<f64>,
    /// Requests in flight (executing + queued).
    pub in_flight: f64,
    /// Requests queued (unknown to a load test).
    pub queue: Option<f64>,
    /// Median latency over the last step, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile over the last step, ms.
    pub p99_ms: Option<f64>,
    /// The engines' figures of an LLM API (none for a request-level API or a load test).
    pub llm: Option<LlmPanel>,
    /// Its tenants' last step, when its traffic is a sum of tenants.
    pub tenants: Vec<TenantPanel>,
}

/// One tenant's last timeline step: what it sent, what was served, what was refused, and how
/// slow — the figures a noisy neighbour moves.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TenantPanel {
    /// Tenant name.
    pub name: String,
    /// Arrivals per second.
    pub rps: Option<f64>,
    /// Completions per second.
    pub throughput_rps: Option<f64>,
    /// Requests refused (503 and 429).
    pub rejected: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// What an LLM API's engines show: sequences, KV cache and token latency.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LlmPanel {
    /// Sequences running over all replicas at the last sample.
    pub running: Option<f64>,
    /// Requests waiting in the engines at the last sample, preempted ones included.
    pub waiting: Option<f64>,
    /// KV-cache blocks in use over all ready replicas' blocks at the last sample, 0–1.
    pub kv_usage: Option<f64>,
    /// 99th percentile time to first token over the last step, ms.
    pub ttft_p99_ms: Option<f64>,
    /// 99th percentile inter-token latency over the run so far, ms.
    pub itl_p99_ms: Option<f64>,
}

fn last(series: Option<&[Option<f64>]>) -> Option<f64> {
    series.and_then(|s| s.last().copied().flatten())
}

impl LiveView {
    /// Read the current state of a simulation.
    pub(crate) fn of(sim: &Simulation) -> LiveView {
        let scenario = sim.scenario();
        let timeline = sim.timeline();
        let apis = scenario
            .apis
            .iter()
            .enumerate()
            .map(|(i, api)| {
                let n = &api.name;
                let get = |metric: Metric| timeline.get(metric, n);
                ApiPanel {
                    name: n.clone(),
                    rps: get(Metric::Rps)
                        .map(|s| {
                            s.iter()
                                .rev()
                                .take(120)
                                .rev()
                                .map(|v| v.unwrap_or(0.0).round() as u64)
                                .collect()
                        })
                        .unwrap_or_default(),
                    desired: Some(last(get(Metric::ReplicasDesired)).unwrap_or(0.0)),
                    ready: Some(last(get(Metric::ReplicasReady)).unwrap_or(0.0)),
                    pending: Some(last(get(Metric::PendingPods)).unwrap_or(0.0)),
                    in_flight: last(get(Metric::InFlight)).unwrap_or(0.0),
                    queue: Some(last(get(Metric::Queue)).unwrap_or(0.0)),
                    p50_ms: last(get(Metric::LatencyP50Ms)),
                    p99_ms: last(get(Metric::LatencyP99Ms)),
                    llm: api.llm.as_ref().map(|_| LlmPanel {
                        running: last(get(Metric::RunningSequences)),
                        waiting: last(get(Metric::WaitingSequences)),
                        kv_usage: last(get(Metric::KvCacheUsage)),
                        ttft_p99_ms: last(get(Metric::TtftP99Ms)),
                        itl_p99_ms: sim.llm_itl_p99_so_far_ms(i),
                    }),
                    tenants: api
                        .tenants
                        .iter()
                        .map(|t| {
                            let subject = format!("{n}/{}", t.name);
                            let get = |metric: Metric| last(timeline.get(metric, &subject));
                            TenantPanel {
                                name: t.name.clone(),
                                rps: get(Metric::Rps),
                                throughput_rps: get(Metric::ThroughputRps),
                                rejected: get(Metric::Rejected),
                                p99_ms: get(Metric::LatencyP99Ms),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let groups = scenario
            .node_groups
            .iter()
            .map(|g| {
                let nodes = last(timeline.get(Metric::Nodes, &g.name))
                    .unwrap_or(f64::from(g.min_instances));
                (
                    g.name.clone(),
                    g.instance.name.clone(),
                    g.spot,
                    nodes as u32,
                )
            })
            .collect();
        let events = sim
            .events()
            .iter()
            .rev()
            .take(50)
            .rev()
            .map(|e| {
                let who = e.api.clone().or(e.node_group.clone()).unwrap_or_default();
                // The "why" sentence says more than the message where there is one.
                let text = e
                    .kind
                    .why()
                    .map_or(e.message.as_str(), |w| w.sentence.as_str());
                (e.t_s, e.kind.name().to_string(), format!("{who}: {text}"))
            })
            .collect();
        LiveView {
            title: scenario.name.clone(),
            now_s: sim.now().as_secs_f64(),
            duration_s: scenario.duration.as_secs_f64(),
            cost_usd: Some(sim.cost_so_far_usd()),
            apis,
            groups,
            events,
            load: None,
        }
    }
}

/// Run a simulation in the live view until the user quits; returns the results up to where
/// the run got (the whole run if it finished): a run stopped early has `truncated_at_s` set to
/// the time simulated, and its figures cover only that time.
pub(crate) fn run_live(mut sim: Simulation, speed: f64) -> Result<Results, LiveError> {
    if !std::io::stdout().is_terminal() {
        return Err(LiveError::NoTerminal);
    }
    let mut terminal = ratatui::try_init().map_err(LiveError::Io)?;
    let outcome = live_loop(
        &mut sim,
        speed,
        |view, mode| {
            terminal
                .draw(|f| draw(f, view, mode))
                .map(drop)
                .map_err(LiveError::Io)
        },
        terminal_key,
    );
    ratatui::restore();
    outcome?;
    Ok(sim.finish())
}

/// The next key pressed within `wait`, if any.
fn terminal_key(wait: Duration) -> Result<Option<KeyCode>, LiveError> {
    if event::poll(wait).map_err(LiveError::Io)? {
        if let TermEvent::Key(key) = event::read().map_err(LiveError::Io)? {
            if key.kind == KeyEventKind::Press {
                return Ok(Some(key.code));
            }
        }
    }
    Ok(None)
}

/// Play `sim` at `speed`, drawing each frame with `show` and taking keys from `key` (which
/// waits up to the given time for one), until the user quits.
fn live_loop(
    sim: &mut Simulation,
    speed: f64,
    mut show: impl FnMut(&LiveView, Mode) -> Result<(), LiveError>,
    mut key: impl FnMut(Duration) -> Result<Option<KeyCode>, LiveError>,
) -> Result<(), LiveError> {
    let mut playback = Playback {
        speed,
        paused: false,
    };
    let duration = sim.scenario().duration;
    let step = sim.scenario().timeline_step;
    let mut last_tick = Instant::now();
    loop {
        show(&LiveView::of(sim), Mode::Replay(playback))?;
        match key(Duration::from_millis(50))? {
            Some(KeyCode::Char('q') | KeyCode::Esc) => return Ok(()),
            Some(KeyCode::Char(' ')) => playback.paused = !playback.paused,
            Some(KeyCode::Char('+') | KeyCode::Char('=')) => {
                playback.speed = (playback.speed * 2.0).min(1e6)
            }
            Some(KeyCode::Char('-')) => playback.speed = (playback.speed / 2.0).max(0.25),
            Some(KeyCode::Char('s')) => {
                playback.paused = true;
                sim.advance_to(sim.now() + step).map_err(LiveError::Sim)?;
            }
            Some(KeyCode::Char('e')) => sim.advance_to(duration).map_err(LiveError::Sim)?,
            _ => {}
        }
        let elapsed = last_tick.elapsed();
        last_tick = Instant::now();
        if !playback.paused && sim.now() < duration {
            let advance = SimTime::from_secs_f64(elapsed.as_secs_f64() * playback.speed);
            sim.advance_to(sim.now() + advance)
                .map_err(LiveError::Sim)?;
        }
    }
}

impl LiveView {
    /// The view of a load test before its first second.
    pub(crate) fn of_load(title: &str, api: &str, planned_s: f64) -> LiveView {
        LiveView {
            title: title.to_string(),
            now_s: 0.0,
            duration_s: planned_s,
            cost_usd: None,
            apis: vec![ApiPanel {
                name: api.to_string(),
                rps: Vec::new(),
                desired: None,
                ready: None,
                pending: None,
                in_flight: 0.0,
                queue: None,
                p50_ms: None,
                p99_ms: None,
                llm: None,
                tenants: Vec::new(),
            }],
            groups: Vec::new(),
            events: Vec::new(),
            load: Some(LoadPanel::default()),
        }
    }

    /// Fold one second of a load test into the view: the rate, latency and in-flight panels,
    /// and events for new rejections, failures and late sends.
    pub(crate) fn push_load_second(&mut self, p: &loadgen::Progress, before: &loadgen::Progress) {
        self.now_s = p.elapsed_s;
        if let Some(api) = self.apis.first_mut() {
            api.rps.push(p.rate_rps.round() as u64);
            if api.rps.len() > 600 {
                api.rps.remove(0);
            }
            api.in_flight = p.in_flight as f64;
            api.p50_ms = p.p50_ms;
            api.p99_ms = p.p99_ms;
            // Against an OpenAI-compatible target: the client-side TTFT and ITL (the engine's
            // running, waiting and KV usage are the server's, unseen here).
            if p.output_tokens_per_s.is_some() {
                api.llm = Some(LlmPanel {
                    running: None,
                    waiting: None,
                    kv_usage: None,
                    ttft_p99_ms: p.ttft_p99_ms,
                    itl_p99_ms: p.itl_p99_ms,
                });
            }
        }
        self.load = Some(LoadPanel {
            sent: p.sent,
            completed: p.completed,
            rejected: p.rejected,
            failed: p.failed,
            late: p.late,
            in_flight: p.in_flight,
            completed_last_s: p.completed.saturating_sub(before.completed),
            rejected_last_s: p.rejected.saturating_sub(before.rejected),
        });
        for (kind, now, then) in [
            ("503", p.rejected, before.rejected),
            ("failed", p.failed, before.failed),
            ("late", p.late, before.late),
        ] {
            if now > then {
                let what = match kind {
                    "503" => "rejected",
                    "failed" => "timed out or failed",
                    _ => "sent late",
                };
                self.events.push((
                    p.elapsed_s,
                    kind.to_string(),
                    format!("{} {what}", now - then),
                ));
            }
        }
        if self.events.len() > 200 {
            self.events.drain(..self.events.len() - 200);
        }
    }
}

/// Run a load test (`work`, given a progress sink) on a background thread while the live view
/// follows it; `q` (or Ctrl-C) cancels `stop` and the view stays until the test has written
/// its results.
pub(crate) fn run_load_live<T: Send + 'static>(
    title: &str,
    api: &str,
    planned_s: f64,
    stop: tokio_util::sync::CancellationToken,
    work: impl FnOnce(Box<dyn FnMut(&loadgen::Progress) + Send>) -> T + Send + 'static,
) -> Result<T, LiveError> {
    use std::sync::{Arc, Mutex};
    if !std::io::stdout().is_terminal() {
        return Err(LiveError::NoTerminal);
    }
    let view = Arc::new(Mutex::new(LiveView::of_load(title, api, planned_s)));
    let shared = view.clone();
    let mut before = loadgen::Progress::default();
    let sink = Box::new(move |p: &loadgen::Progress| {
        let mut v = shared.lock().unwrap_or_else(|e| e.into_inner());
        v.push_load_second(p, &before);
        before = p.clone();
    });
    let mut terminal = ratatui::try_init().map_err(LiveError::Io)?;
    let handle = std::thread::spawn(move || work(sink));
    let drawn = (|| -> Result<(), LiveError> {
        while !handle.is_finished() {
            let frame = view.lock().unwrap_or_else(|e| e.into_inner()).clone();
            terminal
                .draw(|f| draw(f, &frame, Mode::Live))
                .map_err(LiveError::Io)?;
            if event::poll(Duration::from_millis(200)).map_err(LiveError::Io)? {
                if let TermEvent::Key(key) = event::read().map_err(LiveError::Io)? {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key
                            .modifiers
                            .contains(ratatui::crossterm::event::KeyModifiers::CONTROL);
                    if key.kind == KeyEventKind::Press
                        && (ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc))
                    {
                        stop.cancel();
                    }
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    if drawn.is_err() {
        stop.cancel();
    }
    let out = handle
        .join()
        .map_err(|_| LiveError::Io(std::io::Error::other("the load test thread panicked")))?;
    drawn?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::path::Path;

    fn frame_text(view: &LiveView, mode: Mode) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 28)).expect("test backend");
        terminal.draw(|f| draw(f, view, mode)).expect("draws");
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn steps_sim(until_s: u64) -> Simulation {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steps.toml");
        let scenario = sim::Scenario::load(&path).expect("example loads");
        let mut sim = Simulation::new(scenario).expect("starts");
        sim.advance_to(SimTime::from_secs(until_s)).expect("runs");
        sim
    }

    #[test]
    fn frame_during_the_overload_step() {
        let view = LiveView::of(&steps_sim(15 * 60));
        let playback = Mode::Replay(Playback {
            speed: 60.0,
            paused: false,
        });
        insta::assert_snapshot!(frame_text(&view, playback));
    }

    #[test]
    fn frame_with_tenants() {
        // One API, three tenants, mid-way through the noisy one's burst under FIFO.
        let text = r#"
name = "tenants live view"
duration = "10m"
seed = 7
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "search"
[apis.pod]
max_concurrency = 4
max_queue_length = 32
[apis.service_time]
distribution = "lognormal"
median = "40ms"
p99 = "120ms"
[apis.autoscaling]
policy = "fixed"
min_replicas = 2
max_replicas = 2
[[apis.tenants]]
name = "acme"
traffic = { kind = "poisson", rps = 30 }
[[apis.tenants]]
name = "globex"
traffic = { kind = "poisson", rps = 30 }
[[apis.tenants]]
name = "noisy"
traffic = { kind = "steps", steps = [{ at = "0s", rps = 20 }, { at = "4m", rps = 300 }] }
"#;
        let scenario = sim::Scenario::parse(text, "tenants.toml", Path::new(".")).expect("valid");
        let mut sim = Simulation::new(scenario).expect("starts");
        sim.advance_to(SimTime::from_secs(5 * 60)).expect("runs");
        let view = LiveView::of(&sim);
        assert_eq!(view.apis[0].tenants.len(), 3);
        let noisy = &view.apis[0].tenants[2];
        assert!(noisy.rps.is_some_and(|r| r > 200.0), "{noisy:?}");
        let text = frame_text(&view, Mode::Live);
        assert!(text.contains("search/noisy"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn frame_with_an_llm_api() {
        // Two vLLM replicas with a tight KV cache, past a traffic step that queues sequences.
        let text = r#"
name = "llm live view"
duration = "10m"
seed = 3
[[node_groups]]
name = "a100"
instance_type = "p4d.24xlarge"
min_instances = 1
max_instances = 1
[[apis]]
name = "chat"
[apis.compute]
cpu = "4"
gpu = 1
[apis.llm]
max_num_seqs = 64
kv_cache_tokens = 60000
[apis.llm.step_time]
base = "5ms"
per_prefill_token = "0.05ms"
per_decode_token = "0.2ms"
[apis.llm.input_tokens]
distribution = "lognormal"
median = 600
p99 = 4000
[apis.llm.output_tokens]
distribution = "lognormal"
median = 150
p99 = 1000
[apis.traffic]
kind = "steps"
steps = [{ at = "0s", rps = 4 }, { at = "4m", rps = 14 }]
[apis.autoscaling]
policy = "fixed"
min_replicas = 2
max_replicas = 2
"#;
        let scenario = sim::Scenario::parse(text, "llm.toml", Path::new(".")).expect("valid");
        let mut sim = Simulation::new(scenario).expect("starts");
        sim.advance_to(SimTime::from_secs(6 * 60)).expect("runs");
        let view = LiveView::of(&sim);
        let llm = view.apis[0].llm.as_ref().expect("an LLM API");
        assert!(llm.running.is_some() && llm.kv_usage.is_some() && llm.itl_p99_ms.is_some());
        let playback = Mode::Replay(Playback {
            speed: 60.0,
            paused: false,
        });
        let text = frame_text(&view, playback);
        assert!(text.contains("LLM engines"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn frame_of_a_live_load_test() {
        let mut view = LiveView::of_load("load test of http://127.0.0.1:8080/", "api", 60.0);
        let mut before = loadgen::Progress::default();
        for second in 1..=20u64 {
            let p = loadgen::Progress {
                elapsed_s: second as f64,
                planned_s: 60.0,
                sent: second * 50,
                completed: second * 48,
                rejected: if second > 15 { (second - 15) * 2 } else { 0 },
                rate_rps: 50.0 + (second % 5) as f64 * 10.0,
                p50_ms: Some(100.0 + second as f64),
                p99_ms: Some(180.0 + 2.0 * second as f64),
                in_flight: 6,
                ..loadgen::Progress::default()
            };
            view.push_load_second(&p, &before);
            before = p;
        }
        insta::assert_snapshot!(frame_text(&view, Mode::Live));
    }

    #[test]
    fn a_live_openai_load_test_shows_ttft_and_itl() {
        let mut view = LiveView::of_load("load test", "api", 60.0);
        let p = loadgen::Progress {
            elapsed_s: 1.0,
            sent: 2,
            completed: 2,
            rate_rps: 2.0,
            ttft_p99_ms: Some(123.0),
            itl_p99_ms: Some(45.0),
            output_tokens_per_s: Some(40.0),
            ..loadgen::Progress::default()
        };
        view.push_load_second(&p, &loadgen::Progress::default());
        let text = frame_text(&view, Mode::Live);
        assert!(text.contains("LLM engines"), "{text}");
        assert!(text.contains("123"), "{text}");
        assert!(text.contains("45"), "{text}");
    }

    #[test]
    fn quitting_early_keeps_the_time_simulated() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steps.toml");
        let scenario = sim::Scenario::load(&path).expect("example loads");
        let planned_s = scenario.duration.as_secs_f64();
        let step_s = scenario.timeline_step.as_secs_f64();
        let mut sim = Simulation::new(scenario).expect("starts");
        // Three steps by hand (`s` pauses and steps), then quit.
        let mut keys = vec![KeyCode::Char('q'), KeyCode::Char('s'), KeyCode::Char('s')];
        keys.push(KeyCode::Char('s'));
        let mut frames = 0;
        live_loop(
            &mut sim,
            1.0,
            |view, mode| {
                frame_text(view, mode);
                frames += 1;
                Ok(())
            },
            |_| Ok(keys.pop()),
        )
        .expect("quits");
        assert_eq!(frames, 4);
        let results = sim.finish();
        let simulated = results.truncated_at_s.expect("stopped early");
        // The first key pauses the clock, so exactly three steps were simulated.
        assert!((simulated - 3.0 * step_s).abs() < 1e-9, "{simulated}");
        assert_eq!(results.simulated_s(), simulated);
        assert_eq!(results.duration_s, planned_s, "the planned length stays");
        let last_sample = results.timeline.t_s.last().copied().expect("timeline");
        assert!(
            last_sample <= simulated + 1e-9,
            "{last_sample} > {simulated}"
        );
        let control_plane = simulated / 3600.0 * 0.10;
        assert!(
            (results.control_plane_cost_usd - control_plane).abs() < 1e-9,
            "{} for {simulated} s",
            results.control_plane_cost_usd
        );
    }

    #[test]
    fn frame_when_finished_and_on_a_tiny_terminal() {
        let sim = steps_sim(3600);
        let view = LiveView::of(&sim);
        let playback = Mode::Replay(Playback {
            speed: 60.0,
            paused: true,
        });
        let text = frame_text(&view, playback);
        assert!(text.contains("finished"), "{text}");
        // Resize safety: drawing into a very small area must not panic.
        let mut terminal = Terminal::new(TestBackend::new(12, 4)).expect("test backend");
        terminal
            .draw(|f| draw(f, &view, playback))
            .expect("draws small");
    }
}
