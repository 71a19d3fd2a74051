//! Test helpers for the workspace. Used only from tests (`publish = false`).
//!
//! Tests that need root or the OVN/OVS binaries call [`require_root!`] / [`require_ovn!`]
//! first. When a requirement is missing they print one `SKIPPED <test>: <why>; <fix>` line and
//! return, so a developer without OVN still gets a green unit suite and a clear list of what
//! did not run. Under `OVN_HEATER_REQUIRE_LAB=1` (set by `.ci/run`) they panic with the same
//! text instead, so CI can never go green on skipped tests.
//!
//! [`server`] starts real daemons: [`OvsdbServer`], [`RaftCluster`], [`Central`]; [`pki`] makes
//! their certificates with `ovs-pki`. [`leftovers`] checks from outside (`/proc`, `ip netns`,
//! links, OVS ports) that a lab left nothing behind. [`Lines`] reads a child's output on a thread,
//! for tests that act once it printed something.
#![allow(clippy::print_stderr)]

pub mod bounded;
pub mod leftovers;
pub mod lines;
pub mod pki;
pub mod proxy;
pub mod server;

pub use bounded::run_bounded;
pub use leftovers::{assert_nothing_left, assert_recorded_lab_left_nothing, command_line, leftovers};
pub use lines::Lines;
pub use pki::{Pki, TlsFiles};
pub use proxy::MethodFilterProxy;
pub use server::{free_tcp_ports, Central, OvsdbServer, RaftCluster};

use std::path::{Path, PathBuf};

/// Whether missing requirements must fail (CI) instead of skip (developer machine).
pub fn lab_required() -> bool {
    std::env::var("OVN_HEATER_REQUIRE_LAB")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// Reports a missing requirement: returns `true` if the caller should return (skip),
/// panics under `OVN_HEATER_REQUIRE_LAB=1`.
pub fn skip(test: &str, why: &str) -> bool {
    let msg = format!("SKIPPED {test}: {why} (set OVN_HEATER_REQUIRE_LAB=1 to fail instead)");
    if lab_required() {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    true
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Finds `name` in `$PATH` and the sbin directories Debian installs OVN/OVS daemons into.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first of `names` that cannot be found, with the Debian package that provides it.
pub fn missing_binary(names: &[&str]) -> Option<String> {
    names.iter().find(|n| find_binary(n).is_none()).map(|n| {
        let pkg = match *n {
            "ovn-northd" | "ovn-nbctl" | "ovn-sbctl" | "ovn-appctl" => "ovn-central",
            "ovn-controller" => "ovn-host",
            "ovs-vswitchd" | "ovs-vsctl" => "openvswitch-switch",
            _ => "openvswitch-common",
        };
        format!("{n} not found in $PATH or /usr/sbin; apt-get install {pkg}")
    })
}

/// A unique scratch directory `$TMPDIR/ovn-heater-tests/<test>-<pid>-<n>`, removed on drop unless
/// the test panicked (so logs stay for inspection). Kept short on purpose: unix socket paths
/// inside it must fit in 107 bytes.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(test: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join("ovn-heater-tests");
        let path = base.join(format!(
            "{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test temp dir");
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Skips (or fails under CI) unless running as root: `require_root!("lab_two_chassis_ping");`
#[macro_export]
macro_rules! require_root {
    ($test:expr) => {
        if !$crate::is_root()
            && $crate::skip(
                $test,
                "needs root (network namespaces, veths); run as root, e.g. sudo -E cargo test",
            )
        {
            return;
        }
    };
}

/// Root and the binaries a lab runs (`ovsdb-server`, `ovsdb-tool`, `ovn-northd`,
/// `ovn-controller`, `ovs-vswitchd`), plus any `extra` ones: the test returns early saying
/// SKIPPED without them, or fails under `OVN_HEATER_REQUIRE_LAB=1`.
#[macro_export]
macro_rules! require_lab {
    ($test:expr $(, [$($extra:expr),* $(,)?])?) => {
        $crate::require_root!($test);
        $crate::require_ovn!(
            $test,
            ["ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-controller", "ovs-vswitchd" $($(, $extra)*)?]
        );
    };
}

/// The schemas tests load from where Debian installs them (tests name these absolute paths).
pub const INSTALLED_SCHEMAS: [(&str, &str); 3] = [
    ("/usr/share/ovn/ovn-nb.ovsschema", "ovn-common"),
    ("/usr/share/ovn/ovn-sb.ovsschema", "ovn-common"),
    ("/usr/share/openvswitch/vswitch.ovsschema", "openvswitch-common"),
];

/// The first of `names` that cannot be found (see [`missing_binary`]), or, when
/// `ovsdb-server` is among them, the first installed schema that is missing: every test that
/// starts a server loads one of [`INSTALLED_SCHEMAS`], and a missing one must skip, not panic.
pub fn missing_requirement(names: &[&str]) -> Option<String> {
    missing_binary(names).or_else(|| {
        if !names.contains(&"ovsdb-server") {
            return None;
        }
        INSTALLED_SCHEMAS
            .iter()
            .find(|(path, _)| !Path::new(path).is_file())
            .map(|(path, pkg)| format!("{path} not found; apt-get install {pkg}"))
    })
}

/// Skips (or fails under CI) unless every binary is found (and, with `ovsdb-server`, the
/// installed OVN/OVS schemas): `require_ovn!("server_transact", ["ovsdb-server", "ovsdb-tool"]);`
#[macro_export]
macro_rules! require_ovn {
    ($test:expr, [$($bin:expr),* $(,)?]) => {
        if let Some(why) = $crate::missing_requirement(&[$($bin),*]) {
            if $crate::skip($test, &why) {
                return;
            }
        }
    };
}

/// Runs `EXE run SCENARIO ARGS... --results-dir RESULTS` to its end, where EXE is the calling
/// test's `env!("CARGO_BIN_EXE_ovn-heater")` (only the binary's own tests know its path).
pub fn heater_run(exe: &str, scenario: &Path, args: &[&str], results: &Path) -> std::process::Output {
    std::process::Command::new(exe)
        .arg("run")
        .arg(scenario)
        .args(args)
        .arg("--results-dir")
        .arg(results)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"))
}

/// The samples of `measurement` in every stage of a parsed `results.json`.
pub fn stage_samples<'a>(results: &'a serde_json::Value, measurement: &str) -> Vec<&'a serde_json::Value> {
    results["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|stage| stage["measurements"][measurement]["samples"].as_array())
        .flatten()
        .collect()
}

/// Every failed or skipped sample of a parsed `results.json`, one line each:
/// `measurement class subject: error`.
pub fn not_ok_samples(results: &serde_json::Value) -> Vec<String> {
    results["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|stage| stage["measurements"].as_object())
        .flatten()
        .flat_map(|(name, m)| {
            m["samples"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| !s["error"].is_null())
                .map(move |s| format!("{name} {} {}: {}", s["class"], s["subject"], s["error"]))
        })
        .collect()
}

/// A JSON file such as a run's `results.json`, parsed; panics naming the file otherwise.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
