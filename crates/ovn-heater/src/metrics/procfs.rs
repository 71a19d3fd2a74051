//! CPU and RSS of a fixed set of processes, read from /proc twice a second.
//!
//! CPU% is the change of utime+stime (in clock ticks) over the wall time between two samples,
//! so 100 means one full core. A process that exits keeps its series and gets `exited_s`; it is
//! never silently dropped.
//!
//! Must not know: which daemons these are beyond the name and role it is given.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Clock;

/// A process to watch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    /// Unique display name: `nb-ovsdb-server`, `ovn-controller@hv-1`.
    pub name: String,
    /// Group for aggregation: `nb`, `sb`, `relay`, `northd`, `ovn-controller`, `ovs-vswitchd`, ...
    pub role: String,
    pub pid: u32,
}

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub t_s: f64,
    pub cpu_pct: f64,
    pub rss_bytes: u64,
}

/// All readings of one process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub role: String,
    pub pid: u32,
    pub readings: Vec<Reading>,
    /// When the process was first seen gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_s: Option<f64>,
    /// The most memory it held: the kernel's high-water mark (`VmHWM`) when sampling stopped,
    /// or the largest RSS reading of a process that exited before.
    #[serde(default)]
    pub peak_rss_bytes: u64,
    /// What it held at the end: its RSS when sampling stopped (the run's end), or at its last
    /// reading for a process that exited before. Compared with `peak_rss_bytes` it tells
    /// memory given back from memory kept. 0 in results written before it existed.
    #[serde(default)]
    pub end_rss_bytes: u64,
}

impl Series {
    pub fn max_rss(&self) -> u64 {
        self.readings.iter().map(|r| r.rss_bytes).max().unwrap_or(0)
    }
    pub fn max_cpu(&self) -> f64 {
        self.readings.iter().map(|r| r.cpu_pct).fold(0.0, f64::max)
    }
    pub fn mean_cpu(&self) -> f64 {
        if self.readings.is_empty() {
            return 0.0;
        }
        self.readings.iter().map(|r| r.cpu_pct).sum::<f64>() / self.readings.len() as f64
    }
}

/// CPU seconds (utime + stime) `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    read_usage(pid).map(|(ticks, _)| ticks as f64 / clock_ticks_per_sec())
}

/// The peak resident set size of `pid` (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// utime + stime in clock ticks, and RSS in bytes, of `pid`.
pub fn read_usage(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((utime + stime, resident_pages * page_size()))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as f64
    } else {
        100.0
    }
}

/// Samples `watched` every `interval` until `stop` fires, then returns the series.
pub async fn sample(
    clock: Clock,
    watched: Vec<Watched>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Series> {
    let ticks = clock_ticks_per_sec();
    let mut series: Vec<Series> = watched
        .iter()
        .map(|w| Series {
            name: w.name.clone(),
            role: w.role.clone(),
            pid: w.pid,
            readings: Vec::new(),
            exited_s: None,
            peak_rss_bytes: 0,
            end_rss_bytes: 0,
        })
        .collect();
    let mut last: Vec<Option<(u64, Instant)>> = vec![None; series.len()];
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        take_readings(&clock, ticks, &mut series, &mut last);
    }
    // A closing reading: a run shorter than one interval still gets one per process.
    take_readings(&clock, ticks, &mut series, &mut last);
    for s in &mut series {
        let alive_peak = if s.exited_s.is_none() { peak_rss(s.pid) } else { None };
        s.peak_rss_bytes = alive_peak.unwrap_or(0).max(s.max_rss());
        s.end_rss_bytes = s.readings.last().map(|r| r.rss_bytes).unwrap_or(0);
    }
    series
}

/// One reading per live process: its CPU share since the previous reading and its RSS.
fn take_readings(clock: &Clock, ticks: f64, series: &mut [Series], last: &mut [Option<(u64, Instant)>]) {
    let now = Instant::now();
    for (s, prev) in series.iter_mut().zip(last.iter_mut()) {
        if s.exited_s.is_some() {
            continue;
        }
        match read_usage(s.pid) {
            Some((cpu_ticks, rss)) => {
                if let Some((prev_ticks, prev_at)) = *prev {
                    let wall = now.saturating_duration_since(prev_at).as_secs_f64();
                    let cpu_pct = if wall > 0.0 {
                        cpu_ticks.saturating_sub(prev_ticks) as f64 / ticks / wall * 100.0
                    } else {
                        0.0
                    };
                    s.readings.push(Reading {
                        t_s: clock.secs(now),
                        cpu_pct,
                        rss_bytes: rss,
                    });
                }
                *prev = Some((cpu_ticks, now));
            }
            None => s.exited_s = Some(clock.secs(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_usage() {
        let (ticks, rss) = read_usage(std::process::id()).expect("own /proc entry");
        assert!(rss > 0);
        let _ = ticks;
        assert!(read_usage(u32::MAX - 1).is_none());
    }

    #[tokio::test]
    async fn samples_self_and_marks_missing_process_exited() {
        let clock = Clock::start();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let watched = vec![
            Watched {
                name: "self".into(),
                role: "test".into(),
                pid: std::process::id(),
            },
            Watched {
                name: "ghost".into(),
                role: "test".into(),
                pid: u32::MAX - 1,
            },
        ];
        let task = tokio::spawn(sample(clock, watched, Duration::from_millis(20), rx));
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(true).unwrap();
        let series = task.await.unwrap();
        assert!(series[0].readings.len() >= 2, "{:?}", series[0]);
        assert!(series[0].max_rss() > 0);
        assert!(series[0].exited_s.is_none());
        assert!(series[0].end_rss_bytes > 0 && series[0].end_rss_bytes <= series[0].peak_rss_bytes);
        assert!(series[1].readings.is_empty() && series[1].exited_s.is_some());
    }
}
