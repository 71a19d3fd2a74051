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
//! Callers encode their requests straight into one shared output buffer and write it to the
//! socket themselves while it has room (no task hop: one system call per call or batch); the
//! writer task only waits for room when the socket is full. Requests sent together
//! ([`Connection::send_all`]) complete through one shared [`Batch`]: one wake-up of the caller
//! for all of them. When many replies are owed and a read brought few, the reader waits a
//! moment before reading again, so one read carries many replies (a lone request is never
//! delayed); meanwhile its socket is not registered with the runtime's poller, so the server's
//! many small writes do not wake the thread one by one. Buffers start small and shrink back
//! after a big message: idle connections are cheap.
//!
//! Must not know: reconnect policy, remotes other than its own, any schema's table names
//! other than `_Server`'s.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::client::Shared;
use crate::condition::Condition;
use crate::datum::{Row, Uuid};
use crate::encode::RequestParams;
use crate::error::{Error, Result};
use crate::filter::SharedFilter;
use crate::jsonrpc::{plain_response, plain_response_at, write_request, Framer, Incoming};
use crate::monitor::{decode_monitor_reply, decode_update_params, MonitorMethod, RowChange, TableUpdates};
use crate::remote::Remote;
use crate::replica::ReplicaShared;
use crate::tls::{TlsConfig, TlsSocket};
use crate::txn::{plain_results_prefix, OperationResult, Transaction};
use crate::update_cache::{leading_monitor_id, FrameKey, Lookup, Recognized, SharedUpdate};

/// How long a server that owes us replies may stay silent (probe unanswered) before we give
/// up on it; an idle one gets two probe intervals.
const BUSY_SERVER_GRACE: Duration = Duration::from_secs(60);

/// Read buffer of a connection between messages: a thousand idle connections stay cheap.
const READ_MIN: usize = 16 * 1024;
/// Largest read: inside a big message (an initial dump of tens of MB) the buffer grows with the
/// message, so it arrives in few system calls; it shrinks back to `READ_MIN` afterwards.
const READ_MAX: usize = 256 * 1024;

/// Output buffer capacity kept once written; a bigger one (after a huge request) is released.
const OUTBOX_KEEP: usize = 64 * 1024;

/// Read coalescing: with at least `COALESCE_MIN_OWED` replies owed and a read that brought
/// less than `COALESCE_READ_BYTES`, the next read waits `COALESCE_DELAY` (two ticks of the
/// runtime's millisecond timer), so it takes the replies of many transactions at once instead
/// of one per wake-up. The server stays busy meanwhile: with that many requests queued it has
/// milliseconds of work left (ovsdb-server commits a small transaction in about 40 µs).
const COALESCE_MIN_OWED: usize = 32;
const COALESCE_READ_BYTES: usize = 64 * 1024;
const COALESCE_DELAY: Duration = Duration::from_millis(2);

/// What the reader does with a successful reply before handing it to the caller.
#[derive(Clone)]
pub(crate) enum ReplyAction {
    /// Hand the result over as is.
    Plain,
    /// A `transact`: on disconnect the outcome is unknown. `typed`: the caller turns the reply
    /// into a [`TransactionResult`](crate::TransactionResult), so a reply in the plain layout
    /// may reach it already read ([`Reply::Results`]) instead of as text.
    Transact { database: Arc<str>, typed: bool },
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
    reply: Completion,
}

/// Hashes request ids, which are sequential numbers: one multiplication spreads them over the
/// table (SipHash would cost more than the rest of a lookup).
#[derive(Default)]
struct IdHash(u64);

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Where a reply goes: to the one caller of a request, or into its slot of a [`Batch`].
pub(crate) enum Completion {
    One(oneshot::Sender<Result<Reply>>),
    Batch { batch: Arc<Batch>, index: usize },
}

impl Completion {
    /// Hands the reply over; false if nobody waits for it any more.
    fn send(self, reply: Result<Reply>) -> bool {
        match self {
            Completion::One(tx) => tx.send(reply).is_ok(),
            Completion::Batch { batch, index } => {
                batch.complete(index, reply);
                true
            }
        }
    }
}

/// The replies to requests sent together: filled in by the reader as they come, handed to
/// the caller in request order with a single wake-up once the last one is in.
pub(crate) struct Batch {
    state: Mutex<BatchState>,
}

struct BatchState {
    replies: Vec<Option<Result<Reply>>>,
    missing: usize,
    waker: Option<Waker>,
}

impl Batch {
    pub(crate) fn new(len: usize) -> Arc<Batch> {
        Arc::new(Batch {
            state: Mutex::new(BatchState {
                replies: (0..len).map(|_| None).collect(),
                missing: len,
                waker: None,
            }),
        })
    }

    fn complete(&self, index: usize, reply: Result<Reply>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let Some(slot) = state.replies.get_mut(index).filter(|s| s.is_none()) else {
                return;
            };
            *slot = Some(reply);
            state.missing -= 1;
            if state.missing > 0 {
                return;
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Every reply, in request order, once all are in (each slot is filled then; the vector is
    /// handed over as it is, not collected anew).
    pub(crate) async fn wait(&self) -> Vec<Option<Result<Reply>>> {
        std::future::poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.missing > 0 {
                if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    state.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            Poll::Ready(std::mem::take(&mut state.replies))
        })
        .await
    }
}

/// A successful reply's `result`.
pub(crate) enum Reply {
    /// Still as JSON text: the caller decodes it into its own type. The text is a value the
    /// message parser already checked, so it is copied, not parsed again.
    Text(Box<str>),
    /// The results of a typed `transact` whose reply was in the plain layout, read straight
    /// from the input buffer (no copy of the text, no second scan).
    Results(Vec<OperationResult>),
}

impl Reply {
    /// The text of a [`Reply::Text`]. Only typed transacts get [`Reply::Results`], and
    /// `client::transaction_result` takes those apart itself; for one this is `"null"`.
    pub(crate) fn get(&self) -> &str {
        match self {
            Reply::Text(text) => text,
            Reply::Results(_) => "null",
        }
    }
}

fn raw(text: &str) -> Reply {
    Reply::Text(text.into())
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

/// Bytes encoded by callers and not yet written, and the socket they go to.
struct Outbox {
    bytes: Vec<u8>,
    /// How much of `bytes` is already written (the rest waits for room in the socket).
    written: usize,
    /// False once the connection is closing: nothing queued now would ever be written.
    open: bool,
    /// The socket had no room: the writer task waits for it and writes; callers only queue.
    blocked: bool,
    /// `None` once closed.
    socket: Option<Socket>,
}

impl Outbox {
    /// Writes queued bytes until none are left or the socket is full (then `blocked` is set).
    fn flush(&mut self) -> std::io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        while self.written < self.bytes.len() {
            match socket.send(&self.bytes[self.written..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.written = 0;
        if self.bytes.capacity() > OUTBOX_KEEP {
            self.bytes = Vec::new();
        } else {
            self.bytes.clear();
        }
        if !socket.flush()? {
            self.blocked = true;
        }
        Ok(())
    }
}

/// A connected, non-blocking socket, read and written with plain system calls. A task that
/// must wait for it registers a duplicate descriptor with the runtime's poller for the time it
/// waits ([`ReadSide`], [`write_loop`]): nothing is woken by readiness nobody waits for.
pub(crate) enum Socket {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
    /// TLS over TCP: encrypted and decrypted on these same calls (see [`crate::tls`]).
    Tls(TlsSocket),
}

impl Socket {
    fn send(&self, bytes: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        match self {
            Socket::Unix(s) => (&mut &*s).write(bytes),
            Socket::Tcp(s) => (&mut &*s).write(bytes),
            Socket::Tls(s) => s.send(bytes),
        }
    }

    /// Writes what the socket itself still holds back (TLS records); `Ok(false)` while the
    /// socket is full. Plain sockets hold nothing back.
    fn flush(&self) -> std::io::Result<bool> {
        match self {
            Socket::Tls(s) => s.flush(),
            _ => Ok(true),
        }
    }

    /// Whether input was read off the descriptor but not handed out yet (TLS), so waiting
    /// for the descriptor to become readable would miss it.
    fn has_buffered_input(&self) -> bool {
        match self {
            Socket::Tls(s) => s.has_buffered_input(),
            _ => false,
        }
    }

    /// Why its TLS session failed, if it is one and did (read after the connection ended).
    pub(crate) fn tls_failure(&self) -> Option<rustls::Error> {
        match self {
            Socket::Tls(s) => s.failure(),
            _ => None,
        }
    }

    /// A second descriptor for the same connection (to register with the poller on its own).
    pub(crate) fn try_clone(&self) -> std::io::Result<Socket> {
        Ok(match self {
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Tls(s) => Socket::Tls(s.try_clone()?),
        })
    }

    /// Ends the connection for every descriptor of it (the server sees it closed at once).
    fn shutdown(&self) {
        let _ = match self {
            Socket::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Socket::Tls(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }

    /// Reads what has arrived into `buf`'s spare capacity (at most `READ_MAX`), without
    /// zero-filling it first (a read that brings a few replies must not clear 16 KiB).
    fn recv_into(&self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.recv_draining(buf).map(|(n, _)| n)
    }

    /// Reads what has arrived; also says whether that left the socket empty: a read that did
    /// not fill the room it was given took everything there was (for TLS, the read of the
    /// ciphertext; what the session still holds is `has_buffered_input`).
    fn recv_draining(&self, buf: &mut BytesMut) -> std::io::Result<(usize, bool)> {
        use std::os::fd::AsRawFd;
        if let Socket::Tls(s) = self {
            return s.recv_draining(buf, READ_MAX);
        }
        if buf.capacity() == buf.len() {
            buf.reserve(1);
        }
        let spare = buf.spare_capacity_mut();
        let room = spare.len().min(READ_MAX);
        loop {
            // SAFETY: `spare` is writable memory of at least `room` bytes owned by `buf`; the
            // kernel writes at most `room` bytes into it and we only count what it wrote.
            let n = unsafe { libc::recv(self.as_raw_fd(), spare.as_mut_ptr().cast(), room, 0) };
            if n >= 0 {
                let n = n as usize;
                // SAFETY: the first `n` bytes of the spare capacity were just written by recv.
                unsafe { buf.set_len(buf.len() + n) };
                return Ok((n, n > 0 && n < room));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl std::os::fd::AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Socket::Unix(s) => s.as_raw_fd(),
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Tls(s) => s.as_raw_fd(),
        }
    }
}

/// Registers `socket` with the runtime's poller for `interest`, until the result is dropped or
/// unwrapped with `into_inner`.
fn register(socket: Socket, interest: Interest) -> std::io::Result<AsyncFd<Socket>> {
    // SAFETY: a `Socket` owns its descriptor (a std stream), which stays open and the same for
    // as long as the `AsyncFd` owns the `Socket`.
    Ok(unsafe { AsyncFd::register_with_interest(socket, interest) }?)
}

/// The reader's descriptor, registered with the poller only while the reader waits for input.
enum ReadSide {
    Registered(AsyncFd<Socket>),
    Unregistered(Socket),
    /// Only if (de)registering failed; the connection then ends.
    Gone,
}

impl ReadSide {
    /// Stops readiness events for this socket: the reader is deliberately not reading.
    fn unregister(&mut self) {
        if let ReadSide::Registered(_) = self {
            if let ReadSide::Registered(fd) = std::mem::replace(self, ReadSide::Gone) {
                *self = ReadSide::Unregistered(fd.into_inner());
            }
        }
    }

    /// Reads what has arrived, without waiting: `Ok(None)` if nothing has.
    fn try_recv(&self, buf: &mut BytesMut) -> std::io::Result<Option<usize>> {
        let socket = match self {
            ReadSide::Registered(fd) => fd.get_ref(),
            ReadSide::Unregistered(s) => s,
            ReadSide::Gone => return Err(std::io::ErrorKind::NotConnected.into()),
        };
        match socket.recv_into(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for input (registered meanwhile) and reads it.
    async fn recv(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let buffered = match self {
            ReadSide::Registered(fd) => fd.get_ref().has_buffered_input(),
            ReadSide::Unregistered(s) => s.has_buffered_input(),
            ReadSide::Gone => false,
        };
        if buffered {
            if let Some(n) = self.try_recv(buf)? {
                return Ok(n);
            }
        }
        if let ReadSide::Unregistered(_) = self {
            if let ReadSide::Unregistered(s) = std::mem::replace(self, ReadSide::Gone) {
                *self = ReadSide::Registered(register(s, Interest::READABLE)?);
            }
        }
        let ReadSide::Registered(fd) = self else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        loop {
            let mut ready = fd.readable().await?;
            match ready.try_io(|fd| fd.get_ref().recv_draining(buf)) {
                Ok(Ok((n, drained))) => {
                    // The next read would only say EWOULDBLOCK: wait for the next readiness
                    // instead (a system call saved per wake-up, per chassis of a farm). Input
                    // that arrived meanwhile is not lost: tokio clears only the readiness this
                    // guard saw.
                    if drained {
                        ready.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
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
    pending: Mutex<Option<HashMap<u64, Pending, BuildHasherDefault<IdHash>>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    close_requested: Notify,
    close_reason: Mutex<Option<String>>,
    /// Set when `_Server` said this server is no longer usable (leadership lost).
    pub(crate) unusable: AtomicBool,
    server_watch: Mutex<Option<ServerWatch>>,
    shared: Arc<Shared>,
}

/// Opens the socket for `remote`: one descriptor for the reader, one for writing. An `ssl:`
/// remote needs `tls` and is handshaken here, so a refused certificate fails the open.
pub(crate) async fn open(remote: &Remote, tls: Option<&TlsConfig>) -> Result<(Socket, Socket)> {
    let io = |source: std::io::Error| Error::Connect {
        remote: remote.to_string(),
        source,
    };
    let socket = match remote {
        Remote::Unix(path) => Socket::Unix(
            tokio::net::UnixStream::connect(path)
                .await
                .and_then(|s| s.into_std())
                .map_err(io)?,
        ),
        Remote::Tcp { host, port } => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(io)?;
            s.set_nodelay(true).map_err(io)?;
            Socket::Tcp(s.into_std().map_err(io)?)
        }
        Remote::Ssl { host, port } => {
            let Some(tls) = tls else {
                return Err(Error::TlsConfig {
                    reason: format!(
                        "{remote} is an ssl: remote, but no private key, certificate and CA certificate were given"
                    ),
                });
            };
            let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(io)?;
            s.set_nodelay(true).map_err(io)?;
            Socket::Tls(tls.handshake(host, s, &remote.to_string()).await?)
        }
    };
    Ok((socket.try_clone().map_err(io)?, socket))
}

impl Connection {
    /// Starts the reader and writer tasks on an open socket. The handle resolves to the reason
    /// the connection ended.
    pub(crate) fn start(
        remote: Remote,
        read: Socket,
        write: Socket,
        shared: Arc<Shared>,
        probe: Option<Duration>,
        max_message_bytes: usize,
    ) -> (Arc<Connection>, JoinHandle<String>) {
        let conn = Arc::new(Connection {
            remote,
            outbox: Mutex::new(Outbox {
                bytes: Vec::new(),
                written: 0,
                open: true,
                blocked: false,
                socket: Some(write),
            }),
            outbox_ready: Notify::new(),
            pending: Mutex::new(Some(HashMap::default())),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            close_requested: Notify::new(),
            close_reason: Mutex::new(None),
            unusable: AtomicBool::new(false),
            server_watch: Mutex::new(None),
            shared,
        });
        let writer = tokio::spawn(write_loop(conn.clone()));
        let reader = tokio::spawn(read_loop(conn.clone(), read, probe, max_message_bytes, writer));
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
    pub(crate) fn send<P: RequestParams + ?Sized>(
        &self,
        method: &str,
        params: &P,
        action: ReplyAction,
    ) -> std::result::Result<oneshot::Receiver<Result<Reply>>, NotSent> {
        let (tx, rx) = oneshot::channel();
        self.send_all(method, [(params, action, Completion::One(tx))])?;
        Ok(rx)
    }

    /// Queues requests of one method together: registered and encoded under one lock, written
    /// with one system call. All are queued or none (`NotSent`); one that cannot be encoded
    /// gets its error through its completion while the others still go.
    pub(crate) fn send_all<'a, P: RequestParams + ?Sized + 'a>(
        &self,
        method: &str,
        requests: impl IntoIterator<Item = (&'a P, ReplyAction, Completion)>,
    ) -> std::result::Result<(), NotSent> {
        let name = method_name(method);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = pending.as_mut() else {
            return Err(NotSent);
        };
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if !outbox.open {
            return Err(NotSent);
        }
        // Registered before their bytes can reach the server, so every reply finds its
        // request; the reader cannot fail them before they are queued (we hold the pending lock).
        for (params, action, reply) in requests {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let start = outbox.bytes.len();
            if let Err(e) = params.write_request(&mut outbox.bytes, id, method) {
                outbox.bytes.truncate(start);
                reply.send(Err(e));
                continue;
            }
            map.insert(
                id,
                Pending {
                    method: name.clone(),
                    action,
                    reply,
                },
            );
        }
        self.write_now(&mut outbox);
        Ok(())
    }

    /// Queues bytes that expect no reply (our answers to the server, our probe).
    fn queue(&self, encode: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if !outbox.open {
            return;
        }
        let start = outbox.bytes.len();
        if !encode(&mut outbox.bytes) {
            outbox.bytes.truncate(start);
            return;
        }
        self.write_now(&mut outbox);
    }

    /// Writes what the socket takes now, on the caller's own thread (no task hop); when the
    /// socket is full, the writer task is woken to wait for room.
    fn write_now(&self, outbox: &mut Outbox) {
        if outbox.blocked {
            return;
        }
        match outbox.flush() {
            Ok(()) if outbox.blocked => self.outbox_ready.notify_one(),
            Ok(()) => {}
            Err(e) => {
                outbox.open = false;
                self.close(&format!("write failed: {e}"));
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub(crate) async fn request<P: RequestParams + ?Sized>(
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
        {
            let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            outbox.open = false;
            if let Some(socket) = outbox.socket.take() {
                socket.shutdown();
            }
            outbox.bytes = Vec::new();
        }
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        let remote = self.remote.to_string();
        for (_, p) in pending.into_iter().flatten() {
            let err = match p.action {
                ReplyAction::Transact { database, .. } => Error::OutcomeUnknown {
                    database: database.to_string(),
                    remote: remote.clone(),
                },
                _ => Error::Disconnected { remote: remote.clone() },
            };
            let _ = p.reply.send(Err(err));
        }
    }

    /// How many requests wait for their replies.
    fn owed(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |m| m.len())
    }

    fn take_pending(&self, id: u64) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|m| m.remove(&id))
    }

    /// Hands the results of a plain-layout reply to the typed `transact` waiting for `id`;
    /// gives them back if that is not what waits (the frame then takes the general path).
    fn complete_typed_transact(&self, id: u64, results: Vec<OperationResult>) -> Option<Vec<OperationResult>> {
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let map = pending.as_mut()?;
            match map.get(&id) {
                Some(Pending {
                    action: ReplyAction::Transact { typed: true, .. },
                    ..
                }) => map.remove(&id),
                _ => None,
            }
        };
        match pending {
            Some(p) => {
                p.reply.send(Ok(Reply::Results(results)));
                None
            }
            None => Some(results),
        }
    }

    fn handle(&self, frame: &[u8], at: Instant) -> Result<()> {
        // Most frames are successful replies, in the one layout ovsdb-server writes them.
        if let Some((id, result)) = plain_response(frame) {
            self.handle_response(id, Some(result), None, at);
            return Ok(());
        }
        // A notification other clients sharing the cache received too: decoded once for all.
        let mut shared_key = None;
        if let Some(cache) = self.shared.update_cache() {
            match cache.lookup(frame) {
                Lookup::Hit(update) => {
                    if let Some(replica) = self.filtered_monitor(&update.monitor_id) {
                        self.apply_shared_update(&replica, &update, at);
                        return Ok(());
                    }
                }
                Lookup::DecodeShared(key, text) => shared_key = Some((key, text)),
                Lookup::Own => {}
            }
        }
        let msg = Incoming::parse(frame)?;
        match (msg.method, msg.id) {
            (Some(method), None) => self.handle_notification(&method, msg.params, shared_key, at),
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
                    self.handle_response(id, msg.result.map(RawValue::get), msg.error, at);
                }
                Ok(())
            }
            (None, None) => Err(Error::Decode("JSON-RPC message with neither method nor id".into())),
        }
    }

    fn handle_response(&self, id: u64, result: Option<&str>, error: Option<Json>, at: Instant) {
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
        let result = result.unwrap_or("null");
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

    fn handle_notification(
        &self,
        method: &str,
        params: Option<&RawValue>,
        shared_key: Option<(FrameKey, Arc<[u8]>)>,
        at: Instant,
    ) -> Result<()> {
        let params = params.map(|p| p.get()).unwrap_or("[]");
        let bad = |e: serde_json::Error| Error::Decode(format!("{method} notification: {e}"));
        let notification = match method {
            "update" => Some(MonitorMethod::Plain),
            "update2" => Some(MonitorMethod::Cond),
            "update3" => Some(MonitorMethod::CondSince),
            _ => None,
        };
        if let Some(notification) = notification {
            if let (Some(key), Some(cache)) = (shared_key, self.shared.update_cache()) {
                if let Some(replica) = leading_monitor_id(params).and_then(|id| self.filtered_monitor(id)) {
                    let (key, text) = key;
                    let update = cache.decode_shared(key, text, notification, params).map_err(bad)?;
                    self.apply_shared_update(&replica, &update, at);
                    return Ok(());
                }
            }
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
            "monitor_canceled" => {
                // The server dropped one of our monitors (its database was converted to a new
                // schema, or removed). Starting it again is what a reconnect does already, with
                // the schema re-read and a full resync if the history did not survive.
                let ids: Vec<Json> = serde_json::from_str(params).map_err(bad)?;
                let Some(id) = ids.first() else {
                    return Ok(());
                };
                let ours = self
                    .server_watch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_some_and(|w| &w.replica.monitor_id == id)
                    || id.as_str().and_then(|id| self.shared.monitor(id)).is_some();
                if ours {
                    self.shared.forget_schemas();
                    tracing::info!(remote = %self.remote, monitor = %id, "the server cancelled a monitor; reconnecting to restart it");
                    self.close(&format!(
                        "the server cancelled monitor {id} (its database was converted or removed); reconnecting"
                    ));
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

    /// The filtered replica monitor `id` feeds (`None`: the `_Server` watch, an unfiltered or
    /// unknown monitor): the only kind a shared decoded update may be applied to.
    fn filtered_monitor(&self, id: &str) -> Option<Arc<ReplicaShared>> {
        let replica = self.shared.monitor(id)?;
        let watch = self.server_watch.lock().unwrap_or_else(|p| p.into_inner());
        if watch
            .as_ref()
            .is_some_and(|w| w.replica.monitor_id.as_str() == Some(id))
        {
            return None;
        }
        drop(watch);
        replica.filter.is_some().then_some(replica)
    }

    /// Applies a notification decoded once for every client sharing the cache.
    fn apply_shared_update(&self, replica: &Arc<ReplicaShared>, update: &SharedUpdate, at: Instant) {
        let to_fetch = replica.apply_shared(&update.tables, at);
        replica.set_last_txn_id(update.txn_id);
        self.send_fetch(replica, to_fetch);
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
        let _ = self.send("transact", &txn, action);
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

/// Writes what callers could not: woken when the socket was full, waits for room (its own
/// descriptor registered with the poller meanwhile), writes, and unregisters again.
async fn write_loop(conn: Arc<Connection>) {
    loop {
        conn.outbox_ready.notified().await;
        if let Err(e) = write_when_writable(&conn).await {
            conn.outbox.lock().unwrap_or_else(|p| p.into_inner()).open = false;
            conn.close(&format!("write failed: {e}"));
            return;
        }
    }
}

async fn write_when_writable(conn: &Connection) -> std::io::Result<()> {
    let socket = {
        let outbox = conn.outbox.lock().unwrap_or_else(|p| p.into_inner());
        match &outbox.socket {
            Some(s) if outbox.blocked => s.try_clone()?,
            _ => return Ok(()),
        }
    };
    let fd = register(socket, Interest::WRITABLE)?;
    loop {
        fd.writable().await?.clear_ready();
        let mut outbox = conn.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox.blocked = false;
        conn.write_now(&mut outbox);
        if !outbox.blocked || !outbox.open {
            return Ok(());
        }
    }
}

async fn read_loop(
    conn: Arc<Connection>,
    read: Socket,
    probe: Option<Duration>,
    max_message_bytes: usize,
    writer: JoinHandle<()>,
) -> String {
    let reason = read_messages(&conn, read, probe, max_message_bytes).await;
    conn.shut();
    writer.abort();
    tracing::debug!(remote = %conn.remote, %reason, "connection closed");
    reason
}

async fn read_messages(conn: &Connection, read: Socket, probe: Option<Duration>, max_message_bytes: usize) -> String {
    let mut input = ReadSide::Unregistered(read);
    let mut framer = Framer::with_capacity(READ_MIN).max_frame_bytes(max_message_bytes);
    let mut probe_sent = false;
    let mut silent_since = Instant::now();
    // A message several times READ_MIN grew the buffer: shrink it once that message is handled
    // (a schema or a monitor's initial rows must not stay reserved for the connection's life).
    let mut shrink = false;
    let mut coalesce = false;
    loop {
        // Inside a message, read as much of it as has arrived (up to READ_MAX at once);
        // between messages, into the small buffer.
        let want = framer.pending_bytes().clamp(READ_MIN, READ_MAX);
        let buf = framer.buffer_mut();
        if buf.capacity() - buf.len() < want / 2 {
            buf.reserve(want);
        }
        if coalesce {
            input.unregister();
        }
        let idle = probe.unwrap_or(Duration::from_secs(86_400 * 365));
        let read_next = async {
            if coalesce {
                tokio::time::sleep(COALESCE_DELAY).await;
                if let Some(n) = input.try_recv(framer.buffer_mut())? {
                    return Ok(n);
                }
            }
            input.recv(framer.buffer_mut()).await
        };
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
            r = tokio::time::timeout(idle, read_next) => r,
        };
        let n = match n {
            // A server owing us replies may be busy computing one (a big initial dump takes
            // seconds, and it answers echo only afterwards): give it a longer grace.
            Err(_) if probe_sent && conn.owed() > 0 && silent_since.elapsed() < BUSY_SERVER_GRACE.max(idle * 2) => {
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
        probe_sent = false;
        let at = Instant::now();
        silent_since = at;
        loop {
            // Most messages of a busy writer are plain transact replies: read them where they
            // lie, without framing or copying them first.
            if let Some(bytes) = framer.frame_start() {
                // An update other clients sharing the cache decoded already: recognised where
                // it lies, neither scanned for its end nor parsed.
                match conn.shared.update_cache().map(|c| c.recognize(bytes)) {
                    Some(Recognized::Whole(len, update)) => {
                        if let Some(replica) = conn.filtered_monitor(&update.monitor_id) {
                            conn.apply_shared_update(&replica, &update, at);
                            shrink |= len > 2 * READ_MIN;
                            framer.skip(len);
                            continue;
                        }
                    }
                    // The server wrote the whole message at once: the rest is most likely in
                    // the socket already. Read it without waiting (else frame as usual: a
                    // shorter message that merely starts the same must not wait for bytes).
                    Some(Recognized::Partial(len)) if len <= max_message_bytes => {
                        let buf = framer.buffer_mut();
                        buf.reserve(len - buf.len());
                        if let Ok(Some(n @ 1..)) = input.try_recv(framer.buffer_mut()) {
                            tracing::trace!(n, "read the rest of a recognised update");
                            continue;
                        }
                    }
                    _ => {}
                }
                let bytes = framer.frame_start().unwrap_or_default();
                if let Some((id, results, len)) = plain_response_at(bytes, plain_results_prefix) {
                    if conn.complete_typed_transact(id, results).is_none() {
                        shrink |= len > 2 * READ_MIN;
                        framer.skip(len);
                        continue;
                    }
                }
            }
            let frame = match framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return format!("protocol error: {e}"),
            };
            shrink |= frame.len() > 2 * READ_MIN;
            let handled = conn.handle(&frame, at);
            if let Err(e) = handled {
                return format!("protocol error: {e}");
            }
        }
        if shrink {
            framer.shrink_to(READ_MIN);
            shrink = false;
        }
        coalesce = n < COALESCE_READ_BYTES && conn.owed() >= COALESCE_MIN_OWED;
    }
}
