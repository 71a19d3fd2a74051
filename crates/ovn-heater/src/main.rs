//! The `ovn-heater` binary: CLI, scenarios, CMS plugins' glue, measurements and reports.
//!
//! `main` only sets up logging, parses the command line, runs it and turns the outcome into
//! an exit code (see README.md, "Exit codes"). Every subcommand lives in `cli/<name>.rs`.
//!
//! Must not know: how OVSDB frames messages (that is `ovsdb`), how daemons are started
//! (`ovn-lab`), what Neutron writes (`ovn-openstack`), how a chassis is emulated (`ovn-emu`).

mod cli;
mod cms;
mod error;
mod metrics;
mod output;
mod report;
mod scenario;
mod tls;
mod workload;

use std::process::ExitCode;

/// mimalloc rather than glibc malloc: the OVSDB client frees many small blocks per
/// transaction and asks for a bigger one per batch, which sends glibc through
/// `malloc_consolidate` over and over. Measured trade-off (docs/benchmarks.md, "Memory
/// allocator"): less CPU in `bench ovsdb` and `bench emu`, about twice the farm's RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    output::init_logging(args.verbose, args.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::print_error(&anyhow::Error::new(e).context("cannot start the async runtime"));
            return ExitCode::from(error::EXIT_ENVIRONMENT);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::from(error::exit_code(&err))
        }
    }
}
