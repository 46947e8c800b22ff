//! openraft's own storage conformance suite, run on the sled store and on
//! the in-memory one the simulation uses.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId};
use crate::raft::log_store::LogStore;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::{StorageError, TypeConfig};
use crate::storage::config::StorageConfig;
use crate::storage::data_dir::Identity;
use crate::storage::store::Store;

/// Builds stores on sled, or in memory when `in_memory`.
struct Builder {
    in_memory: bool,
}

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = Identity::new("suite", RegionId::new("west"), NodeId(1));
        let config = StorageConfig {
            in_memory: self.in_memory,
            ..StorageConfig::default()
        };
        // Each build has a directory of its own, so in memory too each
        // store starts empty.
        let store = Store::open(dir.path(), &config, &identity).expect("open store");
        let sm = StateMachine::open(store.clone(), Arc::new(Hlc::default()), u64::MAX)?;
        Ok((dir, LogStore::open(store)?, sm))
    }
}

#[test]
fn sled_store_passes_the_openraft_storage_suite() {
    Suite::test_all(Builder { in_memory: false }).expect("openraft storage suite");
}

#[test]
fn in_memory_store_passes_the_openraft_storage_suite() {
    Suite::test_all(Builder { in_memory: true }).expect("openraft storage suite");
}
