//! `ovn-heater db dump` / `db watch`: the built binary against real ovsdb-servers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use test_support::OvsdbServer;

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const VSWITCH: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

fn heater(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ovn-heater")
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn transact(remote: &str, ops: Json) {
    let out = Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args(["--timeout=10", "transact", remote, &ops.to_string()])
        .output()
        .expect("run ovsdb-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("\"error\""),
        "transact {ops}: {stdout} {}",
        stderr(&out)
    );
}

fn nb_with_data(test: &str) -> OvsdbServer {
    let server = OvsdbServer::standalone(test, NB);
    transact(
        &server.remote(),
        json!(["OVN_Northbound",
            {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "p",
             "row": {"name": "p1", "addresses": ["set", ["fa:16:3e:00:00:01 10.0.0.5", "unknown"]],
                     "tag_request": 7, "external_ids": ["map", [["neutron:port_name", "é😀 \"quoted\"\n"]]]}},
            {"op": "insert", "table": "Logical_Switch",
             "row": {"name": "sw0", "ports": ["set", [["named-uuid", "p"]]],
                     "other_config": ["map", [["mcast_snoop", "true"]]]}},
            {"op": "insert", "table": "Logical_Switch", "row": {"name": "sw1"}}]),
    );
    server
}

#[test]
fn cli_db_dump_is_byte_identical_to_nbdump_py() {
    test_support::require_ovn!(
        "cli_db_dump_is_byte_identical_to_nbdump_py",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let server = nb_with_data("cli_db_dump_nbdump");
    let out = heater(&[
        "db",
        "dump",
        "--db",
        &server.remote(),
        "--step",
        "s1",
        "--command",
        "net create",
    ]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let nbdump = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/neutron-oracle/nbdump.py");
    if !std::path::Path::new(nbdump).is_file() || !std::path::Path::new("/usr/bin/python3").is_file() {
        test_support::skip(
            "cli_db_dump_is_byte_identical_to_nbdump_py",
            "/usr/bin/python3 missing (apt-get install python3)",
        );
        return;
    }
    let reference = test_support::TempDir::new("cli_db_dump_ref");
    let ref_path = reference.path().join("ref.json");
    let py = Command::new("/usr/bin/python3")
        .args([
            nbdump,
            &server.remote(),
            ref_path.to_str().unwrap(),
            "--step",
            "s1",
            "--command",
            "net create",
        ])
        .output()
        .expect("run nbdump.py");
    assert!(py.status.success(), "nbdump.py: {}", stderr(&py));
    let expected = std::fs::read(&ref_path).unwrap();
    assert!(
        out.stdout == expected,
        "ovn-heater db dump differs from nbdump.py:\n--- ours\n{}\n--- nbdump.py\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn cli_db_dump_has_every_table_and_raw_rows() {
    test_support::require_ovn!(
        "cli_db_dump_has_every_table_and_raw_rows",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let server = nb_with_data("cli_db_dump_tables");
    let out = heater(&["db", "dump", "--db", &server.tcp_remote()]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["database", "schema_version", "tables"]);
    assert_eq!(doc["database"], "OVN_Northbound");
    let schema: Json = serde_json::from_str(&std::fs::read_to_string(NB).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], schema["version"]);
    let tables = doc["tables"].as_object().unwrap();
    assert_eq!(
        tables.len(),
        schema["tables"].as_object().unwrap().len(),
        "every table, empty ones too"
    );
    assert_eq!(tables["ACL"], json!([]));
    let switches = tables["Logical_Switch"].as_array().unwrap();
    assert_eq!(switches.len(), 2);
    let uuids: Vec<&str> = switches.iter().map(|r| r["_uuid"][1].as_str().unwrap()).collect();
    let mut sorted = uuids.clone();
    sorted.sort();
    assert_eq!(uuids, sorted, "rows sorted by _uuid");
    let port = &tables["Logical_Switch_Port"][0];
    assert_eq!(port["tag_request"], json!(7));
    assert_eq!(port["_version"][0], "uuid");
    assert_eq!(
        port["addresses"],
        json!(["set", ["fa:16:3e:00:00:01 10.0.0.5", "unknown"]])
    );
    let sw0 = switches.iter().find(|r| r["name"] == "sw0").unwrap();
    assert_eq!(
        sw0["ports"],
        json!(["uuid", port["_uuid"][1]]),
        "one-element sets stay bare atoms as the server sent them"
    );
}

#[test]
fn cli_db_dump_picks_the_only_database() {
    test_support::require_ovn!("cli_db_dump_picks_the_only_database", ["ovsdb-server", "ovsdb-tool"]);
    let server = OvsdbServer::standalone("cli_db_dump_vswitch", VSWITCH);
    let out = heater(&["db", "dump", "--db", &server.remote()]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let doc: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["database"], "Open_vSwitch");
    let out = heater(&["db", "dump", "--db", &server.remote(), "--database", "_Server"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

#[test]
fn cli_db_errors_are_clear_with_exit_codes() {
    test_support::require_ovn!(
        "cli_db_errors_are_clear_with_exit_codes",
        ["ovsdb-server", "ovsdb-tool"]
    );
    let server = OvsdbServer::standalone("cli_db_errors", NB);
    let remote = server.remote();

    let out = heater(&["db", "dump", "--db", "tcp:127.0.0.1"]);
    assert_eq!(code(&out), Some(2), "bad remote: {}", stderr(&out));
    assert!(stderr(&out).contains("invalid OVSDB remote"), "{}", stderr(&out));

    // No socket file at all: a wrong path, said at once (bad input).
    let dir = test_support::TempDir::new("cli_db_errors_gone");
    let missing = format!("unix:{}", dir.path().join("nothing.sock").display());
    let out = heater(&["db", "dump", "--db", &missing]);
    assert_eq!(code(&out), Some(2), "missing socket: {}", stderr(&out));
    assert!(stderr(&out).contains("no socket at"), "{}", stderr(&out));
    // A socket nobody listens on any more: the server may be restarting, so it is retried for
    // --timeout, then the run failed to reach it (3).
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let stale = format!("unix:{}", stale.display());
    let out = heater(&["db", "dump", "--db", &stale, "--timeout", "0.5"]);
    assert_eq!(code(&out), Some(3), "unreachable: {}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the OVSDB server"),
        "{}",
        stderr(&out)
    );

    let out = heater(&["db", "dump", "--db", &remote, "--database", "OVN_Northbond"]);
    assert_eq!(code(&out), Some(2));
    assert!(
        stderr(&out).contains("did you mean \"OVN_Northbound\""),
        "{}",
        stderr(&out)
    );

    let out = heater(&["db", "watch", "--db", &remote, "--table", "Logical_Swich"]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean \"Logical_Switch\""),
        "{}",
        stderr(&out)
    );

    let out = heater(&[
        "db",
        "watch",
        "--db",
        &remote,
        "--table",
        "Logical_Switch",
        "--where",
        "nmae=x",
    ]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("did you mean \"name\""), "{}", stderr(&out));

    let out = heater(&[
        "db",
        "watch",
        "--db",
        &remote,
        "--table",
        "Logical_Switch_Port",
        "--where",
        "tag_request=9999",
    ]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("out of range"), "{}", stderr(&out));
}

/// A running `db watch` whose stdout lines arrive on a channel; killed on drop.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start db watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    fn next_event(&self) -> Json {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("db watch printed no event within 20 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits (bounded) for the exit; returns the code and stderr.
    fn wait(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (status.code(), err);
            }
            assert!(Instant::now() < deadline, "db watch did not exit within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cli_db_watch_prints_insert_modify_delete_and_exits_0_on_ctrl_c() {
    test_support::require_ovn!(
        "cli_db_watch_prints_insert_modify_delete",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let server = nb_with_data("cli_db_watch_events");
    let remote = server.remote();
    let mut watch = Watch::start(&[
        "db",
        "watch",
        "--db",
        &remote,
        "--table",
        "Logical_Switch",
        "--where",
        "other_config:mcast_snoop=true",
        "--initial",
    ]);
    // The initial row proves the monitor is in place before anything changes.
    let initial = watch.next_event();
    assert_eq!(initial["event"], "initial");
    assert_eq!(initial["new"]["name"], "sw0");

    let ops = |op: Json| json!(["OVN_Northbound", op]);
    transact(
        &remote,
        ops(json!({"op": "insert", "table": "Logical_Switch", "row": {"name": "unwatched"}})),
    );
    transact(
        &remote,
        ops(json!({"op": "insert", "table": "Logical_Switch",
                   "row": {"name": "sw2", "other_config": ["map", [["mcast_snoop", "true"]]]}})),
    );
    let insert = watch.next_event();
    assert_eq!(insert["event"], "insert", "{insert}");
    assert_eq!(insert["table"], "Logical_Switch");
    assert_eq!(insert["new"]["name"], "sw2", "rows not matching --where are not shown");
    let uuid = insert["uuid"].as_str().unwrap().to_owned();

    transact(
        &remote,
        ops(
            json!({"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", "sw2"]],
                   "mutations": [["external_ids", "insert", ["map", [["k", "v"]]]]]}),
        ),
    );
    let modify = watch.next_event();
    assert_eq!(modify["event"], "modify", "{modify}");
    assert_eq!(modify["uuid"], uuid.as_str());
    assert_eq!(modify["old"]["external_ids"], json!(["map", []]));
    assert_eq!(modify["new"]["external_ids"], json!(["map", [["k", "v"]]]));

    transact(
        &remote,
        ops(json!({"op": "delete", "table": "Logical_Switch", "where": [["name", "==", "sw2"]]})),
    );
    let delete = watch.next_event();
    assert_eq!(delete["event"], "delete", "{delete}");
    assert_eq!(delete["old"]["name"], "sw2");

    watch.signal(libc::SIGINT);
    let (code, err) = watch.wait();
    assert_eq!(code, Some(0), "Ctrl-C ends the watch with 0: {err}");
}

#[test]
fn cli_db_watch_fails_with_3_when_the_server_goes_away() {
    test_support::require_ovn!(
        "cli_db_watch_fails_with_3",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client"]
    );
    let mut server = nb_with_data("cli_db_watch_gone");
    let remote = server.remote();
    let mut watch = Watch::start(&["db", "watch", "--db", &remote, "--table", "Logical_Switch", "--initial"]);
    assert_eq!(watch.next_event()["event"], "initial");
    server.kill();
    let (code, err) = watch.wait();
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("Logical_Switch"),
        "the error names what was being watched: {err}"
    );
}
