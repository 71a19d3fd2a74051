//! `ovn-heater kubernetes walkthrough|density-light|run-emulated`: flags only; the drivers are
//! in `workload::kubernetes`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::workload::kubernetes::{
    self as kube, DensityOptions, Ran, ScenarioOptions, WalkthroughReport, WalkthroughTarget,
};

/// Drive the ovn-kubernetes mimic: the ovnk-reference walkthrough, upstream's scenarios on
/// emulated chassis, the density-light benchmark.
///
/// Example: ovn-heater kubernetes run-emulated scenarios/ovn-kubernetes/ovn-low-scale.yml --set global.cleanup=true
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the ovnk-reference oracle scenario on a fresh NB/SB/northd (with a Connection
    /// row), writing one NB dump per oracle step (00-initial.json ... 36-service_route-cleanup.json).
    #[command(after_help = "Examples:
  ovn-heater kubernetes walkthrough --nb unix:/tmp/nb.sock --sb unix:/tmp/sb.sock --dump-dir /tmp/ovnk
  ovn-heater kubernetes walkthrough --nb unix:/tmp/nb.sock --sb unix:/tmp/sb.sock --dump-dir /tmp/ovnk --json | jq -r '.dumps[].file'")]
    Walkthrough(Target),
    /// Benchmark density_light on emulated chassis: a private central (standalone NB/SB,
    /// northd), an in-process farm of `--workers` emulated chassis, base_cluster_bringup then
    /// density_light; prints pod-up latency (LSP committed -> NB `up`) and phase times.
    #[command(after_help = "Examples:
  ovn-heater kubernetes density-light --workers 120 --n-pods 6000 --n-startup 5900
  ovn-heater -q kubernetes density-light --workers 10 --n-pods 200 --n-startup 100 --json > density.json")]
    DensityLight(DensityArgs),
    /// Run one of upstream's ovn-kubernetes scenario files (scenarios/ovn-kubernetes/) on
    /// emulated chassis: a private central and an in-process farm of `cluster.n_workers`
    /// chassis; pods are control-plane only (ready when their LSP is up). Prints each
    /// Context's duration and pod-up latency.
    #[command(after_help = "Examples:
  ovn-heater kubernetes run-emulated scenarios/ovn-kubernetes/ocp-120-density-light.yml --set density_light.n_startup=1000 --set density_light.n_pods=1100
  ovn-heater -q kubernetes run-emulated scenarios/ovn-kubernetes/ovn-low-scale.yml --json | jq '.contexts[] | {name, duration_s}'")]
    RunEmulated(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// An ovn-kubernetes scenario (upstream's format, `cms_name: ovn_kubernetes`).
    scenario: PathBuf,
    /// Override a key: `SECTION.KEY=VALUE` (YAML value), repeatable.
    #[arg(long = "set")]
    sets: Vec<String>,
    /// Where the lab's files go (a temp dir when absent; kept for the logs when given).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// How long one pod may take to come up (and one ping may take): 30s, 2m, or a plain
    /// number of seconds.
    #[arg(long, alias = "pod-timeout-s", value_name = "DURATION", default_value = "60s", value_parser = super::duration::parse)]
    pod_timeout: Duration,
    /// Real chassis instead of emulated ones: `cluster.n_workers` chassis `ovn-scale-<i>`
    /// (ovsdb-server + ovs-vswitchd + ovn-controller in network namespaces), pods plumbed
    /// into namespaces of their own and checked with pings (needs root).
    #[arg(long)]
    real: bool,
    /// Print one JSON document on stdout (figures in seconds, `_s`; exit_code and error);
    /// progress and text go to stderr.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DensityArgs {
    /// Worker nodes (emulated chassis `ovn-scale-1..N`).
    #[arg(long, default_value_t = 120)]
    workers: usize,
    /// base_cluster_bringup's `n_pods_per_node`.
    #[arg(long, default_value_t = 10)]
    n_pods_per_node: usize,
    /// density_light's `n_pods` (startup pods included).
    #[arg(long, default_value_t = 6000)]
    n_pods: usize,
    /// density_light's `n_startup` (passive pods created first, in one batch of calls).
    #[arg(long, default_value_t = 5900)]
    n_startup: usize,
    /// `upstream` or `fixed` writes.
    #[arg(long, default_value = "fixed")]
    compat: String,
    /// Where the lab's files go (a temp dir when absent; kept for the logs when given).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// How long one pod may take to come up: 30s, 2m, or a plain number of seconds.
    #[arg(long, alias = "pod-timeout-s", value_name = "DURATION", default_value = "60s", value_parser = super::duration::parse)]
    pod_timeout: Duration,
    /// Print one JSON document on stdout (figures in seconds, `_s`; exit_code and error);
    /// progress and text go to stderr.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Northbound DB remote, e.g. unix:/run/ovn/ovnnb_db.sock.
    #[arg(long)]
    nb: String,
    /// Southbound DB remote (the chassis ovn-scale-0/1 are registered there; pods are claimed).
    #[arg(long)]
    sb: String,
    /// Where the dumps go (created if missing).
    #[arg(long)]
    dump_dir: PathBuf,
    /// The dual-stack variant: IPv4 + IPv6, base_cluster_bringup and density_light only.
    #[arg(long)]
    dual_stack: bool,
    /// `upstream` (upstream ovn-heater's writes, bugs included) or `fixed`.
    #[arg(long, default_value = "upstream")]
    compat: String,
    /// Seed of the mimic's MAC generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// For ssl: --nb/--sb (ovn-heater also registers the chassis with these, so the SB
    /// listener must not apply RBAC to them).
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Print one JSON document on stdout once done: the dumps written (step, file, after),
    /// nb_transactions, duration_s, exit_code and error.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Walkthrough(t) => {
            let json = t.json;
            if json {
                crate::output::reserve_stdout_for_json();
            }
            let mut report = WalkthroughReport::default();
            let outcome = kube::walkthrough(
                WalkthroughTarget {
                    nb: t.nb,
                    sb: t.sb,
                    dump_dir: t.dump_dir,
                    dual_stack: t.dual_stack,
                    compat: t.compat,
                    seed: t.seed,
                    tls: t.tls,
                },
                &mut report,
            )
            .await;
            if outcome.is_ok() {
                crate::output::text_result(&report.to_text());
            }
            print_document(json.then_some(&report), &outcome)?;
            outcome.map(|()| ExitCode::SUCCESS)
        }
        Command::DensityLight(d) => {
            if d.json {
                crate::output::reserve_stdout_for_json();
            }
            let ran = kube::density_light(DensityOptions {
                workers: d.workers,
                n_pods_per_node: d.n_pods_per_node,
                n_pods: d.n_pods,
                n_startup: d.n_startup,
                compat: d.compat,
                run_dir: d.run_dir,
                pod_timeout: d.pod_timeout,
            })
            .await;
            print_ran(ran, d.json)
        }
        Command::RunEmulated(r) => {
            if r.json {
                crate::output::reserve_stdout_for_json();
            }
            let ran = kube::run_scenario(ScenarioOptions {
                scenario: r.scenario,
                sets: r.sets,
                run_dir: r.run_dir,
                pod_timeout: r.pod_timeout,
                real: r.real,
                results_dir: None,
                label: None,
            })
            .await;
            print_ran(ran, r.json)
        }
    }
}

/// Prints an emulated run's figures (text, or with `--json` one document whatever the
/// outcome: the figures when the workload ran to its end, exit_code and error), then returns
/// its outcome.
fn print_ran(ran: Ran, json: bool) -> anyhow::Result<ExitCode> {
    // Stdout, or stderr when `--json` keeps stdout for the document.
    if let Some(report) = &ran.report {
        crate::output::text_result(&report.to_text());
    }
    if json {
        match &ran.report {
            Some(report) => print_document(Some(report), &ran.outcome)?,
            None => print_document(Some(&serde_json::json!({})), &ran.outcome)?,
        }
    }
    ran.outcome
}

/// With `--json` (`report` given): one document on stdout, the report's fields with exit_code
/// and error.
#[allow(clippy::print_stdout)]
fn print_document<T: serde::Serialize, U>(report: Option<&T>, outcome: &anyhow::Result<U>) -> anyhow::Result<()> {
    let Some(report) = report else {
        return Ok(());
    };
    let mut doc = serde_json::to_value(report)?;
    let (code, error) = match outcome {
        Ok(_) => (0, None),
        Err(e) => (crate::error::exit_code(e), Some(format!("{e:#}"))),
    };
    doc["exit_code"] = code.into();
    doc["error"] = error.into();
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
