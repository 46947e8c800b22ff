//! Storage errors. A data directory that belongs to someone else is its own
//! variant: the node must refuse to start rather than corrupt it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "data directory {path} belongs to {found}, not to {expected}: refusing to start so its data is not overwritten (point this node at its own data directory)"
    )]
    WrongDataDir {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "data directory {path} is not empty and is not a meridian data directory (no IDENTITY file): refusing to use it"
    )]
    ForeignDataDir { path: PathBuf },
    #[error("data directory {path} is in use by another running process")]
    Locked { path: PathBuf },
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("corrupt storage: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Io(e.to_string())
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError::Io(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Reads an 8-byte big-endian number stored by this module (log keys, the
/// state generation); anything else is corruption, named by `what`.
pub(crate) fn be_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("{what} is {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// A throwaway sled database for unit tests of the storage parts.
#[cfg(test)]
pub(crate) fn temp_db() -> (tempfile::TempDir, crate::storage::backend::Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path())
        .temporary(true)
        .open()
        .expect("open sled");
    (dir, crate::storage::backend::Db::Sled(db))
}
