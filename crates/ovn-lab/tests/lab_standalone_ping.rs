//! 1 network node + 2 compute chassis on standalone DBs: all register, a VM on each compute
//! chassis pings the other across the geneve tunnel, one pings the external host through the
//! gateway (SNAT), and `down` leaves nothing behind.

mod common;

use std::time::Duration;

use ovn_lab::{ChassisRole, Lab, LabSpec, VmSpec};
use ovsdb::{Row, Transaction, Value};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_standalone_ping() {
    test_support::require_lab!("lab_standalone_ping", ["ovs-vsctl"]);
    let dir = test_support::TempDir::new("lab_standalone_ping");
    let lab = Lab::up(LabSpec::new(dir.path()).with_chassis(2, 1))
        .await
        .expect("lab up");

    let registered = lab.registered_chassis().await.unwrap();
    assert_eq!(registered, ["compute-1", "compute-2", "gw-1"]);
    assert_eq!(lab.chassis_by_name("gw-1").unwrap().role(), ChassisRole::NetworkNode);
    let ext = lab
        .external_host()
        .expect("an external host with a network node")
        .clone();

    // sw0 (10.0.0.0/24) -- r0 -- ext (provider, localnet physnet1), r0's gateway on gw-1, SNAT.
    let nb = nb_client(&lab).await;
    let mut txn = Transaction::new(NB);
    add_switch(
        &mut txn,
        "sw0",
        &[
            ("p1", "0a:00:00:00:00:11", "10.0.0.11"),
            ("p2", "0a:00:00:00:00:12", "10.0.0.12"),
        ],
        Some("r0-sw0"),
    );
    let localnet = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "ext-localnet")
            .with("type", "localnet")
            .with("addresses", Value::set(["unknown"]))
            .with(
                "options",
                Value::string_map([("network_name", ovn_lab::PHYSICAL_NETWORK)]),
            ),
    );
    let ext_rtr = txn.insert(
        "Logical_Switch_Port",
        Row::new()
            .with("name", "ext-rtr")
            .with("type", "router")
            .with("addresses", Value::set(["router"]))
            .with("options", Value::string_map([("router-port", "r0-ext")])),
    );
    txn.insert(
        "Logical_Switch",
        Row::new().with("name", "ext").with(
            "ports",
            Value::Set(vec![localnet.atom().unwrap().clone(), ext_rtr.atom().unwrap().clone()]),
        ),
    );
    let gw_ip = "172.16.0.10";
    let gc = txn.insert(
        "Gateway_Chassis",
        Row::new()
            .with("name", "r0-ext-gw-1")
            .with("chassis_name", "gw-1")
            .with("priority", 1i64),
    );
    let lrp_in = txn.insert(
        "Logical_Router_Port",
        Row::new()
            .with("name", "r0-sw0")
            .with("mac", "0a:00:00:00:01:01")
            .with("networks", Value::set(["10.0.0.1/24"])),
    );
    let lrp_out = txn.insert(
        "Logical_Router_Port",
        Row::new()
            .with("name", "r0-ext")
            .with("mac", "0a:00:00:00:01:02")
            .with("networks", Value::set([format!("{gw_ip}/24")]))
            .with("gateway_chassis", gc),
    );
    let snat = txn.insert(
        "NAT",
        Row::new()
            .with("type", "snat")
            .with("logical_ip", "10.0.0.0/24")
            .with("external_ip", gw_ip),
    );
    let route = txn.insert(
        "Logical_Router_Static_Route",
        Row::new()
            .with("ip_prefix", "0.0.0.0/0")
            .with("nexthop", ext.ip().to_string()),
    );
    txn.insert(
        "Logical_Router",
        Row::new()
            .with("name", "r0")
            .with(
                "ports",
                Value::Set(vec![lrp_in.atom().unwrap().clone(), lrp_out.atom().unwrap().clone()]),
            )
            .with("nat", snat)
            .with("static_routes", route),
    );
    nb.transact(txn).await.expect("create the topology");

    let gw: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let vm1 = lab
        .chassis_by_name("compute-1")
        .unwrap()
        .bind_vm(VmSpec::new("p1", "0a:00:00:00:00:11", "10.0.0.11/24").gateway(gw))
        .await
        .expect("bind p1");
    let vm2 = lab
        .chassis_by_name("compute-2")
        .unwrap()
        .bind_vm(VmSpec::new("p2", "0a:00:00:00:00:12", "10.0.0.12/24").gateway(gw))
        .await
        .expect("bind p2");

    assert!(
        ping_until(&vm1, vm2.ip(), Duration::from_secs(60)).await,
        "vm1 -> vm2 across the tunnel"
    );
    assert!(ping_until(&vm2, vm1.ip(), Duration::from_secs(20)).await, "vm2 -> vm1");
    assert!(
        ping_until(&vm1, ext.ip().into(), Duration::from_secs(60)).await,
        "vm1 -> external host through gw-1 (SNAT)"
    );

    lab.chassis_by_name("compute-2")
        .unwrap()
        .unbind_vm(&vm2)
        .await
        .expect("unbind p2");
    // The port leaves the datapath once ovs-vswitchd and ovn-controller have caught up with the
    // OVS database (unbind does not wait for them, as `ovs-vsctl --no-wait del-port`): p2 must
    // stop answering within seconds, not at the instant unbind returns.
    let mut gone = false;
    for _ in 0..5 {
        if vm1.ping(vm2.ip(), Duration::from_secs(2)).await.unwrap().is_none() {
            gone = true;
            break;
        }
    }
    assert!(gone, "p2 still answers 10 s after unbind");
    nb.close().await;

    let pids: Vec<u32> = lab.processes().iter().map(|p| p.pid).collect();
    let prefix = lab.prefix().to_owned();
    let report = lab.down().expect("lab down");
    assert!(report.processes_stopped >= pids.len());
    assert_nothing_left(&prefix, &pids);
    // Logs are kept.
    assert!(dir.path().join("hv/compute-1/ovn-controller.log").exists());
    // A second down is fine.
    Lab::down_run_dir(dir.path(), None).expect("second down");
}
