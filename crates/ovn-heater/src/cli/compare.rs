//! `ovn-heater compare A B`: a baseline and a candidate (one or several runs each) side by side,
//! as a short table, as JSON, or as a CI gate with `--threshold`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::error::Failure;
use crate::report::compare::{compare, text, Side};
use crate::report::json::RunResults;

/// Compare a baseline with a candidate: p50/p99/total per measurement, CPU seconds per process
/// per stage, failures, peak RSS, with B/A ratios.
///
/// Each side is a results directory, its results.json, a directory holding several results
/// directories (every run in it counts; figures become medians with their spread), or several
/// of these joined by commas.
///
/// Examples:
///
///   ovn-heater compare results/main results/patch
///
///   ovn-heater compare runs/main/ runs/patch/ --threshold 10     # exit 1 on a regression
///
///   ovn-heater compare r1,r2,r3 p1,p2,p3 --json > compare.json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The baseline: results dir(s), results.json, or a dir of results dirs; comma-separated.
    pub a: String,
    /// The candidate, in the same forms.
    pub b: String,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a cost (time, CPU seconds, RSS) of B exceeds A's by more than PCT percent,
    /// or B has more failures than A.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub threshold: Option<f64>,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 10 or 10%)"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s:?}: the threshold must be a percentage of 0 or more"))
    }
}

/// Every run one side names, in the order given (a dir of runs: its entries sorted by name).
fn read_side(spec: &str) -> anyhow::Result<Side> {
    let mut runs = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let path = Path::new(part);
        let is_run = path.is_file() || path.join("results.json").is_file();
        if !is_run && path.is_dir() {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("results.json").is_file())
                .collect();
            dirs.sort();
            if dirs.is_empty() {
                anyhow::bail!(
                    "{} holds no results.json, nor directories that do: give a results directory",
                    path.display()
                );
            }
            for d in dirs {
                runs.push(RunResults::read(&d)?);
            }
        } else {
            runs.push(RunResults::read(path)?);
        }
    }
    if runs.is_empty() {
        anyhow::bail!("no run given");
    }
    Ok(Side {
        label: spec.to_owned(),
        runs,
    })
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let read = |spec: &str| {
        read_side(spec)
            .map_err(|e| Failure::bad_input(format!("{e:#}")))
            .with_context(|| format!("cannot compare {spec}"))
    };
    let a = read(&args.a)?;
    let b = read(&args.b)?;
    let comparison = compare(&a, &b, args.threshold);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", text(&comparison));
    }
    Ok(if comparison.regressions > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
