//! `MetaReplica`: one node's member of the account's meta group, in domain
//! terms. Voters (one node per region by default, plus witnesses) decide;
//! every other node is a learner, so every node holds the meta state and
//! reads it locally. The meta leader keeps the membership complete (adds
//! missing learners) and forms the state from the configuration once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{EmptyNode, ServerState};
use tokio::sync::watch;

use crate::clock::Instant;
use crate::config::RaftConfig;
use crate::ids::NodeId;
use crate::meta::{MetaCommand, MetaReply, MetaState};
use crate::raft::chase::{Attempt, chase_leader};
use crate::raft::codec::encode;
use crate::raft::config::openraft_config;
use crate::raft::log_store::LogStore;
use crate::raft::meta_machine::MetaStateMachine;
use crate::raft::network::{Peers, Rpc};
use crate::raft::replica::{ReplicaError, form_if_lowest, remote_call};
use crate::raft::types::{GROUP_META, MetaRaft};
use crate::shutdown::Shutdown;
use crate::storage::store::Store;

/// How often the meta leader checks the membership and the formed state.
const MAINTAIN_EVERY: Duration = Duration::from_millis(200);

pub struct MetaReplicaOptions {
    pub id: NodeId,
    pub account: String,
    pub voters: BTreeSet<NodeId>,
    /// Every node of the account that is not a voter.
    pub learners: BTreeSet<NodeId>,
    pub raft: RaftConfig,
    /// Peers of the whole account; messages go out tagged as meta.
    pub peers: Peers,
    pub store: Store,
}

#[derive(Clone)]
pub struct MetaReplica {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    voters: BTreeSet<NodeId>,
    learners: BTreeSet<NodeId>,
    raft: MetaRaft,
    state: watch::Receiver<MetaState>,
    peers: Peers,
}

/// The meta group's raft settings: few, small entries (lease renewals), so
/// snapshots come often and keep the log short.
fn meta_raft_config(raft: &RaftConfig) -> RaftConfig {
    RaftConfig {
        snapshot_after_entries: 2_000,
        logs_to_keep_after_snapshot: 500,
        ..raft.clone()
    }
}

impl MetaReplica {
    pub async fn start(opts: MetaReplicaOptions) -> Result<MetaReplica, ReplicaError> {
        let cluster = format!("{}-meta", opts.account);
        let config = openraft_config(&cluster, &meta_raft_config(&opts.raft))
            .map_err(ReplicaError::Storage)?;
        let log =
            LogStore::open(opts.store.clone()).map_err(|e| ReplicaError::Storage(e.to_string()))?;
        let sm = MetaStateMachine::open(opts.store.clone())
            .map_err(|e| ReplicaError::Storage(e.to_string()))?;
        let state = sm.state();
        let peers = opts.peers.for_group(GROUP_META);
        let raft = MetaRaft::new(opts.id.0, config, peers.clone(), log, sm)
            .await
            .map_err(|e| ReplicaError::Storage(e.to_string()))?;
        Ok(MetaReplica {
            inner: Arc::new(Inner {
                id: opts.id,
                voters: opts.voters,
                learners: opts.learners,
                raft,
                state,
                peers,
            }),
        })
    }

    pub(crate) fn raft(&self) -> &MetaRaft {
        &self.inner.raft
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.inner.voters
    }

    /// This node's copy of the meta state (it may trail the meta leader's).
    pub fn state(&self) -> MetaState {
        self.inner.state.borrow().clone()
    }

    /// A receiver that sees every change of this node's copy.
    pub fn watch(&self) -> watch::Receiver<MetaState> {
        self.inner.state.clone()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(NodeId)
    }

    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Forms the meta group if nobody has yet: only the lowest voter does.
    pub async fn bootstrap_if_new(&self) -> Result<(), ReplicaError> {
        form_if_lowest(&self.inner.raft, self.inner.id, &self.inner.voters).await
    }

    /// Proposes at this node, which must be the meta leader.
    pub async fn propose_local(&self, command: MetaCommand) -> Result<MetaReply, ReplicaError> {
        match self.inner.raft.client_write(command).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ReplicaError::NotLeader {
                    node: self.inner.id,
                    leader: f.leader_id.map(NodeId),
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ReplicaError::Storage(e.to_string()))
            }
            Err(RaftError::Fatal(_)) => Err(ReplicaError::ShuttingDown),
        }
    }

    /// Proposes at the meta leader, wherever it is, following leader hints
    /// until `timeout` (`raft::chase`). Meta commands are idempotent or
    /// compare-and-set, so a retry after an unknown outcome is harmless.
    pub async fn propose(
        &self,
        command: MetaCommand,
        timeout: Duration,
    ) -> Result<MetaReply, ReplicaError> {
        let deadline = Instant::now() + timeout;
        let command = &command;
        let attempt = |target: NodeId| async move {
            let result = if target == self.inner.id {
                self.propose_local(command.clone()).await
            } else {
                self.propose_at(target, command).await
            };
            match result {
                Ok(reply) => Attempt::Done(Ok(reply)),
                Err(ReplicaError::NotLeader { leader, .. }) => Attempt::NotLeader(
                    leader,
                    Some(ReplicaError::NotLeader {
                        node: self.inner.id,
                        leader,
                    }),
                ),
                Err(e @ (ReplicaError::ShuttingDown | ReplicaError::Storage(_))) => {
                    Attempt::Done(Err(e))
                }
                Err(e) => Attempt::Failed(e),
            }
        };
        chase_leader(deadline, || self.leader(), attempt)
            .await
            .map_err(|last| {
                last.unwrap_or_else(|| ReplicaError::Timeout {
                    what: "a meta leader".into(),
                    after_ms: timeout.as_millis() as u64,
                })
            })
    }

    async fn propose_at(
        &self,
        node: NodeId,
        command: &MetaCommand,
    ) -> Result<MetaReply, ReplicaError> {
        remote_call(&self.inner.peers, node, Rpc::Propose, encode(command)).await
    }

    /// Runs until shutdown: while this node leads the meta group, it adds
    /// every missing learner and forms the state from `init` once.
    pub async fn maintain(self, init: MetaCommand, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(MAINTAIN_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tick.tick() => {}
            }
            if !self.is_leader() {
                continue;
            }
            if !self.state().is_formed()
                && let Err(e) = self.propose_local(init.clone()).await
            {
                tracing::debug!("forming the meta state: {e}");
            }
            let known: BTreeSet<u64> = {
                let metrics = self.inner.raft.metrics().borrow().clone();
                metrics
                    .membership_config
                    .membership()
                    .nodes()
                    .map(|(id, _)| *id)
                    .collect()
            };
            for learner in &self.inner.learners {
                if known.contains(&learner.0) {
                    continue;
                }
                if let Err(e) = self
                    .inner
                    .raft
                    .add_learner(learner.0, EmptyNode {}, false)
                    .await
                {
                    tracing::debug!(%learner, "adding a meta learner: {e}");
                    break;
                }
            }
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(node = %self.inner.id, "meta raft shutdown: {e}");
        }
    }
}
