//! A region leader's side of its lease: it renews the lease through the
//! meta leader every `renew_every` (`renew_leases`), holds it (`held` in
//! `handle::Holder`; `Geo::held_lease`, `wait_for_lease`), and publishes
//! the read lease its replica checks before a read index: the lease while
//! the region is online, in a read region no later than T after it last
//! proved itself fresh (`geo::freshness::read_lease_until`).

use std::time::Duration;

use crate::clock::Instant;
use crate::error::Error;
use crate::geo::freshness::read_lease_until;
use crate::glsn::Glsn;
use crate::ids::NodeId;
use crate::lease::HeldLease;
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::handle::{Geo, TICK};
use crate::raft::chase::{Attempt, chase_leader};
use crate::raft::replica::Replica;
use crate::shutdown::Shutdown;

impl Geo {
    /// Waits until this node holds a valid lease, for at most `timeout`
    /// or one lease TTL, whichever is shorter: a leader that gets no
    /// lease within a TTL cannot reach the meta group, and its caller
    /// should hear that rather than its own transport timeout.
    pub async fn wait_for_lease(&self, timeout: Duration) -> Option<HeldLease> {
        let deadline = tokio::time::Instant::now() + timeout.min(self.inner.terms.ttl);
        let mut rx = self.inner.holder.held.subscribe();
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

    /// Region leader: renew the region's lease every `renew_every`.
    pub(super) async fn renew_leases(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes renew").clone();
        let mut tick = tokio::time::interval(self.inner.terms.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tick.tick() => {}
            }
            if !self.is_region_leader() || !self.meta_state().is_formed() {
                self.inner.holder.held.send_replace(None);
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
            self.inner.holder.held.send_replace(Some(HeldLease {
                valid_until,
                state,
                fenced,
                failsafe: false,
            }));
            self.publish_read_lease(&replica);
        }
    }

    /// Sets the read lease the replica checks before a read index. Under
    /// the freshness lock, so whichever task publishes last does so from
    /// the latest lease and the latest freshness.
    pub(super) fn publish_read_lease(&self, replica: &Replica) {
        let freshness = self
            .inner
            .holder
            .freshness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let held = *self.inner.holder.held.borrow();
        let in_write_region = self.meta_state().is_write_region(replica.region());
        let fresh_until = freshness.valid_until(self.bounds().t());
        replica.set_read_lease(read_lease_until(held, in_write_region, fresh_until));
    }

    /// Folds what this read region has applied, and the answer to an
    /// acknowledgement if there is one, into its freshness; republishes
    /// the read lease.
    pub(super) fn note_freshness(&self, replica: &Replica, answer: Option<(Instant, Glsn)>) {
        {
            let mut freshness = self
                .inner
                .holder
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

    /// Sends a renewal to the meta leader (answered here when this node
    /// leads the meta group), following its hints until `timeout`.
    async fn call_meta_leader(
        &self,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeReply, Error> {
        let deadline = Instant::now() + timeout;
        let meta = &self.inner.meta;
        let attempt = |node: NodeId| async move {
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
                Ok(NodeReply::NotLeader { leader }) => Attempt::NotLeader(leader, None),
                other => Attempt::Done(other),
            }
        };
        chase_leader(deadline, || meta.leader(), attempt)
            .await
            .map_err(|_: Option<Error>| Error::meta_unavailable("no meta leader answered"))
    }
}
