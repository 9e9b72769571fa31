//! The simulator's integration tests, whole runs through the public API, in one test binary:
//! each binary links the whole dependency tree, so one binary instead of eight links once and
//! keeps the release build's disk use and link time down (ripgrep's layout).

mod async_dequeuer;
mod karpenter;
mod llm;
mod process_routing;
mod properties;
mod queueing_theory;
mod routing;
mod tenants;
mod theory;
