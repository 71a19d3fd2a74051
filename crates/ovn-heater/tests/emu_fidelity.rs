//! Fidelity of emulated chassis: the same small topology (a VM port on a compute chassis, a
//! router gateway port on a network node) bound once on real chassis (`ovn-lab`: OVS +
//! ovn-controller in network namespaces) and once on emulated ones (`ovn-emu` against a fresh
//! central). The SB `Chassis`, `Encap`, `Chassis_Private` and `Port_Binding` rows must agree
//! once UUIDs, IPs, timestamps and `nb_cfg` counters are normalized.
//!
//! Fields that cannot agree, and so are normalized: every UUID (rows are created anew; a
//! reference to a `Chassis` becomes that chassis's name), `Encap.ip` (the lab's underlay vs
//! placeholder addresses), `Chassis_Private.nb_cfg_timestamp` (wall clock) and `nb_cfg` (how
//! many NB transactions each run made). `other_config:iface-types` is copied from the real
//! chassis into the emulated spec, since it is what the local OVS build supports.
//!
//! So is the SB write pattern of a claim: every `transact` (from the SB server's `jsonrpc`
//! debug log, on during the binding) with an operation on the `Port_Binding` of `vm1` or of
//! `cr-lrp-ext`, in order, each as its operations' kind, table and columns written. A VM port
//! must take the same transactions (claim, then `up`), a gateway port its one.
//!
//! The chassis's monitor is compared too, as the SB server logged it (`jsonrpc` debug log)
//! when every chassis reconnected after the binding: one `monitor_cond_since` each, with the
//! same tables, columns and `where` (`[true]` on the conditional tables: the lab's chassis
//! monitor everything).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ovn_emu::{ChassisSpec, ConnectPolicy, EmulatedChassis};
use ovn_lab::{Lab, LabSpec, ProcessRole, VmSpec};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(60);
const TABLES: [&str; 4] = ["Chassis", "Encap", "Chassis_Private", "Port_Binding"];

fn ctl(tool: &str, db: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("--db={db}"))
        .arg("--timeout=60")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The topology both runs build: net1 with vm1, router r1 whose external port is scheduled on
/// gw-1, ext with a localnet port.
fn build_topology(nb: &str) {
    let script: &[&[&str]] = &[
        &["ls-add", "net1"],
        &["lsp-add", "net1", "vm1"],
        &["lsp-set-addresses", "vm1", "0a:00:00:00:00:11 10.0.0.11"],
        &["lsp-set-options", "vm1", "requested-chassis=compute-1"],
        &["lr-add", "r1"],
        &["lrp-add", "r1", "lrp-net1", "0a:00:00:00:01:01", "10.0.0.1/24"],
        &["lrp-add", "r1", "lrp-ext", "0a:00:00:00:01:02", "172.16.0.10/24"],
        &["lrp-set-gateway-chassis", "lrp-ext", "gw-1", "10"],
        &["lsp-add", "net1", "net1-r1"],
        &["lsp-set-type", "net1-r1", "router"],
        &["lsp-set-addresses", "net1-r1", "router"],
        &["lsp-set-options", "net1-r1", "router-port=lrp-net1"],
        &["ls-add", "ext"],
        &["lsp-add", "ext", "ext-r1"],
        &["lsp-set-type", "ext-r1", "router"],
        &["lsp-set-addresses", "ext-r1", "router"],
        &["lsp-set-options", "ext-r1", "router-port=lrp-ext"],
        &["lsp-add", "ext", "ext-localnet"],
        &["lsp-set-type", "ext-localnet", "localnet"],
        &["lsp-set-addresses", "ext-localnet", "unknown"],
        &["lsp-set-options", "ext-localnet", "network_name=physnet1"],
    ];
    for args in script {
        ctl("ovn-nbctl", nb, args);
    }
}

async fn wait_bound(nb: &str, sb: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let vm_up = ctl("ovn-nbctl", nb, &["get", "Logical_Switch_Port", "vm1", "up"]) == "true";
        let cr = ctl(
            "ovn-sbctl",
            sb,
            &[
                "--bare",
                "--columns=chassis,up",
                "find",
                "Port_Binding",
                "logical_port=cr-lrp-ext",
            ],
        );
        if vm_up && cr.ends_with("true") && cr.len() > 4 {
            break;
        }
        assert!(Instant::now() < deadline, "vm1 / cr-lrp-ext not bound within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctl("ovn-nbctl", nb, &["--wait=hv", "sync"]);
}

/// Rows of the compared tables, keyed `Table/<key>`, with values normalized.
fn dump(sb: &str) -> BTreeMap<String, BTreeMap<String, Json>> {
    let mut uuid_names: BTreeMap<String, String> = BTreeMap::new();
    let mut tables = BTreeMap::new();
    for table in TABLES {
        let json: Json = serde_json::from_str(&ctl("ovn-sbctl", sb, &["--format=json", "list", table])).unwrap();
        let headings: Vec<String> = serde_json::from_value(json["headings"].clone()).unwrap();
        let rows: Vec<BTreeMap<String, Json>> = json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                headings
                    .iter()
                    .cloned()
                    .zip(r.as_array().unwrap().iter().cloned())
                    .collect()
            })
            .collect();
        if table == "Chassis" {
            for r in &rows {
                uuid_names.insert(
                    r["_uuid"][1].as_str().unwrap().to_owned(),
                    r["name"].as_str().unwrap().to_owned(),
                );
            }
        }
        tables.insert(table, rows);
    }
    let mut out = BTreeMap::new();
    for (table, rows) in tables {
        for mut row in rows {
            let key = match table {
                "Encap" => row["chassis_name"].as_str().unwrap().to_owned(),
                "Port_Binding" => row["logical_port"].as_str().unwrap().to_owned(),
                _ => row["name"].as_str().unwrap().to_owned(),
            };
            for (column, value) in row.iter_mut() {
                *value = match (table, column.as_str()) {
                    ("Encap", "ip") => Json::from("<ip>"),
                    ("Chassis_Private", "nb_cfg_timestamp" | "nb_cfg") => Json::from("<counter>"),
                    _ => normalize(value, &uuid_names),
                };
            }
            out.insert(format!("{table}/{key}"), row);
        }
    }
    out
}

/// UUIDs become the name of the chassis they point to, or `<uuid>`.
fn normalize(value: &Json, chassis: &BTreeMap<String, String>) -> Json {
    match value {
        Json::Array(a) if a.len() == 2 && a[0] == "uuid" => {
            let uuid = a[1].as_str().unwrap_or_default();
            Json::from(
                chassis
                    .get(uuid)
                    .map_or("<uuid>".to_owned(), |n| format!("<chassis {n}>")),
            )
        }
        Json::Array(a) => Json::Array(a.iter().map(|v| normalize(v, chassis)).collect()),
        other => other.clone(),
    }
}

fn appctl(ctl: &Path, args: &[&str]) {
    let out = Command::new("ovs-appctl")
        .arg("--timeout=10")
        .arg("-t")
        .arg(ctl)
        .args(args)
        .output()
        .expect("ovs-appctl");
    assert!(
        out.status.success(),
        "ovs-appctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per monitored table, its columns (sorted) and its `where`, if any.
type MonitorShape = BTreeMap<String, (Vec<String>, Option<String>)>;

/// The `monitor_cond_since` requests of chassis the SB server logged (northd's is the one
/// with `Connection`), oldest first.
fn chassis_monitors(log: &Path) -> Vec<MonitorShape> {
    let text = std::fs::read_to_string(log).expect("SB log");
    text.lines()
        .filter(|l| l.contains("method=\"monitor_cond_since\""))
        .filter_map(|line| {
            let params = &line[line.find("params=")? + "params=".len()..line.rfind(", id=")?];
            let params: Json = serde_json::from_str(params).expect("monitor_cond_since params");
            let first = |requests: &Json| requests.as_array().map_or(requests.clone(), |a| a[0].clone());
            let tables = params[2].as_object()?;
            if tables.contains_key("Connection") {
                return None;
            }
            Some(
                tables
                    .iter()
                    .map(|(table, requests)| {
                        let mut columns: Vec<String> =
                            serde_json::from_value(first(requests)["columns"].clone()).unwrap_or_default();
                        columns.sort();
                        let conditions = first(requests).get("where").map(Json::to_string);
                        (table.clone(), (columns, conditions))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// One transaction's operations, each as `op table [columns]` (what it writes, not the values
/// or the rows it names).
type TxnShape = Vec<String>;

fn port_binding_uuid(sb: &str, port: &str) -> String {
    ctl(
        "ovn-sbctl",
        sb,
        &[
            "--bare",
            "--columns=_uuid",
            "find",
            "Port_Binding",
            &format!("logical_port={port}"),
        ],
    )
}

/// The chassis' SB `transact`s the server logged that operate on the `Port_Binding` rows
/// `ports` (UUID → name), oldest first, per port (northd's, which assert its lock, left out).
fn port_writes(log: &Path, ports: &BTreeMap<String, String>) -> BTreeMap<String, Vec<TxnShape>> {
    let text = std::fs::read_to_string(log).expect("SB log");
    let mut writes: BTreeMap<String, Vec<TxnShape>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.contains("received request, method=\"transact\""))
    {
        let (Some(start), Some(end)) = (line.find("params="), line.rfind(", id=")) else {
            continue;
        };
        let params: Json = serde_json::from_str(&line[start + "params=".len()..end]).expect("transact params");
        let ops = params.as_array().map(|a| &a[1..]).unwrap_or_default();
        // northd's transactions assert its lock; chassis hold none.
        if ops.iter().any(|op| op["op"] == "assert") {
            continue;
        }
        let touched: BTreeSet<&String> = ops
            .iter()
            .filter(|op| op["table"] == "Port_Binding")
            .flat_map(|op| {
                ports
                    .iter()
                    .filter(move |(uuid, _)| op["where"].to_string().contains(uuid.as_str()))
            })
            .map(|(_, name)| name)
            .collect();
        if touched.is_empty() {
            continue;
        }
        let shape: TxnShape = ops
            .iter()
            .filter(|op| op["op"] != "comment")
            .map(|op| {
                let columns: BTreeSet<String> = match op["op"].as_str() {
                    Some("mutate") => op["mutations"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m[0].as_str().map(str::to_owned))
                        .collect(),
                    _ => op["row"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(c, _)| c.clone())
                        .collect(),
                };
                format!(
                    "{} {} {:?}",
                    op["op"].as_str().unwrap_or("?"),
                    op["table"].as_str().unwrap_or("-"),
                    columns
                )
            })
            .collect();
        for name in touched {
            writes.entry(name.clone()).or_default().push(shape.clone());
        }
    }
    writes
}

/// The claim writes of `vm1` and `cr-lrp-ext` in `log`.
fn claim_writes(sb: &str, log: &Path) -> BTreeMap<String, Vec<TxnShape>> {
    let ports = ["vm1", "cr-lrp-ext"]
        .iter()
        .map(|p| (port_binding_uuid(sb, p), (*p).to_owned()))
        .collect();
    port_writes(log, &ports)
}

/// Makes the SB server log JSON-RPC and drop every connection, and returns the monitors the
/// two chassis start when they reconnect.
async fn monitors_after_reconnect(ctl: &Path, log: &Path) -> Vec<MonitorShape> {
    appctl(ctl, &["vlog/set", "jsonrpc:file:dbg"]);
    let before = chassis_monitors(log).len();
    appctl(ctl, &["ovsdb-server/reconnect"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let monitors = chassis_monitors(log);
        if monitors.len() >= before + 2 {
            return monitors[before..].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "the chassis did not monitor again within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn other_config(sb: &str, chassis: &str, key: &str) -> String {
    ctl(
        "ovn-sbctl",
        sb,
        &["get", "Chassis", chassis, &format!("other_config:{key}")],
    )
    .trim_matches('"')
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulated_rows_match_real_chassis() {
    test_support::require_lab!(
        "emulated_rows_match_real_chassis",
        ["ovs-vsctl", "ovn-nbctl", "ovn-sbctl"]
    );

    // Real chassis.
    let dir = test_support::TempDir::new("emu_fidelity");
    let lab = Lab::up(LabSpec::new(dir.path()).with_chassis(1, 1))
        .await
        .expect("lab up");
    let (nb, sb) = (lab.nb_remote().to_owned(), lab.sb_remote().to_owned());
    let sb_server = lab
        .processes()
        .into_iter()
        .find(|p| p.role == ProcessRole::SbDb)
        .expect("the lab's SB server");
    appctl(&sb_server.ctl_path, &["vlog/set", "jsonrpc:file:dbg"]);
    build_topology(&nb);
    lab.chassis_by_name("compute-1")
        .expect("compute-1")
        .bind_vm(VmSpec::new("vm1", "0a:00:00:00:00:11", "10.0.0.11/24"))
        .await
        .expect("bind vm1");
    wait_bound(&nb, &sb).await;
    let real = dump(&sb);
    let real_writes = claim_writes(&sb, &sb_server.log_path);
    let real_monitors = monitors_after_reconnect(&sb_server.ctl_path, &sb_server.log_path).await;
    let real_specs: Vec<ChassisSpec> = ["compute-1", "gw-1"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut spec = ChassisSpec::new(*name, format!("198.18.9.{}", i + 1));
            spec.hostname = ctl("ovn-sbctl", &sb, &["get", "Chassis", name, "hostname"])
                .trim_matches('"')
                .to_owned();
            spec.monitor_all = other_config(&sb, name, "ovn-monitor-all") == "true";
            spec.bridge_mappings = other_config(&sb, name, "ovn-bridge-mappings");
            spec.cms_options = other_config(&sb, name, "ovn-cms-options");
            spec.is_gateway = spec.cms_options.contains("enable-chassis-as-gw") || *name == "gw-1";
            spec.datapath_type = other_config(&sb, name, "datapath-type");
            spec.iface_types = other_config(&sb, name, "iface-types");
            spec
        })
        .collect();
    lab.down().expect("lab down");

    // Emulated chassis, same topology.
    let central = test_support::Central::start("emu_fidelity");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let chassis: Vec<EmulatedChassis> = real_specs
        .into_iter()
        .map(|spec| EmulatedChassis::start(&sb, spec, ConnectPolicy::default()).expect("start"))
        .collect();
    for c in &chassis {
        c.wait_registered(WAIT).await.expect("registered");
    }
    appctl(central.sb().ctl_path(), &["vlog/set", "jsonrpc:file:dbg"]);
    build_topology(&nb);
    chassis[0].bind_port("vm1").expect("bind");
    wait_bound(&nb, &sb).await;
    let emulated = dump(&sb);
    let emulated_writes = claim_writes(&sb, central.sb().log_path());
    let emulated_monitors = monitors_after_reconnect(central.sb().ctl_path(), central.sb().log_path()).await;
    for c in &chassis {
        c.stop(false).await.unwrap();
    }

    for key in [
        "Chassis/compute-1",
        "Chassis/gw-1",
        "Encap/gw-1",
        "Chassis_Private/compute-1",
    ] {
        assert!(
            real.contains_key(key),
            "{key} missing from the real run: {:?}",
            real.keys()
        );
    }
    assert_eq!(real["Port_Binding/vm1"]["chassis"], Json::from("<chassis compute-1>"));
    assert_eq!(real["Port_Binding/cr-lrp-ext"]["chassis"], Json::from("<chassis gw-1>"));
    assert!(real["Chassis/gw-1"]["other_config"]
        .to_string()
        .contains("port-up-notif"));

    let mut differences = Vec::new();
    for key in real
        .keys()
        .chain(emulated.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (real.get(key), emulated.get(key)) {
            (Some(r), Some(e)) => {
                for column in r.keys().chain(e.keys()).collect::<std::collections::BTreeSet<_>>() {
                    if r.get(column) != e.get(column) {
                        differences.push(format!(
                            "{key}.{column}: real {} / emulated {}",
                            r.get(column).map_or("-".into(), Json::to_string),
                            e.get(column).map_or("-".into(), Json::to_string)
                        ));
                    }
                }
            }
            (r, _) => differences.push(format!(
                "{key}: only in the {} run",
                if r.is_some() { "real" } else { "emulated" }
            )),
        }
    }
    assert!(
        differences.is_empty(),
        "SB rows differ between real and emulated chassis:\n{}",
        differences.join("\n")
    );

    // The same transactions per claim, in the same order: the VM port claimed, then set up;
    // the gateway port claimed and up at once.
    assert_eq!(
        real_writes.get("vm1").map_or(0, Vec::len),
        2,
        "a real chassis claims vm1 in two transactions: {real_writes:#?}"
    );
    assert_eq!(
        real_writes, emulated_writes,
        "the SB write pattern of claims differs between real (left) and emulated (right) chassis"
    );

    // One monitor per chassis, asking the same tables and columns as ovn-controller.
    assert_eq!(real_monitors.len(), 2, "{real_monitors:?}");
    assert_eq!(emulated_monitors.len(), 2, "{emulated_monitors:?}");
    let real_monitor = &real_monitors[0];
    for emulated_monitor in &emulated_monitors {
        let differences: Vec<String> = real_monitor
            .keys()
            .chain(emulated_monitor.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|t| real_monitor.get(*t) != emulated_monitor.get(*t))
            .map(|t| {
                format!(
                    "{t}: real {:?} / emulated {:?}",
                    real_monitor.get(t),
                    emulated_monitor.get(t)
                )
            })
            .collect();
        assert!(
            differences.is_empty(),
            "monitor_cond_since differs between real and emulated chassis:\n{}",
            differences.join("\n")
        );
    }
}
