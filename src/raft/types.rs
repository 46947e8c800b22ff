//! The openraft type configuration of a region's replica set. An entry's
//! response is one outcome per write it carries (none for blank and
//! membership entries).

use std::io::Cursor;

use crate::command::{Command, WriteOutcome};

openraft::declare_raft_types!(
    /// A region's replica set: commands in, write outcomes out.
    pub TypeConfig:
        D = Command,
        R = Vec<WriteOutcome>,
        NodeId = u64,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::EmptyNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::EmptyNode>;
