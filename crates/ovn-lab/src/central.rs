//! The central part of a lab: NB and SB `ovsdb-server`s (standalone, or 3-member RAFT clusters
//! over loopback TCP), SB relays, and `ovn-northd`.
//!
//! Each server (and relay) listens on `DIR/<db>/<member>.sock`, and a clustered database's
//! remote is the comma-separated list of its members' sockets. RAFT's own traffic uses TCP on
//! 127.0.0.1 ports chosen free at bring-up.
//!
//! With SSL (a [`LabPki`]), every server and relay also listens on `pssl:` on a free loopback
//! port, with its own certificate, and northd, relays and clients use those `ssl:` remotes. A
//! standalone SB has a second `pssl:` listener for chassis, from a `Connection` row with
//! `role=ovn-controller` (SB RBAC, as `ovn-sbctl set-connection role=ovn-controller pssl:…`
//! makes it). RAFT members and relays share their `Connection` rows with the SB, and on one
//! host they cannot all listen on the address such a row names: there chassis connect without
//! a role (SSL, no RBAC).
//!
//! Must not know: chassis, namespaces, Neutron.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pki::LabPki;
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
    /// SSL on: every daemon gets a certificate from here.
    pub pki: Option<Arc<LabPki>>,
}

/// The remotes of a started central part.
#[derive(Clone, Debug)]
pub(crate) struct Central {
    pub nb_members: Vec<DbMember>,
    pub sb_members: Vec<DbMember>,
    /// What clients use (`ssl:` with SSL on).
    pub nb_remote: String,
    pub sb_remote: String,
    pub sb_remote_for_chassis: String,
    pub nb_unix: String,
    pub sb_unix: String,
    /// The chassis-facing SB connection has `role=ovn-controller`.
    pub rbac: bool,
}

fn remote_list(members: &[DbMember]) -> String {
    members.iter().map(|m| m.remote.as_str()).collect::<Vec<_>>().join(",")
}

/// The `ssl:` remotes of `members` when they have them, else their unix sockets.
fn client_list(members: &[DbMember]) -> String {
    members
        .iter()
        .map(|m| m.ssl_remote.as_deref().unwrap_or(&m.remote))
        .collect::<Vec<_>>()
        .join(",")
}

/// The role a chassis gets on the SB's chassis-facing connection (OVN's RBAC role).
const CHASSIS_ROLE: &str = "ovn-controller";

/// Waits until a socket listens on 127.0.0.1:`port`. Read from `/proc/net/tcp` rather than
/// by connecting: a TLS server logs every probe that hangs up before its handshake.
async fn wait_listening(what: &str, port: u16) -> Result<()> {
    poll_until(
        &format!("{what} listening on 127.0.0.1:{port}"),
        Duration::from_secs(10),
        || is_listening(port),
    )
    .await
}

fn is_listening(port: u16) -> bool {
    // Lines: `sl local_address rem_address st ...`; 0100007F:PORT is 127.0.0.1, state 0A LISTEN.
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|table| {
        table.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some(local.as_str()) && fields.nth(1) == Some("0A")
        })
    })
}

impl CentralSpec {
    /// Starts NB and SB (in parallel), then the relays, then northd.
    pub async fn start(&self, rec: &Recorder) -> Result<Central> {
        let (nb, sb) = tokio::join!(self.start_db(Db::Nb, rec), self.start_db(Db::Sb, rec));
        let (nb_members, (sb_members, sb_chassis)) = (nb?.0, sb?);
        let nb_unix = remote_list(&nb_members);
        let sb_unix = remote_list(&sb_members);
        let nb_remote = client_list(&nb_members);
        let sb_remote = client_list(&sb_members);
        let tls_args = |name: &str| -> Result<Vec<String>> {
            match &self.pki {
                Some(pki) => Ok(pki.issue(name)?.daemon_args()),
                None => Ok(Vec::new()),
            }
        };

        let mut relays = Vec::new();
        let relay_dir = self.run_dir.join("sb-relay");
        if self.n_relays > 0 {
            mkdir(&relay_dir)?;
        }
        let relay_ports = if self.pki.is_some() {
            free_loopback_ports(self.n_relays)?
        } else {
            Vec::new()
        };
        for i in 1..=self.n_relays {
            let sock = relay_dir.join(format!("relay-{i}.sock"));
            let mut args = vec![format!("--remote=punix:{}", sock.display())];
            let ssl_port = relay_ports.get(i - 1).copied();
            if let Some(port) = ssl_port {
                args.extend(tls_args(&format!("sb-relay-{i}"))?);
                args.push(format!("--remote=pssl:{port}:127.0.0.1"));
            }
            args.push(format!("relay:{}:{sb_remote}", Db::Sb.schema_name()));
            Daemon {
                name: format!("sb-relay-{i}"),
                role: ProcessRole::SbRelay,
                program: self.binaries.ovsdb_server.clone(),
                dir: relay_dir.clone(),
                stem: format!("relay-{i}"),
                args,
                env: Vec::new(),
                netns: None,
                chassis: None,
                takes_unixctl: true,
            }
            .start(&self.binaries.ip, |p| rec.process(p))
            .await?;
            match ssl_port {
                Some(port) => {
                    wait_listening(&format!("sb-relay-{i}"), port).await?;
                    relays.push(format!("ssl:127.0.0.1:{port}"));
                }
                None => relays.push(format!("unix:{}", sock.display())),
            }
        }

        let northd_dir = self.run_dir.join("northd");
        mkdir(&northd_dir)?;
        Daemon {
            name: "northd".into(),
            role: ProcessRole::Northd,
            program: self.binaries.ovn_northd.clone(),
            dir: northd_dir.clone(),
            stem: "ovn-northd".into(),
            args: [
                format!("--ovnnb-db={nb_remote}"),
                format!("--ovnsb-db={sb_remote}"),
                format!("--n-threads={}", self.northd_threads),
            ]
            .into_iter()
            .chain(tls_args("northd")?)
            .collect(),
            env: vec![("OVN_RUNDIR".into(), northd_dir.display().to_string())],
            netns: None,
            chassis: None,
            takes_unixctl: true,
        }
        .start(&self.binaries.ip, |p| rec.process(p))
        .await?;

        let rbac = relays.is_empty() && sb_chassis.is_some();
        let sb_remote_for_chassis = match (relays.is_empty(), sb_chassis) {
            (false, _) => relays.join(","),
            (true, Some(chassis)) => chassis,
            (true, None) => sb_remote.clone(),
        };
        Ok(Central {
            nb_members,
            sb_members,
            nb_remote,
            sb_remote,
            sb_remote_for_chassis,
            nb_unix,
            sb_unix,
            rbac,
        })
    }

    /// Starts one database; returns its members and, for a standalone SB with SSL, the
    /// chassis-facing `ssl:` remote that has `role=ovn-controller`.
    async fn start_db(&self, db: Db, rec: &Recorder) -> Result<(Vec<DbMember>, Option<String>)> {
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

        // With SSL each member also listens on pssl: on a free loopback port, with its own
        // certificate.
        let ssl_ports = if self.pki.is_some() {
            free_loopback_ports(if self.clustered { 3 } else { 2 })?
        } else {
            Vec::new()
        };
        let with_ssl = |server: &mut Daemon, i: usize| -> Result<Option<String>> {
            let (Some(pki), Some(port)) = (&self.pki, ssl_ports.get(i - 1)) else {
                return Ok(None);
            };
            server.args.extend(pki.issue(&server.name)?.daemon_args());
            server.args.push(format!("--remote=pssl:{port}:127.0.0.1"));
            Ok(Some(format!("ssl:127.0.0.1:{port}")))
        };

        if !self.clustered {
            let (name, file, sock) = member(1);
            let _ = std::fs::remove_file(&file);
            Cmd::new(&b.ovsdb_tool)
                .args(["create".into(), file.display().to_string(), schema])
                .run()
                .await?;
            let mut server = daemon(&name, &file, &sock);
            let ssl_remote = with_ssl(&mut server, 1)?;
            // Options such as a probe interval or an RBAC role can only be set on a Connection
            // row: those listeners become rows, written into the file before the server opens it.
            let mut connections = Vec::new();
            if let Some(probe) = self.db_inactivity_probe_ms {
                connections.push(serde_json::json!({
                    "target": format!("punix:{}", sock.display()), "inactivity_probe": probe}));
                server.args.remove(1);
            }
            let chassis_remote = match (db, ssl_ports.get(1)) {
                (Db::Sb, Some(port)) => {
                    let mut row = serde_json::json!({
                        "target": format!("pssl:{port}:127.0.0.1"), "role": CHASSIS_ROLE});
                    if let Some(probe) = self.db_inactivity_probe_ms {
                        row["inactivity_probe"] = probe.into();
                    }
                    connections.push(row);
                    Some(format!("ssl:127.0.0.1:{port}"))
                }
                _ => None,
            };
            if !connections.is_empty() {
                let mut txn = vec![serde_json::json!(db.schema_name())];
                let mut names = Vec::new();
                for (i, row) in connections.into_iter().enumerate() {
                    let name = format!("conn{i}");
                    txn.push(serde_json::json!({"op": "insert", "table": "Connection", "uuid-name": name, "row": row}));
                    names.push(serde_json::json!(["named-uuid", name]));
                }
                txn.push(serde_json::json!({"op": "insert", "table": db.global_table(),
                    "row": {"connections": ["set", names]}}));
                Cmd::new(&b.ovsdb_tool)
                    .args([
                        "transact".into(),
                        file.display().to_string(),
                        serde_json::Value::Array(txn).to_string(),
                    ])
                    .run()
                    .await?;
                server.args.push(format!(
                    "--remote=db:{},{},connections",
                    db.schema_name(),
                    db.global_table()
                ));
            }
            server.start(&b.ip, |p| rec.process(p)).await?;
            // Remotes from the database are opened in the main loop, possibly after detaching.
            poll_until(
                &format!("{} socket {}", db.schema_name(), sock.display()),
                Duration::from_secs(10),
                || sock.exists(),
            )
            .await?;
            for remote in ssl_remote.iter().chain(&chassis_remote) {
                let port = remote.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                wait_listening(&format!("{} ({remote})", db.schema_name()), port).await?;
            }
            return Ok((
                vec![DbMember {
                    process: name,
                    remote: format!("unix:{}", sock.display()),
                    raft_address: None,
                    ssl_remote,
                }],
                chassis_remote,
            ));
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
            let mut server = daemon(&name, &file, &sock);
            let ssl_remote = with_ssl(&mut server, i)?;
            server.start(&b.ip, |p| rec.process(p)).await?;
            members.push(DbMember {
                process: name,
                remote: format!("unix:{}", sock.display()),
                raft_address: Some(addr(i)),
                ssl_remote,
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
            if let Some(port) = m.ssl_remote.as_deref().and_then(|r| r.rsplit(':').next()?.parse().ok()) {
                wait_listening(&m.process, port).await?;
            }
        }
        Ok((members, None))
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
