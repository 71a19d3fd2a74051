//! `ovn-heater fake-chassis` as a user runs it: against a real central, status lines, a port
//! requesting one of its chassis comes up in the NB, Ctrl-C removes the chassis and exits 0;
//! bad input exits 2.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use test_support::Central;

const WAIT: Duration = Duration::from_secs(30);

fn ctl(tool: &str, db: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("--db={db}"))
        .arg("--timeout=30")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Kills the farm if the test fails before it is stopped.
struct Farm(Child);

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fake_chassis_serves_a_port_and_cleans_up_on_ctrl_c() {
    test_support::require_ovn!(
        "fake_chassis_serves_a_port_and_cleans_up_on_ctrl_c",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-nbctl", "ovn-sbctl"]
    );
    let central = Central::start("emu_cli");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let mut farm = Farm(
        Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
            .args(["fake-chassis", "--sb", &sb, "--count", "3", "--prefix", "cli"])
            .args(["--monitor-all", "--json", "--status-interval", "200ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake-chassis"),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = farm.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_status = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no status line with {what} within {WAIT:?}"));
            let status: serde_json::Value = serde_json::from_str(&line).expect("JSON status line");
            if pred(&status) {
                return status;
            }
        }
    };
    wait_status("3 registered", &|s| s["registered"] == 3);

    ctl("ovn-nbctl", &nb, &["ls-add", "net1"]);
    ctl("ovn-nbctl", &nb, &["lsp-add", "net1", "vm1"]);
    ctl(
        "ovn-nbctl",
        &nb,
        &["lsp-set-addresses", "vm1", "fa:16:3e:00:00:01 10.0.0.5"],
    );
    ctl("ovn-nbctl", &nb, &["lsp-set-options", "vm1", "requested-chassis=cli-2"]);
    wait_status("vm1 up", &|s| s["ports_up"] == 1);
    ctl("ovn-nbctl", &nb, &["--wait=hv", "sync"]);
    assert_eq!(
        ctl("ovn-nbctl", &nb, &["get", "Logical_Switch_Port", "vm1", "up"]),
        "true"
    );

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(farm.0.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = farm.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "fake-chassis did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "fake-chassis exited with {status}");
    assert_eq!(ctl("ovn-sbctl", &sb, &["--columns=name", "list", "Chassis"]), "");
    assert_eq!(
        ctl("ovn-sbctl", &sb, &["--columns=name", "list", "Chassis_Private"]),
        ""
    );
    assert_eq!(
        ctl("ovn-nbctl", &nb, &["get", "Logical_Switch_Port", "vm1", "up"]),
        "false"
    );
}

#[test]
fn fake_chassis_rejects_bad_input_with_exit_2() {
    for args in [
        vec!["--sb", "bogus:remote"],
        vec!["--sb", "unix:/nonexistent.sock", "--count", "0"],
        vec!["--sb", "unix:/nonexistent.sock", "--count", "2", "--gateways", "3"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
            .arg("fake-chassis")
            .args(&args)
            .output()
            .expect("run ovn-heater");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("error:"), "{args:?}");
    }
}

#[test]
fn fake_chassis_without_a_server_exits_3() {
    let dir = test_support::TempDir::new("emu_cli_no_server");
    let sock = dir.path().join("missing.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["fake-chassis", "--sb", &format!("unix:{}", sock.display())])
        .output()
        .expect("run ovn-heater");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Southbound"));
}

/// `bench emu` as issue #20 reads it: the farm decodes each update once for its chassis
/// (decodes per update received well under one with 8 chassis), says so, and prints the
/// targets; `--no-shared-decode` decodes per chassis and still brings every port up.
#[test]
fn bench_emu_shares_decoding_and_reports_the_targets() {
    test_support::require_ovn!(
        "bench_emu_shares_decoding_and_reports_the_targets",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let bench = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
            .args(["bench", "emu", "--chassis", "8", "--vms-per-chassis", "2", "--json"])
            .args(extra)
            .output()
            .expect("run ovn-heater bench emu");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON results")[0].clone()
    };
    let shared = bench(&[]);
    assert_eq!(shared["ports_up"], 16, "{shared}");
    assert_eq!(shared["shared_decode"], true);
    let decodes = shared["decodes_per_update"].as_f64().expect("decodes per update");
    assert!(
        decodes < 0.75,
        "8 chassis receiving the same updates share decoding: {shared}"
    );
    let target = &shared["targets"][0];
    assert!(target["what"].as_str().unwrap().contains("farm CPU"), "{shared}");
    assert_eq!(target["limit"], 0.5);
    assert!(target["met"].is_boolean());

    let own = bench(&["--no-shared-decode"]);
    assert_eq!(own["ports_up"], 16, "{own}");
    assert_eq!(own["shared_decode"], false);
    assert!(own["decodes_per_update"].is_null(), "{own}");
}
