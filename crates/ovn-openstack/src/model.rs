//! Neutron-side state the mimic keeps: the objects of the Neutron DB that decide what is
//! written to the NB (networks, subnets with their IPAM, ports with MACs and revision numbers,
//! routers, security groups and rules, floating IPs), plus the NB row UUIDs of what was
//! written, so that later updates carry the right `wait` guards and deletes are exact.
//!
//! Invariant: the `external_ids` the mimic believes a row has are the ones in the NB (it is the
//! only writer of those columns), because state changes are applied only after the NB
//! transaction that made them committed.
//!
//! Must not know: OVSDB connections, processes, the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// A Neutron object id.
pub type Id = uuid::Uuid;
/// An NB row UUID.
pub type RowId = ovsdb::Uuid;

/// How the gateway of a router is scheduled in the NB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GatewayLayout {
    /// Neutron 21.0.0: `Gateway_Chassis` rows referenced by the gateway LRP.
    #[default]
    GatewayChassis,
    /// Upstream master: one `HA_Chassis_Group` `neutron-<router>` with `HA_Chassis` rows.
    HaChassisGroup,
}

/// Deployment options that change what Neutron writes.
#[derive(Clone, Debug)]
pub struct Config {
    pub gateway_layout: GatewayLayout,
    /// `[ovn] dns_servers` (DHCP `dns_server` when a subnet has none).
    pub dns_servers: Vec<String>,
    /// `[ovn] dhcp_default_lease_time`.
    pub dhcp_lease_time: u32,
    /// MTU of tunnelled (geneve) networks: 1500 minus the geneve overhead.
    pub tunnel_mtu: u32,
    /// MTU of flat/vlan networks.
    pub physical_mtu: u32,
    /// The project of requests that name none.
    pub default_project: String,
    /// Seed of the PRNG behind ids, MACs and IP picks (same seed, same run).
    pub seed: u64,
    /// Gateway chassis per router gateway (Neutron's `MAX_GW_CHASSIS`).
    pub max_gateway_chassis: usize,
    /// When set, a transaction whose outcome is unknown (the connection dropped before the
    /// reply, e.g. its NB leader was killed) is checked against the NB — within this long,
    /// while the cluster elects a new leader — by the row it writes (port, switch, DHCP
    /// options, router, router port, port group, ACL) and its revision number, as
    /// Neutron's maintenance task reconciles: committed, it counts as done; not committed, it
    /// is sent once more. Unset (the default), the unknown outcome is the action's error.
    pub verify_unknown_outcomes: Option<std::time::Duration>,
    /// When set, every root row written carries `external_ids:ovn-heater:run=<this>`
    /// ([`crate::marker`]), so a run's rows can be found in a shared NB. Real Neutron writes no
    /// such key: unset (the default) for anything compared against it.
    pub run_marker: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gateway_layout: GatewayLayout::GatewayChassis,
            dns_servers: vec!["8.8.8.8".into()],
            dhcp_lease_time: 43200,
            tunnel_mtu: 1442,
            physical_mtu: 1500,
            default_project: "fake_project_id".into(),
            seed: 1,
            max_gateway_chassis: MAX_GW_CHASSIS,
            verify_unknown_outcomes: None,
            run_marker: None,
        }
    }
}

/// Neutron never schedules a gateway on more chassis than this.
pub const MAX_GW_CHASSIS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkType {
    Geneve,
    Flat,
    Vlan(u16),
}

#[derive(Clone, Debug)]
pub struct Provider {
    pub network_type: NetworkType,
    pub physnet: String,
    pub segment: Id,
}

#[derive(Clone, Debug)]
pub struct Network {
    pub id: Id,
    pub name: String,
    pub project: String,
    pub mtu: u32,
    pub external: bool,
    /// `shared` (only the network's owner's access otherwise; not in the NB).
    pub shared: bool,
    pub provider: Option<Provider>,
    /// `port_security_enabled`: the default of the network's new ports.
    pub port_security: bool,
    pub revision: i64,
    pub subnets: Vec<Id>,
    pub metadata_port: Option<Id>,
    pub ls: RowId,
}

#[derive(Clone, Debug)]
pub struct Subnet {
    pub id: Id,
    pub name: String,
    pub network: Id,
    pub project: String,
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    pub enable_dhcp: bool,
    /// `slaac`, `dhcpv6-stateful`, `dhcpv6-stateless` (IPv6 only).
    pub ipv6_address_mode: Option<String>,
    pub dns_nameservers: Vec<String>,
    /// `--allocation-pool start=A,end=B` ranges (by default the host addresses minus the
    /// gateway; empty after `subnet unset` of the last one: no automatic picks); automatic
    /// picks stay inside them, explicit addresses need not.
    pub allocation_pools: Vec<(IpAddr, IpAddr)>,
    /// `--host-route destination=CIDR,gateway=IP` (destination, nexthop), in request order.
    pub host_routes: Vec<(String, String)>,
    pub revision: i64,
    pub dhcp_options: Option<RowId>,
    pub server_mac: String,
    pub allocated: BTreeSet<IpAddr>,
}

impl Subnet {
    pub fn is_v4(&self) -> bool {
        matches!(self.cidr, IpNet::V4(_))
    }
}

/// What a Neutron port is for, which decides its LSP shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// `network:distributed` OVN metadata port (localport).
    Metadata,
    /// `network:router_gateway` of a router.
    RouterGateway { router: Id },
    /// `network:router_interface` of a router.
    RouterInterface { router: Id },
    /// A VM (or any other) port.
    Compute,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet: Id,
    pub ip: IpAddr,
}

#[derive(Clone, Debug)]
pub struct Port {
    pub id: Id,
    pub name: String,
    pub network: Id,
    pub project: String,
    pub mac: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_owner: String,
    pub device_id: String,
    /// `binding:host_id` ("" when unbound).
    pub host: String,
    pub security_groups: Vec<Id>,
    pub port_security: bool,
    pub revision: i64,
    pub active: bool,
    pub kind: PortKind,
    /// The router-port half has been written (LSP type router + LRP).
    pub routed: bool,
    /// `neutron:port_fip` on the LSP (a FIP is associated).
    pub port_fip: Option<String>,
    pub lsp: RowId,
    pub lrp: Option<RowId>,
    /// The revision the LRP's `external_ids` carry (the L3 write lags ML2's).
    pub lrp_revision: i64,
    /// `--allowed-address` pairs: (MAC, IP or CIDR).
    pub allowed_address_pairs: Vec<(String, String)>,
    /// `description` and `dns_name`: nothing in the NB shows them, but changing them is an
    /// update of the port in Neutron's DB (revision +1).
    pub description: String,
    pub dns_name: String,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub port: Id,
    pub network: Id,
    /// Scheduled chassis, highest priority first.
    pub chassis: Vec<String>,
    pub route: RowId,
    /// The gateway port's LRP (also known once the port is deleted, when it is replaced).
    pub lrp: Option<RowId>,
    /// The Gateway_Chassis rows (`gateway-chassis` layout), kept by a gateway readdress.
    pub chassis_rows: Vec<RowId>,
    pub ha_chassis_group: Option<RowId>,
    /// `enable_snat`: the router's IPv4 interfaces get SNAT rows to the gateway address.
    pub snat: bool,
}

#[derive(Clone, Debug)]
pub struct Router {
    pub id: Id,
    pub name: String,
    pub project: String,
    /// Neutron's DB revision (RouterPort changes and gateway bindings bump it unwritten).
    pub revision: i64,
    /// The revision the LR row's `external_ids` carry (what a `wait` guard expects).
    pub lr_revision: i64,
    pub lr: RowId,
    pub gateway: Option<Gateway>,
    /// Interface ports.
    pub interfaces: Vec<Id>,
    /// SNAT NAT rows by internal CIDR.
    pub snats: BTreeMap<String, RowId>,
    /// Extra routes (`router set --route`), each a Logical_Router_Static_Route row.
    pub routes: Vec<ExtraRoute>,
}

/// One of a router's extra routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraRoute {
    pub destination: ipnet::IpNet,
    pub nexthop: IpAddr,
    pub row: RowId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Clone, Debug)]
pub struct SecurityGroupRule {
    pub id: Id,
    pub security_group: Id,
    pub direction: Direction,
    /// 4 or 6.
    pub ethertype: u8,
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group: Option<Id>,
    pub acl: RowId,
}

#[derive(Clone, Debug)]
pub struct SecurityGroup {
    pub id: Id,
    pub name: String,
    pub project: String,
    pub stateful: bool,
    pub rules: Vec<Id>,
    pub port_group: RowId,
}

#[derive(Clone, Debug)]
pub struct FloatingIp {
    pub id: Id,
    pub network: Id,
    pub subnet: Id,
    pub project: String,
    pub ip: IpAddr,
    /// MAC of the FIP's own Neutron port (`network:floatingip`, never in the NB).
    pub mac: String,
    pub revision: i64,
    pub association: Option<FipAssociation>,
}

#[derive(Clone, Debug)]
pub struct FipAssociation {
    pub port: Id,
    pub fixed_ip: IpAddr,
    pub router: Id,
    pub nat: RowId,
}

/// Everything the mimic knows, as Neutron's DB would.
pub struct State {
    pub config: Config,
    rng: StdRng,
    pub pg_drop: Option<RowId>,
    /// Whether this mimic created `neutron_pg_drop` (rather than finding it).
    pub pg_drop_created: bool,
    /// Every id handed out, sent or not: what [`crate::Neutron::purge`] looks for in the NB.
    pub issued: BTreeSet<Id>,
    pub networks: BTreeMap<Id, Network>,
    pub subnets: BTreeMap<Id, Subnet>,
    pub ports: BTreeMap<Id, Port>,
    pub routers: BTreeMap<Id, Router>,
    pub security_groups: BTreeMap<Id, SecurityGroup>,
    pub rules: BTreeMap<Id, SecurityGroupRule>,
    pub floating_ips: BTreeMap<Id, FloatingIp>,
    /// Project → its `default` security group.
    pub default_sg: BTreeMap<String, Id>,
    macs: BTreeSet<String>,
    /// Whether any port was ever planned with allowed address pairs (set, never cleared, by
    /// the virtual-port check every such port goes through): until then no port can make
    /// another virtual, and that check need not walk every port.
    pub(crate) allowed_pairs_seen: std::cell::Cell<bool>,
}

impl State {
    pub fn new(config: Config) -> Self {
        State {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            pg_drop: None,
            pg_drop_created: false,
            issued: BTreeSet::new(),
            networks: BTreeMap::new(),
            subnets: BTreeMap::new(),
            ports: BTreeMap::new(),
            routers: BTreeMap::new(),
            security_groups: BTreeMap::new(),
            rules: BTreeMap::new(),
            floating_ips: BTreeMap::new(),
            default_sg: BTreeMap::new(),
            macs: BTreeSet::new(),
            allowed_pairs_seen: std::cell::Cell::new(false),
        }
    }

    /// A fresh Neutron id (from the seeded PRNG, so runs repeat).
    pub fn new_id(&mut self) -> Id {
        let id = uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid();
        self.issued.insert(id);
        id
    }

    /// A fresh `fa:16:3e:xx:xx:xx` MAC (Neutron's `base_mac`), reserved until [`State::release_mac`].
    pub fn new_mac(&mut self) -> String {
        loop {
            let b: [u8; 3] = self.rng.gen();
            let mac = format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
            if self.macs.insert(mac.clone()) {
                return mac;
            }
        }
    }

    /// Reserves a MAC the request names (`--mac-address`); Neutron's 409 if it is taken.
    pub fn reserve_mac(&mut self, mac: &str) -> Result<String> {
        let mac = mac.to_lowercase();
        if !self.macs.insert(mac.clone()) {
            return Err(Error::InUse {
                what: format!("MAC address {mac}"),
                why: "another port has it".into(),
            });
        }
        Ok(mac)
    }

    pub fn release_mac(&mut self, mac: &str) {
        self.macs.remove(mac);
    }

    /// Reserves an address in `subnet`: `wanted` if given (must be free and inside), else a
    /// random pick among the first 1000 free ones (as Neutron's IPAM), or the lowest free one
    /// with `lowest`.
    pub fn allocate_ip(&mut self, subnet: Id, wanted: Option<IpAddr>, lowest: bool) -> Result<IpAddr> {
        let s = self.subnets.get(&subnet).ok_or_else(|| Error::Unknown {
            kind: "subnet",
            name: subnet.to_string(),
            known: String::new(),
        })?;
        let name = s.name.clone();
        if let Some(ip) = wanted {
            if !s.cidr.contains(&ip) || ip == s.cidr.network() || (s.is_v4() && ip == s.cidr.broadcast()) {
                return Err(Error::IpUnavailable {
                    ip: ip.to_string(),
                    subnet: name,
                    why: "is not a host address of the subnet",
                });
            }
            // The gateway stays in `allocated` (no automatic pick takes it), but Neutron's IPAM
            // holds it for nobody: a port may ask for it while no port has it.
            let gateway_free = Some(ip) == s.gateway
                && !self
                    .ports
                    .values()
                    .any(|p| p.fixed_ips.iter().any(|f| f.subnet == subnet && f.ip == ip));
            if s.allocated.contains(&ip) && !gateway_free {
                return Err(Error::IpUnavailable {
                    ip: ip.to_string(),
                    subnet: name,
                    why: "is already allocated",
                });
            }
            self.subnets.get_mut(&subnet).map(|s| s.allocated.insert(ip));
            return Ok(ip);
        }
        let free = free_addresses(s, if lowest { 1 } else { 1000 });
        if free.is_empty() {
            return Err(Error::SubnetFull {
                subnet: name,
                cidr: s.cidr.to_string(),
            });
        }
        let ip = free[self.rng.gen_range(0..free.len())];
        self.subnets.get_mut(&subnet).map(|s| s.allocated.insert(ip));
        Ok(ip)
    }

    pub fn release_ip(&mut self, subnet: Id, ip: IpAddr) {
        if let Some(s) = self.subnets.get_mut(&subnet) {
            if Some(ip) == s.gateway {
                return;
            }
            s.allocated.remove(&ip);
        }
    }

    // ---- lookups by name or id (what the openstack CLI accepts) ----

    pub fn network(&self, name_or_id: &str) -> Result<&Network> {
        find(&self.networks, name_or_id, |n| n.name.as_str(), "network")
    }
    pub fn subnet(&self, name_or_id: &str) -> Result<&Subnet> {
        find(&self.subnets, name_or_id, |s| s.name.as_str(), "subnet")
    }
    pub fn port(&self, name_or_id: &str) -> Result<&Port> {
        find(&self.ports, name_or_id, |p| p.name.as_str(), "port")
    }
    pub fn router(&self, name_or_id: &str) -> Result<&Router> {
        find(&self.routers, name_or_id, |r| r.name.as_str(), "router")
    }
    pub fn security_group(&self, name_or_id: &str) -> Result<&SecurityGroup> {
        find(&self.security_groups, name_or_id, |s| s.name.as_str(), "security group")
    }
    pub fn rule(&self, id: &str) -> Result<&SecurityGroupRule> {
        find(&self.rules, id, |_| "", "security group rule")
    }
    pub fn floating_ip(&self, ip_or_id: &str) -> Result<&FloatingIp> {
        if let Some(f) = self.floating_ips.values().find(|f| f.ip.to_string() == ip_or_id) {
            return Ok(f);
        }
        find(&self.floating_ips, ip_or_id, |_| "", "floating IP")
    }

    /// MTU a network of this type gets.
    pub fn mtu_for(&self, provider: Option<&Provider>) -> u32 {
        match provider.map(|p| &p.network_type) {
            None | Some(NetworkType::Geneve) => self.config.tunnel_mtu,
            Some(_) => self.config.physical_mtu,
        }
    }

    /// How many router gateways each chassis hosts, split by whether it is the active one.
    /// Per chassis, how many gateway ports it hosts at each priority: `(priority, count)`
    /// pairs, highest first (Neutron's `_get_chassis_load`, compared as Python compares lists).
    pub fn gateway_load(&self) -> BTreeMap<String, Vec<(usize, usize)>> {
        let mut counts: BTreeMap<String, BTreeMap<usize, usize>> = BTreeMap::new();
        for gw in self.routers.values().filter_map(|r| r.gateway.as_ref()) {
            let n = gw.chassis.len();
            for (i, ch) in gw.chassis.iter().enumerate() {
                *counts.entry(ch.clone()).or_default().entry(n - i).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(ch, by_prio)| (ch, by_prio.into_iter().rev().collect()))
            .collect()
    }
}

fn find<'a, T>(map: &'a BTreeMap<Id, T>, key: &str, name: fn(&T) -> &str, kind: &'static str) -> Result<&'a T> {
    if let Ok(id) = key.parse::<Id>() {
        if let Some(v) = map.get(&id) {
            return Ok(v);
        }
    }
    let mut hits = map.values().filter(|v| name(v) == key);
    match (hits.next(), hits.next()) {
        (Some(v), None) => Ok(v),
        (Some(_), Some(_)) => Err(Error::invalid(
            format!("{kind} name {key:?}"),
            "more than one has this name; use the id",
        )),
        _ => {
            let mut known: Vec<String> = map
                .iter()
                .map(|(id, v)| {
                    if name(v).is_empty() {
                        id.to_string()
                    } else {
                        name(v).to_owned()
                    }
                })
                .collect();
            known.truncate(10);
            Err(Error::Unknown {
                kind,
                name: key.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            })
        }
    }
}

/// `ip/prefixlen` of an address in a subnet, as `neutron:cidrs` and LRP `networks` spell it.
pub fn ip_with_prefix(ip: IpAddr, cidr: &IpNet) -> String {
    format!("{ip}/{}", cidr.prefix_len())
}

/// Neutron's default allocation pools of a subnet: its host addresses (IPv4: without the
/// network and broadcast addresses; IPv6: network + 1 to the last address) minus the gateway,
/// which splits the range in two.
pub fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<(IpAddr, IpAddr)> {
    let (first, last): (IpAddr, IpAddr) = match cidr {
        IpNet::V4(n) => {
            let (net, bc) = (u32::from(n.network()), u32::from(n.broadcast()));
            let (a, b) = if bc - net < 2 { (net, bc) } else { (net + 1, bc - 1) };
            (IpAddr::V4(a.into()), IpAddr::V4(b.into()))
        }
        IpNet::V6(n) => {
            let (net, last) = (u128::from(n.network()), u128::from(n.broadcast()));
            (
                IpAddr::V6((net + u128::from(last > net)).into()),
                IpAddr::V6(last.into()),
            )
        }
    };
    match gateway {
        Some(g) if first <= g && g <= last => {
            let mut pools = Vec::new();
            if g > first {
                pools.push((first, step_ip(g, false)));
            }
            if g < last {
                pools.push((step_ip(g, true), last));
            }
            pools
        }
        _ => vec![(first, last)],
    }
}

/// The next (`up`) or previous address.
fn step_ip(ip: IpAddr, up: bool) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let n = u32::from(a);
            IpAddr::V4(if up { n + 1 } else { n - 1 }.into())
        }
        IpAddr::V6(a) => {
            let n = u128::from(a);
            IpAddr::V6(if up { n + 1 } else { n - 1 }.into())
        }
    }
}

/// Up to `limit` addresses an automatic pick may take, in address order: host addresses of
/// `s` inside one of its allocation pools, neither its network address, its gateway nor
/// allocated. The pools' ranges are walked beside the (sorted) allocated set instead of
/// looking each host address up in it: this runs for every port, and at 1,000 VMs the
/// lookups were 3 % of the tester's CPU.
fn free_addresses(s: &Subnet, limit: usize) -> Vec<IpAddr> {
    let (Some(first), Some(last)) = (s.cidr.hosts().next(), s.cidr.hosts().next_back()) else {
        return Vec::new();
    };
    let v4 = first.is_ipv4();
    let num = |ip: IpAddr| match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let addr = |n: u128| -> IpAddr {
        if v4 {
            IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(n))
        }
    };
    let network = num(s.cidr.network());
    let gateway = s.gateway.filter(|g| g.is_ipv4() == v4).map(num);
    let mut pools: Vec<(u128, u128)> = s
        .allocation_pools
        .iter()
        .filter(|(a, b)| a.is_ipv4() == v4 && b.is_ipv4() == v4)
        .map(|(a, b)| (num(*a), num(*b)))
        .collect();
    pools.sort_unstable();
    let mut free = Vec::new();
    // The first address no earlier pool covered (overlapping pools yield an address once).
    let mut unseen = num(first);
    let last = num(last);
    for (a, b) in pools {
        let (lo, hi) = (a.max(unseen), b.min(last));
        if lo > hi {
            continue;
        }
        let mut allocated = s.allocated.range(addr(lo)..=addr(hi)).map(|ip| num(*ip)).peekable();
        let mut n = lo;
        loop {
            while allocated.next_if(|t| *t < n).is_some() {}
            if allocated.peek() != Some(&n) && n != network && Some(n) != gateway {
                free.push(addr(n));
                if free.len() == limit {
                    return free;
                }
            }
            if n == hi {
                break;
            }
            n += 1;
        }
        match hi.checked_add(1) {
            Some(next) => unseen = next,
            None => break,
        }
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `free_addresses` replaced: every host address looked up, in order.
    fn free_addresses_by_lookup(s: &Subnet, limit: usize) -> Vec<IpAddr> {
        s.cidr
            .hosts()
            .filter(|ip| *ip != s.cidr.network() && Some(*ip) != s.gateway && !s.allocated.contains(ip))
            .filter(|ip| s.allocation_pools.iter().any(|(a, b)| a <= ip && ip <= b))
            .take(limit)
            .collect()
    }

    #[test]
    fn free_addresses_match_a_lookup_of_every_host_address() {
        let mut rng = StdRng::seed_from_u64(7);
        for cidr in [
            "10.0.0.0/24",
            "10.1.0.0/28",
            "10.2.0.0/30",
            "10.3.0.0/31",
            "10.4.0.4/32",
            "fd00::/120",
            "fd01::/126",
        ] {
            let cidr: IpNet = cidr.parse().unwrap();
            let hosts: Vec<IpAddr> = cidr.hosts().collect();
            for round in 0..200 {
                let pick = |rng: &mut StdRng| hosts[rng.gen_range(0..hosts.len())];
                let mut pools: Vec<(IpAddr, IpAddr)> = (0..rng.gen_range(0..4))
                    .map(|_| {
                        let (a, b) = (pick(&mut rng), pick(&mut rng));
                        (a.min(b), a.max(b))
                    })
                    .collect();
                if round % 3 == 0 {
                    pools = default_pools(&cidr, hosts.first().copied());
                }
                let subnet = Subnet {
                    gateway: (round % 2 == 0).then(|| pick(&mut rng)),
                    allocation_pools: pools,
                    allocated: (0..rng.gen_range(0..hosts.len() + 1)).map(|_| pick(&mut rng)).collect(),
                    ..test_subnet(cidr)
                };
                for limit in [1, 3, 1000] {
                    assert_eq!(
                        free_addresses(&subnet, limit),
                        free_addresses_by_lookup(&subnet, limit),
                        "{cidr} {subnet:?} limit {limit}"
                    );
                }
            }
        }
    }

    /// A subnet of `cidr` as `subnet create` makes it: gateway first host, default pools.
    fn test_subnet(cidr: IpNet) -> Subnet {
        let id = Id::from_u128(1);
        Subnet {
            id,
            name: "s".into(),
            network: id,
            project: "p".into(),
            gateway: cidr.hosts().next(),
            cidr,
            enable_dhcp: true,
            ipv6_address_mode: None,
            dns_nameservers: vec![],
            allocation_pools: default_pools(&cidr, cidr.hosts().next()),
            host_routes: vec![],
            revision: 0,
            dhcp_options: None,
            server_mac: String::new(),
            allocated: BTreeSet::new(),
        }
    }

    fn state_with_subnet(cidr: &str) -> (State, Id) {
        let mut st = State::new(Config::default());
        let id = st.new_id();
        st.subnets.insert(
            id,
            Subnet {
                id,
                network: id,
                ..test_subnet(cidr.parse().unwrap())
            },
        );
        (st, id)
    }

    #[test]
    fn ipam_skips_gateway_and_reports_a_full_subnet() {
        let (mut st, s) = state_with_subnet("10.9.0.0/30");
        assert_eq!(st.allocate_ip(s, None, true).unwrap().to_string(), "10.9.0.2");
        assert!(matches!(st.allocate_ip(s, None, false), Err(Error::SubnetFull { .. })));
        st.release_ip(s, "10.9.0.2".parse().unwrap());
        assert!(st.allocate_ip(s, Some("10.9.0.2".parse().unwrap()), false).is_ok());
        assert!(matches!(
            st.allocate_ip(s, Some("10.9.0.2".parse().unwrap()), false),
            Err(Error::IpUnavailable { .. })
        ));
    }

    #[test]
    fn macs_use_neutron_base_mac_and_are_unique() {
        let mut st = State::new(Config::default());
        let a = st.new_mac();
        let b = st.new_mac();
        assert!(a.starts_with("fa:16:3e:") && a != b);
    }
}
