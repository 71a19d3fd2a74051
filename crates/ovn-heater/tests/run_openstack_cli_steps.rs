//! `ovn-heater run` with `openstack_base.steps`: openstack CLI lines repeated with `${i}`, on
//! an OVN central started outside ovn-heater with emulated chassis (no root needed). Each
//! step's repetitions are samples of its own measurement; servers come up as in the base test.

use std::process::Command;

use test_support::server::Central;

const SCENARIO: &str = r#"
cluster:
  chassis: emulated
  node_timeout_s: 30
openstack_base:
  n_hypervisors: 2
  n_network_nodes: 1
  steps:
    - openstack: network create net${i}
      repeat: 3
    - openstack: subnet create --network net${i} --subnet-range 10.${i}.0.0/24 sub${i}
      repeat: 3
    - openstack: security group create sg${i}
      repeat: 2
    - openstack: security group rule create --ingress --protocol tcp --dst-port 22 sg${i}
      repeat: 2
    - openstack: server create --network net2 vm${i}
      repeat: 4
    - openstack: port create --network net${i} --fixed-ip ip-address=10.${i}.0.100 p${i}
      repeat: 2
"#;

#[test]
fn run_openstack_cli_steps_with_emulated_chassis() {
    test_support::require_ovn!(
        "run_openstack_cli_steps_with_emulated_chassis",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd"]
    );
    let central = Central::start("run_openstack_cli_steps");
    let dir = test_support::TempDir::new("run_openstack_cli_steps");
    let scenario = dir.path().join("cli.yml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(
        env!("CARGO_BIN_EXE_ovn-heater"),
        &scenario,
        &["--nb", &central.nb_remote(), "--sb", &central.sb_remote()],
        &results,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "complete", "{}", r["error"]);
    let stage = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "openstack_cli")
        .unwrap_or_else(|| panic!("no openstack_cli stage: {}", r["stages"]));
    let m = &stage["measurements"];
    for (name, count) in [
        ("network_create", 3),
        ("subnet_create", 3),
        ("security_group_create", 2),
        ("security_group_rule_create", 2),
        ("port_create", 2),
        ("create_port", 4),
        ("port_up", 4),
    ] {
        assert_eq!(m[name]["stats"]["count"], count, "{name}: {}", m[name]);
        assert_eq!(m[name]["stats"]["failed"], 0, "{name}: {}", m[name]);
    }
}

#[test]
fn a_bad_step_line_is_refused_before_the_run() {
    let dir = test_support::TempDir::new("run_openstack_cli_bad_step");
    let scenario = dir.path().join("bad.yml");
    std::fs::write(
        &scenario,
        "cluster:\n  chassis: emulated\nopenstack_base:\n  steps:\n    - openstack: network create --mtu-typo 1400 net${i}\n      repeat: 2\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&scenario)
        .args(["--nb", "unix:/nonexistent/nb.sock", "--sb", "unix:/nonexistent/sb.sock"])
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("steps[1]") && stderr.contains("--mtu-typo"), "{stderr}");
}
