//! What a run leaves behind and shows: `results.json` ([`json`]), `report.html` ([`html`], with
//! charts from [`svg`]), the machine description ([`environment`]) and live progress
//! ([`progress`]).
//!
//! Must not know: any DB connection or how measurements are taken; it reads a finished
//! [`json::RunResults`] (progress excepted, which only counts).

pub mod compare;
pub mod environment;
pub mod html;
pub mod json;
pub mod progress;
pub mod svg;
