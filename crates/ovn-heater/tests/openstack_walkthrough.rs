//! Fidelity: `ovn-heater openstack walkthrough` against a real NB + SB + ovn-northd writes,
//! step by step, the NB real Neutron 21.0.0 wrote (`neutron-reference/snapshots`, vendored in
//! `crates/ovn-openstack/tests/reference`): each dump, normalized by the Rust port of
//! `normalize.py` across the whole run, equals the reference `.txt` line for line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ovn_openstack::snapshot::{diff_text, Normalizer, REFERENCE_STEPS as STEPS};
use test_support::{Central, TempDir};

/// Runs the binary with a deadline (killed if it overruns): whether it succeeded, its output.
fn run_bounded(args: &[&str], timeout: Duration) -> (bool, String) {
    let (code, text) = test_support::run_bounded(Command::new(env!("CARGO_BIN_EXE_ovn-heater")).args(args), timeout);
    (code == Some(0), text)
}

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ovn-openstack/tests/reference")
}

fn normalize_dir(dir: &Path) -> Vec<String> {
    let mut n = Normalizer::new();
    STEPS
        .iter()
        .map(|step| {
            let path = dir.join(format!("{step}.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let doc: serde_json::Value = serde_json::from_str(&text).expect("dump is JSON");
            n.normalize(&doc).expect("dump normalizes")
        })
        .collect()
}

#[test]
fn openstack_walkthrough_matches_real_neutron() {
    test_support::require_ovn!(
        "openstack_walkthrough_matches_real_neutron",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let central = Central::start("openstack_walkthrough");
    let out = TempDir::new("openstack_walkthrough_dumps");
    let dump_dir = out.path().to_str().expect("utf-8 path").to_owned();
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let (ok, log) = run_bounded(
        &[
            "openstack",
            "walkthrough",
            "--nb",
            &nb,
            "--sb",
            &sb,
            "--dump-dir",
            &dump_dir,
        ],
        Duration::from_secs(120),
    );
    assert!(ok, "walkthrough failed:\n{log}");

    let ours = normalize_dir(out.path());
    for (step, got) in STEPS.iter().zip(ours) {
        let want = std::fs::read_to_string(reference_dir().join(format!("{step}.txt"))).expect("reference .txt");
        assert!(
            got == want,
            "{step}: our NB differs from real Neutron's (- real, + ours):\n{}",
            diff_text(&want, &got)
        );
    }
}

#[test]
fn openstack_walkthrough_with_ha_chassis_groups() {
    test_support::require_ovn!(
        "openstack_walkthrough_with_ha_chassis_groups",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let central = Central::start("openstack_walkthrough_ha");
    let out = TempDir::new("openstack_walkthrough_ha_dumps");
    let dump_dir = out.path().to_str().expect("utf-8 path").to_owned();
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let (ok, log) = run_bounded(
        &[
            "openstack",
            "walkthrough",
            "--nb",
            &nb,
            "--sb",
            &sb,
            "--dump-dir",
            &dump_dir,
            "--gateway-layout",
            "ha-chassis-group",
        ],
        Duration::from_secs(120),
    );
    assert!(ok, "walkthrough failed:\n{log}");
    let texts = normalize_dir(out.path());
    let last = texts.last().expect("14 dumps");
    assert!(last.contains("== HA_Chassis_Group (1 rows)"), "{last}");
    assert!(last.contains("chassis_name = \"gw1\""), "{last}");
    assert!(!last.contains("== Gateway_Chassis"), "{last}");
    assert!(last.contains("ha_chassis_group = @HA_Chassis_Group#1"), "{last}");
}
