//! What a lab should look like: [`LabSpec`], built by the binary from flags or a scenario.
//!
//! A spec is plain data with defaults matching upstream ovn-heater where it has any; it is
//! checked once by [`LabSpec::validate`] before anything starts.
//!
//! Must not know: clap, YAML, scenarios, Neutron.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a real chassis does in the cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChassisRole {
    /// Hosts VMs.
    Compute,
    /// Gateway: `br-ex` on the provider network, `enable-chassis-as-gw`.
    NetworkNode,
}

impl std::fmt::Display for ChassisRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChassisRole::Compute => "compute",
            ChassisRole::NetworkNode => "network-node",
        })
    }
}

/// One real chassis to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChassisSpec {
    /// Chassis name = OVS `system-id` = SB `Chassis.name`; also its hostname. `[a-z0-9-]`, at most 20 chars.
    pub name: String,
    pub role: ChassisRole,
}

/// Where the OVN/OVS binaries come from: `$PATH` (and the sbin dirs) unless a directory is given.
/// A directory may be an install prefix's bin dir or a developer's build tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryDirs {
    pub ovn_bin_dir: Option<PathBuf>,
    pub ovs_bin_dir: Option<PathBuf>,
}

/// The whole lab: central databases, northd, real chassis, networks.
#[derive(Clone, Debug)]
pub struct LabSpec {
    /// Everything of the lab lives here: DB files, sockets, pidfiles, logs, `lab.json`.
    pub run_dir: PathBuf,
    /// Prefix of every network namespace of the lab; derived from the run dir when `None`.
    pub name: Option<String>,
    /// 3-member RAFT clusters for NB and SB instead of standalone servers.
    pub clustered: bool,
    /// RAFT election timer (ms); ovsdb's default (1000) when `None`.
    pub election_timer_ms: Option<u64>,
    /// SB relays; chassis connect through them when there are any.
    pub n_relays: usize,
    /// `ovn-northd --n-threads`.
    pub northd_threads: usize,
    /// Inactivity probe of the central servers toward their clients (`Connection.inactivity_probe`);
    /// `None` leaves the server default (no probe on unix sockets). Standalone servers only: RAFT
    /// members share their Connection rows and so cannot each listen on their own socket.
    pub db_inactivity_probe_ms: Option<u64>,
    /// `external_ids:ovn-monitor-all` of every chassis.
    pub monitor_all: bool,
    /// `external_ids:ovn-remote-probe-interval` of every chassis (ms).
    pub remote_probe_interval_ms: u64,
    /// The provider network's name in gateway chassis' `ovn-bridge-mappings` (NAME:br-ex);
    /// default [`PHYSICAL_NETWORK`] (a scenario's `cluster.physical_net`).
    pub physical_network: String,
    /// OVS datapath of the chassis bridges. Only `netdev` (userspace) works without kernel modules.
    pub datapath_type: String,
    /// Real chassis; may be empty (central only, e.g. for emulated chassis).
    pub chassis: Vec<ChassisSpec>,
    /// Underlay network of the chassis (geneve encap IPs).
    pub node_net: Ipv4Net,
    /// Provider network behind the network nodes' `br-ex`; the external host takes its first address.
    pub external_net: Ipv4Net,
    pub binaries: BinaryDirs,
    /// How long [`Lab::up`](crate::Lab::up) waits for every chassis to appear in the SB.
    pub registration_timeout: Duration,
    /// NB, SB, northd, relays and chassis talk TLS (`pssl:`/`ssl:` on loopback), with a PKI
    /// made for the run; a standalone SB restricts chassis with RBAC. See [`crate::pki`].
    pub ssl: bool,
}

/// The default provider network name in `ovn-bridge-mappings` (`physnet1:br-ex`).
pub const PHYSICAL_NETWORK: &str = "physnet1";

impl LabSpec {
    /// Standalone NB/SB, no relays, no chassis, defaults from upstream ovn-heater.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        LabSpec {
            run_dir: run_dir.into(),
            name: None,
            clustered: false,
            election_timer_ms: None,
            n_relays: 0,
            northd_threads: 1,
            db_inactivity_probe_ms: None,
            monitor_all: true,
            remote_probe_interval_ms: 60_000,
            physical_network: PHYSICAL_NETWORK.into(),
            datapath_type: "netdev".into(),
            chassis: Vec::new(),
            node_net: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid prefix length"),
            external_net: Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 24).expect("valid prefix length"),
            binaries: BinaryDirs::default(),
            registration_timeout: Duration::from_secs(120),
            ssl: false,
        }
    }

    /// Replaces the chassis with `network_nodes` gateways (`gw-1`, ...) and `compute`
    /// compute chassis (`compute-1`, ...).
    pub fn with_chassis(mut self, compute: usize, network_nodes: usize) -> Self {
        self.chassis = (1..=network_nodes)
            .map(|i| ChassisSpec {
                name: format!("gw-{i}"),
                role: ChassisRole::NetworkNode,
            })
            .chain((1..=compute).map(|i| ChassisSpec {
                name: format!("compute-{i}"),
                role: ChassisRole::Compute,
            }))
            .collect();
        self
    }

    /// The namespace prefix: `name`, or `ovh` + a short hash of the absolute run dir.
    pub fn prefix(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => prefix_for_run_dir(&self.run_dir),
        }
    }

    /// Checks everything that can be checked without touching the system.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        let prefix = self.prefix();
        if prefix.is_empty() || prefix.len() > 16 || !prefix.chars().all(is_name_char) {
            return bad(format!(
                "lab name {prefix:?} must be 1-16 characters of a-z, 0-9, '-' or '_' (it prefixes network namespaces)"
            ));
        }
        // Clients connect to DIR/hv/<chassis>/db.sock; a unix socket path has at most 107 bytes.
        let abs = std::path::absolute(&self.run_dir).unwrap_or_else(|_| self.run_dir.clone());
        let longest = abs.as_os_str().len() + "/hv/".len() + 20 + "/db.sock".len();
        if longest > 107 {
            return bad(format!(
                "run dir {} is too long: its sockets would exceed the 107-byte unix socket path limit; use a shorter --run-dir",
                abs.display()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.chassis {
            if c.name.is_empty() || c.name.len() > 20 || !c.name.chars().all(is_name_char) {
                return bad(format!(
                    "chassis name {:?} must be 1-20 characters of a-z, 0-9, '-' or '_'",
                    c.name
                ));
            }
            if matches!(c.name.as_str(), "ul" | "ext") || c.name.starts_with("vm-") {
                return bad(format!(
                    "chassis name {:?} is reserved for the lab's own namespaces",
                    c.name
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return bad(format!("chassis name {:?} appears twice", c.name));
            }
        }
        // It goes into `ovn-bridge-mappings` (NAME:BRIDGE,...), where ':' and ',' separate.
        if self.physical_network.is_empty()
            || !self
                .physical_network
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(format!(
                "physical network name {:?} must be 1 or more of A-Z, a-z, 0-9, '-', '_' or '.' (it goes into ovn-bridge-mappings)",
                self.physical_network
            ));
        }
        // Hosts start at the network's 10th address, leaving the first ones free for the user.
        let hosts = host_count(self.node_net);
        if self.chassis.len() as u64 + 10 > hosts {
            return bad(format!(
                "node network {} has {hosts} addresses, too few for {} chassis; use a larger --node-net",
                self.node_net,
                self.chassis.len()
            ));
        }
        if host_count(self.external_net) < 4 {
            return bad(format!(
                "external network {} is too small; use at least a /30",
                self.external_net
            ));
        }
        if self.node_net.contains(&self.external_net.network()) || self.external_net.contains(&self.node_net.network())
        {
            return bad(format!(
                "node network {} and external network {} overlap",
                self.node_net, self.external_net
            ));
        }
        if self.northd_threads == 0 {
            return bad("northd threads must be at least 1".into());
        }
        if self.n_relays > 16 {
            return bad(format!("{} relays is more than this lab supports (16)", self.n_relays));
        }
        if let Some(t) = self.election_timer_ms {
            if !(100..=600_000).contains(&t) {
                return bad(format!("election timer {t} ms is outside 100..600000"));
            }
        }
        if self.datapath_type != "netdev" && self.datapath_type != "system" {
            return bad(format!(
                "datapath type {:?} must be netdev or system",
                self.datapath_type
            ));
        }
        Ok(())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

fn host_count(net: Ipv4Net) -> u64 {
    1u64 << (32 - u32::from(net.prefix_len()))
}

/// `ovh` + 6 hex digits of a hash of the absolute run dir: stable for one run dir, distinct
/// between run dirs (parallel tests), short enough for interface-name-sized uses.
pub fn prefix_for_run_dir(run_dir: &Path) -> String {
    let abs = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    // FNV-1a: stable across Rust versions, unlike DefaultHasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in abs.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("ovh{:06x}", h & 0xff_ffff)
}

/// The `n`-th host address of `net` (0-based from the network address).
pub(crate) fn nth_address(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_chassis_are_named_by_role() {
        let spec = LabSpec::new("/tmp/x").with_chassis(2, 1);
        spec.validate().unwrap();
        let names: Vec<_> = spec.chassis.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gw-1", "compute-1", "compute-2"]);
    }

    #[test]
    fn prefix_is_stable_and_depends_on_the_run_dir() {
        let a = prefix_for_run_dir(Path::new("/tmp/a"));
        assert_eq!(a, prefix_for_run_dir(Path::new("/tmp/a")));
        assert_ne!(a, prefix_for_run_dir(Path::new("/tmp/b")));
        assert_eq!(a.len(), 9);
    }

    #[test]
    fn physical_network_must_fit_in_bridge_mappings() {
        let mut s = LabSpec::new("/tmp/x");
        s.physical_network = "providernet".into();
        s.validate().unwrap();
        for bad in ["", "a:b", "a,b", "phys net"] {
            s.physical_network = bad.into();
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains("ovn-bridge-mappings"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let mut s = LabSpec::new("/tmp/x");
        s.name = Some("Bad Name".into());
        assert!(s.validate().unwrap_err().to_string().contains("lab name"));
        let mut s = LabSpec::new("/tmp/x").with_chassis(1, 0);
        s.node_net = "10.0.0.0/29".parse().unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("too few"));
        let mut s = LabSpec::new("/tmp/x");
        s.external_net = "192.168.1.0/24".parse().unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("overlap"));
    }
}
