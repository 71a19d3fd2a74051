//! The central part of a lab: NB and SB `ovsdb-server`s (standalone, or 3-member RAFT clusters
//! over loopback TCP), SB relays, and `ovn-northd`.
//!
//! Clients always use unix sockets: each server (and relay) listens on `DIR/<db>/<member>.sock`,
//! and a clustered database's remote is the comma-separated list of its members' sockets. Only
//! RAFT's own traffic uses TCP, on 127.0.0.1 ports chosen free at bring-up.
//!
//! Must not know: chassis, namespaces, Neutron.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{poll_until, Cmd, Daemon};
use crate::state::{DbMember, ProcessInfo, ProcessRole, Recorder};
use crate::Binaries;

/// How long a RAFT cluster may take to elect a leader and let every member in.
const CLUSTER_FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the two central databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Nb,
    Sb,
}

impl Db {
    pub fn schema_name(self) -> &'static str {
        match self {
            Db::Nb => "OVN_Northbound",
            Db::Sb => "OVN_Southbound",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Db::Nb => "nb",
            Db::Sb => "sb",
        }
    }
    /// The table whose `connections` column lists the server's `Connection` rows.
    fn global_table(self) -> &'static str {
        match self {
            Db::Nb => "NB_Global",
            Db::Sb => "SB_Global",
        }
    }
    pub fn role(self) -> ProcessRole {
        match self {
            Db::Nb => ProcessRole::NbDb,
            Db::Sb => ProcessRole::SbDb,
        }
    }
    fn schema(self, b: &Binaries) -> &Path {
        match self {
            Db::Nb => &b.nb_schema,
            Db::Sb => &b.sb_schema,
        }
    }
}

/// How the central part is laid out.
#[derive(Clone, Debug)]
pub(crate) struct CentralSpec {
    pub binaries: Binaries,
    pub run_dir: PathBuf,
    pub clustered: bool,
    pub election_timer_ms: Option<u64>,
    pub n_relays: usize,
    pub northd_threads: usize,
    pub db_inactivity_probe_ms: Option<u64>,
}

/// The remotes of a started central part.
#[derive(Clone, Debug)]
pub(crate) struct Central {
    pub nb_members: Vec<DbMember>,
    pub sb_members: Vec<DbMember>,
    pub nb_remote: String,
    pub sb_remote: String,
    pub sb_remote_for_chassis: String,
}

fn remote_list(members: &[DbMember]) -> String {
    members.iter().map(|m| m.remote.as_str()).collect::<Vec<_>>().join(",")
}

impl CentralSpec {
    /// Starts NB and SB (in parallel), then the relays, then northd.
    pub async fn start(&self, rec: &Recorder) -> Result<Central> {
        let (nb, sb) = tokio::join!(self.start_db(Db::Nb, rec), self.start_db(Db::Sb, rec));
        let (nb_members, sb_members) = (nb?, sb?);
        let nb_remote = remote_list(&nb_members);
        let sb_remote = remote_list(&sb_members);

        let mut relays = Vec::new();
        let relay_dir = self.run_dir.join("sb-relay");
        if self.n_relays > 0 {
            mkdir(&relay_dir)?;
        }
        for i in 1..=self.n_relays {
            let sock = relay_dir.join(format!("relay-{i}.sock"));
            Daemon {
                name: format!("sb-relay-{i}"),
                role: ProcessRole::SbRelay,
                program: self.binaries.ovsdb_server.clone(),
                dir: relay_dir.clone(),
                stem: format!("relay-{i}"),
                args: vec![
                    format!("--remote=punix:{}", sock.display()),
                    format!("relay:{}:{sb_remote}", Db::Sb.schema_name()),
                ],
                env: Vec::new(),
                netns: None,
                chassis: None,
                takes_unixctl: true,
            }
            .start(&self.binaries.ip, |p| rec.process(p))
            .await?;
            relays.push(format!("unix:{}", sock.display()));
        }

        let northd_dir = self.run_dir.join("northd");
        mkdir(&northd_dir)?;
        Daemon {
            name: "northd".into(),
            role: ProcessRole::Northd,
            program: self.binaries.ovn_northd.clone(),
            dir: northd_dir.clone(),
            stem: "ovn-northd".into(),
            args: vec![
                format!("--ovnnb-db={nb_remote}"),
                format!("--ovnsb-db={sb_remote}"),
                format!("--n-threads={}", self.northd_threads),
            ],
            env: vec![("OVN_RUNDIR".into(), northd_dir.display().to_string())],
            netns: None,
            chassis: None,
            takes_unixctl: true,
        }
        .start(&self.binaries.ip, |p| rec.process(p))
        .await?;

        let sb_remote_for_chassis = if relays.is_empty() {
            sb_remote.clone()
        } else {
            relays.join(",")
        };
        Ok(Central {
            nb_members,
            sb_members,
            nb_remote,
            sb_remote,
            sb_remote_for_chassis,
        })
    }

    async fn start_db(&self, db: Db, rec: &Recorder) -> Result<Vec<DbMember>> {
        let dir = self.run_dir.join(db.short());
        mkdir(&dir)?;
        let b = &self.binaries;
        let schema = db.schema(b).display().to_string();
        let member = |i: usize| -> (String, PathBuf, PathBuf) {
            if self.clustered {
                (
                    format!("{}-{i}", db.short()),
                    dir.join(format!("{}-{i}.db", db.short())),
                    dir.join(format!("{}-{i}.sock", db.short())),
                )
            } else {
                (
                    db.short().to_owned(),
                    dir.join(format!("{}.db", db.short())),
                    dir.join("db.sock"),
                )
            }
        };
        let daemon = |name: &str, file: &Path, sock: &Path| Daemon {
            name: name.to_owned(),
            role: db.role(),
            program: b.ovsdb_server.clone(),
            dir: dir.clone(),
            stem: name.to_owned(),
            args: vec![file.display().to_string(), format!("--remote=punix:{}", sock.display())],
            env: Vec::new(),
            netns: None,
            chassis: None,
            takes_unixctl: true,
        };

        if !self.clustered {
            let (name, file, sock) = member(1);
            let _ = std::fs::remove_file(&file);
            Cmd::new(&b.ovsdb_tool)
                .args(["create".into(), file.display().to_string(), schema])
                .run()
                .await?;
            let mut server = daemon(&name, &file, &sock);
            if let Some(probe) = self.db_inactivity_probe_ms {
                // A probe interval can only be set on a Connection row, so the socket becomes
                // one, written into the file before the server opens it.
                let txn = serde_json::json!([
                    db.schema_name(),
                    {"op": "insert", "table": "Connection", "uuid-name": "conn",
                     "row": {"target": format!("punix:{}", sock.display()), "inactivity_probe": probe}},
                    {"op": "insert", "table": db.global_table(),
                     "row": {"connections": ["named-uuid", "conn"]}},
                ]);
                Cmd::new(&b.ovsdb_tool)
                    .args(["transact".into(), file.display().to_string(), txn.to_string()])
                    .run()
                    .await?;
                server.args[1] = format!("--remote=db:{},{},connections", db.schema_name(), db.global_table());
            }
            server.start(&b.ip, |p| rec.process(p)).await?;
            // Remotes from the database are opened in the main loop, possibly after detaching.
            poll_until(
                &format!("{} socket {}", db.schema_name(), sock.display()),
                Duration::from_secs(10),
                || sock.exists(),
            )
            .await?;
            return Ok(vec![DbMember {
                process: name,
                remote: format!("unix:{}", sock.display()),
                raft_address: None,
            }]);
        }

        if self.db_inactivity_probe_ms.is_some() {
            // Connection rows are shared by all members, and three servers cannot listen on
            // one unix socket path, so the members keep their command-line sockets.
            tracing::warn!(
                database = db.schema_name(),
                "db_inactivity_probe is not applied to clustered databases (unix-socket remotes have no probe)"
            );
        }
        let ports = free_loopback_ports(3)?;
        let addr = |i: usize| format!("tcp:127.0.0.1:{}", ports[i - 1]);
        let mut members = Vec::new();
        for i in 1..=3 {
            let (name, file, sock) = member(i);
            let _ = std::fs::remove_file(&file);
            let mut tool = Cmd::new(&b.ovsdb_tool);
            if i == 1 {
                if let Some(t) = self.election_timer_ms {
                    tool = tool.arg(format!("--election-timer={t}"));
                }
                tool = tool.args([
                    "create-cluster".into(),
                    file.display().to_string(),
                    schema.clone(),
                    addr(1),
                ]);
            } else {
                tool = tool.args([
                    "join-cluster".into(),
                    file.display().to_string(),
                    db.schema_name().into(),
                    addr(i),
                    addr(1),
                ]);
            }
            tool.run().await?;
            daemon(&name, &file, &sock).start(&b.ip, |p| rec.process(p)).await?;
            members.push(DbMember {
                process: name,
                remote: format!("unix:{}", sock.display()),
                raft_address: Some(addr(i)),
            });
        }
        // Joiners detach before they are in; clients that want the leader need all three.
        for m in &members {
            let ctl = dir.join(format!("{}.ctl", m.process));
            let what = format!("{} to join the {} cluster", m.process, db.schema_name());
            let start = std::time::Instant::now();
            loop {
                let status = raft_status(&b.ovs_appctl, &ctl, db.schema_name())
                    .await
                    .unwrap_or_default();
                if status.contains("Status: cluster member") && !status.contains("Leader: unknown") {
                    break;
                }
                if start.elapsed() > CLUSTER_FORM_TIMEOUT {
                    return Err(Error::Timeout {
                        what,
                        after: CLUSTER_FORM_TIMEOUT,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(members)
    }
}

/// `ovs-appctl cluster/status DB` of one member.
pub(crate) async fn raft_status(appctl: &Path, ctl: &Path, db: &str) -> Result<String> {
    Cmd::new(appctl)
        .args([
            "-T".into(),
            "5".into(),
            "-t".into(),
            ctl.display().to_string(),
            "cluster/status".into(),
            db.into(),
        ])
        .run()
        .await
}

/// The member of `members` that is currently the RAFT leader, if any answers so.
pub(crate) async fn find_leader<'a>(appctl: &Path, db: Db, members: &'a [ProcessInfo]) -> Option<&'a ProcessInfo> {
    for m in members {
        if let Ok(s) = raft_status(appctl, &m.ctl_path, db.schema_name()).await {
            if s.lines().any(|l| l.trim() == "Role: leader") {
                return Some(m);
            }
        }
    }
    None
}

/// Waits until some member of `members` is leader (after the previous one died).
pub(crate) async fn wait_for_leader(
    appctl: &Path,
    db: Db,
    members: &[ProcessInfo],
    limit: Duration,
) -> Result<ProcessInfo> {
    let mut found = None;
    let start = std::time::Instant::now();
    while found.is_none() && start.elapsed() < limit {
        found = find_leader(appctl, db, members).await.cloned();
        if found.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    found.ok_or(Error::Timeout {
        what: format!("a new {} leader", db.schema_name()),
        after: limit,
    })
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

/// `n` distinct loopback ports that were free a moment ago (the kernel picks them).
fn free_loopback_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("cannot find free loopback ports for RAFT", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("cannot find free loopback ports for RAFT", e))
}
