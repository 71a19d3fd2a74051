//! A transaction pending on the RAFT leader when the leader goes away: SIGKILL, a leadership
//! transfer, `cluster/leave`, and SIGKILL while the commit waits for followers that cannot
//! answer. In every case the caller gets `OutcomeUnknown`, the request reached a server exactly
//! once (counted in the servers' own JSON-RPC logs, not inferred from our client), the monitor
//! resumes without replaying or duplicating rows, and the next transaction lands on the new
//! leader.
//!
//! Pending-ness is made certain, not hoped for: the transaction either waits server-side for a
//! "gate" row (an OVSDB `wait`), or waits for a commit while both followers are frozen with
//! SIGSTOP; the test proceeds only once the leader's `memory/show` counts it as a trigger.

use std::collections::BTreeSet;
use std::time::Duration;

use ovsdb::{
    Client, ClientOptions, Condition, Error, MonitorRequest, Operation, Replica, Row, RowEvent, TableMonitor,
    Transaction, Uuid, Value,
};
use test_support::RaftCluster;

mod common;
use common::{add_switch, name_is, select_all, DB, NB};

const WAIT: Duration = Duration::from_secs(30);

fn options(remotes: &str) -> ClientOptions {
    ClientOptions::new(remotes)
        .unwrap()
        .database(DB)
        .leader_only(true)
        .connect_timeout(WAIT)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// The member a client is connected to, by matching its remote against the cluster's.
fn member_of(cluster: &RaftCluster, client: &Client) -> usize {
    let remote = client.current_remote().expect("connected").to_string();
    (0..cluster.len())
        .find(|&i| cluster.member(i).tcp_remote() == remote)
        .unwrap_or_else(|| panic!("{remote} is not a member's client remote"))
}

/// Blocking test-support calls (appctl, polling) from inside the runtime.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// A cluster whose every member logs what it receives, a leader-only client on the leader, and
/// a monitor of `Logical_Switch` holding five switches.
struct Setup {
    cluster: RaftCluster,
    leader: usize,
    client: Client,
    replica: Replica,
    before: BTreeSet<Uuid>,
}

async fn setup(test: &str, election_timer_ms: Option<u64>) -> Setup {
    let cluster = RaftCluster::start_with(test, NB, 3, election_timer_ms);
    let leader = cluster.wait_for_leader(WAIT);
    for i in 0..cluster.len() {
        cluster.member(i).log_received_messages();
    }
    let client = Client::connect(options(&cluster.tcp_remotes())).await.unwrap();
    assert_eq!(member_of(&cluster, &client), leader, "leader_only picked a follower");
    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    let mut before = BTreeSet::new();
    for i in 0..5 {
        before.insert(add_switch(&client, &format!("before{i}")).await);
    }
    replica
        .wait_for("Logical_Switch", name_is("before4"), WAIT)
        .await
        .unwrap();
    Setup {
        cluster,
        leader,
        client,
        replica,
        before,
    }
}

/// Waits server-side until a switch named `gate` exists, then inserts one named `name`.
fn insert_after_gate(gate: &str, name: &str) -> Transaction {
    let mut txn = Transaction::new(DB);
    txn.push(Operation::Wait {
        table: "Logical_Switch".into(),
        conditions: vec![Condition::eq("name", gate)],
        columns: vec!["name".into()],
        until_equal: true,
        rows: vec![Row::new().with("name", gate)],
        timeout_ms: Some(600_000),
    });
    txn.insert("Logical_Switch", Row::new().with("name", name));
    txn
}

fn insert_named(name: &str) -> Transaction {
    let mut txn = Transaction::new(DB);
    txn.insert("Logical_Switch", Row::new().with("name", name));
    txn
}

/// Starts `txn` on its own task and returns once the leader holds it unanswered.
fn send_pending(setup: &Setup, txn: Transaction) -> tokio::task::JoinHandle<ovsdb::Result<ovsdb::TransactionResult>> {
    let client = setup.client.clone();
    let pending = tokio::spawn(async move { client.transact(txn).await });
    blocking(|| setup.cluster.member(setup.leader).wait_pending_transactions(1, WAIT));
    pending
}

async fn expect_outcome_unknown(
    pending: tokio::task::JoinHandle<ovsdb::Result<ovsdb::TransactionResult>>,
    old_leader_remote: &str,
) {
    match tokio::time::timeout(WAIT, pending).await {
        Ok(Ok(Err(Error::OutcomeUnknown { database, remote }))) => {
            assert_eq!(database, DB);
            assert_eq!(remote, old_leader_remote);
        }
        Ok(r) => panic!("expected OutcomeUnknown, got {r:?}"),
        Err(_) => panic!("the pending transaction was not answered within {WAIT:?}"),
    }
}

/// How many times any member received a `transact` naming `marker`.
fn times_received(cluster: &RaftCluster, marker: &str) -> usize {
    (0..cluster.len())
        .map(|i| cluster.member(i).received_requests("transact", marker).len())
        .sum()
}

/// The events since `subscribe`: no row inserted twice, none of the rows that existed before
/// replayed, and the replica equal to the server's truth and to a fresh monitor.
async fn check_monitor_resumed(setup: &Setup, events: &mut ovsdb::Subscription) -> Vec<Uuid> {
    let mut inserted = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            RowEvent::Insert { uuid, .. } => {
                assert!(
                    !setup.before.contains(&uuid),
                    "a row from before the failover was replayed"
                );
                assert!(!inserted.contains(&uuid), "row {uuid} inserted twice");
                inserted.push(uuid);
            }
            other => panic!("unexpected event after the failover: {other:?}"),
        }
    }
    let truth = select_all(&setup.client, "Logical_Switch").await;
    assert_eq!(
        setup.replica.read(|t| t
            .get("Logical_Switch")
            .map(|rows| rows.keys().copied().collect::<BTreeSet<_>>())),
        Some(truth.keys().copied().collect::<BTreeSet<_>>()),
        "the replica differs from the server"
    );
    let fresh_client = Client::connect(options(&setup.cluster.tcp_remotes())).await.unwrap();
    let fresh = fresh_client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    assert_eq!(setup.replica.snapshot(), fresh.snapshot());
    inserted
}

fn names(rows: &std::collections::BTreeMap<Uuid, Row>, name: &str) -> usize {
    rows.values()
        .filter(|r| r.get("name").and_then(Value::as_str) == Some(name))
        .count()
}

/// The common part of the "waiting on a gate" cases: `leave` makes the leader go away somehow.
async fn waiting_transaction_survives(test: &str, leave: impl FnOnce(&mut RaftCluster, usize)) {
    let mut setup = setup(test, None).await;
    let old_remote = setup.cluster.member(setup.leader).tcp_remote();
    let marker = format!("in-flight-{}", Uuid::new_v4());
    let mut events = setup.replica.subscribe();

    let pending = send_pending(&setup, insert_after_gate("gate", &marker));
    let leader = setup.leader;
    blocking(|| leave(&mut setup.cluster, leader));
    expect_outcome_unknown(pending, &old_remote).await;

    let new_leader = blocking(|| setup.cluster.wait_for_new_leader(leader, WAIT));
    // Had the client re-sent the transaction, opening the gate would commit it now.
    let gate = add_switch(&setup.client, "gate").await;
    assert_eq!(member_of(&setup.cluster, &setup.client), new_leader);
    let next = add_switch(&setup.client, "next").await;
    assert_eq!(member_of(&setup.cluster, &setup.client), new_leader);
    setup
        .replica
        .wait_for("Logical_Switch", name_is("next"), WAIT)
        .await
        .unwrap();

    assert_eq!(
        times_received(&setup.cluster, &marker),
        1,
        "the pending transaction was sent again"
    );
    let truth = select_all(&setup.client, "Logical_Switch").await;
    assert_eq!(names(&truth, &marker), 0, "the pending transaction committed after all");
    assert_eq!(check_monitor_resumed(&setup, &mut events).await, vec![gate, next]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_leader_killed_with_a_transaction_waiting_on_it() {
    test_support::require_ovn!(
        "server_raft_leader_killed_with_a_transaction_waiting_on_it",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    waiting_transaction_survives("raft_inflight_kill", |cluster, leader| cluster.kill(leader)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_leader_transfers_leadership_with_a_transaction_waiting_on_it() {
    test_support::require_ovn!(
        "server_raft_leader_transfers_leadership_with_a_transaction_waiting_on_it",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    waiting_transaction_survives("raft_inflight_transfer", |cluster, leader| {
        cluster.transfer_leadership(leader)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_leader_leaves_with_a_transaction_waiting_on_it() {
    test_support::require_ovn!(
        "server_raft_leader_leaves_with_a_transaction_waiting_on_it",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    waiting_transaction_survives("raft_inflight_leave", |cluster, leader| {
        cluster
            .member(leader)
            .appctl(&["cluster/leave", DB])
            .expect("cluster/leave");
    })
    .await;
}

/// The leader accepted the transaction and waits for a majority that cannot answer (both
/// followers frozen) when it is killed: the entry may or may not survive in the followers'
/// socket buffers, so it commits at most once, and the replica agrees with the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_leader_killed_while_its_commit_waits_for_followers() {
    test_support::require_ovn!(
        "server_raft_leader_killed_while_its_commit_waits_for_followers",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    // A leader that hears from no majority for an election timeout steps down by itself; a
    // long timer keeps it leader for the few milliseconds this case needs.
    let mut setup = setup("raft_inflight_commit", Some(5000)).await;
    let leader = setup.leader;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let old_remote = setup.cluster.member(leader).tcp_remote();
    let marker = format!("in-flight-{}", Uuid::new_v4());
    let mut events = setup.replica.subscribe();
    let mut connection = setup.client.connection_events();

    for &f in &followers {
        setup.cluster.pause(f);
    }
    let pending = send_pending(&setup, insert_named(&marker));
    assert!(
        connection.try_recv().is_err(),
        "the client left the leader before it was killed"
    );
    setup.cluster.kill(leader);
    for &f in &followers {
        setup.cluster.resume(f);
    }
    expect_outcome_unknown(pending, &old_remote).await;

    let new_leader = blocking(|| setup.cluster.wait_for_new_leader(leader, Duration::from_secs(60)));
    let next = add_switch(&setup.client, "next").await;
    assert_eq!(member_of(&setup.cluster, &setup.client), new_leader);
    setup
        .replica
        .wait_for("Logical_Switch", name_is("next"), WAIT)
        .await
        .unwrap();

    assert_eq!(
        times_received(&setup.cluster, &marker),
        1,
        "the pending transaction was sent again"
    );
    let truth = select_all(&setup.client, "Logical_Switch").await;
    let committed = names(&truth, &marker);
    assert!(committed <= 1, "the pending transaction committed {committed} times");
    let inserted = check_monitor_resumed(&setup, &mut events).await;
    assert_eq!(inserted.last(), Some(&next));
    assert_eq!(inserted.len(), 1 + committed, "{inserted:?}");
}
