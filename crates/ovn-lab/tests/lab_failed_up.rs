//! A bring-up that fails half-way (an `ovn-controller` that cannot start, from a fake
//! `--ovn-bin-dir`) reports the failing command and its output, and leaves no process or
//! namespace behind.

mod common;

use std::os::unix::fs::PermissionsExt;

use ovn_lab::{Error, Lab, LabSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_failed_up_leaves_nothing() {
    test_support::require_root!("lab_failed_up_leaves_nothing");
    test_support::require_ovn!(
        "lab_failed_up_leaves_nothing",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-vswitchd", "ovs-vsctl"]
    );
    let dir = test_support::TempDir::new("lab_failed_up");
    let bin = dir.path().join("ovn-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = ovn_lab::Binaries::locate(None, None).expect("installed OVN");
    std::os::unix::fs::symlink(&real.ovn_northd, bin.join("ovn-northd")).unwrap();
    std::os::unix::fs::symlink(&real.nb_schema, bin.join("ovn-nb.ovsschema")).unwrap();
    std::os::unix::fs::symlink(&real.sb_schema, bin.join("ovn-sb.ovsschema")).unwrap();
    let fake = bin.join("ovn-controller");
    std::fs::write(&fake, "#!/bin/sh\necho 'simulated controller failure' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut spec = LabSpec::new(dir.path().join("run")).with_chassis(2, 0);
    spec.binaries.ovn_bin_dir = Some(bin);
    let prefix = spec.prefix();
    let err = match Lab::up(spec).await {
        Err(e) => e,
        Ok(_) => panic!("bring-up with a broken ovn-controller must fail"),
    };
    match &err {
        Error::ProcessFailed { binary, log_tail, .. } => {
            assert_eq!(binary, "ovn-controller");
            assert!(log_tail.contains("simulated controller failure"), "{err}");
        }
        e => panic!("expected ProcessFailed, got {e}"),
    }
    assert!(!err.is_preflight());

    // Everything recorded before the failure is gone.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/lab.down.json")).unwrap()).unwrap();
    let pids: Vec<u32> = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap() as u32)
        .collect();
    assert!(
        pids.len() >= 5,
        "NB, SB, northd and the chassis daemons were started: {pids:?}"
    );
    common::assert_nothing_left(&prefix, &pids);
}
