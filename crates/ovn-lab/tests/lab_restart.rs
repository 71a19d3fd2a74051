//! `Lab::restart`, as root against the real daemons (central only): a daemon still running is
//! left alone; a killed ovn-northd starts again with its own command line under a new pid, on
//! record in `lab.json` (another process attaching finds it), and `down` stops it, leaving
//! nothing.

use ovn_lab::{Lab, LabSpec, ProcessRole};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_restarts_a_killed_daemon_and_tears_the_new_one_down() {
    test_support::require_lab!("lab_restarts_a_killed_daemon_and_tears_the_new_one_down");
    let dir = test_support::TempDir::new("lab_restart");
    let lab = Lab::up(LabSpec::new(dir.path())).await.expect("lab up");
    let run_dir = lab.run_dir().to_path_buf();
    let prefix = lab.prefix().to_owned();
    let northd = lab
        .processes()
        .into_iter()
        .find(|p| p.role == ProcessRole::Northd)
        .expect("northd");

    let e = lab
        .restart("northd")
        .await
        .expect_err("a running daemon is not restarted");
    assert!(e.to_string().contains("still running"), "{e}");
    let e = lab.restart("no-such").await.expect_err("unknown name");
    assert!(e.to_string().contains("no process no-such"), "{e}");

    lab.kill(&northd);
    let again = lab.restart("northd").await.expect("restart");
    assert_ne!(again.pid, northd.pid);
    assert_eq!(again.launch, northd.launch, "the same command line");
    let status = lab.status();
    let now = status.processes.iter().find(|p| p.process.name == "northd").unwrap();
    assert!(now.alive && now.process.pid == again.pid);
    // On record for another process.
    let attached = Lab::attach(&run_dir).expect("attach");
    let recorded = attached.processes().into_iter().find(|p| p.name == "northd").unwrap();
    assert_eq!(recorded.pid, again.pid);
    drop(attached);

    let report = lab.down().expect("down");
    assert!(report.leftovers.is_empty(), "{:?}", report.leftovers);
    assert!(
        test_support::command_line(again.pid).is_empty(),
        "restarted northd still runs"
    );
    test_support::assert_nothing_left(&run_dir, &prefix);
}
