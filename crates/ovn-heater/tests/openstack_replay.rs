//! `ovn-heater openstack replay` against a real NB + SB + ovn-northd: a steps file in the
//! openstack CLI's vocabulary builds a topology and deletes it again (the NB ends as it
//! started), and a step Neutron would refuse stops the replay with exit code 2.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ovn_openstack::snapshot::{diff_text, Normalizer};
use test_support::{Central, TempDir};

/// Runs the binary with a deadline (killed if it overruns): its exit code and output.
fn run_bounded(args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    test_support::run_bounded(Command::new(env!("CARGO_BIN_EXE_ovn-heater")).args(args), timeout)
}

const STEPS: &str = r#"
description: build and tear down
steps:
  - ovn: register-chassis hv1 --encap-ip 127.0.0.1
  - ovn: register-chassis gw1 --encap-ip 127.0.0.2 --gateway --bridge-mappings physnet1:br-ex
  - dump: start
  - openstack: network create --external --provider-network-type vlan --provider-segment 42 --provider-physical-network physnet1 public
    project: admin
  - openstack: subnet create --network public --no-dhcp --subnet-range 172.24.4.0/24 public-sub
    project: admin
  - openstack: network create net1
  - openstack: subnet create --network net1 --subnet-range 10.0.0.0/24 sub1
  - openstack: router create r1
  - openstack: router set --external-gateway public r1
  - ovn: claim-gateway r1
  - openstack: router add subnet r1 sub1
  - openstack: security group create web
  - openstack: security group rule create --ingress --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 web
    save: ssh
  - openstack: port create --network net1 --security-group web --fixed-ip ip-address=10.0.0.50 p1
  - openstack: port set --device-owner compute:nova --host hv1 p1
  - ovn: claim-port p1 hv1 --up
  - openstack: server create --network net1 --host hv1 vm1
  - openstack: floating ip create public
    save: fip
  - openstack: floating ip set --port ${vm1} ${fip}
    dump: built
  - openstack: floating ip unset --port ${fip}
  - openstack: floating ip delete ${fip}
  - openstack: server delete vm1
  - openstack: port delete p1
  - openstack: security group rule delete ${ssh}
  - openstack: security group delete web
  - openstack: router unset --external-gateway r1
  - openstack: router set --external-gateway public r1
  - openstack: router remove subnet r1 sub1
  - openstack: router delete r1
  - openstack: subnet delete sub1
  - openstack: network delete net1
  - openstack: subnet delete public-sub
  - openstack: network delete public
  # Admin's first: resolving a group's name lists groups, which recreates the request
  # project's (fake_project_id's) default group, as Neutron does.
  - openstack: security group delete default
    project: admin
  - openstack: security group delete default
    project: fake_project_id
    dump: after-net1-default
"#;

fn body(path: &Path, n: &mut Normalizer) -> String {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("dump")).expect("json");
    n.normalize(&doc)
        .expect("normalize")
        .lines()
        .skip(3)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn openstack_replay_builds_and_tears_down() {
    test_support::require_ovn!(
        "openstack_replay_builds_and_tears_down",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    replay_round_trip("gateway-chassis", true);
}

#[test]
fn openstack_replay_with_ha_chassis_groups() {
    test_support::require_ovn!(
        "openstack_replay_with_ha_chassis_groups",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    replay_round_trip("ha-chassis-group", false);
}

fn replay_round_trip(layout: &str, check_errors: bool) {
    let central = Central::start(&format!("openstack_replay_{layout}"));
    let dir = TempDir::new(&format!("openstack_replay_{layout}"));
    let steps = dir.path().join("steps.yml");
    std::fs::write(&steps, STEPS).unwrap();
    let out = dir.path().join("dumps");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let args = [
        "openstack",
        "replay",
        steps.to_str().unwrap(),
        "--nb",
        &nb,
        "--sb",
        &sb,
        "--dump-dir",
        out.to_str().unwrap(),
        "--gateway-layout",
        layout,
    ];
    let (code, log) = run_bounded(&args, Duration::from_secs(120));
    assert_eq!(code, Some(0), "replay failed:\n{log}");
    let mut n = Normalizer::new();
    let start = body(&out.join("start.json"), &mut n);
    let built = body(&out.join("built.json"), &mut n);
    assert!(built.contains("type = \"dnat_and_snat\""), "{built}");
    assert!(built.contains("tcp.dst == 22"), "{built}");
    let end = body(&out.join("after-net1-default.json"), &mut n);
    assert!(
        end == start,
        "NB after teardown differs (- start, + end):\n{}",
        diff_text(&start, &end)
    );
    assert_gateway_layout(&out.join("built.json"), layout);
    if !check_errors {
        return;
    }

    // A step Neutron refuses: exit 2, naming the step and the problem.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "steps:\n  - openstack: router add subnet nope sub1\n").unwrap();
    let mut bad_args = args;
    bad_args[2] = bad.to_str().unwrap();
    let (code, log) = run_bounded(&bad_args, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("step 1") && log.contains("unknown router \"nope\""),
        "{log}"
    );

    // An unknown command is bad input too.
    std::fs::write(&bad, "steps:\n  - openstack: volume create v1\n").unwrap();
    let (code, log) = run_bounded(&bad_args, Duration::from_secs(60));
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("unsupported openstack command"), "{log}");
}

/// The rows the router's gateway port has in `layout`, exactly: gw1 (the only gateway chassis)
/// as its one Gateway_Chassis, or as the one HA_Chassis of its one HA_Chassis_Group; never
/// both kinds.
fn assert_gateway_layout(dump: &Path, layout: &str) {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dump).expect("dump")).expect("json");
    let rows = |table: &str| doc["tables"][table].as_array().cloned().unwrap_or_default();
    let gateway_ports: Vec<serde_json::Value> = rows("Logical_Router_Port")
        .into_iter()
        .filter(|p| {
            let gc = &p["gateway_chassis"];
            let hg = &p["ha_chassis_group"];
            !(gc == &serde_json::json!(["set", []]) && hg == &serde_json::json!(["set", []]))
        })
        .collect();
    assert_eq!(gateway_ports.len(), 1, "one gateway port: {gateway_ports:#?}");
    let (gc, hcg, hc) = (rows("Gateway_Chassis"), rows("HA_Chassis_Group"), rows("HA_Chassis"));
    match layout {
        "gateway-chassis" => {
            assert_eq!(gc.len(), 1, "{gc:#?}");
            assert_eq!(gc[0]["chassis_name"], "gw1");
            assert_eq!((hcg.len(), hc.len()), (0, 0), "{hcg:#?} {hc:#?}");
            assert_eq!(gateway_ports[0]["gateway_chassis"], gc[0]["_uuid"]);
        }
        "ha-chassis-group" => {
            assert_eq!(gc.len(), 0, "{gc:#?}");
            assert_eq!((hcg.len(), hc.len()), (1, 1), "{hcg:#?} {hc:#?}");
            assert_eq!(hc[0]["chassis_name"], "gw1");
            assert_eq!(hcg[0]["ha_chassis"], hc[0]["_uuid"]);
            assert_eq!(gateway_ports[0]["ha_chassis_group"], hcg[0]["_uuid"]);
        }
        other => panic!("unknown layout {other}"),
    }
}
