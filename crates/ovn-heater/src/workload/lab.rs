//! Bringing a lab up so that Ctrl-C or SIGTERM during bring-up tears it down, and lab errors
//! mapped to exit codes; shared by `run`, `lab up`, the benchmarks and the ovn-kubernetes driver.

use anyhow::Context as _;
use ovn_lab::{Lab, LabSpec};

use crate::error::Failure;

/// Maps a lab error to the README's exit codes: preflight problems (root, packages, names,
/// run dir, bad spec) are 2, everything else 3.
pub fn lab_failure(err: ovn_lab::Error) -> anyhow::Error {
    let code = if err.is_preflight() {
        crate::error::EXIT_BAD_INPUT
    } else {
        crate::error::EXIT_ENVIRONMENT
    };
    Failure {
        code,
        message: err.to_string(),
    }
    .into()
}

/// What every stage's end asks the lab's daemons (northd's counters; `memory/show`,
/// `coverage/show` of the NB/SB servers, relays, northd and each ovn-controller, and
/// `cluster/status` of each RAFT member); `None` without `ovn-appctl`.
pub fn stage_probes(lab: &Lab) -> Option<crate::metrics::daemons::StageProbes> {
    use ovn_lab::ProcessRole as R;
    let appctl = ["ovn-appctl", "ovs-appctl"].into_iter().find_map(find_in_path)?;
    let mut probes = crate::metrics::daemons::StageProbes {
        appctl,
        ..Default::default()
    };
    for p in lab.processes() {
        if p.role == R::Northd {
            probes.northd_ctl = Some(p.ctl_path.clone());
        }
        let raft_db = match p.role {
            R::NbDb if lab.clustered() => Some("OVN_Northbound"),
            R::SbDb if lab.clustered() => Some("OVN_Southbound"),
            _ => None,
        };
        // A chassis' own ovsdb-server and ovs-vswitchd are OVS's, not what is measured.
        if matches!(p.role, R::NbDb | R::SbDb | R::SbRelay | R::Northd | R::Controller) {
            probes.daemons.push(crate::metrics::daemons::Daemon {
                name: p.name.clone(),
                ctl: p.ctl_path.clone(),
                raft_db: raft_db.map(str::to_owned),
            });
        }
    }
    Some(probes)
}

/// `name` in `$PATH` or the usual bin dirs.
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(std::path::PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The programs the lab runs (`/proc/PID/exe` of each daemon) and `ovn-appctl`, with versions.
pub fn binaries(lab: &Lab) -> std::collections::BTreeMap<String, crate::report::json::Binary> {
    let pids: Vec<u32> = lab.processes().iter().map(|p| p.pid).collect();
    let appctl = find_in_path("ovn-appctl");
    crate::report::environment::binaries(&pids, appctl.as_slice())
}

/// Brings a lab up, tearing down what was started when SIGINT/SIGTERM arrives first.
pub async fn up_interruptible(spec: LabSpec) -> anyhow::Result<Lab> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut signal = std::pin::pin!(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    tokio::select! {
        biased;
        // Dropping the bring-up future runs its teardown guard.
        _ = &mut signal => Err(Failure::interrupted().into()),
        r = Lab::up(spec) => match r {
            Ok(lab) => Ok(lab),
            // A Ctrl-C reaches the whole process group: a command forked just before it can
            // die of it and fail bring-up before the signal reaches us. Then it is an interrupt.
            Err(e) => match tokio::time::timeout(std::time::Duration::from_millis(300), &mut signal).await {
                Ok(()) => Err(Failure::interrupted().into()),
                Err(_) => Err(lab_failure(e)),
            },
        },
    }
}
