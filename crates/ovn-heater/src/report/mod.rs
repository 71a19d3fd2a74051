//! What a run leaves behind and shows: `results.json` ([`json`]), `report.html` ([`html`], its
//! chart data reduced by [`charts`], its status from [`verdict`]), the machine description
//! ([`environment`]), live progress ([`progress`]) and `compare` ([`compare`]).
//!
//! Must not know: any DB connection or how measurements are taken; it reads a finished
//! [`json::RunResults`] (progress excepted, which only counts).

pub mod charts;
pub mod compare;
pub mod environment;
pub mod html;
pub mod json;
pub mod progress;
pub mod verdict;
