//! Optional columns (`min 0, max 1`) are sets on the wire: update2 sends the symmetric
//! difference when one value replaces another (`[false]` → `[true]` arrives as
//! `["set",[false,true]]`). Every replica flavour must end up with the server's value.

use std::sync::Arc;
use std::time::Duration;

use ovsdb::{Client, ClientOptions, Condition, MonitorRequest, Row, TableMonitor, Transaction, Value};
use test_support::OvsdbServer;

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const DB: &str = "OVN_Northbound";

async fn set_up(client: &Client, value: Value) {
    let mut txn = Transaction::new(DB);
    txn.update(
        "Logical_Switch_Port",
        vec![Condition::eq("name", "p1")],
        Row::new().with("up", value),
    );
    client.transact(txn).await.expect("update up");
}

#[tokio::test]
async fn server_optional_bool_transitions_match_the_server() {
    test_support::require_ovn!(
        "server_optional_bool_transitions_match_the_server",
        ["ovsdb-server", "ovsdb-tool"]
    );
    let server = OvsdbServer::standalone("server_optional_column", NB);
    let options = ClientOptions::new(&server.remote())
        .unwrap()
        .connect_timeout(Duration::from_secs(10));
    let client = Client::connect(options).await.expect("connect");

    let all = client
        .monitor(
            DB,
            MonitorRequest::new().table("Logical_Switch_Port", TableMonitor::all()),
        )
        .await
        .expect("monitor all columns");
    let some_columns = client
        .monitor(
            DB,
            MonitorRequest::new().table("Logical_Switch_Port", TableMonitor::all().columns(["name", "up"])),
        )
        .await
        .expect("monitor two columns");
    let filtered = client
        .monitor_filtered(
            DB,
            MonitorRequest::new().table("Logical_Switch_Port", TableMonitor::all()),
            Arc::new(|_: &str, _: &Row| true),
        )
        .await
        .expect("filtered monitor");

    // Logical_Switch_Port is not a root table: it lives only while a switch refers to it.
    let mut txn = Transaction::new(DB);
    let port = txn.insert("Logical_Switch_Port", Row::new().with("name", "p1"));
    txn.insert("Logical_Switch", Row::new().with("name", "s1").with("ports", port));
    client.transact(txn).await.expect("insert switch and port");

    let steps = [
        Value::from(false),
        Value::from(true),
        Value::empty_set(),
        Value::from(true),
        Value::from(false),
    ];
    for value in steps {
        let expected = value.atoms().to_vec();
        set_up(&client, value).await;
        for (label, replica) in [
            ("all columns", &all),
            ("two columns", &some_columns),
            ("filtered", &filtered),
        ] {
            let want = expected.clone();
            let got = replica
                .wait_for(
                    "Logical_Switch_Port",
                    move |r| r.get("up").map(|v| v.atoms().to_vec()).unwrap_or_default() == want,
                    Duration::from_secs(5),
                )
                .await;
            let now = replica.find("Logical_Switch_Port", |_| true);
            assert!(got.is_ok(), "{label}: expected up = {expected:?}, replica has {now:?}");
        }
    }
}
