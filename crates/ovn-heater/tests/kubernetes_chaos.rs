//! `chaos:` entries in an ovn_kubernetes scenario on real lab chassis, as root against the real
//! daemons: ovn-northd, or `ovn-scale-0/ovn-controller`, killed at an iteration of
//! `density_light-run` and restarted by the lab a second later; the pods created meanwhile come
//! up after the restart, the `chaos` sample is the time until OVN processed a bumped `nb_cfg`
//! again, the run passes (exit 0), and the restarted daemon is torn down with the lab.

#![allow(clippy::print_stderr)] // the recovery time goes to the test log (docs/scenarios.md figures)

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

fn scenario(kill: &str) -> String {
    format!(
        "global:\n  cms_name: ovn_kubernetes\ncluster:\n  n_workers: 2\n  node_timeout_s: 30\nbase_cluster_bringup:\n  n_pods_per_node: 1\ndensity_light:\n  n_pods: 8\n  n_startup: 2\nchaos:\n  - {{stage: density_light-run, iteration: 1, kill: {kill}, restart_after: 1}}\n"
    )
}

fn run_with_restart(kill: &str) {
    // Short: the lab's sockets live under it (a 107-byte limit).
    let dir = test_support::TempDir::new("kchaos");
    let file = dir.path().join("scenario.yml");
    std::fs::write(&file, scenario(kill)).unwrap();
    let results = dir.path().join("results");
    // The lab's run dir goes under TMPDIR: this test's own, to look for leftovers there.
    let tmp = dir.path().join("t");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("run")
        .arg(&file)
        .arg("--results-dir")
        .arg(&results)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(results.join("results.json").exists(), "{stderr}");
    let r = test_support::read_json(&results.join("results.json"));
    let failed = test_support::not_ok_samples(&r);
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let chaos = test_support::stage_samples(&r, "chaos");
    assert_eq!(chaos.len(), 1, "{chaos:?}");
    let subject = chaos[0]["subject"].as_str().unwrap();
    assert!(
        subject.starts_with(&format!("{kill} (")) && subject.ends_with(" at density_light-run/1"),
        "{subject}"
    );
    let took = chaos[0]["duration_s"].as_f64().unwrap();
    assert!((1.0..30.0).contains(&took), "{took}");
    // Every pod came up, those created while the daemon was down too.
    let up = test_support::stage_samples(&r, "port_up");
    assert!(up.len() >= 8, "{up:?}");
    // The restarted daemon is stopped with the lab: no process of the run's lab is left.
    let left = test_support::leftovers::processes_under(&tmp);
    assert!(left.is_empty(), "{left:#?}");
    eprintln!("{kill}: back after {took:.3} s");
}

#[test]
fn kubernetes_run_restarts_a_killed_northd() {
    let test = "kubernetes_run_restarts_a_killed_northd";
    test_support::require_lab!(test);
    run_with_restart("northd");
}

#[test]
fn kubernetes_run_restarts_a_killed_ovn_controller() {
    let test = "kubernetes_run_restarts_a_killed_ovn_controller";
    test_support::require_lab!(test);
    run_with_restart("ovn-scale-0/ovn-controller");
}
