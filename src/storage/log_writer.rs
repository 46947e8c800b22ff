//! The log writer: one thread that owns every mutation of the raft log and
//! the vote, in the order they were submitted, with group commit.
//!
//! Callers submit jobs (append, truncate, purge, vote) and return at once;
//! the thread applies queued jobs to sled, flushes once for all of them, and
//! then runs their completion callbacks. So openraft's core task never waits
//! on sled, and many concurrent writes share one fsync.
//!
//! Invariants:
//! - jobs take effect in submission order (one thread, one FIFO queue);
//! - a callback runs with `Ok` only after a flush that started after its
//!   job was applied, so `Ok` means "durable";
//! - a purge deletes at most `PURGE_CHUNK_ENTRIES` per step, between other
//!   jobs, so purging a long log never stalls appends behind it;
//! - a purge point is recorded, and its entries deleted, only once the
//!   snapshot file covers it. openraft 0.9 purges right after it hands a
//!   received snapshot to the state machine, without waiting for the
//!   install; recording the purge point then lets any flush during the
//!   install make it durable, and a crash before the snapshot file is saved
//!   leaves a purge point past the snapshot, which openraft refuses to
//!   start from. A purge not yet covered waits (without blocking other
//!   jobs) and is dropped at stop: the entries simply stay.
//!
//! On an in-memory database (the deterministic simulation) there is no
//! thread: `submit` applies the job and runs its callback before it
//! returns, since an OS thread would wake the simulation at moments no
//! seed decides. The order and durability invariants hold the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};

use crate::crash::{CrashPoint, crash_point};
use crate::storage::backend::Db;
use crate::storage::error::{Result, StorageError};
use crate::storage::log::LogTree;
use crate::storage::meta::MetaTree;

/// Jobs queued at most; submitters wait when the queue is full.
pub const LOG_JOBS_QUEUED_MAX: usize = 4096;
/// Jobs applied before one flush.
const JOBS_PER_FLUSH_MAX: usize = 1024;
/// Entries one purge step deletes.
pub const PURGE_CHUNK_ENTRIES: u64 = 1000;

pub type Done = Box<dyn FnOnce(std::io::Result<()>) + Send>;

pub enum LogJob {
    Append(Vec<(u64, Vec<u8>)>),
    TruncateFrom(u64),
    /// Delete every entry with index <= `upto`, in chunks, after writing
    /// the named meta value `record` (the purge point).
    PurgeUpto {
        upto: u64,
        record: (&'static str, Vec<u8>),
    },
    /// A named value of the meta tree (the vote), made durable in order
    /// with the log.
    SetMeta(&'static str, Vec<u8>),
}

/// Counters: `jobs / flushes` is the batching factor group commit achieves.
#[derive(Debug, Default)]
pub struct LogWriterStats {
    pub flushes: AtomicU64,
    pub jobs: AtomicU64,
}

pub struct LogWriter {
    mode: Mode,
    pub stats: Arc<LogWriterStats>,
}

enum Mode {
    Thread {
        tx: mpsc::Sender<(LogJob, Option<Done>)>,
        thread: JoinHandle<()>,
    },
    /// A std lock: held for one job, which never awaits.
    Inline(Mutex<Worker>),
}

impl LogWriter {
    /// `snapshot_covers` is the last log index the snapshot file covers.
    /// On an in-memory database, the writer works inline (no thread).
    pub fn spawn(
        db: Db,
        log: LogTree,
        meta: MetaTree,
        snapshot_covers: watch::Receiver<Option<u64>>,
    ) -> Result<LogWriter> {
        let stats = Arc::new(LogWriterStats::default());
        let inline = db.is_memory();
        let worker = Worker {
            db,
            log,
            meta,
            stats: stats.clone(),
            snapshot_covers,
            purge_target: None,
            purge_recorded: false,
            purged_upto: None,
        };
        if inline {
            return Ok(LogWriter {
                mode: Mode::Inline(Mutex::new(worker)),
                stats,
            });
        }
        let (tx, rx) = mpsc::channel(LOG_JOBS_QUEUED_MAX);
        let thread = std::thread::Builder::new()
            .name("meridian-log-writer".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| StorageError::Io(format!("starting the log writer thread: {e}")))?;
        Ok(LogWriter {
            mode: Mode::Thread { tx, thread },
            stats,
        })
    }

    /// Queues `job`; `done` runs once it is applied and durable.
    pub async fn submit(&self, job: LogJob, done: Option<Done>) -> Result<()> {
        match &self.mode {
            Mode::Thread { tx, .. } => tx
                .send((job, done))
                .await
                .map_err(|_| StorageError::Io("the log writer has stopped".into())),
            Mode::Inline(worker) => {
                let mut worker = worker.lock().unwrap_or_else(|p| p.into_inner());
                worker.apply_and_flush(&mut vec![(job, done)]);
                worker.purge_while_pending();
                Ok(())
            }
        }
    }

    /// Queues `job` and waits until it is durable.
    pub async fn submit_and_wait(&self, job: LogJob) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: Done = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.submit(job, Some(done)).await?;
        match rx.await {
            Ok(r) => r.map_err(|e| StorageError::Io(e.to_string())),
            Err(_) => Err(StorageError::Io(
                "the log writer stopped before the job was durable".into(),
            )),
        }
    }

    /// Finishes every queued job (and a pending purge), then ends the thread.
    pub async fn stop(self) {
        let Mode::Thread { tx, thread } = self.mode else {
            // Inline: every job finished within its `submit`.
            return;
        };
        drop(tx);
        if let Err(e) = tokio::task::spawn_blocking(move || thread.join()).await {
            tracing::warn!("log writer did not stop cleanly: {e}");
        }
    }
}

struct Worker {
    db: Db,
    log: LogTree,
    meta: MetaTree,
    stats: Arc<LogWriterStats>,
    snapshot_covers: watch::Receiver<Option<u64>>,
    /// The highest purge asked for, with its purge point to record.
    purge_target: Option<(u64, (&'static str, Vec<u8>))>,
    /// Whether `purge_target`'s purge point is written to the meta tree.
    purge_recorded: bool,
    purged_upto: Option<u64>,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<(LogJob, Option<Done>)>) {
        let mut batch: Vec<(LogJob, Option<Done>)> = Vec::with_capacity(JOBS_PER_FLUSH_MAX);
        loop {
            // Block for work only when no purge is pending.
            if batch.is_empty() && !self.purge_pending() {
                match rx.blocking_recv() {
                    Some(job) => batch.push(job),
                    None => return,
                }
            }
            while batch.len() < JOBS_PER_FLUSH_MAX {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                if let Err(e) = self.purge_step() {
                    tracing::error!("purging the raft log: {e}");
                    self.purge_target = None;
                }
                if rx.is_closed() && rx.is_empty() && !self.purge_pending() {
                    return;
                }
                continue;
            }
            self.apply_and_flush(&mut batch);
        }
    }

    /// Purges while a covered purge is pending (the inline writer's
    /// stand-in for the thread's idle steps).
    fn purge_while_pending(&mut self) {
        while self.purge_pending() {
            if let Err(e) = self.purge_step() {
                tracing::error!("purging the raft log: {e}");
                self.purge_target = None;
            }
        }
    }

    /// A purge that is covered by the snapshot and not finished. An
    /// uncovered one is not pending: the thread then sleeps on the queue and
    /// looks again at the next job.
    fn purge_pending(&self) -> bool {
        let covers = *self.snapshot_covers.borrow();
        self.purge_target.as_ref().is_some_and(|(t, _)| {
            covers >= Some(*t) && (!self.purge_recorded || self.purged_upto.is_none_or(|p| p < *t))
        })
    }

    fn apply_and_flush(&mut self, batch: &mut Vec<(LogJob, Option<Done>)>) {
        let mut result: std::result::Result<(), String> = Ok(());
        for (job, _) in batch.iter_mut() {
            if let Err(e) = self.apply(job) {
                result = Err(e.to_string());
                break;
            }
        }
        let needs_flush = batch.iter().any(|(_, done)| done.is_some());
        if result.is_ok() && needs_flush {
            result = self.db.flush().map_err(|e| e.to_string());
            self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        }
        self.stats
            .jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!("raft log write failed: {e}");
        }
        if result.is_ok()
            && batch
                .iter()
                .any(|(job, _)| matches!(job, LogJob::Append(_)))
        {
            crash_point(CrashPoint::AfterLogAppend);
        }
        for (_, done) in batch.drain(..) {
            if let Some(done) = done {
                done(result.clone().map_err(std::io::Error::other));
            }
        }
    }

    fn apply(&mut self, job: &mut LogJob) -> Result<()> {
        match job {
            LogJob::Append(entries) => self.log.append(std::mem::take(entries)),
            LogJob::TruncateFrom(from) => self.log.truncate_from(*from),
            LogJob::PurgeUpto { upto, record } => {
                if self.purge_target.as_ref().is_none_or(|(t, _)| *upto > *t) {
                    self.purge_target = Some((*upto, std::mem::take(record)));
                    self.purge_recorded = false;
                }
                Ok(())
            }
            LogJob::SetMeta(name, value) => self.meta.set(name, value),
        }
    }

    /// Deletes the next chunk of purged entries.
    fn purge_step(&mut self) -> Result<()> {
        if !self.purge_pending() {
            return Ok(());
        }
        let Some((target, (name, point))) = &self.purge_target else {
            return Ok(());
        };
        let target = *target;
        if !self.purge_recorded {
            self.meta.set(name, point)?;
            self.purge_recorded = true;
        }
        let first = match self.log.first_index()? {
            Some(first) if first <= target => first,
            _ => {
                self.purged_upto = Some(target);
                return Ok(());
            }
        };
        let upto = target.min(first + PURGE_CHUNK_ENTRIES - 1);
        self.log.purge_upto(upto)?;
        crash_point(CrashPoint::MidLogPurge);
        self.purged_upto = Some(upto);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: &str = "last_purged";

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
        range.map(|i| (i, vec![i as u8])).collect()
    }

    #[tokio::test]
    async fn a_purge_is_recorded_and_done_only_once_the_snapshot_covers_it() {
        let (_dir, db) = crate::storage::error::temp_db();
        let log = LogTree::open(&db).unwrap();
        let meta = MetaTree::open(&db).unwrap();
        let (covers, covers_rx) = watch::channel(None);
        let writer = LogWriter::spawn(db, log.clone(), meta.clone(), covers_rx).unwrap();
        writer
            .submit_and_wait(LogJob::Append(entries(1..=10)))
            .await
            .unwrap();
        let purge = LogJob::PurgeUpto {
            upto: 6,
            record: (POINT, b"six".to_vec()),
        };
        writer.submit_and_wait(purge).await.unwrap();
        writer
            .submit_and_wait(LogJob::SetMeta("other", vec![1]))
            .await
            .unwrap();
        // The snapshot covers only 5: neither the point nor a deletion.
        covers.send_replace(Some(5));
        writer
            .submit_and_wait(LogJob::SetMeta("other", vec![2]))
            .await
            .unwrap();
        assert_eq!(meta.get(POINT).unwrap(), None);
        assert_eq!(log.first_index().unwrap(), Some(1));

        // Covered: the next job wakes the thread, which records and purges.
        covers.send_replace(Some(6));
        writer
            .submit_and_wait(LogJob::SetMeta("other", vec![3]))
            .await
            .unwrap();
        writer.stop().await;
        assert_eq!(meta.get(POINT).unwrap(), Some(b"six".to_vec()));
        assert_eq!(log.first_index().unwrap(), Some(7));
    }
}
