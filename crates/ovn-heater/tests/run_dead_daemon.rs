//! A chassis daemon that dies during a run, as root against real daemons (2 real hypervisors):
//! - killed from outside (as a crash would), mid-`vms`: the run names it on stderr, records it
//!   as one `harness` failure (`lab_daemon`), skips what needed it (ports on that chassis,
//!   pings from or to them, the `hv_cfg` settle) instead of failing them as OVN's, and exits 3;
//! - killed by a `chaos` entry: expected, not a lab failure; the chaos sample names it, and the
//!   ports of its chassis created after the kill never come up — OVN's failures, exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

/// 2 real hypervisors, 8 VMs created one at a time at 2 per second (the kill lands mid-`vms`).
const BASE: &str = "global:\n  cleanup: false\ncluster:\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 10\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 4\n  n_network_nodes: 1\n  concurrency: 1\n  ops_per_second: 2\n";

/// The pid of `compute-1`'s ovn-controller of the lab whose run dir is under `tmp`.
fn controller_of_compute_1(tmp: &Path) -> Option<u32> {
    let tmp = tmp.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let args = test_support::command_line(pid);
        let is_controller = args
            .first()
            .is_some_and(|a| a.ends_with("/ovn-controller") || a == "ovn-controller");
        if is_controller && args.iter().any(|a| a.contains(&tmp) && a.contains("/compute-1/")) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn run_names_a_chassis_daemon_killed_outside_it_skips_what_needed_it_and_exits_3() {
    let test = "run_names_a_chassis_daemon_killed_outside_it_skips_what_needed_it_and_exits_3";
    test_support::require_lab!(test);
    let dir = test_support::TempDir::new("run_dead_daemon");
    let scenario = dir.path().join("scenario.yml");
    std::fs::write(&scenario, BASE).unwrap();
    let results = dir.path().join("results");
    // The lab's run dir goes under TMPDIR: this test's own, so the daemon it kills is this run's.
    let tmp: PathBuf = dir.path().join("t");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(&results)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = test_support::Lines::of(child.stderr.take().unwrap());
    lines.until(std::time::Duration::from_secs(180), |line| line.starts_with("[vms]"));
    let victim = controller_of_compute_1(&tmp);
    assert!(
        victim.is_some(),
        "no ovn-controller of compute-1 under {}:\n{}",
        tmp.display(),
        lines.seen.join("\n")
    );
    let victim = victim.unwrap();
    // SAFETY: kill(2) on the ovn-controller this test's run started (found under its TMPDIR).
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    let stderr = lines.finish().join("\n");
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    test_support::assert_recorded_lab_left_nothing(&results);

    let named = format!("compute-1/ovn-controller (pid {victim}) is not running");
    assert!(stderr.contains(&named), "{stderr}");
    let dead = test_support::stage_samples(&r, "lab_daemon");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["class"], "harness");
    assert_eq!(dead[0]["subject"], format!("compute-1/ovn-controller (pid {victim})"));
    let s = &r["summary"];
    assert_eq!(
        s["failures_by_class"]["system"],
        0,
        "{:#?}\n{stderr}",
        test_support::not_ok_samples(&r)
    );
    assert_eq!(
        s["failures_by_class"]["harness"],
        1,
        "{:#?}",
        test_support::not_ok_samples(&r)
    );
    // What could not work without it is skipped (naming it, or the port that did not come up
    // because of it); only what involves compute-1.
    for line in test_support::not_ok_samples(&r)
        .iter()
        .filter(|l| !l.starts_with("lab_daemon "))
    {
        assert!(line.contains("\"skipped\""), "{line}");
        assert!(
            line.contains("compute-1/ovn-controller not running") || line.contains("@compute-1"),
            "{line}"
        );
    }
    assert!(
        test_support::not_ok_samples(&r)
            .iter()
            .any(|l| l.contains("compute-1/ovn-controller not running")),
        "{:#?}",
        test_support::not_ok_samples(&r)
    );
    let skipped_pings = test_support::stage_samples(&r, "ping_mesh")
        .into_iter()
        .filter(|p| p["class"] == "skipped")
        .count();
    assert!(skipped_pings > 0, "pings from or to compute-1 are skipped");
    assert_eq!(status.code(), Some(3), "a dead lab daemon alone exits 3:\n{stderr}");
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("compute-1/ovn-controller (pid {victim})")),
        "the report names it"
    );
}

#[test]
fn run_with_a_chaos_kill_of_a_chassis_controller_counts_its_later_ports_as_system_failures() {
    let test = "run_with_a_chaos_kill_of_a_chassis_controller_counts_its_later_ports_as_system_failures";
    test_support::require_lab!(test);
    let dir = test_support::TempDir::new("run_chaos_controller");
    let scenario = dir.path().join("scenario.yml");
    std::fs::write(
        &scenario,
        format!("{BASE}chaos:\n  - {{stage: vms, iteration: 4, kill: compute-1/ovn-controller}}\n"),
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(BIN, &scenario, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    let chaos = test_support::stage_samples(&r, "chaos");
    assert_eq!(chaos.len(), 1, "{chaos:?}");
    let subject = chaos[0]["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("compute-1/ovn-controller (compute-1/ovn-controller pid ")
            && subject.ends_with(" at vms/4"),
        "{subject}"
    );
    assert!(chaos[0]["error"].is_null(), "the NB still takes writes: {}", chaos[0]);
    // Expected dead: not a lab failure.
    assert!(test_support::stage_samples(&r, "lab_daemon").is_empty(), "{stderr}");
    assert!(!stderr.contains("is not running"), "{stderr}");
    // VMs 4..8 alternate compute-1 / compute-2: those on compute-1 never come up, as OVN's
    // failure; those on compute-2 do.
    let up = test_support::stage_samples(&r, "port_up");
    assert_eq!(up.len(), 8);
    for p in &up {
        let subject = p["subject"].as_str().unwrap();
        if subject.ends_with("@compute-2") {
            assert!(p["error"].is_null(), "{p}");
        }
    }
    let failed: Vec<_> = up.iter().filter(|p| !p["error"].is_null()).collect();
    assert!(!failed.is_empty(), "{up:?}");
    for p in &failed {
        assert!(p["subject"].as_str().unwrap().ends_with("@compute-1"), "{p}");
        assert_eq!(p["class"], "system", "{p}");
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
