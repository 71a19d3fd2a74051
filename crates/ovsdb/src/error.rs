//! The one error type of this crate.

use serde_json::Value as Json;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to an OVSDB server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote string such as `tcp:127.0.0.1:6641` could not be parsed.
    #[error("invalid OVSDB remote {remote:?}: {reason} (expected unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT or tcp:[IPv6]:PORT, comma-separated for several)")]
    InvalidRemote { remote: String, reason: String },
    /// Could not connect to any remote.
    #[error("cannot connect to OVSDB server at {remote}: {source}")]
    Connect {
        remote: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS files of an `ssl:` remote are missing, unreadable or do not fit together
    /// (nothing was sent).
    #[error("TLS setup: {reason}")]
    TlsConfig { reason: String },
    /// The TLS handshake with a server failed: certificates refused on either side, or the
    /// peer does not speak TLS. Retrying does not help until a certificate or CA changes.
    #[error("TLS handshake with {remote} failed: {reason}")]
    Tls { remote: String, reason: String },
    /// Connected, but the server is not usable for this client (e.g. a RAFT follower with leader_only).
    #[error("OVSDB server at {remote} is not usable: {reason}")]
    NotUsable { remote: String, reason: String },
    /// The connection closed, and reconnect is off (or the client was closed).
    #[error("connection to OVSDB server {remote} closed")]
    Disconnected { remote: String },
    /// The connection dropped after a transaction was sent and before its reply came:
    /// it may or may not have committed. Never re-sent automatically.
    #[error("outcome unknown: the connection to {remote} dropped before the reply to a transaction on {database} arrived; it may or may not have committed")]
    OutcomeUnknown { database: String, remote: String },
    /// The server answered a JSON-RPC request with an error.
    #[error("OVSDB server refused {method}: {error}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rpc {
        method: String,
        error: String,
        details: Option<String>,
    },
    /// One operation of a transaction failed; the whole transaction was rolled back.
    #[error("transaction on {database} failed at operation {op_index} ({op_summary}): {error}")]
    Transaction {
        database: String,
        op_index: usize,
        op_summary: String,
        error: OperationError,
    },
    /// Client-side check against the schema failed; nothing was sent.
    #[error("{0}")]
    Schema(String),
    /// Malformed data from the server (or in a test vector).
    #[error("malformed OVSDB data: {0}")]
    Decode(String),
    /// Waiting for something took longer than allowed.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: std::time::Duration },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// An RFC 7047 operation error, one variant per error string, keeping the server's `details`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    #[error("referential integrity violation{}", fmt_details(.0))]
    ReferentialIntegrityViolation(Option<String>),
    #[error("constraint violation{}", fmt_details(.0))]
    ConstraintViolation(Option<String>),
    #[error("resources exhausted{}", fmt_details(.0))]
    ResourcesExhausted(Option<String>),
    #[error("I/O error{}", fmt_details(.0))]
    IoError(Option<String>),
    #[error("duplicate uuid-name{}", fmt_details(.0))]
    DuplicateUuidName(Option<String>),
    #[error("domain error{}", fmt_details(.0))]
    DomainError(Option<String>),
    #[error("range error{}", fmt_details(.0))]
    RangeError(Option<String>),
    #[error("timed out{}", fmt_details(.0))]
    TimedOut(Option<String>),
    #[error("not supported{}", fmt_details(.0))]
    NotSupported(Option<String>),
    #[error("aborted{}", fmt_details(.0))]
    Aborted(Option<String>),
    #[error("not owner{}", fmt_details(.0))]
    NotOwner(Option<String>),
    /// Any error string RFC 7047 does not list (ovsdb-server has a few more, e.g. "syntax error").
    #[error("{error}{}", fmt_details(.details))]
    Other { error: String, details: Option<String> },
}

fn fmt_details(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl OperationError {
    /// Builds from a result object `{"error": ..., "details": ...}`.
    pub fn from_json(j: &Json) -> Option<Self> {
        let error = j.get("error")?.as_str()?.to_owned();
        let details = j.get("details").and_then(|d| d.as_str()).map(str::to_owned);
        Some(match error.as_str() {
            "referential integrity violation" => Self::ReferentialIntegrityViolation(details),
            "constraint violation" => Self::ConstraintViolation(details),
            "resources exhausted" => Self::ResourcesExhausted(details),
            "I/O error" => Self::IoError(details),
            "duplicate uuid-name" => Self::DuplicateUuidName(details),
            "domain error" => Self::DomainError(details),
            "range error" => Self::RangeError(details),
            "timed out" => Self::TimedOut(details),
            "not supported" => Self::NotSupported(details),
            "aborted" => Self::Aborted(details),
            "not owner" => Self::NotOwner(details),
            _ => Self::Other { error, details },
        })
    }
}
