//! Scenario files: upstream ovn-heater's YAML (`global`, `cluster`, `base_openstack`, `ext_cmd`)
//! plus our base test `openstack_base`, checked key by key and turned into a typed [`Scenario`].
//!
//! Reading happens in two steps, like ripgrep's low/high args: `parse.rs` walks the YAML and
//! rejects unknown sections and keys, wrong types, bad CIDRs and out-of-range values (each with
//! its own [`ScenarioError`]), and `--set section.key=value` overrides are applied to the YAML
//! before that walk, so they get the same checks. Keys upstream knows but this ovn-heater does
//! not implement are an explicit [`ScenarioError::Unsupported`]; keys that are accepted but have
//! no effect here are listed in [`Scenario::notes`], which the runner prints and reports.
//!
//! Must not know: the lab, the CMS, how a run proceeds.

mod emit;
mod error;
mod keys;
pub(crate) mod parse;

use std::path::Path;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

pub use error::ScenarioError;

/// A validated scenario, ready to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub global: Global,
    pub cluster: Cluster,
    pub workload: Workload,
    pub ext_cmds: Vec<ExtCmd>,
    /// `chaos`: daemons killed (SIGKILL) when a stage reaches an iteration.
    pub chaos: Vec<ChaosAction>,
    /// Accepted keys that have no effect here, and values that were adjusted (one line each).
    pub notes: Vec<String>,
    /// The YAML as run (the file with `--set` overrides applied), for `DIR/scenario.yml`.
    #[serde(skip)]
    pub yaml: String,
}

/// `global`: upstream's GlobalConfig.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Global {
    /// Log every CMS action (with its parameters) to `logs/cms-actions.log`.
    pub log_cmds: bool,
    /// Delete what the workload created (through the CMS, measured) before tearing down.
    /// Not given: yes when attached to an existing OVN (`--nb/--sb`), no on a lab of our own
    /// (it goes away with the lab); see [`Global::cleanup_when`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<bool>,
    pub run_ipv4: bool,
    pub run_ipv6: bool,
    pub cms: CmsKind,
}

impl Global {
    /// Whether the run deletes what it created: `global.cleanup` if given, else whether it is
    /// `attached` to an existing OVN (whose NB must be left as it was found).
    pub fn cleanup_when(&self, attached: bool) -> bool {
        self.cleanup.unwrap_or(attached)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmsKind {
    Openstack,
}

/// `cluster`: upstream's ClusterConfig (with upstream's defaults) plus `chassis`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub clustered_db: bool,
    pub monitor_all: bool,
    pub log_txns_db: bool,
    /// Hypervisors (chassis) for `base_openstack`; `openstack_base` sizes the cluster itself.
    pub n_workers: usize,
    pub n_relays: usize,
    pub datapath_type: DatapathType,
    /// RAFT election timer, seconds.
    pub raft_election_to: u64,
    /// `NB_Global.options:northd_probe_interval`, milliseconds.
    pub northd_probe_interval_ms: u64,
    pub northd_threads: u32,
    /// Inactivity probe of the DB servers' connections, milliseconds.
    pub db_inactivity_probe_ms: u64,
    /// TLS (`pssl:`/`ssl:`) between the lab's daemons and ovn-heater, SB RBAC for chassis.
    pub enable_ssl: bool,
    /// How long a port may take to come up or to answer pings.
    pub node_timeout: Duration,
    pub node_net: Ipv4Net,
    pub internal_net: Ipv4Net,
    pub external_net: Ipv4Net,
    pub gw_net: Ipv4Net,
    pub cluster_net: Ipv4Net,
    pub internal_net6: Ipv6Net,
    pub external_net6: Ipv6Net,
    /// The provider network's name: network nodes' `ovn-bridge-mappings` (NAME:br-ex) and the
    /// external network's `provider:physical_network`.
    pub physical_net: String,
    pub chassis: ChassisKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatapathType {
    System,
    Netdev,
}

/// What plays the hypervisors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChassisKind {
    /// ovn-controller + ovs-vswitchd per chassis in a network namespace (pings work).
    Real,
    /// The SB footprint of ovn-controller only (no data path, no pings).
    Emulated,
}

/// The test to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Our base test: one external network, one tenant network with a subnet, one router.
    OpenstackBase(OpenstackBase),
    /// Upstream's `base_openstack`: N projects, each a router + tenant network + VMs.
    BaseOpenstack(BaseOpenstack),
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::OpenstackBase(_) => "openstack_base",
            Workload::BaseOpenstack(_) => "base_openstack",
        }
    }
    pub fn load(&self) -> &Load {
        match self {
            Workload::OpenstackBase(w) => &w.load,
            Workload::BaseOpenstack(w) => &w.load,
        }
    }
    /// Total VM ports the workload creates.
    pub fn total_vms(&self) -> usize {
        match self {
            Workload::OpenstackBase(w) => w.n_hypervisors * w.n_vms_per_hypervisor,
            Workload::BaseOpenstack(w) => w.n_projects * w.n_vms_per_project,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpenstackBase {
    pub n_hypervisors: usize,
    pub n_vms_per_hypervisor: usize,
    /// Chassis that host the router's gateway port (and the external host).
    pub n_network_nodes: usize,
    pub load: Load,
    /// `steps:`: openstack CLI lines run instead of the base test's stages (empty: the base
    /// test). See workload/openstack_cli.rs.
    pub steps: Vec<CliStep>,
}

/// One `openstack_base.steps` entry: an openstack CLI line (without `openstack`), run `repeat`
/// times with `${i}` = 1..=repeat (also `${i%N}`, `${i/N}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CliStep {
    pub openstack: String,
    pub repeat: usize,
    pub project: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaseOpenstack {
    pub n_projects: usize,
    /// Gateway chassis per router gateway port (Neutron allows at most 5).
    pub n_chassis_per_gw_lrp: usize,
    pub n_vms_per_project: usize,
    /// Ours: bind each VM's port on its chassis without a VM namespace behind it (upstream's
    /// "passive" ports): no data plane, no `ping_gateway`, no `pings` stage. The control plane
    /// alone, as upstream's own 20 × 50 provisioning figure was measured.
    pub passive_vms: bool,
    pub load: Load,
}

/// How hard the CMS is driven.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Load {
    /// Parallel API workers (real Neutron runs several).
    pub concurrency: usize,
    /// Cap on CMS actions started per second over all workers.
    pub ops_per_second: Option<f64>,
}

/// One `ext_cmd` entry: a command run when stage `test` reaches `iteration`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExtCmd {
    pub iteration: usize,
    pub cmd: String,
    /// `central` (this host) or a chassis name (run inside its network namespace).
    pub node: String,
    pub test: String,
    pub pid_name: Option<String>,
    pub pid_opt: String,
    pub background: bool,
}

/// One `chaos` entry: SIGKILL `kill` when `stage` reaches `iteration` (the N-th VM of `vms`;
/// 0 for the start of the other stages).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChaosAction {
    pub stage: String,
    pub iteration: usize,
    pub kill: ChaosTarget,
    /// Start the killed daemon again (same command line) this long after the kill, as
    /// systemd's `Restart=on-failure` would; `None`: it stays dead.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub restart_after: Option<std::time::Duration>,
}

/// A duration in results.json's `resolved`, as the scenario wrote it: seconds.
fn seconds<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// What a `chaos` entry kills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosTarget {
    /// The NB RAFT leader (`clustered_db: true`).
    NbLeader,
    /// The SB RAFT leader (`clustered_db: true`).
    SbLeader,
    Northd,
    /// `<chassis>/<daemon>`: `ovn-controller` or `ovs-vswitchd` of a real chassis.
    Daemon {
        chassis: String,
        daemon: String,
    },
}

impl std::fmt::Display for ChaosTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChaosTarget::NbLeader => f.write_str("nb-leader"),
            ChaosTarget::SbLeader => f.write_str("sb-leader"),
            ChaosTarget::Northd => f.write_str("northd"),
            ChaosTarget::Daemon { chassis, daemon } => write!(f, "{chassis}/{daemon}"),
        }
    }
}

impl Scenario {
    /// Reads `path` and applies `overrides` (`section.key=value`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        parse::parse(&text, &path.display().to_string(), overrides)
    }

    /// The scenario as understood, as upstream-style YAML with every default filled in (what
    /// `run --check` prints; it reads back to the same scenario and the same text).
    pub fn to_yaml(&self) -> String {
        emit::to_yaml(self)
    }

    /// Parses scenario text (`origin` names it in errors).
    #[cfg(test)]
    pub fn from_yaml(text: &str, origin: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
        parse::parse(text, origin, overrides)
    }
}
