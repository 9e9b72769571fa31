//! `simctl report` (being built).

use clap::Args;

use super::Failure;

/// Arguments of `simctl report`.
#[derive(Args)]
pub struct ReportArgs {}

/// Not implemented yet.
pub fn run(_args: ReportArgs) -> Result<(), Failure> {
    Err(Failure::Other(anyhow::anyhow!(
        "simctl report is not implemented yet"
    )))
}
