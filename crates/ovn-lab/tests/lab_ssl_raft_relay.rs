//! SSL without RBAC: 3-member RAFT NB/SB and an SB relay, everything over TLS with the lab's
//! certificates. Each member and the relay serve `ssl:` on a loopback port of their own, the
//! chassis register through the relay, VMs ping each other, a leader-only NB client over TLS
//! follows the NB leader when it is killed, and `down` leaves nothing. RBAC stays off here
//! (RAFT members and relays share the SB's Connection rows), and the lab says so.

mod common;

use std::time::Duration;

use ovn_lab::{Lab, LabSpec, VmSpec};
use ovsdb::{Condition, Mutation, Row, Transaction, Value};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_ssl_raft_relay() {
    test_support::require_lab!("lab_ssl_raft_relay", ["ovs-vsctl", "ovs-appctl"]);
    let dir = test_support::TempDir::new("lab_ssl_raft_relay");
    let mut spec = LabSpec::new(dir.path()).with_chassis(2, 0);
    spec.clustered = true;
    spec.n_relays = 1;
    spec.election_timer_ms = Some(1000);
    spec.ssl = true;
    let lab = Lab::up(spec).await.expect("lab up");
    assert!(lab.ssl() && !lab.rbac());
    for remotes in [lab.nb_remote(), lab.sb_remote()] {
        let list: Vec<&str> = remotes.split(',').collect();
        assert_eq!(list.len(), 3, "{remotes}");
        assert!(list.iter().all(|r| r.starts_with("ssl:127.0.0.1:")), "{remotes}");
    }
    assert!(lab.sb_remote_for_chassis().starts_with("ssl:127.0.0.1:"));
    assert_eq!(lab.registered_chassis().await.unwrap(), ["compute-1", "compute-2"]);

    let nb = nb_client(&lab).await;
    let mut txn = Transaction::new(NB);
    add_switch(
        &mut txn,
        "sw0",
        &[
            ("p1", "0a:00:00:00:00:11", "10.0.0.11"),
            ("p2", "0a:00:00:00:00:12", "10.0.0.12"),
        ],
        None,
    );
    nb.transact(txn).await.expect("create sw0");
    let (c1, c2) = (
        lab.chassis_by_name("compute-1").unwrap(),
        lab.chassis_by_name("compute-2").unwrap(),
    );
    let vm1 = c1
        .bind_vm(VmSpec::new("p1", "0a:00:00:00:00:11", "10.0.0.11/24"))
        .await
        .expect("bind p1");
    let vm2 = c2
        .bind_vm(VmSpec::new("p2", "0a:00:00:00:00:12", "10.0.0.12/24"))
        .await
        .expect("bind p2");
    assert!(ping_until(&vm1, vm2.ip(), Duration::from_secs(60)).await, "vm1 -> vm2");

    let (killed, leader) = lab.kill_nb_leader(Duration::from_secs(30)).await.expect("re-election");
    assert_ne!(killed.pid, leader.pid);
    // The same client, over TLS, finds the new leader (it may take a reconnect or two).
    let mut txn = Transaction::new(NB);
    let p3 = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "p3")
            .with("addresses", Value::set(["0a:00:00:00:00:13 10.0.0.13"])),
    );
    txn.mutate(
        "Logical_Switch",
        vec![Condition::eq("name", "sw0")],
        vec![Mutation::insert("ports", p3)],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match nb.transact(txn.clone()).await {
            Ok(_) => break,
            // Sent to the dying leader: look before trying again.
            Err(
                ovsdb::Error::OutcomeUnknown { .. } | ovsdb::Error::Timeout { .. } | ovsdb::Error::Disconnected { .. },
            ) if std::time::Instant::now() < deadline => {
                let mut look = Transaction::new(NB);
                look.select("Logical_Switch_Port", vec![Condition::eq("name", "p3")], None);
                if let Ok(r) = nb.transact(look).await {
                    if r.results[0].rows.as_ref().is_some_and(|rows| !rows.is_empty()) {
                        break;
                    }
                }
            }
            Err(e) => panic!("add p3 after the NB leader died: {e}"),
        }
    }
    nb.close().await;
    let vm3 = c1
        .bind_vm(VmSpec::new("p3", "0a:00:00:00:00:13", "10.0.0.13/24"))
        .await
        .expect("bind p3");
    assert!(
        ping_until(&vm2, vm3.ip(), Duration::from_secs(60)).await,
        "vm2 -> vm3 after re-election"
    );

    let pids: Vec<u32> = lab.processes().iter().map(|p| p.pid).collect();
    let prefix = lab.prefix().to_owned();
    lab.down().expect("lab down");
    assert_nothing_left(&prefix, &pids);
}
