//! Knative's per-revision decider, ported line by line from knative/serving
//! `pkg/autoscaler/scaling/autoscaler.go` (commit 98e5ef90, August 2026) with its scale-down
//! delay window (`pkg/autoscaler/aggregation/max/{window,timewindow}.go`): what the KPA wants
//! before `kpa/scaler.go` applies scale-to-zero grace and the min/max scale bounds.

use std::time::Duration;

/// `DeciderSpec`: the decider's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeciderSpec {
    /// Per-pod target of the metric (concurrency or RPS).
    pub target_value: f64,
    /// Per-pod capacity (`target / utilization`), for the excess burst capacity.
    pub total_value: f64,
    /// `target-burst-capacity` (0: none, negative: unlimited).
    pub target_burst_capacity: f64,
    /// Panic when the panic-window pods over ready pods reach this (2.0 = 200 %).
    pub panic_threshold: f64,
    /// `max-scale-up-rate`.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate`.
    pub max_scale_down_rate: f64,
    /// `stable-window`: how long panic lasts after its last trigger.
    pub stable_window: Duration,
    /// `scale-down-delay` (0: none).
    pub scale_down_delay: Duration,
    /// `activation-scale`.
    pub activation_scale: u32,
    /// Whether the revision receives traffic; an unreachable one may drop at once.
    pub reachable: bool,
}

/// `ScaleResult` of a valid decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleResult {
    /// Pods wanted.
    pub desired: u32,
    /// Capacity beyond the target burst capacity (−1: unlimited, the activator stays in path).
    pub excess_burst_capacity: i32,
}

/// How the last [`Decider::scale`] got to its answer, for the "why" of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trace {
    /// Pods the stable window asks for (`dspc`), before any limit.
    pub stable_pods: f64,
    /// Pods the panic window asks for (`dppc`), before any limit.
    pub panic_pods: f64,
    /// The stable count within the rate limits (and the activation scale).
    pub stable_limited: u32,
    /// The panic count within the rate limits (and the activation scale).
    pub panic_limited: u32,
    /// Whether it was panicking.
    pub panicking: bool,
    /// The count before the scale-down delay window (the max panic pods while panicking).
    pub before_delay: u32,
}

/// The tick of the decider (`tickInterval`), the scale-down delay window's granularity.
const TICK: Duration = Duration::from_secs(2);

/// `max.TimeWindow`: the largest value recorded in the last `duration`, in `TICK` buckets by
/// whole seconds (an ascending-minima window).
#[derive(Debug, Clone)]
struct MaxWindow {
    buckets: i64,
    /// (bucket index, value), values descending.
    maxima: std::collections::VecDeque<(i64, u32)>,
}

impl MaxWindow {
    fn new(duration: Duration) -> Self {
        Self {
            buckets: (duration.as_secs_f64() / TICK.as_secs_f64()).ceil() as i64,
            maxima: std::collections::VecDeque::new(),
        }
    }

    fn record(&mut self, now: Duration, mut value: u32) {
        let index = now.as_secs() as i64 / TICK.as_secs() as i64;
        while self.maxima.back().is_some_and(|&(_, v)| value >= v) {
            self.maxima.pop_back();
        }
        while self
            .maxima
            .front()
            .is_some_and(|&(i, _)| index - i >= self.buckets)
        {
            self.maxima.pop_front();
        }
        if let Some(&(i, v)) = self.maxima.back() {
            if i == index {
                value = value.max(v);
                self.maxima.pop_back();
            }
        }
        self.maxima.push_back((index, value));
    }

    fn current(&self) -> u32 {
        self.maxima.front().map_or(0, |&(_, v)| v)
    }
}

/// One revision's decider.
#[derive(Debug, Clone)]
pub struct Decider {
    /// Its settings (`Update` replaces them).
    pub spec: DeciderSpec,
    /// When panic mode last triggered, if panicking.
    pub panic_time: Option<Duration>,
    /// The most pods asked for in this panic.
    pub max_panic_pods: u32,
    /// How the last decision was reached.
    pub trace: Trace,
    delay: Option<MaxWindow>,
}

impl Decider {
    /// A decider created at `now` for a revision with `ready` pods: more than one ready pod
    /// starts it in panic, so a restarted autoscaler does not scale a busy revision down.
    pub fn new(spec: DeciderSpec, ready: u32, now: Duration) -> Self {
        let delay =
            (!spec.scale_down_delay.is_zero()).then(|| MaxWindow::new(spec.scale_down_delay));
        Self {
            spec,
            panic_time: (ready > 1).then_some(now),
            max_panic_pods: ready,
            trace: Trace::default(),
            delay,
        }
    }

    /// `Scale`: pods wanted at `now` with `ready` pods and the stable and panic window values.
    pub fn scale(&mut self, now: Duration, ready: u32, stable: f64, panic: f64) -> ScaleResult {
        let spec = &self.spec;
        let ready_count = f64::from(ready.max(1));
        let max_scale_up = (spec.max_scale_up_rate * ready_count).ceil();
        let max_scale_down = if spec.reachable {
            (ready_count / spec.max_scale_down_rate).floor()
        } else {
            0.0
        };
        let dspc = (stable / spec.target_value).ceil();
        let dppc = (panic / spec.target_value).ceil();
        let mut desired_stable = dspc.max(max_scale_down).min(max_scale_up) as u32;
        let mut desired_panic = dppc.max(max_scale_down).min(max_scale_up) as u32;
        if spec.activation_scale > 1 {
            if dspc > 0.0 && spec.activation_scale > desired_stable {
                desired_stable = spec.activation_scale;
            }
            if dppc > 0.0 && spec.activation_scale > desired_panic {
                desired_panic = spec.activation_scale;
            }
        }
        let over_panic_threshold = dppc / ready_count >= spec.panic_threshold;
        match self.panic_time {
            _ if over_panic_threshold => self.panic_time = Some(now),
            Some(t) if t + spec.stable_window < now => {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
            _ => {}
        }
        let mut desired = desired_stable;
        if self.panic_time.is_some() {
            desired = desired.max(desired_panic);
            if desired > self.max_panic_pods {
                self.max_panic_pods = desired;
            }
            desired = self.max_panic_pods;
        }
        self.trace = Trace {
            stable_pods: dspc,
            panic_pods: dppc,
            stable_limited: desired_stable,
            panic_limited: desired_panic,
            panicking: self.panic_time.is_some(),
            before_delay: desired,
        };
        if spec.reachable {
            if let Some(window) = &mut self.delay {
                window.record(now, desired);
                desired = window.current();
            }
        }
        let excess_burst_capacity = if spec.target_burst_capacity == 0.0 {
            0
        } else if spec.target_burst_capacity > 0.0 {
            let total = f64::from(ready) * spec.total_value;
            (total - spec.target_burst_capacity - panic).floor() as i32
        } else {
            -1
        };
        ScaleResult {
            desired,
            excess_burst_capacity,
        }
    }
}
