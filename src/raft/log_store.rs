//! openraft's `RaftLogStorage` over the sled log tree.
//!
//! An append is written into sled and acknowledged to openraft only after
//! the group-commit flusher has flushed it (`storage::flusher`). Votes are
//! flushed before `save_vote` returns.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use crate::raft::codec::{decode, encode, read_err, read_logs_err, write_err, write_logs_err};
use crate::raft::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::storage::store::Store;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

#[derive(Clone)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, StorageError> {
        match self.store.meta.get(name).map_err(read_err)? {
            Some(bytes) => Ok(Some(decode(name, &bytes).map_err(read_err)?)),
            None => Ok(None),
        }
    }
}

fn bounds(range: impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(range);
        let raw = self.store.log.range(start, end).map_err(read_logs_err)?;
        raw.iter()
            .map(|(_, bytes)| decode("log entry", bytes).map_err(read_logs_err))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> =
            self.read_meta::<Option<LogId>>(LAST_PURGED)?.flatten();
        let last = match self.store.log.last().map_err(read_logs_err)? {
            Some((_, bytes)) => Some(
                decode::<Entry>("log entry", &bytes)
                    .map_err(read_logs_err)?
                    .log_id,
            ),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store
            .meta
            .set_durably(VOTE, &encode(vote))
            .await
            .map_err(|e| openraft::StorageIOError::write_vote(openraft::AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE)
    }

    /// Saved so a restarted node re-applies up to it without waiting for a
    /// leader; not flushed, since losing it only delays re-applying.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.store
            .meta
            .set(COMMITTED, &encode(&committed))
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| (e.log_id.index, encode(&e)))
            .collect();
        self.store.log.append(encoded).map_err(write_logs_err)?;
        self.store
            .flusher
            .after_next_flush(Box::new(move |result| callback.log_io_completed(result)))
            .await
            .map_err(write_logs_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.store
            .log
            .truncate_from(log_id.index)
            .map_err(write_logs_err)
    }

    /// The purge point is recorded before entries go, so a crash in between
    /// never shows a log that starts later than its recorded purge point.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.store
            .meta
            .set(LAST_PURGED, &encode(&Some(log_id)))
            .map_err(write_logs_err)?;
        self.store
            .log
            .purge_upto(log_id.index)
            .map_err(write_logs_err)
    }
}
