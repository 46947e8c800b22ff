//! Changing the write region (DESIGN.md "The meta group and failover"):
//! the meta leader starts a failover when the write region's lease has
//! expired (or a scheduled switchover when its time comes) and gives up a
//! transition that does not complete; the region named to take over
//! fences the old write region, fetches every entry of the old epoch any
//! reachable region holds, and commits the new epoch with that fork; the
//! write path checks the fence; a region that went past a fork re-joins.
//!
//! Why no two regions ever take writes in one epoch: the old write region
//! takes a write only with a lease that is not fenced, and the new one
//! only once the meta group has committed it as the write region. A
//! failover begins after the meta group counts the old lease expired, and
//! the holder stopped `safety_margin` before that; a switchover fences
//! explicitly (`Fence` drains the writes in flight) before the target
//! reads the old region's head.
//!
//! The decisions (the meta leader's step, the fencing check, the fetch
//! source) are pure rules in `geo::failover`; the meta leader's step is
//! taken by `supervision`.

use std::time::Duration;

use tokio::sync::RwLockReadGuard;

use crate::command::Command;
use crate::crash::{CrashPoint, crash_point};
use crate::error::Error;
use crate::geo::failover::{check_write_fence, most_advanced};
use crate::geo::ship::{ShipMessage, StreamRequest};
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::meta::{ChangeReason, EpochChange, MetaCommand, MetaReply, MetaState};
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::follower::{decode_entries, decode_ship};
use crate::node::regions::handle::{Geo, TICK};
use crate::raft::replica::Replica;
use crate::shutdown::Shutdown;

/// How long the region taking over waits for another region's report.
const REPORT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a fence may take (the write region must see the transition).
const FENCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Held by a write from its fencing check until it has applied.
pub struct WritePermit<'a> {
    _gate: RwLockReadGuard<'a, ()>,
    /// The epoch this region writes in, which the write is stamped with.
    pub epoch: u64,
}

impl Geo {
    /// The write path's fencing check: this region's lease is not fenced
    /// and no transition away from it is under way. Hold the permit until
    /// the write has applied.
    pub async fn write_permit(&self) -> Result<WritePermit<'_>, Error> {
        let gate = self.inner.gates.write_gate.read().await;
        let region = self
            .replica()
            .map(|r| r.region().clone())
            .ok_or_else(|| Error::Internal("a witness takes no writes".into()))?;
        let meta = self.meta_state();
        let lease_fenced = self.held_lease().is_some_and(|h| h.fenced);
        check_write_fence(&meta, &region, lease_fenced)?;
        self.ensure_epoch(&meta).await?;
        Ok(WritePermit {
            _gate: gate,
            epoch: meta.epoch,
        })
    }

    /// A new write region's first write waits until its replica set has
    /// begun the epoch the meta group committed.
    async fn ensure_epoch(&self, meta: &MetaState) -> Result<(), Error> {
        let replica = self.replica().expect("checked by the caller");
        if replica.applied().write_epoch >= meta.epoch {
            return Ok(());
        }
        replica
            .propose(Command::BeginEpoch { epoch: meta.epoch })
            .await
            .map_err(|e| Error::Unavailable {
                region: Some(replica.region().clone()),
                reason: format!("beginning epoch {}: {e}", meta.epoch),
            })?;
        Ok(())
    }

    /// At the write region's leader, from the region taking over: once this
    /// node sees the transition, wait for the writes in flight and report
    /// what it applied.
    pub async fn handle_fence(&self) -> Result<NodeReply, Error> {
        let replica = self
            .replica()
            .ok_or_else(|| Error::Internal("a witness is never fenced".into()))?;
        if !self.is_region_leader() {
            return Ok(NodeReply::NotLeader {
                leader: replica.leader(),
            });
        }
        let region = replica.region().clone();
        let mut watch = self.inner.meta.watch();
        let seen = matches!(
            tokio::time::timeout(
                FENCE_TIMEOUT,
                watch.wait_for(|m| m.transition.as_ref().is_some_and(|t| t.from == region)),
            )
            .await,
            Ok(Ok(_))
        );
        if !seen {
            return Err(Error::Unavailable {
                region: Some(region),
                reason: "no transition away from this region is under way here yet".into(),
            });
        }
        drop(self.inner.gates.write_gate.write().await);
        Ok(NodeReply::Fenced {
            applied: replica.applied().glsn,
        })
    }

    /// Switchover (manual failover) to `to`: begins the transition and
    /// waits until the new epoch has committed, or the transition was
    /// given up, for at most `timeout`.
    pub async fn switchover(&self, to: &RegionId, timeout: Duration) -> Result<EpochChange, Error> {
        let before = self.meta_state();
        before.check_target(to).map_err(Error::from)?;
        let command = MetaCommand::BeginTransition {
            to: to.clone(),
            reason: ChangeReason::Switchover,
            at_ms: self.inner.clock.wall_ms(),
        };
        match self.inner.meta.propose(command, timeout).await {
            Ok(MetaReply::Refused(why)) => return Err(Error::from(why)),
            Ok(_) => {}
            Err(e) => return Err(meta_unavailable(e.to_string())),
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut watch = self.inner.meta.watch();
        // This node's copy of the meta state may trail the commit: first
        // see the transition (or its end), then its end.
        for transition_seen in [true, false] {
            let wanted =
                |m: &MetaState| m.transition.is_some() == transition_seen || m.epoch > before.epoch;
            let seen = tokio::time::timeout_at(deadline, watch.wait_for(wanted))
                .await
                .is_ok_and(|r| r.is_ok());
            if !seen {
                return Err(Error::Unavailable {
                    region: Some(to.clone()),
                    reason: format!("the switchover did not complete within {timeout:?}"),
                });
            }
        }
        let after = self.meta_state();
        match after.history.last() {
            Some(change) if after.epoch > before.epoch => Ok(change.clone()),
            _ => Err(Error::Unavailable {
                region: Some(to.clone()),
                reason: after
                    .failover_blocked
                    .unwrap_or_else(|| "the switchover was given up".into()),
            }),
        }
    }

    /// Region leader: when a transition names this region, complete it.
    pub(super) async fn take_over(self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            self.note_leadership();
            let meta = self.meta_state();
            if !self.takes_over(&meta) {
                continue;
            }
            let result = tokio::select! {
                _ = shutdown.signalled() => return,
                r = self.complete_transition(&meta) => r,
            };
            match result {
                Ok(epoch) => tracing::warn!(epoch, "this region now takes the writes"),
                Err(e) => tracing::warn!("taking over writes: {e}; trying again"),
            }
        }
    }

    async fn complete_transition(&self, meta: &MetaState) -> Result<u64, String> {
        let replica = self.replica().expect("only region nodes take over").clone();
        let t = meta.transition.clone().expect("checked by takes_over");
        let _shipping = self.inner.gates.ship_lock.lock().await;
        // Checked before anything with effects (a fence, a wait): nothing
        // is shipped into this region while the lock is held.
        let applied = replica.applied();
        if let Some(fork) = meta.diverged(applied.glsn) {
            return Err(format!(
                "this region holds writes past the fork {fork} (applied {}) and must re-join before it can take over",
                applied.glsn
            ));
        }
        if applied.resyncing {
            return Err("this region is re-syncing and cannot take over until it is done".into());
        }
        // In failsafe mode the old write region may hold a lease on this
        // region's word: it must have run out first.
        self.wait_out_promises().await;
        if t.reason == ChangeReason::Switchover {
            self.fence(&t.from).await?;
        }
        let mine = replica.applied().glsn;
        if let Some((region, node, head)) = self.most_advanced(meta, replica.region()).await
            && head > mine
        {
            tracing::info!(%region, %head, %mine, "fetching the old epoch's entries this region lacks");
            self.fetch(&replica, node, head).await?;
        }
        let fork = replica.applied().glsn;
        let command = MetaCommand::CompleteTransition {
            to: t.to.clone(),
            fork,
            at_ms: self.inner.clock.wall_ms(),
        };
        let epoch = match self.inner.meta.propose(command, REPORT_TIMEOUT * 3).await {
            Ok(MetaReply::NewEpoch(epoch)) => epoch,
            Ok(other) => return Err(format!("the meta group answered {other:?}")),
            Err(e) => return Err(format!("committing the new epoch: {e}")),
        };
        tracing::warn!(epoch, %fork, from = %t.from, "new epoch committed");
        crash_point(CrashPoint::AfterEpochChange);
        if let Err(e) = replica.propose(Command::BeginEpoch { epoch }).await {
            // The first write proposes it again.
            tracing::debug!("beginning epoch {epoch}: {e}");
        }
        Ok(epoch)
    }

    /// A switchover's old write region is alive: it must stop before its
    /// head is read, or a write could land after it.
    async fn fence(&self, from: &RegionId) -> Result<(), String> {
        match self
            .call_leader(from, &NodeRequest::Fence, FENCE_TIMEOUT * 2)
            .await
        {
            Ok(NodeReply::Fenced { applied }) => {
                tracing::info!(%from, %applied, "fenced the write region");
                Ok(())
            }
            Ok(other) => Err(format!("unexpected reply to a fence: {other:?}")),
            Err(e) => Err(format!("fencing {from}: {e}")),
        }
    }

    /// Asks every other region's leader for its report, and picks the
    /// region to fetch from (`geo::failover::most_advanced`).
    async fn most_advanced(
        &self,
        meta: &MetaState,
        mine: &RegionId,
    ) -> Option<(RegionId, NodeId, Glsn)> {
        let asks = meta
            .regions
            .keys()
            .filter(|r| *r != mine)
            .map(|region| async move {
                let reply = tokio::time::timeout(
                    REPORT_TIMEOUT,
                    self.call_leader(region, &NodeRequest::RegionReport, REPORT_TIMEOUT),
                )
                .await;
                match reply {
                    Ok(Ok(NodeReply::Report(report))) => report
                        .leader
                        .map(|leader| (region.clone(), leader, report.applied)),
                    _ => None,
                }
            });
        let reports = futures::future::join_all(asks).await.into_iter().flatten();
        most_advanced(meta, reports)
    }

    /// Streams entries from `source` until this region has applied `head`.
    async fn fetch(&self, replica: &Replica, source: NodeId, head: Glsn) -> Result<(), String> {
        let request = StreamRequest::Fetch {
            region: replica.region().clone(),
            from_lsn: replica.applied().glsn.lsn + 1,
        };
        let mut stream = self.open_stream(source, &request).await?;
        while replica.applied().glsn < head {
            let message = tokio::time::timeout(REPORT_TIMEOUT * 2, stream.recv())
                .await
                .map_err(|_| format!("fetching from {source} stalled"))?
                .ok_or("fetch stream ended")?
                .map_err(|e| e.to_string())?;
            match decode_ship(&message)? {
                ShipMessage::Entries(raw) => {
                    let entries = decode_entries(&raw)?;
                    replica
                        .propose(Command::Ship(entries))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                ShipMessage::Heartbeat { .. } => {}
                ShipMessage::ResyncNeeded { .. } => {
                    return Err(format!(
                        "{source} no longer holds the entries after {}",
                        replica.applied().glsn
                    ));
                }
            }
        }
        Ok(())
    }
}

fn meta_unavailable(reason: String) -> Error {
    Error::meta_unavailable(reason)
}
