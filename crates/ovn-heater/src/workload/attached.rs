//! Runs attached to an existing OVN (`ovn-heater run --nb/--sb`, docs/attach.md): the NB is
//! someone else's, so the run
//! - marks every root row it writes (`external_ids:ovn-heater:run=<run id>`,
//!   [`ovn_openstack::marker`]), and refuses to start, before writing anything, when the NB
//!   already holds marked rows of an earlier run ([`check_target`]) unless told to go on;
//! - deletes what it created at its end by default (`global.cleanup`), then counts its marked
//!   rows again and fails its teardown if any is left ([`finish`]);
//! - records what can be read about servers it did not start: their `_Server` rows, and
//!   `memory/show`/`coverage/show`/`cluster/status` where a control socket is given
//!   ([`stage_probes`]).
//!
//! Must not know: clap, report formats beyond the `results.json` types it fills.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use ovn_openstack::marker::{self, Marked};
use ovsdb::{Client, ClientOptions};

use crate::error::Failure;
use crate::metrics::daemons::{Daemon, StageProbes};
use crate::report::json::ServerDatabase;

/// Control sockets of the existing OVN's daemons, for `memory/show`, `coverage/show` and
/// `cluster/status` at stage ends (each optional).
#[derive(Clone, Debug, Default)]
pub struct ControlSockets {
    pub nb: Option<PathBuf>,
    pub sb: Option<PathBuf>,
    pub northd: Option<PathBuf>,
}

impl ControlSockets {
    pub fn any(&self) -> bool {
        self.nb.is_some() || self.sb.is_some() || self.northd.is_some()
    }

    /// Each given socket must exist (bad input otherwise: a typo would silently record nothing).
    pub fn check(&self) -> anyhow::Result<()> {
        for (flag, path) in [
            ("--nb-ctl", &self.nb),
            ("--sb-ctl", &self.sb),
            ("--northd-ctl", &self.northd),
        ] {
            if let Some(p) = path {
                if !p.exists() {
                    return Err(Failure::bad_input(format!(
                        "{flag} {}: no such control socket (ovsdb-server's is e.g. /var/run/ovn/ovnnb_db.ctl, ovn-northd's /var/run/ovn/ovn-northd.<pid>.ctl)",
                        p.display()
                    ))
                    .into());
                }
            }
        }
        Ok(())
    }
}

/// What was found in the target before the run wrote anything.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// Marked rows of earlier runs (empty, unless `--allow-existing`).
    pub found: Marked,
    pub nb_server: Option<ServerDatabase>,
    pub sb_server: Option<ServerDatabase>,
}

/// Reads the target's `_Server` rows and looks for rows of earlier runs in its NB; with some
/// and without `allow_existing`, refuses (bad input, exit 2) naming what was found and the
/// fixes. Also refuses when the SB already has a chassis named as one of `chassis` (this run's
/// emulated chassis would take it over, and delete it at their end). Reads only.
pub async fn check_target(
    nb_remote: &str,
    sb_remote: &str,
    tls: &crate::tls::TlsArgs,
    allow_existing: bool,
    chassis: &[String],
) -> anyhow::Result<Target> {
    let nb = connect(nb_remote, "OVN_Northbound", tls).await?;
    let sb = connect(sb_remote, "OVN_Southbound", tls).await?;
    let found = marker::find(&nb, None)
        .await
        .with_context(|| format!("cannot read the NB at {nb_remote}"))?;
    let taken = chassis_names(&sb)
        .await
        .with_context(|| format!("cannot read the SB at {sb_remote}"))?;
    let target = Target {
        nb_server: super::server_database(&nb, "OVN_Northbound").await.ok(),
        sb_server: super::server_database(&sb, "OVN_Southbound").await.ok(),
        found,
    };
    nb.close().await;
    sb.close().await;
    let mut problems = Vec::new();
    if !target.found.is_empty() && !allow_existing {
        problems.push(format!(
            "the NB at {nb_remote} already holds {} rows of earlier ovn-heater runs ({}; {} {}), left by a run that was killed or ran with global.cleanup: false. Remove them with `ovn-heater openstack purge --nb {nb_remote}` (deletes only rows marked {}), or pass --allow-existing to run beside them",
            target.found.total(),
            counts_line(&target.found.counts()),
            if target.found.runs.len() == 1 { "run" } else { "runs" },
            target.found.runs.join(", "),
            marker::KEY,
        ));
    }
    let clash: Vec<&str> = chassis
        .iter()
        .filter(|c| taken.contains(c.as_str()))
        .map(String::as_str)
        .collect();
    if let Some(first) = clash.first() {
        problems.push(format!(
            "the SB at {sb_remote} already has chassis named {} ({} of the {} names this run's emulated chassis take): another run's emulated chassis, or left by a killed one. Stop that run, or delete them (e.g. `ovn-sbctl --db={sb_remote} chassis-del {first}`)",
            clash.iter().take(5).copied().collect::<Vec<_>>().join(", ")
                + if clash.len() > 5 { ", ..." } else { "" },
            clash.len(),
            chassis.len(),
        ));
    }
    if !problems.is_empty() {
        return Err(Failure::bad_input(format!("{}. Nothing was changed", problems.join(". Also, "))).into());
    }
    Ok(target)
}

/// The mimic's PRNG seed for a run beside rows of earlier runs: ids drawn from the default
/// seed would be theirs again (and clash on unique names), so the run id picks the seed.
pub fn seed_beside_earlier_runs(run_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `memory/show` and `coverage/show` of the daemons whose control sockets were given (and
/// `cluster/status` of a clustered NB/SB, as `_Server` says), with `ovn-appctl`; `None` when
/// no socket was given.
pub fn stage_probes(
    sockets: &ControlSockets,
    nb_server: Option<&ServerDatabase>,
    sb_server: Option<&ServerDatabase>,
) -> anyhow::Result<Option<StageProbes>> {
    if !sockets.any() {
        return Ok(None);
    }
    let appctl = ["ovn-appctl", "ovs-appctl"]
        .into_iter()
        .find_map(super::lab::find_in_path)
        .ok_or_else(|| Failure::bad_input("--nb-ctl/--sb-ctl/--northd-ctl need ovn-appctl (or ovs-appctl) in $PATH"))?;
    let raft = |s: Option<&ServerDatabase>, db: &str| s.filter(|s| s.model == "clustered").map(|_| db.to_owned());
    let mut probes = StageProbes {
        appctl,
        northd_ctl: sockets.northd.clone(),
        daemons: Vec::new(),
    };
    for (name, ctl, raft_db) in [
        ("nb", &sockets.nb, raft(nb_server, "OVN_Northbound")),
        ("sb", &sockets.sb, raft(sb_server, "OVN_Southbound")),
        ("northd", &sockets.northd, None),
    ] {
        if let Some(ctl) = ctl {
            probes.daemons.push(Daemon {
                name: name.into(),
                ctl: ctl.clone(),
                raft_db,
            });
        }
    }
    Ok(Some(probes))
}

/// A daemon of the existing OVN that runs on this host, found through its control socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDaemon {
    pub pid: u32,
    /// The log file it has open (`*.log`), for its poll-interval warnings.
    pub log: Option<PathBuf>,
    /// The database file it has open (`*.db`), for its size.
    pub db: Option<PathBuf>,
}

/// The process listening on the unix socket `ctl`, when it runs on this host and its
/// `/proc/PID/fd` is readable (root, or the same user): the socket's inode from
/// `/proc/net/unix`, then the process holding it. `None` otherwise (e.g. another host).
pub fn local_daemon(ctl: &std::path::Path) -> Option<LocalDaemon> {
    use std::os::unix::fs::MetadataExt as _;
    let wanted = std::fs::metadata(ctl).ok()?;
    let same_file =
        |path: &str| std::fs::metadata(path).is_ok_and(|m| m.ino() == wanted.ino() && m.dev() == wanted.dev());
    // Num RefCount Protocol Flags Type St Inode Path
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let inodes: std::collections::BTreeSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 8 && same_file(fields[7])).then(|| format!("socket:[{}]", fields[6]))
        })
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        let links: Vec<PathBuf> = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .collect();
        if !links.iter().any(|l| inodes.contains(l.to_string_lossy().as_ref())) {
            continue;
        }
        let with_ext = |ext: &str| {
            links
                .iter()
                .find(|l| l.is_absolute() && l.extension().is_some_and(|x| x == ext))
                .cloned()
        };
        return Some(LocalDaemon {
            pid,
            log: with_ext("log"),
            db: with_ext("db"),
        });
    }
    None
}

/// The daemons behind the given control sockets that run on this host: (name in
/// `processes`, role, what was found), for `nb`, `sb` and `northd`.
pub fn local_daemons(sockets: &ControlSockets) -> Vec<(&'static str, &'static str, LocalDaemon)> {
    [
        ("nb", "nb-db", &sockets.nb),
        ("sb", "sb-db", &sockets.sb),
        ("northd", "northd", &sockets.northd),
    ]
    .into_iter()
    .filter_map(|(name, role, ctl)| Some((name, role, local_daemon(ctl.as_deref()?)?)))
    .collect()
}

/// This run's marker value: its results directory's name, made unique among the runs whose
/// rows are already in the NB (`taken`), so that its cleanup never takes theirs along.
pub fn run_id(results_dir: &std::path::Path, taken: &[String]) -> String {
    let base = results_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_owned());
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// The end of an attached run in the NB.
#[derive(Debug, Default)]
pub struct Finish {
    /// Lines for `logs/events.log`.
    pub events: Vec<String>,
    /// This run's rows left, per table (`None`: could not be counted).
    pub left: Option<BTreeMap<String, usize>>,
    /// Set when rows that should have gone are left, or removing them failed.
    pub error: Option<String>,
}

/// Removes this run's rows from the NB when `remove` (what the mimic created, also rows of
/// transactions cut off, then anything still marked with `run_id`), then counts its marked
/// rows again. Each step bounded by `limit`.
pub async fn finish(
    neutron: &ovn_openstack::Neutron,
    nb_remote: &str,
    run_id: &str,
    remove: bool,
    limit: Duration,
) -> Finish {
    let mut out = Finish::default();
    let Some(nb) = neutron.nb_client() else { return out };
    let purge_hint = format!("ovn-heater openstack purge --nb {nb_remote} --run {run_id}");
    if remove {
        match tokio::time::timeout(limit, neutron.purge()).await {
            Ok(Ok(n)) => out.events.push(format!(
                "removed this run's {n} NB objects (switches, routers, port groups, DHCP options with what they hold)"
            )),
            Ok(Err(e)) => out
                .events
                .push(format!("cannot remove this run's objects from the NB: {e}")),
            Err(_) => out
                .events
                .push(format!("removing this run's objects from the NB took over {limit:?}")),
        }
        match tokio::time::timeout(limit, marker::purge(nb, Some(run_id))).await {
            Ok(Ok(m)) if !m.is_empty() => out.events.push(format!(
                "removed {} more NB rows marked {}={run_id} ({})",
                m.total(),
                marker::KEY,
                counts_line(&m.counts())
            )),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => out
                .events
                .push(format!("cannot remove the rows marked with this run: {e}")),
            Err(_) => out
                .events
                .push(format!("removing the rows marked with this run took over {limit:?}")),
        }
    }
    match tokio::time::timeout(limit, marker::find(nb, Some(run_id))).await {
        Ok(Ok(m)) => {
            let counts = m.counts();
            if counts.is_empty() {
                out.events
                    .push(format!("no NB row of this run is left ({}={run_id})", marker::KEY));
            } else if remove {
                out.error = Some(format!(
                    "{} NB rows of this run are left after cleanup ({}); remove them with `{purge_hint}`",
                    m.total(),
                    counts_line(&counts)
                ));
            } else {
                out.events.push(format!(
                    "kept this run's {} NB rows as global.cleanup: false asks ({}); remove them with `{purge_hint}`",
                    m.total(),
                    counts_line(&counts)
                ));
            }
            out.left = Some(counts);
        }
        Ok(Err(e)) => out.error = Some(format!("cannot count this run's rows left in the NB: {e}")),
        Err(_) => out.error = Some(format!("counting this run's rows left in the NB took over {limit:?}")),
    }
    if let Some(e) = &out.error {
        out.events.push(e.clone());
    }
    out
}

/// Deletes the rows of ovn-heater runs (of `run`, or of every run) from the NB at `remote`:
/// `ovn-heater openstack purge`. Only marked root rows and what hangs off them.
pub async fn purge(remote: &str, tls: &crate::tls::TlsArgs, run: Option<&str>) -> anyhow::Result<Marked> {
    let nb = connect(remote, "OVN_Northbound", tls).await?;
    let removed = marker::purge(&nb, run)
        .await
        .with_context(|| format!("cannot remove ovn-heater's rows from the NB at {remote}"));
    nb.close().await;
    removed
}

/// The names of the SB's chassis.
async fn chassis_names(sb: &Client) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let mut txn = ovsdb::Transaction::new("OVN_Southbound");
    txn.select("Chassis", vec![], Some(vec!["name".into()]));
    let result = sb.transact(txn).await?;
    Ok(result
        .results
        .into_iter()
        .next()
        .and_then(|r| r.rows)
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.get("name").and_then(ovsdb::Value::as_str).map(str::to_owned))
        .collect())
}

/// `Logical_Switch: 2, Port_Group: 3`.
pub fn counts_line(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn connect(remote: &str, database: &str, tls: &crate::tls::TlsArgs) -> anyhow::Result<Client> {
    let options = tls
        .apply(ClientOptions::new(remote).map_err(|e| Failure::bad_input(format!("{remote}: {e}")))?)?
        .database(database)
        .connect_timeout(Duration::from_secs(30));
    Client::connect(options)
        .await
        .with_context(|| format!("cannot connect to {database} at {remote}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_the_results_dir_name_unless_an_earlier_run_has_it() {
        let dir = std::path::Path::new("/tmp/results/base");
        assert_eq!(run_id(dir, &[]), "base");
        assert_eq!(run_id(dir, &["base".into(), "base-2".into()]), "base-3");
        assert_eq!(run_id(dir, &["other".into()]), "base");
    }

    #[test]
    fn seeds_differ_per_run_and_counts_read_as_a_line() {
        assert_ne!(seed_beside_earlier_runs("a-1"), seed_beside_earlier_runs("a-2"));
        let counts: BTreeMap<String, usize> = [("Port_Group".into(), 3), ("Logical_Switch".into(), 2)].into();
        assert_eq!(counts_line(&counts), "Logical_Switch: 2, Port_Group: 3");
    }
}
