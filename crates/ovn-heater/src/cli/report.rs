//! `ovn-heater report`: render `report.html` again from a `results.json`, e.g. with a newer
//! ovn-heater, for a run copied from another machine, or after editing the results by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::error::Failure;
use crate::report::html;
use crate::report::json::{self, RunResults};

/// Render report.html from a results.json (a results directory or the file itself): the page
/// `ovn-heater run` writes (status, statistics, charts, CPU and memory).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ovn-heater report --results results/base       # rewrites results/base/report.html
  ovn-heater report --results copy/results.json --out /tmp/report.html
  ovn-heater report --results results/base --json | jq -r .report_html")]
pub struct Args {
    /// A results directory, or its results.json.
    #[arg(long, value_name = "PATH")]
    pub results: PathBuf,
    /// The page to write. Default: report.html next to the results.json.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print one JSON document on stdout: the page written (report_html), its bytes, the
    /// results it was rendered from.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let results = RunResults::read(&args.results).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
    let out = args.out.unwrap_or_else(|| {
        let dir = if args.results.is_dir() {
            args.results.clone()
        } else {
            args.results.parent().map(PathBuf::from).unwrap_or_default()
        };
        dir.join("report.html")
    });
    if out.is_dir() {
        return Err(Failure::bad_input(format!(
            "--out {} is a directory; give the file to write, e.g. {}",
            out.display(),
            out.join("report.html").display()
        ))
        .into());
    }
    let page = html::render(&results);
    json::write_atomically(&out, page.as_bytes()).with_context(|| format!("cannot write {}", out.display()))?;
    crate::output::info(&format!(
        "report: {} ({:.1} MB)",
        out.display(),
        page.len() as f64 / 1e6
    ));
    if args.json {
        print_json(&serde_json::json!({
            "results": args.results.display().to_string(),
            "report_html": out.display().to_string(),
            "bytes": page.len(),
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn print_json(doc: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}
