//! Failure classes end to end, as root against real daemons: a run whose harness fails one
//! VM's plumbing (the test-only `OVN_HEATER_INJECT_FAULT=harness:bind_port:N`) counts one
//! `harness` failure, skips that VM's port-up and every ping involving it instead of failing
//! them again, and exits 3; a run whose OVN cannot bring ports up (ovn-northd SIGKILLed by a
//! `chaos` entry before the first VM) counts `system` failures and exits 1. The same for
//! ovn-kubernetes runs: a pod's plumbing fault (upstream's low-scale scenario on real chassis)
//! skips its port-up and pings and exits 3; a pod not up within the timeout exits 1.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

/// `ovn-heater run SCENARIO --results-dir DIR/results` with `env` set; exit code, stderr and
/// results.json.
fn run(dir: &Path, scenario: &str, env: &[(&str, &str)]) -> (Option<i32>, String, serde_json::Value) {
    let file = dir.join("scenario.yml");
    std::fs::write(&file, scenario).unwrap();
    let results = dir.join("results");
    let child = Command::new(BIN)
        .arg("run")
        .arg(&file)
        .arg("--results-dir")
        .arg(&results)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ovn-heater");
    let pid = child.id();
    let out = child.wait_with_output().expect("run ovn-heater");
    // An ovn-kubernetes run that did not pass keeps its lab's files (daemon logs) in a temp
    // dir named after its pid: the test's own, removed here.
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("ovn-heater-kube-{pid}")));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let r = test_support::read_json(&results.join("results.json"));
    // Nothing of the lab is left, whatever failed (OpenStack runs keep the lab's record).
    test_support::assert_recorded_lab_left_nothing(&results);
    (out.status.code(), stderr, r)
}

#[test]
fn run_with_a_harness_fault_counts_it_once_skips_its_dependents_and_exits_3() {
    test_support::require_lab!("run_with_a_harness_fault_counts_it_once_skips_its_dependents_and_exits_3");
    let dir = test_support::TempDir::new("run_harness_fault");
    // One hypervisor with three VMs (the second one's plumbing fails), real chassis: pings.
    let scenario = "global:\n  cleanup: false\ncluster:\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 20\nopenstack_base:\n  n_hypervisors: 1\n  n_vms_per_hypervisor: 3\n  n_network_nodes: 1\n  concurrency: 1\n";
    let (code, stderr, r) = run(
        dir.path(),
        scenario,
        &[("OVN_HEATER_INJECT_FAULT", "harness:bind_port:2")],
    );
    let s = &r["summary"];
    assert_eq!(r["status"], "complete", "{stderr}");
    // port_up and ping_gateway of the VM, 2 mesh pings from it and 2 to it, its external ping.
    assert_eq!(
        s["failures_by_class"],
        serde_json::json!({"system": 0, "harness": 1, "skipped": 7}),
        "{s}\n{stderr}"
    );
    assert_eq!(s["failures"], 1, "{s}");
    assert_eq!(
        (s["ports_created"].as_u64(), s["ports_up"].as_u64()),
        (Some(3), Some(2)),
        "{s}"
    );
    assert_eq!(s["pings_failed"], 0, "a skipped ping is not a failed one: {s}");

    let bind = test_support::stage_samples(&r, "bind_port");
    let failed: Vec<_> = bind.iter().filter(|b| !b["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{bind:?}");
    assert_eq!(failed[0]["class"], "harness");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("injected harness fault"),
        "{}",
        failed[0]
    );
    let vm = failed[0]["subject"].as_str().unwrap();
    for m in ["port_up", "ping_gateway"] {
        let of_vm: Vec<_> = test_support::stage_samples(&r, m)
            .into_iter()
            .filter(|x| x["subject"] == vm)
            .collect();
        assert_eq!(of_vm.len(), 1, "{m}");
        assert_eq!(of_vm[0]["class"], "skipped", "{m}: {}", of_vm[0]);
        assert_eq!(of_vm[0]["error"], "skipped: bind_port failed", "{m}");
    }
    let mesh = test_support::stage_samples(&r, "ping_mesh");
    assert_eq!(mesh.len(), 6);
    for p in &mesh {
        let involved = p["subject"].as_str().unwrap().contains(vm);
        assert_eq!(p["error"].is_null(), !involved, "{p}");
        if involved {
            assert_eq!(p["class"], "skipped", "{p}");
        }
    }
    let vms = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "vms")
        .unwrap();
    let stats = &vms["measurements"]["bind_port"]["stats"];
    assert_eq!(
        (stats["failed"].as_u64(), stats["harness"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(vms["measurements"]["port_up"]["stats"]["skipped"], 1);

    assert_eq!(code, Some(3), "harness failures alone exit 3:\n{stderr}");
    assert!(stderr.contains("harness failure"), "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("results/report.html")).unwrap();
    assert!(html.contains("NOT PASSED (harness failure"), "report status");
}

#[test]
fn run_whose_ovn_cannot_bring_ports_up_counts_system_failures_and_exits_1() {
    test_support::require_lab!("run_whose_ovn_cannot_bring_ports_up_counts_system_failures_and_exits_1");
    let dir = test_support::TempDir::new("run_system_fault");
    // ovn-northd is killed before the first VM: no Port_Binding, so no port ever comes up.
    let scenario = "global:\n  cleanup: false\ncluster:\n  clustered_db: false\n  chassis: emulated\n  node_timeout_s: 5\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 1\n  n_network_nodes: 1\n  concurrency: 2\nchaos:\n  - {stage: vms, iteration: 0, kill: northd}\n";
    let (code, stderr, r) = run(dir.path(), scenario, &[]);
    let s = &r["summary"];
    assert_eq!(r["status"], "complete", "{stderr}");
    let by_class = &s["failures_by_class"];
    assert_eq!(
        (by_class["harness"].as_u64(), by_class["skipped"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    let up = test_support::stage_samples(&r, "port_up");
    assert_eq!(up.len(), 2);
    for p in &up {
        assert_eq!(p["class"], "system", "{p}");
        assert!(p["error"].as_str().unwrap().contains("never had up=true"), "{p}");
    }
    // The ports, and the stage's hv_cfg settle (northd never writes sb_cfg).
    assert!(by_class["system"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["failures"], by_class["system"], "{s}");
    // northd was killed by the run's own chaos entry: expected dead (the lab does not restart
    // it), so not a lab failure, and named by its chaos sample.
    assert!(test_support::stage_samples(&r, "lab_daemon").is_empty(), "{stderr}");
    let chaos = test_support::stage_samples(&r, "chaos");
    assert_eq!(chaos.len(), 1, "{chaos:?}");
    assert!(
        chaos[0]["subject"].as_str().unwrap().starts_with("northd ("),
        "{}",
        chaos[0]
    );
    assert_eq!(code, Some(1), "system failures exit 1:\n{stderr}");
}

#[test]
fn kubernetes_run_with_a_harness_fault_skips_the_pods_samples_and_exits_3() {
    test_support::require_lab!(
        "kubernetes_run_with_a_harness_fault_skips_the_pods_samples_and_exits_3",
        ["ovs-appctl"]
    );
    let dir = test_support::TempDir::new("kube_harness_fault");
    // Upstream CI's low-scale scenario on real chassis; the first pod's plumbing fails.
    let scenario = std::fs::read_to_string(format!(
        "{}/../../scenarios/ovn-kubernetes/ovn-low-scale.yml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (code, stderr, r) = run(
        dir.path(),
        &scenario,
        &[("OVN_HEATER_INJECT_FAULT", "harness:bind_port:1")],
    );
    let s = &r["summary"];
    assert_eq!(r["status"], "complete", "{stderr}");
    let by_class = &s["failures_by_class"];
    assert_eq!(
        (by_class["system"].as_u64(), by_class["harness"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let bind = test_support::stage_samples(&r, "bind_port");
    let failed: Vec<_> = bind.iter().filter(|b| !b["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["class"], "harness");
    let pod = failed[0]["subject"].as_str().unwrap();
    // Its port-up and its pings (IPv4 and IPv6) are skipped, not failed.
    let up: Vec<_> = test_support::stage_samples(&r, "port_up")
        .into_iter()
        .filter(|x| x["subject"] == pod)
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["class"], "skipped", "{}", up[0]);
    let pings: Vec<_> = test_support::stage_samples(&r, "ping_pod")
        .into_iter()
        .filter(|x| x["subject"].as_str().unwrap().starts_with(&format!("{pod} -> ")))
        .collect();
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert!(pings.iter().all(|p| p["class"] == "skipped"), "{pings:?}");
    assert!(by_class["skipped"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(s["pings_failed"], 0, "{s}");
    assert_eq!(code, Some(3), "harness failures alone exit 3:\n{stderr}");
}

#[test]
fn kubernetes_run_whose_pods_do_not_come_up_in_time_exits_1() {
    test_support::require_root!("kubernetes_run_whose_pods_do_not_come_up_in_time_exits_1");
    test_support::require_ovn!(
        "kubernetes_run_whose_pods_do_not_come_up_in_time_exits_1",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let dir = test_support::TempDir::new("kube_system_fault");
    // Emulated chassis and a pod timeout OVN cannot meet: the first pod is not up in time.
    let scenario = std::fs::read_to_string(format!(
        "{}/../../scenarios/ovn-kubernetes/ovn-low-scale.yml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replacen("cluster:\n", "cluster:\n  chassis: emulated\n  node_timeout_s: 0\n", 1);
    let (code, stderr, r) = run(dir.path(), &scenario, &[]);
    let by_class = &r["summary"]["failures_by_class"];
    assert_eq!(
        (by_class["system"].as_u64(), by_class["harness"].as_u64()),
        (Some(1), Some(0)),
        "{}\n{stderr}",
        r["summary"]
    );
    let up = test_support::stage_samples(&r, "port_up");
    let failed: Vec<_> = up.iter().filter(|x| !x["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{up:?}");
    assert_eq!(failed[0]["class"], "system");
    // A pod not up ends the run (pods are waited for one by one), as upstream's does.
    assert_eq!(r["status"], "failed", "{stderr}");
    assert_eq!(code, Some(1), "a system failure exits 1:\n{stderr}");
}
