//! Emulated chassis: the Southbound footprint of ovn-controller 23.03 without OVS.
//!
//! What loads OVN's central components is what chassis do on the SB: one connection each, a
//! monitor each (so every update fans out to every chassis), `Port_Binding` claims and
//! `nb_cfg` acknowledgements. An [`EmulatedChassis`] does exactly that and nothing else, so
//! one machine can stand in for a thousand hypervisors, alone or beside real chassis.
//!
//! ```no_run
//! use std::time::Duration;
//! use ovn_emu::{Farm, FarmOptions};
//! # async fn demo() -> ovn_emu::Result<()> {
//! let farm = Farm::start("unix:/run/ovn/ovnsb_db.sock", 100, "emu", FarmOptions::default()).await?;
//! farm.wait_registered(Duration::from_secs(60)).await?;
//! let hv = farm.get("emu-7")?;
//! hv.bind_port("vm-42")?;
//! let port = hv.wait_port_up("vm-42", Duration::from_secs(30)).await?;
//! println!("claimed after {:?}", port.up_at.unwrap() - port.bound_at);
//! farm.stop(true).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`spec`]: one chassis's identity and the rows it registers (`Chassis.other_config` keys
//!   as 23.03 writes them).
//! - [`sb`]: ovn-controller's monitor request and its conditions when `ovn-monitor-all` is off.
//! - `keep`: the chassis's `RowFilter`: which received rows it keeps (and which tables it
//!   decodes at all), so memory follows the chassis, not the SB.
//! - [`chassis`]: the chassis task: register, claim, release, ack `nb_cfg`, move conditions.
//! - [`farm`]: N chassis in one process, started at a bounded rate.
//!
//! Must not know: processes, network namespaces, OVS, Neutron, how results are reported.
//! Never prints; logs via `tracing`.

pub mod chassis;
pub mod error;
pub mod farm;
mod keep;
pub mod sb;
pub mod spec;

pub use chassis::{ChassisStatus, ConnectPolicy, EmulatedChassis, PortStatus};
pub use error::{Error, Result};
pub use farm::{ChassisTls, Farm, FarmOptions, FarmStatus};
pub use sb::MonitorPlan;
pub use spec::ChassisSpec;
