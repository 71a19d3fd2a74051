//! What to monitor (tables, columns, conditions) and the updates the server sends
//! (`update`, `update2`, `update3`), decoded into one form.
//!
//! Must not know: any schema's table names.

use std::collections::BTreeMap;

use crate::condition::Condition;
use crate::datum::{Row, Uuid};
use crate::schema::DatabaseSchema;

/// Which protocol a monitor ended up using (the client falls back in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMethod {
    /// `monitor_cond_since` (update3; resumes from the last transaction id).
    CondSince,
    /// `monitor_cond` (update2).
    Cond,
    /// `monitor` (update).
    Plain,
}

/// Monitoring of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableMonitor {
    /// `None`: every column.
    pub columns: Option<Vec<String>>,
    /// `None`: every row. `Some(conds)`: rows matching **any** of `conds` (monitor conditions are
    /// disjunctions, unlike a transaction's `where`); `[Condition::Constant(false)]` matches none.
    pub conditions: Option<Vec<Condition>>,
}

impl TableMonitor {
    pub fn all() -> Self {
        TableMonitor::default()
    }
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cols: I) -> Self {
        self.columns = Some(cols.into_iter().map(Into::into).collect());
        self
    }
    pub fn conditions(mut self, conds: Vec<Condition>) -> Self {
        self.conditions = Some(conds);
        self
    }
}

/// The tables of one monitor request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorRequest {
    pub tables: BTreeMap<String, TableMonitor>,
}

impl MonitorRequest {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn table(mut self, name: impl Into<String>, monitor: TableMonitor) -> Self {
        self.tables.insert(name.into(), monitor);
        self
    }
    /// Every table and column of a schema, unconditionally.
    pub fn all_tables(schema: &DatabaseSchema) -> Self {
        MonitorRequest {
            tables: schema.tables.keys().map(|t| (t.clone(), TableMonitor::all())).collect(),
        }
    }
}

/// One row's change within an update, after decoding any of update/update2/update3.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// A new row (or a row of the initial contents); full row.
    Insert(Row),
    /// Changed row: the columns that changed, as their new full values (update2 `modify`
    /// diffs are applied by the replica, which knows the old value).
    Modify(RowDiff),
    Delete,
}

/// The raw change of a `modify`: either full new values (`update`) or an update2 diff.
#[derive(Clone, Debug, PartialEq)]
pub enum RowDiff {
    /// New values of the changed columns.
    New(Row),
    /// update2/update3 `modify` diff: for sets, elements to toggle; for maps, keys to
    /// remove/add/replace; for scalars, the new value.
    Diff2(Row),
}

/// All changes of one notification (one committed transaction, or the initial contents).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableUpdates {
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
    /// update3: the transaction id after this update.
    pub last_txn_id: Option<Uuid>,
}
