//! Little-endian words read out of byte strings, for the loops that handle short names and
//! strings a word at a time (the encoder's escape check, the schema's name hash and compare).
//!
//! Must not know: JSON or OVSDB; these are plain byte helpers.

/// The four bytes of `bytes` at `at`. Panics if fewer are left.
pub(crate) fn word4(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// The eight bytes of `bytes` at `at`. Panics if fewer are left.
pub(crate) fn word8(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}
