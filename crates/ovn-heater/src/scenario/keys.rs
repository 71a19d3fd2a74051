//! Which sections and keys a scenario may contain: upstream ovn-heater's (translate_yaml.py
//! `GlobalConfig`/`ClusterConfig`, the OpenStack test configs, `ext_cmd`) plus ours.
//!
//! Must not know: what the keys do (that is `parse.rs` and the runner).

/// Sections this ovn-heater runs.
pub const SECTIONS: &[&str] = &[
    "global",
    "cluster",
    "openstack_base",
    "base_openstack",
    "ext_cmd",
    "chaos",
];

/// Upstream's ovn-kubernetes tests and other sections upstream knows but we do not implement.
pub const UNSUPPORTED_SECTIONS: &[(&str, &str)] = &[
    ("base_cluster_bringup", "an ovn-kubernetes test"),
    ("density_light", "an ovn-kubernetes test"),
    ("density_heavy", "an ovn-kubernetes test"),
    ("cluster_density", "an ovn-kubernetes test"),
    ("netpol_multitenant", "an ovn-kubernetes test"),
    ("netpol_small", "an ovn-kubernetes test"),
    ("netpol_large", "an ovn-kubernetes test"),
    ("netpol_cross_ns", "an ovn-kubernetes test"),
    ("service_route", "an ovn-kubernetes test"),
    ("advertised_route", "an ovn-kubernetes test"),
    ("base_bgp", "the OpenStack BGP test"),
];

pub const GLOBAL_KEYS: &[&str] = &["log_cmds", "cleanup", "run_ipv4", "run_ipv6", "cms_name"];

pub const CLUSTER_KEYS: &[&str] = &[
    // upstream ClusterConfig
    "monitor_all",
    "logical_dp_groups",
    "clustered_db",
    "log_txns_db",
    "datapath_type",
    "raft_election_to",
    "northd_probe_interval",
    "northd_threads",
    "db_inactivity_probe",
    "node_net",
    "enable_ssl",
    "node_timeout_s",
    "internal_net",
    "internal_net6",
    "external_net",
    "external_net6",
    "gw_net",
    "gw_net6",
    "ts_net",
    "ts_net6",
    "cluster_net",
    "cluster_net6",
    "n_workers",
    "n_relays",
    "n_az",
    "vips",
    "vips6",
    "vip_subnet",
    "vip_subnet6",
    "static_vips",
    "static_vips6",
    "use_ovsdb_etcd",
    "physical_net",
    // older upstream keys
    "cluster_cmd_path",
    "node_remote",
    // ours
    "chassis",
];

pub const OPENSTACK_BASE_KEYS: &[&str] = &[
    "n_hypervisors",
    "n_vms_per_hypervisor",
    "n_network_nodes",
    "concurrency",
    "ops_per_second",
    "steps",
];

pub const BASE_OPENSTACK_KEYS: &[&str] = &[
    "n_projects",
    "n_chassis_per_gw_lrp",
    "n_vms_per_project",
    // ours: VMs without a namespace (no data plane)
    "passive_vms",
    // renamed upstream to n_chassis_per_gw_lrp
    "n_gws_per_project",
    "concurrency",
    "ops_per_second",
];

pub const EXT_CMD_KEYS: &[&str] = &[
    "iteration",
    "cmd",
    "node",
    "test",
    "pid_name",
    "pid_opt",
    "background_opt",
];

/// Keys of one `chaos` entry (ours): SIGKILL `kill` when `stage` reaches `iteration`, start it
/// again `restart_after` seconds later.
pub const CHAOS_KEYS: &[&str] = &["stage", "iteration", "kill", "restart_after"];

/// The keys of a mapping section (`ext_cmd` is a list of mappings with [`EXT_CMD_KEYS`]).
pub fn keys_of(section: &str) -> &'static [&'static str] {
    match section {
        "global" => GLOBAL_KEYS,
        "cluster" => CLUSTER_KEYS,
        "openstack_base" => OPENSTACK_BASE_KEYS,
        "base_openstack" => BASE_OPENSTACK_KEYS,
        "ext_cmd" => EXT_CMD_KEYS,
        "chaos" => CHAOS_KEYS,
        _ => &[],
    }
}

/// Another section that has `key`, for "it belongs in section X" hints.
pub fn section_owning(key: &str, not: &str) -> Option<&'static str> {
    ["global", "cluster", "openstack_base", "base_openstack"]
        .into_iter()
        .find(|s| *s != not && keys_of(s).contains(&key))
}
