//! `simctl tune`: the cheapest configuration that meets the SLO under the scenario's traffic.
//!
//! Candidates are points of the `[tune.space]` grid, each a set of overrides of the scenario
//! (see [`space`]). Every candidate runs on the same seeds, so on the same arrivals and service
//! times (common random numbers): differences between candidates are the configuration's, not
//! noise. A candidate qualifies when every API (and tenant) meets every objective on every seed
//! and every pipeline its end-to-end SLO (see `judge.rs`); among those the cheapest (mean total
//! cost over seeds) wins. Recorded traffic — an API's, a router's or a pipeline's — is resampled
//! per seed, each request keeping its recorded columns (a router's class among them).
//!
//! Search: `grid` evaluates everything; `halving` (successive halving over seeds) evaluates all
//! candidates on one seed, keeps the best third (qualifying ones by cost, then the others by how
//! far they miss), and gives the survivors more seeds, until the survivors have all seeds. It is
//! chosen for spaces larger than `max_grid`. A candidate that qualifies on all seeds also
//! qualifies on the first, so halving only loses the grid's optimum when more than a third of the
//! candidates are cheaper and pass the first seed but fail a later one; a test checks that it
//! finds the grid's optimum on an affordable space.
//!
//! Risk: with `[tune] risk`, every candidate that met the SLO on all seeds is run on many more
//! and only those whose breach probability is bounded under the limit may win (see [`risk`]).
//!
//! Scale-out: `--shard i/n` evaluates candidates with `id % n == i` (grid only) and [`merge`]
//! combines shard reports into exactly the report of an unsharded run.

mod halving;
mod judge;
mod merge;
mod recommend;
pub mod risk;
pub mod space;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;
use toml_edit::DocumentMut;

use crate::scenario::schema::SloSpec;
use crate::scenario::{Scenario, ScenarioError};
use crate::SimError;
pub use contract::tune::{
    ApiSummary, CandidateResult, CheckSummary, Recommendation, RiskResult, RiskSpec, Search, Shard,
    ShardError, TuneReport, SCHEMA,
};
use halving::{halving_plan, rank, Rank};
use judge::{judge, summarize, SeedOutcome};
pub use merge::{merge, MergeError};
pub use recommend::finalize;
pub use space::{Parameter, ParameterError, SpaceError};

/// Largest space a tune takes: a million candidates already need a cluster of shards.
pub const MAX_GRID: u64 = 1_000_000;

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    /// Seeds per candidate (overrides `[tune] seeds`).
    pub seeds: Option<u32>,
    /// Search method (overrides `[tune] search`).
    pub search: Option<Search>,
    /// Evaluate one shard only.
    pub shard: Option<Shard>,
}

/// A tune that cannot start: the scenario or its `[tune]` section is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TuneError(pub String);

/// Why one candidate could not be built, run or rendered. Not fatal to the sweep: the message is
/// recorded in the candidate's result (`error`) for the user to read.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    /// The scenario text does not parse as TOML.
    #[error("{0}")]
    Toml(#[from] toml_edit::TomlError),
    /// An override cannot be applied.
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// The candidate is not a valid scenario.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The simulation failed.
    #[error(transparent)]
    Run(#[from] SimError),
    /// The manifests of the candidate cannot be written.
    #[error("{0}")]
    Deploy(String),
}

/// A loaded tuning problem.
pub struct Tuner {
    text: String,
    file_name: String,
    base_dir: PathBuf,
    name: String,
    params: Vec<Parameter>,
    seeds: Vec<u64>,
    search: Search,
    shard: Option<Shard>,
    slo: Option<SloSpec>,
    /// Block length of the bootstrap that resamples recorded traffic per seed.
    bootstrap_block_s: Option<f64>,
    /// `[tune] risk`, checked.
    risk: Option<RiskSpec>,
    /// Candidates finished by an earlier, interrupted run of the same sweep (`--resume`).
    done: BTreeMap<u64, CandidateResult>,
    /// Candidate 0, built once at load: the sweep's traffic (for the work estimate and whether
    /// traces are resampled).
    first: Scenario,
}

impl Tuner {
    /// Load a scenario with a `[tune]` section.
    pub fn load(path: &Path, options: &TuneOptions) -> Result<Tuner, TuneError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TuneError(format!("{}: cannot read scenario: {e}", path.display())))?;
        let file_name = path.display().to_string();
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let scenario =
            Scenario::parse(&text, &file_name, &base_dir).map_err(|e| TuneError(e.to_string()))?;
        let tune = scenario.file.tune.clone().ok_or_else(|| {
            TuneError(format!(
                "{file_name}: no [tune] section; add one with [tune.space] listing the parameters to search"
            ))
        })?;
        let params =
            space::parse_space(&tune.space).map_err(|m| TuneError(format!("{file_name}: {m}")))?;
        if let Some(objective) = tune.objective.as_deref() {
            if objective != "cost" {
                return Err(TuneError(format!(
                    "{file_name}: tune.objective: expected \"cost\", found \"{objective}\""
                )));
            }
        }
        let seeds = options.seeds.or(tune.seeds).unwrap_or(3);
        if seeds == 0 || seeds > 1_000 {
            return Err(TuneError(format!(
                "{file_name}: tune.seeds: expected 1 to 1000, found {seeds}"
            )));
        }
        let grid = space::grid_size(&params);
        if grid > MAX_GRID {
            return Err(TuneError(format!(
                "{file_name}: tune.space: {grid} candidates; at most {MAX_GRID} are searched (narrow the ranges, or tune in stages)"
            )));
        }
        let search = match (options.search, tune.search.as_deref()) {
            (Some(s), _) => s,
            (None, None | Some("auto")) => {
                if grid <= u64::from(tune.max_grid.unwrap_or(300)) {
                    Search::Grid
                } else {
                    Search::Halving
                }
            }
            (None, Some("grid")) => Search::Grid,
            (None, Some("halving")) => Search::Halving,
            (None, Some(other)) => {
                return Err(TuneError(format!(
                    "{file_name}: tune.search: expected \"auto\", \"grid\" or \"halving\", found \"{other}\""
                )))
            }
        };
        if options.shard.is_some() && search != Search::Grid {
            return Err(TuneError(
                "--shard needs the grid search (successive halving ranks all candidates together); set search = \"grid\"".into(),
            ));
        }
        let bootstrap_block_s = match (tune.resample_traffic, tune.bootstrap_block) {
            (Some(false), _) => None,
            (_, Some(b)) if b.as_secs_f64() <= 0.0 => {
                return Err(TuneError(format!(
                    "{file_name}: tune.bootstrap_block: expected a duration > 0"
                )))
            }
            (_, b) => Some(b.map_or(300.0, |b| b.as_secs_f64())),
        };
        let risk = tune
            .risk
            .as_ref()
            .map(|r| risk::validate(r, seeds))
            .transpose()
            .map_err(|m| TuneError(format!("{file_name}: {m}")))?;
        let mut tuner = Tuner {
            name: scenario.name.clone(),
            seeds: (0..u64::from(seeds))
                .map(|k| scenario.seed.wrapping_add(k))
                .collect(),
            text,
            file_name,
            base_dir,
            params,
            search,
            shard: options.shard,
            slo: tune.slo,
            risk,
            bootstrap_block_s,
            done: BTreeMap::new(),
            first: scenario,
        };
        // Fail early on a space whose paths do not exist.
        tuner.first = tuner
            .candidate_scenario(0)
            .map_err(|e| TuneError(format!("candidate 0: {e}")))?;
        Ok(tuner)
    }

    /// The bootstrap block the report records: none when no API replays recorded traffic.
    fn traffic_bootstrap_block_s(&self) -> Option<f64> {
        let feeds = self.first.routers.iter().map(|r| &r.traffic);
        let traces = self
            .first
            .apis
            .iter()
            .flat_map(|a| a.traffics())
            .chain(feeds)
            .chain(self.first.pipelines.iter().map(|p| &p.traffic))
            .any(|t| matches!(t, crate::traffic::Traffic::Trace(_)));
        self.bootstrap_block_s.filter(|_| traces)
    }

    /// Candidates in the grid.
    pub fn grid_size(&self) -> u64 {
        space::grid_size(&self.params)
    }

    /// Search method in use.
    pub fn search(&self) -> Search {
        self.search
    }

    /// Candidates this process evaluates (its shard of the grid, less those already done).
    fn own_ids(&self) -> Vec<u64> {
        (0..self.grid_size())
            .filter(|id| {
                self.shard
                    .is_none_or(|s| id % u64::from(s.count) == u64::from(s.index))
                    && !self.done.contains_key(id)
            })
            .collect()
    }

    /// Take over what an interrupted run of the same sweep finished (its `tune.json`), so only
    /// the rest is evaluated; returns how many candidates it had finished. Grid search only:
    /// successive halving ranks all candidates of a rung together.
    pub fn resume_from(&mut self, previous: TuneReport) -> Result<usize, TuneError> {
        if self.search != Search::Grid {
            return Err(TuneError(
                "--resume needs the grid search (successive halving ranks whole rungs); set search = \"grid\"".into(),
            ));
        }
        let same = previous.schema == SCHEMA
            && previous.scenario_toml == self.text
            && previous.seeds == self.seeds
            && previous.parameters == self.params
            && previous.search == self.search
            && previous.shard == self.shard
            && previous.traffic_bootstrap_block_s == self.traffic_bootstrap_block_s()
            && previous.risk == self.risk;
        if !same {
            return Err(TuneError(
                "the report to resume is of another sweep (scenario, seeds, space, search or shard differ)".into(),
            ));
        }
        let full = self.seeds.len() as u32;
        self.done = previous
            .candidates
            .into_iter()
            .filter(|c| c.error.is_some() || c.seeds_evaluated == full)
            // A finalist interrupted in the risk phase is run again.
            .filter(|c| self.risk.is_none() || !c.meets_slo || c.risk.is_some())
            .map(|c| (c.id, c))
            .collect();
        Ok(self.done.len())
    }

    /// Simulated requests of the whole search (candidate 0's traffic times the runs planned):
    /// the space rarely changes the traffic.
    pub fn planned_requests(&self) -> f64 {
        self.first.work_estimate().events * self.planned_runs() as f64
    }

    /// Upper bound of simulations to run, for progress bars (with `[tune] risk`, as if every
    /// candidate that finishes the search were a finalist).
    pub fn planned_runs(&self) -> u64 {
        let n = self.own_ids().len() as u64;
        let s = self.seeds.len() as u64;
        let (search, last) = match self.search {
            Search::Grid => (n * s, n),
            Search::Halving => {
                let plan = halving_plan(n, s);
                let last = plan.last().map_or(0, |(k, _)| *k);
                (plan.iter().map(|(k, b)| k * b).sum(), last)
            }
        };
        search + self.risk.map_or(0, |r| last * (u64::from(r.seeds) - s))
    }

    fn candidate_scenario(&self, id: u64) -> Result<Scenario, CandidateError> {
        let overrides = space::candidate_params(&self.params, id);
        let text = tuned_text(&self.text, &overrides)?;
        let mut scenario = Scenario::parse(&text, &self.file_name, &self.base_dir)?;
        let resample = |traffic: &mut crate::traffic::Traffic| {
            if let crate::traffic::Traffic::Trace(trace) = traffic {
                if trace.bootstrap_block_s.is_none() {
                    trace.bootstrap_block_s = self.bootstrap_block_s;
                }
            }
        };
        for api in &mut scenario.apis {
            if let Some(slo) = &self.slo {
                let warmup = api.slo.warmup;
                api.slo = slo.clone();
                api.slo.warmup = slo.warmup.or(warmup);
            }
            let tenants = api.tenants.iter_mut().map(|t| &mut t.traffic);
            std::iter::once(&mut api.traffic)
                .chain(tenants)
                .for_each(resample);
        }
        // A router's or pipeline's recorded traffic is resampled like an API's: each request
        // keeps what routes it (its class column) through the bootstrap.
        for router in &mut scenario.routers {
            resample(&mut router.traffic);
        }
        for (pipeline, spec) in scenario.pipelines.iter_mut().zip(&scenario.file.pipelines) {
            resample(&mut pipeline.traffic);
            // `[tune] slo` replaces the scenario's: a pipeline without its own SLO takes its
            // end-to-end objectives, as it takes the scenario's `[slo]` otherwise.
            if let (Some(slo), None) = (&self.slo, &spec.slo) {
                pipeline.slo = crate::scenario::end_to_end_slo(slo);
            }
        }
        Ok(scenario)
    }

    fn evaluate(&self, scenario: &Scenario, seed: u64) -> Result<SeedOutcome, CandidateError> {
        let mut scenario = scenario.clone();
        scenario.seed = seed;
        scenario.file.seed = seed;
        let results = crate::run(&scenario)?;
        Ok(judge(&results))
    }

    /// Run the search. `progress(done, planned)` is called as simulations finish; setting
    /// `cancel` stops the search and returns what finished (marked interrupted).
    pub fn run(&self, progress: &(dyn Fn(u64, u64) + Sync), cancel: &AtomicBool) -> TuneReport {
        let planned = self.planned_runs();
        let done = AtomicU64::new(0);
        let ids = self.own_ids();
        // Scenarios are built once per candidate; invalid ones are recorded with their error.
        // Ctrl-C is honoured while they are built too (a large space takes a while).
        let built: Vec<(u64, Result<Scenario, CandidateError>)> = ids
            .par_iter()
            .filter(|_| !cancel.load(Ordering::SeqCst))
            .map(|&id| (id, self.candidate_scenario(id)))
            .collect();
        let mut interrupted = built.len() < ids.len();
        let mut outcomes: BTreeMap<u64, Vec<SeedOutcome>> = BTreeMap::new();
        let mut errors: BTreeMap<u64, String> = BTreeMap::new();
        let mut alive: Vec<u64> = Vec::new();
        for (id, s) in &built {
            match s {
                Ok(_) if !interrupted => alive.push(*id),
                Ok(_) => {}
                Err(e) => {
                    errors.insert(*id, e.to_string());
                }
            }
        }
        let scenarios: BTreeMap<u64, &Scenario> = built
            .iter()
            .filter_map(|(id, s)| s.as_ref().ok().map(|s| (*id, s)))
            .collect();
        let budgets: Vec<u64> = match self.search {
            Search::Grid => vec![self.seeds.len() as u64],
            Search::Halving => halving_plan(alive.len() as u64, self.seeds.len() as u64)
                .iter()
                .map(|(_, b)| *b)
                .collect(),
        };
        for (rung, &budget) in budgets.iter().enumerate() {
            let jobs: Vec<(u64, u64)> = alive
                .iter()
                .flat_map(|&id| {
                    let have = outcomes.get(&id).map_or(0, |o| o.len() as u64);
                    (have..budget).map(move |k| (id, k))
                })
                .collect();
            let results: Vec<(u64, Option<Result<SeedOutcome, CandidateError>>)> = jobs
                .par_iter()
                .map(|&(id, k)| {
                    if cancel.load(Ordering::SeqCst) {
                        return (id, None);
                    }
                    let r = self.evaluate(scenarios[&id], self.seeds[k as usize]);
                    progress(done.fetch_add(1, Ordering::SeqCst) + 1, planned);
                    (id, Some(r))
                })
                .collect();
            for (id, r) in results {
                match r {
                    None => interrupted = true,
                    Some(Ok(o)) => outcomes.entry(id).or_default().push(o),
                    Some(Err(e)) => {
                        errors.insert(id, e.to_string());
                    }
                }
            }
            alive.retain(|id| !errors.contains_key(id));
            if interrupted {
                break;
            }
            if rung + 1 < budgets.len() {
                let mut ranked: Vec<(u64, Rank)> =
                    alive.iter().map(|id| (*id, rank(&outcomes[id]))).collect();
                ranked.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
                let keep = (ranked.len() as u64).div_ceil(3).max(1) as usize;
                alive = ranked.into_iter().take(keep).map(|(id, _)| id).collect();
                alive.sort_unstable();
            }
        }
        let full = self.seeds.len();
        let finalists: Vec<u64> = alive
            .iter()
            .copied()
            .filter(|id| {
                outcomes
                    .get(id)
                    .is_some_and(|o| o.len() == full && rank(o).0 == 0)
            })
            .collect();
        let mut risks = BTreeMap::new();
        if let (Some(spec), false) = (self.risk, interrupted) {
            let tick = || {
                progress(done.fetch_add(1, Ordering::SeqCst) + 1, planned);
            };
            match self.run_risk(spec, &finalists, &scenarios, &tick, cancel) {
                Some(r) => risks = r,
                None => interrupted = true,
            }
        }
        let mut candidates: Vec<CandidateResult> = self.done.values().cloned().collect();
        for id in ids {
            let params = space::candidate_params(&self.params, id);
            if let Some(e) = errors.get(&id) {
                candidates.push(CandidateResult {
                    id,
                    params,
                    error: Some(e.clone()),
                    seeds_evaluated: 0,
                    meets_slo: false,
                    cost_usd_mean: 0.0,
                    slo_ratio: 1e12,
                    apis: Vec::new(),
                    start_dominated: None,
                    why_missed: None,
                    risk: None,
                });
            } else if let Some(o) = outcomes.get(&id) {
                let mut c = summarize(id, params, o);
                match risks.get(&id) {
                    Some(Ok(r)) => c.risk = Some(*r),
                    Some(Err(e)) => c.error = Some(format!("risk seeds: {e}")),
                    None => {}
                }
                candidates.push(c);
            }
        }
        let mut report = TuneReport {
            schema: SCHEMA.into(),
            scenario_name: self.name.clone(),
            scenario_toml: self.text.clone(),
            seeds: self.seeds.clone(),
            search: self.search,
            parameters: self.params.clone(),
            grid_size: self.grid_size(),
            shard: self.shard,
            interrupted,
            candidates,
            best: None,
            pareto: Vec::new(),
            recommendation: None,
            traffic_bootstrap_block_s: self.traffic_bootstrap_block_s(),
            warnings: Vec::new(),
            risk: self.risk,
        };
        finalize(&mut report);
        report
    }
}

/// The scenario text with overrides applied and `[tune]` removed.
fn tuned_text(
    text: &str,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<String, CandidateError> {
    let mut doc: DocumentMut = text.parse()?;
    doc.as_table_mut().remove("tune");
    space::apply(&mut doc, overrides)?;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::judge::confidence_interval;
    use super::*;

    #[test]
    fn halving_plan_reaches_all_seeds() {
        assert_eq!(halving_plan(90, 3), vec![(90, 1), (30, 3)]);
        assert_eq!(halving_plan(90, 9), vec![(90, 1), (30, 3), (10, 9)]);
        assert_eq!(halving_plan(5, 1), vec![(5, 1)]);
    }

    #[test]
    fn shards_parse() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(
            Shard::parse("4/4").unwrap_err().to_string(),
            "expected a shard as i/n with 0 ≤ i < n (e.g. 0/4), found \"4/4\""
        );
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn confidence_interval_matches_t_table() {
        // n = 3, mean 2, sd 1: t(0.975, 2) = 4.303, half-width 4.303/√3 = 2.484.
        let ci = confidence_interval(&[1.0, 2.0, 3.0]).expect("n ≥ 2");
        assert!((ci[1] - 2.0 - 2.484).abs() < 1e-3, "{ci:?}");
        assert_eq!(confidence_interval(&[1.0]), None);
    }

    #[test]
    fn an_interrupted_grid_resumes_to_the_uninterrupted_report() {
        let dir = std::env::temp_dir().join(format!("simctl-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            r#"
duration = "10m"
[[node_groups]]
name = "cpu"
instance_type = "m5.xlarge"
min_instances = 2
[[apis]]
name = "a"
[apis.service_time]
distribution = "exponential"
mean = "100ms"
[apis.traffic]
kind = "poisson"
rps = 20
[slo]
latency_p99 = "1s"
[tune]
seeds = 2
search = "grid"
[tune.space]
"apis.a.autoscaling.min_replicas" = [1, 2, 3]
"apis.a.pod.threads_per_process" = [1, 2, 4]
"#,
        )
        .expect("write");
        let options = TuneOptions::default();
        let whole = Tuner::load(&path, &options)
            .expect("loads")
            .run(&|_, _| {}, &AtomicBool::new(false));
        assert!(!whole.interrupted);
        // Stop after a few simulations, as Ctrl-C would.
        let cancel = AtomicBool::new(false);
        let partial = Tuner::load(&path, &options).expect("loads").run(
            &|done, _| {
                if done >= 5 {
                    cancel.store(true, Ordering::SeqCst);
                }
            },
            &cancel,
        );
        assert!(partial.interrupted);
        assert!(partial.candidates.len() < whole.candidates.len());
        let mut resumed = Tuner::load(&path, &options).expect("loads");
        let kept = resumed.resume_from(partial.clone()).expect("same sweep");
        assert!(kept < 9, "{kept}");
        assert_eq!(resumed.planned_runs(), (9 - kept as u64) * 2);
        let finished = resumed.run(&|_, _| {}, &AtomicBool::new(false));
        assert!(!finished.interrupted);
        assert_eq!(finished, whole, "resumed = uninterrupted");
        // Another sweep's report is refused.
        let mut other = partial;
        other.seeds.push(99);
        let mut t = Tuner::load(&path, &options).expect("loads");
        assert!(t.resume_from(other).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_router_trace_is_resampled_per_seed_keeping_each_requests_class() {
        // Ten minutes of trace: the first five at 10 req/s of class "a", the last five at
        // 1 req/s of class "b". A block bootstrap (1-minute blocks) moves whole stretches of
        // the trace: each resampled second holds either 10 "a" or 1 "b", so n_a / 10 + n_b stays
        // at the ~600 s replayed, whatever mix of stretches a seed draws — which holds only if
        // each request keeps its class through the resampling.
        let dir = std::env::temp_dir().join(format!("simctl-tune-router-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut csv = String::from("timestamp_s,model\n");
        for i in 0..3000 {
            csv += &format!("{:.1},a\n", i as f64 * 0.1);
        }
        for i in 300..600 {
            csv += &format!("{i},b\n");
        }
        std::fs::write(dir.join("trace.csv"), csv).expect("trace");
        let api = |name: &str| {
            format!(
                "[[apis]]\nname = \"{name}\"\n[apis.compute]\ncpu = \"100m\"\n[apis.pod]\nmax_concurrency = 64\n[apis.service_time]\ndistribution = \"exponential\"\nmean = \"10ms\"\n[apis.autoscaling]\nmin_replicas = 1\nmax_replicas = 1\n"
            )
        };
        let text = format!(
            "duration = \"10m\"\nseed = 3\n[[node_groups]]\nname = \"cpu\"\ninstance_type = \"c5.4xlarge\"\nmin_instances = 1\nmax_instances = 1\n[[routers]]\nname = \"front\"\ntraffic = {{ kind = \"trace\", path = \"trace.csv\" }}\nclass_column = \"model\"\nclasses = [{{ name = \"a\", api = \"small\" }}, {{ name = \"b\", api = \"large\" }}]\n{}{}[tune]\nseeds = 3\nbootstrap_block = \"1m\"\n[tune.space]\n\"apis.small.pod.max_concurrency\" = [64]\n",
            api("small"),
            api("large")
        );
        let path = dir.join("t.toml");
        std::fs::write(&path, text).expect("write");
        let tuner = Tuner::load(&path, &TuneOptions::default()).expect("loads");
        assert_eq!(tuner.traffic_bootstrap_block_s(), Some(60.0));
        let scenario = tuner.candidate_scenario(0).expect("candidate");
        let counts: Vec<(u64, u64)> = tuner
            .seeds
            .iter()
            .map(|&seed| {
                let mut s = scenario.clone();
                s.seed = seed;
                s.file.seed = seed;
                let r = crate::run(&s).expect("runs");
                let front = &r.routers[0];
                let (a, b) = (front.classes[0].requests, front.classes[1].requests);
                // Each class went to its API.
                assert_eq!((r.apis[0].requests, r.apis[1].requests), (a, b));
                let seconds = a as f64 / 10.0 + b as f64;
                assert!((seconds - 600.0).abs() <= 12.0, "seed {seed}: {a} a, {b} b");
                (a, b)
            })
            .collect();
        // Resampled: the seeds draw different mixes, and not the recording's 3000/300.
        assert!(counts.windows(2).all(|w| w[0] != w[1]), "{counts:?}");
        assert!(
            counts.iter().any(|&(a, _)| a.abs_diff(3000) > 300),
            "{counts:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
