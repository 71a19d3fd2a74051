//! The run driver behind `ovn-heater run` (and `bench run`): preflight, bring up the lab (or
//! attach to `--nb/--sb`), start the /proc sampler and the NB/SB monitors, run the workload's
//! stages, write `results.json`, `report.html`, `scenario.yml` and `logs/`, and tear
//! everything down — also after a failure or Ctrl-C/SIGTERM, in which case the results written
//! so far are marked partial. The caller turns the [`Outcome`] into an exit code.
//!
//! Must not know: clap. Bad input is tagged with [`Failure`] where it is found; the caller
//! picks exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use ovsdb::{Client, ClientOptions};

use crate::cms::openstack::OpenStack;
use crate::cms::Cms;
use crate::error::Failure;
use crate::metrics::procfs::{self, Watched};
use crate::metrics::{Clock, Recorder};
use crate::report::json::{self, RunResults, RunStatus, ScenarioInfo, StageResult};
use crate::report::{environment, html, verdict};
use crate::scenario::{ChassisKind, Scenario, Workload};
use crate::workload::attached;
use crate::workload::ext_cmd::ExtCmds;
use crate::workload::hosts::{EmulatedHosts, Hypervisors, RealHosts};
use crate::workload::nb_watch::{GatewayWatch, NbWatch};
use crate::workload::openstack::{self as os_workload, Built, Topology};
use crate::workload::{Limiter, Probes, Run};

/// What to run against, besides the scenario itself.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The scenario file (its stem names the default results dir).
    pub scenario: PathBuf,
    /// Where results go; must be empty or new. Default: results/<scenario>-<UTC time>-<pid>.
    pub results_dir: Option<PathBuf>,
    /// Drive an existing OVN instead of starting a lab (with `sb`).
    pub nb: Option<String>,
    pub sb: Option<String>,
    pub ovn_bin_dir: Option<PathBuf>,
    pub ovs_bin_dir: Option<PathBuf>,
    /// TLS files for `ssl:` remotes in `nb`/`sb` (`{chassis}` in a name: one per chassis).
    pub tls: crate::tls::TlsArgs,
    /// The user's name for the run (`environment.label`).
    pub label: Option<String>,
    /// Attached: go on although the NB holds rows of earlier runs (docs/attach.md).
    pub allow_existing: bool,
    /// Attached: control sockets of the existing OVN's daemons, for their figures.
    pub control_sockets: crate::workload::attached::ControlSockets,
}

/// How a run ended, for the caller to turn into an exit code.
pub enum Verdict {
    /// Every stage ran and every check passed.
    Passed,
    /// Every stage ran, but ports did not all come up, pings failed or samples failed;
    /// `blame` says whose failure it was (OVN's `system`, or only the `harness`).
    ChecksFailed {
        blame: crate::metrics::FailureClass,
        why: String,
    },
    /// A stage failed (the error keeps its exit code: a preflight failure inside the lab is
    /// bad input).
    Failed(anyhow::Error),
    Interrupted,
    /// Teardown left something behind.
    TeardownFailed(String),
}

/// A finished run: where its results are, what they say, and the verdict.
pub struct Outcome {
    pub results_dir: PathBuf,
    pub results: RunResults,
    pub verdict: Verdict,
}

/// A run against an existing OVN: its marker and what was found there before it started.
struct Attached {
    run_id: String,
    target: attached::Target,
}

/// How the run ended, before exit codes.
enum Ending {
    Done,
    Failed(anyhow::Error),
    Interrupted,
}

/// Runs `scenario`: preflight, results dir, lab, stages, results files, teardown. `Err` only
/// when nothing was started (bad input, unusable results dir) or results cannot be written.
pub async fn run(args: &RunOptions, scenario: &Scenario) -> anyhow::Result<Outcome> {
    preflight(args, scenario)?;
    let results_dir = results_dir_of(args);
    check_results_dir(&results_dir)?;
    // An NB holding rows of an earlier run is refused before anything is written anywhere.
    let target = match (&args.nb, &args.sb) {
        (Some(nb), Some(sb)) => Some(
            attached::check_target(
                nb,
                sb,
                &args.tls.for_chassis(ovn_lab::lab::CLIENT_CN),
                args.allow_existing,
                &(1..=emulated_count(scenario))
                    .map(|i| format!("{EMULATED_PREFIX}-{i}"))
                    .collect::<Vec<_>>(),
            )
            .await?,
        ),
        _ => None,
    };
    prepare_results_dir(&results_dir, args.nb.is_none())?;
    crate::output::info(&format!("results: {}", results_dir.display()));
    json::write_atomically(&results_dir.join("scenario.yml"), scenario.yaml.as_bytes())
        .context("cannot write scenario.yml")?;

    let attached = target.map(|target| Attached {
        run_id: attached::run_id(&results_dir, &target.found.runs),
        target,
    });
    let (results, failure, teardown_error) = execute(args, scenario, &results_dir, attached.as_ref()).await;
    let status = results.status;
    results
        .write_to(&results_dir.join("results.json"))
        .context("cannot write results.json")?;
    // One verdict for the report's status line and the exit code.
    let judged = verdict::judge(&results, Some(scenario.workload.total_vms()));
    json::write_atomically(
        &results_dir.join("report.html"),
        html::render_with_verdict(&results, &judged).as_bytes(),
    )
    .context("cannot write report.html")?;
    let s = &results.summary;
    crate::output::info(&format!(
        "{}: {} ports created, {} up, {} pings ok, {} failed samples ({} system, {} harness), {} skipped; report: {}",
        match status {
            RunStatus::Complete => "done",
            RunStatus::Failed => "FAILED (partial results)",
            RunStatus::Interrupted => "INTERRUPTED (partial results)",
        },
        s.ports_created,
        s.ports_up,
        s.pings_ok,
        s.failures,
        s.failures_by_class.system,
        s.failures_by_class.harness,
        s.failures_by_class.skipped,
        results_dir.join("report.html").display()
    ));
    let verdict = if let Some(e) = teardown_error {
        Verdict::TeardownFailed(format!("{e:#}"))
    } else {
        match status {
            RunStatus::Interrupted => Verdict::Interrupted,
            RunStatus::Failed => {
                Verdict::Failed(failure.unwrap_or_else(|| anyhow!(results.error.clone().unwrap_or_default())))
            }
            RunStatus::Complete if !judged.passed => Verdict::ChecksFailed {
                blame: judged.blame.unwrap_or(crate::metrics::FailureClass::System),
                why: format!("{}; see {}", judged.headline, results_dir.join("report.html").display()),
            },
            RunStatus::Complete => Verdict::Passed,
        }
    };
    Ok(Outcome {
        results_dir,
        results,
        verdict,
    })
}

fn preflight(args: &RunOptions, scenario: &Scenario) -> anyhow::Result<()> {
    // ext_cmd nodes: `central`, or a real chassis this run will start.
    let nodes: Vec<String> = match (&args.nb, scenario.cluster.chassis) {
        (None, ChassisKind::Real) => lab_spec(scenario, args, PathBuf::from("/"))
            .chassis
            .into_iter()
            .map(|c| c.name)
            .collect(),
        _ => Vec::new(),
    };
    ExtCmds::check(&scenario.ext_cmds, &nodes).map_err(Failure::bad_input)?;
    crate::workload::chaos::Chaos::check(
        &scenario.chaos,
        args.nb.is_none(),
        scenario.cluster.clustered_db,
        &nodes,
    )
    .map_err(Failure::bad_input)?;
    if args.nb.is_none() && (args.control_sockets.any() || args.allow_existing) {
        return Err(Failure::bad_input(
            "--allow-existing and --nb-ctl/--sb-ctl/--northd-ctl are for runs against an existing OVN (--nb/--sb); the lab's daemons are measured anyway",
        )
        .into());
    }
    args.control_sockets.check()?;
    if let Some(nb) = &args.nb {
        if scenario.cluster.chassis == ChassisKind::Real {
            return Err(Failure::bad_input(
                "real chassis need the lab; with --nb/--sb set cluster.chassis: emulated (e.g. --set cluster.chassis=emulated)",
            )
            .into());
        }
        for (flag, remote) in [("--nb", nb), ("--sb", args.sb.as_ref().unwrap_or(nb))] {
            let options = ClientOptions::new(remote).map_err(|e| Failure::bad_input(format!("{flag}: {e}")))?;
            args.tls.for_chassis(ovn_lab::lab::CLIENT_CN).apply(options)?;
        }
    } else if !is_root() {
        return Err(Failure::bad_input(
            "the lab needs root (network namespaces, OVS bridges); run as root, or drive an existing OVN with --nb/--sb and cluster.chassis: emulated",
        )
        .into());
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `--results-dir`, or the default one.
fn results_dir_of(args: &RunOptions) -> PathBuf {
    match &args.results_dir {
        Some(d) => d.clone(),
        None => default_results_dir(&args.scenario, std::time::SystemTime::now(), std::process::id()),
    }
}

/// Creates the results dir (with `logs/`) after checking it is usable, and, for a lab run, that
/// no lab of an earlier run of it is still there.
fn prepare_results_dir(dir: &Path, lab: bool) -> anyhow::Result<()> {
    check_results_dir(dir)?;
    if lab {
        refuse_lab_in_use(dir)?;
    }
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

/// A results dir must be new or empty, and not under a file: bad input (exit 2) otherwise.
pub(crate) fn check_results_dir(dir: &Path) -> anyhow::Result<()> {
    // A file where the dir (or one of its parents) should be is the user's to fix.
    if let Some(file) = dir.ancestors().find(|a| a.is_file()) {
        return Err(Failure::bad_input(format!(
            "results dir {}: {} is not a directory; pass another --results-dir",
            dir.display(),
            file.display()
        ))
        .into());
    }
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read results dir {}", dir.display()))?
            .next()
            .is_some();
        if non_empty {
            return Err(Failure::bad_input(format!(
                "results dir {} is not empty; remove it or pass another --results-dir",
                dir.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// The lab of a run of the same results dir that is still alive (e.g. after `kill -9` of
/// ovn-heater) is someone else's: refuse before writing anything, and touch none of it.
fn refuse_lab_in_use(results_dir: &Path) -> anyhow::Result<()> {
    let run_dir = lab_run_dir(results_dir);
    match ovn_lab::Lab::check_run_dir_free(&run_dir) {
        Ok(()) => Ok(()),
        Err(ovn_lab::Error::RunDirInUse { pids, .. }) => Err(Failure::bad_input(format!(
            "the lab of results dir {} is still running in {} (pids {pids:?}; a killed earlier run of it?); stop it with `ovn-heater lab down --run-dir {}`, or pass another --results-dir",
            results_dir.display(),
            run_dir.display(),
            run_dir.display()
        ))
        .into()),
        Err(ovn_lab::Error::NameClash { existing, .. }) => Err(Failure::bad_input(format!(
            "namespaces of the lab of results dir {} still exist ({}); remove them with `ovn-heater lab down --run-dir {}`, or pass another --results-dir",
            results_dir.display(),
            existing.join(", "),
            run_dir.display()
        ))
        .into()),
        Err(e) => Err(lab_failure(e)),
    }
}

/// `results/<scenario>-<UTC time>-<pid>`: two runs started in the same second get their own.
pub(crate) fn default_results_dir(scenario: &Path, now: std::time::SystemTime, pid: u32) -> PathBuf {
    let stem = scenario.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let stamp = environment::rfc3339(now).replace([':', '-'], "");
    PathBuf::from("results").join(format!("{stem}-{stamp}-{pid}"))
}

/// A short run dir for the lab (unix socket paths are limited to 108 bytes), unique per results dir.
fn lab_run_dir(results_dir: &Path) -> PathBuf {
    let abs = std::path::absolute(results_dir).unwrap_or_else(|_| results_dir.to_owned());
    let mut h: u32 = 0x811c_9dc5;
    for b in abs.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    std::env::temp_dir().join(format!("ovh-run-{h:08x}"))
}

fn lab_spec(scenario: &Scenario, args: &RunOptions, run_dir: PathBuf) -> ovn_lab::LabSpec {
    let c = &scenario.cluster;
    let mut spec = ovn_lab::LabSpec::new(run_dir);
    spec.clustered = c.clustered_db;
    spec.election_timer_ms = Some(c.raft_election_to * 1000);
    spec.n_relays = c.n_relays;
    spec.northd_threads = c.northd_threads as usize;
    spec.db_inactivity_probe_ms = Some(c.db_inactivity_probe_ms);
    spec.ssl = c.enable_ssl;
    spec.monitor_all = c.monitor_all;
    spec.physical_network = c.physical_net.clone();
    spec.datapath_type = match c.datapath_type {
        crate::scenario::DatapathType::System => "system".into(),
        crate::scenario::DatapathType::Netdev => "netdev".into(),
    };
    spec.node_net = c.node_net;
    spec.external_net = c.external_net;
    spec.binaries = ovn_lab::BinaryDirs {
        ovn_bin_dir: args.ovn_bin_dir.clone(),
        ovs_bin_dir: args.ovs_bin_dir.clone(),
    };
    if c.chassis == ChassisKind::Real {
        spec.chassis = match &scenario.workload {
            Workload::OpenstackBase(w) => spec.clone().with_chassis(w.n_hypervisors, w.n_network_nodes).chassis,
            // Upstream: every worker may host VMs and gateways.
            Workload::BaseOpenstack(_) => (0..c.n_workers)
                .map(|i| ovn_lab::ChassisSpec {
                    name: format!("ovn-scale-{i}"),
                    role: ovn_lab::ChassisRole::NetworkNode,
                })
                .collect(),
        };
    }
    spec
}

/// Lab errors the user fixes (root, binaries, names) are bad input; the rest are environment.
pub(crate) fn lab_failure(e: ovn_lab::Error) -> anyhow::Error {
    if e.is_preflight() {
        Failure::bad_input(e.to_string()).into()
    } else {
        anyhow::Error::new(e).context("the lab failed")
    }
}

async fn connect(remote: &str, database: &str, leader_only: bool, tls: &crate::tls::TlsArgs) -> anyhow::Result<Client> {
    let opts = tls
        .apply(ClientOptions::new(remote)?)?
        .database(database)
        .leader_only(leader_only)
        .connect_timeout(Duration::from_secs(30));
    Client::connect(opts)
        .await
        .with_context(|| format!("cannot connect to {database} at {remote}"))
}

/// Everything started for the run, torn down in reverse.
#[derive(Default)]
struct Started {
    lab: Option<Arc<ovn_lab::Lab>>,
    farm: Option<Arc<ovn_emu::Farm>>,
    lab_run_dir: Option<PathBuf>,
    /// The Neutron mimic of a run against an existing OVN (`--nb/--sb`): what it created is
    /// removed from that NB when the run ends early.
    attached_neutron: Option<Arc<ovn_openstack::Neutron>>,
}

/// How long after a failure a Ctrl-C/SIGTERM still counts as its cause.
const SIGNAL_GRACE: Duration = Duration::from_millis(300);

/// Waits for Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs everything; always returns results (partial ones when something failed), the error
/// that stopped the run, and the teardown error if teardown left things behind.
async fn execute(
    args: &RunOptions,
    scenario: &Scenario,
    results_dir: &Path,
    attached: Option<&Attached>,
) -> (RunResults, Option<anyhow::Error>, Option<anyhow::Error>) {
    let clock = Clock::start();
    let rec = Recorder::new(clock);
    let extras = Arc::new(Mutex::new(BTreeMap::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let built = Arc::new(tokio::sync::Mutex::new(Built::default()));
    let ext = Arc::new(ExtCmds::new(scenario.ext_cmds.clone(), results_dir.join("logs")));
    let mut started = Started::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sampler: Option<tokio::task::JoinHandle<Vec<procfs::Series>>> = None;
    let mut env = environment::probe(
        None,
        None,
        match scenario.cluster.chassis {
            ChassisKind::Real => "real",
            ChassisKind::Emulated => "emulated",
        },
        args.nb.as_deref().unwrap_or("lab"),
    );
    env.label = args.label.clone();

    let body = drive(
        args,
        scenario,
        results_dir,
        &rec,
        &extras,
        &events,
        &built,
        &ext,
        &mut started,
        &mut sampler,
        stop_rx,
        &mut env,
        attached,
    );
    // A Ctrl-C at the terminal reaches the whole process group: a command we had just forked
    // (before it moved to a group of its own) can die of it, and its failure can reach us
    // before the signal does. So a failure followed within a moment by a signal is an
    // interrupt; biased, so that a signal already there wins outright.
    let mut signal = std::pin::pin!(interrupted());
    let ending = tokio::select! {
        biased;
        _ = &mut signal => Ending::Interrupted,
        r = body => match r {
            Ok(()) => Ending::Done,
            Err(e) => match tokio::time::timeout(SIGNAL_GRACE, &mut signal).await {
                Ok(()) => Ending::Interrupted,
                Err(_) => Ending::Failed(e),
            },
        },
    };

    // Stop measuring, then take everything down.
    ext.stop_background().await;
    let _ = stop_tx.send(true);
    let processes = match sampler.take() {
        Some(h) => h.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let poll_intervals = rec.poll_intervals_total();
    // An attached run leaves no row of its own in the OVN it was given when it ends early,
    // or, by default, when it completes (`global.cleanup`; the lab's own OVN goes away with
    // the lab), and counts its marked rows again to be sure.
    let mut purge_error = None;
    let mut attached_results = attached.map(|a| json::Attached {
        run_id: a.run_id.clone(),
        found_at_start: a.target.found.counts(),
        cleanup: scenario.global.cleanup_when(true),
        left_at_end: None,
        nb_server_at_start: a.target.nb_server.clone(),
        sb_server_at_start: a.target.sb_server.clone(),
    });
    if let (Some(a), Some(neutron)) = (attached, started.attached_neutron.take()) {
        let limit = scenario.cluster.node_timeout.max(Duration::from_secs(10));
        let remove = !matches!(ending, Ending::Done) || scenario.global.cleanup_when(true);
        let nb_remote = args.nb.as_deref().unwrap_or_default();
        let finish = attached::finish(&neutron, nb_remote, &a.run_id, remove, limit).await;
        let mut log = events.lock().unwrap_or_else(|p| p.into_inner());
        for line in finish.events {
            log.push(format!("{:9.3}s {line}", clock.now()));
        }
        purge_error = finish.error;
        if let Some(r) = attached_results.as_mut() {
            r.left_at_end = finish.left;
        }
    }
    let teardown_error = match (teardown(&mut started, &built, results_dir).await, purge_error) {
        (Ok(()), None) => None,
        (Ok(()), Some(p)) => Some(anyhow!("teardown: {p}")),
        (Err(e), None) => Some(e),
        (Err(e), Some(p)) => Some(e.context(p)),
    };

    let (status, error) = match ending {
        Ending::Done => (RunStatus::Complete, None),
        Ending::Failed(ref e) => (RunStatus::Failed, Some(format!("{e:#}"))),
        Ending::Interrupted => (
            RunStatus::Interrupted,
            Some("interrupted by Ctrl-C or SIGTERM; everything started was torn down".to_owned()),
        ),
    };
    let extras = extras.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let stages: Vec<StageResult> = rec
        .stages()
        .iter()
        .map(|s| StageResult::from_record(s, extras.get(&s.name)))
        .collect();
    let cms_actions: Vec<&str> = CMS_MEASUREMENTS.to_vec();
    let summary = json::summarize(&stages, &cms_actions);
    let results = RunResults {
        schema_version: json::SCHEMA_VERSION,
        status,
        error,
        scenario: ScenarioInfo {
            name: args
                .scenario
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("scenario")
                .to_owned(),
            file: args.scenario.display().to_string(),
            workload: scenario.workload.name().to_owned(),
            resolved: serde_json::to_value(scenario).unwrap_or_default(),
            notes: scenario.notes.clone(),
        },
        environment: env,
        duration_s: clock.now(),
        summary,
        stages,
        processes,
        poll_intervals,
        attached: attached_results,
    };
    write_logs(results_dir, &results, &events, scenario.global.log_cmds);
    let failure = match ending {
        Ending::Failed(e) => Some(e),
        _ => None,
    };
    (results, failure, teardown_error)
}

/// Measurements that are CMS actions (counted as such in the summary and `logs/cms-actions.log`).
pub const CMS_MEASUREMENTS: &[&str] = &[
    "neutron_start",
    "create_external_network",
    "create_network",
    "create_subnet",
    "create_router",
    "set_router_gateway",
    "gateway_active",
    "add_router_interface",
    "create_port",
    "port_active",
    "delete_port",
    "remove_router_interface",
    "unset_router_gateway",
    "delete_router",
    "delete_network",
];

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &RunOptions,
    scenario: &Scenario,
    results_dir: &Path,
    rec: &Recorder,
    extras: &Arc<Mutex<BTreeMap<String, json::StageExtras>>>,
    events: &Arc<Mutex<Vec<String>>>,
    built: &Arc<tokio::sync::Mutex<Built>>,
    ext: &Arc<ExtCmds>,
    started: &mut Started,
    sampler: &mut Option<tokio::task::JoinHandle<Vec<procfs::Series>>>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
    env: &mut json::Environment,
    attached: Option<&Attached>,
) -> anyhow::Result<()> {
    let cluster = &scenario.cluster;
    let bringup = rec.begin_stage("bringup");
    let mut probes = Probes::default();
    let mut watched: Vec<Watched> = Vec::new();
    let mut topo: Topology = os_workload::topology(scenario);
    topo.cleanup = scenario.global.cleanup_when(attached.is_some());
    let emulated_count = emulated_count(scenario);
    let n_gateways = match &scenario.workload {
        Workload::OpenstackBase(w) => w.n_network_nodes,
        Workload::BaseOpenstack(_) => cluster.n_workers,
    };

    // The central side: a lab, or the given remotes.
    // Our own connections are `ovn-heater`'s ({chassis} in a file name reads `ovn-heater`).
    let mut tls = args.tls.for_chassis(ovn_lab::lab::CLIENT_CN);
    let mut chassis_tls: Option<ovn_emu::ChassisTls> = None;
    let (nb_remote, sb_remote, sb_for_chassis, leader_only) = match (&args.nb, &args.sb) {
        (Some(nb), Some(sb)) => {
            if args.tls.given() {
                let files = args.tls.clone();
                chassis_tls = Some(ovn_emu::ChassisTls::new(move |name| files.for_chassis(name).load()));
            }
            if let Some(a) = attached {
                probes.daemons = attached::stage_probes(
                    &args.control_sockets,
                    a.target.nb_server.as_ref(),
                    a.target.sb_server.as_ref(),
                )?;
                // Daemons behind the control sockets that run on this host are measured as a
                // lab's are: CPU/RSS, log warnings, DB file size, binaries.
                let mut pids = Vec::new();
                for (name, role, local) in attached::local_daemons(&args.control_sockets) {
                    watched.push(Watched {
                        name: name.into(),
                        role: role.into(),
                        pid: local.pid,
                    });
                    pids.push(local.pid);
                    if let Some(log) = local.log {
                        rec.watch_log_from_now(name, log);
                    }
                    match name {
                        "nb" => probes.nb_file = local.db,
                        "sb" => probes.sb_file = local.db,
                        _ => {}
                    }
                }
                if !pids.is_empty() {
                    let appctl = crate::workload::lab::find_in_path("ovn-appctl");
                    env.binaries = environment::binaries(&pids, appctl.as_slice());
                }
            }
            (nb.clone(), sb.clone(), sb.clone(), false)
        }
        _ => {
            let run_dir = lab_run_dir(results_dir);
            started.lab_run_dir = Some(run_dir.clone());
            let spec = lab_spec(scenario, args, run_dir.clone());
            if scenario.cluster.chassis == ChassisKind::Real {
                // One ARP table for every namespace of the host: too small, and pings fail for
                // tens of seconds with no fault in OVN (ovn_lab::host).
                let vms: usize = topo.projects.iter().map(|p| p.vms).sum();
                let peers = topo
                    .projects
                    .iter()
                    .map(|p| p.vms.saturating_sub(1).min(os_workload::FULL_MESH_MAX_VMS))
                    .max()
                    .unwrap_or(0);
                match ovn_lab::host::ensure_neighbour_entries(ovn_lab::host::neighbour_entries_needed(vms, peers)) {
                    Ok(Some((old, new))) => eprintln_status(&format!(
                        "raised the host's ARP table cap (net.ipv4.neigh.default.gc_thresh3, shared by every namespace) from {old} to {new} for {vms} VMs"
                    )),
                    Ok(None) => {}
                    Err(e) => crate::output::warn(&format!(
                        "warning: cannot raise the host's ARP table cap ({e}); with many VMs, pings may fail while the table is full"
                    )),
                }
            }
            eprintln_status(&format!(
                "bringing up the lab: {} NB/SB, {} real chassis (run dir {})",
                if spec.clustered { "3-member RAFT" } else { "standalone" },
                spec.chassis.len(),
                run_dir.display()
            ));
            let t0 = Instant::now();
            let lab = ovn_lab::Lab::up(spec).await.map_err(lab_failure);
            rec.record(
                bringup,
                "lab_up",
                "lab",
                t0,
                Instant::now(),
                lab.as_ref().err().map(|e| format!("{e:#}")),
            );
            // A lab refused at preflight made nothing: its run dir (if any) is not ours to remove.
            if lab.as_ref().is_err_and(|e| e.downcast_ref::<Failure>().is_some()) {
                started.lab_run_dir = None;
            }
            let lab = Arc::new(lab?);
            started.lab = Some(lab.clone());
            if let Some(files) = lab.client_tls_files() {
                tls = crate::tls::TlsArgs::from_files(&files.private_key, &files.certificate, &files.ca_cert);
            }
            if let Some(pki) = lab.pki().map_err(lab_failure)? {
                // Each emulated chassis gets its own certificate, CN = its name (SB RBAC).
                let pki = Arc::new(pki);
                chassis_tls = Some(ovn_emu::ChassisTls::new(move |name| pki.client_tls(name)));
            }
            env.rbac = lab.rbac();
            ext.set_netns(
                lab.chassis()
                    .iter()
                    .map(|c| (c.name().to_owned(), c.netns().to_owned()))
                    .collect(),
            );
            probes.daemons = crate::workload::lab::stage_probes(&lab);
            for p in lab.processes() {
                rec.watch_log(&p.name, p.log_path.clone());
                watched.push(Watched {
                    name: p.name.clone(),
                    role: p.role.to_string(),
                    pid: p.pid,
                });
            }
            let db_file = |short: &str| {
                let dir = lab.run_dir().join(short);
                [format!("{short}.db"), format!("{short}-1.db")]
                    .into_iter()
                    .map(|f| dir.join(f))
                    .find(|p| p.exists())
            };
            env.binaries = crate::workload::lab::binaries(&lab);
            probes.nb_file = db_file("nb");
            probes.sb_file = db_file("sb");
            let v = lab.versions();
            env.ovn_version = v.get("ovn-northd").cloned().unwrap_or_else(|| env.ovn_version.clone());
            env.ovs_version = v
                .get("ovsdb-server")
                .cloned()
                .unwrap_or_else(|| env.ovs_version.clone());
            (
                lab.nb_remote().to_owned(),
                lab.sb_remote().to_owned(),
                lab.sb_remote_for_chassis().to_owned(),
                lab.clustered(),
            )
        }
    };

    *sampler = Some(rec.sample_processes(watched, stop_rx));

    env.nb_remote = nb_remote.clone();
    env.sb_remote = sb_remote.clone();
    env.ssl = [&nb_remote, &sb_remote].iter().any(|r| r.contains("ssl:"));
    let nb = connect(&nb_remote, "OVN_Northbound", leader_only, &tls).await?;
    let sb = connect(&sb_remote, "OVN_Southbound", leader_only, &tls).await?;
    let watch_client = connect(&nb_remote, "OVN_Northbound", leader_only, &tls).await?;
    let nb_watch = Arc::new(NbWatch::start(&watch_client).await?);
    let sb_watch_client = connect(&sb_remote, "OVN_Southbound", leader_only, &tls).await?;
    let gateways = Arc::new(GatewayWatch::start(&sb_watch_client).await?);
    let dead_daemons = started
        .lab
        .as_ref()
        .map(|lab| Arc::new(crate::workload::dead_daemons::Daemons::new(lab.clone())));
    if let (Some(lab), Some(daemons), false) = (&started.lab, &dead_daemons, scenario.chaos.is_empty()) {
        ext.set_chaos(crate::workload::chaos::Chaos::new(
            scenario.chaos.clone(),
            lab.clone(),
            nb.clone(),
            sb.clone(),
            cluster.node_timeout,
            daemons.clone(),
        ));
    }
    // northd_probe_interval is NB_Global configuration, as upstream sets it; an existing
    // OVN's configuration is its operator's, and is left as found.
    if attached.is_none() {
        set_northd_probe_interval(&nb, cluster.northd_probe_interval_ms).await?;
    } else {
        events.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
            "{:9.3}s attached: NB_Global options left as found (cluster.northd_probe_interval not applied)",
            rec.clock().now()
        ));
    }

    // A chaos kill of the NB leader leaves the CMS transactions in flight on it with an
    // unknown outcome: they are checked in the NB (and sent again if they did not commit)
    // rather than failed, as the kill was ours (docs/scenarios.md "chaos").
    let kills_nb_leader = started.lab.is_some()
        && scenario
            .chaos
            .iter()
            .any(|a| matches!(a.kill, crate::scenario::ChaosTarget::NbLeader));
    let mut config = ovn_openstack::Config {
        max_gateway_chassis: topo.gateways_per_router.max(1),
        verify_unknown_outcomes: kills_nb_leader.then_some(cluster.node_timeout),
        ..Default::default()
    };
    if let Some(a) = attached {
        config.run_marker = Some(a.run_id.clone());
        if !a.target.found.is_empty() {
            config.seed = attached::seed_beside_earlier_runs(&a.run_id);
        }
    }
    let neutron = ovn_openstack::Neutron::new(nb.clone(), sb.clone(), config);
    if args.nb.is_some() {
        started.attached_neutron = Some(neutron.clone());
    }
    let cms = Arc::new(OpenStack::new(neutron.clone(), cluster.physical_net.clone()));
    let load = scenario.workload.load();
    let limiter = Arc::new(Limiter::new(load.ops_per_second));

    macro_rules! go {
        ($hosts:expr, $external_gateway:expr) => {{
            let run = Arc::new(Run {
                cms: cms.clone(),
                hosts: Arc::new($hosts),
                rec: rec.clone(),
                nb_watch: nb_watch.clone(),
                gateways: gateways.clone(),
                nb: nb.clone(),
                sb: sb.clone(),
                limiter: limiter.clone(),
                concurrency: load.concurrency,
                timeout: cluster.node_timeout,
                probes: probes.clone(),
                extras: extras.clone(),
                ext: ext.clone(),
                events: events.clone(),
                dead_daemons: dead_daemons.clone(),
            });
            run.limiter.acquire().await;
            rec.timed(bringup, "neutron_start", "neutron-server", cms.start())
                .await?;
            run.end_stage(bringup, "bringup").await;
            let outcome = match &scenario.workload {
                Workload::OpenstackBase(w) if !w.steps.is_empty() => {
                    crate::workload::openstack_cli::run_steps(run, &w.steps, neutron.clone()).await
                }
                _ => os_workload::run_stages(run, &topo, $external_gateway, built.clone()).await,
            };
            // Chaos restarts still under way: their samples belong to this run.
            ext.settle_chaos().await;
            outcome
        }};
    }

    match cluster.chassis {
        ChassisKind::Real => {
            let lab = started
                .lab
                .clone()
                .ok_or_else(|| anyhow!("real chassis need the lab"))?;
            let external = lab
                .external_host()
                .map(|h| h.ip())
                .ok_or_else(|| anyhow!("the lab has no external host (no network node?)"))?;
            let vms_on_gateways = matches!(scenario.workload, Workload::BaseOpenstack(_));
            let passive = matches!(&scenario.workload, Workload::BaseOpenstack(w) if w.passive_vms);
            go!(
                RealHostsFor {
                    inner: RealHosts { lab, passive },
                    vms_on_gateways
                },
                external
            )
        }
        ChassisKind::Emulated => {
            let options = ovn_emu::FarmOptions {
                monitor_all: cluster.monitor_all,
                bridge_mappings: format!("{}:br-ex", cluster.physical_net),
                gateways: n_gateways,
                datapath_type: "system".into(),
                tls: chassis_tls.clone(),
                ..Default::default()
            };
            let t0 = Instant::now();
            let farm = ovn_emu::Farm::start(&sb_for_chassis, emulated_count, EMULATED_PREFIX, options)
                .await
                .context("cannot start the emulated chassis")?;
            let farm = Arc::new(farm);
            started.farm = Some(farm.clone());
            let registered = farm.wait_registered(Duration::from_secs(120)).await;
            rec.record(
                bringup,
                "chassis_registered",
                format!("{emulated_count} emulated chassis"),
                t0,
                Instant::now(),
                registered.as_ref().err().map(|e| e.to_string()),
            );
            registered.context("emulated chassis did not register")?;
            let external = cluster
                .external_net
                .hosts()
                .next()
                .unwrap_or(cluster.external_net.addr());
            let vms_on_gateways = matches!(scenario.workload, Workload::BaseOpenstack(_));
            go!(
                EmulatedHosts {
                    farm,
                    n_network_nodes: n_gateways,
                    vms_on_gateways,
                },
                external
            )
        }
    }
}

/// Emulated chassis are `hv-1`, `hv-2`, ...
const EMULATED_PREFIX: &str = "hv";

/// How many emulated chassis a scenario runs (network nodes included).
fn emulated_count(scenario: &Scenario) -> usize {
    match &scenario.workload {
        Workload::OpenstackBase(w) => w.n_network_nodes + w.n_hypervisors,
        Workload::BaseOpenstack(_) => scenario.cluster.n_workers,
    }
}

/// Real chassis, optionally placing VMs on the network nodes too (upstream's base_openstack).
struct RealHostsFor {
    inner: RealHosts,
    vms_on_gateways: bool,
}

impl Hypervisors for RealHostsFor {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn compute(&self) -> Vec<String> {
        if self.vms_on_gateways {
            self.inner.lab.chassis().iter().map(|c| c.name().to_owned()).collect()
        } else {
            self.inner.compute()
        }
    }
    fn can_ping(&self) -> bool {
        self.inner.can_ping()
    }
    fn external_ip(&self) -> Option<std::net::Ipv4Addr> {
        self.inner.external_ip()
    }
    async fn plug(&self, port: &crate::cms::VmPort) -> anyhow::Result<crate::workload::hosts::Plugged> {
        self.inner.plug(port).await
    }
    async fn unplug(&self, vm: &crate::workload::hosts::Plugged) -> anyhow::Result<()> {
        self.inner.unplug(vm).await
    }
    async fn ping(
        &self,
        from: &crate::workload::hosts::Plugged,
        dest: std::net::Ipv4Addr,
        timeout: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        self.inner.ping(from, dest, timeout).await
    }
}

async fn set_northd_probe_interval(nb: &Client, ms: u64) -> anyhow::Result<()> {
    let mut txn = ovsdb::Transaction::new("OVN_Northbound");
    txn.mutate(
        "NB_Global",
        vec![],
        vec![ovsdb::Mutation::insert(
            "options",
            ovsdb::Value::string_map([("northd_probe_interval", ms.to_string())]),
        )],
    );
    nb.transact(txn)
        .await
        .context("cannot set NB_Global options:northd_probe_interval")?;
    Ok(())
}

fn eprintln_status(line: &str) {
    crate::output::info(line);
}

/// Unplugs VMs, stops emulated chassis, brings the lab down and keeps its logs.
async fn teardown(
    started: &mut Started,
    built: &Arc<tokio::sync::Mutex<Built>>,
    results_dir: &Path,
) -> anyhow::Result<()> {
    // The lab deletes every namespace it made, VMs' included; emulated ports go with their chassis.
    let _ = built;
    let mut problems = Vec::new();
    if let Some(farm) = started.farm.take() {
        match last_handle(farm).await {
            Ok(farm) => {
                if let Err(e) = farm.stop(true).await {
                    problems.push(format!("emulated chassis: {e}"));
                }
            }
            Err(_) => problems.push("emulated chassis still in use at teardown".into()),
        }
    }
    if let Some(lab) = started.lab.take() {
        match last_handle(lab).await {
            Ok(lab) => {
                if let Err(e) = lab.down() {
                    problems.push(format!("{e}"));
                }
            }
            // Dropping the last handle tears the lab down anyway; a task still holding one
            // after the wait would be a bug.
            Err(_) => problems.push("the lab was still in use at teardown".into()),
        }
    }
    if let Some(dir) = started.lab_run_dir.take() {
        copy_logs(&dir, &results_dir.join("logs"));
        let _ = std::fs::remove_dir_all(&dir);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("teardown: {}", problems.join("; ")))
    }
}

/// The value behind `arc` once every other handle is gone. Aborted workers drop theirs when the
/// runtime next polls them, so this waits a little (bounded) instead of failing at once.
pub(crate) async fn last_handle<T>(mut arc: Arc<T>) -> Result<T, Arc<T>> {
    for _ in 0..100 {
        match Arc::try_unwrap(arc) {
            Ok(v) => return Ok(v),
            Err(a) => arc = a,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Arc::try_unwrap(arc)
}

/// Copies the lab's daemon logs and DB files into `logs/` (flattened: `nb/ovsdb-server.log`
/// becomes `nb-ovsdb-server.log`).
fn copy_logs(lab_dir: &Path, logs: &Path) {
    let mut stack = vec![lab_dir.to_owned()];
    let mut budget = 10_000usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return;
            }
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && path.extension().is_some_and(|x| x == "log" || x == "db" || x == "json") {
                let rel = path.strip_prefix(lab_dir).unwrap_or(&path);
                let flat = rel.to_string_lossy().replace('/', "-");
                let _ = std::fs::copy(&path, logs.join(flat));
            }
        }
    }
}

fn write_logs(results_dir: &Path, results: &RunResults, events: &Arc<Mutex<Vec<String>>>, log_cmds: bool) {
    let logs = results_dir.join("logs");
    let events = events.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    let _ = json::write_atomically(&logs.join("events.log"), format!("{events}\n").as_bytes());
    if log_cmds {
        let mut lines = Vec::new();
        for st in &results.stages {
            for (name, m) in &st.measurements {
                if !CMS_MEASUREMENTS.contains(&name.as_str()) {
                    continue;
                }
                for s in &m.samples {
                    lines.push((
                        s.start_s,
                        format!(
                            "{:9.3}s {:8.4}s {} {name} {} {}",
                            s.start_s,
                            s.duration_s,
                            st.name,
                            s.subject,
                            s.error.as_deref().unwrap_or("ok")
                        ),
                    ));
                }
            }
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let text: Vec<String> = lines.into_iter().map(|l| l.1).collect();
        let _ = json::write_atomically(
            &logs.join("cms-actions.log"),
            format!("{}\n", text.join("\n")).as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_results_dirs_of_two_processes_in_the_same_second_differ() {
        let now = std::time::SystemTime::now();
        let a = default_results_dir(Path::new("scenarios/x.yml"), now, 100);
        let b = default_results_dir(Path::new("scenarios/x.yml"), now, 101);
        assert_ne!(a, b);
        assert!(
            a.starts_with("results") && a.to_string_lossy().contains("/x-"),
            "{}",
            a.display()
        );
    }

    #[test]
    fn lab_run_dir_is_short_and_stable() {
        let a = lab_run_dir(Path::new("/some/very/long/results/directory/name/that/goes/on"));
        assert_eq!(
            a,
            lab_run_dir(Path::new("/some/very/long/results/directory/name/that/goes/on"))
        );
        assert!(a.as_os_str().len() < 40, "{}", a.display());
        assert_ne!(a, lab_run_dir(Path::new("/other")));
    }

    #[test]
    fn openstack_base_lab_has_network_nodes_and_hypervisors() {
        let s = Scenario::from_yaml(
            "cluster:\n  clustered_db: false\nopenstack_base:\n  n_hypervisors: 2\n  n_network_nodes: 1\n",
            "t",
            &[],
        )
        .unwrap();
        let args = RunOptions {
            scenario: "t.yml".into(),
            results_dir: None,
            nb: None,
            sb: None,
            ovn_bin_dir: None,
            ovs_bin_dir: None,
            tls: Default::default(),
            label: None,
            ..Default::default()
        };
        let spec = lab_spec(&s, &args, "/tmp/x".into());
        let names: Vec<&str> = spec.chassis.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gw-1", "compute-1", "compute-2"]);
        assert_eq!(spec.datapath_type, "netdev");
        assert!(!spec.clustered);
        assert!(spec.ssl, "enable_ssl is on by default, as upstream");
        spec.validate().unwrap();
    }
}
