//! What the key-value requests answer, in domain types: a write's result,
//! an item, a read and a scan page, each naming the node that served it
//! and the session token to present next.

use crate::glsn::Glsn;
use crate::ids::{RegionId, ReplicaId};

/// The answer to a put, create, replace or delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The new version's etag; empty for a delete.
    pub etag: String,
    pub glsn: Option<Glsn>,
    /// The token to present in later session reads, e.g. `e1:42`.
    pub session_token: String,
    pub served_by: Option<ReplicaId>,
}

/// One item as a read returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub container: String,
    pub key: String,
    pub value: Vec<u8>,
    pub etag: String,
    /// The GLSN of the write that made this version.
    pub glsn: Option<Glsn>,
    /// Its HLC timestamp.
    pub ts: u64,
    /// The region whose write made it.
    pub origin_region: RegionId,
}

/// The answer to a get: the item, or `None` when the key does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    pub item: Option<Item>,
    /// The position the replica read at.
    pub read_glsn: Option<Glsn>,
    pub session_token: String,
    pub served_by: Option<ReplicaId>,
}

/// One page of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    pub items: Vec<Item>,
    /// Where the next page starts; empty when this is the last one.
    pub continuation: String,
    pub read_glsn: Option<Glsn>,
    pub session_token: String,
    pub served_by: Option<ReplicaId>,
}
