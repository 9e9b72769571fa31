//! Tuner benchmark: `cargo bench -p sim --bench tune` prints candidate-hours of simulated
//! traffic per minute of wall time, for candidates replaying the 1-hour Azure LLM conversation
//! trace (scenarios/tune-quickstart.toml), on all cores and on one core (the ratio is the
//! parallel speed-up).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use sim::tune::{Search, TuneOptions, Tuner};

fn measure(threads: usize) -> (u64, f64) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tune-quickstart.toml");
    let options = TuneOptions {
        seeds: Some(3),
        search: Some(Search::Grid),
        shard: None,
    };
    let tuner = Tuner::load(&scenario, &options).expect("example scenario loads");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let start = Instant::now();
    let report = pool.install(|| tuner.run(&|_, _| {}, &AtomicBool::new(false)));
    let wall = start.elapsed().as_secs_f64();
    let runs: u64 = report
        .candidates
        .iter()
        .map(|c| u64::from(c.seeds_evaluated))
        .sum();
    (runs, wall)
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("simctl tuner benchmark: tune-quickstart.toml (1 h of the Azure conversation trace x8, 144 candidates x 3 seeds)\n");
    println!("| threads | candidate-hours | wall s | candidate-hours / minute | speed-up |");
    println!("|---:|---:|---:|---:|---:|");
    let (runs1, wall1) = measure(1);
    let rate1 = runs1 as f64 / wall1 * 60.0;
    println!("| 1 | {runs1} | {wall1:.2} | {rate1:.0} | 1.00 |");
    if cores > 1 {
        let (runs, wall) = measure(cores);
        let rate = runs as f64 / wall * 60.0;
        println!(
            "| {cores} | {runs} | {wall:.2} | {rate:.0} | {:.2} |",
            rate / rate1
        );
    }
}
