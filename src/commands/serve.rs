//! `simctl serve` (being built).

use clap::Args;

use super::Failure;

/// Arguments of `simctl serve`.
#[derive(Args)]
pub struct ServeArgs {}

/// Not implemented yet.
pub fn run(_args: ServeArgs) -> Result<(), Failure> {
    Err(Failure::Other(anyhow::anyhow!(
        "simctl serve is not implemented yet"
    )))
}
