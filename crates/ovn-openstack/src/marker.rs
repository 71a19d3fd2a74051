//! The run marker: an `external_ids` key (`ovn-heater:run`, its value a run id) the mimic adds
//! to every root row it writes when [`crate::Config::run_marker`] is set, so that rows of an
//! ovn-heater run can be told from a deployment's own in any NB — also rows left by a run that
//! was killed (`kill -9`) and so never cleaned up. Real Neutron writes no such key; the marker
//! is off by default, so transactions compared against real Neutron's are unchanged.
//!
//! Only root rows (switches, routers, port groups, DHCP options, HA chassis groups) carry it:
//! every other row the mimic writes hangs off one of them and goes with it (OVSDB garbage
//! collection), so deleting the marked roots deletes everything of the run.

use std::collections::BTreeMap;

use ovsdb::{Client, Condition, Operation, Row, Transaction, Value};

use crate::error::Result;
use crate::nb;

/// The `external_ids` key of the marker.
pub const KEY: &str = "ovn-heater:run";

/// The NB tables whose rows carry the marker: the root tables the mimic writes.
pub const ROOT_TABLES: [&str; 5] = [
    nb::LOGICAL_SWITCH,
    nb::LOGICAL_ROUTER,
    nb::PORT_GROUP,
    nb::DHCP_OPTIONS,
    nb::HA_CHASSIS_GROUP,
];

/// `txn` with the marker `run` added to the `external_ids` of every root row it inserts or
/// updates (an update that does not set `external_ids` keeps the stored marker), and to the
/// expected `external_ids` of its `wait` guards on root rows (they compare the whole map).
pub fn mark(txn: Transaction, run: &str) -> Transaction {
    let mut marked = Transaction::new(txn.database().to_owned());
    for op in txn.into_operations() {
        let op = match op {
            Operation::Insert {
                table,
                mut row,
                uuid_name,
            } if is_root(&table) => {
                add_to_row(&mut row, run, true);
                Operation::Insert { table, row, uuid_name }
            }
            Operation::Update {
                table,
                conditions,
                mut row,
            } if is_root(&table) => {
                add_to_row(&mut row, run, false);
                Operation::Update { table, conditions, row }
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until_equal,
                mut rows,
                timeout_ms,
            } if is_root(&table) => {
                for row in &mut rows {
                    add_to_row(row, run, false);
                }
                Operation::Wait {
                    table,
                    conditions,
                    columns,
                    until_equal,
                    rows,
                    timeout_ms,
                }
            }
            other => other,
        };
        marked.push(op);
    }
    marked
}

fn is_root(table: &str) -> bool {
    ROOT_TABLES.contains(&table)
}

/// Adds the marker to `row`'s `external_ids` if it has that column (or, `always`, if not).
fn add_to_row(row: &mut Row, run: &str, always: bool) {
    let mut ids = match row.get("external_ids") {
        Some(v) => v.to_string_map(),
        None if always => BTreeMap::new(),
        None => return,
    };
    ids.insert(KEY.to_owned(), run.to_owned());
    row.set("external_ids", Value::string_map(ids));
}

/// Marked root rows found in an NB, per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marked {
    /// Table → the marked rows' uuids.
    pub rows: BTreeMap<String, Vec<ovsdb::Uuid>>,
    /// The run ids found (the marker's values).
    pub runs: Vec<String>,
}

impl Marked {
    pub fn is_empty(&self) -> bool {
        self.rows.values().all(Vec::is_empty)
    }
    /// Rows per table, tables without any left out.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.rows
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, r)| (t.clone(), r.len()))
            .collect()
    }
    pub fn total(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }
}

/// The root rows of `nb` that carry the marker: of run `run`, or of any run when `None`. One
/// read-only transaction.
pub async fn find(nb: &Client, run: Option<&str>) -> Result<Marked> {
    let mut select = Transaction::new(nb::NB);
    for table in ROOT_TABLES {
        select.select(table, vec![], Some(vec!["_uuid".into(), "external_ids".into()]));
    }
    let found = nb.transact(select).await?;
    let mut marked = Marked::default();
    for (table, result) in ROOT_TABLES.iter().zip(&found.results) {
        let mut uuids = Vec::new();
        for row in result.rows.iter().flatten() {
            let Some(uuid) = row.uuid() else { continue };
            let Some(value) = row.get("external_ids").and_then(|ids| ids.map_get_str(KEY)) else {
                continue;
            };
            if run.is_none_or(|r| r == value) {
                uuids.push(uuid);
                if !marked.runs.iter().any(|r| r == value) {
                    marked.runs.push(value.to_owned());
                }
            }
        }
        marked.rows.insert((*table).to_owned(), uuids);
    }
    marked.runs.sort();
    Ok(marked)
}

/// Deletes from `nb` the root rows carrying the marker (of `run`, or of any run when `None`)
/// and so everything hanging off them; one transaction. Returns what it deleted.
pub async fn purge(nb: &Client, run: Option<&str>) -> Result<Marked> {
    let marked = find(nb, run).await?;
    if marked.is_empty() {
        return Ok(marked);
    }
    let mut delete = Transaction::new(nb::NB);
    for (table, uuids) in &marked.rows {
        for uuid in uuids {
            delete.delete(table.as_str(), vec![Condition::uuid(*uuid)]);
        }
    }
    nb.transact(delete).await?;
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_inserts_updates_and_guards_get_the_marker_other_rows_do_not() {
        let mut txn = Transaction::new(nb::NB);
        txn.insert(
            nb::LOGICAL_SWITCH,
            Row::new()
                .with("name", "neutron-x")
                .with("external_ids", Value::string_map([("neutron:network_name", "n")])),
        );
        txn.insert(nb::DHCP_OPTIONS, Row::new().with("cidr", "10.0.0.0/24"));
        txn.insert(
            nb::LOGICAL_SWITCH_PORT,
            Row::new().with("external_ids", Value::string_map([("a", "b")])),
        );
        txn.update(nb::LOGICAL_ROUTER, vec![], Row::new().with("enabled", true));
        txn.verify(
            nb::LOGICAL_SWITCH,
            vec![],
            vec!["external_ids".into()],
            vec![Row::new().with("external_ids", Value::string_map([("k", "v")]))],
        );
        let marked = mark(txn, "r1");
        let ops = marked.operations();
        let ids = |op: &Operation| match op {
            Operation::Insert { row, .. } | Operation::Update { row, .. } => {
                row.get("external_ids").map(Value::to_string_map)
            }
            Operation::Wait { rows, .. } => rows[0].get("external_ids").map(Value::to_string_map),
            _ => None,
        };
        let switch = ids(&ops[0]).unwrap();
        assert_eq!(switch.get(KEY).map(String::as_str), Some("r1"));
        assert_eq!(switch.get("neutron:network_name").map(String::as_str), Some("n"));
        assert_eq!(ids(&ops[1]).unwrap().get(KEY).map(String::as_str), Some("r1"));
        assert!(!ids(&ops[2]).unwrap().contains_key(KEY), "ports hang off their switch");
        assert!(
            ids(&ops[3]).is_none(),
            "an update that leaves external_ids keeps the stored marker"
        );
        assert_eq!(ids(&ops[4]).unwrap().get(KEY).map(String::as_str), Some("r1"));
    }
}
