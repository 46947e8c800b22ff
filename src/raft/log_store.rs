//! openraft's `RaftLogStorage` over the sled log, through the log writer
//! and the in-memory log tail.
//!
//! An append goes into the tail cache at once (so it is readable when
//! `append` returns, as openraft requires) and to the log writer thread;
//! openraft is told it is durable only from the writer's callback, after the
//! flush. Votes go through the same writer, so they stay ordered with the
//! log, and `save_vote` returns only once the vote is durable.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use crate::raft::codec::{decode, encode, read_err, read_logs_err, write_err, write_logs_err};
use crate::raft::log_cache::LogCache;
use crate::raft::types::{Group, LogId, StorageError, Vote};
use crate::storage::log_writer::LogJob;
use crate::storage::store::Store;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The tail kept in memory per node: enough for replication to lagging
/// followers without touching disk, small next to the sled cache.
pub const LOG_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The log of one raft group (`C`: the region's replica set or the meta
/// group), each over its own `Store`.
pub struct LogStore<C: Group> {
    store: Store,
    /// A std lock: held for in-memory map operations only, never across an
    /// `.await` or a disk read.
    cache: Arc<Mutex<Tail<C>>>,
    group: PhantomData<C>,
}

impl<C: Group> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            cache: self.cache.clone(),
            group: PhantomData,
        }
    }
}

/// The cache plus the last log id, which the cache may have evicted.
struct Tail<C: Group> {
    cache: LogCache<openraft::Entry<C>>,
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
}

impl<C: Group> LogStore<C> {
    pub fn open(store: Store) -> Result<Self, StorageError> {
        let last_purged = read_meta::<Option<LogId>>(&store, LAST_PURGED)?.flatten();
        let last_log_id = match store.log.last().map_err(read_logs_err)? {
            Some((_, bytes)) => Some(
                decode::<openraft::Entry<C>>("log entry", &bytes)
                    .map_err(read_logs_err)?
                    .log_id,
            ),
            None => last_purged,
        };
        let tail = Tail {
            cache: LogCache::new(LOG_CACHE_BYTES_MAX),
            last_log_id,
            last_purged,
        };
        Ok(Self {
            store,
            cache: Arc::new(Mutex::new(tail)),
            group: PhantomData,
        })
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail<C>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(
    store: &Store,
    name: &'static str,
) -> Result<Option<T>, StorageError> {
    match store.meta.get(name).map_err(read_err)? {
        Some(bytes) => Ok(Some(decode(name, &bytes).map_err(read_err)?)),
        None => Ok(None),
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

impl<C: Group> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<openraft::Entry<C>>, StorageError> {
        let (start, end) = bounds(range);
        // Truncations and purges reach sled later, on the writer thread; the
        // logical log is `(last_purged, last_log_id]`, so reads are clamped
        // to it and never see an entry the writer has yet to delete.
        let (start, end, cached, disk_end) = {
            let tail = self.tail();
            let start = start.max(tail.last_purged.map_or(0, |p| p.index + 1));
            let end = end.min(tail.last_log_id.map_or(0, |l| l.index + 1));
            if start >= end {
                return Ok(Vec::new());
            }
            let (cached, disk_end) = tail.cache.range(start, end);
            (start, end, cached, disk_end)
        };
        debug_assert!(disk_end <= end);
        let mut entries: Vec<openraft::Entry<C>> = self
            .store
            .log
            .range(start, disk_end)
            .map_err(read_logs_err)?
            .iter()
            .map(|(_, bytes)| decode("log entry", bytes).map_err(read_logs_err))
            .collect::<Result<_, _>>()?;
        entries.extend(cached);
        Ok(entries)
    }
}

impl<C: Group> RaftLogStorage<C> for LogStore<C> {
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError> {
        let tail = self.tail();
        Ok(LogState {
            last_purged_log_id: tail.last_purged,
            last_log_id: tail.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store
            .log_writer
            .submit_and_wait(LogJob::SetMeta(VOTE, encode(vote)))
            .await
            .map_err(|e| openraft::StorageIOError::write_vote(openraft::AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        read_meta(&self.store, VOTE)
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
        Ok(read_meta::<Option<LogId>>(&self.store, COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        {
            let mut tail = self.tail();
            for entry in entries {
                let bytes = encode(&entry);
                tail.last_log_id = Some(entry.log_id);
                tail.cache.append(entry.log_id.index, entry, bytes.len());
                encoded.push((tail.last_log_id.map_or(0, |l| l.index), bytes));
            }
        }
        let Some(last_index) = encoded.last().map(|(i, _)| *i) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let cache = self.cache.clone();
        let done = Box::new(move |result: std::io::Result<()>| {
            if result.is_ok() {
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .cache
                    .mark_durable(last_index);
            }
            callback.log_io_completed(result);
        });
        self.store
            .log_writer
            .submit(LogJob::Append(encoded), Some(done))
            .await
            .map_err(write_logs_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let cached_last = {
            let mut tail = self.tail();
            tail.cache.truncate_from(log_id.index);
            tail.cache.last().map(|e| e.log_id)
        };
        // The disk read happens outside the lock (it is not reentrant, and
        // disk reads do not belong under it).
        let last = match cached_last {
            Some(l) => Some(l),
            None => self.last_on_disk_before(log_id.index)?,
        };
        self.tail().last_log_id = last;
        self.store
            .log_writer
            .submit(LogJob::TruncateFrom(log_id.index), None)
            .await
            .map_err(write_logs_err)
    }

    /// The purge point is recorded before entries go, so a crash in between
    /// never shows a log that starts later than its recorded purge point.
    /// The log writer records it only once the snapshot file covers it (see
    /// `storage::log_writer`); until then the purge is in memory only.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut tail = self.tail();
            tail.cache.purge_upto(log_id.index);
            tail.last_purged = Some(log_id);
            if tail.last_log_id.is_none_or(|l| l.index < log_id.index) {
                tail.last_log_id = Some(log_id);
            }
        }
        self.store
            .log_writer
            .submit(
                LogJob::PurgeUpto {
                    upto: log_id.index,
                    record: (LAST_PURGED, encode(&Some(log_id))),
                },
                None,
            )
            .await
            .map_err(write_logs_err)
    }
}

impl<C: Group> LogStore<C> {
    /// The log id of the last entry below `index`, which is on disk when the
    /// cache holds nothing below it.
    /// Must be called without the tail lock held.
    fn last_on_disk_before(&self, index: u64) -> Result<Option<LogId>, StorageError> {
        let found = match index.checked_sub(1) {
            Some(prev) => self.store.log.range(prev, index).map_err(read_logs_err)?,
            None => Vec::new(),
        };
        match found.first() {
            Some((_, bytes)) => Ok(Some(
                decode::<openraft::Entry<C>>("log entry", bytes)
                    .map_err(read_logs_err)?
                    .log_id,
            )),
            None => Ok(self.tail().last_purged),
        }
    }
}
