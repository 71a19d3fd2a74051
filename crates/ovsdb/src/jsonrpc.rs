//! JSON-RPC 1.0 framing on a byte stream: splits incoming bytes into whole JSON values
//! (partial reads, several messages per read, messages of tens of MB without rescanning).
//!
//! Does no I/O of its own.
