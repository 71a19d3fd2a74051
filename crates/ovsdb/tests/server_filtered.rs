//! Filtered replicas (`Client::monitor_filtered`) against a real standalone ovsdb-server
//! serving the OVN Northbound schema: they use `monitor_cond_since` like any monitor, hold
//! only the rows their filter keeps, fetch rows that become interesting through a `modify`,
//! follow condition changes, take explicitly fetched rows, and come back equal to a filtered
//! fresh dump after the server restarts, or resume from their last transaction id (RAFT).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use ovsdb::{
    Client, Condition, MonitorMethod, MonitorRequest, Mutation, Replica, Row, RowEvent, RowFilter, TableMonitor,
    Transaction, Uuid, Value,
};
use serde_json::json;
use test_support::{MethodFilterProxy, OvsdbServer, RaftCluster, TempDir};

mod common;
use common::{connect, select_all, DB, NB, WAIT};

const LS: &str = "Logical_Switch";
const LR: &str = "Logical_Router";

/// Keeps switches whose `external_ids:owner` is "me" or whose name was asked for; never any
/// router. A change of `external_ids` may make a switch it does not hold interesting.
#[derive(Default)]
struct Mine {
    names: RwLock<HashSet<String>>,
    /// How often the replica asked about a row it did not hold.
    asked: std::sync::atomic::AtomicUsize,
}

impl Mine {
    fn want(&self, name: &str) {
        self.names.write().unwrap().insert(name.to_owned());
    }
}

impl RowFilter for Mine {
    fn keeps_table(&self, table: &str) -> bool {
        table != LR
    }
    fn keeps(&self, table: &str, row: &Row) -> bool {
        assert_ne!(table, LR, "rows of a table the filter never keeps were decoded");
        let owned = row.get("external_ids").and_then(|v| v.map_get_str("owner")) == Some("me");
        let named = row
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| self.names.read().unwrap().contains(n));
        owned || named
    }
    fn may_keep_after(&self, _table: &str, _uuid: Uuid, diff: &Row) -> bool {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        diff.get("external_ids").is_some()
    }
}

async fn transact(client: &Client, build: impl FnOnce(&mut Transaction)) {
    let mut txn = Transaction::new(DB);
    build(&mut txn);
    client.transact(txn).await.expect("transact");
}

async fn add_switch(client: &Client, name: &str, owner: Option<&str>) -> Uuid {
    let mut txn = Transaction::new(DB);
    let mut row = Row::new().with("name", name);
    if let Some(owner) = owner {
        row = row.with("external_ids", Value::string_map([("owner", owner)]));
    }
    let ls = txn.insert(LS, row);
    let r = client.transact(txn).await.expect("insert switch");
    r.inserted(&ls).expect("inserted uuid")
}

fn set_owner(txn: &mut Transaction, name: &str, owner: Option<&str>) {
    let ids = match owner {
        Some(o) => Value::string_map([("owner", o)]),
        None => Value::empty_map(),
    };
    txn.update(
        LS,
        vec![Condition::eq("name", name)],
        Row::new().with("external_ids", ids),
    );
}

/// What the filter keeps of a fresh `select` of `table` (the server's truth), without
/// `_version` (monitors never carry it).
async fn kept_of_fresh_dump(client: &Client, filter: &Mine, table: &str) -> BTreeMap<Uuid, Row> {
    select_all(client, table)
        .await
        .into_iter()
        .filter(|(_, row)| filter.keeps(table, row))
        .collect()
}

fn names(replica: &Replica) -> Vec<String> {
    let mut names: Vec<String> = replica
        .find(LS, |_| true)
        .into_iter()
        .filter_map(|(_, r)| r.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn both_tables() -> MonitorRequest {
    MonitorRequest::new()
        .table(LS, TableMonitor::all())
        .table(LR, TableMonitor::all())
}

/// Waits (bounded) for the next event about `uuid`.
async fn next_event_for(events: &mut ovsdb::Subscription, uuid: Uuid) -> RowEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("an event in time")
            .expect("a subscription that keeps up");
        match &e {
            RowEvent::Insert { uuid: u, .. } | RowEvent::Modify { uuid: u, .. } | RowEvent::Delete { uuid: u, .. }
                if *u == uuid =>
            {
                return e
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn server_filtered_keeps_fetches_and_drops_rows() {
    test_support::require_ovn!(
        "server_filtered_keeps_fetches_and_drops_rows",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_filtered_keeps", NB);
    let client = connect(&server.remote()).await;
    let a = add_switch(&client, "a", Some("me")).await;
    let b = add_switch(&client, "b", Some("you")).await;
    transact(&client, |t| {
        t.insert(LR, Row::new().with("name", "r1"));
    })
    .await;
    let filter = Arc::new(Mine::default());
    let replica = client
        .monitor_filtered(DB, both_tables(), filter.clone())
        .await
        .unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::CondSince));
    assert_eq!(names(&replica), ["a"]);
    assert_eq!(replica.len(LR), 0);
    let mut events = replica.subscribe();

    // b becomes mine through a modify (a diff of external_ids): fetched, then inserted.
    transact(&client, |t| set_owner(t, "b", Some("me"))).await;
    match next_event_for(&mut events, b).await {
        RowEvent::Insert { new, .. } => {
            assert_eq!(new.get("name").and_then(Value::as_str), Some("b"));
            assert_eq!(new.uuid(), Some(b));
        }
        e => panic!("expected b's insert, got {e:?}"),
    }
    // A held row that stops being kept is dropped.
    transact(&client, |t| set_owner(t, "a", Some("you"))).await;
    assert!(matches!(next_event_for(&mut events, a).await, RowEvent::Delete { .. }));
    // Changes that do not concern the filter fetch nothing.
    let asked = filter.asked.load(std::sync::atomic::Ordering::Relaxed);
    transact(&client, |t| {
        t.insert(LR, Row::new().with("name", "r2"));
        t.update(
            LS,
            vec![Condition::eq("name", "a")],
            Row::new().with("other_config", Value::string_map([("k", "v")])),
        );
    })
    .await;
    assert_eq!(filter.asked.load(std::sync::atomic::Ordering::Relaxed), asked + 1);
    // A held row's changes apply in place.
    transact(&client, |t| {
        t.mutate(
            LS,
            vec![Condition::eq("name", "b")],
            vec![Mutation::insert("other_config", Value::string_map([("x", "1")]))],
        );
    })
    .await;
    assert!(matches!(next_event_for(&mut events, b).await, RowEvent::Modify { .. }));
    assert_eq!(names(&replica), ["b"]);
    assert_eq!(replica.len(LR), 0);
    assert_eq!(replica.snapshot()[LS], kept_of_fresh_dump(&client, &filter, LS).await);
}

#[tokio::test]
async fn server_filtered_conditions_and_condition_changes() {
    test_support::require_ovn!(
        "server_filtered_conditions_and_condition_changes",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_filtered_conditions", NB);
    let client = connect(&server.remote()).await;
    let x = add_switch(&client, "x", Some("me")).await;
    add_switch(&client, "y", Some("me")).await;
    add_switch(&client, "z", Some("you")).await;
    let request = MonitorRequest::new().table(LS, TableMonitor::all().conditions(vec![Condition::eq("name", "x")]));
    let filter = Arc::new(Mine::default());
    let replica = client.monitor_filtered(DB, request, filter.clone()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::CondSince));
    assert_eq!(names(&replica), ["x"]);

    replica
        .change_conditions(LS, vec![Condition::eq("name", "y"), Condition::eq("name", "z")])
        .await
        .unwrap();
    client.echo().await.unwrap();
    assert_eq!(names(&replica), ["y"]);
    assert!(replica.get(LS, x).is_none());

    // z becomes mine through a modify inside the conditions: fetched.
    transact(&client, |t| set_owner(t, "z", Some("me"))).await;
    replica
        .wait_for(LS, |r| r.get("name").and_then(Value::as_str) == Some("z"), WAIT)
        .await
        .unwrap();
    // x changes outside the conditions: the server sends nothing about it.
    transact(&client, |t| set_owner(t, "x", Some("me, still"))).await;
    replica
        .change_conditions(LS, vec![Condition::Constant(true)])
        .await
        .unwrap();
    client.echo().await.unwrap();
    assert_eq!(names(&replica), ["y", "z"]);
    assert_eq!(replica.snapshot()[LS], kept_of_fresh_dump(&client, &filter, LS).await);
}

#[tokio::test]
async fn server_filtered_fetch_brings_in_rows_wanted_later() {
    test_support::require_ovn!(
        "server_filtered_fetch_brings_in_rows_wanted_later",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_filtered_fetch", NB);
    let client = connect(&server.remote()).await;
    let late = add_switch(&client, "late", None).await;
    add_switch(&client, "other", None).await;
    let filter = Arc::new(Mine::default());
    let replica = client
        .monitor_filtered(DB, both_tables(), filter.clone())
        .await
        .unwrap();
    assert!(names(&replica).is_empty());
    let mut events = replica.subscribe();

    // Not wanted yet: fetching finds the row but does not keep it.
    assert_eq!(replica.fetch(LS, vec![Condition::eq("name", "late")]).await.unwrap(), 0);
    filter.want("late");
    assert_eq!(replica.fetch(LS, vec![Condition::eq("name", "late")]).await.unwrap(), 1);
    assert!(matches!(
        next_event_for(&mut events, late).await,
        RowEvent::Insert { .. }
    ));
    // Fetching a held row again changes nothing.
    assert_eq!(replica.fetch(LS, vec![Condition::uuid(late)]).await.unwrap(), 1);
    assert_eq!(names(&replica), ["late"]);
    // Later changes apply to the fetched row.
    transact(&client, |t| {
        t.update(
            LS,
            vec![Condition::eq("name", "late")],
            Row::new().with("other_config", Value::string_map([("k", "v")])),
        );
    })
    .await;
    assert!(matches!(
        next_event_for(&mut events, late).await,
        RowEvent::Modify { .. }
    ));
    assert_eq!(replica.snapshot()[LS], kept_of_fresh_dump(&client, &filter, LS).await);
    assert!(replica.fetch("NAT", vec![]).await.is_err(), "NAT is not monitored");
    assert_eq!(replica.fetch(LR, vec![]).await.unwrap(), 0);

    // An unfiltered replica keeps whatever it fetches (here: rows it already holds).
    let all = client
        .monitor(DB, MonitorRequest::new().table(LS, TableMonitor::all()))
        .await
        .unwrap();
    assert_eq!(all.fetch(LS, vec![]).await.unwrap(), 2);
}

#[tokio::test]
async fn server_filtered_replica_equals_the_filtered_dump_after_a_restart() {
    test_support::require_ovn!(
        "server_filtered_replica_equals_the_filtered_dump_after_a_restart",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_filtered_restart", NB);
    let client = connect(&server.remote()).await;
    let kept = add_switch(&client, "kept", Some("me")).await;
    let doomed = add_switch(&client, "doomed", Some("me")).await;
    let adopted = add_switch(&client, "adopted", Some("you")).await;
    let filter = Arc::new(Mine::default());
    let replica = client
        .monitor_filtered(DB, both_tables(), filter.clone())
        .await
        .unwrap();
    assert_eq!(names(&replica), ["doomed", "kept"]);
    let mut events = replica.subscribe();

    server.stop();
    // Changed while the client is away, on the file.
    let offline = json!([DB,
        {"op": "delete", "table": LS, "where": [["_uuid", "==", ["uuid", doomed.to_string()]]]},
        {"op": "update", "table": LS, "where": [["_uuid", "==", ["uuid", adopted.to_string()]]],
         "row": {"external_ids": ["map", [["owner", "me"]]]}},
        {"op": "insert", "table": LS, "row": {"name": "fresh", "external_ids": ["map", [["owner", "me"]]]}},
        {"op": "insert", "table": LS, "row": {"name": "foreign"}},
        {"op": "insert", "table": LR, "row": {"name": "r"}}]);
    let out = std::process::Command::new(test_support::find_binary("ovsdb-tool").unwrap())
        .arg("transact")
        .arg(server.db_path())
        .arg(offline.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.restart();
    replica
        .wait_for(LS, |r| r.get("name").and_then(Value::as_str) == Some("fresh"), WAIT)
        .await
        .unwrap();
    client.echo().await.unwrap();
    assert_eq!(names(&replica), ["adopted", "fresh", "kept"]);
    assert_eq!(replica.len(LR), 0);
    assert_eq!(replica.snapshot()[LS], kept_of_fresh_dump(&client, &filter, LS).await);
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(seen
        .iter()
        .any(|e| matches!(e, RowEvent::Delete { uuid, .. } if *uuid == doomed)));
    assert!(seen
        .iter()
        .any(|e| matches!(e, RowEvent::Insert { uuid, .. } if *uuid == adopted)));
    assert!(seen
        .iter()
        .all(|e| !matches!(e, RowEvent::Insert { uuid, .. } | RowEvent::Delete { uuid, .. } if *uuid == kept)));

    // The resumed monitor still fetches rows that become interesting.
    let foreign = replica.find(LS, |_| true).len();
    transact(&client, |t| set_owner(t, "foreign", Some("me"))).await;
    replica
        .wait_for(LS, |r| r.get("name").and_then(Value::as_str) == Some("foreign"), WAIT)
        .await
        .unwrap();
    assert_eq!(replica.find(LS, |_| true).len(), foreign + 1);
}

#[tokio::test]
async fn server_filtered_resume_from_txn_id_fetches_rows_adopted_while_away() {
    test_support::require_ovn!(
        "server_filtered_resume_from_txn_id_fetches_rows_adopted_while_away",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    // A RAFT member keeps its transaction history, so monitor_cond_since resumes with only the
    // missed changes (update2 diffs) instead of a full resync. The proxy drops the client's
    // connection and keeps it out while the database changes.
    let cluster = RaftCluster::start("server_filtered_resume", NB, 3);
    let leader = cluster.wait_for_leader(WAIT);
    let dir = TempDir::new("server_filtered_resume_proxy");
    let proxy = MethodFilterProxy::start(
        cluster.member(leader).socket_path(),
        &dir.path().join("proxy.sock"),
        &[],
    );
    let direct = connect(&cluster.member(leader).remote()).await;
    // ovsdb-server keeps at most as many atoms of history as the database holds: filler rows
    // make room for the changes made while the client is away.
    transact(&direct, |t| {
        for i in 0..200 {
            t.insert(LS, Row::new().with("name", format!("filler{i}")));
        }
    })
    .await;
    let kept = add_switch(&direct, "kept", Some("me")).await;
    let doomed = add_switch(&direct, "doomed", Some("me")).await;
    let adopted = add_switch(&direct, "adopted", None).await;
    let client = connect(&proxy.remote()).await;
    let mut connection = client.connection_events();
    let filter = Arc::new(Mine::default());
    let replica = client
        .monitor_filtered(DB, both_tables(), filter.clone())
        .await
        .unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::CondSince));
    assert_eq!(names(&replica), ["doomed", "kept"]);
    let mut events = replica.subscribe();

    proxy.set_accepting(false);
    proxy.drop_connections();
    match tokio::time::timeout(WAIT, connection.recv()).await {
        Ok(Ok(ovsdb::ConnectionEvent::Disconnected { .. })) => {}
        r => panic!("expected the client to see the drop, got {r:?}"),
    }
    transact(&direct, |t| {
        t.delete(LS, vec![Condition::uuid(doomed)]);
        set_owner(t, "adopted", Some("me"));
        t.insert(
            LS,
            Row::new()
                .with("name", "fresh")
                .with("external_ids", Value::string_map([("owner", "me")])),
        );
        t.insert(LS, Row::new().with("name", "foreign"));
        t.insert(LR, Row::new().with("name", "r"));
    })
    .await;
    proxy.set_accepting(true);
    // The resumed reply carries only a diff for the adopted row: it comes through a fetch.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen
        .iter()
        .any(|e| matches!(e, RowEvent::Insert { uuid, .. } if *uuid == adopted))
    {
        let e = tokio::time::timeout_at(deadline, events.recv()).await;
        seen.push(e.expect("the adopted row in time").expect("no lag"));
    }
    client.echo().await.unwrap();
    assert_eq!(names(&replica), ["adopted", "fresh", "kept"]);
    assert_eq!(replica.len(LR), 0);
    assert_eq!(replica.snapshot()[LS], kept_of_fresh_dump(&direct, &filter, LS).await);
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        seen.iter().all(|e| !matches!(e, RowEvent::Resynced { .. })),
        "resumed from the transaction id, not resynced: {seen:?}"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, RowEvent::Delete { uuid, .. } if *uuid == doomed)));
    assert!(replica.get(LS, kept).is_some());
}

/// Clients sharing an `UpdateCache` (one decode per notification for all of them) end with
/// exactly the replicas of clients that decode for themselves, through inserts, rows that
/// become interesting by a `modify` (fetched), rows that stop being kept, and deletes; and the
/// cache decoded most notifications once for everybody.
#[tokio::test]
async fn server_filtered_shared_decode_matches_own_decode() {
    test_support::require_ovn!(
        "server_filtered_shared_decode_matches_own_decode",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_filtered_shared", NB);
    let writer = connect(&server.remote()).await;
    add_switch(&writer, "before", Some("me")).await;
    let cache = Arc::new(ovsdb::UpdateCache::new().tables(|t| t != LR));
    // Pairs (shared decode, own decode) with the same filter; the last pair reads no schema,
    // so shared rows are judged without being copied first.
    let mut pairs = Vec::new();
    for (i, check_schema) in [(0, true), (1, true), (2, false)] {
        let mut replicas = Vec::new();
        for shared in [true, false] {
            let mut options = common::options(&server.remote()).check_schema(check_schema);
            if shared {
                options = options.update_cache(cache.clone());
            }
            let client = Client::connect(options).await.expect("connect");
            let filter = Arc::new(Mine::default());
            filter.want(&format!("want-{i}-2"));
            let replica = client
                .monitor_filtered(DB, both_tables(), filter.clone())
                .await
                .unwrap();
            replicas.push((client, replica));
        }
        pairs.push(replicas);
    }

    for round in 0..5 {
        for i in 0..3 {
            add_switch(&writer, &format!("want-{i}-{round}"), None).await;
        }
        add_switch(&writer, &format!("mine-{round}"), Some("me")).await;
        add_switch(&writer, &format!("other-{round}"), Some("you")).await;
        transact(&writer, |t| {
            t.insert(LR, Row::new().with("name", format!("r{round}")));
            // Becomes mine through a modify: every filtered replica fetches it.
            set_owner(t, &format!("other-{round}"), Some("me"));
        })
        .await;
        transact(&writer, |t| {
            set_owner(t, "before", Some(if round % 2 == 0 { "you" } else { "me" }))
        })
        .await;
        if round > 0 {
            transact(&writer, |t| {
                t.delete(LS, vec![Condition::eq("name", format!("mine-{}", round - 1))]);
            })
            .await;
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    for (i, pair) in pairs.iter().enumerate() {
        let (shared, own) = (&pair[0].1, &pair[1].1);
        loop {
            let (a, b) = (shared.snapshot(), own.snapshot());
            if a == b && names(shared).len() == 7
            /* mine-4, other-0..4, want-i-2 */
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pair {i}: shared decode {:?} != own decode {:?}",
                names(shared),
                names(own)
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(shared.len(LR), 0);
    }
    let stats = cache.stats();
    assert!(stats.hits > 0, "{stats:?}");
    assert!(stats.shared_decodes > 0, "{stats:?}");
    // Three clients receive every notification: at best one in three is decoded.
    assert!(stats.decodes_per_lookup() < 0.8, "{stats:?}");
}
