//! The one error type of `ovn-lab`, re-exported as [`crate::Error`] / [`crate::Result`].
//!
//! Variants are split so the binary can map them to exit codes: [`Error::is_preflight`] errors
//! are the user's to fix (root, packages, names, run dir) and nothing was started; the rest are
//! failures of the lab itself. Every message names the problem and, where there is one, the fix.
//!
//! Must not know: exit codes, clap, how errors are printed.

use std::path::PathBuf;
use std::time::Duration;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong bringing up, using or tearing down a lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Network namespaces, veths and daemons in them need root.
    #[error("the lab needs root (network namespaces, veths, OVS bridges); run as root, e.g. `sudo -E ovn-heater ...`")]
    NotRoot,
    /// A daemon or tool could not be found.
    #[error("{name} not found (searched: {}); {hint}", display_paths(.searched))]
    BinaryNotFound {
        name: String,
        searched: Vec<PathBuf>,
        hint: String,
    },
    /// A database schema file could not be found.
    #[error("schema {name} not found (searched: {}); {hint}", display_paths(.searched))]
    SchemaNotFound {
        name: String,
        searched: Vec<PathBuf>,
        hint: String,
    },
    /// The userspace datapath needs TUN/TAP devices.
    #[error("/dev/net/tun is missing: the userspace (netdev) datapath needs it for internal ports; run `modprobe tun` (or start the container with --device /dev/net/tun)")]
    TunMissing,
    /// Network namespaces of this lab's prefix already exist.
    #[error("network namespaces named {prefix}-* already exist ({}); another lab uses this name: run `ovn-heater lab down --run-dir DIR` for it, or pick another --name", .existing.join(", "))]
    NameClash { prefix: String, existing: Vec<String> },
    /// The run dir holds a lab whose processes are still alive.
    #[error("run dir {} is in use by a running lab (pids {pids:?}); run `ovn-heater lab down --run-dir {}` first, or use another --run-dir", .run_dir.display(), .run_dir.display())]
    RunDirInUse { run_dir: PathBuf, pids: Vec<u32> },
    /// The spec asks for something impossible (bad CIDR, too many chassis for the network, ...).
    #[error("invalid lab spec: {0}")]
    InvalidSpec(String),
    /// The lab's certificates could not be made or read.
    #[error("lab PKI: {0}")]
    Pki(String),
    /// There is no lab in this run dir.
    #[error("no lab in {}: {} does not exist (start one with `ovn-heater lab up --run-dir {}`)", .run_dir.display(), .run_dir.join("lab.json").display(), .run_dir.display())]
    NoLab { run_dir: PathBuf },
    /// `lab.json` exists but cannot be read.
    #[error("cannot read lab state {}: {reason}", .path.display())]
    State { path: PathBuf, reason: String },
    /// A command or daemon failed; carries what is needed to debug it.
    #[error("{binary} failed ({status})\ncommand: {command_line}{}{}",
        .log_path.as_ref().map(|p| format!("\nlog:     {}", p.display())).unwrap_or_default(),
        if .log_tail.is_empty() { String::new() } else { format!("\noutput:  {}", .log_tail) })]
    ProcessFailed {
        binary: String,
        command_line: String,
        status: String,
        log_path: Option<PathBuf>,
        log_tail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// Talking to one of the lab's databases failed.
    #[error("{what}: {source}")]
    Ovsdb {
        what: String,
        #[source]
        source: Box<ovsdb::Error>,
    },
    /// A file-system or OS call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A lookup in the lab found nothing (no leader, no such chassis, ...).
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// Errors found before anything was started, that the user fixes by changing the
    /// environment or the input (exit code 2 in the binary).
    pub fn is_preflight(&self) -> bool {
        matches!(
            self,
            Error::NotRoot
                | Error::BinaryNotFound { .. }
                | Error::SchemaNotFound { .. }
                | Error::TunMissing
                | Error::NameClash { .. }
                | Error::RunDirInUse { .. }
                | Error::InvalidSpec(_)
                | Error::NoLab { .. }
        )
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn ovsdb(what: impl Into<String>, source: ovsdb::Error) -> Self {
        Error::Ovsdb {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
