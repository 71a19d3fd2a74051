//! Host-wide kernel limits that every namespace of a lab shares.
//!
//! The kernel's IPv4 neighbour (ARP) table is one table for all network namespaces, capped by
//! `net.ipv4.neigh.default.gc_thresh3` (default 1024, settable only from the initial
//! namespace). Past the cap, a namespace cannot add an entry ("neighbour: arp_cache: neighbor
//! table overflow!" in the kernel log) and its packets to that address are dropped until the
//! garbage collector frees entries, tens of seconds later: 40 VMs pinging 16 peers each need
//! about 1,300 entries, so pings failed for ~30 s with no fault in OVN.
//!
//! Must not know: OVN, the scenario.

use crate::error::{Error, Result};

const GC_THRESH2: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh2";
const GC_THRESH3: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// Neighbour entries a lab needs: each VM namespace holds its gateway, the peers it pings and
/// the peers that ping it; `slack` covers the chassis' and external host's own namespaces.
pub fn neighbour_entries_needed(vms: usize, peers_per_vm: usize) -> u64 {
    const SLACK: u64 = 256;
    (vms as u64) * (1 + 2 * peers_per_vm as u64) + SLACK
}

/// Raises the host's neighbour table cap to `needed` entries if it is lower (never lowers it:
/// other labs may rely on it). `Some((old, new))` when it was raised.
pub fn ensure_neighbour_entries(needed: u64) -> Result<Option<(u64, u64)>> {
    let read = |path: &str| -> Result<u64> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
        text.trim().parse().map_err(|_| {
            Error::io(
                format!("reading {path}"),
                std::io::Error::other(format!("not a number: {text:?}")),
            )
        })
    };
    let write =
        |path: &str, v: u64| std::fs::write(path, v.to_string()).map_err(|e| Error::io(format!("writing {path}"), e));
    let thresh3 = read(GC_THRESH3)?;
    if thresh3 >= needed {
        return Ok(None);
    }
    // gc_thresh2 must stay below gc_thresh3; above it, entries older than 5 s are collected.
    if read(GC_THRESH2)? < needed / 2 {
        write(GC_THRESH2, needed / 2)?;
    }
    write(GC_THRESH3, needed)?;
    Ok(Some((thresh3, needed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_vms_pinging_sixteen_peers_need_more_than_the_default_cap() {
        assert!(neighbour_entries_needed(40, 16) > 1024);
        assert_eq!(neighbour_entries_needed(0, 16), 256);
    }
}
