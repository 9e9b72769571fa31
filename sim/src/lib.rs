//! A deterministic discrete-event simulator of ML inference APIs on Kubernetes node groups.
//!
//! Load a [`Scenario`] from TOML, [`run`] it, and read the [`Results`]. Same scenario and seed
//! give byte-identical results: time is an integer ([`SimTime`]) and every stochastic component
//! draws from its own stream derived from the seed ([`rng`]).

pub(crate) mod batch;
pub mod catalog;
pub mod cluster;
pub mod engine;
pub mod fidelity;
pub mod mig;
pub mod recorded;
pub mod rng;
pub mod scenario;
pub mod service_time;
pub mod time;
pub mod traffic;
pub mod tune;
pub mod units;

/// The results contract, re-exported so `sim::results` keeps naming it.
pub use contract::results;
pub use contract::results::Results;
pub use engine::{run, SimError, Simulation};
pub use scenario::{Scenario, ScenarioError};
pub use time::SimTime;
