//! `ovn-heater bench lab`: how long real chassis take to come up and register in the SB, and
//! what one idle real chassis costs in memory (its ovsdb-server + ovs-vswitchd +
//! ovn-controller). Prints figures; never asserts.
//!
//! Must not know: how the lab starts things (that is `ovn-lab`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ovn_lab::{Lab, LabSpec, ProcessRole};

use crate::cli::lab::{lab_failure, up_interruptible};

/// Bring up 1, 10, 30 real chassis (by default): seconds to all-registered, idle RSS per chassis.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Chassis counts to measure, one lab each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,30")]
    pub chassis: Vec<usize>,
    /// Parent of the labs' run dirs (each run gets `<dir>/chassis-<N>`; logs are kept).
    #[arg(long, default_value = "/tmp/ovn-heater-bench-lab")]
    pub run_dir: PathBuf,
    /// How long to let the lab idle before sampling RSS: 10s, 1m, or a plain number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::duration::parse)]
    pub settle: Duration,
    /// Take OVN binaries from here (see `lab up --help`).
    #[arg(long)]
    pub ovn_bin_dir: Option<PathBuf>,
    /// Take OVS binaries from here.
    #[arg(long)]
    pub ovs_bin_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured lab.
struct Row {
    chassis: usize,
    up_secs: f64,
    down_secs: f64,
    /// Sum of the three daemons of each chassis, in MB.
    per_chassis_mb: Vec<f64>,
    /// Mean RSS per daemon kind, in MB.
    per_role_mb: BTreeMap<String, f64>,
    central_mb: f64,
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.chassis.is_empty() || args.chassis.contains(&0) {
        return Err(crate::error::Failure::bad_input("--chassis needs counts of at least 1, e.g. 1,10,30").into());
    }
    let mut rows = Vec::new();
    for &n in &args.chassis {
        let run_dir = args.run_dir.join(format!("chassis-{n}"));
        let _ = std::fs::remove_dir_all(&run_dir);
        let mut spec = LabSpec::new(&run_dir).with_chassis(n, 0);
        spec.binaries.ovn_bin_dir = args.ovn_bin_dir.clone();
        spec.binaries.ovs_bin_dir = args.ovs_bin_dir.clone();
        spec.registration_timeout = Duration::from_secs(60 + 10 * n as u64);
        tracing::info!(chassis = n, "bringing up");
        let start = Instant::now();
        let lab = up_interruptible(spec)
            .await
            .with_context(|| format!("bringing up {n} chassis"))?;
        let up_secs = start.elapsed().as_secs_f64();
        tokio::select! {
            _ = tokio::time::sleep(args.settle) => {}
            _ = tokio::signal::ctrl_c() => {
                lab.down().map_err(lab_failure)?;
                return Err(crate::error::Failure::interrupted().into());
            }
        }
        let row = sample(&lab, n, up_secs);
        let start = Instant::now();
        lab.down().map_err(lab_failure)?;
        rows.push(Row {
            down_secs: start.elapsed().as_secs_f64(),
            ..row
        });
    }

    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "chassis": r.chassis, "up_seconds": r.up_secs, "down_seconds": r.down_secs,
                    "rss_mb_per_chassis_mean": mean(&r.per_chassis_mb),
                    "rss_mb_per_chassis_max": r.per_chassis_mb.iter().cloned().fold(0.0, f64::max),
                    "rss_mb_per_daemon_mean": r.per_role_mb, "central_rss_mb": r.central_mb,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>13} {:>10} {:>10} {:>10} {:>11} {:>9}",
        "chassis",
        "up (s)",
        "s/chassis",
        "RSS/chassis",
        "max RSS",
        "ovsdb",
        "vswitchd",
        "controller",
        "central",
        "down (s)"
    );
    for r in &rows {
        let role = |k: &str| r.per_role_mb.get(k).copied().unwrap_or(0.0);
        println!(
            "{:>8} {:>10.2} {:>12.3} {:>11.1} MB {:>10.1} MB {:>7.1} MB {:>7.1} MB {:>7.1} MB {:>8.1} MB {:>9.2}",
            r.chassis,
            r.up_secs,
            r.up_secs / r.chassis as f64,
            mean(&r.per_chassis_mb),
            r.per_chassis_mb.iter().cloned().fold(0.0, f64::max),
            role("chassis-db"),
            role("vswitchd"),
            role("controller"),
            r.central_mb,
            r.down_secs
        );
    }
    println!(
        "up = `lab up` until every chassis is in SB Chassis (includes central start); RSS sampled idle after {:?}",
        args.settle
    );
    Ok(ExitCode::SUCCESS)
}

fn sample(lab: &Lab, chassis: usize, up_secs: f64) -> Row {
    let status = lab.status();
    let mb = |p: &ovn_lab::ProcessStatus| p.rss_bytes.unwrap_or(0) as f64 / 1e6;
    let mut per_chassis: BTreeMap<String, f64> = BTreeMap::new();
    let mut per_role: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut central_mb = 0.0;
    for p in &status.processes {
        match &p.process.chassis {
            Some(c) => {
                *per_chassis.entry(c.clone()).or_default() += mb(p);
                per_role.entry(p.process.role.to_string()).or_default().push(mb(p));
            }
            None if p.process.role != ProcessRole::SbRelay => central_mb += mb(p),
            None => {}
        }
    }
    Row {
        chassis,
        up_secs,
        down_secs: 0.0,
        per_chassis_mb: per_chassis.into_values().collect(),
        per_role_mb: per_role.into_iter().map(|(k, v)| (k, mean(&v))).collect(),
        central_mb,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}
