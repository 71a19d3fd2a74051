//! `ovn-heater snapshot`: one dump without empty tables and liveness keys, and `snapshot diff`
//! on real Neutron's reference dumps (vendored in crates/ovn-openstack/tests/reference).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use test_support::{OvsdbServer, TempDir};

/// Runs `program` with a deadline (killed if it overruns): its exit code and output.
fn run_bounded(program: &str, args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    test_support::run_bounded(Command::new(program).args(args), timeout)
}

fn reference(step: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ovn-openstack/tests/reference")
        .join(format!("{step}.json"))
        .display()
        .to_string()
}

fn heater(args: &[&str]) -> (Option<i32>, String) {
    run_bounded(env!("CARGO_BIN_EXE_ovn-heater"), args, Duration::from_secs(60))
}

#[test]
fn snapshot_diff_of_reference_dumps() {
    let (code, out) = heater(&[
        "snapshot",
        "diff",
        &reference("07-router-add-subnet"),
        &reference("07-router-add-subnet"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no differences"), "{out}");

    let (code, out) = heater(&[
        "snapshot",
        "diff",
        "--same-run",
        &reference("06b-router-gateway-bound"),
        &reference("07-router-add-subnet"),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("== NAT\n+ NAT#1"), "{out}");
    assert!(out.contains("+   networks = \"10.0.0.1/24\""), "{out}");

    // The same differences as JSON: the NAT row added, the router port's networks.
    let (code, out) = heater(&[
        "snapshot",
        "diff",
        "--same-run",
        "--json",
        &reference("06b-router-gateway-bound"),
        &reference("07-router-add-subnet"),
    ]);
    assert_eq!(code, Some(1), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["equal"], false);
    let nat = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "NAT")
        .expect("NAT differs");
    assert_eq!(nat["rows"][0]["kind"], "added", "{nat}");
    assert_eq!(nat["rows"][0]["label"], "NAT#1", "{nat}");
    let (code, out) = heater(&[
        "snapshot",
        "diff",
        "--json",
        &reference("07-router-add-subnet"),
        &reference("07-router-add-subnet"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["equal"], true);

    let (code, out) = heater(&["snapshot", "diff", "/nonexistent.json", &reference("00-initial")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("cannot read /nonexistent.json"), "{out}");
}

#[test]
fn snapshot_strips_empty_tables_and_liveness_keys() {
    test_support::require_ovn!(
        "snapshot_strips_empty_tables_and_liveness_keys",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl", "ovn-nbctl"]
    );
    let nb = OvsdbServer::standalone("snapshot_cli", "/usr/share/ovn/ovn-nb.ovsschema");
    let db = format!("--db={}", nb.remote());
    for args in [
        vec![db.as_str(), "init"],
        vec![db.as_str(), "ls-add", "sw0"],
        vec![
            db.as_str(),
            "set",
            "NB_Global",
            ".",
            "external_ids:neutron\\:liveness_check_at=2026-01-01",
        ],
    ] {
        let (code, out) = run_bounded("ovn-nbctl", &args, Duration::from_secs(10));
        assert_eq!(code, Some(0), "ovn-nbctl {args:?}: {out}");
    }
    let dir = TempDir::new("snapshot_cli");
    let file = dir.path().join("snap.json");
    let (code, out) = heater(&[
        "snapshot",
        "--nb",
        &nb.remote(),
        "--out",
        file.to_str().unwrap(),
        "--step",
        "x",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let tables = doc["tables"].as_object().unwrap();
    let names: Vec<&String> = tables.keys().collect();
    assert_eq!(names, ["Logical_Switch", "NB_Global"]);
    assert!(!doc.to_string().contains("liveness_check_at"), "{doc}");
    assert_eq!(doc["step"], "x");

    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args([
            "snapshot",
            "--nb",
            &nb.remote(),
            "--out",
            file.to_str().unwrap(),
            "--json",
        ])
        .output()
        .expect("run ovn-heater");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("snapshot --json");
    assert_eq!(summary["file"], file.display().to_string());
    assert_eq!(
        summary["tables"],
        serde_json::json!({"Logical_Switch": 1, "NB_Global": 1})
    );

    let (code, out) = heater(&["snapshot", "--nb", "bogus:remote", "--out", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}");
}
