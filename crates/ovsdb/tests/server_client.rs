//! `ovsdb::Client` against a real standalone ovsdb-server serving the OVN Northbound schema:
//! every RPC, transaction errors, monitors and their replicas, conditions, filtering, and what
//! happens to monitors and transactions when the server goes away.

use std::sync::Arc;
use std::time::Duration;

use ovsdb::{
    Client, ClientOptions, Condition, ConnectionEvent, Error, MonitorMethod, MonitorRequest, Mutation, OperationError,
    Row, RowEvent, TableMonitor, Transaction, Value,
};
use serde_json::json;
use test_support::OvsdbServer;

mod common;
use common::{add_switch, blocked_until_gate, connect, name_is, options, select_all, DB, NB, WAIT};

fn without_version(
    mut rows: std::collections::BTreeMap<ovsdb::Uuid, Row>,
) -> std::collections::BTreeMap<ovsdb::Uuid, Row> {
    for row in rows.values_mut() {
        row.remove("_version");
    }
    rows
}

#[tokio::test]
async fn server_client_rpcs_over_unix_and_tcp() {
    test_support::require_ovn!(
        "server_client_rpcs_over_unix_and_tcp",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_rpcs", NB);
    for remote in [server.remote(), server.tcp_remote()] {
        let client = connect(&remote).await;
        assert_eq!(client.current_remote().unwrap().to_string(), remote);
        let dbs = client.list_dbs().await.unwrap();
        assert!(
            dbs.contains(&DB.to_owned()) && dbs.contains(&"_Server".to_owned()),
            "{dbs:?}"
        );
        let schema = client.get_schema(DB).await.unwrap();
        assert_eq!(schema.name, DB);
        assert!(schema.tables.contains_key("Logical_Switch_Port"));
        client.echo().await.unwrap();
        assert_eq!(client.call("echo", json!(["x", 1])).await.unwrap(), json!(["x", 1]));
        match client.call("no_such_method", json!([])).await {
            Err(Error::Rpc { error, .. }) => assert_eq!(error, "unknown method"),
            r => panic!("{r:?}"),
        }
        match client.get_schema("Nope").await {
            Err(Error::Rpc { error, .. }) => assert_eq!(error, "unknown database"),
            r => panic!("{r:?}"),
        }
        client.close().await;
        assert!(matches!(client.echo().await, Err(Error::Disconnected { .. })));
    }
}

#[tokio::test]
async fn server_client_many_pipelined_requests() {
    test_support::require_ovn!(
        "server_client_many_pipelined_requests",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_pipelined", NB);
    let client = connect(&server.remote()).await;
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { add_switch(&c, &format!("ls{i}")).await })
        })
        .collect();
    let mut uuids = Vec::new();
    for t in tasks {
        uuids.push(t.await.unwrap());
    }
    // Each reply comes after the update it caused, so the replica is already complete.
    assert_eq!(replica.len("Logical_Switch"), 500);
    for u in uuids {
        assert!(replica.get("Logical_Switch", u).is_some());
    }
}

#[tokio::test]
async fn server_client_connect_errors_are_clear() {
    test_support::require_ovn!("server_client_connect_errors_are_clear", ["ovsdb-server"]);
    let dir = test_support::TempDir::new("server_client_connect_errors");
    let missing = format!("unix:{}/nothing.sock", dir.path().display());
    let opts = options(&missing).connect_timeout(Duration::from_millis(300));
    match Client::connect(opts).await {
        Err(Error::Connect { remote, .. }) => assert_eq!(remote, missing),
        r => panic!("{r:?}"),
    }
    let ssl = ClientOptions::new("ssl:127.0.0.1:6641").unwrap();
    match Client::connect(ssl).await {
        Err(e @ Error::TlsConfig { .. }) => assert!(e.to_string().contains("no private key, certificate"), "{e}"),
        r => panic!("{r:?}"),
    }
    let leaderless = options(&missing).leader_only(true);
    assert!(matches!(
        Client::connect(leaderless).await,
        Err(Error::InvalidRemote { .. })
    ));
}

#[tokio::test]
async fn server_client_ipv6_tcp_remote() {
    test_support::require_ovn!(
        "server_client_ipv6_tcp_remote",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        test_support::skip("server_client_ipv6_tcp_remote", "no IPv6 loopback in this environment");
        return;
    }
    let server = OvsdbServer::standalone("server_client_ipv6", NB);
    let port = test_support::free_tcp_ports(1)[0];
    server
        .appctl(&["ovsdb-server/add-remote", &format!("ptcp:{port}:[::1]")])
        .unwrap();
    let client = connect(&format!("tcp:[::1]:{port}")).await;
    assert!(client.list_dbs().await.unwrap().contains(&DB.to_owned()));
}

#[tokio::test]
async fn server_client_transaction_results_and_errors() {
    test_support::require_ovn!(
        "server_client_transaction_results_and_errors",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_txn", NB);
    let client = connect(&server.remote()).await;

    let sw = add_switch(&client, "sw0").await;
    let mut txn = Transaction::new(DB);
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        vec![Mutation::insert("external_ids", Value::string_map([("k", "v")]))],
    );
    txn.select(
        "Logical_Switch",
        vec![Condition::eq("name", "sw0")],
        Some(vec!["external_ids".into()]),
    );
    let r = client.transact(txn).await.unwrap();
    assert_eq!(r.results[0].count, Some(1));
    let rows = r.results[1].rows.as_ref().unwrap();
    assert_eq!(rows[0].get("external_ids").unwrap().map_get_str("k"), Some("v"));

    // An operation that fails: its index, summary, error and details come back.
    let mut txn = Transaction::new(DB);
    txn.comment("first");
    txn.verify(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        vec!["name".into()],
        vec![Row::new().with("name", "not-sw0")],
    );
    match client.transact(txn).await {
        Err(Error::Transaction {
            op_index,
            op_summary,
            error: OperationError::TimedOut(_),
            database,
        }) => {
            assert_eq!(
                (op_index, op_summary.as_str(), database.as_str()),
                (1, "wait on Logical_Switch", DB)
            );
        }
        r => panic!("{r:?}"),
    }

    // A commit-time failure is reported after the last operation.
    let mut txn = Transaction::new(DB);
    txn.insert(
        "Logical_Switch",
        Row::new()
            .with("name", "dangling")
            .with("ports", Value::uuid(ovsdb::Uuid::new_v4())),
    );
    match client.transact(txn).await {
        Err(Error::Transaction { op_index, error, .. }) => {
            assert_eq!(op_index, 1);
            assert!(
                matches!(error, OperationError::ReferentialIntegrityViolation(Some(_))),
                "{error:?}"
            );
        }
        r => panic!("{r:?}"),
    }

    // Schema checks happen before sending (when the schema engineer's checks are in).
    let mut txn = Transaction::new(DB);
    txn.insert("Logical_Swtich", Row::new());
    assert!(matches!(client.transact(txn).await, Err(Error::Schema(_))));
}

#[tokio::test]
async fn server_client_replica_follows_inserts_modifies_and_deletes() {
    test_support::require_ovn!(
        "server_client_replica_follows_inserts_modifies_and_deletes",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_replica", NB);
    let client = connect(&server.remote()).await;
    let pre = add_switch(&client, "before").await;
    let replica = client
        .monitor(
            DB,
            MonitorRequest::new()
                .table("Logical_Switch", TableMonitor::all())
                .table("Logical_Switch_Port", TableMonitor::all()),
        )
        .await
        .unwrap();
    assert_eq!(client.monitor_method(), Some(MonitorMethod::CondSince));
    assert_eq!(replica.method(), Some(MonitorMethod::CondSince));
    // A standalone server keeps no transaction history: monitor_cond_since's id is all zeros,
    // which makes a resume after a reconnect start from the full contents.
    assert_eq!(replica.last_txn_id(), Some(ovsdb::Uuid(uuid::Uuid::nil())));
    assert_eq!(replica.get("Logical_Switch", pre).unwrap().uuid(), Some(pre));
    let mut events = replica.subscribe();

    let sw = add_switch(&client, "sw1").await;
    let (u, row, _at) = replica.wait_for("Logical_Switch", name_is("sw1"), WAIT).await.unwrap();
    assert_eq!((u, row.get("name").and_then(Value::as_str)), (sw, Some("sw1")));

    // Set, map and scalar changes: update2 diffs applied to the old row.
    let mut txn = Transaction::new(DB);
    let lsp = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "p1")
            .with("addresses", Value::set(["00:00:00:00:00:01 10.0.0.1"])),
    );
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        vec![
            Mutation::insert("ports", lsp.clone()),
            Mutation::insert("external_ids", Value::string_map([("a", "1"), ("b", "2")])),
        ],
    );
    client.transact(txn).await.unwrap();
    let mut txn = Transaction::new(DB);
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        vec![Mutation::delete("external_ids", Value::set(["a"]))],
    );
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        vec![Mutation::insert("external_ids", Value::string_map([("c", "3")]))],
    );
    txn.update(
        "Logical_Switch_Port",
        vec![Condition::eq("name", "p1")],
        Row::new()
            .with("addresses", Value::set(["00:00:00:00:00:02 10.0.0.2", "router"]))
            .with("enabled", Value::set([true])),
    );
    client.transact(txn).await.unwrap();
    let mut txn = Transaction::new(DB);
    txn.update(
        "Logical_Switch_Port",
        vec![Condition::eq("name", "p1")],
        Row::new().with("addresses", Value::set(["router"])),
    );
    txn.update(
        "Logical_Switch",
        vec![Condition::uuid(sw)],
        Row::new().with("other_config", Value::string_map([("x", "y")])),
    );
    client.transact(txn).await.unwrap();

    // The replica equals what the server has, value for value.
    let mut truth = select_all(&client, "Logical_Switch").await;
    truth.extend(select_all(&client, "Logical_Switch_Port").await);
    let mut mine = replica.snapshot()["Logical_Switch"].clone();
    mine.extend(replica.snapshot()["Logical_Switch_Port"].clone());
    assert_eq!(without_version(mine), truth);

    let mut txn = Transaction::new(DB);
    txn.delete("Logical_Switch", vec![Condition::uuid(sw)]);
    client.transact(txn).await.unwrap();
    assert!(replica.get("Logical_Switch", sw).is_none());
    assert!(
        replica.find("Logical_Switch_Port", |_| true).is_empty(),
        "unreferenced port is garbage-collected"
    );

    // The events, in order, with old and new rows.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(matches!(&seen[0], RowEvent::Insert { uuid, .. } if *uuid == sw));
    let modify = seen
        .iter()
        .find_map(|e| match e {
            RowEvent::Modify { table, old, new, .. } if table == "Logical_Switch" => Some((old, new)),
            _ => None,
        })
        .unwrap();
    assert!(modify.0.get("ports").unwrap().is_empty());
    assert_eq!(modify.1.get("ports").unwrap().atoms().len(), 1);
    assert!(seen
        .iter()
        .any(|e| matches!(e, RowEvent::Delete { uuid, old, .. } if *uuid == sw && old.get("name").is_some())));
    assert!(seen.iter().all(|e| !matches!(e, RowEvent::Resynced { .. })));

    // wait_for times out cleanly.
    match replica
        .wait_for("Logical_Switch", name_is("never"), Duration::from_millis(50))
        .await
    {
        Err(Error::Timeout { .. }) => {}
        r => panic!("{r:?}"),
    }
    replica.cancel().await.unwrap();
    add_switch(&client, "after-cancel").await;
    assert!(replica.find("Logical_Switch", name_is("after-cancel")).is_empty());
}

#[tokio::test]
async fn server_client_conditions_columns_and_changes() {
    test_support::require_ovn!(
        "server_client_conditions_columns_and_changes",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_conditions", NB);
    let client = connect(&server.remote()).await;
    for name in ["a", "b", "c"] {
        add_switch(&client, name).await;
    }
    let replica = client
        .monitor(
            DB,
            MonitorRequest::new().table(
                "Logical_Switch",
                TableMonitor::all()
                    .columns(["name"])
                    .conditions(vec![Condition::eq("name", "a"), Condition::eq("name", "b")]),
            ),
        )
        .await
        .unwrap();
    let names = |r: &ovsdb::Replica| {
        let mut v: Vec<String> = r
            .find("Logical_Switch", |_| true)
            .into_iter()
            .map(|(_, row)| row.get("name").unwrap().as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&replica), ["a", "b"]);
    let (_, row, _) = replica.wait_for("Logical_Switch", name_is("a"), WAIT).await.unwrap();
    assert_eq!(row.column_names().collect::<Vec<_>>(), ["_uuid", "name"]);

    replica
        .change_conditions("Logical_Switch", vec![Condition::eq("name", "c")])
        .await
        .unwrap();
    replica.wait_for("Logical_Switch", name_is("c"), WAIT).await.unwrap();
    client.echo().await.unwrap();
    assert_eq!(names(&replica), ["c"]);

    replica
        .change_conditions("Logical_Switch", vec![Condition::Constant(false)])
        .await
        .unwrap();
    client.echo().await.unwrap();
    assert!(names(&replica).is_empty());
    assert!(matches!(
        replica.change_conditions("Nope", vec![]).await,
        Err(Error::Schema(_))
    ));
}

#[tokio::test]
async fn server_client_conditions_of_several_tables_change_together() {
    test_support::require_ovn!(
        "server_client_conditions_of_several_tables_change_together",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_conditions_of", NB);
    let client = connect(&server.remote()).await;
    add_switch(&client, "ls1").await;
    let mut txn = Transaction::new(DB);
    txn.insert("Logical_Router", Row::new().with("name", "lr1"));
    client.transact(txn).await.unwrap();
    let none = || {
        TableMonitor::all()
            .columns(["name"])
            .conditions(vec![Condition::Constant(false)])
    };
    let replica = client
        .monitor(
            DB,
            MonitorRequest::new()
                .table("Logical_Switch", none())
                .table("Logical_Router", none()),
        )
        .await
        .unwrap();
    assert_eq!(replica.len("Logical_Switch") + replica.len("Logical_Router"), 0);
    replica
        .change_conditions_of(vec![
            ("Logical_Switch".into(), vec![Condition::eq("name", "ls1")]),
            ("Logical_Router".into(), vec![Condition::Constant(true)]),
        ])
        .await
        .unwrap();
    replica.wait_for("Logical_Switch", name_is("ls1"), WAIT).await.unwrap();
    replica.wait_for("Logical_Router", name_is("lr1"), WAIT).await.unwrap();
    // A table outside the monitor fails the whole change before anything is sent.
    assert!(matches!(
        replica
            .change_conditions_of(vec![
                ("Logical_Switch".into(), vec![Condition::Constant(false)]),
                ("Nope".into(), vec![]),
            ])
            .await,
        Err(Error::Schema(_))
    ));
    client.echo().await.unwrap();
    assert_eq!(replica.len("Logical_Switch"), 1);
    replica.change_conditions_of(vec![]).await.unwrap();
}

#[tokio::test]
async fn server_client_filtered_replica_keeps_only_accepted_rows() {
    test_support::require_ovn!(
        "server_client_filtered_replica_keeps_only_accepted_rows",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_filtered", NB);
    let client = connect(&server.remote()).await;
    add_switch(&client, "theirs").await;
    let replica = client
        .monitor_filtered(
            DB,
            MonitorRequest::new().table("Logical_Switch", TableMonitor::all()),
            Arc::new(OwnedByMe),
        )
        .await
        .unwrap();
    assert_eq!(replica.len("Logical_Switch"), 0);
    let mut txn = Transaction::new(DB);
    txn.mutate(
        "Logical_Switch",
        vec![Condition::eq("name", "theirs")],
        vec![Mutation::insert("external_ids", Value::string_map([("owner", "me")]))],
    );
    client.transact(txn).await.unwrap();
    replica
        .wait_for("Logical_Switch", name_is("theirs"), WAIT)
        .await
        .unwrap();
    let mut txn = Transaction::new(DB);
    txn.update(
        "Logical_Switch",
        vec![Condition::eq("name", "theirs")],
        Row::new().with("external_ids", Value::empty_map()),
    );
    client.transact(txn).await.unwrap();
    assert_eq!(replica.len("Logical_Switch"), 0);
    // Conditions combine with a filter (see server_filtered.rs for the details).
    let conditional = MonitorRequest::new().table(
        "Logical_Switch",
        TableMonitor::all().conditions(vec![Condition::Constant(true)]),
    );
    let conditional = client
        .monitor_filtered(DB, conditional, Arc::new(OwnedByMe))
        .await
        .unwrap();
    assert_eq!(conditional.method(), Some(MonitorMethod::CondSince));
}

/// Keeps rows whose `external_ids:owner` is "me"; a change of `external_ids` may make a row
/// it does not hold interesting.
struct OwnedByMe;

impl ovsdb::RowFilter for OwnedByMe {
    fn keeps(&self, _table: &str, row: &Row) -> bool {
        row.get("external_ids").and_then(|v| v.map_get_str("owner")) == Some("me")
    }
    fn may_keep_after(&self, _table: &str, _uuid: ovsdb::Uuid, diff: &Row) -> bool {
        diff.get("external_ids").is_some()
    }
}

#[tokio::test]
async fn server_client_lost_reply_is_outcome_unknown_and_never_resent() {
    test_support::require_ovn!(
        "server_client_lost_reply_is_outcome_unknown_and_never_resent",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_client_lost_reply", NB);
    let client = connect(&server.remote()).await;
    let mut conn_events = client.connection_events();

    let blocked = blocked_until_gate();
    client.get_schema(DB).await.unwrap();
    let pending = client.transact(blocked);
    tokio::pin!(pending);
    // One poll puts the request on the wire (the schema is cached, so nothing comes first).
    tokio::select! {
        biased;
        r = &mut pending => panic!("the blocked transaction completed: {r:?}"),
        _ = std::future::ready(()) => {}
    }
    // The echo, sent after it, is answered while the transaction waits: it reached the server.
    client.echo().await.unwrap();
    server.kill();
    match pending.await {
        Err(Error::OutcomeUnknown { database, .. }) => assert_eq!(database, DB),
        r => panic!("expected OutcomeUnknown, got {r:?}"),
    }
    server.restart();
    // Requests made while disconnected wait for the reconnect.
    add_switch(&client, "gate").await;
    let mut saw = Vec::new();
    while let Ok(e) = conn_events.try_recv() {
        saw.push(e);
    }
    assert!(matches!(saw[0], ConnectionEvent::Disconnected { .. }), "{saw:?}");
    assert!(matches!(saw.last(), Some(ConnectionEvent::Connected { .. })), "{saw:?}");
    // Had the client re-sent the blocked transaction, the gate would have released it by the
    // time the gate's own reply arrived.
    client.echo().await.unwrap();
    let all = select_all(&client, "Logical_Switch").await;
    assert!(
        all.values()
            .all(|r| r.get("name").and_then(Value::as_str) != Some("after-gate")),
        "the transaction with the lost reply was re-sent"
    );
}

#[tokio::test]
async fn server_client_reconnect_resyncs_monitor_without_duplicates() {
    test_support::require_ovn!(
        "server_client_reconnect_resyncs_monitor_without_duplicates",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_client_reconnect", NB);
    let client = connect(&server.remote()).await;
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    let kept = add_switch(&client, "kept").await;
    let doomed = add_switch(&client, "doomed").await;
    let mut events = replica.subscribe();

    server.stop();
    // Changed while the client is away (offline, on the file): it must learn each change once.
    let offline = json!([DB,
        {"op": "delete", "table": "Logical_Switch", "where": [["_uuid", "==", ["uuid", doomed.to_string()]]]},
        {"op": "insert", "table": "Logical_Switch", "row": {"name": "fresh"}}]);
    let out = std::process::Command::new(test_support::find_binary("ovsdb-tool").unwrap())
        .arg("transact")
        .arg(server.db_path())
        .arg(offline.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.restart();
    let (fresh, _, _) = replica
        .wait_for("Logical_Switch", name_is("fresh"), WAIT)
        .await
        .unwrap();
    client.echo().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let inserts: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            RowEvent::Insert { uuid, .. } => Some(*uuid),
            _ => None,
        })
        .collect();
    assert_eq!(inserts, vec![fresh], "only the new row is inserted: {seen:?}");
    assert!(seen
        .iter()
        .any(|e| matches!(e, RowEvent::Delete { uuid, .. } if *uuid == doomed)));
    assert!(seen
        .iter()
        .all(|e| !matches!(e, RowEvent::Delete { uuid, .. } if *uuid == kept)));
    assert_eq!(
        without_version(replica.snapshot()["Logical_Switch"].clone()),
        select_all(&client, "Logical_Switch").await
    );
}

/// Resumes a SIGSTOPped process when dropped, so a failing test never leaves it frozen.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Self {
        signal(pid, "-STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test]
async fn server_client_inactivity_probe_drops_a_hung_server() {
    test_support::require_ovn!(
        "server_client_inactivity_probe_drops_a_hung_server",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_probe", NB);
    let client = Client::connect(options(&server.remote()).inactivity_probe(Some(Duration::from_millis(200))))
        .await
        .unwrap();
    let mut events = client.connection_events();
    let frozen = Frozen::new(server.pid());
    let reason = loop {
        match tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap() {
            ConnectionEvent::Disconnected { reason, .. } => break reason,
            ConnectionEvent::Connected { .. } => {}
        }
    };
    assert!(reason.contains("inactivity probe"), "{reason}");
    drop(frozen);
    client.echo().await.unwrap();
}

#[tokio::test]
async fn server_client_requests_while_down_fail_clearly() {
    test_support::require_ovn!(
        "server_client_requests_while_down_fail_clearly",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_client_down", NB);
    let waiting = Client::connect(options(&server.remote()).connect_timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    let no_reconnect = Client::connect(options(&server.remote()).reconnect(false))
        .await
        .unwrap();
    let mut events = no_reconnect.connection_events();
    server.kill();
    tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    match waiting.echo().await {
        Err(e @ Error::Timeout { .. }) => assert!(e.to_string().contains("not sent"), "{e}"),
        r => panic!("expected Timeout, got {r:?}"),
    }
    assert!(matches!(no_reconnect.echo().await, Err(Error::Disconnected { .. })));
    assert!(no_reconnect.current_remote().is_none());
}

#[tokio::test]
async fn server_client_dropping_a_replica_ends_its_monitor() {
    test_support::require_ovn!(
        "server_client_dropping_a_replica_ends_its_monitor",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_drop_replica", NB);
    let client = connect(&server.remote()).await;
    let mut conn_events = client.connection_events();
    let request = MonitorRequest::new().table("Logical_Switch", TableMonitor::all());
    let kept = client.monitor(DB, request.clone()).await.unwrap();
    let dropped = client.monitor(DB, request).await.unwrap();
    let events = dropped.subscribe();
    drop(dropped);
    // The next update for the dropped monitor makes the client cancel it; the other goes on.
    add_switch(&client, "one").await;
    add_switch(&client, "two").await;
    kept.wait_for("Logical_Switch", name_is("two"), WAIT).await.unwrap();
    drop(events);
    client.echo().await.unwrap();
    assert!(conn_events.try_recv().is_err(), "the connection was not disturbed");
    assert_eq!(kept.len("Logical_Switch"), 2);
    // Identical requests share one server-side monitor, which goes away only when both are
    // cancelled: `monitors:0` after cancelling the kept one proves the dropped one was too.
    let memory = server.appctl(&["memory/show"]).unwrap();
    assert!(memory.contains("monitors:1"), "{memory}");
    kept.cancel().await.unwrap();
    client.echo().await.unwrap();
    let memory = server.appctl(&["memory/show"]).unwrap();
    assert!(memory.contains("monitors:0"), "{memory}");
}

#[tokio::test]
async fn server_client_busy_server_owing_a_reply_is_not_dropped() {
    test_support::require_ovn!(
        "server_client_busy_server_owing_a_reply_is_not_dropped",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_client_busy", NB);
    let client = Client::connect(options(&server.remote()).inactivity_probe(Some(Duration::from_millis(100))))
        .await
        .unwrap();
    let mut events = client.connection_events();
    let frozen = Frozen::new(server.pid());
    // The request is owed a reply while the server is stopped (as if computing something big),
    // for many probe intervals but well within the grace.
    let reply = client.echo();
    tokio::pin!(reply);
    tokio::select! {
        biased;
        r = &mut reply => panic!("answered while frozen: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
    }
    drop(frozen);
    reply.await.unwrap();
    assert!(events.try_recv().is_err(), "the connection was dropped");
}
