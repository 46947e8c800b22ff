//! A multi-write write as the hub confirms it, and a version as a key keeps
//! it.

use serde::{Deserialize, Serialize};

use crate::crdt::CrdtOp;
use crate::dot::{Dot, VersionVector};

/// Whether the origin saw a live version of the key when it took a put.
/// Two concurrent inserts are an insert/insert conflict; anything else
/// between puts is replace/replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PutKind {
    Insert,
    Replace,
}

/// What a write does to its item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// A put to a policy container (`lww`, `lww:/path`, `custom`).
    Put { value: Vec<u8>, kind: PutKind },
    /// A delete in a policy container: it leaves a tombstone version.
    Delete,
    /// An operation on a CRDT item.
    Crdt(CrdtOp),
}

impl WriteOp {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Put { .. } => "put",
            Self::Delete => "delete",
            Self::Crdt(_) => "CRDT operation",
        }
    }
}

/// One tentative write, shipped by its origin to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub dot: Dot,
    /// The origin's HLC timestamp (`hlc.rs`).
    pub ts: u64,
    pub container: String,
    pub key: String,
    pub op: WriteOp,
    /// The origin region's version vector when it took the write: the
    /// confirmed writes it had received plus its own tentative writes, so
    /// its own entry is `dot.lsn - 1`. Every write this covers was seen by
    /// the origin; on the same key, this write overwrites them.
    pub base: VersionVector,
}

/// What a version of a policy item holds: a value or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Value { value: Vec<u8>, kind: PutKind },
    Tombstone,
}

/// One confirmed version of a policy item: a leaf of its key's frontier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub dot: Dot,
    pub ts: u64,
    pub body: Body,
}

impl Version {
    pub fn is_tombstone(&self) -> bool {
        matches!(self.body, Body::Tombstone)
    }

    /// The value, `None` for a tombstone (the item reads as absent).
    pub fn value(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Value { value, .. } => Some(value),
            Body::Tombstone => None,
        }
    }
}
