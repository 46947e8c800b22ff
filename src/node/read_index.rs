//! Read-index coalescing: concurrent linearizable reads on a node share one
//! read-index request to the leader, instead of one quorum round each.
//!
//! Safety: a read may use a read index only if the request that produced
//! it started after the read arrived. The task below drains every waiting
//! read *before* starting a request and answers exactly those with its
//! result; reads arriving meanwhile wait for the next request. So every
//! read still observes every write acknowledged before it arrived.

use std::time::Duration;

use crate::clock::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::ids::NodeId;
use crate::node::proposer::{is_retryable, no_leader, to_error};
use crate::raft::chase::{Attempt, chase_leader};
use crate::raft::replica::{Replica, ReplicaError};

/// Reads waiting for the next read-index request; callers wait when full.
const QUEUED_READS_MAX: usize = 8192;
/// Reads one request answers.
const READS_PER_REQUEST_MAX: usize = 4096;

type Waiter = oneshot::Sender<Result<u64, Error>>;

#[derive(Clone)]
pub struct ReadIndexer {
    tx: mpsc::Sender<Waiter>,
}

impl ReadIndexer {
    /// Starts the coalescing task; it ends when every handle is dropped.
    pub fn spawn(replica: Replica, request_timeout: Duration) -> ReadIndexer {
        let (tx, rx) = mpsc::channel(QUEUED_READS_MAX);
        tokio::spawn(run(rx, replica, request_timeout));
        ReadIndexer { tx }
    }

    /// A log index that reflects every write acknowledged before this call.
    pub async fn read_index(&self) -> Result<u64, Error> {
        let (waiter, result) = oneshot::channel();
        self.tx
            .send(waiter)
            .await
            .map_err(|_| Error::ShuttingDown)?;
        result.await.unwrap_or(Err(Error::ShuttingDown))
    }
}

async fn run(mut rx: mpsc::Receiver<Waiter>, replica: Replica, request_timeout: Duration) {
    let mut waiters = Vec::with_capacity(64);
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while waiters.len() < READS_PER_REQUEST_MAX {
            match rx.try_recv() {
                Ok(w) => waiters.push(w),
                Err(_) => break,
            }
        }
        let result = fetch(&replica, request_timeout).await;
        for waiter in waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}

/// How long a read waits for its region leader to hold a read lease.
const NO_LEASE_PATIENCE: Duration = Duration::from_millis(1500);

/// Asks the leader (this node, or over the replica transport) for its read
/// index, retrying until `request_timeout` (`raft::chase`): a read changes
/// nothing, so even a call that failed after sending is safe to repeat.
async fn fetch(replica: &Replica, request_timeout: Duration) -> Result<u64, Error> {
    let started = Instant::now();
    let deadline = started + request_timeout;
    let attempt = |leader: NodeId| async move {
        let attempt = if leader == replica.id() {
            replica.read_index().await
        } else {
            replica.read_index_at(leader).await
        };
        match attempt {
            Ok(index) => Attempt::Done(Ok(index)),
            // A new leader renews its region's lease within a renewal
            // interval; a region cut off from the meta group never does.
            Err(e @ ReplicaError::NoReadLease { .. }) if started.elapsed() < NO_LEASE_PATIENCE => {
                Attempt::Failed(e)
            }
            Err(e) if is_retryable(&e) || matches!(e, ReplicaError::CallFailed { .. }) => {
                Attempt::Failed(e)
            }
            Err(e) => Attempt::Done(Err(e)),
        }
    };
    match chase_leader(deadline, || replica.leader(), attempt).await {
        Ok(index) => Ok(index),
        Err(Some(e)) => Err(to_error(replica, e)),
        Err(None) => Err(no_leader(replica)),
    }
}
