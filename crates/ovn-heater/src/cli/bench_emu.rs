//! `ovn-heater bench emu`: what an emulated-chassis farm costs, and what it makes the central
//! components do, at several farm sizes.
//!
//! For each chassis count N it starts its own NB + SB `ovsdb-server` and `ovn-northd` (a small
//! helper here: the benchmark must not depend on a lab's namespaces), starts
//! `ovn-heater fake-chassis` as a separate process (so its RSS and CPU are its own), creates one
//! tenant network with N x `--vms-per-chassis` ports in NB batches, each port requesting its
//! chassis as Neutron does when it binds a port to a host, and waits for NB
//! `Logical_Switch_Port.up` on every port (event-driven, from a monitor). It prints a table:
//! port-up latency, farm RSS, and CPU seconds of the farm against SB ovsdb-server, NB and northd.
//! With `--ssl` the farm talks TLS to the SB's `pssl:` listener with `role=ovn-controller`
//! (SB RBAC), each chassis with its own certificate, as `enable_ssl` labs run.
//!
//! Must not know: how chassis are emulated (it only runs the `fake-chassis` command).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ovsdb::{Client, ClientOptions, Condition, Mutation, Row, RowEvent, TableMonitor, Transaction, Value};
use tokio::sync::Notify;

use crate::error::{Failure, EXIT_CHECK_FAILED};

use super::find_binary;

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const NB_DB: &str = "OVN_Northbound";
const FARM_PREFIX: &str = "emu";

/// Emulated chassis: farm RSS/CPU and port-up latency at 100..1000 chassis.
///
/// Starts a private NB/SB/northd per size in a temp dir (or --run-dir), runs the farm as a
/// separate `ovn-heater fake-chassis` process, binds one tenant network's ports round-robin to
/// the chassis (NB `options:requested-chassis`, as Neutron sets it), and measures until every
/// port is up in the NB. Port-up latency runs from sending the NB transaction that created the
/// port to the NB update that set `up=true`. CPU seconds are those of the binding phase.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Farm sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000")]
    pub chassis: Vec<usize>,
    /// VMs (ports) per chassis.
    #[arg(long, default_value_t = 10)]
    pub vms_per_chassis: usize,
    /// Ports created per NB transaction; the next batch starts once this one is up.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Every chassis monitors every SB row (ovn-monitor-all=true). The default here; for
    /// the command line's symmetry with `lab up` and `fake-chassis`.
    #[arg(long, overrides_with = "no_monitor_all")]
    pub monitor_all: bool,
    /// Use ovn-controller's conditional monitoring instead of ovn-monitor-all.
    // `alias`: the old spelling, kept (hidden) so existing scripts still work.
    #[arg(long, alias = "conditional", overrides_with = "monitor_all")]
    pub no_monitor_all: bool,
    /// New SB connections per second while the farm starts.
    #[arg(long, default_value_t = 200.0)]
    pub connect_rate: f64,
    /// Simulated ovn-controller processing time per batch of SB updates: 20ms, 1s, or a plain
    /// number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::cli::duration::parse)]
    pub processing_delay: Duration,
    /// The old spelling of --processing-delay, where a plain number is milliseconds.
    #[arg(long, hide = true, value_name = "MS", conflicts_with = "processing_delay", value_parser = crate::cli::duration::parse_bare_ms)]
    pub processing_delay_ms: Option<Duration>,
    /// The farm's SB inactivity probe (ovn-remote-probe-interval; 0 disables): 30s, 2m, or a
    /// plain number of seconds.
    #[arg(long, alias = "probe-interval-s", value_name = "DURATION", default_value = "60s", value_parser = crate::cli::duration::parse)]
    pub probe_interval: Duration,
    /// Give up if the farm has not registered after this long: 10m, or a plain number of
    /// seconds (default: 120 s, plus the staggered start, plus 50 ms per chassis: each
    /// registration is sent to every chassis already connected, so registering N chassis costs
    /// the SB N² updates).
    #[arg(long, alias = "register-timeout-s", value_name = "DURATION", value_parser = crate::cli::duration::parse)]
    pub register_timeout: Option<Duration>,
    /// Give up on a batch whose ports are not all up after this long: 5m, or a plain number of
    /// seconds.
    #[arg(long, alias = "batch-timeout-s", value_name = "DURATION", default_value = "300s", value_parser = crate::cli::duration::parse)]
    pub batch_timeout: Duration,
    /// Where DBs, sockets and logs go (kept); default: a temp dir removed afterwards.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The farm reaches the SB over TLS, each chassis with its own certificate, on a listener
    /// with SB RBAC (role=ovn-controller), as labs with enable_ssl run.
    #[arg(long)]
    pub ssl: bool,
    /// Each chassis decodes its own copy of every SB update (the farm's behaviour before shared
    /// decoding; for comparison).
    #[arg(long)]
    pub no_shared_decode: bool,
}

impl Args {
    /// Monitor-all unless --no-monitor-all (or the old --conditional) came last.
    fn monitor_all(&self) -> bool {
        !self.no_monitor_all
    }

    /// --processing-delay, or the old --processing-delay-ms.
    fn processing_delay(&self) -> Duration {
        self.processing_delay_ms.unwrap_or(self.processing_delay)
    }
}

/// What one farm size measured.
#[derive(Debug, Default, serde::Serialize)]
struct Measurement {
    chassis: usize,
    ports: usize,
    ports_up: usize,
    register_s: f64,
    bind_s: f64,
    up_p50_ms: f64,
    up_p99_ms: f64,
    up_max_ms: f64,
    farm_rss_mib: f64,
    farm_peak_rss_mib: f64,
    farm_rss_per_chassis_kib: f64,
    farm_rows_held: u64,
    register_cpu: PhaseCpu,
    bind_cpu: PhaseCpu,
    ssl: bool,
    shared_decode: bool,
    /// Decodes per SB notification received by the farm (1.0: every chassis decodes its own).
    decodes_per_update: Option<f64>,
    /// The farm's update cache counters at the end (lookups, hits, unframed hits, shared
    /// decodes): notifications decoded on first sight are `lookups - hits - shared_decodes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_counts: Option<serde_json::Value>,
    /// Binding-phase CPU of the farm over that of the SB ovsdb-server.
    farm_over_sb: f64,
    /// The process with the most CPU in the binding phase (what bounds the bind time).
    busiest_in_bind: &'static str,
    targets: Vec<Target>,
}

/// One of the farm's efficiency targets (issue #20), as measured.
#[derive(Debug, serde::Serialize)]
struct Target {
    what: &'static str,
    measured: f64,
    limit: f64,
    met: bool,
}

/// Farm CPU at most half the SB server's in the binding phase (at 1,000 chassis and more).
const FARM_OVER_SB_MAX: f64 = 0.5;
/// Peak farm RSS at 3,000 chassis, MiB.
const FARM_PEAK_RSS_MAX_MIB: f64 = 1024.0;

impl Measurement {
    fn targets(&self) -> Vec<Target> {
        let mut targets = vec![Target {
            what: "farm CPU / SB ovsdb-server CPU (binding phase)",
            measured: self.farm_over_sb,
            limit: FARM_OVER_SB_MAX,
            met: self.farm_over_sb <= FARM_OVER_SB_MAX,
        }];
        if self.chassis >= 3000 {
            targets.push(Target {
                what: "farm peak RSS, MiB (all ports up)",
                measured: self.farm_peak_rss_mib,
                limit: FARM_PEAK_RSS_MAX_MIB,
                met: self.farm_peak_rss_mib <= FARM_PEAK_RSS_MAX_MIB && self.ports_up == self.ports,
            });
        }
        targets
    }
}

/// CPU seconds spent in one phase by each process.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
struct PhaseCpu {
    farm: f64,
    sb: f64,
    nb: f64,
    northd: f64,
    driver: f64,
}

impl PhaseCpu {
    fn busiest(&self) -> &'static str {
        [
            ("farm", self.farm),
            ("SB ovsdb-server", self.sb),
            ("NB ovsdb-server", self.nb),
            ("northd", self.northd),
            ("driver", self.driver),
        ]
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("-", |(name, _)| name)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    check(&args)?;
    let mut results = Vec::new();
    for &n in &args.chassis {
        tracing::info!(chassis = n, "measuring");
        let dir = RunDir::new(args.run_dir.as_deref(), n)?;
        let m = measure(&args, n, dir.path())
            .await
            .with_context(|| format!("benchmark with {n} emulated chassis (logs in {})", dir.path().display()))?;
        results.push(m);
        if args.run_dir.is_none() {
            dir.remove();
        }
    }
    print_results(&args, &results)?;
    let short = results.iter().filter(|m| m.ports_up < m.ports).count();
    if short > 0 {
        tracing::warn!("{short} farm size(s) did not bring every port up");
        return Ok(ExitCode::from(EXIT_CHECK_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(args: &Args) -> anyhow::Result<()> {
    if args.chassis.is_empty() || args.chassis.contains(&0) {
        return Err(Failure::bad_input("--chassis needs one or more counts above 0, e.g. 100,300,1000").into());
    }
    if !(args.connect_rate >= 0.0 && args.connect_rate.is_finite()) {
        return Err(Failure::bad_input("--connect-rate must be a number of connections per second, 0 or more").into());
    }
    if args.vms_per_chassis == 0 || args.batch == 0 {
        return Err(Failure::bad_input("--vms-per-chassis and --batch must be at least 1").into());
    }
    if args.chassis.iter().any(|n| n * args.vms_per_chassis > 60_000) {
        return Err(Failure::bad_input("at most 60000 ports (one /16 tenant network) per farm size").into());
    }
    for binary in ["ovsdb-server", "ovsdb-tool", "ovn-northd"] {
        if find_binary(binary).is_none() {
            return Err(Failure::bad_input(format!(
                "{binary} not found in $PATH or /usr/sbin; fix: apt-get install ovn-central"
            ))
            .into());
        }
    }
    for schema in [NB_SCHEMA, SB_SCHEMA] {
        if !Path::new(schema).is_file() {
            return Err(Failure::bad_input(format!("{schema} is missing; fix: apt-get install ovn-common")).into());
        }
    }
    Ok(())
}

async fn measure(args: &Args, n: usize, dir: &Path) -> anyhow::Result<Measurement> {
    let central = BenchCentral::start(dir, args.ssl).await?;
    let tls = match &central.pki {
        Some(pki) => {
            for i in 1..=n {
                pki.issue(&format!("{FARM_PREFIX}-{i}"))
                    .map_err(|e| Failure::environment(format!("cannot make the farm's certificates: {e}")))?;
            }
            let file = |name: &str| pki.dir().join(name).display().to_string();
            vec![
                "--private-key".to_owned(),
                file("{chassis}-privkey.pem"),
                "--certificate".to_owned(),
                file("{chassis}-cert.pem"),
                "--ca-cert".to_owned(),
                file("cacert.pem"),
            ]
        }
        None => Vec::new(),
    };
    let mut farm = FarmProcess::start(args, n, &central.chassis_remote(), &tls, dir)?;
    let t0 = Instant::now();
    let cpu0 = central.cpu(farm.pid());
    let register_timeout = args.register_timeout.unwrap_or_else(|| {
        let stagger = if args.connect_rate > 0.0 {
            n as f64 / args.connect_rate
        } else {
            0.0
        };
        Duration::from_secs(120) + Duration::from_secs_f64(stagger + n as f64 * 0.05)
    });
    farm.wait_registered(n, register_timeout).await?;
    let register_s = t0.elapsed().as_secs_f64();
    let cpu1 = central.cpu(farm.pid());

    let nb = Client::connect(ClientOptions::new(&central.nb_remote())?)
        .await
        .context("connecting to the benchmark's NB")?;
    let ups = UpWatcher::start(&nb).await?;
    let switch = create_network(&nb).await?;
    let total = n * args.vms_per_chassis;
    let mut latencies = Vec::with_capacity(total);
    let bind_start = Instant::now();
    let batch_timeout = args.batch_timeout;
    for first in (0..total).step_by(args.batch) {
        let ports: Vec<usize> = (first..(first + args.batch).min(total)).collect();
        let sent = Instant::now();
        create_ports(&nb, switch, &ports, n).await?;
        let names: Vec<String> = ports.iter().map(|i| port_name(*i)).collect();
        let up = ups.wait_all(&names, batch_timeout).await;
        latencies.extend(up.iter().map(|at| at.saturating_duration_since(sent)));
        if up.len() < names.len() {
            tracing::warn!(
                "{} of {} ports of the batch starting at {first} not up after {batch_timeout:?}; stopping",
                names.len() - up.len(),
                names.len()
            );
            break;
        }
    }
    let bind_s = bind_start.elapsed().as_secs_f64();
    let cpu2 = central.cpu(farm.pid());
    let (rss, peak) = rss_of(farm.pid());
    let last = farm.last_status().unwrap_or_default();
    let rows_held = last["rows_held"].as_u64().unwrap_or(0);
    let decodes_per_update = last["shared_decode"]["decodes_per_update"].as_f64();
    let decode_counts = Some(last["shared_decode"].clone()).filter(|v| v.is_object());
    nb.close().await;
    if let Err(e) = farm.stop().await {
        tracing::warn!("{e:#}");
    }

    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let bind_cpu = cpu2.minus(&cpu1);
    let mut m = Measurement {
        chassis: n,
        ports: total,
        ports_up: latencies.len(),
        register_s,
        bind_s,
        up_p50_ms: pct(0.50),
        up_p99_ms: pct(0.99),
        up_max_ms: pct(1.0),
        farm_rss_mib: mib(rss),
        farm_peak_rss_mib: mib(peak),
        farm_rss_per_chassis_kib: rss as f64 / 1024.0 / n as f64,
        farm_rows_held: rows_held,
        register_cpu: cpu1.minus(&cpu0),
        bind_cpu,
        ssl: args.ssl,
        shared_decode: !args.no_shared_decode,
        decodes_per_update,
        decode_counts,
        farm_over_sb: bind_cpu.farm / bind_cpu.sb,
        busiest_in_bind: bind_cpu.busiest(),
        targets: Vec::new(),
    };
    m.targets = m.targets();
    Ok(m)
}

fn port_name(i: usize) -> String {
    format!("vm-{i:05}")
}

/// One tenant network, as Neutron names it.
async fn create_network(nb: &Client) -> anyhow::Result<ovsdb::Uuid> {
    let mut txn = Transaction::new(NB_DB);
    let switch = txn.insert(
        "Logical_Switch",
        Row::new().with("name", "neutron-bench-net").with(
            "external_ids",
            Value::string_map([("neutron:network_name", "bench-net"), ("neutron:mtu", "1442")]),
        ),
    );
    let result = nb.transact(txn).await.context("creating the tenant network")?;
    result
        .inserted(&switch)
        .context("the NB did not return the new Logical_Switch's UUID")
}

/// Ports `indices`, port i requesting chassis `emu-(i mod n + 1)`, in one transaction.
async fn create_ports(nb: &Client, switch: ovsdb::Uuid, indices: &[usize], n: usize) -> anyhow::Result<()> {
    let mut txn = Transaction::new(NB_DB);
    let mut refs = Vec::with_capacity(indices.len());
    for &i in indices {
        let mac = format!(
            "fa:16:3e:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let ip = format!("10.0.{}.{}", (i + 2) / 256, (i + 2) % 256);
        let address = format!("{mac} {ip}");
        let chassis = format!("{FARM_PREFIX}-{}", i % n + 1);
        let lsp = Row::new()
            .with("name", port_name(i))
            .with("addresses", Value::set([address.as_str()]))
            .with("port_security", Value::set([address.as_str()]))
            .with("options", Value::string_map([("requested-chassis", chassis.as_str())]))
            .with(
                "external_ids",
                Value::string_map([
                    ("neutron:device_owner", "compute:nova"),
                    ("neutron:host_id", chassis.as_str()),
                    ("neutron:cidrs", &format!("{ip}/16")),
                ]),
            );
        refs.push(txn.insert("Logical_Switch_Port", lsp));
    }
    let atoms = refs.into_iter().filter_map(|v| v.atom().cloned());
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(switch)],
        vec![Mutation::insert("ports", Value::Set(atoms.collect()))],
    );
    nb.transact(txn).await.context("creating ports")?;
    Ok(())
}

/// When each NB Logical_Switch_Port first became up, from a monitor's events.
struct UpWatcher {
    up: Arc<Mutex<HashMap<String, Instant>>>,
    changed: Arc<Notify>,
    _task: tokio::task::JoinHandle<()>,
}

impl UpWatcher {
    async fn start(nb: &Client) -> anyhow::Result<UpWatcher> {
        let request =
            ovsdb::MonitorRequest::new().table("Logical_Switch_Port", TableMonitor::all().columns(["name", "up"]));
        // Keeps every row (so it is `monitor` in effect): `up` is read off each whole row.
        let keep_all: ovsdb::filter::SharedFilter = Arc::new(|_: &str, _: &ovsdb::Row| true);
        let replica = nb
            .monitor_filtered(NB_DB, request, keep_all)
            .await
            .context("monitoring NB ports")?;
        // northd turns up hundreds of ports in one update at 1,000 chassis: a deeper queue
        // than the default, as before the default shrank (its figures stay comparable).
        let mut events = replica.subscribe_with_capacity(16 * 1024);
        let up = Arc::new(Mutex::new(HashMap::new()));
        let changed = Arc::new(Notify::new());
        let (up2, changed2) = (up.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let _keep_monitor = replica;
            loop {
                let (row, at) = match events.recv().await {
                    Ok(RowEvent::Insert { new, at, .. } | RowEvent::Modify { new, at, .. }) => (new, at),
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!("port-up watcher missed {missed} events; latencies may be late");
                        continue;
                    }
                    Err(_) => break,
                };
                if row.get("up").and_then(Value::as_bool) == Some(true) {
                    if let Some(name) = row.get("name").and_then(Value::as_str) {
                        up2.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(name.to_owned())
                            .or_insert(at);
                        changed2.notify_waiters();
                    }
                }
            }
        });
        Ok(UpWatcher {
            up,
            changed,
            _task: task,
        })
    }

    /// The up instants of `names` once all are up, or those that were by `timeout`.
    async fn wait_all(&self, names: &[String], timeout: Duration) -> Vec<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let seen: Vec<Instant> = {
                let up = self.up.lock().unwrap_or_else(|p| p.into_inner());
                names.iter().filter_map(|n| up.get(n).copied()).collect()
            };
            if seen.len() == names.len() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return seen;
            }
        }
    }
}

/// The `fake-chassis` child process and its latest status line.
struct FarmProcess {
    child: tokio::process::Child,
    status: Arc<Mutex<Option<serde_json::Value>>>,
    changed: Arc<Notify>,
}

impl FarmProcess {
    fn start(args: &Args, n: usize, sb: &str, tls: &[String], dir: &Path) -> anyhow::Result<FarmProcess> {
        let exe = std::env::current_exe().context("cannot find the ovn-heater executable")?;
        let log = std::fs::File::create(dir.join("fake-chassis.log"))?;
        let mut command = tokio::process::Command::new(exe);
        command
            .args(["fake-chassis", "--sb", sb, "--prefix", FARM_PREFIX, "--json"])
            .args(["--count", &n.to_string(), "--status-interval", "0.5"])
            .args(["--connect-rate", &args.connect_rate.to_string()])
            .args(["--processing-delay", &args.processing_delay().as_secs_f64().to_string()])
            .args(["--probe-interval", &args.probe_interval.as_secs_f64().to_string()])
            .args(tls)
            // The databases are thrown away afterwards; N chassis deleting their rows at once
            // is a fan-out storm of its own, not part of what is measured.
            .arg("--no-cleanup")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if args.monitor_all() {
            command.arg("--monitor-all");
        }
        if args.no_shared_decode {
            command.arg("--no-shared-decode");
        }
        // SAFETY: prctl is async-signal-safe; it only sets the child's parent-death signal, so
        // the farm dies with the benchmark even if the benchmark is killed.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().context("starting ovn-heater fake-chassis")?;
        let stdout = child.stdout.take().context("fake-chassis stdout")?;
        let status = Arc::new(Mutex::new(None));
        let changed = Arc::new(Notify::new());
        let (status2, changed2) = (status.clone(), changed.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    *status2.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
                    changed2.notify_waiters();
                }
            }
            changed2.notify_waiters();
        });
        Ok(FarmProcess { child, status, changed })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn last_status(&self) -> Option<serde_json::Value> {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn wait_registered(&mut self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let registered = self.last_status().and_then(|s| s["registered"].as_u64()).unwrap_or(0);
            if registered as usize >= n {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("fake-chassis exited with {status} before its chassis registered (see fake-chassis.log)");
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("only {registered} of {n} emulated chassis registered within {timeout:?}");
            }
        }
    }

    /// SIGINT, as Ctrl-C: the farm removes its rows and exits.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        }
        match tokio::time::timeout(Duration::from_secs(300), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => bail!("fake-chassis exited with {status} when stopped (see fake-chassis.log)"),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("fake-chassis did not exit within 300 s of SIGINT; killed")
            }
        }
    }
}

/// NB and SB `ovsdb-server` and `ovn-northd` in `dir`, on unix sockets, killed on drop;
/// with SSL the SB also listens on `pssl:` with `role=ovn-controller` for the farm.
struct BenchCentral {
    dir: PathBuf,
    nb: Daemon,
    sb: Daemon,
    northd: Daemon,
    /// With SSL: the CA and certificates, and the SB's chassis-facing `ssl:` remote.
    pki: Option<ovn_lab::LabPki>,
    chassis_remote: Option<String>,
}

impl BenchCentral {
    async fn start(dir: &Path, ssl: bool) -> anyhow::Result<BenchCentral> {
        let env_dir = dir.to_owned();
        let pki_error =
            |e: ovn_lab::Error| Failure::environment(format!("cannot make the benchmark's certificates: {e}"));
        let pki = if ssl {
            Some(ovn_lab::LabPki::create(&dir.join("pki"), "bench").map_err(pki_error)?)
        } else {
            None
        };
        let ssl_port = match &pki {
            Some(_) => Some(
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .context("find a free loopback port for the SB")?
                    .port(),
            ),
            None => None,
        };
        let server = |name: &str, schema: &str| -> anyhow::Result<Daemon> {
            let db = env_dir.join(format!("{name}.db"));
            let _ = std::fs::remove_file(&db);
            let status = Command::new("ovsdb-tool").arg("create").arg(&db).arg(schema).status()?;
            if !status.success() {
                bail!("ovsdb-tool create {} failed", db.display());
            }
            let mut extra = Vec::new();
            if let (Some(pki), Some(port), "sb") = (&pki, ssl_port, name) {
                // The chassis-facing listener is a Connection row with RBAC's role, as
                // `ovn-sbctl set-connection role=ovn-controller pssl:…` makes it.
                let txn = serde_json::json!(["OVN_Southbound",
                    {"op": "insert", "table": "Connection", "uuid-name": "c",
                     "row": {"target": format!("pssl:{port}:127.0.0.1"), "role": "ovn-controller"}},
                    {"op": "insert", "table": "SB_Global", "row": {"connections": ["named-uuid", "c"]}}]);
                let status = Command::new("ovsdb-tool")
                    .arg("transact")
                    .arg(&db)
                    .arg(txn.to_string())
                    .stdout(Stdio::null())
                    .status()?;
                if !status.success() {
                    bail!("ovsdb-tool transact {} failed", db.display());
                }
                extra.extend(pki.issue("sb").map_err(pki_error)?.daemon_args());
                extra.push("--remote=db:OVN_Southbound,SB_Global,connections".to_owned());
            }
            Daemon::spawn(
                &env_dir,
                name,
                Command::new("ovsdb-server")
                    .arg(&db)
                    .args([
                        format!("--remote=punix:{}", env_dir.join(format!("{name}.sock")).display()),
                        format!("--unixctl={}", env_dir.join(format!("{name}.ctl")).display()),
                        format!("--log-file={}", env_dir.join(format!("{name}.log")).display()),
                        "-vconsole:off".into(),
                    ])
                    .args(extra),
            )
        };
        let nb = server("nb", NB_SCHEMA)?;
        let sb = server("sb", SB_SCHEMA)?;
        let central_dir = dir.to_owned();
        for name in ["nb", "sb"] {
            wait_for_socket(&central_dir.join(format!("{name}.sock")), Duration::from_secs(10)).await?;
        }
        if let Some(port) = ssl_port {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    bail!("the SB did not listen on pssl:{port} within 10 s (see sb.log)");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let northd = Daemon::spawn(
            dir,
            "northd",
            Command::new("ovn-northd").args([
                format!("--ovnnb-db=unix:{}", dir.join("nb.sock").display()),
                format!("--ovnsb-db=unix:{}", dir.join("sb.sock").display()),
                format!("--unixctl={}", dir.join("northd.ctl").display()),
                format!("--log-file={}", dir.join("northd.log").display()),
                "-vconsole:off".into(),
            ]),
        )?;
        Ok(BenchCentral {
            dir: central_dir,
            nb,
            sb,
            northd,
            pki,
            chassis_remote: ssl_port.map(|port| format!("ssl:127.0.0.1:{port}")),
        })
    }

    /// Where the farm connects: the SB's RBAC listener with SSL, else its unix socket.
    fn chassis_remote(&self) -> String {
        self.chassis_remote.clone().unwrap_or_else(|| self.sb_remote())
    }

    fn nb_remote(&self) -> String {
        format!("unix:{}", self.dir.join("nb.sock").display())
    }
    fn sb_remote(&self) -> String {
        format!("unix:{}", self.dir.join("sb.sock").display())
    }

    fn cpu(&self, farm: Option<u32>) -> PhaseCpu {
        let of = |pid: Option<u32>| pid.and_then(cpu_seconds).unwrap_or(f64::NAN);
        PhaseCpu {
            farm: of(farm),
            sb: of(Some(self.sb.pid())),
            nb: of(Some(self.nb.pid())),
            northd: of(Some(self.northd.pid())),
            driver: of(Some(std::process::id())),
        }
    }
}

impl PhaseCpu {
    fn minus(&self, before: &PhaseCpu) -> PhaseCpu {
        PhaseCpu {
            farm: self.farm - before.farm,
            sb: self.sb - before.sb,
            nb: self.nb - before.nb,
            northd: self.northd - before.northd,
            driver: self.driver - before.driver,
        }
    }
}

/// A daemon started in the foreground, killed with its parent (PDEATHSIG) and on drop.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn spawn(dir: &Path, name: &str, command: &mut Command) -> anyhow::Result<Daemon> {
        use std::os::unix::process::CommandExt;
        command
            .env("OVS_RUNDIR", dir)
            .env("OVS_LOGDIR", dir)
            .env("OVN_RUNDIR", dir)
            .env("OVN_LOGDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.stderr")))?);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Daemon { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_socket(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The run directory of one farm size: under --run-dir (kept) or a fresh temp dir.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn new(base: Option<&Path>, n: usize) -> anyhow::Result<RunDir> {
        let path = match base {
            Some(b) => b.join(format!("emu-{n}")),
            None => std::env::temp_dir().join(format!("ovn-heater-bench-emu-{}-{n}", std::process::id())),
        };
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(RunDir { path })
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state field (3).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// (VmRSS, VmHWM) of a process, in bytes.
fn rss_of(pid: Option<u32>) -> (u64, u64) {
    let Some(status) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok()) else {
        return (0, 0);
    };
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[allow(clippy::print_stdout)]
fn print_results(args: &Args, results: &[Measurement]) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(results)?);
        return Ok(());
    }
    let mode = if args.monitor_all() {
        "monitor-all"
    } else {
        "conditional monitors"
    };
    println!(
        "emulated chassis farm, {mode}, {} VMs per chassis, {} ports per NB transaction, {}",
        args.vms_per_chassis,
        args.batch,
        if args.ssl {
            "SB over TLS with RBAC (a certificate per chassis)"
        } else {
            "SB over its unix socket"
        }
    );
    println!(
        "{:>7} {:>6} {:>6} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "chassis",
        "ports",
        "up",
        "reg_s",
        "bind_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "rss_MiB",
        "peak_MiB",
        "KiB/chas",
        "farm_cpu",
        "sb_cpu",
        "northd",
        "nb_cpu",
        "farm/sb"
    );
    for m in results {
        println!(
            "{:>7} {:>6} {:>6} {:>7.1} {:>7.1} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>9.0} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7.2}",
            m.chassis,
            m.ports,
            m.ports_up,
            m.register_s,
            m.bind_s,
            m.up_p50_ms,
            m.up_p99_ms,
            m.up_max_ms,
            m.farm_rss_mib,
            m.farm_peak_rss_mib,
            m.farm_rss_per_chassis_kib,
            m.bind_cpu.farm,
            m.bind_cpu.sb,
            m.bind_cpu.northd,
            m.bind_cpu.nb,
            m.bind_cpu.farm / m.bind_cpu.sb,
        );
    }
    println!("CPU columns: seconds of the binding phase. Registration phase (connect, register, initial sync):");
    for m in results {
        println!(
            "  {:>5} chassis: {:.1} s wall, farm {:.1} s CPU, SB {:.1} s, northd {:.1} s",
            m.chassis, m.register_s, m.register_cpu.farm, m.register_cpu.sb, m.register_cpu.northd
        );
    }
    println!(
        "Decoding: {}. Targets (issue #20):",
        if args.no_shared_decode {
            "each chassis decodes its own copy of every update (--no-shared-decode)"
        } else {
            "each SB update the chassis receive byte for byte the same is decoded once for the farm"
        }
    );
    for m in results {
        let decodes = m
            .decodes_per_update
            .map_or_else(|| "-".to_owned(), |d| format!("{d:.4}"));
        println!(
            "  {:>5} chassis: decodes per update received {decodes}; busiest process while binding: {}",
            m.chassis, m.busiest_in_bind
        );
        for t in &m.targets {
            println!(
                "         {}: {:.2} (target <= {:.2}) {}",
                t.what,
                t.measured,
                t.limit,
                if t.met { "met" } else { "NOT met" }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_seconds_are_readable() {
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn port_names_sort_in_creation_order() {
        assert!(port_name(9) < port_name(10));
        assert_eq!(port_name(42), "vm-00042");
    }
}
