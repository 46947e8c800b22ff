//! The conflict feed as a client reads it (`Conflicts.ReadFeed`), in
//! domain types: one [`FeedMessage`] per entry, each with the
//! continuation to resume after it.

use crate::conflict::ConflictKind;
use crate::glsn::Glsn;
use crate::ids::{RegionId, ReplicaId};

/// One entry of the feed: a write lost to a failover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictEntry {
    pub id: u64,
    /// `None` for a kind this client does not know.
    pub kind: Option<ConflictKind>,
    pub container: String,
    pub key: String,
    /// The lost write's value; `None` for a lost delete.
    pub value: Option<Vec<u8>>,
    /// The GLSN the write had in the history it was lost from.
    pub lost_glsn: Option<Glsn>,
    /// The epoch whose fork left it out.
    pub lost_in_epoch: u64,
    /// The region that held it.
    pub region: RegionId,
    /// Where the write region recorded it.
    pub recorded_glsn: Option<Glsn>,
}

/// An entry as the feed delivers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMessage {
    pub entry: ConflictEntry,
    /// Pass back to resume after this entry.
    pub continuation: String,
    pub served_by: Option<ReplicaId>,
}
