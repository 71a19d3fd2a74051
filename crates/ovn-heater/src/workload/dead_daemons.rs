//! The lab's daemons that died during a run without a `chaos` entry killing them (crashed, or
//! killed from outside): each is named once on stderr and recorded as one `harness` failure of
//! the `lab_daemon` measurement (subject: its name and pid), and what could not work without it
//! — a VM's port (or an ovn-kubernetes pod) on a chassis whose `ovn-controller` or
//! `ovs-vswitchd` is gone, a stage's `hv_cfg` settle — is `skipped` with its name instead of failing again as OVN's. A run whose
//! only failures are such deaths ends with exit 3 (the lab failed), not 1.
//!
//! Daemons a `chaos` entry killed are expected dead: the chaos sample names them, and what
//! they break is measured as OVN's failure (docs/scenarios.md "chaos"). One the entry
//! restarted (`restart_after`) is watched under its new pid, read from the lab each time.
//!
//! Must not know: the CMS, YAML, reports.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::{FailureClass, Recorder, StageId};

/// The measurement of a daemon found dead.
pub const LAB_DAEMON: &str = "lab_daemon";

/// How long a look at the lab's processes is reused: every ping and every port asks, and a
/// look reads `/proc` for every daemon (half the tester's CPU in a 1,000-VM pings stage when
/// each asked afresh). A death is still seen within this long.
const LOOK_REUSED_FOR: Duration = Duration::from_millis(200);

pub struct Daemons {
    lab: Arc<ovn_lab::Lab>,
    /// Pids a `chaos` entry killed.
    killed_by_chaos: Mutex<BTreeSet<u32>>,
    /// Pids already named and recorded.
    reported: Mutex<BTreeSet<u32>>,
    /// The last look: when, and the processes then found not running.
    last_look: Mutex<Option<(Instant, Vec<ovn_lab::ProcessInfo>)>>,
}

impl Daemons {
    pub fn new(lab: Arc<ovn_lab::Lab>) -> Self {
        Daemons {
            lab,
            killed_by_chaos: Mutex::new(BTreeSet::new()),
            reported: Mutex::new(BTreeSet::new()),
            last_look: Mutex::new(None),
        }
    }

    /// The lab's processes not running, as seen at most [`LOOK_REUSED_FOR`] ago.
    fn not_running(&self) -> Vec<ovn_lab::ProcessInfo> {
        let mut last = self.last_look.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((at, found)) if at.elapsed() < LOOK_REUSED_FOR => found.clone(),
            _ => {
                let found: Vec<_> = self
                    .lab
                    .status()
                    .processes
                    .into_iter()
                    .filter(|p| !p.alive)
                    .map(|p| p.process)
                    .collect();
                *last = Some((Instant::now(), found.clone()));
                found
            }
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
        let not_running = self.not_running();
        let chaos = self.killed_by_chaos.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut names = Vec::new();
        for info in &not_running {
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
