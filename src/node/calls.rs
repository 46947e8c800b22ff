//! Node-level requests between nodes (the `Call` and `Stream` RPCs of the
//! replica transport): lease renewals to the meta leader, writes forwarded
//! to the write region's leader, acknowledgements from read regions,
//! region reports for status, and the geo streams.

use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::command::WriteCommand;
use crate::conflict::ConflictRecord;
use crate::consistency::Consistency;
use crate::error::Error;
use crate::geo::ship::StreamRequest;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::{NodeId, RegionId};
use crate::meta::RegionState;
use crate::node::geo::{Geo, RegionReport};
use crate::node::kv::{Kv, WriteReceipt};
use crate::node::ship_source::{resync_stream, ship_stream};
use crate::raft::service::{MessageStream, NodeCalls};
use crate::shutdown::Shutdown;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// To the meta leader: renew `region`'s lease for its leader `node`,
    /// which has applied `applied`.
    RenewLease {
        region: RegionId,
        node: NodeId,
        applied: Glsn,
    },
    /// To the write region's leader, from the region taking over: stop
    /// taking writes and say what you applied.
    Fence,
    /// To the write region's leader: apply this write at `consistency`,
    /// for a session at `session` (refused if a fork lost that).
    Write {
        write: WriteCommand,
        consistency: Consistency,
        session: Option<SessionToken>,
    },
    /// To the write region's leader: `region` has durably applied `glsn`.
    GeoAck { region: RegionId, glsn: Glsn },
    /// To a region's leader: its report for status.
    RegionReport,
    /// To the write region's leader, from a region re-joining: record
    /// these writes lost to a fork in the conflict feed.
    RecordConflicts { records: Vec<ConflictRecord> },
    /// To the write region's leader: delete conflict feed entry `id`.
    DeleteConflict { id: u64 },
    /// To the write region's leader: answer once every region of the
    /// strong set holds `glsn` (a strong read is about to return it).
    StrongHeld { glsn: Glsn },
    /// To a region's leader, from the write region's leader in failsafe
    /// mode: confirm that `region` is the write region in `epoch`, and
    /// promise not to take over writes for one lease TTL.
    FailsafeConfirm { region: RegionId, epoch: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeReply {
    Done,
    /// Not the leader this request needs; try `leader`.
    NotLeader {
        leader: Option<NodeId>,
    },
    Renewed {
        state: RegionState,
        fenced: bool,
    },
    /// Fenced: every write that will ever apply here has applied.
    Fenced {
        applied: Glsn,
    },
    Written {
        glsn: Glsn,
        etag: Option<crate::item::Etag>,
    },
    /// An acknowledgement recorded; the write region's head, confirmed by
    /// a read index after it arrived.
    Acked {
        head: Glsn,
    },
    Report(Box<RegionReport>),
}

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
            } => {
                let kv = self.kv()?;
                if !self.geo.is_write_leader() {
                    return Ok(NodeReply::NotLeader {
                        leader: kv.replica().leader(),
                    });
                }
                let WriteReceipt { glsn, etag } =
                    kv.write_at_leader(write, consistency, session).await?;
                Ok(NodeReply::Written { glsn, etag })
            }
            NodeRequest::RecordConflicts { records } => {
                let kv = self.kv()?;
                if !self.geo.is_write_leader() {
                    return Ok(NodeReply::NotLeader {
                        leader: kv.replica().leader(),
                    });
                }
                kv.record_conflicts_at_leader(records).await?;
                Ok(NodeReply::Done)
            }
            NodeRequest::DeleteConflict { id } => {
                let kv = self.kv()?;
                if !self.geo.is_write_leader() {
                    return Ok(NodeReply::NotLeader {
                        leader: kv.replica().leader(),
                    });
                }
                let glsn = kv.delete_conflict_at_leader(id).await?;
                Ok(NodeReply::Written { glsn, etag: None })
            }
            NodeRequest::StrongHeld { glsn } => {
                if !self.geo.is_write_leader() {
                    return Ok(NodeReply::NotLeader {
                        leader: self.kv()?.replica().leader(),
                    });
                }
                self.geo.confirm_strong_held(glsn).await?;
                Ok(NodeReply::Done)
            }
            NodeRequest::FailsafeConfirm { region, epoch } => {
                self.geo.handle_failsafe_confirm(&region, epoch).await
            }
            NodeRequest::RegionReport => {
                let kv = self.kv()?;
                if !kv.replica().is_leader() {
                    return Ok(NodeReply::NotLeader {
                        leader: kv.replica().leader(),
                    });
                }
                let report = self
                    .geo
                    .report()
                    .ok_or_else(|| Error::Internal("no region".into()))?;
                Ok(NodeReply::Report(Box::new(report)))
            }
        }
    }

    fn kv(&self) -> Result<&Kv, Error> {
        self.kv
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("a witness holds no region".into()))
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
