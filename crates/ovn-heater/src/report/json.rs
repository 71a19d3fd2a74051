//! `results.json`: the machine-readable results of a run, schema documented in docs/results.md.
//!
//! [`RunResults`] is built once from the recorder's stages plus what the runner captured at
//! each stage's end, then written atomically (temporary file + rename), so a reader never sees
//! half a file. `compare` reads it back with the same types.
//!
//! Must not know: how the numbers were measured, any DB connection.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::daemons::DaemonCapture;
use crate::metrics::host::HostCpu;
use crate::metrics::logs::PollIntervals;
use crate::metrics::northd::NorthdCapture;
use crate::metrics::procfs::{Series, TesterCpu};
use crate::metrics::{Sample, StageRecord, Stats};

/// Bumped when a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub status: RunStatus,
    /// Why the run did not complete, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub scenario: ScenarioInfo,
    pub environment: Environment,
    pub duration_s: f64,
    pub summary: Summary,
    pub stages: Vec<StageResult>,
    /// CPU and RSS over time, one series per daemon.
    pub processes: Vec<Series>,
    /// Daemon name → poll-interval warnings in its whole log (the lab's start to its stop;
    /// `stages[].poll_intervals` has them per stage). Empty without a lab.
    #[serde(default)]
    pub poll_intervals: BTreeMap<String, PollIntervals>,
    /// A run against an existing OVN (`--nb/--sb`): what it found, cleaned up and left there.
    /// Absent for runs on a lab of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached: Option<Attached>,
}

/// What an attached run (`--nb/--sb`) found in and left in the OVN it was given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attached {
    /// This run's marker: every root row it wrote carries `external_ids:ovn-heater:run=<run_id>`.
    pub run_id: String,
    /// Rows of earlier runs (marked) found in the NB at the start, per table; the run went on
    /// only because `--allow-existing` was given.
    #[serde(default)]
    pub found_at_start: BTreeMap<String, usize>,
    /// Whether the run deleted what it created (`global.cleanup`, default yes when attached).
    pub cleanup: bool,
    /// This run's rows still in the NB at its end, per table, counted after cleanup (empty when
    /// all went); `None` when they could not be counted.
    #[serde(default)]
    pub left_at_end: Option<BTreeMap<String, usize>>,
    /// The `_Server` rows of the NB and SB databases at the start.
    #[serde(default)]
    pub nb_server_at_start: Option<ServerDatabase>,
    #[serde(default)]
    pub sb_server_at_start: Option<ServerDatabase>,
}

/// One database's row in the server's `_Server` database (`Database` table), as read over the
/// DB connection: what can be known of a server we did not start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerDatabase {
    pub name: String,
    /// `standalone`, `clustered` or `relay`.
    pub model: String,
    /// Whether the server is connected to its cluster (always true when standalone).
    pub connected: bool,
    /// Whether the server is its cluster's leader (always true when standalone).
    pub leader: bool,
    /// The schema version it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// RAFT: cluster id, server id, and the log index the server has seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every stage ran (checks may still have failed: see `summary`).
    Complete,
    /// A stage failed; results up to that point.
    Failed,
    /// Ctrl-C / SIGTERM; results up to that point.
    Interrupted,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// File stem, e.g. `openstack-base`.
    pub name: String,
    pub file: String,
    pub workload: String,
    /// The validated scenario with every default filled in.
    pub resolved: serde_json::Value,
    /// Keys without effect and adjusted values.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub ovn_heater_version: String,
    pub ovn_version: String,
    pub ovs_version: String,
    pub kernel: String,
    pub hostname: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    /// `real` or `emulated`.
    pub chassis: String,
    /// `lab` when ovn-heater started the cluster, else the NB remote it drove.
    pub target: String,
    /// The NB and SB remotes ovn-heater used (`ssl:…` when TLS was on).
    #[serde(default)]
    pub nb_remote: String,
    #[serde(default)]
    pub sb_remote: String,
    /// Whether the NB/SB connections were TLS (`cluster.enable_ssl`, or `ssl:` remotes).
    #[serde(default)]
    pub ssl: bool,
    /// Whether the SB restricted the chassis with RBAC (`role=ovn-controller`).
    #[serde(default)]
    pub rbac: bool,
    /// Wall-clock start, UTC, RFC 3339.
    pub started_at: String,
    /// Program name → the binary that ran and its `--version` first line, so runs of two
    /// builds (main and a patch) tell apart.
    #[serde(default)]
    pub binaries: BTreeMap<String, Binary>,
    /// `ovn-heater run --label TEXT`: the user's name for this run (`main`, `patch-v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One program of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    /// Absolute path (`/proc/PID/exe` of a running daemon).
    pub path: String,
    /// `PATH --version`'s first line (`ovn-northd 23.03.1`), `unknown` when it says nothing.
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub ports_created: usize,
    pub ports_up: usize,
    /// Failed samples over every stage and measurement: `system` + `harness` of
    /// `failures_by_class` (skipped samples are not failures of their own).
    pub failures: usize,
    /// Failed samples by who failed, and the samples skipped because their subject failed
    /// earlier. Results written before classes existed read as every failure `system`.
    #[serde(default)]
    pub failures_by_class: FailureCounts,
    pub pings_ok: usize,
    pub pings_failed: usize,
    pub cms_actions: usize,
}

/// Samples per [`FailureClass`](crate::metrics::FailureClass).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts {
    pub system: usize,
    pub harness: usize,
    pub skipped: usize,
}

impl FailureCounts {
    /// Failures of their own: system + harness.
    pub fn failures(&self) -> usize {
        self.system + self.harness
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    pub name: String,
    pub start_s: f64,
    /// `None` when the run stopped inside this stage.
    pub duration_s: Option<f64>,
    pub measurements: BTreeMap<String, Measurement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub northd: Option<NorthdCapture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<DbFigures>,
    /// Process name → CPU seconds it used during this stage.
    #[serde(default)]
    pub cpu_s: BTreeMap<String, f64>,
    /// The tester's CPU in this stage (`cpu_s["ovn-heater"]`) split into user and kernel time
    /// and by thread: namespace creation runs on threads of its own (`ovn-lab-netns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tester_cpu: Option<TesterCpu>,
    /// The whole host's CPU seconds during this stage (all CPUs summed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<HostCpu>,
    /// Daemon name → poll-interval warnings its log got during this stage.
    #[serde(default)]
    pub poll_intervals: BTreeMap<String, PollIntervals>,
    /// Daemon name → `memory/show`, `coverage/show`, `cluster/status` at this stage's end.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub daemons: BTreeMap<String, DaemonCapture>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub stats: Stats,
    pub samples: Vec<Sample>,
}

/// Database sizes at a stage's end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DbFigures {
    pub nb: DbSize,
    pub sb: DbSize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DbSize {
    /// Size of the database file (`None` when not local, e.g. with --nb/--sb).
    pub file_bytes: Option<u64>,
    /// Table → row count.
    pub rows: BTreeMap<String, u64>,
    /// The server's `_Server` row for this database at the stage's end (`None` when it could
    /// not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerDatabase>,
}

/// What the runner captured at the end of a stage, besides samples.
#[derive(Clone, Debug, Default)]
pub struct StageExtras {
    pub northd: Option<NorthdCapture>,
    pub db: Option<DbFigures>,
    pub daemons: BTreeMap<String, DaemonCapture>,
}

/// Measurement names the summary counts (the runner records under these).
pub mod names {
    pub const PORT_UP: &str = "port_up";
    pub const CREATE_PORT: &str = "create_port";
    pub const PING_PREFIX: &str = "ping_";
    pub const HV_SETTLE: &str = "hv_cfg_settle";
}

impl StageResult {
    pub fn from_record(record: &StageRecord, extras: Option<&StageExtras>) -> Self {
        StageResult {
            name: record.name.clone(),
            start_s: record.start_s,
            duration_s: record.duration_s(),
            measurements: record
                .measurements
                .iter()
                .map(|(name, samples)| {
                    let mut samples = samples.clone();
                    samples.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
                    (
                        name.clone(),
                        Measurement {
                            stats: Stats::of(&samples),
                            samples,
                        },
                    )
                })
                .collect(),
            northd: extras.and_then(|e| e.northd.clone()).or_else(|| record.northd.clone()),
            db: extras.and_then(|e| e.db.clone()),
            cpu_s: record.cpu_s.clone(),
            tester_cpu: record.tester_cpu.clone(),
            host_cpu: record.host_cpu,
            poll_intervals: record.poll_intervals.clone(),
            daemons: extras
                .map(|e| e.daemons.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| record.daemons.clone()),
        }
    }
}

/// The counts of [`Summary`] from the stages: ports created/up from `create_port`/`port_up`
/// samples, pings from every `ping_*` measurement, CMS actions from every measurement whose
/// name is in `cms_actions`.
pub fn summarize(stages: &[StageResult], cms_actions: &[&str]) -> Summary {
    let mut s = Summary::default();
    for stage in stages {
        for (name, m) in &stage.measurements {
            let ok = m.stats.ok();
            s.failures += m.stats.failed;
            s.failures_by_class.system += m.stats.system();
            s.failures_by_class.harness += m.stats.harness;
            s.failures_by_class.skipped += m.stats.skipped;
            if name == names::CREATE_PORT {
                s.ports_created += ok;
            }
            if name == names::PORT_UP {
                s.ports_up += ok;
            }
            if name.starts_with(names::PING_PREFIX) {
                s.pings_ok += ok;
                s.pings_failed += m.stats.failed;
            }
            if cms_actions.contains(&name.as_str()) {
                s.cms_actions += m.stats.count;
            }
        }
    }
    s
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |f| f.write_all(contents))
}

/// [`write_atomically`] of what `write` writes, streamed to the file: a results.json of
/// thousands of samples is never held whole in memory (at 1,000 VMs it is 4.5 MB, and the
/// string it was built in was the tester's peak RSS).
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl RunResults {
    #[cfg(test)]
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize: {e}\"}}"))
    }

    /// Writes `path` (results.json) atomically, serialized straight into the file.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        write_atomically_with(path, |f| {
            serde_json::to_writer_pretty(f, self).map_err(std::io::Error::other)
        })
    }

    /// Reads `DIR/results.json` (or the file itself when `path` is a file).
    pub fn read(path: &Path) -> anyhow::Result<RunResults> {
        use anyhow::Context as _;
        let file = if path.is_dir() {
            path.join("results.json")
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let results: RunResults = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an ovn-heater results.json", file.display()))?;
        if results.schema_version != SCHEMA_VERSION {
            anyhow::bail!(
                "{} has schema_version {}, this ovn-heater reads {SCHEMA_VERSION}",
                file.display(),
                results.schema_version
            );
        }
        Ok(results.with_classes())
    }

    /// Results written before failure classes existed have no `failures_by_class`: each of
    /// their failures was counted as OVN's, so they read as `system`.
    pub fn with_classes(mut self) -> RunResults {
        let s = &mut self.summary;
        if s.failures_by_class == FailureCounts::default() && s.failures > 0 {
            s.failures_by_class.system = s.failures;
        }
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::procfs::Reading;

    pub fn sample(subject: &str, start: f64, d: f64, err: Option<&str>) -> Sample {
        Sample {
            subject: subject.into(),
            start_s: start,
            duration_s: d,
            error: err.map(str::to_owned),
            class: None,
        }
    }

    /// A small but complete result set, shared by the report and compare tests.
    pub fn example(scale: f64) -> RunResults {
        let mut vms = StageRecord {
            name: "vms".into(),
            start_s: 1.0,
            end_s: Some(5.0),
            ..Default::default()
        };
        vms.measurements.insert(
            "create_port".into(),
            (0..4)
                .map(|i| sample(&format!("vm-{i}"), 1.0 + i as f64, 0.05 * scale, None))
                .collect(),
        );
        vms.measurements.insert(
            "port_up".into(),
            (0..4)
                .map(|i| {
                    let err = (i == 3).then_some("timeout after 20s");
                    sample(&format!("vm-{i}"), 1.0 + i as f64, 0.4 * scale + 0.1 * i as f64, err)
                })
                .collect(),
        );
        vms.measurements.insert(
            "ping_gateway".into(),
            (0..3)
                .map(|i| sample(&format!("vm-{i} -> gw"), 2.0 + i as f64, 0.2 * scale, None))
                .collect(),
        );
        let extras = StageExtras {
            northd: Some(NorthdCapture {
            stopwatches: crate::metrics::northd::parse_stopwatches(
                "Statistics for 'ovnnb_db_run'\n  Total samples: 3\n  Maximum: 9 msec\n  Minimum: 1 msec\n  95th percentile: 8 msec\n  Short term average: 2 msec\n  Long term average: 2 msec\n",
            ),
            stopwatch_text: "Statistics for 'ovnnb_db_run' ...".into(),
            inc_engine_text: "Node: northd\n- recompute: 3\n".into(),
            since_previous_stage: true,
            errors: vec![],
        }),
            db: Some(DbFigures {
            nb: DbSize {
                file_bytes: Some(12345),
                rows: [("Logical_Switch_Port".to_owned(), 6)].into(),
                server: None,
            },
            sb: DbSize {
                file_bytes: Some(54321),
                rows: [("Port_Binding".to_owned(), 6)].into(),
                server: None,
            },
        }),
            daemons: [(
                "northd".to_owned(),
                DaemonCapture {
                    memory: crate::metrics::daemons::parse_memory("idl-cells-OVN_Southbound:5623"),
                    memory_text: "idl-cells-OVN_Southbound:5623\n".into(),
                    ..Default::default()
                },
            )]
            .into(),
        };
        let stages = vec![StageResult::from_record(&vms, Some(&extras))];
        let summary = summarize(&stages, &["create_port"]);
        RunResults {
            schema_version: SCHEMA_VERSION,
            status: RunStatus::Complete,
            error: None,
            scenario: ScenarioInfo {
                name: "openstack-base".into(),
                file: "scenarios/openstack-base.yml".into(),
                workload: "openstack_base".into(),
                resolved: serde_json::json!({"n_hypervisors": 2}),
                notes: vec!["cluster.gw_net has no effect".into()],
            },
            environment: Environment {
                ovn_heater_version: "0.1.0".into(),
                ovn_version: "23.03.1".into(),
                chassis: "real".into(),
                cpus: 2,
                ..Default::default()
            },
            duration_s: 6.0,
            summary,
            stages,
            processes: vec![Series {
                name: "ovn-northd".into(),
                role: "northd".into(),
                pid: 1,
                readings: (0..10)
                    .map(|i| Reading {
                        t_s: i as f64 * 0.5,
                        cpu_pct: 10.0 * scale * (i % 3) as f64,
                        rss_bytes: (20_000_000.0 * scale) as u64 + i * 1000,
                    })
                    .collect(),
                exited_s: None,
                peak_rss_bytes: (20_000_000.0 * scale) as u64 + 9000,
                end_rss_bytes: (20_000_000.0 * scale) as u64 + 9000,
            }],
            poll_intervals: [("northd".to_owned(), PollIntervals { count: 2, max_ms: 1834 })].into(),
            attached: None,
        }
    }

    #[test]
    fn summary_counts_ports_pings_and_failures() {
        let r = example(1.0);
        assert_eq!(
            r.summary,
            Summary {
                ports_created: 4,
                ports_up: 3,
                failures: 1,
                failures_by_class: FailureCounts {
                    system: 1,
                    harness: 0,
                    skipped: 0
                },
                pings_ok: 3,
                pings_failed: 0,
                cms_actions: 4
            }
        );
    }

    #[test]
    fn json_round_trips_and_has_documented_top_level_keys() {
        let r = example(1.0);
        let text = r.to_json_pretty();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "schema_version",
            "status",
            "scenario",
            "environment",
            "summary",
            "stages",
            "processes",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in ["ports_created", "ports_up", "failures"] {
            assert!(v["summary"][key].is_u64(), "summary.{key}");
        }
        let stats = &v["stages"][0]["measurements"]["port_up"]["stats"];
        for key in ["min", "median", "p90", "p99", "max", "mean", "total", "count", "failed"] {
            assert!(stats.get(key).is_some(), "stats.{key}");
        }
        let back: RunResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn summary_counts_failures_by_class_and_skips_apart() {
        use crate::metrics::FailureClass;
        let mut r = example(1.0);
        let vms = &mut r.stages[0].measurements;
        let classed = |subject: &str, class: FailureClass| Sample {
            class: Some(class),
            ..sample(subject, 9.0, 0.0, Some("x"))
        };
        let bind = vec![sample("vm-0", 1.0, 0.1, None), classed("vm-4", FailureClass::Harness)];
        let pings = vec![
            classed("vm-4 -> gw", FailureClass::Skipped),
            classed("vm-5 -> gw", FailureClass::System),
        ];
        for (name, samples) in [("bind_port", bind), ("ping_gateway", pings)] {
            let m = vms.entry(name.into()).or_default();
            m.samples.extend(samples);
            m.stats = Stats::of(&m.samples);
        }
        let s = summarize(&r.stages, &["create_port"]);
        // port_up's unclassed timeout is system.
        assert_eq!(
            s.failures_by_class,
            FailureCounts {
                system: 2,
                harness: 1,
                skipped: 1
            }
        );
        assert_eq!(s.failures, 3);
        assert_eq!((s.pings_ok, s.pings_failed), (3, 1));
    }

    #[test]
    fn results_without_classes_still_load_with_failures_as_system() {
        let r = example(1.0);
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json_pretty()).unwrap();
        v["summary"].as_object_mut().unwrap().remove("failures_by_class");
        for st in v["stages"].as_array_mut().unwrap() {
            for m in st["measurements"].as_object_mut().unwrap().values_mut() {
                let stats = m["stats"].as_object_mut().unwrap();
                stats.remove("harness");
                stats.remove("skipped");
                for s in m["samples"].as_array_mut().unwrap() {
                    s.as_object_mut().unwrap().remove("class");
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("results.json"), v.to_string()).unwrap();
        let back = RunResults::read(dir.path()).unwrap();
        assert_eq!(back.summary.failures_by_class.system, 1);
        assert_eq!(back.summary, r.summary);
        let failed = &back.stages[0].measurements["port_up"].samples[3];
        assert_eq!(failed.failure_class(), Some(crate::metrics::FailureClass::System));
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_atomically(&path, b"{}").unwrap();
        write_atomically(&path, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn results_without_the_engineer_fields_still_load() {
        let mut v = serde_json::to_value(example(1.0)).unwrap();
        let strip = |o: &mut serde_json::Value, keys: &[&str]| {
            for k in keys {
                o.as_object_mut().unwrap().remove(*k);
            }
        };
        strip(&mut v, &["poll_intervals"]);
        strip(&mut v["environment"], &["binaries", "label"]);
        strip(&mut v["processes"][0], &["end_rss_bytes"]);
        strip(&mut v["stages"][0], &["host_cpu", "poll_intervals", "daemons"]);
        strip(&mut v["stages"][0]["northd"], &["since_previous_stage"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("results.json"), v.to_string()).unwrap();
        let r = RunResults::read(dir.path()).expect("old results load");
        assert!(r.poll_intervals.is_empty() && r.environment.binaries.is_empty());
        assert_eq!(r.processes[0].end_rss_bytes, 0);
        assert!(r.stages[0].daemons.is_empty() && r.stages[0].host_cpu.is_none());
        assert!(!r.stages[0].northd.as_ref().unwrap().since_previous_stage);
        // And the page still renders, with last RSS from the readings.
        assert!(crate::report::html::render(&r).contains("id=\"processes\""));
    }

    #[test]
    fn read_refuses_other_files_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunResults::read(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read"));
        std::fs::write(dir.path().join("results.json"), "{}").unwrap();
        let err = RunResults::read(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("is not an ovn-heater results.json"));
    }
}
