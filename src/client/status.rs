//! The account's status as `Admin.Status` reports it, in domain types:
//! what `meridian status` prints and what the bench and the verify
//! harness read lag and convergence from. Regions come in failover
//! priority order, nodes by region then id, whatever order the node that
//! answered used. `Serialize` gives `meridian status --json`: GLSNs print
//! as `e3:1000`, ids as their numbers.

use serde::{Serialize, Serializer};

use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};

/// The whole account as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub account: String,
    /// Empty when the node does not know it (one region, no meta group).
    pub write_region: RegionId,
    pub epoch: u64,
    pub failover_enabled: bool,
    pub paused: bool,
    /// A change of write region under way, e.g. `switchover west -> east`.
    pub transition: Option<String>,
    /// A scheduled switchover, e.g. `east at 2026-11-22T10:00:00Z`.
    pub scheduled: Option<String>,
    /// Why the last failover found no region to take over.
    pub failover_blocked: Option<String>,
    /// First choice first.
    pub regions: Vec<RegionStatus>,
    /// By region, then node id.
    pub nodes: Vec<NodeStatus>,
    pub warnings: Vec<String>,
}

/// One region; absent figures are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionStatus {
    pub name: RegionId,
    pub priority: u32,
    /// `write` or `read`.
    pub role: String,
    /// `online`, `joining`, `offline`, ...
    pub state: String,
    pub lease_remaining_ms: Option<u64>,
    /// The lease comes from failsafe mode, not the meta group.
    pub lease_failsafe: bool,
    #[serde(serialize_with = "glsn_as_text")]
    pub applied_glsn: Option<Glsn>,
    pub lag_ops: Option<u64>,
    pub lag_ms: Option<u64>,
    pub leader_id: Option<NodeId>,
}

/// One node of a region's replica set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub region: RegionId,
    pub node_id: NodeId,
    /// `leader`, `follower`, `learner`, ...
    pub role: String,
    /// `running` (see [`NODE_STATE_RUNNING`]), `unreachable`, ...
    pub state: String,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    #[serde(serialize_with = "glsn_as_text")]
    pub applied_glsn: Option<Glsn>,
    pub lag_entries: Option<u64>,
    pub client_addr: String,
    pub peer_addr: String,
    pub leader_id: Option<NodeId>,
    /// Re-syncing from another region's state image: it serves no reads.
    pub resyncing: bool,
    /// Only when asked for digests.
    pub items_digest: Option<String>,
}

/// The node state of a node that can serve requests.
pub const NODE_STATE_RUNNING: &str = "running";
/// The region role of the region that accepts writes.
pub const REGION_ROLE_WRITE: &str = "write";

impl AccountStatus {
    /// Puts regions in priority order and nodes by region and id: the
    /// order an operator reads them in.
    pub(crate) fn sort(&mut self) {
        self.regions
            .sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        self.nodes
            .sort_by(|a, b| (&a.region, a.node_id).cmp(&(&b.region, b.node_id)));
    }
}

/// A GLSN as its text, `e3:1000`, or `null`: how the JSON output has
/// always shown one.
pub(crate) fn glsn_as_text<S: Serializer>(glsn: &Option<Glsn>, s: S) -> Result<S::Ok, S::Error> {
    match glsn {
        Some(g) => s.serialize_some(&g.to_string()),
        None => s.serialize_none(),
    }
}
