//! The state machine's data: items, the geo log (every applied write by
//! LSN, for shipping to other regions) and a few named values (applied
//! position, membership, GLSN), kept in one sled tree so that one batch
//! updates items, geo log and the applied position atomically.
//!
//! A snapshot install writes a fresh tree ("generation") and then switches
//! the pointer in the meta tree, so a crash mid-install leaves the previous
//! state intact.

use std::sync::{Arc, Mutex, RwLock};

use serde_bytes::ByteBuf;

use crate::codec;
use crate::crash::{CrashPoint, crash_point};
use crate::glsn::Glsn;
use crate::item::{ItemVersion, KeyRange};
use crate::limits::SCAN_ITEM_OVERHEAD_BYTES;
use crate::storage::backend::{Batch, Db, Tree};
use crate::storage::error::{Result, StorageError, be_u64};
use crate::storage::meta::MetaTree;

const ITEM_TAG: u8 = b'i';
const VALUE_TAG: u8 = b'm';
const GEO_TAG: u8 = b'g';
/// Conflict feed entries by id.
const FEED_TAG: u8 = b'f';
/// Conflict feed: the id recorded for each lost GLSN (kept after the entry
/// is deleted, so a re-published write is not recorded again).
const LOST_TAG: u8 = b'l';
const GENERATION: &str = "state_generation";

/// Changes to apply atomically.
#[derive(Debug, Default)]
pub struct StateBatch {
    /// `None` deletes the item.
    pub items: Vec<(String, String, Option<ItemVersion>)>,
    pub values: Vec<(&'static str, Vec<u8>)>,
    /// Encoded geo log entries by LSN, appended.
    pub geo_append: Vec<(u64, Vec<u8>)>,
    /// Geo log entries up to this LSN (inclusive) are removed.
    pub geo_remove_upto: Option<u64>,
    /// Every item, geo log and feed entry is removed first (a re-sync
    /// begins).
    pub clear_data: bool,
    /// Conflict feed entries added: id, the lost GLSN, the encoded entry.
    pub feed_put: Vec<(u64, Glsn, Vec<u8>)>,
    /// Conflict feed entries removed, by id.
    pub feed_remove: Vec<u64>,
}

/// The whole state at one point, as a snapshot carries it.
/// One page of a scan as the state store reads it.
#[derive(Debug, Default)]
pub struct ScannedPage {
    /// Keys with their items, in key order.
    pub items: Vec<(String, ItemVersion)>,
    /// An item in range follows the last one: the scan has another page.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateImage {
    pub entries: Vec<(ByteBuf, ByteBuf)>,
}

impl StateImage {
    /// The items the image holds, as `(container, key, version)`.
    pub fn items(&self) -> Result<Vec<(String, String, ItemVersion)>> {
        let mut out = Vec::new();
        for (k, v) in &self.entries {
            let Some(rest) = k.strip_prefix(&[ITEM_TAG][..]) else {
                continue;
            };
            let split = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StorageError::Corrupt("item key without separator".into()))?;
            let text = |b: &[u8]| {
                std::str::from_utf8(b)
                    .map(str::to_string)
                    .map_err(|_| StorageError::Corrupt("item key is not UTF-8".into()))
            };
            out.push((
                text(&rest[..split])?,
                text(&rest[split + 1..])?,
                decode_item(v)?,
            ));
        }
        Ok(out)
    }

    /// The conflict feed entries the image holds, by id.
    pub fn feed(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.entries
            .iter()
            .filter(|(k, _)| k.first() == Some(&FEED_TAG))
            .map(|(k, v)| Ok((be_u64(&k[1..], "a feed key")?, v.to_vec())))
            .collect()
    }

    /// A named value of the image, encoded.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        let key = value_key(name);
        self.entries
            .iter()
            .find(|(k, _)| k.as_slice() == key.as_slice())
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Clone)]
pub struct StateStore {
    db: Db,
    meta: MetaTree,
    /// The current generation's tree. A std lock: held only to clone the
    /// handle or swap it, never across an `.await`.
    tree: Arc<RwLock<Tree>>,
    /// Serialises applies with exports and scan pages so each sees one
    /// point in time. Held across sled calls only, never across an `.await`.
    apply_lock: Arc<Mutex<()>>,
}

pub(crate) fn item_key(container: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + container.len() + key.len());
    k.push(ITEM_TAG);
    k.extend_from_slice(container.as_bytes());
    // Container names never contain NUL, so this separator is unambiguous.
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn value_key(name: &str) -> Vec<u8> {
    let mut k = vec![VALUE_TAG];
    k.extend_from_slice(name.as_bytes());
    k
}

fn geo_key(lsn: u64) -> [u8; 9] {
    let mut k = [GEO_TAG; 9];
    k[1..].copy_from_slice(&lsn.to_be_bytes());
    k
}

fn feed_key(id: u64) -> [u8; 9] {
    let mut k = [FEED_TAG; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn lost_key(glsn: Glsn) -> [u8; 17] {
    let mut k = [LOST_TAG; 17];
    k[1..9].copy_from_slice(&glsn.epoch.to_be_bytes());
    k[9..].copy_from_slice(&glsn.lsn.to_be_bytes());
    k
}

fn generation_tree(db: &Db, generation: u64) -> Result<Tree> {
    db.open_tree(&format!("state.{generation}"))
}

impl StateStore {
    pub(crate) fn open(db: &Db, meta: &MetaTree) -> Result<Self> {
        let generation = read_generation(meta)?;
        Ok(Self {
            db: db.clone(),
            meta: meta.clone(),
            tree: Arc::new(RwLock::new(generation_tree(db, generation)?)),
            apply_lock: Arc::new(Mutex::new(())),
        })
    }

    fn current(&self) -> Tree {
        self.tree.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get_item(&self, container: &str, key: &str) -> Result<Option<ItemVersion>> {
        match self.current().get(item_key(container, key))? {
            Some(bytes) => Ok(Some(decode_item(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Items of `container` in key order within `range`, starting after
    /// `after` when given. The page takes at most `items_max` items and
    /// stops before an item that would carry it past `bytes_max` (each
    /// item counted as key + value + [`SCAN_ITEM_OVERHEAD_BYTES`]), but
    /// always takes the first, so every item can be reached. `more` says
    /// whether an item in range was left for the next page.
    pub fn scan_items(
        &self,
        container: &str,
        range: &KeyRange,
        after: Option<&str>,
        items_max: usize,
        bytes_max: usize,
    ) -> Result<ScannedPage> {
        let lower = scan_lower_bound(container, range, after);
        let container_prefix = item_key(container, "");
        let mut page = ScannedPage::default();
        let mut bytes = 0usize;
        // A page is read at one point in time: without the lock a page could
        // show a later write of a batch and miss an earlier one (a broken
        // prefix). Pages are bounded in items and bytes, so this is short.
        let _guard = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        for kv in self.current().range(lower..) {
            let (k, v) = kv?;
            let Some(raw_key) = k.strip_prefix(container_prefix.as_slice()) else {
                break;
            };
            let key = std::str::from_utf8(raw_key)
                .map_err(|_| StorageError::Corrupt("item key is not UTF-8".into()))?;
            if after == Some(key) {
                continue;
            }
            if !key.starts_with(&range.prefix) && key > range.prefix.as_str() {
                break;
            }
            if range.end.as_deref().is_some_and(|e| key >= e) {
                break;
            }
            if !range.contains(key) {
                continue;
            }
            let item = decode_item(&v)?;
            let cost = key.len() + item.value.len() + SCAN_ITEM_OVERHEAD_BYTES;
            let full = page.items.len() >= items_max || bytes + cost > bytes_max;
            if full && !page.items.is_empty() {
                page.more = true;
                break;
            }
            bytes += cost;
            page.items.push((key.to_string(), item));
        }
        Ok(page)
    }

    /// A digest of every item (key, value, etag), for comparing replicas
    /// after quiescence: equal digests mean equal item sets. FNV-1a, stable
    /// across processes and versions. O(items); for verification, not a
    /// hot path.
    pub fn items_digest(&self) -> Result<String> {
        const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = FNV_OFFSET;
        let mut items = 0u64;
        let mut feed = |bytes: &[u8]| {
            for b in bytes.iter().chain(&(bytes.len() as u64).to_be_bytes()) {
                hash = (hash ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
            }
        };
        let _guard = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        for kv in self.current().scan_prefix([ITEM_TAG]) {
            let (k, v) = kv?;
            feed(&k);
            feed(&v);
            items += 1;
        }
        Ok(format!("{items}:{hash:016x}"))
    }

    pub fn get_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.current().get(value_key(name))?.map(|v| v.to_vec()))
    }

    /// Geo log entries from `from_lsn` on, in LSN order, until `bytes_max`
    /// is reached (at least one entry when there is one).
    pub fn geo_read(
        &self,
        from_lsn: u64,
        entries_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for kv in self.current().range(geo_key(from_lsn)..geo_key(u64::MAX)) {
            let (k, v) = kv?;
            let lsn = be_u64(&k[1..], "a geo log key")?;
            bytes += v.len();
            out.push((lsn, v.to_vec()));
            if out.len() >= entries_max || bytes >= bytes_max {
                break;
            }
        }
        Ok(out)
    }

    /// Conflict feed entries with ids above `after`, in id order, at most
    /// `max`.
    pub fn feed_read(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let from = after.saturating_add(1);
        let mut out = Vec::new();
        for kv in self.current().range(feed_key(from)..=feed_key(u64::MAX)) {
            let (k, v) = kv?;
            out.push((be_u64(&k[1..], "a feed key")?, v.to_vec()));
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Whether the feed ever recorded the write lost at `glsn`.
    pub fn feed_recorded(&self, glsn: Glsn) -> Result<bool> {
        self.current().contains_key(lost_key(glsn))
    }

    /// Whether the feed holds an entry `id`.
    pub fn feed_contains(&self, id: u64) -> Result<bool> {
        self.current().contains_key(feed_key(id))
    }

    /// The LSN of the oldest geo log entry kept.
    pub fn geo_first(&self) -> Result<Option<u64>> {
        match self.current().range(geo_key(0)..geo_key(u64::MAX)).next() {
            Some(kv) => Ok(Some(be_u64(&kv?.0[1..], "a geo log key")?)),
            None => Ok(None),
        }
    }

    /// Applies items and values in one atomic batch.
    pub fn apply(&self, batch: StateBatch) -> Result<()> {
        let mut writes = Batch::default();
        let tree = self.current();
        if batch.clear_data {
            for tag in [ITEM_TAG, GEO_TAG, FEED_TAG, LOST_TAG] {
                for k in tree.scan_prefix([tag]).keys() {
                    writes.remove(k?);
                }
            }
        }
        if let Some(upto) = batch.geo_remove_upto {
            for k in tree.range(geo_key(0)..=geo_key(upto)).keys() {
                writes.remove(k?);
            }
        }
        for (lsn, entry) in batch.geo_append {
            writes.insert(&geo_key(lsn)[..], entry);
        }
        for (id, lost, entry) in batch.feed_put {
            writes.insert(&feed_key(id)[..], entry);
            writes.insert(&lost_key(lost)[..], &id.to_be_bytes()[..]);
        }
        for id in batch.feed_remove {
            writes.remove(&feed_key(id)[..]);
        }
        for (container, key, item) in batch.items {
            match item {
                Some(item) => writes.insert(item_key(&container, &key), codec::encode(&item)),
                None => writes.remove(item_key(&container, &key)),
            }
        }
        for (name, value) in batch.values {
            writes.insert(value_key(name), value);
        }
        let _guard = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        tree.apply_batch(writes)?;
        Ok(())
    }

    /// Everything in the state, at one point in time (applies wait).
    pub fn export(&self) -> Result<StateImage> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        let entries = self
            .current()
            .iter()
            .map(|kv| kv.map(|(k, v)| (ByteBuf::from(k.to_vec()), ByteBuf::from(v.to_vec()))))
            .collect::<sled::Result<Vec<_>>>()?;
        Ok(StateImage { entries })
    }

    /// Replaces the whole state with `image`: written into a new generation,
    /// made durable, then switched to; the old generation is dropped after.
    pub fn import(&self, image: StateImage) -> Result<()> {
        let _guard = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = read_generation(&self.meta)?;
        let next = old + 1;
        let fresh = generation_tree(&self.db, next)?;
        fresh.clear()?;
        let mut batch = Batch::default();
        for (k, v) in image.entries {
            batch.insert(k.into_vec(), v.into_vec());
        }
        fresh.apply_batch(batch)?;
        self.db.flush()?;
        crash_point(CrashPoint::MidSnapshotInstall);
        self.meta.set(GENERATION, &next.to_be_bytes())?;
        self.db.flush()?;
        *self.tree.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.db.drop_tree(&format!("state.{old}"))?;
        Ok(())
    }
}

fn read_generation(meta: &MetaTree) -> Result<u64> {
    match meta.get(GENERATION)? {
        None => Ok(0),
        Some(bytes) => be_u64(&bytes, "the state generation"),
    }
}

fn scan_lower_bound(container: &str, range: &KeyRange, after: Option<&str>) -> Vec<u8> {
    let mut lower = range.prefix.as_str();
    if let Some(start) = range.start.as_deref()
        && start > lower
    {
        lower = start;
    }
    if let Some(after) = after
        && after > lower
    {
        lower = after;
    }
    item_key(container, lower)
}

fn decode_item(bytes: &[u8]) -> Result<ItemVersion> {
    codec::decode("stored item", bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glsn::Glsn;
    use crate::ids::RegionId;
    use crate::item::Etag;

    fn store() -> (tempfile::TempDir, StateStore) {
        let (dir, db) = crate::storage::error::temp_db();
        let meta = MetaTree::open(&db).unwrap();
        (dir, StateStore::open(&db, &meta).unwrap())
    }

    fn item(lsn: u64) -> ItemVersion {
        ItemVersion {
            value: vec![lsn as u8],
            etag: Etag::for_write(Glsn::new(1, lsn)),
            glsn: Glsn::new(1, lsn),
            ts: lsn,
            origin_region: RegionId::new("west"),
        }
    }

    fn put_all(s: &StateStore, container: &str, keys: &[&str]) {
        let items = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (container.to_string(), k.to_string(), Some(item(i as u64))));
        s.apply(StateBatch {
            items: items.collect(),
            values: vec![],
            ..StateBatch::default()
        })
        .unwrap();
    }

    /// The keys of a page, and whether it says more follow.
    fn keys(page: ScannedPage) -> (Vec<String>, bool) {
        (page.items.into_iter().map(|(k, _)| k).collect(), page.more)
    }

    fn owned(keys: &[&str], more: bool) -> (Vec<String>, bool) {
        (keys.iter().map(|k| k.to_string()).collect(), more)
    }

    #[test]
    fn scans_respect_container_prefix_range_and_paging() {
        let (_d, s) = store();
        put_all(&s, "a", &["u/1", "u/2", "u/3", "v/1", "w"]);
        put_all(&s, "ab", &["u/9"]);
        let prefix = KeyRange {
            prefix: "u/".into(),
            ..Default::default()
        };
        let scan = |c: &str, r: &KeyRange, after: Option<&str>, n: usize, bytes: usize| {
            keys(s.scan_items(c, r, after, n, bytes).unwrap())
        };
        assert_eq!(
            scan("a", &prefix, None, 100, usize::MAX),
            owned(&["u/1", "u/2", "u/3"], false)
        );
        assert_eq!(
            scan("a", &prefix, Some("u/1"), 1, usize::MAX),
            owned(&["u/2"], true)
        );
        // A page that ends exactly at the last item in range says so.
        assert_eq!(
            scan("a", &prefix, Some("u/1"), 2, usize::MAX),
            owned(&["u/2", "u/3"], false)
        );
        let range = KeyRange {
            prefix: String::new(),
            start: Some("u/2".into()),
            end: Some("w".into()),
        };
        assert_eq!(
            scan("a", &range, None, 100, usize::MAX),
            owned(&["u/2", "u/3", "v/1"], false)
        );
        assert_eq!(
            scan("ab", &KeyRange::default(), None, 100, usize::MAX),
            owned(&["u/9"], false)
        );
    }

    #[test]
    fn scan_pages_stay_within_bytes_but_always_take_one_item() {
        let (_d, s) = store();
        put_all(&s, "a", &["k1", "k2", "k3"]);
        // Each item costs its 2-byte key, 1-byte value and the overhead.
        let cost = 3 + SCAN_ITEM_OVERHEAD_BYTES;
        let all = KeyRange::default();
        let scan = |after: Option<&str>, bytes: usize| {
            keys(s.scan_items("a", &all, after, 100, bytes).unwrap())
        };
        assert_eq!(scan(None, 2 * cost), owned(&["k1", "k2"], true));
        assert_eq!(scan(None, 2 * cost - 1), owned(&["k1"], true));
        // An item larger than the whole budget still comes, alone.
        assert_eq!(scan(None, 1), owned(&["k1"], true));
        assert_eq!(scan(Some("k2"), 1), owned(&["k3"], false));
        assert_eq!(scan(None, 3 * cost), owned(&["k1", "k2", "k3"], false));
    }

    #[test]
    fn import_replaces_state_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let image = {
            let db = Db::Sled(
                sled::Config::new()
                    .path(dir.path().join("one"))
                    .open()
                    .unwrap(),
            );
            let meta = MetaTree::open(&db).unwrap();
            let s = StateStore::open(&db, &meta).unwrap();
            put_all(&s, "c", &["k1", "k2"]);
            s.export().unwrap()
        };
        let path = dir.path().join("two");
        {
            let db = Db::Sled(sled::Config::new().path(&path).open().unwrap());
            let meta = MetaTree::open(&db).unwrap();
            let s = StateStore::open(&db, &meta).unwrap();
            put_all(&s, "c", &["stale"]);
            s.import(image.clone()).unwrap();
            assert!(s.get_item("c", "stale").unwrap().is_none());
        }
        let db = Db::Sled(sled::Config::new().path(&path).open().unwrap());
        let meta = MetaTree::open(&db).unwrap();
        let s = StateStore::open(&db, &meta).unwrap();
        assert_eq!(s.export().unwrap(), image);
    }
}
