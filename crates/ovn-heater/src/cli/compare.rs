//! `ovn-heater compare A B`: two results (directories or results.json files) side by side, with
//! B/A ratios, as a fixed-width table ready to paste into a commit message.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::error::Failure;
use crate::report::compare::table;
use crate::report::json::RunResults;

/// Compare two results directories side by side (B/A ratios; paste into a commit message).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The baseline: a results directory (or its results.json).
    pub a: PathBuf,
    /// The run to compare with the baseline.
    pub b: PathBuf,
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let read = |p: &PathBuf| {
        RunResults::read(p)
            .map_err(|e| Failure::bad_input(format!("{e:#}")))
            .with_context(|| format!("cannot compare {}", p.display()))
    };
    let a = read(&args.a)?;
    let b = read(&args.b)?;
    print!(
        "{}",
        table(&a, &b, &args.a.display().to_string(), &args.b.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}
