//! openraft's own storage conformance suite, run on the sled store.

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

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, tempfile::TempDir>
    for SledBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = Identity::new("suite", RegionId::new("west"), NodeId(1));
        let store =
            Store::open(dir.path(), &StorageConfig::default(), &identity).expect("open store");
        let sm = StateMachine::open(store.clone(), Arc::new(Hlc::default()), u64::MAX)?;
        Ok((dir, LogStore::open(store)?, sm))
    }
}

#[test]
fn sled_store_passes_the_openraft_storage_suite() {
    Suite::test_all(SledBuilder).expect("openraft storage suite");
}
