//! openraft's `RaftStateMachine` over the sled state tree: applies commands
//! in log order, gives every applied write the next GLSN, builds and
//! installs snapshots.
//!
//! Invariants: the applied log id and the GLSN only grow (asserted), and
//! items, applied log id, membership and GLSN change in one atomic batch.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;

use crate::command::{self, Command, WriteCommand, WriteOp, WriteOutcome};
use crate::conflict::{ConflictRecord, FeedEntry};
use crate::crash::{CrashPoint, crash_point};
use crate::geo::entry::{GeoChange, GeoEntry};
use crate::geo::shipped::{ShipStep, ship_step};
use crate::glsn::{EPOCH_INITIAL, Glsn};
use crate::hlc::Hlc;
use crate::item::{Etag, ItemVersion};
use crate::raft::codec::{decode, encode, read_err, write_err};
use crate::raft::types::{
    Entry, Group, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::storage::state::{StateBatch, StateImage, StateStore};
use crate::storage::store::Store;

pub(crate) const APPLIED: &str = "applied";
pub(crate) const MEMBERSHIP: &str = "membership";
pub(crate) const GLSN: &str = "glsn";
const GEO_BYTES: &str = "geo_bytes";
const RESYNCING: &str = "resyncing";
const WRITE_EPOCH: &str = "write_epoch";

/// Geo log entries read per step when trimming to the cap.
const GEO_TRIM_STEP_ENTRIES: usize = 1024;

/// What a replica has applied: readers wait on this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub glsn: Glsn,
    /// A re-sync from another region is under way: the state is partial.
    pub resyncing: bool,
    /// The epoch this region's next write gets (`BeginEpoch`).
    pub write_epoch: u64,
}

/// A snapshot as kept on disk: openraft's metadata and the state image.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

pub struct StateMachine {
    store: Store,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    glsn: Glsn,
    applied_tx: Arc<watch::Sender<Applied>>,
    hlc: Arc<Hlc>,
    /// Bytes of encoded geo log entries kept, and the most allowed.
    geo_bytes: u64,
    geo_cap_bytes: u64,
    resyncing: bool,
    write_epoch: u64,
}

/// The items one applied batch changes, by (container, key); `None` is a
/// delete. Later writes in the batch read it before the store.
type Overlay = HashMap<(String, String), Option<ItemVersion>>;

/// What one applied batch changes besides items.
#[derive(Default)]
struct BatchGeo {
    append: Vec<(u64, Vec<u8>)>,
    remove_upto: Option<u64>,
    clear: bool,
    feed_put: Vec<(u64, Glsn, Vec<u8>)>,
    feed_remove: Vec<u64>,
}

impl BatchGeo {
    fn feed_recorded_here(&self, lost: Glsn) -> bool {
        self.feed_put.iter().any(|(_, l, _)| *l == lost)
    }

    fn feed_put(&mut self, entry: &FeedEntry) {
        self.feed_remove.retain(|id| *id != entry.id);
        self.feed_put
            .push((entry.id, entry.record.lost_glsn, encode(entry)));
    }

    fn feed_remove(&mut self, id: u64) {
        self.feed_put.retain(|(i, _, _)| *i != id);
        self.feed_remove.push(id);
    }
}

impl StateMachine {
    pub fn open(store: Store, hlc: Arc<Hlc>, geo_cap_bytes: u64) -> Result<Self, StorageError> {
        let state = &store.state;
        let last_applied: Option<LogId> = read_value(state, APPLIED)?.flatten();
        let membership = read_value(state, MEMBERSHIP)?.unwrap_or_default();
        let glsn = read_value(state, GLSN)?.unwrap_or(Glsn::new(EPOCH_INITIAL, 0));
        if let Some(bytes) = store.snapshot.load().map_err(read_err)? {
            let stored: StoredSnapshot = decode("stored snapshot", &bytes).map_err(read_err)?;
            publish_snapshot_covers(&store, &stored.meta);
        }
        let geo_bytes = read_value(state, GEO_BYTES)?.unwrap_or(0);
        let resyncing = read_value(state, RESYNCING)?.unwrap_or(false);
        let write_epoch = read_value(state, WRITE_EPOCH)?.unwrap_or(EPOCH_INITIAL);
        let applied = Applied {
            index: last_applied.map_or(0, |l| l.index),
            glsn,
            resyncing,
            write_epoch,
        };
        Ok(Self {
            store,
            last_applied,
            membership,
            glsn,
            applied_tx: Arc::new(watch::channel(applied).0),
            hlc,
            geo_bytes,
            geo_cap_bytes,
            resyncing,
            write_epoch,
        })
    }

    /// A receiver that sees every applied batch.
    pub fn applied(&self) -> watch::Receiver<Applied> {
        self.applied_tx.subscribe()
    }

    // Exists for benchmarks and tests: it lets them drive `apply` with
    // plain commands, so no openraft type has to leave `raft/`. The entries
    // get consecutive indexes from `first_index`, which must lie after the
    // last applied one (`apply` asserts it).
    pub async fn apply_commands(
        &mut self,
        first_index: u64,
        term: u64,
        commands: Vec<Command>,
    ) -> Result<Vec<WriteOutcome>, StorageError> {
        let leader = openraft::CommittedLeaderId::new(term, 0);
        let entries = (first_index..).zip(commands).map(|(index, command)| Entry {
            log_id: LogId::new(leader, index),
            payload: EntryPayload::Normal(command),
        });
        Ok(self.apply(entries).await?.into_iter().flatten().collect())
    }

    fn publish_applied(&self) {
        self.applied_tx.send_replace(Applied {
            index: self.last_applied.map_or(0, |l| l.index),
            glsn: self.glsn,
            resyncing: self.resyncing,
            write_epoch: self.write_epoch,
        });
    }

    /// Applies one write against the batch's overlay, so later writes in the
    /// same batch see earlier ones.
    fn apply_write(
        &mut self,
        write: WriteCommand,
        overlay: &mut Overlay,
        geo: &mut BatchGeo,
    ) -> Result<WriteOutcome, StorageError> {
        // The fence that holds whatever the leases did: a write applies
        // only in the epoch it was taken in, and only while no entry of a
        // later epoch (written by another region) has been applied here.
        // Otherwise it would take the next LSN of another region's epoch,
        // an LSN that region gives a different write, and shipping (which
        // skips LSNs it has) would never notice the divergence.
        if write.epoch != self.write_epoch || self.glsn.epoch > self.write_epoch {
            return Ok(WriteOutcome::Rejected {
                rejection: command::Rejection::EpochEnded { taken: write.epoch },
                applied_glsn: self.glsn,
            });
        }
        let slot = (write.container, write.key);
        let current = match overlay.get(&slot) {
            Some(v) => v.clone(),
            None => self
                .store
                .state
                .get_item(&slot.0, &slot.1)
                .map_err(read_err)?,
        };
        if let Err(rejection) = command::check(&write.op, current.as_ref()) {
            return Ok(WriteOutcome::Rejected {
                rejection,
                applied_glsn: self.glsn,
            });
        }
        // The first write of a new epoch continues from the fork's LSN.
        let glsn = self.next_glsn();
        self.hlc.observe(write.ts);
        let new = match write.op {
            WriteOp::Put { value, .. } => Some(ItemVersion {
                value,
                etag: Etag::for_write(glsn),
                glsn,
                ts: write.ts,
                origin_region: write.origin_region.clone(),
            }),
            WriteOp::Delete { .. } => None,
        };
        let etag = new.as_ref().map(|v| v.etag.clone());
        let entry = GeoEntry::record(
            glsn,
            &slot.0,
            &slot.1,
            write.ts,
            &write.origin_region,
            new.as_ref(),
        );
        self.log_geo(&entry, geo);
        overlay.insert(slot, new);
        Ok(WriteOutcome::Applied { glsn, etag })
    }

    /// The GLSN of this region's next write.
    fn next_glsn(&mut self) -> Glsn {
        self.glsn = Glsn::new(self.write_epoch.max(self.glsn.epoch), self.glsn.lsn + 1);
        self.glsn
    }

    /// Records each lost write not recorded before as a conflict feed
    /// entry and a geo log entry.
    fn record_conflicts(
        &mut self,
        records: Vec<ConflictRecord>,
        ts: u64,
        geo: &mut BatchGeo,
    ) -> Result<Vec<WriteOutcome>, StorageError> {
        let mut outcomes = Vec::new();
        for record in records {
            let lost = record.lost_glsn;
            if geo.feed_recorded_here(lost)
                || self.store.state.feed_recorded(lost).map_err(read_err)?
            {
                continue;
            }
            let glsn = self.next_glsn();
            let entry = GeoEntry {
                glsn,
                origin_region: record.region.clone(),
                origin_lsn: glsn.lsn,
                ts,
                container: record.container.clone(),
                key: record.key.clone(),
                change: GeoChange::Conflict(record),
            };
            self.log_geo(&entry, geo);
            geo.feed_put(&entry.feed_entry().expect("a conflict entry"));
            outcomes.push(WriteOutcome::Applied { glsn, etag: None });
        }
        Ok(outcomes)
    }

    fn delete_conflict(
        &mut self,
        id: u64,
        ts: u64,
        geo: &mut BatchGeo,
    ) -> Result<WriteOutcome, StorageError> {
        let present = geo.feed_put.iter().any(|(i, _, _)| *i == id)
            || (!geo.feed_remove.contains(&id)
                && self.store.state.feed_contains(id).map_err(read_err)?);
        if !present {
            return Ok(WriteOutcome::Rejected {
                rejection: command::Rejection::NotFound,
                applied_glsn: self.glsn,
            });
        }
        let glsn = self.next_glsn();
        let entry = GeoEntry {
            glsn,
            origin_region: crate::ids::RegionId::new(""),
            origin_lsn: glsn.lsn,
            ts,
            container: String::new(),
            key: String::new(),
            change: GeoChange::ConflictDeleted { id },
        };
        self.log_geo(&entry, geo);
        geo.feed_remove(id);
        Ok(WriteOutcome::Applied { glsn, etag: None })
    }

    fn log_geo(&mut self, entry: &GeoEntry, geo: &mut BatchGeo) {
        let bytes = encode(entry);
        self.geo_bytes += bytes.len() as u64;
        geo.append.push((entry.glsn.lsn, bytes));
    }

    /// Applies shipped entries in order: skips what this region has,
    /// stops at a gap, and refuses an entry of an epoch older than the one
    /// this region began writing in (it lies past a fork this region
    /// already continued from). An entry of a newer epoch at an LSN this
    /// region has already applied means this region went past that epoch's
    /// fork (its own writes there are not in the history): it stops, and
    /// the region re-joins rather than keep writes the history dropped in
    /// place of the history's.
    fn apply_shipped(&mut self, entries: Vec<GeoEntry>, overlay: &mut Overlay, geo: &mut BatchGeo) {
        if self.resyncing {
            return;
        }
        for entry in entries {
            match ship_step(self.glsn, self.write_epoch, entry.glsn) {
                ShipStep::Duplicate => continue,
                ShipStep::Diverged => {
                    tracing::warn!(applied = %self.glsn, next = %entry.glsn, "shipped entries of a newer epoch at LSNs this region already applied: it went past a fork and must re-join; the rest is dropped");
                    return;
                }
                ShipStep::Gap | ShipStep::OlderEpoch => {
                    tracing::warn!(applied = %self.glsn, next = %entry.glsn, write_epoch = self.write_epoch, "shipped batch has a gap or an older epoch; the rest is dropped");
                    return;
                }
                ShipStep::Apply => {}
            }
            self.hlc.observe(entry.ts);
            self.glsn = entry.glsn;
            self.log_geo(&entry, geo);
            match (&entry.change, entry.item_change()) {
                (_, Some(version)) => {
                    overlay.insert((entry.container.clone(), entry.key.clone()), version);
                }
                (GeoChange::ConflictDeleted { id }, None) => geo.feed_remove(*id),
                (_, None) => {
                    if let Some(feed) = entry.feed_entry() {
                        geo.feed_put(&feed);
                    }
                }
            }
        }
    }

    /// Removes geo log entries from the front, up to `upto_lsn`, or (with
    /// `None`) until the log fits its cap; subtracts their bytes.
    fn trim_geo(&mut self, upto_lsn: Option<u64>, geo: &mut BatchGeo) -> Result<(), StorageError> {
        let mut from = match geo.remove_upto {
            Some(done) => done + 1,
            None => self
                .store
                .state
                .geo_first()
                .map_err(read_err)?
                .unwrap_or(u64::MAX),
        };
        loop {
            let over_cap = self.geo_bytes > self.geo_cap_bytes;
            if upto_lsn.is_none() && !over_cap {
                return Ok(());
            }
            let page = self
                .store
                .state
                .geo_read(from, GEO_TRIM_STEP_ENTRIES, usize::MAX)
                .map_err(read_err)?;
            if page.is_empty() {
                return Ok(());
            }
            for (lsn, bytes) in page {
                if upto_lsn.is_some_and(|u| lsn > u)
                    || (upto_lsn.is_none() && self.geo_bytes <= self.geo_cap_bytes)
                {
                    return Ok(());
                }
                self.geo_bytes = self.geo_bytes.saturating_sub(bytes.len() as u64);
                geo.remove_upto = Some(lsn);
                from = lsn + 1;
            }
        }
    }

    /// Applies one command of the log against the batch's overlay and geo
    /// changes; the outcomes are what the proposer gets back.
    fn apply_command(
        &mut self,
        command: Command,
        overlay: &mut Overlay,
        geo: &mut BatchGeo,
    ) -> Result<Vec<WriteOutcome>, StorageError> {
        match command {
            Command::Writes(writes) => writes
                .into_iter()
                .map(|w| self.apply_write(w, overlay, geo))
                .collect(),
            Command::Ship(entries) => {
                self.apply_shipped(entries, overlay, geo);
                Ok(Vec::new())
            }
            Command::RecordConflicts { records, ts } => self.record_conflicts(records, ts, geo),
            Command::DeleteConflict { id, ts } => Ok(vec![self.delete_conflict(id, ts, geo)?]),
            Command::BeginEpoch { epoch } => {
                self.write_epoch = self.write_epoch.max(epoch);
                Ok(Vec::new())
            }
            Command::TrimGeoLog { upto_lsn } => {
                self.trim_geo(Some(upto_lsn), geo)?;
                Ok(Vec::new())
            }
            Command::ResyncBegin => {
                self.begin_resync(overlay, geo);
                Ok(Vec::new())
            }
            Command::ResyncItems(items) => {
                self.resync_items(items, overlay);
                Ok(Vec::new())
            }
            Command::ResyncFeed(entries) => {
                self.resync_feed(entries, geo)?;
                Ok(Vec::new())
            }
            Command::ResyncEnd { glsn } => {
                self.end_resync(glsn);
                Ok(Vec::new())
            }
        }
    }

    /// Starts a re-sync: drops every item, the geo log and the conflict
    /// feed (with whatever the batch changed so far), and marks the state
    /// partial.
    fn begin_resync(&mut self, overlay: &mut Overlay, geo: &mut BatchGeo) {
        overlay.clear();
        *geo = BatchGeo {
            clear: true,
            ..BatchGeo::default()
        };
        self.geo_bytes = 0;
        self.resyncing = true;
    }

    /// Refills items from a page of the image, while a re-sync is under way.
    fn resync_items(&mut self, items: Vec<(String, String, ItemVersion)>, overlay: &mut Overlay) {
        if self.resyncing {
            for (container, key, version) in items {
                overlay.insert((container, key), Some(version));
            }
        }
    }

    /// Refills conflict feed entries from the image, while a re-sync is
    /// under way.
    fn resync_feed(
        &mut self,
        entries: Vec<(u64, serde_bytes::ByteBuf)>,
        geo: &mut BatchGeo,
    ) -> Result<(), StorageError> {
        if self.resyncing {
            for (_, bytes) in entries {
                let entry: FeedEntry = decode("feed entry", &bytes).map_err(read_err)?;
                geo.feed_put(&entry);
            }
        }
        Ok(())
    }

    /// Ends a re-sync at the GLSN the image was taken at.
    fn end_resync(&mut self, glsn: Glsn) {
        if self.resyncing {
            self.resyncing = false;
            self.glsn = glsn;
        }
    }

    /// Writes the batch's items, geo changes and named values in one
    /// atomic batch.
    fn write_batch(&mut self, overlay: Overlay, geo: BatchGeo) -> Result<(), StorageError> {
        let batch = StateBatch {
            items: overlay.into_iter().map(|((c, k), v)| (c, k, v)).collect(),
            values: vec![
                (APPLIED, encode(&self.last_applied)),
                (MEMBERSHIP, encode(&self.membership)),
                (GLSN, encode(&self.glsn)),
                (GEO_BYTES, encode(&self.geo_bytes)),
                (RESYNCING, encode(&self.resyncing)),
                (WRITE_EPOCH, encode(&self.write_epoch)),
            ],
            geo_append: geo.append,
            geo_remove_upto: geo.remove_upto,
            clear_data: geo.clear,
            feed_put: geo.feed_put,
            feed_remove: geo.feed_remove,
        };
        self.store.state.apply(batch).map_err(write_err)
    }
}

/// Tells the log that the snapshot file on disk now covers `meta`'s last
/// log id, so purges up to it may become durable. Never moves back.
pub(crate) fn publish_snapshot_covers(store: &Store, meta: &SnapshotMeta) {
    let covers = meta.last_log_id.map(|l| l.index);
    store.snapshot_covers.send_if_modified(|c| {
        let grows = covers > *c;
        if grows {
            *c = covers;
        }
        grows
    });
}

pub(crate) fn read_value<T: serde::de::DeserializeOwned>(
    state: &StateStore,
    name: &'static str,
) -> Result<Option<T>, StorageError> {
    match state.get_value(name).map_err(read_err)? {
        Some(bytes) => Ok(Some(decode(name, &bytes).map_err(read_err)?)),
        None => Ok(None),
    }
}

pub(crate) fn image_value<T: serde::de::DeserializeOwned>(
    image: &StateImage,
    name: &'static str,
) -> Result<Option<T>, StorageError> {
    image
        .value(name)
        .map(|v| decode(name, v).map_err(read_err))
        .transpose()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<WriteOutcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut overlay = Overlay::new();
        let mut geo = BatchGeo::default();
        let mut replies = Vec::new();
        for entry in entries {
            assert!(
                Some(entry.log_id) > self.last_applied,
                "apply went backwards: {} after {:?}",
                entry.log_id,
                self.last_applied
            );
            self.last_applied = Some(entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(command) => {
                    self.apply_command(command, &mut overlay, &mut geo)?
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            replies.push(reply);
        }
        if !geo.clear {
            self.trim_geo(None, &mut geo)?;
        }
        self.write_batch(overlay, geo)?;
        crash_point(CrashPoint::AfterApplyBatch);
        self.publish_applied();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image: StateImage = decode("snapshot", &data).map_err(read_err)?;
        let glsn: Glsn = image_value(&image, GLSN)?.unwrap_or(Glsn::new(EPOCH_INITIAL, 0));
        assert!(
            glsn >= self.glsn || meta.last_log_id > self.last_applied,
            "snapshot would move the GLSN backwards"
        );
        let geo_bytes = image_value(&image, GEO_BYTES)?.unwrap_or(0);
        let resyncing = image_value(&image, RESYNCING)?.unwrap_or(false);
        let write_epoch = image_value(&image, WRITE_EPOCH)?.unwrap_or(EPOCH_INITIAL);
        install_image(&self.store, meta, image, data)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.glsn = glsn;
        self.geo_bytes = geo_bytes;
        self.resyncing = resyncing;
        self.write_epoch = write_epoch;
        self.publish_applied();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        current_snapshot(&self.store)
    }
}

/// The snapshot file of `store`, as openraft wants it.
pub(crate) fn current_snapshot<C: Group>(
    store: &Store,
) -> Result<Option<Snapshot<C>>, StorageError> {
    let Some(bytes) = store.snapshot.load().map_err(read_err)? else {
        return Ok(None);
    };
    let stored: StoredSnapshot = decode("stored snapshot", &bytes).map_err(read_err)?;
    Ok(Some(Snapshot {
        meta: stored.meta,
        snapshot: Box::new(Cursor::new(stored.data)),
    }))
}

/// Imports a received snapshot's state `image` (decoded from `data`) and
/// saves `data` as the snapshot file.
pub(crate) fn install_image(
    store: &Store,
    meta: &SnapshotMeta,
    image: StateImage,
    data: Vec<u8>,
) -> Result<(), StorageError> {
    store.state.import(image).map_err(write_err)?;
    store
        .snapshot
        .save(&encode(&StoredSnapshot {
            meta: meta.clone(),
            data,
        }))
        .map_err(write_err)?;
    publish_snapshot_covers(store, meta);
    Ok(())
}

/// Builds a snapshot from the state at one point in time; serves both
/// raft groups, whose state machines keep the same named values.
pub struct SnapshotBuilder {
    pub(crate) store: Store,
}

impl<C: Group> RaftSnapshotBuilder<C> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError> {
        let image = self.store.state.export().map_err(read_err)?;
        let last_log_id: Option<LogId> = image_value::<Option<LogId>>(&image, APPLIED)?.flatten();
        let last_membership: StoredMembership =
            image_value(&image, MEMBERSHIP)?.unwrap_or_default();
        // Unique enough: a node builds at most one snapshot per log position
        // per millisecond, and openraft only compares ids for equality.
        let built_ms = crate::clock::wall_ms();
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{built_ms}", l.leader_id.term, l.index),
            None => format!("empty-{built_ms}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let data = encode(&image);
        self.store
            .snapshot
            .save(&encode(&StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            }))
            .map_err(write_err)?;
        publish_snapshot_covers(&self.store, &meta);
        crash_point(CrashPoint::AfterSnapshotBuild);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Precondition;
    use crate::ids::{NodeId, RegionId};
    use crate::storage::config::StorageConfig;
    use crate::storage::data_dir::Identity;

    fn put(key: &str, precondition: Precondition) -> Command {
        Command::Writes(vec![WriteCommand {
            container: "c".into(),
            key: key.into(),
            op: WriteOp::Put {
                value: b"v".to_vec(),
                precondition,
            },
            ts: 1,
            origin_region: RegionId::new("west"),
            epoch: crate::glsn::EPOCH_INITIAL,
        }])
    }

    /// A state machine of a west node on a fresh store; keep the directory
    /// for as long as the store is used.
    fn open_west() -> (tempfile::TempDir, Store, StateMachine) {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::new("sm", RegionId::new("west"), NodeId(1));
        let store = Store::open(dir.path(), &StorageConfig::default(), &identity).unwrap();
        let sm = StateMachine::open(store.clone(), Arc::new(Hlc::default()), u64::MAX).unwrap();
        (dir, store, sm)
    }

    #[tokio::test]
    async fn apply_commands_applies_in_order_and_advances_the_applied_index() {
        let (_dir, store, mut sm) = open_west();
        let commands = vec![
            put("a", Precondition::None),
            put("b", Precondition::None),
            // Sees "a" from earlier in the same batch, so it is rejected.
            put("a", Precondition::Absent),
        ];
        let outcomes = sm.apply_commands(1, 1, commands).await.unwrap();
        let glsns: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                WriteOutcome::Applied { glsn, .. } => Some(glsn.lsn),
                WriteOutcome::Rejected { .. } => None,
            })
            .collect();
        assert_eq!(glsns, vec![1, 2]);
        assert!(matches!(
            outcomes[2],
            WriteOutcome::Rejected {
                rejection: command::Rejection::AlreadyExists,
                ..
            }
        ));
        assert_eq!(
            *sm.applied().borrow(),
            Applied {
                index: 3,
                glsn: sm.glsn,
                resyncing: false,
                write_epoch: 1,
            }
        );
        assert!(store.state.get_item("c", "b").unwrap().is_some());
    }

    /// A region whose own writes went past a fork must not take the new
    /// epoch's entries at the same LSNs as duplicates.
    #[tokio::test]
    async fn shipped_entries_of_a_newer_epoch_at_applied_lsns_are_not_skipped_as_duplicates() {
        let (_dir, store, mut sm) = open_west();
        // West applied e1:1..3 itself; the history forked at e1:1.
        let local = vec![
            put("a", Precondition::None),
            put("b", Precondition::None),
            put("c", Precondition::None),
        ];
        sm.apply_commands(1, 1, local).await.unwrap();
        assert_eq!(sm.glsn, Glsn::new(1, 3));
        let east = RegionId::new("east");
        let version = |lsn| ItemVersion {
            value: b"east".to_vec(),
            etag: Etag::for_write(Glsn::new(2, lsn)),
            glsn: Glsn::new(2, lsn),
            ts: 2,
            origin_region: east.clone(),
        };
        let shipped: Vec<GeoEntry> = (2..=4)
            .map(|lsn| {
                GeoEntry::record(
                    Glsn::new(2, lsn),
                    "c",
                    &format!("east{lsn}"),
                    2,
                    &east,
                    Some(&version(lsn)),
                )
            })
            .collect();
        sm.apply_commands(4, 1, vec![Command::Ship(shipped)])
            .await
            .unwrap();
        // Nothing was taken: not e2:2..3 as duplicates, nor e2:4 after them.
        assert_eq!(sm.glsn, Glsn::new(1, 3));
        for lsn in 2..=4 {
            assert!(
                store
                    .state
                    .get_item("c", &format!("east{lsn}"))
                    .unwrap()
                    .is_none()
            );
        }
    }

    /// Seed 207 of `verify --nemesis failover`: west's cut-off leader took
    /// a write under its lease; the batch reached west's next leader after
    /// east had taken over and shipped e2 entries to west. Applied, it got
    /// the next LSN of epoch 2 (an LSN east gave another write) and west
    /// skipped east's entry there as a duplicate, for good.
    #[tokio::test]
    async fn a_write_of_an_epoch_this_region_no_longer_writes_in_is_refused() {
        let (_dir, store, mut sm) = open_west();
        sm.apply_commands(1, 1, vec![put("a", Precondition::None)])
            .await
            .unwrap();
        let east = RegionId::new("east");
        let version = ItemVersion {
            value: b"east".to_vec(),
            etag: Etag::for_write(Glsn::new(2, 2)),
            glsn: Glsn::new(2, 2),
            ts: 2,
            origin_region: east.clone(),
        };
        let shipped = GeoEntry::record(Glsn::new(2, 2), "c", "e", 2, &east, Some(&version));
        sm.apply_commands(2, 1, vec![Command::Ship(vec![shipped])])
            .await
            .unwrap();
        assert_eq!(sm.glsn, Glsn::new(2, 2));

        let late = sm
            .apply_commands(3, 1, vec![put("late", Precondition::None)])
            .await
            .unwrap();
        assert_eq!(
            late,
            vec![WriteOutcome::Rejected {
                rejection: command::Rejection::EpochEnded { taken: 1 },
                applied_glsn: Glsn::new(2, 2),
            }]
        );
        assert_eq!(sm.glsn, Glsn::new(2, 2), "no LSN was taken");
        assert!(store.state.get_item("c", "late").unwrap().is_none());

        // West writes again only once it begins an epoch of its own, and
        // only writes stamped with that epoch.
        sm.apply_commands(4, 1, vec![Command::BeginEpoch { epoch: 3 }])
            .await
            .unwrap();
        let stale = sm
            .apply_commands(5, 1, vec![put("stale", Precondition::None)])
            .await
            .unwrap();
        assert!(matches!(
            stale[0],
            WriteOutcome::Rejected {
                rejection: command::Rejection::EpochEnded { taken: 1 },
                ..
            }
        ));
        let Command::Writes(mut writes) = put("fresh", Precondition::None) else {
            unreachable!("put builds a write batch")
        };
        writes[0].epoch = 3;
        let fresh = sm
            .apply_commands(6, 1, vec![Command::Writes(writes)])
            .await
            .unwrap();
        assert!(matches!(
            fresh[0],
            WriteOutcome::Applied { glsn, .. } if glsn == Glsn::new(3, 3)
        ));
    }
}
