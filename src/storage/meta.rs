//! Small named values of a node (vote, committed position, purge point,
//! state generation) in their own sled tree.

use crate::storage::backend::{Db, Tree};
use crate::storage::error::Result;

#[derive(Clone)]
pub struct MetaTree {
    tree: Tree,
}

impl MetaTree {
    pub(crate) fn open(db: &Db) -> Result<Self> {
        Ok(Self {
            tree: db.open_tree("meta")?,
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(name)?.map(|v| v.to_vec()))
    }

    /// Stores a value; it survives a crash only once sled flushes.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<()> {
        self.tree.insert(name, value)
    }
}
