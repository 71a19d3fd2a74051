//! `ovn-heater run --json` (with `-q`): stdout is one JSON document naming the results and the
//! verdict, stderr has no progress lines. Against an OVN central started outside ovn-heater,
//! with emulated chassis: no root needed. `cluster.physical_net` names the provider network.

use std::process::Command;

use test_support::server::Central;

#[test]
fn run_json_prints_one_document_and_quiet_drops_progress() {
    let test = "run_json_prints_one_document_and_quiet_drops_progress";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let central = Central::start("run_json");
    let dir = test_support::TempDir::new("run_json");
    let scenario = dir.path().join("emulated.yml");
    std::fs::write(
        &scenario,
        "global:\n  cleanup: false\ncluster:\n  chassis: emulated\n  node_timeout_s: 30\n  physical_net: providernet\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 1\n  n_network_nodes: 1\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("-q")
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(&results)
        .args(["--nb", &central.nb_remote(), "--sb", &central.sb_remote()])
        .args(["--label", "json-test", "--json"])
        .output()
        .expect("run ovn-heater");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}:\n{stdout}\n{stderr}",
        out.status.code()
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(doc["verdict"], "passed", "{doc}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["status"], "complete");
    assert_eq!(doc["label"], "json-test");
    assert_eq!(doc["summary"]["ports_up"], 2, "{doc}");
    assert_eq!(doc["results_json"], results.join("results.json").display().to_string());
    assert_eq!(doc["report_html"], results.join("report.html").display().to_string());
    assert!(
        !stderr.contains("results: ") && !stderr.contains("ports created"),
        "-q keeps informational lines off stderr:\n{stderr}"
    );
    // cluster.physical_net named the external network's provider network (left in the NB:
    // cleanup is off).
    let select = serde_json::json!(["OVN_Northbound", {"op": "select", "table": "Logical_Switch_Port",
        "where": [["type", "==", "localnet"]], "columns": ["options"]}]);
    let out = Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args(["--timeout=10", "transact", &central.nb_remote(), &select.to_string()])
        .output()
        .expect("run ovsdb-client");
    let rows = String::from_utf8_lossy(&out.stdout);
    assert!(rows.contains(r#"["network_name","providernet"]"#), "{rows}");
}

#[test]
fn run_json_of_a_bad_scenario_still_exits_2() {
    let dir = test_support::TempDir::new("run_json_bad");
    let scenario = dir.path().join("bad.yml");
    std::fs::write(&scenario, "openstack_base:\n  n_hypervisor: 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .arg("--json")
        .output()
        .expect("run ovn-heater");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["verdict"], "bad_input", "{doc}");
    assert_eq!(doc["results_json"], serde_json::Value::Null);
    assert!(
        !dir.path().join("results").exists(),
        "nothing is created for a bad scenario"
    );
}

#[test]
fn run_json_of_an_ovn_kubernetes_scenario_keeps_stdout_to_the_document() {
    let test = "run_json_of_an_ovn_kubernetes_scenario_keeps_stdout_to_the_document";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = test_support::TempDir::new("run_json_kube");
    let results = dir.path().join("results");
    let scenario = format!(
        "{}/../../scenarios/ovn-kubernetes/ocp-120-density-light.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["run", &scenario, "--json"])
        .arg("--results-dir")
        .arg(&results)
        .args(["--set", "cluster.chassis=emulated", "--set", "cluster.n_workers=2"])
        .args(["--set", "base_cluster_bringup.n_pods_per_node=1"])
        .args(["--set", "density_light.n_startup=2", "--set", "density_light.n_pods=4"])
        .output()
        .expect("run ovn-heater");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}:\n{stdout}\n{stderr}",
        out.status.code()
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(doc["verdict"], "passed", "{doc}");
    assert_eq!(doc["status"], "complete", "{doc}");
    assert_eq!(doc["results_json"], results.join("results.json").display().to_string());
    assert!(doc["summary"]["ports_created"].as_u64().unwrap() > 0, "{doc}");
    assert!(
        stderr.contains("NB transactions"),
        "the figures went to stderr:\n{stderr}"
    );
}
