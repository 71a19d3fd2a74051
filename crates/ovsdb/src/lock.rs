//! OVSDB locks (`lock`, `steal`, `unlock`) and their `locked` / `stolen` notifications.
//!
//! A lock belongs to the session: when the connection drops, the server releases it. The
//! client re-requests every lock it holds or waits for after a reconnect, so a [`Lock`] may go
//! from owned to waiting and back without anyone stealing it. Callers that act as the owner
//! (like a northd) should check [`Lock::is_locked`] or put `assert` into their transactions.
//!
//! Must not know: what the lock protects.

use tokio::sync::watch;

use crate::client::Client;
use crate::error::{Error, Result};

/// What the server told us about one lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LockState {
    /// We own it now.
    pub(crate) owned: bool,
    /// How many `stolen` notifications arrived so far.
    pub(crate) stolen: u64,
    /// `unlock` was called: nothing more will happen.
    pub(crate) released: bool,
}

/// A held or requested lock. Dropping the last handle without [`Lock::unlock`] releases it in
/// the background.
pub struct Lock {
    id: String,
    client: Client,
    state: watch::Receiver<LockState>,
    /// Steals already reported by [`Lock::stolen`].
    seen_stolen: u64,
    released: bool,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("id", &self.id)
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl Lock {
    pub(crate) fn new(id: String, client: Client, state: watch::Receiver<LockState>) -> Self {
        let seen_stolen = state.borrow().stolen;
        Lock {
            id,
            client,
            state,
            seen_stolen,
            released: false,
        }
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Whether we own it now.
    pub fn is_locked(&self) -> bool {
        self.state.borrow().owned
    }
    /// Waits until we own it (immediately if already).
    pub async fn acquired(&mut self) -> Result<()> {
        let owned = match self.state.wait_for(|s| s.owned || s.released).await {
            Ok(s) => s.owned,
            Err(_) => false,
        };
        if owned {
            Ok(())
        } else {
            Err(self.gone())
        }
    }
    /// Waits until another client steals it (each steal is reported once).
    pub async fn stolen(&mut self) -> Result<()> {
        let seen = self.seen_stolen;
        let s = self.state.wait_for(|s| s.stolen > seen || s.released).await.map(|s| *s);
        let Ok(s) = s else {
            return Err(self.gone());
        };
        if s.stolen > seen {
            self.seen_stolen = s.stolen;
            Ok(())
        } else {
            Err(self.gone())
        }
    }
    /// Gives the lock up (or stops waiting for it), for every handle of it.
    pub async fn unlock(mut self) -> Result<()> {
        self.released = true;
        self.client.unlock(&self.id).await
    }

    fn gone(&self) -> Error {
        Error::Rpc {
            method: "lock".into(),
            error: "lock released".into(),
            details: Some(format!("lock {:?} was unlocked", self.id)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let id = std::mem::take(&mut self.id);
            rt.spawn(async move { client.drop_lock_handle(&id).await });
        }
    }
}
