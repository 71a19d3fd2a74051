//! The command line itself, through the built binary: duration flags, old spellings kept as
//! hidden aliases. No root, no daemons.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

fn heater(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ovn-heater")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_bad_duration_is_a_usage_error_naming_the_accepted_forms() {
    for args in [
        &["db", "dump", "--db", "unix:/nonexistent.sock", "--timeout", "soon"][..],
        &["bench", "emu", "--probe-interval=-1"],
        &[
            "fake-chassis",
            "--sb",
            "unix:/nonexistent.sock",
            "--status-interval",
            "5 parsecs",
        ],
        &["bench", "lab", "--settle", "1e3"],
    ] {
        let out = heater(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("500ms, 2s, 1m"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn durations_with_units_and_plain_seconds_are_accepted() {
    // The socket is missing, so the command stops right after parsing, on that (exit 2).
    for timeout in ["500ms", "2s", "1m", "0.5", "3"] {
        let out = heater(&["db", "dump", "--db", "unix:/nonexistent.sock", "--timeout", timeout]);
        assert_eq!(out.status.code(), Some(2), "{timeout}: {}", stderr(&out));
        assert!(stderr(&out).contains("no socket"), "{timeout}: {}", stderr(&out));
    }
}

#[test]
fn old_flag_spellings_still_parse() {
    // --count 0 is refused after parsing: reaching that message means every flag was accepted.
    let out = heater(&[
        "fake-chassis",
        "--sb",
        "unix:/nonexistent.sock",
        "--count",
        "0",
        "--processing-delay-ms",
        "20",
        "--probe-interval-s",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--count must be at least 1"), "{}", stderr(&out));
    let help = stdout(&heater(&["bench", "emu", "--help"]));
    for hidden in [
        "--conditional",
        "--processing-delay-ms",
        "--probe-interval-s",
        "--batch-timeout-s",
    ] {
        assert!(!help.contains(hidden), "{hidden} is hidden from --help");
    }
    assert!(help.contains("--processing-delay <DURATION>"), "{help}");
}

#[test]
fn a_flag_that_took_milliseconds_refuses_a_bare_number() {
    let out = heater(&[
        "lab",
        "up",
        "--run-dir",
        "/nonexistent/lab",
        "--remote-probe-interval",
        "60000",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("60000ms"), "{}", stderr(&out));
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let out = heater(&["completions", "bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    for word in ["fake-chassis", "--processing-delay", "--monitor-all", "completions"] {
        assert!(script.contains(word), "bash completion has no {word}");
    }
    let out = heater(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");

    let out = heater(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH ovn-heater"), "{page}");
    assert!(page.contains("fake\\-chassis"), "{page}");

    let dir = test_support::TempDir::new("cli_man");
    let out = heater(&["man", "--out", &dir.path().join("man1").display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pages: Vec<String> = std::fs::read_dir(dir.path().join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for page in [
        "ovn-heater.1",
        "ovn-heater-run.1",
        "ovn-heater-db-dump.1",
        "ovn-heater-man.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "no {page} in {pages:?}");
    }
}

#[test]
fn run_check_prints_yaml_that_checks_to_the_same_yaml() {
    let dir = test_support::TempDir::new("cli_check");
    let original = dir.path().join("original.yml");
    std::fs::write(
        &original,
        "global: {cleanup: true}\ncluster: {node_timeout_s: 45, log_txns_db: true, physical_net: providernet}\nbase_openstack: {n_projects: 2}\n",
    )
    .unwrap();
    let check = |path: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["run", path.to_str().unwrap(), "--check"];
        args.extend_from_slice(extra);
        let out = heater(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let (first, notes) = check(&original, &["--set", "base_openstack.n_vms_per_project=7"]);
    assert!(notes.contains("note: cluster.log_txns_db has no effect"), "{notes}");
    for line in [
        "node_timeout_s: 45",
        "physical_net: providernet",
        "n_vms_per_project: 7",
        "n_workers: 2",
    ] {
        assert!(first.contains(line), "no {line:?} in\n{first}");
    }
    assert!(
        !first.contains("nanos") && !first.contains('{'),
        "YAML, not JSON:\n{first}"
    );
    let again = dir.path().join("again.yml");
    std::fs::write(&again, &first).unwrap();
    let (second, notes) = check(&again, &[]);
    assert_eq!(second, first, "feeding the output back prints the same");
    assert!(!notes.contains("note:"), "{notes}");
}
