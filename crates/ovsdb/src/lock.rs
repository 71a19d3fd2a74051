//! OVSDB locks (`lock`, `steal`, `unlock`) and their `locked` / `stolen` notifications.

use crate::error::Result;

/// A held or requested lock.
pub struct Lock {
    _private: (),
}

impl Lock {
    pub fn id(&self) -> &str {
        todo!("ovsdb helper")
    }
    /// Whether we own it now.
    pub fn is_locked(&self) -> bool {
        todo!("ovsdb helper")
    }
    /// Waits until we own it (immediately if already).
    pub async fn acquired(&mut self) -> Result<()> {
        todo!("ovsdb helper")
    }
    /// Waits until another client steals it.
    pub async fn stolen(&mut self) -> Result<()> {
        todo!("ovsdb helper")
    }
    pub async fn unlock(self) -> Result<()> {
        todo!("ovsdb helper")
    }
}
