//! Which Southbound rows an emulated chassis keeps in memory: its [`RowFilter`].
//!
//! The server still sends everything the monitor asks for: that is the load being emulated.
//! But a chassis only keeps what it acts on: its own `Chassis`, `Chassis_Private` and `Encap`,
//! `SB_Global`, the `Port_Binding`s it hosts or may claim, and for gateways the HA tables.
//! Tables it never keeps are read but not decoded. So a farm's memory grows with the number
//! of chassis and ports bound to them, not with the size of the SB.
//!
//! Must not know: connections, transactions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use ovsdb::{Row, RowFilter, Uuid, Value};
use tokio::sync::Notify;

use crate::sb::{CHASSIS, CHASSIS_PRIVATE, ENCAP, HA_CHASSIS, HA_CHASSIS_GROUP, PORT_BINDING, SB_GLOBAL};
use crate::spec::ChassisSpec;

/// Whether some chassis (a gateway) may keep rows of `table`: what a farm decodes once for all.
pub(crate) fn any_chassis_keeps_table(table: &str) -> bool {
    matches!(
        table,
        SB_GLOBAL | CHASSIS | CHASSIS_PRIVATE | ENCAP | PORT_BINDING | HA_CHASSIS_GROUP | HA_CHASSIS
    )
}

/// The filter's view of its chassis; the chassis task updates it as ports come and go.
#[derive(Debug)]
pub(crate) struct KeepState {
    pub spec: ChassisSpec,
    pub chassis_uuid: Option<Uuid>,
    /// Logical ports plugged here (explicitly or because they request this chassis). Looked up
    /// for every `Port_Binding` change the chassis receives: a fast hash, not SipHash.
    pub bound: foldhash::HashSet<String>,
}

impl KeepState {
    pub fn new(spec: ChassisSpec) -> Self {
        KeepState {
            spec,
            chassis_uuid: None,
            bound: foldhash::HashSet::default(),
        }
    }

    /// Whether the chassis acts on any row of `table`. Fixed for a chassis's lifetime.
    pub fn keeps_table(&self, table: &str) -> bool {
        match table {
            HA_CHASSIS_GROUP | HA_CHASSIS => self.spec.is_gateway,
            other => any_chassis_keeps_table(other),
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
        // One pass over the row's columns, as in `may_keep_after`: every chassis of a farm
        // judges every Port_Binding inserted, and six lookups by name per row were a tenth of
        // the farm's CPU at 1,000 chassis.
        let spec = &self.spec;
        let (mut port_type, mut options, mut requested_chassis) = ("", None, None);
        for (column, value) in row {
            match column.as_str() {
                "logical_port" if value.as_str().is_some_and(|port| self.bound.contains(port)) => return true,
                "chassis" if self.is_us(value) => return true,
                "requested_chassis" => requested_chassis = Some(value),
                "options" => options = Some(value),
                "type" => port_type = value.as_str().unwrap_or(""),
                _ => {}
            }
        }
        let option = |key: &str| options.and_then(|o: &Value| o.map_get_str(key));
        match port_type {
            "chassisredirect" if spec.is_gateway => return true,
            // Patch ports link datapaths: needed to know which datapaths are local, which only
            // matters when the chassis sets monitor conditions.
            "patch" if !spec.monitor_all => return true,
            "l3gateway" if option("l3gateway-chassis") == Some(spec.name.as_str()) => return true,
            _ => {}
        }
        spec.bind_requested
            && (requested_chassis.is_some_and(|v| self.is_us(v))
                || option("requested-chassis").is_some_and(|r| spec.is_requested_by(r)))
    }

    /// Whether a `Port_Binding` modify (changed columns only) of a row not held may make it
    /// kept: it names this chassis, or concerns a bound port, or gives the row a type kept
    /// whole. The client then fetches the row and asks [`KeepState::keeps`].
    pub fn may_keep_after(&self, table: &str, diff: &Row) -> bool {
        if table != PORT_BINDING {
            return false;
        }
        let spec = &self.spec;
        // One pass over the diff's few columns: every chassis of a farm looks at every
        // Port_Binding change, so lookups by name (a binary search each) added up.
        for (column, value) in diff {
            let hit = match column.as_str() {
                "logical_port" => value.as_str().is_some_and(|port| self.bound.contains(port)),
                "chassis" => self.is_us(value),
                "requested_chassis" => spec.bind_requested && self.is_us(value),
                // A map diff holds the pairs added, replaced or removed: a removal is fetched
                // for nothing, which is harmless.
                "options" => {
                    value.map_get_str("l3gateway-chassis") == Some(spec.name.as_str())
                        || (spec.bind_requested
                            && value
                                .map_get_str("requested-chassis")
                                .is_some_and(|r| spec.is_requested_by(r)))
                }
                "type" => match value.as_str() {
                    Some("chassisredirect") => spec.is_gateway,
                    Some("patch") => !spec.monitor_all,
                    Some("l3gateway") => true,
                    _ => false,
                },
                _ => false,
            };
            if hit {
                return true;
            }
        }
        false
    }

    fn is_us(&self, value: &Value) -> bool {
        self.chassis_uuid.is_some() && value.as_uuid() == self.chassis_uuid
    }
}

/// The filter handed to `Client::monitor_filtered`. It also tells the chassis when a row it
/// keeps arrives or changes, through `kept`: cheaper than a replica subscription, whose event
/// buffer would cost every chassis megabytes. The replica applies an update under its write
/// lock, so a chassis woken by `kept` reads the update whole.
#[derive(Debug)]
pub(crate) struct ChassisFilter {
    state: RwLock<KeepState>,
    pub kept: Notify,
    /// Bumped whenever this chassis's own `Chassis`, `Chassis_Private` or `Encap` row arrives
    /// or changes: while it stands still, registration has nothing to check.
    pub own_rows_changed: AtomicU64,
}

impl ChassisFilter {
    pub fn new(spec: ChassisSpec) -> Self {
        ChassisFilter {
            state: RwLock::new(KeepState::new(spec)),
            kept: Notify::new(),
            own_rows_changed: AtomicU64::new(0),
        }
    }

    // A panic elsewhere may poison the lock: keeping too much is safer than dropping rows.
    fn read(&self) -> RwLockReadGuard<'_, KeepState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, KeepState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl RowFilter for ChassisFilter {
    fn keeps_table(&self, table: &str) -> bool {
        self.read().keeps_table(table)
    }

    fn keeps(&self, table: &str, row: &Row) -> bool {
        let keep = self.read().keeps(table, row);
        if keep {
            // Our own Chassis row, seen before registration told us its UUID (a restart):
            // learn it now, so the Port_Bindings of the same initial contents that still
            // name it (claims of the previous run) are kept, and released if unbound.
            if table == CHASSIS && self.read().chassis_uuid.is_none() {
                self.write().chassis_uuid = row.uuid();
            }
            if matches!(table, CHASSIS | CHASSIS_PRIVATE | ENCAP) {
                self.own_rows_changed.fetch_add(1, Ordering::Relaxed);
            }
            self.kept.notify_one();
        }
        keep
    }

    fn may_keep_after(&self, table: &str, _uuid: Uuid, diff: &Row) -> bool {
        self.read().may_keep_after(table, diff)
    }

    /// One of our rows went (our `Chassis` deleted by an operator, a port's row deleted): the
    /// chassis has something to reconcile.
    fn forgets(&self, table: &str, _uuid: Uuid) {
        if matches!(table, CHASSIS | CHASSIS_PRIVATE | ENCAP) {
            self.own_rows_changed.fetch_add(1, Ordering::Relaxed);
        }
        self.kept.notify_one();
    }

    /// Every column is read as its default when absent (no name, no chassis, no options).
    fn ignores_defaults(&self) -> bool {
        true
    }
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
    fn decodes_only_tables_it_acts_on() {
        let mut state = KeepState::new(ChassisSpec::new("hv1", "198.18.0.1"));
        for table in [SB_GLOBAL, CHASSIS, CHASSIS_PRIVATE, ENCAP, PORT_BINDING] {
            assert!(state.keeps_table(table), "{table}");
        }
        for table in ["Logical_Flow", "Datapath_Binding", "MAC_Binding", HA_CHASSIS] {
            assert!(!state.keeps_table(table), "{table}");
        }
        state.spec.is_gateway = true;
        assert!(state.keeps_table(HA_CHASSIS) && state.keeps_table(HA_CHASSIS_GROUP));
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

    #[test]
    fn diffs_naming_us_or_bound_ports_are_worth_a_fetch() {
        let mut state = KeepState::new(ChassisSpec::new("hv1", "198.18.0.1"));
        let me = Uuid::new_v4();
        state.chassis_uuid = Some(me);
        let requested = Row::new().with("options", Value::string_map([("requested-chassis", "hv1")]));
        assert!(!state.may_keep_after(PORT_BINDING, &requested));
        state.spec.bind_requested = true;
        assert!(state.may_keep_after(PORT_BINDING, &requested));
        assert!(state.may_keep_after(PORT_BINDING, &Row::new().with("chassis", Value::uuid(me))));
        assert!(state.may_keep_after(PORT_BINDING, &Row::new().with("requested_chassis", Value::uuid(me))));
        let other = Row::new().with("chassis", Value::uuid(Uuid::new_v4()));
        assert!(!state.may_keep_after(PORT_BINDING, &other));
        assert!(!state.may_keep_after(PORT_BINDING, &Row::new().with("up", true)));
        let gateway = Row::new().with("options", Value::string_map([("l3gateway-chassis", "hv1")]));
        assert!(state.may_keep_after(PORT_BINDING, &gateway));
        assert!(!state.may_keep_after(PORT_BINDING, &Row::new().with("logical_port", "vm3")));
        state.bound.insert("vm3".into());
        assert!(state.may_keep_after(PORT_BINDING, &Row::new().with("logical_port", "vm3")));
        assert!(!state.may_keep_after(CHASSIS, &Row::new().with("name", "hv1")));
    }

    #[test]
    fn own_chassis_row_teaches_its_uuid() {
        let filter = ChassisFilter::new(ChassisSpec::new("hv1", "198.18.0.1"));
        let me = Uuid::new_v4();
        let row = Row::new().with("name", "hv1").with("_uuid", Value::uuid(me));
        assert!(filter.keeps(CHASSIS, &row));
        assert!(filter.keeps(PORT_BINDING, &pb("vm9", "").with("chassis", Value::uuid(me))));
    }
}
