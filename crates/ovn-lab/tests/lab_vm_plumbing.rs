//! VM plumbing and probes in-process, against one real chassis: 60 VMs bound at once on the
//! same chassis (the tap race: ovs-vswitchd must not lose a tap we moved), every VM's
//! namespace holds its tap with the MAC, MTU, address, default route and ARP tuning asked for,
//! hundreds of ICMP probes run at once from the VMs' own sockets, and unbinding removes the
//! namespace and the port.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use ovn_lab::{Lab, LabSpec, Vm, VmSpec};
use ovsdb::{Row, Transaction, Value};

use common::*;

const VMS: usize = 60;

fn ip_json(netns: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip")
        .args(["-j", "-n", netns])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?} in {netns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

fn read_in_netns(netns: &str, path: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat", path])
        .output()
        .expect("run ip netns exec");
    assert!(out.status.success(), "cat {path} in {netns}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_vm_plumbing_many_binds_and_probes_on_one_chassis() {
    test_support::require_lab!(
        "lab_vm_plumbing_many_binds_and_probes_on_one_chassis",
        ["ovs-vsctl", "ip"]
    );
    let dir = test_support::TempDir::new("lab_vm_plumbing");
    let lab = Lab::up(LabSpec::new(dir.path()).with_chassis(1, 0))
        .await
        .expect("lab up");

    // sw0 10.0.0.0/24 with VIFs p0..p59, and router r0 on 10.0.0.1 (answered by OVN itself).
    let nb = nb_client(&lab).await;
    let vifs: Vec<(String, String, String)> = (0..VMS)
        .map(|i| {
            (
                format!("p{i}"),
                format!("0a:00:00:00:10:{i:02x}"),
                format!("10.0.0.{}", 10 + i),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = vifs
        .iter()
        .map(|(p, m, a)| (p.as_str(), m.as_str(), a.as_str()))
        .collect();
    let mut txn = Transaction::new(NB);
    add_switch(&mut txn, "sw0", &refs, Some("r0-sw0"));
    let lrp = txn.insert(
        "Logical_Router_Port",
        Row::new()
            .with("name", "r0-sw0")
            .with("mac", "0a:00:00:00:01:01")
            .with("networks", Value::set(["10.0.0.1/24"])),
    );
    txn.insert("Logical_Router", Row::new().with("name", "r0").with("ports", lrp));
    nb.transact(txn).await.expect("create the topology");

    // Every VM at once on the same chassis.
    let chassis = lab.chassis_by_name("compute-1").unwrap().clone();
    let gw: IpAddr = "10.0.0.1".parse().unwrap();
    let mut binds = tokio::task::JoinSet::new();
    for (port, mac, ip) in vifs.clone() {
        let chassis = chassis.clone();
        binds.spawn(async move {
            let vm = chassis
                .bind_vm(VmSpec::new(&port, &mac, format!("{ip}/24")).gateway(gw))
                .await;
            (port, mac, vm)
        });
    }
    let mut vms: Vec<(String, Vm)> = Vec::new();
    while let Some(joined) = binds.join_next().await {
        let (port, mac, vm) = joined.expect("bind task");
        let vm = vm.unwrap_or_else(|e| panic!("bind {port}: {e}"));
        vms.push((mac, vm));
    }
    assert_eq!(vms.len(), VMS);

    // Each namespace holds its tap, configured as asked.
    for (mac, vm) in &vms {
        let links = ip_json(vm.netns().unwrap(), &["link", "show", "dev", vm.ifname()]);
        let link = &links[0];
        assert_eq!(link["address"], mac.as_str(), "{}", vm.port_name());
        assert_eq!(link["mtu"], ovn_lab::chassis::DEFAULT_VM_MTU, "{}", vm.port_name());
        assert!(
            link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            "{} is up: {link}",
            vm.port_name()
        );
        let addrs = ip_json(vm.netns().unwrap(), &["-4", "addr", "show", "dev", vm.ifname()]);
        let local = &addrs[0]["addr_info"][0];
        assert_eq!(local["local"], vm.ip().to_string());
        assert_eq!(local["prefixlen"], 24);
        let routes = ip_json(vm.netns().unwrap(), &["-4", "route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], "10.0.0.1", "{}: {routes}", vm.port_name());
        let neigh = format!("/proc/sys/net/ipv4/neigh/{}/retrans_time_ms", vm.ifname());
        let retrans: u32 = read_in_netns(vm.netns().unwrap(), &neigh).parse().unwrap();
        assert!(retrans <= 10, "{}: ARP retransmit {retrans} ms", vm.port_name());
        let lo = ip_json(vm.netns().unwrap(), &["link", "show", "dev", "lo"]);
        assert!(lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }

    // Every VM probes its gateway, then five peers, all at once: 360 probes in flight.
    let mut probes = tokio::task::JoinSet::new();
    for (i, (_, vm)) in vms.iter().enumerate() {
        let mut targets = vec![gw];
        targets.extend((1..=5).map(|k| vms[(i + k) % VMS].1.ip()));
        for dest in targets {
            let vm = vm.clone();
            probes.spawn(async move {
                let rtt = vm.ping(dest, Duration::from_secs(60)).await;
                (vm.port_name().to_owned(), dest, rtt)
            });
        }
    }
    let mut answered = 0;
    while let Some(joined) = probes.join_next().await {
        let (port, dest, rtt) = joined.expect("probe task");
        let rtt = rtt.unwrap_or_else(|e| panic!("probe {port} -> {dest}: {e}"));
        assert!(rtt.is_some(), "{port} -> {dest}: no reply within 60 s");
        answered += 1;
    }
    assert_eq!(answered, VMS * 6);

    // Unbinding removes the namespace and the OVS port; a probe to it then times out.
    let (_, gone) = vms.pop().unwrap();
    chassis.unbind_vm(&gone).await.expect("unbind");
    assert!(!std::path::Path::new("/run/netns").join(gone.netns().unwrap()).exists());
    let ports = Command::new("ovs-vsctl")
        .arg(format!("--db={}", chassis.ovs_remote()))
        .args(["list-ports", "br-int"])
        .output()
        .expect("ovs-vsctl");
    assert!(!String::from_utf8_lossy(&ports.stdout).contains(gone.ifname()));
    let unreachable: Ipv4Addr = match gone.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    };
    // ovs-vswitchd deletes the VM's interface after the OVS transaction has committed, and
    // the namespace lives on while `gone` holds a socket there: a probe sent in between may
    // still be answered. Within 20 probes one must go unanswered.
    let mut unanswered = false;
    for _ in 0..20 {
        let reply = vms[0]
            .1
            .ping(unreachable.into(), Duration::from_millis(500))
            .await
            .unwrap();
        if reply.is_none() {
            unanswered = true;
            break;
        }
    }
    assert!(unanswered, "an unbound VM still answers after 20 probes");
    chassis.unbind_vm(&gone).await.expect("unbinding twice is fine");

    // A passive port (the unbound VM's logical port again): on br-int, no namespace, no ping.
    let passive = chassis
        .bind_passive(VmSpec::new(gone.port_name(), "0a:00:00:00:10:ff", "10.0.0.250/24"))
        .await
        .expect("bind passive");
    assert_eq!(passive.netns(), None);
    let ports = Command::new("ovs-vsctl")
        .arg(format!("--db={}", chassis.ovs_remote()))
        .args(["list-ports", "br-int"])
        .output()
        .expect("ovs-vsctl");
    assert!(String::from_utf8_lossy(&ports.stdout).contains(passive.ifname()));
    let refused = passive
        .ping(gw, Duration::from_millis(100))
        .await
        .expect_err("passive ping");
    assert!(refused.to_string().contains("passive"), "{refused}");
    chassis.unbind_vm(&passive).await.expect("unbind passive");

    nb.close().await;
    let pids: Vec<u32> = lab.processes().iter().map(|p| p.pid).collect();
    let prefix = lab.prefix().to_owned();
    lab.down().expect("lab down");
    assert_nothing_left(&prefix, &pids);
}
