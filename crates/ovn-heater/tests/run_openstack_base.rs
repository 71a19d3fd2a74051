//! `ovn-heater run` end to end as root, on real chassis: the OpenStack base test with 2
//! hypervisors × 2 VMs. Every port comes up, every ping answers, results.json and report.html
//! are written and valid, and nothing of the lab is left running afterwards. Also: Ctrl-C
//! (SIGTERM) mid-run exits 130 with partial results and nothing left behind.

use std::path::Path;
use std::process::{Command, Stdio};

const SCENARIO: &str = "global:\n  log_cmds: true\ncluster:\n  clustered_db: false\n  northd_threads: 1\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 1\n  concurrency: 2\n";

/// Nothing of the lab recorded in `logs/lab.down.json` is still there: no process, no netns.
fn assert_nothing_left(results: &Path) {
    let state = test_support::read_json(&results.join("logs/lab.down.json"));
    let run_dir = state["run_dir"].as_str().unwrap().to_owned();
    for p in state["processes"].as_array().unwrap() {
        let pid = p["pid"].as_u64().unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&run_dir),
            "{} (pid {pid}) still runs",
            p["name"]
        );
    }
    let prefix = state["prefix"].as_str().unwrap();
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left: {netns}"
    );
    assert!(!Path::new(&run_dir).exists(), "lab run dir {run_dir} left behind");
    // And from outside, not trusting the record: /proc, namespaces, links, OVS ports.
    test_support::assert_nothing_left(Path::new(&run_dir), prefix);
}

#[test]
fn run_openstack_base_two_hypervisors_real_chassis() {
    test_support::require_lab!("run_openstack_base_two_hypervisors_real_chassis");
    let dir = test_support::TempDir::new("run_openstack_base");
    let scenario = dir.path().join("openstack-base.yml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(env!("CARGO_BIN_EXE_ovn-heater"), &scenario, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());

    let r = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "complete");
    assert_eq!(r["summary"]["ports_created"], 4, "{}", r["summary"]);
    assert_eq!(r["summary"]["ports_up"], 4);
    assert_eq!(r["summary"]["failures"], 0);
    assert_eq!(r["summary"]["pings_failed"], 0);
    let stages: Vec<&serde_json::Value> = r["stages"].as_array().unwrap().iter().collect();
    let stage = |name: &str| {
        *stages
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("stage {name}"))
    };
    let vms = &stage("vms")["measurements"];
    for m in [
        "create_port",
        "bind_port",
        "port_up",
        "port_active",
        "ping_gateway",
        "hv_cfg_settle",
    ] {
        let stats = &vms[m]["stats"];
        assert!(stats["count"].as_u64().unwrap() >= 1, "{m}: {stats}");
        assert_eq!(stats["failed"], 0, "{m}: {stats}");
        for k in ["min", "median", "p90", "p99", "max", "mean", "total"] {
            assert!(stats[k].is_number(), "{m}.{k}: {stats}");
        }
    }
    let pings = &stage("pings")["measurements"];
    assert_eq!(pings["ping_mesh"]["stats"]["count"], 12, "full mesh of 4 VMs");
    assert_eq!(
        pings["ping_external"]["stats"]["count"], 4,
        "every VM reaches the external host via SNAT"
    );
    assert!(stage("vms")["northd"]["stopwatches"]
        .as_object()
        .is_some_and(|o| !o.is_empty()));
    assert!(
        stage("vms")["db"]["nb"]["rows"]["Logical_Switch_Port"]
            .as_u64()
            .unwrap()
            >= 4
    );
    let processes = r["processes"].as_array().unwrap();
    assert!(processes
        .iter()
        .any(|p| p["role"] == "northd" && !p["readings"].as_array().unwrap().is_empty()));
    assert!(processes.iter().filter(|p| p["role"] == "controller").count() == 3);
    // The tester's own cost: one entry for ovn-heater, a peak RSS for every process, and CPU
    // seconds per stage for every process, ovn-heater included.
    let testers: Vec<_> = processes.iter().filter(|p| p["role"] == "tester").collect();
    assert_eq!(testers.len(), 1, "one tester entry");
    assert_eq!(testers[0]["name"], "ovn-heater");
    for p in processes {
        assert!(
            p["peak_rss_bytes"].as_u64().unwrap() > 0,
            "peak_rss_bytes of {}",
            p["name"]
        );
    }
    for st in r["stages"].as_array().unwrap() {
        let cpu = st["cpu_s"].as_object().unwrap();
        assert!(
            cpu.contains_key("ovn-heater"),
            "tester CPU in stage {}: {cpu:?}",
            st["name"]
        );
        assert!(cpu.values().all(|v| v.as_f64().unwrap() >= 0.0));
    }
    let vms_cpu = stage("vms")["cpu_s"].as_object().unwrap().clone();
    assert_eq!(
        vms_cpu.len(),
        processes.len(),
        "every process has CPU seconds in the vms stage: {vms_cpu:?}"
    );
    assert!(vms_cpu["ovn-heater"].as_f64().unwrap() > 0.0);
    // The tester's CPU split: user + kernel, and the threads, add up to its cpu_s (each read
    // in clock ticks of 10 ms).
    let split = &stage("vms")["tester_cpu"];
    let total = vms_cpu["ovn-heater"].as_f64().unwrap();
    let (user, system) = (split["user_s"].as_f64().unwrap(), split["system_s"].as_f64().unwrap());
    assert!(
        (user + system - total).abs() < 0.02,
        "user + kernel = the tester's CPU: {split}"
    );
    let threads: f64 = split["by_thread"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(
        (threads - total).abs() < 0.05,
        "threads add up to the tester's CPU: {split}"
    );

    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(html.contains("id=\"cpu-seconds\"") && html.contains("ovn-heater is the tester itself"));
    assert!(html.contains("id=\"tester-cpu\""));
    assert!(html.contains("class=\"stats\"") && html.contains("data-kind=\"latency-time\""));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resource"
    );
    assert!(results.join("scenario.yml").is_file());
    assert!(results.join("logs/events.log").is_file());
    assert!(results.join("logs/cms-actions.log").is_file());
    assert!(results.join("logs/northd-ovn-northd.log").is_file());
    assert_nothing_left(&results);

    // The report renders in a real Chromium (skipped with a note when it is not installed).
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-report.sh");
    let status = Command::new(check)
        .arg(results.join("report.html"))
        .arg("10")
        .status()
        .unwrap();
    match status.code() {
        Some(0) => {}
        Some(77) => {
            test_support::skip(
                "run_openstack_base (chromium check)",
                "chromium not found; apt-get install chromium",
            );
        }
        other => panic!("check-report.sh failed: {other:?}"),
    }

    // compare A A: every ratio is 1.00x, and no regression even at a 0 % threshold.
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("compare")
        .arg(&results)
        .arg(&results)
        .args(["--threshold", "0"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let line = table
        .lines()
        .find(|l| l.starts_with("port_up p50"))
        .expect("port_up row");
    assert!(line.trim_end().ends_with("1.00x"), "{line}");
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("compare")
        .arg(&results)
        .arg(format!("{},{}", results.display(), results.display()))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compare --json");
    assert_eq!(json["b"]["runs"], 2);
    assert_eq!(json["regressions"], 0);
}

#[test]
fn run_interrupted_exits_130_and_cleans_up() {
    test_support::require_lab!("run_interrupted_exits_130_and_cleans_up");
    let dir = test_support::TempDir::new("run_interrupted");
    let scenario = dir.path().join("s.yml");
    std::fs::write(
        &scenario,
        SCENARIO.replace("n_vms_per_hypervisor: 2", "n_vms_per_hypervisor: 20"),
    )
    .unwrap();
    let results = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(&results)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the workload runs. A thread keeps reading stderr (bounded by the child's
    // life) so the child never writes into a closed pipe.
    let mut stderr = test_support::Lines::of(child.stderr.take().unwrap());
    stderr.until(std::time::Duration::from_secs(300), |line| {
        line.starts_with("[vms]") || line.starts_with("[networks]")
    });
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let seen = stderr.finish();
    assert_eq!(status.code(), Some(130), "stderr so far:\n{}", seen.join("\n"));
    let r = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "interrupted");
    assert!(r["error"].as_str().unwrap().contains("interrupted"));
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(html.contains("PARTIAL RESULTS"));
    assert_nothing_left(&results);
}

/// Upstream's base_openstack with `passive_vms: true` on real chassis: every port is bound on
/// its chassis and comes up, but no VM namespace is made and nothing pings (the control plane
/// alone, as upstream's own provisioning figure was measured).
#[test]
fn base_openstack_passive_vms_bind_without_namespaces() {
    test_support::require_lab!("base_openstack_passive_vms_bind_without_namespaces");
    let dir = test_support::TempDir::new("base_openstack_passive");
    let scenario = dir.path().join("passive.yml");
    std::fs::write(
        &scenario,
        "global:\n  cms_name: openstack\ncluster:\n  clustered_db: false\n  n_workers: 2\n  node_timeout_s: 30\nbase_openstack:\n  n_projects: 2\n  n_chassis_per_gw_lrp: 2\n  n_vms_per_project: 3\n  passive_vms: true\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(env!("CARGO_BIN_EXE_ovn-heater"), &scenario, &[], &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());

    let r = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["summary"]["ports_created"], 6, "{}", r["summary"]);
    assert_eq!(r["summary"]["ports_up"], 6);
    assert_eq!(r["summary"]["failures"], 0);
    assert_eq!(r["summary"]["pings_ok"], 0);
    let stages = r["stages"].as_array().unwrap();
    assert!(stages.iter().all(|s| s["name"] != "pings"), "no pings stage");
    let vms = stages.iter().find(|s| s["name"] == "vms").expect("vms stage");
    assert_eq!(vms["measurements"]["bind_port"]["stats"]["count"], 6);
    assert!(
        vms["measurements"].get("ping_gateway").is_none(),
        "{}",
        vms["measurements"]
    );
    // Bound in OVS (the events log names each bind) but no VM namespace was ever made: the
    // namespace threads never ran.
    let split = &vms["tester_cpu"]["by_thread"];
    assert!(split.get("ovn-lab-netns").is_none(), "{split}");
    // The scenario as resolved keeps the key.
    let resolved = std::fs::read_to_string(results.join("scenario.yml")).unwrap();
    assert!(resolved.contains("passive_vms: true"), "{resolved}");
    assert_nothing_left(&results);
}
