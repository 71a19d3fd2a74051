//! `ovn-heater run SCENARIO.yml`: parses the flags and the scenario, hands both to the run
//! driver ([`crate::workload::runner`]) and turns its outcome into an exit code: 0 when every
//! check passed, 1 when the run finished but OVN failed a check (a `system` failure: ports did
//! not all come up, pings failed), 2 for bad input, 3 when the lab failed (also when only the
//! harness failed samples: `harness` failures and no `system` one), 130 when interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::error::Failure;
use crate::scenario::Scenario;
use crate::workload::runner::{self, Outcome, RunOptions, Verdict};

/// Run a scenario: bring up the lab, drive the workload, measure, report, clean up.
///
/// Example: `ovn-heater run scenarios/openstack-base.yml --results-dir results/base`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario file: upstream ovn-heater YAML plus `openstack_base` (docs/scenarios.md).
    pub scenario: PathBuf,
    /// Where results go; must be empty or new. Default: results/<scenario>-<UTC time>-<pid>.
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Override a scenario key, e.g. --set openstack_base.n_hypervisors=4 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Drive an existing OVN instead of starting a lab: its Northbound remote (needs --sb and
    /// `cluster.chassis: emulated`).
    #[arg(long, requires = "sb", value_name = "REMOTE")]
    pub nb: Option<String>,
    /// The existing OVN's Southbound remote (with --nb).
    #[arg(long, requires = "nb", value_name = "REMOTE")]
    pub sb: Option<String>,
    /// Check the scenario, print it as YAML under upstream's key names with every default
    /// filled in (a scenario that runs as is), and exit.
    #[arg(long)]
    pub check: bool,
    /// Directory with the OVN binaries (default: $PATH).
    #[arg(long, value_name = "DIR")]
    pub ovn_bin_dir: Option<PathBuf>,
    /// Directory with the OVS binaries (default: $PATH).
    #[arg(long, value_name = "DIR")]
    pub ovs_bin_dir: Option<PathBuf>,
    /// For ssl: --nb/--sb. With {chassis} in a file name each emulated chassis uses its own
    /// (hv-1, hv-2, ...; what SB RBAC needs), and ovn-heater's own connections `ovn-heater`'s.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// A name for this run, kept in results.json (`environment.label`) and shown in the report
    /// and `compare`, e.g. --label main / --label patch-v2.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// With --nb: run although the NB holds rows of earlier ovn-heater runs (refused otherwise,
    /// exit 2; `ovn-heater openstack purge` removes them). See docs/attach.md.
    #[arg(long, requires = "nb")]
    pub allow_existing: bool,
    /// With --nb: the NB ovsdb-server's control socket, for its memory/show, coverage/show
    /// (and cluster/status) at each stage's end, e.g. /var/run/ovn/ovnnb_db.ctl.
    #[arg(long, requires = "nb", value_name = "PATH")]
    pub nb_ctl: Option<PathBuf>,
    /// With --sb: the SB ovsdb-server's control socket, e.g. /var/run/ovn/ovnsb_db.ctl.
    #[arg(long, requires = "sb", value_name = "PATH")]
    pub sb_ctl: Option<PathBuf>,
    /// With --nb: ovn-northd's control socket, for its stopwatches, engine statistics,
    /// memory/show and coverage/show at each stage's end.
    #[arg(long, requires = "nb", value_name = "PATH")]
    pub northd_ctl: Option<PathBuf>,
    /// When the run ends, print one JSON document on stdout: results_dir, results_json,
    /// report_html, exit_code, verdict, error, status, label and results.json's summary.
    #[arg(long, conflicts_with = "check")]
    pub json: bool,
}

impl Args {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            scenario: self.scenario.clone(),
            results_dir: self.results_dir.clone(),
            nb: self.nb.clone(),
            sb: self.sb.clone(),
            ovn_bin_dir: self.ovn_bin_dir.clone(),
            ovs_bin_dir: self.ovs_bin_dir.clone(),
            tls: self.tls.clone(),
            label: self.label.clone(),
            allow_existing: self.allow_existing,
            control_sockets: crate::workload::attached::ControlSockets {
                nb: self.nb_ctl.clone(),
                sb: self.sb_ctl.clone(),
                northd: self.northd_ctl.clone(),
            },
        }
    }
}

/// Loads `path` with `overrides`, printing its notes; bad input is exit 2.
#[allow(clippy::print_stderr)]
pub fn load_scenario(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<Scenario> {
    let scenario = Scenario::load(path, overrides)
        .map_err(|e| Failure::bad_input(e.to_string()))
        .with_context(|| format!("scenario {} is not valid", path.display()))?;
    for note in &scenario.notes {
        eprintln!("note: {note}");
    }
    Ok(scenario)
}

#[allow(clippy::print_stdout)]
pub async fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if !args.json {
        return run_and_report(args).await;
    }
    crate::output::reserve_stdout_for_json();
    // The document must name the results dir, also when the run picks its own.
    if args.results_dir.is_none() {
        args.results_dir = Some(runner::default_results_dir(
            &args.scenario,
            std::time::SystemTime::now(),
            std::process::id(),
        ));
    }
    let dir = args.results_dir.clone();
    let ended = run_and_report(args).await;
    println!("{}", super::run_json::document(dir.as_deref(), &ended));
    ended
}

/// Runs (or checks) the scenario; the exit code the outcome maps to.
#[allow(clippy::print_stdout)]
async fn run_and_report(args: Args) -> anyhow::Result<ExitCode> {
    if crate::workload::kubernetes::is_kubernetes_scenario(&args.scenario) == Some(true) {
        if args.check || args.nb.is_some() {
            return Err(Failure::bad_input(
                "ovn_kubernetes scenarios run on a lab of their own: --check and --nb/--sb are for OpenStack scenarios",
            )
            .into());
        }
        let ran = crate::workload::kubernetes::run_for_cli(
            &args.scenario,
            &args.overrides,
            args.results_dir.clone(),
            args.label.clone(),
        )
        .await;
        // The figures go to stdout, or to stderr when `--json` keeps stdout for its document.
        if let Some(report) = &ran.report {
            crate::output::text_result(&report.to_text());
        }
        return ran.outcome;
    }
    let scenario = load_scenario(&args.scenario, &args.overrides)?;
    if args.check {
        print!("{}", scenario.to_yaml());
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = runner::run(&args.options(), &scenario).await?;
    exit_code(outcome)
}

/// 0 when every check passed; otherwise the error that carries the exit code.
pub fn exit_code(outcome: Outcome) -> anyhow::Result<ExitCode> {
    let dir = outcome.results_dir.display().to_string();
    match outcome.verdict {
        Verdict::Passed => Ok(ExitCode::SUCCESS),
        Verdict::ChecksFailed { blame, why } => Err(Failure::checks_failed(blame, why).into()),
        Verdict::Failed(e) => Err(e).with_context(|| format!("the run failed; partial results in {dir}")),
        Verdict::Interrupted => Err(Failure::interrupted().into()),
        Verdict::TeardownFailed(why) => Err(Failure::environment(why).into()),
    }
}
