//! CPU and RSS of a fixed set of processes, read from /proc twice a second.
//!
//! CPU% is the change of utime+stime (in clock ticks) over the wall time between two samples,
//! so 100 means one full core. A process that exits keeps its series and gets `exited_s`; it is
//! never silently dropped.
//!
//! Must not know: which daemons these are beyond the name and role it is given.

use std::collections::BTreeMap;
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

/// Resets this process's peak resident set size (`VmHWM`) to its current RSS (writing 5 to
/// `/proc/self/clear_refs`, Linux 4.0+), so that a later [`peak_rss`] reports the peak since
/// now: `bench run` runs a scenario several times in one process, and each run's peak must
/// not include the runs before it.
pub fn reset_own_peak_rss() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// utime + stime in clock ticks, and RSS in bytes, of `pid`.
pub fn read_usage(pid: u32) -> Option<(u64, u64)> {
    ProcFiles::open(pid)?.read_usage(&mut Vec::new())
}

/// `/proc/<pid>/stat` and `statm` of one watched process, opened once and read again at
/// offset 0 for every reading: the sampler reads 2 files of every daemon twice a second for
/// the whole run, and re-opening them (path walk, pid lookup) was most of that cost. An open
/// file stays bound to the process it was opened for: once that process is gone, reads fail
/// (even if its pid is reused).
struct ProcFiles {
    stat: std::fs::File,
    statm: std::fs::File,
}

impl ProcFiles {
    fn open(pid: u32) -> Option<ProcFiles> {
        Some(ProcFiles {
            stat: std::fs::File::open(format!("/proc/{pid}/stat")).ok()?,
            statm: std::fs::File::open(format!("/proc/{pid}/statm")).ok()?,
        })
    }

    /// utime + stime in clock ticks, and RSS in bytes; `None` once the process is gone.
    fn read_usage(&self, buf: &mut Vec<u8>) -> Option<(u64, u64)> {
        let (utime, stime) = stat_times(read_from_start(&self.stat, buf)?)?;
        let resident_pages: u64 = read_from_start(&self.statm, buf)?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some((utime + stime, resident_pages * page_size()))
    }
}

/// The whole of a /proc file, read from offset 0 into `buf`.
fn read_from_start<'a>(file: &std::fs::File, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    use std::os::unix::fs::FileExt;
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    std::str::from_utf8(buf).ok()
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
    let files: Vec<Option<ProcFiles>> = watched.iter().map(|w| ProcFiles::open(w.pid)).collect();
    let mut buf = Vec::with_capacity(1024);
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
        take_readings(&clock, ticks, &mut series, &mut last, &files, &mut buf);
    }
    // A closing reading: a run shorter than one interval still gets one per process.
    take_readings(&clock, ticks, &mut series, &mut last, &files, &mut buf);
    for s in &mut series {
        let alive_peak = if s.exited_s.is_none() { peak_rss(s.pid) } else { None };
        s.peak_rss_bytes = alive_peak.unwrap_or(0).max(s.max_rss());
        s.end_rss_bytes = s.readings.last().map(|r| r.rss_bytes).unwrap_or(0);
    }
    series
}

/// One reading per live process: its CPU share since the previous reading and its RSS.
fn take_readings(
    clock: &Clock,
    ticks: f64,
    series: &mut [Series],
    last: &mut [Option<(u64, Instant)>],
    files: &[Option<ProcFiles>],
    buf: &mut Vec<u8>,
) {
    let now = Instant::now();
    for ((s, prev), files) in series.iter_mut().zip(last.iter_mut()).zip(files.iter()) {
        if s.exited_s.is_some() {
            continue;
        }
        match files.as_ref().and_then(|f| f.read_usage(buf)) {
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

/// This process's CPU clock ticks so far: user and kernel for the whole process (ended threads
/// included), and utime+stime of each living thread by thread id, with its name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelfTicks {
    pub user: u64,
    pub system: u64,
    pub threads: BTreeMap<u32, (String, u64)>,
}

/// Reads [`SelfTicks`] for this process from `/proc/self`.
pub fn self_ticks() -> Option<SelfTicks> {
    let (user, system) = stat_times(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read: it then counts in the total only.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = stat
            .find('(')
            .zip(stat.rfind(')'))
            .map(|(a, b)| stat[a + 1..b].to_owned())
            .unwrap_or_default();
        if let Some((u, s)) = stat_times(&stat) {
            threads.insert(tid, (name, u + s));
        }
    }
    Some(SelfTicks { user, system, threads })
}

/// utime and stime, in clock ticks, from the text of a `stat` file.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    // There, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// What this process's CPU went to between two [`SelfTicks`] readings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TesterCpu {
    /// CPU seconds in the process's own code (utime).
    pub user_s: f64,
    /// CPU seconds the kernel spent on its behalf (stime): syscalls such as creating network
    /// namespaces, netlink requests, socket I/O.
    pub system_s: f64,
    /// Thread name → CPU seconds (user + kernel) of its threads; threads that ended during the
    /// interval count under `(ended threads)`, so the values add up to `user_s + system_s`.
    pub by_thread: BTreeMap<String, f64>,
}

/// The name under which [`TesterCpu::by_thread`] counts threads that ended in the interval.
pub const ENDED_THREADS: &str = "(ended threads)";

impl TesterCpu {
    pub fn between(start: &SelfTicks, end: &SelfTicks, ticks_per_s: f64) -> TesterCpu {
        let seconds = |ticks: u64| ticks as f64 / ticks_per_s;
        let mut by_thread: BTreeMap<String, u64> = BTreeMap::new();
        for (tid, (name, ticks)) in &end.threads {
            // A thread started during the interval counts from zero.
            let before = start.threads.get(tid).map_or(0, |(_, t)| *t);
            *by_thread.entry(name.clone()).or_default() += ticks.saturating_sub(before);
        }
        let total = (end.user + end.system).saturating_sub(start.user + start.system);
        let living: u64 = by_thread.values().sum();
        if total > living {
            by_thread.insert(ENDED_THREADS.to_owned(), total - living);
        }
        TesterCpu {
            user_s: seconds(end.user.saturating_sub(start.user)),
            system_s: seconds(end.system.saturating_sub(start.system)),
            by_thread: by_thread
                .into_iter()
                .filter(|(_, t)| *t > 0)
                .map(|(n, t)| (n, seconds(t)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_peak_rss_resets_to_the_current_rss() {
        let me = std::process::id();
        // Grow the peak 64 MiB above the current RSS, then give the memory back to the
        // kernel (a mapping of its own: the allocator might keep freed memory).
        const LEN: usize = 64 << 20;
        // SAFETY: a fresh private anonymous mapping, written only within its length, unmapped
        // once; nothing else refers to it.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            for offset in (0..LEN).step_by(4096) {
                *(p as *mut u8).add(offset) = 1;
            }
            assert_eq!(libc::munmap(p, LEN), 0);
        }
        let before = peak_rss(me).unwrap();
        reset_own_peak_rss().unwrap();
        let after = peak_rss(me).unwrap();
        assert!(after < before, "peak {before} B before the reset, {after} B after");
    }

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

    #[test]
    fn tester_cpu_splits_user_kernel_and_threads() {
        let ticks = |user, system, threads: &[(u32, &str, u64)]| SelfTicks {
            user,
            system,
            threads: threads
                .iter()
                .map(|(tid, name, t)| (*tid, ((*name).to_owned(), *t)))
                .collect(),
        };
        let start = ticks(
            100,
            50,
            &[(1, "main", 20), (2, "tokio-rt-worker", 100), (3, "gone", 30)],
        );
        // Thread 3 ended, thread 4 started: it counts from zero; what thread 3 used in the
        // interval is only in the process's total.
        let end = ticks(
            180,
            120,
            &[(1, "main", 20), (2, "tokio-rt-worker", 160), (4, "ovn-lab-netns", 70)],
        );
        let cpu = TesterCpu::between(&start, &end, 100.0);
        assert_eq!((cpu.user_s, cpu.system_s), (0.8, 0.7));
        assert_eq!(
            cpu.by_thread,
            [
                ("tokio-rt-worker".to_owned(), 0.6),
                ("ovn-lab-netns".to_owned(), 0.7),
                (ENDED_THREADS.to_owned(), 0.2)
            ]
            .into()
        );
        assert!((cpu.by_thread.values().sum::<f64>() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn reads_own_threads_by_name() {
        let named = std::thread::Builder::new()
            .name("procfs-test".into())
            .spawn(|| self_ticks().expect("own /proc/self"))
            .unwrap()
            .join()
            .unwrap();
        assert!(named.threads.values().any(|(name, _)| name == "procfs-test"));
    }
}
