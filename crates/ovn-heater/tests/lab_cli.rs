//! `ovn-heater lab up|status|down` end to end through the real binary: a central-only lab
//! survives the `up` process and is torn down by another; Ctrl-C during `up` leaves nothing;
//! bad input exits 2 with the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn ovn_heater() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
}

fn lab(args: &[&str], run_dir: &Path) -> Output {
    ovn_heater()
        .arg("lab")
        .args(args)
        .arg("--run-dir")
        .arg(run_dir)
        .output()
        .expect("run ovn-heater")
}

/// Runs `lab down` on drop, so a failing test leaves no lab behind.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = lab(&["down"], &self.0);
    }
}

fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let all: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    all.into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect()
}

fn pids_alive(state: &serde_json::Value) -> Vec<u64> {
    state["processes"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["pid"].as_u64())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lab_cli_central_only_up_status_down() {
    test_support::require_root!("lab_cli_central_only_up_status_down");
    test_support::require_ovn!(
        "lab_cli_central_only_up_status_down",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let dir = test_support::TempDir::new("lab_cli_central");
    let _down = DownOnDrop(dir.path().to_path_buf());

    let up = lab(&["up", "--json"], dir.path());
    assert!(up.status.success(), "lab up: {}", String::from_utf8_lossy(&up.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&up.stdout).expect("JSON summary");
    let nb = summary["nb_remote"].as_str().unwrap().to_owned();
    assert!(
        nb.starts_with("unix:") && Path::new(&nb["unix:".len()..]).exists(),
        "{nb}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("lab.json")).unwrap()).unwrap();
    assert_eq!(state["nb_remote"], summary["nb_remote"]);
    assert_eq!(pids_alive(&state).len(), 3, "NB, SB and northd outlive `lab up`");

    let status = lab(&["status"], dir.path());
    assert!(
        status.status.success(),
        "lab status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("northd"));

    let down = lab(&["down", "--json"], dir.path());
    assert!(
        down.status.success(),
        "lab down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let teardown: serde_json::Value = serde_json::from_slice(&down.stdout).expect("JSON teardown");
    assert_eq!(teardown["processes_stopped"], 3, "{teardown}");
    assert_eq!(teardown["leftovers"], serde_json::json!([]), "{teardown}");
    assert!(pids_alive(&state).is_empty());
    assert!(dir.path().join("northd/ovn-northd.log").exists(), "logs are kept");
    let again = lab(&["down"], dir.path());
    assert!(again.status.success(), "a second down is fine");
    let status = lab(&["status"], dir.path());
    assert_eq!(status.status.code(), Some(2), "no lab any more");
}

#[test]
fn lab_cli_interrupted_up_leaves_nothing() {
    test_support::require_lab!("lab_cli_interrupted_up_leaves_nothing", ["ovs-vsctl"]);
    let dir = test_support::TempDir::new("lab_cli_interrupt");
    let _down = DownOnDrop(dir.path().to_path_buf());
    let child = ovn_heater()
        .args(["lab", "up", "--real-chassis", "4", "--run-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once a chassis daemon is on record (bring-up is mid-way).
    let state_path = dir.path().join("lab.json");
    let start = Instant::now();
    let mut state = serde_json::Value::Null;
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(s) = std::fs::read_to_string(&state_path).map(|t| serde_json::from_str(&t).unwrap_or_default()) {
            state = s;
            if state["processes"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["chassis"].is_string()))
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let chassis_seen = state["processes"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["chassis"].is_string()));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(chassis_seen, "no chassis daemon on record within 60 s: {stderr}");
    // Four chassis cannot all register between reading lab.json and the signal: `up` must
    // have been interrupted, not finished.
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") || stderr.contains("Ctrl-C"),
        "the interrupted path: {stderr}"
    );
    assert!(pids_alive(&state).is_empty(), "processes left after Ctrl-C");
    let prefix = state["prefix"].as_str().unwrap();
    assert!(
        namespaces_with_prefix(prefix).is_empty(),
        "namespaces left after Ctrl-C"
    );
    test_support::assert_nothing_left(dir.path(), prefix);
}

#[test]
fn lab_cli_bad_input_exits_2_with_the_reason() {
    let dir = test_support::TempDir::new("lab_cli_bad_input");
    let out = lab(&["up", "--node-net", "192.168.0.0/33"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--node-net"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lab(&["status"], &dir.path().join("nothing-here"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lab up --run-dir"));
    let out = lab(&["up", "--name", "Not Valid"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    // Not root, or the binary is missing: both are preflight errors naming the fix.
    let out = lab(&["up", "--ovn-bin-dir", "/nonexistent/ovn"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ovn-bin-dir") || stderr.contains("root"), "{stderr}");
}

#[test]
fn lab_cli_ctrl_c_to_the_process_group_is_an_interrupt() {
    use std::os::unix::process::CommandExt as _;
    let test = "lab_cli_ctrl_c_to_the_process_group_is_an_interrupt";
    test_support::require_lab!(test, ["ovs-vsctl"]);
    // As a terminal's Ctrl-C: SIGINT to the whole group, at several points of bring-up.
    for (round, chassis_daemons) in [0usize, 1, 2, 4].into_iter().enumerate() {
        let dir = test_support::TempDir::new(&format!("lab_cli_pgrp_{round}"));
        let _down = DownOnDrop(dir.path().to_path_buf());
        let child = ovn_heater()
            .args(["lab", "up", "--real-chassis", "3", "--run-dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let state_path = dir.path().join("lab.json");
        let start = Instant::now();
        let mut prefix = String::new();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(s) = std::fs::read_to_string(&state_path)
                .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap_or_default())
            {
                prefix = s["prefix"].as_str().unwrap_or_default().to_owned();
                let n = s["processes"]
                    .as_array()
                    .map_or(0, |p| p.iter().filter(|p| p["chassis"].is_string()).count());
                if !prefix.is_empty() && n >= chassis_daemons {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: killpg on the group our child leads.
        unsafe { libc::killpg(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "round {round}: {stderr}");
        assert!(!prefix.is_empty(), "round {round}: lab.json never written: {stderr}");
        test_support::assert_nothing_left(dir.path(), &prefix);
    }
}
