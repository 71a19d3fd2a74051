//! An in-memory copy of the tables a [`Client`](crate::Client) monitors, kept current from
//! update notifications.
//!
//! Only the client's connection task writes to a [`Replica`]; everyone else reads snapshots or
//! subscribes to [`RowEvent`]s. After a reconnect the monitor resumes with `monitor_cond_since`
//! from the last transaction id, so subscribers see each change once; if the server cannot
//! resume, the replica is rebuilt from the new initial contents and subscribers get the
//! difference as ordinary events followed by one [`RowEvent::Resynced`].
//!
//! Must not know: OVN table names, the lab, any CMS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::condition::Condition;
use crate::datum::{Row, Uuid};
use crate::error::Result;

/// One change seen by a replica. `at` is when the notification was read off the socket
/// (monotonic), so latency measurements do not include subscriber scheduling.
#[derive(Clone, Debug)]
pub enum RowEvent {
    Insert {
        table: String,
        uuid: Uuid,
        new: Row,
        at: Instant,
    },
    Modify {
        table: String,
        uuid: Uuid,
        old: Row,
        new: Row,
        at: Instant,
    },
    Delete {
        table: String,
        uuid: Uuid,
        old: Row,
        at: Instant,
    },
    /// The replica was rebuilt after a reconnect that could not resume.
    Resynced { at: Instant },
}

/// A point-in-time copy of the replica's tables: table → uuid → row (with `_uuid`).
pub type Tables = BTreeMap<String, BTreeMap<Uuid, Row>>;

/// A live copy of monitored tables. Cheap to clone (shared).
#[derive(Clone)]
pub struct Replica {
    _private: (),
}

/// A stream of [`RowEvent`]s. Lagging subscribers get `Err(Lagged)` from `recv` rather than
/// blocking the connection.
pub type Subscription = tokio::sync::broadcast::Receiver<RowEvent>;

impl Replica {
    pub fn database(&self) -> &str {
        todo!("ovsdb helper")
    }
    /// A consistent copy of everything (as of the last applied update).
    pub fn snapshot(&self) -> Tables {
        todo!("ovsdb helper")
    }
    /// Runs `f` over the current tables without copying them.
    pub fn read<R>(&self, _f: impl FnOnce(&Tables) -> R) -> R {
        todo!("ovsdb helper")
    }
    /// One row.
    pub fn get(&self, _table: &str, _uuid: Uuid) -> Option<Row> {
        todo!("ovsdb helper")
    }
    /// Rows of `table` for which `pred` holds.
    pub fn find(&self, _table: &str, _pred: impl Fn(&Row) -> bool) -> Vec<(Uuid, Row)> {
        todo!("ovsdb helper")
    }
    /// Subscribe to changes from now on.
    pub fn subscribe(&self) -> Subscription {
        todo!("ovsdb helper")
    }
    /// Waits until a row of `table` satisfies `pred` (checking the current contents first, then
    /// each change, no polling), and returns it with the instant the matching update arrived
    /// (or now, if it already matched).
    pub async fn wait_for(
        &self,
        _table: &str,
        _pred: impl Fn(&Row) -> bool,
        _timeout: Duration,
    ) -> Result<(Uuid, Row, Instant)> {
        todo!("ovsdb helper")
    }
    /// Replaces the conditions of `table` (`monitor_cond_change`); rows that stop matching are
    /// deleted from the replica, new matches inserted.
    pub async fn change_conditions(&self, _table: &str, _conditions: Vec<Condition>) -> Result<()> {
        todo!("ovsdb helper")
    }
    /// The last transaction id seen (monitor_cond_since only).
    pub fn last_txn_id(&self) -> Option<Uuid> {
        todo!("ovsdb helper")
    }
    /// Stops the monitor (`monitor_cancel`).
    pub async fn cancel(&self) -> Result<()> {
        todo!("ovsdb helper")
    }
}
