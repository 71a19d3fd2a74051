//! `ovsdb::Client` against a 3-member RAFT cluster of the OVN Northbound database on loopback:
//! leader-only connections, failover while a monitor runs, and resuming from the last
//! transaction id (only the missed changes come back).

use std::time::Duration;

use ovsdb::{Client, ClientOptions, Error, MonitorRequest, RowEvent, TableMonitor};
use test_support::RaftCluster;

mod common;
use common::{add_switch, name_is, NB};

const DB: &str = "OVN_Northbound";
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
        .find(|&i| cluster.member(i).tcp_remote() == remote || cluster.member(i).remote() == remote)
        .expect("remote is a member")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_leader_failover_keeps_the_replica_exact() {
    test_support::require_ovn!(
        "server_raft_leader_failover_keeps_the_replica_exact",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut cluster = RaftCluster::start("server_raft_failover", NB, 3);
    let leader = cluster.wait_for_leader(WAIT);
    // Leader listed last: the client must skip the followers.
    let mut order: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    order.push(leader);
    let remotes = order
        .iter()
        .map(|&i| cluster.member(i).tcp_remote())
        .collect::<Vec<_>>()
        .join(",");
    let client = Client::connect(options(&remotes)).await.unwrap();
    assert_eq!(member_of(&cluster, &client), leader, "leader_only picked a follower");

    let replica = client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    for i in 0..20 {
        add_switch(&client, &format!("before{i}")).await;
    }
    let txn_before = replica.last_txn_id().expect("monitor_cond_since gives txn ids");
    let mut events = replica.subscribe();
    let mut connection = client.connection_events();

    cluster.kill(leader);
    // Requests made during the failover wait for the new leader. A request written before the
    // client saw the old leader go has an unknown outcome instead, so wait for that first.
    tokio::time::timeout(WAIT, async {
        loop {
            match connection.recv().await {
                Ok(ovsdb::ConnectionEvent::Disconnected { .. }) => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("client closed"),
                _ => {}
            }
        }
    })
    .await
    .expect("the client notices the leader is gone");
    let after = add_switch(&client, "after").await;
    let now = member_of(&cluster, &client);
    assert_ne!(now, leader);
    assert_eq!(cluster.wait_for_leader(WAIT), now, "client is on a follower");
    replica
        .wait_for("Logical_Switch", name_is("after"), WAIT)
        .await
        .unwrap();
    assert_ne!(replica.last_txn_id(), Some(txn_before));

    // Resumed from the last txn id: the 20 old rows are not replayed.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        matches!(seen.as_slice(), [RowEvent::Insert { uuid, .. }] if *uuid == after),
        "expected only the insert of \"after\": {seen:?}"
    );

    // The replica equals a fresh monitor's initial contents.
    let fresh_client = Client::connect(options(&cluster.tcp_remotes())).await.unwrap();
    let fresh = fresh_client
        .monitor(DB, MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
        .await
        .unwrap();
    assert_eq!(replica.snapshot(), fresh.snapshot());
    assert_eq!(replica.len("Logical_Switch"), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raft_follower_refused_then_leader_loss_detected() {
    test_support::require_ovn!(
        "server_raft_follower_refused_then_leader_loss_detected",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let cluster = RaftCluster::start("server_raft_follower", NB, 3);
    let leader = cluster.wait_for_leader(WAIT);
    let follower = (leader + 1) % 3;
    let only_follower = options(&cluster.member(follower).remote()).connect_timeout(Duration::from_millis(500));
    match Client::connect(only_follower).await {
        Err(Error::NotUsable { reason, .. }) => assert!(reason.contains("leader"), "{reason}"),
        r => panic!("expected NotUsable, got {r:?}"),
    }
    // Without leader_only a follower is fine.
    let any = Client::connect(
        ClientOptions::new(&cluster.member(follower).remote())
            .unwrap()
            .database(DB)
            .connect_timeout(WAIT),
    )
    .await
    .unwrap();
    any.echo().await.unwrap();

    // The leader hands leadership over: the client notices through _Server and moves.
    let client = Client::connect(options(&cluster.remotes())).await.unwrap();
    let mut conn_events = client.connection_events();
    assert_eq!(member_of(&cluster, &client), leader);
    cluster
        .member(leader)
        .appctl(&["cluster/leave", DB])
        .expect("cluster/leave");
    loop {
        let event = tokio::time::timeout(WAIT, conn_events.recv()).await.unwrap().unwrap();
        if let ovsdb::ConnectionEvent::Disconnected { reason, .. } = event {
            assert!(reason.contains("leader") || reason.contains("cluster"), "{reason}");
            break;
        }
    }
    add_switch(&client, "on-new-leader").await;
    assert_ne!(member_of(&cluster, &client), leader);
}
