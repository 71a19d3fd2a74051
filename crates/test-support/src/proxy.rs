//! A unix-socket proxy that makes a real `ovsdb-server` look older than it is: JSON-RPC
//! requests for chosen methods are answered by the proxy with ovsdb-server's own
//! `"unknown method"` error instead of being forwarded, so a client's protocol fallbacks
//! (`monitor_cond_since` → `monitor_cond` → `monitor`) can be tested against the real server.
//!
//! ```no_run
//! use test_support::{MethodFilterProxy, OvsdbServer, TempDir};
//! let server = OvsdbServer::standalone("my_test", "/usr/share/ovn/ovn-nb.ovsschema");
//! let dir = TempDir::new("my_test_proxy");
//! let proxy = MethodFilterProxy::start(server.socket_path(), &dir.path().join("proxy.sock"), &["monitor_cond_since"]);
//! let _remote = proxy.remote(); // "unix:…/proxy.sock": connect the client here
//! proxy.set_accepting(false); // reconnecting clients are closed at once, as by a dead server
//! proxy.drop_connections(); // the client sees the server go away
//! proxy.set_refused(&["monitor_cond_since", "monitor_cond"]); // an even older server
//! proxy.set_accepting(true); // the client reconnects to it
//! assert!(proxy.refused().iter().all(|m| m == "monitor_cond_since"));
//! ```
//!
//! # Behaviour
//! - One upstream connection per accepted client connection, opened when the client connects;
//!   if the upstream cannot be reached the client connection is closed at once.
//! - Server → client bytes are copied unchanged, a whole message at a time, so the proxy's own
//!   replies never land inside one of the server's.
//! - Client → server bytes are cut into JSON values by scanning brackets (aware of strings and
//!   escapes, so no JSON parser is needed to find the ends). A value that is a request (an
//!   object with a non-null `id`) whose `method` is refused is answered with exactly what
//!   ovsdb-server 3.1 sends for a method it lacks, `{"id":<id>,"error":"unknown method"}`;
//!   everything else is forwarded byte for byte. Notifications are always forwarded (the
//!   server ignores unknown ones, as an old server would).
//! - When either side of a connection closes, both are closed.
//! - [`MethodFilterProxy::set_accepting`]`(false)` closes new clients on arrival, so a test can
//!   hold a reconnecting client off while it changes the database.
//! - [`MethodFilterProxy::set_refused`] changes the refused methods for every request read
//!   afterwards, on live connections too; [`MethodFilterProxy::refused`] lists what was refused.
//! - [`MethodFilterProxy::cut_next_transaction`] closes the connection that carries the next
//!   `transact`, before forwarding it or instead of relaying its reply: a transaction in
//!   flight on a server that died, lost or committed;
//!   [`MethodFilterProxy::cut_next_transaction_writing`] the next one holding a given text.
//! - Threads block on their sockets (no polling); [`MethodFilterProxy::drop_connections`] and
//!   `Drop` shut the sockets down, which ends every blocked read, then join the threads. `Drop`
//!   also removes the listening socket's file.
//!
//! Must not know: the `ovsdb` crate, any schema, which methods a client will try.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::Value as Json;

/// What ovsdb-server answers to a request for a method it does not implement (the `error`
/// member is a bare string, and there is no `result` member).
const UNKNOWN_METHOD: &str = "unknown method";

/// Size of one socket read; messages larger than this are reassembled by [`Framer`].
const READ_CHUNK: usize = 64 * 1024;

/// A running proxy; see the module documentation. Stops (threads joined, socket file
/// removed) when dropped.
pub struct MethodFilterProxy {
    listen_path: PathBuf,
    listener: Arc<UnixListener>,
    stopping: Arc<AtomicBool>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// State the acceptor thread and the proxy handle both reach.
struct Shared {
    upstream: PathBuf,
    /// Replaced by [`MethodFilterProxy::set_refused`].
    refused_methods: Mutex<Vec<String>>,
    connections: Mutex<Vec<ProxiedConnection>>,
    refused_log: Mutex<Vec<String>>,
    /// Cleared by [`MethodFilterProxy::set_accepting`]: new clients are closed on arrival.
    accepting: AtomicBool,
    /// Set by [`MethodFilterProxy::cut_next_transaction`]: `Some(true)` cuts after the server
    /// got the next `transact`, `Some(false)` before.
    cut_next_transact: Mutex<Option<bool>>,
    /// Set by [`MethodFilterProxy::cut_next_transaction_writing`]: only a `transact` whose
    /// text holds this is cut.
    cut_only_containing: Mutex<Option<String>>,
    /// Ids of forwarded `transact` requests whose replies end their connection instead.
    cut_reply_ids: Mutex<Vec<Json>>,
}

/// One client connection and its upstream connection, with the two threads copying between them.
struct ProxiedConnection {
    client: UnixStream,
    upstream: UnixStream,
    threads: Vec<JoinHandle<()>>,
}

impl ProxiedConnection {
    fn shut_down(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }

    fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn to_strings(methods: &[&str]) -> Vec<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MethodFilterProxy {
    /// Listens on `listen_unix_socket` (a stale file there is replaced) and relays each client
    /// connection to the server at `upstream_unix_socket`, refusing requests for the
    /// methods in `refused`. Panics if the socket cannot be bound (a test setup error).
    pub fn start(upstream_unix_socket: &Path, listen_unix_socket: &Path, refused: &[&str]) -> MethodFilterProxy {
        let _ = std::fs::remove_file(listen_unix_socket);
        let listener = UnixListener::bind(listen_unix_socket)
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", listen_unix_socket.display()));
        let listener = Arc::new(listener);
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            upstream: upstream_unix_socket.to_owned(),
            refused_methods: Mutex::new(to_strings(refused)),
            connections: Mutex::new(Vec::new()),
            refused_log: Mutex::new(Vec::new()),
            accepting: AtomicBool::new(true),
            cut_next_transact: Mutex::new(None),
            cut_only_containing: Mutex::new(None),
            cut_reply_ids: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let (listener, stopping, shared) = (listener.clone(), stopping.clone(), shared.clone());
            std::thread::Builder::new()
                .name("proxy-accept".into())
                .spawn(move || accept_loop(&listener, &stopping, &shared))
                .expect("spawn proxy acceptor thread")
        };
        MethodFilterProxy {
            listen_path: listen_unix_socket.to_owned(),
            listener,
            stopping,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The listening socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.listen_path
    }

    /// The OVSDB remote clients connect to: `unix:<listen socket>`.
    pub fn remote(&self) -> String {
        format!("unix:{}", self.listen_path.display())
    }

    /// Closes every current client connection (and its upstream connection), as a server
    /// restart would, and waits for their threads to end. New connections are still accepted.
    pub fn drop_connections(&self) {
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for c in &connections {
            c.shut_down();
        }
        for c in connections {
            c.join();
        }
    }

    /// Refuses `refused` from now on instead of the methods given so far, on current and new
    /// connections alike: a server replaced by an older (or newer) one, seen after a reconnect.
    pub fn set_refused(&self, refused: &[&str]) {
        *lock(&self.shared.refused_methods) = to_strings(refused);
    }

    /// `false`: every new client connection is closed as soon as it is accepted, as if the
    /// server were down (a reconnecting client keeps failing); current connections go on.
    /// Together with [`MethodFilterProxy::drop_connections`] this holds a client disconnected
    /// while the test changes the database behind its back.
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.accepting.store(accepting, Ordering::SeqCst);
    }

    /// Cuts the connection that carries the next `transact` request, as a server killed with a
    /// transaction in flight would: `after_server` true forwards the request and closes the
    /// connection instead of relaying its reply (the transaction committed, the client cannot
    /// know); false closes it without forwarding the request (nothing committed). Once.
    pub fn cut_next_transaction(&self, after_server: bool) {
        *lock(&self.shared.cut_only_containing) = None;
        *lock(&self.shared.cut_next_transact) = Some(after_server);
    }

    /// As [`MethodFilterProxy::cut_next_transaction`], for the next `transact` whose request
    /// text holds `text` (e.g. a table name): the others of an action pass.
    pub fn cut_next_transaction_writing(&self, after_server: bool, text: &str) {
        *lock(&self.shared.cut_only_containing) = Some(text.to_owned());
        *lock(&self.shared.cut_next_transact) = Some(after_server);
    }

    /// Number of client connections currently relayed.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.connections)
            .iter()
            .filter(|c| !c.is_finished())
            .count()
    }

    /// The methods of the requests the proxy refused so far, oldest first.
    pub fn refused(&self) -> Vec<String> {
        lock(&self.shared.refused_log).clone()
    }
}

impl Drop for MethodFilterProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor blocked in accept(2): on Linux, shutting a listening socket down
        // makes accept fail; a connection of our own is the fallback wake-up.
        // SAFETY: shutdown(2) on a descriptor this struct keeps open; no memory is touched.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Some(acceptor) = self.acceptor.take() {
            if !acceptor.is_finished() {
                let _ = UnixStream::connect(&self.listen_path);
            }
            let _ = acceptor.join();
        }
        self.drop_connections();
        let _ = std::fs::remove_file(&self.listen_path);
    }
}

fn accept_loop(listener: &UnixListener, stopping: &AtomicBool, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let client = match accepted {
            Ok((client, _)) => client,
            // EINTR or a client that gave up before being accepted: keep serving. Anything
            // persistent ends the loop rather than spinning on it.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        if !shared.accepting.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let mut connections = lock(&shared.connections);
        let (finished, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *connections)
            .into_iter()
            .partition(ProxiedConnection::is_finished);
        *connections = live;
        for c in finished {
            c.join();
        }
        // No upstream: dropping the client stream closes it, as a dead server would.
        if let Some(c) = relay(client, shared) {
            connections.push(c);
        }
    }
}

/// Starts the two copying threads of one client connection.
fn relay(client: UnixStream, shared: &Arc<Shared>) -> Option<ProxiedConnection> {
    let upstream = UnixStream::connect(&shared.upstream).ok()?;
    // Every handle is made before any thread starts, so a failure leaves no thread behind.
    let from_client = client.try_clone().ok()?;
    let to_client = client.try_clone().ok()?;
    let client_writer = Arc::new(Mutex::new(client.try_clone().ok()?));
    let to_upstream = upstream.try_clone().ok()?;
    let from_upstream = upstream.try_clone().ok()?;
    let to_server = {
        let (client_writer, shared) = (client_writer.clone(), shared.clone());
        std::thread::spawn(move || {
            filter_requests(&from_client, &to_upstream, &client_writer, &shared);
            close_both(&from_client, &to_upstream);
        })
    };
    let shared_for_replies = shared.clone();
    let to_client = std::thread::spawn(move || {
        copy_to_client(&from_upstream, &client_writer, &shared_for_replies);
        close_both(&from_upstream, &to_client);
    });
    Some(ProxiedConnection {
        client,
        upstream,
        threads: vec![to_server, to_client],
    })
}

fn close_both(a: &UnixStream, b: &UnixStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Copies server → client until either side closes. Bytes go out unchanged, but only whole
/// messages at a time: a refusal written by the other direction must never land inside one.
fn copy_to_client(mut from_upstream: &UnixStream, client_writer: &Mutex<UnixStream>, shared: &Shared) {
    let mut framer = Framer::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match from_upstream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let pieces = framer.push(&buf[..n]);
        if pieces.is_empty() {
            continue;
        }
        let mut client = lock(client_writer);
        for piece in &pieces {
            if shared.is_cut_reply(piece) || client.write_all(piece.bytes()).is_err() {
                return;
            }
        }
    }
}

/// Forwards client → server JSON values, answering refused requests itself, until either
/// side closes.
fn filter_requests(
    mut from_client: &UnixStream,
    mut to_upstream: &UnixStream,
    client_writer: &Mutex<UnixStream>,
    shared: &Shared,
) {
    let mut framer = Framer::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for piece in framer.push(&buf[..n]) {
            match shared.cut_for(&piece) {
                Some(false) => return,
                Some(true) => {
                    let _ = to_upstream.write_all(piece.bytes());
                    continue;
                }
                None => {}
            }
            let refusal = match &piece {
                Piece::Value(bytes) => shared.refusal_for(bytes),
                Piece::Between(_) => None,
            };
            let written = match refusal {
                Some((method, reply)) => {
                    lock(&shared.refused_log).push(method);
                    lock(client_writer).write_all(reply.as_bytes())
                }
                None => to_upstream.write_all(piece.bytes()),
            };
            if written.is_err() {
                return;
            }
        }
    }
}

impl Shared {
    /// For the `transact` request a cut is armed for: whether to forward it first (the cut
    /// then happens at its reply, whose id is kept).
    fn cut_for(&self, piece: &Piece) -> Option<bool> {
        let Piece::Value(bytes) = piece else { return None };
        let mut armed = lock(&self.cut_next_transact);
        armed.as_ref()?;
        let msg: Json = serde_json::from_slice(bytes).ok()?;
        if msg.get("method").and_then(Json::as_str) != Some("transact") {
            return None;
        }
        if let Some(text) = lock(&self.cut_only_containing).as_deref() {
            if !String::from_utf8_lossy(bytes).contains(text) {
                return None;
            }
        }
        let after_server = armed.take()?;
        if after_server {
            lock(&self.cut_reply_ids).push(msg.get("id")?.clone());
        }
        Some(after_server)
    }

    /// Whether `piece` (from the server) is the reply a cut waits for.
    fn is_cut_reply(&self, piece: &Piece) -> bool {
        let Piece::Value(bytes) = piece else { return false };
        let mut ids = lock(&self.cut_reply_ids);
        if ids.is_empty() {
            return false;
        }
        let Ok(msg) = serde_json::from_slice::<Json>(bytes) else {
            return false;
        };
        let Some(id) = msg.get("id").filter(|_| msg.get("method").is_none()) else {
            return false;
        };
        match ids.iter().position(|i| i == id) {
            Some(k) => {
                ids.remove(k);
                true
            }
            None => false,
        }
    }

    /// For a request that must be refused: its method and the reply to send instead.
    fn refusal_for(&self, value: &[u8]) -> Option<(String, String)> {
        let msg: Json = serde_json::from_slice(value).ok()?;
        let method = msg.get("method")?.as_str()?;
        let id = msg.get("id").filter(|id| !id.is_null())?;
        if !lock(&self.refused_methods).iter().any(|m| m == method) {
            return None;
        }
        let reply = serde_json::json!({"id": id, "error": UNKNOWN_METHOD});
        Some((method.to_owned(), reply.to_string()))
    }
}

/// A run of client bytes: one whole top-level JSON value, or bytes between values
/// (whitespace, or anything that is not an object or array, passed on untouched).
#[derive(Debug, PartialEq)]
enum Piece {
    Value(Vec<u8>),
    Between(Vec<u8>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Value(b) | Piece::Between(b) => b,
        }
    }
}

/// Cuts a byte stream into top-level JSON objects/arrays by counting brackets outside strings.
#[derive(Default)]
struct Framer {
    /// Bytes of the value being read (empty between values).
    partial: Vec<u8>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// Feeds bytes; returns the pieces they complete, in order.
    fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut between = Vec::new();
        for &b in bytes {
            if self.depth == 0 {
                if b == b'{' || b == b'[' {
                    if !between.is_empty() {
                        pieces.push(Piece::Between(std::mem::take(&mut between)));
                    }
                    self.partial.push(b);
                    self.depth = 1;
                } else {
                    between.push(b);
                }
                continue;
            }
            self.partial.push(b);
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        pieces.push(Piece::Value(std::mem::take(&mut self.partial)));
                    }
                }
                _ => {}
            }
        }
        if !between.is_empty() {
            pieces.push(Piece::Between(between));
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pieces: Vec<Piece>) -> Vec<String> {
        pieces
            .into_iter()
            .filter_map(|p| match p {
                Piece::Value(v) => Some(String::from_utf8(v).unwrap()),
                Piece::Between(_) => None,
            })
            .collect()
    }

    #[test]
    fn framer_ignores_brackets_and_escaped_quotes_inside_strings() {
        let tricky = r#"{"id":1,"method":"echo","params":["}{][", "\"}", "\\", {"a":[1,{"b":"\\\"{"}]}]}"#;
        let mut framer = Framer::default();
        assert_eq!(values(framer.push(tricky.as_bytes())), vec![tricky.to_owned()]);
    }

    #[test]
    fn framer_reassembles_values_split_anywhere_and_keeps_every_byte() {
        let stream = concat!(
            r#"{"id":1,"method":"echo","params":["a\"}"]}"#,
            "\n ",
            r#"{"id":null,"method":"update","params":[]}[1,[2]]"#
        );
        for split in 0..stream.len() {
            let mut framer = Framer::default();
            let mut pieces = framer.push(&stream.as_bytes()[..split]);
            pieces.extend(framer.push(&stream.as_bytes()[split..]));
            let rebuilt: Vec<u8> = pieces.iter().flat_map(|p| p.bytes().to_vec()).collect();
            assert_eq!(String::from_utf8(rebuilt).unwrap(), stream, "split at {split}");
            assert_eq!(
                values(pieces),
                vec![
                    r#"{"id":1,"method":"echo","params":["a\"}"]}"#.to_owned(),
                    r#"{"id":null,"method":"update","params":[]}"#.to_owned(),
                    "[1,[2]]".to_owned()
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn only_requests_for_refused_methods_are_refused() {
        let shared = Shared {
            upstream: PathBuf::new(),
            refused_methods: Mutex::new(vec!["monitor_cond".into()]),
            connections: Mutex::new(Vec::new()),
            refused_log: Mutex::new(Vec::new()),
            accepting: AtomicBool::new(true),
            cut_next_transact: Mutex::new(None),
            cut_only_containing: Mutex::new(None),
            cut_reply_ids: Mutex::new(Vec::new()),
        };
        let refusal = shared.refusal_for(br#"{"id":["x",3],"method":"monitor_cond","params":[]}"#);
        assert_eq!(
            refusal,
            Some((
                "monitor_cond".to_owned(),
                r#"{"id":["x",3],"error":"unknown method"}"#.to_owned()
            ))
        );
        for forwarded in [
            &br#"{"id":4,"method":"monitor","params":[]}"#[..],
            br#"{"id":null,"method":"monitor_cond","params":[]}"#,
            br#"{"id":5,"result":{"method":"monitor_cond"},"error":null}"#,
            br#"{"id":6,"method":"monitor_cond""#,
        ] {
            assert_eq!(
                shared.refusal_for(forwarded),
                None,
                "{}",
                String::from_utf8_lossy(forwarded)
            );
        }
    }
}
