//! `DIR/lab.json`: everything another process needs to find, inspect and tear down a lab.
//!
//! It is rewritten after each step of bring-up (atomically, through a temp file and rename),
//! so a lab that failed or was interrupted halfway can still be torn down completely by
//! `lab down`. It records pids, namespaces, remotes and chassis, never secrets.
//!
//! Must not know: how daemons are started; it is only the record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chassis::{ExternalHost, RealChassis};
use crate::error::{Error, Result};

/// What a lab process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessRole {
    NbDb,
    SbDb,
    SbRelay,
    Northd,
    /// A chassis' local `ovsdb-server` (Open_vSwitch database).
    ChassisDb,
    Vswitchd,
    Controller,
}

impl std::fmt::Display for ProcessRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessRole::NbDb => "nb-db",
            ProcessRole::SbDb => "sb-db",
            ProcessRole::SbRelay => "sb-relay",
            ProcessRole::Northd => "northd",
            ProcessRole::ChassisDb => "chassis-db",
            ProcessRole::Vswitchd => "vswitchd",
            ProcessRole::Controller => "controller",
        })
    }
}

/// One daemon of the lab. The run command samples CPU/RSS of each from `/proc/<pid>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Unique in the lab: `nb`, `nb-2`, `sb-relay-1`, `northd`, `compute-1/ovs-vswitchd`, ...
    pub name: String,
    pub role: ProcessRole,
    pub pid: u32,
    /// The program's file name (`ovsdb-server`), used to check a pid was not reused.
    pub binary: String,
    pub log_path: PathBuf,
    pub pidfile: PathBuf,
    /// unixctl socket (`ovs-appctl -t`).
    pub ctl_path: PathBuf,
    /// The chassis this process belongs to, if any.
    pub chassis: Option<String>,
    /// The network namespace it runs in, if not the root one.
    pub netns: Option<String>,
    /// How it was started, so that [`crate::Lab::restart`] starts it again the same way
    /// (absent in the records of labs started before restarts existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// A daemon's command line as the lab started it (without the pidfile, log, unixctl and
/// detach options, which the lab adds from `dir` and `stem`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Directory of its pidfile, log and control socket.
    pub dir: PathBuf,
    /// File stem in `dir` (`<stem>.pid`, `<stem>.log`).
    pub stem: String,
    /// Whether it was given `--unixctl` (see the process module).
    pub takes_unixctl: bool,
}

/// One member of a central database (a standalone server is a cluster of one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DbMember {
    /// The process name in [`LabState::processes`].
    pub process: String,
    /// `unix:` socket clients use.
    pub remote: String,
    /// RAFT address (`tcp:127.0.0.1:PORT`), when clustered.
    pub raft_address: Option<String>,
    /// `ssl:127.0.0.1:PORT` clients use when the lab runs with SSL.
    #[serde(default)]
    pub ssl_remote: Option<String>,
}

/// The record in `DIR/lab.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LabState {
    pub prefix: String,
    pub run_dir: PathBuf,
    /// `false` until bring-up finished; `lab status` says so.
    pub complete: bool,
    pub clustered: bool,
    /// What clients use: `ssl:` remotes when `ssl`, else the unix sockets.
    pub nb_remote: String,
    pub sb_remote: String,
    pub sb_remote_for_chassis: String,
    /// NB, SB and chassis connections are TLS (`enable_ssl`), with certificates in `DIR/pki`.
    #[serde(default)]
    pub ssl: bool,
    /// The chassis-facing SB connection has `role=ovn-controller` (SB RBAC).
    #[serde(default)]
    pub rbac: bool,
    /// The servers' unix sockets (always there; the lab's own checks use them).
    #[serde(default)]
    pub nb_unix: String,
    #[serde(default)]
    pub sb_unix: String,
    /// ovn-heater's own key and certificate (CN `ovn-heater`) for the `ssl:` remotes.
    #[serde(default)]
    pub client_tls: Option<crate::pki::TlsFiles>,
    pub nb_members: Vec<DbMember>,
    pub sb_members: Vec<DbMember>,
    pub processes: Vec<ProcessInfo>,
    /// Every namespace created, in creation order (teardown deletes in reverse).
    pub netns: Vec<String>,
    pub chassis: Vec<RealChassis>,
    pub external_host: Option<ExternalHost>,
    pub versions: BTreeMap<String, String>,
    pub ovs_appctl: PathBuf,
    pub ip: PathBuf,
}

pub(crate) const STATE_FILE: &str = "lab.json";

impl LabState {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(STATE_FILE)
    }

    pub fn load(run_dir: &Path) -> Result<LabState> {
        let path = Self::path(run_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoLab {
                    run_dir: run_dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        serde_json::from_str(&text).map_err(|e| Error::State {
            path,
            reason: e.to_string(),
        })
    }

    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.run_dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }
}

/// The lab state shared by bring-up tasks; every change is written to `lab.json` at once, so
/// whatever exists is always on record for teardown.
#[derive(Clone)]
pub(crate) struct Recorder(std::sync::Arc<std::sync::Mutex<LabState>>);

impl Recorder {
    pub fn new(state: LabState) -> Self {
        Recorder(std::sync::Arc::new(std::sync::Mutex::new(state)))
    }

    /// Applies `f` and saves. A failed save is logged, not returned: the in-memory record
    /// (used by an in-process teardown) is still right.
    pub fn update(&self, f: impl FnOnce(&mut LabState)) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        if let Err(e) = s.save() {
            tracing::warn!("{e}");
        }
    }

    pub fn process(&self, p: ProcessInfo) {
        self.update(|s| s.processes.push(p));
    }

    pub fn netns(&self, name: String) {
        self.update(|s| {
            if !s.netns.contains(&name) {
                s.netns.push(name)
            }
        });
    }

    pub fn snapshot(&self) -> LabState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
