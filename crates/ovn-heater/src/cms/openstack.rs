//! The OpenStack CMS: [`Cms`] over the Neutron mimic (`ovn_openstack::Neutron`), one Neutron
//! action per method, so the NB sees exactly what Neutron would write.
//!
//! Must not know: processes, namespaces, chassis beyond their names, reports.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use ipnet::{IpNet, Ipv4Net};
use ovn_openstack::{GatewaySpec, NetworkSpec, Neutron, SubnetGateway, SubnetSpec};

use super::{Cms, CmsResult, NetworkRef, RouterRef, SubnetRef, VmPort};

/// Neutron, driven action by action.
pub struct OpenStack {
    neutron: Arc<Neutron>,
    /// The provider network of external networks: the name in the network nodes'
    /// `ovn-bridge-mappings` (`cluster.physical_net`).
    physical_network: String,
}

impl OpenStack {
    pub fn new(neutron: Arc<Neutron>, physical_network: String) -> Self {
        OpenStack {
            neutron,
            physical_network,
        }
    }

    fn id_of(report: &ovn_openstack::ActionReport, what: &str) -> CmsResult<String> {
        report
            .id
            .map(|i| i.to_string())
            .ok_or_else(|| anyhow!("Neutron's {what} returned no id"))
    }
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

impl Cms for OpenStack {
    fn name(&self) -> &'static str {
        "openstack"
    }

    fn take_unknown_outcomes(&self) -> Vec<String> {
        self.neutron.take_unknown_outcomes()
    }

    async fn start(&self) -> CmsResult<()> {
        self.neutron.start().await.context("neutron-server start-up")?;
        Ok(())
    }

    async fn create_external_network(&self, name: &str, cidr: Ipv4Net, gateway: Ipv4Addr) -> CmsResult<NetworkRef> {
        let spec = NetworkSpec {
            name: name.to_owned(),
            external: true,
            network_type: Some("flat".into()),
            physical_network: Some(self.physical_network.clone()),
            ..Default::default()
        };
        let report = self.neutron.network_create(spec).await?;
        let mut network = NetworkRef {
            id: Self::id_of(&report, "network create")?,
            name: name.to_owned(),
            subnet: None,
        };
        let mut subnet = SubnetSpec::new(&format!("{name}-subnet"), &network.id, &cidr.to_string());
        subnet.enable_dhcp = false;
        subnet.gateway = SubnetGateway::Ip(IpAddr::V4(gateway));
        let report = self.neutron.subnet_create(subnet).await?;
        network.subnet = Some(SubnetRef {
            id: Self::id_of(&report, "subnet create")?,
            cidr,
            gateway: Some(gateway),
        });
        Ok(network)
    }

    async fn create_network(&self, name: &str, project: &str) -> CmsResult<NetworkRef> {
        let spec = NetworkSpec {
            name: name.to_owned(),
            project: Some(project.to_owned()),
            ..Default::default()
        };
        let report = self.neutron.network_create(spec).await?;
        Ok(NetworkRef {
            id: Self::id_of(&report, "network create")?,
            name: name.to_owned(),
            subnet: None,
        })
    }

    async fn create_subnet(&self, network: &NetworkRef, name: &str, cidr: Ipv4Net) -> CmsResult<SubnetRef> {
        let report = self
            .neutron
            .subnet_create(SubnetSpec::new(name, &network.id, &cidr.to_string()))
            .await?;
        let id = Self::id_of(&report, "subnet create")?;
        let gateway = self
            .neutron
            .with_state(|st| st.subnet(&id).ok().and_then(|s| s.gateway).and_then(v4));
        Ok(SubnetRef { id, cidr, gateway })
    }

    async fn create_router(&self, name: &str, project: &str) -> CmsResult<RouterRef> {
        let report = self.neutron.router_create(name, Some(project)).await?;
        Ok(RouterRef {
            id: Self::id_of(&report, "router create")?,
            name: name.to_owned(),
            external_ip: None,
            gateway_lrp: None,
        })
    }

    async fn set_router_gateway(
        &self,
        router: &RouterRef,
        external: &NetworkRef,
        max_chassis: usize,
    ) -> CmsResult<RouterRef> {
        let spec = GatewaySpec {
            network: external.id.clone(),
            fixed_ip: None,
            max_chassis: Some(max_chassis),
            snat: None,
        };
        let report = self.neutron.router_set_gateway(&router.id, spec).await?;
        let port = Self::id_of(&report, "router set --external-gateway")?;
        let external_ip = self.neutron.with_state(|st| {
            st.port(&port)
                .ok()
                .and_then(|p| p.fixed_ips.iter().find_map(|f| v4(f.ip)))
        });
        Ok(RouterRef {
            external_ip,
            // Neutron names a router port's LRP after the Neutron port: lrp-<port id>.
            gateway_lrp: Some(format!("lrp-{port}")),
            ..router.clone()
        })
    }

    async fn router_gateway_bound(&self, router: &RouterRef, host: &str) -> CmsResult<()> {
        self.neutron.router_gateway_bound(&router.id, host).await?;
        Ok(())
    }

    async fn add_router_interface(&self, router: &RouterRef, subnet: &SubnetRef) -> CmsResult<()> {
        self.neutron.router_add_subnet(&router.id, &subnet.id).await?;
        Ok(())
    }

    async fn create_vm_port(&self, network: &NetworkRef, host: &str, project: &str) -> CmsResult<VmPort> {
        let _ = project; // the mimic's server_create uses the network's project, as nova does
        let report = self.neutron.server_create(&network.id, host, None).await?;
        let id = Self::id_of(&report, "server create")?;
        self.neutron.with_state(|st| -> CmsResult<VmPort> {
            let port = st.port(&id).map_err(|e| anyhow!("{e}"))?;
            let fixed = port
                .fixed_ips
                .iter()
                .find(|f| f.ip.is_ipv4())
                .ok_or_else(|| anyhow!("port {id} got no IPv4 address"))?;
            let subnet = &st.subnets[&fixed.subnet];
            let prefix = match subnet.cidr {
                IpNet::V4(n) => n.prefix_len(),
                IpNet::V6(_) => 64,
            };
            let mtu = st.networks.get(&port.network).map(|n| n.mtu).unwrap_or(1442);
            Ok(VmPort {
                id: id.clone(),
                lsp_name: port.id.to_string(),
                mac: port.mac.clone(),
                ip_cidr: format!("{}/{prefix}", fixed.ip),
                ip: v4(fixed.ip).unwrap_or(Ipv4Addr::UNSPECIFIED),
                gateway: subnet.gateway.and_then(v4),
                mtu,
                host: host.to_owned(),
            })
        })
    }

    async fn port_up(&self, port: &VmPort) -> CmsResult<()> {
        self.neutron.port_up(&port.id).await?;
        Ok(())
    }

    async fn delete_vm_port(&self, port: &VmPort) -> CmsResult<()> {
        self.neutron.port_delete(&port.id).await?;
        Ok(())
    }

    async fn remove_router_interface(&self, router: &RouterRef, subnet: &SubnetRef) -> CmsResult<()> {
        self.neutron.router_remove_subnet(&router.id, &subnet.id).await?;
        Ok(())
    }

    async fn unset_router_gateway(&self, router: &RouterRef) -> CmsResult<()> {
        self.neutron.router_unset_gateway(&router.id).await?;
        Ok(())
    }

    async fn delete_router(&self, router: &RouterRef) -> CmsResult<()> {
        self.neutron.router_delete(&router.id).await?;
        Ok(())
    }

    async fn delete_network(&self, network: &NetworkRef) -> CmsResult<()> {
        if let Some(s) = &network.subnet {
            self.neutron.subnet_delete(&s.id).await?;
        }
        self.neutron.network_delete(&network.id).await?;
        Ok(())
    }
}
