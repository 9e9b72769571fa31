//! The workload: when requests arrive and how long each takes to serve, synthetic or recorded.
//!
//! The simulator draws its arrivals and service times from these models, and the load generator
//! replays the very same requests against real servers (same seed, same streams), which is what
//! lets a real run be compared with a simulated one request for request. Time is an integer
//! ([`SimTime`]) and every stochastic component draws from its own stream derived from the seed
//! ([`rng`]), so the same seed gives the same requests on every machine.

mod bootstrap;
pub mod fairness;
pub mod recorded;
pub mod rng;
pub mod service_time;
pub mod time;
pub mod traffic;
pub mod units;

pub use time::SimTime;
