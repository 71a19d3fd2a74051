//! `ovn-heater fake-chassis`: a farm of emulated chassis in this process, against any SB
//! (local, remote, or relays), until Ctrl-C or SIGTERM.
//!
//! This file only turns flags into [`ovn_emu::FarmOptions`], prints status lines and maps
//! errors to exit codes; the chassis themselves are `ovn-emu`'s.
//!
//! Must not know: how a chassis claims ports or what it monitors (that is `ovn-emu`).

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ovn_emu::{Farm, FarmOptions, FarmStatus};

use crate::error::Failure;

/// Run N emulated chassis against a Southbound DB until interrupted.
///
/// Each chassis has its own SB connection and monitor and behaves on the SB like
/// ovn-controller 23.03: it registers Encap/Chassis/Chassis_Private, claims the ports whose
/// `requested-chassis` names it (as when Neutron binds a port to that host), claims
/// chassisredirect ports when it is the active gateway, and acks `nb_cfg`. Chassis are named
/// PREFIX-1 .. PREFIX-N. A status line is printed every --status-interval. On Ctrl-C
/// or SIGTERM every chassis releases its ports and deletes its rows (as `ovn-appctl exit`
/// does; --no-cleanup leaves them, as a crash would) and the command exits 0.
/// The most chassis one process emulates: ten times the largest farm measured (docs/benchmarks.md);
/// without a limit a typo (`--count 100000000`) eats gigabytes within seconds.
pub const MAX_CHASSIS: usize = 10_000;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Southbound remote(s): unix:PATH or tcp:HOST:PORT, comma-separated for a cluster or relays.
    #[arg(long)]
    pub sb: String,
    /// How many chassis (at most 10000 per process).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Chassis names are PREFIX-1 .. PREFIX-N (hostnames too).
    #[arg(long, default_value = "emu")]
    pub prefix: String,
    /// Monitor every SB row (ovn-monitor-all=true) instead of ovn-controller's conditions.
    #[arg(long, overrides_with = "no_monitor_all")]
    pub monitor_all: bool,
    /// ovn-controller's conditional monitoring (the default here; for symmetry with the other
    /// commands' --no-monitor-all).
    #[arg(long, overrides_with = "monitor_all")]
    pub no_monitor_all: bool,
    /// The first N chassis are gateway chassis (ovn-cms-options=enable-chassis-as-gw).
    #[arg(long, default_value_t = 0)]
    pub gateways: usize,
    /// ovn-bridge-mappings of every chassis, e.g. physnet1:br-ex.
    #[arg(long, default_value = "")]
    pub bridge_mappings: String,
    /// ovn-cms-options of every chassis.
    #[arg(long, default_value = "")]
    pub cms_options: String,
    /// Simulated ovn-controller processing time per batch of SB updates: 20ms, 1s, or a plain
    /// number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::cli::duration::parse)]
    pub processing_delay: Duration,
    /// The old spelling of --processing-delay, where a plain number is milliseconds.
    #[arg(long, hide = true, value_name = "MS", conflicts_with = "processing_delay", value_parser = crate::cli::duration::parse_bare_ms)]
    pub processing_delay_ms: Option<Duration>,
    /// New SB connections per second while starting (0: all at once).
    #[arg(long, default_value_t = 100.0)]
    pub connect_rate: f64,
    /// Inactivity probe of each SB connection, as ovn-controller's ovn-remote-probe-interval
    /// (5 s by default there too); 0 disables it. 30s, 2m, or a plain number of seconds. Scale
    /// tests usually raise it: a busy SB that answers late makes every chassis reconnect and
    /// resync. (Old spelling: --probe-interval-s.)
    #[arg(long, alias = "probe-interval-s", value_name = "DURATION", default_value = "5s", value_parser = crate::cli::duration::parse)]
    pub probe_interval: Duration,
    /// Encap IP of PREFIX-1; the others follow. Only written to the SB, never used for traffic.
    #[arg(long, default_value = "198.18.0.1")]
    pub first_encap_ip: Ipv4Addr,
    /// Do not claim ports because their requested-chassis names a chassis of the farm.
    #[arg(long)]
    pub no_bind_requested: bool,
    /// On exit, leave the chassis rows and port claims in the SB.
    #[arg(long)]
    pub no_cleanup: bool,
    /// Each chassis decodes its own copy of every SB update (by default an update the farm's
    /// chassis receive byte for byte the same, as with --monitor-all, is decoded once for all).
    #[arg(long)]
    pub no_shared_decode: bool,
    /// Time between status lines (0: none): 500ms, 5s, or a plain number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::duration::parse)]
    pub status_interval: Duration,
    /// Print status lines as JSON objects (one per line).
    #[arg(long)]
    pub json: bool,
    /// For ssl: remotes. Under SB RBAC each chassis needs its own certificate (CN = its name):
    /// put {chassis} in the file names, e.g. --certificate 'pki/{chassis}-cert.pem'.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = check(&args)?;
    let started = Instant::now();
    let farm = Farm::start(&args.sb, args.count, &args.prefix, options)
        .await
        .map_err(farm_failure)
        .with_context(|| format!("cannot start {} emulated chassis against {}", args.count, args.sb))?;
    tracing::info!(count = args.count, sb = %args.sb, "emulated chassis started");

    // Listeners live across iterations: a Ctrl-C that lands while a status line prints must
    // still end the loop (a listener created afterwards would miss it).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let interval = args.status_interval;
    let mut ticker = (!interval.is_zero()).then(|| tokio::time::interval(interval));
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = tick => print_status(&args, &farm.status(), started, false),
        }
    }
    let cleanup = !args.no_cleanup;
    let status = farm.status();
    farm.stop(cleanup)
        .await
        .map_err(farm_failure)
        .context("stopping the emulated chassis")?;
    print_status(&args, &status, started, true);
    Ok(ExitCode::SUCCESS)
}

fn check(args: &Args) -> anyhow::Result<FarmOptions> {
    let remotes = ovsdb::Remote::parse_list(&args.sb).map_err(|e| Failure::bad_input(format!("--sb: {e}")))?;
    let tls = if remotes.iter().any(|r| matches!(r, ovsdb::Remote::Ssl { .. })) {
        // Files of the first chassis are loaded now, so a missing or bad one is bad input (2).
        args.tls.for_chassis(&format!("{}-1", args.prefix)).config(&args.sb)?;
        let files = args.tls.clone();
        Some(ovn_emu::ChassisTls::new(move |name| files.for_chassis(name).load()))
    } else {
        None
    };
    if args.count == 0 {
        return Err(Failure::bad_input("--count must be at least 1").into());
    }
    if args.count > MAX_CHASSIS {
        return Err(Failure::bad_input(format!(
            "--count {} is more than {MAX_CHASSIS} chassis per process (each holds an SB connection and its own replica); for more, run several fake-chassis with distinct --prefix and --first-encap-ip",
            args.count
        ))
        .into());
    }
    if args.prefix.is_empty() {
        return Err(Failure::bad_input("--prefix must not be empty (chassis are named PREFIX-1 ..)").into());
    }
    if args.gateways > args.count {
        return Err(Failure::bad_input(format!(
            "--gateways {} is more than --count {}",
            args.gateways, args.count
        ))
        .into());
    }
    if !(args.connect_rate >= 0.0 && args.connect_rate.is_finite()) {
        return Err(Failure::bad_input("--connect-rate must be a number of connections per second, 0 or more").into());
    }
    let last_ip = u32::from(args.first_encap_ip).checked_add(u32::try_from(args.count - 1).unwrap_or(u32::MAX));
    if last_ip.is_none() {
        return Err(Failure::bad_input(format!(
            "--first-encap-ip {} leaves no room for {} chassis; pick a lower address",
            args.first_encap_ip, args.count
        ))
        .into());
    }
    Ok(FarmOptions {
        monitor_all: args.monitor_all && !args.no_monitor_all,
        bridge_mappings: args.bridge_mappings.clone(),
        cms_options: args.cms_options.clone(),
        gateways: args.gateways,
        processing_delay: args.processing_delay_ms.unwrap_or(args.processing_delay),
        bind_requested: !args.no_bind_requested,
        connect_rate: args.connect_rate,
        first_encap_ip: args.first_encap_ip,
        inactivity_probe: (!args.probe_interval.is_zero()).then_some(args.probe_interval),
        tls,
        shared_decode: !args.no_shared_decode,
        ..FarmOptions::default()
    })
}

/// A wrong remote is the user's to fix (2); an SB that cannot be reached or fails is the lab's (3).
fn farm_failure(e: ovn_emu::Error) -> anyhow::Error {
    let bad_input = match &e {
        ovn_emu::Error::Southbound { source, .. } | ovn_emu::Error::Ovsdb { source, .. } => {
            matches!(
                **source,
                ovsdb::Error::InvalidRemote { .. }
                    | ovsdb::Error::Schema(_)
                    | ovsdb::Error::TlsConfig { .. }
                    | ovsdb::Error::Tls { .. }
            )
        }
        ovn_emu::Error::InvalidSpec { .. } => true,
        _ => false,
    };
    let failure = if bad_input {
        Failure::bad_input(e.to_string())
    } else {
        Failure::environment(format!(
            "{e}\nfix: check that the Southbound ovsdb-server is running, not overloaded, and that --sb names it"
        ))
    };
    anyhow::Error::new(failure)
}

/// This process's resident memory in bytes (`VmRSS`), when /proc tells.
pub fn own_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[allow(clippy::print_stdout)]
fn print_status(args: &Args, s: &FarmStatus, started: Instant, last: bool) {
    let rss = own_rss_bytes().unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let line = serde_json::json!({
            "elapsed_s": (elapsed * 10.0).round() / 10.0,
            "final": last,
            "chassis": s.chassis,
            "connected": s.connected,
            "registered": s.registered,
            "ports_bound": s.ports_bound,
            "ports_claimed": s.ports_claimed,
            "ports_up": s.ports_up,
            "min_nb_cfg": s.min_nb_cfg,
            "reconnects": s.reconnects,
            "errors": s.errors,
            "rows_held": s.rows_held,
            "shared_decode": s.shared_decode.map(|d| serde_json::json!({
                "lookups": d.lookups,
                "hits": d.hits,
                "unframed_hits": d.unframed_hits,
                "shared_decodes": d.shared_decodes,
                "decodes_per_update": d.decodes_per_lookup(),
            })),
            "rss_bytes": rss,
            "last_error": s.last_error,
        });
        println!("{line}");
        return;
    }
    let nb_cfg = s.min_nb_cfg.map_or_else(|| "-".to_owned(), |n| n.to_string());
    println!(
        "{}{:>7.1}s  {}: {} chassis, {} connected, {} registered | ports {} bound, {} claimed, {} up | nb_cfg {} | \
         reconnects {}, errors {} | rows held {}, RSS {} MiB",
        if last { "final " } else { "" },
        elapsed,
        args.prefix,
        s.chassis,
        s.connected,
        s.registered,
        s.ports_bound,
        s.ports_claimed,
        s.ports_up,
        nb_cfg,
        s.reconnects,
        s.errors,
        s.rows_held,
        rss / (1024 * 1024),
    );
    if let Some(e) = &s.last_error {
        if !last {
            tracing::warn!("last chassis error: {e}");
        }
    }
}
