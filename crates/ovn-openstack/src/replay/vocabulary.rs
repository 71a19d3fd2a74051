//! The openstack CLI's vocabulary: one command line (without the word `openstack`, already split
//! into words) → one [`OpenstackCommand`], with the CLI's own option spellings and defaults; and
//! the chassis-side (`ovn:`) steps → [`OvnCommand`]. Pure: nothing is sent anywhere here, so a
//! whole steps file can be checked before its first step runs.
//!
//! Options the openstack CLI takes but whose effect on the NB the mimic does not model are
//! refused by name ([`VocabularyError::NotModelled`]) rather than ignored, so a replay never
//! silently differs from what Neutron would write.

use std::net::IpAddr;

use crate::model::Direction;
use crate::network::{ListEdit, NetworkUpdate, SubnetUpdate};
use crate::{
    AddressPairSpec, FixedIpSpec, GatewaySpec, NetworkSpec, PortSpec, PortUpdate, RoutesEdit, RuleSpec,
    SecurityGroupUpdate, SubnetGateway, SubnetSpec,
};

/// Why a command line is not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VocabularyError {
    #[error("unknown option --{option} for `{command}` (known here: {known})")]
    UnknownOption {
        command: String,
        option: String,
        known: String,
    },
    #[error("option --{option} of `{command}` is accepted by the openstack CLI but its effect is not modelled by the mimic; leave it out (see docs/openstack.md, \"Not modelled\")")]
    NotModelled { command: String, option: String },
    #[error("`{command}`: {why}")]
    Invalid { command: String, why: String },
    #[error("unsupported openstack command {line:?} (see docs/openstack.md for the supported ones)")]
    UnknownCommand { line: String },
    #[error("unsupported ovn step {line:?} (register-chassis, heartbeat, sync, claim-gateway, claim-port)")]
    UnknownOvnStep { line: String },
}

/// The object kinds `show NAME_OR_ID [--project P]` looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Network,
    Subnet,
    Port,
    Router,
    SecurityGroup,
    FloatingIp,
}

/// One openstack CLI command, as the mimic runs it.
#[derive(Clone, Debug)]
pub enum OpenstackCommand {
    NetworkCreate(NetworkSpec),
    NetworkDelete(Vec<String>),
    NetworkSet {
        network: String,
        update: NetworkUpdate,
    },
    SubnetCreate(SubnetSpec),
    /// `subnet set` and `subnet unset` (the latter only removes list entries).
    SubnetSet {
        subnet: String,
        update: SubnetUpdate,
    },
    SubnetDelete(Vec<String>),
    RouterCreate {
        name: String,
        project: Option<String>,
        /// `router create --external-gateway ...` (the CLI's create-time gateway).
        gateway: Option<GatewaySpec>,
    },
    RouterDelete(Vec<String>),
    RouterSetGateway {
        router: String,
        gateway: GatewaySpec,
    },
    RouterRoutes {
        router: String,
        edit: RoutesEdit,
    },
    RouterRename {
        router: String,
        name: String,
    },
    RouterAddPort {
        router: String,
        port: String,
    },
    RouterRemovePort {
        router: String,
        port: String,
    },
    RouterUnsetGateway {
        router: String,
    },
    RouterAddSubnet {
        router: String,
        subnet: String,
    },
    RouterRemoveSubnet {
        router: String,
        subnet: String,
    },
    PortCreate(PortSpec),
    PortSet {
        port: String,
        update: PortUpdate,
    },
    PortDelete(Vec<String>),
    ServerCreate {
        name: String,
        network: String,
        host: String,
        fixed_ip: Option<IpAddr>,
    },
    ServerDelete(Vec<String>),
    FloatingIpCreate {
        network: String,
        ip: Option<IpAddr>,
        port: Option<String>,
        fixed_ip: Option<IpAddr>,
    },
    FloatingIpSet {
        fip: String,
        port: String,
        fixed_ip: Option<IpAddr>,
    },
    FloatingIpUnset {
        fip: String,
    },
    FloatingIpDelete(Vec<String>),
    SecurityGroupCreate {
        name: String,
        project: Option<String>,
        stateful: bool,
    },
    /// Names resolve in `project` (every project has a `default`).
    SecurityGroupSet {
        group: String,
        project: Option<String>,
        update: SecurityGroupUpdate,
    },
    /// Names resolve in `project` (every project has a `default`).
    SecurityGroupDelete {
        groups: Vec<String>,
        project: Option<String>,
    },
    SecurityGroupRuleCreate(RuleSpec),
    SecurityGroupRuleDelete(Vec<String>),
    /// `X show NAME_OR_ID [--project P]`: a lookup, writes nothing (with `save:` it saves the id).
    Show {
        kind: ObjectKind,
        name: String,
        project: Option<String>,
    },
}

impl OpenstackCommand {
    /// Whether the command writes nothing (a lookup).
    pub fn is_lookup(&self) -> bool {
        matches!(self, OpenstackCommand::Show { .. })
    }
}

/// A chassis-side step (what ovn-controller would write to the SB).
#[derive(Clone, Debug, PartialEq)]
pub enum OvnCommand {
    RegisterChassis {
        name: String,
        encap_ip: String,
        hostname: Option<String>,
        gateway: bool,
        bridge_mappings: Option<String>,
    },
    Heartbeat,
    Sync,
    ClaimGateway {
        router: String,
    },
    ClaimPort {
        port: String,
        chassis: String,
        up: bool,
    },
}

/// Splits a command line like a POSIX shell would for simple quoting (`'...'`, `"..."`).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated {c} quote in {line:?}")),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parsed `--flag [value]` options and positional arguments of one command.
struct Argv {
    command: String,
    options: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

type Res<T> = Result<T, VocabularyError>;

impl Argv {
    /// `boolean` options take no value, `valued` take one (`--x v` or `--x=v`); `refused` are
    /// options the CLI knows whose effect is not modelled.
    fn parse(command: &str, words: &[&str], boolean: &[&str], valued: &[&str], refused: &[&str]) -> Res<Self> {
        let mut options = Vec::new();
        let mut positional = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if let Some(name) = w.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (name, None),
                };
                if refused.contains(&name) {
                    return Err(VocabularyError::NotModelled {
                        command: command.into(),
                        option: name.into(),
                    });
                }
                if boolean.contains(&name) {
                    options.push((name.to_owned(), None));
                } else if valued.contains(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            words
                                .get(i)
                                .map(|s| (*s).to_owned())
                                .ok_or_else(|| VocabularyError::Invalid {
                                    command: command.into(),
                                    why: format!("--{name} needs a value"),
                                })?
                        }
                    };
                    options.push((name.to_owned(), Some(v)));
                } else {
                    let mut known: Vec<&str> = boolean.iter().chain(valued).copied().collect();
                    known.sort_unstable();
                    let known = if known.is_empty() {
                        "none".to_owned()
                    } else {
                        format!("--{}", known.join(", --"))
                    };
                    return Err(VocabularyError::UnknownOption {
                        command: command.into(),
                        option: name.into(),
                        known,
                    });
                }
            } else {
                positional.push(w.to_owned());
            }
            i += 1;
        }
        Ok(Argv {
            command: command.into(),
            options,
            positional,
        })
    }
    fn invalid(&self, why: impl Into<String>) -> VocabularyError {
        VocabularyError::Invalid {
            command: self.command.clone(),
            why: why.into(),
        }
    }
    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }
    /// The last of two opposite flags given wins, as with the CLI's argparse.
    fn last_of(&self, yes: &str, no: &str) -> Option<bool> {
        self.options.iter().rev().find_map(|(n, _)| {
            if n == yes {
                Some(true)
            } else if n == no {
                Some(false)
            } else {
                None
            }
        })
    }
    fn value(&self, name: &str) -> Option<String> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }
    fn required(&self, name: &str) -> Res<String> {
        self.value(name).ok_or_else(|| self.invalid(format!("needs --{name}")))
    }
    fn values(&self, name: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }
    fn one(&self, what: &str) -> Res<String> {
        match self.positional.as_slice() {
            [x] => Ok(x.clone()),
            _ => Err(self.invalid(format!("expected exactly one {what}, got {:?}", self.positional))),
        }
    }
    fn two(&self, a: &str, b: &str) -> Res<(String, String)> {
        match self.positional.as_slice() {
            [x, y] => Ok((x.clone(), y.clone())),
            _ => Err(self.invalid(format!("expected {a} and {b}, got {:?}", self.positional))),
        }
    }
    fn some(&self, what: &str) -> Res<Vec<String>> {
        if self.positional.is_empty() {
            return Err(self.invalid(format!("expected one or more {what}")));
        }
        Ok(self.positional.clone())
    }
    fn ip(&self, name: &str) -> Res<Option<IpAddr>> {
        self.value(name)
            .map(|s| {
                s.parse()
                    .map_err(|_| self.invalid(format!("--{name} {s:?} is not an IP address")))
            })
            .transpose()
    }
    fn number<T: std::str::FromStr>(&self, name: &str) -> Res<Option<T>> {
        self.value(name)
            .map(|s| {
                s.parse()
                    .map_err(|_| self.invalid(format!("--{name} {s:?} is not a number")))
            })
            .transpose()
    }
}

/// `--fixed-ip subnet=S,ip-address=IP` (either part optional).
fn parse_fixed_ip(a: &Argv, s: &str) -> Res<FixedIpSpec> {
    let mut spec = FixedIpSpec::default();
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("subnet", v)) => spec.subnet = Some(v.to_owned()),
            Some(("ip-address", v)) => {
                spec.ip = Some(
                    v.parse()
                        .map_err(|_| a.invalid(format!("--fixed-ip ip-address {v:?} is not an IP address")))?,
                )
            }
            _ => return Err(a.invalid(format!("--fixed-ip {s:?}: expected subnet=NAME,ip-address=IP"))),
        }
    }
    Ok(spec)
}

/// `--fixed-ip subnet=S,ip-address=IP` of `port unset` as typed: the CLI compares the
/// address as text with the port's.
fn fixed_ip_text(a: &Argv, s: &str) -> Res<(Option<String>, Option<String>)> {
    parse_fixed_ip(a, s)?;
    let part = |key: &str| {
        s.split(',')
            .find_map(|p| p.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_owned()))
    };
    Ok((part("subnet"), part("ip-address")))
}

/// `--allowed-address ip-address=IP[,mac-address=MAC]`... as `(MAC, IP)`.
fn allowed_addresses_of(a: &Argv) -> Res<Vec<AddressPairSpec>> {
    a.values("allowed-address")
        .iter()
        .map(|v| {
            let mut ip = None;
            let mut mac = None;
            for part in v.split(',') {
                match part.split_once('=') {
                    Some(("ip-address", x)) => ip = Some(x.to_owned()),
                    Some(("mac-address", x)) => mac = Some(x.to_owned()),
                    _ => {
                        return Err(a.invalid(format!(
                            "--allowed-address {v:?}: expected ip-address=IP[,mac-address=MAC]"
                        )))
                    }
                }
            }
            ip.map(|ip| (mac, ip))
                .ok_or_else(|| a.invalid(format!("--allowed-address {v:?} needs ip-address=")))
        })
        .collect()
}

/// `--allocation-pool start=IP,end=IP`...
fn pools_of(a: &Argv) -> Res<Vec<(IpAddr, IpAddr)>> {
    a.values("allocation-pool")
        .iter()
        .map(|pool| {
            let mut start = None;
            let mut end = None;
            for part in pool.split(',') {
                match part.split_once('=') {
                    Some(("start", v)) => start = v.parse::<IpAddr>().ok(),
                    Some(("end", v)) => end = v.parse::<IpAddr>().ok(),
                    _ => start = None,
                }
            }
            match (start, end) {
                (Some(s), Some(e)) => Ok((s, e)),
                _ => Err(a.invalid(format!("--allocation-pool {pool:?}: expected start=IP,end=IP"))),
            }
        })
        .collect()
}

/// `--host-route destination=CIDR,gateway=IP`... → (destination, nexthop).
fn host_routes_of(a: &Argv) -> Res<Vec<(String, String)>> {
    a.values("host-route")
        .iter()
        .map(|route| {
            let mut dest = None;
            let mut gw = None;
            for part in route.split(',') {
                match part.split_once('=') {
                    Some(("destination", v)) => dest = v.parse::<ipnet::IpNet>().ok().map(|n| n.to_string()),
                    Some(("gateway", v)) => gw = v.parse::<IpAddr>().ok().map(|ip| ip.to_string()),
                    _ => dest = None,
                }
            }
            match (dest, gw) {
                (Some(d), Some(g)) => Ok((d, g)),
                _ => Err(a.invalid(format!("--host-route {route:?}: expected destination=CIDR,gateway=IP"))),
            }
        })
        .collect()
}

/// `--route destination=CIDR,gateway=IP`... (a router's extra routes).
fn routes_of(a: &Argv) -> Res<Vec<(ipnet::IpNet, IpAddr)>> {
    a.values("route")
        .iter()
        .map(|route| {
            let mut dest = None;
            let mut gw = None;
            for part in route.split(',') {
                match part.split_once('=') {
                    Some(("destination", v)) => dest = v.parse::<ipnet::IpNet>().ok(),
                    Some(("gateway", v)) => gw = v.parse::<IpAddr>().ok(),
                    _ => dest = None,
                }
            }
            match (dest, gw) {
                (Some(d), Some(g)) => Ok((d, g)),
                _ => Err(a.invalid(format!("--route {route:?}: expected destination=CIDR,gateway=IP"))),
            }
        })
        .collect()
}

fn gateway_of(a: &Argv) -> Res<Option<GatewaySpec>> {
    let Some(network) = a.value("external-gateway") else {
        if a.flag("fixed-ip") || a.flag("max-gateway-chassis") || a.last_of("enable-snat", "disable-snat").is_some() {
            return Err(a.invalid(
                "--fixed-ip, --enable-snat, --disable-snat and --max-gateway-chassis go with --external-gateway",
            ));
        }
        return Ok(None);
    };
    let fixed_ip = match a.value("fixed-ip") {
        Some(f) => parse_fixed_ip(a, &f)?.ip,
        None => None,
    };
    Ok(Some(GatewaySpec {
        network,
        fixed_ip,
        max_chassis: a.number("max-gateway-chassis")?,
        snat: a.last_of("enable-snat", "disable-snat"),
    }))
}

/// Parses one openstack CLI command (words after `openstack`), in the step's project.
pub fn parse_openstack(words: &[String], project: Option<&str>) -> Res<OpenstackCommand> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let project = project.map(str::to_owned);
    let cmd = |n: usize| w[..n.min(w.len())].join(" ");
    use OpenstackCommand as C;
    Ok(match w.as_slice() {
        ["network", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[
                    "external",
                    "internal",
                    "share",
                    "no-share",
                    "enable",
                    "enable-port-security",
                    "disable-port-security",
                ],
                &[
                    "provider-network-type",
                    "provider-physical-network",
                    "provider-segment",
                    "project",
                    "mtu",
                    "description",
                ],
                &["disable"],
            )?;
            C::NetworkCreate(NetworkSpec {
                name: a.one("network name")?,
                project: a.value("project").or(project),
                external: a.last_of("external", "internal").unwrap_or(false),
                network_type: a.value("provider-network-type"),
                physical_network: a.value("provider-physical-network"),
                segmentation_id: a.number("provider-segment")?,
                mtu: a.number("mtu")?,
                disable_port_security: a.last_of("enable-port-security", "disable-port-security") == Some(false),
                shared: a.last_of("share", "no-share") == Some(true),
            })
        }
        ["network", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[
                    "enable-port-security",
                    "disable-port-security",
                    "share",
                    "no-share",
                    "external",
                    "internal",
                ],
                &[
                    "name",
                    "mtu",
                    "description",
                    "provider-network-type",
                    "provider-physical-network",
                    "provider-segment",
                ],
                &[
                    "enable",
                    "disable",
                    "default",
                    "no-default",
                    "qos-policy",
                    "no-qos-policy",
                    "dns-domain",
                    "tag",
                    "no-tag",
                ],
            )?;
            C::NetworkSet {
                network: a.one("network")?,
                update: NetworkUpdate {
                    name: a.value("name"),
                    mtu: a.number("mtu")?,
                    port_security: a.last_of("enable-port-security", "disable-port-security"),
                    description: a.value("description"),
                    shared: a.last_of("share", "no-share"),
                    external: a.last_of("external", "internal"),
                    network_type: a.value("provider-network-type"),
                    physical_network: a.value("provider-physical-network"),
                    segmentation_id: a.number("provider-segment")?,
                },
            }
        }
        ["network", "unset", ..] => {
            return Err(VocabularyError::NotModelled {
                command: cmd(2),
                option: "*".into(),
            })
        }
        ["network", "delete", rest @ ..] => {
            C::NetworkDelete(Argv::parse(&cmd(2), rest, &[], &[], &[])?.some("networks")?)
        }
        ["subnet", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &["dhcp", "no-dhcp"],
                &[
                    "network",
                    "subnet-range",
                    "gateway",
                    "ip-version",
                    "ipv6-address-mode",
                    "ipv6-ra-mode",
                    "dns-nameserver",
                    "project",
                    "metadata-ip",
                    "description",
                    "allocation-pool",
                    "host-route",
                ],
                &["subnet-pool", "use-default-subnet-pool"],
            )?;
            let network = a.required("network")?;
            let cidr = a.required("subnet-range")?;
            let parsed: ipnet::IpNet = cidr
                .parse()
                .map_err(|_| a.invalid(format!("--subnet-range {cidr:?} is not a CIDR")))?;
            match a.value("ip-version").as_deref() {
                None => {}
                Some("4") if parsed.addr().is_ipv4() => {}
                Some("6") if parsed.addr().is_ipv6() => {}
                Some(v) => return Err(a.invalid(format!("--ip-version {v} does not match --subnet-range {cidr}"))),
            }
            for (opt, v) in [
                ("ipv6-address-mode", a.value("ipv6-address-mode")),
                ("ipv6-ra-mode", a.value("ipv6-ra-mode")),
            ] {
                if let Some(v) = v {
                    if !["slaac", "dhcpv6-stateful", "dhcpv6-stateless"].contains(&v.as_str()) {
                        return Err(a.invalid(format!("--{opt} {v:?}: use slaac, dhcpv6-stateful or dhcpv6-stateless")));
                    }
                }
            }
            if let (Some(ra), Some(addr)) = (a.value("ipv6-ra-mode"), a.value("ipv6-address-mode")) {
                if ra != addr {
                    return Err(a.invalid(format!(
                        "--ipv6-ra-mode {ra} with --ipv6-address-mode {addr}: Neutron only accepts equal modes"
                    )));
                }
            }
            let mut spec = SubnetSpec::new(&a.one("subnet name")?, &network, &cidr);
            spec.project = a.value("project").or(project);
            spec.enable_dhcp = a.last_of("dhcp", "no-dhcp").unwrap_or(true);
            spec.gateway = match a.value("gateway").as_deref() {
                None | Some("auto") => SubnetGateway::Auto,
                Some("none") => SubnetGateway::None,
                Some(ip) => SubnetGateway::Ip(
                    ip.parse()
                        .map_err(|_| a.invalid(format!("--gateway {ip:?} is not an IP address, auto or none")))?,
                ),
            };
            spec.ipv6_address_mode = a.value("ipv6-address-mode");
            if spec.ipv6_address_mode.is_none() && a.value("ipv6-ra-mode").is_some() {
                return Err(VocabularyError::NotModelled {
                    command: cmd(2),
                    option: "ipv6-ra-mode (without --ipv6-address-mode)".into(),
                });
            }
            spec.dns_nameservers = a.values("dns-nameserver");
            spec.allocation_pools = pools_of(&a)?;
            spec.host_routes = host_routes_of(&a)?;
            spec.metadata_ip = a.ip("metadata-ip")?;
            C::SubnetCreate(spec)
        }
        ["subnet", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[
                    "dhcp",
                    "no-dhcp",
                    "no-dns-nameservers",
                    "no-host-route",
                    "no-allocation-pool",
                ],
                &[
                    "name",
                    "gateway",
                    "dns-nameserver",
                    "host-route",
                    "allocation-pool",
                    "description",
                ],
                &[
                    "dns-publish-fixed-ip",
                    "no-dns-publish-fixed-ip",
                    "network-segment",
                    "service-type",
                    "tag",
                    "no-tag",
                ],
            )?;
            let gateway = match a.value("gateway").as_deref() {
                None => None,
                Some("none") => Some(SubnetGateway::None),
                Some(ip) => {
                    Some(SubnetGateway::Ip(ip.parse().map_err(|_| {
                        a.invalid(format!("--gateway {ip:?} is not an IP address or none"))
                    })?))
                }
            };
            C::SubnetSet {
                subnet: a.one("subnet")?,
                update: SubnetUpdate {
                    name: a.value("name"),
                    description: a.value("description"),
                    gateway,
                    enable_dhcp: a.last_of("dhcp", "no-dhcp"),
                    dns_nameservers: ListEdit {
                        clear: a.flag("no-dns-nameservers"),
                        add: a.values("dns-nameserver"),
                        remove: vec![],
                    },
                    host_routes: ListEdit {
                        clear: a.flag("no-host-route"),
                        add: host_routes_of(&a)?,
                        remove: vec![],
                    },
                    allocation_pools: ListEdit {
                        clear: a.flag("no-allocation-pool"),
                        add: pools_of(&a)?,
                        remove: vec![],
                    },
                },
            }
        }
        ["subnet", "unset", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[],
                &["dns-nameserver", "host-route", "allocation-pool"],
                &["service-type", "tag", "all-tag"],
            )?;
            C::SubnetSet {
                subnet: a.one("subnet")?,
                update: SubnetUpdate {
                    dns_nameservers: ListEdit {
                        remove: a.values("dns-nameserver"),
                        ..ListEdit::default()
                    },
                    host_routes: ListEdit {
                        remove: host_routes_of(&a)?,
                        ..ListEdit::default()
                    },
                    allocation_pools: ListEdit {
                        remove: pools_of(&a)?,
                        ..ListEdit::default()
                    },
                    ..SubnetUpdate::default()
                },
            }
        }
        ["subnet", "delete", rest @ ..] => C::SubnetDelete(Argv::parse(&cmd(2), rest, &[], &[], &[])?.some("subnets")?),
        ["router", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &["enable", "enable-snat", "disable-snat"],
                &[
                    "project",
                    "external-gateway",
                    "fixed-ip",
                    "max-gateway-chassis",
                    "description",
                ],
                &["disable", "distributed", "ha", "route", "availability-zone-hint"],
            )?;
            C::RouterCreate {
                name: a.one("router name")?,
                project: a.value("project").or(project),
                gateway: gateway_of(&a)?,
            }
        }
        ["router", "delete", rest @ ..] => C::RouterDelete(Argv::parse(&cmd(2), rest, &[], &[], &[])?.some("routers")?),
        ["router", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &["enable-snat", "disable-snat", "no-route"],
                &["external-gateway", "fixed-ip", "max-gateway-chassis", "route", "name"],
                &["disable", "distributed", "ha"],
            )?;
            let router = a.one("router")?;
            if let Some(name) = a.value("name") {
                if a.options.len() > 1 {
                    return Err(a.invalid("--name together with other options is not modelled; give them in two steps"));
                }
                return Ok(C::RouterRename { router, name });
            }
            let gateway = gateway_of(&a)?;
            let edit = RoutesEdit {
                clear: a.flag("no-route"),
                add: routes_of(&a)?,
                remove: vec![],
            };
            match (gateway, edit.clear || !edit.add.is_empty()) {
                (Some(gateway), false) => C::RouterSetGateway { router, gateway },
                (None, true) => C::RouterRoutes { router, edit },
                (Some(_), true) => {
                    return Err(a.invalid(
                        "--external-gateway together with --route/--no-route is not modelled; give them in two steps",
                    ))
                }
                (None, false) => return Err(a.invalid("give --external-gateway, --route or --no-route")),
            }
        }
        ["router", "unset", rest @ ..] => {
            let a = Argv::parse(&cmd(2), rest, &["external-gateway"], &["route"], &[])?;
            let remove = routes_of(&a)?;
            match (a.flag("external-gateway"), remove.is_empty()) {
                (true, true) => C::RouterUnsetGateway {
                    router: a.one("router")?,
                },
                (false, false) => C::RouterRoutes {
                    router: a.one("router")?,
                    edit: RoutesEdit {
                        remove,
                        ..RoutesEdit::default()
                    },
                },
                (true, false) => {
                    return Err(
                        a.invalid("--external-gateway together with --route is not modelled; give them in two steps")
                    )
                }
                (false, true) => return Err(a.invalid("give --external-gateway or --route")),
            }
        }
        ["router", "add", "subnet", rest @ ..] => {
            let (router, subnet) = Argv::parse(&cmd(3), rest, &[], &[], &[])?.two("router", "subnet")?;
            C::RouterAddSubnet { router, subnet }
        }
        ["router", "remove", "subnet", rest @ ..] => {
            let (router, subnet) = Argv::parse(&cmd(3), rest, &[], &[], &[])?.two("router", "subnet")?;
            C::RouterRemoveSubnet { router, subnet }
        }
        ["router", "add", "port", rest @ ..] => {
            let (router, port) = Argv::parse(&cmd(3), rest, &[], &[], &[])?.two("router", "port")?;
            C::RouterAddPort { router, port }
        }
        ["router", "remove", "port", rest @ ..] => {
            let (router, port) = Argv::parse(&cmd(3), rest, &[], &[], &[])?.two("router", "port")?;
            C::RouterRemovePort { router, port }
        }
        ["port", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[
                    "no-security-group",
                    "disable-port-security",
                    "enable-port-security",
                    "enable",
                    "no-fixed-ip",
                ],
                &[
                    "network",
                    "device",
                    "device-owner",
                    "host",
                    "fixed-ip",
                    "security-group",
                    "project",
                    "dns-name",
                    "description",
                    "mac-address",
                    "allowed-address",
                ],
                &["disable", "vnic-type", "binding-profile"],
            )?;
            let network = a.required("network")?;
            let fixed_ips = a
                .values("fixed-ip")
                .iter()
                .map(|f| parse_fixed_ip(&a, f))
                .collect::<Res<_>>()?;
            let named = a.values("security-group");
            // The CLI: named groups win; else --no-security-group is an empty list; else the
            // project's default group (Neutron's choice).
            let security_groups = if !named.is_empty() {
                Some(named)
            } else if a.flag("no-security-group") {
                Some(vec![])
            } else {
                None
            };
            C::PortCreate(PortSpec {
                network,
                name: a.one("port name")?,
                project: a.value("project").or(project),
                device_id: a.value("device").unwrap_or_default(),
                device_owner: a.value("device-owner").unwrap_or_default(),
                host: a.value("host").unwrap_or_default(),
                fixed_ips,
                security_groups,
                port_security: a.last_of("enable-port-security", "disable-port-security"),
                mac: a.value("mac-address"),
                allowed_address_pairs: allowed_addresses_of(&a)?,
                description: a.value("description").unwrap_or_default(),
                dns_name: a.value("dns-name").unwrap_or_default(),
            })
        }
        ["port", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[
                    "no-security-group",
                    "no-fixed-ip",
                    "enable-port-security",
                    "disable-port-security",
                    "no-allowed-address",
                ],
                &[
                    "device",
                    "device-owner",
                    "host",
                    "name",
                    "dns-name",
                    "description",
                    "security-group",
                    "fixed-ip",
                    "mac-address",
                    "allowed-address",
                ],
                &[
                    "enable",
                    "disable",
                    "vnic-type",
                    "binding-profile",
                    "no-binding-profile",
                    "qos-policy",
                    "extra-dhcp-option",
                    "data-plane-status",
                    "dns-domain",
                    "numa-policy-required",
                    "numa-policy-preferred",
                    "numa-policy-legacy",
                    "tag",
                    "no-tag",
                ],
            )?;
            if a.flag("enable-port-security") && a.flag("disable-port-security") {
                // The CLI's argparse: the two are mutually exclusive (a usage error).
                return Err(a.invalid("--enable-port-security and --disable-port-security exclude each other"));
            }
            let fixed_ips: Vec<FixedIpSpec> = a
                .values("fixed-ip")
                .iter()
                .map(|f| parse_fixed_ip(&a, f))
                .collect::<Res<_>>()?;
            let pairs = allowed_addresses_of(&a)?;
            C::PortSet {
                port: a.one("port")?,
                update: PortUpdate {
                    device_id: a.value("device"),
                    device_owner: a.value("device-owner"),
                    host: a.value("host"),
                    name: a.value("name"),
                    security_groups: (a.flag("no-security-group") || !a.values("security-group").is_empty())
                        .then(|| (a.flag("no-security-group"), a.values("security-group"))),
                    fixed_ips: (a.flag("no-fixed-ip") || !fixed_ips.is_empty())
                        .then(|| (a.flag("no-fixed-ip"), fixed_ips)),
                    mac: a.value("mac-address"),
                    port_security: a.last_of("enable-port-security", "disable-port-security"),
                    allowed_address_pairs: (a.flag("no-allowed-address") || !pairs.is_empty())
                        .then(|| (a.flag("no-allowed-address"), pairs)),
                    description: a.value("description"),
                    dns_name: a.value("dns-name"),
                    ..Default::default()
                },
            }
        }
        ["port", "unset", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &["qos-policy", "data-plane-status", "numa-policy", "host", "all-tag"],
                &["fixed-ip", "security-group", "allowed-address"],
                &["binding-profile", "tag"],
            )?;
            for option in ["qos-policy", "data-plane-status", "numa-policy", "host", "all-tag"] {
                if a.flag(option) {
                    return Err(VocabularyError::NotModelled {
                        command: cmd(2),
                        option: option.into(),
                    });
                }
            }
            C::PortSet {
                port: a.one("port")?,
                update: PortUpdate {
                    remove_fixed_ips: a
                        .values("fixed-ip")
                        .iter()
                        .map(|f| fixed_ip_text(&a, f))
                        .collect::<Res<_>>()?,
                    remove_security_groups: a.values("security-group"),
                    remove_allowed_address_pairs: allowed_addresses_of(&a)?,
                    ..Default::default()
                },
            }
        }
        ["port", "delete", rest @ ..] => C::PortDelete(Argv::parse(&cmd(2), rest, &[], &[], &[])?.some("ports")?),
        ["server", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(2),
                rest,
                &[],
                &["network", "host", "fixed-ip", "flavor", "image"],
                &[],
            )?;
            C::ServerCreate {
                name: a.one("server name")?,
                network: a.required("network")?,
                // Required by `replay` (checked there); a load run places servers itself.
                host: a.value("host").unwrap_or_default(),
                fixed_ip: a.ip("fixed-ip")?,
            }
        }
        ["server", "delete", rest @ ..] => C::ServerDelete(Argv::parse(&cmd(2), rest, &[], &[], &[])?.some("servers")?),
        ["floating", "ip", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(3),
                rest,
                &[],
                &[
                    "floating-ip-address",
                    "port",
                    "fixed-ip-address",
                    "project",
                    "description",
                    "subnet",
                ],
                &["qos-policy", "dns-name", "dns-domain"],
            )?;
            if a.value("fixed-ip-address").is_some() && a.value("port").is_none() {
                return Err(a.invalid("--fixed-ip-address needs --port"));
            }
            C::FloatingIpCreate {
                network: a.one("external network")?,
                ip: a.ip("floating-ip-address")?,
                port: a.value("port"),
                fixed_ip: a.ip("fixed-ip-address")?,
            }
        }
        ["floating", "ip", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(3),
                rest,
                &[],
                &["port", "fixed-ip-address", "description"],
                &["qos-policy"],
            )?;
            C::FloatingIpSet {
                fip: a.one("floating IP")?,
                port: a.value("port").ok_or_else(|| a.invalid("needs --port"))?,
                fixed_ip: a.ip("fixed-ip-address")?,
            }
        }
        ["floating", "ip", "unset", rest @ ..] => {
            let a = Argv::parse(&cmd(3), rest, &["port"], &[], &["qos-policy"])?;
            if !a.flag("port") {
                return Err(a.invalid("only --port is modelled"));
            }
            C::FloatingIpUnset {
                fip: a.one("floating IP")?,
            }
        }
        ["floating", "ip", "delete", rest @ ..] => {
            C::FloatingIpDelete(Argv::parse(&cmd(3), rest, &[], &[], &[])?.some("floating IPs")?)
        }
        ["security", "group", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(3),
                rest,
                &["stateless", "stateful"],
                &["project", "description"],
                &[],
            )?;
            C::SecurityGroupCreate {
                name: a.one("group name")?,
                project: a.value("project").or(project),
                stateful: a.last_of("stateful", "stateless").unwrap_or(true),
            }
        }
        ["security", "group", "set", rest @ ..] => {
            let a = Argv::parse(
                &cmd(3),
                rest,
                &["stateful", "stateless"],
                &["name", "description", "project"],
                &["tag", "no-tag"],
            )?;
            let update = SecurityGroupUpdate {
                name: a.value("name"),
                description: a.value("description"),
                stateful: a.last_of("stateful", "stateless"),
            };
            if update == SecurityGroupUpdate::default() {
                return Err(a.invalid("give --name, --description, --stateful or --stateless"));
            }
            C::SecurityGroupSet {
                group: a.one("security group")?,
                project: a.value("project").or(project),
                update,
            }
        }
        ["security", "group", "delete", rest @ ..] => {
            let a = Argv::parse(&cmd(3), rest, &[], &["project"], &[])?;
            C::SecurityGroupDelete {
                groups: a.some("security groups")?,
                project: a.value("project").or(project),
            }
        }
        ["security", "group", "rule", "create", rest @ ..] => {
            let a = Argv::parse(
                &cmd(4),
                rest,
                &["ingress", "egress"],
                &[
                    "ethertype",
                    "protocol",
                    "dst-port",
                    "remote-ip",
                    "remote-group",
                    "icmp-type",
                    "icmp-code",
                    "description",
                    "project",
                ],
                &["remote-address-group"],
            )?;
            let ethertype = match a.value("ethertype").as_deref() {
                None | Some("IPv4") => 4,
                Some("IPv6") => 6,
                Some(o) => return Err(a.invalid(format!("--ethertype {o:?}: use IPv4 or IPv6"))),
            };
            let protocol = a.value("protocol").filter(|p| p != "any");
            let is_icmp = matches!(protocol.as_deref(), Some("icmp" | "ipv6-icmp" | "icmpv6" | "1" | "58"));
            let (mut min, mut max) = match a.value("dst-port") {
                None => (None, None),
                Some(p) => {
                    if is_icmp {
                        return Err(a.invalid("--dst-port is for tcp/udp/sctp; use --icmp-type/--icmp-code"));
                    }
                    let (a1, b1) = p.split_once(':').unwrap_or((&p, &p));
                    let parse = |x: &str| {
                        x.parse::<u16>()
                            .map_err(|_| a.invalid(format!("--dst-port {p:?} is not PORT[:PORT]")))
                    };
                    (Some(parse(a1)?), Some(parse(b1)?))
                }
            };
            if a.value("icmp-type").is_some() || a.value("icmp-code").is_some() {
                if !is_icmp {
                    return Err(a.invalid("--icmp-type/--icmp-code need --protocol icmp or ipv6-icmp"));
                }
                if a.value("icmp-code").is_some() && a.value("icmp-type").is_none() {
                    return Err(a.invalid("--icmp-code needs --icmp-type"));
                }
                // Neutron stores the ICMP type and code in port_range_min/max.
                min = a.number("icmp-type")?;
                max = a.number("icmp-code")?;
            }
            let remote_group = a.value("remote-group");
            let mut remote_ip_prefix = a.value("remote-ip");
            if remote_ip_prefix.is_some() && remote_group.is_some() {
                return Err(a.invalid("--remote-ip and --remote-group are exclusive"));
            }
            if remote_ip_prefix.is_none() && remote_group.is_none() {
                // The CLI's own default: it sends the any-address prefix of the ethertype.
                remote_ip_prefix = Some(if ethertype == 4 { "0.0.0.0/0" } else { "::/0" }.to_owned());
            }
            C::SecurityGroupRuleCreate(RuleSpec {
                security_group: a.one("security group")?,
                direction: if a.last_of("egress", "ingress") == Some(true) {
                    Direction::Egress
                } else {
                    Direction::Ingress
                },
                ethertype,
                protocol,
                port_range_min: min,
                port_range_max: max,
                remote_ip_prefix,
                remote_group,
            })
        }
        ["security", "group", "rule", "delete", rest @ ..] => {
            C::SecurityGroupRuleDelete(Argv::parse(&cmd(4), rest, &[], &[], &[])?.some("rules")?)
        }
        [kind @ ("network" | "subnet" | "port" | "router"), "show", rest @ ..]
        | ["security", kind @ "group", "show", rest @ ..]
        | ["floating", kind @ "ip", "show", rest @ ..] => {
            let a = Argv::parse(&cmd(3), rest, &[], &["project"], &[])?;
            let kind = match *kind {
                "network" => ObjectKind::Network,
                "subnet" => ObjectKind::Subnet,
                "port" => ObjectKind::Port,
                "router" => ObjectKind::Router,
                "group" => ObjectKind::SecurityGroup,
                _ => ObjectKind::FloatingIp,
            };
            C::Show {
                kind,
                name: a.one("name or id")?,
                project: a.value("project").or(project),
            }
        }
        _ => {
            return Err(VocabularyError::UnknownCommand { line: words.join(" ") });
        }
    })
}

/// Parses one chassis-side step.
pub fn parse_ovn(words: &[String]) -> Res<OvnCommand> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match w.as_slice() {
        ["register-chassis", rest @ ..] => {
            let a = Argv::parse(
                "register-chassis",
                rest,
                &["gateway"],
                &["encap-ip", "hostname", "bridge-mappings"],
                &[],
            )?;
            OvnCommand::RegisterChassis {
                name: a.one("chassis name")?,
                encap_ip: a.required("encap-ip")?,
                hostname: a.value("hostname"),
                gateway: a.flag("gateway"),
                bridge_mappings: a.value("bridge-mappings"),
            }
        }
        ["heartbeat"] => OvnCommand::Heartbeat,
        ["sync"] => OvnCommand::Sync,
        ["claim-gateway", router] => OvnCommand::ClaimGateway {
            router: (*router).to_owned(),
        },
        ["claim-port", rest @ ..] => {
            let a = Argv::parse("claim-port", rest, &["up"], &[], &[])?;
            let (port, chassis) = a.two("port", "chassis")?;
            OvnCommand::ClaimPort {
                port,
                chassis,
                up: a.flag("up"),
            }
        }
        _ => return Err(VocabularyError::UnknownOvnStep { line: words.join(" ") }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(line: &str) -> Res<OpenstackCommand> {
        parse_openstack(&split_words(line).unwrap(), None)
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("port create --network net1 --device x ''").unwrap(),
            vec!["port", "create", "--network", "net1", "--device", "x", ""]
        );
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn rule_without_remote_gets_the_cli_default_prefix() {
        for (line, want) in [
            ("security group rule create --ingress web", "0.0.0.0/0"),
            ("security group rule create --ethertype IPv6 web", "::/0"),
        ] {
            match os(line).unwrap() {
                OpenstackCommand::SecurityGroupRuleCreate(r) => assert_eq!(r.remote_ip_prefix.as_deref(), Some(want)),
                other => panic!("{other:?}"),
            }
        }
        match os("security group rule create --remote-group default web").unwrap() {
            OpenstackCommand::SecurityGroupRuleCreate(r) => assert_eq!(r.remote_ip_prefix, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subnet_set_and_unset_edit_lists_as_the_cli() {
        match os("subnet set --no-dns-nameservers --dns-nameserver 1.1.1.1 --host-route destination=10.9.0.0/24,gateway=10.0.0.9 --gateway none --no-dhcp s").unwrap() {
            OpenstackCommand::SubnetSet { subnet, update } => {
                assert_eq!(subnet, "s");
                assert!(update.dns_nameservers.clear);
                assert_eq!(update.dns_nameservers.add, ["1.1.1.1"]);
                assert_eq!(update.host_routes.add, [("10.9.0.0/24".to_owned(), "10.0.0.9".to_owned())]);
                assert_eq!(update.gateway, Some(SubnetGateway::None));
                assert_eq!(update.enable_dhcp, Some(false));
            }
            other => panic!("{other:?}"),
        }
        match os("subnet unset --allocation-pool start=10.0.0.5,end=10.0.0.9 s").unwrap() {
            OpenstackCommand::SubnetSet { update, .. } => {
                assert!(!update.allocation_pools.clear);
                assert_eq!(
                    update.allocation_pools.remove,
                    [("10.0.0.5".parse().unwrap(), "10.0.0.9".parse().unwrap())]
                );
            }
            other => panic!("{other:?}"),
        }
        match os("network set --name m --mtu 1300 --disable-port-security n").unwrap() {
            OpenstackCommand::NetworkSet { network, update } => {
                assert_eq!(network, "n");
                assert_eq!(update.name.as_deref(), Some("m"));
                assert_eq!(update.mtu, Some(1300));
                assert_eq!(update.port_security, Some(false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn network_set_share_and_external_flags_last_one_wins() {
        match os("network set --share --external --no-share n").unwrap() {
            OpenstackCommand::NetworkSet { network, update } => {
                assert_eq!(network, "n");
                assert_eq!(update.shared, Some(false));
                assert_eq!(update.external, Some(true));
                assert_eq!(update.mtu, None);
            }
            other => panic!("{other:?}"),
        }
        match os("network set --internal n").unwrap() {
            OpenstackCommand::NetworkSet { update, .. } => {
                assert_eq!(update.shared, None);
                assert_eq!(update.external, Some(false));
            }
            other => panic!("{other:?}"),
        }
        match os("network create --share n").unwrap() {
            OpenstackCommand::NetworkCreate(spec) => assert!(spec.shared),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn network_set_takes_provider_attributes() {
        match os(
            "network set --provider-network-type vlan --provider-physical-network physnet1 --provider-segment 103 n",
        )
        .unwrap()
        {
            OpenstackCommand::NetworkSet { network, update } => {
                assert_eq!(network, "n");
                assert_eq!(update.network_type.as_deref(), Some("vlan"));
                assert_eq!(update.physical_network.as_deref(), Some("physnet1"));
                assert_eq!(update.segmentation_id, Some(103));
            }
            other => panic!("{other:?}"),
        }
        assert!(os("network set --provider-segment x n").is_err());
    }

    #[test]
    fn subnet_set_takes_ipv6_dhcp_and_gateway_options() {
        match os("subnet set --no-dhcp --gateway 2001:db8:2::1 --dns-nameserver 2001:db8::53 s6").unwrap() {
            OpenstackCommand::SubnetSet { subnet, update } => {
                assert_eq!(subnet, "s6");
                assert_eq!(update.enable_dhcp, Some(false));
                assert!(matches!(update.gateway, Some(SubnetGateway::Ip(ip)) if ip.to_string() == "2001:db8:2::1"));
                assert_eq!(update.dns_nameservers.add, ["2001:db8::53"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn security_group_set_takes_name_description_and_statefulness() {
        match os("security group set --stateless --name web2 --description 'the web' web").unwrap() {
            OpenstackCommand::SecurityGroupSet { group, project, update } => {
                assert_eq!(group, "web");
                assert_eq!(project, None);
                assert_eq!(update.name.as_deref(), Some("web2"));
                assert_eq!(update.description.as_deref(), Some("the web"));
                assert_eq!(update.stateful, Some(false));
            }
            other => panic!("{other:?}"),
        }
        match parse_openstack(
            &split_words("security group set --stateful default").unwrap(),
            Some("alpha"),
        )
        .unwrap()
        {
            OpenstackCommand::SecurityGroupSet { project, update, .. } => {
                assert_eq!(project.as_deref(), Some("alpha"));
                assert_eq!(update.stateful, Some(true));
                assert_eq!(update.name, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(os("security group set web").is_err());
        assert!(os("security group set --stateless").is_err());
    }

    #[test]
    fn deletes_take_several_names() {
        match os("port delete a b c").unwrap() {
            OpenstackCommand::PortDelete(v) => assert_eq!(v, ["a", "b", "c"]),
            other => panic!("{other:?}"),
        }
        assert!(os("port delete").is_err());
    }

    #[test]
    fn unknown_and_unmodelled_options_are_named() {
        let e = os("network create --bogus x n").unwrap_err();
        assert!(e.to_string().contains("--bogus"), "{e}");
        let e = os("subnet create --network n --subnet-range 10.0.0.0/24 --subnet-pool p s").unwrap_err();
        assert!(matches!(e, VocabularyError::NotModelled { .. }), "{e}");
        assert!(e.to_string().contains("--subnet-pool"), "{e}");
        let e = os("network set --qos-policy q n").unwrap_err();
        assert!(matches!(e, VocabularyError::NotModelled { .. }), "{e}");
        let e = os("security group set --tag t g").unwrap_err();
        assert!(matches!(e, VocabularyError::NotModelled { .. }), "{e}");
        let e = os("subnet create --network n --subnet-range 10.0.0.0/24 --host-route destination=10.1.0.0/24 s")
            .unwrap_err();
        assert!(e.to_string().contains("destination=CIDR,gateway=IP"), "{e}");
        match os("subnet create --network n --subnet-range 10.0.0.0/24 --allocation-pool start=10.0.0.5,end=10.0.0.9 s")
            .unwrap()
        {
            OpenstackCommand::SubnetCreate(s) => assert_eq!(
                s.allocation_pools,
                [("10.0.0.5".parse().unwrap(), "10.0.0.9".parse().unwrap())]
            ),
            other => panic!("{other:?}"),
        }
        match os("router set --name r2 r1").unwrap() {
            OpenstackCommand::RouterRename { router, name } => {
                assert_eq!((router.as_str(), name.as_str()), ("r1", "r2"))
            }
            other => panic!("{other:?}"),
        }
        assert!(os("router set --name r2 --external-gateway public r1").is_err());
        match os("router set --external-gateway public --fixed-ip subnet=s,ip-address=172.24.4.9 r1").unwrap() {
            OpenstackCommand::RouterSetGateway { gateway, .. } => {
                assert_eq!(gateway.fixed_ip, Some("172.24.4.9".parse().unwrap()))
            }
            other => panic!("{other:?}"),
        }
        match os("port set --no-security-group --security-group web p").unwrap() {
            OpenstackCommand::PortSet { update, .. } => {
                assert_eq!(update.security_groups, Some((true, vec!["web".to_owned()])))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn port_set_address_and_security_options_as_the_cli() {
        match os("port set --no-fixed-ip --fixed-ip subnet=s4,ip-address=10.0.0.5 --fixed-ip ip-address=10.0.0.6 --mac-address fa:16:3e:00:00:01 --disable-port-security --no-allowed-address --allowed-address ip-address=10.0.0.200,mac-address=fa:16:3e:00:00:02 --allowed-address ip-address=10.1.0.0/24 p").unwrap() {
            OpenstackCommand::PortSet { port, update } => {
                assert_eq!(port, "p");
                let (clear, ips) = update.fixed_ips.unwrap();
                assert!(clear);
                assert_eq!(ips.len(), 2);
                assert_eq!(ips[0].subnet.as_deref(), Some("s4"));
                assert_eq!(ips[1].ip, Some("10.0.0.6".parse().unwrap()));
                assert_eq!(update.mac.as_deref(), Some("fa:16:3e:00:00:01"));
                assert_eq!(update.port_security, Some(false));
                assert_eq!(
                    update.allowed_address_pairs,
                    Some((
                        true,
                        vec![
                            (Some("fa:16:3e:00:00:02".to_owned()), "10.0.0.200".to_owned()),
                            (None, "10.1.0.0/24".to_owned())
                        ]
                    ))
                );
            }
            other => panic!("{other:?}"),
        }
        // The CLI's argparse makes the two port-security flags exclusive.
        assert!(os("port set --enable-port-security --disable-port-security p").is_err());
        let e = os("port set --disable p").unwrap_err();
        assert!(matches!(e, VocabularyError::NotModelled { .. }), "{e}");
    }

    #[test]
    fn port_unset_keeps_the_typed_text_for_the_cli_comparison() {
        match os("port unset --fixed-ip subnet=s6,ip-address=2001:db8:0:0::1 --security-group web --allowed-address ip-address=10.0.0.9 p").unwrap() {
            OpenstackCommand::PortSet { port, update } => {
                assert_eq!(port, "p");
                assert_eq!(
                    update.remove_fixed_ips,
                    [(Some("s6".to_owned()), Some("2001:db8:0:0::1".to_owned()))]
                );
                assert_eq!(update.remove_security_groups, ["web"]);
                assert_eq!(update.remove_allowed_address_pairs, [(None, "10.0.0.9".to_owned())]);
                assert!(update.fixed_ips.is_none() && update.security_groups.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(os("port unset --fixed-ip ip-address=nope p").is_err());
        let e = os("port unset --qos-policy p").unwrap_err();
        assert!(matches!(e, VocabularyError::NotModelled { .. }), "{e}");
    }

    #[test]
    fn port_security_group_options_as_the_cli() {
        match os("port create --network n --no-security-group --security-group web p").unwrap() {
            OpenstackCommand::PortCreate(p) => assert_eq!(p.security_groups, Some(vec!["web".to_owned()])),
            other => panic!("{other:?}"),
        }
        match os("port create --network n --disable-port-security --no-security-group p").unwrap() {
            OpenstackCommand::PortCreate(p) => {
                assert_eq!(p.port_security, Some(false));
                assert_eq!(p.security_groups, Some(vec![]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn show_takes_a_project() {
        match os("security group show default --project p1").unwrap() {
            OpenstackCommand::Show { kind, name, project } => {
                assert_eq!(kind, ObjectKind::SecurityGroup);
                assert_eq!(name, "default");
                assert_eq!(project.as_deref(), Some("p1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
