//! A Neutron ML2/OVN mimic: writes the Northbound rows, columns, option and external_ids keys
//! Neutron 21.0.0 writes, in the same transactions (revision `wait` guards and follow-up
//! rewrites included), action by action; optionally the newer HA_Chassis_Group gateway layout.
//!
//! # Layout
//! - [`neutron`]: the [`Neutron`] API object (shared by API workers), transaction execution.
//! - [`network`], [`port`], [`router`], [`security_group`]: one async method per Neutron
//!   action and the pure planners (state → `ovsdb::Transaction`) behind them.
//! - [`nb`]: NB names and row shapes; [`model`]: the Neutron-side state (IPAM, MACs,
//!   revisions, NB row ids).
//! - [`sb_agent`]: what ovn-controller writes to the SB (register chassis, claim ports,
//!   heartbeat), for walkthroughs without real chassis. Not Neutron.
//! - [`marker`]: the `ovn-heater:run` external_ids key on root rows (optional), and finding
//!   or deleting the rows that carry it.
//! - [`snapshot`]: normalized NB snapshots and their diff (`normalize.py`'s rules).
//! - [`replay`]: steps files in the openstack CLI's vocabulary (CLI line → action) and their
//!   executor (the engine behind `ovn-heater openstack replay` and the `openstack_cli` workload).
//!
//! Must not know: processes, namespaces, clap, YAML parsing, files. Reaches OVSDB only through the
//! `ovsdb::Client`s it is given; never prints (logs via `tracing`).

pub mod error;
pub mod marker;
pub mod model;
pub mod nb;
pub mod network;
pub mod neutron;
pub mod port;
pub mod replay;
pub mod router;
pub mod sb_agent;
pub mod security_group;
pub mod snapshot;

pub use error::{Error, Result};
pub use model::{Config, GatewayLayout, Id};
pub use network::{ListEdit, NetworkSpec, NetworkUpdate, SubnetGateway, SubnetSpec, SubnetUpdate};
pub use neutron::{ActionReport, ChassisInfo, Neutron, TxnTiming};
pub use port::{AddressPairSpec, FixedIpSpec, PortSpec, PortUpdate};
pub use router::{GatewaySpec, RoutesEdit};
pub use security_group::{RuleSpec, SecurityGroupUpdate};
