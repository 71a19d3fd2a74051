//! An OVSDB client: RFC 7047 plus the Open vSwitch extensions (`monitor_cond`,
//! `monitor_cond_since`, update2/update3, `_Server`, leader-only, relays).
//!
//! ```no_run
//! use ovsdb::{Client, ClientOptions, Condition, MonitorRequest, Row, TableMonitor, Transaction};
//! # async fn demo() -> ovsdb::Result<()> {
//! let client = Client::connect(ClientOptions::new("unix:/run/ovn/ovnnb_db.sock")?).await?;
//! let replica = client
//!     .monitor("OVN_Northbound", MonitorRequest::new().table("Logical_Switch", TableMonitor::all()))
//!     .await?;
//! let mut txn = Transaction::new("OVN_Northbound");
//! txn.insert("Logical_Switch", Row::new().with("name", "sw0"));
//! client.transact(txn).await?;
//! let (_uuid, _row, _at) = replica
//!     .wait_for("Logical_Switch", |r| r.get("name").and_then(|v| v.as_str()) == Some("sw0"),
//!               std::time::Duration::from_secs(5))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`remote`]: where a server listens (`unix:`, `tcp:`, lists).
//! - [`datum`]: atoms, sets, maps, rows in RFC 7047 notation.
//! - [`schema`]: schemas and client-side checks.
//! - [`condition`], [`txn`]: `where` clauses, operations, transactions as values.
//! - `jsonrpc`: framing of JSON-RPC messages on a byte stream (no I/O policy).
//! - [`client`]: the connection task, every RPC, reconnect, leader-only.
//! - [`monitor`], [`replica`]: what to monitor, decoded updates, the in-memory copy.
//! - [`lock`]: OVSDB locks.
//!
//! Must not know: OVN (or any schema's) table names, processes, YAML. Never prints; logs via `tracing`.

pub mod client;
pub mod condition;
mod connection;
pub mod datum;
pub mod dump;
pub mod error;
pub mod jsonrpc;
pub mod lock;
pub mod monitor;
pub mod remote;
pub mod replica;
pub mod schema;
pub mod txn;

pub use client::{Client, ClientOptions, ConnectionEvent};
pub use condition::{Condition, Function};
pub use datum::{Atom, Row, Uuid, Value};
pub use error::{Error, OperationError, Result};
pub use lock::Lock;
pub use monitor::{MonitorMethod, MonitorRequest, RowChange, TableMonitor, TableUpdates};
pub use remote::Remote;
pub use replica::{Replica, RowEvent, Subscription, Tables};
pub use schema::DatabaseSchema;
pub use txn::{Mutation, Mutator, Operation, OperationResult, Transaction, TransactionResult};
