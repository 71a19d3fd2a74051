//! The connection to an OVSDB server and every RPC on it.
//!
//! A [`Client`] is cheap to clone; all clones share one connection task. The task owns the
//! socket, answers the server's `echo`, sends its own inactivity probe, reconnects with
//! backoff over all remotes, checks leadership through `_Server` when asked, and resumes
//! monitors with `monitor_cond_since`.
//!
//! Outcome rules, the ones callers build on:
//! - A request made while disconnected waits for the next connection (at most
//!   [`ClientOptions::connect_timeout`]), then is sent; it is never sent twice.
//! - A `transact` whose reply was lost with the connection fails with
//!   [`Error::OutcomeUnknown`] and is not re-sent: only the caller can tell whether re-applying
//!   it is safe.
//! - After a reconnect, monitors resume before any queued request goes out, so a transaction
//!   sent after a reconnect is always seen by the replicas after the resumed state.
//!
//! Must not know: any schema's table names other than `_Server`'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::{broadcast, watch};

use crate::condition::Condition;
use crate::connection::{self, Batch, Completion, Connection, NotSent, Reply, ReplyAction, ServerWatch};
use crate::datum::Row;
use crate::encode::RequestParams;
use crate::error::{Error, OperationError, Result};
use crate::filter::SharedFilter;
use crate::lock::{Lock, LockState};
use crate::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
use crate::remote::Remote;
use crate::replica::{Replica, ReplicaShared};
use crate::schema::DatabaseSchema;
use crate::tls::TlsConfig;
use crate::txn::{Operation, OperationResult, Transaction, TransactionResult};
use crate::update_cache::UpdateCache;

/// How a [`Client`] connects and stays connected.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub remotes: Vec<Remote>,
    /// The database whose `_Server` row decides whether a server is usable (leader, connected).
    pub database: Option<String>,
    /// Refuse RAFT followers; try the next remote. Needs `database`.
    pub leader_only: bool,
    /// Send `echo` after this long without traffic; drop the connection if another
    /// interval passes with no answer (up to 60 s while replies are still owed: a server
    /// busy with a big request answers `echo` only afterwards). `None` disables the probe.
    pub inactivity_probe: Option<Duration>,
    /// Reconnect after a drop (monitors resume, in-flight transactions fail with `OutcomeUnknown`).
    pub reconnect: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long [`Client::connect`] keeps trying before giving up with the last error, and how
    /// long a request made while disconnected waits for the next connection.
    pub connect_timeout: Duration,
    /// Check operations against the schema before sending them.
    pub check_schema: bool,
    /// Certificates for `ssl:` remotes (required when there is one).
    pub tls: Option<TlsConfig>,
    /// The largest message accepted from a server; a bigger one (or endless junk) drops the
    /// connection with a protocol error instead of growing the read buffer without bound.
    pub max_message_bytes: usize,
    /// Decode notifications for filtered monitors once for every client sharing this cache
    /// (see [`UpdateCache`]).
    pub update_cache: Option<Arc<UpdateCache>>,
}

impl ClientOptions {
    /// Parses a remote list such as `unix:/run/ovn/ovnnb_db.sock` or
    /// `tcp:127.0.0.1:6641,tcp:127.0.0.1:6643`.
    pub fn new(remotes: &str) -> Result<Self> {
        Ok(ClientOptions {
            remotes: Remote::parse_list(remotes)?,
            database: None,
            leader_only: false,
            inactivity_probe: Some(Duration::from_secs(5)),
            reconnect: true,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(4),
            connect_timeout: Duration::from_secs(10),
            check_schema: true,
            tls: None,
            max_message_bytes: crate::jsonrpc::MAX_FRAME_BYTES,
            update_cache: None,
        })
    }
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = Some(name.into());
        self
    }
    pub fn leader_only(mut self, on: bool) -> Self {
        self.leader_only = on;
        self
    }
    pub fn inactivity_probe(mut self, interval: Option<Duration>) -> Self {
        self.inactivity_probe = interval;
        self
    }
    pub fn reconnect(mut self, on: bool) -> Self {
        self.reconnect = on;
        self
    }
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    pub fn check_schema(mut self, on: bool) -> Self {
        self.check_schema = on;
        self
    }
    /// The private key, certificate and CA certificate used for `ssl:` remotes.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// The largest message accepted from a server (default [`crate::jsonrpc::MAX_FRAME_BYTES`];
    /// at least 4 KiB).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(4096);
        self
    }
    /// Shares decoded notifications with the other clients given the same cache.
    pub fn update_cache(mut self, cache: Arc<UpdateCache>) -> Self {
        self.update_cache = Some(cache);
        self
    }
    /// Whether any remote is `ssl:` (then [`ClientOptions::tls`] is required).
    pub fn needs_tls(&self) -> bool {
        self.remotes.iter().any(|r| matches!(r, Remote::Ssl { .. }))
    }
    /// Delay between reconnect rounds: starts at `min`, doubles up to `max`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }
    fn remotes_display(&self) -> String {
        self.remotes.iter().map(Remote::to_string).collect::<Vec<_>>().join(",")
    }
}

/// State changes of the connection, for callers that want to know (see [`Client::connection_events`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionEvent {
    Connected { remote: String },
    Disconnected { remote: String, reason: String },
}

/// What requests see of the connection.
#[derive(Clone)]
enum ConnState {
    /// Between connections (or before the first): requests wait.
    Connecting,
    Connected(Arc<Connection>),
    /// For good (closed by the caller, or dropped with reconnect off): requests fail.
    Closed {
        reason: String,
    },
}

/// State shared by every clone of a [`Client`], its replicas and its connection task.
pub(crate) struct Shared {
    options: ClientOptions,
    state: watch::Sender<ConnState>,
    events: broadcast::Sender<ConnectionEvent>,
    /// Monitors to resume after a reconnect and to route updates to, by monitor id.
    /// Weak: dropping the last [`Replica`] clone ends its monitor (cancelled on the next update
    /// for it, and not resumed after a reconnect).
    monitors: Mutex<BTreeMap<String, Weak<ReplicaShared>>>,
    locks: Mutex<HashMap<String, LockEntry>>,
    schemas: Mutex<HashMap<String, Arc<DatabaseSchema>>>,
    monitor_method: Mutex<Option<MonitorMethod>>,
    next_monitor: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Why the last connection attempt failed (what `connect` reports on timeout).
    last_error: Mutex<Option<Error>>,
}

/// This client's request for one lock, shared by its [`Lock`] handles.
struct LockEntry {
    state: watch::Sender<LockState>,
    handles: usize,
}

impl Shared {
    pub(crate) fn update_cache(&self) -> Option<&Arc<UpdateCache>> {
        self.options.update_cache.as_ref()
    }
    pub(crate) fn monitor(&self, id: &str) -> Option<Arc<ReplicaShared>> {
        let mut monitors = lock(&self.monitors);
        let replica = monitors.get(id)?.upgrade();
        if replica.is_none() {
            monitors.remove(id);
        }
        replica
    }
    pub(crate) fn set_lock_owned(&self, id: &str, owned: bool) {
        if let Some(e) = lock(&self.locks).get(id) {
            e.state.send_modify(|s| s.owned = owned);
        }
    }
    pub(crate) fn lock_stolen(&self, id: &str) {
        if let Some(e) = lock(&self.locks).get(id) {
            e.state.send_modify(|s| {
                s.owned = false;
                s.stolen += 1;
            });
        }
    }
    /// Drops the cached schemas, so the next check fetches them again (after a conversion).
    pub(crate) fn forget_schemas(&self) {
        lock(&self.schemas).clear();
    }
    fn remotes_display(&self) -> String {
        self.options.remotes_display()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the connection task when the last [`Client`] clone (replicas and locks included) goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// A connection to one OVSDB server (of a list), shared by all clones.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("remotes", &self.shared().remotes_display())
            .field("current", &self.current_remote().map(|r| r.to_string()))
            .finish()
    }
}

impl Client {
    /// Connects to the first usable remote.
    ///
    /// Keeps trying (all remotes, with backoff) for [`ClientOptions::connect_timeout`], then
    /// fails with the last error (e.g. [`Error::Connect`] or [`Error::NotUsable`]).
    pub async fn connect(options: ClientOptions) -> Result<Client> {
        if options.remotes.is_empty() {
            return Err(Error::InvalidRemote {
                remote: String::new(),
                reason: "empty remote list".into(),
            });
        }
        if options.needs_tls() && options.tls.is_none() {
            return Err(Error::TlsConfig {
                reason: format!(
                    "{} has ssl: remotes, but no private key, certificate and CA certificate were given",
                    options.remotes_display()
                ),
            });
        }
        if options.leader_only && options.database.is_none() {
            return Err(Error::InvalidRemote {
                remote: options.remotes_display(),
                reason: "leader_only needs ClientOptions::database (the database whose leader to find)".into(),
            });
        }
        let timeout = options.connect_timeout;
        let shared = Arc::new(Shared {
            options,
            state: watch::channel(ConnState::Connecting).0,
            events: broadcast::channel(64).0,
            monitors: Mutex::new(BTreeMap::new()),
            locks: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
            monitor_method: Mutex::new(None),
            next_monitor: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
            last_error: Mutex::new(None),
        });
        let client = Client {
            handle: Arc::new(Handle { shared: shared.clone() }),
        };
        let mut state = shared.state.subscribe();
        tokio::spawn(supervise(shared.clone()));
        let outcome = tokio::time::timeout(
            timeout,
            state.wait_for(|s| matches!(s, ConnState::Connected(_) | ConnState::Closed { .. })),
        )
        .await;
        if let Ok(Ok(s)) = &outcome {
            if matches!(**s, ConnState::Connected(_)) {
                return Ok(client);
            }
        }
        drop(outcome);
        let err = lock(&shared.last_error).take().unwrap_or_else(|| Error::Timeout {
            what: format!("a connection to {}", shared.remotes_display()),
            after: timeout,
        });
        drop(client); // stops the connection task
        Err(err)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    pub(crate) fn remotes_display(&self) -> String {
        self.shared().remotes_display()
    }

    /// The options this client was created with.
    pub fn options(&self) -> &ClientOptions {
        &self.shared().options
    }

    /// The remote currently connected to.
    pub fn current_remote(&self) -> Option<Remote> {
        match &*self.shared().state.borrow() {
            ConnState::Connected(c) if !c.is_closed() => Some(c.remote.clone()),
            _ => None,
        }
    }
    /// Subscribe to connect/disconnect events.
    pub fn connection_events(&self) -> tokio::sync::broadcast::Receiver<ConnectionEvent> {
        self.shared().events.subscribe()
    }
    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        let r = self.call_idempotent("list_dbs", &json!([])).await?;
        serde_json::from_str(r.get()).map_err(|e| Error::Decode(format!("list_dbs reply: {e}")))
    }
    /// The schema of `database` (fetched once, then cached).
    pub async fn get_schema(&self, database: &str) -> Result<DatabaseSchema> {
        Ok((*self.schema(database).await?).clone())
    }
    pub(crate) async fn schema(&self, database: &str) -> Result<Arc<DatabaseSchema>> {
        if let Some(s) = lock(&self.shared().schemas).get(database) {
            return Ok(s.clone());
        }
        let reply = self.call_idempotent("get_schema", &json!([database])).await?;
        let schema = shared_schema(&reply)?;
        lock(&self.shared().schemas).insert(database.to_owned(), schema.clone());
        Ok(schema)
    }
    pub async fn echo(&self) -> Result<()> {
        let r = parse_json("echo", &self.call_idempotent("echo", &json!(["ovsdb-rs"])).await?)?;
        if r != json!(["ovsdb-rs"]) {
            return Err(Error::Decode(format!("echo returned {r}")));
        }
        Ok(())
    }
    /// Sends one transaction. `Err(Error::Transaction{..})` when an operation failed (with the
    /// server's error and details); `Err(Error::OutcomeUnknown{..})` when the connection dropped
    /// before the reply. Never re-sent.
    pub async fn transact(&self, txn: Transaction) -> Result<TransactionResult> {
        if self.shared().options.check_schema {
            let schema = self.schema(txn.database()).await?;
            for op in txn.operations() {
                schema.check_operation(op)?;
            }
        }
        let result = self
            .request(
                "transact",
                &txn,
                ReplyAction::Transact {
                    database: txn.database().into(),
                    typed: true,
                },
            )
            .await?;
        transaction_result(txn, result)
    }
    /// Sends many transactions at once; their outcomes come back in the same order, each what
    /// [`Client::transact`] would have returned for it. They are encoded under one lock,
    /// written with one system call, and complete together (one wake-up of the caller, when the
    /// last reply is in), so a caller keeping a few batches in flight pipelines at a fraction
    /// of the CPU cost of one `transact` per task. Each is still its own `transact` RPC: one
    /// failing leaves the others alone; one failing the schema check is not sent. If the
    /// connection drops, those not yet answered fail with [`Error::OutcomeUnknown`]; none is
    /// ever re-sent.
    ///
    /// ```no_run
    /// # async fn demo(client: ovsdb::Client) {
    /// use ovsdb::{Row, Transaction};
    /// let txns: Vec<Transaction> = (0..32)
    ///     .map(|i| {
    ///         let mut txn = Transaction::new("OVN_Northbound");
    ///         txn.insert("Logical_Switch", Row::new().with("name", format!("sw{i}")));
    ///         txn
    ///     })
    ///     .collect();
    /// for (i, outcome) in client.transact_many(txns).await.into_iter().enumerate() {
    ///     if let Err(e) = outcome {
    ///         eprintln!("transaction {i}: {e}");
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn transact_many(&self, txns: Vec<Transaction>) -> Vec<Result<TransactionResult>> {
        // Those the schema check refuses are answered here and never sent. Nothing is
        // allocated for this in the common case, all passing: a batch's own vectors are all
        // its overhead.
        let mut refused: Vec<(usize, Error)> = Vec::new();
        if self.shared().options.check_schema {
            let mut schema: Option<Arc<DatabaseSchema>> = None;
            for (i, txn) in txns.iter().enumerate() {
                let checked = match &schema {
                    Some(s) if s.name == txn.database() => Ok(s.clone()),
                    _ => self.schema(txn.database()).await,
                };
                let verdict = checked.and_then(|s| {
                    let verdict = txn.operations().iter().try_for_each(|op| s.check_operation(op));
                    schema = Some(s);
                    verdict
                });
                if let Err(e) = verdict {
                    refused.push((i, e));
                }
            }
        }
        let no_reply = || Err(Error::Decode("transact_many: no reply for a transaction".into()));
        let outcome = |reply: Option<Result<Reply>>, txn: Transaction| match reply {
            Some(reply) => reply.and_then(|r| transaction_result(txn, r)),
            None => no_reply(),
        };
        if refused.is_empty() {
            let replies = self.request_many(&txns).await;
            return replies.into_iter().zip(txns).map(|(r, txn)| outcome(r, txn)).collect();
        }
        let (mut to_send, mut outcomes): (Vec<Transaction>, Vec<Option<Result<TransactionResult>>>) =
            (Vec::new(), Vec::with_capacity(txns.len()));
        let mut refused = refused.into_iter().peekable();
        for (i, txn) in txns.into_iter().enumerate() {
            match refused.next_if(|(at, _)| *at == i) {
                Some((_, e)) => outcomes.push(Some(Err(e))),
                None => {
                    to_send.push(txn);
                    outcomes.push(None);
                }
            }
        }
        let mut replies = self.request_many(&to_send).await.into_iter().zip(to_send);
        outcomes
            .into_iter()
            .map(|o| match o {
                Some(refused) => refused,
                None => match replies.next() {
                    Some((r, txn)) => outcome(r, txn),
                    None => no_reply(),
                },
            })
            .collect()
    }
    /// Any JSON-RPC method, for what has no typed wrapper. Never re-sent; a `transact` sent
    /// this way fails with [`Error::OutcomeUnknown`] like [`Client::transact`].
    pub async fn call(&self, method: &str, params: Json) -> Result<Json> {
        let action = match (method, params.get(0).and_then(Json::as_str)) {
            ("transact", Some(db)) => ReplyAction::Transact {
                database: db.into(),
                typed: false,
            },
            _ => ReplyAction::Plain,
        };
        parse_json(method, &self.request(method, &params, action).await?)
    }

    /// Whether a request lost with its connection may be sent again: the client reconnects,
    /// is not closed, and the deadline has not passed.
    fn may_retry(&self, deadline: tokio::time::Instant) -> bool {
        let shared = self.shared();
        shared.options.reconnect && tokio::time::Instant::now() < deadline && !is_shutdown(&shared.shutdown.subscribe())
    }

    /// A request that changes nothing on the server: if the connection drops before the
    /// reply, it is sent again on the next connection (within the connect timeout).
    async fn call_idempotent(&self, method: &str, params: &Json) -> Result<Reply> {
        let deadline = tokio::time::Instant::now() + self.shared().options.connect_timeout;
        loop {
            match self.request(method, params, ReplyAction::Plain).await {
                Err(Error::Disconnected { .. }) if self.may_retry(deadline) => {}
                r => return r,
            }
        }
    }

    /// Sends on the current connection, waiting for one if there is none. A request is sent at
    /// most once: if the connection closes before it goes out, it waits for the next one.
    async fn request<P: RequestParams + ?Sized>(&self, method: &str, params: &P, action: ReplyAction) -> Result<Reply> {
        let shared = self.shared();
        let wait = shared.options.connect_timeout;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let conn = self.wait_connected(deadline, wait).await?;
            match conn.send(method, params, action.clone()) {
                Ok(rx) => {
                    return rx.await.unwrap_or_else(|_| {
                        Err(Error::Disconnected {
                            remote: conn.remote.to_string(),
                        })
                    })
                }
                Err(NotSent) => continue,
            }
        }
    }

    /// [`Client::request`] for `transact`s of `txns` sent together: all go on one connection,
    /// or, if it closes before they are written, all wait for the next one. One slot per
    /// transaction, in order.
    async fn request_many(&self, txns: &[Transaction]) -> Vec<Option<Result<Reply>>> {
        if txns.is_empty() {
            return Vec::new();
        }
        let wait = self.shared().options.connect_timeout;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let conn = match self.wait_connected(deadline, wait).await {
                Ok(c) => c,
                Err(e) => return txns.iter().map(|_| Some(Err(copy_error(&e)))).collect(),
            };
            let batch = Batch::new(txns.len());
            let mut database: Option<Arc<str>> = None;
            let requests = txns.iter().enumerate().map(|(index, txn)| {
                let db = match &database {
                    Some(d) if **d == *txn.database() => d.clone(),
                    _ => database.insert(txn.database().into()).clone(),
                };
                let batch = batch.clone();
                (
                    txn,
                    ReplyAction::Transact {
                        database: db,
                        typed: true,
                    },
                    Completion::Batch { batch, index },
                )
            });
            match conn.send_all("transact", requests) {
                Ok(()) => return batch.wait().await,
                Err(NotSent) => continue,
            }
        }
    }

    async fn wait_connected(&self, deadline: tokio::time::Instant, wait: Duration) -> Result<Arc<Connection>> {
        // The common case, connected: no subscription, no timer.
        if let ConnState::Connected(c) = &*self.shared().state.borrow() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let mut state = self.shared().state.subscribe();
        let ready = |s: &ConnState| match s {
            ConnState::Connected(c) => !c.is_closed(),
            ConnState::Closed { .. } => true,
            ConnState::Connecting => false,
        };
        let s = match tokio::time::timeout_at(deadline, state.wait_for(ready)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("a connection to {} (the request was not sent)", self.remotes_display()),
                    after: wait,
                })
            }
            Ok(Err(_)) => ConnState::Closed {
                reason: "client dropped".into(),
            },
            Ok(Ok(s)) => s.clone(),
        };
        match s {
            ConnState::Connected(c) => Ok(c),
            ConnState::Closed { reason } => {
                tracing::debug!(%reason, "request on a closed client");
                Err(Error::Disconnected {
                    remote: self.remotes_display(),
                })
            }
            ConnState::Connecting => Err(Error::Disconnected {
                remote: self.remotes_display(),
            }),
        }
    }

    /// Starts a monitor and returns its replica once the initial contents are in.
    /// Uses `monitor_cond_since`, falling back to `monitor_cond`, then `monitor`.
    pub async fn monitor(&self, database: &str, request: MonitorRequest) -> Result<Replica> {
        self.start_monitor(database, request, None).await
    }
    /// Like [`Client::monitor`] (same methods, conditions, resume), but the replica holds only
    /// the rows `filter` keeps: for emulated chassis that must not hold the whole SB. Every
    /// update is still received; tables the filter never keeps are not decoded into rows.
    ///
    /// An update2 `modify` of a row the replica does not hold carries only the changed
    /// columns: when [`RowFilter::may_keep_after`](crate::RowFilter::may_keep_after) says the
    /// change may make the row interesting, the connection fetches the whole row (a `select`
    /// ordered with the update stream) and offers it to `keeps`. See [`crate::filter`].
    pub async fn monitor_filtered(
        &self,
        database: &str,
        request: MonitorRequest,
        filter: SharedFilter,
    ) -> Result<Replica> {
        self.start_monitor(database, request, Some(filter)).await
    }

    async fn start_monitor(
        &self,
        database: &str,
        request: MonitorRequest,
        filter: Option<SharedFilter>,
    ) -> Result<Replica> {
        let schema = self.schema(database).await?;
        for (table, m) in &request.tables {
            let ts = schema.table(table)?;
            for col in m.columns.iter().flatten() {
                if !ts.columns.contains_key(col) && col != "_uuid" && col != "_version" {
                    return Err(Error::Schema(format!(
                        "table {table} of {database} has no column {col:?}{}",
                        crate::schema::suggest(col, ts.columns.keys().map(String::as_str))
                    )));
                }
            }
        }
        // "Every column" means the schema's columns: left to the server it would add
        // `_version`, which differs between RAFT members and would make rows change on failover.
        let mut request = request;
        for (table, m) in request.tables.iter_mut() {
            if m.columns.is_none() {
                m.columns = Some(schema.table(table)?.columns.keys().cloned().collect());
            }
        }
        let id = format!("m{}", self.shared().next_monitor.fetch_add(1, Ordering::Relaxed));
        let methods: &[MonitorMethod] = if request.has_conditions() {
            &[MonitorMethod::CondSince, MonitorMethod::Cond]
        } else {
            &[MonitorMethod::CondSince, MonitorMethod::Cond, MonitorMethod::Plain]
        };
        let replica = Arc::new(ReplicaShared::new(database, json!(id), request, filter, Some(schema)));
        // Registered before the request goes out: updates may follow the reply immediately.
        lock(&self.shared().monitors).insert(id.clone(), Arc::downgrade(&replica));
        let outcome = self.start_monitor_with(&replica, methods).await;
        match outcome {
            Ok(method) => {
                *lock(&self.shared().monitor_method) = Some(method);
                Ok(Replica {
                    shared: replica,
                    client: self.clone(),
                })
            }
            Err(e) => {
                lock(&self.shared().monitors).remove(&id);
                Err(e)
            }
        }
    }

    async fn start_monitor_with(
        &self,
        replica: &Arc<ReplicaShared>,
        methods: &[MonitorMethod],
    ) -> Result<MonitorMethod> {
        let mut last = None;
        let deadline = tokio::time::Instant::now() + self.shared().options.connect_timeout;
        let mut methods = methods.iter().copied().peekable();
        while let Some(&method) = methods.peek() {
            let params = replica
                .request()
                .to_params(method, &replica.database, &replica.monitor_id, None);
            let action = ReplyAction::Monitor {
                replica: replica.clone(),
                method,
                resume: false,
            };
            match self.request(method.rpc_name(), &params, action).await {
                Ok(_) => return Ok(method),
                Err(e) if is_unknown_method(&e) => {
                    last = Some(e);
                    methods.next();
                }
                // Lost with the connection before the server answered: nothing was applied,
                // and the new connection has no such monitor, so asking again is safe.
                Err(Error::Disconnected { .. }) if self.may_retry(deadline) => {}
                Err(e) => return Err(e),
            }
        }
        let refused = last.unwrap_or_else(|| Error::Decode("no monitor method to try".into()));
        Err(match refused {
            // Plain `monitor` was left out on purpose: say why, or the refusal reads as a bug.
            Error::Rpc { method, error, .. } if replica.request().has_conditions() => Error::Rpc {
                method,
                error,
                details: Some(format!(
                    "the monitor on {} has conditions, which plain `monitor` cannot express, so it was \
                     not tried; drop the conditions, or monitor every row and keep some with monitor_filtered",
                    replica.database
                )),
            },
            other => other,
        })
    }

    /// One `monitor_cond_change` for every table in `changes` (as ovn-controller sends its
    /// whole condition update at once).
    pub(crate) async fn change_monitor_conditions(
        &self,
        replica: &Arc<ReplicaShared>,
        changes: Vec<(String, Vec<Condition>)>,
    ) -> Result<()> {
        let method = *lock(&replica.method);
        if method == Some(MonitorMethod::Plain) {
            return Err(Error::Rpc {
                method: "monitor_cond_change".into(),
                error: "not supported".into(),
                details: Some("this monitor uses plain `monitor`, which has no conditions".into()),
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        let previous = {
            let mut req = lock(&replica.request);
            if let Some((table, _)) = changes.iter().find(|(t, _)| !req.tables.contains_key(t)) {
                return Err(Error::Schema(format!(
                    "the monitor on {} does not include table {table}",
                    replica.database
                )));
            }
            // Recorded first: a resume after a drop must use the new conditions.
            changes
                .iter()
                .map(|(table, conditions)| {
                    let tm = req.tables.get_mut(table).expect("checked above");
                    (table.clone(), tm.conditions.replace(conditions.clone()))
                })
                .collect::<Vec<_>>()
        };
        let requests: serde_json::Map<String, Json> = changes
            .iter()
            .map(|(table, conditions)| {
                let cond = json!({"where": conditions.iter().map(Condition::to_json).collect::<Vec<_>>()});
                (table.clone(), json!([cond]))
            })
            .collect();
        let params = json!([replica.monitor_id, replica.monitor_id, requests]);
        let res = self.call("monitor_cond_change", params).await;
        if let Err(Error::Rpc { .. }) = &res {
            let mut req = lock(&replica.request);
            for (table, conditions) in previous {
                if let Some(tm) = req.tables.get_mut(&table) {
                    tm.conditions = conditions;
                }
            }
        }
        match res {
            // The server already resumed the monitor with the new conditions.
            Err(Error::Disconnected { .. }) if self.shared().options.reconnect => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// [`Replica::fetch`]: a `select` whose reply the reader applies to the replica, in order
    /// with the monitor's updates.
    pub(crate) async fn fetch_into_replica(
        &self,
        replica: &Arc<ReplicaShared>,
        table: &str,
        conditions: Vec<Condition>,
    ) -> Result<usize> {
        let Some(columns) = replica.fetch_columns(table) else {
            return Err(Error::Schema(format!(
                "the monitor on {} does not include table {table}",
                replica.database
            )));
        };
        let mut txn = Transaction::new(replica.database.as_str());
        txn.select(table, conditions, Some(columns));
        let action = ReplyAction::Fetch {
            replica: replica.clone(),
            tables: vec![table.to_owned()],
            requested: None,
        };
        let reply = self.request("transact", &txn, action).await?;
        reply
            .get()
            .parse()
            .map_err(|e| Error::Decode(format!("fetch reply {:?}: {e}", reply.get())))
    }

    pub(crate) async fn cancel_monitor(&self, replica: &Arc<ReplicaShared>) -> Result<()> {
        let id = replica.monitor_id.as_str().unwrap_or_default().to_owned();
        if lock(&self.shared().monitors).remove(&id).is_none() {
            return Ok(());
        }
        replica.set_active(false);
        match self.call("monitor_cancel", json!([replica.monitor_id])).await {
            Ok(_) | Err(Error::Disconnected { .. }) | Err(Error::Timeout { .. }) => Ok(()),
            // Already gone on the server (e.g. cancelled by a reconnect race).
            Err(Error::Rpc { error, .. }) if error == "unknown monitor" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Which method the server accepted for monitors on this connection, once known.
    pub fn monitor_method(&self) -> Option<MonitorMethod> {
        *lock(&self.shared().monitor_method)
    }
    /// Requests lock `id`; the returned handle reports `locked`/`stolen`. Asking again for a
    /// lock this client already holds or waits for returns another handle to the same request
    /// (the server allows one per session).
    pub async fn lock(&self, id: &str) -> Result<Lock> {
        self.request_lock("lock", id).await
    }
    /// Takes lock `id` from its current owner (first withdrawing this client's own pending
    /// request for it, which the server requires).
    pub async fn steal(&self, id: &str) -> Result<Lock> {
        self.request_lock("steal", id).await
    }

    async fn request_lock(&self, method: &str, id: &str) -> Result<Lock> {
        let (rx, existing) = {
            let mut locks = lock(&self.shared().locks);
            let existing = locks.contains_key(id);
            let entry = locks.entry(id.to_owned()).or_insert_with(|| LockEntry {
                state: watch::channel(LockState::default()).0,
                handles: 0,
            });
            entry.handles += 1;
            (entry.state.subscribe(), existing)
        };
        let handle = Lock::new(id.to_owned(), self.clone(), rx);
        if existing && method == "lock" {
            return Ok(handle);
        }
        if existing {
            self.call("unlock", json!([id])).await?;
        }
        self.request(method, &json!([id]), ReplyAction::Lock { id: id.to_owned() })
            .await?;
        Ok(handle)
    }

    /// Gives up lock `id` for every handle.
    pub(crate) async fn unlock(&self, id: &str) -> Result<()> {
        let Some(entry) = lock(&self.shared().locks).remove(id) else {
            return Ok(());
        };
        entry.state.send_modify(|s| {
            s.owned = false;
            s.released = true;
        });
        match self.call("unlock", json!([id])).await {
            // The lock died with the connection anyway.
            Ok(_) | Err(Error::Disconnected { .. }) | Err(Error::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One handle of lock `id` went away; the last one releases it.
    pub(crate) async fn drop_lock_handle(&self, id: &str) {
        let last = {
            let mut locks = lock(&self.shared().locks);
            match locks.get_mut(id) {
                Some(e) => {
                    e.handles = e.handles.saturating_sub(1);
                    e.handles == 0
                }
                None => false,
            }
        };
        if last {
            let _ = self.unlock(id).await;
        }
    }

    /// Closes the connection; in-flight requests fail with `Disconnected`.
    pub async fn close(&self) {
        let shared = self.shared();
        shared.shutdown.send_replace(true);
        let mut state = shared.state.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            state.wait_for(|s| matches!(s, ConnState::Closed { .. })),
        )
        .await;
    }
}

/// The error that failed a whole batch, once per member ([`Error`] is not `Clone`); only the
/// errors [`Client::wait_connected`] returns can occur.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Disconnected { remote } => Error::Disconnected { remote: remote.clone() },
        Error::Timeout { what, after } => Error::Timeout {
            what: what.clone(),
            after: *after,
        },
        other => Error::Decode(other.to_string()),
    }
}

/// Parsed schemas shared by every client of the process, keyed by the schema's JSON text as
/// the server sent it: a farm of a thousand clients of one database holds (and parses) its
/// schema once, not a thousand times. Entries go when the last client holding them does.
fn shared_schema(reply: &Reply) -> Result<Arc<DatabaseSchema>> {
    static SCHEMAS: Mutex<BTreeMap<String, Weak<DatabaseSchema>>> = Mutex::new(BTreeMap::new());
    let mut schemas = lock(&SCHEMAS);
    if let Some(schema) = schemas.get(reply.get()).and_then(Weak::upgrade) {
        return Ok(schema);
    }
    schemas.retain(|_, s| s.strong_count() > 0);
    let schema = Arc::new(DatabaseSchema::from_json(&parse_json("get_schema", reply)?)?);
    schemas.insert(reply.get().to_owned(), Arc::downgrade(&schema));
    Ok(schema)
}

fn is_unknown_method(e: &Error) -> bool {
    matches!(e, Error::Rpc { error, .. } if error == "unknown method")
}

fn parse_json(method: &str, reply: &Reply) -> Result<Json> {
    serde_json::from_str(reply.get()).map_err(|e| Error::Decode(format!("{method} reply: {e}")))
}

/// One element of a `transact` reply, decoded straight from the text.
#[derive(serde::Deserialize)]
struct OperationReply {
    #[serde(default)]
    uuid: Option<crate::datum::Atom>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    rows: Option<Vec<Row>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    details: Option<Json>,
}

/// Maps a `transact` reply to results, or to the first failed operation. ovsdb-server may add
/// one error after the last operation (e.g. a failed commit or a referential integrity check).
fn transaction_result(txn: Transaction, reply: Reply) -> Result<TransactionResult> {
    let ops = txn.operations().len();
    let mut results = match reply {
        Reply::Results(results) if results.len() == ops => results,
        Reply::Results(results) => {
            return Err(Error::Decode(format!(
                "transact reply has {} results for {} operations",
                results.len(),
                ops
            )))
        }
        Reply::Text(text) => match crate::txn::plain_results(&text, ops) {
            Some(results) => results,
            None => decode_results(&txn, &text)?,
        },
    };
    for (r, op) in results.iter_mut().zip(txn.into_operations()) {
        if let Operation::Insert { uuid_name, .. } = op {
            r.uuid_name = uuid_name;
        }
    }
    Ok(TransactionResult { results })
}

/// [`transaction_result`] for any reply: rows, errors, and whatever layout.
fn decode_results(txn: &Transaction, result: &str) -> Result<Vec<OperationResult>> {
    let replies: Vec<Option<OperationReply>> =
        serde_json::from_str(result).map_err(|e| Error::Decode(format!("transact reply: {e}")))?;
    let ops = txn.operations();
    for (i, r) in replies.iter().enumerate() {
        let Some(OperationReply {
            error: Some(error),
            details,
            ..
        }) = r
        else {
            continue;
        };
        let details = details.as_ref().map(|d| match d {
            Json::String(s) => Json::String(s.clone()),
            other => Json::String(other.to_string()),
        });
        let error = OperationError::from_json(&json!({"error": error, "details": details})).unwrap_or_else(|| {
            OperationError::Other {
                error: error.clone(),
                details: None,
            }
        });
        let op_summary = match ops.get(i) {
            Some(op) => op.summary(),
            None => "commit (checked after the last operation)".to_owned(),
        };
        return Err(Error::Transaction {
            database: txn.database().to_owned(),
            op_index: i,
            op_summary,
            error,
        });
    }
    if replies.len() < ops.len() {
        return Err(Error::Decode(format!(
            "transact reply has {} results for {} operations",
            replies.len(),
            ops.len()
        )));
    }
    let mut results = Vec::with_capacity(ops.len());
    for r in replies.into_iter().take(ops.len()) {
        let Some(r) = r else {
            results.push(OperationResult::default());
            continue;
        };
        let uuid = match r.uuid {
            Some(a) => Some(
                a.as_uuid()
                    .ok_or_else(|| Error::Decode(format!("insert result uuid {a:?} is not a UUID")))?,
            ),
            None => None,
        };
        results.push(OperationResult {
            uuid,
            count: r.count,
            rows: r.rows,
            uuid_name: None,
        });
    }
    Ok(results)
}

/// The connection task: connects, keeps the connection usable, reconnects.
async fn supervise(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let remotes = shared.options.remotes.clone();
    let mut backoff = shared.options.backoff_min;
    let mut start = 0usize;
    let mut ever_connected = false;
    let reason = 'outer: loop {
        if is_shutdown(&shutdown) {
            break "client closed".to_owned();
        }
        let mut connected = None;
        let mut tls_refused = 0;
        for k in 0..remotes.len() {
            let idx = (start + k) % remotes.len();
            let attempt = tokio::select! {
                r = establish(&shared, &remotes[idx]) => r,
                _ = shutdown_requested(&mut shutdown) => break 'outer "client closed".to_owned(),
            };
            match attempt {
                Ok(c) => {
                    connected = Some((idx, c));
                    break;
                }
                Err(e) => {
                    tracing::debug!(remote = %remotes[idx], error = %e, "connection attempt failed");
                    tls_refused += usize::from(matches!(e, Error::Tls { .. } | Error::TlsConfig { .. }));
                    *lock(&shared.last_error) = Some(e);
                }
            }
        }
        if connected.is_none() && !ever_connected && tls_refused == remotes.len() {
            // Certificates that every server refuses (or that refuse every server) will not
            // change by retrying: fail `connect` now, with the cause, rather than at its timeout.
            break "every remote refused the TLS handshake".to_owned();
        }
        let Some((idx, (conn, reader))) = connected else {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown_requested(&mut shutdown) => break "client closed".to_owned(),
            }
            backoff = (backoff * 2).min(shared.options.backoff_max);
            continue;
        };
        backoff = shared.options.backoff_min;
        ever_connected = true;
        let remote = conn.remote.to_string();
        tracing::info!(%remote, "connected to OVSDB server");
        shared.state.send_replace(ConnState::Connected(conn.clone()));
        let _ = shared
            .events
            .send(ConnectionEvent::Connected { remote: remote.clone() });
        let mut reader = reader;
        let reason = tokio::select! {
            r = &mut reader => r.unwrap_or_else(|e| format!("connection task failed: {e}")),
            _ = shutdown_requested(&mut shutdown) => {
                conn.close("client closed");
                let _ = reader.await;
                "client closed".to_owned()
            }
        };
        tracing::info!(%remote, %reason, "disconnected from OVSDB server");
        for e in lock(&shared.locks).values() {
            e.state.send_modify(|s| s.owned = false);
        }
        let closing = is_shutdown(&shutdown) || !shared.options.reconnect;
        shared.state.send_replace(if closing {
            ConnState::Closed { reason: reason.clone() }
        } else {
            ConnState::Connecting
        });
        let _ = shared.events.send(ConnectionEvent::Disconnected {
            remote,
            reason: reason.clone(),
        });
        if closing {
            break reason;
        }
        // A server that lost leadership is tried last; a dropped one first (to resume cheaply).
        start = if conn.unusable.load(Ordering::Acquire) {
            idx + 1
        } else {
            idx
        };
    };
    shared.state.send_replace(ConnState::Closed { reason });
}

async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn is_shutdown(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

/// Closes a half-set-up connection unless the setup completes.
struct CloseGuard(Option<Arc<Connection>>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.close("connection setup abandoned");
        }
    }
}

/// Opens a connection to `remote` and makes it ready for callers: `_Server` says it is usable,
/// monitors are resumed and locks re-requested.
async fn establish(
    shared: &Arc<Shared>,
    remote: &Remote,
) -> Result<(Arc<Connection>, tokio::task::JoinHandle<String>)> {
    let options = &shared.options;
    let open_timeout = options.connect_timeout.min(Duration::from_secs(5));
    let (read, write) = match tokio::time::timeout(open_timeout, connection::open(remote, options.tls.as_ref())).await {
        Ok(Ok(rw)) => rw,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(Error::Connect {
                remote: remote.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {open_timeout:?}"),
                ),
            })
        }
    };
    // A TLS 1.3 server refuses our certificate only after the handshake: kept to tell that
    // apart from any other drop during setup.
    let tls_session = match &read {
        connection::Socket::Tls(_) => Some(read.try_clone().map_err(|source| Error::Connect {
            remote: remote.to_string(),
            source,
        })?),
        _ => None,
    };
    let (conn, mut reader) = Connection::start(
        remote.clone(),
        read,
        write,
        shared.clone(),
        options.inactivity_probe,
        options.max_message_bytes,
    );
    let mut guard = CloseGuard(Some(conn.clone()));
    let setup = tokio::time::timeout(options.connect_timeout, async {
        // Ask to be told when a database is converted or removed (`monitor_canceled`) rather
        // than being disconnected; servers older than OVS 2.9 do not know the method.
        match conn
            .request("set_db_change_aware", &json!([true]), ReplyAction::Plain)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unknown_method(&e) => {}
            Err(e) => return Err(e),
        }
        if let Some(db) = &options.database {
            check_server(&conn, db, options.leader_only).await?;
        }
        resume_monitors(shared, &conn).await?;
        relock(shared, &conn).await
    })
    .await;
    match setup {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // The reader ends on what it could not read (junk, a message over the limit): that,
            // not the hang-up it caused, is what the caller needs to hear.
            if matches!(e, Error::Disconnected { .. }) {
                let reader_reason = tokio::time::timeout(Duration::from_millis(100), &mut reader)
                    .await
                    .ok()
                    .and_then(Result::ok);
                if let Some(reason) = reader_reason.filter(|r| r.starts_with("protocol error")) {
                    return Err(Error::NotUsable {
                        remote: remote.to_string(),
                        reason: format!("it does not speak OVSDB JSON-RPC: {reason}"),
                    });
                }
            }
            let refused = tls_session.as_ref().and_then(connection::Socket::tls_failure);
            return Err(match (refused, &options.tls) {
                (Some(failure), Some(tls)) => Error::Tls {
                    remote: remote.to_string(),
                    reason: tls.explain_tls(&failure),
                },
                // A TLS listener hangs up on a plain client without a word: say what it may be.
                _ if matches!((remote, &e), (Remote::Tcp { .. }, Error::Disconnected { .. })) => Error::NotUsable {
                    remote: remote.to_string(),
                    reason: "it closed the connection before answering anything (a pssl: listener does that to \
                             plain tcp: clients: use ssl: with certificates if it serves TLS)"
                        .into(),
                },
                _ => e,
            });
        }
        Err(_) => {
            return Err(Error::NotUsable {
                remote: remote.to_string(),
                reason: format!("setting up the session took longer than {:?}", options.connect_timeout),
            })
        }
    }
    guard.0 = None;
    Ok((conn, reader))
}

/// Monitors `_Server.Database` and refuses the server unless it is usable for `database`.
async fn check_server(conn: &Arc<Connection>, database: &str, leader_only: bool) -> Result<()> {
    let request = MonitorRequest::new().table(
        "Database",
        TableMonitor::all().columns(["name", "model", "connected", "leader"]),
    );
    let replica = Arc::new(ReplicaShared::new("_Server", json!("_Server"), request, None, None));
    conn.set_server_watch(Some(ServerWatch {
        replica: replica.clone(),
        database: database.to_owned(),
        leader_only,
    }));
    for method in [MonitorMethod::Cond, MonitorMethod::Plain] {
        let params = replica
            .request()
            .to_params(method, "_Server", &replica.monitor_id, None);
        let action = ReplyAction::Monitor {
            replica: replica.clone(),
            method,
            resume: false,
        };
        match conn.request(method.rpc_name(), &params, action).await {
            Ok(_) => break,
            Err(e) if is_unknown_method(&e) => continue,
            // A server too old to have _Server cannot be clustered.
            Err(Error::Rpc { error, .. }) if error == "unknown database" => {
                conn.set_server_watch(None);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    connection::server_usable(&replica, database, leader_only).map_err(|reason| Error::NotUsable {
        remote: conn.remote.to_string(),
        reason,
    })
}

/// Restarts every active monitor on a new connection, from its last transaction id when the
/// server supports `monitor_cond_since` (only the missed changes come back).
async fn resume_monitors(shared: &Arc<Shared>, conn: &Arc<Connection>) -> Result<()> {
    let replicas: Vec<Arc<ReplicaShared>> = {
        let mut monitors = lock(&shared.monitors);
        monitors.retain(|_, r| r.strong_count() > 0);
        monitors
            .values()
            .filter_map(Weak::upgrade)
            .filter(|r| r.is_active())
            .collect()
    };
    for replica in replicas {
        // Never again a method this monitor saw refused; plain `monitor` as the last resort
        // when it has no conditions (a failover may land on an older server).
        let conditional = replica.request().has_conditions();
        let methods: &[MonitorMethod] = match (*lock(&replica.method), conditional) {
            (Some(MonitorMethod::Plain), _) => &[MonitorMethod::Plain],
            (Some(MonitorMethod::Cond), true) => &[MonitorMethod::Cond],
            (Some(MonitorMethod::Cond), false) => &[MonitorMethod::Cond, MonitorMethod::Plain],
            (_, true) => &[MonitorMethod::CondSince, MonitorMethod::Cond],
            (_, false) => &[MonitorMethod::CondSince, MonitorMethod::Cond, MonitorMethod::Plain],
        };
        let mut done = false;
        for &method in methods {
            let last = *lock(&replica.last_txn_id);
            let params = replica
                .request()
                .to_params(method, &replica.database, &replica.monitor_id, last);
            let action = ReplyAction::Monitor {
                replica: replica.clone(),
                method,
                resume: true,
            };
            match conn.request(method.rpc_name(), &params, action).await {
                Ok(found) => {
                    tracing::debug!(monitor = %replica.monitor_id, ?method, found = found.get(), "monitor resumed");
                    done = true;
                    break;
                }
                Err(e) if is_unknown_method(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        if !done {
            return Err(Error::NotUsable {
                remote: conn.remote.to_string(),
                reason: format!("it accepts none of the monitor methods {methods:?}"),
            });
        }
    }
    Ok(())
}

/// Re-requests every lock this client holds or waits for (locks die with their session).
async fn relock(shared: &Arc<Shared>, conn: &Arc<Connection>) -> Result<()> {
    let ids: Vec<String> = lock(&shared.locks)
        .iter()
        .filter(|(_, e)| !e.state.borrow().released)
        .map(|(id, _)| id.clone())
        .collect();
    for id in ids {
        conn.request("lock", &json!([id]), ReplyAction::Lock { id: id.clone() })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Value;

    fn text_reply(text: &str) -> Reply {
        Reply::Text(text.into())
    }

    #[test]
    fn results_read_from_the_buffer_must_match_the_operations() {
        let mut txn = Transaction::new("DB");
        txn.insert("T", Row::new());
        txn.delete("T", vec![]);
        let two = vec![OperationResult::default(), OperationResult::default()];
        assert_eq!(
            transaction_result(txn.clone(), Reply::Results(two))
                .unwrap()
                .results
                .len(),
            2
        );
        let err = transaction_result(txn, Reply::Results(vec![OperationResult::default()])).unwrap_err();
        assert!(err.to_string().contains("1 results for 2 operations"), "{err}");
    }

    #[test]
    fn transaction_errors_name_the_operation_and_keep_details() {
        let mut txn = Transaction::new("DB");
        txn.insert("T", Row::new().with("a", 1));
        txn.delete("T", vec![]);
        let reply = json!([{"uuid": ["uuid", "11111111-1111-1111-1111-111111111111"]},
                           {"error": "constraint violation", "details": "bad"}]);
        match transaction_result(txn, text_reply(&reply.to_string())) {
            Err(Error::Transaction {
                op_index,
                op_summary,
                error,
                ..
            }) => {
                assert_eq!(op_index, 1);
                assert_eq!(op_summary, "delete from T");
                assert_eq!(error, OperationError::ConstraintViolation(Some("bad".into())));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn an_error_after_the_last_operation_is_the_commit() {
        let mut txn = Transaction::new("DB");
        let named = txn.insert("T", Row::new());
        let reply = json!([{"uuid": ["uuid", "11111111-1111-1111-1111-111111111111"]},
                           {"error": "referential integrity violation", "details": "x"}]);
        match transaction_result(txn.clone(), text_reply(&reply.to_string())) {
            Err(Error::Transaction {
                op_index,
                op_summary,
                error,
                ..
            }) => {
                assert_eq!(op_index, 1);
                assert!(op_summary.starts_with("commit"));
                assert!(matches!(error, OperationError::ReferentialIntegrityViolation(_)));
            }
            r => panic!("{r:?}"),
        }
        let ok = transaction_result(
            txn,
            text_reply(&json!([{"uuid": ["uuid", "11111111-1111-1111-1111-111111111111"]}]).to_string()),
        )
        .unwrap();
        assert_eq!(
            ok.inserted(&named).map(|u| u.to_string()).as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        let _ = Value::empty_set();
    }

    #[test]
    fn select_rows_and_counts_are_decoded() {
        let mut txn = Transaction::new("DB");
        txn.select("T", vec![], None);
        txn.update("T", vec![], Row::new().with("a", 2));
        let r = transaction_result(
            txn,
            text_reply(&json!([{"rows": [{"a": 1}]}, {"count": 3}]).to_string()),
        )
        .unwrap();
        assert_eq!(r.results[0].rows.as_ref().unwrap()[0].get("a"), Some(&Value::from(1)));
        assert_eq!(r.results[1].count, Some(3));
    }
}
