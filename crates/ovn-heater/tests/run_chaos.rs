//! `chaos:` end to end, as root: a run with RAFT NB and SB (emulated chassis) that kills the NB
//! leader and then the SB leader mid-`vms` (SIGKILL). Each kill is a `chaos` sample with the
//! time until that cluster took a write again; a CMS transaction in flight on the killed NB
//! leader (`outcome unknown`) is checked in the NB and sent again only if it did not commit,
//! so no action fails and the run passes (exit 0); and the NB at the end (read from the
//! surviving members' database files) holds every VM port Neutron created, exactly once.

use std::path::Path;
use std::process::Command;

const SCENARIO: &str = "global:\n  cleanup: false\ncluster:\n  clustered_db: true\n  chassis: emulated\n  node_timeout_s: 60\nopenstack_base:\n  n_hypervisors: 3\n  n_vms_per_hypervisor: 8\n  n_network_nodes: 1\n  concurrency: 4\nchaos:\n  - {stage: vms, iteration: 6, kill: nb-leader}\n  - {stage: vms, iteration: 14, kill: sb-leader}\n";
const VMS: usize = 24;

/// The NB's Logical_Switch_Port rows in a (clustered) database file: name and device owner.
fn vm_ports_in(db: &Path, scratch: &Path) -> Vec<String> {
    let tool = test_support::find_binary("ovsdb-tool").expect("ovsdb-tool");
    let standalone = scratch.join(format!("{}.standalone", db.file_name().unwrap().to_string_lossy()));
    let _ = std::fs::remove_file(&standalone);
    let out = Command::new(&tool)
        .arg("cluster-to-standalone")
        .arg(&standalone)
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let query = r#"["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[],"columns":["name","external_ids"]}]"#;
    let out = Command::new(&tool)
        .arg("query")
        .arg(&standalone)
        .arg(query)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> =
        reply[0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["external_ids"][1].as_array().unwrap().iter().any(|kv| {
                    kv[0] == "neutron:device_owner" && kv[1].as_str().is_some_and(|o| o.starts_with("compute:"))
                })
            })
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
    names.sort();
    names
}

#[test]
fn run_chaos_kills_nb_and_sb_leaders_mid_vms_without_losing_or_duplicating_ports() {
    let test = "run_chaos_kills_nb_and_sb_leaders_mid_vms_without_losing_or_duplicating_ports";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = test_support::TempDir::new("run_chaos");
    let scenario = dir.path().join("chaos.yml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(env!("CARGO_BIN_EXE_ovn-heater"), &scenario, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    // A CMS transaction in flight on the killed NB leader has an unknown outcome: it is
    // checked in the NB (committed: done; not: sent once more), so no sample fails.
    let failed = test_support::not_ok_samples(&r);
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Each verified transaction is an event naming what was found.
    let events = std::fs::read_to_string(results.join("logs/events.log")).unwrap();
    for line in events.lines().filter(|l| l.contains("outcome unknown")) {
        assert!(
            line.contains("CMS transaction checked in the NB after a chaos kill: T8")
                && (line.ends_with("outcome unknown, committed")
                    || line.ends_with("outcome unknown, not committed: sent again")),
            "{line}"
        );
    }
    let vms = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "vms")
        .unwrap();
    let chaos = vms["measurements"]["chaos"]["samples"]
        .as_array()
        .expect("chaos samples");
    let subjects: Vec<&str> = chaos.iter().map(|s| s["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0].starts_with("nb-leader (nb-") && subjects[0].ends_with("at vms/6"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("sb-leader (sb-") && subjects[1].ends_with("at vms/14"),
        "{subjects:?}"
    );
    for s in chaos {
        assert!(s["error"].is_null(), "{s}");
        let d = s["duration_s"].as_f64().unwrap();
        assert!(d > 0.0 && d < 60.0, "{s}");
    }
    let created = r["summary"]["ports_created"].as_u64().unwrap() as usize;
    assert_eq!(created, VMS, "{}", r["summary"]);

    // Every VM port exactly once in the NB the survivors agree on.
    let logs = results.join("logs");
    let mut seen = Vec::new();
    for i in 1..=3 {
        let db = logs.join(format!("nb-nb-{i}.db"));
        assert!(db.exists(), "{} missing", db.display());
        seen.push(vm_ports_in(&db, dir.path()));
    }
    seen.sort_by_key(Vec::len);
    let full = seen.last().unwrap();
    // Nothing lost, nothing created twice.
    assert_eq!(full.len(), VMS, "{full:?}");
    let mut unique = full.clone();
    unique.dedup();
    assert_eq!(unique.len(), full.len(), "duplicated ports: {full:?}");
    assert_eq!(&seen[1], full, "the two surviving members agree");
}
