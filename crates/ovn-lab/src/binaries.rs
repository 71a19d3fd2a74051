//! Finding the OVN/OVS daemons, tools and schemas a lab runs, and recording their versions.
//!
//! By default everything comes from `$PATH` plus the sbin directories Debian installs daemons
//! into. `--ovn-bin-dir` / `--ovs-bin-dir` point at an install's `bin` dir or at a developer's
//! build tree (`northd/ovn-northd`, `vswitchd/ovs-vswitchd`, schemas at the tree's root or
//! under `../share`), so a patched OVN can be measured without installing it.
//!
//! Must not know: how daemons are started (that is `process`/`central`/`chassis`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Absolute paths of everything a lab executes or loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binaries {
    pub ovsdb_server: PathBuf,
    pub ovsdb_tool: PathBuf,
    pub ovs_vswitchd: PathBuf,
    pub ovs_vsctl: PathBuf,
    pub ovs_appctl: PathBuf,
    pub ovn_northd: PathBuf,
    pub ovn_controller: PathBuf,
    /// iproute2 `ip`, for namespaces and links.
    pub ip: PathBuf,
    /// iputils `ping`, for VM pings.
    pub ping: PathBuf,
    pub nb_schema: PathBuf,
    pub sb_schema: PathBuf,
    pub vswitch_schema: PathBuf,
}

/// Which tree a binary belongs to, for search paths and install hints.
#[derive(Clone, Copy)]
enum Tree {
    Ovn,
    Ovs,
    System,
}

/// (name, tree, build-tree subdirectory, Debian package)
const PROGRAMS: &[(&str, Tree, &str, &str)] = &[
    ("ovsdb-server", Tree::Ovs, "ovsdb", "openvswitch-common"),
    ("ovsdb-tool", Tree::Ovs, "ovsdb", "openvswitch-common"),
    ("ovs-vswitchd", Tree::Ovs, "vswitchd", "openvswitch-switch"),
    ("ovs-vsctl", Tree::Ovs, "utilities", "openvswitch-switch"),
    ("ovs-appctl", Tree::Ovs, "utilities", "openvswitch-common"),
    ("ovn-northd", Tree::Ovn, "northd", "ovn-central"),
    ("ovn-controller", Tree::Ovn, "controller", "ovn-host"),
    ("ip", Tree::System, "", "iproute2"),
    ("ping", Tree::System, "", "iputils-ping"),
];

/// (file, tree, build-tree subdirectory, Debian package)
const SCHEMAS: &[(&str, Tree, &str, &str)] = &[
    ("ovn-nb.ovsschema", Tree::Ovn, "", "ovn-common"),
    ("ovn-sb.ovsschema", Tree::Ovn, "", "ovn-common"),
    ("vswitch.ovsschema", Tree::Ovs, "vswitchd", "openvswitch-common"),
];

const SYSTEM_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];

impl Binaries {
    /// Finds every program and schema; the first missing one is reported with where it was
    /// looked for and the package (or flag) that provides it.
    pub fn locate(ovn_bin_dir: Option<&Path>, ovs_bin_dir: Option<&Path>) -> Result<Binaries> {
        let dir_for = |tree: Tree| match tree {
            Tree::Ovn => ovn_bin_dir,
            Tree::Ovs => ovs_bin_dir,
            Tree::System => None,
        };
        let program = |name: &str| -> Result<PathBuf> {
            let (_, tree, sub, pkg) = PROGRAMS.iter().find(|p| p.0 == name).expect("known program");
            let searched = program_candidates(name, dir_for(*tree), sub);
            searched
                .iter()
                .find(|p| is_executable(p))
                .cloned()
                .ok_or_else(|| Error::BinaryNotFound {
                    name: name.into(),
                    hint: install_hint(*tree, pkg, dir_for(*tree).is_some()),
                    searched,
                })
        };
        let schema = |name: &str| -> Result<PathBuf> {
            let (_, tree, sub, pkg) = SCHEMAS.iter().find(|s| s.0 == name).expect("known schema");
            let searched = schema_candidates(name, *tree, dir_for(*tree), sub);
            searched
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| Error::SchemaNotFound {
                    name: name.into(),
                    hint: install_hint(*tree, pkg, dir_for(*tree).is_some()),
                    searched,
                })
        };
        Ok(Binaries {
            ovsdb_server: program("ovsdb-server")?,
            ovsdb_tool: program("ovsdb-tool")?,
            ovs_vswitchd: program("ovs-vswitchd")?,
            ovs_vsctl: program("ovs-vsctl")?,
            ovs_appctl: program("ovs-appctl")?,
            ovn_northd: program("ovn-northd")?,
            ovn_controller: program("ovn-controller")?,
            ip: program("ip")?,
            ping: program("ping")?,
            nb_schema: schema("ovn-nb.ovsschema")?,
            sb_schema: schema("ovn-sb.ovsschema")?,
            vswitch_schema: schema("vswitch.ovsschema")?,
        })
    }

    /// `program --version`'s first line for each daemon, e.g. `ovn-northd` → `ovn-northd 23.03.1`.
    /// A program that cannot tell its version maps to `"unknown"`, never an error.
    pub fn versions(&self) -> BTreeMap<String, String> {
        [
            ("ovsdb-server", &self.ovsdb_server),
            ("ovs-vswitchd", &self.ovs_vswitchd),
            ("ovn-northd", &self.ovn_northd),
            ("ovn-controller", &self.ovn_controller),
        ]
        .into_iter()
        .map(|(name, path)| {
            let version = std::process::Command::new(path)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            (name.to_owned(), version)
        })
        .collect()
    }
}

fn program_candidates(name: &str, dir: Option<&Path>, build_subdir: &str) -> Vec<PathBuf> {
    if let Some(dir) = dir {
        let mut v = vec![dir.join(name)];
        if !build_subdir.is_empty() {
            v.push(dir.join(build_subdir).join(name));
        }
        return v;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut v: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .collect();
    v.dedup();
    v
}

fn schema_candidates(name: &str, tree: Tree, dir: Option<&Path>, build_subdir: &str) -> Vec<PathBuf> {
    let share = match tree {
        Tree::Ovn => "ovn",
        Tree::Ovs | Tree::System => "openvswitch",
    };
    match dir {
        Some(dir) => vec![
            dir.join(name),
            dir.join(build_subdir).join(name),
            dir.join("../share").join(share).join(name),
        ],
        None => vec![
            PathBuf::from("/usr/share").join(share).join(name),
            PathBuf::from("/usr/local/share").join(share).join(name),
        ],
    }
}

fn install_hint(tree: Tree, package: &str, dir_given: bool) -> String {
    let flag = match tree {
        Tree::Ovn => "--ovn-bin-dir",
        Tree::Ovs => "--ovs-bin-dir",
        Tree::System => return format!("apt-get install {package}"),
    };
    if dir_given {
        format!("check {flag} (an install's bin dir or a built source tree), or drop it to use the installed {package}")
    } else {
        format!("apt-get install {package}, or point {flag} at a build")
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bin_dir_names_the_binary_the_paths_and_the_flag() {
        let err = Binaries::locate(Some(Path::new("/nonexistent/ovn")), None).unwrap_err();
        let msg = err.to_string();
        // OVS programs come first, so the OVN dir only matters once they are found.
        if let Error::BinaryNotFound { name, searched, .. } = &err {
            if name.starts_with("ovn-") {
                assert!(searched.iter().all(|p| p.starts_with("/nonexistent/ovn")));
                assert!(msg.contains("--ovn-bin-dir"), "{msg}");
            }
        }
    }

    #[test]
    fn build_tree_layout_is_searched() {
        let c = program_candidates("ovn-northd", Some(Path::new("/src/ovn")), "northd");
        assert_eq!(
            c,
            [
                PathBuf::from("/src/ovn/ovn-northd"),
                PathBuf::from("/src/ovn/northd/ovn-northd")
            ]
        );
    }
}
