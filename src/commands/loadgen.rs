//! `simctl loadgen` (being built).

use clap::Args;

use super::Failure;

/// Arguments of `simctl loadgen`.
#[derive(Args)]
pub struct LoadgenArgs {}

/// Not implemented yet.
pub fn run(_args: LoadgenArgs) -> Result<(), Failure> {
    Err(Failure::Other(anyhow::anyhow!(
        "simctl loadgen is not implemented yet"
    )))
}
