//! Which Southbound rows an emulated chassis keeps in memory.
//!
//! The server still sends (and the client still decodes) everything the monitor asks for: that
//! is the load being emulated. But a chassis only keeps what it acts on: its own `Chassis`,
//! `Chassis_Private` and `Encap`, `SB_Global`, the `Port_Binding`s it hosts or may claim, and
//! for gateways the HA tables. So a farm's memory grows with the number of chassis and ports
//! bound to them, not with the size of the SB.
//!
//! Must not know: connections, transactions.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use ovsdb::filter::SharedFilter;
use ovsdb::{Row, Uuid, Value};
use tokio::sync::Notify;

use crate::sb::{CHASSIS, CHASSIS_PRIVATE, ENCAP, HA_CHASSIS, HA_CHASSIS_GROUP, PORT_BINDING, SB_GLOBAL};
use crate::spec::ChassisSpec;

/// The filter's view of its chassis; the chassis task updates it as ports come and go.
#[derive(Debug)]
pub(crate) struct KeepState {
    pub spec: ChassisSpec,
    pub chassis_uuid: Option<Uuid>,
    pub bound: HashSet<String>,
}

impl KeepState {
    pub fn new(spec: ChassisSpec) -> Self {
        KeepState {
            spec,
            chassis_uuid: None,
            bound: HashSet::new(),
        }
    }

    pub fn keeps(&self, table: &str, row: &Row) -> bool {
        let text = |column: &str| row.get(column).and_then(Value::as_str);
        match table {
            SB_GLOBAL => true,
            CHASSIS | CHASSIS_PRIVATE => text("name") == Some(self.spec.name.as_str()),
            ENCAP => text("chassis_name") == Some(self.spec.name.as_str()),
            HA_CHASSIS_GROUP | HA_CHASSIS => self.spec.is_gateway,
            PORT_BINDING => self.keeps_port_binding(row),
            _ => false,
        }
    }

    fn keeps_port_binding(&self, row: &Row) -> bool {
        let spec = &self.spec;
        if let Some(port) = row.get("logical_port").and_then(Value::as_str) {
            if self.bound.contains(port) {
                return true;
            }
        }
        let port_type = row.get("type").and_then(Value::as_str).unwrap_or("");
        let option = |key: &str| row.get("options").and_then(|o| o.map_get_str(key));
        match port_type {
            "chassisredirect" if spec.is_gateway => return true,
            // Patch ports link datapaths: needed to know which datapaths are local, which only
            // matters when the chassis sets monitor conditions.
            "patch" if !spec.monitor_all => return true,
            "l3gateway" if option("l3gateway-chassis") == Some(spec.name.as_str()) => return true,
            _ => {}
        }
        let refers_to_us =
            |column: &str| self.chassis_uuid.is_some() && row.get(column).and_then(Value::as_uuid) == self.chassis_uuid;
        if refers_to_us("chassis") {
            return true;
        }
        spec.bind_requested
            && (refers_to_us("requested_chassis")
                || option("requested-chassis").is_some_and(|r| spec.is_requested_by(r)))
    }
}

/// The filter closure handed to `Client::monitor_filtered`. It also tells the chassis when a
/// row it keeps arrives or changes, through `kept`: cheaper than a replica subscription, whose
/// event buffer would cost every chassis megabytes. The replica applies an update under its
/// write lock, so a chassis woken by `kept` reads the update whole.
pub(crate) fn filter(state: Arc<RwLock<KeepState>>, kept: Arc<Notify>) -> SharedFilter {
    Arc::new(move |table: &str, row: &Row| {
        let keep = match state.read() {
            Ok(s) => s.keeps(table, row),
            // A panic elsewhere poisoned the lock: keeping too much is safer than dropping rows.
            Err(poisoned) => poisoned.into_inner().keeps(table, row),
        };
        if keep {
            kept.notify_one();
        }
        keep
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(port: &str, port_type: &str) -> Row {
        Row::new()
            .with("logical_port", port)
            .with("type", port_type)
            .with("options", Value::empty_map())
    }

    #[test]
    fn keeps_only_own_rows() {
        let state = KeepState::new(ChassisSpec::new("hv1", "198.18.0.1"));
        assert!(state.keeps(CHASSIS, &Row::new().with("name", "hv1")));
        assert!(!state.keeps(CHASSIS, &Row::new().with("name", "hv2")));
        assert!(!state.keeps("Logical_Flow", &Row::new()));
        assert!(state.keeps(SB_GLOBAL, &Row::new()));
    }

    #[test]
    fn keeps_bound_and_own_port_bindings() {
        let mut state = KeepState::new(ChassisSpec::new("hv1", "198.18.0.1"));
        state.spec.monitor_all = true;
        assert!(!state.keeps(PORT_BINDING, &pb("vm1", "")));
        state.bound.insert("vm1".into());
        assert!(state.keeps(PORT_BINDING, &pb("vm1", "")));
        assert!(!state.keeps(PORT_BINDING, &pb("cr-lrp", "chassisredirect")));
        state.spec.is_gateway = true;
        assert!(state.keeps(PORT_BINDING, &pb("cr-lrp", "chassisredirect")));
        let me = Uuid::new_v4();
        state.chassis_uuid = Some(me);
        assert!(state.keeps(PORT_BINDING, &pb("vm9", "").with("chassis", Value::uuid(me))));
    }

    #[test]
    fn requested_ports_kept_only_when_auto_binding() {
        let mut state = KeepState::new(ChassisSpec::new("hv1", "198.18.0.1"));
        let row = pb("vm2", "").with("options", Value::string_map([("requested-chassis", "hv1")]));
        assert!(!state.keeps(PORT_BINDING, &row));
        state.spec.bind_requested = true;
        assert!(state.keeps(PORT_BINDING, &row));
    }
}
