//! VM networking in-process: network namespaces made and entered without `ip`, and links,
//! addresses, routes and neighbour settings changed over rtnetlink, so plugging a VM spawns no
//! process.
//!
//! A socket belongs to the namespace of the thread that opened it, for its whole life. So the
//! only thing done inside a namespace is opening sockets: a short-lived thread of our own
//! enters (or creates) the namespace, opens a netlink socket (and, for a VM, its ICMP socket)
//! and ends; everything else goes through those sockets from the async runtime. The threads
//! that enter namespaces are a few of our own, never the runtime's: each job starts in the
//! process's namespace and the thread goes back there after it; a thread that cannot go back
//! ends (and its job's caller gets its answer first), so no thread is ever left in the wrong
//! namespace, whatever fails. Reused rather than one per entry: two thread starts per VM cost
//! CPU and, with mimalloc, memory (each new thread gets heap pages of its own, which outlive
//! it) — measured at 1,000 VMs in docs/benchmarks.md. Namespaces are bind mounts of
//! `/proc/thread-self/ns/net` on `/run/netns/NAME`, exactly what `ip netns add` makes, so `ip
//! netns`, `ip netns delete` and the lab's teardown see them as usual.
//!
//! Must not know: OVS, OVN, which namespaces make a lab.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use futures_util::TryStreamExt;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::packet_route::neighbour_table::{
    NeighbourTableAttribute, NeighbourTableMessage, NeighbourTableParameter,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, Result};

/// Where `ip netns` keeps its namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// How often a VM asks again for an unanswered ARP request (see [`tune_arp`]). The kernel
/// keeps it in jiffies, rounded up, and never below HZ/100: 8 ms is what HZ=250 can do (two
/// jiffies; 10 ms would become 12), and stays within 10 ms at HZ=100 and HZ=1000.
pub(crate) const ARP_RETRANS_MS: u64 = 8;
/// Multicast (broadcast) ARP requests before an entry fails: with [`ARP_RETRANS_MS`], about a
/// second of asking; a later packet starts over.
pub(crate) const ARP_MCAST_PROBES: u32 = 125;

/// A namespace we can act in: its file (for moving links into it) and a netlink handle bound
/// to it.
pub(crate) struct Netns {
    pub fd: OwnedFd,
    pub nl: Handle,
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Netns(fd {})", self.fd.as_raw_fd())
    }
}

pub(crate) fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The name of the threads that enter and create namespaces: their CPU is the kernel's work
/// of making the VMs' namespaces, which a caller can tell apart in `/proc/self/task`.
pub const NETNS_THREAD_NAME: &str = "ovn-lab-netns";

/// Threads that enter namespaces: at most this many jobs run at once (each is a few
/// syscalls; more would only add thread starts).
const NETNS_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the namespace threads, started on first use; `None` when no thread could start.
fn netns_queue() -> Option<&'static std::sync::Mutex<std::sync::mpsc::Sender<Job>>> {
    static QUEUE: OnceLock<Option<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
            let started = (0..NETNS_THREADS)
                .filter(|_| {
                    let rx = rx.clone();
                    std::thread::Builder::new()
                        .name(NETNS_THREAD_NAME.into())
                        .stack_size(256 * 1024)
                        .spawn(move || netns_thread(&rx))
                        .is_ok()
                })
                .count();
            (started > 0).then(|| std::sync::Mutex::new(tx))
        })
        .as_ref()
}

/// One namespace thread: runs jobs, each from the process's namespace, until it cannot return
/// there (or the queue is gone).
fn netns_thread(jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    let Ok(home) = File::open("/proc/thread-self/ns/net") else {
        return;
    };
    loop {
        let job = match jobs.lock().map(|rx| rx.recv()) {
            Ok(Ok(job)) => job,
            _ => return,
        };
        job();
        if setns(&home, CloneFlags::CLONE_NEWNET).is_err() {
            // Stuck in a VM's namespace: end rather than run the next job there. The queue
            // lives on in the other threads, or jobs fall back to a thread of their own.
            return;
        }
    }
}

/// Runs `f` on a namespace thread and hands back its result; `f` may move the thread into any
/// network namespace (the thread goes back afterwards). Falls back to a new thread of its own,
/// which ends with `f`, when no namespace thread is left.
async fn on_own_thread<T: Send + 'static>(what: &str, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    // The pool's threads are gone (each left after failing to return home): a thread of its
    // own, which ends with the job.
    let unqueued = match netns_queue().map(|queue| queue.lock()) {
        Some(Ok(queue)) => queue.send(job).err().map(|e| e.0),
        _ => Some(job),
    };
    if let Some(job) = unqueued {
        std::thread::Builder::new()
            .name(NETNS_THREAD_NAME.into())
            .stack_size(256 * 1024)
            .spawn(job)
            .map_err(|e| Error::io(format!("cannot start a thread to {what}"), e))?;
    }
    rx.await.map_err(|_| Error::Io {
        what: format!("the thread to {what} ended without an answer"),
        source: std::io::Error::other("thread panicked"),
    })?
}

/// Opens a netlink connection in the calling thread's namespace, driven by `rt`.
fn open_netlink(rt: &tokio::runtime::Handle) -> std::io::Result<Handle> {
    let _entered = rt.enter();
    let (connection, handle, _) = rtnetlink::new_connection()?;
    rt.spawn(connection);
    Ok(handle)
}

/// `ip netns add`'s preparation, once per process: `/run/netns` exists and is a shared mount,
/// so namespace mounts made later propagate to every mount namespace (`ip netns exec` makes
/// one of its own).
fn ensure_netns_dir() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        std::fs::create_dir_all(NETNS_DIR).map_err(|e| format!("cannot create {NETNS_DIR}: {e}"))?;
        let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        match mount(None::<&str>, NETNS_DIR, Some("none"), shared, None::<&str>) {
            Ok(()) => Ok(()),
            // Not a mount point yet: make it one, then shared.
            Err(nix::errno::Errno::EINVAL) => mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .and_then(|()| mount(None::<&str>, NETNS_DIR, Some("none"), shared, None::<&str>))
            .map_err(|e| format!("cannot make {NETNS_DIR} a shared mount: {e}")),
            Err(e) => Err(format!("cannot make {NETNS_DIR} a shared mount: {e}")),
        }
    })
    .clone()
    .map_err(|reason| Error::io(reason, std::io::Error::other("mount")))
}

/// Creates namespace `name` (as `ip netns add` does) with `lo` up, and runs `also` inside it
/// (on the same thread, with `rt` entered) to open more sockets there.
pub(crate) async fn create<T: Send + 'static>(
    name: &str,
    also: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<(Netns, T)> {
    let rt = tokio::runtime::Handle::current();
    let path = netns_path(name);
    let what = format!("create network namespace {name}");
    let (netns, extra) = on_own_thread(&what.clone(), move || {
        ensure_netns_dir()?;
        let fail = |e: std::io::Error| Error::io(what.clone(), e);
        // The mount point; O_EXCL: a namespace of this name must not exist yet.
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&path)
            .map_err(fail)?;
        let made = unshare(CloneFlags::CLONE_NEWNET)
            .and_then(|()| {
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &path,
                    Some("none"),
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            })
            .map_err(|e| fail(e.into()));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let opened = (|| {
            let fd = OwnedFd::from(File::open(&path)?);
            let nl = open_netlink(&rt)?;
            let _entered = rt.enter();
            let extra = also()?;
            Ok((Netns { fd, nl }, extra))
        })();
        opened.map_err(|e| {
            let _ = delete_blocking(&path);
            fail(e)
        })
    })
    .await?;
    set_up(&netns.nl, 1)
        .await
        .map_err(|e| nl_error(&format!("cannot bring up lo in {name}"), e))?;
    Ok((netns, extra))
}

/// Enters existing namespace `name` on a thread of its own, opens a netlink socket there and
/// runs `also` (with the runtime entered) to open more.
pub(crate) async fn enter<T: Send + 'static>(
    name: &str,
    also: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<(Netns, T)> {
    let rt = tokio::runtime::Handle::current();
    let path = netns_path(name);
    let what = format!("enter network namespace {name}");
    on_own_thread(&what.clone(), move || {
        let fail = |e: std::io::Error| Error::io(what.clone(), e);
        let fd = OwnedFd::from(File::open(&path).map_err(fail)?);
        setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| fail(e.into()))?;
        let nl = open_netlink(&rt).map_err(fail)?;
        let _entered = rt.enter();
        let extra = also().map_err(fail)?;
        Ok((Netns { fd, nl }, extra))
    })
    .await
}

/// Runs `f` inside namespace `name` (with the runtime entered, to open sockets there) and
/// hands back what it made; unlike [`enter`], opens no netlink socket.
pub(crate) async fn run_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let rt = tokio::runtime::Handle::current();
    let path = netns_path(name);
    let what = format!("enter network namespace {name}");
    on_own_thread(&what.clone(), move || {
        let fail = |e: std::io::Error| Error::io(what.clone(), e);
        let fd = OwnedFd::from(File::open(&path).map_err(fail)?);
        setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| fail(e.into()))?;
        let _entered = rt.enter();
        f().map_err(fail)
    })
    .await
}

/// Deletes namespace `name` as `ip netns delete` does (detach the mount, remove the file);
/// `false` when it did not exist. Its links go with it once nothing holds it open.
pub(crate) fn delete(name: &str) -> Result<bool> {
    // An empty name would be /run/netns itself.
    if name.is_empty() || name.contains('/') {
        return Err(Error::InvalidSpec(format!("{name:?} is not a network namespace name")));
    }
    delete_blocking(&netns_path(name)).map_err(|e| Error::io(format!("cannot delete network namespace {name}"), e))
}

fn delete_blocking(path: &Path) -> std::io::Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

pub(crate) fn nl_error(what: &str, e: rtnetlink::Error) -> Error {
    let source = match &e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => std::io::Error::other(other.to_string()),
    };
    Error::io(what.to_owned(), source)
}

/// Whether `e` says the device does not exist.
pub(crate) fn is_no_device(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV)
}

/// The index of link `name` in the handle's namespace, `None` if there is none.
pub(crate) async fn link_index(nl: &Handle, name: &str) -> std::result::Result<Option<u32>, rtnetlink::Error> {
    let mut links = nl.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(found) => Ok(found.map(|m| m.header.index)),
        Err(e) if is_no_device(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves link `index` into the namespace open as `target`.
pub(crate) async fn move_link(nl: &Handle, index: u32, target: &OwnedFd) -> std::result::Result<(), rtnetlink::Error> {
    nl.link()
        .set(
            LinkUnspec::new_with_index(index)
                .setns_by_fd(target.as_raw_fd())
                .build(),
        )
        .execute()
        .await
}

pub(crate) async fn set_up(nl: &Handle, index: u32) -> std::result::Result<(), rtnetlink::Error> {
    nl.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
}

/// MAC, MTU and up, in one request.
pub(crate) async fn configure_link(
    nl: &Handle,
    index: u32,
    mac: [u8; 6],
    mtu: u32,
) -> std::result::Result<(), rtnetlink::Error> {
    nl.link()
        .set(
            LinkUnspec::new_with_index(index)
                .address(mac.to_vec())
                .mtu(mtu)
                .up()
                .build(),
        )
        .execute()
        .await
}

pub(crate) async fn add_address(
    nl: &Handle,
    index: u32,
    addr: std::net::IpAddr,
    prefix_len: u8,
) -> std::result::Result<(), rtnetlink::Error> {
    nl.address().add(index, addr, prefix_len).execute().await
}

pub(crate) async fn add_default_route(nl: &Handle, gateway: Ipv4Addr) -> std::result::Result<(), rtnetlink::Error> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build();
    nl.route().add(route).execute().await
}

/// An IPv6 address usable at once: without duplicate address detection (`nodad`), which would
/// keep it tentative, unable to send, for about a second after it is added.
pub(crate) async fn add_address6_nodad(
    nl: &Handle,
    index: u32,
    addr: Ipv6Addr,
    prefix_len: u8,
) -> std::result::Result<(), rtnetlink::Error> {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
    let mut request = nl.address().add(index, std::net::IpAddr::V6(addr), prefix_len);
    request
        .message_mut()
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    request.execute().await
}

pub(crate) async fn add_default_route6(nl: &Handle, gateway: Ipv6Addr) -> std::result::Result<(), rtnetlink::Error> {
    let route = RouteMessageBuilder::<Ipv6Addr>::new().gateway(gateway).build();
    nl.route().add(route).execute().await
}

/// ARP on link `index` asks again every [`ARP_RETRANS_MS`] instead of the kernel's 1 s, for
/// [`ARP_MCAST_PROBES`] requests before the entry fails (`ip ntable change name arp_cache dev
/// X retrans 8 mcast_probes 125`, and the same for `ndisc_cache`). A VM's first ARP request for its gateway usually goes out
/// before OVN has installed the port's flows and is lost; with the kernel's defaults the next
/// one leaves a second later, and readiness would be measured in whole seconds.
/// IPv6 neighbour discovery (`ndisc_cache`) is tuned the same way; each table only when the
/// VM has an address of its family (`ipv4`, `ipv6`): one request fewer per single-stack VM.
pub(crate) async fn tune_arp(
    nl: &Handle,
    index: u32,
    ipv4: bool,
    ipv6: bool,
) -> std::result::Result<(), rtnetlink::Error> {
    let tables = [
        (ipv4, AddressFamily::Inet, "arp_cache"),
        (ipv6, AddressFamily::Inet6, "ndisc_cache"),
    ];
    for (_, family, table_name) in tables.into_iter().filter(|(wanted, ..)| *wanted) {
        let mut table = NeighbourTableMessage::default();
        table.header.family = family;
        table.attributes = vec![
            NeighbourTableAttribute::Name(table_name.into()),
            NeighbourTableAttribute::Parms(vec![
                NeighbourTableParameter::Ifindex(index),
                NeighbourTableParameter::RetransTime(ARP_RETRANS_MS),
                NeighbourTableParameter::McastProbes(ARP_MCAST_PROBES),
            ]),
        ];
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::SetNeighbourTable(table));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        let mut handle = nl.clone();
        let mut replies = handle.request(request)?;
        use futures_util::StreamExt;
        while let Some(message) = replies.next().await {
            if let rtnetlink::packet_core::NetlinkPayload::Error(e) = message.payload {
                if e.code.is_some() {
                    return Err(rtnetlink::Error::NetlinkError(e));
                }
            }
        }
    }
    Ok(())
}

/// `aa:bb:cc:dd:ee:ff` as bytes.
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(parse_mac("0a:00:00:00:00:1f"), Some([10, 0, 0, 0, 0, 31]));
        assert_eq!(parse_mac("0a:00:00:00:00"), None);
        assert_eq!(parse_mac("0a:00:00:00:00:1f:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:1f"), None);
    }
}
