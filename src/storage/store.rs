//! Opening a node's storage: claim the data directory, open sled with
//! explicit settings, and hand out the trees; closing it so the directory
//! is free again when `close` returns.
//!
//! With `StorageConfig::in_memory` the database is an in-memory one
//! (`storage::backend`), kept under the data directory's path and never
//! touching the disk: the deterministic simulation's storage.
//!
//! `Store` is a cheap handle (an `Arc`). Every part that holds sled alive
//! (trees, the log writer thread) hangs off the one `StoreParts`, so "the last handle
//! is gone" is observable and `close` can wait for it.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::backend::{self, Db};
use crate::storage::config::StorageConfig;
use crate::storage::data_dir::{self, Identity};
use crate::storage::error::{Result, StorageError};
use crate::storage::log::LogTree;
use crate::storage::log_writer::LogWriter;
use crate::storage::meta::MetaTree;
use crate::storage::snapshot_file::SnapshotFile;
use crate::storage::state::StateStore;

/// Everything one node keeps on disk.
pub struct StoreParts {
    db: Db,
    pub log: LogTree,
    pub meta: MetaTree,
    pub state: StateStore,
    pub snapshot: SnapshotFile,
    /// The last log index the snapshot file on disk covers (`None`: no
    /// snapshot). The log writer waits for it before it makes a purge point
    /// durable, because a purge point past the durable snapshot cannot be
    /// restarted from.
    pub snapshot_covers: watch::Sender<Option<u64>>,
    pub log_writer: LogWriter,
}

#[derive(Clone)]
pub struct Store {
    parts: Arc<StoreParts>,
}

impl Deref for Store {
    type Target = StoreParts;

    fn deref(&self) -> &StoreParts {
        &self.parts
    }
}

impl Store {
    /// Opens (or creates) the node's storage. Must run inside a tokio
    /// runtime (the log writer is submitted to from async code).
    pub fn open(data_dir: &Path, config: &StorageConfig, identity: &Identity) -> Result<Store> {
        if config.in_memory {
            let memory = backend::open_memory(data_dir);
            let snapshot = SnapshotFile::Memory(memory.snapshot.clone());
            return Self::open_parts(Db::Memory(memory), snapshot);
        }
        let db_path = data_dir::claim(data_dir, identity)?;
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(Some(config.flush_every_ms))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| open_error(data_dir, e))?;
        Self::open_parts(Db::Sled(db), SnapshotFile::new(data_dir))
    }

    fn open_parts(db: Db, snapshot: SnapshotFile) -> Result<Store> {
        let meta = MetaTree::open(&db)?;
        let log = LogTree::open(&db)?;
        let snapshot_covers = watch::channel(None).0;
        let parts = StoreParts {
            log_writer: LogWriter::spawn(
                db.clone(),
                log.clone(),
                meta.clone(),
                snapshot_covers.subscribe(),
            )?,
            log,
            state: StateStore::open(&db, &meta)?,
            snapshot,
            snapshot_covers,
            meta,
            db,
        };
        Ok(Store {
            parts: Arc::new(parts),
        })
    }

    /// Waits (up to `timeout`) until this is the last handle, flushes, and
    /// releases the database, so the data directory can be opened again at
    /// once. Tasks that held handles (raft workers) wind down
    /// asynchronously after they are stopped; this waits for them.
    pub async fn close(self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut parts = self.parts;
        let parts = loop {
            match Arc::try_unwrap(parts) {
                Ok(p) => break p,
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    parts = shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(shared) => {
                    return Err(StorageError::Io(format!(
                        "storage still in use by {} handles after {timeout:?}",
                        Arc::strong_count(&shared) - 1
                    )));
                }
            }
        };
        let StoreParts {
            db,
            log_writer,
            log,
            meta,
            state,
            ..
        } = parts;
        log_writer.stop().await;
        drop((log, meta, state));
        if db.is_memory() {
            return Ok(());
        }
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
        let first = Store::open(dir.path(), &StorageConfig::default(), &me).unwrap();
        let second = Store::open(dir.path(), &StorageConfig::default(), &me);
        let err = second.err().expect("second open must fail");
        assert!(matches!(err, StorageError::Locked { .. }), "{err}");
        // Once closed, the directory opens again at once.
        let held = first.clone();
        let close = tokio::spawn(first.close(Duration::from_secs(5)));
        drop(held);
        close.await.unwrap().unwrap();
        Store::open(dir.path(), &StorageConfig::default(), &me).expect("reopen after close");
    }
}
