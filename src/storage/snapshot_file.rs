//! The current snapshot, kept as one file beside the database so a node can
//! send it to a lagging replica after a restart. Replaced atomically. An
//! in-memory database (`storage::backend`) keeps it in memory instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::storage::error::Result;

const FILE: &str = "snapshot.bin";

#[derive(Clone)]
pub enum SnapshotFile {
    File {
        path: PathBuf,
    },
    /// A std lock: held to copy the bytes in or out, never across an
    /// `.await`.
    Memory(Arc<Mutex<Option<Vec<u8>>>>),
}

impl SnapshotFile {
    pub fn new(data_dir: &Path) -> Self {
        SnapshotFile::File {
            path: data_dir.join(FILE),
        }
    }

    pub fn load(&self) -> Result<Option<Vec<u8>>> {
        let path = match self {
            SnapshotFile::File { path } => path,
            SnapshotFile::Memory(slot) => {
                return Ok(slot.lock().unwrap_or_else(|p| p.into_inner()).clone());
            }
        };
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes to a temporary file, syncs it and renames it over the old one.
    pub fn save(&self, bytes: &[u8]) -> Result<()> {
        let path = match self {
            SnapshotFile::File { path } => path,
            SnapshotFile::Memory(slot) => {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes.to_vec());
                return Ok(());
            }
        };
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, bytes)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
