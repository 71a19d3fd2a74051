//! Real OVSDB daemons for integration tests: a standalone `ovsdb-server`, a RAFT cluster of
//! them, and an OVN central (NB + SB + `ovn-northd`). Synchronous (`std::process`), so it works
//! from plain `#[test]`s and from `#[tokio::test]`s alike.
//!
//! ```no_run
//! use test_support::{Central, OvsdbServer, RaftCluster};
//! test_support::require_ovn!("my_test", ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]);
//! let nb = OvsdbServer::standalone("my_test", "/usr/share/ovn/ovn-nb.ovsschema");
//! let _remote = nb.remote(); // "unix:/tmp/ovn-heater-tests/my_test-…/ovsdb.sock"
//! let _tcp = nb.tcp_remote(); // "tcp:127.0.0.1:PORT"
//!
//! let mut cluster = RaftCluster::start("my_test", "/usr/share/ovn/ovn-sb.ovsschema", 3);
//! let leader = cluster.wait_for_leader(std::time::Duration::from_secs(10));
//! cluster.kill(leader);
//! cluster.restart(leader);
//!
//! let central = Central::start("my_test");
//! let (_nb, _sb, _pid) = (central.nb_remote(), central.sb_remote(), central.northd_pid());
//! ```
//!
//! # API
//! - [`OvsdbServer::standalone`]`(test, schema)`: creates a database with `ovsdb-tool create` in
//!   a fresh [`TempDir`] and serves it on a unix socket ([`OvsdbServer::remote`]) and on a
//!   loopback TCP port the server chose itself ([`OvsdbServer::tcp_remote`]; the port is read
//!   from the server's log and kept across restarts). [`OvsdbServer::pid`],
//!   [`OvsdbServer::db_path`], [`OvsdbServer::database`] (the schema's name),
//!   [`OvsdbServer::stop`] (SIGTERM), [`OvsdbServer::kill`] (SIGKILL), [`OvsdbServer::restart`],
//!   [`OvsdbServer::appctl`], [`OvsdbServer::log_tail`]; for in-flight tests
//!   [`OvsdbServer::pause`]/[`OvsdbServer::resume`] (SIGSTOP/SIGCONT),
//!   [`OvsdbServer::wait_pending_transactions`] (the server holds N transactions unanswered,
//!   from `memory/show`) and [`OvsdbServer::received_requests`] (how often a request reached
//!   the server, from its own JSON-RPC log after [`OvsdbServer::log_received_messages`]).
//! - [`RaftCluster::start`]`(test, schema, n)` (or [`RaftCluster::start_with`] to set the
//!   election timer): `ovsdb-tool create-cluster` + `join-cluster` on loopback TCP ports, each
//!   member also serving clients on a unix socket and a TCP port. [`RaftCluster::remotes`] is
//!   the comma-separated unix list, [`RaftCluster::tcp_remotes`] the TCP one;
//!   [`RaftCluster::member`]`(i)`, [`RaftCluster::kill`]`(i)`, [`RaftCluster::stop`]`(i)`,
//!   [`RaftCluster::restart`]`(i)`, [`RaftCluster::leader_index`] (from `cluster/status`),
//!   [`RaftCluster::wait_for_leader`], [`RaftCluster::wait_for_new_leader`],
//!   [`RaftCluster::transfer_leadership`], [`RaftCluster::pause`], [`RaftCluster::resume`].
//! - [`Central::start`]`(test)`: NB and SB standalone servers plus `ovn-northd` on unix sockets:
//!   [`Central::nb_remote`], [`Central::sb_remote`], [`Central::northd_pid`], [`Central::nb`],
//!   [`Central::sb`], [`Central::kill_northd`], [`Central::restart_northd`].
//!
//! # Guarantees
//! - Every wait is bounded ([`START_TIMEOUT`], [`STOP_TIMEOUT`]); a daemon that does not come up
//!   panics with the command line and the tail of its log.
//! - Daemons are killed when their handle drops (SIGTERM, then SIGKILL), and also when the
//!   thread that started them dies (`PR_SET_PDEATHSIG`), so a test killed by a timeout leaves
//!   nothing behind. Create handles on the test's own thread, not on a short-lived helper
//!   thread (e.g. `spawn_blocking`), or the daemons die with that thread.
//! - Nothing is written outside the temp dir (`OVS_RUNDIR`, `OVS_LOGDIR`, … point into it), and
//!   the dir is kept when the test panicked so the logs can be read.
//! - Only unix sockets and 127.0.0.1 are used. TCP ports are chosen by the kernel (bind to port
//!   0), never guessed; a RAFT cluster whose ports were taken meanwhile is rebuilt on new ports.
//!
//! Must not know: the `ovsdb` crate (it dev-depends on this one), OVN table contents.

use std::ffi::OsString;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{find_binary, TempDir};

/// How long a daemon may take to become ready (the machine may be loaded by parallel tests).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a RAFT cluster may take to elect a leader and have every member joined.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

const POLL: Duration = Duration::from_millis(20);

/// Path of an OVN/OVS binary, panicking with the install hint when it is missing
/// (tests call `require_ovn!` first, so this only fires on a forgotten requirement).
fn binary(name: &str) -> PathBuf {
    find_binary(name).unwrap_or_else(|| {
        panic!(
            "{}",
            crate::missing_binary(&[name]).unwrap_or_else(|| format!("{name} not found"))
        )
    })
}

/// Runs a short command to completion (ovsdb-tool, ovs-appctl), returning stdout or a message
/// with its stderr.
fn run_tool(program: &str, args: &[OsString]) -> Result<String, String> {
    let output = Command::new(binary(program))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed ({}): {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn os_args<I: IntoIterator<Item = S>, S: Into<OsString>>(args: I) -> Vec<OsString> {
    args.into_iter().map(Into::into).collect()
}

fn flag(name: &str, path: &Path) -> OsString {
    let mut f = OsString::from(name);
    f.push(path.as_os_str());
    f
}

/// The last `lines` lines of a file, or a note that it cannot be read.
fn file_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `n` distinct loopback TCP ports the kernel just handed out. The listeners are closed on
/// return, so a port can in principle be taken again before the daemon binds it; callers
/// that cannot tolerate that retry with fresh ports.
pub fn free_tcp_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// A test directory short enough for unix socket paths (108 bytes on Linux).
fn daemon_dir(test: &str) -> TempDir {
    let short: String = test.chars().take(40).collect();
    TempDir::new(&short)
}

/// One child daemon: how to (re)start it and the running process.
struct Daemon {
    label: String,
    program: PathBuf,
    args: Vec<OsString>,
    env_dir: PathBuf,
    log: PathBuf,
    console: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn new(label: &str, program: &str, args: Vec<OsString>, dir: &Path, log: PathBuf) -> Self {
        Daemon {
            label: label.to_owned(),
            program: binary(program),
            args,
            env_dir: dir.to_owned(),
            console: dir.join(format!("{label}.console")),
            log,
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.label);
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console)
            .expect("open console log");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("dup console log"))
            .stderr(console);
        for var in [
            "OVS_RUNDIR",
            "OVS_LOGDIR",
            "OVS_DBDIR",
            "OVN_RUNDIR",
            "OVN_LOGDIR",
            "OVN_DBDIR",
        ] {
            cmd.env(var, &self.env_dir);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({}): {e}", self.label, self.program.display()));
        self.child = Some(child);
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Reaps the child if it exited; returns its exit status then.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn is_running(&mut self) -> bool {
        self.exited();
        self.child.is_some()
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on our own, not yet reaped, child.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after [`STOP_TIMEOUT`].
    fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        self.signal(libc::SIGTERM);
        // A paused daemon would hold the SIGTERM until the SIGKILL.
        self.signal(libc::SIGCONT);
        if !self.wait_exit(STOP_TIMEOUT) {
            self.kill();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn command_line(&self) -> String {
        std::iter::once(self.program.to_string_lossy())
            .chain(self.args.iter().map(|a| a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {} ---\n{}\n--- {} ---\n{}",
            self.log.display(),
            file_tail(&self.log, lines),
            self.console.display(),
            file_tail(&self.console, lines)
        )
    }

    /// Panics with everything a developer needs to see why the daemon did not come up.
    fn fail(&mut self, why: &str) -> ! {
        self.kill();
        panic!(
            "{} did not start: {why}\ncommand: {}\n{}",
            self.label,
            self.command_line(),
            self.log_tail(30)
        );
    }

    /// Polls `ready` until it returns true, failing if the daemon exits or the time is up.
    fn wait_ready(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                self.fail(&format!("it exited ({status}) before {what}"));
            }
            if ready(self) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no {what} after {timeout:?}"));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn unix_socket_accepts(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// The port a `ptcp:0:127.0.0.1` remote got, from the `listening on port N` log line.
fn logged_tcp_port(log: &Path) -> Option<u16> {
    let mut text = String::new();
    std::fs::File::open(log).ok()?.read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|l| l.contains("0:127.0.0.1: listening on port "))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse().ok())
        .next_back()
}

/// The database name a schema file declares.
fn schema_name(schema: &Path) -> String {
    run_tool("ovsdb-tool", &os_args([OsString::from("schema-name"), schema.into()]))
        .unwrap_or_else(|e| panic!("cannot read schema {}: {e}", schema.display()))
        .trim()
        .to_owned()
}

/// One `ovsdb-server` serving one database file, standalone or as a RAFT member.
pub struct OvsdbServer {
    database: String,
    db_path: PathBuf,
    sock: PathBuf,
    ctl: PathBuf,
    tcp_port: Option<u16>,
    /// The `pssl:` listener's port, when serving TLS too (chosen free before the first start).
    ssl_port: Option<u16>,
    daemon: Daemon,
    /// Owned only by standalone servers; members of a cluster or a central share their owner's.
    /// Declared after `daemon` so the process is gone before its files are removed.
    _dir: Option<TempDir>,
}

impl OvsdbServer {
    /// A standalone server with an empty database created from `schema`, ready to serve.
    pub fn standalone(test: &str, schema: impl AsRef<Path>) -> Self {
        let dir = daemon_dir(test);
        let mut server = Self::create_standalone(dir.path(), "ovsdb", schema.as_ref());
        server._dir = Some(dir);
        server.start();
        server
    }

    /// A standalone server in `dir` with file names starting with `prefix`; not started.
    fn create_standalone(dir: &Path, prefix: &str, schema: &Path) -> Self {
        let db_path = dir.join(format!("{prefix}.db"));
        run_tool(
            "ovsdb-tool",
            &os_args([OsString::from("create"), db_path.clone().into(), schema.into()]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self::new(dir, prefix, schema_name(schema), db_path)
    }

    fn new(dir: &Path, prefix: &str, database: String, db_path: PathBuf) -> Self {
        let sock = dir.join(format!("{prefix}.sock"));
        let ctl = dir.join(format!("{prefix}.ctl"));
        let log = dir.join(format!("{prefix}.log"));
        let args = os_args([
            db_path.clone().into_os_string(),
            flag("--remote=punix:", &sock),
            flag("--unixctl=", &ctl),
            flag("--log-file=", &log),
            "-vconsole:off".into(),
            "-vfile:info".into(),
        ]);
        OvsdbServer {
            daemon: Daemon::new(&format!("ovsdb-server {prefix}"), "ovsdb-server", args, dir, log),
            database,
            db_path,
            sock,
            ctl,
            tcp_port: None,
            ssl_port: None,
            _dir: None,
        }
    }

    /// A standalone server like [`OvsdbServer::standalone`] that also serves TLS on a loopback
    /// port ([`OvsdbServer::ssl_remote`]) with the server's key, certificate and CA `tls`
    /// (clients must present a certificate signed by that CA).
    pub fn standalone_ssl(test: &str, schema: impl AsRef<Path>, tls: &crate::TlsFiles) -> Self {
        let dir = daemon_dir(test);
        let mut server = Self::create_standalone(dir.path(), "ovsdb", schema.as_ref());
        server._dir = Some(dir);
        server.serve_ssl(tls);
        server.start();
        server
    }

    /// Adds the TLS files and a `pssl:` listener on a free loopback port to the command line.
    fn serve_ssl(&mut self, tls: &crate::TlsFiles) {
        self.daemon
            .args
            .extend(tls.daemon_args().into_iter().map(OsString::from));
        self.ssl_port = Some(free_tcp_ports(1)[0]);
        self.daemon
            .args
            .push(format!("--remote=pssl:{}:127.0.0.1", self.ssl_port.unwrap_or(0)).into());
    }

    /// Starts the process and waits until both remotes accept clients.
    fn start(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let tcp_remote = format!("--remote=ptcp:{}:127.0.0.1", self.tcp_port.unwrap_or(0));
        let tcp_arg = self
            .daemon
            .args
            .iter()
            .position(|a| a.to_string_lossy().starts_with("--remote=ptcp:"));
        match tcp_arg {
            Some(i) => self.daemon.args[i] = tcp_remote.into(),
            None => self.daemon.args.push(tcp_remote.into()),
        }
        self.daemon.spawn();
        let sock = self.sock.clone();
        self.daemon
            .wait_ready("unix socket accepting connections", START_TIMEOUT, |_| {
                unix_socket_accepts(&sock)
            });
        let port = match self.tcp_port {
            // ovsdb-server logs the port only when it chose it; a fixed port must accept.
            Some(port) => {
                self.daemon
                    .wait_ready(&format!("TCP listener on 127.0.0.1:{port}"), START_TIMEOUT, |_| {
                        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    });
                Some(port)
            }
            None => {
                let mut port = None;
                self.daemon
                    .wait_ready("TCP listening port in the log", START_TIMEOUT, |d| {
                        port = logged_tcp_port(&d.log);
                        port.is_some()
                    });
                port
            }
        };
        self.tcp_port = port;
        if let Some(port) = self.ssl_port {
            self.daemon
                .wait_ready(&format!("TLS listener on 127.0.0.1:{port}"), START_TIMEOUT, |_| {
                    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                });
        }
    }

    /// `unix:<socket>`, for clients.
    pub fn remote(&self) -> String {
        format!("unix:{}", self.sock.display())
    }
    /// `tcp:127.0.0.1:<port>`, the same server over TCP.
    pub fn tcp_remote(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port.expect("server was started"))
    }
    /// `ssl:127.0.0.1:<port>`, the same server over TLS; panics unless started with TLS.
    pub fn ssl_remote(&self) -> String {
        format!("ssl:127.0.0.1:{}", self.ssl_port.expect("server serves TLS"))
    }
    pub fn socket_path(&self) -> &Path {
        &self.sock
    }
    /// The unixctl socket, for `ovs-appctl -t`.
    pub fn ctl_path(&self) -> &Path {
        &self.ctl
    }
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }
    pub fn log_path(&self) -> &Path {
        &self.daemon.log
    }
    /// The database name (the schema's `name`).
    pub fn database(&self) -> &str {
        &self.database
    }
    /// The server's process id; panics when it is not running.
    pub fn pid(&self) -> u32 {
        self.daemon
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.daemon.label))
    }
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }
    /// Graceful stop (SIGTERM, SIGKILL after [`STOP_TIMEOUT`]).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
    /// Abrupt stop (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }
    /// Freezes the process (SIGSTOP): it keeps its sockets, and what clients and peers send it
    /// waits in the kernel's buffers. [`OvsdbServer::resume`] lets it go on.
    pub fn pause(&self) {
        self.daemon.signal(libc::SIGSTOP);
    }
    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.daemon.signal(libc::SIGCONT);
    }
    /// How many transactions the server holds unanswered (a `wait` that is not satisfied yet,
    /// a clustered commit not yet replicated), from `memory/show`'s `triggers:` figure.
    pub fn pending_transactions(&self) -> Result<u64, String> {
        let usage = self.appctl(&["memory/show"])?;
        Ok(usage
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("triggers:")?.parse().ok())
            .unwrap_or(0))
    }
    /// Waits until the server holds `n` unanswered transactions; panics with the log tail after
    /// `timeout`.
    pub fn wait_pending_transactions(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.pending_transactions();
            if now == Ok(n) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} never held {n} unanswered transaction(s) within {timeout:?} (last: {now:?})\n{}",
                    self.daemon.label,
                    self.log_tail(20)
                );
            }
            std::thread::sleep(POLL);
        }
    }
    /// Logs every JSON-RPC message the server receives (`jsonrpc:file:dbg`), so a test can
    /// count how often a request reached it with [`OvsdbServer::received_requests`].
    pub fn log_received_messages(&self) {
        self.appctl(&["vlog/set", "jsonrpc:file:dbg"])
            .unwrap_or_else(|e| panic!("cannot raise the jsonrpc log level: {e}"));
    }
    /// The logged requests for `method` whose line contains `needle` (needs
    /// [`OvsdbServer::log_received_messages`] first; the log survives restarts and kills).
    pub fn received_requests(&self, method: &str, needle: &str) -> Vec<String> {
        let text = std::fs::read(&self.daemon.log).unwrap_or_default();
        let method = format!("received request, method=\"{method}\"");
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| l.contains(&method) && l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
    /// Starts the server again on the same files and ports (stopping it first if running).
    pub fn restart(&mut self) {
        self.daemon.stop();
        self.start();
    }
    /// Runs `ovs-appctl -t <ctl> <args>` with a 5 s timeout.
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = os_args(["--timeout=5".into(), "-t".into(), self.ctl.clone().into_os_string()]);
        all.extend(args.iter().map(OsString::from));
        run_tool("ovs-appctl", &all)
    }
    /// The last lines of the server's log (for assertion messages).
    pub fn log_tail(&self, lines: usize) -> String {
        self.daemon.log_tail(lines)
    }
    /// This member's RAFT `Role:` line value (`leader`, `follower`, `candidate`), if clustered.
    fn raft_role(&self) -> Option<String> {
        let status = self.appctl(&["cluster/status", &self.database]).ok()?;
        status
            .lines()
            .find_map(|l| l.trim().strip_prefix("Role:").map(|r| r.trim().to_owned()))
    }
    fn raft_is_member(&self) -> bool {
        self.appctl(&["cluster/status", &self.database])
            .map(|s| s.lines().any(|l| l.trim() == "Status: cluster member"))
            .unwrap_or(false)
    }
}

/// A RAFT cluster of `ovsdb-server`s on loopback TCP ports.
pub struct RaftCluster {
    members: Vec<OvsdbServer>,
    raft_ports: Vec<u16>,
    database: String,
    /// After `members` so every process is gone before the files are removed.
    _dir: TempDir,
}

impl RaftCluster {
    /// `n` members with the default election timer (1000 ms), ready: every member joined and a
    /// leader elected.
    pub fn start(test: &str, schema: impl AsRef<Path>, n: usize) -> Self {
        Self::start_with(test, schema, n, None)
    }

    /// Like [`RaftCluster::start`], with the election timer in milliseconds (100..=600000).
    pub fn start_with(test: &str, schema: impl AsRef<Path>, n: usize, election_timer_ms: Option<u64>) -> Self {
        Self::start_inner(test, schema.as_ref(), n, election_timer_ms, None)
    }

    /// Like [`RaftCluster::start`], each member also serving TLS to clients
    /// ([`RaftCluster::ssl_remotes`]) with the key, certificate and CA `tls` (RAFT's own
    /// traffic stays on TCP).
    pub fn start_ssl(test: &str, schema: impl AsRef<Path>, n: usize, tls: &crate::TlsFiles) -> Self {
        Self::start_inner(test, schema.as_ref(), n, None, Some(tls))
    }

    fn start_inner(
        test: &str,
        schema: &Path,
        n: usize,
        election_timer_ms: Option<u64>,
        tls: Option<&crate::TlsFiles>,
    ) -> Self {
        assert!(n >= 1, "a cluster needs at least one member");
        const ATTEMPTS: usize = 3;
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start(test, schema, n, election_timer_ms, tls) {
                Ok(cluster) => return cluster,
                Err(e) => last_error = e,
            }
        }
        panic!("RAFT cluster did not form after {ATTEMPTS} attempts on fresh ports:\n{last_error}");
    }

    fn try_start(
        test: &str,
        schema: &Path,
        n: usize,
        election_timer_ms: Option<u64>,
        tls: Option<&crate::TlsFiles>,
    ) -> Result<Self, String> {
        let dir = daemon_dir(test);
        let database = schema_name(schema);
        let raft_ports = free_tcp_ports(n);
        let address = |i: usize| format!("tcp:127.0.0.1:{}", raft_ports[i]);
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let prefix = format!("m{i}");
            let db_path = dir.path().join(format!("{prefix}.db"));
            let mut args = Vec::new();
            if i == 0 {
                if let Some(ms) = election_timer_ms {
                    args.push(OsString::from(format!("--election-timer={ms}")));
                }
                args.extend(os_args([
                    OsString::from("create-cluster"),
                    db_path.clone().into(),
                    schema.into(),
                    address(0).into(),
                ]));
            } else {
                args.extend(os_args([
                    OsString::from("join-cluster"),
                    db_path.clone().into(),
                    database.clone().into(),
                    address(i).into(),
                ]));
                args.extend((0..i).map(|j| OsString::from(address(j))));
            }
            run_tool("ovsdb-tool", &args).unwrap_or_else(|e| panic!("{e}"));
            let mut member = OvsdbServer::new(dir.path(), &prefix, database.clone(), db_path);
            if let Some(tls) = tls {
                member.serve_ssl(tls);
            }
            members.push(member);
        }
        // A member's process panics (via `fail`) only when it exits or never opens its client
        // sockets; a RAFT port taken by someone else shows up as a cluster that never forms.
        for m in &mut members {
            m.start();
        }
        let cluster = RaftCluster {
            members,
            raft_ports,
            database,
            _dir: dir,
        };
        cluster.wait_formed(CLUSTER_TIMEOUT)?;
        Ok(cluster)
    }

    fn wait_formed(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.members.iter().all(OvsdbServer::raft_is_member) && self.leader_index().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| {
                        let status = m.appctl(&["cluster/status", &self.database]).unwrap_or_else(|e| e);
                        format!("{status}\n{}", m.log_tail(15))
                    })
                    .collect();
                return Err(format!(
                    "no leader with all {} members joined after {timeout:?} (RAFT ports {:?}):\n{}",
                    self.members.len(),
                    self.raft_ports,
                    logs.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// The database name (the schema's `name`).
    pub fn database(&self) -> &str {
        &self.database
    }
    /// All members' unix sockets, comma-separated (`unix:…,unix:…,unix:…`).
    pub fn remotes(&self) -> String {
        self.members
            .iter()
            .map(OvsdbServer::remote)
            .collect::<Vec<_>>()
            .join(",")
    }
    /// All members' client TCP remotes, comma-separated.
    pub fn tcp_remotes(&self) -> String {
        self.members
            .iter()
            .map(OvsdbServer::tcp_remote)
            .collect::<Vec<_>>()
            .join(",")
    }
    /// All members' client TLS remotes, comma-separated (started with [`RaftCluster::start_ssl`]).
    pub fn ssl_remotes(&self) -> String {
        self.members
            .iter()
            .map(OvsdbServer::ssl_remote)
            .collect::<Vec<_>>()
            .join(",")
    }
    /// The RAFT (server-to-server) address of member `i`.
    pub fn raft_address(&self, i: usize) -> String {
        format!("tcp:127.0.0.1:{}", self.raft_ports[i])
    }
    pub fn member(&self, i: usize) -> &OvsdbServer {
        &self.members[i]
    }
    pub fn member_mut(&mut self, i: usize) -> &mut OvsdbServer {
        &mut self.members[i]
    }
    /// SIGKILL member `i`.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }
    /// SIGTERM member `i` (SIGKILL after [`STOP_TIMEOUT`]).
    pub fn stop(&mut self, i: usize) {
        self.members[i].stop();
    }
    /// Starts member `i` again on its files and ports; it rejoins the cluster by itself.
    pub fn restart(&mut self, i: usize) {
        self.members[i].restart();
    }
    /// SIGSTOP member `i` (see [`OvsdbServer::pause`]).
    pub fn pause(&self, i: usize) {
        self.members[i].pause();
    }
    /// SIGCONT member `i`.
    pub fn resume(&self, i: usize) {
        self.members[i].resume();
    }
    /// Makes leader `i` hand leadership to another member and become a follower, staying in
    /// the cluster (`cluster/failure-test transfer-leadership`).
    pub fn transfer_leadership(&self, i: usize) {
        self.members[i]
            .appctl(&["cluster/failure-test", "transfer-leadership"])
            .unwrap_or_else(|e| panic!("cannot make member {i} transfer leadership: {e}"));
    }
    /// Waits until a member other than `old` is leader; panics with every running member's
    /// status after `timeout`. Paused members must be resumed first (they do not answer).
    pub fn wait_for_new_leader(&self, old: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader_index().filter(|&i| i != old) {
                return i;
            }
            if Instant::now() >= deadline {
                let statuses: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| m.daemon.pid().is_some())
                    .map(|m| m.appctl(&["cluster/status", &self.database]).unwrap_or_else(|e| e))
                    .collect();
                panic!(
                    "no RAFT leader other than member {old} after {timeout:?}:\n{}",
                    statuses.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    /// The member that currently says `Role: leader`, if any (stopped members are skipped).
    pub fn leader_index(&self) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.daemon.pid().is_some() && m.raft_role().as_deref() == Some("leader"))
    }
    /// Waits until some member is leader; panics with every member's status after `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader_index() {
                return i;
            }
            if Instant::now() >= deadline {
                let statuses: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| m.appctl(&["cluster/status", &self.database]).unwrap_or_else(|e| e))
                    .collect();
                panic!("no RAFT leader after {timeout:?}:\n{}", statuses.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An OVN central: NB and SB standalone servers and `ovn-northd` between them, on unix sockets.
pub struct Central {
    northd: Daemon,
    northd_ctl: PathBuf,
    nb: OvsdbServer,
    sb: OvsdbServer,
    /// Last, so every process is gone before the files are removed.
    _dir: TempDir,
}

impl Central {
    /// Default schema locations of Debian's ovn-common.
    pub const NB_SCHEMA: &'static str = "/usr/share/ovn/ovn-nb.ovsschema";
    pub const SB_SCHEMA: &'static str = "/usr/share/ovn/ovn-sb.ovsschema";

    /// Starts NB, SB and ovn-northd; returns once northd reports itself active.
    pub fn start(test: &str) -> Self {
        let dir = daemon_dir(test);
        let mut nb = OvsdbServer::create_standalone(dir.path(), "nb", Path::new(Self::NB_SCHEMA));
        nb.start();
        let mut sb = OvsdbServer::create_standalone(dir.path(), "sb", Path::new(Self::SB_SCHEMA));
        sb.start();
        let northd_ctl = dir.path().join("northd.ctl");
        let args = os_args([
            OsString::from(format!("--ovnnb-db={}", nb.remote())),
            format!("--ovnsb-db={}", sb.remote()).into(),
            flag("--unixctl=", &northd_ctl),
            flag("--log-file=", &dir.path().join("northd.log")),
            "-vconsole:off".into(),
        ]);
        let northd = Daemon::new(
            "ovn-northd",
            "ovn-northd",
            args,
            dir.path(),
            dir.path().join("northd.log"),
        );
        let mut central = Central {
            northd,
            northd_ctl,
            nb,
            sb,
            _dir: dir,
        };
        central.start_northd();
        central
    }

    fn start_northd(&mut self) {
        self.northd.spawn();
        let ctl = self.northd_ctl.clone();
        self.northd
            .wait_ready("\"Status: active\" from ovn-appctl status", START_TIMEOUT, |_| {
                run_tool(
                    "ovs-appctl",
                    &os_args([
                        OsString::from("--timeout=5"),
                        "-t".into(),
                        ctl.clone().into(),
                        "status".into(),
                    ]),
                )
                .map(|s| s.contains("Status: active"))
                .unwrap_or(false)
            });
    }

    pub fn nb_remote(&self) -> String {
        self.nb.remote()
    }
    pub fn sb_remote(&self) -> String {
        self.sb.remote()
    }
    pub fn nb(&self) -> &OvsdbServer {
        &self.nb
    }
    pub fn sb(&self) -> &OvsdbServer {
        &self.sb
    }
    pub fn nb_mut(&mut self) -> &mut OvsdbServer {
        &mut self.nb
    }
    pub fn sb_mut(&mut self) -> &mut OvsdbServer {
        &mut self.sb
    }
    /// ovn-northd's process id; panics when it is not running.
    pub fn northd_pid(&self) -> u32 {
        self.northd.pid().expect("ovn-northd is not running")
    }
    /// ovn-northd's unixctl socket, for `ovs-appctl -t`.
    pub fn northd_ctl(&self) -> &Path {
        &self.northd_ctl
    }
    pub fn kill_northd(&mut self) {
        self.northd.kill();
    }
    /// Starts ovn-northd again (stopping it first if running).
    pub fn restart_northd(&mut self) {
        self.northd.stop();
        self.start_northd();
    }
    /// The last lines of northd's log.
    pub fn northd_log_tail(&self, lines: usize) -> String {
        self.northd.log_tail(lines)
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        // northd first, so it does not log reconnect noise against already stopped databases.
        self.northd.stop();
    }
}
