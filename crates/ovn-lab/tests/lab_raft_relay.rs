//! 3-member RAFT NB/SB with one SB relay and two compute chassis: chassis register through
//! the relay, VMs ping each other, killing the NB leader elects another and the lab keeps
//! working (a port created afterwards comes up and answers), the same after killing the SB
//! leader, and `down` leaves nothing.
//! Also checks that a second lab in the same run dir is refused before anything starts.

mod common;

use std::time::Duration;

use ovn_lab::{Error, Lab, LabSpec, ProcessRole, VmSpec};
use ovsdb::{Condition, Mutation, Row, Transaction, Value};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_raft_relay() {
    test_support::require_lab!("lab_raft_relay", ["ovs-vsctl", "ovs-appctl"]);
    let dir = test_support::TempDir::new("lab_raft_relay");
    let mut spec = LabSpec::new(dir.path()).with_chassis(2, 0);
    spec.clustered = true;
    spec.n_relays = 1;
    spec.election_timer_ms = Some(1000);
    let lab = Lab::up(spec.clone()).await.expect("lab up");

    // Refused at preflight, and the running lab is untouched.
    match Lab::up(spec).await {
        Err(e @ Error::RunDirInUse { .. }) => assert!(e.is_preflight()),
        Err(e) => panic!("expected RunDirInUse, got {e}"),
        Ok(_) => panic!("a second lab in the same run dir must be refused"),
    }

    assert_eq!(lab.nb_remote().split(',').count(), 3, "{}", lab.nb_remote());
    assert_eq!(lab.sb_remote().split(',').count(), 3, "{}", lab.sb_remote());
    assert!(
        lab.sb_remote_for_chassis().contains("sb-relay"),
        "{}",
        lab.sb_remote_for_chassis()
    );
    assert_eq!(
        lab.processes()
            .iter()
            .filter(|p| p.role == ProcessRole::SbRelay)
            .count(),
        1
    );
    // The chassis only know the relay, so being registered means the relay works.
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
    nb.close().await;
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

    // The lab keeps working: a port added through the new leader is bound and answers.
    let nb = nb_client(&lab).await;
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
    nb.transact(txn).await.expect("add p3 after the leader died");
    nb.close().await;
    let vm3 = c1
        .bind_vm(VmSpec::new("p3", "0a:00:00:00:00:13", "10.0.0.13/24"))
        .await
        .expect("bind p3");
    assert!(
        ping_until(&vm2, vm3.ip(), Duration::from_secs(60)).await,
        "vm2 -> vm3 after re-election"
    );

    // Same for the SB, which the chassis reach through the relay.
    let (killed, leader) = lab
        .kill_sb_leader(Duration::from_secs(30))
        .await
        .expect("SB re-election");
    assert_ne!(killed.pid, leader.pid);
    let nb = nb_client(&lab).await;
    let mut txn = Transaction::new(NB);
    let p4 = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "p4")
            .with("addresses", Value::set(["0a:00:00:00:00:14 10.0.0.14"])),
    );
    txn.mutate(
        "Logical_Switch",
        vec![Condition::eq("name", "sw0")],
        vec![Mutation::insert("ports", p4)],
    );
    nb.transact(txn).await.expect("add p4 after the SB leader died");
    nb.close().await;
    let vm4 = c2
        .bind_vm(VmSpec::new("p4", "0a:00:00:00:00:14", "10.0.0.14/24"))
        .await
        .expect("bind p4");
    assert!(
        ping_until(&vm1, vm4.ip(), Duration::from_secs(60)).await,
        "vm1 -> vm4 after SB re-election"
    );

    let pids: Vec<u32> = lab.processes().iter().map(|p| p.pid).collect();
    let prefix = lab.prefix().to_owned();
    lab.down().expect("lab down");
    assert_nothing_left(&prefix, &pids);
}
