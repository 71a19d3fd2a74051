//! `ovn-heater kubernetes run-emulated`: upstream's CI scenario `ovn-low-scale.yml`, unchanged
//! but for `--set global.cleanup=true`, runs all nine tests on emulated chassis (both
//! compat modes) and on real chassis (`--real`: pods in namespaces, every ping answered), every
//! pod comes up, and nothing is left running.

use std::process::Command;

use test_support::TempDir;

fn scenario(name: &str) -> String {
    format!("{}/../../scenarios/ovn-kubernetes/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(extra: &[&str]) -> String {
    run_in(&TempDir::new("kube_run_emulated"), extra)
}

/// Runs `ovn-low-scale.yml` with its lab in `dir/lab` (kept for the caller to inspect).
fn run_in(dir: &TempDir, extra: &[&str]) -> String {
    let run_dir = dir.path().join("lab");
    let mut args = vec![
        "kubernetes".to_owned(),
        "run-emulated".to_owned(),
        scenario("ovn-low-scale.yml"),
        "--set".to_owned(),
        "global.cleanup=true".to_owned(),
        "--run-dir".to_owned(),
        run_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(&args)
        .output()
        .expect("run ovn-heater");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "run-emulated failed:\n{text}");
    text
}

fn assert_all_tests_ran(text: &str) {
    for context in [
        "base_cluster_bringup-run",
        "cluster_density-run",
        "density_heavy-run",
        "density_light-run",
        "netpol_large-run",
        "netpol_multitenant-run",
        "netpol_small-run",
        "service_route-run",
        "service_route-cleanup",
    ] {
        assert!(text.contains(context), "{context} missing:\n{text}");
    }
    assert!(
        text.contains("2 chassis registered") && text.contains(" 0 errors"),
        "{text}"
    );
}

#[test]
fn kubernetes_run_emulated_ovn_low_scale_fixed() {
    test_support::require_root!("kubernetes_run_emulated_ovn_low_scale_fixed");
    test_support::require_ovn!(
        "kubernetes_run_emulated_ovn_low_scale_fixed",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let text = run(&[]);
    assert_all_tests_ran(&text);
    assert!(text.contains("netpol_cross_ns-run"), "{text}");
    assert!(text.contains("compat fixed, IPv4 true, IPv6 true"), "{text}");
}

#[test]
fn kubernetes_run_emulated_ovn_low_scale_upstream_compat() {
    test_support::require_root!("kubernetes_run_emulated_ovn_low_scale_upstream_compat");
    test_support::require_ovn!(
        "kubernetes_run_emulated_ovn_low_scale_upstream_compat",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let text = run(&["--set", "global.ovnk_compat=upstream"]);
    assert_all_tests_ran(&text);
    assert!(text.contains("compat upstream"), "{text}");
}

#[test]
fn kubernetes_run_real_chassis_ovn_low_scale() {
    test_support::require_lab!("kubernetes_run_real_chassis_ovn_low_scale", ["ovs-appctl"]);
    let dir = TempDir::new("kube_run_real");
    let text = run_in(&dir, &["--real", "--pod-timeout", "30s"]);
    // `fixed` writes matches ovn-controller accepts (upstream's it rejects: "error parsing match").
    for chassis in ["ovn-scale-0", "ovn-scale-1"] {
        let log = dir.path().join("lab/hv").join(chassis).join("ovn-controller.log");
        let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(log.contains("Claiming lport"), "{chassis} claimed nothing:\n{log}");
        assert!(!log.contains("error parsing match"), "{chassis}:\n{log}");
    }
    for context in [
        "base_cluster_bringup-run",
        "netpol_multitenant-run",
        "service_route-cleanup",
    ] {
        assert!(text.contains(context), "{context} missing:\n{text}");
    }
    assert!(
        text.contains("on 2 real workers") && text.contains(" pings, 0 failed"),
        "{text}"
    );
}

#[test]
fn kubernetes_run_emulated_refuses_bad_scenarios_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["kubernetes", "run-emulated", &scenario("ovn-low-scale-ic.yml")])
        .output()
        .expect("run ovn-heater");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("n_az"));
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args([
            "kubernetes",
            "run-emulated",
            &scenario("ovn-low-scale.yml"),
            "--set",
            "netpol_small.n_labels=2",
        ])
        .output()
        .expect("run ovn-heater");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("n_labels"));
}
