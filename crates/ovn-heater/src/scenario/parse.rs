//! YAML → [`Scenario`]: overrides first, then every section and key checked, then the typed
//! values with upstream's defaults.
//!
//! Must not know: how a scenario is run.

use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde_norway::{Mapping, Value as Yaml};

use super::error::{closest, ScenarioError};
use super::keys;
use super::{
    BaseOpenstack, ChaosAction, ChaosTarget, ChassisKind, CliStep, Cluster, CmsKind, DatapathType, ExtCmd, Global,
    Load, OpenstackBase, Scenario, Workload,
};

type Result<T> = std::result::Result<T, ScenarioError>;

/// Neutron refuses more gateway chassis per router port than this.
pub const MAX_GATEWAY_CHASSIS: usize = 5;

pub(super) fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Scenario> {
    let doc: Yaml = serde_norway::from_str(text).map_err(|e| ScenarioError::Syntax {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    let mut root = match doc {
        Yaml::Mapping(m) => m,
        Yaml::Null => Mapping::new(),
        other => {
            return Err(ScenarioError::NotAMapping {
                what: format!("the scenario ({origin})"),
                found: describe(&other),
            })
        }
    };
    for arg in overrides {
        apply_override(&mut root, arg)?;
    }
    check_sections(&root)?;
    let yaml = if overrides.is_empty() {
        text.to_owned()
    } else {
        let body = serde_norway::to_string(&root).unwrap_or_default();
        format!("# {origin} with --set {}\n{body}", overrides.join(" --set "))
    };

    let mut notes = Vec::new();
    let global = parse_global(&Section::new(&root, "global")?)?;
    let cluster_section = Section::new(&root, "cluster")?;
    let cluster = parse_cluster(&cluster_section, &mut notes)?;
    let workload = parse_workload(&root, &cluster_section, &cluster, &mut notes)?;
    let ext_cmds = parse_ext_cmds(&root)?;
    let chaos = parse_chaos(&root, crate::workload::ext_cmd::STAGES)?;
    Ok(Scenario {
        global,
        cluster,
        workload,
        ext_cmds,
        chaos,
        notes,
        yaml,
    })
}

fn apply_override(root: &mut Mapping, arg: &str) -> Result<()> {
    let bad = |reason: &str| ScenarioError::BadOverride {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let (path, value) = arg.split_once('=').ok_or_else(|| bad("missing `=`"))?;
    let (section, key) = path
        .trim()
        .split_once('.')
        .ok_or_else(|| bad("missing `.` between section and key"))?;
    if section.is_empty() || key.is_empty() {
        return Err(bad("empty section or key"));
    }
    if section == "ext_cmd" || section == "chaos" {
        return Err(bad(&format!("`{section}` is a list; edit the scenario file instead")));
    }
    if !keys::SECTIONS.contains(&section) {
        return Err(ScenarioError::UnknownSection {
            section: section.to_owned(),
            suggestion: closest(section, keys::SECTIONS.iter().copied()),
        });
    }
    if value.trim().is_empty() {
        return Err(bad("empty value"));
    }
    let value: Yaml = serde_norway::from_str(value).map_err(|e| bad(&format!("value is not valid YAML: {e}")))?;
    let entry = root
        .entry(Yaml::String(section.to_owned()))
        .or_insert_with(|| Yaml::Mapping(Mapping::new()));
    if entry.is_null() {
        *entry = Yaml::Mapping(Mapping::new());
    }
    let map = entry.as_mapping_mut().ok_or_else(|| ScenarioError::NotAMapping {
        what: format!("section `{section}`"),
        found: "something else".into(),
    })?;
    map.insert(Yaml::String(key.to_owned()), value);
    Ok(())
}

fn check_sections(root: &Mapping) -> Result<()> {
    for key in root.keys() {
        let name = key.as_str().ok_or_else(|| ScenarioError::NotAMapping {
            what: "the scenario".into(),
            found: format!("a section named by {}", describe(key)),
        })?;
        if keys::SECTIONS.contains(&name) {
            continue;
        }
        if let Some((_, what)) = keys::UNSUPPORTED_SECTIONS.iter().find(|(s, _)| *s == name) {
            return Err(ScenarioError::Unsupported {
                what: name.to_owned(),
                why: format!(
                    "it is {what} of upstream ovn-heater; this one runs the OpenStack tests `openstack_base` and `base_openstack`"
                ),
            });
        }
        if let Some(owner) = keys::section_owning(name, "") {
            return Err(ScenarioError::UnknownSection {
                section: name.to_owned(),
                suggestion: Some(format!("{owner}: {{{name}: ...}}")),
            });
        }
        return Err(ScenarioError::UnknownSection {
            section: name.to_owned(),
            suggestion: closest(name, keys::SECTIONS.iter().copied()),
        });
    }
    Ok(())
}

/// One mapping section, checked for unknown keys, with typed getters that apply defaults.
struct Section<'a> {
    name: &'static str,
    map: Option<&'a Mapping>,
}

impl<'a> Section<'a> {
    fn new(root: &'a Mapping, name: &'static str) -> Result<Self> {
        let map = match root.get(name) {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Mapping(m)) => Some(m),
            Some(other) => {
                return Err(ScenarioError::NotAMapping {
                    what: format!("section `{name}`"),
                    found: describe(other),
                })
            }
        };
        let section = Section { name, map };
        section.check_keys(keys::keys_of(name))?;
        Ok(section)
    }

    fn present(&self) -> bool {
        self.map.is_some()
    }

    fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        let Some(map) = self.map else { return Ok(()) };
        for key in map.keys() {
            let key = key.as_str().map(str::to_owned).unwrap_or_else(|| describe(key));
            if !allowed.contains(&key.as_str()) {
                return Err(ScenarioError::UnknownKey {
                    section: self.name.to_owned(),
                    suggestion: closest(&key, allowed.iter().copied()),
                    belongs_to: keys::section_owning(&key, self.name).map(str::to_owned),
                    key,
                });
            }
        }
        Ok(())
    }

    /// A key's value; an explicit `null` (`key:` with nothing after it) counts as absent.
    fn get(&self, key: &str) -> Option<&'a Yaml> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Yaml) -> ScenarioError {
        ScenarioError::WrongType {
            section: self.name.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            found: describe(found),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        Ok(self.opt_bool(key)?.unwrap_or(default))
    }

    /// A boolean key whose default depends on how the scenario is run (None: not given).
    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        match v {
            Yaml::Bool(b) => Ok(Some(*b)),
            // Upstream reads YAML 1.1 with PyYAML, where these are booleans too.
            Yaml::String(s) => match s.as_str() {
                "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "True" | "TRUE" => Ok(Some(true)),
                "no" | "No" | "NO" | "off" | "Off" | "OFF" | "False" | "FALSE" => Ok(Some(false)),
                _ => Err(self.wrong_type(key, "true or false", v)),
            },
            _ => Err(self.wrong_type(key, "true or false", v)),
        }
    }

    fn uint(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64> {
        let Some(v) = self.get(key) else { return Ok(default) };
        let n = match v {
            Yaml::Number(n) if n.is_u64() => n.as_u64().unwrap_or_default(),
            Yaml::Number(n) if n.is_i64() => {
                return Err(self.out_of_range(key, &n.to_string(), min, max));
            }
            _ => return Err(self.wrong_type(key, "a whole number", v)),
        };
        if n < min || n > max {
            return Err(self.out_of_range(key, &n.to_string(), min, max));
        }
        Ok(n)
    }

    fn out_of_range(&self, key: &str, value: &str, min: u64, max: u64) -> ScenarioError {
        ScenarioError::OutOfRange {
            section: self.name.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            allowed: format!("allowed {min} to {max}"),
        }
    }

    fn usize(&self, key: &str, default: usize, min: usize, max: usize) -> Result<usize> {
        Ok(self.uint(key, default as u64, min as u64, max as u64)? as usize)
    }

    fn string(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(Yaml::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.wrong_type(key, "a string", v)),
        }
    }

    fn positive_f64(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let x = match v {
            Yaml::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            _ => return Err(self.wrong_type(key, "a number", v)),
        };
        if !(x > 0.0 && x.is_finite()) {
            return Err(ScenarioError::OutOfRange {
                section: self.name.to_owned(),
                key: key.to_owned(),
                value: format!("{x}"),
                allowed: "must be a positive number (omit the key for no cap)".into(),
            });
        }
        Ok(Some(x))
    }

    fn ipv4(&self, key: &str, default: &str) -> Result<Ipv4Net> {
        let text = self.string(key, default)?;
        text.trim()
            .parse::<Ipv4Net>()
            .map(|n| n.trunc())
            .map_err(|e| ScenarioError::BadCidr {
                section: self.name.to_owned(),
                key: key.to_owned(),
                value: text.clone(),
                family: "IPv4",
                reason: e.to_string(),
            })
    }

    fn ipv6(&self, key: &str, default: &str) -> Result<Ipv6Net> {
        let text = self.string(key, default)?;
        text.trim()
            .parse::<Ipv6Net>()
            .map(|n| n.trunc())
            .map_err(|e| ScenarioError::BadCidr {
                section: self.name.to_owned(),
                key: key.to_owned(),
                value: text.clone(),
                family: "IPv6",
                reason: e.to_string(),
            })
    }

    fn unsupported_if(&self, key: &str, bad: bool, why: &str) -> Result<()> {
        if bad {
            return Err(ScenarioError::Unsupported {
                what: format!("{}.{key}", self.name),
                why: why.to_owned(),
            });
        }
        Ok(())
    }
}

fn describe(v: &Yaml) -> String {
    match v {
        Yaml::Null => "nothing (null)".into(),
        Yaml::Bool(b) => format!("the boolean {b}"),
        Yaml::Number(n) => format!("the number {n}"),
        Yaml::String(s) => format!("the string {s:?}"),
        Yaml::Sequence(_) => "a list".into(),
        Yaml::Mapping(_) => "a mapping".into(),
        Yaml::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn parse_global(s: &Section) -> Result<Global> {
    let run_ipv4 = s.bool("run_ipv4", true)?;
    let run_ipv6 = s.bool("run_ipv6", false)?;
    s.unsupported_if(
        "run_ipv6",
        run_ipv6,
        "IPv6 workloads are not implemented; set run_ipv6: false",
    )?;
    s.unsupported_if(
        "run_ipv4",
        !run_ipv4,
        "IPv4 is the only address family implemented; set run_ipv4: true",
    )?;
    let cms_name = s.string("cms_name", "")?;
    let cms = match cms_name.as_str() {
        "" | "openstack" => CmsKind::Openstack,
        "ovn_kubernetes" | "ovn-kubernetes" => {
            return Err(ScenarioError::Unsupported {
                what: format!("global.cms_name: {cms_name}"),
                why: "this is the OpenStack scenario reader; `ovn-heater run` sends ovn_kubernetes scenarios to their own (docs/ovn-kubernetes.md)".into(),
            })
        }
        other => {
            return Err(ScenarioError::BadChoice {
                section: "global".into(),
                key: "cms_name".into(),
                value: other.to_owned(),
                choices: "openstack, ovn_kubernetes".into(),
            })
        }
    };
    Ok(Global {
        log_cmds: s.bool("log_cmds", false)?,
        cleanup: s.opt_bool("cleanup")?,
        run_ipv4,
        run_ipv6,
        cms,
    })
}

fn parse_cluster(s: &Section, notes: &mut Vec<String>) -> Result<Cluster> {
    s.unsupported_if(
        "use_ovsdb_etcd",
        s.bool("use_ovsdb_etcd", false)?,
        "the etcd backend is not implemented; set use_ovsdb_etcd: false",
    )?;
    s.unsupported_if(
        "logical_dp_groups",
        !s.bool("logical_dp_groups", true)?,
        "OVN since 22.09 always uses logical datapath groups; remove the key",
    )?;
    let n_az = s.uint("n_az", 1, 1, 1000)?;
    s.unsupported_if(
        "n_az",
        n_az != 1,
        "several availability zones (OVN interconnection) are not implemented; set n_az: 1",
    )?;
    s.unsupported_if(
        "node_remote",
        s.is_set("node_remote"),
        "ovn-heater starts its own DBs; to drive an existing OVN pass --nb and --sb to `ovn-heater run`",
    )?;
    s.unsupported_if(
        "cluster_cmd_path",
        s.is_set("cluster_cmd_path"),
        "there is no ovn-fake-multinode here: the lab runs the daemons directly; remove the key",
    )?;
    for key in [
        "vips",
        "vips6",
        "static_vips",
        "static_vips6",
        "vip_subnet",
        "vip_subnet6",
    ] {
        if s.is_set(key) {
            notes.push(format!(
                "cluster.{key} has no effect: only upstream's ovn-kubernetes tests use load balancer VIPs"
            ));
        }
    }
    for key in ["gw_net", "gw_net6", "cluster_net", "cluster_net6", "ts_net", "ts_net6"] {
        if s.is_set(key) {
            notes.push(format!(
                "cluster.{key} has no effect: the OpenStack tests do not use it (checked, then unused)"
            ));
        }
    }
    // Only `true` asks for something not done here; `false` is what happens anyway.
    if s.bool("log_txns_db", false)? {
        notes.push(
            "cluster.log_txns_db has no effect: the lab's DB servers do not log transactions (their logs are kept in DIR/logs)"
                .into(),
        );
    }
    for key in ["internal_net6", "external_net6"] {
        if s.is_set(key) {
            notes.push(format!(
                "cluster.{key} has no effect: IPv6 workloads are not implemented (run_ipv6 must be false)"
            ));
        }
    }
    // Validate the IPv6 nets that have no effect too, so a typo is still caught.
    s.ipv6("gw_net6", "30::/64")?;
    s.ipv6("cluster_net6", "16::/32")?;
    s.ipv4("ts_net", "40.0.0.0/16")?;
    s.ipv6("ts_net6", "40::/64")?;

    // Upstream's default is `system`; ours is `netdev`, which needs no openvswitch kernel module.
    let datapath_type = match s.string("datapath_type", "netdev")?.as_str() {
        "system" => DatapathType::System,
        "netdev" => DatapathType::Netdev,
        other => {
            return Err(ScenarioError::BadChoice {
                section: "cluster".into(),
                key: "datapath_type".into(),
                value: other.to_owned(),
                choices: "system, netdev".into(),
            })
        }
    };
    let chassis = match s.string("chassis", "real")?.as_str() {
        "real" => ChassisKind::Real,
        "emulated" => ChassisKind::Emulated,
        other => {
            return Err(ScenarioError::BadChoice {
                section: "cluster".into(),
                key: "chassis".into(),
                value: other.to_owned(),
                choices: "real (ovn-controller + ovs-vswitchd per chassis), emulated (SB footprint only)".into(),
            })
        }
    };
    let cluster = Cluster {
        clustered_db: s.bool("clustered_db", true)?,
        monitor_all: s.bool("monitor_all", true)?,
        log_txns_db: s.bool("log_txns_db", false)?,
        n_workers: s.usize("n_workers", 2, 1, 10_000)?,
        n_relays: s.usize("n_relays", 0, 0, 16)?,
        datapath_type,
        raft_election_to: s.uint("raft_election_to", 16, 1, 600)?,
        northd_probe_interval_ms: s.uint("northd_probe_interval", 16_000, 0, 3_600_000)?,
        northd_threads: s.uint("northd_threads", 4, 1, 256)? as u32,
        db_inactivity_probe_ms: s.uint("db_inactivity_probe", 60_000, 0, 3_600_000)?,
        // As upstream: TLS between every daemon, and SB RBAC for the chassis.
        enable_ssl: s.bool("enable_ssl", true)?,
        node_timeout: Duration::from_secs(s.uint("node_timeout_s", 20, 1, 3600)?),
        node_net: s.ipv4("node_net", "192.16.0.0/16")?,
        internal_net: s.ipv4("internal_net", "16.0.0.0/16")?,
        external_net: s.ipv4("external_net", "20.0.0.0/16")?,
        gw_net: s.ipv4("gw_net", "30.0.0.0/16")?,
        cluster_net: s.ipv4("cluster_net", "16.0.0.0/4")?,
        internal_net6: s.ipv6("internal_net6", "16::/64")?,
        external_net6: s.ipv6("external_net6", "20::/64")?,
        physical_net: physical_net(s)?,
        chassis,
    };
    if chassis == ChassisKind::Emulated && s.is_set("datapath_type") {
        notes.push("cluster.datapath_type has no effect with emulated chassis (no OVS runs)".into());
    }
    for (a, an, b, bn) in [
        (cluster.node_net, "node_net", cluster.internal_net, "internal_net"),
        (cluster.node_net, "node_net", cluster.external_net, "external_net"),
        (
            cluster.internal_net,
            "internal_net",
            cluster.external_net,
            "external_net",
        ),
    ] {
        if a.contains(&b.network()) || b.contains(&a.network()) {
            return Err(ScenarioError::Conflict(format!(
                "cluster.{an} ({a}) and cluster.{bn} ({bn_value}) overlap; give them disjoint ranges",
                bn_value = b
            )));
        }
    }
    Ok(cluster)
}

/// `cluster.physical_net`: upstream's provider network name; here the name in the network
/// nodes' `ovn-bridge-mappings` and the external network's `provider:physical_network`. Our
/// default is `physnet1` (upstream's is `providernet`; the name changes nothing OVN computes).
fn physical_net(s: &Section) -> Result<String> {
    let name = s.string("physical_net", ovn_lab::PHYSICAL_NETWORK)?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(ScenarioError::OutOfRange {
            section: "cluster".into(),
            key: "physical_net".into(),
            value: format!("{name:?}"),
            allowed: "1 or more of A-Z, a-z, 0-9, '-', '_' or '.' (it goes into ovn-bridge-mappings NAME:br-ex)".into(),
        });
    }
    Ok(name)
}

fn parse_load(s: &Section) -> Result<Load> {
    Ok(Load {
        concurrency: s.usize("concurrency", 1, 1, 256)?,
        ops_per_second: s.positive_f64("ops_per_second")?,
    })
}

/// Usable host addresses of a network (no network/broadcast address).
fn hosts(net: &Ipv4Net) -> u64 {
    let size = 1u64 << (32 - u32::from(net.prefix_len()));
    size.saturating_sub(2)
}

fn parse_workload(
    root: &Mapping,
    cluster_section: &Section,
    cluster: &Cluster,
    notes: &mut Vec<String>,
) -> Result<Workload> {
    let ours = Section::new(root, "openstack_base")?;
    let upstream = Section::new(root, "base_openstack")?;
    match (ours.present(), upstream.present()) {
        (true, true) => Err(ScenarioError::Conflict(
            "a scenario runs one workload: keep either `openstack_base` or `base_openstack`, not both".into(),
        )),
        (false, false) => Err(ScenarioError::NoWorkload),
        (true, false) => {
            if cluster_section.is_set("n_workers") {
                return Err(ScenarioError::Conflict(
                    "`openstack_base` sizes the cluster with n_hypervisors and n_network_nodes; remove cluster.n_workers"
                        .into(),
                ));
            }
            let w = OpenstackBase {
                n_hypervisors: ours.usize("n_hypervisors", 2, 1, 10_000)?,
                n_vms_per_hypervisor: ours.usize("n_vms_per_hypervisor", 2, 1, 10_000)?,
                n_network_nodes: ours.usize("n_network_nodes", 1, 1, MAX_GATEWAY_CHASSIS)?,
                load: parse_load(&ours)?,
                steps: parse_cli_steps(&ours)?,
            };
            // One tenant subnet (the whole internal_net) holds every VM plus gateway and DHCP port.
            let needed = (w.n_hypervisors * w.n_vms_per_hypervisor) as u64 + 2;
            if hosts(&cluster.internal_net) < needed {
                return Err(ScenarioError::Conflict(format!(
                    "cluster.internal_net {} has {} host addresses, the tenant subnet needs {needed}; use a larger range",
                    cluster.internal_net,
                    hosts(&cluster.internal_net)
                )));
            }
            Ok(Workload::OpenstackBase(w))
        }
        (false, true) => {
            upstream.unsupported_if(
                "n_gws_per_project",
                upstream.is_set("n_gws_per_project"),
                "upstream renamed it to n_chassis_per_gw_lrp; use that",
            )?;
            let mut w = BaseOpenstack {
                n_projects: upstream.usize("n_projects", 1, 1, 10_000)?,
                n_chassis_per_gw_lrp: upstream.usize("n_chassis_per_gw_lrp", 1, 1, 1000)?,
                n_vms_per_project: upstream.usize("n_vms_per_project", 3, 1, 250)?,
                passive_vms: upstream.bool("passive_vms", false)?,
                load: parse_load(&upstream)?,
            };
            let max = MAX_GATEWAY_CHASSIS.min(cluster.n_workers);
            if w.n_chassis_per_gw_lrp > max {
                notes.push(format!(
                    "base_openstack.n_chassis_per_gw_lrp = {} lowered to {max} (at most {MAX_GATEWAY_CHASSIS} per router, and cluster.n_workers = {}), as upstream does",
                    w.n_chassis_per_gw_lrp, cluster.n_workers
                ));
                w.n_chassis_per_gw_lrp = max;
            }
            // One /24 per project out of internal_net.
            if cluster.internal_net.prefix_len() > 24
                || (1u64 << (24 - u32::from(cluster.internal_net.prefix_len()))) < w.n_projects as u64
            {
                return Err(ScenarioError::Conflict(format!(
                    "cluster.internal_net {} cannot hold {} project subnets of /24; use a larger range",
                    cluster.internal_net, w.n_projects
                )));
            }
            if hosts(&cluster.external_net) < w.n_projects as u64 + 2 {
                return Err(ScenarioError::Conflict(format!(
                    "cluster.external_net {} cannot hold a gateway address for each of {} routers; use a larger range",
                    cluster.external_net, w.n_projects
                )));
            }
            Ok(Workload::BaseOpenstack(w))
        }
    }
}

/// `openstack_base.steps`: a list of `{openstack: LINE, repeat: N, project: P}`; every line is
/// checked against the openstack CLI vocabulary (with `${i}` = 1) before anything runs.
fn parse_cli_steps(s: &Section) -> Result<Vec<CliStep>> {
    let Some(list) = s.get("steps") else {
        return Ok(Vec::new());
    };
    let items = list
        .as_sequence()
        .ok_or_else(|| s.wrong_type("steps", "a list of steps", list))?;
    let mut steps = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let bad = |why: String| ScenarioError::Conflict(format!("openstack_base.steps[{}]: {why}", k + 1));
        let m = item
            .as_mapping()
            .ok_or_else(|| bad("expected a mapping with `openstack:` (and `repeat:`, `project:`)".into()))?;
        for key in m.keys() {
            let key = key.as_str().unwrap_or_default();
            if !["openstack", "repeat", "project"].contains(&key) {
                return Err(bad(format!("unknown key `{key}` (openstack, repeat, project)")));
            }
        }
        let line = m
            .get("openstack")
            .and_then(Yaml::as_str)
            .ok_or_else(|| bad("needs `openstack: LINE`".into()))?
            .to_owned();
        let repeat = match m.get("repeat") {
            None => 1,
            Some(v) => v.as_u64().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                bad(format!(
                    "`repeat` must be a whole number from 1 to 100000, got {}",
                    describe(v)
                ))
            })? as usize,
        };
        let project = m.get("project").and_then(Yaml::as_str).map(str::to_owned);
        crate::workload::openstack_cli::check_line(&line, project.as_deref()).map_err(bad)?;
        steps.push(CliStep {
            openstack: line,
            repeat,
            project,
        });
    }
    Ok(steps)
}

fn parse_ext_cmds(root: &Mapping) -> Result<Vec<ExtCmd>> {
    let list = match root.get("ext_cmd") {
        None | Some(Yaml::Null) => return Ok(Vec::new()),
        Some(Yaml::Sequence(l)) => l,
        Some(other) => {
            return Err(ScenarioError::WrongType {
                section: "ext_cmd".into(),
                key: "(section)".into(),
                expected: "a list of commands".into(),
                found: describe(other),
            })
        }
    };
    let mut cmds = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let map = entry.as_mapping().ok_or_else(|| ScenarioError::NotAMapping {
            what: format!("ext_cmd entry #{}", i + 1),
            found: describe(entry),
        })?;
        let s = Section {
            name: "ext_cmd",
            map: Some(map),
        };
        s.check_keys(keys::EXT_CMD_KEYS)?;
        let required = |key: &str| -> Result<String> {
            let v = s.string(key, "")?;
            if v.is_empty() {
                return Err(ScenarioError::WrongType {
                    section: "ext_cmd".into(),
                    key: key.to_owned(),
                    expected: format!("a non-empty string (entry #{} has none)", i + 1),
                    found: "nothing".into(),
                });
            }
            Ok(v)
        };
        if !s.is_set("iteration") {
            return Err(ScenarioError::WrongType {
                section: "ext_cmd".into(),
                key: "iteration".into(),
                expected: format!("a whole number (entry #{} has none)", i + 1),
                found: "nothing".into(),
            });
        }
        cmds.push(ExtCmd {
            iteration: s.usize("iteration", 0, 0, usize::MAX >> 1)?,
            cmd: required("cmd")?,
            node: required("node")?,
            test: required("test")?,
            pid_name: Some(s.string("pid_name", "")?).filter(|p| !p.is_empty()),
            pid_opt: s.string("pid_opt", "")?,
            background: s.bool("background_opt", false)?,
        });
    }
    cmds.sort_by_key(|c| c.iteration);
    Ok(cmds)
}

/// The longest `restart_after` of a `chaos` entry: an hour.
const MAX_RESTART_AFTER_S: f64 = 3600.0;

/// The `chaos` section of `root`; each entry's `stage` must be one of `stages`.
pub(crate) fn parse_chaos(root: &Mapping, stages: &[&str]) -> Result<Vec<ChaosAction>> {
    let list = match root.get("chaos") {
        None | Some(Yaml::Null) => return Ok(Vec::new()),
        Some(Yaml::Sequence(l)) => l,
        Some(other) => {
            return Err(ScenarioError::WrongType {
                section: "chaos".into(),
                key: "(section)".into(),
                expected: "a list of {stage, iteration, kill}".into(),
                found: describe(other),
            })
        }
    };
    let mut actions = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let map = entry.as_mapping().ok_or_else(|| ScenarioError::NotAMapping {
            what: format!("chaos entry #{}", i + 1),
            found: describe(entry),
        })?;
        let s = Section {
            name: "chaos",
            map: Some(map),
        };
        s.check_keys(keys::CHAOS_KEYS)?;
        let wrong = |key: &str, expected: String, found: String| ScenarioError::WrongType {
            section: "chaos".into(),
            key: key.to_owned(),
            expected: format!("{expected} (entry #{})", i + 1),
            found,
        };
        let stage = s.string("stage", "")?;
        if !stages.contains(&stage.as_str()) {
            return Err(wrong(
                "stage",
                format!("one of {}", stages.join(", ")),
                format!("{stage:?}"),
            ));
        }
        if !s.is_set("iteration") {
            return Err(wrong("iteration", "a whole number".into(), "nothing".into()));
        }
        let iteration = s.usize("iteration", 0, 0, usize::MAX >> 1)?;
        let kill = s.string("kill", "")?;
        let target = match kill.as_str() {
            "nb-leader" => ChaosTarget::NbLeader,
            "sb-leader" => ChaosTarget::SbLeader,
            "northd" => ChaosTarget::Northd,
            other => match other.split_once('/') {
                Some((chassis, daemon))
                    if !chassis.is_empty() && ["ovn-controller", "ovs-vswitchd"].contains(&daemon) =>
                {
                    ChaosTarget::Daemon {
                        chassis: chassis.to_owned(),
                        daemon: daemon.to_owned(),
                    }
                }
                _ => {
                    return Err(wrong(
                        "kill",
                        "nb-leader, sb-leader, northd or <chassis>/ovn-controller|ovs-vswitchd".into(),
                        format!("{other:?}"),
                    ))
                }
            },
        };
        let restart_after = match s.get("restart_after") {
            None => None,
            Some(v) => {
                let secs = match v {
                    Yaml::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    _ => return Err(wrong("restart_after", "a number of seconds".into(), describe(v))),
                };
                if !(0.0..=MAX_RESTART_AFTER_S).contains(&secs) {
                    return Err(ScenarioError::OutOfRange {
                        section: "chaos".into(),
                        key: "restart_after".into(),
                        value: format!("{secs}"),
                        allowed: format!(
                            "allowed 0 to {MAX_RESTART_AFTER_S} seconds (entry #{}; omit the key to leave the daemon dead)",
                            i + 1
                        ),
                    });
                }
                Some(std::time::Duration::from_secs_f64(secs))
            }
        };
        actions.push(ChaosAction {
            stage,
            iteration,
            kill: target,
            restart_after,
        });
    }
    actions.sort_by_key(|a| a.iteration);
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_entries_are_checked() {
        let s = parse_ok(
            "openstack_base: {}\nchaos:\n  - {stage: vms, iteration: 3, kill: sb-leader}\n  - {stage: vms, iteration: 1, kill: nb-leader}\n  - {stage: pings, iteration: 0, kill: compute-1/ovn-controller}\n",
        );
        let kills: Vec<String> = s.chaos.iter().map(|a| format!("{}@{}", a.kill, a.iteration)).collect();
        assert_eq!(kills, ["compute-1/ovn-controller@0", "nb-leader@1", "sb-leader@3"]);
        assert!(s.chaos.iter().all(|a| a.restart_after.is_none()));
        let s = parse_ok("openstack_base: {}\nchaos:\n  - {stage: vms, iteration: 5, kill: northd, restart_after: 1.5}\n  - {stage: vms, iteration: 6, kill: northd, restart_after: 0}\n");
        let after: Vec<_> = s.chaos.iter().map(|a| a.restart_after).collect();
        assert_eq!(
            after,
            [
                Some(std::time::Duration::from_millis(1500)),
                Some(std::time::Duration::ZERO)
            ]
        );
        let resolved = serde_json::to_value(&s.chaos[0]).unwrap();
        assert_eq!(resolved["restart_after"], 1.5);
        for (bad, why) in [
            (
                "chaos:\n  - {stage: vms, iteration: 1, kill: northd, restart_after: -1}\n",
                "restart_after",
            ),
            (
                "chaos:\n  - {stage: vms, iteration: 1, kill: northd, restart_after: soon}\n",
                "restart_after",
            ),
            ("chaos:\n  - {stage: vms, iteration: 1, kill: nb-lead}\n", "kill"),
            ("chaos:\n  - {stage: vm, iteration: 1, kill: northd}\n", "stage"),
            ("chaos:\n  - {stage: vms, kill: northd}\n", "iteration"),
            (
                "chaos:\n  - {stage: vms, iteration: 1, kill: northd, signal: 9}\n",
                "signal",
            ),
            ("chaos: northd\n", "list"),
        ] {
            let e = parse_err(&format!("openstack_base: {{}}\n{bad}")).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    fn parse_ok(text: &str) -> Scenario {
        parse(text, "test.yml", &[]).unwrap_or_else(|e| panic!("{e}"))
    }
    fn parse_err(text: &str) -> String {
        parse(text, "test.yml", &[]).expect_err("must fail").to_string()
    }

    #[test]
    fn upstream_openstack_low_scale_uses_upstream_defaults() {
        let s = parse_ok(
            "global:\n  log_cmds: false\n  cms_name: openstack\ncluster:\n  clustered_db: true\n  log_txns_db: true\n  n_workers: 3\nbase_openstack:\n  n_projects: 2\n  n_chassis_per_gw_lrp: 3\n  n_vms_per_project: 3\n",
        );
        assert!(s.cluster.clustered_db && s.cluster.monitor_all && s.cluster.log_txns_db);
        assert_eq!(s.cluster.n_workers, 3);
        assert_eq!(s.cluster.raft_election_to, 16);
        assert_eq!(s.cluster.northd_threads, 4);
        assert_eq!(s.cluster.northd_probe_interval_ms, 16_000);
        assert_eq!(s.cluster.db_inactivity_probe_ms, 60_000);
        assert!(s.cluster.enable_ssl, "TLS is on unless turned off, as upstream");
        assert!(
            !parse_ok("cluster:\n  enable_ssl: false\nbase_openstack: {}\n")
                .cluster
                .enable_ssl
        );
        assert_eq!(s.cluster.node_net.to_string(), "192.16.0.0/16");
        assert_eq!(s.cluster.external_net.to_string(), "20.0.0.0/16");
        assert_eq!(s.cluster.chassis, ChassisKind::Real);
        assert_eq!(s.cluster.node_timeout, Duration::from_secs(20));
        let Workload::BaseOpenstack(w) = &s.workload else {
            panic!()
        };
        assert_eq!((w.n_projects, w.n_chassis_per_gw_lrp, w.n_vms_per_project), (2, 3, 3));
        assert!(!w.passive_vms, "VMs have a data plane unless told otherwise");
        assert_eq!(w.load.concurrency, 1);
        let passive = parse_ok("base_openstack:\n  passive_vms: true\n");
        assert!(matches!(&passive.workload, Workload::BaseOpenstack(w) if w.passive_vms));
        assert_eq!(
            parse_ok(&passive.to_yaml()).workload,
            passive.workload,
            "passive_vms survives the round trip"
        );
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(
            s.notes[0].starts_with("cluster.log_txns_db has no effect"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn openstack_base_defaults() {
        let s = parse_ok("openstack_base: {}\n");
        let Workload::OpenstackBase(w) = &s.workload else {
            panic!()
        };
        assert_eq!((w.n_hypervisors, w.n_vms_per_hypervisor, w.n_network_nodes), (2, 2, 1));
        assert_eq!(
            w.load,
            Load {
                concurrency: 1,
                ops_per_second: None
            }
        );
        assert_eq!(s.workload.total_vms(), 4);
    }

    #[test]
    fn unknown_key_suggests_closest() {
        assert_eq!(
            parse_err("openstack_base:\n  n_hypervisor: 2\n"),
            "unknown key `n_hypervisor` in section `openstack_base` (did you mean `n_hypervisors`?)"
        );
    }

    #[test]
    fn key_in_wrong_section_names_its_section() {
        assert_eq!(
            parse_err("global:\n  n_workers: 2\nbase_openstack: {}\n"),
            "unknown key `n_workers` in section `global` (it belongs in section `cluster`)"
        );
    }

    #[test]
    fn unknown_section_suggests_closest() {
        assert_eq!(
            parse_err("clustr:\n  n_workers: 2\n"),
            "unknown section `clustr` (did you mean `cluster`?)"
        );
    }

    #[test]
    fn ovn_kubernetes_section_is_unsupported_not_unknown() {
        let e = parse_err("density_light:\n  n_pods: 10\n");
        assert!(e.starts_with("`density_light` is not supported"), "{e}");
    }

    #[test]
    fn wrong_type_names_expected_and_found() {
        assert_eq!(
            parse_err("openstack_base:\n  n_hypervisors: two\n"),
            "`openstack_base.n_hypervisors` must be a whole number, got the string \"two\""
        );
        assert_eq!(
            parse_err("cluster:\n  clustered_db: maybe\nbase_openstack: {}\n"),
            "`cluster.clustered_db` must be true or false, got the string \"maybe\""
        );
    }

    #[test]
    fn out_of_range_and_negative_numbers() {
        assert_eq!(
            parse_err("openstack_base:\n  n_hypervisors: 0\n"),
            "`openstack_base.n_hypervisors` = 0 is out of range: allowed 1 to 10000"
        );
        assert!(parse_err("openstack_base:\n  concurrency: -1\n").contains("out of range"));
        assert!(parse_err("openstack_base:\n  ops_per_second: 0\n").contains("positive"));
    }

    #[test]
    fn bad_cidr_is_named() {
        let e = parse_err("cluster:\n  external_net: 20.0.0/16\nbase_openstack: {}\n");
        assert!(
            e.starts_with("`cluster.external_net` = \"20.0.0/16\" is not a valid IPv4 CIDR"),
            "{e}"
        );
    }

    #[test]
    fn overlapping_networks_conflict() {
        let e = parse_err("cluster:\n  external_net: 16.0.5.0/24\nbase_openstack: {}\n");
        assert!(e.contains("overlap"), "{e}");
    }

    #[test]
    fn unsupported_values_are_explicit() {
        for (yaml, what) in [
            ("cluster:\n  n_az: 3\n", "cluster.n_az"),
            ("cluster:\n  node_remote: tcp:1.2.3.4:6642\n", "cluster.node_remote"),
            ("global:\n  run_ipv6: true\n", "global.run_ipv6"),
            (
                "global:\n  cms_name: ovn_kubernetes\n",
                "global.cms_name: ovn_kubernetes",
            ),
        ] {
            let e = parse_err(&format!("{yaml}base_openstack: {{}}\n"));
            assert!(e.starts_with(&format!("`{what}` is not supported")), "{e}");
        }
    }

    #[test]
    fn renamed_upstream_key_points_to_new_name() {
        let e = parse_err("base_openstack:\n  n_gws_per_project: 3\n");
        assert!(e.contains("n_chassis_per_gw_lrp"), "{e}");
    }

    #[test]
    fn keys_without_effect_become_notes() {
        let s = parse_ok("cluster:\n  gw_net: 30.0.0.0/16\n  vips: {}\nbase_openstack: {}\n");
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
        let s = parse_ok("cluster:\n  log_txns_db: true\n  internal_net6: 16::/64\nbase_openstack: {}\n");
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
        assert!(parse_ok("cluster:\n  log_txns_db: false\nbase_openstack: {}\n")
            .notes
            .is_empty());
    }

    #[test]
    fn physical_net_names_the_provider_network() {
        assert_eq!(parse_ok("base_openstack: {}\n").cluster.physical_net, "physnet1");
        let s = parse_ok("cluster:\n  physical_net: providernet\nbase_openstack: {}\n");
        assert_eq!(s.cluster.physical_net, "providernet");
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        let e = parse_err("cluster:\n  physical_net: 'a:b'\nbase_openstack: {}\n");
        assert!(e.contains("physical_net") && e.contains("ovn-bridge-mappings"), "{e}");
    }

    #[test]
    fn gateway_chassis_are_clamped_with_a_note() {
        let s = parse_ok("cluster:\n  n_workers: 3\nbase_openstack:\n  n_chassis_per_gw_lrp: 7\n");
        let Workload::BaseOpenstack(w) = &s.workload else {
            panic!()
        };
        assert_eq!(w.n_chassis_per_gw_lrp, 3);
        assert_eq!(s.notes.len(), 1);
    }

    #[test]
    fn workload_is_required_and_unique() {
        assert_eq!(parse_err("global: {}\n"), ScenarioError::NoWorkload.to_string());
        assert!(parse_err("openstack_base: {}\nbase_openstack: {}\n").contains("one workload"));
        assert!(parse_err("cluster:\n  n_workers: 3\nopenstack_base: {}\n").contains("remove cluster.n_workers"));
    }

    #[test]
    fn yaml_syntax_and_shape_errors() {
        assert!(parse_err("cluster: [\n").starts_with("test.yml is not valid YAML"));
        assert!(parse_err("- a\n- b\n").contains("must be a mapping"));
        assert!(parse_err("cluster: 3\n").contains("section `cluster` must be a mapping"));
    }

    #[test]
    fn overrides_apply_before_checks() {
        let s = parse(
            "openstack_base:\n  n_hypervisors: 2\n",
            "t.yml",
            &[
                "openstack_base.n_hypervisors=5".into(),
                "cluster.chassis=emulated".into(),
            ],
        )
        .unwrap();
        let Workload::OpenstackBase(w) = &s.workload else {
            panic!()
        };
        assert_eq!(w.n_hypervisors, 5);
        assert_eq!(s.cluster.chassis, ChassisKind::Emulated);
        assert!(s.yaml.contains("n_hypervisors: 5"), "{}", s.yaml);
        let reparsed = parse(&s.yaml, "scenario.yml", &[]).unwrap();
        assert_eq!(reparsed.workload, s.workload);
    }

    #[test]
    fn bad_overrides() {
        let err = |o: &str| {
            parse("openstack_base: {}\n", "t.yml", &[o.to_owned()])
                .expect_err(o)
                .to_string()
        };
        assert!(err("openstack_base.n_hypervisors").contains("missing `=`"));
        assert!(err("n_hypervisors=3").contains("missing `.`"));
        assert_eq!(
            err("openstack_base.n_hypervisor=3"),
            "unknown key `n_hypervisor` in section `openstack_base` (did you mean `n_hypervisors`?)"
        );
        assert!(err("clustr.n_workers=3").contains("did you mean `cluster`"));
    }

    #[test]
    fn ext_cmd_entries_are_checked() {
        let s = parse_ok(
            "base_openstack: {}\next_cmd:\n  - iteration: 2\n    node: central\n    test: base_openstack\n    cmd: perf record -a\n    pid_name: ovn-northd\n    pid_opt: -p\n",
        );
        assert_eq!(s.ext_cmds.len(), 1);
        assert_eq!(s.ext_cmds[0].pid_name.as_deref(), Some("ovn-northd"));
        assert!(parse_err(
            "base_openstack: {}\next_cmd:\n  - iteration: 1\n    node: central\n    test: x\n    cmdd: ls\n"
        )
        .contains("did you mean `cmd`"));
        assert!(
            parse_err("base_openstack: {}\next_cmd:\n  - node: central\n    test: x\n    cmd: ls\n")
                .contains("iteration")
        );
    }
}
