//! Group commit. A log append writes into sled's memory and queues a
//! callback here; one task flushes sled once for everything queued so far
//! and then runs every callback. Many concurrent writes share one fsync.
//!
//! Invariant: a callback runs only after a flush that started after its
//! append was written, so "callback ran with Ok" means "append is durable".

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::storage::error::{Result, StorageError};

/// Callbacks one flush may complete; the queue holds at most this many too.
pub const FLUSH_WAITERS_MAX: usize = 4096;

pub type FlushDone = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// Counters for status and benchmarks: `appends / flushes` is the batching
/// factor group commit achieves.
#[derive(Debug, Default)]
pub struct FlushStats {
    pub flushes: AtomicU64,
    pub waiters: AtomicU64,
}

pub struct Flusher {
    tx: mpsc::Sender<FlushDone>,
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<FlushStats>,
}

impl Flusher {
    /// Starts the flush task; it ends at `stop` (or when dropped).
    pub fn spawn(db: sled::Db) -> Flusher {
        let (tx, rx) = mpsc::channel(FLUSH_WAITERS_MAX);
        let stats = Arc::new(FlushStats::default());
        let task = tokio::spawn(run(db, rx, stats.clone()));
        Flusher { tx, task, stats }
    }

    /// Completes every queued callback, then ends the task, releasing its
    /// handle on the database.
    pub async fn stop(self) {
        drop(self.tx);
        if let Err(e) = self.task.await {
            tracing::warn!("flush task ended badly: {e}");
        }
    }

    /// Queues `done` to run once everything written so far is durable.
    pub async fn after_next_flush(&self, done: FlushDone) -> Result<()> {
        self.tx
            .send(done)
            .await
            .map_err(|_| StorageError::Io("the flush task has stopped".into()))
    }
}

async fn run(db: sled::Db, mut rx: mpsc::Receiver<FlushDone>, stats: Arc<FlushStats>) {
    let mut waiters: Vec<FlushDone> = Vec::with_capacity(FLUSH_WAITERS_MAX);
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while waiters.len() < FLUSH_WAITERS_MAX {
            match rx.try_recv() {
                Ok(w) => waiters.push(w),
                Err(_) => break,
            }
        }
        let db = db.clone();
        // sled's flush blocks on fsync; keep it off the async workers.
        let result = match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("flush task failed: {e}")),
        };
        stats.flushes.fetch_add(1, Ordering::Relaxed);
        stats
            .waiters
            .fetch_add(waiters.len() as u64, Ordering::Relaxed);
        for done in waiters.drain(..) {
            done(result.clone().map_err(std::io::Error::other));
        }
    }
}
