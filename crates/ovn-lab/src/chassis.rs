//! Real chassis, the external host, and the VM plumbing on top of them.
//!
//! A chassis is a network namespace `<prefix>-<name>` running its own `ovsdb-server`,
//! `ovs-vswitchd` (userspace `netdev` datapath) and `ovn-controller`, with pidfiles, logs and
//! sockets in `DIR/hv/<name>/`. Its encap IP sits on the `br-phy` bridge whose uplink `eth0`
//! is a veth into the underlay namespace's node bridge; network nodes also have `br-ex` with
//! uplink `eth1` on the provider bridge, where the external host lives. `ovn-controller` reaches
//! the SB through a unix socket (the file system is shared), so no TCP crosses namespaces.
//!
//! A VM is an OVS internal port on `br-int` (with `external_ids:iface-id` = the logical port)
//! moved into its own namespace `<prefix>-vm-<port>`. The OVS writes go through our
//! [`ovsdb::Client`] on the chassis' `db.sock`; only bridge setup at bring-up uses one
//! `ovs-vsctl` call per chassis. Plugging and pinging a VM start no process: the namespace,
//! links, addresses and routes are made over rtnetlink (`vmnet`) and pings are ICMP sockets
//! inside the VM's namespace (`probe`).
//!
//! Must not know: Neutron, logical topology (switches and ports are the caller's business).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use ovsdb::{Client, ClientOptions, Condition, Mutation, Row, Transaction, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::netns::Ip;
use crate::probe::{Prober, DEFAULT_PROBE_INTERVAL};
use crate::process::{poll_until, Cmd, Daemon};
use crate::spec::{ChassisRole, ChassisSpec};
use crate::state::{ProcessRole, Recorder};
use crate::vmnet::{self, Netns};

const OVS_DB: &str = "Open_vSwitch";
/// Neutron's default MTU for geneve tenant networks on a 1500-byte underlay.
pub const DEFAULT_VM_MTU: u32 = 1442;
/// How long a VM's tap may take to appear after its port is added.
const TAP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a tap that vanished right after its move into the VM namespace is moved again.
const TAP_MOVE_ATTEMPTS: u32 = 5;
/// How long to wait for the tap to show up in the chassis' namespace once it has an ofport.
const TAP_APPEAR_POLL: Duration = Duration::from_millis(5);

/// One real chassis of a running lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RealChassis {
    name: String,
    role: ChassisRole,
    hostname: String,
    netns: String,
    encap_ip: Ipv4Addr,
    dir: PathBuf,
    prefix: String,
    /// Connections into the chassis, opened on first use.
    #[serde(skip)]
    live: Connections,
}

/// The lazily opened connections into a chassis, shared by clones: its OVS database, and
/// rtnetlink inside its namespace (where its VMs' taps appear).
#[derive(Clone, Default)]
struct Connections {
    ovs: Arc<tokio::sync::OnceCell<Client>>,
    netlink: Arc<tokio::sync::OnceCell<Netns>>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.ovs.initialized() {
            "connected"
        } else {
            "not connected"
        })
    }
}

impl RealChassis {
    /// Chassis name = OVS `system-id` = SB `Chassis.name`.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn role(&self) -> ChassisRole {
        self.role
    }
    /// SB `Chassis.hostname` (what Neutron's `binding:host_id` names).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
    pub fn netns(&self) -> &str {
        &self.netns
    }
    pub fn encap_ip(&self) -> Ipv4Addr {
        self.encap_ip
    }
    /// `unix:` remote of the chassis' local Open_vSwitch database.
    pub fn ovs_remote(&self) -> String {
        format!("unix:{}", self.db_sock().display())
    }
    /// Where its pidfiles, logs and sockets are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db_sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    async fn ovs_client(&self) -> Result<&Client> {
        self.live
            .ovs
            .get_or_try_init(|| async {
                let opts = ClientOptions::new(&self.ovs_remote())
                    .map_err(|e| Error::ovsdb("bad chassis remote", e))?
                    .inactivity_probe(None);
                Client::connect(opts).await.map_err(|e| {
                    Error::ovsdb(
                        format!("cannot connect to the OVS database of chassis {}", self.name),
                        e,
                    )
                })
            })
            .await
    }

    /// rtnetlink in the chassis' namespace.
    async fn netlink(&self) -> Result<&rtnetlink::Handle> {
        let netns = self
            .live
            .netlink
            .get_or_try_init(|| async { Ok::<_, Error>(vmnet::enter(&self.netns, || Ok(())).await?.0) })
            .await?;
        Ok(&netns.nl)
    }

    /// Plugs a VM into this chassis: an internal port on `br-int` with `iface-id` =
    /// `spec.port_name`, moved into its own namespace with the MAC, IP, MTU and default route.
    /// `ovn-controller` then claims the logical port of that name. The returned [`Vm`] can
    /// ping from its namespace at once.
    pub async fn bind_vm(&self, spec: VmSpec) -> Result<Vm> {
        let ifname = tap_name(&spec.port_name);
        let vm_netns = format!("{}-vm-{}", self.prefix, sanitize(&spec.port_name, 40));
        let ip_cidr = spec.parsed_ip_cidr()?;
        let ip6_cidr: Option<ipnet::Ipv6Net> = match &spec.ip6_cidr {
            Some(c) => Some(
                c.parse()
                    .map_err(|_| Error::InvalidSpec(format!("VM IPv6 address {c:?} is not ADDRESS/PREFIX")))?,
            ),
            None => None,
        };
        let mac = vmnet::parse_mac(&spec.mac)
            .ok_or_else(|| Error::InvalidSpec(format!("VM MAC {:?} is not aa:bb:cc:dd:ee:ff", spec.mac)))?;
        let client = self.ovs_client().await?;
        let chassis_nl = self.netlink().await?;
        let main_family = match ip_cidr {
            ipnet::IpNet::V4(_) => surge_ping::ICMP::V4,
            ipnet::IpNet::V6(_) => surge_ping::ICMP::V6,
        };

        // The OVS port and the VM's namespace, at the same time.
        let (added, made) = tokio::join!(
            self.add_internal_port(client, &ifname, &spec),
            // The prober of the VM's main address family, opened where the VM lives.
            vmnet::create(&vm_netns, move || crate::probe::open(main_family))
        );
        let vm = Vm {
            port_name: spec.port_name.clone(),
            chassis: self.name.clone(),
            netns: Some(vm_netns.clone()),
            ifname: ifname.clone(),
            ip: ip_cidr.addr(),
            prober: ProberCell::default(),
        };
        let (netns, prober) = match (added, made) {
            (Ok(()), Ok(made)) => made,
            (added, made) => {
                let _ = self.unbind_vm(&vm).await;
                return Err(added
                    .err()
                    .or(made.err())
                    .unwrap_or_else(|| Error::NotFound("bind failed".into())));
            }
        };
        let _ = match main_family {
            surge_ping::ICMP::V4 => vm.prober.0 .0.set(prober),
            surge_ping::ICMP::V6 => vm.prober.0 .1.set(prober),
        };
        let plumb = async {
            let index = self.move_tap(client, chassis_nl, &ifname, &netns).await?;
            let nl = &netns.nl;
            let what = |step: &str| format!("{step} of {ifname} in {vm_netns}");
            vmnet::configure_link(nl, index, mac, spec.mtu)
                .await
                .map_err(|e| vmnet::nl_error(&what("cannot set MAC, MTU and up"), e))?;
            let ipv4 = ip_cidr.addr().is_ipv4();
            let ipv6 = ip_cidr.addr().is_ipv6() || ip6_cidr.is_some();
            vmnet::tune_arp(nl, index, ipv4, ipv6)
                .await
                .map_err(|e| vmnet::nl_error(&what("cannot tune ARP"), e))?;
            match ip_cidr.addr() {
                IpAddr::V4(_) => vmnet::add_address(nl, index, ip_cidr.addr(), ip_cidr.prefix_len()).await,
                IpAddr::V6(ip) => vmnet::add_address6_nodad(nl, index, ip, ip_cidr.prefix_len()).await,
            }
            .map_err(|e| vmnet::nl_error(&what("cannot add the address"), e))?;
            match spec.gateway {
                Some(IpAddr::V4(gw)) => vmnet::add_default_route(nl, gw).await,
                Some(IpAddr::V6(gw)) => vmnet::add_default_route6(nl, gw).await,
                None => Ok(()),
            }
            .map_err(|e| {
                let gw = spec.gateway.map(|g| g.to_string()).unwrap_or_default();
                vmnet::nl_error(&format!("cannot add the default route via {gw} in {vm_netns}"), e)
            })?;
            if let Some(ip6) = ip6_cidr {
                vmnet::add_address6_nodad(nl, index, ip6.addr(), ip6.prefix_len())
                    .await
                    .map_err(|e| vmnet::nl_error(&what("cannot add the IPv6 address"), e))?;
                if let Some(gw6) = spec.gateway6 {
                    vmnet::add_default_route6(nl, gw6).await.map_err(|e| {
                        vmnet::nl_error(&format!("cannot add the IPv6 default route via {gw6} in {vm_netns}"), e)
                    })?;
                }
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = plumb.await {
            let _ = self.unbind_vm(&vm).await;
            return Err(e);
        }
        tracing::debug!(chassis = %self.name, port = %spec.port_name, netns = %vm_netns, "VM bound");
        Ok(vm)
    }

    /// Adds internal port `ifname` for `spec` to `br-int`.
    async fn add_internal_port(&self, client: &Client, ifname: &str, spec: &VmSpec) -> Result<()> {
        let mut txn = Transaction::new(OVS_DB);
        let iface = txn.insert(
            "Interface",
            Row::new()
                .with("name", ifname)
                .with("type", "internal")
                .with("mtu_request", i64::from(spec.mtu))
                .with(
                    "external_ids",
                    Value::string_map([
                        ("iface-id", spec.port_name.as_str()),
                        ("attached-mac", spec.mac.as_str()),
                        ("iface-status", "active"),
                    ]),
                ),
        );
        let port = txn.insert("Port", Row::new().with("name", ifname).with("interfaces", iface));
        txn.mutate(
            "Bridge",
            vec![Condition::eq("name", "br-int")],
            vec![Mutation::insert("ports", port)],
        );
        let result = client.transact(txn).await.map_err(|e| {
            Error::ovsdb(
                format!("cannot add port {ifname} to br-int on chassis {}", self.name),
                e,
            )
        })?;
        if result.results.get(2).and_then(|r| r.count) != Some(1) {
            return Err(Error::NotFound(format!(
                "chassis {} has no br-int yet (ovn-controller creates it once connected to the SB)",
                self.name
            )));
        }
        Ok(())
    }

    /// Moves tap `ifname` from the chassis' namespace into `vm`'s and returns its index there.
    ///
    /// ovs-vswitchd (netdev datapath) creates the tap, then finishes adding it to the datapath
    /// by its name in its own namespace; a tap moved away before that fails to be added, is
    /// closed (which destroys it, wherever it is by then) and is created again in the chassis'
    /// namespace. So the tap is moved only once the Interface has its `ofport` (vswitchd
    /// writes it after adding the port), and is looked up in the VM's namespace after the move:
    /// if it is not there, it is taken again from the chassis' namespace.
    async fn move_tap(&self, client: &Client, chassis_nl: &rtnetlink::Handle, ifname: &str, vm: &Netns) -> Result<u32> {
        let start = Instant::now();
        for attempt in 1..=TAP_MOVE_ATTEMPTS {
            self.wait_for_ofport(client, ifname).await?;
            let index = loop {
                let found = vmnet::link_index(chassis_nl, ifname)
                    .await
                    .map_err(|e| vmnet::nl_error(&format!("cannot look up {ifname} on chassis {}", self.name), e))?;
                if let Some(index) = found {
                    break index;
                }
                if start.elapsed() >= TAP_TIMEOUT {
                    return Err(Error::Timeout {
                        what: format!("tap {ifname} on chassis {}", self.name),
                        after: TAP_TIMEOUT,
                    });
                }
                tokio::time::sleep(TAP_APPEAR_POLL).await;
            };
            match vmnet::move_link(chassis_nl, index, &vm.fd).await {
                Ok(()) => {}
                // Gone between the lookup and the move: vswitchd is re-creating it.
                Err(e) if vmnet::is_no_device(&e) => continue,
                Err(e) => {
                    return Err(vmnet::nl_error(
                        &format!("cannot move {ifname} from chassis {} into its VM namespace", self.name),
                        e,
                    ))
                }
            }
            let moved = vmnet::link_index(&vm.nl, ifname)
                .await
                .map_err(|e| vmnet::nl_error(&format!("cannot look up {ifname} in its VM namespace"), e))?;
            match moved {
                Some(index) => return Ok(index),
                None => {
                    tracing::debug!(chassis = %self.name, tap = %ifname, attempt, "tap vanished after the move; moving it again")
                }
            }
        }
        Err(Error::NotFound(format!(
            "tap {ifname} of chassis {} vanished after each of {TAP_MOVE_ATTEMPTS} moves into its VM namespace",
            self.name
        )))
    }

    /// Waits until ovs-vswitchd has given interface `ifname` an OpenFlow port number, i.e. has
    /// finished adding it: one `wait` transaction the OVS database answers when that happens.
    async fn wait_for_ofport(&self, client: &Client, ifname: &str) -> Result<()> {
        let mut txn = Transaction::new(OVS_DB);
        txn.push(ovsdb::Operation::Wait {
            table: "Interface".into(),
            conditions: vec![Condition::eq("name", ifname)],
            columns: vec!["ofport".into()],
            until_equal: false,
            rows: vec![Row::new().with("ofport", Value::empty_set())],
            timeout_ms: Some(TAP_TIMEOUT.as_millis() as u64),
        });
        txn.select(
            "Interface",
            vec![Condition::eq("name", ifname)],
            Some(vec!["ofport".into()]),
        );
        let found = client.transact(txn).await.map_err(|e| match e {
            ovsdb::Error::Transaction {
                error: ovsdb::OperationError::TimedOut(_),
                ..
            } => Error::Timeout {
                what: format!("ofport of {ifname} on chassis {}", self.name),
                after: TAP_TIMEOUT,
            },
            e => Error::ovsdb(
                format!("cannot read the ofport of {ifname} on chassis {}", self.name),
                e,
            ),
        })?;
        let ofport = found
            .results
            .get(1)
            .and_then(|r| r.rows.as_ref())
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("ofport"))
            .and_then(|v| v.as_i64());
        match ofport {
            Some(p) if p > 0 => Ok(()),
            other => Err(Error::NotFound(format!(
                "ovs-vswitchd could not add {ifname} on chassis {} (ofport {other:?}); see its ovs-vswitchd.log",
                self.name
            ))),
        }
    }

    /// Unplugs a VM: removes its port from `br-int` (through the OVS database) and deletes its
    /// namespace. Unplugging twice is fine.
    pub async fn unbind_vm(&self, vm: &Vm) -> Result<()> {
        let client = self.ovs_client().await?;
        let mut select = Transaction::new(OVS_DB);
        select.select(
            "Port",
            vec![Condition::eq("name", vm.ifname.as_str())],
            Some(vec!["_uuid".into()]),
        );
        let found = client
            .transact(select)
            .await
            .map_err(|e| Error::ovsdb(format!("cannot look up port {} on chassis {}", vm.ifname, self.name), e))?;
        let uuids: Vec<_> = found
            .results
            .first()
            .and_then(|r| r.rows.as_ref())
            .map(|rows| rows.iter().filter_map(Row::uuid).collect())
            .unwrap_or_default();
        if !uuids.is_empty() {
            let mut txn = Transaction::new(OVS_DB);
            txn.mutate(
                "Bridge",
                vec![Condition::eq("name", "br-int")],
                vec![Mutation::delete("ports", Value::set(uuids))],
            );
            client
                .transact(txn)
                .await
                .map_err(|e| Error::ovsdb(format!("cannot remove port {} on chassis {}", vm.ifname, self.name), e))?;
        }
        match &vm.netns {
            Some(netns) => vmnet::delete(netns).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Plugs a passive port: the internal port on `br-int` with `iface-id` = `spec.port_name`,
    /// as [`RealChassis::bind_vm`] adds it, but no namespace behind it, so nothing sends from
    /// it (upstream ovn-heater's "passive" ports). `ovn-controller` claims and installs it all
    /// the same; the returned [`Vm`] cannot ping. For measuring the control plane alone: a
    /// VM's namespace, its link up and its probes cost the chassis' userspace datapath CPU.
    pub async fn bind_passive(&self, spec: VmSpec) -> Result<Vm> {
        let ip_cidr = spec.parsed_ip_cidr()?;
        let ifname = tap_name(&spec.port_name);
        let client = self.ovs_client().await?;
        self.add_internal_port(client, &ifname, &spec).await?;
        Ok(Vm {
            port_name: spec.port_name.clone(),
            chassis: self.name.clone(),
            netns: None,
            ifname,
            ip: ip_cidr.addr(),
            prober: ProberCell::default(),
        })
    }
}

/// What to plug: the logical port's name and the addresses the CMS gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    /// `external_ids:iface-id` = the logical switch port's name (Neutron: the port id).
    pub port_name: String,
    pub mac: String,
    /// `10.0.0.5/24`.
    pub ip_cidr: String,
    /// Default route, if any.
    pub gateway: Option<IpAddr>,
    pub mtu: u32,
    /// A second, IPv6 address (`fd00::5/64`) for dual-stack VMs, and its default route.
    pub ip6_cidr: Option<String>,
    pub gateway6: Option<std::net::Ipv6Addr>,
}

impl VmSpec {
    /// `ip_cidr` parsed.
    fn parsed_ip_cidr(&self) -> Result<ipnet::IpNet> {
        self.ip_cidr
            .parse()
            .map_err(|_| Error::InvalidSpec(format!("VM address {:?} is not ADDRESS/PREFIX", self.ip_cidr)))
    }
    pub fn new(port_name: impl Into<String>, mac: impl Into<String>, ip_cidr: impl Into<String>) -> Self {
        VmSpec {
            port_name: port_name.into(),
            mac: mac.into(),
            ip_cidr: ip_cidr.into(),
            gateway: None,
            mtu: DEFAULT_VM_MTU,
            ip6_cidr: None,
            gateway6: None,
        }
    }
    /// Dual stack: also `ip6_cidr` (ADDRESS/PREFIX), with a default route via `gateway6`.
    pub fn ipv6(mut self, ip6_cidr: impl Into<String>, gateway6: Option<std::net::Ipv6Addr>) -> Self {
        self.ip6_cidr = Some(ip6_cidr.into());
        self.gateway6 = gateway6;
        self
    }
    pub fn gateway(mut self, gw: IpAddr) -> Self {
        self.gateway = Some(gw);
        self
    }
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }
}

/// A VM plugged into a chassis: a namespace with one interface.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vm {
    port_name: String,
    chassis: String,
    /// `None` for a passive port ([`RealChassis::bind_passive`]): nothing behind it to ping from.
    netns: Option<String>,
    ifname: String,
    ip: IpAddr,
    /// Its ICMP socket (opened by `bind_vm`, or on first ping).
    #[serde(skip)]
    prober: ProberCell,
}

/// A namespace's probers (ICMP and ICMPv6), each opened on first use and shared by clones.
#[derive(Clone, Debug, Default)]
struct ProberCell(Arc<(tokio::sync::OnceCell<Prober>, tokio::sync::OnceCell<Prober>)>);

impl ProberCell {
    async fn get(&self, netns: &str, dest: IpAddr) -> Result<&Prober> {
        let (cell, family) = match dest {
            IpAddr::V4(_) => (&self.0 .0, surge_ping::ICMP::V4),
            IpAddr::V6(_) => (&self.0 .1, surge_ping::ICMP::V6),
        };
        cell.get_or_try_init(|| vmnet::run_in(netns, move || crate::probe::open(family)))
            .await
    }
}

impl Vm {
    pub fn port_name(&self) -> &str {
        &self.port_name
    }
    pub fn chassis(&self) -> &str {
        &self.chassis
    }
    /// The VM's namespace; `None` for a passive port.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }
    /// The interface name inside the VM (also the OVS port name): `tap` + the port name's start.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Pings `dest` from the VM every 10 ms until the first reply or `timeout`: `Some(time to
    /// the first reply)`, or `None` when nothing answered.
    pub async fn ping(&self, dest: IpAddr, timeout: Duration) -> Result<Option<Duration>> {
        self.ping_every(dest, DEFAULT_PROBE_INTERVAL, timeout).await
    }

    /// [`Vm::ping`] with echo requests `interval` apart (the result's resolution).
    pub async fn ping_every(&self, dest: IpAddr, interval: Duration, timeout: Duration) -> Result<Option<Duration>> {
        let Some(netns) = &self.netns else {
            return Err(Error::InvalidSpec(format!(
                "port {} is passive (bound without a VM namespace): it cannot ping",
                self.port_name
            )));
        };
        probe_from(&self.prober, netns, dest, interval, timeout).await
    }
}

async fn probe_from(
    prober: &ProberCell,
    netns: &str,
    dest: IpAddr,
    interval: Duration,
    timeout: Duration,
) -> Result<Option<Duration>> {
    Ok(prober
        .get(netns, dest)
        .await?
        .until_reply(dest, interval, timeout)
        .await)
}

/// A host on the provider network (behind the network nodes' `br-ex`), e.g. the target of a
/// VM's ping through its router's gateway (SNAT).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExternalHost {
    netns: String,
    ip: Ipv4Addr,
    net: Ipv4Net,
    #[serde(skip)]
    prober: ProberCell,
}

impl ExternalHost {
    /// Its address: the provider network's first host address (what a provider subnet would
    /// use as `gateway_ip`).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }
    /// The provider network.
    pub fn network(&self) -> Ipv4Net {
        self.net
    }
    pub fn netns(&self) -> &str {
        &self.netns
    }
    /// Pings `dest` from the external host every 10 ms until the first reply or `timeout`.
    pub async fn ping(&self, dest: IpAddr, timeout: Duration) -> Result<Option<Duration>> {
        probe_from(&self.prober, &self.netns, dest, DEFAULT_PROBE_INTERVAL, timeout).await
    }
}

/// `tap` + the port name's first 11 characters: Neutron's naming, and within IFNAMSIZ.
fn tap_name(port_name: &str) -> String {
    format!("tap{}", sanitize(port_name, 11))
}

fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// What every chassis of a lab shares.
#[derive(Clone, Debug)]
pub(crate) struct ChassisContext {
    pub binaries: crate::Binaries,
    pub prefix: String,
    pub run_dir: PathBuf,
    pub underlay_netns: String,
    pub node_net: Ipv4Net,
    pub sb_remote: String,
    pub monitor_all: bool,
    pub remote_probe_interval_ms: u64,
    pub physical_network: String,
    pub datapath_type: String,
    /// SSL on: each chassis gets its own certificate (CN = its name, for SB RBAC).
    pub pki: Option<Arc<crate::pki::LabPki>>,
}

/// The underlay namespace's bridges.
pub(crate) const NODE_BRIDGE: &str = "br-node";
pub(crate) const PROVIDER_BRIDGE: &str = "br-prov";

impl ChassisContext {
    /// Starts chassis number `index` (0-based): namespace, links, the three daemons.
    /// Each namespace and daemon goes on record in `rec` as soon as it exists.
    pub async fn start(&self, spec: &ChassisSpec, index: usize, rec: &Recorder) -> Result<RealChassis> {
        let b = &self.binaries;
        let ip = Ip::new(&b.ip);
        let netns = format!("{}-{}", self.prefix, spec.name);
        let dir = self.run_dir.join("hv").join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let encap_ip = crate::spec::nth_address(self.node_net, 10 + index as u32);
        let gateway = spec.role == ChassisRole::NetworkNode;

        rec.netns(netns.clone());
        ip.add_netns(&netns).await?;
        ip.add_veth(&netns, "eth0", &self.underlay_netns, &format!("n{index}"))
            .await?;
        ip.set_master(&self.underlay_netns, &format!("n{index}"), NODE_BRIDGE)
            .await?;
        if gateway {
            ip.add_veth(&netns, "eth1", &self.underlay_netns, &format!("p{index}"))
                .await?;
            ip.set_master(&self.underlay_netns, &format!("p{index}"), PROVIDER_BRIDGE)
                .await?;
        }

        let db = dir.join("conf.db");
        let _ = std::fs::remove_file(&db);
        Cmd::new(&b.ovsdb_tool)
            .args([
                "create".to_owned(),
                db.display().to_string(),
                b.vswitch_schema.display().to_string(),
            ])
            .run()
            .await?;
        let daemon = |stem: &str, role, program: &Path, args: Vec<String>| Daemon {
            name: format!("{}/{stem}", spec.name),
            role,
            program: program.to_path_buf(),
            dir: dir.clone(),
            stem: stem.into(),
            args,
            // ovs-vswitchd puts br-int.mgmt in OVS_RUNDIR and ovn-controller looks for it there.
            env: vec![
                ("OVS_RUNDIR".into(), dir.display().to_string()),
                ("OVN_RUNDIR".into(), dir.display().to_string()),
            ],
            netns: Some(netns.clone()),
            chassis: Some(spec.name.clone()),
            takes_unixctl: program != b.ovn_controller.as_path(),
        };
        let db_sock = dir.join("db.sock");
        let db_remote = format!("unix:{}", db_sock.display());
        daemon(
            "ovsdb-server",
            ProcessRole::ChassisDb,
            &b.ovsdb_server,
            vec![
                db.display().to_string(),
                format!("--remote=punix:{}", db_sock.display()),
            ],
        )
        .start(&b.ip, |p| rec.process(p))
        .await?;

        let mut ext = vec![
            format!("external_ids:system-id={}", spec.name),
            format!("external_ids:hostname={}", spec.name),
            format!("external_ids:ovn-remote=\"{}\"", self.sb_remote),
            "external_ids:ovn-encap-type=geneve".into(),
            format!("external_ids:ovn-encap-ip={encap_ip}"),
            format!("external_ids:ovn-bridge-datapath-type={}", self.datapath_type),
            format!("external_ids:ovn-monitor-all={}", self.monitor_all),
            format!(
                "external_ids:ovn-remote-probe-interval={}",
                self.remote_probe_interval_ms
            ),
        ];
        if gateway {
            ext.push(format!(
                "external_ids:ovn-bridge-mappings={}:br-ex",
                self.physical_network
            ));
            ext.push("external_ids:ovn-cms-options=enable-chassis-as-gw".into());
        }
        let mut vsctl = Cmd::new(&b.ovs_vsctl)
            .args([
                format!("--db={db_remote}"),
                "--no-wait".into(),
                "--".into(),
                "init".into(),
            ])
            .args(["--", "set", "Open_vSwitch", "."])
            .args(ext);
        for (bridge, uplink) in std::iter::once(("br-phy", "eth0")).chain(gateway.then_some(("br-ex", "eth1"))) {
            vsctl = vsctl
                .args(["--", "add-br", bridge, "--", "set", "Bridge", bridge])
                .arg(format!("datapath_type={}", self.datapath_type))
                .args(["--", "add-port", bridge, uplink]);
        }
        vsctl.run().await?;

        daemon(
            "ovs-vswitchd",
            ProcessRole::Vswitchd,
            &b.ovs_vswitchd,
            vec![db_remote.clone()],
        )
        .start(&b.ip, |p| rec.process(p))
        .await?;
        poll_until(
            &format!("br-phy of chassis {}", spec.name),
            Duration::from_secs(20),
            || ip.has_link(&netns, "br-phy"),
        )
        .await?;
        ip.add_address(&netns, "br-phy", &format!("{encap_ip}/{}", self.node_net.prefix_len()))
            .await?;
        ip.run(&netns, &["link", "set", "br-phy", "up"]).await?;
        if gateway {
            poll_until(
                &format!("br-ex of chassis {}", spec.name),
                Duration::from_secs(20),
                || ip.has_link(&netns, "br-ex"),
            )
            .await?;
            ip.run(&netns, &["link", "set", "br-ex", "up"]).await?;
        }

        let mut controller = daemon(
            "ovn-controller",
            ProcessRole::Controller,
            &b.ovn_controller,
            vec![db_remote],
        );
        if let Some(pki) = &self.pki {
            controller.args.extend(pki.issue(&spec.name)?.daemon_args());
            // The SB listens on the host's loopback, which a chassis namespace cannot reach.
            // ovn-controller talks to its own OVS only through unix sockets, so it runs in the
            // root namespace and reaches the SB over TLS on loopback, as a chassis would over
            // its management network.
            controller.netns = None;
        }
        controller.start(&b.ip, |p| rec.process(p)).await?;

        Ok(RealChassis {
            name: spec.name.clone(),
            role: spec.role,
            hostname: spec.name.clone(),
            netns,
            encap_ip,
            dir,
            prefix: self.prefix.clone(),
            live: Connections::default(),
        })
    }

    /// The external host: a namespace on the provider bridge with the network's first address.
    pub async fn start_external_host(&self, net: Ipv4Net, rec: &Recorder) -> Result<ExternalHost> {
        let ip = Ip::new(&self.binaries.ip);
        let netns = format!("{}-ext", self.prefix);
        rec.netns(netns.clone());
        ip.add_netns(&netns).await?;
        ip.add_veth(&netns, "eth0", &self.underlay_netns, "ext0").await?;
        ip.set_master(&self.underlay_netns, "ext0", PROVIDER_BRIDGE).await?;
        let addr = crate::spec::nth_address(net, 1);
        ip.add_address(&netns, "eth0", &format!("{addr}/{}", net.prefix_len()))
            .await?;
        Ok(ExternalHost {
            netns,
            ip: addr,
            net,
            prober: ProberCell::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_ifnamsiz_and_follow_neutron() {
        assert_eq!(tap_name("3f2a9c1e-7b4d-4a51-9f0e-0123456789ab"), "tap3f2a9c1e-7b");
        assert!(tap_name("a/very/long/name/indeed").len() <= 15);
    }
}
