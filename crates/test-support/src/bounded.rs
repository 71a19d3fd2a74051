//! Running a command under test with a deadline, so a hang fails the test instead of CI.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` until it exits or `timeout` passes (then kills it). Returns its exit code
/// (`None` when killed or ended by a signal) and its stdout followed by its stderr. Both pipes
/// are drained while it runs, so a chatty command cannot block on a full pipe.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> (Option<i32>, String) {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            // Its output is not waited for: a daemon it started may hold the pipes open.
            return (None, format!("{program} did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = stdout.join().unwrap_or_default();
    text.push_str(&stderr.join().unwrap_or_default());
    (code, text)
}
