//! Emulated chassis against a real OVN central (NB + SB ovsdb-server + ovn-northd): what they
//! register, what they claim, and what northd makes of it in the NB.
//!
//! The NB is driven with `ovn-nbctl` and the SB read with `ovn-sbctl`, so the checks do not
//! depend on this workspace's own client beyond what the chassis use.

use std::process::Command;
use std::time::{Duration, Instant};

use ovn_emu::{ChassisSpec, ConnectPolicy, EmulatedChassis, Farm, FarmOptions};
use ovsdb::MonitorMethod;
use test_support::Central;

const WAIT: Duration = Duration::from_secs(30);

/// Skips (or fails under CI) unless the central's daemons and CLIs are installed.
macro_rules! require_central {
    ($test:expr) => {
        test_support::require_ovn!(
            $test,
            [
                "ovsdb-server",
                "ovsdb-tool",
                "ovn-northd",
                "ovn-nbctl",
                "ovn-sbctl"
            ]
        );
    };
}

fn ctl(tool: &str, db: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("--db={db}"))
        .arg("--timeout=30")
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

fn nbctl(central: &Central, args: &[&str]) -> String {
    ctl("ovn-nbctl", &central.nb_remote(), args)
}

fn sbctl(central: &Central, args: &[&str]) -> String {
    ctl("ovn-sbctl", &central.sb_remote(), args)
}

/// Polls `check` until it holds (bounded by [`WAIT`]); for state only visible through the CLIs.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start(central: &Central, spec: ChassisSpec) -> EmulatedChassis {
    EmulatedChassis::start(&central.sb_remote(), spec, ConnectPolicy::default()).expect("start chassis")
}

fn add_port(central: &Central, switch: &str, port: &str, mac_ip: &str) {
    nbctl(central, &["--may-exist", "ls-add", switch]);
    nbctl(
        central,
        &["lsp-add", switch, port, "--", "lsp-set-addresses", port, mac_ip],
    );
}

fn lsp_up(central: &Central, port: &str) -> bool {
    nbctl(central, &["get", "Logical_Switch_Port", port, "up"]) == "true"
}

fn port_chassis(central: &Central, port: &str) -> String {
    sbctl(
        central,
        &[
            "--bare",
            "--columns=chassis",
            "find",
            "Port_Binding",
            &format!("logical_port={port}"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_like_ovn_controller() {
    require_central!("registers_like_ovn_controller");
    let central = Central::start("emu_registers");
    let mut spec = ChassisSpec::new("emu-reg-1", "198.18.1.1");
    spec.bridge_mappings = "physnet1:br-ex".into();
    let chassis = start(&central, spec);
    let uuid = chassis.wait_registered(WAIT).await.expect("registered");

    assert_eq!(
        sbctl(&central, &["get", "Chassis", "emu-reg-1", "_uuid"]),
        uuid.to_string()
    );
    assert_eq!(
        sbctl(&central, &["get", "Chassis", "emu-reg-1", "hostname"]),
        "emu-reg-1"
    );
    let other_config = sbctl(&central, &["get", "Chassis", "emu-reg-1", "other_config"]);
    for key in [
        "datapath-type",
        "iface-types",
        "port-up-notif=\"true\"",
        "ovn-monitor-all=\"false\"",
    ] {
        assert!(other_config.contains(key), "{key} missing from {other_config}");
    }
    assert!(
        other_config.contains("ovn-bridge-mappings=\"physnet1:br-ex\""),
        "{other_config}"
    );
    let encap = sbctl(&central, &["--columns=type,ip,options,chassis_name", "list", "Encap"]);
    assert!(
        encap.contains("geneve") && encap.contains("198.18.1.1") && encap.contains("csum"),
        "{encap}"
    );
    assert!(encap.contains("emu-reg-1"), "{encap}");
    assert_eq!(
        sbctl(&central, &["get", "Chassis_Private", "emu-reg-1", "chassis"]),
        uuid.to_string()
    );

    chassis.stop(true).await.expect("stop with cleanup");
    assert_eq!(sbctl(&central, &["--columns=name", "list", "Chassis"]), "");
    assert_eq!(sbctl(&central, &["--columns=name", "list", "Chassis_Private"]), "");
    assert_eq!(sbctl(&central, &["--columns=ip", "list", "Encap"]), "");
}

/// Bind, claim, up in the NB, then unbind and release; for both monitoring modes, over the
/// one `monitor_cond_since` ovn-controller uses.
async fn bind_and_unbind(test: &str, monitor_all: bool) {
    let central = Central::start(test);
    let name = format!("emu-bind-{monitor_all}");
    let mut spec = ChassisSpec::new(name.as_str(), "198.18.2.1");
    spec.monitor_all = monitor_all;
    let chassis = start(&central, spec);
    let me = chassis.wait_registered(WAIT).await.expect("registered");
    assert_eq!(chassis.status().monitor_method, Some(MonitorMethod::CondSince));

    // A port that exists before it is bound, and one bound before it exists.
    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    nbctl(&central, &["--wait=sb", "sync"]);
    chassis.bind_port("vm1").expect("bind vm1");
    chassis.bind_port("vm2").expect("bind vm2");
    add_port(&central, "net1", "vm2", "fa:16:3e:00:00:02 10.0.0.6");

    for port in ["vm1", "vm2"] {
        let status = chassis.wait_port_up(port, WAIT).await.expect("port up");
        assert!(status.claimed_at.is_some());
        assert_eq!(port_chassis(&central, port), me.to_string());
        eventually(&format!("NB {port} up"), || lsp_up(&central, port)).await;
    }

    // A port of a datapath already local: its row arrived (the monitor covers net1 now) and
    // was dropped by the filter before the port was bound here, so the chassis fetches it.
    add_port(&central, "net1", "vm3", "fa:16:3e:00:00:03 10.0.0.7");
    nbctl(&central, &["--wait=sb", "sync"]);
    assert_eq!(chassis.port("vm3"), None);
    chassis.bind_port("vm3").expect("bind vm3");
    chassis.wait_port_up("vm3", WAIT).await.expect("vm3 up");
    assert_eq!(port_chassis(&central, "vm3"), me.to_string());

    chassis.unbind_port("vm1").expect("unbind");
    eventually("vm1 released", || {
        sbctl(
            &central,
            &[
                "--bare",
                "--columns=chassis,up",
                "find",
                "Port_Binding",
                "logical_port=vm1",
            ],
        ) == "false"
    })
    .await;
    eventually("NB vm1 down", || !lsp_up(&central, "vm1")).await;
    assert!(lsp_up(&central, "vm2"));
    let held = chassis.status().rows_held;
    assert_eq!(held.get("Logical_Flow"), None, "{held:?}");
    assert_eq!(held.get("Datapath_Binding"), None, "{held:?}");
    chassis.stop(false).await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_releases_with_monitor_all() {
    require_central!("claims_and_releases_with_monitor_all");
    bind_and_unbind("emu_bind_all", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_releases_with_conditions() {
    require_central!("claims_and_releases_with_conditions");
    bind_and_unbind("emu_bind_cond", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nb_cfg_ack_lets_wait_hv_return() {
    require_central!("nb_cfg_ack_lets_wait_hv_return");
    let central = Central::start("emu_nb_cfg");
    let farm = Farm::start(&central.sb_remote(), 3, "emu-cfg", FarmOptions::default())
        .await
        .expect("farm");
    farm.wait_registered(WAIT).await.expect("registered");

    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    // Returns only once every Chassis_Private has acked the new nb_cfg.
    nbctl(&central, &["--wait=hv", "sync"]);
    let nb_cfg: i64 = nbctl(&central, &["get", "NB_Global", ".", "nb_cfg"]).parse().unwrap();
    let hv_cfg: i64 = nbctl(&central, &["get", "NB_Global", ".", "hv_cfg"]).parse().unwrap();
    assert!(nb_cfg > 0);
    assert_eq!(hv_cfg, nb_cfg);
    for c in farm.chassis() {
        let acked: i64 = sbctl(&central, &["get", "Chassis_Private", c.name(), "nb_cfg"])
            .parse()
            .unwrap();
        assert_eq!(acked, nb_cfg, "{}", c.name());
        let stamp: i64 = sbctl(&central, &["get", "Chassis_Private", c.name(), "nb_cfg_timestamp"])
            .parse()
            .unwrap();
        assert!(stamp > 0);
    }
    assert_eq!(farm.status().min_nb_cfg, Some(nb_cfg));
    farm.stop(true).await.expect("stop");
    assert_eq!(sbctl(&central, &["--columns=name", "list", "Chassis"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_requested_chassis() {
    require_central!("honours_requested_chassis");
    let central = Central::start("emu_requested");
    let options = FarmOptions {
        monitor_all: true,
        ..FarmOptions::default()
    };
    let farm = Farm::start(&central.sb_remote(), 2, "emu-req", options)
        .await
        .expect("farm");
    farm.wait_registered(WAIT).await.expect("registered");
    let (first, second) = (farm.get("emu-req-1").unwrap(), farm.get("emu-req-2").unwrap());

    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    nbctl(&central, &["lsp-set-options", "vm1", "requested-chassis=emu-req-2"]);
    nbctl(&central, &["--wait=sb", "sync"]);
    // Bound on both (as during a live migration's plug on the target); only the requested one claims.
    first.bind_port("vm1").unwrap();
    second.bind_port("vm1").unwrap();
    second
        .wait_port_up("vm1", WAIT)
        .await
        .expect("requested chassis claims");
    nbctl(&central, &["--wait=hv", "sync"]);
    let refused = first.port("vm1").expect("bound on first");
    assert!(refused.claimed_at.is_none());
    assert!(refused.refused.is_some(), "{refused:?}");
    farm.stop(false).await.unwrap();
}

/// A port that starts requesting a farm chassis after it exists (Neutron binds it to a host
/// later): with monitor-all the SB change is a `modify` diff of a row the chassis did not
/// keep, so the filter asks for the whole row; with conditions the row starts matching
/// `requested_chassis` and the server sends it whole.
async fn claims_port_requesting_it_later(test: &str, monitor_all: bool) {
    let central = Central::start(test);
    let options = FarmOptions {
        monitor_all,
        bind_requested: true,
        ..FarmOptions::default()
    };
    let prefix = format!("emu-auto-{monitor_all}");
    let farm = Farm::start(&central.sb_remote(), 2, &prefix, options)
        .await
        .expect("farm");
    farm.wait_registered(WAIT).await.expect("registered");
    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    nbctl(&central, &["--wait=hv", "sync"]);
    assert_eq!(port_chassis(&central, "vm1"), "");
    let target = format!("{prefix}-2");
    nbctl(
        &central,
        &["lsp-set-options", "vm1", &format!("requested-chassis={target}")],
    );
    eventually("NB vm1 up", || lsp_up(&central, "vm1")).await;
    assert_eq!(
        port_chassis(&central, "vm1"),
        sbctl(&central, &["get", "Chassis", &target, "_uuid"])
    );
    farm.stop(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_port_requesting_it_later_with_monitor_all() {
    require_central!("claims_port_requesting_it_later_with_monitor_all");
    claims_port_requesting_it_later("emu_auto_bind_all", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_port_requesting_it_later_with_conditions() {
    require_central!("claims_port_requesting_it_later_with_conditions");
    claims_port_requesting_it_later("emu_auto_bind_cond", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_claims_its_chassisredirect_port() {
    require_central!("gateway_claims_its_chassisredirect_port");
    let central = Central::start("emu_gateway");
    let options = FarmOptions {
        gateways: 2,
        ..FarmOptions::default()
    };
    let farm = Farm::start(&central.sb_remote(), 3, "emu-gw", options)
        .await
        .expect("farm");
    farm.wait_registered(WAIT).await.expect("registered");
    let cms = sbctl(
        &central,
        &["get", "Chassis", "emu-gw-1", "other_config:ovn-cms-options"],
    );
    assert_eq!(cms, "enable-chassis-as-gw");

    nbctl(&central, &["lr-add", "r1"]);
    nbctl(
        &central,
        &["lrp-add", "r1", "lrp-ext", "fa:16:3e:00:00:10", "172.24.0.1/24"],
    );
    nbctl(&central, &["lrp-set-gateway-chassis", "lrp-ext", "emu-gw-1", "10"]);
    nbctl(&central, &["lrp-set-gateway-chassis", "lrp-ext", "emu-gw-2", "20"]);
    let holder = || {
        sbctl(
            &central,
            &[
                "--bare",
                "--columns=chassis",
                "find",
                "Port_Binding",
                "logical_port=cr-lrp-ext",
            ],
        )
    };
    let gw2 = sbctl(&central, &["get", "Chassis", "emu-gw-2", "_uuid"]);
    eventually("cr-lrp-ext claimed by the highest priority gateway", || holder() == gw2).await;
    assert_eq!(
        sbctl(
            &central,
            &[
                "--bare",
                "--columns=up",
                "find",
                "Port_Binding",
                "logical_port=cr-lrp-ext"
            ]
        ),
        "true"
    );

    // The active gateway goes away: the next one takes over.
    farm.get("emu-gw-2").unwrap().stop(true).await.unwrap();
    let gw1 = sbctl(&central, &["get", "Chassis", "emu-gw-1", "_uuid"]);
    eventually("cr-lrp-ext moved to the remaining gateway", || holder() == gw1).await;
    farm.stop(false).await.unwrap();
}

/// The SB server's own log of `monitor_cond_change` requests: what conditions the chassis
/// asked for, as the server received them.
fn condition_changes(central: &Central) -> String {
    std::fs::read_to_string(central.sb().log_path())
        .expect("SB log")
        .lines()
        .filter(|l| l.contains("monitor_cond_change"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn datapath_of(central: &Central, switch: &str) -> String {
    sbctl(
        central,
        &[
            "--bare",
            "--columns=_uuid",
            "find",
            "Datapath_Binding",
            &format!("external_ids:name={switch}"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_follow_local_datapaths() {
    require_central!("conditions_follow_local_datapaths");
    let central = Central::start("emu_conditions");
    central
        .sb()
        .appctl(&["vlog/set", "jsonrpc:file:dbg"])
        .expect("SB jsonrpc debug log");
    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    add_port(&central, "net2", "vm2", "fa:16:3e:00:00:02 10.0.1.5");
    nbctl(&central, &["--wait=sb", "sync"]);
    let (net1, net2) = (datapath_of(&central, "net1"), datapath_of(&central, "net2"));
    assert!(!net1.is_empty() && !net2.is_empty());

    let conditional = start(&central, ChassisSpec::new("emu-cond-1", "198.18.3.1"));
    let mut all = ChassisSpec::new("emu-cond-2", "198.18.3.2");
    all.monitor_all = true;
    let everything = start(&central, all);
    conditional.wait_registered(WAIT).await.unwrap();
    everything.wait_registered(WAIT).await.unwrap();
    for c in [&conditional, &everything] {
        assert_eq!(c.status().monitor_method, Some(MonitorMethod::CondSince));
    }
    assert!(!condition_changes(&central).contains(&net1), "no local datapath yet");

    conditional.bind_port("vm1").unwrap();
    conditional.wait_port_up("vm1", WAIT).await.unwrap();
    eventually("conditions on net1's datapath", || {
        let changes = condition_changes(&central);
        changes.contains("emu-cond-1") && changes.contains(&net1)
    })
    .await;
    let changes = condition_changes(&central);
    assert!(!changes.contains(&net2), "net2 is not local: {changes}");
    assert!(changes.contains("logical_dp_group"), "{changes}");

    // Whatever the server sends, both keep only their own rows: no flows, one port.
    for c in [&conditional, &everything] {
        let held = c.status().rows_held;
        assert_eq!(held.get("Logical_Flow"), None, "{held:?}");
        assert!(held.get("Port_Binding").copied().unwrap_or(0) <= 1, "{held:?}");
    }
    conditional.stop(false).await.unwrap();
    everything.stop(false).await.unwrap();
}

/// The SB restarts under a chassis with a bound port: the chassis reconnects, its monitor
/// resumes or resyncs (the filter keeps what it kept), and it goes on claiming and releasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_working_across_an_sb_restart() {
    require_central!("keeps_working_across_an_sb_restart");
    let mut central = Central::start("emu_sb_restart");
    // With conditions: the resumed monitor must carry the conditions changed since it began.
    let chassis = start(&central, ChassisSpec::new("emu-restart-1", "198.18.4.1"));
    let me = chassis.wait_registered(WAIT).await.expect("registered");
    add_port(&central, "net1", "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    chassis.bind_port("vm1").unwrap();
    chassis.wait_port_up("vm1", WAIT).await.expect("vm1 up");

    central.sb_mut().restart();
    eventually("a reconnect", || chassis.status().reconnects >= 1).await;
    // Created while the chassis may still be reconnecting: it arrives through the resumed
    // monitor or with the new initial contents.
    add_port(&central, "net1", "vm2", "fa:16:3e:00:00:02 10.0.0.6");
    nbctl(&central, &["--wait=sb", "sync"]);
    chassis.bind_port("vm2").unwrap();
    chassis
        .wait_port_up("vm2", WAIT)
        .await
        .expect("vm2 up after the restart");
    assert_eq!(port_chassis(&central, "vm2"), me.to_string());
    assert_eq!(chassis.status().monitor_method, Some(MonitorMethod::CondSince));

    chassis.unbind_port("vm1").unwrap();
    eventually("vm1 released after the restart", || {
        port_chassis(&central, "vm1").is_empty()
    })
    .await;
    chassis.stop(true).await.expect("stop");
}
