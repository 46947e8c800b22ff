//! The storage seam: the few operations of an ordered key-value database
//! that the raft log, the meta tree and the state store use, on sled (every
//! node outside a simulation) or in memory (the deterministic simulation).
//!
//! In memory, each tree is a `BTreeMap` behind a std lock, and a database
//! lives in a registry under its data directory's path, so a node that a
//! simulation crashes and starts again finds its data where it left it.
//! Every write is durable at once: a simulated crash loses nothing that
//! was written (the model is "fsync on every write", so crash tests on
//! sled, not the simulation, cover torn writes). Values are `sled::IVec`s
//! on both sides, so callers read them the same way.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sled::IVec;

use crate::storage::error::Result;

/// One database: sled's, or an in-memory one.
#[derive(Clone)]
pub enum Db {
    Sled(sled::Db),
    Memory(MemoryDb),
}

/// One ordered tree of a database.
#[derive(Clone)]
pub enum Tree {
    Sled(sled::Tree),
    Memory(MemoryTree),
}

/// Writes applied to a tree atomically.
#[derive(Debug, Default)]
pub struct Batch {
    /// `None` removes the key.
    writes: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.writes.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.writes.push((key.into(), None));
    }
}

/// Entries of a tree in key order. Not boxed: an iterator lives on the
/// stack for one scan, and boxing sled's would add an allocation to every
/// range read in production.
#[allow(clippy::large_enum_variant)]
pub enum Iter {
    Sled(sled::Iter),
    /// Copied out under the tree's lock: simulated trees are small.
    Memory(std::vec::IntoIter<(IVec, IVec)>),
}

impl Iterator for Iter {
    type Item = sled::Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sled(i) => i.next(),
            Iter::Memory(i) => i.next().map(Ok),
        }
    }
}

impl Iter {
    pub fn keys(self) -> impl Iterator<Item = sled::Result<IVec>> {
        self.map(|kv| kv.map(|(k, _)| k))
    }
}

impl Db {
    pub fn open_tree(&self, name: &str) -> Result<Tree> {
        match self {
            Db::Sled(db) => Ok(Tree::Sled(db.open_tree(name)?)),
            Db::Memory(db) => Ok(Tree::Memory(db.open_tree(name))),
        }
    }

    pub fn drop_tree(&self, name: &str) -> Result<()> {
        match self {
            Db::Sled(db) => {
                db.drop_tree(name)?;
            }
            Db::Memory(db) => db.drop_tree(name),
        }
        Ok(())
    }

    /// Makes every write so far durable (a no-op in memory, where every
    /// write already is).
    pub fn flush(&self) -> Result<()> {
        if let Db::Sled(db) = self {
            db.flush()?;
        }
        Ok(())
    }

    pub fn is_memory(&self) -> bool {
        matches!(self, Db::Memory(_))
    }
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>> {
        match self {
            Tree::Sled(t) => Ok(t.get(key)?),
            Tree::Memory(t) => Ok(t.map().get(key.as_ref()).cloned()),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> Result<()> {
        match self {
            Tree::Sled(t) => {
                t.insert(key, value)?;
            }
            Tree::Memory(t) => {
                t.map().insert(IVec::from(key.as_ref()), value.into());
            }
        }
        Ok(())
    }

    pub fn apply_batch(&self, batch: Batch) -> Result<()> {
        match self {
            Tree::Sled(t) => {
                let mut sled_batch = sled::Batch::default();
                for (k, v) in batch.writes {
                    match v {
                        Some(v) => sled_batch.insert(k, v),
                        None => sled_batch.remove(k),
                    }
                }
                t.apply_batch(sled_batch)?;
            }
            Tree::Memory(t) => {
                let mut map = t.map();
                for (k, v) in batch.writes {
                    match v {
                        Some(v) => map.insert(k, v),
                        None => map.remove(&k),
                    };
                }
            }
        }
        Ok(())
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self {
            Tree::Sled(t) => Iter::Sled(t.range(range)),
            Tree::Memory(t) => {
                let bound = |b: Bound<&K>| match b {
                    Bound::Included(k) => Bound::Included(IVec::from(k.as_ref())),
                    Bound::Excluded(k) => Bound::Excluded(IVec::from(k.as_ref())),
                    Bound::Unbounded => Bound::Unbounded,
                };
                let bounds = (bound(range.start_bound()), bound(range.end_bound()));
                let entries: Vec<_> = t
                    .map()
                    .range(bounds)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Iter::Memory(entries.into_iter())
            }
        }
    }

    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match self {
            Tree::Sled(t) => Iter::Sled(t.scan_prefix(prefix)),
            Tree::Memory(t) => {
                let prefix = prefix.as_ref();
                let entries: Vec<_> = t
                    .map()
                    .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Iter::Memory(entries.into_iter())
            }
        }
    }

    pub fn first(&self) -> Result<Option<(IVec, IVec)>> {
        match self {
            Tree::Sled(t) => Ok(t.first()?),
            Tree::Memory(t) => Ok(t
                .map()
                .first_key_value()
                .map(|(k, v)| (k.clone(), v.clone()))),
        }
    }

    pub fn last(&self) -> Result<Option<(IVec, IVec)>> {
        match self {
            Tree::Sled(t) => Ok(t.last()?),
            Tree::Memory(t) => Ok(t
                .map()
                .last_key_value()
                .map(|(k, v)| (k.clone(), v.clone()))),
        }
    }

    pub fn clear(&self) -> Result<()> {
        match self {
            Tree::Sled(t) => t.clear()?,
            Tree::Memory(t) => t.map().clear(),
        }
        Ok(())
    }
}

type Map = BTreeMap<IVec, IVec>;

/// An in-memory tree: a handle on a map shared with its database.
#[derive(Clone)]
pub struct MemoryTree {
    /// A std lock: held for one map operation, never across an `.await`.
    map: Arc<Mutex<Map>>,
}

impl MemoryTree {
    fn map(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An in-memory database: named trees, and the snapshot file a node keeps
/// beside its database.
#[derive(Clone, Default)]
pub struct MemoryDb {
    /// A std lock: held to find, add or drop a tree, never across an
    /// `.await`.
    trees: Arc<Mutex<BTreeMap<String, Arc<Mutex<Map>>>>>,
    pub(crate) snapshot: Arc<Mutex<Option<Vec<u8>>>>,
}

impl MemoryDb {
    fn open_tree(&self, name: &str) -> MemoryTree {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        MemoryTree {
            map: trees.entry(name.to_string()).or_default().clone(),
        }
    }

    fn drop_tree(&self, name: &str) {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = trees.remove(name) {
            map.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}

/// In-memory databases by data directory: what survives a simulated crash.
fn registry() -> &'static Mutex<HashMap<PathBuf, MemoryDb>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, MemoryDb>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The in-memory database of `data_dir`, created empty the first time.
pub fn open_memory(data_dir: &Path) -> MemoryDb {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(data_dir.to_path_buf())
        .or_default()
        .clone()
}

/// Forgets every in-memory database under `root` (a finished simulation).
pub fn forget_memory(root: &Path) {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|path, _| !path.starts_with(root));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> (tempfile::TempDir, Vec<Tree>) {
        let (dir, db) = crate::storage::error::temp_db();
        let memory = Db::Memory(MemoryDb::default());
        let trees = vec![db.open_tree("t").unwrap(), memory.open_tree("t").unwrap()];
        (dir, trees)
    }

    fn keys(iter: Iter) -> Vec<Vec<u8>> {
        iter.keys().map(|k| k.unwrap().to_vec()).collect()
    }

    #[test]
    fn memory_trees_answer_as_sled_does() {
        let (_dir, trees) = both();
        let mut answers = Vec::new();
        for tree in &trees {
            let mut batch = Batch::default();
            for k in [&b"a1"[..], b"a2", b"b1", b"b2", b"c"] {
                batch.insert(k, k);
            }
            batch.remove(&b"b2"[..]);
            tree.apply_batch(batch).unwrap();
            tree.insert(b"d", &b"dd"[..]).unwrap();
            answers.push((
                keys(tree.range(&b"a2"[..]..&b"c"[..])),
                keys(tree.range(&b"b"[..]..)),
                keys(tree.scan_prefix(b"a")),
                tree.first().unwrap().map(|(k, _)| k.to_vec()),
                tree.last().unwrap().map(|(_, v)| v.to_vec()),
                tree.get(b"b1").unwrap().map(|v| v.to_vec()),
                tree.contains_key(b"b2").unwrap(),
            ));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].0, vec![b"a2".to_vec(), b"b1".to_vec()]);
    }

    #[test]
    fn a_memory_database_outlives_its_handles_until_forgotten() {
        let root = Path::new("/memory-test/outlives");
        let db = Db::Memory(open_memory(&root.join("n1")));
        db.open_tree("t").unwrap().insert(b"k", &b"v"[..]).unwrap();
        drop(db);
        let again = Db::Memory(open_memory(&root.join("n1")));
        assert!(again.open_tree("t").unwrap().contains_key(b"k").unwrap());
        forget_memory(root);
        let fresh = Db::Memory(open_memory(&root.join("n1")));
        assert!(!fresh.open_tree("t").unwrap().contains_key(b"k").unwrap());
    }
}
