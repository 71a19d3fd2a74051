//! Helpers shared by the `ovsdb` integration tests (each test file is its own crate and uses
//! only some of them, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use ovsdb::{Client, ClientOptions, Condition, Operation, Row, Transaction, Uuid, Value};

/// The schema the standalone test servers serve.
pub const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
pub const DB: &str = "OVN_Northbound";
/// How long a test waits for anything the server should do at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// Client options for tests: a patient connect and a quick reconnect.
pub fn options(remote: &str) -> ClientOptions {
    ClientOptions::new(remote)
        .unwrap()
        .connect_timeout(WAIT)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

pub async fn connect(remote: &str) -> Client {
    Client::connect(options(remote)).await.expect("connect")
}

/// Inserts a `Logical_Switch` named `name` and returns its UUID.
pub async fn add_switch(client: &Client, name: &str) -> Uuid {
    let mut txn = Transaction::new(DB);
    let ls = txn.insert("Logical_Switch", Row::new().with("name", name));
    let r = client.transact(txn).await.expect("insert switch");
    r.inserted(&ls).expect("inserted uuid")
}

pub fn name_is(name: &'static str) -> impl Fn(&Row) -> bool {
    move |r: &Row| r.get("name").and_then(Value::as_str) == Some(name)
}

/// Every row of `table`, read with a `select` (the server's truth), keyed by uuid, with
/// `_version` dropped (monitors never carry it).
pub async fn select_all(client: &Client, table: &str) -> BTreeMap<Uuid, Row> {
    let mut txn = Transaction::new(DB);
    txn.select(table, vec![], None);
    let r = client.transact(txn).await.expect("select");
    r.results[0]
        .rows
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut row| {
            row.remove("_version");
            (row.uuid().unwrap(), row)
        })
        .collect()
}

/// A transaction that blocks server-side until a switch named "gate" exists, then inserts
/// "after-gate": a request whose reply can be kept from arriving.
pub fn blocked_until_gate() -> Transaction {
    let mut blocked = Transaction::new(DB);
    blocked.push(Operation::Wait {
        table: "Logical_Switch".into(),
        conditions: vec![Condition::eq("name", "gate")],
        columns: vec!["name".into()],
        until_equal: true,
        rows: vec![Row::new().with("name", "gate")],
        timeout_ms: Some(600_000),
    });
    blocked.insert("Logical_Switch", Row::new().with("name", "after-gate"));
    blocked
}
