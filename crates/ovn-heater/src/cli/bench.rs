//! `ovn-heater bench <name>`: benchmarks that print measured figures and ratios (never assert).
//! Each benchmark lives in its own `bench_<name>.rs`; this file only routes.

use std::process::ExitCode;

use clap::Subcommand;

#[path = "bench_emu.rs"]
pub(super) mod emu;
#[path = "bench_lab.rs"]
mod lab;
#[path = "bench_ovsdb.rs"]
mod ovsdb;
#[path = "bench_run.rs"]
mod run;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub which: Which,
}

#[derive(Subcommand, Debug)]
pub enum Which {
    /// OVSDB client: initial sync vs ovsdb-client dump; pipelined transactions.
    #[command(after_help = "Examples:
  ovn-heater bench ovsdb --ports 100000 --switches 1000
  ovn-heater bench ovsdb --skip-sync --txns 10000 --in-flight 100 --transport tcp --json")]
    Ovsdb(ovsdb::Args),
    /// Lab: bring-up time and RSS per real chassis.
    #[command(after_help = "Example:
  sudo ovn-heater bench lab --chassis 1,5,10 --json")]
    Lab(lab::Args),
    /// Emulated chassis: farm RSS/CPU and port-up latency at 100..1000 chassis.
    #[command(after_help = "Examples:
  ovn-heater bench emu --chassis 300,1000
  ovn-heater bench emu --chassis 300 --no-monitor-all --processing-delay 20ms --json")]
    Emu(emu::Args),
    /// A scenario run N times: vms-stage and whole-run wall, tester CPU/RSS, vs upstream.
    #[command(after_help = "Example:
  sudo ovn-heater bench run scenarios/openstack-20-projects-50-vms.yml --runs 3")]
    Run(run::Args),
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Which::Ovsdb(a) => ovsdb::run(a).await,
        Which::Lab(a) => lab::run(a).await,
        Which::Emu(a) => emu::run(a).await,
        Which::Run(a) => run::run(a).await,
    }
}

/// An OVS/OVN tool from `$PATH` or the sbin directories Debian installs daemons into.
fn find_binary(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(std::path::PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
