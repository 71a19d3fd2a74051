//! Test-only fault injection, for the tests of failure classes: with
//! `OVN_HEATER_INJECT_FAULT=harness:bind_port:N` in its environment, a run's N-th VM (or pod)
//! plumbing (1-based, in the order the run plugs them) fails as the harness would, before
//! anything is plugged, so its dependent samples are skipped and the run exits 3. Not a
//! scenario key and not for users: it only makes a run fail.
//!
//! Must not know: the CMS, the lab, reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The environment variable of the knob.
pub const ENV: &str = "OVN_HEATER_INJECT_FAULT";

/// Which plumbing call fails, 1-based; `None` without (or with a malformed) knob.
fn bind_port_fault() -> Option<usize> {
    static FAULT: OnceLock<Option<usize>> = OnceLock::new();
    *FAULT.get_or_init(|| {
        let value = std::env::var(ENV).ok()?;
        let parsed = parse(&value);
        if parsed.is_none() {
            tracing::warn!("{ENV}={value:?} ignored: the only fault is harness:bind_port:N (N from 1)");
        }
        parsed
    })
}

fn parse(value: &str) -> Option<usize> {
    let n = value.strip_prefix("harness:bind_port:")?.parse().ok()?;
    (n > 0).then_some(n)
}

/// Counts one VM plumbing call; `Err` (a harness failure) when it is the one to fail.
pub fn before_bind_port(subject: &str) -> anyhow::Result<()> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let Some(n) = bind_port_fault() else {
        return Ok(());
    };
    if CALLS.fetch_add(1, Ordering::SeqCst) + 1 == n {
        return Err(crate::metrics::HarnessFault::wrap(anyhow::anyhow!(
            "injected harness fault ({ENV}=harness:bind_port:{n}): plumbing {subject} failed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harness_bind_port_with_a_positive_count_parses() {
        assert_eq!(parse("harness:bind_port:3"), Some(3));
        assert_eq!(parse("harness:bind_port:0"), None);
        assert_eq!(parse("system:port_up:1"), None);
        assert_eq!(parse("harness:bind_port:x"), None);
    }
}
