//! The files simctl writes and reads, as types: what `simctl run` produces (results), and what
//! reports, the tuner, the live view and validation read back. Producers and readers depend on
//! this small crate rather than on each other, so a report never compiles the simulator and the
//! JSON a user keeps has one definition.

pub mod events;
pub mod loadgen;
pub mod misses;
pub mod results;
pub mod routing;
pub mod startup;
pub mod tune;
pub mod utilisation;
pub mod validation;
pub mod vpa;
