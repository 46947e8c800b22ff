//! The `Geo` handle: what the node is and talks to, the runtime's mutable
//! state grouped by the concept that owns it, and the state queries and
//! waits every concept uses.
//!
//! Ownership (STYLE.md rule 10): each group below is written only by the
//! file named on it; other files and the call handlers only read it, or go
//! through that file's methods. The std locks guard short sections with no
//! `.await` inside; the tokio locks are the ones held across awaits, on
//! purpose, and say why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Instant;
use crate::config::{AccountConfig, GeoConfig};
use crate::geo::acks::AckTable;
use crate::geo::failover::takes_over;
use crate::geo::failsafe::Promises;
use crate::geo::freshness::Freshness;
use crate::geo::lease_counts::LeaseCounts;
use crate::geo::staleness::StalenessBounds;
use crate::glsn::Glsn;
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId};
use crate::lease::{HeldLease, LeaseTerms};
use crate::meta::MetaState;
use crate::raft::meta_replica::MetaReplica;
use crate::raft::network::Peers;
use crate::raft::replica::Replica;

/// How often the background loops look again when nothing wakes them.
pub(super) const TICK: Duration = Duration::from_millis(100);

pub struct GeoOptions {
    pub account: Arc<AccountConfig>,
    pub geo: GeoConfig,
    pub replica: Option<Replica>,
    pub meta: MetaReplica,
    /// Peers of the whole account.
    pub peers: Peers,
    pub request_timeout: Duration,
    /// This node's clock: its wall-clock readings (lag ages, transition
    /// ages, history times) come from it.
    pub clock: Arc<Hlc>,
}

#[derive(Clone)]
pub struct Geo {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) me: NodeId,
    pub(super) account: Arc<AccountConfig>,
    pub(super) geo: GeoConfig,
    pub(super) terms: LeaseTerms,
    /// `None` on a witness.
    pub(super) replica: Option<Replica>,
    pub(super) meta: MetaReplica,
    pub(super) peers: Peers,
    pub(super) request_timeout: Duration,
    pub(super) clock: Arc<Hlc>,
    /// Owned by `peers`: the last known leader of each region. A std lock,
    /// never held across an `.await`.
    pub(super) hints: Mutex<HashMap<RegionId, NodeId>>,
    /// Owned by `supervision` (meta leader only): when each region's lease
    /// ends. A std lock, never held across an `.await`.
    pub(super) lease_counts: Mutex<LeaseCounts>,
    pub(super) holder: Holder,
    pub(super) strong: Strong,
    pub(super) gates: Gates,
    /// Owned by `failsafe`: the promises this node gave, and since when
    /// it leads. A std lock, never held across an `.await`.
    pub(super) promises: Mutex<Promises>,
}

/// Owned by `lease_holder` (a failsafe lease is granted through
/// `failsafe`, which extends `held` only if that does not shorten it).
pub(super) struct Holder {
    /// The lease this node holds as its region's leader.
    pub(super) held: watch::Sender<Option<HeldLease>>,
    /// Read region leader: its proof of freshness. A std lock, never held
    /// across an `.await`; it also orders the publishing of the read
    /// lease.
    pub(super) freshness: Mutex<Freshness>,
}

/// Owned by `strong_set` (the write region leader).
pub(super) struct Strong {
    /// The acknowledgements of the read regions.
    pub(super) acks: AckTable,
    /// The highest GLSN known to be held by every region a strong read
    /// may be served by.
    pub(super) strong_held: watch::Sender<Glsn>,
}

/// Owned by `follower` and `failover`, which take turns proposing into the
/// replica set across regions.
pub(super) struct Gates {
    /// Held while proposing shipped entries, and by a region taking over
    /// writes for its whole catch-up, so nothing is shipped past its fork.
    pub(super) ship_lock: tokio::sync::Mutex<()>,
    /// Writes hold it shared from their fencing check to their commit; a
    /// fence takes it exclusively, so it returns after every write that
    /// passed the check has applied.
    pub(super) write_gate: tokio::sync::RwLock<()>,
}

impl Geo {
    pub fn new(opts: GeoOptions) -> Geo {
        Geo {
            inner: Arc::new(Inner {
                me: opts.meta.id(),
                terms: LeaseTerms::from_config(&opts.account.leases),
                account: opts.account,
                geo: opts.geo,
                replica: opts.replica,
                meta: opts.meta,
                peers: opts.peers,
                request_timeout: opts.request_timeout,
                clock: opts.clock,
                hints: Mutex::new(HashMap::new()),
                lease_counts: Mutex::new(LeaseCounts::default()),
                holder: Holder {
                    held: watch::channel(None).0,
                    freshness: Mutex::new(Freshness::default()),
                },
                strong: Strong {
                    acks: AckTable::default(),
                    strong_held: watch::channel(Glsn::ZERO).0,
                },
                gates: Gates {
                    ship_lock: tokio::sync::Mutex::new(()),
                    write_gate: tokio::sync::RwLock::new(()),
                },
                promises: Mutex::new(Promises::default()),
            }),
        }
    }

    pub fn meta(&self) -> &MetaReplica {
        &self.inner.meta
    }

    pub fn account(&self) -> &AccountConfig {
        &self.inner.account
    }

    pub fn acks(&self) -> &AckTable {
        &self.inner.strong.acks
    }

    pub fn geo_config(&self) -> &GeoConfig {
        &self.inner.geo
    }

    /// Bounded staleness's K and T for this account.
    pub(super) fn bounds(&self) -> StalenessBounds {
        StalenessBounds::of(&self.inner.account)
    }

    /// The meta state as this node has it.
    pub fn meta_state(&self) -> MetaState {
        self.inner.meta.state()
    }

    pub(super) fn replica(&self) -> Option<&Replica> {
        self.inner.replica.as_ref()
    }

    pub(super) fn is_region_leader(&self) -> bool {
        self.replica().is_some_and(Replica::is_leader)
    }

    /// This node leads the write region.
    pub fn is_write_leader(&self) -> bool {
        let Some(replica) = self.replica() else {
            return false;
        };
        self.meta_state().is_write_region(replica.region()) && self.is_region_leader()
    }

    /// The region named to take over writes is this node's, and it leads it.
    pub(super) fn takes_over(&self, meta: &MetaState) -> bool {
        let Some(replica) = self.replica() else {
            return false;
        };
        takes_over(meta, replica.region(), self.is_region_leader())
    }

    /// The lease this node holds as its region's leader, if still valid.
    pub fn held_lease(&self) -> Option<HeldLease> {
        let held = (*self.inner.holder.held.borrow())?;
        (held.usable_at(Instant::now()) && self.is_region_leader()).then_some(held)
    }

    /// The write region, once the meta group has formed the account
    /// (waiting for at most `timeout`).
    pub async fn wait_for_write_region(&self, timeout: Duration) -> Option<RegionId> {
        self.wait_for_write_epoch(timeout)
            .await
            .map(|(region, _)| region)
    }

    /// [`Self::wait_for_write_region`] with the epoch of the meta state
    /// that names it, read together.
    pub async fn wait_for_write_epoch(&self, timeout: Duration) -> Option<(RegionId, u64)> {
        let mut watch = self.inner.meta.watch();
        let formed = tokio::time::timeout(timeout, watch.wait_for(|m| m.write_region.is_some()))
            .await
            .ok()?
            .ok()?;
        Some((formed.write_region.clone()?, formed.epoch))
    }

    /// This node's meta state once it knows `epoch` (and so every fork up
    /// to it), or `None` after `timeout`.
    pub async fn wait_for_epoch(&self, epoch: u64, timeout: Duration) -> Option<MetaState> {
        let mut watch = self.inner.meta.watch();
        let known = tokio::time::timeout(timeout, watch.wait_for(|m| m.epoch >= epoch))
            .await
            .ok()?
            .ok()?;
        Some(known.clone())
    }

    /// Resolves when the meta state names a write region other than
    /// `region`, with that region.
    pub async fn write_region_moved(&self, region: &RegionId) -> RegionId {
        let mut watch = self.inner.meta.watch();
        loop {
            let moved_to = watch
                .borrow_and_update()
                .write_region
                .clone()
                .filter(|w| w != region);
            if let Some(moved_to) = moved_to {
                return moved_to;
            }
            if watch.changed().await.is_err() {
                // The meta replica stopped with the node.
                std::future::pending::<()>().await;
            }
        }
    }
}
