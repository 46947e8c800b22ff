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
//!   jobs, so purging a long log never stalls appends behind it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::crash::{CrashPoint, crash_point};
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
    /// Delete every entry with index <= this, in chunks.
    PurgeUpto(u64),
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
    tx: mpsc::Sender<(LogJob, Option<Done>)>,
    thread: JoinHandle<()>,
    pub stats: Arc<LogWriterStats>,
}

impl LogWriter {
    pub fn spawn(db: sled::Db, log: LogTree, meta: MetaTree) -> Result<LogWriter> {
        let (tx, rx) = mpsc::channel(LOG_JOBS_QUEUED_MAX);
        let stats = Arc::new(LogWriterStats::default());
        let worker = Worker {
            db,
            log,
            meta,
            rx,
            stats: stats.clone(),
            purge_target: None,
            purged_upto: None,
        };
        let thread = std::thread::Builder::new()
            .name("meridian-log-writer".into())
            .spawn(move || worker.run())
            .map_err(|e| StorageError::Io(format!("starting the log writer thread: {e}")))?;
        Ok(LogWriter { tx, thread, stats })
    }

    /// Queues `job`; `done` runs once it is applied and durable.
    pub async fn submit(&self, job: LogJob, done: Option<Done>) -> Result<()> {
        self.tx
            .send((job, done))
            .await
            .map_err(|_| StorageError::Io("the log writer has stopped".into()))
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
        drop(self.tx);
        let thread = self.thread;
        if let Err(e) = tokio::task::spawn_blocking(move || thread.join()).await {
            tracing::warn!("log writer did not stop cleanly: {e}");
        }
    }
}

struct Worker {
    db: sled::Db,
    log: LogTree,
    meta: MetaTree,
    rx: mpsc::Receiver<(LogJob, Option<Done>)>,
    stats: Arc<LogWriterStats>,
    purge_target: Option<u64>,
    purged_upto: Option<u64>,
}

impl Worker {
    fn run(mut self) {
        let mut batch: Vec<(LogJob, Option<Done>)> = Vec::with_capacity(JOBS_PER_FLUSH_MAX);
        loop {
            // Block for work only when no purge is pending.
            if batch.is_empty() && !self.purge_pending() {
                match self.rx.blocking_recv() {
                    Some(job) => batch.push(job),
                    None => return,
                }
            }
            while batch.len() < JOBS_PER_FLUSH_MAX {
                match self.rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                if let Err(e) = self.purge_step() {
                    tracing::error!("purging the raft log: {e}");
                    self.purge_target = None;
                }
                if self.rx.is_closed() && self.rx.is_empty() && !self.purge_pending() {
                    return;
                }
                continue;
            }
            self.apply_and_flush(&mut batch);
        }
    }

    fn purge_pending(&self) -> bool {
        self.purge_target
            .is_some_and(|t| self.purged_upto.is_none_or(|p| p < t))
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
            result = self.db.flush().map(|_| ()).map_err(|e| e.to_string());
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
            LogJob::PurgeUpto(upto) => {
                self.purge_target = Some(self.purge_target.map_or(*upto, |t| t.max(*upto)));
                Ok(())
            }
            LogJob::SetMeta(name, value) => self.meta.set(name, value),
        }
    }

    /// Deletes the next chunk of purged entries.
    fn purge_step(&mut self) -> Result<()> {
        let Some(target) = self.purge_target else {
            return Ok(());
        };
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
