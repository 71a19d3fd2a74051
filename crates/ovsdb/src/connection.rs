//! One socket to one OVSDB server: a reader task and a writer task, and the table of requests
//! waiting for their replies.
//!
//! The reader alone consumes the socket's input: it frames messages ([`crate::jsonrpc`]),
//! answers the server's `echo`, sends our inactivity probe, applies monitor updates to their
//! replicas *before* it looks at the next message (so a `transact` reply is processed after the
//! updates it caused), and completes pending requests. When the socket ends it fails every
//! pending request: a `transact` with [`Error::OutcomeUnknown`] (it may have committed), the rest
//! with [`Error::Disconnected`]. Nothing is ever re-sent from here.
//!
//! Callers encode their requests straight into one shared output buffer (no per-request
//! message or channel hop); the writer task is woken only when that buffer goes from empty to
//! non-empty, lets ready callers add theirs, then writes the whole batch with one system call.
//!
//! Must not know: reconnect policy, remotes other than its own, any schema's table names
//! other than `_Server`'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::client::Shared;
use crate::condition::Condition;
use crate::datum::{Row, Uuid};
use crate::error::{Error, Result};
use crate::filter::SharedFilter;
use crate::jsonrpc::{write_request, Framer, Incoming};
use crate::monitor::{decode_monitor_reply, decode_update_params, MonitorMethod, RowChange, TableUpdates};
use crate::remote::Remote;
use crate::replica::ReplicaShared;
use crate::txn::Transaction;

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// How long a server that owes us replies may stay silent (probe unanswered) before we give
/// up on it; an idle one gets two probe intervals.
const BUSY_SERVER_GRACE: Duration = Duration::from_secs(60);

/// Read buffer size: big initial dumps arrive in few system calls.
const READ_CHUNK: usize = 256 * 1024;

/// Initial size of the output buffers (a batch of pipelined requests fits).
const OUTBOX_CAPACITY: usize = 64 * 1024;

/// What the reader does with a successful reply before handing it to the caller.
#[derive(Clone)]
pub(crate) enum ReplyAction {
    /// Hand the result over as is.
    Plain,
    /// A `transact`: on disconnect the outcome is unknown.
    Transact { database: Arc<str> },
    /// A monitor start or resume: apply the initial contents to the replica first.
    Monitor {
        replica: Arc<ReplicaShared>,
        method: MonitorMethod,
        resume: bool,
    },
    /// `lock`/`steal`: record whether we own the lock now.
    Lock { id: String },
    /// A `transact` of `select`s (one per entry of `tables`) whose rows go into the replica
    /// (see [`ReplicaShared::apply_fetched`]). `requested`: the rows the replica asked for
    /// itself after a `modify` it could not judge; `None` for [`crate::Replica::fetch`]. The
    /// reply is the number of selected rows the replica holds.
    Fetch {
        replica: Arc<ReplicaShared>,
        tables: Vec<String>,
        requested: Option<Arc<[(String, Uuid)]>>,
    },
}

struct Pending {
    method: std::borrow::Cow<'static, str>,
    action: ReplyAction,
    reply: oneshot::Sender<Result<Reply>>,
}

/// A successful reply's `result`, still as JSON text: the caller decodes it into its own type.
/// The text is a value the message parser already checked, so it is copied, not parsed again.
pub(crate) struct Reply(Box<str>);

impl Reply {
    pub(crate) fn get(&self) -> &str {
        &self.0
    }
}

fn raw(text: &str) -> Reply {
    Reply(text.into())
}

/// The request was not written because the connection is closing; it is safe to send it on
/// the next connection.
pub(crate) struct NotSent;

/// The `_Server` monitor that decides whether this server stays usable.
pub(crate) struct ServerWatch {
    pub(crate) replica: Arc<ReplicaShared>,
    pub(crate) database: String,
    pub(crate) leader_only: bool,
}

/// Bytes encoded by callers and not yet taken by the writer task.
struct Outbox {
    bytes: Vec<u8>,
    /// False once the writer stopped: nothing queued now would ever be written.
    open: bool,
}

/// The method names we send, so a pending request does not allocate its name.
fn method_name(method: &str) -> std::borrow::Cow<'static, str> {
    const KNOWN: [&str; 12] = [
        "transact",
        "echo",
        "list_dbs",
        "get_schema",
        "monitor",
        "monitor_cond",
        "monitor_cond_since",
        "monitor_cond_change",
        "monitor_cancel",
        "lock",
        "steal",
        "unlock",
    ];
    match KNOWN.iter().find(|&&m| m == method) {
        Some(&m) => std::borrow::Cow::Borrowed(m),
        None => std::borrow::Cow::Owned(method.to_owned()),
    }
}

pub(crate) struct Connection {
    pub(crate) remote: Remote,
    outbox: Mutex<Outbox>,
    /// Wakes the writer: something was queued into an empty outbox.
    outbox_ready: Notify,
    /// `None` once closed: nothing can be added after the reader failed what was there.
    pending: Mutex<Option<HashMap<u64, Pending>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    close_requested: Notify,
    close_reason: Mutex<Option<String>>,
    /// Set when `_Server` said this server is no longer usable (leadership lost).
    pub(crate) unusable: AtomicBool,
    server_watch: Mutex<Option<ServerWatch>>,
    shared: Arc<Shared>,
}

/// Opens the socket for `remote`.
pub(crate) async fn open(remote: &Remote) -> std::io::Result<(BoxRead, BoxWrite)> {
    match remote {
        Remote::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path).await?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Remote::Tcp { host, port } => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Remote::Ssl { .. } => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "ssl: remotes are not supported yet; use tcp: or unix:",
        )),
    }
}

impl Connection {
    /// Starts the reader and writer tasks on an open socket. The handle resolves to the reason
    /// the connection ended.
    pub(crate) fn start(
        remote: Remote,
        read: BoxRead,
        write: BoxWrite,
        shared: Arc<Shared>,
        probe: Option<Duration>,
    ) -> (Arc<Connection>, JoinHandle<String>) {
        let conn = Arc::new(Connection {
            remote,
            outbox: Mutex::new(Outbox {
                bytes: Vec::with_capacity(OUTBOX_CAPACITY),
                open: true,
            }),
            outbox_ready: Notify::new(),
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            close_requested: Notify::new(),
            close_reason: Mutex::new(None),
            unusable: AtomicBool::new(false),
            server_watch: Mutex::new(None),
            shared,
        });
        let writer = tokio::spawn(write_loop(conn.clone(), write));
        let reader = tokio::spawn(read_loop(conn.clone(), read, probe, writer));
        (conn, reader)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Asks the reader to drop the connection (pending requests fail as on any disconnect).
    pub(crate) fn close(&self, reason: &str) {
        let mut r = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason.to_owned());
        }
        drop(r);
        self.close_requested.notify_one();
    }

    pub(crate) fn set_server_watch(&self, watch: Option<ServerWatch>) {
        *self.server_watch.lock().unwrap_or_else(|p| p.into_inner()) = watch;
    }

    /// Queues a request; the receiver gets the reply (or the disconnect error).
    pub(crate) fn send<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
        action: ReplyAction,
    ) -> std::result::Result<oneshot::Receiver<Result<Reply>>, NotSent> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = pending.as_mut() else {
            return Err(NotSent);
        };
        // Registered before its bytes can reach the server, so the reply always finds it; the
        // reader cannot fail it before it is queued (we hold the pending lock).
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if !outbox.open {
            return Err(NotSent);
        }
        let was_empty = outbox.bytes.is_empty();
        let start = outbox.bytes.len();
        if let Err(e) = write_request(&mut outbox.bytes, &Json::from(id), method, params) {
            outbox.bytes.truncate(start);
            let _ = tx.send(Err(e));
            return Ok(rx);
        }
        drop(outbox);
        map.insert(
            id,
            Pending {
                method: method_name(method),
                action,
                reply: tx,
            },
        );
        drop(pending);
        if was_empty {
            self.outbox_ready.notify_one();
        }
        Ok(rx)
    }

    /// Queues bytes that expect no reply (our answers to the server, our probe).
    fn queue(&self, encode: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if !outbox.open {
            return;
        }
        let was_empty = outbox.bytes.is_empty();
        let start = outbox.bytes.len();
        if !encode(&mut outbox.bytes) {
            outbox.bytes.truncate(start);
            return;
        }
        drop(outbox);
        if was_empty {
            self.outbox_ready.notify_one();
        }
    }

    /// Sends a request and waits for its reply.
    pub(crate) async fn request<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
        action: ReplyAction,
    ) -> Result<Reply> {
        let rx = self
            .send(method, params, action)
            .map_err(|NotSent| self.disconnected())?;
        rx.await.unwrap_or_else(|_| Err(self.disconnected()))
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected {
            remote: self.remote.to_string(),
        }
    }

    fn send_response(&self, id: &Json, result: &RawValue, error: &Json) {
        #[derive(Serialize)]
        struct WireResponse<'a> {
            result: &'a RawValue,
            error: &'a Json,
            id: &'a Json,
        }
        self.queue(|out| serde_json::to_writer(out, &WireResponse { result, error, id }).is_ok());
    }

    fn send_probe(&self) {
        self.queue(|out| write_request(out, &json!("echo"), "echo", &json!([])).is_ok());
    }

    /// Fails everything pending and refuses new requests.
    fn shut(&self) {
        self.closed.store(true, Ordering::Release);
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).open = false;
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        let remote = self.remote.to_string();
        for (_, p) in pending.into_iter().flatten() {
            let err = match p.action {
                ReplyAction::Transact { database } => Error::OutcomeUnknown {
                    database: database.to_string(),
                    remote: remote.clone(),
                },
                _ => Error::Disconnected { remote: remote.clone() },
            };
            let _ = p.reply.send(Err(err));
        }
    }

    /// Whether some request still waits for its reply.
    fn has_pending(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|m| !m.is_empty())
    }

    fn take_pending(&self, id: u64) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|m| m.remove(&id))
    }

    fn handle(&self, frame: &[u8], at: Instant) -> Result<()> {
        let msg = Incoming::parse(frame)?;
        match (msg.method, msg.id) {
            (Some(method), None) => self.handle_notification(&method, msg.params, at),
            (Some(method), Some(id)) => {
                let null = RawValue::from_string("null".to_owned()).expect("valid JSON literal");
                if method == "echo" {
                    self.send_response(&id, msg.params.unwrap_or(&null), &Json::Null);
                } else {
                    let error = json!({"error": "unknown method", "details": method});
                    self.send_response(&id, &null, &error);
                }
                Ok(())
            }
            (None, Some(id)) => {
                // Our probe uses a string id; its answer only proves liveness.
                if let Some(id) = id.as_u64() {
                    self.handle_response(id, msg.result, msg.error, at);
                }
                Ok(())
            }
            (None, None) => Err(Error::Decode("JSON-RPC message with neither method nor id".into())),
        }
    }

    fn handle_response(&self, id: u64, result: Option<&RawValue>, error: Option<Json>, at: Instant) {
        let Some(p) = self.take_pending(id) else {
            tracing::debug!(id, "reply to a request nobody waits for");
            return;
        };
        if let Some(error) = error.filter(|e| !e.is_null()) {
            if let ReplyAction::Fetch {
                replica,
                requested: Some(requested),
                ..
            } = &p.action
            {
                tracing::warn!(%error, "fetch of rows a filtered replica may keep failed");
                replica.forget_in_flight(requested);
            }
            let _ = p.reply.send(Err(rpc_error(&p.method, error)));
            return;
        }
        let result = result.map(|r| r.get()).unwrap_or("null");
        let out = match p.action {
            ReplyAction::Plain | ReplyAction::Transact { .. } => Ok(raw(result)),
            ReplyAction::Monitor {
                replica,
                method,
                resume,
            } => self
                .apply_monitor_reply(&replica, method, resume, result, at)
                .map(|found| raw(if found { "true" } else { "false" })),
            ReplyAction::Fetch {
                replica,
                tables,
                requested,
            } => {
                apply_fetch_reply(&replica, tables, requested.as_deref(), result, at).map(|held| raw(&held.to_string()))
            }
            ReplyAction::Lock { id } => {
                #[derive(serde::Deserialize)]
                struct LockReply {
                    #[serde(default)]
                    locked: bool,
                }
                match serde_json::from_str::<LockReply>(result) {
                    Ok(r) => {
                        if r.locked {
                            self.shared.set_lock_owned(&id, true);
                        }
                        Ok(raw(result))
                    }
                    Err(e) => Err(Error::Decode(format!("{} reply: {e}", p.method))),
                }
            }
        };
        let _ = p.reply.send(out);
    }

    fn handle_notification(&self, method: &str, params: Option<&RawValue>, at: Instant) -> Result<()> {
        let params = params.map(|p| p.get()).unwrap_or("[]");
        let bad = |e: serde_json::Error| Error::Decode(format!("{method} notification: {e}"));
        let notification = match method {
            "update" => Some(MonitorMethod::Plain),
            "update2" => Some(MonitorMethod::Cond),
            "update3" => Some(MonitorMethod::CondSince),
            _ => None,
        };
        if let Some(notification) = notification {
            // The monitor id comes first: its replica's filter decides which tables to decode.
            let update = decode_update_params(params, notification, |id| self.filter_of(id)).map_err(bad)?;
            self.apply_update(&update.monitor_id, update.tables, update.txn_id, at);
            return Ok(());
        }
        match method {
            "locked" | "stolen" => {
                let ids: Vec<Json> = serde_json::from_str(params).map_err(bad)?;
                if let Some(id) = ids.first().and_then(Json::as_str) {
                    if method == "locked" {
                        self.shared.set_lock_owned(id, true);
                    } else {
                        self.shared.lock_stolen(id);
                    }
                }
            }
            _ => tracing::debug!(method, "ignoring unknown notification"),
        }
        Ok(())
    }

    fn apply_update(
        &self,
        monitor_id: &Json,
        tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
        txn_id: Option<Uuid>,
        at: Instant,
    ) {
        let updates = TableUpdates {
            tables,
            last_txn_id: txn_id,
        };
        {
            let watch = self.server_watch.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = watch.as_ref().filter(|w| &w.replica.monitor_id == monitor_id) {
                w.replica.apply(updates, at);
                if let Err(reason) = server_usable(&w.replica, &w.database, w.leader_only) {
                    tracing::info!(remote = %self.remote, %reason, "server no longer usable; reconnecting");
                    self.unusable.store(true, Ordering::Release);
                    drop(watch);
                    self.close(&reason);
                }
                return;
            }
        }
        let Some(replica) = monitor_id.as_str().and_then(|id| self.shared.monitor(id)) else {
            // Cancelled, or every Replica handle was dropped: stop the server sending more.
            tracing::debug!(%monitor_id, "update for a monitor nobody holds; cancelling it");
            let _ = self.send("monitor_cancel", &json!([monitor_id]), ReplyAction::Plain);
            return;
        };
        let to_fetch = replica.apply(updates, at);
        replica.set_last_txn_id(txn_id);
        self.send_fetch(&replica, to_fetch);
    }

    /// The filter of the replica monitor `monitor_id` feeds (`None`: unfiltered, or unknown).
    fn filter_of(&self, monitor_id: &Json) -> Option<SharedFilter> {
        let watch = self.server_watch.lock().unwrap_or_else(|p| p.into_inner());
        if watch.as_ref().is_some_and(|w| &w.replica.monitor_id == monitor_id) {
            return None;
        }
        drop(watch);
        self.shared.monitor(monitor_id.as_str()?)?.filter.clone()
    }

    /// Queues one `transact` selecting whole rows a filtered replica may keep. If the
    /// connection is closing they stay in flight and are asked for again when the monitor is
    /// resumed on the next connection.
    fn send_fetch(&self, replica: &Arc<ReplicaShared>, rows: Vec<(String, Uuid)>) {
        if rows.is_empty() {
            return;
        }
        let mut txn = Transaction::new(replica.database.as_str());
        for (table, uuid) in &rows {
            let columns = replica.fetch_columns(table);
            txn.select(table.as_str(), vec![Condition::uuid(*uuid)], columns);
        }
        let action = ReplyAction::Fetch {
            replica: replica.clone(),
            tables: rows.iter().map(|(t, _)| t.clone()).collect(),
            requested: Some(rows.into()),
        };
        // Nobody waits for the reply: the reader applies it.
        let _ = self.send("transact", &txn.to_params(), action);
    }

    /// Applies the reply to a monitor request; returns `found` (whether the server could send
    /// only what changed since our last transaction id).
    fn apply_monitor_reply(
        &self,
        replica: &Arc<ReplicaShared>,
        method: MonitorMethod,
        resume: bool,
        result: &str,
        at: Instant,
    ) -> Result<bool> {
        let reply = decode_monitor_reply(result, method, replica.filter.as_deref())
            .map_err(|e| Error::Decode(format!("{} reply: {e}", method.rpc_name())))?;
        let updates = TableUpdates {
            tables: reply.tables,
            last_txn_id: reply.txn_id,
        };
        if resume && !reply.found {
            replica.replace(updates, at);
        } else {
            // Fetches sent on the previous connection died with it; this session has sent none
            // for this monitor yet. Asked again after the missed changes are applied, they
            // follow them in the stream, as the first ones did.
            let lost = if resume { replica.in_flight() } else { Vec::new() };
            let to_fetch = replica.apply(updates, at);
            self.send_fetch(replica, to_fetch);
            self.send_fetch(replica, lost);
        }
        replica.set_last_txn_id(reply.txn_id);
        *replica.method.lock().unwrap_or_else(|p| p.into_inner()) = Some(method);
        replica.set_active(true);
        Ok(reply.found)
    }
}

/// Applies a fetch's `transact` reply (one `select` result per table) to the replica.
fn apply_fetch_reply(
    replica: &ReplicaShared,
    tables: Vec<String>,
    requested: Option<&[(String, Uuid)]>,
    result: &str,
    at: Instant,
) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct SelectResult {
        #[serde(default)]
        rows: Vec<Row>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        details: Option<Json>,
    }
    let results = match serde_json::from_str::<Vec<Option<SelectResult>>>(result) {
        Ok(r) => r,
        Err(e) => {
            if let Some(requested) = requested {
                replica.forget_in_flight(requested);
            }
            return Err(Error::Decode(format!("fetch reply: {e}")));
        }
    };
    if let Some(failed) = results.iter().flatten().find(|r| r.error.is_some()) {
        if let Some(requested) = requested {
            replica.forget_in_flight(requested);
        }
        return Err(Error::Rpc {
            method: "transact".into(),
            error: failed.error.clone().unwrap_or_default(),
            details: failed.details.as_ref().map(Json::to_string),
        });
    }
    let selected = tables
        .into_iter()
        .zip(results)
        .map(|(table, r)| (table, r.map(|r| r.rows).unwrap_or_default()))
        .collect();
    Ok(replica.apply_fetched(selected, requested, at))
}

/// Whether a server is usable for `database`, from its `_Server.Database` rows.
pub(crate) fn server_usable(
    server: &ReplicaShared,
    database: &str,
    leader_only: bool,
) -> std::result::Result<(), String> {
    server.read(|tables| {
        let row: Option<&Row> = tables.get("Database").and_then(|rows| {
            rows.values()
                .find(|r| r.get("name").and_then(|v| v.as_str()) == Some(database))
        });
        let Some(row) = row else {
            return Err(format!("it does not serve database {database}"));
        };
        let flag = |c: &str| row.get(c).and_then(|v| v.as_bool()).unwrap_or(false);
        if !flag("connected") {
            return Err(format!("its copy of {database} is not connected to the cluster"));
        }
        let model = row.get("model").and_then(|v| v.as_str()).unwrap_or("standalone");
        if leader_only && model == "clustered" && !flag("leader") {
            return Err(format!("it is not the RAFT leader for {database} (leader_only is set)"));
        }
        Ok(())
    })
}

/// Builds [`Error::Rpc`] from a JSON-RPC `error` (a string, or an object with error/details).
pub(crate) fn rpc_error(method: &str, error: Json) -> Error {
    match error {
        Json::String(s) => Error::Rpc {
            method: method.to_owned(),
            error: s,
            details: None,
        },
        Json::Object(o) => Error::Rpc {
            method: method.to_owned(),
            error: o
                .get("error")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| Json::Object(o.clone()).to_string()),
            details: o.get("details").and_then(Json::as_str).map(str::to_owned),
        },
        other => Error::Rpc {
            method: method.to_owned(),
            error: other.to_string(),
            details: None,
        },
    }
}

async fn write_loop(conn: Arc<Connection>, mut write: BoxWrite) {
    let mut batch = Vec::with_capacity(OUTBOX_CAPACITY);
    loop {
        conn.outbox_ready.notified().await;
        // Let the tasks that are ready run once (pipelining callers queue more), then take
        // everything: one system call carries many requests.
        tokio::task::yield_now().await;
        loop {
            {
                let mut outbox = conn.outbox.lock().unwrap_or_else(|p| p.into_inner());
                if outbox.bytes.is_empty() {
                    break;
                }
                std::mem::swap(&mut outbox.bytes, &mut batch);
            }
            if let Err(e) = write.write_all(&batch).await {
                conn.outbox.lock().unwrap_or_else(|p| p.into_inner()).open = false;
                conn.close(&format!("write failed: {e}"));
                return;
            }
            batch.clear();
            // A one-off huge request must not pin its buffer for the connection's lifetime.
            if batch.capacity() > 16 * OUTBOX_CAPACITY {
                batch = Vec::with_capacity(OUTBOX_CAPACITY);
            }
        }
    }
}

async fn read_loop(
    conn: Arc<Connection>,
    mut read: BoxRead,
    probe: Option<Duration>,
    writer: JoinHandle<()>,
) -> String {
    let reason = read_messages(&conn, &mut read, probe).await;
    conn.shut();
    writer.abort();
    tracing::debug!(remote = %conn.remote, %reason, "connection closed");
    reason
}

async fn read_messages(conn: &Connection, read: &mut BoxRead, probe: Option<Duration>) -> String {
    let mut framer = Framer::with_capacity(READ_CHUNK);
    let mut probe_sent = false;
    let mut silent_since = Instant::now();
    loop {
        let buf = framer.buffer_mut();
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let idle = probe.unwrap_or(Duration::from_secs(86_400 * 365));
        let n = tokio::select! {
            biased;
            _ = conn.close_requested.notified() => {
                return conn
                    .close_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "closed".into());
            }
            r = tokio::time::timeout(idle, read.read_buf(framer.buffer_mut())) => r,
        };
        let n = match n {
            // A server owing us replies may be busy computing one (a big initial dump takes
            // seconds, and it answers echo only afterwards): give it a longer grace.
            Err(_) if probe_sent && conn.has_pending() && silent_since.elapsed() < BUSY_SERVER_GRACE.max(idle * 2) => {
                continue
            }
            Err(_) if probe_sent => {
                return format!("no answer to the inactivity probe for {:?}", silent_since.elapsed())
            }
            Err(_) => {
                conn.send_probe();
                probe_sent = true;
                continue;
            }
            Ok(Err(e)) => return format!("read failed: {e}"),
            Ok(Ok(0)) if framer.in_frame() => {
                return "the server closed the connection in the middle of a message".into()
            }
            Ok(Ok(0)) => return "the server closed the connection".into(),
            Ok(Ok(n)) => n,
        };
        let _ = n;
        probe_sent = false;
        let at = Instant::now();
        silent_since = at;
        loop {
            let frame = match framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return format!("protocol error: {e}"),
            };
            let handled = conn.handle(&frame, at);
            if let Err(e) = handled {
                return format!("protocol error: {e}");
            }
        }
    }
}
