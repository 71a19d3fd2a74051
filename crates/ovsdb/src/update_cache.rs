//! Decoding a monitor update once for many clients that receive the same bytes.
//!
//! Clients that send the same monitor request with the same monitor id are sent byte-identical
//! `update`/`update2`/`update3` notifications for every transaction the server commits (an
//! emulated-chassis farm with `ovn-monitor-all` is a thousand of them). An [`UpdateCache`]
//! shared through [`ClientOptions::update_cache`](crate::ClientOptions::update_cache) lets
//! each notification's text be decoded once: every client still reads its own socket (the
//! server's per-session work is what a farm loads it with), recognises the text (compared
//! with the decoded one's, where it lies in the receive buffer), and applies the shared
//! decoded form to its own replica, copying only the rows its filter keeps.
//!
//! Only notifications for filtered monitors (see [`Client::monitor_filtered`](
//! crate::Client::monitor_filtered)) use the cache. A text is decoded for sharing the second
//! time it is seen: a text seen once (a conditional monitor's own update) costs a hash and a
//! copy, then the same filtered decode as without the cache.
//!
//! Must not know: any schema's table names (the owner says which tables to decode).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::datum::{Row, Uuid, Value};
use crate::filter::{RowFilter, SharedFilter};
use crate::monitor::{decode_update_params, MonitorMethod, RowChange};

/// How ovsdb-server starts every monitor notification. Frames laid out otherwise are never
/// shared (they are decoded as without a cache).
const NOTIFICATION_START: &[u8] = b"{\"id\":null,\"method\":\"update";
/// Bytes hashed to find candidates for a frame not yet delimited: past the envelope, the
/// monitor id and update3's transaction id (all zeros on a standalone server), into the first
/// table and row.
const RECOGNIZE_PREFIX: usize = 128;
/// Frames remembered by default (decoded or only seen once): a client lagging behind the
/// fastest by up to this many distinct notifications still shares. Updates the server
/// composed for one lagging session are distinct, and there are many of them under load.
const DEFAULT_ENTRIES: usize = 1 << 16;
/// Bytes of frames whose decoded forms are kept, by default (the decoded forms are a few
/// times larger).
const DEFAULT_FRAME_BYTES: usize = 8 << 20;

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
    max_frame_bytes: usize,
    inner: Mutex<Inner>,
    lookups: AtomicU64,
    hits: AtomicU64,
    unframed: AtomicU64,
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
    /// Of the hits, those recognised in the receive buffer before being framed (neither
    /// scanned for their end nor parsed).
    pub unframed_hits: u64,
    /// Shared forms decoded (notifications seen twice or more).
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

/// Entries by frame hash, their order of arrival (oldest go first), and the decoded ones by
/// the hash of their first bytes (for [`UpdateCache::recognize`]).
#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry, BuildHasherDefault<KeyHash>>,
    order: VecDeque<u64>,
    decoded_by_prefix: HashMap<u64, Vec<u64>, BuildHasherDefault<KeyHash>>,
    /// Bytes of the frames whose decoded forms are held.
    decoded_bytes: usize,
}

impl Inner {
    fn evict_oldest(&mut self) {
        let Some(hash) = self.order.pop_front() else { return };
        let Some(entry) = self.entries.remove(&hash) else {
            return;
        };
        if entry.decoded.is_some() {
            self.decoded_bytes -= entry.key.len;
            if let Some(prefix) = entry.key.prefix {
                if let Some(list) = self.decoded_by_prefix.get_mut(&prefix) {
                    list.retain(|h| *h != hash);
                    if list.is_empty() {
                        self.decoded_by_prefix.remove(&prefix);
                    }
                }
            }
        }
    }
}

/// The keys are hashes already.
#[derive(Default)]
struct KeyHash(u64);

impl std::hash::Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A frame known by its length and hashes (comparing a 64-bit hash and the length stands in
/// for comparing bytes when a framed notification is looked up; frames come from the server
/// the client trusts). A decoded one keeps its text too: recognising it in a receive buffer
/// compares bytes, which the clients sharing it read from the cache, instead of hashing them.
struct Entry {
    key: FrameKey,
    decoded: Option<Decoded>,
}

struct Decoded {
    update: Arc<SharedUpdate>,
    text: Arc<[u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameKey {
    len: usize,
    hash: u64,
    /// Hash of the first [`RECOGNIZE_PREFIX`] bytes (`None` for shorter frames).
    prefix: Option<u64>,
}

impl FrameKey {
    fn of(frame: &[u8]) -> FrameKey {
        FrameKey {
            len: frame.len(),
            hash: hash(frame),
            prefix: frame.get(..RECOGNIZE_PREFIX).map(hash),
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6f76_6e68_6561_7465).hash_one(bytes)
}

/// One notification, decoded for every client: inserted rows carry their `_uuid`, so a filter
/// can judge them before anything is copied.
#[derive(Debug)]
pub(crate) struct SharedUpdate {
    pub(crate) monitor_id: String,
    pub(crate) txn_id: Option<Uuid>,
    pub(crate) tables: BTreeMap<String, BTreeMap<Uuid, RowChange>>,
}

/// What [`UpdateCache::recognize`] found at the start of a receive buffer.
pub(crate) enum Recognized {
    /// This many bytes are a notification decoded already.
    Whole(usize, Arc<SharedUpdate>),
    /// A decoded notification of this length may be arriving.
    Partial(usize),
    No,
}

/// What a client does with a framed notification.
pub(crate) enum Lookup {
    /// Apply this shared form.
    Hit(Arc<SharedUpdate>),
    /// Seen before but not yet decoded for sharing: decode it with [`UpdateCache::decode_shared`]
    /// (with this copy of its text).
    DecodeShared(FrameKey, Arc<[u8]>),
    /// First sight (or not a notification in ovsdb-server's layout): decode it for this client
    /// only, as without a cache.
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
    /// A cache decoding every table, remembering up to 65,536 notifications and keeping the
    /// decoded forms of up to 8 MiB of frames.
    pub fn new() -> Self {
        UpdateCache {
            tables: None,
            max_entries: DEFAULT_ENTRIES,
            max_frame_bytes: DEFAULT_FRAME_BYTES,
            inner: Mutex::new(Inner::default()),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            unframed: AtomicU64::new(0),
            shared_decodes: AtomicU64::new(0),
        }
    }

    /// Decode only tables for which `keep` is true. It must be true for every table any
    /// client's filter may keep ([`RowFilter::keeps_table`]): the others are never decoded.
    pub fn tables(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.tables = Some(Arc::new(keep));
        self
    }

    /// Remember at most `entries` notifications, and keep decoded forms of at most
    /// `frame_bytes` of frames (oldest go first).
    pub fn capacity(mut self, entries: usize, frame_bytes: usize) -> Self {
        self.max_entries = entries.max(1);
        self.max_frame_bytes = frame_bytes;
        self
    }

    pub fn stats(&self) -> UpdateCacheStats {
        UpdateCacheStats {
            lookups: self.lookups.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            unframed_hits: self.unframed.load(Ordering::Relaxed),
            shared_decodes: self.shared_decodes.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks a whole frame up; remembers it if it is a new notification.
    pub(crate) fn lookup(&self, frame: &[u8]) -> Lookup {
        if !frame.starts_with(NOTIFICATION_START) {
            return Lookup::Own;
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let key = FrameKey::of(frame);
        let mut inner = self.lock();
        match inner.entries.get(&key.hash) {
            Some(entry) if entry.key == key => {
                return match &entry.decoded {
                    Some(decoded) => {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        Lookup::Hit(decoded.update.clone())
                    }
                    None => Lookup::DecodeShared(key, frame.into()),
                }
            }
            // Another frame with the same hash holds the slot: this one is decoded as its own.
            Some(_) => return Lookup::Own,
            None => {}
        }
        if key.len <= self.max_frame_bytes {
            inner.entries.insert(key.hash, Entry { key, decoded: None });
            inner.order.push_back(key.hash);
            while inner.entries.len() > self.max_entries {
                inner.evict_oldest();
            }
        }
        Lookup::Own
    }

    /// Recognises a decoded notification at the start of `bytes` (a receive buffer, not yet
    /// framed). [`Recognized::Partial`] when a decoded notification starts the same way but is
    /// longer than what is buffered: reading the rest may complete it.
    pub(crate) fn recognize(&self, bytes: &[u8]) -> Recognized {
        if bytes.len() < RECOGNIZE_PREFIX || !bytes.starts_with(NOTIFICATION_START) {
            return Recognized::No;
        }
        let prefix = hash(&bytes[..RECOGNIZE_PREFIX]);
        let candidates: Vec<(Arc<[u8]>, Arc<SharedUpdate>)> = {
            let inner = self.lock();
            let Some(hashes) = inner.decoded_by_prefix.get(&prefix) else {
                return Recognized::No;
            };
            // Newest first: clients are usually at the most recent updates.
            hashes
                .iter()
                .rev()
                .filter_map(|h| inner.entries.get(h))
                .filter_map(|e| e.decoded.as_ref())
                .map(|d| (d.text.clone(), d.update.clone()))
                .collect()
        };
        let mut partial = None;
        for (text, decoded) in candidates {
            let Some(frame) = bytes.get(..text.len()) else {
                partial.get_or_insert(text.len());
                continue;
            };
            if frame == &text[..] {
                self.lookups.fetch_add(1, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.unframed.fetch_add(1, Ordering::Relaxed);
                return Recognized::Whole(text.len(), decoded);
            }
        }
        partial.map_or(Recognized::No, Recognized::Partial)
    }

    /// Decodes a notification's `params` for sharing and stores it under `key` (if its entry
    /// is still there). Two clients may race to do it; both results are equal.
    pub(crate) fn decode_shared(
        &self,
        key: FrameKey,
        text: Arc<[u8]>,
        method: MonitorMethod,
        params: &str,
    ) -> serde_json::Result<Arc<SharedUpdate>> {
        let filter = self
            .tables
            .clone()
            .map(|keep| Arc::new(TablesOnly(keep)) as SharedFilter);
        let decoded = decode_update_params(params, method, |_| filter)?;
        let mut tables = decoded.tables;
        for rows in tables.values_mut() {
            for (uuid, change) in rows.iter_mut() {
                if let RowChange::Insert(row) = change {
                    row.set("_uuid", Value::uuid(*uuid));
                }
            }
        }
        let decoded = Arc::new(SharedUpdate {
            monitor_id: decoded.monitor_id.as_str().unwrap_or_default().to_owned(),
            txn_id: decoded.txn_id,
            tables,
        });
        self.shared_decodes.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        let newly_decoded = match inner.entries.get_mut(&key.hash).filter(|e| e.key == key) {
            Some(entry) if entry.decoded.is_none() => {
                entry.decoded = Some(Decoded {
                    update: decoded.clone(),
                    text,
                });
                true
            }
            _ => false,
        };
        if newly_decoded {
            inner.decoded_bytes += key.len;
            if let Some(prefix) = key.prefix {
                inner.decoded_by_prefix.entry(prefix).or_default().push(key.hash);
            }
            // Decoded forms are what costs memory: the oldest entries go until they fit.
            while inner.decoded_bytes > self.max_frame_bytes && inner.order.len() > 1 {
                inner.evict_oldest();
            }
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

    const PARAMS: &str = r#"["m1","a0a0a0a0-0000-0000-0000-000000000001",{"T":{"b0b0b0b0-0000-0000-0000-000000000002":{"insert":{"name":"x"}}},"Skipped":{"c0c0c0c0-0000-0000-0000-000000000003":{"delete":null}}}]"#;

    fn frame(params: &str) -> String {
        format!(r#"{{"id":null,"method":"update3","params":{params}}}"#)
    }

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
        let update = frame(PARAMS);
        assert!(matches!(cache.lookup(update.as_bytes()), Lookup::Own));
        let Lookup::DecodeShared(key, text) = cache.lookup(update.as_bytes()) else {
            panic!("to be decoded for sharing")
        };
        // Not decoded yet: nothing to recognise.
        assert!(matches!(cache.recognize(update.as_bytes()), Recognized::No));
        let decoded = cache
            .decode_shared(key, text, MonitorMethod::CondSince, PARAMS)
            .unwrap();
        assert_eq!(decoded.monitor_id, "m1");
        assert!(!decoded.tables.contains_key("Skipped"));
        let uuid = Uuid::parse("b0b0b0b0-0000-0000-0000-000000000002").unwrap();
        let RowChange::Insert(row) = &decoded.tables["T"][&uuid] else {
            panic!("an insert")
        };
        assert_eq!(row.get("_uuid").and_then(Value::as_uuid), Some(uuid));
        let Lookup::Hit(hit) = cache.lookup(update.as_bytes()) else {
            panic!("a hit")
        };
        assert!(Arc::ptr_eq(&hit, &decoded));
        // In a receive buffer, followed by the start of the next message.
        let buffered = format!("{update}{{\"id\":null,");
        let Recognized::Whole(len, recognised) = cache.recognize(buffered.as_bytes()) else {
            panic!("recognised unframed")
        };
        assert_eq!(len, update.len());
        assert!(Arc::ptr_eq(&recognised, &decoded));
        // Cut short, or one byte changed: not this update.
        assert!(matches!(
            cache.recognize(&update.as_bytes()[..update.len() - 1]),
            Recognized::Partial(len) if len == update.len()
        ));
        let changed = update.replace(r#""x""#, r#""y""#);
        assert!(matches!(cache.recognize(changed.as_bytes()), Recognized::No));
        assert!(matches!(cache.lookup(changed.as_bytes()), Lookup::Own));
        // A reply, or another layout, is never looked up.
        assert!(matches!(
            cache.lookup(br#"{"id":1,"result":[],"error":null}"#),
            Lookup::Own
        ));
        assert_eq!(
            cache.stats(),
            UpdateCacheStats {
                lookups: 5,
                hits: 2,
                unframed_hits: 1,
                shared_decodes: 1
            }
        );
    }

    #[test]
    fn oldest_entries_go_first() {
        let cache = UpdateCache::new().capacity(2, 1 << 20);
        let frames: Vec<String> = (0..3).map(|i| frame(&format!(r#"["m1","{i}",{{}}]"#))).collect();
        for f in &frames {
            assert!(matches!(cache.lookup(f.as_bytes()), Lookup::Own));
        }
        assert!(matches!(cache.lookup(frames[0].as_bytes()), Lookup::Own), "evicted");
        assert!(matches!(cache.lookup(frames[2].as_bytes()), Lookup::DecodeShared(..)));
        // A frame larger than the whole budget is never kept.
        let small = UpdateCache::new().capacity(8, 16);
        let update = frame(PARAMS);
        assert!(matches!(small.lookup(update.as_bytes()), Lookup::Own));
        assert!(matches!(small.lookup(update.as_bytes()), Lookup::Own));
        // Decoded forms over the byte budget push the oldest entries out.
        let two = UpdateCache::new().capacity(8, 2 * update.len() + 10);
        let updates: Vec<String> = (0..3)
            .map(|i| frame(&PARAMS.replace("\"x\"", &format!("\"x{i}\""))))
            .collect();
        for u in &updates {
            two.lookup(u.as_bytes());
            let Lookup::DecodeShared(key, text) = two.lookup(u.as_bytes()) else {
                panic!("seen twice")
            };
            let params = &u[u.find("\"params\":").unwrap() + 9..u.len() - 1];
            two.decode_shared(key, text, MonitorMethod::CondSince, params).unwrap();
        }
        assert!(
            matches!(two.lookup(updates[0].as_bytes()), Lookup::Own),
            "evicted for room"
        );
        assert!(matches!(two.lookup(updates[2].as_bytes()), Lookup::Hit(_)));
    }
}
