//! The `Conflicts` gRPC service: read the conflict feed from a
//! continuation (server-streaming, optionally following new entries) and
//! delete an entry. Every node serves the feed from its own replica's
//! copy; deletes are committed at the write region.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::codec::decode;
use crate::conflict::{ConflictKind, FeedEntry};
use crate::error::Error;
use crate::node::kv::Kv;
use crate::shutdown::Shutdown;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::conflicts_server::{Conflicts as ConflictsRpc, ConflictsServer};

/// Feed entries read from the store per step.
const FEED_PAGE: usize = 256;
/// How often a following reader looks for new entries when nothing wakes it.
const FOLLOW_TICK: Duration = Duration::from_millis(500);

pub struct ConflictsService {
    kv: Kv,
    shutdown: Shutdown,
}

impl ConflictsService {
    pub fn server(kv: Kv, shutdown: Shutdown) -> ConflictsServer<ConflictsService> {
        ConflictsServer::new(ConflictsService { kv, shutdown })
    }
}

/// A continuation is the id of the last entry read, in decimal.
fn parse_continuation(raw: &str) -> Result<u64, Error> {
    if raw.is_empty() {
        return Ok(0);
    }
    raw.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "malformed continuation {:?}: pass back the `continuation` of the last message read",
            raw.chars().take(32).collect::<String>()
        ))
    })
}

fn entry_to_wire(entry: FeedEntry) -> pb::ConflictEntry {
    let record = entry.record;
    pb::ConflictEntry {
        id: entry.id,
        kind: match record.kind {
            ConflictKind::UnreplicatedWrite => pb::ConflictKind::UnreplicatedWrite as i32,
        },
        container: record.container,
        key: record.key,
        value: record.value,
        lost_glsn: Some(record.lost_glsn.into()),
        lost_in_epoch: record.lost_in_epoch,
        region: record.region.to_string(),
        recorded_glsn: Some(entry.recorded_glsn.into()),
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<pb::ReadFeedResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConflictsRpc for ConflictsService {
    type ReadFeedStream = FeedStream;

    async fn read_feed(
        &self,
        request: Request<pb::ReadFeedRequest>,
    ) -> Result<Response<Self::ReadFeedStream>, Status> {
        let request = request.into_inner();
        let mut after = parse_continuation(&request.continuation)?;
        let replica = self.kv.replica().clone();
        let served_by = pb::ServedBy {
            region: replica.region().to_string(),
            node_id: replica.id().0,
        };
        let shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut applied = replica.applied_watch();
            loop {
                let page = match replica.state().feed_read(after, FEED_PAGE) {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(internal(e))).await;
                        return;
                    }
                };
                let full = page.len() == FEED_PAGE;
                for (id, bytes) in page {
                    let message = decode::<FeedEntry>("feed entry", &bytes)
                        .map(|entry| pb::ReadFeedResponse {
                            entry: Some(entry_to_wire(entry)),
                            continuation: id.to_string(),
                            served_by: Some(served_by.clone()),
                        })
                        .map_err(internal);
                    if tx.send(message).await.is_err() {
                        return;
                    }
                    after = id;
                }
                if full {
                    continue;
                }
                if !request.follow {
                    return;
                }
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tx.closed() => return,
                    _ = applied.changed() => {}
                    _ = tokio::time::sleep(FOLLOW_TICK) => {}
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteConflictRequest>,
    ) -> Result<Response<pb::DeleteConflictResponse>, Status> {
        let glsn = self.kv.delete_conflict(request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteConflictResponse {
            glsn: Some(glsn.into()),
        }))
    }
}

/// A failure reading the conflict feed, through the one status mapping.
fn internal(e: impl std::fmt::Display) -> Status {
    Status::from(Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continuation_is_the_last_id_read() {
        assert_eq!(parse_continuation(""), Ok(0));
        assert_eq!(parse_continuation("42"), Ok(42));
        let Err(Error::InvalidArgument(why)) = parse_continuation("e1:42") else {
            panic!("accepted a malformed continuation");
        };
        assert!(why.contains("malformed continuation"), "{why}");
    }
}
