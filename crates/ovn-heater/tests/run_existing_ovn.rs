//! `ovn-heater run --nb --sb` against an OVN central started outside ovn-heater (NB, SB,
//! ovn-northd on unix sockets), with emulated chassis: no root needed. Every port comes up,
//! `global.cleanup` deletes everything through Neutron, the results are complete, and the
//! OVN it was given is left running.

use std::process::Command;

use test_support::server::Central;

#[test]
fn run_against_existing_ovn_with_emulated_chassis() {
    test_support::require_ovn!(
        "run_against_existing_ovn_with_emulated_chassis",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let central = Central::start("run_existing_ovn");
    let dir = test_support::TempDir::new("run_existing_ovn");
    let scenario = dir.path().join("emulated.yml");
    std::fs::write(
        &scenario,
        "global:\n  cleanup: true\ncluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 3\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 2\n  concurrency: 3\n  ops_per_second: 200\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&scenario)
        .args(["--nb", &central.nb_remote(), "--sb", &central.sb_remote()])
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());

    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "complete");
    assert_eq!(r["environment"]["chassis"], "emulated");
    assert_eq!(r["environment"]["target"], central.nb_remote());
    assert_eq!(r["summary"]["ports_created"], 6, "{}", r["summary"]);
    assert_eq!(r["summary"]["ports_up"], 6);
    assert_eq!(r["summary"]["failures"], 0);
    let names: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bringup", "networks", "vms", "cleanup"],
        "pings are skipped without a data path"
    );
    let cleanup = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "cleanup")
        .unwrap();
    assert_eq!(cleanup["measurements"]["delete_port"]["stats"]["count"], 6);
    assert_eq!(cleanup["measurements"]["delete_port"]["stats"]["failed"], 0);
    // Only Neutron's own leftovers remain (the default security group, neutron_pg_drop).
    assert_eq!(
        cleanup["db"]["nb"]["rows"]["Logical_Switch_Port"], 0,
        "{}",
        cleanup["db"]
    );
    assert_eq!(cleanup["db"]["nb"]["rows"]["Logical_Router"], 0);
    assert!(std::fs::read_to_string(results.join("report.html"))
        .unwrap()
        .contains("class=\"status ok\">passed: "));
    // The OVN we were given still answers.
    let still = Command::new("ovsdb-client")
        .args(["list-dbs", &central.nb_remote()])
        .output()
        .unwrap();
    assert!(still.status.success());
}
