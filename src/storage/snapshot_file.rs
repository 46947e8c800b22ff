//! The current snapshot, kept as one file beside the database so a node can
//! send it to a lagging replica after a restart. Replaced atomically.

use std::fs;
use std::path::{Path, PathBuf};

use crate::storage::error::Result;

const FILE: &str = "snapshot.bin";

#[derive(Clone)]
pub struct SnapshotFile {
    path: PathBuf,
}

impl SnapshotFile {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE),
        }
    }

    pub fn load(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes to a temporary file, syncs it and renames it over the old one.
    pub fn save(&self, bytes: &[u8]) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, bytes)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
