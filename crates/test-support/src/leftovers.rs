//! "Nothing left" checked from outside, without trusting ovn-heater's own records: every
//! process in `/proc` whose command line, working directory or open files lie under a run dir;
//! network namespaces and links (root namespace) named with a prefix; OVS ports so named on
//! the host's own switch, if one runs. A process, namespace or port that ovn-heater forgot to
//! record is caught here too.

use std::path::Path;
use std::process::Command;

/// Everything still there that belongs to `run_dir` or carries `prefix` (namespaces, links,
/// OVS ports named `<prefix>-*`), each described for an assertion message. Processes of the
/// test itself (and of its ancestors) are ignored.
pub fn leftovers(run_dir: &Path, prefix: &str) -> Vec<String> {
    let mut found = processes_under(run_dir);
    let named = |n: &str| n.starts_with(&format!("{prefix}-"));
    found.extend(
        list_lines("ip", &["netns", "list"])
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| named(n))
            .map(|n| format!("netns {n}")),
    );
    found.extend(
        list_lines("ip", &["-o", "link", "show"])
            .iter()
            // "7: name@peer: <...>"
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n))
            .filter(|n| named(n))
            .map(|n| format!("link {n}")),
    );
    if Path::new("/run/openvswitch/db.sock").exists() {
        for bridge in list_lines("ovs-vsctl", &["--timeout=5", "list-br"]) {
            found.extend(
                list_lines("ovs-vsctl", &["--timeout=5", "list-ports", &bridge])
                    .into_iter()
                    .filter(|p| named(p))
                    .map(|p| format!("OVS port {p} on {bridge}")),
            );
        }
    }
    found
}

/// Processes (not this one) with an argument, working directory or open file under `run_dir`.
pub fn processes_under(run_dir: &Path) -> Vec<String> {
    let dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    let dir = dir.to_string_lossy().trim_end_matches('/').to_owned();
    let under = |s: &str| {
        s.match_indices(dir.as_str()).any(|(i, _)| {
            let after = s.as_bytes().get(i + dir.len());
            matches!(after, None | Some(b'/' | b' '))
        })
    };
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || is_zombie(pid) {
            continue;
        }
        let args = command_line(pid);
        let mut why = Vec::new();
        if args.iter().any(|a| under(a)) {
            why.push("command line");
        }
        if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| under(&c.to_string_lossy())) {
            why.push("working directory");
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            if fds
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|t| under(&t.to_string_lossy()))
            {
                why.push("open file");
            }
        }
        if !why.is_empty() {
            found.push(format!("pid {pid} ({}) by {}", args.join(" ").trim(), why.join(", ")));
        }
    }
    found
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

fn list_lines(program: &str, args: &[&str]) -> Vec<String> {
    let Some(path) = crate::find_binary(program) else {
        return Vec::new();
    };
    Command::new(path)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The arguments of process `pid` (empty when it is gone).
pub fn command_line(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// When a run's results dir holds the lab's record (`logs/lab.down.json`: OpenStack runs
/// write it), nothing of that lab is left.
pub fn assert_recorded_lab_left_nothing(results: &Path) {
    let record = results.join("logs/lab.down.json");
    if record.exists() {
        let state = crate::read_json(&record);
        assert_nothing_left(
            Path::new(state["run_dir"].as_str().unwrap()),
            state["prefix"].as_str().unwrap(),
        );
    }
}

/// Panics with the list if anything of `run_dir` / `prefix` is left.
pub fn assert_nothing_left(run_dir: &Path, prefix: &str) {
    let left = leftovers(run_dir, prefix);
    assert!(
        left.is_empty(),
        "left behind by the lab in {} (prefix {prefix}):\n  {}",
        run_dir.display(),
        left.join("\n  ")
    );
}
