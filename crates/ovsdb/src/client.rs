//! The connection to an OVSDB server and every RPC on it.
//!
//! A [`Client`] is cheap to clone; all clones share one connection task. The task owns the
//! socket, answers the server's `echo`, sends its own inactivity probe, reconnects with
//! backoff over all remotes, checks leadership through `_Server` when asked, and resumes
//! monitors with `monitor_cond_since`.
//!
//! Must not know: any schema's table names other than `_Server`'s.

use std::time::Duration;

use serde_json::Value as Json;

use crate::error::Result;
use crate::lock::Lock;
use crate::monitor::{MonitorMethod, MonitorRequest};
use crate::remote::Remote;
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::txn::{Transaction, TransactionResult};

/// How a [`Client`] connects and stays connected.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub remotes: Vec<Remote>,
    /// The database whose `_Server` row decides whether a server is usable (leader, connected).
    pub database: Option<String>,
    /// Refuse RAFT followers; try the next remote. Needs `database`.
    pub leader_only: bool,
    /// Send `echo` after this long without traffic; drop the connection if another
    /// interval passes with no answer. `None` disables the probe.
    pub inactivity_probe: Option<Duration>,
    /// Reconnect after a drop (monitors resume, in-flight transactions fail with `OutcomeUnknown`).
    pub reconnect: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long [`Client::connect`] keeps trying before giving up with the last error.
    pub connect_timeout: Duration,
    /// Check operations against the schema before sending them.
    pub check_schema: bool,
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
}

/// State changes of the connection, for callers that want to know (see [`Client::connection_events`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionEvent {
    Connected { remote: String },
    Disconnected { remote: String, reason: String },
}

/// A connection to one OVSDB server (of a list), shared by all clones.
#[derive(Clone)]
pub struct Client {
    _private: (),
}

impl Client {
    /// Connects to the first usable remote.
    pub async fn connect(_options: ClientOptions) -> Result<Client> {
        todo!("ovsdb helper")
    }
    /// The remote currently connected to.
    pub fn current_remote(&self) -> Option<Remote> {
        todo!("ovsdb helper")
    }
    /// Subscribe to connect/disconnect events.
    pub fn connection_events(&self) -> tokio::sync::broadcast::Receiver<ConnectionEvent> {
        todo!("ovsdb helper")
    }
    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        todo!("ovsdb helper")
    }
    /// The schema of `database` (fetched once, then cached).
    pub async fn get_schema(&self, _database: &str) -> Result<DatabaseSchema> {
        todo!("ovsdb helper")
    }
    pub async fn echo(&self) -> Result<()> {
        todo!("ovsdb helper")
    }
    /// Sends one transaction. `Err(Error::Transaction{..})` when an operation failed (with the
    /// server's error and details); `Err(Error::OutcomeUnknown{..})` when the connection dropped
    /// before the reply. Never re-sent.
    pub async fn transact(&self, _txn: Transaction) -> Result<TransactionResult> {
        todo!("ovsdb helper")
    }
    /// Any JSON-RPC method, for what has no typed wrapper.
    pub async fn call(&self, _method: &str, _params: Json) -> Result<Json> {
        todo!("ovsdb helper")
    }
    /// Starts a monitor and returns its replica once the initial contents are in.
    /// Uses `monitor_cond_since`, falling back to `monitor_cond`, then `monitor`.
    pub async fn monitor(&self, _database: &str, _request: MonitorRequest) -> Result<Replica> {
        todo!("ovsdb helper")
    }
    /// Like [`Client::monitor`], but the replica keeps only rows `keep` accepts (every update is
    /// still received and decoded). For emulated chassis that must not hold the whole SB.
    pub async fn monitor_filtered(
        &self,
        _database: &str,
        _request: MonitorRequest,
        _keep: std::sync::Arc<dyn Fn(&str, &crate::datum::Row) -> bool + Send + Sync>,
    ) -> Result<Replica> {
        todo!("ovsdb helper")
    }
    /// Which method the server accepted for monitors on this connection, once known.
    pub fn monitor_method(&self) -> Option<MonitorMethod> {
        todo!("ovsdb helper")
    }
    /// Requests lock `id`; the returned handle reports `locked`/`stolen`.
    pub async fn lock(&self, _id: &str) -> Result<Lock> {
        todo!("ovsdb helper")
    }
    /// Takes lock `id` from its current owner.
    pub async fn steal(&self, _id: &str) -> Result<Lock> {
        todo!("ovsdb helper")
    }
    /// Closes the connection; in-flight requests fail with `Disconnected`.
    pub async fn close(&self) {
        todo!("ovsdb helper")
    }
}
