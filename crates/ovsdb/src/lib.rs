//! An OVSDB client: RFC 7047 plus the Open vSwitch extensions (`monitor_cond`,
//! `monitor_cond_since`, update2/update3, `_Server`, leader-only, relays).
//!
//! ```no_run
//! use std::time::Duration;
//! use ovsdb::{Client, ClientOptions, Condition, Error, MonitorRequest, Row, RowEvent, TableMonitor, Transaction};
//! # async fn demo() -> ovsdb::Result<()> {
//! // Any member of a RAFT cluster; only the leader is used, and the client follows it.
//! let options = ClientOptions::new("tcp:127.0.0.1:6641,tcp:127.0.0.1:6643,tcp:127.0.0.1:6645")?
//!     .database("OVN_Northbound")
//!     .leader_only(true);
//! let client = Client::connect(options).await?;
//! let replica = client
//!     .monitor("OVN_Northbound", MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
//!     .await?;
//! let mut events = replica.subscribe();
//!
//! let mut txn = Transaction::new("OVN_Northbound");
//! let sw0 = txn.insert("Logical_Switch", Row::new().with("name", "sw0"));
//! match client.transact(txn).await {
//!     Ok(result) => assert!(result.inserted(&sw0).is_some()),
//!     // The connection dropped before the reply: sw0 may or may not exist. Look before retrying.
//!     Err(Error::OutcomeUnknown { .. }) => {}
//!     Err(e) => return Err(e),
//! }
//! // The reply came after the update it caused: the replica already has sw0.
//! let (_uuid, _row, _seen_at) = replica
//!     .wait_for("Logical_Switch", |r| r.get("name").and_then(|v| v.as_str()) == Some("sw0"),
//!               Duration::from_secs(5))
//!     .await?;
//! if let Ok(RowEvent::Insert { new, at, .. }) = events.try_recv() {
//!     let _latency = at.elapsed(); // `at`: when the update was read off the socket
//!     assert_eq!(new.get("name").and_then(|v| v.as_str()), Some("sw0"));
//! }
//! let empty = replica.find("Logical_Switch", |r| r.get("ports").is_some_and(|p| p.is_empty()));
//! assert!(!empty.is_empty());
//! # let _ = Condition::eq("name", "sw0");
//! # Ok(()) }
//! ```
//!
//! See `docs/ovsdb-client.md` for the reconnect, leader-only and outcome-unknown rules.
//!
//! # Layout
//! - [`remote`]: where a server listens (`unix:`, `tcp:`, `ssl:`, lists); [`tls`]: the
//!   certificates of `ssl:` and the encrypted socket.
//! - [`datum`]: atoms, sets, maps, rows in RFC 7047 notation; [`Str`], the inline short string.
//! - [`schema`]: schemas and client-side checks.
//! - [`condition`], [`txn`]: `where` clauses, operations, transactions as values.
//! - [`jsonrpc`]: framing of JSON-RPC messages on a byte stream (no I/O); `encode` (private):
//!   the hand-written JSON of outgoing requests.
//! - [`client`]: every RPC, reconnect, leader-only; `connection` (private): the socket's reader
//!   and writer tasks and the requests waiting for replies.
//! - [`monitor`], [`replica`], [`filter`]: what to monitor, decoded updates, the in-memory copy
//!   and which rows a filtered copy keeps.
//! - [`lock`]: OVSDB locks.
//! - [`dump`]: one consistent whole-database snapshot, in the reference dumps' JSON layout.
//!
//! Must not know: OVN (or any schema's) table names, processes, YAML. Never prints; logs via `tracing`.

pub mod client;
pub mod condition;
mod connection;
pub mod datum;
#[cfg(test)]
mod decoder_props;
pub mod dump;
mod encode;
pub mod error;
pub mod filter;
pub mod jsonrpc;
pub mod lock;
pub mod monitor;
pub mod remote;
pub mod replica;
pub mod schema;
pub mod tls;
pub mod txn;
pub mod update_cache;
mod words;

pub use client::{Client, ClientOptions, ConnectionEvent};
/// `format!` into a [`Str`]: short results (most names) are built without an allocation.
pub use compact_str::format_compact as format_str;
pub use condition::{Condition, Function};
pub use datum::{Atom, Row, Str, Uuid, Value};
pub use error::{Error, OperationError, Result};
pub use filter::RowFilter;
pub use lock::Lock;
pub use monitor::{MonitorMethod, MonitorRequest, RowChange, TableMonitor, TableUpdates};
pub use remote::Remote;
pub use replica::{Replica, RowEvent, Subscription, Tables};
pub use schema::{DatabaseSchema, NamedMap};
pub use tls::TlsConfig;
pub use txn::{Mutation, Mutator, Operation, OperationResult, Transaction, TransactionResult};
pub use update_cache::{UpdateCache, UpdateCacheStats};
