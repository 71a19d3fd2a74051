//! What each OVN daemon says about itself at a stage's end, over its control socket:
//! `memory/show` (kept as text and parsed into numbers), `coverage/show` (text), and for a
//! RAFT member `cluster/status DB` (text).
//!
//! A failed capture is recorded as its error, never dropped (a daemon that stopped answering
//! is a finding).
//!
//! Must not know: where the control sockets come from, which daemons a lab runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::northd::{appctl, NorthdCapture};

/// A daemon to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Display name, as in `processes` (`nb`, `northd`, `compute-1/ovn-controller`).
    pub name: String,
    /// Its unixctl socket.
    pub ctl: PathBuf,
    /// The database whose `cluster/status` to read, for a RAFT member (`OVN_Northbound`).
    pub raft_db: Option<String>,
}

/// One daemon's figures at a stage's end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonCapture {
    /// `memory/show`'s `key:number` pairs (`cells`, `monitors`, `idl-cells-OVN_Southbound`).
    #[serde(default)]
    pub memory: BTreeMap<String, f64>,
    #[serde(default)]
    pub memory_text: String,
    #[serde(default)]
    pub coverage_text: String,
    /// `cluster/status` of a RAFT member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Parses `memory/show`: whitespace-separated `key:value` (or `key=value`) pairs; pairs whose
/// value is not a number are left to the text.
pub fn parse_memory(text: &str) -> BTreeMap<String, f64> {
    text.split_whitespace()
        .filter_map(|token| {
            let (key, value) = token.split_once(':').or_else(|| token.split_once('='))?;
            let value: f64 = value.trim_end_matches(',').parse().ok()?;
            (!key.is_empty()).then(|| (key.to_owned(), value))
        })
        .collect()
}

/// What a stage's end asks, and with which `ovn-appctl`.
#[derive(Clone, Debug, Default)]
pub struct StageProbes {
    pub appctl: PathBuf,
    /// northd's control socket: its stopwatches and engine statistics ([`super::northd`]).
    pub northd_ctl: Option<PathBuf>,
    pub daemons: Vec<Daemon>,
}

impl StageProbes {
    /// northd's counters (then cleared) and every daemon's figures, at a stage's end.
    pub async fn capture(&self) -> (Option<NorthdCapture>, BTreeMap<String, DaemonCapture>) {
        let northd = match &self.northd_ctl {
            Some(ctl) => Some(super::northd::capture(&self.appctl, ctl).await),
            None => None,
        };
        (northd, capture(&self.appctl, &self.daemons).await)
    }
}

/// Captures one daemon.
pub async fn capture_one(appctl_bin: &Path, daemon: &Daemon) -> DaemonCapture {
    let mut cap = DaemonCapture::default();
    match appctl(appctl_bin, &daemon.ctl, &["memory/show"]).await {
        Ok(text) => {
            cap.memory = parse_memory(&text);
            cap.memory_text = text;
        }
        Err(e) => cap.errors.push(e),
    }
    match appctl(appctl_bin, &daemon.ctl, &["coverage/show"]).await {
        Ok(text) => cap.coverage_text = text,
        Err(e) => cap.errors.push(e),
    }
    if let Some(db) = &daemon.raft_db {
        match appctl(appctl_bin, &daemon.ctl, &["cluster/status", db]).await {
            Ok(text) => cap.cluster_status = Some(text),
            Err(e) => cap.errors.push(e),
        }
    }
    cap
}

/// Captures every daemon, concurrently; keyed by name.
pub async fn capture(appctl_bin: &Path, daemons: &[Daemon]) -> BTreeMap<String, DaemonCapture> {
    let mut tasks = tokio::task::JoinSet::new();
    for d in daemons {
        let (bin, d) = (appctl_bin.to_path_buf(), d.clone());
        tasks.spawn(async move { (d.name.clone(), capture_one(&bin, &d).await) });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((name, cap)) = joined {
            out.insert(name, cap);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_show() {
        let ovsdb = "atoms:4213 cells:5874 monitors:3 raft-connections:4 raft-log:12 sessions:2 txn-history:10 txn-history-atoms:212\n";
        let m = parse_memory(ovsdb);
        assert_eq!(m["cells"], 5874.0);
        assert_eq!(m["raft-log"], 12.0);
        assert_eq!(m.len(), 8);
        let northd = "idl-cells-OVN_Northbound:318 idl-cells-OVN_Southbound:5623\n";
        assert_eq!(parse_memory(northd)["idl-cells-OVN_Southbound"], 5623.0);
        let mixed = "lflow-cache-size-KB=12, name:controller ofctrl_desired_flow_usage-KB:30.5";
        let m = parse_memory(mixed);
        assert_eq!(m["lflow-cache-size-KB"], 12.0);
        assert_eq!(m["ofctrl_desired_flow_usage-KB"], 30.5);
        assert!(!m.contains_key("name"));
        assert!(parse_memory("").is_empty());
    }

    #[tokio::test]
    async fn capture_reports_errors_instead_of_dropping() {
        let d = Daemon {
            name: "nb".into(),
            ctl: "/nonexistent.ctl".into(),
            raft_db: Some("OVN_Northbound".into()),
        };
        let caps = capture(Path::new("/nonexistent/ovn-appctl"), &[d]).await;
        assert_eq!(caps["nb"].errors.len(), 3);
        assert!(caps["nb"].memory.is_empty());
    }
}
