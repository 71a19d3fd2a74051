//! `ovn-heater run` of upstream's ovn-kubernetes scenarios: results.json and report.html as for
//! OpenStack runs. Upstream CI's `ovn-low-scale.yml` on real chassis (dual-stack pods in
//! namespaces of their own, every pod up, every IPv4 and IPv6 ping answered), and `ocp-120-density-light.yml` on emulated
//! chassis, scaled down with `--set`.

use std::process::Command;

use test_support::TempDir;

fn scenario(name: &str) -> String {
    format!("{}/../../scenarios/ovn-kubernetes/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ovn-heater run SCENARIO --results-dir DIR/results EXTRA...` and returns results.json.
fn run(dir: &TempDir, name: &str, extra: &[&str]) -> serde_json::Value {
    let results = dir.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(scenario(name))
        .arg("--results-dir")
        .arg(&results)
        .args(extra)
        .output()
        .expect("run ovn-heater");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ovn-heater run {name} failed:\n{text}");
    let html = std::fs::read_to_string(results.join("report.html")).expect("report.html");
    assert!(html.contains("passed: "), "the report's verdict");
    serde_json::from_slice(&std::fs::read(results.join("results.json")).expect("results.json")).unwrap()
}

fn stage<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {}", r["stages"]))
}

/// What every ovn-kubernetes run's results hold: complete, pods up, the tester and northd
/// measured, CPU seconds per stage.
fn assert_common(r: &serde_json::Value, chassis: &str) {
    assert_eq!(r["status"], "complete");
    assert_eq!(r["environment"]["chassis"], chassis);
    assert!(r["scenario"]["workload"]
        .as_str()
        .unwrap()
        .starts_with("ovn_kubernetes"));
    let s = &r["summary"];
    assert!(s["ports_created"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["ports_created"], s["ports_up"], "{s}");
    assert_eq!(s["failures"], 0, "{s}");
    let up = &stage(r, "base_cluster_bringup-run")["measurements"]["port_up"]["stats"];
    assert!(up["count"].as_u64().unwrap() > 0 && up["failed"] == 0, "{up}");
    let processes = r["processes"].as_array().unwrap();
    assert!(processes
        .iter()
        .any(|p| p["role"] == "tester" && p["name"] == "ovn-heater"));
    assert!(processes.iter().any(|p| p["role"] == "northd"));
    for st in r["stages"].as_array().unwrap() {
        assert!(st["cpu_s"]["ovn-heater"].as_f64().is_some(), "cpu_s of {}", st["name"]);
        // Host CPU, poll-interval counts, northd's own counters for this Context alone, and
        // each daemon's memory/show at its end.
        assert!(st["host_cpu"]["steal_s"].is_number(), "host_cpu of {}", st["name"]);
        assert!(
            st["poll_intervals"]["northd"]["count"].is_u64(),
            "poll_intervals of {}",
            st["name"]
        );
        assert_eq!(st["northd"]["since_previous_stage"], true, "northd of {}", st["name"]);
        let northd_memory = st["daemons"]["northd"]["memory"].as_object();
        assert!(
            northd_memory.is_some_and(|m| !m.is_empty()),
            "daemons of {}",
            st["name"]
        );
    }
    assert!(r["environment"]["binaries"]["ovn-northd"]["path"].is_string());
}

#[test]
fn run_ovn_low_scale_on_real_chassis_writes_results() {
    test_support::require_lab!("run_ovn_low_scale_on_real_chassis_writes_results", ["ovs-appctl"]);
    let dir = TempDir::new("kube_run_real_results");
    let r = run(&dir, "ovn-low-scale.yml", &["--set", "global.cleanup=true"]);
    assert_common(&r, "real");
    for context in ["netpol_multitenant-run", "service_route-cleanup"] {
        stage(&r, context);
    }
    let s = &r["summary"];
    assert!(s["pings_ok"].as_u64().unwrap() > 0 && s["pings_failed"] == 0, "{s}");
    // Dual stack (the scenario's run_ipv6: True): pods ping over IPv6 as well as IPv4.
    let targets: Vec<String> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|st| st["measurements"]["ping_pod"]["samples"].as_array())
        .flatten()
        .map(|sample| {
            sample["subject"]
                .as_str()
                .unwrap()
                .rsplit("-> ")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let v6 = targets.iter().filter(|t| t.contains(':')).count();
    assert!(v6 > 0 && v6 < targets.len(), "IPv4 and IPv6 pings: {targets:?}");
    let controllers = r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "controller")
        .count();
    assert_eq!(controllers, 2, "one ovn-controller per worker");
}

#[test]
fn run_ocp_density_light_on_emulated_chassis_writes_results() {
    test_support::require_root!("run_ocp_density_light_on_emulated_chassis_writes_results");
    test_support::require_ovn!(
        "run_ocp_density_light_on_emulated_chassis_writes_results",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl"]
    );
    let dir = TempDir::new("kube_run_emulated_results");
    let r = run(
        &dir,
        "ocp-120-density-light.yml",
        &[
            "--set",
            "cluster.chassis=emulated",
            "--set",
            "cluster.n_workers=20",
            "--set",
            "base_cluster_bringup.n_pods_per_node=2",
            "--set",
            "density_light.n_startup=100",
            "--set",
            "density_light.n_pods=120",
        ],
    );
    assert_common(&r, "emulated");
    // Startup pods come up in the test's first Context, the others in `density_light-run`.
    let light: u64 = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("density_light"))
        .filter_map(|s| s["measurements"]["port_up"]["stats"]["count"].as_u64())
        .sum();
    assert_eq!(light, 120, "every density_light pod measured");
    assert_eq!(
        stage(&r, "density_light-run")["measurements"]["port_up"]["stats"]["count"],
        20
    );
    assert_eq!(r["summary"]["pings_ok"], 0, "emulated chassis have no data plane");
}

#[test]
fn run_refuses_check_and_attach_for_kubernetes_scenarios() {
    for extra in [vec!["--check"], vec!["--nb", "unix:/x", "--sb", "unix:/y"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
            .arg("run")
            .arg(scenario("ovn-low-scale.yml"))
            .args(&extra)
            .output()
            .expect("run ovn-heater");
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("OpenStack scenarios"));
    }
}
