//! The cloud manager the runner drives: what a workload asks for (networks, routers, VM ports)
//! in CMS-neutral words, so another CMS (ovn-kubernetes) can be added beside OpenStack.
//!
//! Every method is one user-visible action of the CMS; the runner times each call. An
//! implementation writes the NB only the way its CMS would (for OpenStack: the Neutron mimic,
//! [`openstack::OpenStack`]).
//!
//! Must not know: processes, namespaces, chassis, how results are reported.

pub mod openstack;

use std::future::Future;

use ipnet::Ipv4Net;

/// A network the CMS created.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkRef {
    pub id: String,
    pub name: String,
    /// The IPv4 subnet, once one was added.
    pub subnet: Option<SubnetRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SubnetRef {
    pub id: String,
    pub cidr: Ipv4Net,
    pub gateway: Option<std::net::Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RouterRef {
    pub id: String,
    pub name: String,
    /// The router's address on the external network (SNAT source), once it has a gateway.
    pub external_ip: Option<std::net::Ipv4Addr>,
    /// `Logical_Router_Port.name` of the gateway port, once it has one.
    pub gateway_lrp: Option<String>,
}

/// A VM's port as the CMS created it: what a hypervisor needs to plug it.
#[derive(Clone, Debug, PartialEq)]
pub struct VmPort {
    /// The port id in the CMS.
    pub id: String,
    /// `Logical_Switch_Port.name` (the OVS `iface-id`).
    pub lsp_name: String,
    pub mac: String,
    /// `10.0.0.5/24`.
    pub ip_cidr: String,
    pub ip: std::net::Ipv4Addr,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub mtu: u32,
    /// The chassis it was bound to (`binding:host_id`).
    pub host: String,
}

/// Errors of a CMS action, as text for the results (the CMS crates' own error types stay
/// behind this boundary).
pub type CmsResult<T> = anyhow::Result<T>;

/// The actions the OpenStack tests need. `Send` futures: the runner calls them from several
/// API workers at once.
pub trait Cms: Send + Sync + 'static {
    /// The CMS's name in the report (`openstack`).
    fn name(&self) -> &'static str;
    /// Transactions whose outcome was unknown (a chaos kill of their NB leader) and were then
    /// checked in the NB since the last call: what was found, for the run's events.
    fn take_unknown_outcomes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Start-up writes of the CMS server itself (Neutron's `neutron_pg_drop`).
    fn start(&self) -> impl Future<Output = CmsResult<()>> + Send;
    /// A provider (flat) network on the physical network the network nodes bridge, with one
    /// subnet without DHCP whose gateway is the external host.
    fn create_external_network(
        &self,
        name: &str,
        cidr: Ipv4Net,
        gateway: std::net::Ipv4Addr,
    ) -> impl Future<Output = CmsResult<NetworkRef>> + Send;
    /// A tenant (overlay) network, without subnet.
    fn create_network(&self, name: &str, project: &str) -> impl Future<Output = CmsResult<NetworkRef>> + Send;
    /// An IPv4 subnet with DHCP on `network`.
    fn create_subnet(
        &self,
        network: &NetworkRef,
        name: &str,
        cidr: Ipv4Net,
    ) -> impl Future<Output = CmsResult<SubnetRef>> + Send;
    fn create_router(&self, name: &str, project: &str) -> impl Future<Output = CmsResult<RouterRef>> + Send;
    /// Sets the router's gateway on `external`, scheduled on at most `max_chassis` gateway chassis.
    fn set_router_gateway(
        &self,
        router: &RouterRef,
        external: &NetworkRef,
        max_chassis: usize,
    ) -> impl Future<Output = CmsResult<RouterRef>> + Send;
    /// What the CMS does once the gateway port is bound on `host` (Neutron's
    /// `PortBindingChassisEvent`: the gateway port gets the host and goes ACTIVE).
    fn router_gateway_bound(&self, router: &RouterRef, host: &str) -> impl Future<Output = CmsResult<()>> + Send;
    fn add_router_interface(
        &self,
        router: &RouterRef,
        subnet: &SubnetRef,
    ) -> impl Future<Output = CmsResult<()>> + Send;
    /// A VM's port on `network`, bound to `host` (nova's create + bind).
    fn create_vm_port(
        &self,
        network: &NetworkRef,
        host: &str,
        project: &str,
    ) -> impl Future<Output = CmsResult<VmPort>> + Send;
    /// What the CMS does when it sees the port up in the NB (Neutron: ACTIVE rewrites).
    fn port_up(&self, port: &VmPort) -> impl Future<Output = CmsResult<()>> + Send;
    fn delete_vm_port(&self, port: &VmPort) -> impl Future<Output = CmsResult<()>> + Send;
    fn remove_router_interface(
        &self,
        router: &RouterRef,
        subnet: &SubnetRef,
    ) -> impl Future<Output = CmsResult<()>> + Send;
    fn unset_router_gateway(&self, router: &RouterRef) -> impl Future<Output = CmsResult<()>> + Send;
    fn delete_router(&self, router: &RouterRef) -> impl Future<Output = CmsResult<()>> + Send;
    fn delete_network(&self, network: &NetworkRef) -> impl Future<Output = CmsResult<()>> + Send;
}
