//! The dispatch of node-level requests from other nodes (the `Call` and
//! `Stream` RPCs of the replica transport): lease renewals to the meta
//! leader, writes forwarded to the write region's leader, acknowledgements
//! from read regions, region reports for status, and the geo streams. It
//! sits above both the request logic (`kv`) and the cross-region runtime
//! (`regions`), which never call back into it; the messages are in
//! `node::messages`.

use crate::codec::{decode, encode};
use crate::command::WriteCommand;
use crate::conflict::ConflictRecord;
use crate::consistency::Consistency;
use crate::error::Error;
use crate::geo::ship::StreamRequest;
use crate::glsn::SessionToken;
use crate::ids::NodeId;
use crate::node::kv::{Kv, WriteReceipt};
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::Geo;
use crate::node::ship_source::{resync_stream, ship_stream};
use crate::raft::service::{MessageStream, NodeCalls};
use crate::shutdown::Shutdown;

/// Answers node-level requests with the node's `Geo` and `Kv`.
pub struct Calls {
    pub geo: Geo,
    /// `None` on a witness.
    pub kv: Option<Kv>,
    /// Streams this node serves end when it stops, whether or not their
    /// reader is still there.
    pub shutdown: Shutdown,
}

impl Calls {
    /// Answers one node-level request: each kind goes to its handler.
    async fn answer(&self, request: NodeRequest) -> Result<NodeReply, Error> {
        match request {
            NodeRequest::RenewLease {
                region,
                node,
                applied,
            } => self.geo.handle_renewal(region, node, applied).await,
            NodeRequest::Fence => self.geo.handle_fence().await,
            NodeRequest::GeoAck { region, glsn } => Ok(self.geo.handle_ack(&region, glsn).await),
            NodeRequest::Write {
                write,
                consistency,
                session,
            } => self.forwarded_write(write, consistency, session).await,
            NodeRequest::RecordConflicts { records } => self.record_conflicts(records).await,
            NodeRequest::DeleteConflict { id } => self.delete_conflict(id).await,
            NodeRequest::StrongHeld { glsn } => {
                if !self.geo.is_write_leader() {
                    return Ok(not_leader(self.kv()?));
                }
                self.geo.confirm_strong_held(glsn).await?;
                Ok(NodeReply::Done)
            }
            NodeRequest::FailsafeConfirm { region, epoch } => {
                self.geo.handle_failsafe_confirm(&region, epoch).await
            }
            NodeRequest::RegionReport => self.region_report(),
        }
    }

    /// Applies a write forwarded by another node, at the write region's
    /// leader.
    async fn forwarded_write(
        &self,
        write: WriteCommand,
        consistency: Consistency,
        session: Option<SessionToken>,
    ) -> Result<NodeReply, Error> {
        let kv = self.kv()?;
        if !self.geo.is_write_leader() {
            return Ok(not_leader(kv));
        }
        let WriteReceipt { glsn, etag } = kv.write_at_leader(write, consistency, session).await?;
        Ok(NodeReply::Written { glsn, etag })
    }

    /// Records writes lost to a fork in the conflict feed, at the write
    /// region's leader.
    async fn record_conflicts(&self, records: Vec<ConflictRecord>) -> Result<NodeReply, Error> {
        let kv = self.kv()?;
        if !self.geo.is_write_leader() {
            return Ok(not_leader(kv));
        }
        kv.record_conflicts_at_leader(records).await?;
        Ok(NodeReply::Done)
    }

    /// Deletes conflict feed entry `id`, at the write region's leader.
    async fn delete_conflict(&self, id: u64) -> Result<NodeReply, Error> {
        let kv = self.kv()?;
        if !self.geo.is_write_leader() {
            return Ok(not_leader(kv));
        }
        let glsn = kv.delete_conflict_at_leader(id).await?;
        Ok(NodeReply::Written { glsn, etag: None })
    }

    /// This region's report for status, from its leader.
    fn region_report(&self) -> Result<NodeReply, Error> {
        let kv = self.kv()?;
        if !kv.replica().is_leader() {
            return Ok(not_leader(kv));
        }
        let report = self
            .geo
            .report()
            .ok_or_else(|| Error::Internal("no region".into()))?;
        Ok(NodeReply::Report(Box::new(report)))
    }

    fn kv(&self) -> Result<&Kv, Error> {
        self.kv
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("a witness holds no region".into()))
    }
}

/// The answer of a node that is not the leader the request needs: where
/// its region's leader is, as far as it knows.
fn not_leader(kv: &Kv) -> NodeReply {
    NodeReply::NotLeader {
        leader: kv.replica().leader(),
    }
}

#[tonic::async_trait]
impl NodeCalls for Calls {
    async fn call(&self, _from: NodeId, payload: Vec<u8>) -> Result<Vec<u8>, Error> {
        let request: NodeRequest =
            decode("node request", &payload).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(encode(&self.answer(request).await))
    }

    async fn stream(&self, _from: NodeId, payload: Vec<u8>) -> Result<MessageStream, Error> {
        let request: StreamRequest = decode("stream request", &payload)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let kv = self.kv()?;
        let replica = kv.replica().clone();
        let batch_bytes = self.geo.geo_config().ship_batch_bytes as usize;
        if let StreamRequest::Fetch { from_lsn, .. } = request {
            // A region taking over fetches from any region.
            return Ok(ship_stream(
                replica,
                from_lsn,
                batch_bytes,
                self.shutdown.clone(),
            ));
        }
        if !self.geo.meta_state().is_write_region(replica.region()) {
            return Err(Error::Refused(format!(
                "{} is not in the write region",
                replica.id()
            )));
        }
        match request {
            StreamRequest::Ship { from_lsn, .. } | StreamRequest::Fetch { from_lsn, .. } => Ok(
                ship_stream(replica, from_lsn, batch_bytes, self.shutdown.clone()),
            ),
            StreamRequest::Resync { .. } => resync_stream(replica, self.shutdown.clone()),
        }
    }
}
