//! A real ovsdb-server converts a database under a live monitor (`ovsdb-client convert`): it
//! sends `monitor_canceled`, and the client restarts the monitor on a new connection, so the
//! replica keeps following the database.

use std::process::Command;

use ovsdb::{ConnectionEvent, MonitorMethod, MonitorRequest, TableMonitor, Value};
use test_support::OvsdbServer;

mod common;
use common::{add_switch, connect, name_is, DB, NB, WAIT};

#[tokio::test]
async fn server_convert_restarts_cancelled_monitors() {
    test_support::require_ovn!(
        "server_convert_restarts_cancelled_monitors",
        ["ovsdb-server", "ovsdb-tool", "ovsdb-client", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_convert", NB);
    let client = connect(&server.remote()).await;
    let mut events = client.connection_events();
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::CondSince));
    add_switch(&client, "before").await;
    replica
        .wait_for("Logical_Switch", name_is("before"), WAIT)
        .await
        .unwrap();

    let out = Command::new("ovsdb-client")
        .args(["convert", &server.remote(), NB])
        .output()
        .expect("run ovsdb-client convert");
    assert!(
        out.status.success(),
        "ovsdb-client convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The cancellation closes the connection with a reason that says why.
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(ConnectionEvent::Disconnected { reason, .. }) = events.recv().await {
                return reason;
            }
        }
    })
    .await
    .expect("a disconnect after the conversion");
    assert!(reason.contains("cancelled monitor"), "{reason}");

    // The monitor runs again: rows written after the conversion reach the replica, and the
    // rows from before are still there.
    add_switch(&client, "after").await;
    replica
        .wait_for("Logical_Switch", name_is("after"), WAIT)
        .await
        .unwrap();
    let names: Vec<String> = replica
        .find("Logical_Switch", |_| true)
        .into_iter()
        .filter_map(|(_, r)| r.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"before".to_owned()));
}
