//! [`Lab`]: preflight, bring-up, finding a running lab again, inspecting it, tearing it down.
//!
//! Bring-up order: preflight (root, binaries, schemas, `/dev/net/tun`, name and run-dir
//! clashes) → central (NB, SB, relays, northd) → underlay namespace with its bridges → external
//! host → chassis (a few at a time) → wait until every chassis is in the SB `Chassis` table.
//! Every step is on record in `DIR/lab.json` before the next, and a guard tears down what was
//! started if bring-up fails or its future is dropped (Ctrl-C).
//!
//! Teardown stops every recorded daemon (and any pidfile found under the run dir), deletes
//! every namespace named `<prefix>-*` (with them all veths and bridges), keeps the logs, and
//! checks that nothing is left.
//!
//! Must not know: Neutron, scenarios, exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ovsdb::{Client, ClientOptions, MonitorRequest, TableMonitor, Transaction};

use crate::central::{self, CentralSpec, Db};
use crate::chassis::{ChassisContext, ExternalHost, RealChassis, NODE_BRIDGE, PROVIDER_BRIDGE};
use crate::error::{Error, Result};
use crate::netns::{self, Ip};
use crate::pki::{LabPki, TlsFiles};
use crate::process;
use crate::spec::{ChassisRole, LabSpec};
use crate::state::{LabState, ProcessInfo, ProcessRole, Recorder};
use crate::Binaries;

/// How many chassis are brought up at once: enough to overlap the waits on daemons, few
/// enough not to starve a 2-core machine.
const CHASSIS_PARALLELISM: usize = 4;
/// The CN of ovn-heater's own certificate in a lab with SSL.
pub const CLIENT_CN: &str = "ovn-heater";
/// Where a torn-down lab's record goes, so `lab down` twice is not an error.
const DOWN_STATE_FILE: &str = "lab.down.json";

/// A running lab. Dropping a lab this process started tears it down (a safety net; prefer
/// [`Lab::down`]); [`Lab::detach`] leaves it running for another process to find with
/// [`Lab::attach`].
pub struct Lab {
    /// The record as of bring-up (or `attach`); its `processes` may be out of date.
    state: LabState,
    /// Every daemon now, with the pids of those [`Lab::restart`] started again.
    processes: std::sync::Mutex<Vec<ProcessInfo>>,
    /// Tear down on drop: true for a lab started here and not detached.
    owned: bool,
}

/// A process of the lab and whether it is still running.
#[derive(Clone, Debug)]
pub struct ProcessStatus {
    pub process: ProcessInfo,
    pub alive: bool,
    pub rss_bytes: Option<u64>,
}

/// What [`Lab::status`] sees.
#[derive(Clone, Debug)]
pub struct LabStatus {
    /// `false` when bring-up did not finish (failed or still running).
    pub complete: bool,
    pub processes: Vec<ProcessStatus>,
}

/// What teardown did.
#[derive(Clone, Debug, Default)]
pub struct Teardown {
    pub processes_stopped: usize,
    pub netns_deleted: Vec<String>,
    /// Processes or namespaces still there afterwards (an error unless empty).
    pub leftovers: Vec<String>,
}

impl Lab {
    /// Checks the environment, starts everything in `spec`, and waits until every real chassis
    /// is registered in the SB. On error (or if this future is dropped) everything started is
    /// torn down again.
    pub async fn up(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        let binaries = preflight(&spec)?;
        let prefix = spec.prefix();
        let run_dir = std::path::absolute(&spec.run_dir).map_err(|e| Error::io("cannot resolve the run dir", e))?;
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(format!("cannot create {}", run_dir.display()), e))?;
        let _ = std::fs::remove_file(run_dir.join(DOWN_STATE_FILE));

        let rec = Recorder::new(LabState {
            prefix: prefix.clone(),
            run_dir: run_dir.clone(),
            complete: false,
            clustered: spec.clustered,
            nb_remote: String::new(),
            sb_remote: String::new(),
            sb_remote_for_chassis: String::new(),
            ssl: spec.ssl,
            rbac: false,
            nb_unix: String::new(),
            sb_unix: String::new(),
            client_tls: None,
            nb_members: Vec::new(),
            sb_members: Vec::new(),
            processes: Vec::new(),
            netns: Vec::new(),
            chassis: Vec::new(),
            external_host: None,
            versions: binaries.versions(),
            ovs_appctl: binaries.ovs_appctl.clone(),
            ip: binaries.ip.clone(),
        });
        rec.update(|_| {});
        let mut guard = UpGuard {
            rec: rec.clone(),
            armed: true,
        };
        let started = Instant::now();

        let pki = if spec.ssl {
            let pki = LabPki::create(&run_dir.join("pki"), &prefix)?;
            let heater = pki.issue(CLIENT_CN)?;
            rec.update(|s| s.client_tls = Some(heater));
            Some(Arc::new(pki))
        } else {
            None
        };
        let central = CentralSpec {
            binaries: binaries.clone(),
            run_dir: run_dir.clone(),
            clustered: spec.clustered,
            election_timer_ms: spec.election_timer_ms,
            n_relays: spec.n_relays,
            northd_threads: spec.northd_threads,
            db_inactivity_probe_ms: spec.db_inactivity_probe_ms,
            pki: pki.clone(),
        }
        .start(&rec)
        .await?;
        rec.update(|s| {
            s.nb_remote = central.nb_remote.clone();
            s.sb_remote = central.sb_remote.clone();
            s.sb_remote_for_chassis = central.sb_remote_for_chassis.clone();
            s.nb_unix = central.nb_unix.clone();
            s.sb_unix = central.sb_unix.clone();
            s.rbac = central.rbac;
            s.nb_members = central.nb_members.clone();
            s.sb_members = central.sb_members.clone();
        });
        tracing::info!(elapsed = ?started.elapsed(), nb = %central.nb_remote, sb = %central.sb_remote, "central up");

        if !spec.chassis.is_empty() {
            let ip = Ip::new(&binaries.ip);
            let underlay = format!("{prefix}-ul");
            rec.netns(underlay.clone());
            ip.add_netns(&underlay).await?;
            ip.add_bridge(&underlay, NODE_BRIDGE).await?;
            ip.add_bridge(&underlay, PROVIDER_BRIDGE).await?;
            let ctx = Arc::new(ChassisContext {
                binaries: binaries.clone(),
                prefix: prefix.clone(),
                run_dir: run_dir.clone(),
                underlay_netns: underlay,
                node_net: spec.node_net,
                sb_remote: central.sb_remote_for_chassis.clone(),
                monitor_all: spec.monitor_all,
                remote_probe_interval_ms: spec.remote_probe_interval_ms,
                physical_network: spec.physical_network.clone(),
                datapath_type: spec.datapath_type.clone(),
                pki: pki.clone(),
            });
            if spec.chassis.iter().any(|c| c.role == ChassisRole::NetworkNode) {
                let host = ctx.start_external_host(spec.external_net, &rec).await?;
                rec.update(|s| s.external_host = Some(host));
            }
            let chassis = start_all_chassis(&ctx, &spec, &rec).await?;
            rec.update(|s| s.chassis = chassis);
            tracing::info!(elapsed = ?started.elapsed(), n = spec.chassis.len(), "chassis started");
        }

        let lab = Lab::from_state(rec.snapshot(), false);
        lab.wait_chassis_registered(spec.registration_timeout).await?;
        rec.update(|s| s.complete = true);
        guard.armed = false;
        tracing::info!(elapsed = ?started.elapsed(), "lab up");
        Ok(Lab::from_state(rec.snapshot(), true))
    }

    /// Finds the lab recorded in `run_dir/lab.json` (started by this or another process).
    /// Dropping the returned handle leaves the lab running; call [`Lab::down`] to stop it.
    pub fn attach(run_dir: &Path) -> Result<Lab> {
        Ok(Lab::from_state(LabState::load(run_dir)?, false))
    }

    fn from_state(state: LabState, owned: bool) -> Lab {
        Lab {
            processes: std::sync::Mutex::new(state.processes.clone()),
            state,
            owned,
        }
    }

    /// The record with the daemons as they are now.
    fn current_state(&self) -> LabState {
        let mut state = self.state.clone();
        state.processes = self.processes();
        state
    }

    /// Tears down whatever is left of a lab in `run_dir`: a running one, a half-started one,
    /// or one already down (then there is nothing to do). `name` is the lab's `--name` when
    /// it had one; it is only needed when `lab.json` is gone.
    pub fn down_run_dir(run_dir: &Path, name: Option<&str>) -> Result<Teardown> {
        match LabState::load(run_dir) {
            Ok(state) => Lab::from_state(state, false).down(),
            Err(Error::NoLab { .. }) => {
                let prefix = name
                    .map(str::to_owned)
                    .unwrap_or_else(|| crate::spec::prefix_for_run_dir(run_dir));
                let ip = crate::Binaries::locate(None, None)
                    .map(|b| b.ip)
                    .unwrap_or_else(|_| PathBuf::from("ip"));
                let run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
                let state = match load_state_file(&run_dir.join(DOWN_STATE_FILE)) {
                    Some(s) => s,
                    None => empty_state(prefix, &run_dir, ip),
                };
                checked(teardown(&state), &run_dir)
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses a run dir that a live lab uses: one whose `lab.json` lists a live process, or
    /// where a lab daemon runs (found in `/proc` by its command line), or whose namespaces
    /// (`<prefix>-*` for the run dir's default prefix) exist. Touches nothing.
    pub fn check_run_dir_free(run_dir: &Path) -> Result<()> {
        let run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        let mut pids: Vec<u32> = LabState::load(&run_dir)
            .map(|state| {
                state
                    .processes
                    .iter()
                    .filter(|p| process::is_alive(p.pid, &p.binary))
                    .map(|p| p.pid)
                    .collect()
            })
            .unwrap_or_default();
        for (pid, _) in process::daemons_under(&run_dir) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        if !pids.is_empty() {
            return Err(Error::RunDirInUse { run_dir, pids });
        }
        let prefix = crate::spec::prefix_for_run_dir(&run_dir);
        let existing = netns::existing_with_prefix(&prefix);
        if !existing.is_empty() {
            return Err(Error::NameClash { prefix, existing });
        }
        Ok(())
    }

    /// Stops everything and checks nothing is left; logs stay in the run dir.
    pub fn down(mut self) -> Result<Teardown> {
        self.owned = false;
        let report = teardown(&self.current_state());
        let from = LabState::path(&self.state.run_dir);
        let _ = std::fs::rename(&from, self.state.run_dir.join(DOWN_STATE_FILE));
        checked(report, &self.state.run_dir)
    }

    /// Leaves the lab running when this handle is dropped (for `lab up`).
    pub fn detach(mut self) {
        self.owned = false;
    }

    pub fn run_dir(&self) -> &Path {
        &self.state.run_dir
    }
    /// The prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.state.prefix
    }
    /// Whether NB and SB are RAFT clusters.
    pub fn clustered(&self) -> bool {
        self.state.clustered
    }
    /// Whether NB, SB and chassis connections are TLS (`ssl:` remotes; see [`Lab::client_tls`]).
    pub fn ssl(&self) -> bool {
        self.state.ssl
    }
    /// Whether the SB restricts chassis with RBAC (`role=ovn-controller` on their connection).
    pub fn rbac(&self) -> bool {
        self.state.rbac
    }
    /// ovn-heater's own key, certificate and CA (CN `ovn-heater`) for the `ssl:` remotes.
    pub fn client_tls_files(&self) -> Option<&TlsFiles> {
        self.state.client_tls.as_ref()
    }
    /// [`Lab::client_tls_files`] loaded for an `ovsdb` client; `None` without SSL.
    pub fn client_tls(&self) -> Result<Option<ovsdb::TlsConfig>> {
        self.state.client_tls.as_ref().map(TlsFiles::client_tls).transpose()
    }
    /// The lab's CA, to issue more identities (an emulated chassis needs one with CN = its
    /// name under RBAC); `None` without SSL.
    pub fn pki(&self) -> Result<Option<LabPki>> {
        if !self.state.ssl {
            return Ok(None);
        }
        LabPki::open(&self.state.run_dir.join("pki"), &self.state.prefix).map(Some)
    }
    /// NB remote usable from the host: `unix:...` (`ssl:127.0.0.1:…` with SSL), comma-separated
    /// members when clustered.
    pub fn nb_remote(&self) -> &str {
        &self.state.nb_remote
    }
    /// SB remote usable from the host (the servers themselves, never the relays).
    pub fn sb_remote(&self) -> &str {
        &self.state.sb_remote
    }
    /// What chassis use: the relays when there are any, otherwise [`Lab::sb_remote`].
    pub fn sb_remote_for_chassis(&self) -> &str {
        &self.state.sb_remote_for_chassis
    }
    pub fn chassis(&self) -> &[RealChassis] {
        &self.state.chassis
    }
    pub fn chassis_by_name(&self, name: &str) -> Option<&RealChassis> {
        self.state.chassis.iter().find(|c| c.name() == name)
    }
    /// The host on the provider network (present when there is a network node).
    pub fn external_host(&self) -> Option<&ExternalHost> {
        self.state.external_host.as_ref()
    }
    /// Every daemon of the lab, in start order.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.processes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// `--version` of each daemon, e.g. `ovn-northd` → `ovn-northd 23.03.1`.
    pub fn versions(&self) -> &BTreeMap<String, String> {
        &self.state.versions
    }

    /// Processes with liveness and RSS.
    pub fn status(&self) -> LabStatus {
        LabStatus {
            complete: self.state.complete,
            processes: self
                .processes()
                .iter()
                .map(|p| {
                    let alive = process::is_alive(p.pid, &p.binary);
                    ProcessStatus {
                        process: p.clone(),
                        alive,
                        rss_bytes: alive.then(|| process::rss_bytes(p.pid)).flatten(),
                    }
                })
                .collect(),
        }
    }

    /// Names of the chassis currently in the SB `Chassis` table (real or emulated).
    pub async fn registered_chassis(&self) -> Result<Vec<String>> {
        let client = self.sb_client().await?;
        let mut txn = Transaction::new(Db::Sb.schema_name());
        txn.select("Chassis", vec![], Some(vec!["name".into()]));
        let result = client.transact(txn).await;
        client.close().await;
        let result = result.map_err(|e| Error::ovsdb("cannot list SB chassis", e))?;
        let mut names: Vec<String> = result
            .results
            .first()
            .and_then(|r| r.rows.as_ref())
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.get("name")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// Waits (with a monitor on SB `Chassis`, no polling) until every real chassis of the lab
    /// is registered; returns how long that took from the call.
    pub async fn wait_chassis_registered(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        if self.state.chassis.is_empty() {
            return Ok(Duration::ZERO);
        }
        let client = self.sb_client().await?;
        let replica = client
            .monitor(
                Db::Sb.schema_name(),
                MonitorRequest::new().table("Chassis", TableMonitor::all().columns(["name"])),
            )
            .await
            .map_err(|e| Error::ovsdb("cannot monitor SB Chassis", e))?;
        let mut result = Ok(());
        for c in &self.state.chassis {
            let left = timeout.saturating_sub(start.elapsed());
            let name = c.name().to_owned();
            if let Err(e) = replica
                .wait_for(
                    "Chassis",
                    move |r| r.get("name").and_then(|v| v.as_str()) == Some(name.as_str()),
                    left,
                )
                .await
            {
                let have = replica
                    .find("Chassis", |_| true)
                    .into_iter()
                    .filter_map(|(_, r)| r.get("name")?.as_str().map(str::to_owned))
                    .collect::<Vec<_>>();
                result = Err(match e {
                    ovsdb::Error::Timeout { .. } => Error::Timeout {
                        what: format!(
                            "chassis {} to register in the SB (registered: {}; see {}/ovn-controller.log)",
                            c.name(),
                            if have.is_empty() {
                                "none".into()
                            } else {
                                have.join(", ")
                            },
                            c.dir().display()
                        ),
                        after: timeout,
                    },
                    e => Error::ovsdb("lost the SB while waiting for chassis", e),
                });
                break;
            }
        }
        client.close().await;
        result.map(|_| start.elapsed())
    }

    /// The NB RAFT leader's process (clustered labs only).
    pub async fn nb_leader(&self) -> Result<ProcessInfo> {
        self.leader(Db::Nb).await
    }

    /// The SB RAFT leader's process (clustered labs only).
    pub async fn sb_leader(&self) -> Result<ProcessInfo> {
        self.leader(Db::Sb).await
    }

    /// Kills the NB leader with SIGKILL and waits until another member is elected; returns
    /// `(killed, new_leader)`.
    pub async fn kill_nb_leader(&self, election_timeout: Duration) -> Result<(ProcessInfo, ProcessInfo)> {
        self.kill_leader(Db::Nb, election_timeout).await
    }

    /// The same for the SB.
    pub async fn kill_sb_leader(&self, election_timeout: Duration) -> Result<(ProcessInfo, ProcessInfo)> {
        self.kill_leader(Db::Sb, election_timeout).await
    }

    /// The RAFT role (`leader`, `follower`, `candidate`) of a clustered NB/SB member, from
    /// `cluster/status`; `None` for other processes, standalone servers, or no answer.
    pub async fn raft_role(&self, process: &ProcessInfo) -> Option<String> {
        let db = match process.role {
            ProcessRole::NbDb => Db::Nb,
            ProcessRole::SbDb => Db::Sb,
            _ => return None,
        };
        if !self.state.clustered {
            return None;
        }
        let status = central::raft_status(&self.state.ovs_appctl, &process.ctl_path, db.schema_name())
            .await
            .ok()?;
        status
            .lines()
            .find_map(|l| l.trim().strip_prefix("Role: ").map(str::to_owned))
    }

    async fn leader(&self, db: Db) -> Result<ProcessInfo> {
        if !self.state.clustered {
            return Err(Error::NotFound(format!(
                "{} is not clustered; there is no leader to find",
                db.schema_name()
            )));
        }
        central::find_leader(&self.state.ovs_appctl, db, &self.members(db.role()))
            .await
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no {} member says it is the leader", db.schema_name())))
    }

    async fn kill_leader(&self, db: Db, election_timeout: Duration) -> Result<(ProcessInfo, ProcessInfo)> {
        let leader = self.leader(db).await?;
        tracing::info!(name = %leader.name, pid = leader.pid, "killing the {} leader", db.schema_name());
        process::kill_now(leader.pid, &leader.binary);
        let rest: Vec<ProcessInfo> = self
            .members(db.role())
            .into_iter()
            .filter(|m| m.pid != leader.pid)
            .collect();
        let new_leader = central::wait_for_leader(&self.state.ovs_appctl, db, &rest, election_timeout).await?;
        Ok((leader, new_leader))
    }

    /// Kills one process of the lab with SIGKILL (tests: crashes). It stays dead.
    pub fn kill(&self, process: &ProcessInfo) {
        process::kill_now(process.pid, &process.binary);
    }

    /// Starts a daemon of the lab that is no longer running again, with the command line,
    /// options and environment it was first started with (as systemd's `Restart=on-failure`
    /// would), and records its new pid in `lab.json`, so that teardown and `lab down` find it.
    /// Returns once it has detached (is ready). A daemon still running is left alone (an error).
    pub async fn restart(&self, name: &str) -> Result<ProcessInfo> {
        let old = self
            .processes()
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::NotFound(format!("the lab has no process {name}")))?;
        if process::is_alive(old.pid, &old.binary) {
            return Err(Error::NotFound(format!(
                "{name} (pid {}) is still running; only a daemon that is gone is restarted",
                old.pid
            )));
        }
        let daemon = process::Daemon::from_record(&old).ok_or_else(|| {
            Error::NotFound(format!(
                "{name} has no command line on record in lab.json (a lab started by an older ovn-heater); restart the lab to restart its daemons"
            ))
        })?;
        tracing::info!(name, old_pid = old.pid, "restarting");
        daemon.start(&self.state.ip, |p| self.replace_process(p)).await
    }

    /// Puts `p` in place of the process of the same name, in memory and in `lab.json`.
    fn replace_process(&self, p: ProcessInfo) {
        let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        match processes.iter_mut().find(|q| q.name == p.name) {
            Some(q) => *q = p,
            None => processes.push(p),
        }
        let mut state = self.state.clone();
        state.processes = processes.clone();
        // Only while the record is this lab's: not after `down` moved it aside.
        if LabState::path(&state.run_dir).exists() {
            if let Err(e) = state.save() {
                tracing::warn!("{e}");
            }
        }
    }

    fn members(&self, role: ProcessRole) -> Vec<ProcessInfo> {
        self.processes().iter().filter(|p| p.role == role).cloned().collect()
    }

    async fn sb_client(&self) -> Result<Client> {
        // The unix socket, where there is one: it needs no certificate.
        let remote = if self.state.sb_unix.is_empty() {
            &self.state.sb_remote
        } else {
            &self.state.sb_unix
        };
        let opts = ClientOptions::new(remote)
            .map_err(|e| Error::ovsdb("bad SB remote in lab.json", e))?
            .database(Db::Sb.schema_name())
            .inactivity_probe(None)
            .connect_timeout(Duration::from_secs(10));
        Client::connect(opts)
            .await
            .map_err(|e| Error::ovsdb("cannot connect to the lab's SB", e))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            tracing::warn!(run_dir = %self.state.run_dir.display(), "lab dropped without down(); tearing it down");
            teardown(&self.current_state());
            let _ = std::fs::rename(
                LabState::path(&self.state.run_dir),
                self.state.run_dir.join(DOWN_STATE_FILE),
            );
        }
    }
}

/// `report` when nothing survived teardown, otherwise an error naming what did.
fn checked(report: Teardown, run_dir: &Path) -> Result<Teardown> {
    if report.leftovers.is_empty() {
        Ok(report)
    } else {
        Err(Error::NotFound(format!(
            "teardown left things behind: {}; retry `ovn-heater lab down --run-dir {}`",
            report.leftovers.join(", "),
            run_dir.display()
        )))
    }
}

/// Tears down what a failed or cancelled bring-up started.
struct UpGuard {
    rec: Recorder,
    armed: bool,
}

impl Drop for UpGuard {
    fn drop(&mut self) {
        if self.armed {
            let state = self.rec.snapshot();
            tracing::warn!(run_dir = %state.run_dir.display(), "bring-up did not finish; tearing down what was started");
            teardown(&state);
            let _ = std::fs::rename(LabState::path(&state.run_dir), state.run_dir.join(DOWN_STATE_FILE));
        }
    }
}

async fn start_all_chassis(ctx: &Arc<ChassisContext>, spec: &LabSpec, rec: &Recorder) -> Result<Vec<RealChassis>> {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    // In this task, not spawned ones: dropping this future (a failure, or Ctrl-C dropping
    // bring-up) drops every chassis start at once, killing any daemon still detaching, before
    // the teardown guard looks for what exists. A spawned task would keep running after an
    // abort until its next await and could start a daemon after teardown looked.
    let mut started: Vec<(usize, RealChassis)> = futures_util::stream::iter(spec.chassis.iter().cloned().enumerate())
        .map(|(index, c)| async move { ctx.start(&c, index, rec).await.map(|ch| (index, ch)) })
        .buffer_unordered(CHASSIS_PARALLELISM)
        .try_collect()
        .await?;
    started.sort_by_key(|(i, _)| *i);
    Ok(started.into_iter().map(|(_, c)| c).collect())
}

/// Everything that must hold before anything starts.
fn preflight(spec: &LabSpec) -> Result<Binaries> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot);
    }
    let binaries = Binaries::locate(
        spec.binaries.ovn_bin_dir.as_deref(),
        spec.binaries.ovs_bin_dir.as_deref(),
    )?;
    if !spec.chassis.is_empty() && !Path::new("/dev/net/tun").exists() {
        return Err(Error::TunMissing);
    }
    if let Err(e @ Error::RunDirInUse { .. }) = Lab::check_run_dir_free(&spec.run_dir) {
        return Err(e);
    }
    let prefix = spec.prefix();
    let existing = netns::existing_with_prefix(&prefix);
    if !existing.is_empty() {
        return Err(Error::NameClash { prefix, existing });
    }
    Ok(binaries)
}

fn load_state_file(path: &Path) -> Option<LabState> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn empty_state(prefix: String, run_dir: &Path, ip: PathBuf) -> LabState {
    LabState {
        prefix,
        run_dir: run_dir.to_path_buf(),
        complete: false,
        clustered: false,
        nb_remote: String::new(),
        sb_remote: String::new(),
        sb_remote_for_chassis: String::new(),
        ssl: false,
        rbac: false,
        nb_unix: String::new(),
        sb_unix: String::new(),
        client_tls: None,
        nb_members: Vec::new(),
        sb_members: Vec::new(),
        processes: Vec::new(),
        netns: Vec::new(),
        chassis: Vec::new(),
        external_host: None,
        versions: BTreeMap::new(),
        ovs_appctl: PathBuf::from("ovs-appctl"),
        ip,
    }
}

/// Stops every process (recorded, or with a pidfile under the run dir), deletes every
/// namespace with the lab's prefix, and reports what (if anything) is left. Blocking, so it
/// can run from `Drop`.
fn teardown(state: &LabState) -> Teardown {
    use nix::sys::signal::{kill, Signal};
    let mut report = Teardown::default();
    let mut targets: Vec<(u32, String)> = state
        .processes
        .iter()
        .rev()
        .map(|p| (p.pid, p.binary.clone()))
        .collect();
    for pidfile in find_pidfiles(&state.run_dir) {
        if let Ok(pid) = process::read_pidfile(&pidfile) {
            if let Some(binary) = ovs_binary_of(pid) {
                if !targets.iter().any(|(p, _)| *p == pid) {
                    targets.push((pid, binary));
                }
            }
        }
    }
    // Records and pidfiles can be gone (a deleted run dir, a crash before the record was
    // written): the daemons are still recognisable by their command lines.
    for (pid, binary) in process::daemons_under(&state.run_dir) {
        if !targets.iter().any(|(p, _)| *p == pid) {
            targets.push((pid, binary));
        }
    }
    let alive: Vec<(u32, String)> = targets
        .into_iter()
        .filter(|(pid, b)| process::is_alive(*pid, b))
        .collect();
    // Chassis first (controllers before their vswitchd), central last, all signalled at once.
    for (pid, _) in &alive {
        let _ = kill(nix::unistd::Pid::from_raw(*pid as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && alive.iter().any(|(p, b)| process::is_alive(*p, b)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (pid, b) in &alive {
        process::kill_now(*pid, b);
    }
    report.processes_stopped = alive.len();

    // Deleted in-process, as `ip netns delete` does (detach the mount, remove the file): a
    // 1,000-VM lab has over a thousand namespaces, and one `ip` process each took seconds.
    let mut namespaces: Vec<String> = state.netns.iter().rev().cloned().collect();
    for ns in netns::existing_with_prefix(&state.prefix) {
        if !namespaces.contains(&ns) {
            namespaces.insert(0, ns);
        }
    }
    for ns in namespaces {
        match crate::vmnet::delete(&ns) {
            Ok(true) => report.netns_deleted.push(ns),
            Ok(false) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }

    for (pid, b) in &alive {
        if process::is_alive(*pid, b) {
            report.leftovers.push(format!("{b} (pid {pid})"));
        }
    }
    for (pid, b) in process::daemons_under(&state.run_dir) {
        if !alive.iter().any(|(p, _)| *p == pid) {
            report
                .leftovers
                .push(format!("{b} (pid {pid}, started after teardown began)"));
        }
    }
    report.leftovers.extend(
        netns::existing_with_prefix(&state.prefix)
            .into_iter()
            .map(|n| format!("netns {n}")),
    );
    tracing::info!(
        stopped = report.processes_stopped,
        netns = report.netns_deleted.len(),
        "lab torn down"
    );
    report
}

/// `*.pid` files up to three levels under the run dir (`hv/<chassis>/x.pid` is the deepest).
fn find_pidfiles(run_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![(run_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && depth < 3 {
                dirs.push((p, depth + 1));
            } else if p.extension().is_some_and(|x| x == "pid") {
                found.push(p);
            }
        }
    }
    found
}

/// The program name of `pid` if it is one of the daemons a lab runs (never kill anything else).
fn ovs_binary_of(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    process::DAEMONS.contains(&name.as_str()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_handles_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Lab>();
        shareable::<RealChassis>();
        shareable::<crate::Vm>();
    }

    #[test]
    fn pidfiles_are_found_under_the_run_dir() {
        let dir = std::env::temp_dir().join(format!("ovn-lab-pidfiles-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("hv/compute-1")).unwrap();
        std::fs::write(dir.join("hv/compute-1/ovs-vswitchd.pid"), "1\n").unwrap();
        std::fs::write(dir.join("hv/compute-1/ovs-vswitchd.log"), "").unwrap();
        let found = find_pidfiles(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [dir.join("hv/compute-1/ovs-vswitchd.pid")]);
    }
}
