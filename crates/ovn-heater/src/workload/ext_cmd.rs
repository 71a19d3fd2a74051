//! Upstream's `ext_cmd`: a shell command run when a stage reaches an iteration, on the central
//! node (this host) or inside a real chassis' namespace, e.g. `perf record` on ovn-northd.
//!
//! Iteration N of a stage is its N-th item: the N-th VM in `vms`, and the stage's start for the
//! other stages (iteration 0). `pid_name` appends `pid_opt <pid of pid_name>`, as upstream does.
//! Output goes to `logs/ext_cmd-<stage>-<iteration>.log`; each command is a sample of the
//! `ext_cmd` measurement (a non-zero exit is a failure). Background commands are killed at
//! teardown, so nothing is left running.
//!
//! Must not know: YAML, the CMS, reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::{Recorder, StageId};
use crate::scenario::ExtCmd;

/// Stages an entry's `test` may name.
pub const STAGES: &[&str] = &["networks", "vms", "pings", "cleanup"];

/// Names that mean this host (upstream's central containers).
pub fn is_central(node: &str) -> bool {
    node == "central" || node.starts_with("ovn-central")
}

/// A foreground command may run this long before it is killed.
const FOREGROUND_LIMIT: Duration = Duration::from_secs(600);

pub struct ExtCmds {
    cmds: Vec<ExtCmd>,
    /// Chassis name → its network namespace (known once the lab is up).
    netns: Mutex<HashMap<String, String>>,
    logs: PathBuf,
    background: Mutex<Vec<tokio::process::Child>>,
    /// The scenario's `chaos:` entries, run at the same points (set once the lab is up,
    /// dropped with the background commands: it holds the lab, which teardown needs back).
    chaos: Mutex<Option<std::sync::Arc<crate::workload::chaos::Chaos>>>,
}

impl ExtCmds {
    pub fn new(cmds: Vec<ExtCmd>, logs: PathBuf) -> Self {
        ExtCmds {
            cmds,
            netns: Mutex::new(HashMap::new()),
            logs,
            background: Mutex::new(Vec::new()),
            chaos: Mutex::new(None),
        }
    }

    /// The `chaos:` entries to run at the same points as the commands.
    pub fn set_chaos(&self, chaos: crate::workload::chaos::Chaos) {
        *self.chaos.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::sync::Arc::new(chaos));
    }

    /// Where each real chassis' commands run.
    pub fn set_netns(&self, netns: HashMap<String, String>) {
        *self.netns.lock().unwrap_or_else(|p| p.into_inner()) = netns;
    }

    /// Checks every entry names a known stage and node; `nodes` are the chassis that will exist.
    pub fn check(cmds: &[ExtCmd], nodes: &[String]) -> Result<(), String> {
        for c in cmds {
            if !STAGES.contains(&c.test.as_str()) {
                return Err(format!(
                    "ext_cmd `{}`: test `{}` is not a stage of this workload ({})",
                    c.cmd,
                    c.test,
                    STAGES.join(", ")
                ));
            }
            if !is_central(&c.node) && !nodes.contains(&c.node) {
                return Err(format!(
                    "ext_cmd `{}`: node `{}` is neither `central` nor a real chassis of this run ({})",
                    c.cmd,
                    c.node,
                    if nodes.is_empty() {
                        "none".to_owned()
                    } else {
                        nodes.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }

    /// Runs the entries for `stage_name` at `iteration`.
    pub async fn at(&self, rec: &Recorder, stage: StageId, stage_name: &str, iteration: usize) {
        for (k, c) in self.cmds.iter().enumerate() {
            if c.test != stage_name || c.iteration != iteration {
                continue;
            }
            let start = Instant::now();
            let error = self.run_one(c, stage_name, k).await.err();
            // A command that fails is tooling around the run (perf, a script), not OVN.
            rec.record_as(
                stage,
                "ext_cmd",
                format!("{} on {}", c.cmd, c.node),
                start,
                Instant::now(),
                crate::metrics::FailureClass::Harness,
                error,
            );
        }
        let chaos = self.chaos.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(chaos) = chaos {
            chaos.at(rec, stage, stage_name, iteration).await;
        }
    }

    async fn run_one(&self, c: &ExtCmd, stage_name: &str, k: usize) -> Result<(), String> {
        let mut line = c.cmd.clone();
        if let Some(name) = &c.pid_name {
            let out = tokio::process::Command::new("pidof")
                .args(["-s", name])
                .output()
                .await
                .map_err(|e| format!("cannot run pidof: {e}"))?;
            let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if pid.is_empty() {
                return Err(format!("no process named {name} (pid_name)"));
            }
            line = format!("{line} {} {pid}", c.pid_opt);
        }
        let log_path = self.logs.join(format!("ext_cmd-{stage_name}-{}-{k}.log", c.iteration));
        let netns = self
            .netns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&c.node)
            .cloned();
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = match netns {
            Some(ns) if !is_central(&c.node) => {
                let mut cmd = tokio::process::Command::new("ip");
                cmd.args(["netns", "exec", &ns, "sh", "-c", &line]);
                cmd
            }
            _ => {
                let mut cmd = tokio::process::Command::new("sh");
                cmd.args(["-c", &line]);
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            // Its own process group, so killing it takes the shell's children along.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start `{line}`: {e}"))?;
        if c.background {
            self.background.lock().unwrap_or_else(|p| p.into_inner()).push(child);
            return Ok(());
        }
        match tokio::time::timeout(FOREGROUND_LIMIT, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!(
                "`{line}` exited with {status}; output in {}",
                log_path.display()
            )),
            Ok(Err(e)) => Err(format!("`{line}`: {e}")),
            Err(_) => {
                kill_group(&mut child).await;
                Err(format!(
                    "`{line}` still ran after {}s; killed",
                    FOREGROUND_LIMIT.as_secs()
                ))
            }
        }
    }

    /// Waits for the chaos entries' restarts still under way and their samples (a run that
    /// completed; an interrupted one does not wait).
    pub async fn settle_chaos(&self) {
        let chaos = self.chaos.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(chaos) = chaos {
            chaos.settle().await;
        }
    }

    /// Stops background commands (SIGKILL after they had the run to finish) and lets go of
    /// the chaos entries' lab handle (a restart still under way is abandoned).
    pub async fn stop_background(&self) {
        self.chaos.lock().unwrap_or_else(|p| p.into_inner()).take();
        let children = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for mut c in children {
            kill_group(&mut c).await;
        }
    }
}

/// SIGKILLs the command's whole process group and reaps the shell.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill has no memory-safety preconditions; the group is the one we created.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Clock;

    fn cmd(test: &str, node: &str, iteration: usize, cmd: &str) -> ExtCmd {
        ExtCmd {
            iteration,
            cmd: cmd.into(),
            node: node.into(),
            test: test.into(),
            pid_name: None,
            pid_opt: String::new(),
            background: false,
        }
    }

    #[test]
    fn check_names_bad_stage_and_node() {
        let nodes = vec!["compute-1".to_owned()];
        assert!(ExtCmds::check(&[cmd("vms", "central", 0, "true")], &nodes).is_ok());
        assert!(ExtCmds::check(&[cmd("vms", "ovn-central-1", 0, "true")], &nodes).is_ok());
        assert!(ExtCmds::check(&[cmd("vms", "compute-1", 0, "true")], &nodes).is_ok());
        let e = ExtCmds::check(&[cmd("density_light", "central", 0, "true")], &nodes).unwrap_err();
        assert!(e.contains("not a stage"), "{e}");
        let e = ExtCmds::check(&[cmd("vms", "ovn-scale-9", 0, "true")], &nodes).unwrap_err();
        assert!(e.contains("neither `central`"), "{e}");
    }

    #[tokio::test]
    async fn runs_matching_entries_and_records_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let ext = ExtCmds::new(
            vec![
                cmd("vms", "central", 2, "echo hello"),
                cmd("vms", "central", 2, "exit 3"),
                cmd("vms", "central", 5, "echo never"),
            ],
            dir.path().to_owned(),
        );
        let rec = Recorder::new(Clock::start());
        let stage = rec.begin_stage("vms");
        ext.at(&rec, stage, "vms", 2).await;
        let samples = &rec.stages()[0].measurements["ext_cmd"];
        assert_eq!(samples.len(), 2);
        assert!(samples[0].ok());
        assert!(samples[1].error.as_deref().unwrap().contains("exited with"));
        let log = std::fs::read_to_string(dir.path().join("ext_cmd-vms-2-0.log")).unwrap();
        assert_eq!(log.trim(), "hello");
        ext.stop_background().await;
    }

    #[tokio::test]
    async fn background_commands_and_their_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("ovh-ext-{}", std::process::id());
        let mut c = cmd("networks", "central", 0, &format!("sleep 30 && echo {marker}; true"));
        c.background = true;
        let ext = ExtCmds::new(vec![c], dir.path().to_owned());
        let rec = Recorder::new(Clock::start());
        let stage = rec.begin_stage("networks");
        ext.at(&rec, stage, "networks", 0).await;
        let shell = ext.background.lock().unwrap()[0].id().unwrap();
        ext.stop_background().await;
        // The group is gone (a killed child may take a moment to be reaped: bounded wait).
        let mut left = String::new();
        for _ in 0..100 {
            let out = std::process::Command::new("pgrep")
                .args(["-g", &shell.to_string()])
                .output()
                .unwrap();
            // Zombies are dead already; only their reaping is pending.
            left = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z")
                })
                .collect::<Vec<_>>()
                .join(" ");
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(left.is_empty(), "processes left in the group: {left}");
    }
}
