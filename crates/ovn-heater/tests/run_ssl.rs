//! TLS and SB RBAC end to end, as root: the OpenStack base test with `enable_ssl: true` on
//! real and on emulated chassis (every port up, every ping answered, results saying TLS and
//! RBAC were on), and emulated chassis under RBAC: each with its own certificate they do all
//! their writes, and a write RBAC refuses (a chassis whose certificate names another one) is
//! reported, not lost, so an emulator write that real RBAC would refuse cannot go unnoticed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ovn_emu::{ChassisSpec, ChassisTls, ConnectPolicy, EmulatedChassis, Farm, FarmOptions};
use ovn_lab::{Lab, LabSpec};
use ovsdb::{Client, ClientOptions, Condition, Error, OperationError, Row, Transaction, Value};

const WAIT: Duration = Duration::from_secs(60);

fn run_base(test: &str, chassis: &str) -> serde_json::Value {
    let dir = test_support::TempDir::new(test);
    let scenario = dir.path().join("ssl.yml");
    std::fs::write(
        &scenario,
        format!(
            "cluster:\n  enable_ssl: true\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 30\n  chassis: {chassis}\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 1\n  concurrency: 2\n"
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(env!("CARGO_BIN_EXE_ovn-heater"), &scenario, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "complete");
    assert_eq!(r["summary"]["ports_created"], 4, "{}", r["summary"]);
    assert_eq!(r["summary"]["ports_up"], 4, "{}", r["summary"]);
    assert_eq!(r["summary"]["failures"], 0, "{}", r["summary"]);
    let env = &r["environment"];
    assert_eq!(env["ssl"], true, "{env}");
    assert_eq!(env["rbac"], true, "{env}");
    for remote in ["nb_remote", "sb_remote"] {
        assert!(env[remote].as_str().unwrap().starts_with("ssl:127.0.0.1:"), "{env}");
    }
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(html.contains("TLS, SB RBAC for chassis"), "the report says TLS was on");
    if chassis == "real" {
        assert_eq!(r["summary"]["pings_failed"], 0, "{}", r["summary"]);
        // Every ovn-controller reached the SB's chassis-facing (RBAC) listener over TLS.
        let logs = results.join("logs");
        let controllers: Vec<_> = std::fs::read_dir(&logs)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("ovn-controller.log"))
            .collect();
        assert_eq!(controllers.len(), 3, "{}", logs.display());
        for log in controllers {
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(
                text.lines()
                    .any(|l| l.contains("ssl:127.0.0.1:") && l.ends_with("connected")),
                "{} never connected over ssl:",
                log.display()
            );
        }
    }
    r
}

#[test]
fn run_ssl_base_on_real_chassis_every_port_up() {
    test_support::require_lab!("run_ssl_base_on_real_chassis_every_port_up");
    run_base("run_ssl_real", "real");
}

#[test]
fn run_ssl_base_on_emulated_chassis_every_port_up() {
    test_support::require_root!("run_ssl_base_on_emulated_chassis_every_port_up");
    test_support::require_ovn!(
        "run_ssl_base_on_emulated_chassis_every_port_up",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let r = run_base("run_ssl_emulated", "emulated");
    assert_eq!(r["environment"]["chassis"], "emulated");
}

/// Sets `external_ids:rbac-test` on the Chassis row named `target`, as `client`.
async fn touch_chassis(client: &Client, target: &str) -> ovsdb::Result<()> {
    let mut txn = Transaction::new("OVN_Southbound");
    txn.update(
        "Chassis",
        vec![Condition::eq("name", target)],
        Row::new().with("external_ids", Value::string_map([("rbac-test", "1")])),
    );
    client.transact(txn).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulated_chassis_under_sb_rbac_and_refused_writes_are_caught() {
    test_support::require_root!("emulated_chassis_under_sb_rbac_and_refused_writes_are_caught");
    test_support::require_ovn!(
        "emulated_chassis_under_sb_rbac_and_refused_writes_are_caught",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let dir = test_support::TempDir::new("emu_rbac");
    let mut spec = LabSpec::new(dir.path().join("lab"));
    spec.ssl = true;
    let lab = Lab::up(spec).await.unwrap();
    assert!(lab.ssl() && lab.rbac(), "a standalone SB with SSL has RBAC for chassis");
    let pki = Arc::new(lab.pki().unwrap().expect("a lab with SSL has a PKI"));
    let chassis_sb = lab.sb_remote_for_chassis().to_owned();

    // Each chassis with its own certificate: everything it writes (Encap, Chassis,
    // Chassis_Private, nb_cfg acks) passes RBAC.
    let issuer = pki.clone();
    let options = FarmOptions {
        tls: Some(ChassisTls::new(move |name| issuer.client_tls(name))),
        ..FarmOptions::default()
    };
    let farm = Farm::start(&chassis_sb, 3, "rbac", options).await.unwrap();
    farm.wait_registered(WAIT).await.unwrap();

    // A chassis whose certificate names another chassis: RBAC refuses its rows, and the
    // emulator says so (an emulated write RBAC refuses shows up the same way).
    let policy = ConnectPolicy {
        tls: Some(pki.client_tls("rbac-1").unwrap()),
        ..ConnectPolicy::default()
    };
    let impostor = EmulatedChassis::start(&chassis_sb, ChassisSpec::new("impostor", "198.19.0.1"), policy).unwrap();
    let refused = impostor
        .wait_registered(Duration::from_secs(10))
        .await
        .expect_err("RBAC refuses a Chassis row whose name is not the certificate's CN");
    assert!(refused.to_string().contains("permission error"), "{refused}");
    assert!(impostor.status().errors > 0);
    impostor.stop(false).await.unwrap();

    // RBAC is in force on that connection: rbac-1 may change its own row, not rbac-2's.
    let client = Client::connect(
        ClientOptions::new(&chassis_sb)
            .unwrap()
            .tls(pki.client_tls("rbac-1").unwrap()),
    )
    .await
    .unwrap();
    touch_chassis(&client, "rbac-1").await.unwrap();
    match touch_chassis(&client, "rbac-2").await {
        Err(Error::Transaction {
            error: OperationError::Other { error, .. },
            ..
        }) => assert_eq!(error, "permission error"),
        other => panic!("expected RBAC's permission error, got {other:?}"),
    }
    client.close().await;

    // The rightful chassis saw no refusal at all.
    let status = farm.status();
    assert_eq!((status.registered, status.errors), (3, 0), "{status:?}");
    farm.stop(true).await.unwrap();
    lab.down().unwrap();
    assert!(!Path::new(&dir.path().join("lab/lab.json")).exists());
}
