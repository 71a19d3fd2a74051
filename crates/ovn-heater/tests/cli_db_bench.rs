//! `ovn-heater bench ovsdb` at a tiny scale: it runs end to end, prints its figures, and
//! leaves no server or temp dir behind. (Figures are printed, never asserted.)

use std::process::{Command, Stdio};

#[test]
fn cli_db_bench_ovsdb_runs_small_and_cleans_up() {
    test_support::require_ovn!(
        "cli_db_bench_ovsdb_runs_small_and_cleans_up",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args([
            "bench",
            "ovsdb",
            "--ports",
            "200",
            "--switches",
            "4",
            "--txns",
            "100",
            "--in-flight",
            "16",
            "--batch",
            "4",
        ])
        .args(["--repeat", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ovn-heater bench ovsdb");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for ovn-heater bench ovsdb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "(a) initial sync of 200 Logical_Switch_Port over 4 Logical_Switch",
        "ovsdb-client dump",
        "ratio ours / ovsdb-client dump",
        "(b) 100 single-row insert transactions, 16 in flight",
        "unix current-thread, transact_many, 4 per batch",
        "unix multi-thread  , transact_many, 4 per batch",
        "tcp  current-thread, transact_many, 4 per batch",
        "tcp  multi-thread  , transact_many, 4 per batch",
        "unix current-thread, transact, a task per txn",
        "tcp  multi-thread  , transact, a task per txn",
        "ssl  current-thread, transact_many, 4 per batch",
        "ssl  multi-thread  , transact, a task per txn",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let prefix = format!("ovn-heater-bench-ovsdb-{pid}-");
    let leftovers: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("read temp dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(leftovers.is_empty(), "benchmark left {leftovers:?} behind");
}

#[test]
fn cli_db_bench_ovsdb_rejects_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["bench", "ovsdb", "--ports", "1", "--switches", "10"])
        .output()
        .expect("run ovn-heater bench ovsdb");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cli_db_bench_ovsdb_sigterm_leaves_nothing() {
    use std::io::Read as _;
    let test = "cli_db_bench_ovsdb_sigterm_leaves_nothing";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]);
    // Big enough that populating takes a while; the signal lands mid-benchmark.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args([
            "bench",
            "ovsdb",
            "--ports",
            "400000",
            "--switches",
            "400",
            "--skip-txns",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let server_dir = std::env::temp_dir().join(format!("ovn-heater-bench-ovsdb-{pid}-sync"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server_dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(server_dir.exists(), "{} never appeared", server_dir.display());
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
    let left = test_support::leftovers::processes_under(&server_dir);
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn cli_db_bench_ovsdb_json_is_one_document_with_every_figure() {
    let test = "cli_db_bench_ovsdb_json_is_one_document_with_every_figure";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]);
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["bench", "ovsdb", "--ports", "100", "--switches", "2", "--txns", "50"])
        .args(["--repeat", "1", "--transport", "unix", "--api", "transact", "--json"])
        .output()
        .expect("run ovn-heater bench ovsdb --json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(doc["initial_sync"]["ports"], 100, "{doc}");
    assert!(doc["initial_sync"]["ours_s"].as_f64().unwrap() > 0.0, "{doc}");
    let rows = doc["transactions"].as_array().expect("transactions");
    let runtimes: Vec<&str> = rows.iter().map(|r| r["runtime"].as_str().unwrap()).collect();
    assert_eq!(runtimes, ["current-thread", "multi-thread"], "{doc}");
    assert!(
        rows.iter().all(|r| r["txns"] == 50 && r["transport"] == "unix"),
        "{doc}"
    );
}
