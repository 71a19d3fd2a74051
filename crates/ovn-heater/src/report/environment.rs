//! The machine and software a run used, for the report: OVN/OVS versions, kernel, CPU, memory.
//!
//! Every probe is best effort: a missing file or binary gives an empty string, never an error,
//! because the run's results matter more than its description.
//!
//! Must not know: the lab or the scenario.

use std::time::{SystemTime, UNIX_EPOCH};

use super::json::Environment;

fn first_line_of(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_default()
}

/// The first line of `<binary> --version`, e.g. `ovn-northd 23.03.1`.
pub fn version_of(binary: &str) -> String {
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `t` as RFC 3339 UTC with seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The programs of a run with their `--version` first line: the binary each running daemon
/// in `pids` executes (`/proc/PID/exe`, so the one that ran, not the first in `$PATH`), one
/// per program name, and the `tools` given by path.
pub fn binaries(pids: &[u32], tools: &[std::path::PathBuf]) -> std::collections::BTreeMap<String, super::json::Binary> {
    let running = pids
        .iter()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    let mut out = std::collections::BTreeMap::new();
    for path in running.chain(tools.iter().filter_map(|t| std::fs::canonicalize(t).ok())) {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        out.entry(name).or_insert_with(|| {
            let version = version_of(&path.to_string_lossy());
            super::json::Binary {
                path: path.display().to_string(),
                version: if version.is_empty() { "unknown".into() } else { version },
            }
        });
    }
    out
}

/// Describes this machine; `ovn_version`/`ovs_version` come from the lab when it knows them.
pub fn probe(ovn_version: Option<String>, ovs_version: Option<String>, chassis: &str, target: &str) -> Environment {
    Environment {
        ovn_heater_version: env!("CARGO_PKG_VERSION").to_owned(),
        ovn_version: ovn_version.unwrap_or_else(|| version_of("ovn-northd")),
        ovs_version: ovs_version.unwrap_or_else(|| version_of("ovsdb-server")),
        kernel: first_line_of("/proc/sys/kernel/osrelease"),
        hostname: first_line_of("/proc/sys/kernel/hostname"),
        cpu_model: cpu_model(),
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_bytes: memory_bytes(),
        chassis: chassis.to_owned(),
        target: target.to_owned(),
        started_at: rfc3339(SystemTime::now()),
        ..Environment::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }

    #[test]
    fn binaries_are_found_by_pid_and_path() {
        let tool = std::path::PathBuf::from("/bin/sh");
        let b = binaries(&[std::process::id(), u32::MAX - 1], &[tool, "/nonexistent/tool".into()]);
        let me = b
            .values()
            .find(|b| b.path == std::env::current_exe().unwrap().display().to_string());
        assert!(me.is_some(), "{b:?}");
        assert!(
            b.values().all(|b| b.path.starts_with('/') && !b.version.is_empty()),
            "{b:?}"
        );
        assert!(b.len() >= 2, "{b:?}");
    }

    #[test]
    fn probe_describes_this_machine() {
        let e = probe(Some("ovn 1".into()), Some("ovs 1".into()), "real", "lab");
        assert!(e.cpus >= 1);
        assert!(e.memory_bytes > 0);
        assert!(!e.kernel.is_empty());
        assert_eq!(e.ovn_version, "ovn 1");
        assert!(e.started_at.ends_with('Z'));
    }
}
