//! A deterministic discrete-event simulator of ML inference APIs on Kubernetes node groups.
//!
//! Load a [`Scenario`] from TOML, [`run`] it, and read the [`Results`]. Same scenario and seed
//! give byte-identical results: time is an integer ([`SimTime`]) and every stochastic component
//! draws from its own stream derived from the seed ([`rng`]).

pub(crate) mod batch;
pub mod catalog;
pub mod cluster;
pub mod deploy;
pub mod engine;
pub mod karpenter;
pub mod mig;
pub mod scenario;
pub mod tune;

/// The results contract, re-exported so `sim::results` keeps naming it.
pub use contract::results;
pub use contract::results::Results;
/// Validation's comparison of a real run with a simulated one, re-exported as `sim::fidelity`.
pub use contract::validation as fidelity;
pub use engine::{run, SimError, Simulation};
pub use scenario::{Scenario, ScenarioError};
pub use time::SimTime;
/// The workload models, re-exported so `sim::traffic`, `sim::time`, … keep naming them.
pub use workload::{recorded, rng, service_time, time, traffic, units};
