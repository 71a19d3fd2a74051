//! Networks and subnets: `network create/delete` (tenant geneve; provider flat/vlan with the
//! localnet port), its OVN metadata port, `subnet create/delete` (IPv4/IPv6, DHCP on/off).
//!
//! Must not know: connections (see neutron.rs), the CLI.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use ovsdb::{Condition, Row, Transaction, Value};

use crate::error::{Error, Result};
use crate::model::{FixedIp, Id, Network, NetworkType, Port, PortKind, Provider, RowId, State, Subnet};
use crate::nb::{self, map_of, smap, strs, Planned};
use crate::neutron::{pg_drop, ActionReport, Neutron};

/// `openstack network create`.
#[derive(Clone, Debug, Default)]
pub struct NetworkSpec {
    pub name: String,
    /// Owner; the configured default project when `None`.
    pub project: Option<String>,
    /// `--external` (`router:external`).
    pub external: bool,
    /// `--provider-network-type` (`geneve` when absent, `flat`, `vlan`).
    pub network_type: Option<String>,
    /// `--provider-physical-network`.
    pub physical_network: Option<String>,
    /// `--provider-segment` (VLAN id).
    pub segmentation_id: Option<u16>,
    /// `--mtu` (at most the network type's maximum, which is the default).
    pub mtu: Option<u32>,
    /// `--disable-port-security` (the network's new ports default to no port security).
    pub disable_port_security: bool,
    /// `--share` (not in the NB; `network set --no-share` checks other projects' ports).
    pub shared: bool,
}

/// The gateway of a new subnet.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SubnetGateway {
    /// The first host address (Neutron's default).
    #[default]
    Auto,
    /// `--gateway none`.
    None,
    Ip(IpAddr),
}

/// `openstack subnet create`.
#[derive(Clone, Debug)]
pub struct SubnetSpec {
    pub name: String,
    pub network: String,
    pub project: Option<String>,
    pub cidr: String,
    pub gateway: SubnetGateway,
    pub enable_dhcp: bool,
    /// `--ipv6-address-mode` (`slaac`, `dhcpv6-stateful`, `dhcpv6-stateless`).
    pub ipv6_address_mode: Option<String>,
    pub dns_nameservers: Vec<String>,
    /// `--allocation-pool start=A,end=B`.
    pub allocation_pools: Vec<(IpAddr, IpAddr)>,
    /// `--host-route destination=CIDR,gateway=IP` (destination, nexthop).
    pub host_routes: Vec<(String, String)>,
    /// The address the network's metadata port gets in this subnet (Neutron's IPAM pick);
    /// the lowest free one when `None`.
    pub metadata_ip: Option<IpAddr>,
}

impl SubnetSpec {
    pub fn new(name: &str, network: &str, cidr: &str) -> Self {
        SubnetSpec {
            name: name.into(),
            network: network.into(),
            project: None,
            cidr: cidr.into(),
            gateway: SubnetGateway::Auto,
            enable_dhcp: true,
            ipv6_address_mode: None,
            dns_nameservers: vec![],
            allocation_pools: vec![],
            host_routes: vec![],
            metadata_ip: None,
        }
    }
}

impl Neutron {
    /// `network create`: the project's default SG if new (T1a), the Logical_Switch (with the
    /// localnet port for provider networks) (T1b), the metadata localport (T1c).
    pub async fn network_create(&self, spec: NetworkSpec) -> Result<ActionReport> {
        self.action("network create", |mut report| async move {
            let provider = self.with_state(|st| provider_of(st, &spec))?;
            let project = spec
                .project
                .clone()
                .unwrap_or_else(|| self.with_state(|st| st.config.default_project.clone()));
            self.ensure_default_security_group(&mut report, &project).await?;
            // Checked after the default group exists: Neutron creates it (BEFORE_CREATE)
            // before it validates the MTU, so a refused create still leaves the group.
            if let Some(mtu) = spec.mtu {
                let max = self.with_state(|st| st.mtu_for(provider.as_ref()));
                if mtu > max || mtu < 68 {
                    return Err(Error::invalid(
                        "--mtu",
                        format!("{mtu} is out of range: the network type allows 68 to {max} (Neutron's 400)"),
                    ));
                }
            }
            let (net_id, mdp_id, mac) = self.with_state(|st| (st.new_id(), st.new_id(), st.new_mac()));
            let result = async {
                self.exec(&mut report, |st| {
                    let mtu = spec.mtu.unwrap_or_else(|| st.mtu_for(provider.as_ref()));
                    let network = Network {
                        id: net_id,
                        name: spec.name.clone(),
                        project: project.clone(),
                        mtu,
                        external: spec.external,
                        shared: spec.shared,
                        provider: provider.clone(),
                        port_security: !spec.disable_port_security,
                        revision: 1,
                        subnets: vec![],
                        metadata_port: None,
                        ls: ovsdb::Uuid::new_v4(),
                    };
                    Ok(Some(plan_logical_switch(network)))
                })
                .await?;
                self.exec(&mut report, |st| {
                    let port = Port {
                        id: mdp_id,
                        name: String::new(),
                        network: net_id,
                        project: project.clone(),
                        mac: mac.clone(),
                        fixed_ips: vec![],
                        device_owner: nb::OWNER_DISTRIBUTED.into(),
                        device_id: format!("ovnmeta-{net_id}"),
                        host: String::new(),
                        security_groups: vec![],
                        port_security: false,
                        revision: 1,
                        active: false,
                        kind: PortKind::Metadata,
                        routed: false,
                        port_fip: None,
                        lsp: ovsdb::Uuid::new_v4(),
                        lrp: None,
                        lrp_revision: 0,
                        allowed_address_pairs: vec![],
                        description: String::new(),
                        dns_name: String::new(),
                    };
                    Ok(Some(crate::port::plan_lsp_create(st, port, "T1c metadata port")?))
                })
                .await
            }
            .await;
            if result.is_err() && !self.with_state(|st| st.ports.contains_key(&mdp_id)) {
                self.with_state(|st| st.release_mac(&mac));
            }
            result?;
            report.id = Some(net_id);
            Ok(report)
        })
        .await
    }

    /// `network delete`: its metadata port, its subnets' DHCP_Options, the Logical_Switch.
    pub async fn network_delete(&self, network: &str) -> Result<ActionReport> {
        self.action("network delete", |mut report| async move {
            let (net_id, mdp, subnets) = self.with_state(|st| -> Result<_> {
                let net = st.network(network)?;
                if let Some(p) = st
                    .ports
                    .values()
                    .find(|p| p.network == net.id && p.kind != PortKind::Metadata)
                {
                    return Err(Error::InUse {
                        what: format!("network {}", net.name),
                        why: format!("port {} ({}) is still on it; delete it first", p.id, p.device_owner),
                    });
                }
                if let Some(f) = st.floating_ips.values().find(|f| f.network == net.id) {
                    return Err(Error::InUse {
                        what: format!("network {}", net.name),
                        why: format!("floating IP {} is allocated from it", f.ip),
                    });
                }
                Ok((net.id, net.metadata_port, net.subnets.clone()))
            })?;
            if let Some(mdp) = mdp {
                self.exec(&mut report, |st| Ok(Some(crate::port::plan_lsp_delete(st, mdp)?)))
                    .await?;
            }
            for subnet in subnets {
                self.exec(&mut report, |st| Ok(plan_dhcp_delete(st, subnet))).await?;
            }
            self.exec(&mut report, |st| {
                let net = st
                    .networks
                    .get(&net_id)
                    .ok_or_else(|| Error::invalid("network", "vanished"))?;
                let mut txn = Transaction::new(nb::NB);
                txn.delete(nb::LOGICAL_SWITCH, vec![Condition::uuid(net.ls)]);
                Ok(Some(Planned::new(
                    "network delete Logical_Switch",
                    txn,
                    move |st, _| {
                        st.networks.remove(&net_id);
                    },
                )))
            })
            .await?;
            Ok(report)
        })
        .await
    }

    /// `subnet create`. IPv4 with DHCP: the metadata port gets an address and the subnet its
    /// DHCP_Options, in one transaction (T2). DHCPv6 modes: the DHCP_Options alone. No DHCP
    /// (or SLAAC): no NB write.
    pub async fn subnet_create(&self, spec: SubnetSpec) -> Result<ActionReport> {
        self.action("subnet create", |mut report| async move {
            let subnet_id = self.with_state(|st| reserve_subnet(st, &spec))?;
            let result = async {
                let (v4, dhcp, mdp) = self.with_state(|st| {
                    let s = &st.subnets[&subnet_id];
                    (s.is_v4(), s.enable_dhcp, st.networks[&s.network].metadata_port)
                });
                match (v4, dhcp, mdp) {
                    (true, true, Some(mdp)) => {
                        let ip = self.with_state(|st| st.allocate_ip(subnet_id, spec.metadata_ip, true))?;
                        let r = self
                            .exec(&mut report, |st| {
                                Ok(Some(plan_subnet_v4_dhcp(st, subnet_id, mdp, ip, &[])?))
                            })
                            .await;
                        if r.is_err() {
                            self.with_state(|st| st.release_ip(subnet_id, ip));
                        }
                        r
                    }
                    (false, true, _) if spec.ipv6_address_mode.as_deref() != Some("slaac") => {
                        self.exec(&mut report, |st| Ok(Some(plan_subnet_v6_dhcp(st, subnet_id, &[]))))
                            .await
                    }
                    _ => Ok(()),
                }?;
                self.auto_address_existing_ports(&mut report, subnet_id).await
            }
            .await;
            if let Err(e) = result {
                self.with_state(|st| unreserve_subnet(st, subnet_id));
                return Err(e);
            }
            self.with_state(|st| bump_network_revision(st, subnet_id));
            report.id = Some(subnet_id);
            Ok(report)
        })
        .await
    }

    /// SLAAC and DHCPv6-stateless subnets give every existing port of the network (router
    /// interfaces excepted) its EUI-64 address: one LSP update per port.
    async fn auto_address_existing_ports(&self, report: &mut ActionReport, subnet_id: Id) -> Result<()> {
        let (auto, ports) = self.with_state(|st| {
            let s = &st.subnets[&subnet_id];
            let auto = matches!(s.ipv6_address_mode.as_deref(), Some("slaac" | "dhcpv6-stateless"));
            let ports: Vec<Id> = st
                .ports
                .values()
                .filter(|p| p.network == s.network && !matches!(p.kind, PortKind::RouterInterface { .. }))
                .filter(|p| !p.fixed_ips.iter().any(|f| f.subnet == subnet_id))
                .map(|p| p.id)
                .collect();
            (auto, ports)
        });
        if !auto {
            return Ok(());
        }
        for port_id in ports {
            let ip = self.with_state(|st| {
                let ip = crate::port::eui64(&st.subnets[&subnet_id].cidr, &st.ports[&port_id].mac);
                st.allocate_ip(subnet_id, Some(ip), false)
            })?;
            let r = self
                .exec(report, |st| {
                    let mut port = st.ports[&port_id].clone();
                    port.fixed_ips.push(FixedIp { subnet: subnet_id, ip });
                    // The new IPAllocation row bumps the port's revision, then the port
                    // update does (real Neutron's LSPs are 2 revisions on).
                    port.revision += 2;
                    Ok(Some(crate::port::plan_lsp_update(
                        st,
                        port,
                        "subnet create auto-address port",
                    )?))
                })
                .await;
            if r.is_err() {
                self.with_state(|st| st.release_ip(subnet_id, ip));
            }
            r?;
        }
        Ok(())
    }

    /// `subnet delete`: ports that got an address automatically (the metadata port; every
    /// port of a SLAAC/DHCPv6-stateless subnet) lose it (one LSP update each), then the
    /// subnet's DHCP_Options row goes.
    pub async fn subnet_delete(&self, subnet: &str) -> Result<ActionReport> {
        self.action("subnet delete", |mut report| async move {
            let (subnet_id, updates) = self.with_state(|st| -> Result<_> {
                let s = st.subnet(subnet)?;
                let auto = matches!(s.ipv6_address_mode.as_deref(), Some("slaac" | "dhcpv6-stateless"));
                let mut updates = Vec::new();
                for p in st
                    .ports
                    .values()
                    .filter(|p| p.fixed_ips.iter().any(|f| f.subnet == s.id))
                {
                    let automatic =
                        p.kind == PortKind::Metadata || (auto && !matches!(p.kind, PortKind::RouterInterface { .. }));
                    if !automatic {
                        return Err(Error::InUse {
                            what: format!("subnet {}", s.name),
                            why: format!("port {} ({}) has an address in it", p.id, p.device_owner),
                        });
                    }
                    updates.push(p.id);
                }
                if let Some(f) = st.floating_ips.values().find(|f| f.subnet == s.id) {
                    return Err(Error::InUse {
                        what: format!("subnet {}", s.name),
                        why: format!("floating IP {} is allocated from it", f.ip),
                    });
                }
                Ok((s.id, updates))
            })?;
            for port_id in updates {
                let metadata = self.with_state(|st| st.ports[&port_id].kind == PortKind::Metadata);
                if metadata {
                    // Neutron deletes the metadata port's (auto-delete owner) allocation in the
                    // DB only (the IPAllocation row bumps the port's revision); its LSP is not
                    // rewritten (seen in real Neutron 21.0.0 dumps, corpus basic-v4).
                    self.with_state(|st| {
                        if let Some(p) = st.ports.get_mut(&port_id) {
                            let freed: Vec<IpAddr> = p
                                .fixed_ips
                                .iter()
                                .filter(|f| f.subnet == subnet_id)
                                .map(|f| f.ip)
                                .collect();
                            p.fixed_ips.retain(|f| f.subnet != subnet_id);
                            p.revision += 1;
                            for ip in freed {
                                st.release_ip(subnet_id, ip);
                            }
                        }
                    });
                    continue;
                }
                self.exec(&mut report, |st| {
                    let mut port = st.ports[&port_id].clone();
                    let freed: Vec<IpAddr> = port
                        .fixed_ips
                        .iter()
                        .filter(|f| f.subnet == subnet_id)
                        .map(|f| f.ip)
                        .collect();
                    port.fixed_ips.retain(|f| f.subnet != subnet_id);
                    port.revision += 1;
                    let mut planned = crate::port::plan_lsp_update(st, port, "subnet delete port address")?;
                    let inner = planned.commit;
                    planned.commit = Box::new(move |st, r| {
                        inner(st, r);
                        for ip in freed {
                            st.release_ip(subnet_id, ip);
                        }
                    });
                    Ok(Some(planned))
                })
                .await?;
            }
            let has_dhcp = self.with_state(|st| st.subnets[&subnet_id].dhcp_options.is_some());
            if has_dhcp {
                self.exec(&mut report, |st| Ok(plan_dhcp_delete(st, subnet_id))).await?;
            } else {
                self.with_state(|st| unreserve_subnet(st, subnet_id));
            }
            Ok(report)
        })
        .await
    }
}

fn provider_of(st: &mut State, spec: &NetworkSpec) -> Result<Option<Provider>> {
    let network_type = match spec.network_type.as_deref() {
        None | Some("geneve") => {
            if spec.physical_network.is_some() {
                return Err(Error::invalid(
                    "--provider-physical-network",
                    "only flat and vlan networks have a physical network",
                ));
            }
            return Ok(None);
        }
        Some("flat") => NetworkType::Flat,
        Some("vlan") => match spec.segmentation_id {
            Some(tag) if (1..=4094).contains(&tag) => {
                let physnet = spec.physical_network.as_deref().unwrap_or_default();
                if let Some(user) = vlan_user(st, physnet, tag) {
                    return Err(Error::InUse {
                        what: format!("VLAN {tag} on physical network {physnet}"),
                        why: format!("network {} has it (Neutron's 409)", user.name),
                    });
                }
                NetworkType::Vlan(tag)
            }
            Some(tag) => {
                return Err(Error::invalid(
                    "--provider-segment",
                    format!("VLAN id {tag} is not in 1..4094"),
                ))
            }
            None => return Err(Error::invalid("--provider-segment", "a vlan network needs a VLAN id")),
        },
        Some(other) => {
            return Err(Error::invalid(
                "--provider-network-type",
                format!("{other:?} is not one of geneve, flat, vlan (the configured type drivers)"),
            ))
        }
    };
    let physnet = spec
        .physical_network
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::invalid("--provider-physical-network", "flat and vlan networks need one"))?;
    Ok(Some(Provider {
        network_type,
        physnet,
        segment: st.new_id(),
    }))
}

/// T1b: the Logical_Switch, plus the localnet port of a provider network, in one transaction.
pub fn plan_logical_switch(network: Network) -> Planned {
    let mut txn = Transaction::new(nb::NB);
    let ext = ls_external_ids(&network);
    let other = map_of([
        ("mcast_snoop", "false".to_owned()),
        ("mcast_flood_unregistered", "false".to_owned()),
        ("vlan-passthru", "false".to_owned()),
    ]);
    let ls = txn.insert(
        nb::LOGICAL_SWITCH,
        Row::new()
            .with("name", format!("neutron-{}", network.id))
            .with("external_ids", smap(&ext))
            .with("other_config", smap(&other)),
    );
    if let Some(p) = &network.provider {
        let mut row = Row::new()
            .with("name", format!("provnet-{}", p.segment))
            .with("type", "localnet")
            .with("addresses", strs(["unknown"]))
            .with(
                "options",
                smap(&map_of([
                    ("network_name", p.physnet.clone()),
                    ("mcast_flood_reports", "true".to_owned()),
                    ("mcast_flood", "false".to_owned()),
                ])),
            );
        if let NetworkType::Vlan(tag) = p.network_type {
            row.set("tag", i64::from(tag));
        }
        let lsp = txn.insert(nb::LOGICAL_SWITCH_PORT, row);
        nb::mutate_ref(&mut txn, nb::LOGICAL_SWITCH, ls.clone(), "ports", true, lsp);
    }
    let (ls_name, ls_revision) = (format!("neutron-{}", network.id), network.revision);
    Planned::new("T1b Logical_Switch", txn, move |st, r| {
        let mut network = network;
        network.ls = nb::inserted(r, &ls);
        st.networks.insert(network.id, network);
    })
    .landed_if(nb::LOGICAL_SWITCH, ls_name, ls_revision)
}

fn reserve_subnet(st: &mut State, spec: &SubnetSpec) -> Result<Id> {
    let net = st.network(&spec.network)?;
    let net_id = net.id;
    let cidr: IpNet = spec.cidr.parse().map_err(|_| {
        Error::invalid(
            "--subnet-range",
            format!("{:?} is not a CIDR (e.g. 10.0.0.0/24)", spec.cidr),
        )
    })?;
    if cidr.trunc() != cidr {
        return Err(Error::invalid(
            "--subnet-range",
            format!("{cidr} has host bits set; did you mean {}?", cidr.trunc()),
        ));
    }
    if cidr.hosts().next().is_none() {
        return Err(Error::invalid(
            "--subnet-range",
            format!("{cidr} has no host addresses"),
        ));
    }
    if spec.ipv6_address_mode.is_some() && matches!(cidr, IpNet::V4(_)) {
        return Err(Error::invalid("--ipv6-address-mode", "only for IPv6 subnets"));
    }
    if let Some(m) = spec.ipv6_address_mode.as_deref() {
        if !["slaac", "dhcpv6-stateful", "dhcpv6-stateless"].contains(&m) {
            return Err(Error::invalid(
                "--ipv6-address-mode",
                format!("{m:?} is not slaac, dhcpv6-stateful or dhcpv6-stateless"),
            ));
        }
    }
    for other in net.subnets.iter().filter_map(|s| st.subnets.get(s)) {
        if other.cidr.contains(&cidr.network()) || cidr.contains(&other.cidr.network()) {
            return Err(Error::CidrOverlap {
                cidr: cidr.to_string(),
                other: other.name.clone(),
                other_cidr: other.cidr.to_string(),
            });
        }
    }
    let gateway = match &spec.gateway {
        // IPv4: the first address after the network one. IPv6: the network address itself
        // (the subnet-router anycast address), as Neutron's `_gateway_ip_str` picks when the
        // request says ip_version 6, which the openstack CLI always sends for an IPv6 range.
        SubnetGateway::Auto if !cidr.addr().is_ipv4() => Some(cidr.network()),
        SubnetGateway::Auto => cidr.hosts().find(|ip| *ip != cidr.network()),
        SubnetGateway::None => None,
        SubnetGateway::Ip(ip) => {
            if !cidr.contains(ip) {
                return Err(Error::invalid("--gateway", format!("{ip} is not in {cidr}")));
            }
            Some(*ip)
        }
    };
    for (start, end) in &spec.allocation_pools {
        if !cidr.contains(start) || !cidr.contains(end) || start > end {
            return Err(Error::invalid(
                "--allocation-pool",
                format!("start={start},end={end} is not a range inside {cidr}"),
            ));
        }
        if gateway.is_some_and(|g| *start <= g && g <= *end) {
            return Err(Error::invalid(
                "--allocation-pool",
                format!("start={start},end={end} contains the gateway; Neutron refuses that"),
            ));
        }
    }
    let project = spec.project.clone().unwrap_or_else(|| net.project.clone());
    let allocation_pools = if spec.allocation_pools.is_empty() {
        crate::model::default_pools(&cidr, gateway)
    } else {
        spec.allocation_pools.clone()
    };
    let id = st.new_id();
    let server_mac = st.new_mac();
    let mut allocated = BTreeSet::new();
    allocated.extend(gateway);
    st.subnets.insert(
        id,
        Subnet {
            id,
            name: spec.name.clone(),
            network: net_id,
            project,
            cidr,
            gateway,
            enable_dhcp: spec.enable_dhcp,
            ipv6_address_mode: spec.ipv6_address_mode.clone(),
            dns_nameservers: spec.dns_nameservers.clone(),
            allocation_pools,
            host_routes: spec.host_routes.clone(),
            revision: 0,
            dhcp_options: None,
            server_mac,
            allocated,
        },
    );
    if let Some(n) = st.networks.get_mut(&net_id) {
        n.subnets.push(id);
    }
    Ok(id)
}

fn unreserve_subnet(st: &mut State, id: Id) {
    if let Some(s) = st.subnets.remove(&id) {
        st.release_mac(&s.server_mac);
        if let Some(n) = st.networks.get_mut(&s.network) {
            n.subnets.retain(|x| *x != id);
        }
    }
}

/// T2: `wait` on the metadata LSP, DHCP_Options insert, metadata LSP update (new address),
/// `neutron_pg_drop` mutate-delete of the (trusted) metadata port.
/// `point_ports`: LSPs to point at the new row (`subnet set --dhcp`).
pub fn plan_subnet_v4_dhcp(
    st: &State,
    subnet_id: Id,
    mdp: Id,
    metadata_ip: IpAddr,
    point_ports: &[RowId],
) -> Result<Planned> {
    let subnet = &st.subnets[&subnet_id];
    let net = &st.networks[&subnet.network];
    let old = &st.ports[&mdp];
    let mut port = old.clone();
    port.fixed_ips.push(FixedIp {
        subnet: subnet_id,
        ip: metadata_ip,
    });
    sort_metadata_ips(&mut port);
    port.revision += 1;
    let mut txn = Transaction::new(nb::NB);
    nb::verify_external_ids(
        &mut txn,
        nb::LOGICAL_SWITCH_PORT,
        old.lsp,
        &nb::lsp_external_ids(st, old),
    );
    let options = nb::dhcpv4_options(st, subnet, net.mtu, Some(metadata_ip));
    let dhcp = txn.insert(nb::DHCP_OPTIONS, nb::dhcp_insert_row(subnet, &options));
    for lsp in point_ports {
        txn.update(
            nb::LOGICAL_SWITCH_PORT,
            vec![Condition::uuid(*lsp)],
            Row::new().with("dhcpv4_options", dhcp.clone()),
        );
    }
    txn.update(
        nb::LOGICAL_SWITCH_PORT,
        vec![Condition::uuid(port.lsp)],
        nb::lsp_update_row(st, &port),
    );
    nb::mutate_ref(
        &mut txn,
        nb::PORT_GROUP,
        Value::uuid(pg_drop(st)?),
        "ports",
        false,
        Value::uuid(port.lsp),
    );
    let (landed, revision) = dhcp_landed(subnet);
    Ok(
        Planned::new("T2 subnet DHCP_Options + metadata port", txn, move |st, r| {
            if let Some(s) = st.subnets.get_mut(&subnet_id) {
                s.dhcp_options = Some(nb::inserted(r, &dhcp));
            }
            st.ports.insert(port.id, port);
        })
        .landed_by(nb::DHCP_OPTIONS, subnet_id.to_string(), landed, Some(revision)),
    )
}

/// DHCPv6 subnets: the DHCP_Options row alone; `point_ports`: LSPs to point at the new row
/// (`subnet set --dhcp`).
pub fn plan_subnet_v6_dhcp(st: &State, subnet_id: Id, point_ports: &[RowId]) -> Planned {
    let subnet = &st.subnets[&subnet_id];
    let mut txn = Transaction::new(nb::NB);
    let dhcp = txn.insert(
        nb::DHCP_OPTIONS,
        nb::dhcp_insert_row(subnet, &nb::dhcpv6_options(subnet)),
    );
    for lsp in point_ports {
        txn.update(
            nb::LOGICAL_SWITCH_PORT,
            vec![Condition::uuid(*lsp)],
            Row::new().with("dhcpv6_options", dhcp.clone()),
        );
    }
    let (landed, revision) = dhcp_landed(subnet);
    Planned::new("subnet DHCPv6 DHCP_Options", txn, move |st, r| {
        if let Some(s) = st.subnets.get_mut(&subnet_id) {
            s.dhcp_options = Some(nb::inserted(r, &dhcp));
        }
    })
    .landed_by(nb::DHCP_OPTIONS, subnet_id.to_string(), landed, Some(revision))
}

/// How a subnet's DHCP_Options row is found (it has no name: by the subnet id Neutron writes in
/// its `external_ids`), and the revision it is written with.
fn dhcp_landed(subnet: &Subnet) -> (Condition, i64) {
    let id = subnet.id.to_string();
    (
        Condition::includes("external_ids", Value::string_map([("subnet_id", id.as_str())])),
        subnet.revision,
    )
}

/// Deletes a subnet's DHCP_Options row (if any) and forgets the subnet.
pub fn plan_dhcp_delete(st: &State, subnet_id: Id) -> Option<Planned> {
    let subnet = st.subnets.get(&subnet_id)?;
    let mut txn = Transaction::new(nb::NB);
    if let Some(row) = subnet.dhcp_options {
        txn.delete(nb::DHCP_OPTIONS, vec![Condition::uuid(row)]);
    }
    Some(Planned::new("subnet delete DHCP_Options", txn, move |st, _| {
        // Like a create or update, the delete bumps the network's revision (unwritten; seen
        // at the next `network set` in real Neutron 21.0.0, corpus network-sg-set).
        if let Some(n) = st.subnets.get(&subnet_id).and_then(|s| st.networks.get_mut(&s.network)) {
            n.revision += 1;
        }
        unreserve_subnet(st, subnet_id);
    }))
}

/// Neutron's refusals of `network set --no-share` / `--internal` (409s): unsharing while
/// another project has a port (its `network:*` ports excepted) or a subnet on the network
/// (`_validate_shared_update`; project RBAC entries are not modelled), making it internal while
/// router gateway ports are on it (`ExternalNetworkInUse`).
fn check_network_flags_update(st: &State, net: &Network, update: &NetworkUpdate) -> Result<()> {
    if update.shared == Some(false) && net.shared {
        let foreign_port = st
            .ports
            .values()
            .find(|p| p.network == net.id && !p.device_owner.starts_with("network:") && p.project != net.project);
        let foreign_subnet = net
            .subnets
            .iter()
            .filter_map(|s| st.subnets.get(s))
            .find(|s| s.project != net.project);
        let user = foreign_port
            .map(|p| format!("port {} of project {}", p.id, p.project))
            .or_else(|| foreign_subnet.map(|s| format!("subnet {} of project {}", s.name, s.project)));
        if let Some(user) = user {
            return Err(Error::InUse {
                what: format!("network {}", net.name),
                why: format!("cannot unshare it: {user} uses it (delete it first)"),
            });
        }
    }
    if update.external == Some(false) && net.external {
        if let Some(gw) = st
            .ports
            .values()
            .find(|p| p.network == net.id && p.device_owner == nb::OWNER_ROUTER_GATEWAY)
        {
            return Err(Error::InUse {
                what: format!("network {}", net.name),
                why: format!(
                    "cannot make it internal: router gateway port {} is on it (unset the gateway first)",
                    gw.id
                ),
            });
        }
    }
    Ok(())
}

/// `openstack network set` (what changes the NB: the Logical_Switch's name, MTU and revision;
/// an MTU change also rewrites the MTU in the network's DHCPv4 options).
#[derive(Clone, Debug, Default)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub mtu: Option<u32>,
    /// `--enable-port-security` / `--disable-port-security`: the default of new ports only
    /// (existing ports keep theirs).
    pub port_security: Option<bool>,
    /// `--description` (not in the NB, but the update bumps the revision).
    pub description: Option<String>,
    /// `--share` / `--no-share` (not in the NB; the update bumps the revision). Unsharing is
    /// refused while another project has a port (other than `network:*` ones) or a subnet on it.
    pub shared: Option<bool>,
    /// `--external` / `--internal` (`router:external`, not in the NB; the update bumps the
    /// revision). Making a network internal is refused while router gateways use it.
    pub external: Option<bool>,
    /// `--provider-network-type`: ML2 refuses any change (400); the current type is accepted.
    pub network_type: Option<String>,
    /// `--provider-physical-network`: as `network_type`.
    pub physical_network: Option<String>,
    /// `--provider-segment`: a VLAN network's new VLAN id (its localnet port's `tag`); refused
    /// on other types (400), out of 1..4094 (400), or in use on the physnet (409, its own
    /// current id included).
    pub segmentation_id: Option<u32>,
}

impl NetworkUpdate {
    fn only_provider_attributes(&self) -> bool {
        self.name.is_none()
            && self.mtu.is_none()
            && self.port_security.is_none()
            && self.description.is_none()
            && self.shared.is_none()
            && self.external.is_none()
    }
}

/// ML2's checks of a provider attribute update (`_update_provider_network_attributes`,
/// `update_network_segment`); the new VLAN id on success.
fn check_provider_update(st: &State, net: &Network, update: &NetworkUpdate) -> Result<Option<u16>> {
    let (current_type, current_physnet) = match &net.provider {
        None => ("geneve", None),
        Some(p) => (
            match p.network_type {
                NetworkType::Geneve => "geneve",
                NetworkType::Flat => "flat",
                NetworkType::Vlan(_) => "vlan",
            },
            Some(p.physnet.as_str()),
        ),
    };
    let unsupported = "Neutron's ML2 does not update provider network types or physical networks (400)";
    if update.network_type.as_deref().is_some_and(|t| t != current_type) {
        return Err(Error::invalid("--provider-network-type", unsupported));
    }
    if update
        .physical_network
        .as_deref()
        .is_some_and(|p| Some(p) != current_physnet)
    {
        return Err(Error::invalid("--provider-physical-network", unsupported));
    }
    // The API takes 0 as "not set".
    let Some(tag) = update.segmentation_id.filter(|t| *t != 0) else {
        return Ok(None);
    };
    let Some(Provider {
        network_type: NetworkType::Vlan(_),
        physnet,
        ..
    }) = &net.provider
    else {
        return Err(Error::invalid(
            "--provider-segment",
            "only VLAN networks' segments can be updated (Neutron's 400)",
        ));
    };
    let tag = u16::try_from(tag)
        .ok()
        .filter(|t| (1..=4094).contains(t))
        .ok_or_else(|| Error::invalid("--provider-segment", format!("VLAN id {tag} is not in 1..4094")))?;
    if let Some(user) = vlan_user(st, physnet, tag) {
        return Err(Error::InUse {
            what: format!("VLAN {tag} on physical network {physnet}"),
            why: format!("network {} has it (Neutron's 409)", user.name),
        });
    }
    Ok(Some(tag))
}

/// The network that has VLAN `tag` on `physnet`, if any.
fn vlan_user<'a>(st: &'a State, physnet: &str, tag: u16) -> Option<&'a Network> {
    st.networks.values().find(|n| {
        n.provider
            .as_ref()
            .is_some_and(|p| p.physnet == physnet && p.network_type == NetworkType::Vlan(tag))
    })
}

/// A list option of `subnet set|unset`, as the openstack CLI builds the new list: the current
/// one (emptied first with `clear`, the `--no-...` flag), minus `remove` (`unset`), plus `add`.
#[derive(Clone, Debug, PartialEq)]
pub struct ListEdit<T> {
    pub clear: bool,
    pub add: Vec<T>,
    pub remove: Vec<T>,
}

impl<T> Default for ListEdit<T> {
    fn default() -> Self {
        ListEdit {
            clear: false,
            add: vec![],
            remove: vec![],
        }
    }
}

impl<T: PartialEq + Clone + std::fmt::Debug> ListEdit<T> {
    /// The new list, the added entries after the kept ones (`prepend`: before them, as the
    /// CLI orders DNS servers); `Err(entry)` when `remove` names an entry the list does not
    /// have (the CLI refuses that before it sends anything).
    fn apply(&self, list: &[T], prepend: bool) -> std::result::Result<Vec<T>, T> {
        if let Some(missing) = self.remove.iter().find(|r| !list.contains(r)) {
            return Err(missing.clone());
        }
        let mut kept: Vec<T> = if self.clear { vec![] } else { list.to_vec() };
        kept.retain(|x| !self.remove.contains(x));
        let added: Vec<T> = self.add.iter().filter(|a| !kept.contains(a)).cloned().collect();
        Ok(if prepend {
            added.into_iter().chain(kept).collect()
        } else {
            kept.into_iter().chain(added).collect()
        })
    }
}

/// `openstack subnet set` / `subnet unset`.
#[derive(Clone, Debug, Default)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `--gateway IP|none`.
    pub gateway: Option<SubnetGateway>,
    /// `--dhcp` / `--no-dhcp`.
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: ListEdit<String>,
    pub host_routes: ListEdit<(String, String)>,
    pub allocation_pools: ListEdit<(IpAddr, IpAddr)>,
}

/// The metadata port's address in `subnet`, if it has one.
fn metadata_ip_in(st: &State, subnet: &Subnet) -> Option<IpAddr> {
    let mdp = st.networks.get(&subnet.network)?.metadata_port?;
    st.ports
        .get(&mdp)?
        .fixed_ips
        .iter()
        .find(|f| f.subnet == subnet.id)
        .map(|f| f.ip)
}

/// Rewrites `subnet`'s DHCP_Options row (options and revision), as Neutron does on every
/// subnet update; `None` when the subnet has no row.
fn dhcp_rewrite(st: &State, txn: &mut Transaction, subnet: &Subnet, mtu: u32) {
    let Some(row) = subnet.dhcp_options else { return };
    let options = if subnet.is_v4() {
        nb::dhcpv4_options(st, subnet, mtu, metadata_ip_in(st, subnet))
    } else {
        nb::dhcpv6_options(subnet)
    };
    let ext = map_of([
        ("subnet_id", subnet.id.to_string()),
        (nb::REVISION, subnet.revision.to_string()),
    ]);
    txn.update(
        nb::DHCP_OPTIONS,
        vec![Condition::uuid(row)],
        Row::new()
            .with("external_ids", smap(&ext))
            .with("options", smap(&options)),
    );
}

impl Neutron {
    /// `network set`: the network's revision rises by one and its Logical_Switch is
    /// rewritten; an MTU change also rewrites the DHCP options of its subnets.
    pub async fn network_set(&self, network: &str, update: NetworkUpdate) -> Result<ActionReport> {
        self.action("network set", |mut report| async move {
            let (net_id, mtu_changes, new_vlan) = self.with_state(|st| -> Result<_> {
                let net = st.network(network)?;
                if let Some(mtu) = update.mtu {
                    let max = st.mtu_for(net.provider.as_ref());
                    if mtu > max || mtu < 68 {
                        return Err(Error::invalid(
                            "--mtu",
                            format!("{mtu} is out of range: the network type allows 68 to {max} (Neutron's 400)"),
                        ));
                    }
                    if mtu != net.mtu && st.ports.values().any(|p| p.network == net.id && p.lrp.is_some()) {
                        return Err(Error::invalid(
                            "--mtu",
                            "changing the MTU of a network with router interfaces or gateways (their router ports) is not modelled; set it before `router add subnet`",
                        ));
                    }
                }
                check_network_flags_update(st, net, &update)?;
                let new_vlan = check_provider_update(st, net, &update)?;
                Ok((net.id, update.mtu.is_some_and(|m| m != net.mtu), new_vlan))
            })?;
            self.exec(&mut report, |st| {
                let mut net = st.networks[&net_id].clone();
                if let Some(name) = &update.name {
                    net.name = name.clone();
                }
                if let Some(ps) = update.port_security {
                    net.port_security = ps;
                }
                if let Some(shared) = update.shared {
                    net.shared = shared;
                }
                if let Some(external) = update.external {
                    net.external = external;
                }
                let mtu_changed = update.mtu.is_some_and(|m| m != net.mtu);
                if let Some(mtu) = update.mtu {
                    net.mtu = mtu;
                }
                // A provider segment update changes the segment's row, not the network's: no
                // revision bump (real Neutron 21.0.0, corpus network-provider-set).
                if !update.only_provider_attributes() {
                    net.revision += 1;
                }
                let mut txn = Transaction::new(nb::NB);
                txn.update(
                    nb::LOGICAL_SWITCH,
                    vec![Condition::uuid(net.ls)],
                    Row::new().with("external_ids", smap(&ls_external_ids(&net))),
                );
                if mtu_changed {
                    for subnet in net.subnets.iter().filter_map(|s| st.subnets.get(s)) {
                        if subnet.is_v4() {
                            dhcp_rewrite(st, &mut txn, subnet, net.mtu);
                        }
                    }
                }
                // Neutron sets every segment's tag on its localnet port at each network update
                // (a change only when the VLAN id moved).
                if let (Some(tag), Some(p)) = (new_vlan, net.provider.as_mut()) {
                    p.network_type = NetworkType::Vlan(tag);
                    txn.update(
                        nb::LOGICAL_SWITCH_PORT,
                        vec![Condition::eq("name", format!("provnet-{}", p.segment).as_str())],
                        Row::new().with("tag", i64::from(tag)),
                    );
                }
                Ok(Some(Planned::new("network set Logical_Switch", txn, move |st, _| {
                    st.networks.insert(net.id, net);
                })))
            })
            .await?;
            if mtu_changes {
                // The MTU change runs Neutron's subnet DHCP update for each subnet, which gives
                // the metadata port an address in DHCP subnets it has none in (DHCPv6-stateful).
                let subnets = self.with_state(|st| st.networks[&net_id].subnets.clone());
                for subnet_id in subnets {
                    self.metadata_port_fill(&mut report, subnet_id).await?;
                }
            }
            report.id = Some(net_id);
            Ok(report)
        })
        .await
    }

    /// `subnet set` / `subnet unset`: the subnet's revision rises by one and its DHCP_Options
    /// row is rewritten (options and revision). `--no-dhcp` deletes the row and takes the
    /// metadata port's address away; `--dhcp` gives the metadata port the lowest free pool
    /// address, creates the row (a new server MAC) and points the subnet's other ports at it.
    pub async fn subnet_set(&self, subnet: &str, update: SubnetUpdate) -> Result<ActionReport> {
        self.action("subnet set", |mut report| async move {
            let (old, new) = self.with_state(|st| -> Result<_> {
                let old = st.subnet(subnet)?.clone();
                let mut new = old.clone();
                if let Some(name) = &update.name {
                    new.name = name.clone();
                }
                new.dns_nameservers = update
                    .dns_nameservers
                    .apply(&old.dns_nameservers, true)
                    .map_err(|m| Error::invalid("--dns-nameserver", format!("{m} is not a DNS server of the subnet")))?;
                new.host_routes = update.host_routes.apply(&old.host_routes, false).map_err(|(d, g)| {
                    Error::invalid(
                        "--host-route",
                        format!("destination={d},gateway={g} is not a host route of the subnet"),
                    )
                })?;
                new.allocation_pools = update.allocation_pools.apply(&old.allocation_pools, false).map_err(|(a, b)| {
                    Error::invalid(
                        "--allocation-pool",
                        format!("start={a},end={b} is not an allocation pool of the subnet"),
                    )
                })?;
                if let Some(g) = &update.gateway {
                    new.gateway = match g {
                        SubnetGateway::None => None,
                        SubnetGateway::Ip(ip) => Some(*ip),
                        SubnetGateway::Auto => old.gateway,
                    };
                }
                if let Some(dhcp) = update.enable_dhcp {
                    new.enable_dhcp = dhcp;
                }
                if let (Some(false), Some(mode)) = (update.enable_dhcp, &old.ipv6_address_mode) {
                    return Err(Error::invalid(
                        "--no-dhcp",
                        format!(
                            "subnet {} has IPv6 address mode {mode}: Neutron refuses to disable its DHCP (400 \"Cannot disable enable_dhcp with ipv6 attributes set\")",
                            old.name
                        ),
                    ));
                }
                if new.gateway != old.gateway {
                    if let Some(p) = st.ports.values().find(|p| {
                        matches!(p.kind, PortKind::RouterInterface { .. }) && p.fixed_ips.iter().any(|f| f.subnet == old.id)
                    }) {
                        return Err(Error::InUse {
                            what: format!("subnet {}", old.name),
                            why: format!("router interface {} uses its gateway; remove it first", p.id),
                        });
                    }
                    // Neutron's L3 plugin then swaps the default route of every router whose
                    // gateway port is on the subnet (`default_route_swap`); on IPv6 it writes
                    // `0.0.0.0/0` with the IPv6 nexthop and leaves the `::/0` route, which is
                    // not modelled.
                    if let Some(p) = st.ports.values().find(|p| {
                        !old.is_v4()
                            && matches!(p.kind, PortKind::RouterGateway { .. })
                            && p.fixed_ips.iter().any(|f| f.subnet == old.id)
                    }) {
                        return Err(Error::invalid(
                            "--gateway",
                            format!(
                                "changing the gateway of an IPv6 subnet a router gateway port ({}) is on is not modelled (Neutron adds a 0.0.0.0/0 route with the IPv6 nexthop); unset the router's gateway first",
                                p.id
                            ),
                        ));
                    }
                    if let Some(gw) = new.gateway {
                        if !old.cidr.contains(&gw) {
                            return Err(Error::invalid("--gateway", format!("{gw} is not in {}", old.cidr)));
                        }
                        if old.allocated.contains(&gw) {
                            return Err(Error::invalid("--gateway", format!("{gw} is allocated to a port")));
                        }
                    }
                }
                for (i, (start, end)) in new.allocation_pools.iter().enumerate() {
                    if !old.cidr.contains(start) || !old.cidr.contains(end) || start > end {
                        return Err(Error::invalid(
                            "--allocation-pool",
                            format!("start={start},end={end} is not a range inside {}", old.cidr),
                        ));
                    }
                    if new.gateway.is_some_and(|g| *start <= g && g <= *end) {
                        return Err(Error::invalid(
                            "--allocation-pool",
                            format!("start={start},end={end} contains the gateway; Neutron refuses that"),
                        ));
                    }
                    if let Some((a, b)) = new.allocation_pools[..i]
                        .iter()
                        .find(|(a, b)| a <= end && start <= b)
                    {
                        return Err(Error::InUse {
                            what: "--allocation-pool".into(),
                            why: format!("{start}-{end} overlaps {a}-{b} (Neutron's 409)"),
                        });
                    }
                }
                new.revision += 1;
                Ok((old, new))
            })?;
            let subnet_id = old.id;
            let new_gateway = new.gateway;
            let mdp = self.with_state(|st| st.networks.get(&old.network).and_then(|n| n.metadata_port));
            // A switch of `enable_dhcp` (only subnets without an IPv6 address mode get here
            // with `--no-dhcp`, so never SLAAC ones, which have no DHCP_Options row).
            match (old.enable_dhcp, new.enable_dhcp, mdp) {
                (true, false, _) => self.subnet_disable_dhcp(&mut report, new).await?,
                (false, true, Some(mdp)) if new.is_v4() => self.subnet_enable_dhcp(&mut report, new, mdp).await?,
                (false, true, _) if !new.is_v4() => self.subnet_enable_dhcpv6(&mut report, new).await?,
                _ => {
                    self.exec(&mut report, |st| {
                        let mut txn = Transaction::new(nb::NB);
                        let mut new = new;
                        // The gateway moves in the IPAM too.
                        if new.gateway != old.gateway {
                            if let Some(g) = old.gateway {
                                new.allocated.remove(&g);
                            }
                            new.allocated.extend(new.gateway);
                        }
                        let mtu = st.networks.get(&new.network).map(|n| n.mtu).unwrap_or(0);
                        dhcp_rewrite(st, &mut txn, &new, mtu);
                        Ok(Some(Planned::new("subnet set DHCP_Options", txn, move |st, _| {
                            st.subnets.insert(new.id, new);
                        })))
                    })
                    .await?;
                    self.metadata_port_fill(&mut report, subnet_id).await?
                }
            }
            if old.gateway != new_gateway {
                self.exec(&mut report, |st| Ok(default_route_swap(st, subnet_id, old.gateway, new_gateway)))
                    .await?;
            }
            self.with_state(|st| bump_network_revision(st, subnet_id));
            report.id = Some(subnet_id);
            Ok(report)
        })
        .await
    }

    /// Neutron's `update_metadata_port` for one subnet (run on a subnet update): a DHCP
    /// subnet the metadata port has no address in (DHCPv6-stateful: `subnet create` gives
    /// none) gives it the lowest free pool address; one LSP update, one revision on.
    async fn metadata_port_fill(&self, report: &mut ActionReport, subnet_id: Id) -> Result<()> {
        let mdp = self.with_state(|st| {
            let s = st.subnets.get(&subnet_id)?;
            let mdp = st.networks.get(&s.network)?.metadata_port?;
            let port = st.ports.get(&mdp)?;
            (s.enable_dhcp && !port.fixed_ips.iter().any(|f| f.subnet == subnet_id)).then_some(mdp)
        });
        let Some(mdp) = mdp else { return Ok(()) };
        let ip = self.with_state(|st| st.allocate_ip(subnet_id, None, true))?;
        let r = self
            .exec(report, |st| {
                let mut port = st.ports[&mdp].clone();
                port.fixed_ips.push(FixedIp { subnet: subnet_id, ip });
                sort_metadata_ips(&mut port);
                port.revision += 1;
                Ok(Some(crate::port::plan_lsp_update(st, port, "metadata port address")?))
            })
            .await;
        if r.is_err() {
            self.with_state(|st| st.release_ip(subnet_id, ip));
        }
        r
    }

    /// `subnet set --no-dhcp` (IPv4, or IPv6 without an address mode): the metadata port
    /// loses its address in the subnet if it has one (its LSP
    /// is rewritten, one revision on) and the DHCP_Options row goes (the ports' weak
    /// references to it with it).
    async fn subnet_disable_dhcp(&self, report: &mut ActionReport, mut new: Subnet) -> Result<()> {
        self.exec(report, |st| {
            let mut txn = Transaction::new(nb::NB);
            if let Some(row) = new.dhcp_options.take() {
                txn.delete(nb::DHCP_OPTIONS, vec![Condition::uuid(row)]);
            }
            let mdp = st
                .networks
                .get(&new.network)
                .and_then(|n| n.metadata_port)
                .and_then(|m| st.ports.get(&m))
                .filter(|p| p.fixed_ips.iter().any(|f| f.subnet == new.id))
                .cloned();
            let mut freed = None;
            let mut port_after = None;
            if let Some(mut port) = mdp {
                freed = port.fixed_ips.iter().find(|f| f.subnet == new.id).map(|f| f.ip);
                port.fixed_ips.retain(|f| f.subnet != new.id);
                port.revision += 1;
                let planned = crate::port::plan_lsp_update(st, port.clone(), "subnet set --no-dhcp metadata port")?;
                for op in planned.txn.operations() {
                    txn.push(op.clone());
                }
                port_after = Some(port);
            }
            Ok(Some(Planned::new("subnet set --no-dhcp", txn, move |st, _| {
                if let Some(ip) = freed {
                    new.allocated.remove(&ip);
                }
                st.subnets.insert(new.id, new);
                if let Some(p) = port_after {
                    st.ports.insert(p.id, p);
                }
            })))
        })
        .await
    }

    /// `subnet set --dhcp` of an IPv6 subnet without DHCP (one without an address mode): the
    /// metadata port takes the lowest free pool address (its LSP rewritten, revision +1),
    /// then a DHCP_Options row with a new server MAC, the subnet's other ports pointed at it.
    async fn subnet_enable_dhcpv6(&self, report: &mut ActionReport, mut new: Subnet) -> Result<()> {
        let subnet_id = new.id;
        let old = self.with_state(|st| {
            new.server_mac = st.new_mac();
            st.subnets.insert(subnet_id, new)
        });
        let r = async {
            self.metadata_port_fill(report, subnet_id).await?;
            self.exec(report, |st| {
                let mdp = st
                    .subnets
                    .get(&subnet_id)
                    .and_then(|s| st.networks.get(&s.network)?.metadata_port);
                let ports: Vec<RowId> = st
                    .ports
                    .values()
                    .filter(|p| {
                        Some(p.id) != mdp && !nb::is_trusted(p) && p.fixed_ips.iter().any(|f| f.subnet == subnet_id)
                    })
                    .map(|p| p.lsp)
                    .collect();
                Ok(Some(plan_subnet_v6_dhcp(st, subnet_id, &ports)))
            })
            .await
        }
        .await;
        if r.is_err() {
            self.with_state(|st| {
                if let Some(old) = old {
                    st.subnets.insert(subnet_id, old);
                }
            });
        }
        r
    }

    /// `subnet set --dhcp` of an IPv4 subnet without DHCP: as `subnet create` with DHCP (the
    /// metadata port's address, a DHCP_Options row with a new server MAC), plus every port of
    /// the subnet (network-owned ones excepted) pointed at the new row.
    async fn subnet_enable_dhcp(&self, report: &mut ActionReport, mut new: Subnet, mdp: Id) -> Result<()> {
        let subnet_id = new.id;
        let old = self.with_state(|st| {
            new.server_mac = st.new_mac();
            st.subnets.insert(subnet_id, new.clone())
        });
        let ip = self.with_state(|st| st.allocate_ip(subnet_id, None, true));
        let r = match ip {
            Ok(ip) => {
                let r = self
                    .exec(report, |st| {
                        let ports: Vec<RowId> = st
                            .ports
                            .values()
                            .filter(|p| {
                                p.id != mdp && !nb::is_trusted(p) && p.fixed_ips.iter().any(|f| f.subnet == subnet_id)
                            })
                            .map(|p| p.lsp)
                            .collect();
                        let planned = plan_subnet_v4_dhcp(st, subnet_id, mdp, ip, &ports)?;
                        Ok(Some(planned))
                    })
                    .await;
                if r.is_err() {
                    self.with_state(|st| st.release_ip(subnet_id, ip));
                }
                r
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.with_state(|st| {
                if let Some(old) = old {
                    let mac = st.subnets.get(&subnet_id).map(|s| s.server_mac.clone());
                    if let Some(mac) = mac {
                        st.release_mac(&mac);
                    }
                    st.subnets.insert(subnet_id, old);
                }
            });
        }
        r
    }
}

/// The L3 plugin's answer to a subnet's gateway change (`_subnet_update`): one transaction
/// deleting, in every router whose gateway port is on the subnet, the route `0.0.0.0/0` via
/// the old gateway and adding one via the new gateway (a plain route, no `external_ids`); no
/// router revision change. IPv4 subnets only (IPv6 ones are refused before).
fn default_route_swap(st: &State, subnet_id: Id, old: Option<IpAddr>, new: Option<IpAddr>) -> Option<Planned> {
    let routers: Vec<(Id, RowId, RowId)> = st
        .routers
        .values()
        .filter_map(|r| {
            let g = r.gateway.as_ref()?;
            let port = st.ports.get(&g.port)?;
            port.fixed_ips
                .iter()
                .any(|f| f.subnet == subnet_id)
                .then_some((r.id, r.lr, g.route))
        })
        .collect();
    if routers.is_empty() {
        return None;
    }
    let mut txn = Transaction::new(nb::NB);
    let mut added = Vec::new();
    for (router, lr, route) in routers {
        if old.is_some() {
            nb::mutate_ref(
                &mut txn,
                nb::LOGICAL_ROUTER,
                Value::uuid(lr),
                "static_routes",
                false,
                Value::uuid(route),
            );
        }
        if let Some(nexthop) = new {
            let row = txn.insert(
                nb::LOGICAL_ROUTER_STATIC_ROUTE,
                Row::new()
                    .with("ip_prefix", "0.0.0.0/0")
                    .with("nexthop", nexthop.to_string()),
            );
            nb::mutate_ref(
                &mut txn,
                nb::LOGICAL_ROUTER,
                Value::uuid(lr),
                "static_routes",
                true,
                row.clone(),
            );
            added.push((router, Some(row)));
        } else {
            added.push((router, None));
        }
    }
    Some(Planned::new(
        "subnet gateway: routers' default routes",
        txn,
        move |st, res| {
            for (router, row) in added {
                if let Some(g) = st.routers.get_mut(&router).and_then(|r| r.gateway.as_mut()) {
                    // No route: a uuid no row has (removing it later changes nothing).
                    g.route = row
                        .map(|row| nb::inserted(res, &row))
                        .unwrap_or_else(ovsdb::Uuid::new_v4);
                }
            }
        },
    ))
}

/// A subnet create or update bumps its network's revision in Neutron's DB (the Logical_Switch
/// shows it at its next rewrite, `network set`).
fn bump_network_revision(st: &mut State, subnet_id: Id) {
    let net = st.subnets.get(&subnet_id).map(|s| s.network);
    if let Some(n) = net.and_then(|n| st.networks.get_mut(&n)) {
        n.revision += 1;
    }
}

/// Neutron lists the metadata port's addresses in its DB's order, by address text (seen:
/// `10.82.0.2` before a `2001:db8:82::1` given earlier, corpus subnet-set-dhcpv6).
fn sort_metadata_ips(port: &mut Port) {
    port.fixed_ips.sort_by_key(|f| f.ip.to_string());
}

/// The Logical_Switch `external_ids` of a network.
fn ls_external_ids(network: &Network) -> std::collections::BTreeMap<String, String> {
    map_of([
        ("neutron:network_name", network.name.clone()),
        ("neutron:mtu", network.mtu.to_string()),
        (nb::REVISION, network.revision.to_string()),
        ("neutron:availability_zone_hints", String::new()),
    ])
}
