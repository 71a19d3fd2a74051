//! Helpers shared by the `lab_*` tests: NB topology written through `ovsdb::Client`, the
//! "nothing left behind" check, and a bounded wait for pings.
//!
//! Must not know: how the lab starts daemons (only its public API).
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ovn_lab::{Lab, Vm};
use ovsdb::{Client, ClientOptions, Row, Transaction, Value};

pub const NB: &str = "OVN_Northbound";

/// A leader-only NB client (what a CMS uses), with ovn-heater's certificate when the lab
/// runs with SSL.
pub async fn nb_client(lab: &Lab) -> Client {
    let mut opts = ClientOptions::new(lab.nb_remote())
        .unwrap()
        .database(NB)
        .leader_only(true);
    if let Some(tls) = lab.client_tls().expect("the lab's TLS files load") {
        opts = opts.tls(tls);
    }
    Client::connect(opts).await.expect("connect to the lab's NB")
}

/// One logical switch `name` with a VIF port per `(port, mac, ip)`, plus (optionally) a
/// router port `<name>-rtr` peering with router port `rtr_port`.
pub fn add_switch(txn: &mut Transaction, name: &str, vifs: &[(&str, &str, &str)], rtr_port: Option<&str>) {
    let mut ports = Vec::new();
    for (port, mac, ip) in vifs {
        ports.push(
            txn.insert(
                "Logical_Switch_Port",
                Row::new()
                    .with("name", *port)
                    .with("addresses", Value::set([format!("{mac} {ip}")])),
            ),
        );
    }
    if let Some(rp) = rtr_port {
        ports.push(
            txn.insert(
                "Logical_Switch_Port",
                Row::new()
                    .with("name", format!("{name}-rtr"))
                    .with("type", "router")
                    .with("addresses", Value::set(["router"]))
                    .with("options", Value::string_map([("router-port", rp)])),
            ),
        );
    }
    txn.insert(
        "Logical_Switch",
        Row::new().with("name", name).with(
            "ports",
            Value::Set(ports.iter().filter_map(|v| v.atom().cloned()).collect()),
        ),
    );
}

/// Pings until a reply or `limit` (ovn-controller needs a moment to claim ports and install
/// flows); returns whether a reply came.
pub async fn ping_until(vm: &Vm, dest: IpAddr, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if vm.ping(dest, Duration::from_secs(2)).await.expect("run ping").is_some() {
            return true;
        }
    }
    false
}

/// Fails unless no process of the lab is alive and no namespace with its prefix exists.
pub fn assert_nothing_left(prefix: &str, pids: &[u32]) {
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(*pid),
            "pid {pid} still alive"
        );
    }
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<&String> = left.iter().filter(|n| n.starts_with(&format!("{prefix}-"))).collect();
    assert!(ours.is_empty(), "namespaces left: {ours:?}");
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}
