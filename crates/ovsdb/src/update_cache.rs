//! Decoding a monitor update once for many clients that receive the same bytes.
//!
//! Clients that send the same monitor request with the same monitor id are sent byte-identical
//! `update`/`update2`/`update3` notifications for every transaction the server commits (an
//! emulated-chassis farm with `ovn-monitor-all` is a thousand of them). An [`UpdateCache`]
//! shared through [`ClientOptions::update_cache`](crate::ClientOptions::update_cache) lets
//! each notification's text be decoded once: every client still reads its own socket (the
//! server's per-session work is what a farm loads it with), hashes the text, and applies the
//! shared decoded form to its own replica, copying only the rows its filter keeps.
//!
//! Only notifications for filtered monitors (see [`Client::monitor_filtered`](
//! crate::Client::monitor_filtered)) use the cache. A text is decoded for sharing the second
//! time it is seen: a text seen once (a conditional monitor's own update) costs a hash and a
//! copy, then the same filtered decode as without the cache.
//!
//! Must not know: any schema's table names (the owner says which tables to decode).

use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::datum::{Row, Uuid, Value};
use crate::filter::{RowFilter, SharedFilter};
use crate::monitor::{decode_update_params, MonitorMethod, RowChange};

/// Entries kept by default: updates a client may lag behind the fastest one and still share.
const DEFAULT_ENTRIES: usize = 256;
/// Bytes of notification text kept by default (the decoded forms are several times larger).
const DEFAULT_TEXT_BYTES: usize = 16 << 20;

/// Notifications decoded once and shared by every client given this cache. See the module docs.
///
/// ```
/// use std::sync::Arc;
/// use ovsdb::{ClientOptions, UpdateCache};
///
/// // Decode only the tables some client's filter may keep.
/// let cache = Arc::new(UpdateCache::new().tables(|t| t == "Port_Binding" || t == "Chassis"));
/// let options = ClientOptions::new("unix:/run/ovn/ovnsb_db.sock")?.update_cache(cache.clone());
/// # let _ = options;
/// assert_eq!(cache.stats().hits, 0);
/// # Ok::<(), ovsdb::Error>(())
/// ```
pub struct UpdateCache {
    tables: Option<TablePredicate>,
    max_entries: usize,
    max_text_bytes: usize,
    inner: Mutex<Inner>,
    lookups: AtomicU64,
    hits: AtomicU64,
    shared_decodes: AtomicU64,
}

impl std::fmt::Debug for UpdateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateCache").field("stats", &self.stats()).finish()
    }
}

/// What a cache has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateCacheStats {
    /// Notifications offered to the cache.
    pub lookups: u64,
    /// Notifications applied from an already decoded shared form.
    pub hits: u64,
    /// Shared forms decoded (texts seen twice or more).
    pub shared_decodes: u64,
}

impl UpdateCacheStats {
    /// Decodes per notification received: 1.0 without sharing, towards 1/N for N clients
    /// receiving the same updates.
    pub fn decodes_per_lookup(&self) -> f64 {
        if self.lookups == 0 {
            return 0.0;
        }
        (self.lookups - self.hits) as f64 / self.lookups as f64
    }
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    text_bytes: usize,
}

struct Entry {
    hash: u64,
    method: MonitorMethod,
    text: Box<str>,
    decoded: Option<Arc<SharedUpdate>>,
}

/// One notification, decoded for every client: inserted rows carry their `_uuid`, so a filter
/// can judge them before anything is copied.
#[derive(Debug)]
pub(crate) struct SharedUpdate {
    pub(crate) txn_id: Option<Uuid>,
    pub(crate) tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
}

/// What a client does with a notification.
pub(crate) enum Lookup {
    /// Apply this shared form.
    Hit(Arc<SharedUpdate>),
    /// Seen before but not yet decoded for sharing: decode it with [`UpdateCache::decode_shared`].
    DecodeShared,
    /// First sight: decode it for this client only, as without a cache.
    Own,
}

type TablePredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Decodes only the tables the cache's owner asked for; every row of them.
struct TablesOnly(TablePredicate);

impl RowFilter for TablesOnly {
    fn keeps_table(&self, table: &str) -> bool {
        (self.0)(table)
    }
    fn keeps(&self, _table: &str, _row: &Row) -> bool {
        true
    }
}

impl Default for UpdateCache {
    fn default() -> Self {
        UpdateCache::new()
    }
}

impl UpdateCache {
    /// A cache decoding every table, holding up to 256 notifications or 16 MiB of their text.
    pub fn new() -> Self {
        UpdateCache {
            tables: None,
            max_entries: DEFAULT_ENTRIES,
            max_text_bytes: DEFAULT_TEXT_BYTES,
            inner: Mutex::new(Inner::default()),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            shared_decodes: AtomicU64::new(0),
        }
    }

    /// Decode only tables for which `keep` is true. It must be true for every table any
    /// client's filter may keep ([`RowFilter::keeps_table`]): the others are never decoded.
    pub fn tables(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.tables = Some(Arc::new(keep));
        self
    }

    /// Keep at most `entries` notifications and `text_bytes` of their text (oldest go first).
    pub fn capacity(mut self, entries: usize, text_bytes: usize) -> Self {
        self.max_entries = entries.max(1);
        self.max_text_bytes = text_bytes;
        self
    }

    pub fn stats(&self) -> UpdateCacheStats {
        UpdateCacheStats {
            lookups: self.lookups.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            shared_decodes: self.shared_decodes.load(Ordering::Relaxed),
        }
    }

    fn hash(text: &str) -> u64 {
        foldhash::quality::FixedState::with_seed(0x6f76_6e68).hash_one(text.as_bytes())
    }

    /// Looks `text` (a notification's params) up; remembers it if it is new.
    pub(crate) fn lookup(&self, method: MonitorMethod, text: &str) -> Lookup {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let hash = Self::hash(text);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Newest first: clients are usually at the most recent updates.
        if let Some(entry) = inner
            .entries
            .iter()
            .rev()
            .find(|e| e.hash == hash && e.method == method && *e.text == *text)
        {
            return match &entry.decoded {
                Some(decoded) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    Lookup::Hit(decoded.clone())
                }
                None => Lookup::DecodeShared,
            };
        }
        if text.len() > self.max_text_bytes {
            return Lookup::Own;
        }
        inner.text_bytes += text.len();
        inner.entries.push_back(Entry {
            hash,
            method,
            text: text.into(),
            decoded: None,
        });
        while inner.entries.len() > self.max_entries || inner.text_bytes > self.max_text_bytes {
            let Some(old) = inner.entries.pop_front() else { break };
            inner.text_bytes -= old.text.len();
        }
        Lookup::Own
    }

    /// Decodes `text` for sharing and stores it (if its entry is still there). Two clients may
    /// race to do it; both results are equal and the last one stays.
    pub(crate) fn decode_shared(&self, method: MonitorMethod, text: &str) -> serde_json::Result<Arc<SharedUpdate>> {
        let filter = self
            .tables
            .clone()
            .map(|keep| Arc::new(TablesOnly(keep)) as SharedFilter);
        let params = decode_update_params(text, method, |_| filter)?;
        let mut tables = params.tables;
        for rows in tables.values_mut() {
            for (uuid, change) in rows.iter_mut() {
                if let RowChange::Insert(row) = change {
                    row.set("_uuid", Value::uuid(*uuid));
                }
            }
        }
        let decoded = Arc::new(SharedUpdate {
            txn_id: params.txn_id,
            tables,
        });
        self.shared_decodes.fetch_add(1, Ordering::Relaxed);
        let hash = Self::hash(text);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = inner
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.hash == hash && e.method == method && *e.text == *text)
        {
            entry.decoded = Some(decoded.clone());
        }
        Ok(decoded)
    }
}

/// The monitor id at the start of notification params, when it is a plain string as
/// [`Client`](crate::Client) makes them (`["m1", ...`); anything else (escapes, other JSON)
/// gives `None`.
pub(crate) fn leading_monitor_id(params: &str) -> Option<&str> {
    let rest = params.strip_prefix('[')?.trim_start().strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATE: &str = r#"["m1","a0a0a0a0-0000-0000-0000-000000000001",{"T":{"b0b0b0b0-0000-0000-0000-000000000002":{"insert":{"name":"x"}}},"Skipped":{"c0c0c0c0-0000-0000-0000-000000000003":{"delete":null}}}]"#;

    #[test]
    fn monitor_id_read_from_the_front_only_when_plain() {
        assert_eq!(leading_monitor_id(r#"["m12",{}]"#), Some("m12"));
        assert_eq!(leading_monitor_id(r#"[ "m1" ,"x",{}]"#), Some("m1"));
        assert_eq!(leading_monitor_id(r#"["m\"1",{}]"#), None);
        assert_eq!(leading_monitor_id(r#"[["m1"],{}]"#), None);
        assert_eq!(leading_monitor_id(r#"[null,{}]"#), None);
        assert_eq!(leading_monitor_id(r#"["unterminated"#), None);
    }

    #[test]
    fn decoded_for_sharing_on_second_sight_then_hit() {
        let cache = UpdateCache::new().tables(|t| t != "Skipped");
        let method = MonitorMethod::CondSince;
        assert!(matches!(cache.lookup(method, UPDATE), Lookup::Own));
        assert!(matches!(cache.lookup(method, UPDATE), Lookup::DecodeShared));
        let decoded = cache.decode_shared(method, UPDATE).unwrap();
        assert!(!decoded.tables.contains_key("Skipped"));
        let uuid = Uuid::parse("b0b0b0b0-0000-0000-0000-000000000002").unwrap();
        let RowChange::Insert(row) = &decoded.tables["T"][&uuid] else {
            panic!("an insert")
        };
        assert_eq!(row.get("_uuid").and_then(Value::as_uuid), Some(uuid));
        let Lookup::Hit(hit) = cache.lookup(method, UPDATE) else {
            panic!("a hit")
        };
        assert!(Arc::ptr_eq(&hit, &decoded));
        // The same text under another notification method is another update.
        assert!(matches!(cache.lookup(MonitorMethod::Cond, UPDATE), Lookup::Own));
        assert_eq!(
            cache.stats(),
            UpdateCacheStats {
                lookups: 4,
                hits: 1,
                shared_decodes: 1
            }
        );
    }

    #[test]
    fn oldest_entries_go_first() {
        let cache = UpdateCache::new().capacity(2, 1 << 20);
        let method = MonitorMethod::CondSince;
        let texts: Vec<String> = (0..3).map(|i| format!(r#"["m1","{i}",{{}}]"#)).collect();
        for t in &texts {
            assert!(matches!(cache.lookup(method, t), Lookup::Own));
        }
        assert!(matches!(cache.lookup(method, &texts[0]), Lookup::Own), "evicted");
        assert!(matches!(cache.lookup(method, &texts[2]), Lookup::DecodeShared));
        // A text larger than the whole budget is never kept.
        let small = UpdateCache::new().capacity(8, 4);
        assert!(matches!(small.lookup(method, UPDATE), Lookup::Own));
        assert!(matches!(small.lookup(method, UPDATE), Lookup::Own));
    }
}
