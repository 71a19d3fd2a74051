//! ICMP echo probes from inside a namespace, in-process: one raw ICMP socket per namespace
//! (opened there, see `vmnet`), shared by every probe from it, with replies matched to probes
//! by identifier and sequence (`surge-ping`). Hundreds of probes can be in flight; none starts
//! a process.
//!
//! A probe sends an echo request every `interval` until the first echo reply, so the time it
//! reports is "how long until this destination answered", with `interval` as its resolution,
//! and it never waits on a lost first packet (or a lost first ARP request: the VM namespaces
//! retry ARP every 10 ms, see `vmnet::tune_arp`). Replies count for the probe whatever request
//! they answer, so a slow path still answers within the probe.
//!
//! Must not know: OVS, OVN, which namespace it is in.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, ICMP};
use tokio::time::Instant;

/// How long one echo request waits for its own reply; later requests keep the probe going.
/// It bounds what a probe holds (a pending future and a registered waiter per request: 25 at
/// the default interval, 100 with a second, which at 1,000 VMs kept 17 MB of the tester's
/// heap); a path slow on its first packet (an upcall) still answers a later request, which
/// the datapath's cached flow then carries fast.
const REQUEST_WAIT: Duration = Duration::from_millis(250);
/// Default spacing of a probe's echo requests (its time resolution).
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// ICMP type of an echo reply.
const ECHO_REPLY: u8 = 0;
/// ICMPv6 type of an echo reply.
const ECHO_REPLY_V6: u8 = 129;
const PAYLOAD: [u8; 16] = *b"ovn-heater probe";

/// Echo probes from one namespace over one socket of one family (ICMP or ICMPv6); clones
/// share it.
#[derive(Clone)]
pub struct Prober {
    client: Client,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prober")
    }
}

/// Opens a prober for destinations of `family` (IPv4 or IPv6) in the calling thread's
/// namespace (a raw socket: the lab runs as root, and datagram ICMP sockets would need each
/// namespace's `ping_group_range` opened). Needs a tokio runtime entered. One per family, on
/// first use: an IPv4-only VM never holds an ICMPv6 socket and its receive task.
pub(crate) fn open(family: ICMP) -> std::io::Result<Prober> {
    let config = Config::builder()
        .kind(family)
        .sock_type_hint(socket2::Type::RAW)
        .build();
    Ok(Prober {
        client: Client::new(&config)?,
    })
}

/// Identifiers for probes of this process, so concurrent probes never take each other's replies.
fn next_identifier() -> PingIdentifier {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    PingIdentifier(NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Prober {
    /// Sends echo requests to `dest` every `interval` until the first echo reply: `Some(time
    /// from the first request to that reply)`, or `None` when nothing answered within `timeout`.
    /// ICMP errors (host unreachable while ARP is unanswered) do not end the probe.
    pub async fn until_reply(&self, dest: IpAddr, interval: Duration, timeout: Duration) -> Option<Duration> {
        let client = &self.client;
        let start = Instant::now();
        let deadline = start + timeout;
        let ident = next_identifier();
        let mut in_flight = FuturesUnordered::new();
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq: u16 = 0;
        loop {
            tokio::select! {
                biased;
                Some(reply) = in_flight.next() => {
                    if is_echo_reply(&reply) {
                        return Some(start.elapsed());
                    }
                }
                now = ticks.tick(), if Instant::now() < deadline => {
                    let mut pinger = client.pinger(dest, ident).await;
                    pinger.timeout(REQUEST_WAIT.min(deadline.saturating_duration_since(now)));
                    let this = PingSequence(seq);
                    seq = seq.wrapping_add(1);
                    in_flight.push(async move { pinger.ping(this, &PAYLOAD).await });
                }
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }
}

fn is_echo_reply(reply: &Result<(IcmpPacket, Duration), surge_ping::SurgeError>) -> bool {
    match reply {
        Ok((IcmpPacket::V4(p), _)) => p.get_icmp_type().0 == ECHO_REPLY,
        Ok((IcmpPacket::V6(p), _)) => p.get_icmpv6_type().0 == ECHO_REPLY_V6,
        _ => false,
    }
}
