//! OVSDB locks between two real clients of one ovsdb-server: lock, wait, steal, stolen,
//! unlock, and the lock coming back after a reconnect.

use test_support::OvsdbServer;

mod common;
use common::{connect, NB, WAIT};

#[tokio::test]
async fn server_lock_lock_steal_unlock_between_two_clients() {
    test_support::require_ovn!(
        "server_lock_lock_steal_unlock_between_two_clients",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let server = OvsdbServer::standalone("server_lock_two_clients", NB);
    let a = connect(&server.remote()).await;
    let b = connect(&server.remote()).await;

    let mut la = a.lock("northd").await.unwrap();
    assert_eq!(la.id(), "northd");
    tokio::time::timeout(WAIT, la.acquired()).await.unwrap().unwrap();
    assert!(la.is_locked());

    let lb = b.lock("northd").await.unwrap();
    assert!(!lb.is_locked(), "two owners");

    // b steals: a hears `stolen`, b owns it.
    let mut lb2 = b.steal("northd").await.unwrap();
    tokio::time::timeout(WAIT, la.stolen()).await.unwrap().unwrap();
    assert!(!la.is_locked());
    tokio::time::timeout(WAIT, lb2.acquired()).await.unwrap().unwrap();
    assert!(lb.is_locked());

    // b gives it up; a asks again and gets it through a `locked` notification.
    lb.unlock().await.unwrap();
    drop(lb2);
    la.unlock().await.unwrap();
    let mut la = a.lock("northd").await.unwrap();
    tokio::time::timeout(WAIT, la.acquired()).await.unwrap().unwrap();
    let mut lb = b.lock("northd").await.unwrap();
    assert!(!lb.is_locked());
    la.unlock().await.unwrap();
    tokio::time::timeout(WAIT, lb.acquired()).await.unwrap().unwrap();
}

#[tokio::test]
async fn server_lock_is_requested_again_after_reconnect() {
    test_support::require_ovn!(
        "server_lock_is_requested_again_after_reconnect",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl"]
    );
    let mut server = OvsdbServer::standalone("server_lock_reconnect", NB);
    let a = connect(&server.remote()).await;
    let mut la = a.lock("l").await.unwrap();
    tokio::time::timeout(WAIT, la.acquired()).await.unwrap().unwrap();
    server.restart();
    a.echo().await.unwrap();
    tokio::time::timeout(WAIT, la.acquired()).await.unwrap().unwrap();
    let b = connect(&server.remote()).await;
    let lb = b.lock("l").await.unwrap();
    assert!(!lb.is_locked(), "the reconnected owner lost its lock");
}
