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
use crate::crash::{CrashPoint, crash_point};
use crate::glsn::{EPOCH_INITIAL, Glsn};
use crate::hlc::Hlc;
use crate::item::{Etag, ItemVersion};
use crate::raft::codec::{decode, encode, read_err, write_err};
use crate::raft::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::storage::state::{StateBatch, StateImage, StateStore};
use crate::storage::store::Store;

const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";
const GLSN: &str = "glsn";

/// What a replica has applied: readers wait on this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub glsn: Glsn,
}

/// A snapshot as kept on disk: openraft's metadata and the state image.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
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
}

impl StateMachine {
    pub fn open(store: Store, hlc: Arc<Hlc>) -> Result<Self, StorageError> {
        let state = &store.state;
        let last_applied: Option<LogId> = read_value(state, APPLIED)?.flatten();
        let membership = read_value(state, MEMBERSHIP)?.unwrap_or_default();
        let glsn = read_value(state, GLSN)?.unwrap_or(Glsn::new(EPOCH_INITIAL, 0));
        if let Some(bytes) = store.snapshot.load().map_err(read_err)? {
            let stored: StoredSnapshot = decode("stored snapshot", &bytes).map_err(read_err)?;
            publish_snapshot_covers(&store, &stored.meta);
        }
        let applied = Applied {
            index: last_applied.map_or(0, |l| l.index),
            glsn,
        };
        Ok(Self {
            store,
            last_applied,
            membership,
            glsn,
            applied_tx: Arc::new(watch::channel(applied).0),
            hlc,
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
        });
    }

    /// Applies one write against the batch's overlay, so later writes in the
    /// same batch see earlier ones.
    fn apply_write(
        &mut self,
        write: WriteCommand,
        overlay: &mut HashMap<(String, String), Option<ItemVersion>>,
    ) -> Result<WriteOutcome, StorageError> {
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
        let glsn = self.glsn.next();
        self.glsn = glsn;
        self.hlc.observe(write.ts);
        let new = match write.op {
            WriteOp::Put { value, .. } => Some(ItemVersion {
                value,
                etag: Etag::for_write(glsn),
                glsn,
                ts: write.ts,
                origin_region: write.origin_region,
            }),
            WriteOp::Delete { .. } => None,
        };
        let etag = new.as_ref().map(|v| v.etag.clone());
        overlay.insert(slot, new);
        Ok(WriteOutcome::Applied { glsn, etag })
    }
}

/// Tells the log that the snapshot file on disk now covers `meta`'s last
/// log id, so purges up to it may become durable. Never moves back.
fn publish_snapshot_covers(store: &Store, meta: &SnapshotMeta) {
    let covers = meta.last_log_id.map(|l| l.index);
    store.snapshot_covers.send_if_modified(|c| {
        let grows = covers > *c;
        if grows {
            *c = covers;
        }
        grows
    });
}

fn read_value<T: serde::de::DeserializeOwned>(
    state: &StateStore,
    name: &'static str,
) -> Result<Option<T>, StorageError> {
    match state.get_value(name).map_err(read_err)? {
        Some(bytes) => Ok(Some(decode(name, &bytes).map_err(read_err)?)),
        None => Ok(None),
    }
}

fn image_value<T: serde::de::DeserializeOwned>(
    image: &StateImage,
    name: &'static str,
) -> Result<Option<T>, StorageError> {
    let key = [&[b'm'][..], name.as_bytes()].concat();
    match image
        .entries
        .iter()
        .find(|(k, _)| k.as_slice() == key.as_slice())
    {
        Some((_, v)) => Ok(Some(decode(name, v).map_err(read_err)?)),
        None => Ok(None),
    }
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
        let mut overlay = HashMap::new();
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
                EntryPayload::Normal(Command::Writes(writes)) => writes
                    .into_iter()
                    .map(|w| self.apply_write(w, &mut overlay))
                    .collect::<Result<Vec<_>, _>>()?,
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
            };
            replies.push(reply);
        }
        let batch = StateBatch {
            items: overlay.into_iter().map(|((c, k), v)| (c, k, v)).collect(),
            values: vec![
                (APPLIED, encode(&self.last_applied)),
                (MEMBERSHIP, encode(&self.membership)),
                (GLSN, encode(&self.glsn)),
            ],
        };
        self.store.state.apply(batch).map_err(write_err)?;
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
        self.store.state.import(image).map_err(write_err)?;
        self.store
            .snapshot
            .save(&encode(&StoredSnapshot {
                meta: meta.clone(),
                data,
            }))
            .map_err(write_err)?;
        publish_snapshot_covers(&self.store, meta);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.glsn = glsn;
        self.publish_applied();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(bytes) = self.store.snapshot.load().map_err(read_err)? else {
            return Ok(None);
        };
        let stored: StoredSnapshot = decode("stored snapshot", &bytes).map_err(read_err)?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// Builds a snapshot from the state at one point in time.
pub struct SnapshotBuilder {
    store: Store,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let image = self.store.state.export().map_err(read_err)?;
        let last_log_id: Option<LogId> = image_value::<Option<LogId>>(&image, APPLIED)?.flatten();
        let last_membership: StoredMembership =
            image_value(&image, MEMBERSHIP)?.unwrap_or_default();
        // Unique enough: a node builds at most one snapshot per log position
        // per millisecond, and openraft only compares ids for equality.
        let built_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
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
        }])
    }

    #[tokio::test]
    async fn apply_commands_applies_in_order_and_advances_the_applied_index() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::new("sm", RegionId::new("west"), NodeId(1));
        let store = Store::open(dir.path(), &StorageConfig::default(), &identity).unwrap();
        let mut sm = StateMachine::open(store.clone(), Arc::new(Hlc::default())).unwrap();
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
                glsn: sm.glsn
            }
        );
        assert!(store.state.get_item("c", "b").unwrap().is_some());
    }
}
