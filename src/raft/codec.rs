//! Encoding of openraft values for sled and the replica transport, and the
//! mapping of storage errors into openraft's.

pub use crate::codec::{decode, encode};
use crate::raft::types::StorageError;

pub fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    openraft::StorageIOError::read(openraft::AnyError::new(&e)).into()
}

pub fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    openraft::StorageIOError::write(openraft::AnyError::new(&e)).into()
}

pub fn read_logs_err(e: impl std::error::Error + 'static) -> StorageError {
    openraft::StorageIOError::read_logs(openraft::AnyError::new(&e)).into()
}

pub fn write_logs_err(e: impl std::error::Error + 'static) -> StorageError {
    openraft::StorageIOError::write_logs(openraft::AnyError::new(&e)).into()
}
