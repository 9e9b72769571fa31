//! A replica's start-up drawn from its parts (`[apis.startup]`): the image pull, skipped on a
//! node that already has the image (a replica arriving while a pull is under way waits for
//! it, as the kubelet does), the model fetch and the load, each drawn from the API's own
//! random stream; and the record of where the time went, for the results.

use std::collections::BTreeMap;

use rand_distr::{Distribution, StandardNormal};

use crate::cluster::NodeId;
use crate::rng::{stream, Stream};
use crate::scenario::StartupModel;
use crate::service_time::ServiceSampler;
use crate::time::SimTime;
use contract::startup::{StartupBreakdown, StartupPart};

/// One API's start-up model, its random streams and what it measured.
pub(super) struct Startups {
    model: StartupModel,
    transfers: Stream,
    load: Option<ServiceSampler>,
    /// When each node's pull of the image is (or was) done.
    image_on_node: BTreeMap<usize, SimTime>,
    scheduling_s: Vec<f64>,
    image_pull_s: Vec<f64>,
    model_fetch_s: Vec<f64>,
    load_s: Vec<f64>,
    total_s: Vec<f64>,
    cached_pulls: u64,
}

impl Startups {
    /// The start-ups of API `api` under `seed`.
    pub(super) fn new(model: StartupModel, api: &str, seed: u64) -> Self {
        let load = model
            .load
            .clone()
            .map(|l| ServiceSampler::new(l, stream(seed, &format!("startup-load/{api}"))));
        Self {
            model,
            transfers: stream(seed, &format!("startup-transfers/{api}")),
            load,
            image_on_node: BTreeMap::new(),
            scheduling_s: Vec::new(),
            image_pull_s: Vec::new(),
            model_fetch_s: Vec::new(),
            load_s: Vec::new(),
            total_s: Vec::new(),
            cached_pulls: 0,
        }
    }

    /// A replica that was there from the start put the image on its node.
    pub(super) fn image_present(&mut self, node: NodeId) {
        self.image_on_node.insert(node.0, SimTime::ZERO);
    }

    /// Seconds to move `gb` at a throughput drawn around `mb_s`.
    fn transfer_s(&mut self, gb: f64, mb_s: f64) -> f64 {
        if gb <= 0.0 {
            return 0.0;
        }
        let z: f64 = StandardNormal.sample(&mut self.transfers);
        let throughput = mb_s * (self.model.throughput_sigma * z).exp();
        gb * 1000.0 / throughput
    }

    /// A replica created at `created` is bound to `node` at `now`: how long until it is ready,
    /// with each part recorded.
    pub(super) fn draw(&mut self, node: NodeId, created: SimTime, now: SimTime) -> SimTime {
        let image = match self.image_on_node.get(&node.0) {
            Some(&done) => {
                self.cached_pulls += 1;
                done.since(now).as_secs_f64()
            }
            None => {
                let s = self.transfer_s(self.model.pull_gb, self.model.registry_mb_s);
                self.image_on_node
                    .insert(node.0, now + SimTime::from_secs_f64(s));
                s
            }
        };
        let fetch = self.transfer_s(self.model.fetch_gb, self.model.model_mb_s);
        let load = self.load.as_mut().map_or(0.0, |l| l.sample().as_secs_f64());
        let scheduling = now.since(created).as_secs_f64();
        self.scheduling_s.push(scheduling);
        self.image_pull_s.push(image);
        self.model_fetch_s.push(fetch);
        self.load_s.push(load);
        self.total_s.push(scheduling + image + fetch + load);
        SimTime::from_secs_f64(image + fetch + load)
    }

    /// A restart after a crash on `node` at `now`: the image is there; the weights are fetched
    /// and loaded again. Not recorded as a start-up.
    pub(super) fn restart(&mut self) -> SimTime {
        let fetch = self.transfer_s(self.model.fetch_gb, self.model.model_mb_s);
        let load = self.load.as_mut().map_or(0.0, |l| l.sample().as_secs_f64());
        SimTime::from_secs_f64(fetch + load)
    }

    /// The mean measured start-up (creation to ready), seconds; `None` before the first.
    pub(super) fn mean_total_s(&self) -> Option<f64> {
        (!self.total_s.is_empty())
            .then(|| self.total_s.iter().sum::<f64>() / self.total_s.len() as f64)
    }

    /// Where the time went, for the results.
    pub(super) fn breakdown(&self) -> StartupBreakdown {
        StartupBreakdown {
            replicas: self.total_s.len() as u64,
            cached_pulls: self.cached_pulls,
            model_source: self.model.model_source.name().into(),
            scheduling: StartupPart::of(&self.scheduling_s),
            image_pull: StartupPart::of(&self.image_pull_s),
            model_fetch: StartupPart::of(&self.model_fetch_s),
            load: StartupPart::of(&self.load_s),
            total: StartupPart::of(&self.total_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ModelSource;

    fn model(sigma: f64) -> StartupModel {
        StartupModel {
            pull_gb: 4.2,
            registry_mb_s: 42.0,
            fetch_gb: 0.9,
            model_mb_s: 90.0,
            model_source: ModelSource::S3,
            load: Some(crate::service_time::ServiceTime::Constant(
                SimTime::from_secs(30),
            )),
            throughput_sigma: sigma,
        }
    }

    #[test]
    fn the_first_replica_on_a_node_pulls_and_later_ones_find_the_image() {
        let s = SimTime::from_secs;
        let mut st = Startups::new(model(0.0), "api", 1);
        // 4.2 GB at 42 MB/s = 100 s, 0.9 GB at 90 MB/s = 10 s, load 30 s.
        assert_eq!(st.draw(NodeId(0), s(0), s(20)), s(140));
        // Another replica on the node while the pull is under way waits for it (80 s left).
        assert_eq!(st.draw(NodeId(0), s(40), s(40)), s(120));
        // After the pull: no pull at all.
        assert_eq!(st.draw(NodeId(0), s(500), s(500)), s(40));
        // A fresh node pulls again; a node with an initial replica has the image.
        assert_eq!(st.draw(NodeId(1), s(500), s(560)), s(140));
        st.image_present(NodeId(2));
        assert_eq!(st.draw(NodeId(2), s(600), s(600)), s(40));
        let b = st.breakdown();
        assert_eq!((b.replicas, b.cached_pulls), (5, 3));
        assert_eq!(b.scheduling.max_s, 60.0);
        assert_eq!(b.image_pull.max_s, 100.0);
        assert_eq!(b.model_fetch.mean_s, 10.0);
        assert_eq!(b.load.p50_s, 30.0);
        // Totals: 160, 120, 40, 200, 40.
        assert_eq!(b.total.mean_s, 112.0);
        assert_eq!(st.mean_total_s(), Some(112.0));
        assert_eq!(st.restart(), s(40));
    }

    #[test]
    fn transfer_times_average_size_over_throughput_times_the_lognormal_factor() {
        // time = size / (median · e^{σZ}), so E[time] = size / median · e^{σ²/2}.
        let sigma = 0.25;
        let mut st = Startups::new(model(sigma), "api", 7);
        let n = 40_000;
        let mean = (0..n).map(|_| st.transfer_s(4.2, 42.0)).sum::<f64>() / f64::from(n);
        let expected = 100.0 * (sigma * sigma / 2.0_f64).exp();
        assert!((mean / expected - 1.0).abs() < 0.01, "{mean} vs {expected}");
    }
}
