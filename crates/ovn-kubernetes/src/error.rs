//! Errors of the ovn-kubernetes mimic.

/// What can go wrong planning or committing a transaction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The NB refused a transaction, or the connection failed.
    #[error("NB transaction failed: {0}")]
    Ovsdb(#[from] ovsdb::Error),
    /// A parameter the tests cannot run with (refused before anything is written).
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    /// An operation on an object the mimic has not created (a call out of order).
    #[error("unknown {kind} {name:?}: create it first")]
    Unknown { kind: &'static str, name: String },
    /// A hook (port binding, readiness check) failed.
    #[error("{0}")]
    Hook(String),
}

impl Error {
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
    /// True for input the mimic refuses before writing anything.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Invalid { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
