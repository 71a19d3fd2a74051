//! Upstream's ovn-kubernetes scenario files (`cms_name: ovn_kubernetes`), read as upstream's
//! translate_yaml and test constructors read them: `global`, `cluster` (translate_yaml's
//! defaults), one section per test; `--set SECTION.KEY=VALUE` overrides any key.

use ipnet::IpNet;
use ovn_kubernetes::config::Vip;
use ovn_kubernetes::workload::{
    BaseClusterBringup, ClusterDensity, DensityHeavy, DensityLight, Netpol, NetpolMultitenant, NsRange, ServiceRoute,
    Tests,
};
use ovn_kubernetes::{ClusterConfig, Compat, Families};
use serde_norway::{Mapping, Value as Yaml};

/// A parsed scenario.
#[derive(Debug)]
pub struct KubeScenario {
    pub families: Families,
    pub cleanup: bool,
    pub compat: Compat,
    pub cluster: ClusterConfig,
    pub tests: Tests,
    /// Keys read but not modelled (lab or measurement keys), for the log.
    pub ignored: Vec<String>,
    /// `chaos:` entries (ours): `stage` is a Context that iterates, `iteration` its k-th
    /// iteration (real chassis only).
    pub chaos: Vec<crate::scenario::ChaosAction>,
}

/// The Contexts of the ovn-kubernetes tests that iterate: where a `chaos` entry can fire.
pub const CHAOS_STAGES: &[&str] = &[
    "base_cluster_bringup-run",
    "cluster_density-run",
    "density_heavy-run",
    "density_heavy-cleanup",
    "density_light-startup",
    "density_light-run",
    "netpol_cross_ns-run",
    "netpol_cross_ns-cleanup",
    "netpol_multitenant-run",
    "service_route-run",
];

/// The `cluster` keys that belong to the lab, not the CMS: accepted and ignored here.
const LAB_KEYS: &[&str] = &[
    "clustered_db",
    "log_txns_db",
    "monitor_all",
    "datapath_type",
    "raft_election_to",
    "northd_threads",
    "node_net",
    "enable_ssl",
    "node_timeout_s",
    "n_relays",
    "use_ovsdb_etcd",
    "ssl_private_key",
    "ssl_cert",
    "ssl_cacert",
    // ovn-heater's own: `real` (default) or `emulated` chassis under `ovn-heater run`.
    "chassis",
];

type R<T> = Result<T, String>;

fn as_bool(v: &Yaml, key: &str) -> R<bool> {
    match v {
        Yaml::Bool(b) => Ok(*b),
        Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("{key}: expected true or false, got {}", brief(v))),
    }
}

fn as_usize(v: &Yaml, key: &str) -> R<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("{key}: expected a non-negative integer, got {}", brief(v)))
}

fn as_net<T: std::str::FromStr>(v: &Yaml, key: &str) -> R<T> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{key}: expected a network like 16.0.0.0/16, got {}", brief(v)))
}

fn brief(v: &Yaml) -> String {
    serde_norway::to_string(v)
        .unwrap_or_default()
        .trim()
        .chars()
        .take(60)
        .collect()
}

fn section<'a>(doc: &'a Mapping, name: &str) -> Option<&'a Mapping> {
    doc.get(name).and_then(Yaml::as_mapping)
}

fn get<'a>(m: Option<&'a Mapping>, key: &str) -> Option<&'a Yaml> {
    m.and_then(|m| m.get(key)).filter(|v| !v.is_null())
}

fn usize_or(m: Option<&Mapping>, sec: &str, key: &str, default: usize) -> R<usize> {
    get(m, key).map_or(Ok(default), |v| as_usize(v, &format!("{sec}.{key}")))
}

fn vip_map(v: &Yaml, key: &str) -> R<Vec<Vip>> {
    let m = v
        .as_mapping()
        .ok_or_else(|| format!("{key}: expected a map of VIP to backends"))?;
    m.iter()
        .map(|(k, b)| {
            let vip = k
                .as_str()
                .ok_or_else(|| format!("{key}: VIP {} is not a string", brief(k)))?;
            let backends = match b {
                Yaml::Null => Vec::new(),
                Yaml::Sequence(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                _ => return Err(format!("{key}.{vip}: expected a list of backends")),
            };
            Ok((vip.to_owned(), backends))
        })
        .collect()
}

/// Applies `SECTION.KEY=VALUE` overrides (VALUE is YAML: `10`, `true`, `[1, 2]`).
pub fn apply_sets(doc: &mut Mapping, sets: &[String]) -> R<()> {
    for set in sets {
        let (path, value) = set
            .split_once('=')
            .ok_or_else(|| format!("--set {set:?}: expected SECTION.KEY=VALUE, e.g. density_light.n_pods=10"))?;
        let (sec, key) = path
            .split_once('.')
            .ok_or_else(|| format!("--set {set:?}: expected SECTION.KEY=VALUE, e.g. density_light.n_pods=10"))?;
        let value: Yaml = serde_norway::from_str(value).map_err(|e| format!("--set {set:?}: {e}"))?;
        let entry = doc
            .entry(Yaml::String(sec.to_owned()))
            .or_insert_with(|| Yaml::Mapping(Mapping::new()));
        let m = entry
            .as_mapping_mut()
            .ok_or_else(|| format!("--set {set:?}: section {sec} is not a map"))?;
        m.insert(Yaml::String(key.to_owned()), value);
    }
    Ok(())
}

/// Parses a scenario file's text (after `--set`).
pub fn parse(doc: &Mapping) -> R<KubeScenario> {
    let mut ignored = Vec::new();
    let global = section(doc, "global");
    let cms = get(global, "cms_name").and_then(Yaml::as_str).unwrap_or("");
    if cms != "ovn_kubernetes" {
        return Err(format!(
            "global.cms_name is {cms:?}: this command runs ovn_kubernetes scenarios (OpenStack ones: ovn-heater run)"
        ));
    }
    let flag = |key: &str, default: bool| -> R<bool> {
        get(global, key).map_or(Ok(default), |v| as_bool(v, &format!("global.{key}")))
    };
    let families = Families {
        run_ipv4: flag("run_ipv4", true)?,
        run_ipv6: flag("run_ipv6", false)?,
    };
    let cleanup = flag("cleanup", false)?;
    let compat = match get(global, "ovnk_compat") {
        None => Compat::Fixed,
        Some(v) => v
            .as_str()
            .and_then(Compat::parse)
            .ok_or_else(|| format!("global.ovnk_compat: {}: use upstream or fixed", brief(v)))?,
    };
    for k in global.into_iter().flat_map(|m| m.keys()).filter_map(Yaml::as_str) {
        if !["log_cmds", "cleanup", "run_ipv4", "run_ipv6", "cms_name", "ovnk_compat"].contains(&k) {
            return Err(format!("global.{k}: unknown key"));
        }
    }

    let c = section(doc, "cluster");
    let mut cluster = ClusterConfig::default();
    for (k, v) in c.into_iter().flat_map(|m| m.iter()) {
        let k = k.as_str().unwrap_or("");
        let key = format!("cluster.{k}");
        match k {
            "n_workers" => cluster.n_workers = as_usize(v, &key)?,
            "n_az" => cluster.n_az = as_usize(v, &key)?,
            "internal_net" => cluster.internal_net = as_net(v, &key)?,
            "internal_net6" => cluster.internal_net6 = as_net(v, &key)?,
            "external_net" => cluster.external_net = as_net(v, &key)?,
            "external_net6" => cluster.external_net6 = as_net(v, &key)?,
            "gw_net" => cluster.gw_net = as_net(v, &key)?,
            "gw_net6" => cluster.gw_net6 = as_net(v, &key)?,
            "ts_net" => cluster.ts_net = as_net(v, &key)?,
            "ts_net6" => cluster.ts_net6 = as_net(v, &key)?,
            "cluster_net" => cluster.cluster_net = as_net(v, &key)?,
            "cluster_net6" => cluster.cluster_net6 = as_net(v, &key)?,
            "vip_subnet" | "vip_subnet6" | "vips" | "vips6" | "static_vips" | "static_vips6" => {}
            "logical_dp_groups" => cluster.logical_dp_groups = as_bool(v, &key)?,
            "northd_probe_interval" => cluster.northd_probe_interval = as_usize(v, &key)? as u64,
            "db_inactivity_probe" => cluster.db_inactivity_probe = as_usize(v, &key)? as u64,
            "physical_net" => {
                cluster.physical_net = v
                    .as_str()
                    .filter(|s| !s.is_empty() && !s.contains([':', ',']))
                    .ok_or_else(|| {
                        format!(
                            "{key}: expected a provider network name such as providernet, got {}",
                            brief(v)
                        )
                    })?
                    .to_owned()
            }
            k if LAB_KEYS.contains(&k) => ignored.push(key),
            _ => return Err(format!("{key}: unknown key")),
        }
    }
    // VIPs derive from the subnets unless given (translate_yaml's __post_init__).
    if let Some(v) = get(c, "vip_subnet") {
        let net: IpNet = as_net(v, "cluster.vip_subnet")?;
        cluster.vip_subnet = net;
        cluster.vips = ovn_kubernetes::config::default_vips(&net);
        cluster.static_vips = ovn_kubernetes::config::default_static_vips(&net);
    }
    if let Some(v) = get(c, "vip_subnet6") {
        let net: IpNet = as_net(v, "cluster.vip_subnet6")?;
        cluster.vip_subnet6 = net;
        cluster.vips6 = ovn_kubernetes::config::default_vips(&net);
        cluster.static_vips6 = ovn_kubernetes::config::default_static_vips(&net);
    }
    if let Some(v) = get(c, "vips") {
        cluster.vips = vip_map(v, "cluster.vips")?.into_iter().map(|(k, _)| k).collect();
    }
    if let Some(v) = get(c, "vips6") {
        cluster.vips6 = vip_map(v, "cluster.vips6")?.into_iter().map(|(k, _)| k).collect();
    }
    if let Some(v) = get(c, "static_vips") {
        cluster.static_vips = vip_map(v, "cluster.static_vips")?;
    }
    if let Some(v) = get(c, "static_vips6") {
        cluster.static_vips6 = vip_map(v, "cluster.static_vips6")?;
    }

    let mut tests = Tests::default();
    let known = [
        "global",
        "cluster",
        "ext_cmd",
        "base_cluster_bringup",
        "cluster_density",
        "density_heavy",
        "density_light",
        "netpol_cross",
        "netpol_cross_ns",
        "netpol_large",
        "netpol_multitenant",
        "netpol_small",
        "service_route",
    ];
    for k in doc.keys().filter_map(Yaml::as_str) {
        if !known.contains(&k) && k != "chaos" {
            return Err(format!(
                "section {k}: not an ovn-kubernetes test (known: {})",
                known[3..].join(", ")
            ));
        }
    }
    if doc.contains_key("ext_cmd") {
        ignored.push("ext_cmd".into());
    }
    let chaos = crate::scenario::parse::parse_chaos(doc, CHAOS_STAGES).map_err(|e| e.to_string())?;
    let s = |n: &str| section(doc, n);
    if let Some(m) = s("base_cluster_bringup") {
        tests.base_cluster_bringup = Some(BaseClusterBringup {
            n_pods_per_node: usize_or(Some(m), "base_cluster_bringup", "n_pods_per_node", 0)?,
        });
    }
    if let Some(m) = s("cluster_density") {
        tests.cluster_density = Some(ClusterDensity {
            n_runs: usize_or(Some(m), "cluster_density", "n_runs", 0)?,
            n_startup: usize_or(Some(m), "cluster_density", "n_startup", 0)?,
        });
    }
    if let Some(m) = s("density_heavy") {
        tests.density_heavy = Some(DensityHeavy {
            n_pods: usize_or(Some(m), "density_heavy", "n_pods", 0)?,
            n_startup: usize_or(Some(m), "density_heavy", "n_startup", 0)?,
            pods_vip_ratio: usize_or(Some(m), "density_heavy", "pods_vip_ratio", 2)?,
        });
    }
    if let Some(m) = s("density_light") {
        tests.density_light = Some(DensityLight {
            n_pods: usize_or(Some(m), "density_light", "n_pods", 0)?,
            n_startup: usize_or(Some(m), "density_light", "n_startup", 0)?,
        });
    }
    let netpol = |name: &str, m: Option<&Mapping>| -> R<Netpol> {
        Ok(Netpol {
            n_ns: usize_or(m, name, "n_ns", 0)?,
            pods_ns_ratio: usize_or(m, name, "pods_ns_ratio", 0)?,
            n_labels: usize_or(m, name, "n_labels", 0)?,
        })
    };
    if doc.contains_key("netpol_cross_ns") {
        // Upstream reads `netpol_cross`; `fixed` reads the test's own section.
        let source = match compat {
            Compat::Upstream => "netpol_cross",
            Compat::Fixed => "netpol_cross_ns",
        };
        tests.netpol_cross_ns = Some(netpol(source, s(source))?);
    }
    if let Some(m) = s("netpol_large") {
        tests.netpol_large = Some(netpol("netpol_large", Some(m))?);
    }
    if let Some(m) = s("netpol_small") {
        tests.netpol_small = Some(netpol("netpol_small", Some(m))?);
    }
    if let Some(m) = s("netpol_multitenant") {
        let mut t = NetpolMultitenant {
            n_namespaces: usize_or(Some(m), "netpol_multitenant", "n_namespaces", 0)?,
            n_external_ips1: usize_or(Some(m), "netpol_multitenant", "n_external_ips1", 3)?,
            n_external_ips2: usize_or(Some(m), "netpol_multitenant", "n_external_ips2", 20)?,
            ranges: Vec::new(),
        };
        for r in get(Some(m), "ranges").and_then(Yaml::as_sequence).into_iter().flatten() {
            let rm = r.as_mapping();
            t.ranges.push(NsRange {
                start: usize_or(rm, "netpol_multitenant.ranges", "start", 0)?,
                n_pods: usize_or(rm, "netpol_multitenant.ranges", "n_pods", 5)?,
            });
        }
        tests.netpol_multitenant = Some(t);
    }
    if let Some(m) = s("service_route") {
        tests.service_route = Some(ServiceRoute {
            n_lb: usize_or(Some(m), "service_route", "n_lb", 16)?,
            n_backends: usize_or(Some(m), "service_route", "n_backends", 4)?,
        });
    }
    tests.check().map_err(|e| e.to_string())?;
    cluster.check(families).map_err(|e| e.to_string())?;
    Ok(KubeScenario {
        families,
        cleanup,
        compat,
        cluster,
        tests,
        ignored,
        chaos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Mapping {
        serde_norway::from_str(text).expect("yaml")
    }

    #[test]
    fn upstream_low_scale_parses_with_its_keys() {
        let text = include_str!("../../../../../scenarios/ovn-kubernetes/ovn-low-scale.yml");
        let mut d = doc(text);
        apply_sets(&mut d, &["density_light.n_pods=3".into()]).expect("set");
        let s = parse(&d).expect("parses");
        assert!(s.families.run_ipv6);
        assert_eq!(s.cluster.n_workers, 2);
        assert_eq!(s.tests.density_light.as_ref().map(|t| t.n_pods), Some(3));
        let mt = s.tests.netpol_multitenant.expect("multitenant");
        assert_eq!(mt.ranges.len(), 3);
        assert_eq!((mt.ranges[2].start, mt.ranges[2].n_pods), (4, 10));
        assert!(s.ignored.iter().any(|k| k == "ext_cmd"));
    }

    #[test]
    fn chaos_entries_name_a_context() {
        let s = parse(&doc(
            "global: {cms_name: ovn_kubernetes}\nchaos:\n  - {stage: density_light-run, iteration: 1, kill: northd, restart_after: 1}\n",
        ))
        .expect("parses");
        assert_eq!(s.chaos.len(), 1);
        let e = parse(&doc(
            "global: {cms_name: ovn_kubernetes}\nchaos:\n  - {stage: vms, iteration: 1, kill: northd}\n",
        ))
        .unwrap_err();
        assert!(e.contains("density_light-run"), "{e}");
    }

    #[test]
    fn bad_input_is_named() {
        let e = parse(&doc("global: {cms_name: openstack}\n")).unwrap_err();
        assert!(e.contains("cms_name"), "{e}");
        let e = parse(&doc(
            "global: {cms_name: ovn_kubernetes}\nnetpol_small: {n_ns: 1, pods_ns_ratio: 2, n_labels: 1}\n",
        ))
        .unwrap_err();
        assert!(e.contains("n_labels"), "{e}");
        let e = parse(&doc("global: {cms_name: ovn_kubernetes}\nbogus: {}\n")).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let mut d = doc("global: {cms_name: ovn_kubernetes}\n");
        assert!(apply_sets(&mut d, &["nodot=1".into()]).is_err());
    }
}
