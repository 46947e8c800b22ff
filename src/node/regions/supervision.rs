//! The meta leader's side of leases: it commits renewals and counts each
//! region's lease from the commit (`handle_renewal`); every tick it takes
//! a read region whose lease expired out of the strong set, and takes the
//! failover step the meta state calls for (`supervise_leases`). The
//! counting and the failover step are pure rules (`geo::lease_counts`,
//! `geo::failover::failover_step`).

use std::sync::MutexGuard;

use crate::clock::Instant;
use crate::error::Error;
use crate::geo::failover::failover_step;
use crate::geo::lease_counts::LeaseCounts;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::meta::{MetaCommand, MetaReply, MetaState, RegionState};
use crate::node::messages::NodeReply;
use crate::node::regions::handle::{Geo, TICK};
use crate::raft::replica::ReplicaError;
use crate::shutdown::Shutdown;

impl Geo {
    /// The lease counts, under their std lock (never held across an
    /// `.await`).
    fn lease_counts(&self) -> MutexGuard<'_, LeaseCounts> {
        self.inner
            .lease_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

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
                let committed_at = Instant::now();
                self.lease_counts()
                    .renewed(region, committed_at, &self.inner.terms);
                Ok(NodeReply::Renewed { state, fenced })
            }
            Ok(MetaReply::Refused(why)) => Err(Error::from(why)),
            Ok(other) => Err(Error::Internal(format!("unexpected meta reply {other:?}"))),
            Err(ReplicaError::NotLeader { leader, .. }) => Ok(NodeReply::NotLeader { leader }),
            Err(e) => Err(Error::meta_unavailable(e)),
        }
    }

    /// Meta leader: take a region out of the strong set once the lease the
    /// meta group counts for it has expired.
    pub(super) async fn supervise_leases(self, shutdown: Shutdown) {
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
                self.lease_counts()
                    .restart(meta.regions.keys(), now, &self.inner.terms);
                was_leader = true;
                continue;
            }
            let expired = self.lease_counts().expired(&meta, now, &self.inner.terms);
            let write_expired = self.lease_counts().write_expired(&meta, now);
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

    /// Meta leader, every tick: proposes the failover step the meta state
    /// calls for, if any (`failover_step`).
    async fn drive_failover(&self, meta: &MetaState, write_expired: bool) {
        let now_ms = self.inner.clock.wall_ms();
        let Some(command) = failover_step(meta, write_expired, now_ms) else {
            return;
        };
        match &command {
            MetaCommand::BeginTransition { to, reason, .. } => {
                tracing::warn!(%to, reason = reason.as_str(), from = ?meta.write_region, "moving writes");
            }
            MetaCommand::AbortTransition { why, .. } => tracing::warn!("{why}"),
            MetaCommand::SetFailoverBlocked(Some(why)) => tracing::warn!("no failover: {why}"),
            _ => {}
        }
        match self.inner.meta.propose_local(command).await {
            Ok(MetaReply::Refused(why)) => tracing::debug!("failover step refused: {why}"),
            Ok(_) => {}
            Err(e) => tracing::debug!("failover step: {e}"),
        }
    }
}
