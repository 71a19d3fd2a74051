//! The whole host's CPU time per stage, from the `cpu` line of /proc/stat read when a stage
//! begins and when it ends: user, system, idle, iowait and steal seconds summed over all CPUs.
//! Steal is time a hypervisor gave this VM's virtual CPUs to someone else; on a shared or
//! oversubscribed machine it explains slow stages that no process's CPU seconds show.
//!
//! Must not know: which processes run, stages' names.

use serde::{Deserialize, Serialize};

/// Cumulative CPU time of the host, in clock ticks (the `cpu` line of /proc/stat).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// The host's CPU seconds during one stage, summed over all CPUs (a 2-CPU host idle for 10 s
/// has `idle_s` 20).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostCpu {
    /// User time, `nice` included.
    pub user_s: f64,
    /// Kernel time, interrupts included.
    pub system_s: f64,
    pub idle_s: f64,
    pub iowait_s: f64,
    pub steal_s: f64,
}

impl HostCpu {
    /// Every second counted: busy, idle, waiting and stolen.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s + self.idle_s + self.iowait_s + self.steal_s
    }
}

/// Parses the aggregate `cpu ` line of /proc/stat (fields a kernel does not have read as 0).
pub fn parse_proc_stat(text: &str) -> Option<HostTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(HostTicks {
        user: at(0),
        nice: at(1),
        system: at(2),
        idle: at(3),
        iowait: at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
    })
}

/// The host's CPU times now.
pub fn read() -> Option<HostTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// CPU seconds between two readings, `ticks_per_s` clock ticks per second.
pub fn delta(start: &HostTicks, end: &HostTicks, ticks_per_s: f64) -> HostCpu {
    let s = |a: u64, b: u64| b.saturating_sub(a) as f64 / ticks_per_s;
    HostCpu {
        user_s: s(start.user, end.user) + s(start.nice, end.nice),
        system_s: s(start.system, end.system) + s(start.irq, end.irq) + s(start.softirq, end.softirq),
        idle_s: s(start.idle, end.idle),
        iowait_s: s(start.iowait, end.iowait),
        steal_s: s(start.steal, end.steal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_aggregate_line_and_takes_deltas() {
        let a = "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 0 1 3 0 0\nintr 1\n";
        let b = "cpu  300 5 90 1100 30 2 4 57 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        let (a, b) = (parse_proc_stat(a).unwrap(), parse_proc_stat(b).unwrap());
        assert_eq!(a.steal, 7);
        let d = delta(&a, &b, 100.0);
        assert_eq!(d.user_s, 2.0);
        assert!((d.system_s - 0.43).abs() < 1e-9, "{d:?}");
        assert_eq!(d.idle_s, 1.0);
        assert_eq!(d.iowait_s, 0.2);
        assert_eq!(d.steal_s, 0.5);
        // An old kernel without steal, and no cpu line at all.
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n").unwrap().steal, 0);
        assert!(parse_proc_stat("intr 1\n").is_none());
        // Counters never run backwards into negative seconds.
        assert_eq!(delta(&b, &a, 100.0).user_s, 0.0);
    }

    #[test]
    fn reads_this_host() {
        let t = read().expect("/proc/stat");
        assert!(t.user + t.system + t.idle > 0);
    }
}
