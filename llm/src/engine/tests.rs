use proptest::prelude::*;

use super::*;

const MS: f64 = 1e6;

fn config(max_num_seqs: u32, budget: u32, kv_tokens: u32, chunked: bool) -> EngineConfig {
    EngineConfig {
        max_num_seqs,
        max_num_batched_tokens: budget,
        chunked_prefill: chunked,
        block_size: 16,
        kv_blocks: kv_tokens / 16,
        step: StepTime {
            base_ns: 5.0 * MS,
            per_prefill_token_ns: 0.05 * MS,
            per_decode_token_ns: 0.2 * MS,
        },
    }
}

/// Records what the engine reports, per tag (the arrival time in ns).
#[derive(Default)]
struct Log {
    first: Vec<(u64, u64)>,
    gaps: Vec<(u64, u32)>,
    done: Vec<(Finished<u64>, u64)>,
}

impl Observer<u64> for Log {
    fn first_token(&mut self, tag: &u64, now_ns: u64) {
        self.first.push((*tag, now_ns));
    }
    fn tokens(&mut self, gap_ns: u64, count: u32) {
        self.gaps.push((gap_ns, count));
    }
    fn finished(&mut self, done: Finished<u64>, now_ns: u64) {
        self.done.push((done, now_ns));
    }
}

/// Run the engine back to back from `now` until it is idle; returns the end time.
fn run_until_idle(engine: &mut Engine<u64>, mut now: u64, log: &mut Log) -> u64 {
    while let Some(d) = engine.start_iteration(now) {
        now += d;
        engine.finish_iteration(now, log);
    }
    now
}

#[test]
fn one_request_alone_follows_the_step_formula_exactly() {
    // Prompt 1000 tokens in one iteration (budget 8192), 128 output tokens.
    let mut engine = Engine::new(config(256, 8192, 200_000, true));
    let mut log = Log::default();
    engine.push(0, 1000, 128).expect("fits");
    let end = run_until_idle(&mut engine, 0, &mut log);
    let ttft = 5.0 * MS + 1000.0 * 0.05 * MS;
    let itl = 5.0 * MS + 0.2 * MS;
    assert_eq!(log.first, vec![(0, ttft as u64)]);
    assert_eq!(log.gaps.len(), 127);
    assert!(log.gaps.iter().all(|&(g, n)| g == itl as u64 && n == 1));
    assert_eq!(end, (ttft + 127.0 * itl) as u64);
    assert_eq!(log.done.len(), 1);
    assert_eq!(log.done[0].0.output, 128);
    assert_eq!(engine.stats().iterations, 128);
    assert_eq!(
        engine.used_blocks(),
        0,
        "a finished sequence frees its blocks"
    );
}

#[test]
fn an_aborted_request_frees_its_blocks_and_the_others_run_on() {
    // Two sequences of 100 prompt tokens (7 blocks each, then 8 with the first output token),
    // one waiting behind max_num_seqs = 2.
    let mut engine = Engine::new(config(2, 8192, 200_000, true));
    let mut log = Log::default();
    for tag in 0..3 {
        engine.push(tag, 100, 10).expect("fits");
    }
    let d = engine.start_iteration(0).expect("work");
    engine.finish_iteration(d, &mut log);
    assert_eq!((engine.running(), engine.waiting()), (2, 1));
    let held = engine.used_blocks();
    assert_eq!(engine.abort(|tag| *tag == 1 || *tag == 2), 2);
    assert_eq!((engine.running(), engine.waiting()), (1, 0));
    assert_eq!(
        engine.used_blocks(),
        held / 2,
        "the running one's blocks are free"
    );
    run_until_idle(&mut engine, d, &mut log);
    let done: Vec<u64> = log.done.iter().map(|(f, _)| f.tag).collect();
    assert_eq!(done, [0], "the aborted ones never finish");
    assert_eq!(engine.used_blocks(), 0);
}

#[test]
fn a_long_prompt_is_chunked_across_iterations() {
    // 5000 prompt tokens with a 2048 budget: 2048 + 2048 + 904, first token after the third.
    let mut engine = Engine::new(config(256, 2048, 200_000, true));
    let mut log = Log::default();
    engine.push(0, 5000, 2).expect("fits");
    run_until_idle(&mut engine, 0, &mut log);
    let chunk = |t: f64| 5.0 * MS + t * 0.05 * MS;
    let ttft = chunk(2048.0) * 2.0 + chunk(904.0);
    assert_eq!(log.first, vec![(0, ttft as u64)]);
    // Without chunked prefill such a prompt is refused up front.
    let mut whole = Engine::<u64>::new(config(256, 2048, 200_000, false));
    assert!(whole.push(0, 5000, 2).is_err());
}

#[test]
fn decoding_comes_before_admission_and_the_budget_caps_prefill() {
    // Two requests: the second's prompt takes what the first's decode leaves of the budget.
    let mut engine = Engine::new(config(256, 100, 200_000, true));
    let mut log = Log::default();
    engine.push(0, 99, 3).expect("fits");
    let d = engine.start_iteration(0).expect("work");
    engine.finish_iteration(d, &mut log);
    engine.push(1, 150, 3).expect("fits");
    let d2 = engine.start_iteration(d).expect("work");
    // 1 decode + 99 prompt tokens of the second request.
    assert_eq!(d2, (5.0 * MS + 99.0 * 0.05 * MS + 0.2 * MS) as u64);
    engine.finish_iteration(d + d2, &mut log);
    assert_eq!(log.first.len(), 1, "the second prompt is not complete yet");
}

#[test]
fn kv_exhaustion_preempts_the_newest_sequence_and_recomputes_it() {
    // 4 blocks of 16 tokens: two sequences of 20-token prompts take 2 blocks each; the first to
    // cross 32 tokens needs a fifth block and the newest is preempted.
    let mut engine = Engine::new(EngineConfig {
        kv_blocks: 4,
        ..config(256, 8192, 64, true)
    });
    let mut log = Log::default();
    engine.push(0, 20, 30).expect("fits");
    engine.push(1, 20, 30).expect("fits");
    run_until_idle(&mut engine, 0, &mut log);
    assert!(engine.stats().preemptions > 0);
    assert_eq!(log.done.len(), 2, "both finish in the end");
    assert_eq!(
        log.done[0].0.tag, 0,
        "the oldest is never the victim while another runs"
    );
    let tokens: u64 = log.gaps.iter().map(|&(_, n)| u64::from(n)).sum::<u64>() + 2;
    assert_eq!(tokens, 60, "every output token is emitted once");
}

#[test]
fn saturated_throughput_matches_the_derivation() {
    // Derivation (constant prompt P and output O, max_num_seqs S, budget ≥ S·(P+1), ample KV,
    // a queue that never empties): the S slots fill together and stay in step. One period is
    // one iteration prefilling S prompts (each emits its first token) and O − 1 iterations of
    // S decodes, after which all S finish and S new requests are admitted in the next
    // iteration. A period lasts O·base + S·P·per_prefill + S·(O − 1)·per_decode and completes
    // S requests, so throughput = S / that.
    let (s, p, o) = (8u32, 200u32, 50u32);
    let c = config(s, 8192, 1_000_000, true);
    let mut engine = Engine::new(c);
    let mut log = Log::default();
    for i in 0..(s * 20) {
        engine.push(u64::from(i), p, o).expect("fits");
    }
    let end = run_until_idle(&mut engine, 0, &mut log);
    let period_ns = f64::from(o) * c.step.base_ns
        + f64::from(s * p) * c.step.per_prefill_token_ns
        + f64::from(s * (o - 1)) * c.step.per_decode_token_ns;
    let predicted = f64::from(s) / (period_ns / 1e9);
    let measured = log.done.len() as f64 / (end as f64 / 1e9);
    assert!(
        (measured / predicted - 1.0).abs() < 1e-6,
        "{measured} vs {predicted}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Whatever arrives, the blocks in use never exceed the cache, running sequences never
    /// exceed max_num_seqs, every request finishes exactly once and emits exactly its tokens.
    #[test]
    fn blocks_bound_admission_and_nothing_is_lost(
        requests in proptest::collection::vec((1u32..400, 1u32..60, 0u64..5), 1..60),
        kv_blocks in 8u32..80,
        max_num_seqs in 1u32..16,
        budget in 32u32..600,
    ) {
        let c = EngineConfig {
            kv_blocks,
            ..config(max_num_seqs, budget, 0, true)
        };
        let mut engine = Engine::new(c);
        let mut log = Log::default();
        let mut expected_tokens = 0u64;
        let mut admitted = 0usize;
        let mut now = 0u64;
        for (i, &(prompt, output, gap_iterations)) in requests.iter().enumerate() {
            if engine.push(i as u64, prompt, output).is_ok() {
                expected_tokens += u64::from(output);
                admitted += 1;
            }
            for _ in 0..gap_iterations {
                let Some(d) = engine.start_iteration(now) else { break };
                prop_assert!(engine.used_blocks() <= kv_blocks);
                prop_assert!(engine.running() <= max_num_seqs);
                now += d;
                engine.finish_iteration(now, &mut log);
            }
        }
        while let Some(d) = engine.start_iteration(now) {
            prop_assert!(engine.used_blocks() <= kv_blocks);
            prop_assert!(engine.running() <= max_num_seqs);
            now += d;
            engine.finish_iteration(now, &mut log);
        }
        prop_assert_eq!(engine.outstanding(), 0);
        prop_assert_eq!(log.done.len(), admitted);
        let mut tags: Vec<u64> = log.done.iter().map(|(f, _)| f.tag).collect();
        tags.sort_unstable();
        tags.dedup();
        prop_assert_eq!(tags.len(), admitted, "each request finishes once");
        let emitted: u64 = log.gaps.iter().map(|&(_, n)| u64::from(n)).sum::<u64>()
            + log.first.len() as u64;
        prop_assert_eq!(emitted, expected_tokens);
        prop_assert_eq!(engine.used_blocks(), 0);
    }
}
