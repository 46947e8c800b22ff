//! The node-level messages between nodes (the `Call` RPC of the replica
//! transport): what one node asks another (`NodeRequest`) and what it
//! answers (`NodeReply`). Both the runtime that sends them
//! (`node::regions`, `node::kv`) and the dispatch that answers them
//! (`node::calls`) import them from here.

use serde::{Deserialize, Serialize};

use crate::command::WriteCommand;
use crate::conflict::ConflictRecord;
use crate::consistency::Consistency;
use crate::geo::acks::Lag;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::{NodeId, RegionId};
use crate::meta::RegionState;

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

/// A region as one node reports it, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionReport {
    pub region: RegionId,
    pub leader: Option<NodeId>,
    pub applied: Glsn,
    pub lease_remaining_ms: Option<u64>,
    /// The lease is a failsafe lease: the meta group did not renew it.
    pub failsafe: bool,
    /// Filled by the write region leader: every read region's lag.
    pub lags: Vec<(RegionId, Lag)>,
}
