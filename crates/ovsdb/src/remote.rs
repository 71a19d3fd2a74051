//! Where an OVSDB server listens: `unix:PATH`, `tcp:HOST:PORT`, `tcp:[IPv6]:PORT`.
//!
//! A remote list is comma-separated, as OVS accepts it (`tcp:127.0.0.1:6641,tcp:127.0.0.1:6643`).
//! `ssl:` parses but is refused at connect time until TLS support lands.
//!
//! Must not know: which database lives behind a remote.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// One OVSDB server address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Remote {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
    Ssl { host: String, port: u16 },
}

impl Remote {
    /// Parses one remote (no commas).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidRemote {
            remote: s.to_owned(),
            reason: reason.to_owned(),
        };
        let s_trim = s.trim();
        if let Some(path) = s_trim.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Remote::Unix(PathBuf::from(path)));
        }
        let (kind, rest) = if let Some(r) = s_trim.strip_prefix("tcp:") {
            ("tcp", r)
        } else if let Some(r) = s_trim.strip_prefix("ssl:") {
            ("ssl", r)
        } else if s_trim.starts_with("punix:") || s_trim.starts_with("ptcp:") || s_trim.starts_with("pssl:") {
            return Err(bad(
                "that is a listening (passive) remote; a client needs unix:, tcp: or ssl:",
            ));
        } else {
            return Err(bad("unknown method"));
        };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or_else(|| bad("IPv6 address must be written [ADDR]:PORT"))?;
            (h.to_owned(), p)
        } else {
            let (h, p) = rest.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
            if h.contains(':') {
                return Err(bad("IPv6 address must be written [ADDR]:PORT"));
            }
            (h.to_owned(), p)
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0 is not valid"));
        }
        Ok(if kind == "tcp" {
            Remote::Tcp { host, port }
        } else {
            Remote::Ssl { host, port }
        })
    }

    /// Parses a comma-separated list; at least one entry.
    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        let list: Vec<Remote> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Remote::parse)
            .collect::<Result<_>>()?;
        if list.is_empty() {
            return Err(Error::InvalidRemote {
                remote: s.to_owned(),
                reason: "empty remote list".into(),
            });
        }
        Ok(list)
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
            Remote::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Remote::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Remote::Ssl { host, port } if host.contains(':') => write!(f, "ssl:[{host}]:{port}"),
            Remote::Ssl { host, port } => write!(f, "ssl:{host}:{port}"),
        }
    }
}
