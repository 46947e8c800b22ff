//! Why a CRDT request, operation or encoding is refused.

use crate::crdt::CRDT_ENCODING_VERSION;
use crate::crdt::ops::CrdtKind;
use crate::ids::RegionId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdtError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("a {op} operation cannot apply to a {value}")]
    WrongType { value: CrdtKind, op: CrdtKind },
    #[error("the counter share of region {region} would pass 2^64-1")]
    Overflow { region: RegionId },
    /// The operation depends on writes not applied here yet: the hub
    /// confirms causally, so this is a bug or a corrupted log.
    #[error("operation out of causal order: {0}")]
    NotCausal(String),
    #[error("malformed CRDT value: {0}")]
    Malformed(String),
    #[error(
        "CRDT value encoding version {0} is not one this node knows (it knows {CRDT_ENCODING_VERSION})"
    )]
    UnknownVersion(u8),
}
