//! The one error type of this crate.

use std::time::Duration;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong emulating chassis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A chassis spec the SB would refuse, or that collides with another.
    #[error("invalid emulated chassis {chassis:?}: {why}")]
    InvalidSpec { chassis: String, why: String },
    /// Talking to the Southbound database failed.
    #[error("emulated chassis {chassis}: {source}")]
    Ovsdb {
        chassis: String,
        #[source]
        source: Box<ovsdb::Error>,
    },
    /// The Southbound database could not be reached or read (before any chassis started).
    #[error("Southbound database at {remote}: {source}")]
    Southbound {
        remote: String,
        #[source]
        source: Box<ovsdb::Error>,
    },
    /// The chassis task has ended (stopped, or the farm was dropped).
    #[error("emulated chassis {chassis} is not running")]
    Stopped { chassis: String },
    /// No chassis of that name in this farm.
    #[error("no emulated chassis named {0:?} in this farm")]
    UnknownChassis(String),
    /// Waiting for something took longer than allowed.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}
