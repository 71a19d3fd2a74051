//! `ovn-heater db` (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(crate::error::Failure::bad_input("this subcommand is not implemented yet").into())
}
