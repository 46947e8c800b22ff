//! Proposal batching: concurrent writes on a node are coalesced into one
//! raft entry (`Command::Writes`), so the replica set pays its per-entry
//! costs (log append, replication message, apply call) once per batch
//! instead of once per write.
//!
//! At most `PROPOSALS_IN_FLIGHT_MAX` batches are in flight; while they are,
//! new writes queue, so batches grow with load and stay single writes when
//! idle (no added latency). Each write still gets its own GLSN, etag and
//! outcome; a batch commits or fails as a whole, so a write's outcome is
//! exactly as certain as it would be alone.
//!
//! A batch goes to the region leader: proposed locally when this node leads,
//! forwarded over the replica transport otherwise. A refusal before the
//! entry was appended is retried until the deadline, because nothing
//! happened; a lost answer after it is `OutcomeUnknown`, never retried.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::command::{Command, WriteCommand, WriteOp, WriteOutcome};
use crate::error::Error;
use crate::ids::NodeId;
use crate::limits::VALUE_BYTES_MAX;
use crate::raft::chase::{Attempt, chase_leader};
use crate::raft::replica::{Replica, ReplicaError};

/// Batches proposed but not yet answered.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 4;
/// Writes in one batch.
pub const BATCH_WRITES_MAX: usize = 512;
/// Bytes of values in one batch; a single maximal value always fits.
pub const BATCH_BYTES_MAX: usize = 2 * VALUE_BYTES_MAX;
/// Writes waiting for a batch; callers wait when it is full.
const QUEUED_WRITES_MAX: usize = 8192;

struct Pending {
    write: WriteCommand,
    reply: oneshot::Sender<Result<WriteOutcome, Error>>,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the batching task; it ends when every `Proposer` is dropped.
    pub fn spawn(replica: Replica, request_timeout: Duration) -> Proposer {
        let (tx, rx) = mpsc::channel(QUEUED_WRITES_MAX);
        tokio::spawn(run(rx, replica, request_timeout));
        Proposer { tx }
    }

    /// Proposes one write in the next batch and waits for its outcome.
    pub async fn propose(&self, write: WriteCommand) -> Result<WriteOutcome, Error> {
        let (reply, outcome) = oneshot::channel();
        self.tx
            .send(Pending { write, reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        // The batch task answers every write it took, so a closed channel
        // means it was aborted mid-proposal: the outcome is unknown.
        outcome.await.unwrap_or_else(|_| {
            Err(Error::OutcomeUnknown {
                reason: "the proposal was abandoned during shutdown".into(),
            })
        })
    }
}

fn value_bytes(write: &WriteCommand) -> usize {
    match &write.op {
        WriteOp::Put { value, .. } => value.len(),
        WriteOp::Delete { .. } => 0,
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, replica: Replica, request_timeout: Duration) {
    let slots = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT_MAX));
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = value_bytes(&first.write);
        let mut batch = vec![first];
        while batch.len() < BATCH_WRITES_MAX {
            let Ok(next) = rx.try_recv() else { break };
            let next_bytes = value_bytes(&next.write);
            if bytes + next_bytes > BATCH_BYTES_MAX {
                carried = Some(next);
                break;
            }
            bytes += next_bytes;
            batch.push(next);
        }
        let replica = replica.clone();
        tokio::spawn(async move {
            propose_batch(&replica, batch, request_timeout).await;
            drop(slot);
        });
    }
}

async fn propose_batch(replica: &Replica, batch: Vec<Pending>, request_timeout: Duration) {
    let (writes, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.write, p.reply)).unzip();
    let count = writes.len();
    match propose_at_leader(replica, &Command::Writes(writes), request_timeout).await {
        Ok(outcomes) => {
            assert_eq!(
                outcomes.len(),
                count,
                "the state machine answers every write of a batch"
            );
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Proposes `command` at the region leader, retrying refusals that left
/// nothing behind until `request_timeout` has passed (`raft::chase`).
pub async fn propose_at_leader(
    replica: &Replica,
    command: &Command,
    request_timeout: Duration,
) -> Result<Vec<WriteOutcome>, Error> {
    let deadline = Instant::now() + request_timeout;
    let attempt = |leader: NodeId| async move {
        let attempt = if leader == replica.id() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, replica.propose(command.clone())).await {
                Ok(result) => result,
                Err(_) => Err(ReplicaError::OutcomeUnknown {
                    reason: format!("not committed within {request_timeout:?}"),
                }),
            }
        } else {
            replica.propose_at(leader, command).await
        };
        match attempt {
            Ok(outcomes) => Attempt::Done(Ok(outcomes)),
            Err(ReplicaError::CallFailed { node, reason }) => {
                Attempt::Done(Err(Error::OutcomeUnknown {
                    reason: format!("forwarded to {node}: {reason}"),
                }))
            }
            Err(e) if is_retryable(&e) => Attempt::Failed(to_error(replica, e)),
            Err(e) => Attempt::Done(Err(to_error(replica, e))),
        }
    };
    chase_leader(deadline, || replica.leader(), attempt)
        .await
        .map_err(|last| last.unwrap_or_else(|| no_leader(replica)))
}

/// The error of a call that never found its region's leader.
pub fn no_leader(replica: &Replica) -> Error {
    to_error(
        replica,
        ReplicaError::NotLeader {
            node: replica.id(),
            leader: None,
        },
    )
}

/// Errors after which nothing happened, so another attempt is safe.
pub fn is_retryable(e: &ReplicaError) -> bool {
    matches!(
        e,
        ReplicaError::NotLeader { .. }
            | ReplicaError::Unreachable { .. }
            | ReplicaError::NoQuorum { .. }
    )
}

/// A replica error as the client sees it.
pub fn to_error(replica: &Replica, e: ReplicaError) -> Error {
    Error::from(e).in_region(replica.region())
}
