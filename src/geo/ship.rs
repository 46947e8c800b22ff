//! Shipping the geo log, as data: what a node asks for on the node-level
//! `Stream` RPC and the messages it gets back. The write region serves a
//! stream of geo log entries from a GLSN on (any of its replicas can, from
//! its own applied geo log), and a state image when the reader is too far
//! behind for the log (it was trimmed to its cap). The serving side is
//! `node::ship_source`; the read region side is `node::regions::follower`, which
//! proposes what arrives into its replica set; `raft::service` puts the
//! messages on the wire.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::item::ItemVersion;

/// With nothing to ship, a heartbeat this often tells the reader the
/// stream is alive and where the head is.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// Entries per shipped batch at most (bytes are capped by configuration).
pub const SHIP_BATCH_ENTRIES_MAX: usize = 4096;
/// Item bytes per re-sync page.
pub const RESYNC_PAGE_BYTES: usize = 256 * 1024;
/// Conflict feed entries per re-sync page.
pub const RESYNC_FEED_PAGE_ENTRIES: usize = 512;

/// What a node asks for on the node-level `Stream` RPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRequest {
    /// The geo log from `from_lsn` on, for `region`'s leader.
    Ship { region: RegionId, from_lsn: u64 },
    /// The whole state, for a region that must re-sync.
    Resync { region: RegionId },
    /// The geo log from `from_lsn` on, from any region, for `region`
    /// taking over writes (it fetches what it lacks of the old epoch).
    Fetch { region: RegionId, from_lsn: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipMessage {
    /// Encoded `GeoEntry`s, consecutive, starting at the requested LSN.
    Entries(Vec<ByteBuf>),
    /// Nothing new; the serving replica has applied up to `head`.
    Heartbeat { head: Glsn },
    /// The requested LSN is no longer in the geo log (trimmed to its cap,
    /// or the serving replica installed a snapshot): re-sync.
    ResyncNeeded { first_kept: Option<u64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResyncMessage {
    Begin {
        glsn: Glsn,
    },
    Items(Vec<(String, String, ItemVersion)>),
    /// Conflict feed entries (encoded `FeedEntry`s by id).
    Feed(Vec<(u64, ByteBuf)>),
    End {
        glsn: Glsn,
    },
}

/// One message of a stream a node serves: a ship stream carries
/// `ShipMessage`s, a re-sync stream `ResyncMessage`s. On the wire each is
/// encoded on its own, so a reader decodes the one it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    Ship(ShipMessage),
    Resync(ResyncMessage),
}

impl From<ShipMessage> for StreamMessage {
    fn from(m: ShipMessage) -> StreamMessage {
        StreamMessage::Ship(m)
    }
}

impl From<ResyncMessage> for StreamMessage {
    fn from(m: ResyncMessage) -> StreamMessage {
        StreamMessage::Resync(m)
    }
}
