//! Probe findings about `run` and its lab, as root against real daemons, checked from outside
//! (`/proc`, `ip netns`, links: test_support::leftovers), not through ovn-heater's records:
//! - a run killed with `kill -9` leaves its lab running; the same `run` again is refused with
//!   exit 2 *without touching that lab* (nor writing a results dir), and its hint names only
//!   options that exist; `lab down` then finds the daemons by their command lines even after
//!   their run dir (pidfiles, lab.json) is deleted, and nothing is left;
//! - a Ctrl-C to the whole process group during bring-up is an interrupt (exit 130), never a
//!   lab failure (the daemons run in process groups of their own), and leaves nothing.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

/// Starts `run` in a process group of its own (so a signal to the group does not reach the
/// test), with stderr lines sent to the returned channel.
fn spawn_run(scenario: &Path, results: &Path) -> (Child, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(scenario)
        .arg("--results-dir")
        .arg(results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run ovn-heater");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx, reader)
}

/// Reads stderr lines until one satisfies `stop` (or 300 s pass); returns all lines seen.
fn lines_until(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, stop: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = stop(&line);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// The lab's run dir, from the `bringing up the lab: … (run dir DIR)` line.
fn run_dir_of(lines: &[String]) -> Option<PathBuf> {
    lines.iter().find_map(|l| {
        let rest = l.split_once("(run dir ")?.1;
        Some(PathBuf::from(rest.strip_suffix(')')?))
    })
}

fn lab_down(run_dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["lab", "down", "--run-dir"])
        .arg(run_dir)
        .output()
        .expect("run ovn-heater lab down")
}

/// Tears down a lab left by a failing test.
struct DownOnDrop(Option<PathBuf>);
impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = lab_down(d);
        }
    }
}

const EMULATED: &str = "cluster:\n  clustered_db: false\n  chassis: emulated\n  node_timeout_s: 60\nopenstack_base:\n  n_hypervisors: 4\n  n_vms_per_hypervisor: 50\n  n_network_nodes: 1\n  concurrency: 2\n";

#[test]
fn run_refused_by_a_killed_runs_lab_leaves_it_alone_and_lab_down_finds_its_daemons() {
    let test = "run_refused_by_a_killed_runs_lab_leaves_it_alone_and_lab_down_finds_its_daemons";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let dir = test_support::TempDir::new("run_refused");
    let scenario = dir.path().join("s.yml");
    std::fs::write(&scenario, EMULATED).unwrap();
    let results = dir.path().join("results");

    let (mut child, rx, reader) = spawn_run(&scenario, &results);
    let mut seen = Vec::new();
    let started = lines_until(&rx, &mut seen, |l| {
        l.starts_with("[vms]") || l.starts_with("[networks]")
    });
    let run_dir = run_dir_of(&seen);
    let mut guard = DownOnDrop(run_dir.clone());
    assert!(started, "the workload never started:\n{}", seen.join("\n"));
    let run_dir = run_dir.expect("run dir on stderr");
    child.kill().unwrap(); // SIGKILL: no teardown
    let _ = child.wait();
    let _ = reader.join();
    let prefix = ovn_lab::spec::prefix_for_run_dir(&run_dir);
    let lab_procs = test_support::leftovers::processes_under(&run_dir);
    assert_eq!(
        lab_procs.len(),
        3,
        "NB, SB, northd outlive the killed run: {lab_procs:#?}"
    );
    let lab_files = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = lab_files(&run_dir);
    assert!(before.contains(&"lab.json".to_owned()), "{before:?}");

    // The same run again, as the probe did: refused, and the lab is untouched.
    std::fs::remove_dir_all(&results).unwrap();
    let again = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("ovn-heater lab down --run-dir {}", run_dir.display())),
        "{err}"
    );
    assert!(err.contains("another --results-dir"), "{err}");
    assert!(!err.contains("use another --run-dir"), "`run` has no --run-dir: {err}");
    assert!(!results.exists(), "a refused run writes no results dir");
    assert_eq!(lab_files(&run_dir), before, "the other lab's run dir is untouched");
    assert_eq!(test_support::leftovers::processes_under(&run_dir).len(), 3);

    // Even with its records gone, `lab down` finds the daemons by what they are.
    std::fs::remove_dir_all(&run_dir).unwrap();
    let down = lab_down(&run_dir);
    let out = String::from_utf8_lossy(&down.stdout);
    assert!(down.status.success(), "{out}{}", String::from_utf8_lossy(&down.stderr));
    assert!(out.contains("3 process(es) stopped"), "{out}");
    test_support::assert_nothing_left(&run_dir, &prefix);
    let _ = std::fs::remove_dir_all(&run_dir);
    guard.0 = None;
}

const REAL: &str = "cluster:\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 1\n  concurrency: 2\n";

#[test]
fn run_ctrl_c_to_the_process_group_during_bringup_is_an_interrupt() {
    let test = "run_ctrl_c_to_the_process_group_during_bringup_is_an_interrupt";
    test_support::require_lab!(test);
    let dir = test_support::TempDir::new("run_pgrp_int");
    let scenario = dir.path().join("s.yml");
    std::fs::write(&scenario, REAL).unwrap();
    // Interrupt at several points of bring-up: as central starts, with some chassis daemons
    // on record, and with all of them.
    for (round, chassis_daemons) in [0usize, 1, 3, 6].into_iter().enumerate() {
        let results = dir.path().join(format!("results-{round}"));
        let (child, rx, reader) = spawn_run(&scenario, &results);
        let mut seen = Vec::new();
        assert!(
            lines_until(&rx, &mut seen, |l| l.starts_with("bringing up the lab")),
            "{}",
            seen.join("\n")
        );
        let run_dir = run_dir_of(&seen).expect("run dir on stderr");
        let _guard = DownOnDrop(Some(run_dir.clone()));
        let state = run_dir.join("lab.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        while chassis_daemons > 0 && Instant::now() < deadline {
            let n = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|s| {
                    s["processes"]
                        .as_array()
                        .map(|p| p.iter().filter(|p| p["chassis"].is_string()).count())
                })
                .unwrap_or(0);
            if n >= chassis_daemons {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // As a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
        // SAFETY: killpg on the group our child leads.
        unsafe { libc::killpg(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let _ = reader.join();
        seen.extend(rx.try_iter());
        assert_eq!(
            out.status.code(),
            Some(130),
            "round {round} ({chassis_daemons} chassis daemons up):\n{}",
            seen.join("\n")
        );
        let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
        assert_eq!(r["status"], "interrupted", "round {round}");
        test_support::assert_nothing_left(&run_dir, &ovn_lab::spec::prefix_for_run_dir(&run_dir));
    }
}

/// Where a signal lands: during bring-up (`chassis_daemons` of them on record, 0 = as soon as
/// the lab starts), or once a stderr line starts with a stage's `[name]`.
enum Moment {
    Bringup { chassis_daemons: usize },
    Stage(&'static str),
}

/// Runs `scenario`, sends `signal` at `moment` (to the process group for SIGINT, as a
/// terminal's Ctrl-C does; to the process for SIGTERM, as `kill` does), and a second one 150 ms
/// later while teardown runs; the run must exit 130 with results marked interrupted and leave
/// nothing behind, judged from outside.
fn interrupt_run(dir: &Path, label: &str, scenario: &str, signal: i32, moment: Moment) {
    let scenario_path = dir.join(format!("{label}.yml"));
    std::fs::write(&scenario_path, scenario).unwrap();
    let results = dir.join(format!("{label}-results"));
    let (child, rx, reader) = spawn_run(&scenario_path, &results);
    let mut seen = Vec::new();
    assert!(
        lines_until(&rx, &mut seen, |l| l.starts_with("bringing up the lab")),
        "{label}: {}",
        seen.join("\n")
    );
    let run_dir = run_dir_of(&seen).expect("run dir on stderr");
    let _guard = DownOnDrop(Some(run_dir.clone()));
    match moment {
        Moment::Bringup { chassis_daemons } => {
            let deadline = Instant::now() + Duration::from_secs(120);
            while chassis_daemons > 0 && Instant::now() < deadline {
                let n = std::fs::read_to_string(run_dir.join("lab.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|s| {
                        s["processes"]
                            .as_array()
                            .map(|p| p.iter().filter(|p| p["chassis"].is_string()).count())
                    })
                    .unwrap_or(0);
                if n >= chassis_daemons {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Moment::Stage(stage) => {
            let tag = format!("[{stage}]");
            assert!(
                lines_until(&rx, &mut seen, |l| l.starts_with(&tag)),
                "{label}: stage {stage} never started:\n{}",
                seen.join("\n")
            );
        }
    }
    let send = |sig| {
        // SAFETY: kill/killpg on our child, which leads its own process group.
        unsafe {
            if sig == libc::SIGINT {
                libc::killpg(child.id() as i32, sig);
            } else {
                libc::kill(child.id() as i32, sig);
            }
        }
    };
    send(signal);
    std::thread::sleep(Duration::from_millis(150));
    send(signal);
    let out = child.wait_with_output().unwrap();
    let _ = reader.join();
    seen.extend(rx.try_iter());
    assert_eq!(out.status.code(), Some(130), "{label}:\n{}", seen.join("\n"));
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "interrupted", "{label}");
    test_support::assert_nothing_left(&run_dir, &ovn_lab::spec::prefix_for_run_dir(&run_dir));
}

#[test]
fn run_sigint_and_sigterm_at_every_phase_leave_nothing_behind() {
    let test = "run_sigint_and_sigterm_at_every_phase_leave_nothing_behind";
    test_support::require_lab!(test);
    let dir = test_support::TempDir::new("run_signals");
    let real = REAL.replace("n_vms_per_hypervisor: 2", "n_vms_per_hypervisor: 10");
    let (int, term) = (libc::SIGINT, libc::SIGTERM);
    interrupt_run(
        dir.path(),
        "real-term-bringup",
        &real,
        term,
        Moment::Bringup { chassis_daemons: 2 },
    );
    interrupt_run(dir.path(), "real-int-networks", &real, int, Moment::Stage("networks"));
    interrupt_run(dir.path(), "real-term-vms", &real, term, Moment::Stage("vms"));
    interrupt_run(
        dir.path(),
        "emu-int-bringup",
        EMULATED,
        int,
        Moment::Bringup { chassis_daemons: 0 },
    );
    interrupt_run(
        dir.path(),
        "emu-term-bringup",
        EMULATED,
        term,
        Moment::Bringup { chassis_daemons: 0 },
    );
    interrupt_run(dir.path(), "emu-int-vms", EMULATED, int, Moment::Stage("vms"));
    interrupt_run(
        dir.path(),
        "emu-term-networks",
        EMULATED,
        term,
        Moment::Stage("networks"),
    );
}

#[test]
fn run_on_real_chassis_killed_with_sigkill_is_cleaned_up_by_lab_down() {
    let test = "run_on_real_chassis_killed_with_sigkill_is_cleaned_up_by_lab_down";
    test_support::require_lab!(test);
    let dir = test_support::TempDir::new("run_kill9_real");
    let scenario = dir.path().join("s.yml");
    std::fs::write(
        &scenario,
        REAL.replace("n_vms_per_hypervisor: 2", "n_vms_per_hypervisor: 10"),
    )
    .unwrap();
    let (mut child, rx, reader) = spawn_run(&scenario, &dir.path().join("results"));
    let mut seen = Vec::new();
    let started = lines_until(&rx, &mut seen, |l| l.starts_with("[vms]"));
    let run_dir = run_dir_of(&seen);
    let mut guard = DownOnDrop(run_dir.clone());
    assert!(started, "{}", seen.join("\n"));
    let run_dir = run_dir.expect("run dir on stderr");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = reader.join();
    let prefix = ovn_lab::spec::prefix_for_run_dir(&run_dir);
    assert!(
        !test_support::leftovers(&run_dir, &prefix).is_empty(),
        "a killed run leaves its lab running (that is what lab down is for)"
    );
    let down = lab_down(&run_dir);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    test_support::assert_nothing_left(&run_dir, &prefix);
    let _ = std::fs::remove_dir_all(&run_dir);
    guard.0 = None;
}
