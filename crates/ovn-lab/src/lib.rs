//! A real OVN cluster on one machine, without containers: central databases (standalone or
//! 3-member RAFT, SB relays), `ovn-northd`, and real chassis (`ovsdb-server` + `ovs-vswitchd`
//! on the userspace datapath + `ovn-controller`) each in its own network namespace.
//!
//! ```no_run
//! use ovn_lab::{Lab, LabSpec, VmSpec};
//! # async fn demo() -> ovn_lab::Result<()> {
//! let lab = Lab::up(LabSpec::new("/tmp/ovh-lab").with_chassis(2, 1)).await?;
//! println!("NB at {}, SB at {}", lab.nb_remote(), lab.sb_remote());
//! // ... create a logical switch with port "p1" through the NB, then:
//! let vm = lab.chassis_by_name("compute-1").unwrap()
//!     .bind_vm(VmSpec::new("p1", "0a:00:00:00:00:01", "10.0.0.11/24")).await?;
//! let rtt = vm.ping("10.0.0.12".parse().unwrap(), std::time::Duration::from_secs(10)).await?;
//! lab.down()?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`spec`]: [`LabSpec`], what to bring up.
//! - [`binaries`]: [`Binaries::locate`] finds daemons and schemas (PATH or build trees).
//! - `process`: starting detached daemons, pidfiles, stopping them.
//! - `netns`: network namespaces and veths through iproute2 (bring-up; teardown deletes
//!   namespaces in-process).
//! - `vmnet`: VM namespaces, links, addresses, routes and ARP tuning over rtnetlink, in-process.
//! - [`probe`]: ICMP echo probes from sockets inside a namespace.
//! - `state`: `DIR/lab.json`, how another process finds the lab (`lab status`, `lab down`).
//! - `central`: NB/SB servers (standalone or RAFT), relays, northd.
//! - [`chassis`]: real chassis, the external host, VM plumbing.
//! - [`lab`]: [`Lab`], bring-up, preflight, teardown.
//! - [`pki`]: the CA and certificates of a lab with `ssl` on.
//!
//! # Where things live
//! All of a lab's network objects live in namespaces named `<prefix>-*` (prefix from the run
//! dir, or `LabSpec::name`): the underlay `<prefix>-ul` holds two Linux bridges (node network and
//! provider network); each chassis `<prefix>-<chassis>` has `eth0` (and `eth1` on network nodes)
//! whose peer sits in the underlay; VMs get `<prefix>-vm-<port>`. Nothing is created in the
//! root namespace, so deleting the namespaces removes every veth and bridge.
//!
//! Must not know: Neutron, CMS plugins, scenarios, clap, YAML. Never prints; logs via `tracing`.

pub mod binaries;
mod central;
pub mod chassis;
pub mod error;
pub mod host;
pub mod lab;
mod netns;
pub mod pki;
pub mod probe;
mod process;
pub mod spec;
mod state;
mod vmnet;

pub use binaries::Binaries;
pub use chassis::{ExternalHost, RealChassis, Vm, VmSpec};
pub use error::{Error, Result};
pub use lab::{Lab, LabStatus, ProcessStatus, Teardown};
pub use pki::{LabPki, TlsFiles};
pub use spec::{BinaryDirs, ChassisRole, ChassisSpec, LabSpec, PHYSICAL_NETWORK};
pub use state::{Launch, ProcessInfo, ProcessRole};
pub use vmnet::NETNS_THREAD_NAME;
