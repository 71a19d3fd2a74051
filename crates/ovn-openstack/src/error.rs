//! The one error type of the Neutron mimic. Every "bad input" variant is raised before any
//! transaction is sent, so the NB (and the mimic's state) are unchanged when one is returned.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such object (by name or id) in the mimic's Neutron state.
    #[error("unknown {kind} {name:?} (create it first; known: {known})")]
    Unknown {
        kind: &'static str,
        name: String,
        known: String,
    },
    /// An argument Neutron would reject with HTTP 400.
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
    /// A subnet CIDR overlapping another subnet of the network (or of the router).
    #[error("CIDR {cidr} overlaps {other_cidr} of subnet {other}; pick a non-overlapping range")]
    CidrOverlap {
        cidr: String,
        other: String,
        other_cidr: String,
    },
    /// No address left in the subnet's allocation pool.
    #[error("no more IP addresses available on subnet {subnet} ({cidr})")]
    SubnetFull { subnet: String, cidr: String },
    /// A requested fixed IP that is taken, or outside the subnet.
    #[error("IP address {ip} {why} on subnet {subnet}")]
    IpUnavailable {
        ip: String,
        subnet: String,
        why: &'static str,
    },
    /// More gateway chassis than Neutron ever schedules (`MAX_GW_CHASSIS`).
    #[error("{requested} gateway chassis requested; Neutron schedules at most {max}")]
    TooManyGatewayChassis { requested: usize, max: usize },
    /// The object is still used (Neutron's 409 Conflict: NetworkInUse, RouterInUse, ...).
    #[error("{what} is in use: {why}")]
    InUse { what: String, why: String },
    /// Waiting for ovn-northd / ovn-controller (e.g. `Logical_Switch_Port.up`) took too long.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: std::time::Duration },
    /// The NB or SB server refused a transaction or went away.
    #[error(transparent)]
    Ovsdb(#[from] ovsdb::Error),
}

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }

    /// Whether the caller's input was at fault (as opposed to the servers).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Ovsdb(_) | Error::Timeout { .. })
    }
}
