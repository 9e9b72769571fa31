//! The loop's routing of the feeds' requests (routers and pipelines): part of the loop (see the
//! module above), in a file of its own so that `mod.rs` stays a size a reader can hold.

use super::{pipelines, SimError, Simulation};
use crate::time::SimTime;

impl Simulation {
    /// A request arrives at feed `source` (a router, then the pipelines, after the APIs): it
    /// goes to the API its router picks (and a copy to the shadow), or into its pipeline's
    /// first stage.
    pub(super) fn feed_arrival(&mut self, source: usize) -> Result<(), SimError> {
        let k = source - self.serving.apis.len();
        let now = self.now;
        if let Some(router) = self.routers.get_mut(k) {
            let pick = router.pick(now);
            let recorded = router.next.1;
            router.advance()?;
            let next = router.next.0;
            self.api_arrival(pick.api, (recorded, pipelines::NO_FLOW));
            if let Some(shadow) = pick.shadow {
                self.api_arrival(shadow, (recorded, pipelines::NO_FLOW));
            }
            self.serving.feed_advanced(source, next);
        } else {
            let p = k - self.routers.len();
            let (flow, api) = self.pipelines.arrive(p, now)?;
            self.serving
                .feed_advanced(source, self.pipelines.next_arrival(p));
            self.api_arrival(api, (None, flow));
        }
        Ok(())
    }

    /// A request from a feed arrives at API `a` now (woken from zero if its activator asks).
    fn api_arrival(&mut self, a: usize, request: (Option<SimTime>, u32)) {
        let wake =
            self.serving
                .arrive_request(a, self.now, request, &mut self.cluster, &mut self.agenda);
        if wake {
            self.decide(a, false);
        }
    }

    /// Hand the pipeline requests that left a stage to the pipelines room; those that go on
    /// enter their next stage now (which may end them at once: a 503).
    pub(super) fn settle_flows(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.pipelines.stage_apis.len() {
                let a = self.pipelines.stage_apis[i];
                if self.serving.apis[a].ended_flows.is_empty() {
                    continue;
                }
                moved = true;
                let ended = std::mem::take(&mut self.serving.apis[a].ended_flows);
                let network = self.serving.apis[a].spec.network_latency;
                for (flow, end) in ended {
                    if let Some(next) = self.pipelines.stage_ended(flow, end, self.now, network) {
                        self.api_arrival(next, (None, flow));
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Each pipeline's point of the step the timeline just closed: `rps`, `throughput_rps` and
    /// end-to-end `latency_p99_ms` per pipeline (its name is the series' subject).
    pub(super) fn sample_pipelines(&mut self) {
        let t = &self.timeline.timeline.t_s;
        let points = t.len();
        if points == 0 || self.pipelines.len() == 0 {
            return;
        }
        let step_s = t[points - 1] - if points > 1 { t[points - 2] } else { 0.0 };
        self.pipelines
            .sample(&mut self.timeline.timeline.series, step_s, points);
    }
}
