//! Commands: what a replica set commits and the state machine applies, and
//! the pure rule deciding whether a write applies to the current version.

use serde::{Deserialize, Serialize};

use crate::conflict::ConflictRecord;
use crate::geo::entry::GeoEntry;
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::item::{Etag, ItemVersion};

/// One entry of application data in the region's raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Writes proposed together (proposal batching): applied in order, each
    /// with its own GLSN and outcome, committed all-or-nothing.
    Writes(Vec<WriteCommand>),
    /// Geo log entries shipped from the write region, in GLSN order.
    /// Entries the region already has are skipped; an entry that does not
    /// follow the applied GLSN stops the batch (nothing after it applies).
    Ship(Vec<GeoEntry>),
    /// Write region: records writes lost to a fork in the conflict feed,
    /// each once (by lost GLSN), each as a geo log entry.
    RecordConflicts {
        records: Vec<ConflictRecord>,
        ts: u64,
    },
    /// Write region: deletes conflict feed entry `id` (NotFound if absent).
    DeleteConflict {
        id: u64,
        ts: u64,
    },
    /// This region became the write region of `epoch`: its writes from now
    /// on carry it, and shipped entries of older epochs are refused.
    BeginEpoch {
        epoch: u64,
    },
    /// Every online region has acknowledged the geo log up to this LSN: its
    /// entries may go.
    TrimGeoLog {
        upto_lsn: u64,
    },
    /// A re-sync from another region's state image: `ResyncBegin` drops
    /// every item and the geo log, `ResyncItems` pages refill them, and
    /// `ResyncEnd` sets the GLSN the image was taken at. Reads are refused
    /// in between.
    ResyncBegin,
    ResyncItems(Vec<(String, String, ItemVersion)>),
    /// Conflict feed entries of the image (encoded `FeedEntry`s by id).
    ResyncFeed(Vec<(u64, serde_bytes::ByteBuf)>),
    ResyncEnd {
        glsn: Glsn,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCommand {
    pub container: String,
    pub key: String,
    pub op: WriteOp,
    /// Hybrid logical clock timestamp given by the proposing node.
    pub ts: u64,
    pub origin_region: RegionId,
    /// The epoch whose write lease the write region's leader held when it
    /// took the write (stamped under its write permit). The write applies
    /// only while the region still writes in that epoch: a batch that was
    /// held up (a leader cut off, then forwarding to its successor) and
    /// lands after the region lost the writes is refused, not given a
    /// GLSN of an epoch written elsewhere.
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    Put {
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        precondition: Precondition,
    },
    Delete {
        if_match: Option<Etag>,
    },
}

/// What must hold of the current version for a put to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// Upsert.
    None,
    /// Create: fails when the key is present.
    Absent,
    /// Replace: fails when absent, or when `if_match` differs.
    Present { if_match: Option<Etag> },
}

/// Why a write did not apply. Deterministic: every replica reaches the same
/// verdict for the same log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("item already exists")]
    AlreadyExists,
    #[error("item not found")]
    NotFound,
    #[error("etag mismatch: the item's current etag is {current}")]
    EtagMismatch { current: Etag },
    /// The region no longer writes in the epoch the write was taken in.
    #[error("the write was taken in epoch {taken}, which this region no longer writes in")]
    EpochEnded { taken: u64 },
}

/// The state machine's answer to one applied command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOutcome {
    /// The write applied at `glsn`. `etag` is the new version's (none for
    /// a delete).
    Applied { glsn: Glsn, etag: Option<Etag> },
    /// The write was committed to the log but changed nothing.
    Rejected {
        rejection: Rejection,
        applied_glsn: Glsn,
    },
}

/// Decides whether `op` applies to the item's `current` version.
pub fn check(op: &WriteOp, current: Option<&ItemVersion>) -> Result<(), Rejection> {
    let if_match = match (op, current) {
        (
            WriteOp::Put {
                precondition: Precondition::None,
                ..
            },
            _,
        ) => return Ok(()),
        (
            WriteOp::Put {
                precondition: Precondition::Absent,
                ..
            },
            None,
        ) => return Ok(()),
        (
            WriteOp::Put {
                precondition: Precondition::Absent,
                ..
            },
            Some(_),
        ) => {
            return Err(Rejection::AlreadyExists);
        }
        (
            WriteOp::Put {
                precondition: Precondition::Present { .. },
                ..
            },
            None,
        )
        | (WriteOp::Delete { .. }, None) => return Err(Rejection::NotFound),
        (
            WriteOp::Put {
                precondition: Precondition::Present { if_match },
                ..
            },
            Some(_),
        ) => if_match,
        (WriteOp::Delete { if_match }, Some(_)) => if_match,
    };
    match (if_match, current) {
        (Some(expected), Some(item)) if *expected != item.etag => Err(Rejection::EtagMismatch {
            current: item.etag.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(lsn: u64) -> ItemVersion {
        let glsn = Glsn::new(1, lsn);
        ItemVersion {
            value: b"v".to_vec(),
            etag: Etag::for_write(glsn),
            glsn,
            ts: 0,
            origin_region: RegionId::new("west"),
        }
    }

    fn put(precondition: Precondition) -> WriteOp {
        WriteOp::Put {
            value: b"x".to_vec(),
            precondition,
        }
    }

    #[test]
    fn every_precondition_against_absent_and_present() {
        let cur = version(5);
        let right = Some(cur.etag.clone());
        let wrong = Some(Etag::for_write(Glsn::new(1, 4)));
        let mismatch = Err(Rejection::EtagMismatch {
            current: cur.etag.clone(),
        });
        let cases = [
            (put(Precondition::None), None, Ok(())),
            (put(Precondition::None), Some(&cur), Ok(())),
            (put(Precondition::Absent), None, Ok(())),
            (
                put(Precondition::Absent),
                Some(&cur),
                Err(Rejection::AlreadyExists),
            ),
            (
                put(Precondition::Present { if_match: None }),
                None,
                Err(Rejection::NotFound),
            ),
            (
                put(Precondition::Present { if_match: None }),
                Some(&cur),
                Ok(()),
            ),
            (
                put(Precondition::Present {
                    if_match: right.clone(),
                }),
                Some(&cur),
                Ok(()),
            ),
            (
                put(Precondition::Present {
                    if_match: wrong.clone(),
                }),
                Some(&cur),
                mismatch.clone(),
            ),
            (
                WriteOp::Delete { if_match: None },
                None,
                Err(Rejection::NotFound),
            ),
            (WriteOp::Delete { if_match: None }, Some(&cur), Ok(())),
            (WriteOp::Delete { if_match: right }, Some(&cur), Ok(())),
            (WriteOp::Delete { if_match: wrong }, Some(&cur), mismatch),
        ];
        for (op, current, expected) in cases {
            assert_eq!(check(&op, current), expected, "{op:?} on {current:?}");
        }
    }
}
