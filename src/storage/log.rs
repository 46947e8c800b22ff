//! The raft log as a sled tree: index (big-endian, so sled's order is log
//! order) to an encoded entry. Entries are opaque bytes here.

use crate::storage::backend::{Batch, Db, Iter, Tree};
use crate::storage::error::{Result, be_u64};

#[derive(Clone)]
pub struct LogTree {
    tree: Tree,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn index_of(k: &[u8]) -> Result<u64> {
    be_u64(k, "a log key")
}

impl LogTree {
    pub(crate) fn open(db: &Db) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree("log")?,
        })
    }

    /// Writes entries in one atomic batch. Not yet durable: see `LogWriter`.
    pub fn append(&self, entries: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Result<()> {
        let mut batch = Batch::default();
        for (index, bytes) in entries {
            batch.insert(&key(index), bytes);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Entries with `start <= index < end`, in order.
    pub fn range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.tree
            .range(key(start)..key(end))
            .map(|kv| {
                let (k, v) = kv?;
                Ok((index_of(&k)?, v.to_vec()))
            })
            .collect()
    }

    pub fn first_index(&self) -> Result<Option<u64>> {
        match self.tree.first()? {
            Some((k, _)) => Ok(Some(index_of(&k)?)),
            None => Ok(None),
        }
    }

    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>> {
        match self.tree.last()? {
            Some((k, v)) => Ok(Some((index_of(&k)?, v.to_vec()))),
            None => Ok(None),
        }
    }

    /// Removes every entry with `index >= from`.
    pub fn truncate_from(&self, from: u64) -> Result<()> {
        self.remove_range(key(from).to_vec(), None)
    }

    /// Removes every entry with `index <= upto`.
    pub fn purge_upto(&self, upto: u64) -> Result<()> {
        match upto.checked_add(1) {
            Some(end) => self.remove_range(Vec::new(), Some(key(end).to_vec())),
            None => self.remove_range(Vec::new(), None),
        }
    }

    fn remove_range(&self, from: Vec<u8>, to: Option<Vec<u8>>) -> Result<()> {
        let mut batch = Batch::default();
        let keys: Iter = match to {
            Some(to) => self.tree.range(from..to),
            None => self.tree.range(from..),
        };
        for kv in keys {
            batch.remove(kv?.0);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, LogTree) {
        let (dir, db) = crate::storage::error::temp_db();
        (dir, LogTree::open(&db).unwrap())
    }

    #[test]
    fn append_range_truncate_purge() {
        let (_dir, log) = tree();
        log.append((1..=10).map(|i| (i, vec![i as u8]))).unwrap();
        assert_eq!(
            log.range(3, 6)
                .unwrap()
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(log.last().unwrap().unwrap().0, 10);
        log.truncate_from(8).unwrap();
        assert_eq!(log.last().unwrap().unwrap().0, 7);
        log.purge_upto(4).unwrap();
        assert_eq!(
            log.range(0, 100)
                .unwrap()
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        // 256 sorts after 255 only with big-endian keys.
        log.append([(255, vec![]), (256, vec![])]).unwrap();
        assert_eq!(log.last().unwrap().unwrap().0, 256);
    }
}
