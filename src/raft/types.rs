//! The openraft type configurations: a region's replica set
//! (`TypeConfig`: commands in, write outcomes out) and the account's meta
//! group (`MetaTypeConfig`: meta commands in, meta replies out). Both use
//! the same node ids, entries and snapshot shape, so the storage adapters
//! and the transport serve both (`Group`).

use std::io::Cursor;

use crate::command::{Command, WriteOutcome};
use crate::meta::{MetaCommand, MetaReply};

openraft::declare_raft_types!(
    /// A region's replica set: commands in, write outcomes out.
    pub TypeConfig:
        D = Command,
        R = Vec<WriteOutcome>,
        NodeId = u64,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = crate::raft::runtime::MeridianRuntime,
);

openraft::declare_raft_types!(
    /// The meta group: account settings, leases, the strong set.
    pub MetaTypeConfig:
        D = MetaCommand,
        R = MetaReply,
        NodeId = u64,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<MetaTypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = crate::raft::runtime::MeridianRuntime,
);

/// What the storage adapters and the transport need of a raft group's
/// types; both groups' configurations have it.
pub trait Group:
    openraft::RaftTypeConfig<
        NodeId = u64,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<Self>,
        SnapshotData = Cursor<Vec<u8>>,
        D: Clone,
    >
{
    /// Which group a transport envelope belongs to.
    const WIRE_GROUP: u32;
}

impl Group for TypeConfig {
    const WIRE_GROUP: u32 = GROUP_REGION;
}

impl Group for MetaTypeConfig {
    const WIRE_GROUP: u32 = GROUP_META;
}

/// `Envelope.group` of the region's replica set.
pub const GROUP_REGION: u32 = 0;
/// `Envelope.group` of the meta group.
pub const GROUP_META: u32 = 1;

pub type Raft = openraft::Raft<TypeConfig>;
pub type MetaRaft = openraft::Raft<MetaTypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::EmptyNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::EmptyNode>;
