//! `Replica`: one node's member of its region's replica set, in domain
//! terms. It proposes commands, answers read-index requests as leader,
//! waits for applied positions, reports status, and reaches other replicas
//! of its region. The rest of meridian uses this and never openraft.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use openraft::ServerState;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::command::{Command, WriteOutcome};
use crate::config::RaftConfig;
use crate::error::Error;
use crate::glsn::Glsn;
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId};
use crate::raft::codec::{decode, encode};
use crate::raft::config::openraft_config;
use crate::raft::log_store::LogStore;
use crate::raft::network::{PeerError, Peers, Rpc};
use crate::raft::state_machine::{Applied, StateMachine};
use crate::raft::types::{Group, Raft};
use crate::storage::state::StateStore;
use crate::storage::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

/// What a status poll asks of a node.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    pub digest: bool,
}

/// One replica's view of itself, for `meridian status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub node_id: NodeId,
    pub region: RegionId,
    pub role: Role,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub applied_glsn: Glsn,
    pub leader: Option<NodeId>,
    /// Last log index covered by this replica's current snapshot (built
    /// locally or installed from the leader).
    pub snapshot_index: Option<u64>,
    /// Entries purged from the local log (all are in the snapshot).
    pub purged_index: Option<u64>,
    /// Re-syncing from the write region after a fork.
    pub resyncing: bool,
    /// The digest of the replica's items (`StateMachine::items_digest`),
    /// when asked for: equal digests mean equal items.
    pub items_digest: Option<String>,
}

/// What can go wrong talking to the replica set, split by what the caller
/// may do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReplicaError {
    /// Nothing was done; send it to `leader` (unknown during an election).
    #[error("{node} is not the leader of its replica set (leader: {})", leader.map_or("unknown".into(), |l| l.to_string()))]
    NotLeader {
        node: NodeId,
        leader: Option<NodeId>,
    },
    /// The request never left this node; retrying is safe.
    #[error("{node} unreachable: {reason}")]
    Unreachable { node: NodeId, reason: String },
    /// The request reached (or may have reached) `node` and then failed.
    #[error("call to {node} failed: {reason}")]
    CallFailed { node: NodeId, reason: String },
    /// A proposed write may or may not have committed.
    #[error("write outcome unknown: {reason}")]
    OutcomeUnknown { reason: String },
    /// The leader could not confirm leadership with a quorum.
    #[error("no quorum: {reason}")]
    NoQuorum { reason: String },
    #[error("timed out after {after_ms} ms waiting for {what}")]
    Timeout { what: String, after_ms: u64 },
    /// The leader holds no valid read lease for its region: it may not
    /// serve strong or bounded-staleness reads.
    #[error("{node} holds no valid read lease for region {region}")]
    NoReadLease { node: NodeId, region: RegionId },
    #[error("the replica is shutting down")]
    ShuttingDown,
    #[error("storage error: {0}")]
    Storage(String),
}

/// The one mapping of a replica error to what a client hears. A write
/// whose outcome is unknown stays unknown, so no client retries it
/// blindly; after the other errors nothing was done, so they are
/// `Unavailable` (retry later), with the region left for the caller to
/// name (`Error::in_region`).
impl From<ReplicaError> for Error {
    fn from(e: ReplicaError) -> Error {
        match e {
            ReplicaError::OutcomeUnknown { reason } => Error::OutcomeUnknown { reason },
            ReplicaError::ShuttingDown => Error::ShuttingDown,
            ReplicaError::Storage(reason) => Error::Internal(reason),
            other @ (ReplicaError::NotLeader { .. }
            | ReplicaError::Unreachable { .. }
            | ReplicaError::CallFailed { .. }
            | ReplicaError::NoQuorum { .. }
            | ReplicaError::Timeout { .. }
            | ReplicaError::NoReadLease { .. }) => Error::Unavailable {
                region: None,
                reason: other.to_string(),
            },
        }
    }
}

pub struct ReplicaOptions {
    pub id: NodeId,
    pub region: RegionId,
    pub account: String,
    /// The voters of the region's replica set.
    pub members: BTreeSet<NodeId>,
    pub raft: RaftConfig,
    pub peers: Peers,
    pub store: Store,
    pub hlc: Arc<Hlc>,
    pub geo_cap_bytes: u64,
}

#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    region: RegionId,
    members: BTreeSet<NodeId>,
    raft: Raft,
    applied: watch::Receiver<Applied>,
    store: Store,
    peers: Peers,
    /// Until when this replica, as leader, may serve strong and bounded
    /// reads (the region's read lease, set by `node::regions`).
    read_lease: watch::Sender<Option<Instant>>,
}

/// Forms a raft group of `members` if nobody has yet. Only the lowest
/// member does it, so two nodes never form two different groups. Serves
/// both the region's replica set and the meta group.
pub(crate) async fn form_if_lowest<C: Group>(
    raft: &openraft::Raft<C>,
    me: NodeId,
    members: &BTreeSet<NodeId>,
) -> Result<(), ReplicaError> {
    if members.iter().next() != Some(&me) {
        return Ok(());
    }
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|_| ReplicaError::ShuttingDown)?;
    if initialized {
        return Ok(());
    }
    let ids: BTreeSet<u64> = members.iter().map(|n| n.0).collect();
    match raft.initialize(ids).await {
        Ok(()) => Ok(()),
        // Someone else's log reached us first: already formed.
        Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(ReplicaError::Storage(e.to_string())),
    }
}

/// Sends one node-level replica RPC to `node` through `peers` and decodes
/// its `Result<T, ReplicaError>` reply.
pub(crate) async fn remote_call<T: DeserializeOwned>(
    peers: &Peers,
    node: NodeId,
    rpc: Rpc,
    payload: Vec<u8>,
) -> Result<T, ReplicaError> {
    let reply = peers
        .call(node, rpc, payload, peers.request_timeout())
        .await
        .map_err(|e| match e {
            PeerError::Unreachable { to, reason } => ReplicaError::Unreachable { node: to, reason },
            PeerError::Failed { to, reason } => ReplicaError::CallFailed { node: to, reason },
        })?;
    let result: Result<T, ReplicaError> =
        decode("replica reply", &reply).map_err(|e| ReplicaError::CallFailed {
            node,
            reason: e.to_string(),
        })?;
    result
}

impl Replica {
    pub async fn start(opts: ReplicaOptions) -> Result<Replica, ReplicaError> {
        let config = openraft_config(&opts.account, &opts.raft).map_err(ReplicaError::Storage)?;
        let log =
            LogStore::open(opts.store.clone()).map_err(|e| ReplicaError::Storage(e.to_string()))?;
        let sm = StateMachine::open(opts.store.clone(), opts.hlc.clone(), opts.geo_cap_bytes)
            .map_err(|e| ReplicaError::Storage(e.to_string()))?;
        let applied = sm.applied();
        let raft = Raft::new(opts.id.0, config, opts.peers.clone(), log, sm)
            .await
            .map_err(|e| ReplicaError::Storage(e.to_string()))?;
        Ok(Replica {
            inner: Arc::new(Inner {
                id: opts.id,
                region: opts.region,
                members: opts.members,
                raft,
                applied,
                store: opts.store,
                peers: opts.peers,
                read_lease: watch::channel(None).0,
            }),
        })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn region(&self) -> &RegionId {
        &self.inner.region
    }

    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.inner.members
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The items, for reads from this replica's applied state.
    pub fn state(&self) -> &StateStore {
        &self.inner.store.state
    }

    /// Forms the replica set if nobody has yet (see `form_if_lowest`).
    pub async fn bootstrap_if_new(&self) -> Result<(), ReplicaError> {
        form_if_lowest(&self.inner.raft, self.inner.id, &self.inner.members).await
    }

    /// A receiver that sees every applied batch.
    pub fn applied_watch(&self) -> watch::Receiver<Applied> {
        self.inner.applied.clone()
    }

    pub fn applied(&self) -> Applied {
        *self.inner.applied.borrow()
    }

    /// Waits until the applied position satisfies `ready`, for at most
    /// `timeout`; returns the position that satisfied it.
    pub async fn wait_applied(
        &self,
        timeout: Duration,
        ready: impl Fn(&Applied) -> bool,
    ) -> Option<Applied> {
        let mut rx = self.inner.applied.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|a| ready(a))).await {
            Ok(Ok(a)) => Some(*a),
            _ => None,
        }
    }

    /// This replica leads its replica set now (cheap: no metrics copy).
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The raft term this replica leads in, if it leads.
    pub fn leader_term(&self) -> Option<u64> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        (m.state == ServerState::Leader).then_some(m.current_term)
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(NodeId)
    }

    pub fn status(&self) -> ReplicaStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        ReplicaStatus {
            node_id: self.inner.id,
            region: self.inner.region.clone(),
            role,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            applied_glsn: self.applied().glsn,
            leader: m.current_leader.map(NodeId),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            resyncing: self.applied().resyncing,
            items_digest: None,
        }
    }

    /// [`Replica::status`], with the items digest when `digest` is set
    /// (a scan of every item, so only on request).
    pub fn status_with(&self, digest: bool) -> ReplicaStatus {
        let mut status = self.status();
        if digest {
            status.items_digest = self
                .state()
                .items_digest()
                .map_err(|e| tracing::warn!(node = %self.inner.id, "items digest: {e}"))
                .ok();
        }
        status
    }

    /// Proposes `command` to this node's raft, which must be the leader.
    /// Rejection before the entry is appended is `NotLeader` (safe to send
    /// elsewhere); losing the answer after it is `OutcomeUnknown`.
    pub async fn propose(&self, command: Command) -> Result<Vec<WriteOutcome>, ReplicaError> {
        let rx = self
            .inner
            .raft
            .client_write_ff(command)
            .await
            .map_err(|_| ReplicaError::ShuttingDown)?;
        match rx.await {
            Ok(Ok(response)) => Ok(response.data),
            // openraft answers ForwardToLeader only for entries it refused
            // or truncated, which therefore never committed.
            Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err(ReplicaError::NotLeader {
                node: self.inner.id,
                leader: f.leader_id.map(NodeId),
            }),
            Ok(Err(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ReplicaError::Storage(e.to_string()))
            }
            Err(_) => Err(ReplicaError::OutcomeUnknown {
                reason: format!("{} stopped before answering", self.inner.id),
            }),
        }
    }

    /// Sets until when this replica may serve strong and bounded reads
    /// (`None`: no read lease).
    pub fn set_read_lease(&self, valid_until: Option<Instant>) {
        self.inner.read_lease.send_replace(valid_until);
    }

    /// How long the read lease has left (zero: none).
    pub fn read_lease_remaining(&self) -> Duration {
        self.inner.read_lease.borrow().map_or(Duration::ZERO, |u| {
            u.saturating_duration_since(Instant::now())
        })
    }

    /// The read index: a log index such that a replica that has applied it
    /// reflects every write acknowledged before this call. Leader only, and
    /// only while the region's read lease is valid.
    pub async fn read_index(&self) -> Result<u64, ReplicaError> {
        if self.read_lease_remaining().is_zero() && self.is_leader() {
            return Err(ReplicaError::NoReadLease {
                node: self.inner.id,
                region: self.inner.region.clone(),
            });
        }
        self.confirm_leadership().await
    }

    /// Confirms with a quorum that this replica leads, whatever its read
    /// lease; answers the read index that confirmation gives.
    pub async fn confirm_leadership(&self) -> Result<u64, ReplicaError> {
        let timeout = self.inner.peers.request_timeout();
        let result = tokio::time::timeout(timeout, self.inner.raft.get_read_log_id()).await;
        match result {
            Err(_) => Err(ReplicaError::NoQuorum {
                reason: format!("leadership not confirmed within {timeout:?}"),
            }),
            Ok(Ok((read_log_id, _))) => Ok(read_log_id.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(ReplicaError::NotLeader {
                    node: self.inner.id,
                    leader: f.leader_id.map(NodeId),
                })
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                Err(ReplicaError::NoQuorum {
                    reason: e.to_string(),
                })
            }
            Ok(Err(RaftError::Fatal(_))) => Err(ReplicaError::ShuttingDown),
        }
    }

    pub async fn propose_at(
        &self,
        node: NodeId,
        command: &Command,
    ) -> Result<Vec<WriteOutcome>, ReplicaError> {
        self.remote(node, Rpc::Propose, encode(command)).await
    }

    pub async fn read_index_at(&self, node: NodeId) -> Result<u64, ReplicaError> {
        self.remote(node, Rpc::ReadIndex, Vec::new()).await
    }

    pub async fn status_of(
        &self,
        node: NodeId,
        digest: bool,
    ) -> Result<ReplicaStatus, ReplicaError> {
        if node == self.inner.id {
            return Ok(self.status_with(digest));
        }
        let payload = encode(&StatusQuery { digest });
        self.remote::<ReplicaStatus>(node, Rpc::NodeStatus, payload)
            .await
    }

    async fn remote<T: DeserializeOwned>(
        &self,
        node: NodeId,
        rpc: Rpc,
        payload: Vec<u8>,
    ) -> Result<T, ReplicaError> {
        remote_call(&self.inner.peers, node, rpc, payload).await
    }

    /// Stops raft. Storage is flushed and released by `Store::close`,
    /// which the node calls once every handle is gone. Idempotent.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(node = %self.inner.id, "raft shutdown: {e}");
        }
    }
}
