//! Findings of probes run against the binary as a user would, each pinned down: bad input is
//! exit 2 at once, limits are enforced with a clear error, a junk-speaking server is named for
//! what it is and cannot make the client grow without bound.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-heater");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary and returns its output with its peak RSS in bytes (from `wait4`).
fn heater_with_peak_rss(args: &[&str]) -> (Output, u64) {
    use std::os::unix::process::ExitStatusExt as _;
    let child = Command::new(BIN)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ovn-heater");
    let pid = child.id() as libc::pid_t;
    // Read the pipes on threads, reap with wait4 here to get the child's rusage.
    let mut child = child;
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    };
    (out, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn an_impossible_ipv4_address_is_bad_input_at_once() {
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .args(["db", "dump", "--db", "tcp:999.1.1.1:1", "--timeout", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a valid IPv4 address"), "{}", stderr(&out));
    // Not resolved as a host name and retried for the 5 s connect timeout.
    assert!(t0.elapsed() < Duration::from_secs(4), "took {:?}", t0.elapsed());
}

#[test]
fn a_results_dir_that_is_a_file_is_bad_input() {
    let dir = test_support::TempDir::new("results_dir_file");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/openstack-base-emulated.yml"
    );
    for results in [file.clone(), file.join("below")] {
        let out = Command::new(BIN)
            .args([
                "run",
                scenario,
                "--nb",
                "tcp:127.0.0.1:1",
                "--sb",
                "tcp:127.0.0.1:1",
                "--results-dir",
            ])
            .arg(&results)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}: {}", results.display(), stderr(&out));
        assert!(stderr(&out).contains("is not a directory"), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x", "the file is left alone");
}

#[test]
fn fake_chassis_count_has_an_upper_limit() {
    let out = Command::new(BIN)
        .args(["fake-chassis", "--sb", "tcp:127.0.0.1:1", "--count", "100000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--count 100000000 is more than"),
        "{}",
        stderr(&out)
    );
}

/// A TCP server that answers every connection with an endless JSON string (never a message).
fn junk_server() -> (
    String,
    std::thread::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        // Bounded: at most a few connections, each at most 4 GiB or until the client hangs up.
        let mut served = 0;
        while !stop2.load(Ordering::Relaxed) && served < 8 {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            served += 1;
            if s.write_all(b"{\"id\":0,\"result\":\"").is_err() {
                continue;
            }
            for _ in 0..65_536 {
                if stop2.load(Ordering::Relaxed) || s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    (format!("tcp:127.0.0.1:{}", addr.port()), handle, stop)
}

#[test]
fn db_dump_against_a_junk_stream_fails_clearly_with_bounded_memory() {
    let (remote, handle, stop) = junk_server();
    let (out, peak) = heater_with_peak_rss(&[
        "db",
        "dump",
        "--db",
        &remote,
        "--max-message-mib",
        "16",
        "--timeout",
        "5",
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = handle.join();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("larger than 16777216 bytes"), "{err}");
    assert!(
        !err.contains("is it running"),
        "a server that answers is running: {err}"
    );
    // The buffer may double past the limit once; anything near the 1 GiB default is unbounded.
    assert!(
        peak < 160 << 20,
        "peak RSS {} MiB with a 16 MiB message limit",
        peak >> 20
    );
}
