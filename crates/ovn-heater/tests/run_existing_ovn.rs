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
    let out = test_support::heater_run(
        env!("CARGO_BIN_EXE_ovn-heater"),
        &scenario,
        &["--nb", &central.nb_remote(), "--sb", &central.sb_remote()],
        &results,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());

    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
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

/// Rows of `table` in the database at `remote`, through ovsdb-client (not our client).
fn rows(remote: &str, db: &str, table: &str) -> Vec<serde_json::Value> {
    let ops = serde_json::json!([db, {"op": "select", "table": table, "where": []}]);
    let out = Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args(["--timeout=10", "transact", remote, &ops.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    reply[0]["rows"].as_array().cloned().unwrap_or_default()
}

#[test]
fn run_against_existing_ovn_interrupted_leaves_no_chassis_and_no_nb_objects_of_ours() {
    let test = "run_against_existing_ovn_interrupted_leaves_no_chassis_and_no_nb_objects_of_ours";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let dir = test_support::TempDir::new("run_existing_ovn_int");
    let scenario = dir.path().join("emulated.yml");
    std::fs::write(
        &scenario,
        "cluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 4\n  n_vms_per_hypervisor: 40\n  n_network_nodes: 1\n  concurrency: 2\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // A fresh OVN each time, holding a network of someone else's that must survive.
        let central = Central::start(&format!("run_existing_ovn_int_{signal}"));
        let theirs = serde_json::json!(["OVN_Northbound", {"op": "insert", "table": "Logical_Switch", "row": {
            "name": THEIR_SWITCH,
            "external_ids": ["map", [["neutron:network_name", "theirs"], ["neutron:revision_number", "1"]]]}}]);
        let out = Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
            .args(["--timeout=10", "transact", &central.nb_remote(), &theirs.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_dir_all(&results);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
            .arg("run")
            .arg(&scenario)
            .args(["--nb", &central.nb_remote(), "--sb", &central.sb_remote()])
            .arg("--results-dir")
            .arg(&results)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the workload runs.
        let mut stderr = test_support::Lines::of(child.stderr.take().unwrap());
        stderr.until(std::time::Duration::from_secs(120), |line| line.starts_with("[vms]"));
        assert!(
            !rows(&central.sb_remote(), "OVN_Southbound", "Chassis").is_empty(),
            "signal {signal}: the emulated chassis are registered mid-run:\n{}",
            stderr.seen.join("\n")
        );
        // SAFETY: kill on our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        let seen = stderr.finish();
        assert_eq!(status.code(), Some(130), "signal {signal}:\n{}", seen.join("\n"));
        // Judged from outside: no chassis of ours in the SB, no port still claimed by one,
        // no process of ours; the OVN we were given keeps running.
        for table in ["Chassis", "Chassis_Private", "Encap"] {
            let left = rows(&central.sb_remote(), "OVN_Southbound", table);
            assert!(left.is_empty(), "signal {signal}: {table} rows left: {left:#?}");
        }
        let claimed: Vec<_> = rows(&central.sb_remote(), "OVN_Southbound", "Port_Binding")
            .into_iter()
            .filter(|p| p["chassis"] != serde_json::json!(["set", []]))
            .collect();
        assert!(claimed.is_empty(), "signal {signal}: ports still claimed: {claimed:#?}");
        let procs = test_support::leftovers::processes_under(&results);
        assert!(procs.is_empty(), "signal {signal}: {procs:#?}");
        // Nothing the run created is left in the NB (its objects were there mid-run), and the
        // switch that was there before it is untouched.
        let switches = rows(&central.nb_remote(), "OVN_Northbound", "Logical_Switch");
        assert_eq!(switches.len(), 1, "signal {signal}: {switches:#?}");
        assert_eq!(switches[0]["name"], THEIR_SWITCH);
        for table in [
            "Logical_Switch_Port",
            "Logical_Router",
            "Logical_Router_Port",
            "Port_Group",
            "ACL",
            "DHCP_Options",
            "NAT",
            "Gateway_Chassis",
            "HA_Chassis_Group",
            "Logical_Router_Static_Route",
        ] {
            let left = rows(&central.nb_remote(), "OVN_Northbound", table);
            assert!(left.is_empty(), "signal {signal}: {table} rows left: {left:#?}");
        }
        let events = std::fs::read_to_string(results.join("logs/events.log")).unwrap();
        assert!(
            events.contains("removed this run's") && !events.contains("removed this run's 0 NB objects"),
            "signal {signal}: {events}"
        );
    }
}

/// A Neutron network's switch in the target NB that is not this run's.
const THEIR_SWITCH: &str = "neutron-11111111-2222-4333-8444-555555555555";

#[test]
fn two_runs_started_together_get_their_own_default_results_dirs() {
    let test = "two_runs_started_together_get_their_own_default_results_dirs";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd"]);
    let dir = test_support::TempDir::new("run_two_defaults");
    let scenario = dir.path().join("twin.yml");
    std::fs::write(
        &scenario,
        "global:\n  cleanup: true\ncluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 1\n  n_vms_per_hypervisor: 1\n  n_network_nodes: 1\n",
    )
    .unwrap();
    // One OVN each (the same seeded scenario twice on one NB would clash), no --results-dir,
    // both started at once from the same directory.
    let centrals = [
        Central::start("run_two_defaults_a"),
        Central::start("run_two_defaults_b"),
    ];
    let spawned: Vec<_> = centrals
        .iter()
        .map(|c| {
            Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
                .current_dir(dir.path())
                .arg("run")
                .arg(&scenario)
                .args(["--nb", &c.nb_remote(), "--sb", &c.sb_remote()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in spawned {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut dirs: Vec<String> = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in &dirs {
        assert!(d.starts_with("twin-"), "{d}");
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("results").join(d).join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(r["status"], "complete", "{d}");
    }
}
