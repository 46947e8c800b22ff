//! The conflict feed (DESIGN.md "Words"): a durable, ordered feed of
//! conflicts and lost writes that clients read and delete entries from.
//!
//! Single-write mode has one kind: `UnreplicatedWrite`, a write that a
//! region held past a fork (a former write region's unshipped writes, or
//! entries a cut-off read region had received) and that the new history
//! does not have. The region re-joining publishes each to the write region,
//! which records it as a geo log entry, so the feed reaches every region in
//! GLSN order and survives later failovers. An entry's id is the LSN of
//! the GLSN that recorded it: ids only grow, and a reader resumes after the
//! last id it saw. A write is recorded once however often it is published
//! (the lost GLSN is the key).

use serde::{Deserialize, Serialize};

use crate::glsn::Glsn;
use crate::ids::RegionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    UnreplicatedWrite,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::UnreplicatedWrite => "UNREPLICATED_WRITE",
        }
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    pub kind: ConflictKind,
    pub container: String,
    pub key: String,
    /// The lost write's value; `None` for a lost delete.
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
    /// The GLSN the write had in the history it was lost from.
    pub lost_glsn: Glsn,
    /// The epoch whose fork left it out.
    pub lost_in_epoch: u64,
    /// The region that held it and published it.
    pub region: RegionId,
}

/// A feed entry as stored and served: its id and what it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub id: u64,
    /// Where the write region recorded it.
    pub recorded_glsn: Glsn,
    pub recorded_ts: u64,
    pub record: ConflictRecord,
}
