//! `Client::transact_many` and the pipelining machinery under it (coalesced reads, buffers
//! that grow for a big message and shrink back) against a real standalone ovsdb-server:
//! outcomes in request order, per-transaction errors kept per transaction, replies still
//! processed after the updates they caused, and a connection lost mid-batch failing only the
//! unanswered transactions with `OutcomeUnknown`, never re-sent.

use ovsdb::{
    Client, Condition, Error, MonitorRequest, Operation, OperationError, Row, TableMonitor, Transaction, Value,
};
use test_support::OvsdbServer;

mod common;
use common::{blocked_until_gate, connect, DB, NB, WAIT};

fn insert_switch(name: &str) -> Transaction {
    let mut txn = Transaction::new(DB);
    txn.insert("Logical_Switch", Row::new().with("name", name));
    txn
}

fn name_of(row: &Row) -> Option<&str> {
    row.get("name").and_then(Value::as_str)
}

/// Names of every Logical_Switch, read with a `select` (the server's truth).
async fn switch_names(client: &Client) -> Vec<String> {
    let mut txn = Transaction::new(DB);
    txn.select("Logical_Switch", vec![], Some(vec!["name".into()]));
    let r = client.transact(txn).await.expect("select");
    let mut names: Vec<String> = r.results[0]
        .rows
        .iter()
        .flatten()
        .filter_map(|row| name_of(row).map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn server_pipeline_batch_outcomes_in_order_with_errors_per_transaction() {
    test_support::require_ovn!(
        "server_pipeline_batch_outcomes_in_order_with_errors_per_transaction",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_pipeline_order", NB);
    for (round, remote) in [server.remote(), server.tcp_remote()].into_iter().enumerate() {
        let client = connect(&remote).await;
        assert!(client.transact_many(Vec::new()).await.is_empty());

        let mut txns = Vec::new();
        for i in 0..6 {
            txns.push(insert_switch(&format!("r{round}-s{i}")));
        }
        // Two address sets with one name: the server refuses the commit (Address_Set.name is an
        // index of a root table).
        let mut duplicate = Transaction::new(DB);
        for _ in 0..2 {
            duplicate.insert("Address_Set", Row::new().with("name", format!("r{round}-dup")));
        }
        txns.insert(2, duplicate);
        // Caught by the schema check: never sent.
        let mut unknown = Transaction::new(DB);
        unknown.insert("No_Such_Table", Row::new());
        txns.insert(4, unknown);
        let inserted: Vec<Option<Value>> = txns
            .iter()
            .map(|t| match t.operations().first() {
                Some(Operation::Insert { uuid_name: Some(n), .. }) => Some(Value::named_uuid(n.clone())),
                _ => None,
            })
            .collect();

        let outcomes = client.transact_many(txns).await;
        assert_eq!(outcomes.len(), 8);
        match &outcomes[2] {
            Err(Error::Transaction { error, .. }) => {
                assert!(matches!(error, OperationError::ConstraintViolation(_)), "{error:?}")
            }
            r => panic!("expected a constraint violation, got {r:?}"),
        }
        assert!(matches!(&outcomes[4], Err(Error::Schema(_))), "{:?}", outcomes[4]);
        let mut expected_names = Vec::new();
        let mut uuids = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate().filter(|(i, _)| *i != 2 && *i != 4) {
            let result = outcome.as_ref().unwrap_or_else(|e| panic!("transaction {i}: {e}"));
            uuids.push(result.inserted(inserted[i].as_ref().unwrap()).expect("inserted uuid"));
            expected_names.push(format!(
                "r{round}-s{}",
                if i < 2 {
                    i
                } else if i < 4 {
                    i - 1
                } else {
                    i - 2
                }
            ));
        }
        // In order: the i-th outcome names the i-th switch.
        for (uuid, name) in uuids.iter().zip(&expected_names) {
            let mut txn = Transaction::new(DB);
            txn.select(
                "Logical_Switch",
                vec![Condition::uuid(*uuid)],
                Some(vec!["name".into()]),
            );
            let rows = client.transact(txn).await.unwrap().results[0].rows.clone().unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(name_of(&rows[0]), Some(name.as_str()));
        }
        let names = switch_names(&client).await;
        for name in &expected_names {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        client.close().await;
    }
}

#[tokio::test]
async fn server_pipeline_many_batches_in_flight_with_a_monitor_and_a_big_message() {
    test_support::require_ovn!(
        "server_pipeline_many_batches_in_flight_with_a_monitor_and_a_big_message",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_pipeline_many", NB);
    let client = connect(&server.remote()).await;
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();

    // Eight callers keep 8 x 40 transactions in flight: enough owed replies for the reader to
    // coalesce its reads. Single `transact`s run alongside.
    const CALLERS: usize = 8;
    const BATCHES: usize = 5;
    const PER_BATCH: usize = 40;
    let mut callers = tokio::task::JoinSet::new();
    for c in 0..CALLERS {
        let (client, replica) = (client.clone(), replica.clone());
        callers.spawn(async move {
            for b in 0..BATCHES {
                let txns: Vec<Transaction> = (0..PER_BATCH)
                    .map(|i| insert_switch(&format!("c{c}-b{b}-{i}")))
                    .collect();
                let named: Vec<Value> = txns
                    .iter()
                    .map(|t| match &t.operations()[0] {
                        Operation::Insert { uuid_name: Some(n), .. } => Value::named_uuid(n.clone()),
                        op => panic!("{op:?}"),
                    })
                    .collect();
                for (i, outcome) in client.transact_many(txns).await.into_iter().enumerate() {
                    let uuid = outcome.expect("insert").inserted(&named[i]).expect("uuid");
                    // A reply is processed after the update it caused.
                    let row = replica
                        .get("Logical_Switch", uuid)
                        .expect("row in the replica with its reply");
                    assert_eq!(name_of(&row), Some(format!("c{c}-b{b}-{i}").as_str()));
                }
                client
                    .transact(insert_switch(&format!("c{c}-single{b}")))
                    .await
                    .expect("single insert");
            }
        });
    }
    while let Some(joined) = callers.join_next().await {
        joined.expect("caller task");
    }
    let total = CALLERS * BATCHES * (PER_BATCH + 1);
    assert_eq!(replica.len("Logical_Switch"), total);
    assert_eq!(switch_names(&client).await.len(), total);

    // One reply far bigger than the read buffer, then small traffic again on the same connection.
    let mut txn = Transaction::new(DB);
    txn.select("Logical_Switch", vec![], None);
    let all = client.transact(txn).await.unwrap();
    assert_eq!(all.results[0].rows.as_ref().map(Vec::len), Some(total));
    let second = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    assert_eq!(second.len("Logical_Switch"), total);
    // A request far bigger than the socket buffer: the writer task finishes what the caller
    // could not write at once, while small requests queue behind it.
    let mut huge = insert_switch("after-big");
    huge.comment("x".repeat(4 << 20));
    let (huge, small) = tokio::join!(client.transact(huge), client.transact(insert_switch("behind-huge")));
    huge.unwrap();
    small.unwrap();
    second
        .wait_for("Logical_Switch", |r| name_of(r) == Some("after-big"), WAIT)
        .await
        .unwrap();
    client.close().await;
}

#[tokio::test]
async fn server_pipeline_lost_connection_mid_batch_is_outcome_unknown_and_never_resent() {
    test_support::require_ovn!(
        "server_pipeline_lost_connection_mid_batch_is_outcome_unknown_and_never_resent",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_pipeline_lost", NB);
    let client = connect(&server.remote()).await;
    client.get_schema(DB).await.unwrap();

    // The middle transaction blocks server-side until a switch named "gate" exists.
    let blocked = blocked_until_gate();
    let batch = vec![insert_switch("before"), blocked, insert_switch("beside")];
    let pending = client.transact_many(batch);
    tokio::pin!(pending);
    // One poll puts the whole batch on the wire (the schema is cached, so nothing comes first).
    tokio::select! {
        biased;
        r = &mut pending => panic!("the batch completed with a blocked transaction in it: {r:?}"),
        _ = std::future::ready(()) => {}
    }
    // Answered after the server handled the batch: the two others are committed and answered.
    client.echo().await.unwrap();
    server.kill();
    let outcomes = pending.await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    match &outcomes[1] {
        Err(Error::OutcomeUnknown { database, .. }) => assert_eq!(database, DB),
        r => panic!("expected OutcomeUnknown, got {r:?}"),
    }
    assert!(outcomes[2].is_ok(), "{:?}", outcomes[2]);

    server.restart();
    // Requests made while disconnected wait for the reconnect; the gate opens now.
    client.transact(insert_switch("gate")).await.expect("insert gate");
    // Had the blocked transaction been re-sent, the gate would have released it by now.
    client.echo().await.unwrap();
    assert_eq!(switch_names(&client).await, vec!["before", "beside", "gate"]);
    client.close().await;
}
