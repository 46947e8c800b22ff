//! Failsafe mode (Patroni's `failsafe_mode`, off by default): when the
//! write region's leader cannot renew its lease through the meta group, it
//! asks every other region's leader whether it is still the write region.
//! If every one confirms, it holds a failsafe lease and keeps taking
//! writes; if any does not answer or refuses, its lease runs out as usual.
//!
//! Why this never makes two write regions. A region leader that confirms
//! promises not to take over writes for one lease TTL, counted from after
//! it confirmed its own leadership (a read index), which is after the write
//! region sent the request; the write region counts its failsafe lease from
//! when it sent the request and stops `safety_margin` early, so its lease
//! ends before the promise does. A region that takes over first waits until
//! its promise has passed, and until a lease TTL after it became leader (a
//! previous leader of the region may have promised until then). It gives
//! no promise while its view of the meta state shows a transition, and the
//! check and the promise are made under one lock that taking over also
//! takes, so a promise is either seen by the region taking over or never
//! given.
//!
//! The promise arithmetic and the failsafe decisions are pure rules in
//! `geo::failsafe`.

use std::sync::MutexGuard;

use futures::future::join_all;

use crate::clock::Instant;
use crate::error::Error;
use crate::geo::failsafe::{FailsafeTick, Promises, failsafe_extension, failsafe_tick};
use crate::ids::RegionId;
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::handle::Geo;
use crate::shutdown::Shutdown;

impl Geo {
    pub(super) fn failsafe_enabled(&self) -> bool {
        self.inner.account.failover.failsafe
    }

    /// The promises, under their std lock (never held across an
    /// `.await`).
    fn promises(&self) -> MutexGuard<'_, Promises> {
        self.inner
            .promises
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Every region node, every tick: note the term it leads in, so a
    /// take-over can tell how long ago that began.
    pub(super) fn note_leadership(&self) {
        if let Some(term) = self.replica().and_then(|r| r.leader_term()) {
            self.promises().note_leader(term, Instant::now());
        }
    }

    /// Before a region takes over writes: wait out every failsafe promise
    /// this region may have given. The caller's view already shows the
    /// transition, so no new promise is given meanwhile.
    pub(super) async fn wait_out_promises(&self) {
        if !self.failsafe_enabled() {
            return;
        }
        let Some(term) = self.replica().and_then(|r| r.leader_term()) else {
            return;
        };
        let ttl = self.inner.terms.ttl;
        let after = self.promises().take_over_after(term, Instant::now(), ttl);
        if after > Instant::now() {
            tracing::info!(
                wait_ms = after.saturating_duration_since(Instant::now()).as_millis() as u64,
                "waiting out the failsafe promises this region may have given"
            );
            tokio::time::sleep_until(after).await;
        }
    }

    /// At a region leader, from the write region's leader: confirm that
    /// `region` is the write region in `epoch` as this node sees it, and
    /// promise not to take over writes for one lease TTL.
    pub async fn handle_failsafe_confirm(
        &self,
        region: &RegionId,
        epoch: u64,
    ) -> Result<NodeReply, Error> {
        let replica = self
            .replica()
            .ok_or_else(|| Error::Internal("a witness confirms nothing".into()))?;
        if !self.is_region_leader() {
            return Ok(NodeReply::NotLeader {
                leader: replica.leader(),
            });
        }
        let here = replica.region().clone();
        if !self.failsafe_enabled() {
            return Err(Error::Refused(format!("failsafe mode is off in {here}")));
        }
        // Leadership proven now, so a deposed leader gives no promise its
        // successor would not know of.
        replica
            .confirm_leadership()
            .await
            .map_err(|e| Error::Unavailable {
                region: Some(here.clone()),
                reason: format!("confirming leadership: {e}"),
            })?;
        let mut promises = self.promises();
        let meta = self.meta_state();
        let refusal = if meta.epoch != epoch || !meta.is_write_region(region) {
            Some(format!(
                "{here} sees epoch {} with write region {}",
                meta.epoch,
                meta.write_region
                    .as_ref()
                    .map_or("none".to_string(), |w| w.to_string())
            ))
        } else {
            meta.transition
                .as_ref()
                .map(|t| format!("{here} sees writes moving to {}", t.to))
        };
        if let Some(why) = refusal {
            return Err(Error::Refused(why));
        }
        promises.promise(Instant::now(), self.inner.terms.ttl);
        Ok(NodeReply::Done)
    }

    /// The write region's leader, every renewal interval, in failsafe mode:
    /// when no renewal has landed for two intervals, ask every other
    /// region's leader to confirm; if all do, hold a failsafe lease.
    pub(super) async fn keep_failsafe(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let terms = self.inner.terms;
        let mut tick = tokio::time::interval(terms.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut serving = false;
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tick.tick() => {}
            }
            let meta = self.meta_state();
            let region = replica.region();
            if !self.is_region_leader() || !meta.is_write_region(region) {
                serving = false;
                continue;
            }
            let held = *self.inner.holder.held.borrow();
            match failsafe_tick(held, Instant::now(), &terms) {
                FailsafeTick::Fenced => continue,
                FailsafeTick::MetaRenews => {
                    serving = false;
                    continue;
                }
                FailsafeTick::Confirm => {}
            }
            let sent_at = Instant::now();
            match self.confirm_everywhere(region, meta.epoch).await {
                Ok(()) => {
                    let extended = self.inner.holder.held.send_if_modified(|h| {
                        match failsafe_extension(*h, sent_at, &terms) {
                            Some(lease) => {
                                *h = Some(lease);
                                true
                            }
                            None => false,
                        }
                    });
                    if extended {
                        self.publish_read_lease(&replica);
                        if !serving {
                            tracing::warn!(
                                "failsafe: the meta group does not renew this region's lease, but every region confirms it writes; it keeps taking writes"
                            );
                        }
                        serving = true;
                    }
                }
                Err(why) => {
                    if serving {
                        tracing::warn!("failsafe ends: {why}");
                    }
                    serving = false;
                }
            }
        }
    }

    /// Asks every other region's leader to confirm, all at once, for at
    /// most one renewal interval.
    async fn confirm_everywhere(&self, region: &RegionId, epoch: u64) -> Result<(), String> {
        let request = NodeRequest::FailsafeConfirm {
            region: region.clone(),
            epoch,
        };
        let others: Vec<RegionId> = self
            .inner
            .account
            .regions
            .iter()
            .map(|r| r.name.clone())
            .filter(|r| r != region)
            .collect();
        let timeout = self.inner.terms.renew_every;
        let answers = join_all(
            others
                .iter()
                .map(|other| self.call_leader(other, &request, timeout)),
        )
        .await;
        for (other, answer) in others.iter().zip(answers) {
            match answer {
                Ok(NodeReply::Done) => {}
                Ok(reply) => return Err(format!("{other} answered {reply:?}")),
                Err(e) => return Err(format!("{other} did not confirm: {e}")),
            }
        }
        Ok(())
    }
}
