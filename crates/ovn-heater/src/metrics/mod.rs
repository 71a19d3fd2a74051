//! Measurements of a run: one monotonic [`Clock`], samples per stage and measurement with their
//! outcome ([`Recorder`]), summary [`Stats`], CPU/RSS of daemons from /proc ([`procfs`]) and
//! northd's own counters ([`northd`]).
//!
//! Every timestamp is seconds since the run's clock started, taken from `Instant`s, so samples
//! from the CMS workers, the NB monitor and the /proc sampler line up. Failed samples are kept
//! (and counted), never dropped.
//!
//! Must not know: YAML, the report formats' layout, how the lab starts daemons.

pub mod daemons;
pub mod host;
pub mod logs;
pub mod northd;
pub mod procfs;
mod stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use stats::Stats;

/// The run's one monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock { origin: Instant::now() }
    }
    /// Seconds from the start of the run to `at` (0 for instants before it).
    pub fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }
    pub fn now(&self) -> f64 {
        self.secs(Instant::now())
    }
}

/// Why a sample failed: who is to blame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// OVN did not do what it should within the timeout (a port never up, a ping unanswered,
    /// a transaction refused).
    System,
    /// The test harness failed: the lab's plumbing, a probe, ovn-heater's own tooling.
    Harness,
    /// Not run: an earlier sample for the same subject failed (a VM that was never plugged has
    /// no port-up time; pings involving a VM that never came up).
    Skipped,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::System => "system",
            FailureClass::Harness => "harness",
            FailureClass::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the test harness itself, not of OVN: raised where the harness does its own work
/// (plumbing a VM, opening a probe socket, the emulated chassis), so that a sample's class is
/// known from the error's type wherever it is recorded ([`class_of`]).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct HarnessFault(pub anyhow::Error);

impl HarnessFault {
    /// `e` as a harness failure, in an `anyhow::Error` that [`class_of`] recognises.
    pub fn wrap(e: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(HarnessFault(e.into()))
    }
}

/// The class of a failure: [`FailureClass::Harness`] when a [`HarnessFault`] is anywhere in
/// its chain, else [`FailureClass::System`].
pub fn class_of(e: &anyhow::Error) -> FailureClass {
    if e.chain().any(|c| c.is::<HarnessFault>()) {
        FailureClass::Harness
    } else {
        FailureClass::System
    }
}

/// An error a timed step can fail with, and the class of that failure. Errors of OVN's side
/// (NB/SB transactions, the CMS) are system failures; an `anyhow::Error` carrying a
/// [`HarnessFault`] is a harness failure.
pub trait Classify: std::fmt::Display {
    fn failure_class(&self) -> FailureClass {
        FailureClass::System
    }
    /// The text recorded as the sample's error.
    fn message(&self) -> String {
        self.to_string()
    }
}

impl Classify for anyhow::Error {
    fn failure_class(&self) -> FailureClass {
        class_of(self)
    }
    fn message(&self) -> String {
        format!("{self:#}")
    }
}

impl Classify for String {}
impl Classify for ovn_openstack::Error {}
impl Classify for ovsdb::Error {}

/// One timed thing: a CMS action, a port coming up, a ping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// What was measured: a port name, a network name, `vm-3 -> gateway`.
    pub subject: String,
    /// Start, seconds on the run clock.
    pub start_s: f64,
    /// Duration in seconds (up to the failure, for failed samples).
    pub duration_s: f64,
    /// `None` when it succeeded; the error or `timeout after ...` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With `error`: who failed. Absent in results written before classes existed, whose
    /// failures count as `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    /// `None` when it succeeded; a failure without a recorded class is a system failure.
    pub fn failure_class(&self) -> Option<FailureClass> {
        self.error.as_ref().map(|_| self.class.unwrap_or(FailureClass::System))
    }
    /// Not run because an earlier sample of its subject failed.
    pub fn skipped(&self) -> bool {
        self.failure_class() == Some(FailureClass::Skipped)
    }
}

/// Everything measured in one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub start_s: f64,
    /// `None` while the stage runs (or when the run stopped inside it).
    pub end_s: Option<f64>,
    /// Measurement name → samples in the order they were recorded.
    pub measurements: BTreeMap<String, Vec<Sample>>,
    /// Process name → CPU seconds (utime + stime) it used between the stage's start and end,
    /// read from /proc at both ends; a process started during the stage counts from zero.
    #[serde(default)]
    pub cpu_s: BTreeMap<String, f64>,
    /// CPU seconds of each watched process when the stage began.
    #[serde(skip)]
    pub cpu_at_start: BTreeMap<String, f64>,
    /// What the tester's own CPU in the stage went to: user or kernel, and which threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tester_cpu: Option<procfs::TesterCpu>,
    #[serde(skip)]
    pub tester_at_start: Option<procfs::SelfTicks>,
    /// The whole host's CPU seconds (user, system, idle, iowait, steal) during the stage, from
    /// /proc/stat at both ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<host::HostCpu>,
    #[serde(skip)]
    pub host_at_start: Option<host::HostTicks>,
    /// Daemon name → the poll-interval warnings its log got during the stage.
    #[serde(default)]
    pub poll_intervals: BTreeMap<String, logs::PollIntervals>,
    /// Length of each watched log when the stage began.
    #[serde(skip)]
    pub logs_at_start: BTreeMap<String, u64>,
    /// northd's counters and the daemons' figures captured at the stage's end
    /// ([`Recorder::attach_captures`]).
    #[serde(skip)]
    pub northd: Option<northd::NorthdCapture>,
    #[serde(skip)]
    pub daemons: BTreeMap<String, daemons::DaemonCapture>,
}

impl StageRecord {
    pub fn duration_s(&self) -> Option<f64> {
        self.end_s.map(|e| e - self.start_s)
    }
}

/// Collects samples from any task; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    clock: Clock,
    stages: Arc<Mutex<Vec<StageRecord>>>,
    /// Processes whose CPU time every stage records (name, pid); ovn-heater itself first.
    cpu_watched: Arc<Mutex<Vec<(String, u32)>>>,
    /// Daemon logs whose poll-interval warnings every stage counts (name, path).
    logs_watched: Arc<Mutex<Vec<(String, std::path::PathBuf)>>>,
    /// Where a watched log starts counting, when not at its start (a daemon we did not start:
    /// its log holds its history before the run).
    logs_from: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// The name ovn-heater's own process has in `processes` and `stages[].cpu_s`.
pub const TESTER: &str = "ovn-heater";

/// Index of a stage in the recorder (samples that arrive late, such as a port coming up after
/// the next stage began, still go to the stage that created the port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageId(usize);

impl Recorder {
    pub fn new(clock: Clock) -> Self {
        Recorder {
            clock,
            stages: Arc::new(Mutex::new(Vec::new())),
            cpu_watched: Arc::new(Mutex::new(vec![(TESTER.to_owned(), std::process::id())])),
            logs_watched: Arc::new(Mutex::new(Vec::new())),
            logs_from: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// From now on, every stage that ends counts the poll-interval warnings written to `log`
    /// while it ran (a stage already running counts from the log's start).
    pub fn watch_log(&self, name: &str, log: std::path::PathBuf) {
        let mut watched = self.logs_watched.lock().unwrap_or_else(|p| p.into_inner());
        if !watched.iter().any(|(n, _)| n == name) {
            watched.push((name.to_owned(), log));
        }
    }

    /// [`Recorder::watch_log`] from the log's current end: what it held before is not counted,
    /// by any stage nor in the totals.
    pub fn watch_log_from_now(&self, name: &str, log: std::path::PathBuf) {
        self.logs_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), logs::length(&log));
        self.watch_log(name, log);
    }

    fn log_from(&self, name: &str) -> u64 {
        self.logs_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// The watched logs (name, path).
    pub fn watched_logs(&self) -> Vec<(String, std::path::PathBuf)> {
        self.logs_watched.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Poll-interval warnings in each watched log from its start to now.
    pub fn poll_intervals_total(&self) -> BTreeMap<String, logs::PollIntervals> {
        self.watched_logs()
            .into_iter()
            .map(|(name, path)| {
                let from = self.log_from(&name);
                (name, logs::count_from(&path, from))
            })
            .collect()
    }

    fn log_lengths(&self) -> BTreeMap<String, u64> {
        self.watched_logs()
            .into_iter()
            .map(|(name, path)| (name, logs::length(&path)))
            .collect()
    }

    /// From now on, every stage that ends records the CPU seconds `pid` used in it.
    pub fn watch_cpu(&self, name: &str, pid: u32) {
        let mut watched = self.cpu_watched.lock().unwrap_or_else(|p| p.into_inner());
        if !watched.iter().any(|(n, _)| n == name) {
            watched.push((name.to_owned(), pid));
        }
    }

    fn cpu_now(&self) -> BTreeMap<String, f64> {
        let watched = self.cpu_watched.lock().unwrap_or_else(|p| p.into_inner()).clone();
        watched
            .into_iter()
            .filter_map(|(name, pid)| procfs::cpu_seconds(pid).map(|s| (name, s)))
            .collect()
    }
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Measures `processes` and the tester (this process: emulated chassis run inside it, so
    /// with them its figures are the farm's as well): CPU seconds per stage from now on, and
    /// a /proc sample every 500 ms until `stop`; the task returns the series.
    pub fn sample_processes(
        &self,
        mut processes: Vec<procfs::Watched>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<Vec<procfs::Series>> {
        processes.push(procfs::Watched {
            name: TESTER.into(),
            role: "tester".into(),
            pid: std::process::id(),
        });
        for w in &processes {
            self.watch_cpu(&w.name, w.pid);
        }
        tokio::spawn(procfs::sample(
            self.clock,
            processes,
            std::time::Duration::from_millis(500),
            stop,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StageRecord>> {
        // A panicking recorder user must not hide the other samples.
        self.stages.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn begin_stage(&self, name: &str) -> StageId {
        let cpu_at_start = self.cpu_now();
        let tester_at_start = procfs::self_ticks();
        let host_at_start = host::read();
        let logs_at_start = self.log_lengths();
        let mut stages = self.lock();
        stages.push(StageRecord {
            name: name.to_owned(),
            start_s: self.clock.now(),
            cpu_at_start,
            tester_at_start,
            host_at_start,
            logs_at_start,
            ..StageRecord::default()
        });
        StageId(stages.len() - 1)
    }

    /// Names a stage once its name is known (an ovn-kubernetes Context is named at its end).
    pub fn rename_stage(&self, id: StageId, name: &str) {
        if let Some(s) = self.lock().get_mut(id.0) {
            s.name = name.to_owned();
        }
    }

    pub fn end_stage(&self, id: StageId) {
        let now = self.clock.now();
        let cpu_at_end = self.cpu_now();
        let tester_at_end = procfs::self_ticks();
        let host_at_end = host::read();
        let logs = self.watched_logs();
        if let Some(s) = self.lock().get_mut(id.0) {
            if let (Some(a), Some(b)) = (&s.tester_at_start, &tester_at_end) {
                s.tester_cpu = Some(procfs::TesterCpu::between(a, b, procfs::clock_ticks_per_sec()));
            }
            if let (Some(a), Some(b)) = (&s.host_at_start, &host_at_end) {
                s.host_cpu = Some(host::delta(a, b, procfs::clock_ticks_per_sec()));
            }
            s.poll_intervals = logs
                .iter()
                .map(|(name, path)| {
                    let from = s.logs_at_start.get(name).copied().unwrap_or(0).max(self.log_from(name));
                    (name.clone(), logs::count_from(path, from))
                })
                .collect();
            s.end_s = Some(now);
            s.cpu_s = cpu_at_end
                .into_iter()
                .map(|(name, end)| {
                    let start = s.cpu_at_start.get(&name).copied().unwrap_or(0.0);
                    (name, (end - start).max(0.0))
                })
                .collect();
        }
    }

    /// Keeps what was captured from the daemons at the end of `stage`.
    pub fn attach_captures(
        &self,
        stage: StageId,
        northd: Option<northd::NorthdCapture>,
        daemons: BTreeMap<String, daemons::DaemonCapture>,
    ) {
        if let Some(s) = self.lock().get_mut(stage.0) {
            s.northd = northd;
            s.daemons = daemons;
        }
    }

    /// Records one sample from `start` to `end`; `error` is `None` on success, otherwise a
    /// system failure (OVN's side; see [`Recorder::record_as`] for the others).
    pub fn record(
        &self,
        stage: StageId,
        measurement: &str,
        subject: impl Into<String>,
        start: Instant,
        end: Instant,
        error: Option<String>,
    ) {
        self.record_as(stage, measurement, subject, start, end, FailureClass::System, error);
    }

    /// Records one sample whose failure, if `error` is set, is of `class`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_as(
        &self,
        stage: StageId,
        measurement: &str,
        subject: impl Into<String>,
        start: Instant,
        end: Instant,
        class: FailureClass,
        error: Option<String>,
    ) {
        let sample = Sample {
            subject: subject.into(),
            start_s: self.clock.secs(start),
            duration_s: end.saturating_duration_since(start).as_secs_f64(),
            class: error.as_ref().map(|_| class),
            error,
        };
        if let Some(s) = self.lock().get_mut(stage.0) {
            // The name is copied only the first time it is recorded in the stage.
            match s.measurements.get_mut(measurement) {
                Some(samples) => samples.push(sample),
                None => {
                    s.measurements.insert(measurement.to_owned(), vec![sample]);
                }
            }
        }
    }

    /// Records that `measurement` of `subject` did not run because an earlier sample of the
    /// same subject failed (`why` names it); a zero-length sample at `at`.
    pub fn skipped(&self, stage: StageId, measurement: &str, subject: impl Into<String>, at: Instant, why: &str) {
        self.record_as(
            stage,
            measurement,
            subject,
            at,
            at,
            FailureClass::Skipped,
            Some(format!("skipped: {why}")),
        );
    }

    /// Times `fut` and records it under `measurement`, a failure classed by its error's type
    /// ([`Classify`]); passes its result through.
    pub async fn timed<T, E: Classify>(
        &self,
        stage: StageId,
        measurement: &str,
        subject: impl Into<String>,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = fut.await;
        let (class, error) = match &result {
            Ok(_) => (FailureClass::System, None),
            Err(e) => (e.failure_class(), Some(e.message())),
        };
        self.record_as(stage, measurement, subject, start, Instant::now(), class, error);
        result
    }

    /// A copy of all stages so far.
    pub fn stages(&self) -> Vec<StageRecord> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn samples_land_in_their_stage_with_outcome() {
        let rec = Recorder::new(Clock::start());
        let a = rec.begin_stage("network");
        let t0 = Instant::now();
        rec.record(a, "create_network", "ext", t0, t0 + Duration::from_millis(20), None);
        let b = rec.begin_stage("vms");
        rec.record(
            b,
            "port_up",
            "vm-0",
            t0,
            t0 + Duration::from_millis(5),
            Some("timeout".into()),
        );
        // A late sample for the first stage still goes there.
        rec.record(a, "create_network", "int", t0, t0 + Duration::from_millis(10), None);
        rec.end_stage(a);
        let stages = rec.stages();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].measurements["create_network"].len(), 2);
        assert!((stages[0].measurements["create_network"][0].duration_s - 0.020).abs() < 1e-9);
        assert!(stages[0].end_s.is_some() && stages[1].end_s.is_none());
        assert_eq!(stages[1].measurements["port_up"][0].error.as_deref(), Some("timeout"));
    }

    #[tokio::test]
    async fn timed_records_errors() {
        let rec = Recorder::new(Clock::start());
        let s = rec.begin_stage("x");
        let r: Result<(), String> = rec.timed(s, "op", "a", async { Err("boom".to_owned()) }).await;
        assert!(r.is_err());
        assert_eq!(rec.stages()[0].measurements["op"][0].error.as_deref(), Some("boom"));
    }

    #[test]
    fn stages_count_the_poll_intervals_logged_while_they_ran_and_host_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("northd.log");
        let warn = |ms: u32| {
            format!("2026-12-05T10:00:00Z|00001|timeval|WARN|Unreasonably long {ms}ms poll interval (0ms user, 0ms system)\n")
        };
        std::fs::write(&log, warn(1500)).unwrap();
        let rec = Recorder::new(Clock::start());
        let bringup = rec.begin_stage("bringup");
        // Watched after the stage began: the stage counts from the log's start.
        rec.watch_log("northd", log.clone());
        rec.end_stage(bringup);
        let vms = rec.begin_stage("vms");
        let append = |text: String| {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        };
        append(warn(2500) + "other line\n" + &warn(1100));
        rec.end_stage(vms);
        let stages = rec.stages();
        assert_eq!(
            stages[0].poll_intervals["northd"],
            logs::PollIntervals { count: 1, max_ms: 1500 }
        );
        assert_eq!(
            stages[1].poll_intervals["northd"],
            logs::PollIntervals { count: 2, max_ms: 2500 }
        );
        assert_eq!(rec.poll_intervals_total()["northd"].count, 3);
        assert!(stages.iter().all(|s| s.host_cpu.is_some()));
    }

    #[test]
    fn a_log_watched_from_now_counts_nothing_it_held_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ovsdb-server-nb.log");
        let warn = |ms: u32| {
            format!("2026-12-05T10:00:00Z|00001|timeval|WARN|Unreasonably long {ms}ms poll interval (0ms user, 0ms system)\n")
        };
        // A daemon we did not start: its log has its history.
        std::fs::write(&log, warn(9000) + &warn(8000)).unwrap();
        let rec = Recorder::new(Clock::start());
        let bringup = rec.begin_stage("bringup");
        rec.watch_log_from_now("nb", log.clone());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, warn(1200).as_bytes()))
            .unwrap();
        rec.end_stage(bringup);
        assert_eq!(
            rec.stages()[0].poll_intervals["nb"],
            logs::PollIntervals { count: 1, max_ms: 1200 }
        );
        assert_eq!(rec.poll_intervals_total()["nb"].count, 1);
    }

    #[test]
    fn clock_is_monotonic_and_saturates() {
        let c = Clock::start();
        let before = c.origin - Duration::from_millis(1);
        assert_eq!(c.secs(before), 0.0);
        let a = c.now();
        assert!(c.now() >= a);
    }
}
