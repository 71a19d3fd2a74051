//! Which rows a filtered replica keeps in memory (see
//! [`Client::monitor_filtered`](crate::Client::monitor_filtered)).
//!
//! A filtered monitor still receives everything the server sends for its request; the filter
//! decides what the replica holds. With update2/update3 a `modify` carries only the changed
//! columns, so a row the replica does not hold cannot be judged whole: the filter says whether
//! the change *may* make the row interesting, and the client then fetches the whole row (a
//! `select` on `_uuid`, ordered with the update stream) and asks [`RowFilter::keeps`].
//!
//! Must not know: any schema's table names.

use std::sync::Arc;

use crate::datum::{Row, Uuid};

/// Decides which rows a filtered replica keeps.
///
/// Closures `Fn(&str, &Row) -> bool` are filters too (they keep every table and never fetch).
pub trait RowFilter: Send + Sync + 'static {
    /// Whether any row of `table` may ever be kept. Updates of tables for which this is false
    /// are still read and checked to be valid JSON, but never decoded into rows. The answer
    /// must not change over the monitor's lifetime.
    fn keeps_table(&self, _table: &str) -> bool {
        true
    }

    /// Whether to keep `row` (a whole row: initial contents, an insert, a fetched row, or a
    /// held row after a change was applied to it). A held row that stops being kept is
    /// dropped, with a `Delete` event.
    fn keeps(&self, table: &str, row: &Row) -> bool;

    /// A row the replica held is gone (deleted, out of the monitor's conditions, or no longer
    /// kept), as an update applied it. Nothing else tells a filter about deletions.
    fn forgets(&self, _table: &str, _uuid: Uuid) {}

    /// Whether [`RowFilter::keeps`] gives the same answer for a row whether or not its columns
    /// that hold their default values (empty sets and maps, `""`, 0, false) are present. Then
    /// a replica applying an update decoded for many (see [`crate::UpdateCache`]) judges each
    /// inserted row before copying it, instead of copying and filling in defaults first.
    fn ignores_defaults(&self) -> bool {
        false
    }

    /// A row the replica does not hold changed; `diff` is the update2 `modify` diff (changed
    /// columns only: new scalar values, set elements toggled, map pairs added, replaced or
    /// removed). `true` makes the client fetch the whole row and offer it to
    /// [`RowFilter::keeps`]. Never called for plain `monitor`, whose modifies carry whole rows.
    fn may_keep_after(&self, _table: &str, _uuid: Uuid, _diff: &Row) -> bool {
        false
    }
}

impl<F> RowFilter for F
where
    F: Fn(&str, &Row) -> bool + Send + Sync + 'static,
{
    fn keeps(&self, table: &str, row: &Row) -> bool {
        self(table, row)
    }
}

/// A shared filter, as the client stores it.
pub type SharedFilter = Arc<dyn RowFilter>;
