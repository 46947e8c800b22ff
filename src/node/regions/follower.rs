//! A read region's leader follows the write region: it streams the geo
//! log into its replica set (`receive`, `ship_from`), re-syncs from a
//! state image when the write region trimmed what it lacks
//! (`resync_from`), acknowledges what it applied and folds each answer
//! into its freshness (`acknowledge`), and re-joins when it went past a
//! fork (`rejoin`). What each shipped entry does to the state machine is
//! `geo::shipped`.

use tokio::sync::mpsc::Receiver;

use crate::clock::Instant;
use crate::codec::decode;
use crate::command::Command;
use crate::conflict::{ConflictKind, ConflictRecord};
use crate::crash::{CrashPoint, crash_point};
use crate::geo::entry::GeoEntry;
use crate::geo::failover::{lost_in_epoch, pick_source};
use crate::geo::ship::{ResyncMessage, SHIP_BATCH_ENTRIES_MAX, ShipMessage, StreamRequest};
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::meta::MetaState;
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::handle::{Geo, TICK};
use crate::raft::network::PeerError;
use crate::raft::replica::Replica;
use crate::shutdown::Shutdown;

/// How often a read region leader reports what it applied when idle.
const ACK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Lost writes published to the conflict feed per call.
const PUBLISH_BATCH: usize = 256;
/// How long publishing a batch of lost writes may take.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

type GeoStream = Receiver<Result<Vec<u8>, PeerError>>;

pub(super) fn decode_ship(message: &[u8]) -> Result<ShipMessage, String> {
    decode::<ShipMessage>("ship message", message).map_err(|e| e.to_string())
}

pub(super) fn decode_entries(raw: &[serde_bytes::ByteBuf]) -> Result<Vec<GeoEntry>, String> {
    raw.iter()
        .map(|b| decode::<GeoEntry>("geo entry", b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

impl Geo {
    /// Read region leader: report the applied GLSN to the write region
    /// leader when it changes, and at least every `ACK_EVERY` (or T / 4
    /// if shorter, so an idle region stays fresh within T); fold each
    /// answer into the region's freshness.
    pub(super) async fn acknowledge(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let mut applied = replica.applied_watch();
        let every = ACK_EVERY.min(self.bounds().t() / 4);
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = applied.changed() => {}
                _ = tokio::time::sleep(every) => {}
            }
            let meta = self.meta_state();
            let Some(write_region) = meta.write_region.clone() else {
                continue;
            };
            let glsn = applied.borrow_and_update().glsn;
            if &write_region == replica.region()
                || !self.is_region_leader()
                || meta.diverged(glsn).is_some()
            {
                continue;
            }
            self.note_freshness(&replica, None);
            crash_point(CrashPoint::AfterShipBeforeAck);
            let request = NodeRequest::GeoAck {
                region: replica.region().clone(),
                glsn,
            };
            let sent_at = Instant::now();
            match self
                .call_leader(&write_region, &request, ACK_EVERY * 5)
                .await
            {
                Ok(NodeReply::Acked { head }) => {
                    self.note_freshness(&replica, Some((sent_at, head)));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("acknowledging {glsn}: {e}"),
            }
        }
    }

    /// Read region leader: stream the geo log from the write region and
    /// propose it, in order, into this region's replica set.
    pub(super) async fn receive(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let mut attempt: usize = 0;
        loop {
            if shutdown.is_signalled() {
                return;
            }
            let meta = self.meta_state();
            let write_region = meta.write_region.clone();
            let leading = self.is_region_leader();
            let Some(write_region) = write_region.filter(|w| w != replica.region() && leading)
            else {
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                continue;
            };
            if self.takes_over(&meta) {
                // The catch-up of `take_over` ships instead.
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                continue;
            }
            let source = self.pick_source(&write_region, attempt);
            attempt += 1;
            let result = tokio::select! {
                _ = shutdown.signalled() => return,
                r = async {
                    match meta.diverged(replica.applied().glsn) {
                        Some(fork) => self.rejoin(&replica, &meta, fork, source).await,
                        None => self.ship_from(&replica, &write_region, source).await,
                    }
                } => r,
            };
            if let Err(e) = result {
                tracing::debug!(%source, "shipping from {write_region} stopped: {e}");
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
    }

    /// The write region node to stream from (`geo::failover::pick_source`).
    fn pick_source(&self, write_region: &RegionId, attempt: usize) -> NodeId {
        let nodes: Vec<NodeId> = self
            .inner
            .account
            .region(write_region)
            .map(|r| r.nodes.iter().map(|n| n.id).collect())
            .unwrap_or_default();
        pick_source(self.hint(write_region), &nodes, attempt)
            .expect("the configuration gives every region at least one node")
    }

    async fn ship_from(
        &self,
        replica: &Replica,
        write_region: &RegionId,
        source: NodeId,
    ) -> Result<(), String> {
        let from_lsn = replica.applied().glsn.lsn + 1;
        let request = StreamRequest::Ship {
            region: replica.region().clone(),
            from_lsn,
        };
        let mut stream = self.open_stream(source, &request).await?;
        // A message read while coalescing that is not entries, handled next.
        let mut pending: Option<Result<ShipMessage, String>> = None;
        loop {
            let message = match pending.take() {
                Some(message) => message?,
                None => match self.next_shipped(&mut stream, write_region, source).await? {
                    Some(message) => message,
                    // A silent stream from a region that lost the writes.
                    None => return Ok(()),
                },
            };
            if !self.is_region_leader() || !self.meta_state().is_write_region(write_region) {
                return Ok(());
            }
            match message {
                ShipMessage::Heartbeat { .. } => {}
                ShipMessage::Entries(raw) => {
                    let raw = self.coalesce(&mut stream, raw, &mut pending);
                    if !self.propose_shipped(replica, &raw).await? {
                        return Ok(());
                    }
                }
                ShipMessage::ResyncNeeded { first_kept } => {
                    tracing::warn!(
                        region = %replica.region(),
                        from_lsn,
                        ?first_kept,
                        "behind the geo log of {write_region}: re-syncing from a state image"
                    );
                    return self.resync_from(replica, source).await;
                }
            }
        }
    }

    /// The next message of a ship stream; `None` once the write region
    /// moved away from `write_region`.
    async fn next_shipped(
        &self,
        stream: &mut GeoStream,
        write_region: &RegionId,
        source: NodeId,
    ) -> Result<Option<ShipMessage>, String> {
        let idle_limit = crate::geo::ship::HEARTBEAT_EVERY * 8;
        let message = tokio::select! {
            m = tokio::time::timeout(idle_limit, stream.recv()) => m,
            _ = self.write_region_moved(write_region) => return Ok(None),
        };
        let message = message
            .map_err(|_| format!("nothing from {source} for {idle_limit:?}"))?
            .ok_or("stream ended")?
            .map_err(|e| e.to_string())?;
        decode_ship(&message).map(Some)
    }

    /// Everything that has already arrived goes in one proposal: one per
    /// message would cap the region at a message per raft commit, far
    /// below what the write region takes when its writes are shipped a
    /// few at a time. A message that is not entries is left in `pending`.
    fn coalesce(
        &self,
        stream: &mut GeoStream,
        mut raw: Vec<serde_bytes::ByteBuf>,
        pending: &mut Option<Result<ShipMessage, String>>,
    ) -> Vec<serde_bytes::ByteBuf> {
        let batch_bytes = self.inner.geo.ship_batch_bytes as usize;
        let mut bytes: usize = raw.iter().map(|b| b.len()).sum();
        while raw.len() < SHIP_BATCH_ENTRIES_MAX && bytes < batch_bytes {
            let Ok(next) = stream.try_recv() else {
                break;
            };
            let next = next
                .map_err(|e| e.to_string())
                .and_then(|m| decode_ship(&m));
            match next {
                Ok(ShipMessage::Entries(more)) => {
                    bytes += more.iter().map(|b| b.len()).sum::<usize>();
                    raw.extend(more);
                }
                Ok(ShipMessage::Heartbeat { .. }) => {}
                other => {
                    *pending = Some(other);
                    break;
                }
            }
        }
        raw
    }

    /// Proposes shipped entries under the ship lock; false when shipping
    /// must stop (this region takes over, or must re-join).
    async fn propose_shipped(
        &self,
        replica: &Replica,
        raw: &[serde_bytes::ByteBuf],
    ) -> Result<bool, String> {
        let entries = decode_entries(raw)?;
        let _shipping = self.inner.gates.ship_lock.lock().await;
        if self.takes_over(&self.meta_state()) {
            return Ok(false);
        }
        replica
            .propose(Command::Ship(entries))
            .await
            .map_err(|e| e.to_string())?;
        // This region's own writes may have gone past the fork after the
        // stream began (they were still applying): the state machine
        // refused the batch, and the region must re-join instead.
        Ok(self.meta_state().diverged(replica.applied().glsn).is_none())
    }

    pub(super) async fn resync_from(
        &self,
        replica: &Replica,
        source: NodeId,
    ) -> Result<(), String> {
        let request = StreamRequest::Resync {
            region: replica.region().clone(),
        };
        let mut stream = self.open_stream(source, &request).await?;
        loop {
            let message = tokio::time::timeout(self.inner.request_timeout, stream.recv())
                .await
                .map_err(|_| "re-sync stalled".to_string())?
                .ok_or("re-sync stream ended early")?
                .map_err(|e| e.to_string())?;
            let command = match decode::<ResyncMessage>("resync message", &message)
                .map_err(|e| e.to_string())?
            {
                ResyncMessage::Begin { .. } => Command::ResyncBegin,
                ResyncMessage::Items(items) => Command::ResyncItems(items),
                ResyncMessage::Feed(entries) => Command::ResyncFeed(entries),
                ResyncMessage::End { glsn } => {
                    replica
                        .propose(Command::ResyncEnd { glsn })
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(region = %replica.region(), %glsn, "re-sync done");
                    return Ok(());
                }
            };
            replica.propose(command).await.map_err(|e| e.to_string())?;
        }
    }

    /// A region that holds writes past `fork` (a former write region's
    /// unshipped writes, or entries it received from one) re-joins: it
    /// publishes each write the new history lacks to the conflict feed
    /// (recorded once per lost GLSN, so a repeat after a crash is
    /// harmless), then re-syncs from the write region.
    async fn rejoin(
        &self,
        replica: &Replica,
        meta: &MetaState,
        fork: Glsn,
        source: NodeId,
    ) -> Result<(), String> {
        let applied = replica.applied().glsn;
        let write_region = meta.write_region.clone().ok_or("no write region")?;
        let lost_in_epoch = lost_in_epoch(meta, applied);
        let mut next = fork.lsn + 1;
        let mut published = 0;
        loop {
            let page = replica
                .state()
                .geo_read(next, PUBLISH_BATCH, usize::MAX)
                .map_err(|e| e.to_string())?;
            let Some((last, _)) = page.last() else {
                break;
            };
            next = last + 1;
            let raw: Vec<serde_bytes::ByteBuf> = page
                .into_iter()
                .map(|(_, b)| serde_bytes::ByteBuf::from(b))
                .collect();
            let records: Vec<ConflictRecord> = decode_entries(&raw)?
                .into_iter()
                .filter_map(|entry| {
                    let change = entry.item_change()?;
                    Some(ConflictRecord {
                        kind: ConflictKind::UnreplicatedWrite,
                        container: entry.container,
                        key: entry.key,
                        value: change.map(|v| v.value),
                        lost_glsn: entry.glsn,
                        lost_in_epoch,
                        region: replica.region().clone(),
                    })
                })
                .collect();
            published += records.len();
            let request = NodeRequest::RecordConflicts { records };
            self.call_leader(&write_region, &request, PUBLISH_TIMEOUT)
                .await
                .map_err(|e| format!("publishing lost writes to {write_region}: {e}"))?;
        }
        tracing::warn!(
            region = %replica.region(),
            %fork,
            %applied,
            published,
            "this region went past the fork: its writes after it are in the conflict feed; re-syncing from the write region"
        );
        self.resync_from(replica, source).await
    }
}
