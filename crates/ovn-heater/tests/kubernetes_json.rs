//! `--json` of `kubernetes density-light`, `run-emulated` and `walkthrough`: stdout is one
//! JSON document (each Context's duration and pod-up latency in seconds; the walkthrough's
//! dumps), the text figures go to stderr; bad input still prints a document (exit_code 2).

use std::process::Command;

use test_support::TempDir;

fn ovn_heater(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(args)
        .output()
        .expect("run ovn-heater");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}\n{stderr}"));
    (out.status.code(), doc, stderr)
}

/// The Context named `name` in the document.
fn context<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["contexts"]
        .as_array()
        .expect("contexts")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no Context {name}: {doc}"))
}

#[test]
fn density_light_json_has_the_figures_in_seconds() {
    let test = "density_light_json_has_the_figures_in_seconds";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = TempDir::new("kube_density_json");
    let run_dir = dir.path().join("lab");
    let (code, doc, stderr) = ovn_heater(&[
        "kubernetes",
        "density-light",
        "--workers",
        "2",
        "--n-pods-per-node",
        "1",
        "--n-pods",
        "4",
        "--n-startup",
        "2",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{doc}\n{stderr}");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["error"], serde_json::Value::Null);
    assert_eq!(doc["chassis"], "emulated");
    assert_eq!(doc["workers"], 2);
    assert_eq!(doc["farm"]["registered"], 2, "{doc}");
    assert!(doc["nb_transactions"].as_u64().unwrap() > 0, "{doc}");
    let bringup = context(&doc, "base_cluster_bringup-run");
    assert!(bringup["duration_s"].as_f64().unwrap() > 0.0, "{doc}");
    let light = context(&doc, "density_light-run");
    let up = &light["pod_up"];
    assert_eq!(up["count"], 2, "the two pods after the startup ones: {doc}");
    let (p50, max) = (up["p50_s"].as_f64().unwrap(), up["max_s"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= max && max < 60.0, "{doc}");
    let calls = light["calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["count"].as_u64() > Some(0) && c["avg_s"].is_f64()),
        "{doc}"
    );
    assert!(stderr.contains("NB transactions"), "the text went to stderr:\n{stderr}");
}

#[test]
fn run_emulated_json_lists_every_context() {
    let test = "run_emulated_json_lists_every_context";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = TempDir::new("kube_run_emulated_json");
    let run_dir = dir.path().join("lab");
    let scenario = format!(
        "{}/../../scenarios/ovn-kubernetes/ocp-120-density-light.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, doc, stderr) = ovn_heater(&[
        "-q",
        "kubernetes",
        "run-emulated",
        &scenario,
        "--set",
        "cluster.n_workers=2",
        "--set",
        "base_cluster_bringup.n_pods_per_node=1",
        "--set",
        "density_light.n_startup=2",
        "--set",
        "density_light.n_pods=4",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{doc}\n{stderr}");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert!(
        doc["title"].as_str().unwrap().contains("ocp-120-density-light"),
        "{doc}"
    );
    for name in ["base_cluster_bringup-run", "density_light-run"] {
        let c = context(&doc, name);
        assert!(c["duration_s"].is_f64(), "{doc}");
        assert!(c["pod_up"]["count"].as_u64().unwrap() > 0, "{doc}");
    }
    assert_eq!(doc["pings"], serde_json::Value::Null, "emulated chassis do not ping");
}

#[test]
fn density_light_json_of_bad_input_exits_2_with_a_document() {
    let (code, doc, stderr) = ovn_heater(&[
        "kubernetes",
        "density-light",
        "--n-pods",
        "2",
        "--n-startup",
        "3",
        "--json",
    ]);
    assert_eq!(code, Some(2), "{doc}\n{stderr}");
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["error"].as_str().unwrap().contains("--n-startup"), "{doc}");
    assert_eq!(doc["contexts"], serde_json::Value::Null);
}

#[test]
fn walkthrough_json_lists_the_dumps() {
    let test = "walkthrough_json_lists_the_dumps";
    test_support::require_ovn!(
        test,
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl", "ovn-nbctl"]
    );
    let central = test_support::Central::start(test);
    let status = Command::new("ovn-nbctl")
        .args([
            &format!("--db={}", central.nb_remote()),
            "--no-leader-only",
            "set-connection",
            "punix:nb-conn.sock",
        ])
        .status()
        .expect("run ovn-nbctl");
    assert!(status.success(), "ovn-nbctl set-connection failed");
    let out = TempDir::new("kube_walkthrough_json_dumps");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let (code, doc, stderr) = ovn_heater(&[
        "kubernetes",
        "walkthrough",
        "--nb",
        &nb,
        "--sb",
        &sb,
        "--dump-dir",
        out.path().to_str().unwrap(),
        "--dual-stack",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{doc}\n{stderr}");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    let dumps = doc["dumps"].as_array().expect("dumps");
    assert!(dumps.len() > 3, "{doc}");
    assert_eq!(dumps[0]["step"], "00-initial", "{doc}");
    for d in dumps {
        let file = d["file"].as_str().unwrap();
        assert!(std::path::Path::new(file).is_file(), "{file}");
        assert!(file.ends_with(&format!("{}.json", d["step"].as_str().unwrap())), "{d}");
    }
    assert!(doc["nb_transactions"].as_u64().unwrap() > 0, "{doc}");
    assert!(doc["duration_s"].is_f64(), "{doc}");
    assert!(stderr.contains("dumps in"), "the text went to stderr:\n{stderr}");
}

#[test]
fn density_light_json_of_a_pod_not_up_keeps_the_contexts_that_ended() {
    let test = "density_light_json_of_a_pod_not_up_keeps_the_contexts_that_ended";
    test_support::require_root!(test);
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let dir = TempDir::new("kube_density_json_not_up");
    let run_dir = dir.path().join("lab");
    // No pod comes up within a millisecond: OVN's failure, exit 1.
    let (code, doc, stderr) = ovn_heater(&[
        "kubernetes",
        "density-light",
        "--workers",
        "1",
        "--n-pods-per-node",
        "1",
        "--n-pods",
        "1",
        "--n-startup",
        "0",
        "--pod-timeout",
        "1ms",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(1), "{doc}\n{stderr}");
    assert_eq!(doc["exit_code"], 1, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("not up within"), "{doc}");
    assert_eq!(
        context(&doc, "prepare_test")["pod_up"],
        serde_json::Value::Null,
        "{doc}"
    );
    assert_eq!(doc["farm"]["registered"], 1, "{doc}");
}
