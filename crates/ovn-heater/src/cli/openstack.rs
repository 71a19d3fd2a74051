//! `ovn-heater openstack walkthrough|replay|purge`: drive the Neutron mimic (`ovn-openstack`) through
//! a steps file written in the openstack CLI's own vocabulary, plus the chassis-side steps
//! (register a chassis, claim a port), dumping the NB after the steps that ask for it.
//!
//! The walkthrough is the shipped steps file `crates/ovn-openstack/steps/walkthrough.yml`: the
//! base scenario of `neutron-reference`, whose dumps compare equal (normalized) to the real
//! Neutron 21.0.0 ones. See docs/openstack.md for the format. The engine (vocabulary, steps,
//! execution) is `ovn_openstack::replay`; this module parses flags, writes dumps and maps errors
//! to exit codes. `purge` deletes the rows ovn-heater runs left in an NB
//! ([`crate::workload::attached::purge`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ovn_openstack::replay::{Replay, ReplayError, StepsFile, WALKTHROUGH};
use ovn_openstack::{Config, GatewayLayout};
use ovsdb::{Client, ClientOptions};

use crate::error::Failure;

/// Drive the Neutron mimic: the reference walkthrough, or any steps file.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the reference walkthrough (neutron-reference steps 00..10) on a fresh NB/SB/northd,
    /// writing one NB dump per step (00-initial.json ... 10-floating-ip-associate.json).
    #[command(after_help = "Examples:
  ovn-heater openstack walkthrough --nb unix:/tmp/lab/nb.sock --sb unix:/tmp/lab/sb.sock --dump-dir /tmp/dumps
  ovn-heater openstack walkthrough --nb unix:/tmp/lab/nb.sock --sb unix:/tmp/lab/sb.sock --dump-dir /tmp/dumps --json | jq -r '.steps[].dump | select(.)'")]
    Walkthrough(Target),
    /// Run a steps file (see docs/openstack.md), dumping the NB where a step says `dump:`.
    #[command(after_help = "Example:
  ovn-heater openstack replay crates/ovn-openstack/tests/corpus/basic-v4/steps.yml --nb unix:/tmp/lab/nb.sock --sb unix:/tmp/lab/sb.sock --dump-dir /tmp/dumps
  ovn-heater openstack replay steps.yml --nb unix:/tmp/lab/nb.sock --sb unix:/tmp/lab/sb.sock --dump-dir /tmp/dumps --json > replay.json")]
    Replay {
        /// The steps file (YAML).
        steps: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Delete the rows ovn-heater runs left in an NB (root rows marked
    /// `external_ids:ovn-heater:run`, and what hangs off them); nothing else is touched.
    #[command(after_help = "Examples:
  ovn-heater openstack purge --nb unix:/var/run/ovn/ovnnb_db.sock
  ovn-heater openstack purge --nb unix:/var/run/ovn/ovnnb_db.sock --run openstack-base-20261205T120000Z-4242
  ovn-heater openstack purge --nb unix:/var/run/ovn/ovnnb_db.sock --json | jq .deleted")]
    Purge {
        /// Northbound DB remote, e.g. unix:/var/run/ovn/ovnnb_db.sock.
        #[arg(long, value_name = "REMOTE")]
        nb: String,
        /// Only the rows of this run (its results dir's name, `attached.run_id` in
        /// results.json); default: of every run.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        #[command(flatten)]
        tls: crate::tls::TlsArgs,
        /// Print one JSON document on stdout: nb, runs, rows deleted per table, total
        /// (exit_code and error too).
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Northbound DB remote, e.g. unix:/run/ovn/ovnnb_db.sock.
    #[arg(long)]
    nb: String,
    /// Southbound DB remote (chassis for gateway scheduling; chassis-side steps).
    #[arg(long)]
    sb: String,
    /// Where the dumps go (created if missing).
    #[arg(long)]
    dump_dir: PathBuf,
    /// Router gateway layout: `gateway-chassis` (Neutron 21.0.0) or `ha-chassis-group` (master).
    #[arg(long, default_value = "gateway-chassis")]
    gateway_layout: String,
    /// Seed of the mimic's PRNG (ids, MACs, IP picks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Print one JSON document on stdout once done: the steps run (step, id, dump file,
    /// duration_s), exit_code and error; the step lines go to stderr.
    #[arg(long)]
    json: bool,
}

/// What a walkthrough or replay did: every step run, in order.
#[derive(Debug, Default, serde::Serialize)]
struct ReplayReport {
    steps_file: String,
    description: Option<String>,
    dump_dir: String,
    steps: Vec<StepReport>,
}

/// One step run: its text after substitution, the id it created or looked up, the dump it
/// wrote.
#[derive(Debug, serde::Serialize)]
struct StepReport {
    index: usize,
    step: String,
    id: Option<String>,
    /// The variable the id was saved under (`save:`).
    saved_as: Option<String>,
    dump: Option<String>,
    duration_s: f64,
}

/// What `purge` deleted.
#[derive(Debug, serde::Serialize)]
struct PurgeReport {
    nb: String,
    runs: Vec<String>,
    deleted: std::collections::BTreeMap<String, usize>,
    total: usize,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (text, source, target) = match args.command {
        Command::Walkthrough(t) => (Ok(WALKTHROUGH.to_owned()), "walkthrough.yml".to_owned(), t),
        Command::Purge { nb, run, tls, json } => {
            if json {
                crate::output::reserve_stdout_for_json();
            }
            let (report, outcome) = match purge(nb, &tls, run.as_deref()).await {
                Ok(report) => (Some(report), Ok(())),
                Err(e) => (None, Err(e)),
            };
            return print_outcome(report.as_ref(), outcome, json);
        }
        Command::Replay { steps, target } => {
            let text = std::fs::read_to_string(&steps)
                .map_err(|e| Failure::bad_input(format!("cannot read steps file {}: {e}", steps.display())).into());
            (text, steps.display().to_string(), target)
        }
    };
    let json = target.json;
    if json {
        crate::output::reserve_stdout_for_json();
    }
    let mut report = ReplayReport {
        steps_file: source.clone(),
        dump_dir: target.dump_dir.display().to_string(),
        ..ReplayReport::default()
    };
    let outcome = match text {
        Ok(text) => replay(&text, &source, target, &mut report).await,
        Err(e) => Err(e),
    };
    // The steps run so far, also when one failed.
    print_outcome(Some(&report), outcome, json)
}

/// With `--json`, one document on stdout whatever the outcome: the report's fields (what was
/// done), exit_code and error. The outcome's exit code either way.
#[allow(clippy::print_stdout)]
fn print_outcome<T: serde::Serialize>(
    report: Option<&T>,
    outcome: anyhow::Result<()>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !json {
        return outcome.map(|()| ExitCode::SUCCESS);
    }
    let mut doc = match report {
        Some(report) => serde_json::to_value(report)?,
        None => serde_json::json!({}),
    };
    let (code, error) = match &outcome {
        Ok(()) => (0, None),
        Err(e) => (crate::error::exit_code(e), Some(format!("{e:#}"))),
    };
    doc["exit_code"] = code.into();
    doc["error"] = error.into();
    println!("{}", serde_json::to_string_pretty(&doc)?);
    outcome.map(|()| ExitCode::SUCCESS)
}

/// Deletes the rows of ovn-heater runs from `nb` (of `run` only when given).
async fn purge(nb: String, tls: &crate::tls::TlsArgs, run: Option<&str>) -> anyhow::Result<PurgeReport> {
    let removed = crate::workload::attached::purge(&nb, tls, run).await?;
    crate::output::text_result(&format!(
        "removed {} rows of ovn-heater runs{} from {nb}{}",
        removed.total(),
        if removed.runs.is_empty() {
            String::new()
        } else {
            format!(" ({})", removed.runs.join(", "))
        },
        if removed.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::workload::attached::counts_line(&removed.counts()))
        }
    ));
    Ok(PurgeReport {
        total: removed.total(),
        deleted: removed.counts(),
        runs: removed.runs,
        nb,
    })
}

/// Checks and runs the steps in `text` against `target`, one line per step (stdout, or stderr
/// under `--json`); `report` holds the steps run so far.
async fn replay(text: &str, source: &str, target: Target, report: &mut ReplayReport) -> anyhow::Result<()> {
    let file: StepsFile = serde_norway::from_str(text)
        .map_err(|e| Failure::bad_input(format!("steps file {source} is not valid: {e}")))?;
    // Every step is checked before the first one runs: a bad step leaves nothing behind.
    file.check()
        .map_err(|e| Failure::bad_input(format!("steps file {source}: {e}")))?;
    if let Some(d) = &file.description {
        tracing::info!("steps file {source}: {d}");
    }
    report.description = file.description.clone();
    let layout = match target.gateway_layout.as_str() {
        "gateway-chassis" => GatewayLayout::GatewayChassis,
        "ha-chassis-group" => GatewayLayout::HaChassisGroup,
        other => {
            return Err(Failure::bad_input(format!(
                "--gateway-layout {other:?}: use gateway-chassis (Neutron 21.0.0) or ha-chassis-group (master)"
            ))
            .into())
        }
    };
    std::fs::create_dir_all(&target.dump_dir)
        .map_err(|e| Failure::bad_input(format!("cannot create --dump-dir {}: {e}", target.dump_dir.display())))?;
    let nb = connect(&target.nb, "OVN_Northbound", &target.tls).await?;
    let sb = connect(&target.sb, "OVN_Southbound", &target.tls).await?;
    let config = Config {
        gateway_layout: layout,
        seed: target.seed,
        ..Config::default()
    };
    let mut replay = Replay::new(nb.clone(), sb.clone(), config);
    replay.prepare().await.map_err(|e| replay_failure(e, source))?;
    for (i, step) in file.steps.iter().enumerate() {
        let started = Instant::now();
        let done = replay.step(i + 1, step).await.map_err(|e| replay_failure(e, source))?;
        let mut dump = None;
        if let Some((name, doc)) = &done.dump {
            let path = target.dump_dir.join(format!("{name}.json"));
            std::fs::write(&path, ovsdb::dump::to_pretty_string(doc))
                .with_context(|| format!("cannot write {}", path.display()))?;
            dump = Some(path.display().to_string());
        }
        let took = started.elapsed();
        crate::output::text_result(&format!(
            "{:>3}  {:<60} {:>8.1} ms{}",
            i + 1,
            done.summary,
            took.as_secs_f64() * 1e3,
            dump.as_deref().map(|d| format!("  -> {d}")).unwrap_or_default()
        ));
        report.steps.push(StepReport {
            index: i + 1,
            step: done.summary,
            id: done.id,
            saved_as: step.save.clone(),
            dump,
            duration_s: took.as_secs_f64(),
        });
    }
    nb.close().await;
    sb.close().await;
    Ok(())
}

/// A replay error with its exit code: 2 for the steps file's fault, 1 for a step that did not
/// behave as the file says, 3 for the servers.
pub fn replay_failure(e: ReplayError, source: &str) -> anyhow::Error {
    let message = format!("{source}: {e}");
    let failure = if e.is_bad_input() {
        Failure::bad_input(message)
    } else if e.is_check_failure() {
        Failure::check_failed(message)
    } else {
        Failure::environment(message)
    };
    anyhow::Error::new(failure)
}

async fn connect(remote: &str, database: &str, tls: &crate::tls::TlsArgs) -> anyhow::Result<Client> {
    let options = tls.apply(ClientOptions::new(remote)?.database(database))?;
    Client::connect(options)
        .await
        .with_context(|| format!("cannot connect to the {database} server at {remote}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walkthrough_parses() {
        let f: StepsFile = serde_norway::from_str(WALKTHROUGH).unwrap();
        f.check().unwrap();
        assert_eq!(f.steps.iter().filter(|s| s.dump.is_some()).count(), 14);
    }
}
