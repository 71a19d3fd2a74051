//! Command-line definition and routing. One file per subcommand; this file only routes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod compare;
mod db;
mod fake_chassis;
mod kubernetes;
mod lab;
mod openstack;
mod report;
pub(crate) mod run;
mod snapshot;

/// Scale tests for OVN's control plane, driven the way OpenStack Neutron drives it.
#[derive(Parser, Debug)]
#[command(name = "ovn-heater", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug; RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Talk to any OVSDB server: dump a database, watch a table.
    Db(db::Args),
    /// Start, inspect and stop a local OVN lab (central DBs, northd, chassis in namespaces).
    Lab(lab::Args),
    /// The OpenStack Neutron mimic: walkthrough and replay of Neutron actions; purge of what runs left.
    Openstack(openstack::Args),
    /// The ovn-kubernetes mimic: the ovnk-reference walkthrough.
    Kubernetes(kubernetes::Args),
    /// Take a normalized NB snapshot, or diff two.
    Snapshot(snapshot::Args),
    /// Run a scenario: bring up the lab, drive the workload, measure, report, clean up.
    #[command(after_help = "Examples:
  sudo ovn-heater run scenarios/openstack-base.yml
  sudo ovn-heater run scenarios/openstack-base.yml --set openstack_base.n_hypervisors=4 --label patch-v2
  ovn-heater run scenarios/openstack-base.yml --check
  ovn-heater run scenarios/openstack-base.yml --nb unix:/run/ovn/ovnnb_db.sock --sb unix:/run/ovn/ovnsb_db.sock --set cluster.chassis=emulated")]
    Run(run::Args),
    /// Compare two results directories side by side.
    #[command(after_help = "Examples:
  ovn-heater compare results/main-run results/patch-run
  ovn-heater compare results/main-run results/patch-run --json --threshold 10")]
    Compare(compare::Args),
    /// Render report.html again from a results.json.
    Report(report::Args),
    /// Run N emulated chassis against a Southbound DB until interrupted.
    #[command(after_help = "Example:
  ovn-heater fake-chassis --sb unix:/tmp/lab/sb.sock --count 100 --monitor-all")]
    FakeChassis(fake_chassis::Args),
    /// Benchmarks that print measured figures.
    Bench(bench::Args),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Db(a) => db::run(a).await,
        Command::Lab(a) => lab::run(a).await,
        Command::Openstack(a) => openstack::run(a).await,
        Command::Kubernetes(a) => kubernetes::run(a).await,
        Command::Snapshot(a) => snapshot::run(a).await,
        Command::Run(a) => run::run(a).await,
        Command::Compare(a) => compare::run(a).await,
        Command::Report(a) => report::run(a).await,
        Command::FakeChassis(a) => fake_chassis::run(a).await,
        Command::Bench(a) => bench::run(a).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command a user runs shows an example in its `--help` (ours, or its long help's).
    #[test]
    fn every_leaf_command_help_has_an_example() {
        fn leaves(cmd: &mut clap::Command, path: String, out: &mut Vec<(String, String)>) {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .filter(|n| n != "help")
                .collect();
            if names.is_empty() {
                out.push((path, cmd.render_long_help().to_string()));
                return;
            }
            for name in names {
                let sub = cmd.find_subcommand_mut(&name).expect("listed above");
                leaves(sub, format!("{path} {name}"), out);
            }
        }
        let mut all = Vec::new();
        leaves(&mut super::Cli::command(), "ovn-heater".into(), &mut all);
        assert!(all.len() > 15, "{} commands", all.len());
        let missing: Vec<&str> = all
            .iter()
            .filter(|(_, help)| !help.contains("Example"))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(missing.is_empty(), "--help without an example: {missing:?}");
    }
}
