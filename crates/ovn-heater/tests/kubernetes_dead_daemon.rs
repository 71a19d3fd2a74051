//! An ovn-kubernetes run on real lab chassis whose node's `ovn-controller` (or `ovs-vswitchd`)
//! dies mid-run without a `chaos` entry (killed from outside, as a crash would), as root
//! against the real daemons: the run names it on stderr, records it as one `harness` failure (`lab_daemon`), skips the
//! pods of that node created after it (their `bind_port`/`port_up`, pings from or to them)
//! naming it, instead of failing them as OVN's, and exits 3.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

/// 2 real nodes, 16 pods created one after another (the kill lands among them).
const SCENARIO: &str = "global:\n  cms_name: ovn_kubernetes\n  cleanup: true\ncluster:\n  n_workers: 2\n  node_timeout_s: 10\nbase_cluster_bringup:\n  n_pods_per_node: 1\ndensity_light:\n  n_pods: 16\n  n_startup: 2\n";

/// The pid of `ovn-scale-0`'s `daemon` of the lab whose run dir is under `tmp`.
fn daemon_of_node_0(tmp: &Path, daemon: &str) -> Option<u32> {
    let tmp = tmp.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let args = test_support::command_line(pid);
        let is_daemon = args
            .first()
            .is_some_and(|a| a.ends_with(&format!("/{daemon}")) || a == daemon);
        if is_daemon && args.iter().any(|a| a.contains(&tmp) && a.contains("/ovn-scale-0/")) {
            return Some(pid);
        }
    }
    None
}

/// How many pod namespaces (`<lab prefix>-vm-<pod>`) the lab whose node 0 runs `controller` has.
fn pods_plumbed(controller: u32) -> usize {
    let identify = Command::new("ip")
        .args(["netns", "identify", &controller.to_string()])
        .output()
        .unwrap();
    let node_ns = String::from_utf8_lossy(&identify.stdout).trim().to_owned();
    let Some(prefix) = node_ns.strip_suffix("-ovn-scale-0") else {
        return 0;
    };
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-vm-")))
        .count()
}

#[test]
fn kubernetes_run_names_a_node_controller_killed_outside_it_skips_its_pods_and_exits_3() {
    let test = "kubernetes_run_names_a_node_controller_killed_outside_it_skips_its_pods_and_exits_3";
    test_support::require_lab!(test);
    kill_node_0_daemon_mid_run("ovn-controller");
}

#[test]
fn kubernetes_run_names_a_node_vswitchd_killed_outside_it_skips_its_pods_and_exits_3() {
    let test = "kubernetes_run_names_a_node_vswitchd_killed_outside_it_skips_its_pods_and_exits_3";
    test_support::require_lab!(test);
    kill_node_0_daemon_mid_run("ovs-vswitchd");
}

fn kill_node_0_daemon_mid_run(daemon: &str) {
    // Short: the lab's sockets live under it (a 107-byte limit).
    let dir = test_support::TempDir::new("kdead");
    let scenario = dir.path().join("scenario.yml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = dir.path().join("results");
    // The lab's run dir goes under TMPDIR: this test's own, so the daemon it kills is this run's.
    let tmp: PathBuf = dir.path().join("t");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--results-dir")
        .arg(&results)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        text
    });
    // Mid-run: the bring-up pods (one per node) and a few of density_light's are plumbed.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut victim = None;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if let (Some(pid), Some(controller)) =
            (daemon_of_node_0(&tmp, daemon), daemon_of_node_0(&tmp, "ovn-controller"))
        {
            if pods_plumbed(controller) >= 5 {
                victim = Some(pid);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(victim) = victim else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the run never plumbed 5 pods:\n{}", reader.join().unwrap());
    };
    // SAFETY: kill(2) on the daemon this test's run started (found under its TMPDIR).
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    let r: serde_json::Value = test_support::read_json(&results.join("results.json"));

    let named = format!("ovn-scale-0/{daemon} (pid {victim}) is not running");
    assert!(stderr.contains(&named), "{stderr}");
    let dead = test_support::stage_samples(&r, "lab_daemon");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["class"], "harness");
    assert_eq!(dead[0]["subject"], format!("ovn-scale-0/{daemon} (pid {victim})"));
    let not_ok = test_support::not_ok_samples(&r);
    assert_eq!(r["summary"]["failures_by_class"]["system"], 0, "{not_ok:#?}\n{stderr}");
    assert_eq!(r["summary"]["failures_by_class"]["harness"], 1, "{not_ok:#?}");
    // What could not work without it is skipped, naming it.
    for line in not_ok.iter().filter(|l| !l.starts_with("lab_daemon ")) {
        assert!(line.contains("\"skipped\""), "{line}");
        assert!(line.contains(&format!("ovn-scale-0/{daemon} not running")), "{line}");
    }
    let skipped_up = test_support::stage_samples(&r, "port_up")
        .into_iter()
        .filter(|p| p["class"] == "skipped")
        .count();
    assert!(
        skipped_up > 0,
        "pods of ovn-scale-0 after the kill are skipped: {not_ok:#?}"
    );
    // The other node's pods still come up.
    let up = test_support::stage_samples(&r, "port_up")
        .into_iter()
        .filter(|p| p["error"].is_null())
        .count();
    assert!(up >= 8, "{up}");
    assert_eq!(status.code(), Some(3), "a dead lab daemon alone exits 3:\n{stderr}");
    let left = test_support::leftovers::processes_under(&tmp);
    assert!(left.is_empty(), "{left:#?}");
}
