//! Real load against real HTTP endpoints, and a real endpoint to aim it at.
//!
//! - [`open`]: the open-model load generator — requests leave on a schedule (a trace, a rate,
//!   steps) from the simulator's own arrival generators, latency counts from the scheduled time.
//! - [`openai`]: the same against an OpenAI-compatible completions endpoint, each streamed
//!   token timed as it arrives (time to first token, inter-token latency, tokens/s).
//! - [`closed`]: closed-model users with think time, on goose.
//! - [`replica`]: an emulated inference replica server with the simulator's queueing behaviour
//!   and Prometheus metrics.
//! - [`llm_replica`]: an emulated vLLM replica — the `llm` crate's engine in real time behind an
//!   OpenAI-compatible API with vLLM's metrics.
//! - [`results`]: the results file, in the simulator's per-API shape.

mod async_poll;
pub mod client;
pub mod closed;
pub mod llm_replica;
mod measured;
pub mod open;
pub mod openai;
mod pacing;
mod record;
pub mod replica;
pub mod schedule;
mod tenant_tally;

use std::path::PathBuf;

pub use client::{RequestTemplate, Target};
pub use closed::{run_closed, ClosedLoad};
pub use contract::loadgen::LoadResults;
pub use measured::{read_measured, Measured, ReadMeasuredError};
pub use open::{run_open, OpenLoad};
pub use openai::{discover_model, OpenAi};
pub use record::Progress;
pub use schedule::{DrawLengths, Planned, Schedule, TenantTraffic};

/// Why a load test could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target URL is malformed or unsupported.
    #[error("bad target URL {url:?}: {reason}")]
    BadUrl {
        /// As given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The target's host does not resolve.
    #[error("cannot resolve the target {url:?}: {reason}")]
    Unresolvable {
        /// As given.
        url: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The trace behind the schedule is malformed.
    #[error("{0}")]
    Schedule(#[from] workload::traffic::DataFileError),
    /// An output file could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The system's answer.
        reason: String,
    },
    /// The load settings are inconsistent.
    #[error("{0}")]
    Config(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}
