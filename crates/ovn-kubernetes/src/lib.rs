//! An ovn-kubernetes mimic as upstream ovn-heater's `ovn_kubernetes` CMS drives OVN: the
//! cluster topology (cluster router, join switch, per-node switch, gateway router, external
//! switch, localnet port, load balancers and LB group), pods, namespaces, network policies and
//! services, written to the Northbound DB as upstream writes them, and upstream's nine tests.
//!
//! # Layout
//! - [`config`]: the `cluster:` keys (translate_yaml's defaults) and [`Compat`].
//! - [`net`]: upstream's `DualStackSubnet` address arithmetic.
//! - [`cluster`]: [`Ovnk`], one method per upstream NB call (plans the transaction from
//!   the mimic's state, commits it, records the result).
//! - [`workload`]: the tests in upstream's order and the [`Hooks`] a host supplies (pod
//!   binding, pings, Context boundaries).
//!
//! Must not know: processes, namespaces, OVS, the CLI, YAML. Reaches OVSDB only through the
//! `ovsdb::Client` it is given; never prints (logs via `tracing`).

pub mod cluster;
pub mod config;
pub mod error;
pub mod net;
pub mod workload;

pub use cluster::{Ovnk, Pod};
pub use config::{ClusterConfig, Compat, Families};
pub use error::{Error, Result};
pub use workload::{Hooks, Phase, Point, Tests};
