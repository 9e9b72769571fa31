//! The routers room: each `[[routers]]` endpoint's arrivals and the draw that sends each request
//! to one API — by weight, as Cortex's TrafficSplitter configures Istio (a weighted random
//! choice per request, weights summing to 100), or by a class drawn per request or read from
//! the trace's class column — plus the
//! shadow copy Istio's `mirror` sends (fire and forget: the shadow API is loaded, its answer is
//! discarded and in nobody's latency).
//!
//! Each router draws its routes from its own stream (`router/<name>`) and its shadow copies from
//! another (`router/<name>/shadow`), so adding a router perturbs no other stream and adding a
//! shadow leaves the routes as they were (common random numbers: a canary with and without a
//! shadow sees the same requests); its arrivals come from `arrivals/router/<name>`.

use rand::Rng;

use super::SimError;
use crate::rng::{stream, Stream};
use crate::scenario::Router;
use crate::time::SimTime;
use crate::traffic::ArrivalStream;
use contract::routing::{ClassCount, RouteCount, RouterResults, RouterStep};

/// One router during a run.
pub(super) struct RouterState {
    spec: Router,
    arrivals: ArrivalStream,
    /// Its next arrival and that arrival's recorded service time (trace column).
    pub(super) next: (SimTime, Option<SimTime>),
    draws: Stream,
    shadow_draws: Stream,
    /// The weight step in force.
    step: usize,
    /// Cumulative weights of the step in force (non-shadow routes; the shadow's is 0).
    cumulative: Vec<u32>,
    requests: u64,
    /// Requests per route (copies for the shadow), per weight step.
    per_step: Vec<Vec<u64>>,
    /// Requests per class.
    per_class: Vec<u64>,
}

/// Where one request goes.
pub(super) struct Pick {
    /// The API (scenario index) that serves it.
    pub(super) api: usize,
    /// The shadow API getting a copy, when it does.
    pub(super) shadow: Option<usize>,
}

impl RouterState {
    /// A router before its first arrival, its streams opened from the scenario's seed.
    pub(super) fn new(spec: Router, seed: u64) -> Result<RouterState, SimError> {
        let mut arrivals = ArrivalStream::open(
            &spec.traffic,
            stream(seed, &format!("arrivals/router/{}", spec.name)),
        )?;
        let first = arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
        let next = (first, arrivals.recorded_service());
        let mut state = RouterState {
            draws: stream(seed, &format!("router/{}", spec.name)),
            shadow_draws: stream(seed, &format!("router/{}/shadow", spec.name)),
            arrivals,
            next,
            step: 0,
            cumulative: Vec::new(),
            requests: 0,
            per_step: vec![vec![0; spec.routes.len()]; spec.weights.len().max(1)],
            per_class: vec![0; spec.classes.len()],
            spec,
        };
        state.set_weights(0);
        Ok(state)
    }

    fn set_weights(&mut self, step: usize) {
        self.step = step;
        let Some((_, weights)) = self.spec.weights.get(step) else {
            return;
        };
        let mut total = 0;
        self.cumulative = self
            .spec
            .routes
            .iter()
            .zip(weights)
            .map(|(route, w)| {
                if !route.shadow {
                    total += w;
                }
                total
            })
            .collect();
    }

    /// Read the next arrival after one arrived.
    pub(super) fn advance(&mut self) -> Result<(), SimError> {
        let next = self.arrivals.next_arrival()?.unwrap_or(SimTime::NEVER);
        self.next = (next, self.arrivals.recorded_service());
        Ok(())
    }

    /// Choose the API for a request arriving at `now` (and whether the shadow gets a copy).
    pub(super) fn pick(&mut self, now: SimTime) -> Pick {
        while self
            .spec
            .weights
            .get(self.step + 1)
            .is_some_and(|(at, _)| *at <= now)
        {
            self.set_weights(self.step + 1);
        }
        self.requests += 1;
        let api = if self.spec.classes.is_empty() {
            // Istio's weighted destinations: a uniform draw over the 100 points of weight.
            let point = self.draws.random_range(0..100u32);
            let route = self
                .cumulative
                .iter()
                .zip(&self.spec.routes)
                .position(|(&c, r)| !r.shadow && point < c)
                .unwrap_or(0);
            self.per_step[self.step][route] += 1;
            self.spec.routes[route].api
        } else if let Some(class) = self.arrivals.recorded_class() {
            // Read from the trace's class column (the arrival just taken).
            let class = usize::from(class);
            self.per_class[class] += 1;
            self.spec.classes[class].api
        } else {
            let u: f64 = self.draws.random();
            let mut acc = 0.0;
            let last = self.spec.classes.len() - 1;
            let class = self
                .spec
                .classes
                .iter()
                .position(|c| {
                    acc += c.share;
                    u < acc
                })
                .unwrap_or(last);
            self.per_class[class] += 1;
            self.spec.classes[class].api
        };
        let shadow = self.spec.shadow().and_then(|s| {
            let percent = self.spec.weights[self.step].1[s];
            // Istio's mirror percentage: each request copied with that probability.
            let copied = self.shadow_draws.random::<f64>() * 100.0 < f64::from(percent);
            copied.then(|| {
                self.per_step[self.step][s] += 1;
                self.spec.routes[s].api
            })
        });
        Pick { api, shadow }
    }

    /// The router's figures; `api_names` are the scenario's APIs.
    pub(super) fn results(&self, api_names: &[&str]) -> RouterResults {
        let requests = self.requests;
        let share = |n: u64| {
            if requests == 0 {
                0.0
            } else {
                n as f64 / requests as f64
            }
        };
        let totals: Vec<u64> = (0..self.spec.routes.len())
            .map(|r| self.per_step.iter().map(|s| s[r]).sum())
            .collect();
        let mut routes: Vec<RouteCount> = self
            .spec
            .routes
            .iter()
            .zip(&totals)
            .filter(|(r, _)| !r.shadow)
            .map(|(r, &n)| RouteCount {
                api: api_names[r.api].into(),
                requests: n,
                share: share(n),
            })
            .collect();
        let classes: Vec<ClassCount> = self
            .spec
            .classes
            .iter()
            .zip(&self.per_class)
            .map(|(c, &n)| ClassCount {
                class: c.name.clone(),
                api: api_names[c.api].into(),
                requests: n,
            })
            .collect();
        for class in &classes {
            match routes.iter_mut().find(|r| r.api == class.api) {
                Some(r) => r.requests += class.requests,
                None => routes.push(RouteCount {
                    api: class.api.clone(),
                    requests: class.requests,
                    share: 0.0,
                }),
            }
        }
        if !classes.is_empty() {
            routes.iter_mut().for_each(|r| r.share = share(r.requests));
        }
        RouterResults {
            name: self.spec.name.clone(),
            requests,
            routes,
            classes,
            shadow: self.spec.shadow().map(|s| RouteCount {
                api: api_names[self.spec.routes[s].api].into(),
                requests: totals[s],
                share: share(totals[s]),
            }),
            steps: if self.spec.classes.is_empty() {
                self.spec.weights.iter()
            } else {
                [].iter()
            }
            .zip(&self.per_step)
            .map(|((at, weights), requests)| RouterStep {
                from_s: at.as_secs_f64(),
                weights: weights.clone(),
                requests: requests.clone(),
            })
            .collect(),
        }
    }
}
