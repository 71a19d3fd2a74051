//! `ovn-heater run` refuses bad scenario files before starting anything: each kind of mistake
//! gets its own message naming the section, the key and the fix, and exit code 2. No root,
//! no daemons needed.

use std::path::Path;
use std::process::Command;

fn run_with(dir: &Path, yaml: &str, extra: &[&str]) -> (i32, String) {
    let file = dir.join("scenario.yml");
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&file)
        .arg("--results-dir")
        .arg(dir.join("results"))
        .args(extra)
        .output()
        .expect("run ovn-heater");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

fn assert_refused(yaml: &str, extra: &[&str], expected: &str) {
    let dir = test_support::TempDir::new("scenario_errors");
    let (code, stderr) = run_with(dir.path(), yaml, extra);
    assert_eq!(code, 2, "exit code for {yaml:?}; stderr:\n{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    assert!(
        !dir.path().join("results").exists(),
        "nothing is created for a bad scenario"
    );
}

#[test]
fn unknown_key_names_the_closest_valid_one() {
    assert_refused(
        "openstack_base:\n  n_hypervisor: 2\n",
        &[],
        "unknown key `n_hypervisor` in section `openstack_base` (did you mean `n_hypervisors`?)",
    );
}

#[test]
fn key_in_the_wrong_section_names_its_section() {
    assert_refused(
        "cluster:\n  n_vms_per_project: 2\nbase_openstack: {}\n",
        &[],
        "unknown key `n_vms_per_project` in section `cluster` (it belongs in section `base_openstack`)",
    );
}

#[test]
fn unknown_section_names_the_closest_valid_one() {
    assert_refused(
        "globl:\n  log_cmds: true\n",
        &[],
        "unknown section `globl` (did you mean `global`?)",
    );
}

#[test]
fn wrong_type_says_what_was_expected() {
    assert_refused(
        "openstack_base:\n  n_hypervisors: many\n",
        &[],
        "`openstack_base.n_hypervisors` must be a whole number, got the string \"many\"",
    );
}

#[test]
fn out_of_range_gives_the_range() {
    assert_refused(
        "openstack_base:\n  n_network_nodes: 9\n",
        &[],
        "`openstack_base.n_network_nodes` = 9 is out of range: allowed 1 to 5",
    );
}

#[test]
fn bad_cidr_names_the_key() {
    assert_refused(
        "cluster:\n  internal_net: 16.0.0.0/33\nbase_openstack: {}\n",
        &[],
        "`cluster.internal_net` = \"16.0.0.0/33\" is not a valid IPv4 CIDR",
    );
}

#[test]
fn known_but_unsupported_key_is_explicit() {
    assert_refused(
        "cluster:\n  use_ovsdb_etcd: true\nbase_openstack: {}\n",
        &[],
        "`cluster.use_ovsdb_etcd` is not supported by this ovn-heater",
    );
    assert_refused(
        "density_heavy:\n  n_startup: 10\n",
        &[],
        "`density_heavy` is not supported by this ovn-heater: it is an ovn-kubernetes test",
    );
}

#[test]
fn missing_workload_says_which_sections_to_add() {
    assert_refused("global:\n  log_cmds: true\n", &[], "the scenario has no workload");
}

#[test]
fn yaml_syntax_error_names_the_file() {
    assert_refused("cluster: [1, 2\n", &[], "is not valid YAML");
}

#[test]
fn conflicting_settings_are_refused() {
    assert_refused(
        "cluster:\n  n_workers: 4\nopenstack_base: {}\n",
        &[],
        "remove cluster.n_workers",
    );
    assert_refused(
        "cluster:\n  external_net: 192.16.1.0/24\nopenstack_base: {}\n",
        &[],
        "overlap",
    );
}

#[test]
fn bad_override_is_refused() {
    assert_refused(
        "openstack_base: {}\n",
        &["--set", "openstack_base.n_hypervisors"],
        "bad --set \"openstack_base.n_hypervisors\": missing `=`",
    );
    assert_refused(
        "openstack_base: {}\n",
        &["--set", "openstack_base.n_vm_per_hypervisor=3"],
        "did you mean `n_vms_per_hypervisor`?",
    );
}

#[test]
fn missing_file_is_bad_input() {
    let dir = test_support::TempDir::new("scenario_missing");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["run", "/nonexistent/scenario.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read scenario file /nonexistent/scenario.yml"));
}

#[test]
fn check_prints_the_resolved_scenario_with_upstream_defaults() {
    let dir = test_support::TempDir::new("scenario_check");
    let file = dir.path().join("s.yml");
    std::fs::write(&file, "cluster:\n  n_workers: 3\nbase_openstack:\n  n_projects: 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&file)
        .args(["--check", "--set", "cluster.northd_threads=2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // YAML under upstream's names, as a scenario file would have them.
    let v: serde_norway::Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cluster"]["n_workers"], 3);
    assert_eq!(v["cluster"]["northd_threads"], 2);
    assert_eq!(v["cluster"]["raft_election_to"], 16);
    assert_eq!(v["cluster"]["clustered_db"], true);
    assert_eq!(v["cluster"]["node_timeout_s"], 20);
    assert_eq!(v["base_openstack"]["n_vms_per_project"], 3);
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
                .arg("run")
                .arg(&path)
                .arg("--check")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "scenarios/ has {n} files");
}

#[test]
fn ext_cmd_must_name_a_stage_and_a_node() {
    assert_refused(
        "openstack_base: {}\next_cmd:\n  - iteration: 0\n    node: central\n    test: density_light\n    cmd: date\n",
        &[],
        "test `density_light` is not a stage of this workload",
    );
    assert_refused(
        "cluster:\n  chassis: emulated\nopenstack_base: {}\next_cmd:\n  - iteration: 0\n    node: compute-1\n    test: vms\n    cmd: date\n",
        &[],
        "node `compute-1` is neither `central` nor a real chassis of this run",
    );
}

#[test]
fn chaos_restarts_that_cannot_work_are_refused() {
    // ovn-kubernetes scenarios: a stage is one of their Contexts, and chassis must be real.
    assert_refused(
        "global:\n  cms_name: ovn_kubernetes\ndensity_light:\n  n_pods: 2\nchaos:\n  - {stage: vms, iteration: 1, kill: northd, restart_after: 1}\n",
        &[],
        "density_light-run",
    );
    assert_refused(
        "global:\n  cms_name: ovn_kubernetes\ncluster:\n  chassis: emulated\ndensity_light:\n  n_pods: 2\nchaos:\n  - {stage: density_light-run, iteration: 1, kill: northd, restart_after: 1}\n",
        &[],
        "daemon kills need the lab's real chassis",
    );
    assert_refused(
        "global:\n  cms_name: ovn_kubernetes\ncluster:\n  n_workers: 2\ndensity_light:\n  n_pods: 2\nchaos:\n  - {stage: density_light-run, iteration: 1, kill: ovn-scale-7/ovn-controller}\n",
        &[],
        "ovn-scale-7 is not a real chassis of this run (ovn-scale-0, ovn-scale-1)",
    );
    assert_refused(
        "global:\n  cms_name: ovn_kubernetes\ndensity_light:\n  n_pods: 2\nchaos:\n  - {stage: density_light-run, iteration: 1, kill: nb-leader}\n",
        &[],
        "ovn_kubernetes runs use standalone databases",
    );
    assert_refused(
        "openstack_base:\n  n_hypervisors: 2\nchaos:\n  - {stage: vms, iteration: 1, kill: compute-1/ovs-vswitchd, restart_after: 1}\n",
        &[],
        "restart_after is not supported for ovs-vswitchd",
    );
    assert_refused(
        "openstack_base: {}\nchaos:\n  - {stage: vms, iteration: 1, kill: northd, restart_after: -2}\n",
        &[],
        "restart_after",
    );
}
