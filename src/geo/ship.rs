//! Shipping the geo log: the write region serves a stream of geo log
//! entries from a GLSN on (any of its replicas can, from its own applied
//! geo log), and a state image when the reader is too far behind for the
//! log (it was trimmed to its cap). The read region side lives in
//! `node::geo`, which proposes what arrives into its replica set.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;
use tonic::Status;

use crate::codec::encode;
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::item::ItemVersion;
use crate::raft::replica::Replica;
use crate::raft::service::ReplyStream;
use crate::shutdown::Shutdown;
use crate::wire::pb::internal::Reply;

/// With nothing to ship, a heartbeat this often tells the reader the
/// stream is alive and where the head is.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// Entries per shipped batch at most (bytes are capped by configuration).
pub const SHIP_BATCH_ENTRIES_MAX: usize = 4096;
/// Item bytes per re-sync page.
pub const RESYNC_PAGE_BYTES: usize = 256 * 1024;
/// Conflict feed entries per re-sync page.
const RESYNC_FEED_PAGE_ENTRIES: usize = 512;
const STREAM_QUEUED: usize = 4;

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

/// Runs a stream's producer until it ends or the node stops: the producer
/// holds the replica, and a stopping node must get every handle back.
fn spawn_until<F>(shutdown: Shutdown, producer: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.signalled() => {}
            _ = producer => {}
        }
    });
}

fn stream_of(rx: mpsc::Receiver<Result<Reply, Status>>) -> ReplyStream {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn send<T: Serialize>(tx: &mpsc::Sender<Result<Reply, Status>>, message: &T) -> bool {
    tx.send(Ok(Reply {
        payload: encode(message),
    }))
    .await
    .is_ok()
}

/// Serves the geo log of `replica` from `from_lsn` on until the reader goes
/// away, the log no longer holds what it needs, or the node stops.
pub fn ship_stream(
    replica: Replica,
    from_lsn: u64,
    batch_bytes: usize,
    shutdown: Shutdown,
) -> ReplyStream {
    let (tx, rx) = mpsc::channel(STREAM_QUEUED);
    spawn_until(shutdown, async move {
        let mut next = from_lsn.max(1);
        loop {
            let page = match replica
                .state()
                .geo_read(next, SHIP_BATCH_ENTRIES_MAX, batch_bytes)
            {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
            };
            let head = replica.applied().glsn;
            if page.first().is_some_and(|(lsn, _)| *lsn != next)
                || (page.is_empty() && head.lsn >= next)
            {
                let first_kept = replica.state().geo_first().ok().flatten();
                let _ = send(&tx, &ShipMessage::ResyncNeeded { first_kept }).await;
                return;
            }
            if page.is_empty() {
                let arrived = replica
                    .wait_applied(HEARTBEAT_EVERY, |a| a.glsn.lsn >= next)
                    .await;
                if arrived.is_none() && !send(&tx, &ShipMessage::Heartbeat { head }).await {
                    return;
                }
                continue;
            }
            // Only consecutive entries go: a gap means a trim raced the read.
            let mut entries = Vec::with_capacity(page.len());
            for (lsn, bytes) in page {
                if lsn != next {
                    break;
                }
                entries.push(ByteBuf::from(bytes));
                next += 1;
            }
            if !send(&tx, &ShipMessage::Entries(entries)).await {
                return;
            }
        }
    });
    stream_of(rx)
}

/// Serves the state of `replica` at one point in time, in pages, until the
/// reader goes away or the node stops.
pub fn resync_stream(replica: Replica, shutdown: Shutdown) -> Result<ReplyStream, Status> {
    let image = replica
        .state()
        .export()
        .map_err(|e| Status::internal(e.to_string()))?;
    let glsn: Glsn = image
        .value(crate::raft::state_machine::GLSN)
        .map(|b| crate::codec::decode("glsn", b))
        .transpose()
        .map_err(|e| Status::internal(e.to_string()))?
        .unwrap_or(Glsn::ZERO);
    let items = image.items().map_err(|e| Status::internal(e.to_string()))?;
    let feed = image.feed().map_err(|e| Status::internal(e.to_string()))?;
    let (tx, rx) = mpsc::channel(STREAM_QUEUED);
    spawn_until(shutdown, async move {
        if !send(&tx, &ResyncMessage::Begin { glsn }).await {
            return;
        }
        let mut page = Vec::new();
        let mut bytes = 0;
        for item in items {
            bytes += item.2.value.len() + item.1.len();
            page.push(item);
            if bytes >= RESYNC_PAGE_BYTES {
                if !send(&tx, &ResyncMessage::Items(std::mem::take(&mut page))).await {
                    return;
                }
                bytes = 0;
            }
        }
        if !page.is_empty() && !send(&tx, &ResyncMessage::Items(page)).await {
            return;
        }
        for chunk in feed.chunks(RESYNC_FEED_PAGE_ENTRIES) {
            let chunk = chunk
                .iter()
                .map(|(id, bytes)| (*id, ByteBuf::from(bytes.clone())))
                .collect();
            if !send(&tx, &ResyncMessage::Feed(chunk)).await {
                return;
            }
        }
        let _ = send(&tx, &ResyncMessage::End { glsn }).await;
    });
    Ok(stream_of(rx))
}
