//! openraft's `RaftStateMachine` for the meta group: applies meta commands
//! with `MetaState::apply` and keeps the whole (small) state as one value
//! in the meta store's state tree, beside the applied log id and the
//! membership, all written in one atomic batch. The containers are a
//! value of their own (`META_CONTAINERS`), so a state persisted before
//! containers existed still decodes: bincode has no room for a field
//! appended to a struct, and a missing key reads as no containers.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::watch;

use crate::meta::{MetaReply, MetaState};
use crate::raft::codec::{decode, encode, read_err, write_err};
use crate::raft::state_machine::{
    APPLIED, MEMBERSHIP, SnapshotBuilder, current_snapshot, image_value, install_image, read_value,
};
use crate::raft::types::{LogId, MetaTypeConfig, SnapshotMeta, StorageError, StoredMembership};
use crate::storage::state::{StateBatch, StateImage};
use crate::storage::store::Store;

const META_STATE: &str = "meta_state";
const META_CONTAINERS: &str = "meta_containers";

pub struct MetaStateMachine {
    store: Store,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    state: MetaState,
    state_tx: Arc<watch::Sender<MetaState>>,
}

impl MetaStateMachine {
    pub fn open(store: Store) -> Result<Self, StorageError> {
        let last_applied: Option<LogId> = read_value(&store.state, APPLIED)?.flatten();
        let membership = read_value(&store.state, MEMBERSHIP)?.unwrap_or_default();
        let mut state: MetaState = read_value(&store.state, META_STATE)?.unwrap_or_default();
        state.containers = read_value(&store.state, META_CONTAINERS)?.unwrap_or_default();
        Ok(Self {
            store,
            last_applied,
            membership,
            state_tx: Arc::new(watch::channel(state.clone()).0),
            state,
        })
    }

    /// A receiver that sees the state after every applied batch.
    pub fn state(&self) -> watch::Receiver<MetaState> {
        self.state_tx.subscribe()
    }

    fn persist(&self) -> Result<(), StorageError> {
        let batch = StateBatch {
            items: Vec::new(),
            values: vec![
                (APPLIED, encode(&self.last_applied)),
                (MEMBERSHIP, encode(&self.membership)),
                (META_STATE, encode(&self.state)),
                (META_CONTAINERS, encode(&self.state.containers)),
            ],
            ..StateBatch::default()
        };
        self.store.state.apply(batch).map_err(write_err)
    }
}

impl RaftStateMachine<MetaTypeConfig> for MetaStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaReply>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<MetaTypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            assert!(
                Some(entry.log_id) > self.last_applied,
                "meta apply went backwards: {} after {:?}",
                entry.log_id,
                self.last_applied
            );
            self.last_applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => MetaReply::Done,
                EntryPayload::Normal(command) => self.state.apply(command),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    MetaReply::Done
                }
            });
        }
        self.persist()?;
        self.state_tx.send_replace(self.state.clone());
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
        let image: StateImage = decode("meta snapshot", &data).map_err(read_err)?;
        let mut state: MetaState = image_value(&image, META_STATE)?.unwrap_or_default();
        state.containers = image_value(&image, META_CONTAINERS)?.unwrap_or_default();
        install_image(&self.store, meta, image, data)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.state = state;
        self.state_tx.send_replace(self.state.clone());
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<MetaTypeConfig>>, StorageError> {
        current_snapshot(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::Consistency;
    use crate::ids::{NodeId, RegionId};
    use crate::meta::MetaCommand;
    use crate::storage::config::StorageConfig;
    use crate::storage::data_dir::Identity;

    fn open_store(dir: &std::path::Path) -> Store {
        let me = Identity::new("dev", RegionId::new("west"), NodeId(1));
        let config = StorageConfig {
            in_memory: true,
            ..StorageConfig::default()
        };
        Store::open(dir, &config, &me).expect("open the store")
    }

    fn init() -> MetaCommand {
        crate::meta::testing::init(&["west", "east"], Consistency::Session)
    }

    async fn apply(sm: &mut MetaStateMachine, index: u64, command: MetaCommand) -> MetaReply {
        let entry = openraft::Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(command),
        };
        sm.apply([entry]).await.expect("apply").remove(0)
    }

    #[tokio::test]
    async fn containers_survive_a_reopen_and_a_state_without_them_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut sm = MetaStateMachine::open(store.clone()).unwrap();
        apply(&mut sm, 1, init()).await;
        let create = MetaCommand::CreateContainer {
            name: "jobs".into(),
            policy: "lww:/priority".parse().unwrap(),
        };
        assert_eq!(apply(&mut sm, 2, create).await, MetaReply::Done);
        let reopened = MetaStateMachine::open(store.clone()).unwrap();
        assert_eq!(reopened.state, sm.state, "containers included");
        assert!(reopened.state.container("jobs").is_some());

        // A store written before containers existed holds the meta state
        // alone, in the same bytes.
        let mut old = MetaState::default();
        old.apply(init());
        let batch = StateBatch {
            values: vec![(META_STATE, encode(&old))],
            ..StateBatch::default()
        };
        let old_store = open_store(&dir.path().join("old"));
        old_store.state.apply(batch).unwrap();
        let from_old = MetaStateMachine::open(old_store).unwrap();
        assert_eq!(from_old.state, old);
        assert!(from_old.state.containers.is_empty());
    }
}
