//! The geo log entry: one applied write as it is shipped between regions.
//!
//! Shaped for multi-write from the start (DESIGN.md "Multi-write mode"):
//! every entry names its origin region, that region's LSN and a hybrid
//! logical clock timestamp, so entries from several origins can later be
//! merged without changing the format.

use serde::{Deserialize, Serialize};

use crate::conflict::{ConflictRecord, FeedEntry};
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::item::{Etag, ItemVersion};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoEntry {
    /// Position in the global order (single-write: the write region's).
    pub glsn: Glsn,
    pub origin_region: RegionId,
    /// The origin region's own sequence number for the write (single-write:
    /// equal to `glsn.lsn`).
    pub origin_lsn: u64,
    /// Hybrid logical clock timestamp given by the origin.
    pub ts: u64,
    pub container: String,
    pub key: String,
    pub change: GeoChange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeoChange {
    Put {
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        etag: Etag,
    },
    Delete,
    /// A conflict feed entry recorded (`container` and `key` name the lost
    /// write's item; the item itself does not change).
    Conflict(ConflictRecord),
    /// Conflict feed entry `id` deleted.
    ConflictDeleted {
        id: u64,
    },
}

impl GeoEntry {
    /// What the entry does to its item: `Some(None)` deletes it, `None`
    /// leaves items alone (a conflict feed change).
    pub fn item_change(&self) -> Option<Option<ItemVersion>> {
        match &self.change {
            GeoChange::Put { value, etag } => Some(Some(ItemVersion {
                value: value.clone(),
                etag: etag.clone(),
                glsn: self.glsn,
                ts: self.ts,
                origin_region: self.origin_region.clone(),
            })),
            GeoChange::Delete => Some(None),
            GeoChange::Conflict(_) | GeoChange::ConflictDeleted { .. } => None,
        }
    }

    /// The feed entry this entry records, if it records one.
    pub fn feed_entry(&self) -> Option<FeedEntry> {
        match &self.change {
            GeoChange::Conflict(record) => Some(FeedEntry {
                id: self.glsn.lsn,
                recorded_glsn: self.glsn,
                recorded_ts: self.ts,
                record: record.clone(),
            }),
            _ => None,
        }
    }

    /// The entry recording `version` (or a delete) written at `glsn`.
    pub fn record(
        glsn: Glsn,
        container: &str,
        key: &str,
        ts: u64,
        origin_region: &RegionId,
        version: Option<&ItemVersion>,
    ) -> GeoEntry {
        GeoEntry {
            glsn,
            origin_region: origin_region.clone(),
            origin_lsn: glsn.lsn,
            ts,
            container: container.to_string(),
            key: key.to_string(),
            change: match version {
                Some(v) => GeoChange::Put {
                    value: v.value.clone(),
                    etag: v.etag.clone(),
                },
                None => GeoChange::Delete,
            },
        }
    }
}
