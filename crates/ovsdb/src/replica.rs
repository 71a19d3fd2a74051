//! An in-memory copy of the tables a [`Client`] monitors, kept current from
//! update notifications.
//!
//! Only the client's connection task writes to a [`Replica`]; everyone else reads snapshots or
//! subscribes to [`RowEvent`]s. After a reconnect the monitor resumes with `monitor_cond_since`
//! from the last transaction id, so subscribers see each change once; if the server cannot
//! resume, the replica is rebuilt from the new initial contents and subscribers get the
//! difference as ordinary events followed by one [`RowEvent::Resynced`].
//!
//! Events are sent while the tables are write-locked, and a subscriber registers before it
//! reads: so "subscribe, then look at the contents, then follow events" never misses a change
//! ([`Replica::wait_for`] relies on it). Rows are stored with their `_uuid` column, and values
//! keep the wire's shape (a one-element set is a bare atom, sets and maps are sorted), so a
//! replica compares equal to a fresh dump of the same rows.
//!
//! A filtered replica (see [`crate::filter`]) holds only the rows its filter keeps. An update2
//! diff of a row it does not hold cannot be judged, so `ReplicaShared::apply` returns the
//! rows worth fetching and the connection selects them, in order with the update stream;
//! their replies go through `ReplicaShared::apply_fetched`.
//!
//! Must not know: OVN table names, the lab, any CMS.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::broadcast;

use crate::client::Client;
use crate::condition::Condition;
use crate::datum::{Atom, Row, Str, Uuid, Value};
use crate::error::{Error, Result};
use crate::filter::SharedFilter;
use crate::monitor::{MonitorMethod, MonitorRequest, RowChange, RowDiff, TableUpdates};
use crate::schema::{AtomicType, ColumnType, DatabaseSchema, TableSchema};

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

impl RowEvent {
    /// The table the event is about (`None` for `Resynced`).
    pub fn table(&self) -> Option<&str> {
        match self {
            RowEvent::Insert { table, .. } | RowEvent::Modify { table, .. } | RowEvent::Delete { table, .. } => {
                Some(table)
            }
            RowEvent::Resynced { .. } => None,
        }
    }
    /// When the notification that caused it was read off the socket.
    pub fn at(&self) -> Instant {
        match self {
            RowEvent::Insert { at, .. }
            | RowEvent::Modify { at, .. }
            | RowEvent::Delete { at, .. }
            | RowEvent::Resynced { at } => *at,
        }
    }
}

/// A point-in-time copy of the replica's tables: table → uuid → row (with `_uuid`).
pub type Tables = BTreeMap<String, BTreeMap<Uuid, Row>>;

/// How many events a subscriber may fall behind before it gets `Lagged`. The channel keeps
/// each event until its slot is reused, so this is also how many stay in memory after every
/// subscriber read them: at 16k, a 1,000-VM run kept all its NB events (~4 MB of its
/// ~50 MB). A subscriber that keeps up (a task doing map updates) is never 2k behind.
pub const SUBSCRIPTION_CAPACITY: usize = 2 * 1024;

/// A live copy of monitored tables. Cheap to clone (shared).
#[derive(Clone)]
pub struct Replica {
    pub(crate) shared: Arc<ReplicaShared>,
    pub(crate) client: Client,
}

/// A stream of [`RowEvent`]s. Lagging subscribers get `Err(Lagged)` from `recv` rather than
/// blocking the connection.
pub type Subscription = tokio::sync::broadcast::Receiver<RowEvent>;

impl Replica {
    pub fn database(&self) -> &str {
        &self.shared.database
    }
    /// A consistent copy of everything (as of the last applied update).
    pub fn snapshot(&self) -> Tables {
        self.read(Tables::clone)
    }
    /// Runs `f` over the current tables without copying them. Updates wait while `f` runs:
    /// keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        let tables = self.shared.tables.read().unwrap_or_else(|p| p.into_inner());
        f(&tables)
    }
    /// One row.
    pub fn get(&self, table: &str, uuid: Uuid) -> Option<Row> {
        self.read(|t| t.get(table)?.get(&uuid).cloned())
    }
    /// Rows of `table` for which `pred` holds.
    pub fn find(&self, table: &str, pred: impl Fn(&Row) -> bool) -> Vec<(Uuid, Row)> {
        self.read(|t| {
            t.get(table)
                .map(|rows| {
                    rows.iter()
                        .filter(|(_, r)| pred(r))
                        .map(|(u, r)| (*u, r.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
    /// Number of rows in `table`.
    pub fn len(&self, table: &str) -> usize {
        self.read(|t| t.get(table).map_or(0, BTreeMap::len))
    }
    /// Subscribe to changes from now on (a subscriber may fall [`SUBSCRIPTION_CAPACITY`]
    /// events behind).
    pub fn subscribe(&self) -> Subscription {
        self.shared.subscribe(SUBSCRIPTION_CAPACITY)
    }
    /// Like [`Replica::subscribe`], for a subscriber that must survive one update touching
    /// up to `capacity` rows (e.g. a watch of a whole table). The replica's subscribers share
    /// one channel: the first subscription sets its capacity, and the channel keeps that many
    /// events in memory once it has seen them.
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription {
        self.shared.subscribe(capacity.max(1))
    }
    /// Waits until a row of `table` satisfies `pred` (checking the current contents first, then
    /// each change, no polling), and returns it with the instant the matching update arrived
    /// (or now, if it already matched).
    pub async fn wait_for(
        &self,
        table: &str,
        pred: impl Fn(&Row) -> bool,
        timeout: Duration,
    ) -> Result<(Uuid, Row, Instant)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.subscribe();
        let current = |replica: &Replica| {
            replica.read(|t| {
                t.get(table)?
                    .iter()
                    .find(|(_, r)| pred(r))
                    .map(|(u, r)| (*u, r.clone(), Instant::now()))
            })
        };
        if let Some(hit) = current(self) {
            return Ok(hit);
        }
        loop {
            let event = match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("a row of {table} in {} to match", self.shared.database),
                        after: timeout,
                    })
                }
                Ok(event) => event,
            };
            match event {
                Ok(RowEvent::Insert {
                    table: t,
                    uuid,
                    new,
                    at,
                    ..
                })
                | Ok(RowEvent::Modify {
                    table: t,
                    uuid,
                    new,
                    at,
                    ..
                }) if t == table && pred(&new) => return Ok((uuid, new, at)),
                Ok(RowEvent::Resynced { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed or coalesced changes: the contents are the truth now.
                    if let Some(hit) = current(self) {
                        return Ok(hit);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(Error::Disconnected {
                        remote: self.client.remotes_display(),
                    })
                }
            }
        }
    }
    /// Replaces the conditions of `table` (`monitor_cond_change`); rows that stop matching are
    /// deleted from the replica, new matches inserted.
    pub async fn change_conditions(&self, table: &str, conditions: Vec<Condition>) -> Result<()> {
        self.client
            .change_monitor_conditions(&self.shared, vec![(table.to_owned(), conditions)])
            .await
    }
    /// Replaces the conditions of several tables in one `monitor_cond_change` (the server
    /// applies them together, as one update). An empty list changes nothing.
    pub async fn change_conditions_of(&self, changes: Vec<(String, Vec<Condition>)>) -> Result<()> {
        self.client.change_monitor_conditions(&self.shared, changes).await
    }
    /// Brings rows of `table` matching **all** of `conditions` (a transaction's `where`) into
    /// the replica: selects them with the monitored columns, offers each to the filter's
    /// `keeps` (an unfiltered replica keeps all), inserts the kept ones (`Insert` events), and
    /// returns how many of the selected rows the replica now holds. For a filtered replica
    /// that starts caring about a row its filter dropped earlier. The reply is applied in order
    /// with the update stream, so the rows are current and later updates apply on top.
    ///
    /// A row outside the monitor's conditions gets no updates from the server: fetch only rows
    /// the monitor covers.
    pub async fn fetch(&self, table: &str, conditions: Vec<Condition>) -> Result<usize> {
        self.client.fetch_into_replica(&self.shared, table, conditions).await
    }
    /// The last transaction id seen (monitor_cond_since only).
    pub fn last_txn_id(&self) -> Option<Uuid> {
        *self.shared.last_txn_id.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Which monitor method the server accepted for this replica.
    pub fn method(&self) -> Option<MonitorMethod> {
        *self.shared.method.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Stops the monitor (`monitor_cancel`). The replica keeps its last contents.
    pub async fn cancel(&self) -> Result<()> {
        self.client.cancel_monitor(&self.shared).await
    }
}

/// The state behind a [`Replica`], shared with the connection task that applies updates.
pub(crate) struct ReplicaShared {
    pub(crate) database: String,
    /// The `monitor-id` (a JSON string), stable across reconnects.
    pub(crate) monitor_id: Json,
    pub(crate) request: Mutex<MonitorRequest>,
    /// `None`: an unfiltered replica (holds every row the server sends).
    pub(crate) filter: Option<SharedFilter>,
    /// Rows a filtered replica asked for with a `select` after a `modify` it could not judge
    /// (see [`ReplicaShared::apply`]), until the reply is applied.
    fetching: Mutex<HashMap<Uuid, InFlight>>,
    pub(crate) schema: Option<Arc<DatabaseSchema>>,
    tables: RwLock<Tables>,
    /// Created on the first `subscribe`, so replicas nobody watches never build events.
    events: Mutex<Option<broadcast::Sender<RowEvent>>>,
    pub(crate) last_txn_id: Mutex<Option<Uuid>>,
    pub(crate) method: Mutex<Option<MonitorMethod>>,
    /// Set once the server accepted the monitor; only active monitors are resumed.
    pub(crate) active: AtomicBool,
}

impl ReplicaShared {
    pub(crate) fn new(
        database: &str,
        monitor_id: Json,
        request: MonitorRequest,
        filter: Option<SharedFilter>,
        schema: Option<Arc<DatabaseSchema>>,
    ) -> Self {
        ReplicaShared {
            database: database.to_owned(),
            monitor_id,
            request: Mutex::new(request),
            filter,
            fetching: Mutex::new(HashMap::new()),
            schema,
            tables: RwLock::new(Tables::new()),
            events: Mutex::new(None),
            last_txn_id: Mutex::new(None),
            method: Mutex::new(None),
            active: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(AtomicOrdering::Acquire)
    }
    pub(crate) fn set_active(&self, on: bool) {
        self.active.store(on, AtomicOrdering::Release);
    }
    pub(crate) fn set_last_txn_id(&self, id: Option<Uuid>) {
        if id.is_some() {
            *self.last_txn_id.lock().unwrap_or_else(|p| p.into_inner()) = id;
        }
    }
    pub(crate) fn request(&self) -> MonitorRequest {
        self.request.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Default values of the monitored columns of `table`: update2 leaves out columns that
    /// hold their default, and the replica puts them back so rows look the same whichever
    /// monitor method filled them.
    fn defaults(&self, table: &str) -> Vec<(Str, Value)> {
        let Some(ts) = self.schema.as_ref().and_then(|s| s.tables.get(table)) else {
            return Vec::new();
        };
        let request = self.request.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = request.tables.get(table).and_then(|t| t.columns.as_ref());
        ts.columns
            .values()
            .filter(|c| wanted.is_none_or(|w| w.contains(&c.name)))
            .map(|c| (Str::from(c.name.as_str()), default_value(&c.column_type)))
            .collect()
    }

    fn subscribe(&self, capacity: usize) -> Subscription {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.get_or_insert_with(|| broadcast::channel(capacity).0).subscribe()
    }

    /// The sender, if anyone listens; taken before the tables are locked (see module doc).
    fn listeners(&self) -> Option<broadcast::Sender<RowEvent>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.as_ref().filter(|s| s.receiver_count() > 0).cloned()
    }

    /// Reads the tables (for the connection task's own checks).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        f(&tables)
    }

    /// Applies one notification (or the initial contents) and tells subscribers. Returns the
    /// rows a filtered replica must fetch (already marked in flight): rows it does not hold
    /// whose update2 `modify` the filter's `may_keep_after` found interesting.
    ///
    /// Why dropping later diffs of a row being fetched is right: the reader queues the `select`
    /// right after this update, and ovsdb-server sends a session all monitor updates of the
    /// transactions it committed before it reads that session's next request. So every update
    /// that reaches us before the select's reply belongs to a transaction the select already
    /// sees, and every one after it applies on top of the fetched row.
    pub(crate) fn apply(&self, updates: TableUpdates, at: Instant) -> Vec<(String, Uuid)> {
        let tables = updates.tables.into_iter().map(|(table, changes)| {
            let changes = changes.into_iter().map(|(uuid, change)| (uuid, Change::from(change)));
            (Cow::Owned(table), changes)
        });
        self.apply_changes(tables, at)
    }

    /// [`ReplicaShared::apply`] for a notification decoded once for many replicas (see
    /// [`crate::UpdateCache`]): its inserted rows carry `_uuid`, so the filter judges them
    /// before they are copied, and only what this replica keeps is copied.
    pub(crate) fn apply_shared(
        &self,
        tables: &BTreeMap<String, BTreeMap<Uuid, RowChange>>,
        at: Instant,
    ) -> Vec<(String, Uuid)> {
        let tables = tables.iter().map(|(table, changes)| {
            let changes = changes.iter().map(|(uuid, change)| (*uuid, Change::from(change)));
            (Cow::Borrowed(table.as_str()), changes)
        });
        self.apply_changes(tables, at)
    }

    fn apply_changes<'u, C>(&self, updates: impl Iterator<Item = (Cow<'u, str>, C)>, at: Instant) -> Vec<(String, Uuid)>
    where
        C: Iterator<Item = (Uuid, Change<'u>)>,
    {
        let sender = self.listeners();
        let emit = |e: RowEvent| {
            if let Some(s) = &sender {
                let _ = s.send(e);
            }
        };
        let filter = self.filter.as_deref();
        let forget = |table: &str, uuid: Uuid| {
            if let Some(f) = filter {
                f.forgets(table, uuid);
            }
        };
        let mut to_fetch = Vec::new();
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        // Taken once per update, after the tables (the order every path takes them in): a farm
        // applies each insert to a thousand filtered replicas.
        let mut fetching = filter.map(|_| self.fetching.lock().unwrap_or_else(|p| p.into_inner()));
        for (table, changes) in updates {
            if filter.is_some_and(|f| !f.keeps_table(&table)) {
                continue;
            }
            let table_schema = self.schema.as_ref().and_then(|s| s.tables.get(&table));
            // Built when first needed: most updates of a busy table insert nothing, and a
            // filtered replica drops most inserted rows without filling them in.
            let mut defaults = None;
            if !tables.contains_key(&*table) {
                tables.insert(table.clone().into_owned(), BTreeMap::new());
            }
            let Some(rows) = tables.get_mut(&*table) else {
                continue;
            };
            for (uuid, change) in changes {
                let new = match change {
                    Change::Delete => {
                        if let Some(old) = rows.remove(&uuid) {
                            emit_delete(&emit, &sender, &table, uuid, old, at);
                            forget(&table, uuid);
                        } else if let Some(in_flight) = fetching.as_mut().and_then(|f| f.get_mut(&uuid)) {
                            // Deleted (or out of the conditions) before its fetch was answered:
                            // the reply must not bring it back.
                            in_flight.cancelled = true;
                        }
                        continue;
                    }
                    Change::Insert(row) => {
                        if let Some(in_flight) = fetching.as_mut().and_then(|f| f.get_mut(&uuid)) {
                            in_flight.cancelled = false;
                        }
                        let mut row = match row {
                            Cow::Owned(row) => row,
                            // A shared row already has its `_uuid`: when the filter's answer
                            // does not depend on default-valued columns, a row it drops is
                            // never copied.
                            Cow::Borrowed(shared) => {
                                if let Some(f) = filter {
                                    let judge_now = f.ignores_defaults()
                                        || defaults.get_or_insert_with(|| self.defaults(&table)).is_empty();
                                    if judge_now && !f.keeps(&table, shared) {
                                        if let Some(old) = rows.remove(&uuid) {
                                            emit_delete(&emit, &sender, &table, uuid, old, at);
                                            forget(&table, uuid);
                                        }
                                        continue;
                                    }
                                }
                                shared.clone()
                            }
                        };
                        fill_defaults(&mut row, defaults.get_or_insert_with(|| self.defaults(&table)));
                        row.set("_uuid", Value::uuid(uuid));
                        row
                    }
                    Change::Modify(diff) => match (rows.get(&uuid), diff) {
                        (Some(old), diff) => apply_diff(old, diff.into_owned(), table_schema),
                        // A plain `update` modify carries the full new row; a filtered replica
                        // sees it for rows it did not keep before.
                        (None, diff) if matches!(*diff, RowDiff::New(_)) => {
                            let RowDiff::New(mut row) = diff.into_owned() else {
                                unreachable!("matched above")
                            };
                            row.set("_uuid", Value::uuid(uuid));
                            row
                        }
                        (None, diff) => {
                            let RowDiff::Diff2(diff) = &*diff else {
                                unreachable!("RowDiff::New matched above")
                            };
                            match filter {
                                None => {
                                    tracing::warn!(%table, %uuid, "update2 modify of a row the replica does not hold; ignored");
                                }
                                Some(f) => {
                                    let Some(fetching) = fetching.as_mut() else {
                                        unreachable!("locked whenever there is a filter")
                                    };
                                    // In flight: the select's reply already reflects this diff.
                                    if !fetching.contains_key(&uuid) && f.may_keep_after(&table, uuid, diff) {
                                        fetching.insert(
                                            uuid,
                                            InFlight {
                                                table: table.clone().into_owned(),
                                                cancelled: false,
                                            },
                                        );
                                        to_fetch.push((table.clone().into_owned(), uuid));
                                    }
                                }
                            }
                            continue;
                        }
                    },
                };
                if let Some(f) = filter {
                    if !f.keeps(&table, &new) {
                        if let Some(old) = rows.remove(&uuid) {
                            emit_delete(&emit, &sender, &table, uuid, old, at);
                            forget(&table, uuid);
                        }
                        continue;
                    }
                }
                let event_new = sender.as_ref().map(|_| new.clone());
                let old = rows.insert(uuid, new);
                if let Some(new) = event_new {
                    emit(match old {
                        Some(old) => RowEvent::Modify {
                            table: table.clone().into_owned(),
                            uuid,
                            old,
                            new,
                            at,
                        },
                        None => RowEvent::Insert {
                            table: table.clone().into_owned(),
                            uuid,
                            new,
                            at,
                        },
                    });
                }
            }
        }
        to_fetch
    }

    /// Fetches still waiting for their reply (on a new connection: lost with the old one).
    pub(crate) fn in_flight(&self) -> Vec<(String, Uuid)> {
        let fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        fetching.iter().map(|(u, f)| (f.table.clone(), *u)).collect()
    }

    /// Forgets in-flight fetches (their reply failed, or a resync re-judged every row).
    pub(crate) fn forget_in_flight(&self, rows: &[(String, Uuid)]) {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        for (_, uuid) in rows {
            fetching.remove(uuid);
        }
    }

    /// The columns a fetch selects: the monitored ones, plus `_uuid` to key the rows.
    pub(crate) fn fetch_columns(&self, table: &str) -> Option<Vec<String>> {
        let request = self.request.lock().unwrap_or_else(|p| p.into_inner());
        let mut columns = match request.tables.get(table)?.columns.clone() {
            Some(columns) => columns,
            None => self
                .schema
                .as_ref()?
                .tables
                .get(table)?
                .columns
                .keys()
                .cloned()
                .collect(),
        };
        if !columns.iter().any(|c| c == "_uuid") {
            columns.push("_uuid".into());
        }
        Some(columns)
    }

    /// Applies the reply of a fetch: `results` holds one table's selected rows per `select`.
    /// For a fetch the replica started itself, `requested` lists the rows asked for; a row
    /// whose fetch was cancelled meanwhile (deleted, or out of the monitor's conditions) or
    /// that the replica already got is left alone. Every other row is offered to the filter
    /// and inserted if kept (`Insert` event). Returns how many result rows the replica holds.
    pub(crate) fn apply_fetched(
        &self,
        results: Vec<(String, Vec<Row>)>,
        requested: Option<&[(String, Uuid)]>,
        at: Instant,
    ) -> usize {
        let cancelled: std::collections::HashSet<Uuid> = match requested {
            None => Default::default(),
            Some(requested) => {
                let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
                requested
                    .iter()
                    .filter_map(|(_, uuid)| match fetching.remove(uuid) {
                        Some(f) if !f.cancelled => None,
                        // Cancelled, or no longer expected (a resync re-judged every row).
                        _ => Some(*uuid),
                    })
                    .collect()
            }
        };
        let sender = self.listeners();
        let filter = self.filter.as_deref();
        let mut held = 0;
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        for (table, selected) in results {
            if filter.is_some_and(|f| !f.keeps_table(&table)) {
                continue;
            }
            let defaults = self.defaults(&table);
            let rows = tables.entry(table.clone()).or_default();
            for mut row in selected {
                let Some(uuid) = row.uuid() else {
                    tracing::warn!(table, "fetched row without _uuid; ignored");
                    continue;
                };
                if rows.contains_key(&uuid) {
                    held += 1;
                    continue;
                }
                if cancelled.contains(&uuid) {
                    continue;
                }
                // Selects return `_version` when asked for every column; monitors never do.
                row.remove("_version");
                fill_defaults(&mut row, &defaults);
                row.set("_uuid", Value::uuid(uuid));
                if filter.is_some_and(|f| !f.keeps(&table, &row)) {
                    continue;
                }
                held += 1;
                if let Some(s) = &sender {
                    let _ = s.send(RowEvent::Insert {
                        table: table.clone(),
                        uuid,
                        new: row.clone(),
                        at,
                    });
                }
                rows.insert(uuid, row);
            }
        }
        held
    }

    /// Replaces the whole contents with `initial` (a full resync after a reconnect that could
    /// not resume): subscribers get the difference as ordinary events, then `Resynced`.
    pub(crate) fn replace(&self, initial: TableUpdates, at: Instant) {
        let mut fresh = Tables::new();
        for table in self.request().tables.into_keys() {
            fresh.entry(table).or_default();
        }
        // Every row is judged whole again: fetches of the old session no longer matter.
        self.fetching.lock().unwrap_or_else(|p| p.into_inner()).clear();
        for (table, changes) in initial.tables {
            if self.filter.as_ref().is_some_and(|f| !f.keeps_table(&table)) {
                continue;
            }
            let defaults = self.defaults(&table);
            let rows = fresh.entry(table.clone()).or_default();
            for (uuid, change) in changes {
                let mut row = match change {
                    RowChange::Insert(row) | RowChange::Modify(RowDiff::New(row)) => row,
                    RowChange::Modify(RowDiff::Diff2(_)) | RowChange::Delete => continue,
                };
                fill_defaults(&mut row, &defaults);
                row.set("_uuid", Value::uuid(uuid));
                if self.filter.as_ref().is_none_or(|f| f.keeps(&table, &row)) {
                    rows.insert(uuid, row);
                }
            }
        }
        let sender = self.listeners();
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = &sender {
            for (table, old_rows) in tables.iter() {
                let new_rows = fresh.get(table);
                for (uuid, old) in old_rows {
                    match new_rows.and_then(|r| r.get(uuid)) {
                        None => {
                            let _ = sender.send(RowEvent::Delete {
                                table: table.clone(),
                                uuid: *uuid,
                                old: old.clone(),
                                at,
                            });
                        }
                        Some(new) if new != old => {
                            let _ = sender.send(RowEvent::Modify {
                                table: table.clone(),
                                uuid: *uuid,
                                old: old.clone(),
                                new: new.clone(),
                                at,
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
            for (table, new_rows) in &fresh {
                let old_rows = tables.get(table);
                for (uuid, new) in new_rows {
                    if old_rows.is_none_or(|r| !r.contains_key(uuid)) {
                        let _ = sender.send(RowEvent::Insert {
                            table: table.clone(),
                            uuid: *uuid,
                            new: new.clone(),
                            at,
                        });
                    }
                }
            }
        }
        *tables = fresh;
        if let Some(sender) = &sender {
            let _ = sender.send(RowEvent::Resynced { at });
        }
    }

    /// Drops every row of `table` (before `monitor_cond_change` re-sends the matching ones
    /// for servers that do not compute the difference themselves). Not used by default.
    #[allow(dead_code)]
    pub(crate) fn clear_table(&self, table: &str, at: Instant) {
        let sender = self.listeners();
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if let Some(rows) = tables.get_mut(table) {
            for (uuid, old) in std::mem::take(rows) {
                if let Some(s) = &sender {
                    let _ = s.send(RowEvent::Delete {
                        table: table.to_owned(),
                        uuid,
                        old,
                        at,
                    });
                }
            }
        }
    }
}

/// A fetch the replica started and has not seen answered.
struct InFlight {
    table: String,
    /// A `delete` came after the fetch was sent: its reply must not insert the row.
    cancelled: bool,
}

/// Adds the columns of `defaults` (sorted by name) that `row` lacks. Merges two sorted lists
/// into the row's one vector: much cheaper than inserting a dozen columns one by one into each
/// of a hundred thousand rows of an initial dump.
fn fill_defaults(row: &mut Row, defaults: &[(Str, Value)]) {
    if defaults.is_empty() {
        return;
    }
    let given = std::mem::take(row);
    let mut merged = Vec::with_capacity(given.len() + defaults.len());
    let mut defaults = defaults.iter().peekable();
    for (column, value) in given {
        while let Some((d, v)) = defaults.next_if(|(d, _)| d.as_str() < column.as_str()) {
            merged.push((d.clone(), v.clone()));
        }
        defaults.next_if(|(d, _)| *d == column);
        merged.push((column, value));
    }
    merged.extend(defaults.map(|(d, v)| (d.clone(), v.clone())));
    *row = merged.into_iter().collect();
}

/// The value OVSDB gives a column nobody set (RFC 7047 §5.1 defaults).
fn default_value(ty: &ColumnType) -> Value {
    if ty.is_map() {
        return Value::empty_map();
    }
    if ty.min == 0 {
        return Value::empty_set();
    }
    Value::Atom(match ty.key.atomic {
        AtomicType::Integer => Atom::Integer(0),
        AtomicType::Real => Atom::Real(0.0),
        AtomicType::Boolean => Atom::Boolean(false),
        AtomicType::String => Atom::String(Str::default()),
        AtomicType::Uuid => Atom::Uuid(Uuid(uuid::Uuid::nil())),
    })
}

/// One row's change, owned (decoded for this replica) or borrowed (decoded once and shared).
enum Change<'u> {
    Insert(Cow<'u, Row>),
    Modify(Cow<'u, RowDiff>),
    Delete,
}

impl From<RowChange> for Change<'_> {
    fn from(change: RowChange) -> Self {
        match change {
            RowChange::Insert(row) => Change::Insert(Cow::Owned(row)),
            RowChange::Modify(diff) => Change::Modify(Cow::Owned(diff)),
            RowChange::Delete => Change::Delete,
        }
    }
}

impl<'u> From<&'u RowChange> for Change<'u> {
    fn from(change: &'u RowChange) -> Self {
        match change {
            RowChange::Insert(row) => Change::Insert(Cow::Borrowed(row)),
            RowChange::Modify(diff) => Change::Modify(Cow::Borrowed(diff)),
            RowChange::Delete => Change::Delete,
        }
    }
}

fn emit_delete(
    emit: &impl Fn(RowEvent),
    sender: &Option<broadcast::Sender<RowEvent>>,
    table: &str,
    uuid: Uuid,
    old: Row,
    at: Instant,
) {
    if sender.is_some() {
        emit(RowEvent::Delete {
            table: table.to_owned(),
            uuid,
            old,
            at,
        });
    }
}

/// How a column's update2 diff is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnKind {
    Scalar,
    Set,
    Map,
}

fn column_kind(table: Option<&TableSchema>, column: &str, old: Option<&Value>, diff: &Value) -> ColumnKind {
    if let Some(col) = table.and_then(|t| t.columns.get(column)) {
        let ty = &col.column_type;
        // ovsdb-server diffs only composite columns (max > 1); an optional column (min 0,
        // max 1) carries its new value, exactly like a scalar.
        return if ty.max == Some(1) {
            ColumnKind::Scalar
        } else if ty.is_map() {
            ColumnKind::Map
        } else {
            ColumnKind::Set
        };
    }
    // No schema: go by shape. A bare atom is ambiguous (scalar, or one-element set), so it is
    // a set only if the old value already looked like one.
    match (diff, old) {
        (Value::Map(_), _) | (_, Some(Value::Map(_))) => ColumnKind::Map,
        (Value::Set(_), _) | (_, Some(Value::Set(_))) => ColumnKind::Set,
        _ => ColumnKind::Scalar,
    }
}

/// Applies a `modify` to a copy of `old`.
pub(crate) fn apply_diff(old: &Row, diff: RowDiff, table: Option<&TableSchema>) -> Row {
    let mut new = old.clone();
    match diff {
        RowDiff::New(cols) => new.extend(cols),
        RowDiff::Diff2(cols) => {
            for (column, d) in cols {
                let prev = new.get(&column);
                let value = match column_kind(table, &column, prev, &d) {
                    ColumnKind::Scalar => d,
                    ColumnKind::Set => toggle_set(prev, d),
                    ColumnKind::Map => apply_map_diff(prev, d),
                };
                new.set(column, value);
            }
        }
    }
    new
}

/// update2 set diff: each atom of `diff` is removed if present, added if not. The result is
/// sorted, and a single element is a bare atom, as ovsdb-server would send it.
fn toggle_set(old: Option<&Value>, diff: Value) -> Value {
    let mut atoms: Vec<Atom> = old.map(|v| v.atoms().to_vec()).unwrap_or_default();
    atoms.sort_by(atom_cmp);
    let toggled = match diff {
        Value::Atom(a) => vec![a],
        Value::Set(s) => s,
        Value::Map(_) => Vec::new(),
    };
    for a in toggled {
        match atoms.binary_search_by(|x| atom_cmp(x, &a)) {
            Ok(i) => {
                atoms.remove(i);
            }
            Err(i) => atoms.insert(i, a),
        }
    }
    if atoms.len() == 1 {
        Value::Atom(atoms.pop().expect("one atom"))
    } else {
        Value::Set(atoms)
    }
}

/// update2 map diff: a key with the same value is removed, with a different value replaced,
/// absent added. Pairs stay sorted by key.
fn apply_map_diff(old: Option<&Value>, diff: Value) -> Value {
    let mut pairs: Vec<(Atom, Atom)> = old.map(|v| v.pairs().to_vec()).unwrap_or_default();
    pairs.sort_by(|a, b| atom_cmp(&a.0, &b.0));
    let Value::Map(changes) = diff else {
        return Value::Map(pairs);
    };
    for (k, v) in changes {
        match pairs.binary_search_by(|(x, _)| atom_cmp(x, &k)) {
            Ok(i) if pairs[i].1 == v => {
                pairs.remove(i);
            }
            Ok(i) => pairs[i].1 = v,
            Err(i) => pairs.insert(i, (k, v)),
        }
    }
    Value::Map(pairs)
}

/// OVSDB's atom order (what ovsdb-server sorts sets and maps by).
pub(crate) fn atom_cmp(a: &Atom, b: &Atom) -> Ordering {
    match (a, b) {
        (Atom::Integer(x), Atom::Integer(y)) => x.cmp(y),
        (Atom::Real(x), Atom::Real(y)) => x.total_cmp(y),
        (Atom::Boolean(x), Atom::Boolean(y)) => x.cmp(y),
        (Atom::String(x), Atom::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Atom::Uuid(x), Atom::Uuid(y)) => x.cmp(y),
        (Atom::NamedUuid(x), Atom::NamedUuid(y)) => x.cmp(y),
        _ => atom_rank(a).cmp(&atom_rank(b)),
    }
}

fn atom_rank(a: &Atom) -> u8 {
    match a {
        Atom::Integer(_) => 0,
        Atom::Real(_) => 1,
        Atom::Boolean(_) => 2,
        Atom::String(_) => 3,
        Atom::Uuid(_) => 4,
        Atom::NamedUuid(_) => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> ReplicaShared {
        ReplicaShared::new("DB", Json::from("m"), MonitorRequest::new(), None, None)
    }

    fn u(n: u8) -> Uuid {
        Uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    fn updates(table: &str, changes: Vec<(Uuid, RowChange)>) -> TableUpdates {
        TableUpdates {
            tables: [(table.to_owned(), changes.into_iter().collect())].into(),
            last_txn_id: None,
        }
    }

    #[test]
    fn set_diff_toggles_elements() {
        let old = Value::set(["a", "c"]);
        assert_eq!(toggle_set(Some(&old), Value::set(["b", "c"])), Value::set(["a", "b"]));
        assert_eq!(toggle_set(Some(&old), Value::from("a")), Value::from("c"));
        assert_eq!(
            toggle_set(Some(&Value::from("c")), Value::from("c")),
            Value::empty_set()
        );
        assert_eq!(toggle_set(None, Value::from("x")), Value::from("x"));
    }

    #[test]
    fn map_diff_removes_replaces_and_adds() {
        let old = Value::string_map([("a", "1"), ("b", "2")]);
        let diff = Value::string_map([("a", "1"), ("b", "3"), ("c", "4")]);
        assert_eq!(
            apply_map_diff(Some(&old), diff),
            Value::string_map([("b", "3"), ("c", "4")])
        );
    }

    #[test]
    fn defaults_fill_only_missing_columns() {
        let defaults = vec![
            (Str::from("a"), Value::empty_set()),
            (Str::from("c"), Value::empty_map()),
            (Str::from("e"), Value::from(0)),
        ];
        let mut row = Row::new()
            .with("b", 1)
            .with("c", Value::string_map([("k", "v")]))
            .with("f", 2);
        fill_defaults(&mut row, &defaults);
        let expected = Row::new()
            .with("a", Value::empty_set())
            .with("b", 1)
            .with("c", Value::string_map([("k", "v")]))
            .with("e", 0)
            .with("f", 2);
        assert_eq!(row, expected);
    }

    #[test]
    fn scalar_diff_replaces_without_schema() {
        let old = Row::new().with("name", "a").with("tags", Value::set(["x", "y"]));
        let new = apply_diff(
            &old,
            RowDiff::Diff2(Row::new().with("name", "b").with("tags", Value::from("x"))),
            None,
        );
        assert_eq!(new.get("name"), Some(&Value::from("b")));
        assert_eq!(new.get("tags"), Some(&Value::from("y")));
    }

    #[tokio::test]
    async fn apply_emits_insert_modify_delete_with_old_and_new() {
        let r = shared();
        let mut sub = r.subscribe(SUBSCRIPTION_CAPACITY);
        let at = Instant::now();
        r.apply(
            updates("T", vec![(u(1), RowChange::Insert(Row::new().with("n", 1)))]),
            at,
        );
        r.apply(
            updates(
                "T",
                vec![(u(1), RowChange::Modify(RowDiff::Diff2(Row::new().with("n", 2))))],
            ),
            at,
        );
        r.apply(updates("T", vec![(u(1), RowChange::Delete)]), at);
        match sub.recv().await.unwrap() {
            RowEvent::Insert { new, uuid, .. } => {
                assert_eq!(uuid, u(1));
                assert_eq!(new.get("n"), Some(&Value::from(1)));
                assert_eq!(new.uuid(), Some(u(1)));
            }
            e => panic!("{e:?}"),
        }
        match sub.recv().await.unwrap() {
            RowEvent::Modify { old, new, .. } => {
                assert_eq!(old.get("n"), Some(&Value::from(1)));
                assert_eq!(new.get("n"), Some(&Value::from(2)));
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(sub.recv().await.unwrap(), RowEvent::Delete { .. }));
        assert!(r.read(|t| t["T"].is_empty()));
    }

    #[tokio::test]
    async fn replace_emits_only_the_difference_then_resynced() {
        let r = shared();
        let at = Instant::now();
        r.apply(
            updates(
                "T",
                vec![
                    (u(1), RowChange::Insert(Row::new().with("n", 1))),
                    (u(2), RowChange::Insert(Row::new().with("n", 2))),
                    (u(3), RowChange::Insert(Row::new().with("n", 3))),
                ],
            ),
            at,
        );
        let mut sub = r.subscribe(SUBSCRIPTION_CAPACITY);
        r.replace(
            updates(
                "T",
                vec![
                    (u(1), RowChange::Insert(Row::new().with("n", 1))),
                    (u(2), RowChange::Insert(Row::new().with("n", 20))),
                    (u(4), RowChange::Insert(Row::new().with("n", 4))),
                ],
            ),
            at,
        );
        let mut kinds = Vec::new();
        loop {
            match sub.recv().await.unwrap() {
                RowEvent::Resynced { .. } => break,
                RowEvent::Insert { uuid, .. } => kinds.push(("insert", uuid)),
                RowEvent::Modify { uuid, .. } => kinds.push(("modify", uuid)),
                RowEvent::Delete { uuid, .. } => kinds.push(("delete", uuid)),
            }
        }
        kinds.sort();
        assert_eq!(kinds, vec![("delete", u(3)), ("insert", u(4)), ("modify", u(2))]);
        assert_eq!(r.read(|t| t["T"].len()), 3);
    }

    #[tokio::test]
    async fn filtered_replica_drops_rows_that_stop_matching() {
        let keep: SharedFilter = Arc::new(|_: &str, row: &Row| row.get("mine").and_then(Value::as_bool) == Some(true));
        let r = ReplicaShared::new("DB", Json::from("m"), MonitorRequest::new(), Some(keep), None);
        let at = Instant::now();
        r.apply(
            updates(
                "T",
                vec![
                    (u(1), RowChange::Insert(Row::new().with("mine", true))),
                    (u(2), RowChange::Insert(Row::new().with("mine", false))),
                ],
            ),
            at,
        );
        assert_eq!(r.read(|t| t["T"].len()), 1);
        r.apply(
            updates(
                "T",
                vec![
                    (u(1), RowChange::Modify(RowDiff::New(Row::new().with("mine", false)))),
                    (u(2), RowChange::Modify(RowDiff::New(Row::new().with("mine", true)))),
                ],
            ),
            at,
        );
        assert_eq!(r.read(|t| t["T"].keys().copied().collect::<Vec<_>>()), vec![u(2)]);
    }

    /// Keeps rows whose `owner` is "me"; a diff touching `owner` may make a row interesting.
    struct Owner;

    impl crate::filter::RowFilter for Owner {
        fn keeps_table(&self, table: &str) -> bool {
            table != "Ignored"
        }
        fn keeps(&self, _table: &str, row: &Row) -> bool {
            row.get("owner").and_then(Value::as_str) == Some("me")
        }
        fn may_keep_after(&self, _table: &str, _uuid: Uuid, diff: &Row) -> bool {
            diff.get("owner").is_some()
        }
    }

    fn owned() -> ReplicaShared {
        ReplicaShared::new(
            "DB",
            Json::from("m"),
            MonitorRequest::new(),
            Some(Arc::new(Owner)),
            None,
        )
    }

    fn modify(table: &str, uuid: Uuid, diff: Row) -> TableUpdates {
        updates(table, vec![(uuid, RowChange::Modify(RowDiff::Diff2(diff)))])
    }

    #[tokio::test]
    async fn unheld_row_becomes_interesting_through_a_fetch() {
        let r = owned();
        let mut sub = r.subscribe(SUBSCRIPTION_CAPACITY);
        let at = Instant::now();
        assert!(r
            .apply(
                updates("T", vec![(u(1), RowChange::Insert(Row::new().with("owner", "you")))]),
                at
            )
            .is_empty());
        let to_fetch = r.apply(modify("T", u(1), Row::new().with("owner", "me")), at);
        assert_eq!(to_fetch, vec![("T".to_owned(), u(1))]);
        // In flight: later diffs are already reflected by the select, and ask for nothing more.
        assert!(r
            .apply(modify("T", u(1), Row::new().with("owner", "me")), at)
            .is_empty());
        assert_eq!(r.in_flight(), to_fetch);
        let fetched = Row::new()
            .with("_uuid", Value::uuid(u(1)))
            .with("owner", "me")
            .with("n", 7);
        assert_eq!(
            r.apply_fetched(vec![("T".into(), vec![fetched])], Some(&to_fetch), at),
            1
        );
        assert!(r.in_flight().is_empty());
        assert_eq!(r.read(|t| t["T"][&u(1)].get("n").cloned()), Some(Value::from(7)));
        match sub.recv().await.unwrap() {
            RowEvent::Insert { uuid, new, .. } => {
                assert_eq!(uuid, u(1));
                assert_eq!(new.uuid(), Some(u(1)));
            }
            e => panic!("{e:?}"),
        }
        // Held now: diffs apply, and a row that stops being kept is dropped with an event.
        assert!(r
            .apply(modify("T", u(1), Row::new().with("owner", "you")), at)
            .is_empty());
        assert!(matches!(sub.recv().await.unwrap(), RowEvent::Delete { uuid, .. } if uuid == u(1)));
        assert_eq!(r.read(|t| t["T"].len()), 0);
    }

    #[test]
    fn a_delete_cancels_the_fetch_and_an_insert_revives_it() {
        let r = owned();
        let at = Instant::now();
        let to_fetch = r.apply(modify("T", u(2), Row::new().with("owner", "me")), at);
        r.apply(updates("T", vec![(u(2), RowChange::Delete)]), at);
        let row = Row::new().with("_uuid", Value::uuid(u(2))).with("owner", "me");
        assert_eq!(
            r.apply_fetched(vec![("T".into(), vec![row.clone()])], Some(&to_fetch), at),
            0
        );
        assert_eq!(r.read(|t| t["T"].len()), 0);

        let to_fetch = r.apply(modify("T", u(3), Row::new().with("owner", "me")), at);
        r.apply(updates("T", vec![(u(3), RowChange::Delete)]), at);
        r.apply(
            updates("T", vec![(u(3), RowChange::Insert(Row::new().with("owner", "you")))]),
            at,
        );
        let row = Row::new().with("_uuid", Value::uuid(u(3))).with("owner", "me");
        assert_eq!(r.apply_fetched(vec![("T".into(), vec![row])], Some(&to_fetch), at), 1);
    }

    #[test]
    fn ignored_tables_and_explicit_fetches() {
        let r = owned();
        let at = Instant::now();
        let mine = Row::new().with("owner", "me");
        r.apply(updates("Ignored", vec![(u(1), RowChange::Insert(mine.clone()))]), at);
        assert!(r.read(|t| t.get("Ignored").is_none()));
        let rows = vec![
            mine.clone().with("_uuid", Value::uuid(u(4))),
            Row::new().with("owner", "you").with("_uuid", Value::uuid(u(5))),
        ];
        assert_eq!(r.apply_fetched(vec![("T".into(), rows.clone())], None, at), 1);
        // Fetching again finds the held row, and still not the other one.
        assert_eq!(r.apply_fetched(vec![("T".into(), rows)], None, at), 1);
        assert_eq!(r.read(|t| t["T"].keys().copied().collect::<Vec<_>>()), vec![u(4)]);
    }
}
