//! Running commands and detached daemons, and stopping them again.
//!
//! Every daemon is started with `--detach --pidfile --log-file --unixctl` into a directory of
//! the run dir, so it outlives the process that started it, is found again through its pidfile
//! (recorded in `lab.json`), and leaves its log behind after teardown. OVS daemons only detach
//! once they are ready (sockets bound, database open), so a successful start is also a
//! readiness signal. Commands in a namespace go through `ip netns exec`.
//!
//! Every command runs in a process group of its own: a Ctrl-C at the terminal reaches the
//! whole foreground group, and a daemon still detaching (or an `ovs-vsctl` mid-bring-up) killed
//! by it would look like a lab failure; the caller's own signal handling tears down instead.
//!
//! Must not know: which daemons make a lab, OVN schemas.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long any single command (including a daemon's detach) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A command to run, optionally inside a network namespace.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub netns: Option<(PathBuf, String)>,
    /// Shown in errors: the daemon's log file.
    pub log_path: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: &Path) -> Self {
        Cmd {
            program: program.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
            log_path: None,
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    /// Runs inside namespace `netns`, entered with `ip` at `ip_path`.
    pub fn in_netns(mut self, ip_path: &Path, netns: &str) -> Self {
        self.netns = Some((ip_path.to_path_buf(), netns.to_owned()));
        self
    }
    pub fn log(mut self, p: &Path) -> Self {
        self.log_path = Some(p.to_path_buf());
        self
    }

    fn argv(&self) -> (PathBuf, Vec<String>) {
        match &self.netns {
            Some((ip, ns)) => {
                let mut a = vec![
                    "netns".to_owned(),
                    "exec".to_owned(),
                    ns.clone(),
                    self.program.display().to_string(),
                ];
                a.extend(self.args.iter().cloned());
                (ip.clone(), a)
            }
            None => (self.program.clone(), self.args.clone()),
        }
    }

    pub fn command_line(&self) -> String {
        let (p, a) = self.argv();
        std::iter::once(p.display().to_string())
            .chain(a)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn binary_name(&self) -> String {
        self.program
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Runs to completion; stdout on success, [`Error::ProcessFailed`] otherwise.
    pub async fn run(&self) -> Result<String> {
        let (program, args) = self.argv();
        let mut c = tokio::process::Command::new(&program);
        c.args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(command = %self.command_line(), "run");
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, c.output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(Error::io(format!("cannot execute {}", program.display()), e)),
            Err(_) => return Err(self.failed(format!("still running after {COMMAND_TIMEOUT:?}"), "")),
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(self.failed(describe_status(out.status), stderr.trim()))
    }

    fn failed(&self, status: String, output: &str) -> Error {
        let log_tail = match (&self.log_path, output.is_empty()) {
            (Some(p), true) => log_tail(p, 3),
            _ => output
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n         "),
        };
        Error::ProcessFailed {
            binary: self.binary_name(),
            command_line: self.command_line(),
            status,
            log_path: self.log_path.clone(),
            log_tail,
        }
    }
}

fn describe_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".into(),
    }
}

/// The last `n` lines of a log file (empty if unreadable), joined for an error message.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n         ")
}

/// Reads a pidfile written by an OVS daemon.
pub(crate) fn read_pidfile(path: &Path) -> Result<u32> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read pidfile {}", path.display()), e))?;
    text.trim().parse().map_err(|_| Error::State {
        path: path.to_path_buf(),
        reason: format!("pidfile holds {:?}, not a pid", text.trim()),
    })
}

/// Whether `pid` is alive and still runs a program named `binary` (guards against pid reuse).
/// Judged from `/proc/<pid>/stat`: a process that is exiting has lost its `exe` link but is
/// not gone yet, and a zombie is gone for our purposes.
pub(crate) fn is_alive(pid: u32, binary: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next().unwrap_or('X');
    // The kernel keeps at most 15 bytes of the program name.
    let wanted = &binary[..binary.len().min(15)];
    !matches!(state, 'Z' | 'X' | 'x') && comm == wanted
}

/// The daemon programs a lab runs.
pub(crate) const DAEMONS: [&str; 4] = ["ovsdb-server", "ovs-vswitchd", "ovn-controller", "ovn-northd"];
/// The short-lived tools bring-up runs on the run dir's files and sockets: one cut off by a
/// Ctrl-C (killed, but maybe still finishing a write) must be gone before teardown says done.
/// With [`DAEMONS`], the only programs teardown ever signals.
pub(crate) const TOOLS: [&str; 4] = ["ovsdb-tool", "ovs-vsctl", "ovs-appctl", "ovn-appctl"];

/// Lab daemons (and tools) found by what they are rather than by our records: every process in
/// `/proc` running one of [`DAEMONS`] or [`TOOLS`] whose working directory or any command-line argument lies under
/// `run_dir` (pidfile, log, database, control socket). Finds daemons whose pidfiles, or the
/// whole run dir, are gone.
pub(crate) fn daemons_under(run_dir: &Path) -> Vec<(u32, String)> {
    let dir = run_dir.to_string_lossy().trim_end_matches('/').to_owned();
    if dir.is_empty() {
        return Vec::new();
    }
    let under = |s: &str| {
        // `/run/x` must not match `/run/xy`; arguments look like `--pidfile=/run/x/nb.pid`.
        s.match_indices(dir.as_str()).any(|(i, _)| {
            let after = s.as_bytes().get(i + dir.len());
            let before = i.checked_sub(1).and_then(|b| s.as_bytes().get(b));
            matches!(after, None | Some(b'/' | b' ')) && matches!(before, None | Some(b'=' | b':' | b',' | b' '))
        })
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(name) = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|exe| exe.file_name().map(|f| f.to_string_lossy().into_owned()))
        else {
            continue;
        };
        let Some(binary) = DAEMONS.iter().chain(TOOLS.iter()).find(|d| **d == name) else {
            continue;
        };
        let cwd_under = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|c| under(&c.to_string_lossy()))
            .unwrap_or(false);
        let args_under = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|a| under(&String::from_utf8_lossy(a))))
            .unwrap_or(false);
        if (cwd_under || args_under) && is_alive(pid, binary) {
            found.push((pid, (*binary).to_owned()));
        }
    }
    found.sort();
    found
}

/// Resident set size of `pid` in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// SIGKILL right away (tests: a crashed leader).
pub(crate) fn kill_now(pid: u32, binary: &str) {
    use nix::sys::signal::{kill, Signal};
    if is_alive(pid, binary) {
        let _ = kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
        wait_gone(pid, binary, Duration::from_secs(5));
    }
}

fn wait_gone(pid: u32, binary: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !is_alive(pid, binary) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !is_alive(pid, binary)
}

/// Polls `check` every 20 ms until it holds or `limit` passes. For things with no event to
/// wait on (a tap device appearing in a namespace, a socket file being created).
pub(crate) async fn poll_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        if check() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(Error::Timeout {
                what: what.into(),
                after: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A daemon to start detached; see [`Daemon::start`].
#[derive(Clone, Debug)]
pub(crate) struct Daemon {
    /// Unique process name in the lab (`nb`, `compute-1/ovn-controller`).
    pub name: String,
    pub role: crate::state::ProcessRole,
    pub program: PathBuf,
    /// Directory for its pidfile, log and unixctl socket.
    pub dir: PathBuf,
    /// File stem in `dir`: `<stem>.pid`, `<stem>.log`, `<stem>.ctl`.
    pub stem: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub netns: Option<String>,
    pub chassis: Option<String>,
    /// Whether the program takes `--unixctl` (ovn-controller 23.03 does not: its socket is
    /// `<program>.<pid>.ctl` in `OVN_RUNDIR`, which must then be `dir`).
    pub takes_unixctl: bool,
}

impl Daemon {
    /// The daemon `info` records, to start it again (`None` when its record has no command line).
    pub fn from_record(info: &crate::state::ProcessInfo) -> Option<Daemon> {
        let l = info.launch.as_ref()?;
        Some(Daemon {
            name: info.name.clone(),
            role: info.role,
            program: l.program.clone(),
            dir: l.dir.clone(),
            stem: l.stem.clone(),
            args: l.args.clone(),
            env: l.env.clone(),
            netns: info.netns.clone(),
            chassis: info.chassis.clone(),
            takes_unixctl: l.takes_unixctl,
        })
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.stem))
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.stem))
    }
    pub fn ctl_path(&self, pid: u32) -> PathBuf {
        if self.takes_unixctl {
            self.dir.join(format!("{}.ctl", self.stem))
        } else {
            let program = self
                .program
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.dir.join(format!("{program}.{pid}.ctl"))
        }
    }

    /// Starts it with `--detach`; returns once it has detached (i.e. is ready) and written its
    /// pidfile. `record` is called with the process as soon as its pid is known, before any
    /// error, so a daemon that started and then failed is still torn down.
    pub async fn start(
        &self,
        ip: &Path,
        record: impl FnOnce(crate::state::ProcessInfo),
    ) -> Result<crate::state::ProcessInfo> {
        let pidfile = self.pidfile();
        let _ = std::fs::remove_file(&pidfile);
        let mut cmd = Cmd::new(&self.program)
            .args(self.args.iter().cloned())
            .arg(format!("--pidfile={}", pidfile.display()))
            .arg(format!("--log-file={}", self.log_path().display()))
            .args(
                self.takes_unixctl
                    .then(|| format!("--unixctl={}", self.dir.join(format!("{}.ctl", self.stem)).display())),
            )
            .args(["--detach", "--no-chdir", "-vconsole:off"])
            .log(&self.log_path());
        cmd.env = self.env.clone();
        if let Some(ns) = &self.netns {
            cmd = cmd.in_netns(ip, ns);
        }
        // A detached OVS daemon closes its standard fds, but a file (not a pipe) means we
        // never wait on a grandchild holding them; early errors land next to the log.
        let early = self.dir.join(format!("{}.stderr", self.stem));
        let result = cmd.run_to_file(&early).await;
        let binary = self
            .program
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pid = read_pidfile(&pidfile).ok();
        if let Some(pid) = pid {
            let info = crate::state::ProcessInfo {
                name: self.name.clone(),
                role: self.role,
                pid,
                binary,
                log_path: self.log_path(),
                pidfile: pidfile.clone(),
                ctl_path: self.ctl_path(pid),
                chassis: self.chassis.clone(),
                netns: self.netns.clone(),
                launch: Some(crate::state::Launch {
                    program: self.program.clone(),
                    args: self.args.clone(),
                    env: self.env.clone(),
                    dir: self.dir.clone(),
                    stem: self.stem.clone(),
                    takes_unixctl: self.takes_unixctl,
                }),
            };
            record(info.clone());
            result?;
            tracing::debug!(name = %self.name, pid, "started");
            return Ok(info);
        }
        result?;
        Err(Error::ProcessFailed {
            binary,
            command_line: cmd.command_line(),
            status: format!("detached but wrote no pidfile {}", pidfile.display()),
            log_path: Some(self.log_path()),
            log_tail: log_tail(&self.log_path(), 3),
        })
    }
}

impl Cmd {
    /// Runs to completion with stdout and stderr going to `file` (for daemons that detach).
    pub async fn run_to_file(&self, file: &Path) -> Result<()> {
        let (program, args) = self.argv();
        let out = std::fs::File::create(file).map_err(|e| Error::io(format!("cannot create {}", file.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate a file handle", e))?;
        let mut c = tokio::process::Command::new(&program);
        c.args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(command = %self.command_line(), "start");
        let status = match tokio::time::timeout(COMMAND_TIMEOUT, c.status()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::io(format!("cannot execute {}", program.display()), e)),
            Err(_) => return Err(self.failed(format!("did not detach within {COMMAND_TIMEOUT:?}"), "")),
        };
        if status.success() {
            return Ok(());
        }
        let early = std::fs::read_to_string(file).unwrap_or_default();
        Err(self.failed(describe_status(status), early.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_checks_the_program_name() {
        let me = std::process::id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(is_alive(me, comm.trim()));
        assert!(!is_alive(me, "ovsdb-server"));
        assert!(!is_alive(u32::MAX, "ovsdb-server"));
    }
}
