//! `chaos:` entries with `restart_after`, as root against real daemons (2 real hypervisors):
//! the killed daemon (ovn-northd, or `compute-1/ovn-controller`) is started again by the lab
//! a second after the kill while VMs keep being created; the `chaos` sample is the time from
//! the kill until OVN processed work again (a bump of `NB_Global.nb_cfg` seen in
//! `SB_Global.nb_cfg`, or in compute-1's `Chassis_Private.nb_cfg`); the ports created while the
//! daemon was down come up after the restart, so the run passes (exit 0); and the restarted
//! daemon (a new pid, on record) is torn down with the lab. RAFT leaders killed and restarted
//! rejoin their clusters.

#![allow(clippy::print_stderr)] // the recovery time goes to the test log (docs/scenarios.md figures)

use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

/// 2 real hypervisors, 8 VMs created one at a time at 2 per second; the kill at VM 3 (of 0..8)
/// leaves the daemon dead while VMs 3 to 4 or 5 are created.
fn scenario(kill: &str) -> String {
    format!(
        "global:\n  cleanup: false\ncluster:\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 20\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 4\n  n_network_nodes: 1\n  concurrency: 1\n  ops_per_second: 2\nchaos:\n  - {{stage: vms, iteration: 3, kill: {kill}, restart_after: 1}}\n"
    )
}

/// Runs `kill` with a restart; returns the results, the killed pid and the restarted one.
fn run_with_restart(test: &str, kill: &str, process: &str) -> (serde_json::Value, u32, u32) {
    let dir = test_support::TempDir::new(test);
    let file = dir.path().join("scenario.yml");
    std::fs::write(&file, scenario(kill)).unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(BIN, &file, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let r = test_support::read_json(&results.join("results.json"));
    test_support::assert_recorded_lab_left_nothing(&results);
    let failed = test_support::not_ok_samples(&r);
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let chaos = test_support::stage_samples(&r, "chaos");
    assert_eq!(chaos.len(), 1, "{chaos:?}");
    let subject = chaos[0]["subject"].as_str().unwrap();
    let prefix = format!("{kill} ({process} pid ");
    assert!(
        subject.starts_with(&prefix) && subject.ends_with(") at vms/3"),
        "{subject}"
    );
    let killed: u32 = subject[prefix.len()..subject.len() - ") at vms/3".len()]
        .parse()
        .unwrap();
    // From the kill: the second before the restart, then the catching up.
    let took = chaos[0]["duration_s"].as_f64().unwrap();
    assert!((1.0..20.0).contains(&took), "{took}");

    // The record teardown used names the restarted daemon, and it is gone.
    let record = test_support::read_json(&results.join("logs/lab.down.json"));
    let restarted = record["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == process)
        .and_then(|p| p["pid"].as_u64())
        .unwrap() as u32;
    assert_ne!(restarted, killed);
    assert!(!Path::new(&format!("/proc/{restarted}")).exists() || test_support::command_line(restarted).is_empty());
    eprintln!("{kill}: back after {took:.3} s");
    (r, killed, restarted)
}

#[test]
fn run_restarts_a_killed_northd_and_times_until_it_processed_the_nb_again() {
    let test = "run_restarts_a_killed_northd_and_times_until_it_processed_the_nb_again";
    test_support::require_lab!(test);
    let (r, _, _) = run_with_restart("run_chaos_restart_northd", "northd", "northd");
    // Every VM's port came up, those created while northd was down too.
    assert_eq!(test_support::stage_samples(&r, "port_up").len(), 8);
}

#[test]
fn run_restarts_a_killed_ovn_controller_and_its_chassis_ports_come_up() {
    let test = "run_restarts_a_killed_ovn_controller_and_its_chassis_ports_come_up";
    test_support::require_lab!(test);
    let (r, _, _) = run_with_restart(
        "run_chaos_restart_controller",
        "compute-1/ovn-controller",
        "compute-1/ovn-controller",
    );
    let up = test_support::stage_samples(&r, "port_up");
    assert_eq!(up.len(), 8);
    // Half the VMs are on compute-1; all came up (no failed sample above).
    let on_compute_1 = up
        .iter()
        .filter(|s| s["subject"].as_str().unwrap().ends_with("@compute-1"))
        .count();
    assert_eq!(on_compute_1, 4, "{up:?}");
}

/// RAFT: the NB and then the SB leader killed and restarted (emulated chassis, a 2 s election
/// timer): each sample is still the time until the cluster took a write; the restarted member
/// (a new pid, on record) rejoins its cluster — its log, appended to, names the leader after
/// it started again — and is torn down with the lab.
#[test]
fn run_restarts_killed_raft_leaders_and_they_rejoin() {
    let test = "run_restarts_killed_raft_leaders_and_they_rejoin";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = test_support::TempDir::new(test);
    let file = dir.path().join("scenario.yml");
    std::fs::write(
        &file,
        "global:\n  cleanup: false\ncluster:\n  clustered_db: true\n  chassis: emulated\n  node_timeout_s: 30\n  raft_election_to: 2\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 4\n  n_network_nodes: 1\n  concurrency: 2\nchaos:\n  - {stage: vms, iteration: 2, kill: nb-leader, restart_after: 1}\n  - {stage: vms, iteration: 5, kill: sb-leader, restart_after: 0.5}\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(BIN, &file, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let r = test_support::read_json(&results.join("results.json"));
    test_support::assert_recorded_lab_left_nothing(&results);
    let failed = test_support::not_ok_samples(&r);
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let record = test_support::read_json(&results.join("logs/lab.down.json"));
    let chaos = test_support::stage_samples(&r, "chaos");
    assert_eq!(chaos.len(), 2, "{chaos:?}");
    for sample in chaos {
        // `nb-leader (nb-2 pid 123) at vms/2`
        let subject = sample["subject"].as_str().unwrap();
        let inner = &subject[subject.find('(').unwrap() + 1..subject.find(')').unwrap()];
        let (member, killed) = inner.split_once(" pid ").unwrap();
        let killed: u32 = killed.parse().unwrap();
        let restarted = record["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == member)
            .and_then(|p| p["pid"].as_u64())
            .unwrap() as u32;
        assert_ne!(restarted, killed, "{subject}");
        assert!(test_support::command_line(restarted).is_empty(), "{member} still runs");
        let log = record["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == member)
            .and_then(|p| p["log_path"].as_str())
            .unwrap();
        let file = results.join("logs").join(format!(
            "{}-{}",
            &member[..2],
            Path::new(log).file_name().unwrap().to_string_lossy()
        ));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let after_restart = text.rsplit("opened log file").next().unwrap();
        assert!(
            text.matches("opened log file").count() >= 2 && after_restart.contains("is leader for term"),
            "{member} did not rejoin:\n{after_restart}"
        );
        let took = sample["duration_s"].as_f64().unwrap();
        eprintln!("{subject}: writes again after {took:.3} s");
    }
}
