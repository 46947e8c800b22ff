//! The strong set at the write region leader: it records the read
//! regions' acknowledgements (`handle_ack`), marks a joining region online
//! once it caught up and trims the geo log to what every online region
//! has (`keep_strong_set`), and makes strong writes and reads wait until
//! every region of the strong set holds them (`wait_strong`,
//! `wait_strong_held`). The rules are in `geo::strong_set`.

use std::time::Duration;

use crate::command::Command;
use crate::error::Error;
use crate::geo::strong_set::{self, StrongSetKeeper, caught_up, not_yet_acked, trim_floor};
use crate::glsn::Glsn;
use crate::ids::RegionId;
use crate::meta::{MetaCommand, RegionState};
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::regions::handle::{Geo, TICK};
use crate::raft::replica::Replica;
use crate::shutdown::Shutdown;

impl Geo {
    /// At the write region leader: a read region reports what it applied.
    /// The answer names this region's head, from which the read region
    /// proves its freshness; `Done` when the head cannot be confirmed.
    pub async fn handle_ack(&self, region: &RegionId, glsn: Glsn) -> NodeReply {
        if !self.is_write_leader() {
            return NodeReply::NotLeader {
                leader: self.replica().and_then(Replica::leader),
            };
        }
        self.inner.strong.acks.record(region, glsn);
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

    /// Write region leader: bring joining regions online once caught up,
    /// and trim the geo log to what every online region has.
    pub(super) async fn keep_strong_set(self, shutdown: Shutdown) {
        let replica = self.replica().expect("only region nodes").clone();
        let mut keeper = StrongSetKeeper::default();
        loop {
            tokio::select! {
                _ = shutdown.signalled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            if !self.is_write_leader() {
                if keeper.not_leading() {
                    self.inner.strong.acks.clear();
                }
                continue;
            }
            let meta = self.meta_state();
            keeper.leading(&meta);
            for (region, m) in &meta.regions {
                if m.state != RegionState::Joining {
                    continue;
                }
                let point = keeper.join_point(region, replica.applied().glsn);
                let acked = self.inner.strong.acks.get(region).map(|a| a.glsn);
                let bounds = self.bounds();
                if caught_up(acked, point, || bounds.admits(self.lag_of(region))) {
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
            let acked_lsn = |r: &RegionId| self.inner.strong.acks.get(r).map(|a| a.glsn.lsn);
            let floor = trim_floor(&meta, acked_lsn, replica.applied().glsn.lsn);
            if let Some(upto_lsn) = keeper.trim_to(floor)
                && replica
                    .propose(Command::TrimGeoLog { upto_lsn })
                    .await
                    .is_ok()
            {
                keeper.trimmed(upto_lsn);
            }
        }
    }

    /// Strong writes need the strong set to hold a majority of regions.
    pub fn check_strong_set(&self) -> Result<(), Error> {
        strong_set::check_strong_set(&self.meta_state())
    }

    /// Waits until every region a strong read may be served by holds
    /// `glsn`, or fails with UNAVAILABLE: at the write region leader
    /// itself, elsewhere by asking it. Remembers the highest GLSN confirmed
    /// so reads of older state do not ask again: once every such region
    /// holds a GLSN it stays so, since a region only becomes one again
    /// after catching up (see `keep_strong_set`).
    pub async fn wait_strong_held(&self, glsn: Glsn, timeout: Duration) -> Result<(), Error> {
        if glsn <= *self.inner.strong.strong_held.borrow() {
            return Ok(());
        }
        if self.is_write_leader() {
            self.confirm_strong_held(glsn).await?;
        } else {
            let Some(write_region) = self.meta_state().write_region else {
                return Err(Error::Unavailable {
                    region: None,
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
        let region = self.replica().map(|r| r.region().clone());
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
        self.inner.strong.strong_held.send_if_modified(|held| {
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
        let acks_table = &self.inner.strong.acks;
        let mut acks = acks_table.changes();
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
            let missing = not_yet_acked(&state, |r| acks_table.get(r).map(|a| a.glsn), glsn);
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
}
