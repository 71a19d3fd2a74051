//! Address arithmetic as upstream's `DualStackSubnet` does it (netaddr semantics): `next(i)`
//! is the i-th following network of the same size, `forward(i)` counts up from the network
//! address, `reverse(i)` counts down from the last address.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// An IPv4 and/or IPv6 network (either may be absent: single stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DualStackSubnet {
    pub v4: Option<Ipv4Net>,
    pub v6: Option<Ipv6Net>,
}

/// One address per family with its prefix length (upstream's `DualStackIP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DualStackIp {
    pub v4: Option<(Ipv4Addr, u8)>,
    pub v6: Option<(Ipv6Addr, u8)>,
}

impl DualStackIp {
    /// `ip/plen` of each family present, IPv4 first (an LRP's `networks`).
    pub fn networks(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((ip, plen)) = self.v4 {
            out.push(format!("{ip}/{plen}"));
        }
        if let Some((ip, plen)) = self.v6 {
            out.push(format!("{ip}/{plen}"));
        }
        out
    }
    pub fn ip4(&self) -> Option<Ipv4Addr> {
        self.v4.map(|(ip, _)| ip)
    }
    pub fn ip6(&self) -> Option<Ipv6Addr> {
        self.v6.map(|(ip, _)| ip)
    }
}

fn v4_size(n: &Ipv4Net) -> u64 {
    1u64 << (32 - u32::from(n.prefix_len()))
}

fn v6_size(n: &Ipv6Net) -> u128 {
    if n.prefix_len() == 0 {
        u128::MAX
    } else {
        1u128 << (128 - u32::from(n.prefix_len()))
    }
}

impl DualStackSubnet {
    pub fn new(v4: Option<Ipv4Net>, v6: Option<Ipv6Net>) -> Self {
        DualStackSubnet { v4, v6 }
    }

    /// The `index`-th network after this one, of the same size (netaddr's `IPNetwork.next`).
    pub fn next(&self, index: u64) -> Self {
        let v4 = self.v4.map(|n| {
            let base = u64::from(u32::from(n.network())) + index * v4_size(&n);
            Ipv4Net::new(Ipv4Addr::from(base as u32), n.prefix_len()).expect("same prefix length")
        });
        let v6 = self.v6.map(|n| {
            let base = u128::from(n.network()).wrapping_add(u128::from(index).wrapping_mul(v6_size(&n)));
            Ipv6Net::new(Ipv6Addr::from(base), n.prefix_len()).expect("same prefix length")
        });
        DualStackSubnet { v4, v6 }
    }

    /// The network address plus `index`.
    pub fn forward(&self, index: u64) -> DualStackIp {
        DualStackIp {
            v4: self.v4.map(|n| {
                (
                    Ipv4Addr::from((u64::from(u32::from(n.network())) + index) as u32),
                    n.prefix_len(),
                )
            }),
            v6: self.v6.map(|n| {
                (
                    Ipv6Addr::from(u128::from(n.network()) + u128::from(index)),
                    n.prefix_len(),
                )
            }),
        }
    }

    /// The last address minus `index` (`reverse(1)` is a router's usual address).
    pub fn reverse(&self, index: u64) -> DualStackIp {
        DualStackIp {
            v4: self.v4.map(|n| {
                (
                    Ipv4Addr::from((u64::from(u32::from(n.broadcast())) - index) as u32),
                    n.prefix_len(),
                )
            }),
            v6: self.v6.map(|n| {
                (
                    Ipv6Addr::from(u128::from(n.broadcast()) - u128::from(index)),
                    n.prefix_len(),
                )
            }),
        }
    }
}

/// The first `n` host addresses of a network (netaddr's `iter_hosts`: IPv4 skips the network
/// address, IPv6 skips the subnet-router anycast address, i.e. also the first).
pub fn hosts(net: &ipnet::IpNet, n: usize) -> Vec<std::net::IpAddr> {
    match net {
        ipnet::IpNet::V4(n4) => (1..=n as u32)
            .map(|i| std::net::IpAddr::V4(Ipv4Addr::from(u32::from(n4.network()) + i)))
            .collect(),
        ipnet::IpNet::V6(n6) => (1..=n as u128)
            .map(|i| std::net::IpAddr::V6(Ipv6Addr::from(u128::from(n6.network()) + i)))
            .collect(),
    }
}

/// `ip:port`, bracketed for IPv6 (`[4::1]:80`).
pub fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_addresses_follow_netaddr() {
        let internal = DualStackSubnet::new(Some("16.0.0.0/16".parse().unwrap()), Some("16::/64".parse().unwrap()));
        let w1 = internal.next(1);
        assert_eq!(w1.v4.unwrap().to_string(), "16.1.0.0/16");
        assert_eq!(w1.v6.unwrap().to_string(), "16:0:0:1::/64");
        assert_eq!(w1.forward(1).ip4().unwrap().to_string(), "16.1.0.1");
        assert_eq!(w1.forward(1).ip6().unwrap().to_string(), "16:0:0:1::1");
        assert_eq!(
            w1.reverse(1).networks(),
            ["16.1.255.254/16", "16::1:ffff:ffff:ffff:fffe/64"]
        );
        let gw = DualStackSubnet::new(Some("30.0.0.0/16".parse().unwrap()), None);
        assert_eq!(gw.reverse(2).ip4().unwrap().to_string(), "30.0.255.253");
        let v = hosts(&"4::/32".parse().unwrap(), 65);
        assert_eq!(endpoint(v[64], 80), "[4::41]:80");
    }
}
