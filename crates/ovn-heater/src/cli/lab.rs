//! `ovn-heater lab up|status|down`: a local OVN lab that outlives the command, found again
//! through `DIR/lab.json`.
//!
//! This file only turns flags into an [`ovn_lab::LabSpec`], prints results and maps
//! [`ovn_lab::Error`]s to exit codes; everything else is `ovn-lab`'s. [`LabOptions`] and
//! [`lab_failure`] are shared with `run` so both start labs the same way.
//!
//! Must not know: how daemons or namespaces are handled (that is `ovn-lab`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ovn_lab::{BinaryDirs, Lab, LabSpec};

use crate::error::Failure;

/// Start, inspect and stop a local OVN lab.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Start central DBs, northd and real chassis; print the NB/SB remotes and leave it running.
    ///
    /// Needs root. Everything lives in network namespaces named after the run dir (or --name);
    /// logs, sockets and DIR/lab.json stay in the run dir. Ctrl-C tears down what was started.
    #[command(after_help = "Examples:
  sudo ovn-heater lab up --run-dir /tmp/lab --real-chassis 2
  sudo ovn-heater lab up --run-dir /tmp/lab --clustered --relays 2 --ssl
  sudo ovn-heater lab up --run-dir /tmp/lab --real-chassis 2 --no-monitor-all --remote-probe-interval 30s --registration-timeout 5m")]
    Up(UpArgs),
    /// Show the lab's processes (alive? RSS) and the chassis registered in the SB.
    #[command(after_help = "Example:
  ovn-heater lab status --run-dir /tmp/lab --json")]
    Status(StatusArgs),
    /// Stop every process and delete every namespace of the lab; keeps the logs. Idempotent,
    /// and also cleans up a lab whose `up` failed or was interrupted.
    #[command(after_help = "Examples:
  sudo ovn-heater lab down --run-dir /tmp/lab
  sudo ovn-heater lab down --run-dir /tmp/lab --json")]
    Down(DownArgs),
    /// Issue certificates from a lab's CA (a lab started with --ssl): a key and certificate per
    /// name, CN = the name, plus cacert.pem, into --out. For fake-chassis farms in other
    /// processes or on other hosts: under SB RBAC each chassis needs its own.
    ///
    /// Example: `ovn-heater lab certs --run-dir /tmp/lab --prefix emu --count 300 --out /tmp/farm-pki`,
    /// then `ovn-heater fake-chassis --sb ssl:… --prefix emu --count 300 --private-key
    /// '/tmp/farm-pki/{chassis}-privkey.pem' --certificate '/tmp/farm-pki/{chassis}-cert.pem'
    /// --ca-cert /tmp/farm-pki/cacert.pem`; `--json` lists the files written.
    Certs(CertsArgs),
}

#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    /// The lab's run dir (its CA is DIR/pki/cacert.pem and cakey.pem).
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Certificates for PREFIX-1 .. PREFIX-COUNT (fake-chassis's chassis names).
    #[arg(long, requires = "count")]
    pub prefix: Option<String>,
    /// How many chassis names PREFIX-1 .. PREFIX-COUNT.
    #[arg(long, requires = "prefix")]
    pub count: Option<usize>,
    /// Also (or only) these names (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Where the files go (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON document on stdout: out, ca_cert, sb_remote_for_chassis and per name its
    /// private_key and certificate files.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Directory for DB files, sockets, logs and lab.json.
    #[arg(long)]
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub lab: LabOptions,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DownArgs {
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The lab's --name, if it had one (only needed when lab.json is gone).
    #[arg(long)]
    pub name: Option<String>,
    /// Print one JSON document on stdout: run_dir, processes_stopped, netns_deleted,
    /// leftovers (exit 3 unless empty).
    #[arg(long)]
    pub json: bool,
}

/// How a lab is shaped; shared by `lab up` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct LabOptions {
    /// Prefix of the lab's network namespaces (default: derived from the run dir).
    #[arg(long)]
    pub name: Option<String>,
    /// Real compute chassis (each: netns + ovsdb-server + ovs-vswitchd + ovn-controller). 0 = central only.
    #[arg(long, default_value_t = 0)]
    pub real_chassis: usize,
    /// Real network nodes (gateway chassis with br-ex on the provider network).
    #[arg(long, default_value_t = 0)]
    pub network_nodes: usize,
    /// 3-member RAFT clusters for NB and SB instead of standalone servers.
    #[arg(long)]
    pub clustered: bool,
    /// RAFT election timer (with --clustered): 1s, 1500ms. A unit is required (a plain number
    /// used to mean milliseconds).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::duration::parse_with_unit)]
    pub election_timer: Option<Duration>,
    /// SB relays; chassis connect through them.
    #[arg(long, default_value_t = 0)]
    pub relays: usize,
    /// ovn-northd --n-threads.
    #[arg(long, default_value_t = 1)]
    pub northd_threads: usize,
    /// Inactivity probe of the standalone NB/SB servers toward their clients (Connection rows):
    /// 60s, 500ms. A unit is required (a plain number used to mean milliseconds).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::duration::parse_with_unit)]
    pub db_inactivity_probe: Option<Duration>,
    /// ovn-monitor-all on every chassis (the default).
    #[arg(long, overrides_with = "no_monitor_all")]
    pub monitor_all: bool,
    /// ovn-controller's conditional monitoring on every chassis (ovn-monitor-all=false; was
    /// `--monitor-all false`).
    #[arg(long, overrides_with = "monitor_all")]
    pub no_monitor_all: bool,
    /// ovn-remote-probe-interval of every chassis: 60s, 500ms. A unit is required (a plain
    /// number used to mean milliseconds).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::cli::duration::parse_with_unit)]
    pub remote_probe_interval: Duration,
    /// Underlay network of the chassis (encap IPs); only exists inside the lab's namespaces.
    #[arg(long, default_value = "192.168.0.0/16")]
    pub node_net: String,
    /// Provider network behind br-ex; the external host takes its first address.
    #[arg(long, default_value = "172.16.0.0/24")]
    pub external_net: String,
    /// Take ovn-northd/ovn-controller and the OVN schemas from here (a bin dir or build tree).
    #[arg(long)]
    pub ovn_bin_dir: Option<PathBuf>,
    /// Take ovsdb-server/ovs-vswitchd/ovs-vsctl and vswitch.ovsschema from here.
    #[arg(long)]
    pub ovs_bin_dir: Option<PathBuf>,
    /// How long to wait for every chassis to register in the SB: 3m, or a plain number of
    /// seconds.
    #[arg(long, value_name = "DURATION", default_value = "180s", value_parser = crate::cli::duration::parse)]
    pub registration_timeout: Duration,
    /// TLS everywhere (pssl:/ssl: on loopback, a PKI for the run in DIR/pki, SB RBAC for chassis).
    #[arg(long)]
    pub ssl: bool,
}

impl LabOptions {
    /// The spec for a lab in `run_dir`; bad CIDRs are exit code 2.
    pub fn to_spec(&self, run_dir: PathBuf) -> anyhow::Result<LabSpec> {
        let cidr = |flag: &str, v: &str| {
            v.parse::<ipnet::Ipv4Net>()
                .map(|n| n.trunc())
                .map_err(|_| Failure::bad_input(format!("--{flag} {v:?} is not an IPv4 CIDR such as 192.168.0.0/16")))
        };
        let mut spec = LabSpec::new(run_dir).with_chassis(self.real_chassis, self.network_nodes);
        spec.name = self.name.clone();
        spec.clustered = self.clustered;
        spec.election_timer_ms = self.election_timer.map(crate::cli::duration::millis);
        spec.n_relays = self.relays;
        spec.northd_threads = self.northd_threads;
        spec.db_inactivity_probe_ms = self.db_inactivity_probe.map(crate::cli::duration::millis);
        spec.ssl = self.ssl;
        spec.monitor_all = !self.no_monitor_all;
        spec.remote_probe_interval_ms = crate::cli::duration::millis(self.remote_probe_interval);
        spec.node_net = cidr("node-net", &self.node_net)?;
        spec.external_net = cidr("external-net", &self.external_net)?;
        spec.binaries = BinaryDirs {
            ovn_bin_dir: self.ovn_bin_dir.clone(),
            ovs_bin_dir: self.ovs_bin_dir.clone(),
        };
        spec.registration_timeout = self.registration_timeout;
        Ok(spec)
    }
}

pub use crate::workload::lab::{lab_failure, up_interruptible};

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Up(a) => up(a).await,
        Action::Status(a) => status(a).await,
        Action::Down(a) => down(a),
        Action::Certs(a) => certs(a),
    }
}

#[allow(clippy::print_stdout)]
fn certs(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let mut names = args.names.clone();
    if let (Some(prefix), Some(count)) = (&args.prefix, args.count) {
        names.extend((1..=count).map(|i| format!("{prefix}-{i}")));
    }
    if names.is_empty() {
        return Err(Failure::bad_input("give --prefix P --count N (chassis P-1 .. P-N) and/or --name NAME").into());
    }
    let lab = Lab::attach(&args.run_dir).map_err(lab_failure)?;
    let Some(pki) = lab.pki().map_err(lab_failure)? else {
        return Err(Failure::bad_input(format!(
            "the lab in {} runs without SSL: start it with `lab up --ssl` (or enable_ssl: true)",
            args.run_dir.display()
        ))
        .into());
    };
    let mut issued = Vec::new();
    for name in &names {
        let files = pki.issue_into(&args.out, name).map_err(lab_failure)?;
        issued.push((name, files));
    }
    if args.json {
        let doc = serde_json::json!({
            "out": args.out.display().to_string(),
            "ca_cert": issued.first().map(|(_, files)| files.ca_cert.display().to_string()),
            "sb_remote_for_chassis": lab.sb_remote_for_chassis(),
            "certificates": issued.iter().map(|(name, files)| serde_json::json!({
                "name": name,
                "private_key": files.private_key.display().to_string(),
                "certificate": files.certificate.display().to_string(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} certificates in {} (NAME-privkey.pem, NAME-cert.pem, cacert.pem); chassis SB remote: {}",
        names.len(),
        args.out.display(),
        lab.sb_remote_for_chassis()
    );
    Ok(ExitCode::SUCCESS)
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    use std::fmt::Write as _;
    let spec = args.lab.to_spec(args.run_dir.clone())?;
    let n_chassis = spec.chassis.len();
    let start = Instant::now();
    let lab = up_interruptible(spec).await.context("`ovn-heater lab up` failed")?;
    let elapsed = start.elapsed();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&summary_json(&lab))? + "\n";
    } else {
        let _ = writeln!(
            out,
            "lab up in {:.1} s ({n_chassis} real chassis registered), prefix {}",
            elapsed.as_secs_f64(),
            lab.prefix()
        );
        let _ = writeln!(out, "NB remote:             {}", lab.nb_remote());
        let _ = writeln!(out, "SB remote:             {}", lab.sb_remote());
        let _ = writeln!(out, "SB remote for chassis: {}", lab.sb_remote_for_chassis());
        if let Some(tls) = lab.client_tls_files() {
            let _ = writeln!(
                out,
                "TLS (ovn-heater's):    --private-key {} --certificate {} --ca-cert {}{}",
                tls.private_key.display(),
                tls.certificate.display(),
                tls.ca_cert.display(),
                if lab.rbac() { " (SB RBAC on for chassis)" } else { "" }
            );
        }
        if let Some(h) = lab.external_host() {
            let _ = writeln!(
                out,
                "external host:         {} on {} (netns {})",
                h.ip(),
                h.network(),
                h.netns()
            );
        }
        for c in lab.chassis() {
            let _ = writeln!(
                out,
                "chassis {:<14} {:<12} encap {:<15} netns {}",
                c.name(),
                c.role().to_string(),
                c.encap_ip(),
                c.netns()
            );
        }
        let _ = writeln!(
            out,
            "state:                 {}",
            lab.run_dir().join("lab.json").display()
        );
        let _ = writeln!(
            out,
            "stop with:             ovn-heater lab down --run-dir {}",
            args.run_dir.display()
        );
    }
    // The lab is up and on record in lab.json: it stays up even if stdout is gone.
    lab.detach();
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, out.as_bytes()).and_then(|_| std::io::Write::flush(&mut stdout));
    Ok(ExitCode::SUCCESS)
}

fn summary_json(lab: &Lab) -> serde_json::Value {
    serde_json::json!({
        "run_dir": lab.run_dir(),
        "prefix": lab.prefix(),
        "nb_remote": lab.nb_remote(),
        "sb_remote": lab.sb_remote(),
        "sb_remote_for_chassis": lab.sb_remote_for_chassis(),
        "ssl": lab.ssl(),
        "rbac": lab.rbac(),
        "tls": lab.client_tls_files(),
        "external_host": lab.external_host().map(|h| h.ip().to_string()),
        "chassis": lab.chassis().iter().map(|c| serde_json::json!({
            "name": c.name(), "role": c.role().to_string(), "hostname": c.hostname(),
            "encap_ip": c.encap_ip().to_string(), "netns": c.netns(),
        })).collect::<Vec<_>>(),
        "versions": lab.versions(),
    })
}

#[allow(clippy::print_stdout)]
async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::attach(&args.run_dir).map_err(lab_failure)?;
    let status = lab.status();
    let registered = tokio::time::timeout(Duration::from_secs(15), lab.registered_chassis()).await;
    let registered = match registered {
        Ok(Ok(names)) => Ok(names),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the SB did not answer within 15 s".to_owned()),
    };
    let dead = status.processes.iter().filter(|p| !p.alive).count();
    let mut raft_roles = Vec::new();
    for p in &status.processes {
        raft_roles.push(if p.alive { lab.raft_role(&p.process).await } else { None });
    }
    if args.json {
        let v = serde_json::json!({
            "summary": summary_json(&lab),
            "complete": status.complete,
            "processes": status.processes.iter().zip(&raft_roles).map(|(p, raft)| serde_json::json!({
                "name": p.process.name, "role": p.process.role.to_string(), "pid": p.process.pid,
                "alive": p.alive, "rss_bytes": p.rss_bytes, "log": p.process.log_path, "raft_role": raft,
            })).collect::<Vec<_>>(),
            "registered_chassis": registered.as_ref().ok(),
            "sb_error": registered.as_ref().err(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "lab {} in {}{}",
            lab.prefix(),
            lab.run_dir().display(),
            if status.complete {
                ""
            } else {
                " (bring-up did not finish)"
            }
        );
        println!("NB remote: {}", lab.nb_remote());
        println!("SB remote: {}", lab.sb_remote());
        println!(
            "{:<28} {:<11} {:>8} {:>6} {:>9}  RAFT",
            "PROCESS", "ROLE", "PID", "ALIVE", "RSS MB"
        );
        for (p, raft) in status.processes.iter().zip(&raft_roles) {
            let rss = p
                .rss_bytes
                .map(|b| format!("{:.1}", b as f64 / 1e6))
                .unwrap_or_else(|| "-".into());
            println!(
                "{:<28} {:<11} {:>8} {:>6} {:>9}  {}",
                p.process.name,
                p.process.role.to_string(),
                p.process.pid,
                if p.alive { "yes" } else { "NO" },
                rss,
                raft.as_deref().unwrap_or("")
            );
        }
        match &registered {
            Ok(names) => println!("SB chassis ({}): {}", names.len(), names.join(" ")),
            Err(e) => println!("SB chassis: unknown ({e})"),
        }
    }
    if dead > 0 || registered.is_err() {
        return Err(Failure::environment(format!(
            "{dead} lab process(es) not running{}; logs in {}",
            registered
                .err()
                .map(|e| format!(", SB unreachable: {e}"))
                .unwrap_or_default(),
            lab.run_dir().display()
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let report = Lab::down_run_dir(&args.run_dir, args.name.as_deref())
        .map_err(lab_failure)
        .context("`ovn-heater lab down` failed")?;
    if args.json {
        let doc = serde_json::json!({
            "run_dir": args.run_dir.display().to_string(),
            "processes_stopped": report.processes_stopped,
            "netns_deleted": report.netns_deleted,
            "leftovers": report.leftovers,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "lab down: {} process(es) stopped, {} namespace(s) deleted; logs kept in {}",
            report.processes_stopped,
            report.netns_deleted.len(),
            args.run_dir.display()
        );
    }
    if !report.leftovers.is_empty() {
        return Err(Failure::environment(format!("left behind: {}", report.leftovers.join(", "))).into());
    }
    Ok(ExitCode::SUCCESS)
}
