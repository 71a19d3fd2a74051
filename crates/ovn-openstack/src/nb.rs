//! NB schema names and the row shapes Neutron 21.0.0 writes, as pure functions of the mimic's
//! state: Logical_Switch_Port columns per port kind, LRP columns, DHCP options, ACL matches.
//! Each planner (network.rs, router.rs, ...) assembles these into transactions.
//!
//! Must not know: connections, how transactions are sent, the CLI.

use std::collections::BTreeMap;

use ovsdb::{Condition, Mutation, Row, Transaction, TransactionResult, Value};

use crate::model::{ip_with_prefix, Direction, NetworkType, Port, PortKind, RowId, SecurityGroupRule, State};

pub const NB: &str = "OVN_Northbound";

pub const ACL: &str = "ACL";
pub const DHCP_OPTIONS: &str = "DHCP_Options";
pub const GATEWAY_CHASSIS: &str = "Gateway_Chassis";
pub const HA_CHASSIS: &str = "HA_Chassis";
pub const HA_CHASSIS_GROUP: &str = "HA_Chassis_Group";
pub const LOGICAL_ROUTER: &str = "Logical_Router";
pub const LOGICAL_ROUTER_PORT: &str = "Logical_Router_Port";
pub const LOGICAL_ROUTER_STATIC_ROUTE: &str = "Logical_Router_Static_Route";
pub const LOGICAL_SWITCH: &str = "Logical_Switch";
pub const LOGICAL_SWITCH_PORT: &str = "Logical_Switch_Port";
pub const NAT: &str = "NAT";
pub const PORT_GROUP: &str = "Port_Group";

pub const PG_DROP: &str = "neutron_pg_drop";
/// The OVSDB lock Neutron holds while creating `neutron_pg_drop`.
pub const PG_DROP_LOCK: &str = "pg_drop_creation";

pub const REVISION: &str = "neutron:revision_number";
pub const PORT_FIP: &str = "neutron:port_fip";

pub const OWNER_DISTRIBUTED: &str = "network:distributed";
pub const OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
pub const OWNER_ROUTER_INTERFACE: &str = "network:router_interface";

/// What a committed transaction does to the mimic's state, given the server's results.
pub type Commit = Box<dyn FnOnce(&mut State, &TransactionResult) + Send>;

/// One transaction the mimic is about to send, and what it does to the mimic's state once the
/// server committed it (given the server's results, e.g. the UUIDs of inserted rows).
pub struct Planned {
    /// What it is, e.g. `"T1b Logical_Switch"`, for timings and logs.
    pub label: String,
    pub txn: Transaction,
    pub(crate) commit: Commit,
    /// How to tell from the NB whether this transaction committed, when its outcome is
    /// unknown (see [`crate::Config::verify_unknown_outcomes`]).
    pub(crate) landed: Option<Landed>,
}

/// The row a transaction writes, by which the NB shows whether it committed: it did iff a row
/// of `table` matches `by` and, for rows Neutron revises, has `neutron:revision_number` =
/// `revision`. The other rows the transaction inserts are then found by their own columns
/// (see `Neutron::exec`).
#[derive(Clone, Debug)]
pub struct Landed {
    pub table: &'static str,
    /// How the row is named in notes: its name, or the Neutron id it carries.
    pub name: String,
    pub by: Condition,
    /// `None` for rows Neutron writes without a revision (Port_Group, ACL): found = committed.
    pub revision: Option<String>,
}

impl Planned {
    pub fn new(
        label: impl Into<String>,
        txn: Transaction,
        commit: impl FnOnce(&mut State, &TransactionResult) + Send + 'static,
    ) -> Self {
        Planned {
            label: label.into(),
            txn,
            commit: Box::new(commit),
            landed: None,
        }
    }

    /// Says which row (by name and revision number) shows that this transaction committed.
    pub fn landed_if(self, table: &'static str, name: impl Into<String>, revision: impl ToString) -> Self {
        let name = name.into();
        let by = Condition::eq("name", name.as_str());
        self.landed_by(table, name, by, Some(revision))
    }

    /// Says which row shows that this transaction committed: the row of `table` matching
    /// `by` (named `name` in notes), with `neutron:revision_number` = `revision` if given.
    pub fn landed_by(
        mut self,
        table: &'static str,
        name: impl Into<String>,
        by: Condition,
        revision: Option<impl ToString>,
    ) -> Self {
        self.landed = Some(Landed {
            table,
            name: name.into(),
            by,
            revision: revision.map(|r| r.to_string()),
        });
        self
    }
}

/// A string→string map value, sorted.
pub fn smap(m: &BTreeMap<String, String>) -> Value {
    Value::string_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

pub fn strs<I: IntoIterator<Item = S>, S: Into<ovsdb::Str>>(items: I) -> Value {
    Value::Set(items.into_iter().map(|s| ovsdb::Atom::String(s.into())).collect())
}

pub fn map_of<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub fn opt_uuid(u: Option<RowId>) -> Value {
    match u {
        Some(u) => Value::uuid(u),
        None => Value::empty_set(),
    }
}

/// `wait` on `table`'s row `uuid` until its `external_ids` equal `current` (Neutron's
/// revision check: python IDL `verify('external_ids')`).
pub fn verify_external_ids(txn: &mut Transaction, table: &str, uuid: RowId, current: &BTreeMap<String, String>) {
    txn.verify(
        table,
        vec![Condition::uuid(uuid)],
        vec!["external_ids".into()],
        vec![Row::new().with("external_ids", smap(current))],
    );
}

/// A set mutation on one row: `column insert/delete [uuid]`.
pub fn mutate_ref(txn: &mut Transaction, table: &str, row: Value, column: &str, insert: bool, target: Value) {
    let cond = Condition::eq("_uuid", row);
    let value = Value::Set(target.atoms().to_vec());
    let m = if insert {
        Mutation::insert(column, value)
    } else {
        Mutation::delete(column, value)
    };
    txn.mutate(table, vec![cond], vec![m]);
}

/// The QoS extension's artefact on every LSP Neutron creates: `options` delkey `qos_min_rate`.
pub fn qos_artifact(txn: &mut Transaction, lsp: Value) {
    txn.mutate(
        LOGICAL_SWITCH_PORT,
        vec![Condition::eq("_uuid", lsp)],
        vec![Mutation::delete("options", strs(["qos_min_rate"]))],
    );
}

pub fn inserted(result: &TransactionResult, named: &Value) -> RowId {
    result.inserted(named).unwrap_or_else(ovsdb::Uuid::new_v4)
}

// ------------------------------------------------------------------ ports --

/// `external_ids` of a port's LSP.
pub fn lsp_external_ids(st: &State, port: &Port) -> BTreeMap<String, String> {
    // Space-separated lists written in place (no vector to join): this runs twice per port
    // transaction (the revision check and the new row), thousands of times in a 1,000-VM stage.
    let mut cidrs = String::new();
    for f in &port.fixed_ips {
        if let Some(s) = st.subnets.get(&f.subnet) {
            push_word(&mut cidrs, ip_with_prefix(f.ip, &s.cidr));
        }
    }
    let mut sgs = String::new();
    for sg in &port.security_groups {
        push_word(&mut sgs, sg);
    }
    let mut m = map_of([
        ("neutron:port_name", port.name.clone()),
        ("neutron:device_id", port.device_id.clone()),
        ("neutron:project_id", port.project.clone()),
        ("neutron:cidrs", cidrs),
        ("neutron:device_owner", port.device_owner.clone()),
        ("neutron:network_name", format!("neutron-{}", port.network)),
        ("neutron:security_group_ids", sgs),
        (REVISION, port.revision.to_string()),
    ]);
    if let Some(fip) = &port.port_fip {
        m.insert(PORT_FIP.into(), fip.clone());
    }
    m
}

/// Appends `word` to a space-separated list.
fn push_word(list: &mut String, word: impl std::fmt::Display) {
    use std::fmt::Write;
    if !list.is_empty() {
        list.push(' ');
    }
    let _ = write!(list, "{word}");
}

/// The MAC plus every fixed IP, space separated (one `addresses` entry).
pub fn mac_and_ips(port: &Port) -> String {
    let mut s = port.mac.clone();
    for f in &port.fixed_ips {
        s.push(' ');
        s.push_str(&f.ip.to_string());
    }
    s
}

/// `options` of a router-type LSP (what the L3 plugin writes).
pub fn router_lsp_options(port: &Port) -> BTreeMap<String, String> {
    let mut m = map_of([("router-port", format!("lrp-{}", port.id))]);
    if matches!(port.kind, PortKind::RouterGateway { .. }) {
        m.insert("nat-addresses".into(), "router".into());
        m.insert("exclude-lb-vips-from-garp".into(), "true".into());
    }
    m
}

/// Every column ML2's `create_port`/`update_port` computes for a port's LSP.
pub struct LspColumns {
    pub lsp_type: String,
    pub addresses: Vec<String>,
    pub port_security: Vec<String>,
    pub options: BTreeMap<String, String>,
    pub dhcpv4: Option<RowId>,
    pub dhcpv6: Option<RowId>,
    pub external_ids: BTreeMap<String, String>,
}

pub fn lsp_columns(st: &State, port: &Port) -> LspColumns {
    let external_ids = lsp_external_ids(st, port);
    let requested = ("requested-chassis".to_owned(), port.host.clone());
    let flood = ("mcast_flood_reports".to_owned(), "true".to_owned());
    match &port.kind {
        PortKind::Metadata => LspColumns {
            lsp_type: "localport".into(),
            addresses: vec![mac_and_ips(port)],
            port_security: vec![],
            options: [requested].into_iter().collect(),
            dhcpv4: None,
            dhcpv6: None,
            external_ids,
        },
        PortKind::RouterGateway { .. } | PortKind::RouterInterface { .. } if port.routed => {
            let mut options = router_lsp_options(port);
            options.extend([requested, flood]);
            LspColumns {
                lsp_type: "router".into(),
                addresses: vec!["router".into()],
                port_security: vec![],
                options,
                dhcpv4: None,
                dhcpv6: None,
                external_ids,
            }
        }
        PortKind::RouterGateway { .. } | PortKind::RouterInterface { .. } => {
            // Trusted port before the L3 plugin ran: a normal LSP. Neutron gives `network:*`
            // ports no DHCP options (`get_lsp_dhcp_opts`), so the gateway port (no port
            // security either) carries only "unknown" (as the real snapshots' T6a
            // predecessor; a DHCP external subnet changes nothing: corpus
            // network-provider-set).
            let mut addresses = Vec::new();
            if matches!(port.kind, PortKind::RouterInterface { .. }) {
                addresses.push(mac_and_ips(port));
            }
            addresses.push("unknown".into());
            LspColumns {
                lsp_type: String::new(),
                addresses,
                port_security: vec![],
                options: [requested, flood].into_iter().collect(),
                dhcpv4: None,
                dhcpv6: None,
                external_ids,
            }
        }
        PortKind::Compute => {
            let mut addresses = vec![mac_and_ips(port)];
            let port_security = if port.port_security {
                // Neutron's `_get_allowed_addresses_from_port`: a pair with the port's MAC
                // adds its IP to the port's own entry; another MAC is an entry of its own,
                // and that MAC joins `addresses`.
                let mut own = mac_and_ips(port);
                let mut entries = Vec::new();
                for (mac, ip) in &port.allowed_address_pairs {
                    if *mac == port.mac {
                        own.push(' ');
                        own.push_str(ip);
                    } else {
                        entries.push(format!("{mac} {ip}"));
                        if !addresses.contains(mac) {
                            addresses.push(mac.clone());
                        }
                    }
                }
                entries.push(own);
                entries
            } else {
                addresses.push("unknown".into());
                vec![]
            };
            LspColumns {
                lsp_type: String::new(),
                addresses,
                port_security,
                options: [requested, flood].into_iter().collect(),
                dhcpv4: port_dhcpv4(st, port),
                dhcpv6: port_dhcpv6(st, port),
                external_ids,
            }
        }
    }
}

/// Neutron's `_get_subnet_dhcp_options_for_port`: the DHCP_Options row of one of the port's
/// subnets of that IP version that has one (SLAAC subnets have none), for IPv6 a stateful
/// subnet's first.
fn port_dhcp(st: &State, port: &Port, v4: bool) -> Option<RowId> {
    let with_options: Vec<&crate::model::Subnet> = port
        .fixed_ips
        .iter()
        .filter_map(|f| st.subnets.get(&f.subnet))
        .filter(|s| s.is_v4() == v4 && s.enable_dhcp && s.dhcp_options.is_some())
        .collect();
    with_options
        .iter()
        .find(|s| v4 || s.ipv6_address_mode.as_deref() != Some("dhcpv6-stateless"))
        .or(with_options.first())
        .and_then(|s| s.dhcp_options)
}
fn port_dhcpv4(st: &State, port: &Port) -> Option<RowId> {
    port_dhcp(st, port, true)
}
/// Neutron prefers a subnet whose DHCPv6 options are not stateless (DHCPv6-stateful or no
/// address mode), so the port gets a stateful address; else the first with a row.
fn port_dhcpv6(st: &State, port: &Port) -> Option<RowId> {
    let with_row = || {
        port.fixed_ips
            .iter()
            .filter_map(|f| st.subnets.get(&f.subnet))
            .filter(|s| !s.is_v4() && s.enable_dhcp && s.dhcp_options.is_some())
    };
    with_row()
        .find(|s| s.ipv6_address_mode.as_deref() != Some("dhcpv6-stateless"))
        .or_else(|| with_row().next())
        .and_then(|s| s.dhcp_options)
}

/// The `insert` row of a new LSP (python IDL: only columns that differ from the default).
pub fn lsp_insert_row(st: &State, port: &Port) -> Row {
    let c = lsp_columns(st, port);
    let mut row = Row::new()
        .with("name", port.id.to_string())
        .with("addresses", strs(c.addresses))
        .with("enabled", true)
        .with("options", smap(&c.options))
        .with("external_ids", smap(&c.external_ids));
    if !c.lsp_type.is_empty() {
        row.set("type", c.lsp_type);
    }
    if !c.port_security.is_empty() {
        row.set("port_security", strs(c.port_security));
    }
    if let Some(d) = c.dhcpv4 {
        row.set("dhcpv4_options", Value::uuid(d));
    }
    if let Some(d) = c.dhcpv6 {
        row.set("dhcpv6_options", Value::uuid(d));
    }
    row
}

/// The full-column `update` ML2 `update_port` writes.
pub fn lsp_update_row(st: &State, port: &Port) -> Row {
    let c = lsp_columns(st, port);
    Row::new()
        .with("external_ids", smap(&c.external_ids))
        .with("parent_name", Value::empty_set())
        .with("tag", Value::empty_set())
        .with("options", smap(&c.options))
        .with("enabled", true)
        .with("port_security", strs(c.port_security))
        .with("dhcpv4_options", opt_uuid(c.dhcpv4))
        .with("dhcpv6_options", opt_uuid(c.dhcpv6))
        .with("type", c.lsp_type)
        .with("addresses", strs(c.addresses))
        .with("ha_chassis_group", Value::empty_set())
}

/// The L3 plugin's `SetLRouterPortInLSwitchPortCommand` columns.
pub fn lsp_router_row(port: &Port) -> Row {
    Row::new()
        .with("type", "router")
        .with("addresses", strs(["router"]))
        .with("options", smap(&router_lsp_options(port)))
}

/// Whether ML2 keeps the port out of `neutron_pg_drop` (device_owner `network:*`).
pub fn is_trusted(port: &Port) -> bool {
    port.device_owner.starts_with("network:")
}

// ------------------------------------------------------------------ router ports --

pub fn lrp_external_ids(port: &Port) -> BTreeMap<String, String> {
    let subnets: Vec<String> = port.fixed_ips.iter().map(|f| f.subnet.to_string()).collect();
    let router = match port.kind {
        PortKind::RouterGateway { router } | PortKind::RouterInterface { router } => router.to_string(),
        _ => String::new(),
    };
    // 21.0.0 writes the bare router id here (the port's device_id), not `neutron-<id>`.
    map_of([
        (REVISION, port.revision.to_string()),
        ("neutron:subnet_ids", subnets.join(" ")),
        ("neutron:network_name", format!("neutron-{}", port.network)),
        ("neutron:router_name", router),
    ])
}

pub fn lrp_networks(st: &State, port: &Port) -> Vec<String> {
    port.fixed_ips
        .iter()
        .filter_map(|f| st.subnets.get(&f.subnet).map(|s| ip_with_prefix(f.ip, &s.cidr)))
        .collect()
}

/// LRP `options`: `reside-on-redirect-chassis` only behind vlan networks.
pub fn lrp_options(st: &State, port: &Port) -> BTreeMap<String, String> {
    let vlan = st
        .networks
        .get(&port.network)
        .and_then(|n| n.provider.as_ref())
        .is_some_and(|p| matches!(p.network_type, NetworkType::Vlan(_)));
    if vlan {
        map_of([("reside-on-redirect-chassis", "true".to_owned())])
    } else {
        BTreeMap::new()
    }
}

/// LRP `ipv6_ra_configs`: for a port on an IPv6 subnet with an address mode, what northd's
/// router advertisements announce.
pub fn lrp_ipv6_ra_configs(st: &State, port: &Port) -> BTreeMap<String, String> {
    let Some(subnet) = port
        .fixed_ips
        .iter()
        .filter_map(|f| st.subnets.get(&f.subnet))
        .find(|s| !s.is_v4() && s.ipv6_address_mode.is_some())
    else {
        return BTreeMap::new();
    };
    let mode = subnet
        .ipv6_address_mode
        .as_deref()
        .unwrap_or_default()
        .replace('-', "_");
    let external_gateway = matches!(port.kind, PortKind::RouterGateway { .. })
        && st.networks.get(&port.network).is_some_and(|n| n.external);
    let mtu = st.networks.get(&port.network).map(|n| n.mtu).unwrap_or_default();
    map_of([
        ("address_mode", mode),
        ("send_periodic", (!external_gateway).to_string()),
        ("mtu", mtu.to_string()),
    ])
}

/// The LRP `insert` row (gateway rows are added by the caller).
pub fn lrp_insert_row(st: &State, port: &Port) -> Row {
    let mut row = Row::new()
        .with("name", format!("lrp-{}", port.id))
        .with("mac", port.mac.clone())
        .with("networks", strs(lrp_networks(st, port)))
        .with("external_ids", smap(&lrp_external_ids(port)));
    let options = lrp_options(st, port);
    if !options.is_empty() {
        row.set("options", smap(&options));
    }
    let ra = lrp_ipv6_ra_configs(st, port);
    if !ra.is_empty() {
        row.set("ipv6_ra_configs", smap(&ra));
    }
    row
}

/// `update_router_port`'s LRP `update`.
pub fn lrp_update_row(st: &State, port: &Port) -> Row {
    Row::new()
        .with("networks", strs(lrp_networks(st, port)))
        .with("ipv6_ra_configs", smap(&lrp_ipv6_ra_configs(st, port)))
        .with("external_ids", smap(&lrp_external_ids(port)))
        .with("options", smap(&lrp_options(st, port)))
}

// ------------------------------------------------------------------ DHCP --

/// DHCP_Options `options` of an IPv4 subnet with DHCP (metadata route via `metadata_ip`).
pub fn dhcpv4_options(
    st: &State,
    subnet: &crate::model::Subnet,
    mtu: u32,
    metadata_ip: Option<std::net::IpAddr>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let server_id = subnet
        .gateway
        .or(metadata_ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    m.insert("server_id".to_owned(), server_id);
    m.insert("server_mac".to_owned(), subnet.server_mac.clone());
    m.insert("lease_time".to_owned(), st.config.dhcp_lease_time.to_string());
    m.insert("mtu".to_owned(), mtu.to_string());
    if let Some(gw) = subnet.gateway {
        m.insert("router".to_owned(), gw.to_string());
    }
    let dns: Vec<&String> = if subnet.dns_nameservers.is_empty() {
        st.config.dns_servers.iter().collect()
    } else {
        subnet.dns_nameservers.iter().collect()
    };
    let dns: Vec<&String> = dns.into_iter().filter(|d| d.as_str() != "0.0.0.0").collect();
    if !dns.is_empty() {
        let list: Vec<&str> = dns.iter().map(|s| s.as_str()).collect();
        m.insert("dns_server".to_owned(), format!("{{{}}}", list.join(", ")));
    }
    // Neutron's order: the metadata route, the subnet's host routes, then the default route
    // (only written beside other routes).
    let mut routes: Vec<String> = metadata_ip
        .map(|md| format!("169.254.169.254/32,{md}"))
        .into_iter()
        .collect();
    routes.extend(subnet.host_routes.iter().map(|(dest, hop)| format!("{dest},{hop}")));
    if !routes.is_empty() {
        if let Some(gw) = subnet.gateway {
            routes.push(format!("0.0.0.0/0,{gw}"));
        }
        m.insert(
            "classless_static_route".to_owned(),
            format!("{{{}}}", routes.join(", ")),
        );
    }
    m
}

/// DHCP_Options `options` of an IPv6 subnet in a DHCPv6 mode.
pub fn dhcpv6_options(subnet: &crate::model::Subnet) -> BTreeMap<String, String> {
    let mut m = map_of([("server_id", subnet.server_mac.clone())]);
    if !subnet.dns_nameservers.is_empty() {
        m.insert(
            "dns_server".into(),
            format!("{{{}}}", subnet.dns_nameservers.join(", ")),
        );
    }
    if subnet.ipv6_address_mode.as_deref() == Some("dhcpv6-stateless") {
        m.insert("dhcpv6_stateless".into(), "true".into());
    }
    m
}

pub fn dhcp_insert_row(subnet: &crate::model::Subnet, options: &BTreeMap<String, String>) -> Row {
    Row::new()
        .with("cidr", subnet.cidr.to_string())
        .with(
            "external_ids",
            smap(&map_of([
                ("subnet_id", subnet.id.to_string()),
                (REVISION, subnet.revision.to_string()),
            ])),
        )
        .with("options", smap(options))
}

// ------------------------------------------------------------------ ACLs --

/// `pg_<sg with underscores>`.
pub fn pg_name(sg: crate::model::Id) -> String {
    format!("pg_{}", sg.to_string().replace('-', "_"))
}

/// The ACL match Neutron's `acl.py` builds for a rule.
pub fn acl_match(rule: &SecurityGroupRule) -> String {
    let pg = pg_name(rule.security_group);
    let ip = if rule.ethertype == 6 { "ip6" } else { "ip4" };
    let (port_dir, addr_dir) = match rule.direction {
        Direction::Ingress => ("outport", "src"),
        Direction::Egress => ("inport", "dst"),
    };
    let mut m = format!("{port_dir} == @{pg} && {ip}");
    if let Some(prefix) = &rule.remote_ip_prefix {
        m.push_str(&format!(" && {ip}.{addr_dir} == {}", prefix.trunc()));
    }
    if let Some(remote) = rule.remote_group {
        m.push_str(&format!(" && {ip}.{addr_dir} == ${}_{ip}", pg_name(remote)));
    }
    match rule.protocol.as_deref() {
        None => {}
        Some(p @ ("tcp" | "udp" | "sctp")) => {
            m.push_str(&format!(" && {p}"));
            match (rule.port_range_min, rule.port_range_max) {
                (Some(a), Some(b)) if a == b => m.push_str(&format!(" && {p}.dst == {a}")),
                (Some(a), Some(b)) => m.push_str(&format!(" && {p}.dst >= {a} && {p}.dst <= {b}")),
                (Some(a), None) => m.push_str(&format!(" && {p}.dst >= {a}")),
                _ => {}
            }
        }
        Some("icmp" | "ipv6-icmp" | "icmpv6") => {
            let icmp = if rule.ethertype == 6 { "icmp6" } else { "icmp4" };
            m.push_str(&format!(" && {icmp}"));
            if let Some(t) = rule.port_range_min {
                m.push_str(&format!(" && {icmp}.type == {t}"));
            }
            if let Some(c) = rule.port_range_max {
                m.push_str(&format!(" && {icmp}.code == {c}"));
            }
        }
        Some(other) => m.push_str(&format!(" && ip.proto == {other}")),
    }
    m
}

pub fn acl_row(rule: &SecurityGroupRule, stateful: bool) -> Row {
    let direction = match rule.direction {
        Direction::Ingress => "to-lport",
        Direction::Egress => "from-lport",
    };
    Row::new()
        .with("direction", direction)
        .with("priority", 1002i64)
        .with("match", acl_match(rule))
        .with("action", if stateful { "allow-related" } else { "allow-stateless" })
        .with(
            "external_ids",
            smap(&map_of([("neutron:security_group_rule_id", rule.id.to_string())])),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Id;

    fn rule(direction: Direction, ethertype: u8) -> SecurityGroupRule {
        SecurityGroupRule {
            id: Id::nil(),
            security_group: "0a1b2c3d-0000-4000-8000-000000000001".parse().unwrap(),
            direction,
            ethertype,
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group: None,
            acl: ovsdb::Uuid::new_v4(),
        }
    }

    #[test]
    fn acl_matches_follow_neutron_acl_py() {
        let pg = "pg_0a1b2c3d_0000_4000_8000_000000000001";
        assert_eq!(
            acl_match(&rule(Direction::Egress, 4)),
            format!("inport == @{pg} && ip4")
        );
        let mut r = rule(Direction::Ingress, 6);
        r.remote_group = Some(r.security_group);
        assert_eq!(
            acl_match(&r),
            format!("outport == @{pg} && ip6 && ip6.src == ${pg}_ip6")
        );
        let mut r = rule(Direction::Ingress, 4);
        r.protocol = Some("tcp".into());
        r.port_range_min = Some(22);
        r.port_range_max = Some(22);
        r.remote_ip_prefix = Some("0.0.0.0/0".parse().unwrap());
        assert_eq!(
            acl_match(&r),
            format!("outport == @{pg} && ip4 && ip4.src == 0.0.0.0/0 && tcp && tcp.dst == 22")
        );
        r.protocol = Some("icmp".into());
        r.port_range_min = Some(8);
        r.port_range_max = None;
        assert_eq!(
            acl_match(&r),
            format!("outport == @{pg} && ip4 && ip4.src == 0.0.0.0/0 && icmp4 && icmp4.type == 8")
        );
    }
}
