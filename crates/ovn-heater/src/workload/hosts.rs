//! The hypervisors a workload places VMs on, behind one trait: real chassis of the lab (a VM
//! is a namespace plugged into the chassis' br-int; pings work) or emulated chassis (the port
//! is claimed in the SB as ovn-controller would; no data path, so no pings).
//!
//! Everything these do is the harness' own work, so their errors are harness failures
//! ([`HarnessFault`]); OVN's part shows as a ping that gets no reply (`Ok(None)`).
//!
//! Must not know: the CMS, how results are reported.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};

use crate::cms::VmPort;
use crate::metrics::HarnessFault;

/// A VM plugged into a hypervisor.
#[derive(Clone, Debug)]
pub enum Plugged {
    Real(ovn_lab::Vm),
    Emulated { chassis: String, lsp: String },
}

pub trait Hypervisors: Send + Sync + 'static {
    /// `real` or `emulated`.
    fn kind(&self) -> &'static str;
    /// Chassis that host VMs, in placement order.
    fn compute(&self) -> Vec<String>;
    /// Whether [`Hypervisors::ping`] can work (there is a data path).
    fn can_ping(&self) -> bool;
    /// The host behind the network nodes (ping target through SNAT), if any.
    fn external_ip(&self) -> Option<Ipv4Addr>;
    /// Plugs the VM of `port` into `port.host`. Errors are harness failures.
    fn plug(&self, port: &VmPort) -> impl Future<Output = anyhow::Result<Plugged>> + Send;
    fn unplug(&self, vm: &Plugged) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Time to the first reply from `dest`, `None` if nothing answered within `timeout` (OVN's
    /// failure); `Err` when the probe itself failed (the harness').
    fn ping(
        &self,
        from: &Plugged,
        dest: Ipv4Addr,
        timeout: Duration,
    ) -> impl Future<Output = anyhow::Result<Option<Duration>>> + Send;
}

/// Real chassis of an `ovn_lab::Lab`.
pub struct RealHosts {
    pub lab: Arc<ovn_lab::Lab>,
    /// Ports are bound without a VM namespace ([`ovn_lab::RealChassis::bind_passive`]): no pings.
    pub passive: bool,
}

impl Hypervisors for RealHosts {
    fn kind(&self) -> &'static str {
        "real"
    }
    fn compute(&self) -> Vec<String> {
        self.lab
            .chassis()
            .iter()
            .filter(|c| c.role() == ovn_lab::ChassisRole::Compute)
            .map(|c| c.name().to_owned())
            .collect()
    }
    fn can_ping(&self) -> bool {
        !self.passive
    }
    fn external_ip(&self) -> Option<Ipv4Addr> {
        self.lab.external_host().map(|h| h.ip())
    }
    async fn plug(&self, port: &VmPort) -> anyhow::Result<Plugged> {
        crate::workload::fault::before_bind_port(&port.lsp_name)?;
        let chassis = self
            .lab
            .chassis_by_name(&port.host)
            .ok_or_else(|| HarnessFault::wrap(anyhow!("no chassis named {} in the lab", port.host)))?;
        let mut spec = ovn_lab::VmSpec::new(&port.lsp_name, &port.mac, &port.ip_cidr).mtu(port.mtu);
        if let Some(gw) = port.gateway {
            spec = spec.gateway(IpAddr::V4(gw));
        }
        let bound = if self.passive {
            chassis.bind_passive(spec).await
        } else {
            chassis.bind_vm(spec).await
        };
        let vm = bound
            .map_err(HarnessFault::wrap)
            .with_context(|| format!("cannot plug port {} into chassis {}", port.lsp_name, port.host))?;
        Ok(Plugged::Real(vm))
    }
    async fn unplug(&self, vm: &Plugged) -> anyhow::Result<()> {
        let Plugged::Real(vm) = vm else {
            return Err(HarnessFault::wrap(anyhow!("not a VM of a real chassis")));
        };
        let chassis = self
            .lab
            .chassis_by_name(vm.chassis())
            .ok_or_else(|| HarnessFault::wrap(anyhow!("no chassis named {} in the lab", vm.chassis())))?;
        chassis.unbind_vm(vm).await.map_err(HarnessFault::wrap)?;
        Ok(())
    }
    async fn ping(&self, from: &Plugged, dest: Ipv4Addr, timeout: Duration) -> anyhow::Result<Option<Duration>> {
        let Plugged::Real(vm) = from else {
            return Err(HarnessFault::wrap(anyhow!("not a VM of a real chassis")));
        };
        vm.ping(IpAddr::V4(dest), timeout).await.map_err(HarnessFault::wrap)
    }
}

/// Emulated chassis of an `ovn_emu::Farm`; the first `n_network_nodes` are gateways.
pub struct EmulatedHosts {
    pub farm: Arc<ovn_emu::Farm>,
    pub n_network_nodes: usize,
    /// When gateways also host VMs (upstream's base_openstack places VMs on every worker).
    pub vms_on_gateways: bool,
}

impl Hypervisors for EmulatedHosts {
    fn kind(&self) -> &'static str {
        "emulated"
    }
    fn compute(&self) -> Vec<String> {
        let skip = if self.vms_on_gateways { 0 } else { self.n_network_nodes };
        self.farm
            .chassis()
            .iter()
            .skip(skip)
            .map(|c| c.name().to_owned())
            .collect()
    }
    fn can_ping(&self) -> bool {
        false
    }
    fn external_ip(&self) -> Option<Ipv4Addr> {
        None
    }
    async fn plug(&self, port: &VmPort) -> anyhow::Result<Plugged> {
        crate::workload::fault::before_bind_port(&port.lsp_name)?;
        self.farm
            .get(&port.host)
            .and_then(|c| c.bind_port(&port.lsp_name))
            .map_err(HarnessFault::wrap)?;
        Ok(Plugged::Emulated {
            chassis: port.host.clone(),
            lsp: port.lsp_name.clone(),
        })
    }
    async fn unplug(&self, vm: &Plugged) -> anyhow::Result<()> {
        let Plugged::Emulated { chassis, lsp } = vm else {
            return Err(HarnessFault::wrap(anyhow!("not a port of an emulated chassis")));
        };
        self.farm
            .get(chassis)
            .and_then(|c| c.unbind_port(lsp))
            .map_err(HarnessFault::wrap)?;
        Ok(())
    }
    async fn ping(&self, _from: &Plugged, _dest: Ipv4Addr, _timeout: Duration) -> anyhow::Result<Option<Duration>> {
        Err(HarnessFault::wrap(anyhow!(
            "emulated chassis have no data path to ping through"
        )))
    }
}
