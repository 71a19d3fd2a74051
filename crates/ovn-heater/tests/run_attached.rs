//! Attached runs are safe (docs/attach.md): `ovn-heater run --nb --sb` against an OVN started
//! outside ovn-heater (NB, SB, ovn-northd), with emulated chassis, judged from outside through
//! `ovsdb-client`: it cleans up by default and leaves no row of its own; an NB holding rows
//! of an earlier run is refused (exit 2, nothing changed) unless `--allow-existing`;
//! `openstack purge` removes exactly those rows; results.json has the servers' `_Server` rows
//! and, with control sockets, their `memory/show`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use test_support::server::Central;

const ROOT_TABLES: [&str; 5] = [
    "Logical_Switch",
    "Logical_Router",
    "Port_Group",
    "DHCP_Options",
    "HA_Chassis_Group",
];

fn ovsdb_client(args: &[&str]) -> Output {
    Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args(args)
        .output()
        .unwrap()
}

/// Rows of `table` in the NB at `remote`, through ovsdb-client (not our client).
fn rows(remote: &str, table: &str) -> Vec<Value> {
    let ops = serde_json::json!(["OVN_Northbound", {"op": "select", "table": table, "where": []}]);
    let out = ovsdb_client(&["--timeout=10", "transact", remote, &ops.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    reply[0]["rows"].as_array().cloned().unwrap_or_default()
}

/// The `ovn-heater:run` value of a row, if it carries one.
fn marker(row: &Value) -> Option<String> {
    row["external_ids"][1]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == "ovn-heater:run")
        .and_then(|pair| pair[1].as_str().map(str::to_owned))
}

/// Marked root rows per run id.
fn marked(remote: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for table in ROOT_TABLES {
        for row in rows(remote, table) {
            if let Some(run) = marker(&row) {
                *out.entry(run).or_default() += 1;
            }
        }
    }
    out
}

/// The whole NB as ovsdb-client prints it: equal before and after means nothing changed.
fn dump(remote: &str) -> String {
    let out = ovsdb_client(&["--timeout=10", "dump", remote, "OVN_Northbound"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A switch of the deployment's own, which every run must leave alone.
fn seed_their_switch(central: &Central) {
    let theirs = serde_json::json!(["OVN_Northbound", {"op": "insert", "table": "Logical_Switch", "row": {
        "name": "neutron-11111111-2222-4333-8444-555555555555",
        "external_ids": ["map", [["neutron:network_name", "theirs"], ["neutron:revision_number", "1"]]]}}]);
    let out = ovsdb_client(&["--timeout=10", "transact", &central.nb_remote(), &theirs.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn scenario(dir: &Path, name: &str, global: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(
        &path,
        format!("{global}cluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 1\n  n_network_nodes: 1\n  concurrency: 2\n"),
    )
    .unwrap();
    path
}

fn run(scenario: &Path, central: &Central, results: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--nb".to_owned(),
        central.nb_remote(),
        "--sb".to_owned(),
        central.sb_remote(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    test_support::heater_run(env!("CARGO_BIN_EXE_ovn-heater"), scenario, &args, results)
}

#[test]
fn attached_run_cleans_up_by_default_and_records_server_figures() {
    let test = "attached_run_cleans_up_by_default_and_records_server_figures";
    test_support::require_ovn!(
        test,
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client", "ovn-appctl"]
    );
    let central = Central::start("run_attached_clean");
    seed_their_switch(&central);
    let dir = test_support::TempDir::new("run_attached_clean");
    // No global.cleanup: attached, it defaults to yes.
    let scenario = scenario(dir.path(), "attached", "");
    let results = dir.path().join("results");
    let (nb_ctl, sb_ctl) = (central.nb().ctl_path().to_owned(), central.sb().ctl_path().to_owned());
    let out = run(
        &scenario,
        &central,
        &results,
        &[
            "--nb-ctl",
            nb_ctl.to_str().unwrap(),
            "--sb-ctl",
            sb_ctl.to_str().unwrap(),
            "--northd-ctl",
            central.northd_ctl().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}:\n{stderr}", out.status.code());

    let r: Value = test_support::read_json(&results.join("results.json"));
    assert_eq!(r["status"], "complete");
    let names: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bringup", "networks", "vms", "cleanup"], "cleanup by default");
    let attached = &r["attached"];
    assert_eq!(attached["cleanup"], true, "{attached}");
    assert_eq!(attached["left_at_end"], serde_json::json!({}), "{attached}");
    assert_eq!(attached["found_at_start"], serde_json::json!({}), "{attached}");
    let run_id = attached["run_id"].as_str().unwrap();
    assert_eq!(run_id, "results", "the results dir's name");
    // _Server at the start and at every stage's end.
    for s in [&attached["nb_server_at_start"], &attached["sb_server_at_start"]] {
        assert_eq!(s["model"], "standalone", "{s}");
        assert_eq!(s["connected"], true);
        assert_eq!(s["leader"], true);
        assert!(s["schema_version"].as_str().is_some_and(|v| !v.is_empty()), "{s}");
    }
    assert_eq!(attached["nb_server_at_start"]["name"], "OVN_Northbound");
    for stage in r["stages"].as_array().unwrap() {
        assert_eq!(stage["db"]["nb"]["server"]["model"], "standalone", "{}", stage["name"]);
        assert_eq!(stage["db"]["sb"]["server"]["name"], "OVN_Southbound");
        // The control sockets given: the servers' and northd's own figures.
        for daemon in ["nb", "sb", "northd"] {
            let d = &stage["daemons"][daemon];
            assert!(
                d["memory_text"].as_str().is_some_and(|t| !t.is_empty()),
                "{daemon} at {}: {d}",
                stage["name"]
            );
        }
        assert!(stage["northd"]["stopwatch_text"].is_string(), "{}", stage["northd"]);
    }
    let vms = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "vms")
        .unwrap();
    assert!(
        vms["daemons"]["nb"]["memory"]["cells"].as_f64().unwrap() > 0.0,
        "{}",
        vms["daemons"]["nb"]
    );
    // The daemons behind the sockets run on this host: measured as a lab's are.
    let processes: Vec<&str> = r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["nb", "sb", "northd"] {
        assert!(processes.contains(&name), "{processes:?}");
        assert!(vms["cpu_s"][name].as_f64().is_some(), "{}", vms["cpu_s"]);
        assert!(
            vms["poll_intervals"][name]["count"].is_u64(),
            "{}",
            vms["poll_intervals"]
        );
    }
    assert_eq!(
        r["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "northd")
            .unwrap()["pid"],
        central.northd_pid()
    );
    assert!(
        vms["db"]["nb"]["file_bytes"].as_u64().unwrap() > 0,
        "{}",
        vms["db"]["nb"]
    );
    for binary in ["ovsdb-server", "ovn-northd"] {
        assert!(
            r["environment"]["binaries"][binary]["path"].is_string(),
            "{}",
            r["environment"]["binaries"]
        );
    }

    // Judged from outside: the deployment's switch alone is left, and no marked row.
    let switches = rows(&central.nb_remote(), "Logical_Switch");
    assert_eq!(switches.len(), 1, "{switches:#?}");
    assert_eq!(switches[0]["external_ids"][1][0][1], "theirs");
    assert!(marked(&central.nb_remote()).is_empty());
    for table in [
        "Logical_Switch_Port",
        "Logical_Router",
        "Port_Group",
        "ACL",
        "DHCP_Options",
        "NAT",
    ] {
        let left = rows(&central.nb_remote(), table);
        assert!(left.is_empty(), "{table} rows left: {left:#?}");
    }
    let events = std::fs::read_to_string(results.join("logs/events.log")).unwrap();
    assert!(events.contains("no NB row of this run is left"), "{events}");
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        html.contains("results (external_ids:ovn-heater:run)"),
        "the report names the marker"
    );
}

#[test]
fn attached_run_refuses_rows_of_an_earlier_run_unless_allowed_and_purge_removes_them() {
    let test = "attached_run_refuses_rows_of_an_earlier_run_unless_allowed_and_purge_removes_them";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let central = Central::start("run_attached_refuse");
    seed_their_switch(&central);
    let dir = test_support::TempDir::new("run_attached_refuse");
    let nb = central.nb_remote();

    // A run that keeps its rows, as asked: they stay, marked with its run id.
    let keep = scenario(dir.path(), "keep", "global:\n  cleanup: false\n");
    let first = dir.path().join("first");
    let out = run(&keep, &central, &first, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = test_support::read_json(&first.join("results.json"));
    assert_eq!(r["attached"]["cleanup"], false);
    let kept = &r["attached"]["left_at_end"];
    assert_eq!(kept["Logical_Router"], 1, "{kept}");
    assert_eq!(kept["Logical_Switch"], 2, "the tenant and the external network: {kept}");
    let before = marked(&nb);
    assert_eq!(before.keys().collect::<Vec<_>>(), ["first"], "{before:?}");
    assert_eq!(
        before["first"],
        kept.as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap() as usize)
            .sum::<usize>()
    );

    // A second run into that NB is refused before it writes anything, anywhere.
    let clean = scenario(dir.path(), "clean", "");
    let second = dir.path().join("second");
    let nb_before = dump(&nb);
    let out = run(&clean, &central, &second, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "Logical_Router: 1",
        "Logical_Switch: 2",
        "run first",
        "--allow-existing",
        "openstack purge",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in:\n{stderr}");
    }
    assert_eq!(dump(&nb), nb_before, "nothing changed in the NB");
    assert!(!second.exists(), "no results dir for a refused run");

    // --allow-existing: the run goes on beside them, and removes only its own rows.
    // Its results dir has the earlier run's name: its run id must not be the earlier run's.
    let third = dir.path().join("allowed").join("first");
    let out = run(&clean, &central, &third, &["--allow-existing"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = test_support::read_json(&third.join("results.json"));
    assert_eq!(r["status"], "complete");
    assert_eq!(r["summary"]["ports_up"], 2, "{}", r["summary"]);
    assert_eq!(r["attached"]["found_at_start"], *kept, "{}", r["attached"]);
    assert_eq!(r["attached"]["run_id"], "first-2");
    assert_eq!(r["attached"]["left_at_end"], serde_json::json!({}));
    assert_eq!(marked(&nb), before, "the earlier run's rows are untouched");

    // `openstack purge` removes them, and nothing else.
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["openstack", "purge", "--nb", &nb])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("removed {} rows", before["first"])),
        "{stdout}"
    );
    assert!(marked(&nb).is_empty());
    let switches = rows(&nb, "Logical_Switch");
    assert_eq!(switches.len(), 1, "{switches:#?}");
    assert!(rows(&nb, "Logical_Switch_Port").is_empty());
}

#[test]
fn attached_run_refuses_an_sb_holding_chassis_named_as_its_emulated_ones() {
    let test = "attached_run_refuses_an_sb_holding_chassis_named_as_its_emulated_ones";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let central = Central::start("run_attached_chassis");
    // A chassis named as this run's second emulated one would be (hv-1, hv-2, hv-3).
    let theirs = serde_json::json!(["OVN_Southbound",
        {"op": "insert", "table": "Encap", "uuid-name": "e",
         "row": {"type": "geneve", "ip": "10.0.0.2", "chassis_name": "hv-2"}},
        {"op": "insert", "table": "Chassis",
         "row": {"name": "hv-2", "hostname": "hv-2", "encaps": ["named-uuid", "e"]}}]);
    let out = ovsdb_client(&["--timeout=10", "transact", &central.sb_remote(), &theirs.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sb_dump = |remote: &str| {
        let out = ovsdb_client(&["--timeout=10", "dump", remote, "OVN_Southbound", "Chassis", "Encap"]);
        String::from_utf8(out.stdout).unwrap()
    };
    let (nb_before, sb_before) = (dump(&central.nb_remote()), sb_dump(&central.sb_remote()));
    let dir = test_support::TempDir::new("run_attached_chassis");
    let results = dir.path().join("results");
    let out = run(
        &scenario(dir.path(), "clash", ""),
        &central,
        &results,
        &["--allow-existing"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already has chassis named hv-2") && stderr.contains("chassis-del hv-2"),
        "{stderr}"
    );
    assert_eq!(dump(&central.nb_remote()), nb_before);
    assert_eq!(sb_dump(&central.sb_remote()), sb_before);
    assert!(!results.exists());
}

#[test]
fn attached_run_killed_with_sigkill_leaves_marked_rows_that_the_next_run_refuses_until_purged() {
    let test = "attached_run_killed_with_sigkill_leaves_marked_rows_that_the_next_run_refuses_until_purged";
    test_support::require_ovn!(test, ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovsdb-client"]);
    let central = Central::start("run_attached_kill");
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let dir = test_support::TempDir::new("run_attached_kill");
    let big = dir.path().join("big.yml");
    std::fs::write(
        &big,
        "cluster:\n  chassis: emulated\n  node_timeout_s: 30\nopenstack_base:\n  n_hypervisors: 2\n  n_vms_per_hypervisor: 100\n  n_network_nodes: 1\n  concurrency: 1\n  ops_per_second: 50\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["run", big.to_str().unwrap(), "--nb", &nb, "--sb", &sb, "--results-dir"])
        .arg(dir.path().join("killed"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = test_support::Lines::of(child.stderr.take().unwrap());
    stderr.until(std::time::Duration::from_secs(120), |line| line.starts_with("[vms]"));
    // SAFETY: kill on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let seen = stderr.finish();
    let left = marked(&nb);
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        ["killed"],
        "{left:?}\n{}",
        seen.join("\n")
    );

    // The next run is refused for both: the NB rows and the SB chassis of the killed run.
    let small = scenario(dir.path(), "small", "");
    let refused = dir.path().join("refused");
    let out = run(&small, &central, &refused, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rows of earlier ovn-heater runs") && stderr.contains("run killed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("already has chassis named hv-1, hv-2, hv-3"),
        "{stderr}"
    );
    assert!(!refused.exists());

    // Purged, and the killed run's chassis deleted as the message says, the next run goes.
    let out = Command::new(env!("CARGO_BIN_EXE_ovn-heater"))
        .args(["openstack", "purge", "--nb", &nb, "--run", "killed"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(marked(&nb).is_empty());
    let delete = serde_json::json!(["OVN_Southbound",
        {"op": "delete", "table": "Chassis_Private", "where": []},
        {"op": "delete", "table": "Chassis", "where": []}]);
    let out = ovsdb_client(&["--timeout=10", "transact", &sb, &delete.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = dir.path().join("again");
    let out = run(&small, &central, &again, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(marked(&nb).is_empty());
}
