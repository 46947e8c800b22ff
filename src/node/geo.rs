//! A node's part in the account across regions: leases, the strong set,
//! geo shipping, forwarding to another region's leader, and region reports
//! for status. `Geo` is shared by the request logic (`kv`), the node-level
//! RPC handler (`calls`) and the background tasks started here:
//!
//! - every region leader renews its region's lease through the meta group
//!   (`renew_leases`); the lease gates its writes (write region) and its
//!   strong and bounded reads (online regions only), and in a read region
//!   so does its freshness (`geo::freshness`): no such read more than T
//!   after the region last proved it held every acknowledged write;
//! - the meta leader takes a region out of the strong set once the lease it
//!   counts has expired (`supervise_leases`);
//! - the write region leader marks a joining region online once it has
//!   acknowledged everything strong writes did not wait for, and trims the
//!   geo log to what every online region has (`keep_strong_set`);
//! - every read region leader streams the geo log from the write region
//!   into its replica set (`receive`) and acknowledges what it applied
//!   (`acknowledge`); the answer names the write region's head, which is
//!   what proves the region's freshness. A region that went past a fork
//!   re-joins first (`failover`);
//! - the meta leader starts failovers and scheduled switchovers, and the
//!   region taking over completes them (`failover`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::codec::{decode, encode};
use crate::command::Command;
use crate::config::{AccountConfig, GeoConfig};
use crate::crash::{CrashPoint, crash_point};
use crate::error::Error;
use crate::geo::acks::{AckTable, Lag, lag};
use crate::geo::entry::GeoEntry;
use crate::geo::freshness::Freshness;
use crate::geo::ship::{ResyncMessage, SHIP_BATCH_ENTRIES_MAX, ShipMessage, StreamRequest};
use crate::glsn::Glsn;
use crate::hlc::{self, Hlc};
use crate::ids::{NodeId, RegionId};
pub use crate::lease::HeldLease;
use crate::lease::LeaseTerms;
use crate::meta::{MetaCommand, MetaReply, MetaState, RegionState};
use crate::node::calls::{NodeReply, NodeRequest};
use crate::raft::meta_replica::MetaReplica;
use crate::raft::network::{PeerError, Peers, Rpc};
use crate::raft::replica::{Replica, ReplicaError};
use crate::shutdown::Shutdown;

mod failover;
mod failsafe;

/// How often the background loops look again when nothing wakes them.
const TICK: Duration = Duration::from_millis(100);
/// How often a read region leader reports what it applied when idle.
const ACK_EVERY: Duration = Duration::from_millis(200);
/// The write leader proposes a geo log trim once this many entries can go.
const TRIM_AFTER_ENTRIES: u64 = 10_000;

fn decode_ship(message: &[u8]) -> Result<ShipMessage, String> {
    decode::<ShipMessage>("ship message", message).map_err(|e| e.to_string())
}

fn decode_entries(raw: &[serde_bytes::ByteBuf]) -> Result<Vec<GeoEntry>, String> {
    raw.iter()
        .map(|b| decode::<GeoEntry>("geo entry", b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Spawns `task` in the current tracing span (the node's).
fn spawn_here<F>(task: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(task))
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
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeId,
    account: Arc<AccountConfig>,
    geo: GeoConfig,
    terms: LeaseTerms,
    replica: Option<Replica>,
    meta: MetaReplica,
    peers: Peers,
    request_timeout: Duration,
    clock: Arc<Hlc>,
    acks: AckTable,
    held: watch::Sender<Option<HeldLease>>,
    /// The last known leader of each region. A std lock, never held
    /// across an `.await`.
    hints: Mutex<HashMap<RegionId, NodeId>>,
    /// Meta leader only: when each region's lease ends, counted from the
    /// commit of its last renewal.
    expiries: Mutex<HashMap<RegionId, Instant>>,
    /// Held while proposing shipped entries, and by a region taking over
    /// writes for its whole catch-up, so nothing is shipped past its fork.
    ship_lock: tokio::sync::Mutex<()>,
    /// Writes hold it shared from their fencing check to their commit; a
    /// fence takes it exclusively, so it returns after every write that
    /// passed the check has applied.
    write_gate: tokio::sync::RwLock<()>,
    /// Failsafe promises this node gave, and since when it leads.
    promises: failsafe::PromiseLock,
    /// Read region leader: its proof of freshness. A std lock, never held
    /// across an `.await`; it also orders the publishing of the read lease.
    freshness: Mutex<Freshness>,
    /// The highest GLSN known to be held by every region a strong read may
    /// be served by.
    strong_held: watch::Sender<Glsn>,
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
                acks: AckTable::default(),
                held: watch::channel(None).0,
                hints: Mutex::new(HashMap::new()),
                expiries: Mutex::new(HashMap::new()),
                ship_lock: tokio::sync::Mutex::new(()),
                write_gate: tokio::sync::RwLock::new(()),
                promises: Mutex::new(crate::geo::failsafe::Promises::default()),
                freshness: Mutex::new(Freshness::default()),
                strong_held: watch::channel(Glsn::ZERO).0,
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
        &self.inner.acks
    }

    pub fn geo_config(&self) -> &GeoConfig {
        &self.inner.geo
    }

    /// The meta state as this node has it.
    pub fn meta_state(&self) -> MetaState {
        self.inner.meta.state()
    }

    fn replica(&self) -> Option<&Replica> {
        self.inner.replica.as_ref()
    }

    fn is_region_leader(&self) -> bool {
        self.replica().is_some_and(Replica::is_leader)
    }

    /// This node leads the write region.
    pub fn is_write_leader(&self) -> bool {
        let Some(replica) = self.replica() else {
            return false;
        };
        self.meta_state().is_write_region(replica.region()) && self.is_region_leader()
    }

    /// The lease this node holds as its region's leader, if still valid.
    pub fn held_lease(&self) -> Option<HeldLease> {
        let held = (*self.inner.held.borrow())?;
        (held.valid_until > Instant::now() && self.is_region_leader()).then_some(held)
    }

    /// Waits until this node holds a valid lease, for at most `timeout`
    /// or one lease TTL, whichever is shorter: a leader that gets no
    /// lease within a TTL cannot reach the meta group, and its caller
    /// should hear that rather than its own transport timeout.
    pub async fn wait_for_lease(&self, timeout: Duration) -> Option<HeldLease> {
        let deadline = tokio::time::Instant::now() + timeout.min(self.inner.terms.ttl);
        let mut rx = self.inner.held.subscribe();
        loop {
            if let Some(held) = self.held_lease() {
                return Some(held);
            }
            let wake = tokio::time::Instant::now() + TICK;
            let _ = tokio::time::timeout_at(wake.min(deadline), rx.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return self.held_lease();
            }
        }
    }

    /// The write region, once the meta group has formed the account
    /// (waiting for at most `timeout`).
    pub async fn wait_for_write_region(&self, timeout: Duration) -> Option<RegionId> {
        let mut watch = self.inner.meta.watch();
        let formed = tokio::time::timeout(timeout, watch.wait_for(|m| m.write_region.is_some()))
            .await
            .ok()?
            .ok()?;
        formed.write_region.clone()
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

    /// Starts the background tasks; they stop with `shutdown`, and the
    /// node waits for them before it stops raft.
    pub fn spawn_tasks(&self, shutdown: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![spawn_here(self.clone().supervise_leases(shutdown.clone()))];
        if self.replica().is_some() {
            tasks.push(spawn_here(self.clone().renew_leases(shutdown.clone())));
            tasks.push(spawn_here(self.clone().keep_strong_set(shutdown.clone())));
            tasks.push(spawn_here(self.clone().receive(shutdown.clone())));
            tasks.push(spawn_here(self.clone().acknowledge(shutdown.clone())));
            tasks.push(spawn_here(self.clone().take_over(shutdown.clone())));
            if self.failsafe_enabled() {
                tasks.push(spawn_here(self.clone().keep_failsafe(shutdown.clone())));
            }
        }
        tasks
    }

    // ---- calls to other nodes ------------------------------------------

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

    fn region_of(&self, node: NodeId) -> RegionId {
        self.inner
            .account
            .region_of(node)
            .map_or_else(|| RegionId::new("witness"), |r| r.name.clone())
    }

    /// Sends `request` to the leader of `region`, trying the last known
    /// leader first, then every node, following `NotLeader` hints, until
    /// `timeout`. Only for requests that are safe to repeat or that fail
    /// before doing anything when they reach a non-leader.
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
        let deadline = tokio::time::Instant::now() + timeout;
        let hint = self.hint(region);
        let mut order: Vec<NodeId> = hint.into_iter().chain(nodes.iter().copied()).collect();
        let mut last = Error::Unavailable {
            region: region.clone(),
            reason: "no leader found".into(),
        };
        let mut i = 0;
        while tokio::time::Instant::now() < deadline {
            if matches!(request, NodeRequest::Write { .. }) {
                let meta = self.meta_state();
                if !meta.is_write_region(region)
                    && let Some(moved_to) = meta.write_region
                {
                    return Err(Error::NotWriteRegion {
                        region: region.clone(),
                        write_region: moved_to,
                    });
                }
            }
            let Some(&node) = order.get(i) else {
                // A full round without a leader: an election, most likely.
                tokio::time::sleep(TICK).await;
                order = self
                    .hint(region)
                    .into_iter()
                    .chain(nodes.iter().copied())
                    .collect();
                i = 0;
                continue;
            };
            i += 1;
            match self.call(node, request).await {
                Ok(NodeReply::NotLeader { leader }) => {
                    if let Some(l) = leader {
                        order.insert(i, l);
                    }
                }
                Ok(reply) => {
                    self.set_hint(region, node);
                    return Ok(reply);
                }
                Err(e @ Error::Unavailable { .. }) => last = e,
                Err(e) => {
                    self.set_hint(region, node);
                    return Err(e);
                }
            }
        }
        Err(last)
    }

    fn hint(&self, region: &RegionId) -> Option<NodeId> {
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

    // ---- handlers (called from `node::calls`) ---------------------------

    /// At the meta leader: commits a renewal and starts counting its lease.
    pub async fn handle_renewal(
        &self,
        region: RegionId,
        node: NodeId,
        applied: Glsn,
    ) -> Result<NodeReply, Error> {
        if !self.inner.meta.is_leader() {
            return Ok(NodeReply::NotLeader {
                leader: self.inner.meta.leader(),
            });
        }
        let command = MetaCommand::RenewLease {
            region: region.clone(),
            node,
            applied,
        };
        match self.inner.meta.propose_local(command).await {
            Ok(MetaReply::Renewed { state, fenced }) => {
                let expires = self.inner.terms.meta_expires_at(Instant::now());
                self.inner
                    .expiries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(region, expires);
                Ok(NodeReply::Renewed { state, fenced })
            }
            Ok(MetaReply::Refused(why)) => Err(Error::InvalidArgument(why)),
            Ok(other) => Err(Error::Internal(format!("unexpected meta reply {other:?}"))),
            Err(ReplicaError::NotLeader { leader, .. }) => Ok(NodeReply::NotLeader { leader }),
            Err(e) => Err(Error::Unavailable {
                region: RegionId::new("meta"),
                reason: e.to_string(),
            }),
        }
    }

    /// At the write region leader: a read region reports what it applied.
    /// The answer names this region's head, from which the read region
    /// proves its freshness; `Done` when the head cannot be confirmed.
    pub async fn handle_ack(&self, region: &RegionId, glsn: Glsn) -> NodeReply {
        if !self.is_write_leader() {
            return NodeReply::NotLeader {
                leader: self.replica().and_then(Replica::leader),
            };
        }
        self.inner.acks.record(region, glsn);
        match self.confirmed_head().await {
            Some(head) => NodeReply::Acked { head },
            None => NodeReply::Done,
        }
    }

    /// The GLSN this leader has applied after a read index: every write
    /// acknowledged to a client before the call is at or below it, even
    /// one a newer leader acknowledged if this one was deposed.
    async fn confirmed_head(&self) -> Option<Glsn> {
        let replica = self.replica()?;
        let index = replica.read_index().await.ok()?;
        replica
            .wait_applied(self.inner.request_timeout, |a| a.index >= index)
            .await
            .map(|a| a.glsn)
    }

    /// This node's report of its region (meaningful at the region leader).
    pub fn report(&self) -> Option<RegionReport> {
        let replica = self.replica()?;
        let lags = if self.is_write_leader() {
            let meta = self.meta_state();
            meta.regions
                .keys()
                .filter(|r| !meta.is_write_region(r))
                .map(|r| (r.clone(), self.lag_of(r)))
                .collect()
        } else {
            Vec::new()
        };
        Some(RegionReport {
            region: replica.region().clone(),
            leader: replica.leader(),
            applied: replica.applied().glsn,
            lease_remaining_ms: self.held_lease().map(|h| {
                h.valid_until
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64
            }),
            failsafe: self.held_lease().is_some_and(|h| h.failsafe),
            lags,
        })
    }

    /// A read region's lag behind this (write leader) node's applied state.
    pub fn lag_of(&self, region: &RegionId) -> Lag {
        let Some(replica) = self.replica() else {
            return Lag::default();
        };
        let head = replica.applied().glsn;
        // What the region reported with its last lease renewal is a lower
        // bound too: a new write leader has no acknowledgements yet.
        let renewed = self
            .meta_state()
            .regions
            .get(region)
            .map_or(Glsn::ZERO, |m| m.applied);
        let acked = self
            .inner
            .acks
            .get(region)
            .map_or(Glsn::ZERO, |a| a.glsn)
            .max(renewed);
        let oldest_missing_ms = replica
            .state()
            .geo_read(acked.lsn + 1, 1, 1)
            .ok()
            .and_then(|page| page.into_iter().next())
            .filter(|(lsn, _)| *lsn == acked.lsn + 1)
            .and_then(|(_, bytes)| decode::<GeoEntry>("geo entry", &bytes).ok())
            .map(|e| hlc::physical_ms(e.ts));
        let now_ms = self.inner.clock.wall_ms();
        lag(head, acked, oldest_missing_ms, now_ms)
    }

    // ---- the write path's checks ----------------------------------------

    /// Bounded staleness: refuses a write while an online region lags more
    /// than K operations or T ms.
    pub fn check_staleness(&self) -> Result<(), Error> {
        let meta = self.meta_state();
        let account = &self.inner.account;
        for (region, m) in &meta.regions {
            if meta.is_write_region(region) || m.state != RegionState::Online {
                continue;
            }
            let lag = self.lag_of(region);
            if !self.within_bounds(lag) {
                return Err(Error::Throttled {
                    region: region.clone(),
                    lag_ops: lag.ops,
                    lag_ms: lag.ms,
                    max_ops: account.max_staleness_ops,
                    max_ms: account.max_staleness_ms,
                    retry_after_ms: (account.max_staleness_ms / 10).clamp(10, 1000),
                });
            }
        }
        Ok(())
    }

    /// Bounded staleness's T, which a read region's freshness is held to.
    fn staleness_t(&self) -> Duration {
        Duration::from_millis(self.inner.account.max_staleness_ms)
    }

    /// A lag of no more than K operations and T ms.
    fn within_bounds(&self, lag: Lag) -> bool {
        let account = &self.inner.account;
        lag.ops <= account.max_staleness_ops && lag.ms <= account.max_staleness_ms
    }

    /// Strong writes need the strong set to hold a majority of regions.
    pub fn check_strong_set(&self) -> Result<(), Error> {
        let meta = self.meta_state();
        if meta.strong_set_has_majority() {
            return Ok(());
        }
        let online: Vec<&str> = meta
            .regions
            .iter()
            .filter(|(_, m)| m.state == RegionState::Online)
            .map(|(r, _)| r.as_str())
            .collect();
        Err(Error::Unavailable {
            region: meta
                .write_region
                .clone()
                .unwrap_or_else(|| RegionId::new("none")),
            reason: format!(
                "strong writes need a majority of the {} regions online; online: {}",
                meta.regions.len(),
                online.join(", ")
            ),
        })
    }

    /// Waits until every region a strong read may be served by holds
    /// `glsn`, or fails with UNAVAILABLE: at the write region leader
    /// itself, elsewhere by asking it. Remembers the highest GLSN confirmed
    /// so reads of older state do not ask again: once every such region
    /// holds a GLSN it stays so, since a region only becomes one again
    /// after catching up (see `keep_strong_set`).
    pub async fn wait_strong_held(&self, glsn: Glsn, timeout: Duration) -> Result<(), Error> {
        if glsn <= *self.inner.strong_held.borrow() {
            return Ok(());
        }
        if self.is_write_leader() {
            self.confirm_strong_held(glsn).await?;
        } else {
            let Some(write_region) = self.meta_state().write_region else {
                return Err(Error::Unavailable {
                    region: RegionId::new("none"),
                    reason: "the meta group has not formed the account yet".into(),
                });
            };
            let request = NodeRequest::StrongHeld { glsn };
            match self.call_leader(&write_region, &request, timeout).await? {
                NodeReply::Done => self.note_strong_held(glsn),
                other => {
                    return Err(Error::Internal(format!(
                        "unexpected reply to a strong read's wait: {other:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// At the write region leader: `wait_strong` for a read, whose failure
    /// is a refusal (UNAVAILABLE), not a write's unknown outcome.
    pub async fn confirm_strong_held(&self, glsn: Glsn) -> Result<(), Error> {
        let region = self
            .replica()
            .map_or_else(|| RegionId::new("witness"), |r| r.region().clone());
        match self.wait_strong(glsn, self.inner.request_timeout).await {
            Ok(()) => {
                self.note_strong_held(glsn);
                Ok(())
            }
            Err(Error::OutcomeUnknown { reason }) => Err(Error::Unavailable { region, reason }),
            Err(e) => Err(e),
        }
    }

    fn note_strong_held(&self, glsn: Glsn) {
        self.inner.strong_held.send_if_modified(|held| {
            let newer = glsn > *held;
            if newer {
                *held = glsn;
            }
            newer
        });
    }

    /// Waits until every region strong writes wait for has acknowledged
    /// `glsn`. The write has committed in the write region by now, so a
    /// failure here is an unknown outcome, not a refusal.
    pub async fn wait_strong(&self, glsn: Glsn, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut acks = self.inner.acks.changes();
        let mut meta = self.inner.meta.watch();
        loop {
            let state = meta.borrow_and_update().clone();
            let _ = acks.borrow_and_update();
            if !state.strong_set_has_majority() {
                return Err(Error::OutcomeUnknown {
                    reason: format!(
                        "{glsn} committed in the write region, but the strong set lost its majority before every region acknowledged it"
                    ),
                });
            }
            let missing: Vec<RegionId> = state
                .ack_wait_regions()
                .into_iter()
                .filter(|r| self.inner.acks.get(r).is_none_or(|a| a.glsn < glsn))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::OutcomeUnknown {
                        reason: format!(
                            "{glsn} committed in the write region, but {} did not acknowledge it within {timeout:?}",
                            missing.iter().map(RegionId::as_str).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
                _ = acks.changed() => {}
                _ = meta.changed() => {}
            }
        }
    }

    // ---- background tasks -------------------------------------------------

    /// Region leader: renew the region's lease every `renew_every`.
    async fn renew_leases(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes renew").clone();
        let mut tick = tokio::time::interval(self.inner.terms.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tick.tick() => {}
            }
            if !self.is_region_leader() || !self.meta_state().is_formed() {
                self.inner.held.send_replace(None);
                self.publish_read_lease(&replica);
                continue;
            }
            let sent_at = Instant::now();
            let request = NodeRequest::RenewLease {
                region: replica.region().clone(),
                node: self.inner.me,
                applied: replica.applied().glsn,
            };
            // A renewal is worth having until the lease it would grant
            // ends: a slow meta group is waited for that long.
            let useful_for = self
                .inner
                .terms
                .ttl
                .saturating_sub(self.inner.terms.safety_margin);
            let reply = self.call_meta_leader(&request, useful_for).await;
            let Ok(NodeReply::Renewed { state, fenced }) = reply else {
                if let Err(e) = reply {
                    tracing::debug!("lease renewal failed: {e}");
                }
                continue;
            };
            let valid_until = self.inner.terms.holder_valid_until(sent_at);
            self.inner.held.send_replace(Some(HeldLease {
                valid_until,
                state,
                fenced,
                failsafe: false,
            }));
            self.publish_read_lease(&replica);
        }
    }

    /// Sets the read lease the replica checks before a read index: the
    /// region's lease while the region is online, and in a read region no
    /// later than T after it last proved itself fresh. Under the freshness
    /// lock, so whichever task publishes last does so from the latest
    /// lease and the latest freshness.
    fn publish_read_lease(&self, replica: &Replica) {
        let freshness = self
            .inner
            .freshness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let lease = (*self.inner.held.borrow())
            .filter(|h| h.state == RegionState::Online)
            .map(|h| h.valid_until);
        let until = if self.meta_state().is_write_region(replica.region()) {
            lease
        } else {
            lease.min(freshness.valid_until(self.staleness_t()))
        };
        replica.set_read_lease(until);
    }

    /// Folds what this read region has applied, and the answer to an
    /// acknowledgement if there is one, into its freshness; republishes
    /// the read lease.
    fn note_freshness(&self, replica: &Replica, answer: Option<(Instant, Glsn)>) {
        {
            let mut freshness = self
                .inner
                .freshness
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let applied = replica.applied().glsn;
            match answer {
                Some((sent_at, head)) => freshness.answered(sent_at, head, applied),
                None => freshness.applied(applied),
            }
        }
        self.publish_read_lease(replica);
    }

    async fn call_meta_leader(
        &self,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeReply, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut target = self.inner.meta.leader();
        while tokio::time::Instant::now() < deadline {
            let Some(node) = target else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                target = self.inner.meta.leader();
                continue;
            };
            let reply = if node == self.inner.me {
                match request {
                    NodeRequest::RenewLease {
                        region,
                        node,
                        applied,
                    } => self.handle_renewal(region.clone(), *node, *applied).await,
                    _ => Err(Error::Internal("not a meta request".into())),
                }
            } else {
                self.call(node, request).await
            };
            match reply {
                Ok(NodeReply::NotLeader { leader }) => {
                    target = leader
                        .filter(|l| Some(*l) != target)
                        .or_else(|| self.inner.meta.leader().filter(|l| Some(*l) != target));
                    if target.is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        target = self.inner.meta.leader();
                    }
                }
                other => return other,
            }
        }
        Err(Error::Unavailable {
            region: RegionId::new("meta"),
            reason: "no meta leader answered".into(),
        })
    }

    /// Meta leader: take a region out of the strong set once the lease the
    /// meta group counts for it has expired.
    async fn supervise_leases(self, shutdown: Shutdown) {
        let mut was_leader = false;
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            let leading = self.inner.meta.is_leader();
            if !leading {
                was_leader = false;
                continue;
            }
            let meta = self.meta_state();
            let now = Instant::now();
            if !was_leader {
                // A new meta leader cannot know when earlier renewals
                // committed: it counts every lease as renewed just now.
                let mut expiries = self
                    .inner
                    .expiries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                expiries.clear();
                for region in meta.regions.keys() {
                    expiries.insert(region.clone(), self.inner.terms.meta_expires_at(now));
                }
                was_leader = true;
                continue;
            }
            let expired: Vec<(RegionId, RegionState)> = {
                let mut expiries = self
                    .inner
                    .expiries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                // A region this leader has not counted yet (the state was
                // formed after it took over) gets a full lease from now.
                for region in meta.regions.keys() {
                    expiries
                        .entry(region.clone())
                        .or_insert_with(|| self.inner.terms.meta_expires_at(now));
                }
                meta.regions
                    .iter()
                    .filter(|(r, m)| !meta.is_write_region(r) && m.state.in_ack_wait())
                    .filter(|(r, _)| expiries.get(*r).is_some_and(|e| *e <= now))
                    .map(|(r, m)| (r.clone(), m.state))
                    .collect()
            };
            let write_expired = meta.write_region.as_ref().is_some_and(|w| {
                self.inner
                    .expiries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(w)
                    .is_some_and(|e| *e <= now)
            });
            self.drive_failover(&meta, write_expired).await;
            for (region, from) in expired {
                tracing::warn!(%region, "lease expired: taking the region out of the strong set");
                let command = MetaCommand::SetRegionState {
                    region,
                    from,
                    to: RegionState::Offline,
                };
                if let Err(e) = self.inner.meta.propose_local(command).await {
                    tracing::debug!("taking a region out: {e}");
                }
            }
        }
    }

    /// Write region leader: bring joining regions online once caught up,
    /// and trim the geo log to what every online region has.
    async fn keep_strong_set(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        // Per joining region: the GLSN applied when this node first saw it
        // joining. Strong writes acknowledged after that waited for it.
        let mut join_points: HashMap<RegionId, Glsn> = HashMap::new();
        let mut trimmed: u64 = 0;
        let mut was_leader = false;
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            if !self.is_write_leader() {
                if was_leader {
                    self.inner.acks.clear();
                    join_points.clear();
                    was_leader = false;
                }
                continue;
            }
            was_leader = true;
            let meta = self.meta_state();
            join_points.retain(|r, _| meta.region_state(r) == Some(RegionState::Joining));
            for (region, m) in &meta.regions {
                if m.state != RegionState::Joining {
                    continue;
                }
                let point = *join_points
                    .entry(region.clone())
                    .or_insert_with(|| replica.applied().glsn);
                // Online, it serves bounded reads at once: it must also be
                // within K and T, or those reads would trail by every write
                // made while it was joining (throttling counts only online
                // regions).
                let caught_up = self.inner.acks.get(region).is_some_and(|a| a.glsn >= point)
                    && self.within_bounds(self.lag_of(region));
                if caught_up {
                    tracing::info!(%region, "caught up: marking the region online");
                    let command = MetaCommand::SetRegionState {
                        region: region.clone(),
                        from: RegionState::Joining,
                        to: RegionState::Online,
                    };
                    if let Err(e) = self.inner.meta.propose(command, TICK * 10).await {
                        tracing::debug!("marking a region online: {e}");
                    }
                }
            }
            // Trim what every online region has acknowledged.
            let floor = meta
                .regions
                .iter()
                .filter(|(r, m)| !meta.is_write_region(r) && m.state == RegionState::Online)
                .map(|(r, _)| self.inner.acks.get(r).map_or(0, |a| a.glsn.lsn))
                .min()
                .unwrap_or_else(|| replica.applied().glsn.lsn);
            if floor >= trimmed + TRIM_AFTER_ENTRIES {
                let command = Command::TrimGeoLog { upto_lsn: floor };
                if replica.propose(command).await.is_ok() {
                    trimmed = floor;
                }
            }
        }
    }

    /// Read region leader: report the applied GLSN to the write region
    /// leader when it changes, and at least every `ACK_EVERY` (or T / 4
    /// if shorter, so an idle region stays fresh within T); fold each
    /// answer into the region's freshness.
    async fn acknowledge(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let mut applied = replica.applied_watch();
        let every = ACK_EVERY.min(self.staleness_t() / 4);
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = applied.changed() => {}
                _ = tokio::time::sleep(every) => {}
            }
            let meta = self.meta_state();
            let Some(write_region) = meta.write_region.clone() else {
                continue;
            };
            let glsn = applied.borrow_and_update().glsn;
            if &write_region == replica.region()
                || !self.is_region_leader()
                || meta.diverged(glsn).is_some()
            {
                continue;
            }
            self.note_freshness(&replica, None);
            crash_point(CrashPoint::AfterShipBeforeAck);
            let request = NodeRequest::GeoAck {
                region: replica.region().clone(),
                glsn,
            };
            let sent_at = Instant::now();
            match self
                .call_leader(&write_region, &request, ACK_EVERY * 5)
                .await
            {
                Ok(NodeReply::Acked { head }) => {
                    self.note_freshness(&replica, Some((sent_at, head)));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("acknowledging {glsn}: {e}"),
            }
        }
    }

    /// Read region leader: stream the geo log from the write region and
    /// propose it, in order, into this region's replica set.
    async fn receive(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let mut attempt: usize = 0;
        loop {
            if shutdown.is_signalled() {
                return;
            }
            let meta = self.meta_state();
            let write_region = meta.write_region.clone();
            let leading = self.is_region_leader();
            let Some(write_region) = write_region.filter(|w| w != replica.region() && leading)
            else {
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                continue;
            };
            if self.takes_over(&meta) {
                // The catch-up of `take_over` ships instead.
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                continue;
            }
            let source = self.pick_source(&write_region, attempt);
            attempt += 1;
            let result = tokio::select! {
                _ = shutdown.signalled() => return,
                r = async {
                    match meta.diverged(replica.applied().glsn) {
                        Some(fork) => self.rejoin(&replica, &meta, fork, source).await,
                        None => self.ship_from(&replica, &write_region, source).await,
                    }
                } => r,
            };
            if let Err(e) = result {
                tracing::debug!(%source, "shipping from {write_region} stopped: {e}");
                tokio::select! {
                    _ = shutdown.signalled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
    }

    /// The write region node to stream from: its leader when known (it has
    /// the newest entries), else the nodes in turn.
    fn pick_source(&self, write_region: &RegionId, attempt: usize) -> NodeId {
        let nodes: Vec<NodeId> = self
            .inner
            .account
            .region(write_region)
            .map(|r| r.nodes.iter().map(|n| n.id).collect())
            .unwrap_or_default();
        match self.hint(write_region) {
            Some(h) if attempt.is_multiple_of(2) => h,
            _ => nodes[attempt % nodes.len().max(1)],
        }
    }

    async fn ship_from(
        &self,
        replica: &Replica,
        write_region: &RegionId,
        source: NodeId,
    ) -> Result<(), String> {
        let from_lsn = replica.applied().glsn.lsn + 1;
        let request = StreamRequest::Ship {
            region: replica.region().clone(),
            from_lsn,
        };
        let mut stream = self.open_stream(source, &request).await?;
        let idle_limit = crate::geo::ship::HEARTBEAT_EVERY * 8;
        let batch_bytes = self.inner.geo.ship_batch_bytes as usize;
        // A message read while coalescing that is not entries, handled next.
        let mut pending: Option<Result<ShipMessage, String>> = None;
        loop {
            let message = match pending.take() {
                Some(message) => message?,
                None => {
                    let message = tokio::select! {
                        m = tokio::time::timeout(idle_limit, stream.recv()) => m,
                        // A silent stream from a region that lost the writes.
                        _ = self.write_region_moved(write_region) => return Ok(()),
                    };
                    let message = message
                        .map_err(|_| format!("nothing from {source} for {idle_limit:?}"))?
                        .ok_or("stream ended")?
                        .map_err(|e| e.to_string())?;
                    decode_ship(&message)?
                }
            };
            if !self.is_region_leader() || !self.meta_state().is_write_region(write_region) {
                return Ok(());
            }
            match message {
                ShipMessage::Heartbeat { .. } => {}
                ShipMessage::Entries(mut raw) => {
                    // Everything that has already arrived goes in one
                    // proposal: one per message would cap the region at a
                    // message per raft commit, far below what the write
                    // region takes when its writes are shipped a few at a
                    // time.
                    let mut bytes: usize = raw.iter().map(|b| b.len()).sum();
                    while raw.len() < SHIP_BATCH_ENTRIES_MAX && bytes < batch_bytes {
                        let Ok(next) = stream.try_recv() else {
                            break;
                        };
                        let next = next
                            .map_err(|e| e.to_string())
                            .and_then(|m| decode_ship(&m));
                        match next {
                            Ok(ShipMessage::Entries(more)) => {
                                bytes += more.iter().map(|b| b.len()).sum::<usize>();
                                raw.extend(more);
                            }
                            Ok(ShipMessage::Heartbeat { .. }) => {}
                            other => {
                                pending = Some(other);
                                break;
                            }
                        }
                    }
                    let entries = decode_entries(&raw)?;
                    let _shipping = self.inner.ship_lock.lock().await;
                    if self.takes_over(&self.meta_state()) {
                        return Ok(());
                    }
                    replica
                        .propose(Command::Ship(entries))
                        .await
                        .map_err(|e| e.to_string())?;
                    // This region's own writes may have gone past the fork
                    // after the stream began (they were still applying):
                    // the state machine refused the batch, and the region
                    // must re-join instead.
                    if self.meta_state().diverged(replica.applied().glsn).is_some() {
                        return Ok(());
                    }
                }
                ShipMessage::ResyncNeeded { first_kept } => {
                    tracing::warn!(
                        region = %replica.region(),
                        from_lsn,
                        ?first_kept,
                        "behind the geo log of {write_region}: re-syncing from a state image"
                    );
                    return self.resync_from(replica, source).await;
                }
            }
        }
    }

    async fn open_stream(
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

    async fn resync_from(&self, replica: &Replica, source: NodeId) -> Result<(), String> {
        let request = StreamRequest::Resync {
            region: replica.region().clone(),
        };
        let mut stream = self.open_stream(source, &request).await?;
        loop {
            let message = tokio::time::timeout(self.inner.request_timeout, stream.recv())
                .await
                .map_err(|_| "re-sync stalled".to_string())?
                .ok_or("re-sync stream ended early")?
                .map_err(|e| e.to_string())?;
            let command = match decode::<ResyncMessage>("resync message", &message)
                .map_err(|e| e.to_string())?
            {
                ResyncMessage::Begin { .. } => Command::ResyncBegin,
                ResyncMessage::Items(items) => Command::ResyncItems(items),
                ResyncMessage::Feed(entries) => Command::ResyncFeed(entries),
                ResyncMessage::End { glsn } => {
                    replica
                        .propose(Command::ResyncEnd { glsn })
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(region = %replica.region(), %glsn, "re-sync done");
                    return Ok(());
                }
            };
            replica.propose(command).await.map_err(|e| e.to_string())?;
        }
    }
}
