//! The one place the client turns `pb` answers into its domain views:
//! those of the `Kv`, `Admin`, `Conflicts` and `Faults` services. Missing
//! sub-messages become defaults, and an enum value this client does not
//! know becomes `None`, never an error: the request itself succeeded.

use crate::client::account::{Account, AccountNode, AccountRegion};
use crate::client::conflicts::{ConflictEntry, FeedMessage};
use crate::client::containers::Container;
use crate::client::failover::{CancelledSwitchover, EpochChange, Switchover};
use crate::client::results::{Item, Read, ScanPage, Written};
use crate::client::status::{AccountStatus, NodeStatus, RegionStatus};
use crate::conflict::ConflictKind;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::wire::convert::consistency_from_wire;
use crate::wire::pb::v1 as pb;

fn glsn(g: Option<pb::Glsn>) -> Option<Glsn> {
    g.map(Glsn::from)
}

/// The serving node as `west/n2`; `None` when the server did not say.
fn served_by(s: Option<&pb::ServedBy>) -> Option<ReplicaId> {
    s.map(|s| ReplicaId {
        region: RegionId::new(s.region.clone()),
        node: NodeId(s.node_id),
    })
}

impl From<pb::StatusResponse> for AccountStatus {
    fn from(r: pb::StatusResponse) -> Self {
        let mut status = AccountStatus {
            account: r.account,
            write_region: RegionId::new(r.write_region),
            epoch: r.epoch,
            failover_enabled: r.failover_enabled,
            paused: r.paused,
            transition: r.transition,
            scheduled: r.scheduled,
            failover_blocked: r.failover_blocked,
            regions: r.regions.into_iter().map(RegionStatus::from).collect(),
            nodes: r.nodes.into_iter().map(NodeStatus::from).collect(),
            warnings: r.warnings,
        };
        status.sort();
        status
    }
}

impl From<pb::RegionStatus> for RegionStatus {
    fn from(g: pb::RegionStatus) -> Self {
        RegionStatus {
            name: RegionId::new(g.name),
            priority: g.priority,
            role: g.role,
            state: g.state,
            lease_remaining_ms: g.lease_remaining_ms,
            lease_failsafe: g.lease_failsafe,
            applied_glsn: glsn(g.applied_glsn),
            lag_ops: g.lag_ops,
            lag_ms: g.lag_ms,
            leader_id: g.leader_id.map(NodeId),
        }
    }
}

impl From<pb::NodeStatus> for NodeStatus {
    fn from(n: pb::NodeStatus) -> Self {
        NodeStatus {
            region: RegionId::new(n.region),
            node_id: NodeId(n.node_id),
            role: n.role,
            state: n.state,
            term: n.term,
            last_log_index: n.last_log_index,
            applied_index: n.applied_index,
            applied_glsn: glsn(n.applied_glsn),
            lag_entries: n.lag_entries,
            client_addr: n.client_addr,
            peer_addr: n.peer_addr,
            leader_id: n.leader_id.map(NodeId),
            resyncing: n.resyncing,
            items_digest: n.items_digest,
        }
    }
}

impl From<pb::AccountResponse> for Account {
    fn from(r: pb::AccountResponse) -> Self {
        let mut account = Account {
            account: r.account,
            write_mode: r.write_mode,
            default_consistency: consistency_from_wire(r.default_consistency).ok().flatten(),
            max_staleness_ops: r.max_staleness_ops,
            max_staleness_ms: r.max_staleness_ms,
            lease_ttl_ms: r.lease_ttl_ms,
            lease_renew_ms: r.lease_renew_ms,
            write_region: RegionId::new(r.write_region),
            epoch: r.epoch,
            regions: r
                .regions
                .into_iter()
                .map(|g| AccountRegion {
                    name: RegionId::new(g.name),
                    priority: g.priority,
                    nodes: g.nodes.into_iter().map(AccountNode::from).collect(),
                })
                .collect(),
            witnesses: r.witnesses.into_iter().map(AccountNode::from).collect(),
        };
        account.sort();
        account
    }
}

impl From<pb::AccountNode> for AccountNode {
    fn from(n: pb::AccountNode) -> Self {
        AccountNode {
            node_id: NodeId(n.node_id),
            client_addr: n.client_addr,
            meta_voter: n.meta_voter,
        }
    }
}

impl From<pb::FailoverResponse> for Switchover {
    fn from(r: pb::FailoverResponse) -> Self {
        Switchover {
            scheduled: r.scheduled,
            epoch: r.epoch,
            fork: glsn(r.fork),
            write_region: RegionId::new(r.write_region),
        }
    }
}

impl From<pb::FailoverResponse> for CancelledSwitchover {
    fn from(r: pb::FailoverResponse) -> Self {
        CancelledSwitchover {
            to: RegionId::new(r.cancelled_to),
            at_ms: r.cancelled_at_ms,
            write_region: RegionId::new(r.write_region),
        }
    }
}

impl From<pb::EpochChange> for EpochChange {
    fn from(c: pb::EpochChange) -> Self {
        EpochChange {
            epoch: c.epoch,
            fork: glsn(c.fork),
            reason: c.reason,
            from_region: RegionId::new(c.from_region),
            to_region: RegionId::new(c.to_region),
            at_ms: c.at_ms,
        }
    }
}

impl From<pb::Container> for Container {
    fn from(c: pb::Container) -> Self {
        Container {
            name: c.name,
            policy: c.policy,
            feed_for_lww: c.feed_for_lww,
        }
    }
}

impl From<pb::ConflictEntry> for ConflictEntry {
    fn from(e: pb::ConflictEntry) -> Self {
        let kind = match pb::ConflictKind::try_from(e.kind) {
            Ok(pb::ConflictKind::UnreplicatedWrite) => Some(ConflictKind::UnreplicatedWrite),
            _ => None,
        };
        ConflictEntry {
            id: e.id,
            kind,
            container: e.container,
            key: e.key,
            value: e.value,
            lost_glsn: glsn(e.lost_glsn),
            lost_in_epoch: e.lost_in_epoch,
            region: RegionId::new(e.region),
            recorded_glsn: glsn(e.recorded_glsn),
        }
    }
}

impl From<pb::ReadFeedResponse> for FeedMessage {
    fn from(m: pb::ReadFeedResponse) -> Self {
        FeedMessage {
            served_by: served_by(m.served_by.as_ref()),
            entry: m.entry.unwrap_or_default().into(),
            continuation: m.continuation,
        }
    }
}

impl From<pb::WriteResponse> for Written {
    fn from(r: pb::WriteResponse) -> Self {
        Written {
            etag: r.etag,
            glsn: glsn(r.glsn),
            session_token: r.session_token,
            served_by: served_by(r.served_by.as_ref()),
        }
    }
}

impl From<pb::Item> for Item {
    fn from(i: pb::Item) -> Self {
        Item {
            container: i.container,
            key: i.key,
            value: i.value,
            etag: i.etag,
            glsn: glsn(i.glsn),
            ts: i.ts,
            origin_region: RegionId::new(i.origin_region),
        }
    }
}

impl From<pb::GetResponse> for Read {
    fn from(r: pb::GetResponse) -> Self {
        Read {
            item: r.item.map(Item::from),
            read_glsn: glsn(r.read_glsn),
            session_token: r.session_token,
            served_by: served_by(r.served_by.as_ref()),
        }
    }
}

impl From<pb::ScanResponse> for ScanPage {
    fn from(r: pb::ScanResponse) -> Self {
        ScanPage {
            items: r.items.into_iter().map(Item::from).collect(),
            continuation: r.continuation,
            read_glsn: glsn(r.read_glsn),
            session_token: r.session_token,
            served_by: served_by(r.served_by.as_ref()),
        }
    }
}
