//! `--json` of `openstack walkthrough|replay|purge`: stdout is one JSON document saying what
//! was done (the steps run and their dump files; the rows deleted per table and the run ids),
//! the step lines go to stderr; a bad steps file still prints a document (exit_code 2).

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use test_support::{Central, TempDir};

fn ovn_heater(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(args)
        .output()
        .expect("run ovn-heater")
}

/// Runs the binary, killed if it overruns `timeout`; stdout and stderr apart.
fn ovn_heater_bounded(args: &[&str], timeout: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ovn-heater");
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if waited.recv_timeout(timeout).is_err() {
            // SAFETY: kill on our own child, which has not been waited for yet.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().expect("wait for ovn-heater");
    let _ = done.send(());
    let _ = watchdog.join();
    out
}

fn document(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn openstack_walkthrough_json_lists_the_steps_and_dumps() {
    let test = "openstack_walkthrough_json_lists_the_steps_and_dumps";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]);
    let central = Central::start("openstack_walkthrough_json");
    let out_dir = TempDir::new("openstack_walkthrough_json_dumps");
    let dump_dir = out_dir.path().to_str().expect("utf-8 path").to_owned();
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let out = ovn_heater_bounded(
        &[
            "openstack",
            "walkthrough",
            "--nb",
            &nb,
            "--sb",
            &sb,
            "--dump-dir",
            &dump_dir,
            "--json",
        ],
        Duration::from_secs(120),
    );
    let doc = document(&out);
    assert!(out.status.success(), "{doc}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["steps_file"], "walkthrough.yml");
    let steps = doc["steps"].as_array().expect("steps");
    let dumps: Vec<&str> = steps.iter().filter_map(|s| s["dump"].as_str()).collect();
    assert_eq!(dumps.len(), 14, "{doc}");
    for d in &dumps {
        assert!(std::path::Path::new(d).is_file(), "{d}");
    }
    assert!(dumps[0].ends_with("00-initial.json"), "{doc}");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["index"], i + 1);
        assert!(s["step"].as_str().is_some_and(|t| !t.is_empty()), "{s}");
        assert!(s["duration_s"].is_f64(), "{s}");
    }
    assert!(
        steps.iter().any(|s| s["id"].is_string() && s["saved_as"].is_string()),
        "{doc}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("00-initial.json"),
        "the step lines went to stderr:\n{stderr}"
    );
}

#[test]
fn openstack_replay_json_of_a_bad_steps_file_exits_2_with_a_document() {
    let dir = TempDir::new("openstack_replay_json_bad");
    let steps = dir.path().join("steps.yml");
    std::fs::write(&steps, "steps:\n  - openstack: network frobnicate net1\n").unwrap();
    let dumps = dir.path().join("dumps");
    let out = ovn_heater(&[
        "openstack",
        "replay",
        steps.to_str().unwrap(),
        "--nb",
        "unix:/nonexistent/nb.sock",
        "--sb",
        "unix:/nonexistent/sb.sock",
        "--dump-dir",
        dumps.to_str().unwrap(),
        "--json",
    ]);
    let doc = document(&out);
    assert_eq!(out.status.code(), Some(2), "{doc}");
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["error"].as_str().unwrap().contains("steps.yml"), "{doc}");
    assert_eq!(doc["steps"], serde_json::json!([]));
    assert!(!dumps.exists(), "nothing is created for a bad steps file");
}

#[test]
fn openstack_purge_json_counts_the_rows_per_table() {
    let test = "openstack_purge_json_counts_the_rows_per_table";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let central = Central::start("openstack_purge_json");
    let nb = central.nb_remote();
    let switch = |name: &str, run: Option<&str>| {
        let ids = match run {
            Some(r) => serde_json::json!(["map", [["ovn-heater:run", r]]]),
            None => serde_json::json!(["map", []]),
        };
        serde_json::json!({"op": "insert", "table": "Logical_Switch",
                           "row": {"name": name, "external_ids": ids}})
    };
    let txn = serde_json::json!([
        "OVN_Northbound",
        switch("ours-1", Some("run-a")),
        switch("ours-2", Some("run-a")),
        switch("other-run", Some("run-b")),
        switch("theirs", None)
    ]);
    let client = test_support::find_binary("ovsdb-client").expect("ovsdb-client");
    let out = Command::new(client)
        .args(["--timeout=10", "transact", &nb, &txn.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ovn_heater(&["openstack", "purge", "--nb", &nb, "--run", "run-a", "--json"]);
    let doc = document(&out);
    assert!(out.status.success(), "{doc}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["nb"], nb);
    assert_eq!(doc["runs"], serde_json::json!(["run-a"]), "{doc}");
    assert_eq!(doc["deleted"], serde_json::json!({"Logical_Switch": 2}), "{doc}");
    assert_eq!(doc["total"], 2);
    let out = ovn_heater(&["openstack", "purge", "--nb", &nb, "--json"]);
    let doc = document(&out);
    assert_eq!(doc["runs"], serde_json::json!(["run-b"]), "{doc}");
    assert_eq!(doc["total"], 1, "{doc}");
}
