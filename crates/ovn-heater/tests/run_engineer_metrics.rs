//! `ovn-heater run --label` as root on a small clustered lab (3-member NB and SB RAFT, one
//! hypervisor with 2 VMs): what a performance engineer reads besides latencies is in
//! results.json and report.html — binaries and label in `environment`, end RSS next to peak,
//! host CPU per stage, poll-interval counts per daemon, `memory/show`/`coverage/show` of each
//! OVN daemon and `cluster/status` of each RAFT member at every stage's end, and northd's
//! counters per stage.

const SCENARIO: &str = "cluster:\n  clustered_db: true\n  northd_threads: 1\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 1\n  n_vms_per_hypervisor: 2\n  n_network_nodes: 1\n  concurrency: 2\n";

#[test]
fn run_records_what_engineers_read() {
    test_support::require_lab!("run_records_what_engineers_read", ["ovn-appctl"]);
    let dir = test_support::TempDir::new("run_engineer_metrics");
    let scenario = dir.path().join("metrics.yml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = dir.path().join("results");
    let out = test_support::heater_run(
        env!("CARGO_BIN_EXE_ovn-heater"),
        &scenario,
        &["--label", "patch-v2"],
        &results,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());
    let r = test_support::read_json(&results.join("results.json"));

    // environment: the binaries that ran, with versions, and the label.
    let env = &r["environment"];
    assert_eq!(env["label"], "patch-v2");
    for program in [
        "ovsdb-server",
        "ovn-northd",
        "ovn-controller",
        "ovs-vswitchd",
        "ovn-appctl",
    ] {
        let b = &env["binaries"][program];
        let path = b["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{program}: {}", env["binaries"]));
        assert!(path.starts_with('/') && path.ends_with(program), "{program}: {b}");
        let version = b["version"].as_str().unwrap();
        assert!(
            version.starts_with(program) || version.contains(" 2") || version.contains(" 3"),
            "{program}: {b}"
        );
    }

    // End RSS next to peak, for every process.
    for p in r["processes"].as_array().unwrap() {
        let (peak, end) = (
            p["peak_rss_bytes"].as_u64().unwrap(),
            p["end_rss_bytes"].as_u64().unwrap(),
        );
        assert!(end > 0 && end <= peak, "{}: end {end}, peak {peak}", p["name"]);
    }

    // Poll-interval counts per daemon over the whole logs (there may be none: counts are 0).
    let totals = r["poll_intervals"].as_object().unwrap();
    for daemon in ["nb-1", "nb-3", "sb-1", "northd"] {
        assert!(totals[daemon]["count"].is_u64(), "{daemon}: {totals:?}");
    }
    assert!(totals.keys().any(|k| k.ends_with("ovn-controller")), "{totals:?}");

    let stages = r["stages"].as_array().unwrap();
    let vms = stages.iter().find(|s| s["name"] == "vms").expect("stage vms");
    for st in stages {
        let name = &st["name"];
        // Host CPU: the stage lasted, so the host's CPUs spent some time in it.
        let host = &st["host_cpu"];
        let spent: f64 = ["user_s", "system_s", "idle_s", "iowait_s", "steal_s"]
            .iter()
            .map(|k| {
                host[k]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}.host_cpu.{k}: {host}"))
            })
            .sum();
        assert!(spent > 0.0, "{name}: {host}");
        let polls = st["poll_intervals"].as_object().unwrap();
        assert!(polls["northd"]["count"].as_u64().unwrap() <= totals["northd"]["count"].as_u64().unwrap());
        // northd's counters are this stage's.
        let northd = &st["northd"];
        assert_eq!(
            northd["errors"].as_array().map_or(0, |e| e.len()),
            0,
            "{name}: {northd}"
        );
        assert_eq!(northd["since_previous_stage"], true, "{name}");
    }

    // memory/show (as numbers), coverage/show, cluster/status at the stage's end.
    let daemons = vms["daemons"].as_object().unwrap();
    let northd = &daemons["northd"];
    assert!(northd["errors"].as_array().is_none(), "{northd}");
    let memory = northd["memory"].as_object().unwrap();
    assert!(!memory.is_empty() && memory.values().all(|v| v.is_number()), "{northd}");
    assert!(
        northd["coverage_text"].as_str().unwrap().contains("coverage"),
        "{northd}"
    );
    for member in ["nb-1", "nb-2", "nb-3", "sb-1", "sb-2", "sb-3"] {
        let d = &daemons[member];
        assert!(d["memory"]["cells"].is_number(), "{member}: {d}");
        let status = d["cluster_status"].as_str().unwrap_or_else(|| panic!("{member}: {d}"));
        assert!(status.contains("Role:"), "{member}: {status}");
    }
    let controller = daemons
        .iter()
        .find(|(k, _)| k.ends_with("ovn-controller"))
        .map(|(_, d)| d)
        .expect("an ovn-controller");
    assert!(controller["errors"].as_array().is_none(), "{controller}");
    assert!(!controller["memory"].as_object().unwrap().is_empty(), "{controller}");

    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    for needle in [
        "id=\"label\">patch-v2<",
        "id=\"host-cpu\"",
        "id=\"poll-intervals\"",
        "memory/show",
        "cluster/status",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
}
