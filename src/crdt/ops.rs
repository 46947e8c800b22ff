//! What passes through a CRDT item: the kinds of item, what a client asks
//! ([`CrdtRequest`]), the operation the origin sends ([`CrdtOp`]) and what
//! a read returns ([`CrdtRead`]). Operations are meridian's own types
//! (sorted maps), not the crate's, so the geo log carries stable bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::RegionId;

/// Per region, a count of that region's steps: the crate's vector clocks
/// and counter shares, as a sorted map without zero entries.
pub type Clock = BTreeMap<RegionId, u64>;

/// The CRDT types a container can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrdtKind {
    Counter,
    Set,
    Register,
}

impl CrdtKind {
    /// The client operations of this type, for error messages.
    pub fn operations(self) -> &'static str {
        match self {
            Self::Counter => "incr",
            Self::Set => "add or remove",
            Self::Register => "write",
        }
    }
}

impl fmt::Display for CrdtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Counter => "counter",
            Self::Set => "set",
            Self::Register => "register",
        })
    }
}

/// What a client asks of a CRDT item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrdtRequest {
    Incr { by: i64 },
    Add { member: String },
    Remove { member: String },
    Write { value: Vec<u8> },
}

impl CrdtRequest {
    pub fn kind(&self) -> CrdtKind {
        match self {
            Self::Incr { .. } => CrdtKind::Counter,
            Self::Add { .. } | Self::Remove { .. } => CrdtKind::Set,
            Self::Write { .. } => CrdtKind::Register,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Incr { .. } => "incr",
            Self::Add { .. } => "add",
            Self::Remove { .. } => "remove",
            Self::Write { .. } => "write",
        }
    }
}

/// The direction of a counter operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Up,
    Down,
}

/// What a write to a CRDT item carries: an operation made by the origin
/// from its view of the item, applied as is everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrdtOp {
    /// `region`'s share in direction `direction` becomes at least `total`.
    Counter {
        region: RegionId,
        direction: Direction,
        total: u64,
    },
    /// Adds `members` with the `step`-th add of `region` on this set.
    SetAdd {
        region: RegionId,
        step: u64,
        members: Vec<String>,
    },
    /// Removes the adds of `members` that `seen` covers.
    SetRemove { seen: Clock, members: Vec<String> },
    /// Writes `value`, replacing the siblings `clock` covers.
    RegisterWrite { clock: Clock, value: Vec<u8> },
}

impl CrdtOp {
    /// The client operation this came from, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Counter { .. } => "incr",
            Self::SetAdd { .. } => "add",
            Self::SetRemove { .. } => "remove",
            Self::RegisterWrite { .. } => "write",
        }
    }

    pub fn kind(&self) -> CrdtKind {
        match self {
            Self::Counter { .. } => CrdtKind::Counter,
            Self::SetAdd { .. } | Self::SetRemove { .. } => CrdtKind::Set,
            Self::RegisterWrite { .. } => CrdtKind::Register,
        }
    }
}

/// What a read of a CRDT item returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdtRead {
    Counter(i128),
    Set(Vec<String>),
    Register(Vec<Vec<u8>>),
}
