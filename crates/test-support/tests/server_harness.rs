//! The daemon harness against the real binaries: standalone, RAFT, central.

use std::time::Duration;

use test_support::{Central, OvsdbServer, RaftCluster};

const NB: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB: &str = "/usr/share/ovn/ovn-sb.ovsschema";

fn ovsdb_client(args: &[&str]) -> String {
    let out = std::process::Command::new(test_support::find_binary("ovsdb-client").expect("ovsdb-client"))
        .args(["--timeout=10"])
        .args(args)
        .output()
        .expect("run ovsdb-client");
    assert!(
        out.status.success(),
        "ovsdb-client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains("\"error\""), "ovsdb-client {args:?}: {stdout}");
    stdout
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn harness_standalone_serves_unix_and_tcp_and_restarts() {
    test_support::require_ovn!(
        "harness_standalone_serves_unix_and_tcp_and_restarts",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl", "ovsdb-client"]
    );
    let mut server = OvsdbServer::standalone("harness_standalone", NB);
    assert_eq!(server.database(), "OVN_Northbound");
    assert!(server.db_path().is_file());
    assert!(ovsdb_client(&["list-dbs", &server.remote()]).contains("OVN_Northbound"));
    let tcp = server.tcp_remote();
    assert!(ovsdb_client(&["list-dbs", &tcp]).contains("OVN_Northbound"));
    ovsdb_client(&[
        "transact",
        &server.remote(),
        r#"["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{"name":"sw0"}}]"#,
    ]);

    let first_pid = server.pid();
    server.kill();
    assert!(!server.is_running());
    server.restart();
    assert_ne!(server.pid(), first_pid);
    assert_eq!(server.tcp_remote(), tcp, "the TCP port survives a restart");
    let dump = ovsdb_client(&["dump", &tcp, "OVN_Northbound", "Logical_Switch", "name"]);
    assert!(dump.contains("sw0"), "data survives a restart: {dump}");

    let pid = server.pid();
    drop(server);
    assert!(!process_exists(pid), "ovsdb-server {pid} still running after drop");
}

#[test]
fn harness_raft_cluster_elects_and_survives_leader_kill() {
    test_support::require_ovn!(
        "harness_raft_cluster_elects_and_survives_leader_kill",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl", "ovsdb-client"]
    );
    let mut cluster = RaftCluster::start_with("harness_raft", SB, 3, Some(500));
    assert_eq!(cluster.len(), 3);
    assert_eq!(cluster.remotes().split(',').count(), 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    ovsdb_client(&[
        "transact",
        &cluster.member(leader).remote(),
        r#"["OVN_Southbound",{"op":"insert","table":"Address_Set","row":{"name":"as0"}}]"#,
    ]);
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    cluster.restart(leader);
    // The restarted member learns the commit index from the new leader; bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let remote = cluster.member(leader).tcp_remote();
        let dump = ovsdb_client(&["dump", &remote, "OVN_Southbound", "Address_Set", "name"]);
        if dump.contains("as0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restarted member never caught up: {dump}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let pids: Vec<u32> = (0..3).map(|i| cluster.member(i).pid()).collect();
    drop(cluster);
    for pid in pids {
        assert!(!process_exists(pid), "RAFT member {pid} still running after drop");
    }
}

#[test]
fn harness_central_runs_northd_between_nb_and_sb() {
    test_support::require_ovn!(
        "harness_central_runs_northd_between_nb_and_sb",
        ["ovsdb-server", "ovsdb-tool", "ovs-appctl", "ovsdb-client", "ovn-northd"]
    );
    let central = Central::start("harness_central");
    ovsdb_client(&[
        "transact",
        &central.nb_remote(),
        r#"["OVN_Northbound",{"op":"insert","table":"Logical_Switch","row":{"name":"sw0"}}]"#,
    ]);
    // northd turns the logical switch into a Datapath_Binding; bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dump = ovsdb_client(&["dump", &central.sb_remote(), "OVN_Southbound", "Datapath_Binding"]);
        if dump.contains("sw0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "northd never created the datapath:\n{}",
            central.northd_log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids = [central.northd_pid(), central.nb().pid(), central.sb().pid()];
    drop(central);
    for pid in pids {
        assert!(!process_exists(pid), "{pid} still running after drop");
    }
}
