//! The serving side of geo shipping (`geo::ship` has the messages): a
//! ship stream of the geo log from a GLSN on, read from this node's
//! replica, and a re-sync stream of its whole state at one point in time.
//! Each runs as a task feeding a bounded channel until the reader goes
//! away or the node stops; errors end the stream as domain errors, which
//! `raft::service` maps at the gRPC edge.

use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::codec::decode;
use crate::error::Error;
use crate::geo::ship::{
    HEARTBEAT_EVERY, RESYNC_FEED_PAGE_ENTRIES, RESYNC_PAGE_BYTES, ResyncMessage,
    SHIP_BATCH_ENTRIES_MAX, ShipMessage, StreamMessage,
};
use crate::glsn::Glsn;
use crate::raft::replica::Replica;
use crate::raft::service::MessageStream;
use crate::raft::state_machine::GLSN;
use crate::shutdown::Shutdown;

/// Messages queued for a slow reader before the producer waits.
const STREAM_QUEUED: usize = 4;

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

fn stream_of(rx: mpsc::Receiver<Result<StreamMessage, Error>>) -> MessageStream {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Sends one message; `false` when the reader has gone away.
async fn send(tx: &Sender, message: impl Into<StreamMessage>) -> bool {
    tx.send(Ok(message.into())).await.is_ok()
}

type Sender = mpsc::Sender<Result<StreamMessage, Error>>;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Serves the geo log of `replica` from `from_lsn` on until the reader goes
/// away, the log no longer holds what it needs, or the node stops.
pub fn ship_stream(
    replica: Replica,
    from_lsn: u64,
    batch_bytes: usize,
    shutdown: Shutdown,
) -> MessageStream {
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
                    let _ = tx.send(Err(internal(e))).await;
                    return;
                }
            };
            let head = replica.applied().glsn;
            if page.first().is_some_and(|(lsn, _)| *lsn != next)
                || (page.is_empty() && head.lsn >= next)
            {
                let first_kept = replica.state().geo_first().ok().flatten();
                let _ = send(&tx, ShipMessage::ResyncNeeded { first_kept }).await;
                return;
            }
            if page.is_empty() {
                let arrived = replica
                    .wait_applied(HEARTBEAT_EVERY, |a| a.glsn.lsn >= next)
                    .await;
                if arrived.is_none() && !send(&tx, ShipMessage::Heartbeat { head }).await {
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
            if !send(&tx, ShipMessage::Entries(entries)).await {
                return;
            }
        }
    });
    stream_of(rx)
}

/// Serves the state of `replica` at one point in time, in pages, until the
/// reader goes away or the node stops.
pub fn resync_stream(replica: Replica, shutdown: Shutdown) -> Result<MessageStream, Error> {
    let image = replica.state().export().map_err(internal)?;
    let glsn: Glsn = image
        .value(GLSN)
        .map(|b| decode("glsn", b))
        .transpose()
        .map_err(internal)?
        .unwrap_or(Glsn::ZERO);
    let items = image.items().map_err(internal)?;
    let feed = image.feed().map_err(internal)?;
    let (tx, rx) = mpsc::channel(STREAM_QUEUED);
    spawn_until(shutdown, async move {
        if !send(&tx, ResyncMessage::Begin { glsn }).await {
            return;
        }
        let mut page = Vec::new();
        let mut bytes = 0;
        for item in items {
            bytes += item.2.value.len() + item.1.len();
            page.push(item);
            if bytes >= RESYNC_PAGE_BYTES {
                if !send(&tx, ResyncMessage::Items(std::mem::take(&mut page))).await {
                    return;
                }
                bytes = 0;
            }
        }
        if !page.is_empty() && !send(&tx, ResyncMessage::Items(page)).await {
            return;
        }
        for chunk in feed.chunks(RESYNC_FEED_PAGE_ENTRIES) {
            let chunk = chunk
                .iter()
                .map(|(id, bytes)| (*id, ByteBuf::from(bytes.clone())))
                .collect();
            if !send(&tx, ResyncMessage::Feed(chunk)).await {
                return;
            }
        }
        let _ = send(&tx, ResyncMessage::End { glsn }).await;
    });
    Ok(stream_of(rx))
}
