//! `ovn-heater snapshot`: take one NB snapshot (a whole-DB dump without empty tables and
//! Neutron's liveness keys), or diff two snapshots/dumps after normalizing the volatile values
//! (UUIDs, MACs, Neutron ids, counters) the way `neutron-reference/normalize.py` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ovn_openstack::snapshot::{diff, diff_ignoring_numbers, strip_for_snapshot, Normalizer};
use ovsdb::{Client, ClientOptions};

use crate::error::Failure;

/// Take a normalized-ready NB snapshot (`--nb REMOTE --out FILE`), or `diff A B`.
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  ovn-heater snapshot --nb unix:/run/ovn/ovnnb_db.sock --out /tmp/before.json --step before
  ovn-heater snapshot --nb unix:/run/ovn/ovnnb_db.sock --out /tmp/after.json --json | jq .tables"
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Northbound DB remote to snapshot, e.g. unix:/run/ovn/ovnnb_db.sock.
    #[arg(long)]
    nb: Option<String>,
    /// Where to write the snapshot (JSON, the `db dump` layout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Step name recorded in the snapshot.
    #[arg(long, default_value = "")]
    step: String,
    /// Command text recorded in the snapshot.
    #[arg(long, default_value = "")]
    command_text: String,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Print one JSON document on stdout (the file written, step, rows per table) instead of
    /// the file's path.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Per-table, per-row differences of two snapshots (JSON dumps, or normalized .txt files).
    /// Exit status 1 when they differ.
    #[command(after_help = "Examples:
  ovn-heater snapshot diff before.json after.json
  ovn-heater snapshot diff --same-run 03-network.json 04-subnet.json
  ovn-heater snapshot diff --json before.json after.json | jq '.tables[].table'")]
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// A and B are consecutive snapshots of one run: share names across them (rows keep
        /// their labels) and compare exactly. By default each is normalized on its own and
        /// token/label numbers are ignored, which is what comparing two NB writers needs.
        #[arg(long)]
        same_run: bool,
        /// Print the differences as JSON (`{"equal": bool, "tables": [{"table", "rows": [{"kind":
        /// "removed"|"added"|"changed", ...}]}]}`) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Diff { a, b, same_run, json }) => {
            let (ta, tb) = if same_run {
                let mut n = Normalizer::new();
                (normalized(&a, &mut n)?, normalized(&b, &mut n)?)
            } else {
                (
                    normalized(&a, &mut Normalizer::new())?,
                    normalized(&b, &mut Normalizer::new())?,
                )
            };
            let diff = if same_run {
                diff(&ta, &tb)
            } else {
                diff_ignoring_numbers(&ta, &tb)
            };
            if json {
                let doc = serde_json::json!({"equal": diff.is_empty(), "tables": diff.tables});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else if diff.is_empty() {
                println!("no differences");
            } else {
                print!("{}", diff.to_text());
            }
            Ok(if diff.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::error::EXIT_CHECK_FAILED)
            })
        }
        None => {
            let (Some(nb), Some(out)) = (args.nb, args.out) else {
                return Err(Failure::bad_input("snapshot needs --nb REMOTE --out FILE (or: snapshot diff A B)").into());
            };
            let client = Client::connect(args.tls.apply(ClientOptions::new(&nb)?.database("OVN_Northbound"))?)
                .await
                .with_context(|| format!("cannot connect to the NB at {nb}"))?;
            let doc = ovsdb::dump::dump(&client, "OVN_Northbound").await?;
            client.close().await;
            let mut doc = ovsdb::dump::with_keys(
                doc,
                [
                    ("step", serde_json::Value::String(args.step)),
                    ("command", serde_json::Value::String(args.command_text)),
                ],
            );
            strip_for_snapshot(&mut doc);
            std::fs::write(&out, ovsdb::dump::to_pretty_string(&doc))
                .map_err(|e| Failure::bad_input(format!("cannot write {}: {e}", out.display())))?;
            if args.json {
                let rows: std::collections::BTreeMap<&String, usize> = doc["tables"]
                    .as_object()
                    .map(|tables| {
                        tables
                            .iter()
                            .map(|(name, rows)| (name, rows.as_array().map_or(0, Vec::len)))
                            .collect()
                    })
                    .unwrap_or_default();
                let summary =
                    serde_json::json!({"file": out.display().to_string(), "step": doc["step"], "tables": rows});
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A JSON dump is normalized; a `.txt` is taken as already normalized.
fn normalized(path: &Path, n: &mut Normalizer) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))?;
    if text.starts_with('#') {
        return Ok(text);
    }
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::bad_input(format!(
            "{} is neither a JSON dump nor a normalized .txt: {e}",
            path.display()
        ))
    })?;
    n.normalize(&doc)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", path.display())).into())
}
