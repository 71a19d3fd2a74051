//! The monitor fallbacks of `ovsdb::Client` (`monitor_cond_since` → `monitor_cond` →
//! `monitor`, and `_Server` monitoring with `monitor_cond` → `monitor`) against a real
//! ovsdb-server made to look older by a [`MethodFilterProxy`] that refuses chosen methods
//! with the server's own "unknown method" error: the chosen method, updates, conditions that
//! cannot be honoured, resuming after a reconnect, and leader-only through `_Server`.

use std::time::Duration;

use ovsdb::{
    Client, Condition, Error, MonitorMethod, MonitorRequest, Mutation, Replica, Row, RowEvent, TableMonitor,
    Transaction, Value,
};
use test_support::{MethodFilterProxy, OvsdbServer, RaftCluster, TempDir};

mod common;
use common::{add_switch, name_is, options, DB, NB, WAIT};

const CLUSTER_WAIT: Duration = Duration::from_secs(30);

const SINCE: &str = "monitor_cond_since";
const COND: &str = "monitor_cond";

/// A standalone NB server and a proxy in front of it refusing `refused`.
struct OldServer {
    // Dropped first: the proxy's connections close before the server stops.
    proxy: MethodFilterProxy,
    server: OvsdbServer,
    _dir: TempDir,
}

impl OldServer {
    fn start(test: &str, refused: &[&str]) -> OldServer {
        let server = OvsdbServer::standalone(test, NB);
        let dir = TempDir::new(&format!("{test}_proxy"));
        let proxy = MethodFilterProxy::start(server.socket_path(), &dir.path().join("proxy.sock"), refused);
        OldServer {
            proxy,
            server,
            _dir: dir,
        }
    }

    /// A client of the real server, bypassing the proxy (the test's own view of the truth).
    async fn direct_client(&self) -> Client {
        Client::connect(options(&self.server.remote()))
            .await
            .expect("connect directly")
    }
}

async fn connect(remote: &str) -> Client {
    Client::connect(options(remote))
        .await
        .expect("connect through the proxy")
}

fn switches() -> MonitorRequest {
    MonitorRequest::new().table("Logical_Switch", TableMonitor::all())
}

async fn delete_switch(client: &Client, uuid: ovsdb::Uuid) {
    let mut txn = Transaction::new(DB);
    txn.delete("Logical_Switch", vec![Condition::uuid(uuid)]);
    client.transact(txn).await.expect("delete switch");
}

async fn tag_switch(client: &Client, uuid: ovsdb::Uuid, key: &str, value: &str) {
    let mut txn = Transaction::new(DB);
    txn.mutate(
        "Logical_Switch",
        vec![Condition::uuid(uuid)],
        vec![Mutation::insert("external_ids", Value::string_map([(key, value)]))],
    );
    client.transact(txn).await.expect("tag switch");
}

fn tag_of(row: &Row, key: &str) -> Option<String> {
    row.get("external_ids")?.map_get_str(key).map(str::to_owned)
}

/// The replica, once it has every change `writer` made, equals the initial contents of a new
/// `monitor_cond_since` monitor straight on the server (same request, so same columns).
async fn assert_matches_fresh_dump(replica: &Replica, writer: &Client) {
    replica_catch_up(replica, writer).await;
    let fresh = writer.monitor(DB, switches()).await.expect("fresh monitor");
    assert_eq!(fresh.method(), Some(MonitorMethod::CondSince));
    assert_eq!(replica.snapshot(), fresh.snapshot());
    fresh.cancel().await.unwrap();
}

/// The next event of `events` (panics after [`WAIT`]).
async fn next_event(events: &mut ovsdb::Subscription) -> RowEvent {
    match tokio::time::timeout(WAIT, events.recv()).await {
        Ok(Ok(e)) => e,
        r => panic!("no replica event within {WAIT:?}: {r:?}"),
    }
}

/// Events of `events` up to and including the first one `last` accepts.
async fn events_until(events: &mut ovsdb::Subscription, last: impl Fn(&RowEvent) -> bool) -> Vec<RowEvent> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(events).await;
        let done = last(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn is_delete_of(uuid: ovsdb::Uuid) -> impl Fn(&RowEvent) -> bool {
    move |e| matches!(e, RowEvent::Delete { uuid: u, .. } if *u == uuid)
}

/// Inserts, modifies and deletes made by `writer` reach `replica`, one event each.
async fn assert_follows_changes(replica: &Replica, writer: &Client) {
    let mut events = replica.subscribe();
    let sw = add_switch(writer, "followed").await;
    tag_switch(writer, sw, "k", "v").await;
    delete_switch(writer, sw).await;
    let seen = events_until(&mut events, is_delete_of(sw)).await;
    assert!(
        matches!(
            &seen[..],
            [RowEvent::Insert { uuid: a, .. }, RowEvent::Modify { uuid: b, .. }, RowEvent::Delete { uuid: c, .. }]
                if [*a, *b, *c] == [sw, sw, sw]
        ),
        "{seen:?}"
    );
    assert!(replica.get("Logical_Switch", sw).is_none());
}

/// Returns once `replica` has seen every change `writer` committed so far: a marker row
/// written after them arrives, and is deleted again.
async fn replica_catch_up(replica: &Replica, writer: &Client) {
    let mut events = replica.subscribe();
    let marker = add_switch(writer, "marker").await;
    delete_switch(writer, marker).await;
    events_until(&mut events, is_delete_of(marker)).await;
}

#[tokio::test]
async fn server_fallback_monitor_cond_when_since_is_refused() {
    test_support::require_ovn!(
        "server_fallback_monitor_cond_when_since_is_refused",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_cond", &[SINCE]);
    let direct = old.direct_client().await;
    let before = add_switch(&direct, "before").await;
    let client = connect(&old.proxy.remote()).await;

    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::Cond));
    assert_eq!(client.monitor_method(), Some(MonitorMethod::Cond));
    assert_eq!(
        old.proxy.refused(),
        vec![SINCE.to_owned()],
        "monitor_cond_since was not tried first"
    );
    assert_eq!(replica.last_txn_id(), None, "monitor_cond has no transaction ids");
    assert!(
        replica.get("Logical_Switch", before).is_some(),
        "initial contents missing"
    );

    assert_follows_changes(&replica, &direct).await;
    // Conditions work with monitor_cond, including changing them.
    let only_before = MonitorRequest::new().table(
        "Logical_Switch",
        TableMonitor::all().conditions(vec![Condition::eq("name", "before")]),
    );
    let conditional = client.monitor(DB, only_before).await.unwrap();
    assert_eq!(conditional.method(), Some(MonitorMethod::Cond));
    assert_eq!(conditional.len("Logical_Switch"), 1);
    add_switch(&direct, "other").await;
    conditional
        .change_conditions("Logical_Switch", vec![Condition::eq("name", "other")])
        .await
        .unwrap();
    conditional
        .wait_for("Logical_Switch", name_is("other"), WAIT)
        .await
        .unwrap();
    assert!(conditional.get("Logical_Switch", before).is_none());
    assert_matches_fresh_dump(&replica, &direct).await;
}

#[tokio::test]
async fn server_fallback_plain_monitor_when_conditional_methods_are_refused() {
    test_support::require_ovn!(
        "server_fallback_plain_monitor_when_conditional_methods_are_refused",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_plain", &[SINCE, COND]);
    let direct = old.direct_client().await;
    let before = add_switch(&direct, "before").await;
    let client = connect(&old.proxy.remote()).await;

    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::Plain));
    assert_eq!(client.monitor_method(), Some(MonitorMethod::Plain));
    assert_eq!(old.proxy.refused(), vec![SINCE.to_owned(), COND.to_owned()]);
    assert!(
        replica.get("Logical_Switch", before).is_some(),
        "initial contents missing"
    );

    assert_follows_changes(&replica, &direct).await;
    // Changes made through the proxied client itself arrive too.
    let own = add_switch(&client, "own").await;
    assert!(replica.get("Logical_Switch", own).is_some());
    assert_matches_fresh_dump(&replica, &direct).await;

    // Plain monitors have no conditions to change.
    match replica.change_conditions("Logical_Switch", vec![]).await {
        Err(e @ Error::Rpc { .. }) => assert!(e.to_string().contains("plain `monitor`"), "{e}"),
        r => panic!("expected a refusal, got {r:?}"),
    }
}

fn conditional_request() -> MonitorRequest {
    MonitorRequest::new().table(
        "Logical_Switch",
        TableMonitor::all().conditions(vec![Condition::eq("name", "sw0")]),
    )
}

#[tokio::test]
async fn server_fallback_conditions_without_monitor_cond_are_refused() {
    test_support::require_ovn!(
        "server_fallback_conditions_without_monitor_cond_are_refused",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_no_cond", &[SINCE, COND]);
    let client = connect(&old.proxy.remote()).await;

    let Err(err) = client.monitor(DB, conditional_request()).await else {
        panic!("conditions cannot be honoured by plain `monitor`, yet the monitor started");
    };
    match &err {
        Error::Rpc { method, error, .. } => assert_eq!((method.as_str(), error.as_str()), (COND, "unknown method")),
        e => panic!("expected the server's refusal of monitor_cond, got {e:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(COND) && message.contains("unknown method"),
        "{message}"
    );
    // Plain `monitor` was not tried: it would have silently monitored every row.
    assert_eq!(old.proxy.refused(), vec![SINCE.to_owned(), COND.to_owned()]);

    // The failed monitor left nothing behind: the connection and unconditional monitors work.
    client.echo().await.unwrap();
    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::Plain));
}

#[tokio::test]
async fn server_fallback_conditions_without_monitor_cond_name_the_cause() {
    test_support::require_ovn!(
        "server_fallback_conditions_without_monitor_cond_name_the_cause",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_cond_cause", &[SINCE, COND]);
    let client = connect(&old.proxy.remote()).await;
    let Err(err) = client.monitor(DB, conditional_request()).await else {
        panic!("conditions cannot be honoured by plain `monitor`, yet the monitor started");
    };
    let message = err.to_string();
    assert!(
        message.contains("condition"),
        "the error should name the conditions as the cause: {message}"
    );
}

/// What the server refuses before and after a reconnect, and what the monitor should use.
struct Resume<'a> {
    refused_before: &'a [&'a str],
    method_before: MonitorMethod,
    refused_after: &'a [&'a str],
    method_after: MonitorMethod,
    /// Methods refused while resuming (asked first, refused by the new server).
    refused_while_resuming: &'a [&'a str],
}

/// Drops the client's connection, changes the database while the client cannot reconnect,
/// then lets it back in (to a server refusing `refused_after`): the replica resumes with the
/// expected method, without asking for methods known to be refused, gets the difference as
/// row events, and ends up equal to a fresh dump.
async fn resume_after_drop(test: &str, resume: Resume<'_>) {
    let old = OldServer::start(test, resume.refused_before);
    let direct = old.direct_client().await;
    let kept = add_switch(&direct, "kept").await;
    let doomed = add_switch(&direct, "doomed").await;
    let changed = add_switch(&direct, "changed").await;
    let client = connect(&old.proxy.remote()).await;
    let mut connection = client.connection_events();
    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(resume.method_before));
    let mut expected_refusals = old.proxy.refused();
    expected_refusals.extend(resume.refused_while_resuming.iter().map(|m| (*m).to_owned()));
    let mut events = replica.subscribe();

    old.proxy.set_accepting(false);
    old.proxy.drop_connections();
    match tokio::time::timeout(WAIT, connection.recv()).await {
        Ok(Ok(ovsdb::ConnectionEvent::Disconnected { .. })) => {}
        r => panic!("expected the client to see the drop, got {r:?}"),
    }
    delete_switch(&direct, doomed).await;
    tag_switch(&direct, changed, "while", "away").await;
    add_switch(&direct, "fresh").await;
    assert!(
        replica.get("Logical_Switch", doomed).is_some(),
        "changed while disconnected?"
    );
    old.proxy.set_refused(resume.refused_after);
    old.proxy.set_accepting(true);

    // The difference comes as row events, then one Resynced; rows left alone stay quiet.
    let mut seen = events_until(&mut events, |e| matches!(e, RowEvent::Resynced { .. })).await;
    seen.pop();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().any(is_delete_of(doomed)), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, RowEvent::Modify { uuid, .. } if *uuid == changed)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, RowEvent::Insert { new, .. } if name_is("fresh")(new))),
        "{seen:?}"
    );
    assert_eq!(replica.method(), Some(resume.method_after));
    assert_eq!(
        old.proxy.refused(),
        expected_refusals,
        "the resume asked for other methods than expected"
    );
    assert!(replica.get("Logical_Switch", kept).is_some());
    assert!(
        replica.get("Logical_Switch", doomed).is_none(),
        "a row deleted while away survived"
    );
    let changed_row = replica.get("Logical_Switch", changed).unwrap();
    assert_eq!(tag_of(&changed_row, "while").as_deref(), Some("away"));
    assert_matches_fresh_dump(&replica, &direct).await;
    // And it keeps following.
    assert_follows_changes(&replica, &direct).await;
}

#[tokio::test]
async fn server_fallback_monitor_cond_resumes_after_a_drop() {
    test_support::require_ovn!(
        "server_fallback_monitor_cond_resumes_after_a_drop",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let resume = Resume {
        refused_before: &[SINCE],
        method_before: MonitorMethod::Cond,
        refused_after: &[SINCE],
        method_after: MonitorMethod::Cond,
        refused_while_resuming: &[],
    };
    resume_after_drop("server_fallback_resume_cond", resume).await;
}

#[tokio::test]
async fn server_fallback_plain_monitor_resumes_after_a_drop() {
    test_support::require_ovn!(
        "server_fallback_plain_monitor_resumes_after_a_drop",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let resume = Resume {
        refused_before: &[SINCE, COND],
        method_before: MonitorMethod::Plain,
        refused_after: &[SINCE, COND],
        method_after: MonitorMethod::Plain,
        refused_while_resuming: &[],
    };
    resume_after_drop("server_fallback_resume_plain", resume).await;
}

#[tokio::test]
async fn server_fallback_resume_on_a_server_without_monitor_cond_since() {
    test_support::require_ovn!(
        "server_fallback_resume_on_a_server_without_monitor_cond_since",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let resume = Resume {
        refused_before: &[],
        method_before: MonitorMethod::CondSince,
        refused_after: &[SINCE],
        method_after: MonitorMethod::Cond,
        refused_while_resuming: &[SINCE],
    };
    resume_after_drop("server_fallback_resume_downgrade_cond", resume).await;
}

#[tokio::test]
async fn server_fallback_resume_on_a_server_with_only_plain_monitor() {
    test_support::require_ovn!(
        "server_fallback_resume_on_a_server_with_only_plain_monitor",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let resume = Resume {
        refused_before: &[],
        method_before: MonitorMethod::CondSince,
        refused_after: &[SINCE, COND],
        method_after: MonitorMethod::Plain,
        refused_while_resuming: &[SINCE, COND],
    };
    resume_after_drop("server_fallback_resume_downgrade_plain", resume).await;
}

#[tokio::test]
async fn server_fallback_server_database_checked_with_plain_monitor() {
    test_support::require_ovn!(
        "server_fallback_server_database_checked_with_plain_monitor",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_server_db", &[SINCE, COND]);
    let client = Client::connect(options(&old.proxy.remote()).database(DB).leader_only(true))
        .await
        .expect("a standalone server is usable for leader_only through plain `monitor` of _Server");
    // _Server was asked with monitor_cond first, then monitored with plain `monitor`.
    assert_eq!(old.proxy.refused(), vec![COND.to_owned()]);
    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::Plain));
    let direct = old.direct_client().await;
    assert_follows_changes(&replica, &direct).await;

    // Each reconnect checks _Server again, with the same fallback, and resumes the monitor.
    let mut connection = client.connection_events();
    old.proxy.drop_connections();
    // Sent only once the drop is seen, so it waits for the reconnect instead of being lost.
    match tokio::time::timeout(WAIT, connection.recv()).await {
        Ok(Ok(ovsdb::ConnectionEvent::Disconnected { .. })) => {}
        r => panic!("expected the client to see the drop, got {r:?}"),
    }
    add_switch(&client, "after-drop").await;
    let mut events = Vec::new();
    while let Ok(e) = connection.try_recv() {
        events.push(e);
    }
    assert!(
        matches!(events.last(), Some(ovsdb::ConnectionEvent::Connected { .. })),
        "{events:?}"
    );
    assert_eq!(
        old.proxy.refused(),
        [COND, SINCE, COND, COND].map(str::to_owned),
        "expected: _Server monitor_cond, then the data monitor's two, then _Server's again"
    );
    assert_eq!(replica.find("Logical_Switch", name_is("after-drop")).len(), 1);
    assert_matches_fresh_dump(&replica, &direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_fallback_leader_only_through_plain_server_monitor() {
    test_support::require_ovn!(
        "server_fallback_leader_only_through_plain_server_monitor",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let cluster = RaftCluster::start("server_fallback_raft", NB, 3);
    let leader = cluster.wait_for_leader(CLUSTER_WAIT);
    let dir = TempDir::new("server_fallback_raft_proxies");
    let proxies: Vec<MethodFilterProxy> = (0..cluster.len())
        .map(|i| {
            MethodFilterProxy::start(
                cluster.member(i).socket_path(),
                &dir.path().join(format!("p{i}.sock")),
                &[SINCE, COND],
            )
        })
        .collect();
    let raft_options = |remotes: &str| {
        options(remotes)
            .database(DB)
            .leader_only(true)
            .connect_timeout(CLUSTER_WAIT)
    };

    // A follower is recognised from the plain-monitor copy of _Server.
    let follower = (leader + 1) % cluster.len();
    match Client::connect(raft_options(&proxies[follower].remote()).connect_timeout(Duration::from_millis(500))).await {
        Err(Error::NotUsable { reason, .. }) => assert!(reason.contains("leader"), "{reason}"),
        r => panic!("expected NotUsable for a follower, got {r:?}"),
    }
    assert!(proxies[follower].refused().contains(&COND.to_owned()));

    // Over all members the leader is found, followers listed first.
    let mut order: Vec<usize> = (0..cluster.len()).filter(|&i| i != leader).collect();
    order.push(leader);
    let remotes = order.iter().map(|&i| proxies[i].remote()).collect::<Vec<_>>().join(",");
    let client = Client::connect(raft_options(&remotes)).await.unwrap();
    assert_eq!(client.current_remote().unwrap().to_string(), proxies[leader].remote());
    let replica = client.monitor(DB, switches()).await.unwrap();
    assert_eq!(replica.method(), Some(MonitorMethod::Plain));

    // Leadership moves away: the plain _Server updates make the client follow it.
    let mut connection = client.connection_events();
    cluster
        .member(leader)
        .appctl(&["cluster/leave", DB])
        .expect("cluster/leave");
    loop {
        match tokio::time::timeout(CLUSTER_WAIT, connection.recv()).await {
            Ok(Ok(ovsdb::ConnectionEvent::Disconnected { .. })) => break,
            Ok(Ok(_)) => {}
            r => panic!("the client did not notice the leader leaving: {r:?}"),
        }
    }
    let moved = add_switch(&client, "on-new-leader").await;
    assert_ne!(client.current_remote().unwrap().to_string(), proxies[leader].remote());
    replica
        .wait_for("Logical_Switch", name_is("on-new-leader"), WAIT)
        .await
        .unwrap();
    assert!(replica.get("Logical_Switch", moved).is_some());
    assert_eq!(replica.method(), Some(MonitorMethod::Plain));
}

#[tokio::test]
async fn server_fallback_concurrent_monitors_with_large_dumps() {
    test_support::require_ovn!(
        "server_fallback_concurrent_monitors_with_large_dumps",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let old = OldServer::start("server_fallback_large", &[SINCE, COND]);
    let direct = old.direct_client().await;
    let mut txn = Transaction::new(DB);
    for i in 0..3000 {
        txn.insert(
            "Logical_Switch",
            Row::new().with("name", format!("switch-with-a-long-name-{i:05}")).with(
                "external_ids",
                Value::string_map([("padding", "x".repeat(64).as_str())]),
            ),
        );
    }
    direct.transact(txn).await.expect("insert many switches");
    let client = connect(&old.proxy.remote()).await;

    // Several monitors started at once, each falling back twice and then receiving a large
    // initial dump: replies and refusals share the connection and each reaches its request.
    // (That a refusal never lands inside a dump is tested in test-support's proxy_harness.)
    let (a, b, c, d) = tokio::join!(
        client.monitor(DB, switches()),
        client.monitor(DB, switches()),
        client.monitor(DB, switches()),
        client.monitor(DB, switches()),
    );
    for replica in [a, b, c, d] {
        let replica = replica.unwrap();
        assert_eq!(replica.method(), Some(MonitorMethod::Plain));
        assert_eq!(replica.len("Logical_Switch"), 3000);
        assert_matches_fresh_dump(&replica, &direct).await;
    }
    assert_eq!(old.proxy.refused().len(), 8);
}
