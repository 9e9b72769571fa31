//! One replica's iteration loop, as vLLM's V1 scheduler runs it (`vllm/v1/core/sched/
//! scheduler.py`, `Scheduler.schedule`, with the FCFS policy):
//!
//! 1. Running sequences first, in admission order: each is given the tokens it still needs
//!    (one for a decoding sequence, the rest of its prompt for one being prefilled), capped by
//!    the iteration's token budget. Its KV blocks must hold `computed + new` tokens; when no
//!    block is free the *last* running sequence (the most recently admitted) is preempted: its
//!    blocks are freed, its computed tokens forgotten (recompute), and it goes to the head of
//!    the waiting queue. If the sequence being scheduled was itself the last, scheduling of
//!    running sequences stops.
//! 2. Then, only if nothing was preempted in this iteration, waiting requests in arrival order
//!    while `max_num_seqs`, the token budget and free blocks allow. With chunked prefill a prompt
//!    longer than the remaining budget takes what is left and continues in later iterations;
//!    without it the queue stops at a prompt that does not fit.
//! 3. At the iteration's end every scheduled sequence has its tokens computed; one that has
//!    caught up with its tokens samples a new one (the iteration that completes a prompt emits
//!    the first token). A sequence that has its `output` tokens is finished and frees its blocks.
//!
//! The engine knows no clock: the caller starts an iteration at `now` and gets its duration, and
//! finishes it at `now + duration`. Tokens, first tokens and finished sequences are reported to
//! an [`Observer`]; a run of sequences that decoded in consecutive iterations is reported as one
//! `(gap, count)` pair, so an iteration costs O(running sequences) and no allocation.

use std::collections::VecDeque;

use crate::StepTime;

/// What one replica's engine is configured with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Most sequences running at once (`--max-num-seqs`).
    pub max_num_seqs: u32,
    /// Most tokens computed in one iteration (`--max-num-batched-tokens`).
    pub max_num_batched_tokens: u32,
    /// Split prompts longer than the iteration's remaining budget across iterations.
    pub chunked_prefill: bool,
    /// Tokens per KV-cache block (`--block-size`).
    pub block_size: u32,
    /// KV-cache blocks of the replica.
    pub kv_blocks: u32,
    /// How long an iteration takes.
    pub step: StepTime,
}

impl EngineConfig {
    /// KV-cache blocks a sequence of `tokens` tokens holds.
    #[inline]
    pub fn blocks_for(&self, tokens: u32) -> u32 {
        tokens.div_ceil(self.block_size)
    }
}

/// A request the engine can never serve: its prompt and output need more KV blocks than the
/// replica has, or (without chunked prefill) more tokens than one iteration computes. vLLM refuses
/// such a request when it is added (it exceeds the model length the engine was sized for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a request of {tokens} tokens does not fit one replica ({limit} tokens at most)")]
pub struct TooLong {
    /// Prompt plus output tokens of the request.
    pub tokens: u64,
    /// What the replica can hold.
    pub limit: u64,
}

/// A sequence in the engine: the caller's tag and its token counts.
#[derive(Debug, Clone)]
struct Sequence<T> {
    tag: T,
    prompt: u32,
    output: u32,
    /// Output tokens sampled so far.
    generated: u32,
    /// Tokens whose KV entries are computed (prompt and output tokens alike).
    computed: u32,
    /// KV blocks it holds.
    blocks: u32,
    /// When its latest token was emitted.
    last_token_ns: u64,
    /// When its first token was emitted.
    first_token_ns: u64,
}

impl<T> Sequence<T> {
    /// Prompt plus sampled tokens: what the KV cache must eventually hold.
    #[inline]
    fn tokens(&self) -> u32 {
        self.prompt + self.generated
    }
}

/// A finished request, as the engine hands it back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished<T> {
    /// The caller's tag.
    pub tag: T,
    /// Prompt tokens.
    pub prompt: u32,
    /// Output tokens emitted.
    pub output: u32,
    /// When its first token was emitted.
    pub first_token_ns: u64,
}

/// Receives what an iteration produced.
pub trait Observer<T> {
    /// A sequence emitted its first token at `now_ns`.
    fn first_token(&mut self, tag: &T, now_ns: u64);
    /// `count` sequences emitted a later token, each `gap_ns` after its previous one.
    fn tokens(&mut self, gap_ns: u64, count: u32);
    /// A sequence emitted its last token and left the engine.
    fn finished(&mut self, done: Finished<T>, now_ns: u64);
    /// Every token as it is emitted, first and last included, with the sequence's tag: what a
    /// streaming server sends. Called before the aggregated callbacks above; a no-op by
    /// default, so the simulator pays nothing for it.
    #[inline]
    fn token(&mut self, _tag: &T, _now_ns: u64) {}
}

/// Counters of one engine since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Iterations run.
    pub iterations: u64,
    /// Prompt tokens computed, recomputation after preemption included.
    pub prefill_tokens: u64,
    /// Output tokens emitted.
    pub output_tokens: u64,
    /// Sequences preempted for lack of KV blocks.
    pub preemptions: u64,
}

/// One replica's continuous-batching engine.
#[derive(Debug, Clone)]
pub struct Engine<T> {
    config: EngineConfig,
    waiting: VecDeque<Sequence<T>>,
    running: Vec<Sequence<T>>,
    /// Tokens scheduled for each running sequence in the current iteration.
    scheduled: Vec<u32>,
    free_blocks: u32,
    /// Start of the iteration in progress, if one is.
    iteration_start_ns: Option<u64>,
    stats: EngineStats,
}

impl<T> Engine<T> {
    /// An idle engine with an empty KV cache.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            scheduled: Vec::new(),
            free_blocks: config.kv_blocks,
            iteration_start_ns: None,
            stats: EngineStats::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Whether `prompt + output` tokens can ever be served here.
    pub fn admits(&self, prompt: u32, output: u32) -> Result<(), TooLong> {
        let tokens = u64::from(prompt.max(1)) + u64::from(output.max(1));
        let kv_limit = u64::from(self.config.kv_blocks) * u64::from(self.config.block_size);
        let limit = if self.config.chunked_prefill {
            kv_limit
        } else {
            kv_limit.min(u64::from(self.config.max_num_batched_tokens))
        };
        if tokens > limit {
            return Err(TooLong { tokens, limit });
        }
        Ok(())
    }

    /// A request arrives: it waits for the next iteration that admits it. Prompts and outputs
    /// of zero tokens count as one (vLLM needs both ≥ 1).
    pub fn push(&mut self, tag: T, prompt: u32, output: u32) -> Result<(), TooLong> {
        self.admits(prompt, output)?;
        self.waiting.push_back(Sequence {
            tag,
            prompt: prompt.max(1),
            output: output.max(1),
            generated: 0,
            computed: 0,
            blocks: 0,
            last_token_ns: 0,
            first_token_ns: 0,
        });
        Ok(())
    }

    /// Whether an iteration is in progress.
    #[inline]
    pub fn is_iterating(&self) -> bool {
        self.iteration_start_ns.is_some()
    }

    /// Sequences admitted and not finished (vLLM's `num_requests_running`).
    #[inline]
    pub fn running(&self) -> u32 {
        self.running.len() as u32
    }

    /// Requests waiting for admission, preempted ones included (`num_requests_waiting`).
    #[inline]
    pub fn waiting(&self) -> u32 {
        self.waiting.len() as u32
    }

    /// Requests in the engine: running plus waiting.
    #[inline]
    pub fn outstanding(&self) -> u32 {
        self.running() + self.waiting()
    }

    /// Share of KV blocks in use, 0–1 (`kv_cache_usage_perc`).
    #[inline]
    pub fn kv_usage(&self) -> f64 {
        if self.config.kv_blocks == 0 {
            return 0.0;
        }
        f64::from(self.config.kv_blocks - self.free_blocks) / f64::from(self.config.kv_blocks)
    }

    /// KV blocks in use.
    #[inline]
    pub fn used_blocks(&self) -> u32 {
        self.config.kv_blocks - self.free_blocks
    }

    /// Counters since the engine started.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Plan the next iteration at `now_ns` and return its duration in nanoseconds (before any
    /// slow-down of a shared or sliced GPU, which is the caller's), or `None` when there is
    /// nothing to compute.
    pub fn start_iteration(&mut self, now_ns: u64) -> Option<u64> {
        debug_assert!(self.iteration_start_ns.is_none(), "one iteration at a time");
        let config = self.config;
        let mut budget = config.max_num_batched_tokens;
        let mut prefill_tokens = 0u64;
        let mut decoding = 0u64;
        let mut preempted = false;
        self.scheduled.clear();
        let mut index = 0;
        'running: while index < self.running.len() && budget > 0 {
            let seq = &self.running[index];
            let new = (seq.tokens() - seq.computed).min(budget);
            loop {
                let seq = &self.running[index];
                let need = config
                    .blocks_for(seq.computed + new)
                    .saturating_sub(seq.blocks);
                if need <= self.free_blocks {
                    self.free_blocks -= need;
                    self.running[index].blocks += need;
                    break;
                }
                // Preempt the most recently admitted sequence (recompute).
                let Some(mut victim) = self.running.pop() else {
                    break 'running;
                };
                self.free_blocks += victim.blocks;
                victim.blocks = 0;
                victim.computed = 0;
                self.waiting.push_front(victim);
                self.stats.preemptions += 1;
                preempted = true;
                if index == self.running.len() {
                    break 'running;
                }
            }
            let seq = &self.running[index];
            if seq.generated > 0 && seq.computed + 1 == seq.tokens() {
                decoding += 1;
            } else {
                prefill_tokens += u64::from(new);
            }
            self.scheduled.push(new);
            budget -= new;
            index += 1;
        }
        if !preempted {
            while budget > 0 && (self.running.len() as u32) < config.max_num_seqs {
                let Some(front) = self.waiting.front() else {
                    break;
                };
                let tokens = front.tokens() - front.computed;
                if !config.chunked_prefill && tokens > budget {
                    break;
                }
                let new = tokens.min(budget);
                let need = config.blocks_for(front.computed + new);
                if need > self.free_blocks {
                    break;
                }
                let Some(mut seq) = self.waiting.pop_front() else {
                    break;
                };
                self.free_blocks -= need;
                seq.blocks = need;
                self.running.push(seq);
                self.scheduled.push(new);
                prefill_tokens += u64::from(new);
                budget -= new;
            }
        }
        self.scheduled.resize(self.running.len(), 0);
        if prefill_tokens == 0 && decoding == 0 {
            return None;
        }
        self.stats.iterations += 1;
        self.stats.prefill_tokens += prefill_tokens;
        self.iteration_start_ns = Some(now_ns);
        Some(config.step.duration_ns(prefill_tokens, decoding))
    }

    /// Finish the iteration in progress at `now_ns`: tokens are emitted, finished sequences
    /// leave and free their blocks. Nothing happens when no iteration is in progress.
    pub fn finish_iteration(&mut self, now_ns: u64, observer: &mut impl Observer<T>)
    where
        T: Copy,
    {
        let Some(start_ns) = self.iteration_start_ns.take() else {
            return;
        };
        let mut consecutive = 0u32;
        let mut index = 0;
        let scheduled = &self.scheduled;
        let free_blocks = &mut self.free_blocks;
        let stats = &mut self.stats;
        self.running.retain_mut(|seq| {
            let new = scheduled[index];
            index += 1;
            if new == 0 {
                return true;
            }
            seq.computed += new;
            if seq.computed < seq.tokens() {
                return true;
            }
            seq.generated += 1;
            stats.output_tokens += 1;
            observer.token(&seq.tag, now_ns);
            if seq.generated == 1 {
                seq.first_token_ns = now_ns;
                observer.first_token(&seq.tag, now_ns);
            } else if seq.last_token_ns == start_ns {
                // Decoded in the previous iteration too: its gap is this iteration's length.
                consecutive += 1;
            } else {
                observer.tokens(now_ns - seq.last_token_ns, 1);
            }
            seq.last_token_ns = now_ns;
            if seq.generated < seq.output {
                return true;
            }
            *free_blocks += seq.blocks;
            observer.finished(
                Finished {
                    tag: seq.tag,
                    prompt: seq.prompt,
                    output: seq.generated,
                    first_token_ns: seq.first_token_ns,
                },
                now_ns,
            );
            false
        });
        if consecutive > 0 {
            observer.tokens(now_ns - start_ns, consecutive);
        }
    }

    /// Every request leaves at once (the replica died): how many there were.
    pub fn clear(&mut self) -> u32 {
        let n = self.outstanding();
        self.waiting.clear();
        self.running.clear();
        self.scheduled.clear();
        self.free_blocks = self.config.kv_blocks;
        self.iteration_start_ns = None;
        n
    }

    /// Remove the requests whose tags `gone` selects (their clients went away), freeing their
    /// KV blocks, as vLLM's `abort_requests` does between steps; how many were removed. Only
    /// between iterations: a running sequence's tokens are scheduled until the iteration ends.
    pub fn abort(&mut self, mut gone: impl FnMut(&T) -> bool) -> u32 {
        debug_assert!(!self.is_iterating(), "abort between iterations only");
        if self.is_iterating() {
            return 0;
        }
        let before = self.outstanding();
        let mut freed = 0;
        self.running.retain(|s| {
            let keep = !gone(&s.tag);
            if !keep {
                freed += s.blocks;
            }
            keep
        });
        self.waiting.retain(|s| {
            let keep = !gone(&s.tag);
            if !keep {
                freed += s.blocks;
            }
            keep
        });
        self.free_blocks += freed;
        before - self.outstanding()
    }

    /// The tags of the requests in the engine, running first (for end-of-run accounting).
    pub fn tags(&self) -> impl Iterator<Item = &T> {
        self.running
            .iter()
            .map(|s| &s.tag)
            .chain(self.waiting.iter().map(|s| &s.tag))
    }
}

#[cfg(test)]
mod tests;
