//! The ovn-kubernetes drivers behind `ovn-heater kubernetes`: the ovnk-reference walkthrough
//! (the oracle scenario of `ovnk-reference`, upstream CI's ovn-low-scale.yml with tiny
//! parameters, on a fresh NB/SB/northd, registering the chassis `ovn-scale-0/1` and claiming
//! the pods' ports as ovn-controller would, dumping the NB at the oracle's points under its
//! file names), upstream's scenarios on emulated or real chassis, and the density-light
//! benchmark. See docs/ovn-kubernetes.md.
//!
//! Must not know: clap (the `cli/kubernetes.rs` flags arrive as the option structs below).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ovn_kubernetes::cluster::Pod;
use ovn_kubernetes::workload::{
    self, BaseClusterBringup, ClusterDensity, DensityHeavy, DensityLight, Netpol, NetpolMultitenant, NsRange,
    ServiceRoute, Tests,
};
use ovn_kubernetes::{ClusterConfig, Compat, Families, Hooks, Ovnk, Phase, Point};
use ovn_openstack::sb_agent::{self, ChassisSpec};
use ovsdb::{Client, ClientOptions, Condition, Transaction, Value};

use crate::error::Failure;
use crate::metrics::procfs::{Series, Watched};
use crate::metrics::{class_of, Clock, FailureClass, HarnessFault, Recorder, StageId};
use crate::report::json::{self, RunResults, RunStatus, ScenarioInfo, StageResult};
use crate::report::{environment, html, verdict};

pub mod scenario;

/// What `kubernetes walkthrough` was given.
pub struct WalkthroughTarget {
    pub nb: String,
    pub sb: String,
    pub dump_dir: PathBuf,
    pub dual_stack: bool,
    pub compat: String,
    pub seed: u64,
    pub tls: crate::tls::TlsArgs,
}

/// What `kubernetes density-light` was given.
pub struct DensityOptions {
    pub workers: usize,
    pub n_pods_per_node: usize,
    pub n_pods: usize,
    pub n_startup: usize,
    pub compat: String,
    pub run_dir: Option<PathBuf>,
    pub pod_timeout: Duration,
}

/// What `kubernetes run-emulated` was given.
pub struct ScenarioOptions {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub run_dir: Option<PathBuf>,
    pub pod_timeout: Duration,
    pub real: bool,
    /// `ovn-heater run`: write results.json and report.html here (must be empty or new).
    pub results_dir: Option<PathBuf>,
    /// `ovn-heater run --label`: kept in `environment.label`.
    pub label: Option<String>,
}

/// Where an `ovn-heater run` of an ovn-kubernetes scenario writes its results.
struct ResultsTarget {
    dir: PathBuf,
    scenario_file: PathBuf,
    resolved: serde_json::Value,
    notes: Vec<String>,
    label: Option<String>,
}

/// The chassis the oracle's sandbox runs.
const CHASSIS: [&str; 2] = ["ovn-scale-0", "ovn-scale-1"];

/// The oracle's test parameters (ovnk-reference README, "Scenario").
pub fn oracle_tests(dual_stack: bool, compat: Compat) -> Tests {
    let mut t = Tests {
        base_cluster_bringup: Some(BaseClusterBringup { n_pods_per_node: 2 }),
        density_light: Some(DensityLight {
            n_pods: 4,
            n_startup: 0,
        }),
        ..Tests::default()
    };
    if dual_stack {
        return t;
    }
    t.density_heavy = Some(DensityHeavy {
        n_startup: 2,
        pods_vip_ratio: 2,
        n_pods: 4,
    });
    t.cluster_density = Some(ClusterDensity {
        n_startup: 2,
        n_runs: 3,
    });
    t.netpol_multitenant = Some(NetpolMultitenant {
        n_namespaces: 2,
        ranges: vec![NsRange { start: 0, n_pods: 1 }, NsRange { start: 1, n_pods: 2 }],
        ..NetpolMultitenant::default()
    });
    // Upstream reads the section `netpol_cross`, absent from the scenario: it runs nothing.
    t.netpol_cross_ns = Some(match compat {
        Compat::Upstream => Netpol::default(),
        Compat::Fixed => Netpol {
            n_ns: 2,
            pods_ns_ratio: 2,
            n_labels: 0,
        },
    });
    let np = Netpol {
        n_ns: 2,
        pods_ns_ratio: 3,
        n_labels: 3,
    };
    t.netpol_small = Some(np.clone());
    t.netpol_large = Some(np);
    t.service_route = Some(ServiceRoute { n_lb: 2, n_backends: 2 });
    t
}

/// What `kubernetes walkthrough` did: the dumps written, in order.
#[derive(Debug, Default, serde::Serialize)]
pub struct WalkthroughReport {
    pub dump_dir: String,
    pub dumps: Vec<DumpReport>,
    pub nb_transactions: u64,
    pub duration_s: f64,
}

/// One NB dump of the walkthrough: the oracle's step name, its file, what had just run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpReport {
    pub step: String,
    pub file: String,
    pub after: String,
}

impl WalkthroughReport {
    pub fn to_text(&self) -> String {
        format!(
            "{} dumps in {}; {} NB transactions in {:.1} s",
            self.dumps.len(),
            self.dump_dir,
            self.nb_transactions,
            self.duration_s
        )
    }
}

/// Runs the oracle scenario against `target`, one NB dump per oracle step; `report` holds the
/// dumps written so far (also when a step failed).
pub async fn walkthrough(target: WalkthroughTarget, report: &mut WalkthroughReport) -> anyhow::Result<()> {
    report.dump_dir = target.dump_dir.display().to_string();
    let compat = Compat::parse(&target.compat).ok_or_else(|| {
        Failure::bad_input(format!(
            "--compat {:?}: use upstream (upstream ovn-heater's writes) or fixed",
            target.compat
        ))
    })?;
    let nb = connect(&target.nb, "OVN_Northbound", &target.tls).await?;
    let sb = connect(&target.sb, "OVN_Southbound", &target.tls).await?;
    check_sandbox(&nb).await?;
    std::fs::create_dir_all(&target.dump_dir)
        .map_err(|e| Failure::bad_input(format!("cannot create --dump-dir {}: {e}", target.dump_dir.display())))?;
    for (i, name) in CHASSIS.iter().enumerate() {
        let mut spec = ChassisSpec::compute(name, &format!("127.0.0.{}", i + 1));
        spec.keys
            .insert("ovn-bridge-mappings".into(), "providernet:br-ex".into());
        sb_agent::register_chassis(&sb, &spec).await.map_err(|e| {
            if e.is_bad_input() {
                anyhow::Error::from(Failure::bad_input(format!(
                    "cannot register chassis {name}: {e} (the walkthrough needs a fresh SB)"
                )))
            } else {
                anyhow::Error::from(e).context(format!("cannot register chassis {name}"))
            }
        })?;
    }
    let families = Families {
        run_ipv4: true,
        run_ipv6: target.dual_stack,
    };
    let mut ovnk = Ovnk::new(nb.clone(), ClusterConfig::default(), families, compat, target.seed)
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let mut hooks = Walkthrough {
        nb: nb.clone(),
        sb: sb.clone(),
        dump_dir: target.dump_dir.clone(),
        step: 0,
        dumps: Vec::new(),
        last: None,
        context: String::new(),
        context_dumped: false,
        bound: Vec::new(),
        variant: format!(
            "compat={} run_ipv4=True run_ipv6={}",
            compat.as_str(),
            if target.dual_stack { "True" } else { "False" }
        ),
    };
    let started = Instant::now();
    let ran = async {
        hooks.write("00-initial", "sandbox only").await?;
        workload::prepare(&mut ovnk, &mut hooks).await?;
        workload::run_all(&mut ovnk, &mut hooks, &oracle_tests(target.dual_stack, compat), true).await?;
        anyhow::Ok(())
    }
    .await;
    report.dumps = std::mem::take(&mut hooks.dumps);
    report.nb_transactions = ovnk.txn_counts.values().sum();
    report.duration_s = started.elapsed().as_secs_f64();
    nb.close().await;
    sb.close().await;
    ran
}

async fn connect(remote: &str, database: &str, tls: &crate::tls::TlsArgs) -> anyhow::Result<Client> {
    let options = ClientOptions::new(remote).map_err(|e| Failure::bad_input(format!("{remote:?}: {e}")))?;
    let options = tls.apply(options)?;
    Client::connect(options.database(database))
        .await
        .with_context(|| format!("cannot connect to the {database} server at {remote}"))
}

async fn select(nb: &Client, table: &str, columns: &[&str]) -> anyhow::Result<Vec<ovsdb::Row>> {
    let mut q = Transaction::new("OVN_Northbound");
    q.select(
        table,
        Vec::<Condition>::new(),
        Some(columns.iter().map(|c| (*c).to_owned()).collect()),
    );
    let r = nb.transact(q).await?;
    Ok(r.results.first().and_then(|o| o.rows.clone()).unwrap_or_default())
}

/// The sandbox: ovn-northd has filled NB_Global, and there is the Connection row upstream
/// sets the inactivity probe on.
async fn check_sandbox(nb: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = select(nb, "NB_Global", &["options"]).await?;
        let ready = rows
            .first()
            .and_then(|r| r.get("options"))
            .is_some_and(|o| o.map_get("northd_internal_version").is_some());
        if ready {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Failure::environment(
                "NB_Global has no northd options after 15 s: is ovn-northd running against this NB and SB?",
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if select(nb, "Connection", &["target"]).await?.is_empty() {
        return Err(Failure::bad_input(
            "the NB has no Connection row, which upstream sets the inactivity probe on; \
             create one as the oracle's sandbox does: ovn-nbctl set-connection punix:nb-conn.sock",
        )
        .into());
    }
    let lsps = select(nb, "Logical_Switch_Port", &["name"]).await?;
    if !lsps.is_empty() {
        return Err(Failure::bad_input(format!(
            "the NB is not fresh ({} logical switch ports); use an empty NB",
            lsps.len()
        ))
        .into());
    }
    Ok(())
}

struct Walkthrough {
    nb: Client,
    sb: Client,
    dump_dir: PathBuf,
    step: usize,
    /// The dumps written, in order.
    dumps: Vec<DumpReport>,
    /// Fingerprint of the last dump written.
    last: Option<String>,
    context: String,
    context_dumped: bool,
    bound: Vec<String>,
    variant: String,
}

impl Walkthrough {
    /// Waits until northd has set `up` on every LSP and every bound pod is up, then until
    /// the NB is quiet; returns the dump.
    async fn settled(&self) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = select(&self.nb, "Logical_Switch_Port", &["name", "up"]).await?;
            let pending: Vec<String> = rows
                .iter()
                .filter(|r| {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                    let up = r.get("up").and_then(Value::as_bool);
                    up.is_none() || (self.bound.iter().any(|b| b == name) && up != Some(true))
                })
                .map(|r| r.get("name").and_then(Value::as_str).unwrap_or("").to_owned())
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!("ports not up after 30 s, dumping anyway: {}", pending.join(", "));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut last = ovsdb::dump::dump(&self.nb, "OVN_Northbound").await?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let next = ovsdb::dump::dump(&self.nb, "OVN_Northbound").await?;
            if fingerprint(&next) == fingerprint(&last) || Instant::now() >= until {
                return Ok(next);
            }
            last = next;
        }
    }

    async fn write(&mut self, name: &str, what: &str) -> anyhow::Result<()> {
        let doc = self.settled().await?;
        self.last = Some(fingerprint(&doc));
        let command = format!("ovn-heater kubernetes walkthrough | {} | {what}", self.variant);
        let doc = ovsdb::dump::with_keys(
            doc,
            [
                ("step", serde_json::Value::String(name.to_owned())),
                ("command", serde_json::Value::String(command)),
            ],
        );
        let path = self.dump_dir.join(format!("{name}.json"));
        std::fs::write(&path, ovsdb::dump::to_pretty_string(&doc))
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.dumps.push(DumpReport {
            step: name.to_owned(),
            file: path.display().to_string(),
            after: what.to_owned(),
        });
        self.step += 1;
        Ok(())
    }
}

fn fingerprint(doc: &serde_json::Value) -> String {
    let mut doc = doc.clone();
    if let Some(tables) = doc.get_mut("tables").and_then(|t| t.as_object_mut()) {
        for rows in tables.values_mut() {
            for row in rows.as_array_mut().into_iter().flatten() {
                if let Some(o) = row.as_object_mut() {
                    o.remove("_version");
                }
            }
        }
    }
    ovn_openstack::snapshot::strip_for_snapshot(&mut doc);
    doc.to_string()
}

fn hook_err(e: anyhow::Error) -> ovn_kubernetes::Error {
    ovn_kubernetes::Error::Hook(format!("{e:#}"))
}

impl Hooks for Walkthrough {
    async fn bind(&mut self, ovnk: &Ovnk, pod: &Pod) -> ovn_kubernetes::Result<()> {
        let chassis = &ovnk.workers[pod.worker].name;
        sb_agent::claim_port(&self.sb, &pod.name, chassis, true, Duration::from_secs(20))
            .await
            .map_err(|e| ovn_kubernetes::Error::Hook(format!("claiming {} on {chassis}: {e}", pod.name)))?;
        self.bound.push(pod.name.clone());
        Ok(())
    }

    async fn unbind(&mut self, _ovnk: &Ovnk, pod: &Pod) -> ovn_kubernetes::Result<()> {
        // The LSP is gone: ovn-northd removes the Port_Binding itself.
        self.bound.retain(|b| b != &pod.name);
        Ok(())
    }

    async fn ping(&mut self, _ovnk: &Ovnk, _from: &Pod, _to: IpAddr) -> ovn_kubernetes::Result<()> {
        Ok(())
    }

    async fn point(&mut self, _ovnk: &Ovnk, point: Point<'_>) -> ovn_kubernetes::Result<()> {
        if point.label != self.context {
            self.context = point.label.to_owned();
            self.context_dumped = false;
        }
        let (suffix, forced) = match point.phase {
            Phase::Setup => ("-setup".to_owned(), false),
            Phase::Iteration(k) => (format!("-iter{k}"), false),
            Phase::Exit => (String::new(), !self.context_dumped),
        };
        let doc = self.settled().await.map_err(hook_err)?;
        let changed = self.last.as_deref() != Some(fingerprint(&doc).as_str());
        if changed || forced {
            let name = format!("{:02}-{}{suffix}", self.step, point.label);
            let what = format!("{} {:?}", point.label, point.phase);
            self.write(&name, &what).await.map_err(hook_err)?;
            self.context_dumped = true;
        }
        if point.phase == Phase::Exit {
            self.context.clear();
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ density-light bench --

/// When each NB Logical_Switch_Port first became up, from the monitor's events (recorded as
/// they arrive, so a pod waited for later still gets its own up instant).
struct UpTimes {
    up: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>,
    changed: std::sync::Arc<tokio::sync::Notify>,
    _task: tokio::task::JoinHandle<()>,
}

impl UpTimes {
    async fn start(nb: &Client) -> anyhow::Result<UpTimes> {
        let request = ovsdb::MonitorRequest::new().table(
            "Logical_Switch_Port",
            ovsdb::TableMonitor::all().columns(["name", "up"]),
        );
        let replica = nb
            .monitor("OVN_Northbound", request)
            .await
            .context("monitoring NB ports")?;
        let mut events = replica.subscribe();
        let up = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let changed = std::sync::Arc::new(tokio::sync::Notify::new());
        let (up2, changed2) = (up.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let replica = replica;
            loop {
                let rows: Vec<(ovsdb::Row, Instant)> = match events.recv().await {
                    Ok(ovsdb::RowEvent::Insert { new, at, .. } | ovsdb::RowEvent::Modify { new, at, .. }) => {
                        vec![(new, at)]
                    }
                    Ok(ovsdb::RowEvent::Resynced { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Missed changes: what is up now is up from now on.
                        let now = Instant::now();
                        replica
                            .find("Logical_Switch_Port", |_| true)
                            .into_iter()
                            .map(|(_, r)| (r, now))
                            .collect()
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let mut map = up2.lock().unwrap_or_else(|p| p.into_inner());
                for (row, at) in rows {
                    if row.get("up").and_then(Value::as_bool) == Some(true) {
                        if let Some(name) = row.get("name").and_then(Value::as_str) {
                            map.entry(name.to_owned()).or_insert(at);
                        }
                    }
                }
                drop(map);
                changed2.notify_waiters();
            }
        });
        Ok(UpTimes {
            up,
            changed,
            _task: task,
        })
    }

    /// When `name` came up, waiting up to `timeout` for it.
    async fn wait(&self, name: &str, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = self.up.lock().unwrap_or_else(|p| p.into_inner()).get(name).copied() {
                return Some(at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// Hooks of the emulated run: pods are claimed by the farm (requested-chassis); a non-passive
/// pod is ready when the NB reports it up (emulated chassis have no data plane to ping).
struct Emulated {
    up: UpTimes,
    timeout: Duration,
    /// Pod name and when its LSP was committed, not yet waited for.
    pending: Vec<(String, Instant)>,
    /// Pod-up latencies of the current Context.
    latencies: Vec<Duration>,
    /// Per Context: its label, duration, pod-up latencies (sorted) and upstream calls
    /// (name, count, total time).
    phases: Vec<ContextFigures>,
    phase_start: Instant,
    /// The cluster's call timings at the previous Context's end.
    last_stats: std::collections::BTreeMap<&'static str, ovn_kubernetes::cluster::OpStats>,
    /// Samples for results.json: one stage per Context, named when it ends.
    rec: Recorder,
    /// What each Context's end asks the lab's daemons.
    probes: Option<crate::metrics::daemons::StageProbes>,
    stage: StageId,
    /// Set when a pod did not come up: OVN's failure, which ended the run.
    system_failure: Option<String>,
    /// Real chassis: the lab's daemons dead without a chaos kill, and each pod's node.
    dead_watch: Option<DeadWatch>,
}

/// The lab daemons of a real run that died without a chaos kill (see `dead_daemons`): a pod
/// on a node whose `ovn-controller` or `ovs-vswitchd` is gone cannot come up or answer, so
/// its samples are skipped, naming the daemon, instead of failing as OVN's.
struct DeadWatch {
    daemons: Arc<super::dead_daemons::Daemons>,
    /// Pod name → the node (lab chassis) it runs on.
    node_of: std::collections::HashMap<String, String>,
}

/// One finished Context of an emulated run.
struct ContextFigures {
    label: String,
    took: Duration,
    latencies: Vec<Duration>,
    calls: Vec<(&'static str, u64, Duration)>,
}

impl Emulated {
    /// Records when pod `name` came up. A pod that does not within the timeout is OVN's failed
    /// sample and ends the run, as upstream's does: pods are waited for one after another, so
    /// going on after OVN stopped bringing them up would wait a timeout per pod. The run's
    /// error then exits 1 ([`system_failure`]).
    async fn wait_up(&mut self, name: &str, since: Instant) -> ovn_kubernetes::Result<()> {
        let Some(at) = self.up.wait(name, self.timeout).await else {
            // Its node's daemon died (recorded once, the lab's failure): skipped, the run goes on.
            let dead = self.dead_on_nodes_of(&[name]);
            if !dead.is_empty() {
                let why = format!("{} not running", dead.join(", "));
                self.rec.skipped(self.stage, PORT_UP, name, Instant::now(), &why);
                return Ok(());
            }
            let why = format!("pod {name} not up within {:?}", self.timeout);
            self.rec
                .record(self.stage, PORT_UP, name, since, Instant::now(), Some(why.clone()));
            self.system_failure = Some(why.clone());
            return Err(ovn_kubernetes::Error::Hook(why));
        };
        self.rec.record(self.stage, PORT_UP, name, since, at, None);
        self.latencies.push(at.saturating_duration_since(since));
        Ok(())
    }
}

impl Emulated {
    /// The dead daemons (without a chaos kill) of the nodes of `pods`; each death is named on
    /// stderr and recorded the first time it is seen. Empty for emulated chassis.
    fn dead_on_nodes_of(&self, pods: &[&str]) -> Vec<String> {
        let Some(watch) = &self.dead_watch else {
            return Vec::new();
        };
        let mut nodes: Vec<&str> = pods
            .iter()
            .filter_map(|p| watch.node_of.get(*p).map(String::as_str))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
            .into_iter()
            .flat_map(|node| watch.daemons.dead(&self.rec, self.stage, Some(node)))
            .collect()
    }
}

impl Hooks for Emulated {
    async fn bind(&mut self, _ovnk: &Ovnk, pod: &Pod) -> ovn_kubernetes::Result<()> {
        if pod.passive {
            self.pending.push((pod.name.clone(), pod.committed));
            return Ok(());
        }
        self.wait_up(&pod.name, pod.committed).await
    }

    async fn unbind(&mut self, _ovnk: &Ovnk, _pod: &Pod) -> ovn_kubernetes::Result<()> {
        Ok(())
    }

    async fn point(&mut self, ovnk: &Ovnk, point: Point<'_>) -> ovn_kubernetes::Result<()> {
        if point.phase != Phase::Exit {
            return Ok(());
        }
        // Passive pods are not waited for one by one; a Context ends with all of them up.
        for (name, since) in std::mem::take(&mut self.pending) {
            self.wait_up(&name, since).await?;
        }
        let mut latencies = std::mem::take(&mut self.latencies);
        latencies.sort();
        let now = ovnk.op_stats().clone();
        let calls: Vec<(&'static str, u64, Duration)> = now
            .iter()
            .filter_map(|(name, st)| {
                let before = self.last_stats.get(name).copied().unwrap_or_default();
                let n = st.count - before.count;
                (n > 0).then(|| (*name, n, st.total.saturating_sub(before.total)))
            })
            .collect();
        self.last_stats = now;
        // Upstream's per-test CMS timings: one sample per call kind and Context, its duration
        // the time all its calls took (the subject says how many).
        let end = Instant::now();
        for (name, n, total) in &calls {
            let start = end.checked_sub(*total).unwrap_or(end);
            self.rec.record(
                self.stage,
                &format!("{CMS_PREFIX}{name}"),
                format!("{n} calls"),
                start,
                end,
                None,
            );
        }
        self.phases.push(ContextFigures {
            label: point.label.to_owned(),
            took: self.phase_start.elapsed(),
            latencies,
            calls,
        });
        self.phase_start = Instant::now();
        self.rec.rename_stage(self.stage, point.label);
        self.rec.end_stage(self.stage);
        if let Some(probes) = &self.probes {
            let (northd, daemons) = probes.capture().await;
            self.rec.attach_captures(self.stage, northd, daemons);
        }
        self.stage = self.rec.begin_stage(NEXT_CONTEXT);
        Ok(())
    }
}

/// Measurement names in results.json: a pod's LSP committed → NB `up` (named as the
/// OpenStack runs name a port's, so summaries and compare line up), and a pod's pings.
const PORT_UP: &str = "port_up";
const PING_POD: &str = "ping_pod";
/// A pod's plumbing on a real chassis (named as the OpenStack runs name a VM's).
const BIND_PORT: &str = "bind_port";
/// Prefix of the CMS call timings (`cms:WorkerNode.provision_port`).
const CMS_PREFIX: &str = "cms:";
/// The name of a Context's stage until the Context ends and names it.
const NEXT_CONTEXT: &str = "(next context)";

impl Emulated {
    fn new(up: UpTimes, timeout: Duration, rec: Recorder) -> Emulated {
        let stage = rec.begin_stage(NEXT_CONTEXT);
        Emulated {
            up,
            timeout,
            pending: Vec::new(),
            latencies: Vec::new(),
            phases: Vec::new(),
            phase_start: Instant::now(),
            last_stats: Default::default(),
            rec,
            stage,
            probes: None,
            system_failure: None,
            dead_watch: None,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64()
}

/// What an emulated run needs, whoever asked for it (density-light, run-emulated).
struct EmulatedRun {
    cfg: ClusterConfig,
    families: Families,
    compat: Compat,
    tests: Tests,
    cleanup: bool,
    pod_timeout: Duration,
    run_dir: Option<PathBuf>,
    title: String,
    /// Real lab chassis (`--real`) instead of an emulated farm.
    real: bool,
    /// `ovn-heater run`: results.json and report.html go here.
    results: Option<ResultsTarget>,
    /// The scenario's `chaos:` entries (real chassis only).
    chaos: Vec<crate::scenario::ChaosAction>,
}

pub async fn density_light(args: DensityOptions) -> Ran {
    let Some(compat) = Compat::parse(&args.compat) else {
        return Ran::failed(Failure::bad_input(format!(
            "--compat {:?}: use upstream or fixed",
            args.compat
        )));
    };
    if args.workers == 0 || args.n_startup > args.n_pods {
        return Ran::failed(Failure::bad_input(
            "--workers must be at least 1 and --n-startup at most --n-pods",
        ));
    }
    let run = EmulatedRun {
        cfg: ClusterConfig {
            n_workers: args.workers,
            ..ClusterConfig::default()
        },
        families: Families::default(),
        compat,
        tests: Tests {
            base_cluster_bringup: Some(BaseClusterBringup {
                n_pods_per_node: args.n_pods_per_node,
            }),
            density_light: Some(DensityLight {
                n_pods: args.n_pods,
                n_startup: args.n_startup,
            }),
            ..Tests::default()
        },
        cleanup: false,
        pod_timeout: args.pod_timeout,
        run_dir: args.run_dir.clone(),
        real: false,
        results: None,
        chaos: Vec::new(),
        title: format!(
            "density_light on {} emulated workers (compat {}): {} bring-up pods, {} startup + {} pods",
            args.workers,
            compat.as_str(),
            args.workers * args.n_pods_per_node,
            args.n_startup,
            args.n_pods - args.n_startup
        ),
    };
    run_emulated(run).await
}

pub async fn run_scenario(args: ScenarioOptions) -> Ran {
    match scenario_run(args) {
        Ok(run) => run_emulated(run).await,
        Err(e) => Ran {
            report: None,
            outcome: Err(e),
        },
    }
}

/// The run a scenario file asks for; bad input is exit 2.
fn scenario_run(args: ScenarioOptions) -> anyhow::Result<EmulatedRun> {
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| Failure::bad_input(format!("cannot read scenario {}: {e}", args.scenario.display())))?;
    let mut doc: serde_norway::Mapping = serde_norway::from_str(&text)
        .map_err(|e| Failure::bad_input(format!("scenario {} is not a YAML map: {e}", args.scenario.display())))?;
    scenario::apply_sets(&mut doc, &args.sets).map_err(Failure::bad_input)?;
    let s =
        scenario::parse(&doc).map_err(|e| Failure::bad_input(format!("scenario {}: {e}", args.scenario.display())))?;
    if !s.ignored.is_empty() {
        tracing::info!("not modelled on emulated chassis, ignored: {}", s.ignored.join(", "));
    }
    let run = EmulatedRun {
        title: format!(
            "{} on {} emulated workers (compat {}, IPv4 {}, IPv6 {})",
            args.scenario.display(),
            s.cluster.n_workers,
            s.compat.as_str(),
            s.families.run_ipv4,
            s.families.run_ipv6
        ),
        cfg: s.cluster,
        families: s.families,
        compat: s.compat,
        tests: s.tests,
        cleanup: s.cleanup,
        pod_timeout: args.pod_timeout,
        run_dir: args.run_dir,
        real: args.real,
        chaos: s.chaos,
        results: args.results_dir.map(|dir| ResultsTarget {
            dir,
            label: args.label.clone(),
            scenario_file: args.scenario.clone(),
            resolved: serde_json::to_value(&doc).unwrap_or_default(),
            notes: ignored_notes(&s.ignored),
        }),
    };
    Ok(run)
}

impl Ran {
    fn failed(e: impl Into<anyhow::Error>) -> Ran {
        Ran {
            report: None,
            outcome: Err(e.into()),
        }
    }
}

/// How an emulated run ended: the figures of the Contexts that ended (also when samples failed
/// or a pod did not come up; `None` when no workload ran), and the exit code or error.
pub struct Ran {
    pub report: Option<EmulatedReport>,
    pub outcome: anyhow::Result<ExitCode>,
}

/// Brings up a private central, runs `run` on an emulated farm, tears everything down.
async fn run_emulated(run: EmulatedRun) -> Ran {
    let mut report = None;
    let outcome = run_emulated_reporting(run, &mut report).await;
    Ran { report, outcome }
}

async fn run_emulated_reporting(run: EmulatedRun, report: &mut Option<EmulatedReport>) -> anyhow::Result<ExitCode> {
    run.tests.check().map_err(|e| Failure::bad_input(e.to_string()))?;
    run.cfg
        .check(run.families)
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let run_dir = match &run.run_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ovn-heater-kube-{}", std::process::id())),
    };
    let mut spec = ovn_lab::LabSpec::new(&run_dir);
    if run.real {
        spec.monitor_all = true;
        spec.chassis = (0..run.cfg.n_workers)
            .map(|i| ovn_lab::ChassisSpec {
                name: format!("ovn-scale-{i}"),
                role: ovn_lab::ChassisRole::Compute,
            })
            .collect();
        spec.registration_timeout = Duration::from_secs(60 + 10 * run.cfg.n_workers as u64);
    }
    if !run.chaos.is_empty() {
        if !run.real {
            return Err(Failure::bad_input(
                "chaos: daemon kills need the lab's real chassis; set cluster.chassis: real (or drop the chaos section)",
            )
            .into());
        }
        // This driver's lab has standalone databases (cluster.clustered_db is not modelled).
        if let Some(a) = run.chaos.iter().find(|a| {
            matches!(
                a.kill,
                crate::scenario::ChaosTarget::NbLeader | crate::scenario::ChaosTarget::SbLeader
            )
        }) {
            return Err(Failure::bad_input(format!(
                "chaos kill {}: ovn_kubernetes runs use standalone databases, there is no leader; kill northd or <node>/ovn-controller",
                a.kill
            ))
            .into());
        }
        let nodes: Vec<String> = spec.chassis.iter().map(|c| c.name.clone()).collect();
        super::chaos::Chaos::check(&run.chaos, true, spec.clustered, &nodes).map_err(Failure::bad_input)?;
    }
    if let Some(target) = &run.results {
        super::runner::check_results_dir(&target.dir)?;
        std::fs::create_dir_all(&target.dir).with_context(|| format!("cannot create {}", target.dir.display()))?;
    }
    let clock = Clock::start();
    let rec = Recorder::new(clock);
    // Shared with the chaos entries' restart tasks; taken back for teardown.
    let lab = Arc::new(super::lab::up_interruptible(spec).await?);
    // CPU and RSS of every daemon and of ovn-heater itself (the emulated farm runs inside it).
    let watched: Vec<Watched> = lab
        .processes()
        .iter()
        .map(|p| Watched {
            name: p.name.clone(),
            role: p.role.to_string(),
            pid: p.pid,
        })
        .collect();
    for p in lab.processes() {
        rec.watch_log(&p.name, p.log_path.clone());
    }
    let (stop_sampling, stop_rx) = tokio::sync::watch::channel(false);
    let sampler = rec.sample_processes(watched, stop_rx);
    // Ctrl-C and SIGTERM end the run the same way: teardown, partial results, exit 130.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let ran = tokio::select! {
        r = async {
            if run.real { run_real_on(&lab, &run, rec.clone(), report).await } else { run_emulated_on(&lab, &run, rec.clone(), report).await }
        } => r,
        _ = tokio::signal::ctrl_c() => Err(Failure::interrupted().into()),
        _ = terminate.recv() => Err(Failure::interrupted().into()),
    };
    let result = ran.map(|()| ExitCode::SUCCESS);
    let _ = stop_sampling.send(true);
    let processes = sampler.await.unwrap_or_default();
    let versions = lab.versions().clone();
    let found = Found {
        binaries: super::lab::binaries(&lab),
        poll_intervals: rec.poll_intervals_total(),
        versions,
    };
    let down = match super::runner::last_handle(lab).await {
        Ok(lab) => lab.down(),
        // Dropping the last handle tears the lab down.
        Err(_) => Err(ovn_lab::Error::NotFound(
            "the lab is still in use by a chaos restart; it is torn down when that ends".into(),
        )),
    };
    if let Some(target) = &run.results {
        let judged = write_results(target, &run, &rec, clock, processes, &found, &result);
        if let (Ok(_), Ok(_)) = (&result, &down) {
            // Checks that failed are exit 1 (the lab's files are kept for their logs).
            let code = judged?;
            if run.run_dir.is_none() {
                let _ = std::fs::remove_dir_all(&run_dir);
            }
            return Ok(code);
        }
        // Otherwise the run's own error (bad input, interrupt, lab) or teardown's decides the
        // exit code below; the partial results are written all the same.
        if let Err(e) = judged {
            tracing::warn!("{e:#}");
        }
    }
    // A temp lab dir goes once the lab is down, unless the run failed (its logs say why).
    let interrupted = matches!(&result, Err(e) if crate::error::exit_code(e) == crate::error::EXIT_INTERRUPTED);
    if run.run_dir.is_none() && (result.is_ok() || interrupted) && down.is_ok() {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    let code = result?;
    down.map_err(super::runner::lab_failure)?;
    judge_samples(&rec)?;
    Ok(code)
}

/// Runs `run` on an emulated farm; `report` gets the figures of the Contexts that ended, also
/// when the run stopped early (a pod not up).
async fn run_emulated_on(
    lab: &ovn_lab::Lab,
    run: &EmulatedRun,
    rec: Recorder,
    report: &mut Option<EmulatedReport>,
) -> anyhow::Result<()> {
    let options = ovn_emu::FarmOptions {
        monitor_all: true,
        bind_requested: true,
        bridge_mappings: format!("{}:br-ex", run.cfg.physical_net),
        ..ovn_emu::FarmOptions::default()
    };
    let workers = run.cfg.n_workers;
    let farm = ovn_emu::Farm::start(lab.sb_remote_for_chassis(), workers, "ovn-scale", options)
        .await
        .context("starting the emulated chassis")?;
    let outcome = async {
        farm.wait_registered(Duration::from_secs(60 + workers as u64 / 5))
            .await
            .context("emulated chassis registering")?;
        let nb = connect(lab.nb_remote(), "OVN_Northbound", &crate::tls::TlsArgs::default()).await?;
        let up = UpTimes::start(&nb).await?;
        let mut ovnk = Ovnk::new(nb.clone(), run.cfg.clone(), run.families, run.compat, 1)
            .map_err(|e| Failure::bad_input(e.to_string()))?;
        let names: Vec<String> = farm.chassis().iter().map(|c| c.name().to_owned()).collect();
        ovnk.name_workers(&names)?;
        ovnk.request_chassis = true;
        let mut hooks = Emulated::new(up, run.pod_timeout, rec);
        hooks.probes = super::lab::stage_probes(lab);
        let ran = async {
            workload::prepare(&mut ovnk, &mut hooks).await?;
            workload::run_all(&mut ovnk, &mut hooks, &run.tests, run.cleanup).await
        }
        .await;
        *report = Some(EmulatedReport {
            title: run.title.clone(),
            chassis: "emulated",
            workers: run.cfg.n_workers,
            contexts: hooks.phases.iter().map(ContextReport::from_figures).collect(),
            nb_transactions: ovnk.txn_counts.values().sum(),
            farm: None,
            pings: None,
        });
        ran.map_err(|e| system_failure(&hooks, e))?;
        nb.close().await;
        anyhow::Ok(())
    }
    .await;
    let status = farm.status();
    if let Some(report) = report.as_mut() {
        report.farm = Some(FarmReport {
            registered: status.registered,
            ports_up: status.ports_up,
            errors: status.errors,
        });
    }
    farm.stop(false).await.context("stopping the emulated chassis")?;
    outcome.with_context(|| {
        format!(
            "farm: {} chassis registered, {} connected, {} ports claimed, {} up, {} reconnects, {} errors (last: {})",
            status.registered,
            status.connected,
            status.ports_claimed,
            status.ports_up,
            status.reconnects,
            status.errors,
            status.last_error.as_deref().unwrap_or("none")
        )
    })
}

/// What an emulated (or `--real`) run measured: each Context's duration, pod-up latencies
/// (LSP committed -> NB `up`) and upstream CMS calls; the CLI prints it as text or JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmulatedReport {
    pub title: String,
    /// `emulated` or `real`.
    pub chassis: &'static str,
    pub workers: usize,
    pub contexts: Vec<ContextReport>,
    pub nb_transactions: u64,
    /// The emulated farm at the end (emulated chassis only).
    pub farm: Option<FarmReport>,
    /// Pings run in the pods' namespaces (real chassis only).
    pub pings: Option<PingReport>,
}

/// One finished Context (upstream's test phase).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextReport {
    pub name: String,
    pub duration_s: f64,
    /// Pod-up latency of the pods this Context waited for; `None` when it waited for none.
    pub pod_up: Option<Latencies>,
    pub calls: Vec<CallReport>,
}

/// Pod-up latencies (LSP committed -> NB `up`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latencies {
    pub count: usize,
    pub p50_s: f64,
    pub p90_s: f64,
    pub max_s: f64,
}

/// The calls of one upstream CMS method (`WorkerNode.provision_port`) within a Context.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallReport {
    pub call: String,
    pub count: u64,
    pub total_s: f64,
    pub avg_s: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FarmReport {
    pub registered: usize,
    pub ports_up: usize,
    pub errors: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PingReport {
    pub count: u64,
    pub failed: usize,
    pub first_failure: Option<String>,
}

impl ContextReport {
    fn from_figures(p: &ContextFigures) -> ContextReport {
        let lat = &p.latencies;
        ContextReport {
            name: p.label.clone(),
            duration_s: p.took.as_secs_f64(),
            pod_up: (!lat.is_empty()).then(|| Latencies {
                count: lat.len(),
                p50_s: percentile(lat, 0.5),
                p90_s: percentile(lat, 0.9),
                max_s: percentile(lat, 1.0),
            }),
            calls: p
                .calls
                .iter()
                .map(|(name, n, total)| CallReport {
                    call: (*name).to_owned(),
                    count: *n,
                    total_s: total.as_secs_f64(),
                    avg_s: total.as_secs_f64() / (*n).max(1) as f64,
                })
                .collect(),
        }
    }
}

impl EmulatedReport {
    /// The human-readable figures: a title line, one line per Context, one per call kind.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut text = self.title.clone();
        for c in &self.contexts {
            let _ = write!(text, "\n  {:<28} {:>8.1} s", c.name, c.duration_s);
            if let Some(l) = &c.pod_up {
                let _ = write!(
                    text,
                    "  {:>5} pods up (LSP committed -> NB up) p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
                    l.count,
                    l.p50_s * 1e3,
                    l.p90_s * 1e3,
                    l.max_s * 1e3
                );
            }
            for call in &c.calls {
                let _ = write!(
                    text,
                    "\n      {:<44} x{:<6} avg {:>7.2} ms",
                    call.call,
                    call.count,
                    call.avg_s * 1e3
                );
            }
        }
        let _ = write!(text, "\n  {} NB transactions", self.nb_transactions);
        if let Some(f) = &self.farm {
            let _ = write!(
                text,
                "; farm: {} chassis registered, {} ports up, {} errors",
                f.registered, f.ports_up, f.errors
            );
        }
        if let Some(p) = &self.pings {
            let _ = write!(text, "; {} pings, {} failed", p.count, p.failed);
        }
        text
    }
}

/// Hooks on real lab chassis: each pod is an OVS internal port moved into a namespace of its
/// own (IPv4 address, default route via its node's router port), ready when its LSP is up;
/// pings run in the pods' namespaces. A failed ping is a failed check, counted, not fatal.
struct Real<'a> {
    lab: &'a ovn_lab::Lab,
    /// The scenario's `chaos:` entries, fired at the Contexts' iterations.
    chaos: Option<super::chaos::Chaos>,
    up: Emulated,
    vms: std::collections::HashMap<String, ovn_lab::Vm>,
    /// Every bound pod's addresses → its name (a ping to a pod whose plumbing failed is
    /// skipped).
    pod_at: std::collections::HashMap<IpAddr, String>,
    /// Pods whose plumbing failed: their later samples are skipped.
    unplumbed: std::collections::HashSet<String>,
    pings: u64,
    failed_pings: Vec<String>,
    /// Neighbour entries the host's ARP table was last made to hold (ovn_lab::host): raised
    /// ahead of the pods as they are plumbed, since the tests decide how many there will be.
    neighbour_cap: u64,
}

impl Hooks for Real<'_> {
    /// Plumbs the pod (a `bind_port` sample; a failure is the harness', the pod's port-up and
    /// pings are then skipped and the run goes on), then waits for it to come up.
    async fn bind(&mut self, ovnk: &Ovnk, pod: &Pod) -> ovn_kubernetes::Result<()> {
        let addresses = [pod.ip.ip4().map(IpAddr::V4), pod.ip.ip6().map(IpAddr::V6)];
        for ip in addresses.into_iter().flatten() {
            self.pod_at.insert(ip, pod.name.clone());
        }
        if let Some(watch) = &mut self.up.dead_watch {
            let node = ovnk.workers[pod.worker].name.clone();
            watch.node_of.insert(pod.name.clone(), node);
        }
        // Its node's daemon already died: nothing there can bring it up.
        let dead = self.up.dead_on_nodes_of(&[pod.name.as_str()]);
        if !dead.is_empty() {
            let why = format!("{} not running", dead.join(", "));
            let (rec, stage, now) = (&self.up.rec, self.up.stage, Instant::now());
            rec.skipped(stage, BIND_PORT, pod.name.as_str(), now, &why);
            rec.skipped(stage, PORT_UP, pod.name.as_str(), now, &why);
            self.unplumbed.insert(pod.name.clone());
            return Ok(());
        }
        let start = Instant::now();
        let plumbed = self.plumb(ovnk, pod).await;
        // Its node's daemon died while it was plumbed (ovs-vswitchd gives it no ofport).
        let dead = match &plumbed {
            Err(_) => self.up.dead_on_nodes_of(&[pod.name.as_str()]),
            Ok(()) => Vec::new(),
        };
        let (rec, stage) = (&self.up.rec, self.up.stage);
        if let Err(e) = plumbed {
            if dead.is_empty() {
                rec.record_as(
                    stage,
                    BIND_PORT,
                    pod.name.as_str(),
                    start,
                    Instant::now(),
                    class_of(&e),
                    Some(format!("{e:#}")),
                );
                rec.skipped(stage, PORT_UP, pod.name.as_str(), Instant::now(), "bind_port failed");
            } else {
                let why = format!("{} not running", dead.join(", "));
                rec.skipped(stage, BIND_PORT, pod.name.as_str(), Instant::now(), &why);
                rec.skipped(stage, PORT_UP, pod.name.as_str(), Instant::now(), &why);
            }
            self.unplumbed.insert(pod.name.clone());
            return Ok(());
        }
        rec.record(stage, BIND_PORT, pod.name.as_str(), start, Instant::now(), None);
        self.up.bind(ovnk, pod).await
    }

    async fn unbind(&mut self, _ovnk: &Ovnk, pod: &Pod) -> ovn_kubernetes::Result<()> {
        let Some(vm) = self.vms.remove(&pod.name) else {
            return Ok(());
        };
        let chassis = self
            .lab
            .chassis_by_name(vm.chassis())
            .ok_or_else(|| ovn_kubernetes::Error::Hook(format!("no lab chassis {}", vm.chassis())))?;
        chassis
            .unbind_vm(&vm)
            .await
            .map_err(|e| ovn_kubernetes::Error::Hook(format!("unplumbing pod {}: {e}", pod.name)))
    }

    async fn ping(&mut self, _ovnk: &Ovnk, from: &Pod, to: IpAddr) -> ovn_kubernetes::Result<()> {
        // A node whose daemon died: the death (recorded once) is why, whatever else failed.
        let peer = self.pod_at.get(&to).cloned();
        let pods: Vec<&str> = std::iter::once(from.name.as_str()).chain(peer.as_deref()).collect();
        let dead = self.up.dead_on_nodes_of(&pods);
        if !dead.is_empty() {
            let why = format!("{} not running", dead.join(", "));
            let subject = format!("{} -> {to}", from.name);
            self.up
                .rec
                .skipped(self.up.stage, PING_POD, subject, Instant::now(), &why);
            return Ok(());
        }
        let peer_unplumbed = self.pod_at.get(&to).is_some_and(|peer| self.unplumbed.contains(peer));
        let skip = if self.unplumbed.contains(&from.name) {
            Some("bind_port failed")
        } else {
            peer_unplumbed.then_some("the peer's bind_port failed")
        };
        if let Some(why) = skip {
            let subject = format!("{} -> {to}", from.name);
            self.up
                .rec
                .skipped(self.up.stage, PING_POD, subject, Instant::now(), why);
            return Ok(());
        }
        let Some(vm) = self.vms.get(&from.name) else {
            return Ok(());
        };
        // Upstream's readiness target is the node's external host (20.N.255.253, or its IPv6
        // twin), which the lab does not have: the pod's own router port answers instead.
        let target = if Some(to) == from.ext_gw.ip4().map(IpAddr::V4) {
            from.gw.ip4().map_or(to, IpAddr::V4)
        } else if Some(to) == from.ext_gw.ip6().map(IpAddr::V6) {
            from.gw.ip6().map_or(to, IpAddr::V6)
        } else {
            to
        };
        self.pings += 1;
        let start = Instant::now();
        // No reply is OVN's failure; a probe that cannot run is the harness'.
        let (class, error) = match vm.ping(target, self.up.timeout).await {
            Ok(Some(_)) => (FailureClass::System, None),
            Ok(None) => (
                FailureClass::System,
                Some(format!("no reply within {:?}", self.up.timeout)),
            ),
            Err(e) => (FailureClass::Harness, Some(e.to_string())),
        };
        let subject = format!("{} -> {target}", from.name);
        // A node's daemon that died during the ping: the death is the failure, not OVN.
        let dead = match error {
            Some(_) => self.up.dead_on_nodes_of(&pods),
            None => Vec::new(),
        };
        if !dead.is_empty() {
            let why = format!("{} not running", dead.join(", "));
            self.up
                .rec
                .skipped(self.up.stage, PING_POD, subject, Instant::now(), &why);
            return Ok(());
        }
        self.up.rec.record_as(
            self.up.stage,
            PING_POD,
            subject.as_str(),
            start,
            Instant::now(),
            class,
            error.clone(),
        );
        if let Some(e) = error {
            self.failed_pings.push(format!("{subject}: {e}"));
        }
        Ok(())
    }

    async fn point(&mut self, ovnk: &Ovnk, point: Point<'_>) -> ovn_kubernetes::Result<()> {
        if let (Some(chaos), Phase::Iteration(k)) = (&self.chaos, point.phase) {
            chaos.at(&self.up.rec, self.up.stage, point.label, k).await;
        }
        if point.phase == Phase::Exit {
            // Deaths are named (and recorded in the Context they happened in) even when no
            // pod of that node was touched since.
            if let Some(watch) = &self.up.dead_watch {
                watch.daemons.dead(&self.up.rec, self.up.stage, None);
            }
        }
        if self.chaos.is_some() && point.phase == Phase::Exit {
            // A restarted ovn-controller has a new control socket (named after its pid).
            self.up.probes = super::lab::stage_probes(self.lab);
        }
        self.up.point(ovnk, point).await
    }
}

impl Real<'_> {
    /// The pod's namespace and port on its node's br-int; errors are harness failures.
    async fn plumb(&mut self, ovnk: &Ovnk, pod: &Pod) -> anyhow::Result<()> {
        crate::workload::fault::before_bind_port(&pod.name)?;
        let chassis_name = &ovnk.workers[pod.worker].name;
        let chassis = self
            .lab
            .chassis_by_name(chassis_name)
            .ok_or_else(|| HarnessFault::wrap(anyhow::anyhow!("no lab chassis {chassis_name}")))?;
        // Dual stack: IPv4 first with IPv6 beside it; single stack: the one family.
        let mut spec = match (pod.ip.v4, pod.ip.v6) {
            (Some((ip, plen)), _) => {
                let spec = ovn_lab::VmSpec::new(pod.name.as_str(), pod.mac.as_str(), format!("{ip}/{plen}"));
                match pod.gw.ip4() {
                    Some(gw) => spec.gateway(IpAddr::V4(gw)),
                    None => spec,
                }
            }
            (None, Some((ip, plen))) => {
                let spec = ovn_lab::VmSpec::new(pod.name.as_str(), pod.mac.as_str(), format!("{ip}/{plen}"));
                match pod.gw.ip6() {
                    Some(gw) => spec.gateway(IpAddr::V6(gw)),
                    None => spec,
                }
            }
            (None, None) => {
                return Err(HarnessFault::wrap(anyhow::anyhow!("pod {} has no address", pod.name)));
            }
        };
        if let (Some(_), Some((ip6, plen6))) = (pod.ip.v4, pod.ip.v6) {
            spec = spec.ipv6(format!("{ip6}/{plen6}"), pod.gw.ip6());
        }
        let vm = chassis
            .bind_vm(spec)
            .await
            .map_err(HarnessFault::wrap)
            .with_context(|| format!("plumbing pod {}", pod.name))?;
        self.vms.insert(pod.name.clone(), vm);
        self.ensure_neighbour_entries();
        Ok(())
    }

    /// One ARP table for every namespace of the host: too small, and pings fail for tens of
    /// seconds with no fault in OVN. A pod holds its gateway and the few peers the tests ping
    /// (and those pinging it); the cap is raised in doublings, so a run pays a handful of writes.
    fn ensure_neighbour_entries(&mut self) {
        const PEERS_PER_POD: usize = 2;
        let needed = ovn_lab::host::neighbour_entries_needed(self.vms.len(), PEERS_PER_POD);
        if needed <= self.neighbour_cap {
            return;
        }
        let target = ovn_lab::host::neighbour_entries_needed(2 * self.vms.len(), PEERS_PER_POD);
        match ovn_lab::host::ensure_neighbour_entries(target) {
            Ok(Some((old, new))) => tracing::info!(
                "raised the host's ARP table cap (net.ipv4.neigh.default.gc_thresh3) from {old} to {new} for {} pods",
                self.vms.len()
            ),
            Ok(None) => {}
            Err(e) => crate::output::warn(&format!(
                "warning: cannot raise the host's ARP table cap ({e}); with many pods, pings may fail while the table is full"
            )),
        }
        // Also on failure: warn once per doubling, not per pod.
        self.neighbour_cap = target;
    }
}

/// Runs `run` on the lab's real chassis; `report` as for [`run_emulated_on`].
async fn run_real_on(
    lab: &Arc<ovn_lab::Lab>,
    run: &EmulatedRun,
    rec: Recorder,
    report: &mut Option<EmulatedReport>,
) -> anyhow::Result<()> {
    let nb = connect(lab.nb_remote(), "OVN_Northbound", &crate::tls::TlsArgs::default()).await?;
    // One watch: a daemon a chaos entry killed is expected dead, any other is the lab's failure.
    let daemons = Arc::new(super::dead_daemons::Daemons::new(lab.clone()));
    let chaos = if run.chaos.is_empty() {
        None
    } else {
        let sb = connect(lab.sb_remote(), "OVN_Southbound", &crate::tls::TlsArgs::default()).await?;
        Some(super::chaos::Chaos::new(
            run.chaos.clone(),
            lab.clone(),
            nb.clone(),
            sb,
            run.pod_timeout,
            daemons.clone(),
        ))
    };
    let up = UpTimes::start(&nb).await?;
    let mut ovnk = Ovnk::new(nb.clone(), run.cfg.clone(), run.families, run.compat, 1)
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let mut hooks = Real {
        lab,
        chaos,
        up: Emulated::new(up, run.pod_timeout, rec),
        vms: std::collections::HashMap::new(),
        pod_at: std::collections::HashMap::new(),
        unplumbed: std::collections::HashSet::new(),
        pings: 0,
        failed_pings: Vec::new(),
        neighbour_cap: 1024,
    };
    hooks.up.probes = super::lab::stage_probes(lab);
    hooks.up.dead_watch = Some(DeadWatch {
        daemons,
        node_of: std::collections::HashMap::new(),
    });
    let ran = async {
        workload::prepare(&mut ovnk, &mut hooks).await?;
        workload::run_all(&mut ovnk, &mut hooks, &run.tests, run.cleanup).await
    }
    .await;
    // Chaos restarts still under way: their samples belong to this run.
    if let Some(chaos) = hooks.chaos.take() {
        chaos.settle().await;
    }
    *report = Some(EmulatedReport {
        title: run.title.replace("emulated", "real"),
        chassis: "real",
        workers: run.cfg.n_workers,
        contexts: hooks.up.phases.iter().map(ContextReport::from_figures).collect(),
        nb_transactions: ovnk.txn_counts.values().sum(),
        farm: None,
        pings: Some(PingReport {
            count: hooks.pings,
            failed: hooks.failed_pings.len(),
            first_failure: hooks.failed_pings.first().cloned(),
        }),
    });
    ran.map_err(|e| system_failure(&hooks.up, e))?;
    nb.close().await;
    if let Some(first) = hooks.failed_pings.first() {
        tracing::warn!("first failed ping: {first}");
    }
    Ok(())
}

/// The error of a run that stopped on `e`: when a pod did not come up, OVN's failure (exit 1),
/// else `e` as it is.
fn system_failure(hooks: &Emulated, e: ovn_kubernetes::Error) -> anyhow::Error {
    match &hooks.system_failure {
        Some(why) => Failure::checks_failed(FailureClass::System, why.clone()).into(),
        None => e.into(),
    }
}

/// Without a results directory to judge (`kubernetes run-emulated`, `density-light`): exit 0
/// when no sample failed, else the failure with the exit code of its class (1 OVN's, 3 the
/// harness' alone).
fn judge_samples(rec: &Recorder) -> anyhow::Result<ExitCode> {
    let stages: Vec<StageResult> = rec.stages().iter().map(|s| StageResult::from_record(s, None)).collect();
    let by_class = json::summarize(&stages, &[]).failures_by_class;
    if by_class.failures() == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let blame = if by_class.system > 0 {
        FailureClass::System
    } else {
        FailureClass::Harness
    };
    Err(Failure::checks_failed(
        blame,
        format!(
            "{} failed samples ({} system: OVN, {} harness: the lab or ovn-heater), {} skipped",
            by_class.failures(),
            by_class.system,
            by_class.harness,
            by_class.skipped
        ),
    )
    .into())
}

/// What the run learnt from the lab before taking it down.
struct Found {
    versions: std::collections::BTreeMap<String, String>,
    binaries: std::collections::BTreeMap<String, json::Binary>,
    poll_intervals: std::collections::BTreeMap<String, crate::metrics::logs::PollIntervals>,
}

/// Writes results.json and report.html of an `ovn-heater run` and turns the verdict into the
/// exit code (0 passed, 1 OVN failed a check, 3 only the harness failed); a run error keeps
/// its own.
fn write_results(
    target: &ResultsTarget,
    run: &EmulatedRun,
    rec: &Recorder,
    clock: Clock,
    processes: Vec<Series>,
    found: &Found,
    result: &anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let (status, error) = match result {
        Ok(_) => (RunStatus::Complete, None),
        Err(e) if crate::error::exit_code(e) == crate::error::EXIT_INTERRUPTED => (
            RunStatus::Interrupted,
            Some("interrupted by Ctrl-C or SIGTERM".to_owned()),
        ),
        Err(e) => (RunStatus::Failed, Some(format!("{e:#}"))),
    };
    // The stage begun after the last Context ended holds nothing.
    let stages: Vec<StageResult> = rec
        .stages()
        .iter()
        .filter(|s| !(s.name == NEXT_CONTEXT && s.measurements.is_empty()))
        .map(|s| StageResult::from_record(s, None))
        .collect();
    let mut summary = json::summarize(&stages, &[]);
    // CMS actions: the calls behind the `cms:` timings (each sample's subject is "N calls").
    summary.cms_actions = stages
        .iter()
        .flat_map(|s| s.measurements.iter())
        .filter(|(name, _)| name.starts_with(CMS_PREFIX))
        .flat_map(|(_, m)| m.samples.iter())
        .filter_map(|sample| sample.subject.split(' ').next()?.parse::<usize>().ok())
        .sum();
    // Pods are created by the mimic's transactions; each bound pod is one port.
    summary.ports_created = stages
        .iter()
        .filter_map(|s| s.measurements.get(PORT_UP))
        .map(|m| m.stats.count)
        .sum();
    let mut env = environment::probe(
        found.versions.get("ovn-northd").cloned(),
        found.versions.get("ovsdb-server").cloned(),
        if run.real { "real" } else { "emulated" },
        "lab",
    );
    env.nb_remote = "lab".into();
    env.binaries = found.binaries.clone();
    env.label = target.label.clone();
    let results = RunResults {
        schema_version: json::SCHEMA_VERSION,
        status,
        error,
        scenario: ScenarioInfo {
            name: target
                .scenario_file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("scenario")
                .to_owned(),
            file: target.scenario_file.display().to_string(),
            workload: format!("ovn_kubernetes (compat {})", run.compat.as_str()),
            resolved: target.resolved.clone(),
            notes: target.notes.clone(),
        },
        environment: env,
        duration_s: clock.now(),
        summary,
        stages,
        processes,
        poll_intervals: found.poll_intervals.clone(),
        attached: None,
    };
    results
        .write_to(&target.dir.join("results.json"))
        .context("cannot write results.json")?;
    let judged = verdict::judge(&results, None);
    json::write_atomically(
        &target.dir.join("report.html"),
        html::render_with_verdict(&results, &judged).as_bytes(),
    )
    .context("cannot write report.html")?;
    match judged.blame {
        None => Ok(ExitCode::SUCCESS),
        Some(blame) => Err(Failure::checks_failed(blame, judged.headline).into()),
    }
}

/// One note per key read and ignored (printed as a warning, kept in results.json).
fn ignored_notes(ignored: &[String]) -> Vec<String> {
    let notes: Vec<String> = ignored
        .iter()
        // ovn-heater run reads these two itself.
        .filter(|k| !matches!(k.as_str(), "cluster.chassis" | "cluster.node_timeout_s"))
        .map(|k| format!("{k}: not modelled, ignored"))
        .collect();
    for note in &notes {
        crate::output::warn(&format!("note: {note}"));
    }
    notes
}

/// Whether `path` is an ovn-kubernetes scenario (`global.cms_name: ovn_kubernetes`); `None`
/// when it cannot be read as YAML (the caller's own parser says why).
pub fn is_kubernetes_scenario(path: &std::path::Path) -> Option<bool> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_norway::Value = serde_norway::from_str(&text).ok()?;
    let cms = doc
        .get("global")
        .and_then(|g| g.get("cms_name"))
        .and_then(|v| v.as_str());
    Some(matches!(cms, Some("ovn_kubernetes" | "ovn-kubernetes")))
}

/// `ovn-heater run` of an ovn-kubernetes scenario: `cluster.chassis` (ours) picks `real`
/// (default, as for OpenStack scenarios) or `emulated` chassis, `cluster.node_timeout_s` bounds
/// each pod's wait; results.json and report.html go to `results_dir`.
pub async fn run_for_cli(
    scenario: &std::path::Path,
    overrides: &[String],
    results_dir: Option<PathBuf>,
    label: Option<String>,
) -> Ran {
    match run_options(scenario, overrides, results_dir, label) {
        Ok(options) => run_scenario(options).await,
        Err(e) => Ran::failed(e),
    }
}

/// `run_for_cli`'s options from the scenario's `cluster` section; bad input is exit 2.
fn run_options(
    scenario: &std::path::Path,
    overrides: &[String],
    results_dir: Option<PathBuf>,
    label: Option<String>,
) -> anyhow::Result<ScenarioOptions> {
    let text = std::fs::read_to_string(scenario)
        .map_err(|e| Failure::bad_input(format!("cannot read scenario {}: {e}", scenario.display())))?;
    let mut doc: serde_norway::Mapping = serde_norway::from_str(&text)
        .map_err(|e| Failure::bad_input(format!("scenario {} is not a YAML map: {e}", scenario.display())))?;
    scenario::apply_sets(&mut doc, overrides).map_err(Failure::bad_input)?;
    let cluster = doc.get("cluster");
    let chassis = cluster
        .and_then(|c| c.get("chassis"))
        .and_then(|v| v.as_str())
        .unwrap_or("real")
        .to_owned();
    let real = match chassis.as_str() {
        "real" => true,
        "emulated" => false,
        other => {
            return Err(Failure::bad_input(format!(
                "cluster.chassis: {other:?}: use real (lab chassis, the default) or emulated"
            ))
            .into())
        }
    };
    let pod_timeout = Duration::from_secs(
        cluster
            .and_then(|c| c.get("node_timeout_s"))
            .and_then(|v| v.as_u64())
            .unwrap_or(60),
    );
    let dir = results_dir.unwrap_or_else(|| {
        super::runner::default_results_dir(scenario, std::time::SystemTime::now(), std::process::id())
    });
    Ok(ScenarioOptions {
        scenario: scenario.to_owned(),
        sets: overrides.to_vec(),
        run_dir: None,
        pod_timeout,
        real,
        results_dir: Some(dir),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_parameters_pass_upstream_checks() {
        oracle_tests(false, Compat::Upstream).check().expect("valid");
        oracle_tests(true, Compat::Fixed).check().expect("valid");
    }
}
