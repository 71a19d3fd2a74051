//! What one emulated chassis is: its identity, encapsulation and the ovn-controller settings
//! that show in its `Chassis` row, and the rows it writes when it registers.
//!
//! The `other_config` keys and their default values are those a real ovn-controller 23.03.1
//! wrote when started against an Open_vSwitch row with only `system-id`, `hostname`,
//! `ovn-remote`, `ovn-encap-type`, `ovn-encap-ip` (and, for the optional keys, the matching
//! `ovn-*` external_ids) set.
//!
//! Must not know: connections, processes, network namespaces.

use std::time::Duration;

use ovsdb::{Row, Value};

use crate::error::{Error, Result};

/// The interface types OVS 3.1 reports in `Open_vSwitch.iface_types` on a machine like this
/// one; ovn-controller copies them into `Chassis.other_config:iface-types`.
pub const OVS_3_1_IFACE_TYPES: &str =
    "afxdp,afxdp-nonpmd,bareudp,erspan,geneve,gre,gtpu,internal,ip6erspan,ip6gre,lisp,patch,stt,system,tap,vxlan";

/// The `ovn-cms-options` value Neutron looks for to pick gateway chassis.
pub const GATEWAY_CMS_OPTION: &str = "enable-chassis-as-gw";

/// One emulated chassis.
#[derive(Clone, Debug, PartialEq)]
pub struct ChassisSpec {
    /// `Chassis.name` (a real chassis's `system-id`).
    pub name: String,
    /// `Chassis.hostname`; Neutron's `requested-chassis` may name either.
    pub hostname: String,
    /// `geneve` or `vxlan`.
    pub encap_type: String,
    /// `Encap.ip`. Only written to the SB, never used for traffic; (type, ip) must be unique
    /// across all chassis of one SB.
    pub encap_ip: String,
    /// `ovn-monitor-all`: monitor every SB row instead of those of local datapaths.
    pub monitor_all: bool,
    /// `ovn-bridge-mappings`, e.g. `physnet1:br-ex`.
    pub bridge_mappings: String,
    /// `ovn-cms-options`, e.g. `enable-chassis-as-gw,availability-zones=az0`.
    pub cms_options: String,
    /// Claims `chassisredirect` and `l3gateway` ports (and says so in `ovn-cms-options`).
    pub is_gateway: bool,
    /// `other_config:datapath-type` (`system` for the kernel datapath, `netdev` for DPDK/userspace).
    pub datapath_type: String,
    /// `other_config:iface-types`.
    pub iface_types: String,
    /// Simulated ovn-controller processing time: slept once per batch of SB updates, before the
    /// chassis reacts to them (claims, acks). Zero reacts as fast as the emulator can.
    pub processing_delay: Duration,
    /// Claim ports whose `requested-chassis` names this chassis without an explicit
    /// [`bind_port`](crate::EmulatedChassis::bind_port), as if the VIF were plugged when Neutron
    /// bound the port to this host. What lets a separate `fake-chassis` process serve a workload.
    pub bind_requested: bool,
}

impl ChassisSpec {
    /// A compute chassis with ovn-controller's defaults.
    pub fn new(name: impl Into<String>, encap_ip: impl Into<String>) -> Self {
        let name = name.into();
        ChassisSpec {
            hostname: name.clone(),
            name,
            encap_type: "geneve".into(),
            encap_ip: encap_ip.into(),
            monitor_all: false,
            bridge_mappings: String::new(),
            cms_options: String::new(),
            is_gateway: false,
            datapath_type: "system".into(),
            iface_types: OVS_3_1_IFACE_TYPES.into(),
            processing_delay: Duration::ZERO,
            bind_requested: false,
        }
    }

    /// Checks what the SB would refuse or what would make two chassis collide.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| {
            Err(Error::InvalidSpec {
                chassis: self.name.clone(),
                why,
            })
        };
        if self.name.is_empty() {
            return bad("the chassis name is empty".into());
        }
        if !matches!(self.encap_type.as_str(), "geneve" | "vxlan") {
            return bad(format!("encap type {:?} is not geneve or vxlan", self.encap_type));
        }
        if self.encap_ip.parse::<std::net::IpAddr>().is_err() {
            return bad(format!("encap ip {:?} is not an IP address", self.encap_ip));
        }
        Ok(())
    }

    /// `ovn-cms-options` as written: a gateway gets `enable-chassis-as-gw` added if missing.
    pub fn effective_cms_options(&self) -> String {
        if !self.is_gateway || self.cms_options.split(',').any(|o| o == GATEWAY_CMS_OPTION) {
            return self.cms_options.clone();
        }
        if self.cms_options.is_empty() {
            GATEWAY_CMS_OPTION.into()
        } else {
            format!("{},{GATEWAY_CMS_OPTION}", self.cms_options)
        }
    }

    /// `Chassis.other_config` as ovn-controller 23.03.1 writes it.
    pub fn other_config(&self) -> Value {
        let monitor_all = if self.monitor_all { "true" } else { "false" };
        let cms_options = self.effective_cms_options();
        Value::string_map([
            ("ct-no-masked-label", "true"),
            ("datapath-type", self.datapath_type.as_str()),
            ("iface-types", self.iface_types.as_str()),
            ("is-interconn", "false"),
            ("mac-binding-timestamp", "true"),
            ("ovn-bridge-mappings", self.bridge_mappings.as_str()),
            ("ovn-chassis-mac-mappings", ""),
            ("ovn-cms-options", cms_options.as_str()),
            ("ovn-ct-lb-related", "true"),
            ("ovn-enable-lflow-cache", "true"),
            ("ovn-limit-lflow-cache", ""),
            ("ovn-memlimit-lflow-cache-kb", ""),
            ("ovn-monitor-all", monitor_all),
            ("ovn-trim-limit-lflow-cache", ""),
            ("ovn-trim-timeout-ms", ""),
            ("ovn-trim-wmark-perc-lflow-cache", ""),
            ("port-up-notif", "true"),
        ])
    }

    /// The `Encap` row.
    pub fn encap_row(&self) -> Row {
        Row::new()
            .with("type", self.encap_type.as_str())
            .with("ip", self.encap_ip.as_str())
            .with("chassis_name", self.name.as_str())
            .with("options", Value::string_map([("csum", "true")]))
    }

    /// The `Chassis` row, given a reference to its `Encap`.
    pub fn chassis_row(&self, encap: Value) -> Row {
        Row::new()
            .with("name", self.name.as_str())
            .with("hostname", self.hostname.as_str())
            .with("encaps", encap)
            .with("other_config", self.other_config())
            .with("external_ids", Value::empty_map())
    }

    /// Whether a `requested-chassis` value (a name, a hostname, or a comma-separated list of
    /// them for multi-chassis ports) includes this chassis.
    pub fn is_requested_by(&self, requested: &str) -> bool {
        // Every chassis of a farm asks this of every port inserted: most name one chassis.
        if !requested.contains(',') {
            let requested = requested.trim();
            return requested == self.name || requested == self.hostname;
        }
        requested
            .split(',')
            .map(str::trim)
            .any(|r| r == self.name || r == self.hostname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_adds_cms_option_once() {
        let mut spec = ChassisSpec::new("gw1", "198.18.0.1");
        spec.is_gateway = true;
        assert_eq!(spec.effective_cms_options(), "enable-chassis-as-gw");
        spec.cms_options = "availability-zones=az0".into();
        assert_eq!(
            spec.effective_cms_options(),
            "availability-zones=az0,enable-chassis-as-gw"
        );
        spec.cms_options = "enable-chassis-as-gw".into();
        assert_eq!(spec.effective_cms_options(), "enable-chassis-as-gw");
    }

    #[test]
    fn other_config_has_ovn_controller_keys() {
        let spec = ChassisSpec::new("hv1", "198.18.0.1");
        let config = spec.other_config().to_string_map();
        for key in [
            "datapath-type",
            "iface-types",
            "port-up-notif",
            "ovn-monitor-all",
            "ovn-bridge-mappings",
        ] {
            assert!(config.contains_key(key), "{key}");
        }
        assert_eq!(config.len(), 17);
    }

    #[test]
    fn requested_chassis_matches_name_or_hostname() {
        let mut spec = ChassisSpec::new("hv1", "198.18.0.1");
        spec.hostname = "compute-1".into();
        assert!(spec.is_requested_by("hv1"));
        assert!(spec.is_requested_by("compute-1"));
        assert!(spec.is_requested_by("hv0,compute-1"));
        assert!(!spec.is_requested_by("hv10"));
    }

    #[test]
    fn validate_rejects_bad_encap() {
        let mut spec = ChassisSpec::new("hv1", "not-an-ip");
        assert!(spec.validate().is_err());
        spec.encap_ip = "198.18.0.1".into();
        spec.encap_type = "gre".into();
        assert!(spec.validate().is_err());
    }
}
