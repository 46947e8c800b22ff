//! Opening a node's storage: claim the data directory, open sled with
//! explicit settings, and hand out the trees.

use std::path::Path;

use crate::storage::config::StorageConfig;
use crate::storage::data_dir::{self, Identity};
use crate::storage::error::{Result, StorageError};
use crate::storage::flusher::Flusher;
use crate::storage::log::LogTree;
use crate::storage::meta::MetaTree;
use crate::storage::snapshot_file::SnapshotFile;
use crate::storage::state::StateStore;

/// Everything one node keeps on disk.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    pub log: LogTree,
    pub meta: MetaTree,
    pub state: StateStore,
    pub snapshot: SnapshotFile,
    pub flusher: Flusher,
}

impl Store {
    /// Opens (or creates) the node's storage. Must run inside a tokio
    /// runtime: the group-commit flusher is a task.
    pub fn open(data_dir: &Path, config: &StorageConfig, identity: &Identity) -> Result<Store> {
        let db_path = data_dir::claim(data_dir, identity)?;
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(Some(config.flush_every_ms))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| open_error(data_dir, e))?;
        let meta = MetaTree::open(&db)?;
        Ok(Store {
            log: LogTree::open(&db)?,
            state: StateStore::open(&db, &meta)?,
            snapshot: SnapshotFile::new(data_dir),
            flusher: Flusher::spawn(db.clone()),
            meta,
            db,
        })
    }

    /// Flushes everything; used at clean shutdown.
    pub async fn flush(&self) -> Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StorageError::Io(e.to_string()))??;
        Ok(())
    }
}

/// sled reports a held directory lock as a generic I/O error; name it.
fn open_error(data_dir: &Path, e: sled::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("lock")
        || text.contains("WouldBlock")
        || text.contains("temporarily unavailable")
    {
        StorageError::Locked {
            path: data_dir.into(),
        }
    } else {
        StorageError::Io(format!("opening {}: {text}", data_dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{NodeId, RegionId};

    #[tokio::test]
    async fn a_directory_in_use_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::new("dev", RegionId::new("west"), NodeId(1));
        let _first = Store::open(dir.path(), &StorageConfig::default(), &me).unwrap();
        let second = Store::open(dir.path(), &StorageConfig::default(), &me);
        let err = second.err().expect("second open must fail");
        assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    }
}
