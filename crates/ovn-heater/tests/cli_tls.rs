//! The TLS flags of the CLI (`--private-key --certificate --ca-cert`) against real servers:
//! `db dump` and `db watch` over `ssl:` with `ovs-pki` certificates (the dump is the same as
//! over the unix socket), clear exit-2 errors for an `ssl:` remote without files and for a
//! server signed by another CA, and a `fake-chassis` farm in its own process against a lab's
//! SB under RBAC, each chassis with its own certificate from `lab certs`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use test_support::{OvsdbServer, Pki, TlsFiles};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");
const WAIT: Duration = Duration::from_secs(60);

fn heater(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ovn-heater")
}

fn tls_flags(files: &TlsFiles) -> Vec<String> {
    vec![
        "--private-key".into(),
        files.private_key.display().to_string(),
        "--certificate".into(),
        files.certificate.display().to_string(),
        "--ca-cert".into(),
        files.ca_cert.display().to_string(),
    ]
}

fn ctl(tool: &str, db: &str, extra: &[String], args: &[&str]) -> String {
    let out = Command::new(test_support::find_binary(tool).unwrap_or_else(|| panic!("{tool}")))
        .arg(format!("--db={db}"))
        .args(extra)
        .args(["--timeout=20"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Kills the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn cli_db_dump_and_watch_over_ssl() {
    test_support::require_ovn!(
        "cli_db_dump_and_watch_over_ssl",
        ["ovsdb-server", "ovsdb-tool", "ovn-nbctl", "ovs-pki", "openssl"]
    );
    let pki = Pki::new("cli_tls_db");
    let server = OvsdbServer::standalone_ssl("cli_tls_db", NB, &pki.issue("server"));
    ctl("ovn-nbctl", &server.remote(), &[], &["ls-add", "sw0"]);
    let client = tls_flags(&pki.issue("client"));
    let ssl = server.ssl_remote();

    let mut args = vec!["db", "dump", "--db", &ssl];
    args.extend(client.iter().map(String::as_str));
    let over_ssl = heater(&args);
    assert!(
        over_ssl.status.success(),
        "{}",
        String::from_utf8_lossy(&over_ssl.stderr)
    );
    let over_unix = heater(&["db", "dump", "--db", &server.remote()]);
    assert_eq!(
        String::from_utf8_lossy(&over_ssl.stdout),
        String::from_utf8_lossy(&over_unix.stdout),
        "the same database, whatever the transport"
    );

    // watch: an insert made meanwhile arrives over TLS.
    let mut watch = Reaped(
        Command::new(BIN)
            .args(["db", "watch", "--db", &ssl, "--table", "Logical_Switch"])
            .args(&client)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = watch.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The watch is up once our own probe insert shows; then the real one.
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    let seen = loop {
        n += 1;
        ctl("ovn-nbctl", &server.remote(), &[], &["ls-add", &format!("sw-{n}")]);
        match lines.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => break line,
            Err(_) => assert!(Instant::now() < deadline, "db watch printed nothing over ssl:"),
        }
    };
    assert!(seen.contains("\"insert\"") && seen.contains("sw-"), "{seen}");

    // ssl: without the files: exit 2, naming the flags.
    let bare = heater(&["db", "dump", "--db", &ssl]);
    assert_eq!(bare.status.code(), Some(2));
    let text = String::from_utf8_lossy(&bare.stderr);
    assert!(
        text.contains("--private-key FILE --certificate FILE --ca-cert FILE"),
        "{text}"
    );

    // A server signed by another CA: exit 2 at once, naming the CA file.
    let foreign = Pki::new("cli_tls_db_foreign");
    let mut trusts_other = pki.issue("client2");
    trusts_other.ca_cert = foreign.ca_cert();
    let mut args = vec!["db", "dump", "--db", &ssl, "--timeout", "600"];
    let other = tls_flags(&trusts_other);
    args.extend(other.iter().map(String::as_str));
    let refused = heater(&args);
    assert_eq!(refused.status.code(), Some(2));
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("not signed by the CA in") && text.contains(&foreign.ca_cert().display().to_string()),
        "{text}"
    );
}

#[test]
fn fake_chassis_farm_in_its_own_process_against_a_lab_under_rbac() {
    test_support::require_root!("fake_chassis_farm_in_its_own_process_against_a_lab_under_rbac");
    test_support::require_ovn!(
        "fake_chassis_farm_in_its_own_process_against_a_lab_under_rbac",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-nbctl", "ovn-sbctl"]
    );
    let dir = test_support::TempDir::new("cli_tls_farm");
    let run_dir = dir.path().join("lab");
    let run = run_dir.display().to_string();
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = heater(&["lab", "down", "--run-dir", self.0]);
        }
    }
    let up = heater(&["lab", "up", "--run-dir", &run, "--ssl", "--json"]);
    let _down = Down(&run);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let lab: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    assert_eq!((lab["ssl"].as_bool(), lab["rbac"].as_bool()), (Some(true), Some(true)));
    let chassis_sb = lab["sb_remote_for_chassis"].as_str().unwrap().to_owned();
    let (nb, sb) = (lab["nb_remote"].as_str().unwrap(), lab["sb_remote"].as_str().unwrap());
    let admin = |key: &str| lab["tls"][key].as_str().unwrap().to_owned();
    let admin = vec![
        format!("--private-key={}", admin("private_key")),
        format!("--certificate={}", admin("certificate")),
        format!("--ca-cert={}", admin("ca_cert")),
    ];

    // The farm's certificates, as another host would be handed them.
    let certs = dir.path().join("farm-pki");
    let out = heater(&[
        "lab",
        "certs",
        "--run-dir",
        &run,
        "--prefix",
        "far",
        "--count",
        "2",
        "--out",
        &certs.display().to_string(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = |name: &str| certs.join(name).display().to_string();
    let written: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lab certs --json");
    assert_eq!(written["ca_cert"], file("cacert.pem"), "{written}");
    assert_eq!(written["sb_remote_for_chassis"], chassis_sb.as_str(), "{written}");
    let issued = written["certificates"].as_array().unwrap();
    assert_eq!(issued.len(), 2, "{written}");
    assert_eq!(issued[1]["name"], "far-2");
    assert_eq!(issued[1]["private_key"], file("far-2-privkey.pem"));
    assert_eq!(issued[1]["certificate"], file("far-2-cert.pem"));

    // Without certificates the farm is refused before it starts.
    let bare = heater(&["fake-chassis", "--sb", &chassis_sb, "--count", "1"]);
    assert_eq!(bare.status.code(), Some(2), "{}", String::from_utf8_lossy(&bare.stderr));

    let mut farm = Reaped(
        Command::new(BIN)
            .args(["fake-chassis", "--sb", &chassis_sb, "--count", "2", "--prefix", "far"])
            .args(["--json", "--status-interval", "200ms"])
            .args(["--private-key", &file("{chassis}-privkey.pem")])
            .args(["--certificate", &file("{chassis}-cert.pem")])
            .args(["--ca-cert", &file("cacert.pem")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = farm.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_status = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no status line with {what} within {WAIT:?}"));
            let status: serde_json::Value = serde_json::from_str(&line).unwrap();
            if pred(&status) {
                return status;
            }
        }
    };
    let registered = wait_status("2 registered", &|s| s["registered"] == 2);
    assert_eq!(registered["errors"], 0, "{registered}");

    ctl("ovn-nbctl", nb, &admin, &["ls-add", "net1"]);
    ctl("ovn-nbctl", nb, &admin, &["lsp-add", "net1", "vm1"]);
    ctl(
        "ovn-nbctl",
        nb,
        &admin,
        &["lsp-set-addresses", "vm1", "fa:16:3e:00:00:01 10.0.0.5"],
    );
    ctl(
        "ovn-nbctl",
        nb,
        &admin,
        &["lsp-set-options", "vm1", "requested-chassis=far-2"],
    );
    let up = wait_status("vm1 up", &|s| s["ports_up"] == 1);
    assert_eq!(up["errors"], 0, "every write of the farm passed RBAC: {up}");
    ctl("ovn-nbctl", nb, &admin, &["--wait=hv", "sync"]);
    assert_eq!(
        ctl("ovn-nbctl", nb, &admin, &["get", "Logical_Switch_Port", "vm1", "up"]),
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
    assert_eq!(ctl("ovn-sbctl", sb, &admin, &["--columns=name", "list", "Chassis"]), "");
    assert!(Path::new(&file("far-1-cert.pem")).is_file());
}

#[test]
fn bench_emu_over_ssl_brings_every_port_up() {
    test_support::require_ovn!(
        "bench_emu_over_ssl_brings_every_port_up",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let out = heater(&[
        "bench",
        "emu",
        "--chassis",
        "3",
        "--vms-per-chassis",
        "2",
        "--ssl",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["ssl"], true);
    assert_eq!(results[0]["ports_up"], 6, "{results}");
}

#[test]
fn every_command_taking_a_remote_refuses_ssl_without_files() {
    let dir = test_support::TempDir::new("cli_tls_bare");
    let out_dir = dir.path().display().to_string();
    let scenario = dir.path().join("s.yml");
    std::fs::write(&scenario, "cluster:\n  chassis: emulated\nopenstack_base: {}\n").unwrap();
    let scenario = scenario.display().to_string();
    let ssl = "ssl:127.0.0.1:9";
    for args in [
        vec!["db", "dump", "--db", ssl],
        vec!["db", "watch", "--db", ssl, "--table", "Logical_Switch"],
        vec!["snapshot", "--nb", ssl, "--out", "/nonexistent/s.json"],
        vec![
            "openstack",
            "walkthrough",
            "--nb",
            ssl,
            "--sb",
            ssl,
            "--dump-dir",
            &out_dir,
        ],
        vec![
            "kubernetes",
            "walkthrough",
            "--nb",
            ssl,
            "--sb",
            ssl,
            "--dump-dir",
            &out_dir,
        ],
        vec!["fake-chassis", "--sb", ssl],
        vec!["run", &scenario, "--nb", ssl, "--sb", ssl],
    ] {
        let out = heater(&args);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("--private-key FILE"), "{args:?}: {text}");
    }
}

#[test]
fn run_against_an_existing_ovn_over_ssl_with_a_certificate_per_chassis() {
    test_support::require_root!("run_against_an_existing_ovn_over_ssl_with_a_certificate_per_chassis");
    test_support::require_ovn!(
        "run_against_an_existing_ovn_over_ssl_with_a_certificate_per_chassis",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let dir = test_support::TempDir::new("cli_tls_run");
    let run_dir = dir.path().join("lab");
    let run = run_dir.display().to_string();
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = heater(&["lab", "down", "--run-dir", self.0]);
        }
    }
    let up = heater(&["lab", "up", "--run-dir", &run, "--ssl", "--json"]);
    let _down = Down(&run);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let lab: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    let nb = lab["nb_remote"].as_str().unwrap();
    let chassis_sb = lab["sb_remote_for_chassis"].as_str().unwrap();

    // As for another team's OVN: certificates for hv-1..3 (the chassis `run` emulates) and
    // for ovn-heater itself, all from that OVN's CA.
    let certs = dir.path().join("pki");
    let out = heater(&[
        "lab",
        "certs",
        "--run-dir",
        &run,
        "--prefix",
        "hv",
        "--count",
        "3",
        "--name",
        "ovn-heater",
        "--out",
        &certs.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = |name: &str| certs.join(name).display().to_string();
    let scenario = dir.path().join("s.yml");
    std::fs::write(
        &scenario,
        "cluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 1\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .args(["--nb", nb, "--sb", chassis_sb])
        .args(["--private-key", &file("{chassis}-privkey.pem")])
        .args(["--certificate", &file("{chassis}-cert.pem")])
        .args(["--ca-cert", &file("cacert.pem")])
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["summary"]["ports_up"], 4, "{}", r["summary"]);
    assert_eq!(r["summary"]["failures"], 0, "{}", r["summary"]);
    assert_eq!(r["environment"]["ssl"], true);
    assert_eq!(r["environment"]["nb_remote"], nb);
}
