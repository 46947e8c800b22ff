//! Calls to other nodes: one node (`call`), a region's leader following
//! `NotLeader` hints (`call_leader`, through the one leader chase of
//! `raft::chase`), and streams (`open_stream`). The last known leader of
//! each region is remembered here.

use std::time::Duration;

use crate::clock::Instant;

use crate::codec::{decode, encode};
use crate::error::Error;
use crate::geo::ship::StreamRequest;
use crate::ids::{NodeId, RegionId};
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::handle::Geo;
use crate::raft::chase::{Attempt, chase_leader};
use crate::raft::network::{PeerError, Rpc};

impl Geo {
    /// Sends a node-level request to one node. A forwarded write whose
    /// call failed after it was sent may have been applied: its outcome is
    /// unknown, and `call_leader` must not send it to another node (a
    /// second attempt could apply it twice, or refuse it with THROTTLED or
    /// a failed precondition although it committed).
    pub async fn call(&self, node: NodeId, request: &NodeRequest) -> Result<NodeReply, Error> {
        let timeout = self.inner.request_timeout;
        let reply = self
            .inner
            .peers
            .call(node, Rpc::Call, encode(request), timeout)
            .await
            .map_err(|e| match (&e, request) {
                (PeerError::Failed { .. }, NodeRequest::Write { .. }) => Error::OutcomeUnknown {
                    reason: format!("the write forwarded to {node} may have been applied: {e}"),
                },
                _ => Error::Unavailable {
                    region: self.region_of(node),
                    reason: e.to_string(),
                },
            })?;
        decode::<Result<NodeReply, Error>>("node reply", &reply)
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    fn region_of(&self, node: NodeId) -> Option<RegionId> {
        self.inner.account.region_of(node).map(|r| r.name.clone())
    }

    /// Sends `request` to the leader of `region`, trying the last known
    /// leader first, then every node, following `NotLeader` hints, until
    /// `timeout` (`raft::chase`). Only for requests that are safe to
    /// repeat or that fail before doing anything when they reach a
    /// non-leader.
    pub async fn call_leader(
        &self,
        region: &RegionId,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeReply, Error> {
        let Some(config) = self.inner.account.region(region) else {
            return Err(Error::InvalidArgument(format!("unknown region {region}")));
        };
        let nodes: Vec<NodeId> = config.nodes.iter().map(|n| n.id).collect();
        let deadline = Instant::now() + timeout;
        // A round: the last known leader, then every node. A full round
        // without a leader (an election, most likely) ends in a pause.
        let round = || -> std::vec::IntoIter<NodeId> {
            let order: Vec<NodeId> = self
                .hint(region)
                .into_iter()
                .chain(nodes.iter().copied())
                .collect();
            order.into_iter()
        };
        let mut order = round();
        let candidates = || {
            let next = order.next();
            if next.is_none() {
                order = round();
            }
            next
        };
        let attempt = |node: NodeId| async move {
            if matches!(request, NodeRequest::Write { .. }) {
                let meta = self.meta_state();
                if !meta.is_write_region(region)
                    && let Some(moved_to) = meta.write_region
                {
                    return Attempt::Done(Err(Error::NotWriteRegion {
                        region: region.clone(),
                        write_region: Some(moved_to),
                        epoch: meta.epoch,
                    }));
                }
            }
            match self.call(node, request).await {
                Ok(NodeReply::NotLeader { leader }) => Attempt::NotLeader(leader, None),
                Ok(reply) => {
                    self.set_hint(region, node);
                    Attempt::Done(Ok(reply))
                }
                Err(e @ Error::Unavailable { .. }) => Attempt::Unreachable(e),
                Err(e) => {
                    self.set_hint(region, node);
                    Attempt::Done(Err(e))
                }
            }
        };
        chase_leader(deadline, candidates, attempt)
            .await
            .map_err(|last| {
                last.unwrap_or_else(|| Error::Unavailable {
                    region: Some(region.clone()),
                    reason: "no leader found".into(),
                })
            })
    }

    /// The last known leader of `region`.
    pub(super) fn hint(&self, region: &RegionId) -> Option<NodeId> {
        self.inner
            .hints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
            .copied()
    }

    fn set_hint(&self, region: &RegionId, node: NodeId) {
        self.inner
            .hints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(region.clone(), node);
    }

    /// Opens a stream of geo log messages from `source`.
    pub(super) async fn open_stream(
        &self,
        source: NodeId,
        request: &StreamRequest,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Vec<u8>, PeerError>>, String> {
        self.inner
            .peers
            .open_stream(source, encode(request))
            .await
            .map_err(|e| e.to_string())
    }
}
