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
        // Digits and dots only is meant as an IPv4 address: a bad one (999.1.1.1) is a typo to
        // report now, not a host name to look up and retry until the connect timeout.
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(bad("not a valid IPv4 address (four numbers from 0 to 255)"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_dots_must_be_a_valid_ipv4_address() {
        for bad in [
            "tcp:999.1.1.1:1",
            "ssl:1.2.3:6641",
            "tcp:1.2.3.4.5:1",
            "tcp:01.2.3.256:1",
        ] {
            let e = Remote::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid IPv4 address"), "{bad}: {e}");
        }
        assert_eq!(
            Remote::parse("tcp:10.0.0.1:6641").unwrap(),
            Remote::Tcp {
                host: "10.0.0.1".into(),
                port: 6641
            }
        );
        assert!(
            Remote::parse("tcp:ovn-central-1:6641").is_ok(),
            "host names stay host names"
        );
    }
}
