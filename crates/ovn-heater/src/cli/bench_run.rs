//! `ovn-heater bench run SCENARIO`: runs a scenario several times back to back and prints what
//! a user of upstream ovn-heater compares: the `vms` stage's wall time, the whole run's (lab up
//! to teardown), the tester's CPU in the `vms` stage and its peak RSS, and failed samples, each
//! beside its target and its ratio to upstream's own figures for the 20 × 50 shape, and the
//! tester's CPU split into user and kernel time (namespace creation apart). Prints figures;
//! never asserts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use ovn_lab::NETNS_THREAD_NAME;

use crate::metrics::TESTER;
use crate::report::json::RunResults;
use crate::workload::runner::{self, RunOptions};

/// Run a scenario N times; print vms-stage and whole-run wall, tester CPU/RSS, failures.
///
/// Example: `ovn-heater bench run scenarios/openstack-20-projects-50-vms.yml --runs 3`
/// (add `--ovn-bin-dir ~/ovn --ovs-bin-dir ~/ovn/ovs` to measure an OVN build tree instead)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario file (as `run` takes it).
    pub scenario: PathBuf,
    /// How many runs, one after another.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Override a scenario key, as with `run` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Parent of the runs' results dirs (`<dir>/run-<k>`, kept for their reports).
    #[arg(long, default_value = "/tmp/ovn-heater-bench-run")]
    pub results_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Directory with the OVN binaries, e.g. a build tree of another OVN version (default: $PATH).
    #[arg(long, value_name = "DIR")]
    pub ovn_bin_dir: Option<PathBuf>,
    /// Directory with the OVS binaries (default: $PATH).
    #[arg(long, value_name = "DIR")]
    pub ovs_bin_dir: Option<PathBuf>,
}

/// Upstream ovn-heater's own figures for base_openstack 20 × 50 on 3 chassis, 2 cores
/// (issue #19: its Python client, VM plumbing and pings skipped).
const UPSTREAM_PROVISIONING_S: f64 = 14.0;
const UPSTREAM_CLIENT_CPU_S: f64 = 3.95;
const UPSTREAM_RSS_BYTES: f64 = 189e6;

/// Targets: vms stage ≤ 1.5 × upstream's provisioning, whole run ≤ 4 ×, tester CPU in the vms
/// stage ≤ 1/10 of upstream's client CPU, tester peak RSS ≤ 1/4 of upstream's.
const TARGET_VMS_S: f64 = 1.5 * UPSTREAM_PROVISIONING_S;
const TARGET_WHOLE_S: f64 = 4.0 * UPSTREAM_PROVISIONING_S;
const TARGET_TESTER_CPU_S: f64 = UPSTREAM_CLIENT_CPU_S / 10.0;
const TARGET_TESTER_RSS_BYTES: f64 = UPSTREAM_RSS_BYTES / 4.0;

#[derive(serde::Serialize)]
struct Figures {
    run: usize,
    results_dir: String,
    vms_s: Option<f64>,
    whole_s: f64,
    tester_cpu_vms_s: Option<f64>,
    tester_peak_rss_bytes: Option<u64>,
    /// The tester's CPU in the `vms` stage in its own code (user) and in the kernel on its
    /// behalf (system), and what its namespace threads used: creating the VMs' namespaces is
    /// kernel work that the in-process plumbing charges to the tester.
    tester_user_vms_s: Option<f64>,
    tester_system_vms_s: Option<f64>,
    tester_netns_threads_vms_s: Option<f64>,
    failed_samples: usize,
    ports_up: usize,
    load_before: String,
    /// The OVN daemons that ran: `ovn-northd 23.03.1`, ... (their `--version`).
    ovn_versions: Vec<String>,
    /// CPU seconds every process but the tester used in the `vms` stage (OVN's daemons).
    ovn_cpu_vms_s: Option<f64>,
    /// That divided by the machine's cores: the shortest the `vms` stage could be here, were
    /// OVN's work spread perfectly over every core with nothing else running.
    vms_floor_s: Option<f64>,
}

fn figures(run: usize, results_dir: String, r: &RunResults, whole_s: f64, load_before: String) -> Figures {
    let vms = r.stages.iter().find(|s| s.name == "vms");
    let split = vms.and_then(|s| s.tester_cpu.as_ref());
    let ovn_cpu = vms.map(|s| {
        s.cpu_s
            .iter()
            .filter(|(name, _)| name.as_str() != TESTER)
            .map(|(_, c)| c)
            .sum()
    });
    Figures {
        run,
        results_dir,
        vms_s: vms.and_then(|s| s.duration_s),
        whole_s,
        tester_cpu_vms_s: vms.and_then(|s| s.cpu_s.get(TESTER).copied()),
        tester_peak_rss_bytes: r
            .processes
            .iter()
            .find(|p| p.role == "tester")
            .map(|p| p.peak_rss_bytes),
        tester_user_vms_s: split.map(|t| t.user_s),
        tester_system_vms_s: split.map(|t| t.system_s),
        tester_netns_threads_vms_s: split.map(|t| t.by_thread.get(NETNS_THREAD_NAME).copied().unwrap_or(0.0)),
        failed_samples: r.summary.failures,
        ports_up: r.summary.ports_up,
        load_before,
        ovn_versions: ["ovn-northd", "ovn-controller", "ovs-vswitchd"]
            .iter()
            .filter_map(|b| r.environment.binaries.get(*b).map(|b| b.version.clone()))
            .collect(),
        ovn_cpu_vms_s: ovn_cpu,
        vms_floor_s: ovn_cpu.map(|c| c / r.environment.cpus.max(1) as f64),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.runs > 20 {
        return Err(crate::error::Failure::bad_input("--runs takes 1 to 20").into());
    }
    let scenario = crate::cli::run::load_scenario(&args.scenario, &args.overrides)?;
    let _ = std::fs::remove_dir_all(&args.results_dir);
    let mut all = Vec::new();
    for k in 1..=args.runs {
        let dir = args.results_dir.join(format!("run-{k}"));
        let options = RunOptions {
            scenario: args.scenario.clone(),
            results_dir: Some(dir.clone()),
            ovn_bin_dir: args.ovn_bin_dir.clone(),
            ovs_bin_dir: args.ovs_bin_dir.clone(),
            ..RunOptions::default()
        };
        if let Err(e) = crate::metrics::procfs::reset_own_peak_rss() {
            crate::output::warn(&format!(
                "cannot reset the tester's peak RSS before run {k} (/proc/self/clear_refs: {e}): \
                 its peak RSS is the highest since the first run"
            ));
        }
        let load_before = load_average();
        let start = Instant::now();
        let outcome = runner::run(&options, &scenario).await?;
        let whole_s = start.elapsed().as_secs_f64();
        if let runner::Verdict::Interrupted = outcome.verdict {
            return Err(crate::error::Failure::interrupted().into());
        }
        let f = figures(k, dir.display().to_string(), &outcome.results, whole_s, load_before);
        if !args.json {
            crate::output::info(&format!(
                "run {k}: vms {} s, whole {whole_s:.1} s, {} failed samples",
                f.vms_s.map_or("-".into(), |v| format!("{v:.1}")),
                f.failed_samples
            ));
        }
        all.push(f);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:>10} {:>10} {:>10}   per run",
        "figure", "target", "median", "vs upstream"
    );
    let median = |v: Vec<f64>| -> Option<f64> {
        let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    let row = |name: &str, target: f64, upstream: f64, values: Vec<Option<f64>>, unit: f64, fmt_unit: &str| {
        let per_run: Vec<String> = values
            .iter()
            .map(|v| v.map_or("-".into(), |v| format!("{:.2}", v / unit)))
            .collect();
        let m = median(values.iter().flatten().copied().collect());
        println!(
            "{:<28} {:>10} {:>10} {:>10}   {}",
            format!("{name} ({fmt_unit})"),
            format!("≤ {:.2}", target / unit),
            m.map_or("-".into(), |m| format!("{:.2}", m / unit)),
            m.map_or("-".into(), |m| format!("{:.2}×", m / upstream)),
            per_run.join(" ")
        );
    };
    row(
        "vms stage",
        TARGET_VMS_S,
        UPSTREAM_PROVISIONING_S,
        all.iter().map(|f| f.vms_s).collect(),
        1.0,
        "s",
    );
    row(
        "whole run",
        TARGET_WHOLE_S,
        UPSTREAM_PROVISIONING_S,
        all.iter().map(|f| Some(f.whole_s)).collect(),
        1.0,
        "s",
    );
    row(
        "tester CPU in vms",
        TARGET_TESTER_CPU_S,
        UPSTREAM_CLIENT_CPU_S,
        all.iter().map(|f| f.tester_cpu_vms_s).collect(),
        1.0,
        "s",
    );
    row(
        "tester peak RSS",
        TARGET_TESTER_RSS_BYTES,
        UPSTREAM_RSS_BYTES,
        all.iter().map(|f| f.tester_peak_rss_bytes.map(|b| b as f64)).collect(),
        1e6,
        "MB",
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10}   {}",
        "failed samples",
        "0",
        median(all.iter().map(|f| f.failed_samples as f64).collect()).map_or("-".into(), |m| format!("{m}")),
        "",
        all.iter()
            .map(|f| f.failed_samples.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let splits: Vec<String> = all
        .iter()
        .map(
            |f| match (f.tester_user_vms_s, f.tester_system_vms_s, f.tester_netns_threads_vms_s) {
                (Some(user), Some(system), Some(netns)) => {
                    format!("user {user:.2} + kernel {system:.2} (namespace threads {netns:.2})")
                }
                _ => "-".into(),
            },
        )
        .collect();
    println!("tester CPU in vms, s: {}", splits.join(", "));
    let floors: Vec<String> = all
        .iter()
        .map(|f| match (f.ovn_cpu_vms_s, f.vms_floor_s) {
            (Some(cpu), Some(floor)) => format!("{cpu:.1} CPU-s ({floor:.1} s)"),
            _ => "-".into(),
        })
        .collect();
    println!(
        "OVN's own CPU in vms, and the stage's floor on this machine's cores (CPU-s / cores): {}",
        floors.join(", ")
    );
    println!(
        "ports up per run: {}; load before each run: {}",
        all.iter().map(|f| f.ports_up.to_string()).collect::<Vec<_>>().join(" "),
        all.iter()
            .map(|f| format!("[{}]", f.load_before))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(first) = all.first() {
        println!("daemons: {}", first.ovn_versions.join(", "));
    }
    println!("upstream (same shape, its own code): provisioning 14.0 s, client CPU 3.95 s, RSS 189 MB");
    Ok(ExitCode::SUCCESS)
}
