//! The lab's daemons that died during a run without a `chaos` entry killing them (crashed, or
//! killed from outside): each is named once on stderr and recorded as one `harness` failure of
//! the `lab_daemon` measurement (subject: its name and pid), and what could not work without it
//! — a VM's port on a chassis whose `ovn-controller` or `ovs-vswitchd` is gone, a stage's
//! `hv_cfg` settle — is `skipped` with its name instead of failing again as OVN's. A run whose
//! only failures are such deaths ends with exit 3 (the lab failed), not 1.
//!
//! Daemons a `chaos` entry killed are expected dead: the chaos sample names them, and what
//! they break is measured as OVN's failure (docs/scenarios.md "chaos"). One the entry
//! restarted (`restart_after`) is watched under its new pid, read from the lab each time.
//!
//! Must not know: the CMS, YAML, reports.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::metrics::{FailureClass, Recorder, StageId};

/// The measurement of a daemon found dead.
pub const LAB_DAEMON: &str = "lab_daemon";

pub struct Daemons {
    lab: Arc<ovn_lab::Lab>,
    /// Pids a `chaos` entry killed.
    killed_by_chaos: Mutex<BTreeSet<u32>>,
    /// Pids already named and recorded.
    reported: Mutex<BTreeSet<u32>>,
}

impl Daemons {
    pub fn new(lab: Arc<ovn_lab::Lab>) -> Self {
        Daemons {
            lab,
            killed_by_chaos: Mutex::new(BTreeSet::new()),
            reported: Mutex::new(BTreeSet::new()),
        }
    }

    /// The lab watched (its daemons as they are now, restarted ones with their new pids).
    pub fn lab(&self) -> &ovn_lab::Lab {
        &self.lab
    }

    /// A `chaos` entry killed `pid`: its death is expected.
    pub fn killed_by_chaos(&self, pid: u32) {
        self.killed_by_chaos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid);
    }

    /// The daemons dead without a chaos kill, each named on stderr and recorded (in `stage`)
    /// the first time it is seen; returns the names of those of `chassis` (every one when
    /// `None`).
    pub fn dead(&self, rec: &Recorder, stage: StageId, chassis: Option<&str>) -> Vec<String> {
        let status = self.lab.status();
        let chaos = self.killed_by_chaos.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut names = Vec::new();
        for p in status.processes.iter().filter(|p| !p.alive) {
            let info = &p.process;
            if chaos.contains(&info.pid) {
                continue;
            }
            if self.reported.lock().unwrap_or_else(|p| p.into_inner()).insert(info.pid) {
                let why = format!(
                    "{} (pid {}) is not running: it exited or was killed outside ovn-heater (log: {})",
                    info.name,
                    info.pid,
                    info.log_path.display()
                );
                crate::report::progress::notice(&format!("ovn-heater: lab daemon {why}"));
                let now = Instant::now();
                rec.record_as(
                    stage,
                    LAB_DAEMON,
                    format!("{} (pid {})", info.name, info.pid),
                    now,
                    now,
                    FailureClass::Harness,
                    Some(why),
                );
            }
            if chassis.is_none() || info.chassis.as_deref() == chassis {
                names.push(info.name.clone());
            }
        }
        names
    }
}
