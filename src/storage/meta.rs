//! Small named values of a node (vote, committed position, purge point,
//! state generation) in their own sled tree.

use crate::storage::error::Result;

#[derive(Clone)]
pub struct MetaTree {
    db: sled::Db,
    tree: sled::Tree,
}

impl MetaTree {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(Self {
            db: db.clone(),
            tree: db.open_tree("meta")?,
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(name)?.map(|v| v.to_vec()))
    }

    /// Stores a value; it survives a crash only once sled flushes.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<()> {
        self.tree.insert(name, value)?;
        Ok(())
    }

    /// Stores a value and flushes before returning: for the vote, which
    /// must be durable before a node answers a vote request.
    pub async fn set_durably(&self, name: &str, value: &[u8]) -> Result<()> {
        self.set(name, value)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| crate::storage::error::StorageError::Io(e.to_string()))??;
        Ok(())
    }
}
