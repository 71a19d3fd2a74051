//! A Neutron ML2/OVN mimic: the Northbound rows, keys and transactions Neutron 21.0.0 writes.
pub mod snapshot;
