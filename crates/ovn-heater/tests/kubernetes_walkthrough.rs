//! Fidelity: `ovn-heater kubernetes walkthrough` against a real NB + SB + ovn-northd writes,
//! step by step, the NB upstream ovn-heater's ovn-kubernetes CMS wrote (`ovnk-reference`,
//! vendored in `crates/ovn-kubernetes/tests/reference`): each dump, normalized across the run,
//! equals the reference `.txt` from line 2 on (line 1 records the producing command).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ovn_openstack::snapshot::{diff_text, Normalizer};
use test_support::{Central, TempDir};

/// Runs the binary with a deadline (killed if it overruns): whether it succeeded, its output.
fn run_bounded(args: &[&str], timeout: Duration) -> (bool, String) {
    let (code, text) = test_support::run_bounded(Command::new(env!("CARGO_BIN_EXE_ovn-heater")).args(args), timeout);
    (code == Some(0), text)
}

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ovn-kubernetes/tests/reference")
}

/// The oracle's sandbox: an inert Connection row in the NB.
fn add_connection_row(central: &Central) {
    let status = Command::new("ovn-nbctl")
        .args([
            &format!("--db={}", central.nb_remote()),
            "--no-leader-only",
            "set-connection",
            "punix:nb-conn.sock",
        ])
        .status()
        .expect("run ovn-nbctl");
    assert!(status.success(), "ovn-nbctl set-connection failed");
}

fn step_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dump dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn body(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

/// Runs the walkthrough and compares every dump the reference has; returns the names of our
/// dumps and, per compared step, None when equal or the diff.
fn walkthrough(test: &str, extra: &[&str], reference: &Path) -> (Vec<String>, Vec<(String, Option<String>)>) {
    let central = Central::start(test);
    add_connection_row(&central);
    let out = TempDir::new(&format!("{test}_dumps"));
    let dump_dir = out.path().to_str().expect("utf-8 path").to_owned();
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let mut args = vec![
        "kubernetes",
        "walkthrough",
        "--nb",
        &nb,
        "--sb",
        &sb,
        "--dump-dir",
        &dump_dir,
    ];
    args.extend_from_slice(extra);
    let (ok, log) = run_bounded(&args, Duration::from_secs(300));
    assert!(ok, "walkthrough failed:\n{log}");
    let names = step_names(out.path());
    let mut n = Normalizer::new();
    let mut results = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(out.path().join(format!("{name}.json"))).expect("dump");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("dump is JSON");
        let got = n.normalize(&doc).expect("dump normalizes");
        let Ok(want) = std::fs::read_to_string(reference.join(format!("{name}.txt"))) else {
            continue;
        };
        let diff = (body(&got) != body(&want)).then(|| diff_text(&want, &got));
        results.push((name.clone(), diff));
    }
    (names, results)
}

fn expected_names(reference: &Path, unpublished: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(reference)
        .expect("reference dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".txt").map(str::to_owned)
        })
        .collect();
    names.extend(unpublished.iter().map(|s| (*s).to_owned()));
    names.sort();
    names
}

fn assert_all_equal(results: &[(String, Option<String>)]) {
    let equal = results.iter().filter(|(_, d)| d.is_none()).count();
    if let Some((step, Some(diff))) = results.iter().find(|(_, d)| d.is_some()) {
        panic!(
            "{equal}/{} steps equal; first difference at {step} (- upstream, + ours):\n{diff}",
            results.len()
        );
    }
}

#[test]
fn kubernetes_walkthrough_matches_upstream_ovn_heater() {
    test_support::require_ovn!(
        "kubernetes_walkthrough_matches_upstream_ovn_heater",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl", "ovn-nbctl"]
    );
    let reference = reference_dir();
    let (names, results) = walkthrough("kube_walkthrough", &[], &reference);
    let want = expected_names(
        &reference,
        &[
            "33-service_route-run-setup",
            "34-service_route-run-iter0",
            "35-service_route-run-iter1",
            "36-service_route-cleanup",
        ],
    );
    assert_eq!(
        names, want,
        "the walkthrough's dump names differ from the oracle's steps"
    );
    assert_all_equal(&results);
}

#[test]
fn kubernetes_walkthrough_dual_stack_matches_upstream_ovn_heater() {
    test_support::require_ovn!(
        "kubernetes_walkthrough_dual_stack_matches_upstream_ovn_heater",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl", "ovn-nbctl"]
    );
    let reference = reference_dir().join("dualstack");
    let (names, results) = walkthrough("kube_walkthrough_ds", &["--dual-stack"], &reference);
    assert_eq!(names, expected_names(&reference, &[]));
    assert_all_equal(&results);
}

/// `--compat fixed`: valid ACL matches in every dump, bring-up backends on every cluster
/// VIP, and nothing of the tests' namespaces left after their cleanups.
#[test]
fn kubernetes_walkthrough_fixed_compat_cleans_up_and_writes_valid_matches() {
    test_support::require_ovn!(
        "kubernetes_walkthrough_fixed_compat_cleans_up_and_writes_valid_matches",
        ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovs-appctl", "ovn-nbctl"]
    );
    let central = Central::start("kube_walkthrough_fixed");
    add_connection_row(&central);
    let out = TempDir::new("kube_walkthrough_fixed_dumps");
    let dump_dir = out.path().to_str().expect("utf-8 path").to_owned();
    let (nb, sb) = (central.nb_remote(), central.sb_remote());
    let (ok, log) = run_bounded(
        &[
            "kubernetes",
            "walkthrough",
            "--nb",
            &nb,
            "--sb",
            &sb,
            "--dump-dir",
            &dump_dir,
            "--compat",
            "fixed",
        ],
        Duration::from_secs(300),
    );
    assert!(ok, "walkthrough failed:\n{log}");
    let names = step_names(out.path());
    let mut n = Normalizer::new();
    let texts: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(out.path().join(format!("{name}.json"))).expect("dump");
            let doc: serde_json::Value = serde_json::from_str(&text).expect("dump is JSON");
            (name.clone(), n.normalize(&doc).expect("dump normalizes"))
        })
        .collect();
    for (name, text) in &texts {
        for line in text.lines().filter(|l| l.trim_start().starts_with("match = ")) {
            assert!(
                !line.contains('\\') && !line.contains("ip.4"),
                "{name}: invalid match {line}"
            );
        }
    }
    let bringup = &texts
        .iter()
        .find(|(n, _)| n.ends_with("base_cluster_bringup-run"))
        .expect("bring-up dump")
        .1;
    assert!(
        bringup.contains("vips[\"4.0.0.2:80\"] = \"6.0.0.1:8080,6.0.0.2:8080,16.0.0.1:8080"),
        "bring-up backends missing from the second cluster VIP:\n{bringup}"
    );
    assert!(
        names.iter().any(|n| n.contains("netpol_cross_ns-run-iter")),
        "{names:?}"
    );
    let last = &texts.last().expect("dumps").1;
    for table in ["== ACL", "== Address_Set", "== Port_Group"] {
        assert!(!last.contains(table), "{table} rows left after every cleanup:\n{last}");
    }
    // The bring-up pods belong to no namespace and stay, as upstream's.
    assert!(last.contains("== Logical_Switch_Port (13 rows)"), "pods left:\n{last}");
    assert!(
        last.contains("== Load_Balancer (9 rows)"),
        "only the cluster and gateway LBs stay:\n{last}"
    );
}
