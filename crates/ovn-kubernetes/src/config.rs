//! The cluster settings upstream's tests read (`cluster:` keys, with translate_yaml's
//! defaults) and the compatibility mode.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::net::{endpoint, hosts, DualStackSubnet};

/// Which load to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compat {
    /// Upstream ovn-heater's writes, bugs included (see docs/ovn-kubernetes.md): ACL matches
    /// ovn-controller rejects, cleanups that stop half-way, bring-up backends on one VIP only.
    Upstream,
    /// What upstream intends and ovn-kubernetes writes: valid matches, complete cleanup.
    #[default]
    Fixed,
}

impl Compat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upstream" => Some(Compat::Upstream),
            "fixed" => Some(Compat::Fixed),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Compat::Upstream => "upstream",
            Compat::Fixed => "fixed",
        }
    }
}

/// Upstream's `global` flags the CMS uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    pub run_ipv4: bool,
    pub run_ipv6: bool,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            run_ipv4: true,
            run_ipv6: false,
        }
    }
}

/// A VIP and its backends (`ip:port` strings).
pub type Vip = (String, Vec<String>);

/// The `cluster:` keys of an ovn-kubernetes scenario (translate_yaml's defaults).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub n_workers: usize,
    pub n_az: usize,
    pub internal_net: Ipv4Net,
    pub internal_net6: Ipv6Net,
    pub external_net: Ipv4Net,
    pub external_net6: Ipv6Net,
    pub gw_net: Ipv4Net,
    pub gw_net6: Ipv6Net,
    pub ts_net: Ipv4Net,
    pub ts_net6: Ipv6Net,
    pub cluster_net: Ipv4Net,
    pub cluster_net6: Ipv6Net,
    pub vip_subnet: IpNet,
    pub vip_subnet6: IpNet,
    /// The cluster LB's VIPs that receive the bring-up pods as backends.
    pub vips: Vec<String>,
    pub vips6: Vec<String>,
    /// VIPs the cluster LB always holds.
    pub static_vips: Vec<Vip>,
    pub static_vips6: Vec<Vip>,
    pub physical_net: String,
    pub logical_dp_groups: bool,
    pub northd_probe_interval: u64,
    pub db_inactivity_probe: u64,
}

const N_VIPS: usize = 2;
const N_STATIC_VIPS: usize = 65;
const N_STATIC_BACKENDS: usize = 2;

/// translate_yaml's `calculate_vips`: the first 2 hosts of the subnet, port 80.
pub fn default_vips(subnet: &IpNet) -> Vec<String> {
    hosts(subnet, N_VIPS).into_iter().map(|ip| endpoint(ip, 80)).collect()
}

/// translate_yaml's `calculate_static_vips`: 65 VIPs, each to the first 2 hosts of 6.0.0.0/8
/// (or 6::/32) port 8080.
pub fn default_static_vips(subnet: &IpNet) -> Vec<Vip> {
    let backend_net: IpNet = match subnet {
        IpNet::V4(_) => "6.0.0.0/8".parse().expect("literal"),
        IpNet::V6(_) => "6::/32".parse().expect("literal"),
    };
    let backends: Vec<String> = hosts(&backend_net, N_STATIC_BACKENDS)
        .into_iter()
        .map(|ip| endpoint(ip, 8080))
        .collect();
    hosts(subnet, N_STATIC_VIPS)
        .into_iter()
        .map(|ip| (endpoint(ip, 80), backends.clone()))
        .collect()
}

fn p<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("literal network")
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let vip_subnet: IpNet = p("4.0.0.0/8");
        let vip_subnet6: IpNet = p("4::/32");
        ClusterConfig {
            n_workers: 2,
            n_az: 1,
            internal_net: p("16.0.0.0/16"),
            internal_net6: p("16::/64"),
            external_net: p("20.0.0.0/16"),
            external_net6: p("20::/64"),
            gw_net: p("30.0.0.0/16"),
            gw_net6: p("30::/64"),
            ts_net: p("40.0.0.0/16"),
            ts_net6: p("40::/64"),
            cluster_net: p("16.0.0.0/4"),
            cluster_net6: p("16::/32"),
            vips: default_vips(&vip_subnet),
            vips6: default_vips(&vip_subnet6),
            static_vips: default_static_vips(&vip_subnet),
            static_vips6: default_static_vips(&vip_subnet6),
            vip_subnet,
            vip_subnet6,
            physical_net: "providernet".into(),
            logical_dp_groups: true,
            northd_probe_interval: 16000,
            db_inactivity_probe: 60000,
        }
    }
}

impl ClusterConfig {
    fn pick(&self, f: Families, v4: Ipv4Net, v6: Ipv6Net) -> DualStackSubnet {
        DualStackSubnet::new(f.run_ipv4.then_some(v4), f.run_ipv6.then_some(v6))
    }
    pub fn internal(&self, f: Families) -> DualStackSubnet {
        self.pick(f, self.internal_net, self.internal_net6)
    }
    pub fn external(&self, f: Families) -> DualStackSubnet {
        self.pick(f, self.external_net, self.external_net6)
    }
    pub fn gw(&self, f: Families) -> DualStackSubnet {
        self.pick(f, self.gw_net, self.gw_net6)
    }
    pub fn cluster(&self, f: Families) -> DualStackSubnet {
        self.pick(f, self.cluster_net, self.cluster_net6)
    }

    /// Refuses settings the topology cannot be built from.
    pub fn check(&self, f: Families) -> crate::Result<()> {
        if !f.run_ipv4 && !f.run_ipv6 {
            return Err(crate::Error::invalid(
                "global.run_ipv4/run_ipv6",
                "both are false; enable at least one address family",
            ));
        }
        if self.n_workers == 0 {
            return Err(crate::Error::invalid("cluster.n_workers", "must be at least 1"));
        }
        if self.n_az != 1 {
            return Err(crate::Error::invalid(
                "cluster.n_az",
                "only one availability zone is modelled; set n_az: 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_yaml_defaults() {
        let c = ClusterConfig::default();
        assert_eq!(c.vips, ["4.0.0.1:80", "4.0.0.2:80"]);
        assert_eq!(c.static_vips.len(), 65);
        assert_eq!(c.static_vips[64].0, "4.0.0.65:80");
        assert_eq!(c.static_vips[0].1, ["6.0.0.1:8080", "6.0.0.2:8080"]);
        assert_eq!(c.vips6, ["[4::1]:80", "[4::2]:80"]);
        assert_eq!(c.static_vips6[64].0, "[4::41]:80");
        assert_eq!(c.static_vips6[0].1, ["[6::1]:8080", "[6::2]:8080"]);
        let both = Families {
            run_ipv4: true,
            run_ipv6: true,
        };
        assert_eq!(c.cluster(both).v6.unwrap().to_string(), "16::/32");
        assert!(c
            .check(Families {
                run_ipv4: false,
                run_ipv6: false
            })
            .unwrap_err()
            .is_bad_input());
    }
}
