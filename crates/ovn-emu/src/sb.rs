//! What ovn-controller 23.03 asks of the Southbound database: the tables and columns it
//! monitors, and the monitor conditions it sets when `ovn-monitor-all` is off.
//!
//! The column lists and condition shapes were read off a real ovn-controller 23.03.1's
//! `monitor_cond_since` and `monitor_cond_change` requests (see docs/emulated-chassis.md), so an
//! emulated chassis makes the server do the same work: same rows, same columns, same fan-out.
//!
//! Must not know: connections, processes, how rows are claimed.

use std::collections::BTreeSet;

use ovsdb::{Condition, DatabaseSchema, Function, MonitorRequest, TableMonitor, Uuid, Value};

/// The Southbound database name.
pub const SB_DB: &str = "OVN_Southbound";

pub const CHASSIS: &str = "Chassis";
pub const CHASSIS_PRIVATE: &str = "Chassis_Private";
pub const ENCAP: &str = "Encap";
pub const SB_GLOBAL: &str = "SB_Global";
pub const PORT_BINDING: &str = "Port_Binding";
pub const HA_CHASSIS_GROUP: &str = "HA_Chassis_Group";
pub const HA_CHASSIS: &str = "HA_Chassis";

/// Every table ovn-controller 23.03 monitors, with the columns it asks for, and whether it
/// monitors the table conditionally (`true`) when `ovn-monitor-all` is off.
const MONITORED: &[(&str, bool, &[&str])] = &[
    ("Address_Set", false, &["addresses", "name"]),
    (
        "BFD",
        false,
        &[
            "detect_mult",
            "disc",
            "dst_ip",
            "external_ids",
            "logical_port",
            "min_rx",
            "min_tx",
            "options",
            "src_port",
            "status",
        ],
    ),
    (
        "Chassis",
        false,
        &[
            "encaps",
            "external_ids",
            "hostname",
            "name",
            "nb_cfg",
            "other_config",
            "transport_zones",
            "vtep_logical_switches",
        ],
    ),
    (
        "Chassis_Private",
        true,
        &["chassis", "name", "nb_cfg", "nb_cfg_timestamp"],
    ),
    ("Chassis_Template_Var", true, &["chassis", "variables"]),
    (
        "Controller_Event",
        true,
        &["chassis", "event_info", "event_type", "seq_num"],
    ),
    ("DHCP_Options", false, &["code", "name", "type"]),
    ("DHCPv6_Options", false, &["code", "name", "type"]),
    ("DNS", true, &["datapaths", "external_ids", "records"]),
    (
        "Datapath_Binding",
        false,
        &["external_ids", "load_balancers", "tunnel_key"],
    ),
    ("Encap", false, &["chassis_name", "ip", "options", "type"]),
    ("FDB", false, &["dp_key", "mac", "port_key"]),
    ("Gateway_Chassis", false, &["chassis", "name", "options", "priority"]),
    ("HA_Chassis", false, &["chassis", "priority"]),
    ("HA_Chassis_Group", false, &["ha_chassis", "name", "ref_chassis"]),
    ("IGMP_Group", true, &["address", "chassis", "datapath", "ports"]),
    (
        "IP_Multicast",
        true,
        &[
            "datapath",
            "enabled",
            "eth_src",
            "idle_timeout",
            "ip4_src",
            "ip6_src",
            "querier",
            "query_interval",
            "query_max_resp",
            "seq_no",
            "table_size",
        ],
    ),
    (
        "Load_Balancer",
        false,
        &[
            "datapath_group",
            "datapaths",
            "external_ids",
            "name",
            "options",
            "protocol",
            "vips",
        ],
    ),
    ("Logical_DP_Group", true, &["datapaths"]),
    (
        "Logical_Flow",
        true,
        &[
            "actions",
            "controller_meter",
            "logical_datapath",
            "logical_dp_group",
            "match",
            "pipeline",
            "priority",
            "table_id",
            "tags",
        ],
    ),
    (
        "MAC_Binding",
        true,
        &["datapath", "ip", "logical_port", "mac", "timestamp"],
    ),
    ("Meter", false, &["bands", "name", "unit"]),
    ("Meter_Band", false, &["action", "burst_size", "rate"]),
    (
        "Mirror",
        false,
        &["external_ids", "filter", "index", "name", "sink", "type"],
    ),
    ("Multicast_Group", true, &["datapath", "name", "ports", "tunnel_key"]),
    (
        "Port_Binding",
        true,
        &[
            "additional_chassis",
            "additional_encap",
            "chassis",
            "datapath",
            "encap",
            "gateway_chassis",
            "ha_chassis_group",
            "logical_port",
            "mac",
            "mirror_rules",
            "nat_addresses",
            "options",
            "parent_port",
            "port_security",
            "requested_additional_chassis",
            "requested_chassis",
            "tag",
            "tunnel_key",
            "type",
            "up",
            "virtual_parent",
        ],
    ),
    ("Port_Group", false, &["name", "ports"]),
    (
        "RBAC_Permission",
        false,
        &["authorization", "insert_delete", "table", "update"],
    ),
    ("RBAC_Role", false, &["name", "permissions"]),
    (
        "SB_Global",
        false,
        &["connections", "ipsec", "nb_cfg", "options", "ssl"],
    ),
    (
        "SSL",
        false,
        &[
            "bootstrap_ca_cert",
            "ca_cert",
            "certificate",
            "private_key",
            "ssl_ciphers",
            "ssl_protocols",
        ],
    ),
    (
        "Service_Monitor",
        false,
        &[
            "external_ids",
            "ip",
            "logical_port",
            "options",
            "port",
            "protocol",
            "src_ip",
            "src_mac",
            "status",
        ],
    ),
    (
        "Static_MAC_Binding",
        false,
        &["datapath", "ip", "logical_port", "mac", "override_dynamic_mac"],
    ),
];

/// Port_Binding types ovn-controller always monitors, whatever its chassis hosts: they link
/// datapaths together (patch) or may be claimed by any gateway.
const ALWAYS_MONITORED_PB_TYPES: &[&str] = &["external", "patch", "chassisredirect"];

/// The monitor request of an emulated chassis, with column lists trimmed to what the server's
/// schema has (so a farm also works against an SB a few versions older or newer).
#[derive(Clone, Debug)]
pub struct MonitorPlan {
    tables: Vec<(String, bool, Vec<String>)>,
}

impl MonitorPlan {
    /// Trims ovn-controller 23.03's request to `schema`: tables and columns the server lacks are
    /// left out.
    pub fn for_schema(schema: &DatabaseSchema) -> MonitorPlan {
        let tables = MONITORED
            .iter()
            .filter_map(|(table, conditional, columns)| {
                let present = schema.tables.get(table)?;
                let columns = columns
                    .iter()
                    .filter(|c| present.columns.contains_key(c))
                    .map(|c| (*c).to_owned())
                    .collect();
                Some(((*table).to_owned(), *conditional, columns))
            })
            .collect();
        MonitorPlan { tables }
    }

    /// The plan for an OVN 23.03 Southbound schema, without asking a server.
    pub fn ovn_23_03() -> MonitorPlan {
        MonitorPlan {
            tables: MONITORED
                .iter()
                .map(|(t, c, cols)| ((*t).to_owned(), *c, cols.iter().map(|c| (*c).to_owned()).collect()))
                .collect(),
        }
    }

    /// The one monitor request of a chassis (sent with `monitor_cond_since`): every table with
    /// ovn-controller's columns. The conditional tables carry `[true]` with `ovn-monitor-all`
    /// (as ovn-controller sends them), otherwise the conditions ovn-controller starts with
    /// before it knows its own chassis row, which [`LocalView::conditions`] then replaces.
    pub fn request(&self, monitor_all: bool) -> MonitorRequest {
        let mut request = MonitorRequest::new();
        for (table, is_conditional, columns) in &self.tables {
            let mut monitor = TableMonitor::all().columns(columns.iter().cloned());
            if *is_conditional {
                monitor = monitor.conditions(if monitor_all {
                    vec![Condition::Constant(true)]
                } else {
                    initial_conditions(table)
                });
            }
            request = request.table(table.clone(), monitor);
        }
        request
    }

    /// Whether the plan monitors `table` conditionally (and so [`LocalView::conditions`] may
    /// change it).
    pub fn is_conditional(&self, table: &str) -> bool {
        self.tables.iter().any(|(t, conditional, _)| t == table && *conditional)
    }
}

fn initial_conditions(table: &str) -> Vec<Condition> {
    match table {
        PORT_BINDING => ["l2gateway", "l3gateway"]
            .iter()
            .chain(ALWAYS_MONITORED_PB_TYPES)
            .map(|t| Condition::eq("type", *t))
            .collect(),
        CHASSIS_PRIVATE | "Logical_DP_Group" => vec![Condition::Constant(true)],
        _ => vec![Condition::Constant(false)],
    }
}

/// What a chassis knows about itself that decides its monitor conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalView {
    pub chassis_name: String,
    pub chassis_uuid: Option<Uuid>,
    /// Logical ports whose VIF is (emulated as) plugged here.
    pub bound_ports: BTreeSet<String>,
    /// Datapaths of local ports, plus those reachable from them through patch ports.
    pub local_datapaths: BTreeSet<Uuid>,
}

impl LocalView {
    /// The conditions of every conditionally monitored table, as ovn-controller 23.03's
    /// `update_sb_monitors` builds them. Tables whose condition does not depend on the chassis
    /// are left out.
    pub fn conditions(&self) -> Vec<(&'static str, Vec<Condition>)> {
        let Some(uuid) = self.chassis_uuid else {
            return Vec::new();
        };
        let name = self.chassis_name.as_str();
        let chassis_ref = || Value::uuid(uuid);
        let per_datapath = |column: &str| -> Vec<Condition> {
            self.local_datapaths
                .iter()
                .map(|dp| Condition::eq(column, Value::uuid(*dp)))
                .collect()
        };

        let mut port_binding = vec![
            Condition::includes("options", Value::string_map([("l2gateway-chassis", name)])),
            Condition::includes("options", Value::string_map([("l3gateway-chassis", name)])),
            Condition::eq("requested_chassis", chassis_ref()),
            Condition::eq("chassis", chassis_ref()),
        ];
        port_binding.extend(ALWAYS_MONITORED_PB_TYPES.iter().map(|t| Condition::eq("type", *t)));
        for port in &self.bound_ports {
            port_binding.push(Condition::eq("logical_port", port.as_str()));
            port_binding.push(Condition::eq("parent_port", port.as_str()));
        }
        port_binding.extend(per_datapath("datapath"));

        let mut logical_flow = per_datapath("logical_datapath");
        logical_flow.push(Condition::new("logical_dp_group", Function::Ne, Value::empty_set()));

        let dns = self
            .local_datapaths
            .iter()
            .map(|dp| Condition::includes("datapaths", Value::uuid(*dp)))
            .collect();

        vec![
            ("Chassis_Template_Var", vec![Condition::eq("chassis", name)]),
            (CHASSIS_PRIVATE, vec![Condition::eq("name", name)]),
            ("IGMP_Group", vec![Condition::eq("chassis", chassis_ref())]),
            ("Controller_Event", vec![Condition::eq("chassis", chassis_ref())]),
            (PORT_BINDING, port_binding),
            ("Logical_Flow", logical_flow),
            ("MAC_Binding", or_false(per_datapath("datapath"))),
            ("Multicast_Group", or_false(per_datapath("datapath"))),
            ("IP_Multicast", or_false(per_datapath("datapath"))),
            ("DNS", or_false(dns)),
        ]
    }
}

/// An empty disjunction matches nothing; say so explicitly, as the server expects a non-empty list.
fn or_false(conditions: Vec<Condition>) -> Vec<Condition> {
    if conditions.is_empty() {
        vec![Condition::Constant(false)]
    } else {
        conditions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_all_asks_every_row_of_every_table() {
        let request = MonitorPlan::ovn_23_03().request(true);
        assert_eq!(
            request.tables[PORT_BINDING].conditions,
            Some(vec![Condition::Constant(true)])
        );
        assert_eq!(request.tables[CHASSIS].conditions, None);
        assert!(!request.tables.contains_key("Connection"));
    }

    #[test]
    fn conditional_start_matches_ovn_controller() {
        let request = MonitorPlan::ovn_23_03().request(false);
        assert_eq!(request.tables.len(), MONITORED.len());
        assert_eq!(request.tables[CHASSIS].conditions, None);
        assert_eq!(
            request.tables["Logical_Flow"].conditions,
            Some(vec![Condition::Constant(false)])
        );
        assert_eq!(request.tables[PORT_BINDING].conditions.as_ref().map(Vec::len), Some(5));
    }

    #[test]
    fn conditions_follow_bound_ports_and_datapaths() {
        let dp = Uuid::new_v4();
        let view = LocalView {
            chassis_name: "hv1".into(),
            chassis_uuid: Some(Uuid::new_v4()),
            bound_ports: ["vm1".to_owned()].into(),
            local_datapaths: [dp].into(),
        };
        let conditions = view.conditions();
        let pb = &conditions.iter().find(|(t, _)| *t == PORT_BINDING).unwrap().1;
        assert!(pb.contains(&Condition::eq("logical_port", "vm1")));
        assert!(pb.contains(&Condition::eq("datapath", Value::uuid(dp))));
        let lflow = &conditions.iter().find(|(t, _)| *t == "Logical_Flow").unwrap().1;
        assert_eq!(lflow.len(), 2);
    }

    #[test]
    fn no_conditions_before_registration() {
        assert!(LocalView::default().conditions().is_empty());
    }
}
