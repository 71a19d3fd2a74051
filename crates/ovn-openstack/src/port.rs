//! Ports: `port create` (T8a), nova's `port set` with device owner and host (T8b), the ACTIVE
//! rewrites once `Logical_Switch_Port.up` turns true (T8d), `port delete`; and the LSP
//! create/update/delete transactions every other action (metadata, router ports) shares.
//!
//! Must not know: connections (see neutron.rs), the CLI.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use ovsdb::{Condition, Transaction, Value};

use crate::error::{Error, Result};
use crate::model::{FixedIp, Id, Port, PortKind, State};
use crate::nb::{self, Planned};
use crate::neutron::{pg_drop, ActionReport, Neutron};

/// One requested fixed IP (`--fixed-ip subnet=...,ip-address=...`).
#[derive(Clone, Debug, Default)]
pub struct FixedIpSpec {
    pub subnet: Option<String>,
    pub ip: Option<IpAddr>,
}

/// `openstack port create`.
#[derive(Clone, Debug, Default)]
pub struct PortSpec {
    pub network: String,
    pub name: String,
    pub project: Option<String>,
    /// `--device` (nova's instance id).
    pub device_id: String,
    /// `--device-owner` (`compute:nova` once nova binds it).
    pub device_owner: String,
    /// `--host` (`binding:host_id`).
    pub host: String,
    /// No entry: one address from the network's first IPv4 subnet (and its IPv6 subnets).
    pub fixed_ips: Vec<FixedIpSpec>,
    /// `None`: the project's `default` group.
    pub security_groups: Option<Vec<String>>,
    /// `--enable-port-security` / `--disable-port-security`; the network's setting when `None`.
    pub port_security: Option<bool>,
    /// `--mac-address` (else a fresh `fa:16:3e:…`).
    pub mac: Option<String>,
    /// `--allowed-address ip-address=IP[,mac-address=MAC]` (MAC: the port's by default).
    pub allowed_address_pairs: Vec<(Option<String>, String)>,
    /// `--description`, `--dns-name` (stored, not written to the NB).
    pub description: String,
    pub dns_name: String,
}

/// `--allowed-address ip-address=IP[,mac-address=MAC]` as `(MAC, IP)`.
pub type AddressPairSpec = (Option<String>, String);

/// `openstack port set` (what nova's `PUT /ports/<id>` changes).
#[derive(Clone, Debug, Default)]
pub struct PortUpdate {
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub host: Option<String>,
    pub name: Option<String>,
    /// `--no-security-group` (`clear`) and `--security-group SG...` (`add`), as the openstack
    /// CLI combines them: the port's groups, emptied first with `clear`, plus `add`.
    pub security_groups: Option<(bool, Vec<String>)>,
    /// `--no-fixed-ip` (`clear`) and `--fixed-ip subnet=S,ip-address=IP...` (`add`): the CLI
    /// sends the port's fixed IPs (none with `clear`) plus `add`.
    pub fixed_ips: Option<(bool, Vec<FixedIpSpec>)>,
    /// `port unset --fixed-ip subnet=S,ip-address=IP`: (subnet, address) as typed; the CLI
    /// drops the entry that equals both, as text, and fails when none does.
    pub remove_fixed_ips: Vec<(Option<String>, Option<String>)>,
    /// `--mac-address`.
    pub mac: Option<String>,
    /// `--enable-port-security` / `--disable-port-security`.
    pub port_security: Option<bool>,
    /// `--no-allowed-address` (`clear`) and `--allowed-address ip-address=IP[,mac-address=MAC]`
    /// (`add`, as `(MAC, IP)`): the port's pairs (none with `clear`) plus `add`.
    pub allowed_address_pairs: Option<(bool, Vec<AddressPairSpec>)>,
    /// `port unset --allowed-address`: the pairs the CLI drops (equal to an entry of the port,
    /// MAC included).
    pub remove_allowed_address_pairs: Vec<AddressPairSpec>,
    /// `port unset --security-group SG...`.
    pub remove_security_groups: Vec<String>,
    /// `--description D` (a change bumps the revision) and `--dns-name X` (kept; real
    /// Neutron's revision for it is not understood yet: the oracle showed its bump only at the
    /// port's next rewrite, so it is not counted as a change).
    pub description: Option<String>,
    pub dns_name: Option<String>,
}

impl PortUpdate {
    /// Whether the update touches what ML2 validates against the port's addresses and port
    /// security (the options beyond nova's binding `PUT`).
    fn edits_addresses_or_security(&self) -> bool {
        self.fixed_ips.is_some()
            || !self.remove_fixed_ips.is_empty()
            || self.mac.is_some()
            || self.port_security.is_some()
            || self.allowed_address_pairs.is_some()
            || !self.remove_allowed_address_pairs.is_empty()
    }
}

/// What a port update reserved (released if its transaction fails) and gave up (released once
/// it landed).
#[derive(Default)]
struct Reservations {
    ips: Vec<(Id, IpAddr)>,
    mac: Option<String>,
}

impl Reservations {
    fn release(&self, st: &mut State) {
        for (subnet, ip) in &self.ips {
            st.release_ip(*subnet, *ip);
        }
        if let Some(mac) = &self.mac {
            st.release_mac(mac);
        }
    }
}

impl Neutron {
    /// `port create` (nova's `POST /ports`): T8a, the LSP with its port security, DHCP options
    /// reference and `neutron_pg_drop` + security-group memberships, in one transaction.
    pub async fn port_create(&self, spec: PortSpec) -> Result<ActionReport> {
        self.action("port create", |mut report| async move {
            let mut spec = spec;
            let (net_id, project) = self.with_state(|st| -> Result<_> {
                let n = st.network(&spec.network)?;
                // Neutron's port security extension: a port without the option inherits the
                // network's `port_security_enabled`.
                spec.port_security = Some(spec.port_security.unwrap_or(n.port_security));
                Ok((
                    n.id,
                    spec.project
                        .clone()
                        .unwrap_or_else(|| st.config.default_project.clone()),
                ))
            })?;
            if spec.security_groups.is_none() && spec.port_security == Some(true) {
                self.ensure_default_security_group(&mut report, &project).await?;
            }
            let port = self.with_state(|st| reserve_port(st, net_id, &project, &spec))?;
            let port_id = port.id;
            let r = self
                .exec(&mut report, |st| {
                    Ok(Some(plan_lsp_create(st, port.clone(), "T8a port LSP")?))
                })
                .await;
            if r.is_err() {
                self.with_state(|st| release_port_resources(st, &port));
            }
            r?;
            report.id = Some(port_id);
            Ok(report)
        })
        .await
    }

    /// `port set` / `port unset` (nova's `PUT /ports/<id>` and the CLI's): T8b, a full LSP
    /// rewrite with the next revision; new addresses and MAC are reserved first, the ones
    /// given up are released once the rewrite landed.
    pub async fn port_update(&self, port: &str, update: PortUpdate) -> Result<ActionReport> {
        self.action("port set", |mut report| async move {
            let (updated, reserved, released) = self.with_state(|st| updated_port(st, port, &update))?;
            let id = updated.id;
            report.id = Some(id);
            if !changes_stored_fields(&self.with_state(|st| st.ports[&id].clone()), &updated) {
                // Nothing of the port changed in Neutron's DB (e.g. `port unset` of an EUI-64
                // address, which Neutron keeps): no revision bump, nothing to see in the NB.
                return Ok(report);
            }
            let r = self
                .exec(&mut report, |st| {
                    Ok(Some(plan_lsp_update(st, updated.clone(), "T8b port update")?))
                })
                .await;
            self.with_state(|st| match &r {
                Ok(()) => released.release(st),
                Err(_) => reserved.release(st),
            });
            r?;
            report.id = Some(id);
            Ok(report)
        })
        .await
    }

    /// What Neutron does when its NB monitor sees `Logical_Switch_Port.up` turn true for a
    /// bound VM port (`LogicalSwitchPortUpdateUpEvent`): the binding commit and the ACTIVE
    /// status each bump the revision and rewrite the LSP (two transactions). Call it from an
    /// NB monitor event; a no-op for a port already ACTIVE.
    pub async fn port_up(&self, port: &str) -> Result<ActionReport> {
        self.action("port up", |mut report| async move {
            let (id, active) = self.with_state(|st| st.port(port).map(|p| (p.id, p.active)))?;
            if active {
                return Ok(report);
            }
            for label in ["T8c port binding commit", "T8d port ACTIVE"] {
                let last = label.ends_with("ACTIVE");
                self.exec(&mut report, |st| {
                    let mut p = st.ports[&id].clone();
                    p.revision += 1;
                    p.active = last;
                    Ok(Some(plan_lsp_update(st, p, label)?))
                })
                .await?;
            }
            report.id = Some(id);
            Ok(report)
        })
        .await
    }

    /// Polls the NB until the port's `Logical_Switch_Port.up` is true (ovn-northd copies it
    /// from the SB binding), then runs [`Neutron::port_up`].
    pub async fn wait_port_up(&self, port: &str, timeout: Duration) -> Result<ActionReport> {
        let (name, lsp) = self.with_state(|st| st.port(port).map(|p| (p.id.to_string(), p.lsp)))?;
        if let Some(client) = self.nb_client() {
            let deadline = Instant::now() + timeout;
            loop {
                let mut txn = Transaction::new(nb::NB);
                txn.select(
                    nb::LOGICAL_SWITCH_PORT,
                    vec![Condition::uuid(lsp)],
                    Some(vec!["up".into()]),
                );
                let r = client.transact(txn).await?;
                let up = r
                    .results
                    .first()
                    .and_then(|r| r.rows.as_ref())
                    .and_then(|rows| rows.first())
                    .and_then(|row| row.get("up"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if up {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        what: format!("Logical_Switch_Port {name} up=true (is its chassis claiming it?)"),
                        after: timeout,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.port_up(&name).await
    }

    /// Like [`Neutron::wait_port_up`] but with an NB replica that monitors
    /// `Logical_Switch_Port` (no polling).
    pub async fn wait_port_up_with(
        &self,
        replica: &ovsdb::Replica,
        port: &str,
        timeout: Duration,
    ) -> Result<ActionReport> {
        let name = self.with_state(|st| st.port(port).map(|p| p.id.to_string()))?;
        let wanted = name.clone();
        replica
            .wait_for(
                nb::LOGICAL_SWITCH_PORT,
                move |row| {
                    row.get("name").and_then(Value::as_str) == Some(wanted.as_str())
                        && row.get("up").and_then(Value::as_bool) == Some(true)
                },
                timeout,
            )
            .await?;
        self.port_up(&name).await
    }

    /// `server create` as nova drives Neutron: `port create` with the instance id, then
    /// `port set` with `compute:nova` and the host. The port becomes ACTIVE once its chassis
    /// claims it and [`Neutron::port_up`] runs.
    pub async fn server_create(&self, network: &str, host: &str, fixed_ip: Option<IpAddr>) -> Result<ActionReport> {
        let device = self.with_state(|st| st.new_id().to_string());
        let mut spec = PortSpec {
            network: network.into(),
            device_id: device.clone(),
            ..Default::default()
        };
        if let Some(ip) = fixed_ip {
            spec.fixed_ips.push(FixedIpSpec {
                subnet: None,
                ip: Some(ip),
            });
        }
        let mut created = self.port_create(spec).await?;
        let id = created.id.map(|i| i.to_string()).unwrap_or_default();
        let update = PortUpdate {
            device_owner: Some("compute:nova".into()),
            host: Some(host.into()),
            ..Default::default()
        };
        let bound = self.port_update(&id, update).await?;
        created.action = "server create".into();
        created.txns.extend(bound.txns);
        created.elapsed += bound.elapsed;
        Ok(created)
    }

    /// `port delete`: floating IPs on it are disassociated first, then one transaction drops
    /// the LSP from its switch (Port_Group memberships go with it: weak references).
    pub async fn port_delete(&self, port: &str) -> Result<ActionReport> {
        self.action("port delete", |mut report| async move {
            let (id, fips) = self.with_state(|st| -> Result<_> {
                let p = st.port(port)?;
                if p.kind != PortKind::Compute {
                    return Err(Error::InUse {
                        what: format!("port {}", p.id),
                        why: format!("it is owned by {}; remove it through its owner", p.device_owner),
                    });
                }
                let fips: Vec<Id> = st
                    .floating_ips
                    .values()
                    .filter(|f| f.association.as_ref().is_some_and(|a| a.port == p.id))
                    .map(|f| f.id)
                    .collect();
                Ok((p.id, fips))
            })?;
            for fip in fips {
                let sub = self.floating_ip_unset_port(&fip.to_string()).await?;
                report.txns.extend(sub.txns);
            }
            self.exec(&mut report, |st| Ok(Some(plan_lsp_delete(st, id)?))).await?;
            Ok(report)
        })
        .await
    }
}

/// Whether `new` differs from `old` in what Neutron stores of a port (a change bumps its
/// revision).
fn changes_stored_fields(old: &Port, new: &Port) -> bool {
    (&old.name, &old.device_id, &old.device_owner, &old.host, &old.mac)
        != (&new.name, &new.device_id, &new.device_owner, &new.host, &new.mac)
        || old.description != new.description
        || old.fixed_ips != new.fixed_ips
        || old.security_groups != new.security_groups
        || old.port_security != new.port_security
        || old.allowed_address_pairs != new.allowed_address_pairs
}

/// The port after `update` (revision +1) as ML2's `update_port` makes it, with what it
/// reserved and what it gave up; Neutron's (and the CLI's) refusals before any write.
fn updated_port(st: &mut State, port: &str, update: &PortUpdate) -> Result<(Port, Reservations, Reservations)> {
    let mut p = st.port(port)?.clone();
    if update.edits_addresses_or_security() && p.kind != PortKind::Compute {
        return Err(Error::invalid(
            "port set",
            format!(
                "changing the addresses or port security of a {} port is not modelled",
                p.device_owner
            ),
        ));
    }
    if let Some(v) = &update.device_id {
        p.device_id = v.clone();
    }
    if let Some(v) = &update.device_owner {
        p.device_owner = v.clone();
    }
    if let Some(v) = &update.host {
        p.host = v.clone();
    }
    if let Some(v) = &update.name {
        p.name = v.clone();
    }
    if let Some(v) = &update.description {
        p.description = v.clone();
    }
    if let Some(v) = &update.dns_name {
        p.dns_name = v.clone();
    }
    // The CLI's edits of the lists, before anything is sent: `unset` of an entry the port
    // does not have fails in the CLI.
    let mut groups = None;
    if let Some((clear, add)) = &update.security_groups {
        // The CLI sends the port's groups plus the named ones, and Neutron refuses a list
        // with duplicates (400), e.g. naming a group the port has.
        let mut list = if *clear { vec![] } else { p.security_groups.clone() };
        for name in add {
            let g = st.security_group(name)?.id;
            if list.contains(&g) {
                return Err(Error::invalid(
                    "--security-group",
                    format!("duplicate items in the list: {g} (the port has that group already)"),
                ));
            }
            list.push(g);
        }
        groups = Some(list);
    }
    if !update.remove_security_groups.is_empty() {
        let mut list = groups.unwrap_or_else(|| p.security_groups.clone());
        for name in &update.remove_security_groups {
            let g = st.security_group(name)?.id;
            let at = list.iter().position(|x| *x == g).ok_or_else(|| {
                Error::invalid(
                    "--security-group",
                    format!("port {} does not contain security group {name}", p.id),
                )
            })?;
            list.remove(at);
        }
        groups = Some(list);
    }
    let mut pairs = None;
    if let Some((clear, add)) = &update.allowed_address_pairs {
        let mut list = if *clear {
            vec![]
        } else {
            p.allowed_address_pairs.clone()
        };
        for (mac, ip) in add {
            let pair = (mac.clone().unwrap_or_else(|| p.mac.clone()).to_lowercase(), ip.clone());
            // Neutron's 400 (DuplicateAddressPairInRequest).
            if list.contains(&pair) {
                return Err(Error::invalid(
                    "--allowed-address",
                    format!("duplicate address pair {} {} (the port has it already)", pair.0, pair.1),
                ));
            }
            list.push(pair);
        }
        pairs = Some(list);
    }
    if !update.remove_allowed_address_pairs.is_empty() {
        let mut list = pairs.unwrap_or_else(|| p.allowed_address_pairs.clone());
        for (mac, ip) in &update.remove_allowed_address_pairs {
            // The CLI compares whole entries and the port's carry their MAC: a pair given
            // without one is never found.
            let at = list
                .iter()
                .position(|(m, i)| Some(m) == mac.as_ref().map(|x| x.to_lowercase()).as_ref() && i == ip)
                .ok_or_else(|| {
                    Error::invalid(
                        "--allowed-address",
                        format!(
                            "port {} does not contain allowed-address-pair ip-address={ip}{} (give the pair's mac-address too)",
                            p.id,
                            mac.as_ref().map(|m| format!(",mac-address={m}")).unwrap_or_default()
                        ),
                    )
                })?;
            list.remove(at);
        }
        pairs = Some(list);
    }
    let mut requested: Option<Vec<FixedIpSpec>> = None;
    if let Some((clear, add)) = &update.fixed_ips {
        let mut list: Vec<FixedIpSpec> = if *clear {
            vec![]
        } else {
            p.fixed_ips
                .iter()
                .map(|f| FixedIpSpec {
                    subnet: Some(f.subnet.to_string()),
                    ip: Some(f.ip),
                })
                .collect()
        };
        list.extend(add.iter().cloned());
        requested = Some(list);
    }
    if !update.remove_fixed_ips.is_empty() {
        let mut kept = p.fixed_ips.clone();
        for (subnet, ip) in &update.remove_fixed_ips {
            let subnet_id = subnet.as_deref().map(|s| st.subnet(s).map(|s| s.id)).transpose()?;
            let at = kept
                .iter()
                .position(|f| Some(f.subnet) == subnet_id && ip.as_deref() == Some(f.ip.to_string().as_str()))
                .ok_or_else(|| {
                    Error::invalid(
                        "--fixed-ip",
                        format!(
                            "port {} does not contain fixed-ip subnet={},ip-address={} (both are needed, the address as Neutron prints it)",
                            p.id,
                            subnet.as_deref().unwrap_or(""),
                            ip.as_deref().unwrap_or("")
                        ),
                    )
                })?;
            kept.remove(at);
        }
        requested = Some(
            kept.iter()
                .map(|f| FixedIpSpec {
                    subnet: Some(f.subnet.to_string()),
                    ip: Some(f.ip),
                })
                .collect(),
        );
    }

    // Neutron's validation.
    if let Some(list) = groups {
        let stateless = list
            .iter()
            .filter(|g| st.security_groups.get(g).is_some_and(|g| !g.stateful))
            .count();
        if stateless > 0 && stateless < list.len() {
            return Err(Error::InUse {
                what: "--security-group".into(),
                why: "cannot apply both stateful and stateless security groups on the same port".into(),
            });
        }
        p.security_groups = list;
    }
    if let Some(list) = pairs {
        p.allowed_address_pairs = list;
    }
    if let Some(on) = update.port_security {
        p.port_security = on;
    }
    if !p.port_security && !p.security_groups.is_empty() {
        // PortSecurityPortHasSecurityGroup (409), or a group given to a port without it (400).
        return Err(if update.port_security == Some(false) {
            Error::InUse {
                what: format!("port {}", p.id),
                why: "port security must be enabled and the port must have an IP address to use security groups; remove its groups (--no-security-group) to disable port security".into(),
            }
        } else {
            Error::invalid(
                "--security-group",
                "a port without port security cannot have security groups",
            )
        });
    }
    if !p.port_security && !p.allowed_address_pairs.is_empty() {
        // AddressPairAndPortSecurityRequired (409).
        return Err(Error::InUse {
            what: format!("port {}", p.id),
            why:
                "port security must be enabled to have allowed address pairs; remove them (--no-allowed-address) first"
                    .into(),
        });
    }
    let mut reserved = Reservations::default();
    let mut released = Reservations::default();
    let new_mac = update.mac.as_ref().map(|m| m.to_lowercase()).filter(|m| *m != p.mac);
    if let Some(mac) = &new_mac {
        if !p.host.is_empty() {
            // ML2's PortBound (409): a bound port keeps its MAC.
            return Err(Error::InUse {
                what: format!("port {}", p.id),
                why: format!("it is bound to host {}; its MAC cannot change", p.host),
            });
        }
        st.reserve_mac(mac)?;
        reserved.mac = Some(mac.clone());
        released.mac = Some(p.mac.clone());
        p.mac = mac.clone();
    }
    if requested.is_some() || new_mac.is_some() {
        if let Err(e) = change_fixed_ips(st, &mut p, requested, new_mac.is_some(), &mut reserved, &mut released) {
            reserved.release(st);
            return Err(e);
        }
    }
    if let Err(e) = refuse_virtual_ports(st, &p) {
        reserved.release(st);
        return Err(e);
    }
    p.revision += 1;
    Ok((p, reserved, released))
}

/// Neutron makes a port without device owner whose fixed IP is another port's allowed address
/// (a VIP) a `virtual` LSP with those ports as parents; the mimic does not model that, so it refuses the
/// combination instead of writing something else.
fn refuse_virtual_ports(st: &State, port: &Port) -> Result<()> {
    // Without allowed addresses of its own, a port can only be made virtual by another port's
    // allowed address, and only while it has no device owner. When neither can match, skip
    // the walk over every port (quadratic at 1,000 VMs): a Nova VM's port (bound, so owned),
    // or any port while no port was ever given allowed addresses.
    if port.allowed_address_pairs.is_empty() {
        if !port.device_owner.is_empty() || !st.allowed_pairs_seen.get() {
            return Ok(());
        }
    } else {
        st.allowed_pairs_seen.set(true);
    }
    let others = st
        .ports
        .values()
        .filter(|o| o.id != port.id && o.network == port.network);
    for o in others {
        // Only a port without device owner becomes virtual (Neutron's condition).
        let vip = |pairs: &[(String, String)], holder: &Port| {
            pairs.iter().find_map(|(_, ip)| {
                let ip: IpAddr = ip.parse().ok()?;
                (holder.device_owner.is_empty() && holder.fixed_ips.iter().any(|f| f.ip == ip)).then_some(ip)
            })
        };
        if let Some(ip) = vip(&port.allowed_address_pairs, o).or(vip(&o.allowed_address_pairs, port)) {
            return Err(Error::invalid(
                "--allowed-address",
                format!(
                    "{ip} is a fixed IP of one port and an allowed address of another: Neutron would make a virtual LSP, which is not modelled"
                ),
            ));
        }
    }
    Ok(())
}

/// ML2's `update_port_with_ips`: the port's new fixed IPs from the requested list (`None`: the
/// current ones). Addresses named and already held are kept, new ones reserved (400 outside the
/// network's subnets or on an auto-address subnet, 409 taken), the others given up except the
/// EUI-64 addresses of auto-address subnets, which stay unless the MAC changed (then they are
/// made again from the new MAC). The list ends up as Neutron's DB returns it: sorted by address
/// text.
fn change_fixed_ips(
    st: &mut State,
    p: &mut Port,
    requested: Option<Vec<FixedIpSpec>>,
    mac_changed: bool,
    reserved: &mut Reservations,
    released: &mut Reservations,
) -> Result<()> {
    let auto = |st: &State, s: Id| {
        matches!(
            st.subnets.get(&s).and_then(|s| s.ipv6_address_mode.as_deref()),
            Some("slaac") | Some("dhcpv6-stateless")
        )
    };
    let requested = requested.unwrap_or_else(|| {
        p.fixed_ips
            .iter()
            .map(|f| FixedIpSpec {
                subnet: Some(f.subnet.to_string()),
                ip: Some(f.ip),
            })
            .collect()
    });
    let network_subnets = st.networks[&p.network].subnets.clone();
    let mut original = p.fixed_ips.clone();
    let mut kept: Vec<FixedIp> = vec![];
    let mut wanted: Vec<(Id, Option<IpAddr>)> = vec![];
    // Subnets whose EUI-64 address is made again (the MAC changed).
    let redo: Vec<Id> = if mac_changed {
        original.iter().filter(|f| is_eui64(f.ip)).map(|f| f.subnet).collect()
    } else {
        vec![]
    };
    for w in &requested {
        let subnet = match &w.subnet {
            Some(name) => {
                let s = st.subnet(name)?;
                if s.network != p.network {
                    return Err(Error::invalid(
                        "--fixed-ip",
                        format!("subnet {name} is not on the port's network"),
                    ));
                }
                Some(s.id)
            }
            None => None,
        };
        if subnet.is_some_and(|s| redo.contains(&s)) {
            continue;
        }
        match w.ip {
            Some(ip) => {
                if let Some(at) = original.iter().position(|f| f.ip == ip) {
                    kept.push(original.remove(at));
                    continue;
                }
                let subnet = match subnet {
                    Some(s) => {
                        if !st.subnets[&s].cidr.contains(&ip) {
                            return Err(Error::invalid(
                                "--fixed-ip",
                                format!("{ip} is not a valid address of subnet {s}"),
                            ));
                        }
                        s
                    }
                    None => *network_subnets
                        .iter()
                        .find(|s| st.subnets[*s].cidr.contains(&ip))
                        .ok_or_else(|| Error::invalid("--fixed-ip", format!("{ip} is in no subnet of the network")))?,
                };
                if auto(st, subnet) {
                    return Err(Error::invalid(
                        "--fixed-ip",
                        format!("{ip} cannot be assigned directly: subnet {subnet} gives automatic (EUI-64) addresses"),
                    ));
                }
                wanted.push((subnet, Some(ip)));
            }
            None => {
                let subnet = subnet.ok_or_else(|| Error::invalid("--fixed-ip", "needs subnet= or ip-address="))?;
                if let Some(at) = original.iter().rposition(|f| f.subnet == subnet) {
                    // An EUI-64 address Neutron makes again from the same MAC: the same.
                    kept.push(original.remove(at));
                } else if !auto(st, subnet) {
                    wanted.push((subnet, None));
                }
            }
        }
    }
    // Unclaimed addresses: given up, except those of auto-address subnets (unless redone).
    for f in original {
        if auto(st, f.subnet) && !redo.contains(&f.subnet) {
            kept.push(f);
        } else {
            released.ips.push((f.subnet, f.ip));
        }
    }
    p.fixed_ips = kept;
    for (subnet, ip) in wanted {
        let ip = if auto(st, subnet) {
            eui64(&st.subnets[&subnet].cidr, &p.mac)
        } else {
            match ip {
                Some(ip) => ip,
                None => {
                    let ip = st.allocate_ip(subnet, None, false)?;
                    reserved.ips.push((subnet, ip));
                    p.fixed_ips.push(FixedIp { subnet, ip });
                    continue;
                }
            }
        };
        st.allocate_ip(subnet, Some(ip), false)?;
        reserved.ips.push((subnet, ip));
        p.fixed_ips.push(FixedIp { subnet, ip });
    }
    // Every auto-address subnet of the network the port has no address in (or whose address
    // is redone): its EUI-64 address from the port's MAC.
    for s in network_subnets {
        if auto(st, s) && !p.fixed_ips.iter().any(|f| f.subnet == s) {
            let ip = eui64(&st.subnets[&s].cidr, &p.mac);
            st.allocate_ip(s, Some(ip), false)?;
            reserved.ips.push((s, ip));
            p.fixed_ips.push(FixedIp { subnet: s, ip });
        }
    }
    p.fixed_ips.sort_by_key(|f| (f.ip.to_string(), f.subnet.to_string()));
    Ok(())
}

/// Neutron's `is_eui64_address`: an IPv6 address whose interface id has `ff:fe` in its middle.
fn is_eui64(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            let o = v6.octets();
            o[11] == 0xff && o[12] == 0xfe
        }
        IpAddr::V4(_) => false,
    }
}

/// Builds a new port with its MAC and addresses reserved.
fn reserve_port(st: &mut State, net_id: Id, project: &str, spec: &PortSpec) -> Result<Port> {
    let sgs: Vec<Id> = match &spec.security_groups {
        Some(names) => names
            .iter()
            .map(|n| st.security_group(n).map(|s| s.id))
            .collect::<Result<_>>()?,
        None if spec.port_security != Some(false) => st.default_sg.get(project).copied().into_iter().collect(),
        None => vec![],
    };
    let stateless = sgs
        .iter()
        .filter(|g| st.security_groups.get(g).is_some_and(|g| !g.stateful))
        .count();
    if stateless > 0 && stateless < sgs.len() {
        // Neutron's 409.
        return Err(Error::InUse {
            what: "--security-group".into(),
            why: "cannot apply both stateful and stateless security groups on the same port".into(),
        });
    }
    if spec.port_security == Some(false) && !sgs.is_empty() && spec.security_groups.is_some() {
        return Err(Error::invalid(
            "--security-group",
            "a port without port security cannot have security groups",
        ));
    }
    let id = st.new_id();
    let mac = match &spec.mac {
        Some(m) => st.reserve_mac(m)?,
        None => st.new_mac(),
    };
    let mut port = Port {
        id,
        name: spec.name.clone(),
        network: net_id,
        project: project.to_owned(),
        mac,
        fixed_ips: vec![],
        device_owner: spec.device_owner.clone(),
        device_id: spec.device_id.clone(),
        host: spec.host.clone(),
        security_groups: sgs,
        port_security: spec.port_security != Some(false),
        revision: 1,
        active: false,
        kind: PortKind::Compute,
        routed: false,
        port_fip: None,
        lsp: ovsdb::Uuid::new_v4(),
        lrp: None,
        lrp_revision: 0,
        allowed_address_pairs: vec![],
        description: spec.description.clone(),
        dns_name: spec.dns_name.clone(),
    };
    port.allowed_address_pairs = spec
        .allowed_address_pairs
        .iter()
        .map(|(mac, ip)| {
            (
                mac.clone().unwrap_or_else(|| port.mac.clone()).to_lowercase(),
                ip.clone(),
            )
        })
        .collect();
    if !port.port_security && !port.allowed_address_pairs.is_empty() {
        release_port_resources(st, &port);
        return Err(Error::InUse {
            what: "--allowed-address".into(),
            why: "a port without port security cannot have allowed address pairs".into(),
        });
    }
    if let Err(e) = allocate_port_ips(st, &mut port, &spec.fixed_ips).and_then(|_| refuse_virtual_ports(st, &port)) {
        release_port_resources(st, &port);
        return Err(e);
    }
    Ok(port)
}

/// Allocates the requested (or default) fixed IPs of a port on its network.
pub(crate) fn allocate_port_ips(st: &mut State, port: &mut Port, wanted: &[FixedIpSpec]) -> Result<()> {
    let subnets: Vec<Id> = st.networks[&port.network].subnets.clone();
    if wanted.is_empty() {
        if let Some(v4) = subnets.iter().find(|s| st.subnets[*s].is_v4()) {
            let ip = st.allocate_ip(*v4, None, false)?;
            port.fixed_ips.push(FixedIp { subnet: *v4, ip });
        }
        let v6: Vec<Id> = subnets.iter().filter(|s| !st.subnets[*s].is_v4()).copied().collect();
        for s in &v6 {
            let ip = match st.subnets[s].ipv6_address_mode.as_deref() {
                Some("slaac") | Some("dhcpv6-stateless") => {
                    let ip = eui64(&st.subnets[s].cidr, &port.mac);
                    st.allocate_ip(*s, Some(ip), false)?
                }
                _ => st.allocate_ip(*s, None, false)?,
            };
            port.fixed_ips.push(FixedIp { subnet: *s, ip });
        }
        return Ok(());
    }
    for w in wanted {
        let subnet = match (&w.subnet, w.ip) {
            (Some(name), _) => {
                let s = st.subnet(name)?;
                if s.network != port.network {
                    return Err(Error::invalid(
                        "--fixed-ip",
                        format!("subnet {name} is not on the port's network"),
                    ));
                }
                s.id
            }
            (None, Some(ip)) => *subnets
                .iter()
                .find(|s| st.subnets[*s].cidr.contains(&ip))
                .ok_or_else(|| Error::invalid("--fixed-ip", format!("{ip} is in no subnet of the network")))?,
            (None, None) => *subnets
                .first()
                .ok_or_else(|| Error::invalid("--fixed-ip", "the network has no subnet"))?,
        };
        let ip = st.allocate_ip(subnet, w.ip, false)?;
        port.fixed_ips.push(FixedIp { subnet, ip });
    }
    // Neutron's IPAM adds every auto-address (SLAAC, DHCPv6-stateless) subnet the request did
    // not name to a port that is not a router port: its EUI-64 address.
    if !matches!(
        port.kind,
        PortKind::RouterInterface { .. } | PortKind::RouterGateway { .. }
    ) {
        for s in subnets {
            let auto = matches!(
                st.subnets[&s].ipv6_address_mode.as_deref(),
                Some("slaac") | Some("dhcpv6-stateless")
            );
            if auto && !port.fixed_ips.iter().any(|f| f.subnet == s) {
                let ip = eui64(&st.subnets[&s].cidr, &port.mac);
                let ip = st.allocate_ip(s, Some(ip), false)?;
                port.fixed_ips.push(FixedIp { subnet: s, ip });
            }
        }
    }
    Ok(())
}

/// The SLAAC address of `mac` in `cidr` (modified EUI-64).
pub fn eui64(cidr: &ipnet::IpNet, mac: &str) -> IpAddr {
    let b: Vec<u8> = mac.split(':').filter_map(|x| u8::from_str_radix(x, 16).ok()).collect();
    let prefix = match cidr.network() {
        IpAddr::V6(p) => p.octets(),
        IpAddr::V4(_) => return cidr.network(),
    };
    let mut o = prefix;
    if b.len() == 6 {
        o[8] = b[0] ^ 0x02;
        o[9] = b[1];
        o[10] = b[2];
        o[11] = 0xff;
        o[12] = 0xfe;
        o[13] = b[3];
        o[14] = b[4];
        o[15] = b[5];
    }
    IpAddr::V6(Ipv6Addr::from(o))
}

pub(crate) fn release_port_resources(st: &mut State, port: &Port) {
    for f in &port.fixed_ips {
        st.release_ip(f.subnet, f.ip);
    }
    st.release_mac(&port.mac);
}

/// ML2 `create_port_postcommit`: LSP insert, switch `ports` mutate, the QoS `qos_min_rate`
/// artefact and, for untrusted port-security ports, `neutron_pg_drop` and SG group
/// memberships.
pub fn plan_lsp_create(st: &State, port: Port, label: &str) -> Result<Planned> {
    let net = st
        .networks
        .get(&port.network)
        .ok_or_else(|| Error::invalid("port", "its network vanished"))?;
    let mut txn = Transaction::new(nb::NB);
    let lsp = txn.insert(nb::LOGICAL_SWITCH_PORT, nb::lsp_insert_row(st, &port));
    nb::mutate_ref(
        &mut txn,
        nb::LOGICAL_SWITCH,
        Value::uuid(net.ls),
        "ports",
        true,
        lsp.clone(),
    );
    nb::qos_artifact(&mut txn, lsp.clone());
    if !nb::is_trusted(&port) && port.port_security {
        nb::mutate_ref(
            &mut txn,
            nb::PORT_GROUP,
            Value::uuid(pg_drop(st)?),
            "ports",
            true,
            lsp.clone(),
        );
        for sg in &port.security_groups {
            let pg = st.security_groups[sg].port_group;
            nb::mutate_ref(&mut txn, nb::PORT_GROUP, Value::uuid(pg), "ports", true, lsp.clone());
        }
    }
    let (name, revision) = (port.id.to_string(), port.revision);
    Ok(Planned::new(label, txn, move |st, r| {
        let mut port = port;
        port.lsp = nb::inserted(r, &lsp);
        if port.kind == PortKind::Metadata {
            if let Some(n) = st.networks.get_mut(&port.network) {
                n.metadata_port = Some(port.id);
            }
        }
        st.ports.insert(port.id, port);
    })
    .landed_if(nb::LOGICAL_SWITCH_PORT, name, revision))
}

/// ML2 `update_port_postcommit`: `wait` on the LSP's current `external_ids`, the full LSP
/// rewrite, the `neutron_pg_drop` mutation (insert for port-security ports, delete for
/// trusted ones) and SG membership changes.
pub fn plan_lsp_update(st: &State, port: Port, label: &str) -> Result<Planned> {
    let old = st
        .ports
        .get(&port.id)
        .ok_or_else(|| Error::invalid("port", format!("{} vanished", port.id)))?;
    let mut txn = Transaction::new(nb::NB);
    nb::verify_external_ids(
        &mut txn,
        nb::LOGICAL_SWITCH_PORT,
        old.lsp,
        &nb::lsp_external_ids(st, old),
    );
    txn.update(
        nb::LOGICAL_SWITCH_PORT,
        vec![Condition::uuid(port.lsp)],
        nb::lsp_update_row(st, &port),
    );
    let lsp = Value::uuid(port.lsp);
    if nb::is_trusted(&port) {
        nb::mutate_ref(
            &mut txn,
            nb::PORT_GROUP,
            Value::uuid(pg_drop(st)?),
            "ports",
            false,
            lsp.clone(),
        );
    } else if port.port_security {
        nb::mutate_ref(
            &mut txn,
            nb::PORT_GROUP,
            Value::uuid(pg_drop(st)?),
            "ports",
            true,
            lsp.clone(),
        );
    } else if old.port_security {
        // Port security switched off: the port leaves the drop group (its groups are gone).
        nb::mutate_ref(
            &mut txn,
            nb::PORT_GROUP,
            Value::uuid(pg_drop(st)?),
            "ports",
            false,
            lsp.clone(),
        );
    }
    for sg in port.security_groups.iter().filter(|s| !old.security_groups.contains(s)) {
        let pg = st.security_groups[sg].port_group;
        nb::mutate_ref(&mut txn, nb::PORT_GROUP, Value::uuid(pg), "ports", true, lsp.clone());
    }
    for sg in old.security_groups.iter().filter(|s| !port.security_groups.contains(s)) {
        if let Some(g) = st.security_groups.get(sg) {
            nb::mutate_ref(
                &mut txn,
                nb::PORT_GROUP,
                Value::uuid(g.port_group),
                "ports",
                false,
                lsp.clone(),
            );
        }
    }
    let (name, revision) = (port.id.to_string(), port.revision);
    Ok(Planned::new(label, txn, move |st, _| {
        st.ports.insert(port.id, port);
    })
    .landed_if(nb::LOGICAL_SWITCH_PORT, name, revision))
}

/// ML2 `delete_port_postcommit`: the LSP leaves its switch (and is garbage-collected).
pub fn plan_lsp_delete(st: &State, port_id: Id) -> Result<Planned> {
    let port = st
        .ports
        .get(&port_id)
        .ok_or_else(|| Error::invalid("port", format!("{port_id} vanished")))?;
    let ls = st.networks[&port.network].ls;
    let mut txn = Transaction::new(nb::NB);
    nb::mutate_ref(
        &mut txn,
        nb::LOGICAL_SWITCH,
        Value::uuid(ls),
        "ports",
        false,
        Value::uuid(port.lsp),
    );
    Ok(Planned::new("port delete LSP", txn, move |st, _| {
        if let Some(port) = st.ports.remove(&port_id) {
            release_port_resources(st, &port);
            if let Some(n) = st.networks.get_mut(&port.network) {
                if n.metadata_port == Some(port_id) {
                    n.metadata_port = None;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_addresses_are_told_by_their_fffe() {
        let cidr: ipnet::IpNet = "2001:db8::/64".parse().unwrap();
        assert!(is_eui64(eui64(&cidr, "fa:16:3e:11:22:33")));
        assert!(!is_eui64("2001:db8::10".parse().unwrap()));
        assert!(!is_eui64("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn eui64_flips_the_universal_bit() {
        let cidr: ipnet::IpNet = "2001:db8::/64".parse().unwrap();
        assert_eq!(
            eui64(&cidr, "fa:16:3e:11:22:33").to_string(),
            "2001:db8::f816:3eff:fe11:2233"
        );
    }
}
