//! Request logic of a node, in domain terms: validate, pick the read path
//! for the consistency level, forward writes to the region leader.
//!
//! Writes (DESIGN.md "Consistency levels"): a write that reaches any node
//! but the write region's leader is forwarded there (or, with
//! `no_forward`, refused outside the write region). The leader checks its
//! write lease, the strong set (strong) or the staleness bounds (others),
//! hands the write to its `Proposer`, which batches writes into raft
//! entries, and for a strong write waits until every region of the strong
//! set has acknowledged it.
//!
//! Reads: STRONG and BOUNDED_STALENESS wait for the region leader's read
//! index (shared by concurrent reads, see `node::read_index`), which the
//! leader gives only while it holds its region's read lease; a STRONG read
//! across regions then waits until every region of the strong set holds
//! the state it read (`Geo::wait_strong_held`); SESSION waits briefly for
//! the token; CONSISTENT_PREFIX and EVENTUAL read the local applied state.
//! No level reads a replica in the middle of a re-sync.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use crate::command::{Command, Rejection, WriteCommand, WriteOp, WriteOutcome};
use crate::conflict::ConflictRecord;
use crate::consistency::{Consistency, ReadPath};
use crate::error::Error;
use crate::geo::staleness::{WriteCheck, write_check};
use crate::glsn::{Glsn, SessionToken};
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId};
use crate::item::{self, Etag, ItemVersion, KeyRange};
use crate::meta::MetaState;
use crate::mutation::{self, Mutation};
use crate::node::messages::{NodeReply, NodeRequest};
use crate::node::proposer::Proposer;
use crate::node::read_index::ReadIndexer;
use crate::node::regions::Geo;
use crate::raft::replica::{Replica, ReplicaError};
use crate::storage::state::ScannedPage;

#[derive(Debug, Clone)]
pub struct KvSettings {
    pub default_consistency: Consistency,
    pub session_wait: Duration,
    pub request_timeout: Duration,
}

/// What a successful write returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReceipt {
    pub glsn: Glsn,
    pub etag: Option<Etag>,
}

/// How long a write forwarded to a region that has just lost the writes
/// may still take to answer.
const MOVED_GRACE: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Kv {
    replica: Replica,
    proposer: Proposer,
    read_indexer: ReadIndexer,
    hlc: Arc<Hlc>,
    geo: Geo,
    settings: KvSettings,
}

impl Kv {
    pub fn new(replica: Replica, geo: Geo, hlc: Arc<Hlc>, settings: KvSettings) -> Self {
        let proposer = Proposer::spawn(replica.clone(), settings.request_timeout);
        let read_indexer = ReadIndexer::spawn(replica.clone(), settings.request_timeout);
        Self {
            replica,
            proposer,
            read_indexer,
            hlc,
            geo,
            settings,
        }
    }

    pub fn node(&self) -> NodeId {
        self.replica.id()
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn geo(&self) -> &Geo {
        &self.geo
    }

    /// A write from a client: validated here (its container's policy
    /// too, see `Geo::check_write`), applied at the write region's leader.
    pub async fn write(
        &self,
        container: &str,
        key: &str,
        op: WriteOp,
        consistency: Option<Consistency>,
        session: Option<SessionToken>,
        no_forward: bool,
    ) -> Result<WriteReceipt, Error> {
        validate_write(container, key, &op)?;
        let level = self.level(consistency)?;
        self.check_session(session)?;
        let deadline = Instant::now() + self.settings.request_timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let write_region = self.write_region_for(remaining, no_forward).await?;
            self.geo.check_write(container, &op, remaining).await?;
            let write = WriteCommand {
                container: container.to_string(),
                key: key.to_string(),
                op: op.clone(),
                ts: self.hlc.now(),
                origin_region: write_region.clone(),
                // Stamped by the write region's leader under its permit.
                epoch: 0,
            };
            let result = if self.geo.is_write_leader() {
                self.write_at_leader(write, level, session).await
            } else {
                self.forward_write(write, level, session, &write_region, remaining)
                    .await
            };
            match result {
                // The write region moved before the write was sent: it
                // never applied, so it goes to the new one.
                Err(Error::NotWriteRegion { .. }) if !no_forward && Instant::now() < deadline => {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// The write region, once the meta group has formed the account
    /// (waiting at most `timeout`); with `no_forward`, a write that
    /// reaches another region is refused here.
    async fn write_region_for(
        &self,
        timeout: Duration,
        no_forward: bool,
    ) -> Result<RegionId, Error> {
        let Some((write_region, epoch)) = self.geo.wait_for_write_epoch(timeout).await else {
            return Err(Error::Unavailable {
                region: None,
                reason: "the meta group has not formed the account yet; retry shortly".into(),
            });
        };
        if no_forward && &write_region != self.replica.region() {
            return Err(Error::NotWriteRegion {
                region: self.replica.region().clone(),
                write_region: Some(write_region),
                epoch,
            });
        }
        Ok(write_region)
    }

    /// Forwards a write to the leader of `write_region`. Should the write
    /// region move while the write is in flight, the old one gets a short
    /// grace to answer; after it the outcome is unknown.
    async fn forward_write(
        &self,
        write: WriteCommand,
        level: Consistency,
        session: Option<SessionToken>,
        write_region: &RegionId,
        timeout: Duration,
    ) -> Result<WriteReceipt, Error> {
        let request = NodeRequest::Write {
            write,
            consistency: level,
            session,
        };
        let forwarded = self.geo.call_leader(write_region, &request, timeout);
        tokio::pin!(forwarded);
        let reply = tokio::select! {
            reply = &mut forwarded => reply,
            moved_to = self.geo.write_region_moved(write_region) => {
                // A fenced write region answers at once (applied, or
                // refused before applying); a dead one never does, and
                // waiting for it only delays the caller.
                match tokio::time::timeout(MOVED_GRACE, &mut forwarded).await {
                    Ok(reply) => reply,
                    Err(_) => Err(Error::OutcomeUnknown {
                        reason: format!(
                            "the write region moved from {write_region} to {moved_to} while the write was in flight"
                        ),
                    }),
                }
            }
        };
        match reply? {
            NodeReply::Written { glsn, etag } => Ok(WriteReceipt { glsn, etag }),
            other => Err(Error::Internal(format!(
                "unexpected reply to a write: {other:?}"
            ))),
        }
    }

    /// Records writes lost to a fork in the conflict feed, at the write
    /// region's leader (`rejoin` sends them there).
    pub async fn record_conflicts_at_leader(
        &self,
        records: Vec<ConflictRecord>,
    ) -> Result<(), Error> {
        if self
            .geo
            .wait_for_lease(self.settings.request_timeout)
            .await
            .is_none()
        {
            return Err(self.unavailable("the write region holds no lease".into()));
        }
        let permit = self.geo.write_permit().await?;
        let proposed = self
            .replica
            .propose(Command::RecordConflicts {
                records,
                ts: self.hlc.now(),
            })
            .await;
        drop(permit);
        feed_proposed(self.replica.region(), proposed)?;
        Ok(())
    }

    /// Deletes conflict feed entry `id`, at the write region's leader.
    pub async fn delete_conflict_at_leader(&self, id: u64) -> Result<Glsn, Error> {
        if self
            .geo
            .wait_for_lease(self.settings.request_timeout)
            .await
            .is_none()
        {
            return Err(self.unavailable("the write region holds no lease".into()));
        }
        let permit = self.geo.write_permit().await?;
        let proposed = self
            .replica
            .propose(Command::DeleteConflict {
                id,
                ts: self.hlc.now(),
            })
            .await;
        drop(permit);
        feed_deleted(self.replica.region(), id, proposed)
    }

    /// Deletes conflict feed entry `id`: at the write region's leader,
    /// forwarded there from anywhere else.
    pub async fn delete_conflict(&self, id: u64) -> Result<Glsn, Error> {
        if self.geo.is_write_leader() {
            return self.delete_conflict_at_leader(id).await;
        }
        let Some(write_region) = self
            .geo
            .wait_for_write_region(self.settings.request_timeout)
            .await
        else {
            return Err(Error::Unavailable {
                region: None,
                reason: "the account has no write region yet".into(),
            });
        };
        match self
            .geo
            .call_leader(
                &write_region,
                &NodeRequest::DeleteConflict { id },
                self.settings.request_timeout,
            )
            .await?
        {
            NodeReply::Written { glsn, .. } => Ok(glsn),
            other => Err(Error::Internal(format!(
                "unexpected reply to a feed delete: {other:?}"
            ))),
        }
    }

    /// The write region leader's part of a write: lease, strong set or
    /// staleness bounds, proposal, and for STRONG the wait for the strong
    /// set's acknowledgements.
    pub async fn write_at_leader(
        &self,
        mut write: WriteCommand,
        level: Consistency,
        session: Option<SessionToken>,
    ) -> Result<WriteReceipt, Error> {
        // The node that took the write may not have known the latest fork
        // (or the write region moved while it retried); the write region's
        // leader knows it, since it began the epoch.
        self.check_session(session)?;
        let started = Instant::now();
        let timeout = self.settings.request_timeout;
        let Some(lease) = self.geo.wait_for_lease(timeout).await else {
            return Err(self.unavailable(
                "the write region holds no lease: its leader cannot reach the meta group".into(),
            ));
        };
        match write_check(level, self.settings.default_consistency) {
            WriteCheck::StrongSet => self.geo.check_strong_set()?,
            WriteCheck::Staleness => self.geo.check_staleness()?,
            WriteCheck::Nothing => {}
        }
        let (container, key) = (write.container.clone(), write.key.clone());
        if mutation::drop_this_write() {
            let glsn = self.replica.applied().glsn;
            return Ok(WriteReceipt {
                glsn,
                etag: Some(Etag::for_write(glsn)),
            });
        }
        let permit = self.geo.write_permit().await?;
        write.epoch = permit.epoch;
        let proposed = self.proposer.propose(write).await;
        drop(permit);
        let (glsn, etag) = match proposed? {
            WriteOutcome::Applied { glsn, etag } => (glsn, etag),
            WriteOutcome::Rejected { rejection, .. } => {
                return Err(self.rejected(&container, &key, rejection));
            }
        };
        // The meta group moves the writes only after the lease expired, so
        // a write applied while the lease taken for it (or a renewal of it)
        // is still valid lies before any fork. Past that, the region may
        // have been failed over while the batch waited (a leader cut off,
        // then forwarding to its successor): the write applied, but it may
        // lie past the fork, so its outcome is not known.
        if lease.valid_until <= Instant::now() && self.geo.held_lease().is_none() {
            return Err(Error::OutcomeUnknown {
                reason: format!(
                    "the write applied at {glsn}, after the write lease it was taken under expired; a failover may have left it past the fork"
                ),
            });
        }
        if level == Consistency::Strong {
            let remaining = timeout.saturating_sub(started.elapsed());
            self.geo.wait_strong(glsn, remaining).await?;
        }
        Ok(WriteReceipt { glsn, etag })
    }

    /// A write the state machine refused, as the client sees it.
    fn rejected(&self, container: &str, key: &str, rejection: Rejection) -> Error {
        let (container, key) = (container.to_string(), key.to_string());
        match rejection {
            Rejection::AlreadyExists => Error::AlreadyExists { container, key },
            Rejection::NotFound => Error::NotFound { container, key },
            Rejection::EtagMismatch { current } => Error::EtagMismatch {
                container,
                key,
                current,
            },
            // Refused before it applied, so it may go to the new write
            // region (the taking node retries there).
            Rejection::EpochEnded { .. } => {
                let meta = self.geo.meta_state();
                Error::NotWriteRegion {
                    region: self.replica.region().clone(),
                    write_region: meta.write_region,
                    epoch: meta.epoch,
                }
            }
        }
    }

    /// The request's level, or the account default; never stronger than
    /// the default.
    fn level(&self, consistency: Option<Consistency>) -> Result<Consistency, Error> {
        let default = self.settings.default_consistency;
        let level = consistency.unwrap_or(default);
        if !level.is_allowed_under(default) {
            return Err(Error::ConsistencyTooStrong {
                requested: level,
                account_default: default,
            });
        }
        Ok(level)
    }

    pub async fn get(
        &self,
        container: &str,
        key: &str,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<(Option<ItemVersion>, Glsn), Error> {
        item::validate_container(container).map_err(invalid)?;
        item::validate_key(key).map_err(invalid)?;
        let started = Instant::now();
        let read_glsn = self.prepare_read(consistency, token).await?;
        let found = self
            .replica
            .state()
            .get_item(container, key)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.settle_strong(consistency, started).await?;
        Ok((found, read_glsn))
    }

    pub async fn scan(
        &self,
        container: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<(ScannedPage, Glsn), Error> {
        item::validate_container(container).map_err(invalid)?;
        item::validate_range(range).map_err(invalid)?;
        if let Some(after) = after {
            item::validate_key(after)
                .map_err(|e| invalid(item::InvalidInput(format!("continuation: {}", e.0))))?;
        }
        let started = Instant::now();
        let read_glsn = self.prepare_read(consistency, token).await?;
        let page = self
            .replica
            .state()
            .scan_items(
                container,
                range,
                after,
                limit,
                crate::limits::SCAN_PAGE_BYTES_MAX,
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.settle_strong(consistency, started).await?;
        Ok((page, read_glsn))
    }

    /// A session whose token lies past a fork it did not survive has lost
    /// writes to a failover: any read or write it makes now would hide
    /// that (a write's token, of the new epoch, would cover the lost
    /// one), so the caller hears it instead.
    fn check_session(&self, token: Option<SessionToken>) -> Result<(), Error> {
        session_lost(&self.geo.meta_state(), token)
    }

    /// Waits until this replica may serve a read at `consistency`; returns
    /// the GLSN its state reflects at least.
    async fn prepare_read(
        &self,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<Glsn, Error> {
        let level = self.level(consistency)?;
        let meta = self.geo.meta_state();
        session_lost(&meta, token)?;
        if let Some(fork) = meta.diverged(self.replica.applied().glsn) {
            return Err(self.unavailable(format!(
                "{} holds writes past the fork {fork} and is re-joining; read from another region",
                self.replica.id()
            )));
        }
        if self.replica.applied().resyncing {
            return Err(self.unavailable(format!(
                "{} is re-syncing from the write region; read from another region",
                self.replica.id()
            )));
        }
        match level.read_path() {
            ReadPath::ReadIndex if !mutation::armed(Mutation::StaleStrongRead) => {
                self.wait_read_index().await?
            }
            ReadPath::Session if !mutation::armed(Mutation::SessionIgnoresToken) => {
                if let Some(token) = token {
                    self.wait_session(token).await?;
                }
            }
            ReadPath::ReadIndex | ReadPath::Session | ReadPath::Local => {}
        }
        let applied = self.replica.applied().glsn;
        if token.is_some_and(|t| t.0.epoch < applied.epoch) {
            self.check_session_against(token, applied.epoch).await?;
        }
        Ok(applied)
    }

    /// The token against every fork up to `epoch`, the epoch of the state
    /// about to be served. A region re-synced from a new write region can
    /// apply that epoch's entries before its meta replica learns the fork;
    /// judged by the older meta view alone, a token the fork lost would
    /// pass, and the answer's newer token would cover the loss.
    async fn check_session_against(
        &self,
        token: Option<SessionToken>,
        epoch: u64,
    ) -> Result<(), Error> {
        let Some(meta) = self
            .geo
            .wait_for_epoch(epoch, self.settings.session_wait)
            .await
        else {
            return Err(self.unavailable(format!(
                "{} has applied epoch {epoch} but does not know its fork yet; retry shortly",
                self.replica.id()
            )));
        };
        session_lost(&meta, token)
    }

    /// A STRONG read across regions answers only once every region of
    /// the strong set holds the state it read. A write is applied (and
    /// readable) in the write region when it commits there, but is
    /// acknowledged only once the strong set has applied it; without this
    /// wait a strong read could return it while a strong-set region that
    /// lacks it still serves the next strong read without it. The state
    /// read is at most what this replica has applied now.
    async fn settle_strong(
        &self,
        consistency: Option<Consistency>,
        started: Instant,
    ) -> Result<(), Error> {
        if self.level(consistency)? != Consistency::Strong || self.geo.account().regions.len() < 2 {
            return Ok(());
        }
        let read = self.replica.applied().glsn;
        let remaining = self
            .settings
            .request_timeout
            .saturating_sub(started.elapsed());
        self.geo.wait_strong_held(read, remaining).await
    }

    async fn wait_session(&self, token: SessionToken) -> Result<(), Error> {
        let wait = self.settings.session_wait;
        match self.replica.wait_applied(wait, |a| a.glsn >= token.0).await {
            Some(_) => Ok(()),
            None => Err(Error::SessionNotAvailable {
                node: self.replica.id(),
                applied: self.replica.applied().glsn,
                token: token.0,
            }),
        }
    }

    /// A linearizable read at any replica: get the read index from the
    /// leader, then wait until this replica has applied it.
    async fn wait_read_index(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let index = self.read_indexer.read_index().await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self
            .replica
            .wait_applied(remaining, |a| a.index >= index)
            .await
        {
            Some(_) => Ok(()),
            None => Err(self.unavailable(format!(
                "{} did not apply the read index {index} in time",
                self.replica.id()
            ))),
        }
    }

    fn unavailable(&self, reason: String) -> Error {
        Error::unavailable(self.replica.region(), reason)
    }
}

/// SESSION_LOST when `token` lies past a fork `meta` knows of.
fn session_lost(meta: &MetaState, token: Option<SessionToken>) -> Result<(), Error> {
    match token.and_then(|t| meta.diverged(t.0).map(|fork| (t, fork))) {
        Some((token, fork)) => Err(Error::SessionLost {
            token: token.0,
            fork,
            epoch: meta.epoch,
        }),
        None => Ok(()),
    }
}

/// A conflict feed proposal's result as the client hears it: through the
/// one replica error mapping, so a feed change whose outcome is unknown
/// is never reported as safe to retry.
fn feed_proposed(
    region: &RegionId,
    proposed: Result<Vec<WriteOutcome>, ReplicaError>,
) -> Result<Vec<WriteOutcome>, Error> {
    proposed.map_err(|e| Error::from(e).in_region(region))
}

/// A feed delete's result: the GLSN of the delete, or NOT_FOUND when the
/// entry was not there.
fn feed_deleted(
    region: &RegionId,
    id: u64,
    proposed: Result<Vec<WriteOutcome>, ReplicaError>,
) -> Result<Glsn, Error> {
    match feed_proposed(region, proposed)?.first() {
        Some(WriteOutcome::Applied { glsn, .. }) => Ok(*glsn),
        _ => Err(Error::NotFound {
            container: "(conflict feed)".into(),
            key: id.to_string(),
        }),
    }
}

/// A client's write is well formed: container, key and (for a put) value
/// are within their limits.
fn validate_write(container: &str, key: &str, op: &WriteOp) -> Result<(), Error> {
    item::validate_container(container).map_err(invalid)?;
    item::validate_key(key).map_err(invalid)?;
    if let WriteOp::Put { value, .. } = op {
        item::validate_value(value).map_err(invalid)?;
    }
    Ok(())
}

fn invalid(e: item::InvalidInput) -> Error {
    Error::InvalidArgument(e.0)
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    use super::*;
    use crate::api::status::ERROR_METADATA_KEY;
    use crate::ids::NodeId;

    fn west() -> RegionId {
        RegionId::new("west")
    }

    fn unknown() -> ReplicaError {
        ReplicaError::OutcomeUnknown {
            reason: "w1 stopped before answering".into(),
        }
    }

    /// What a client receives for a conflict feed write that failed so.
    fn status_of(e: Error) -> (Code, String) {
        let status = Status::from(e);
        let name = status
            .metadata()
            .get(ERROR_METADATA_KEY)
            .expect("every status carries its error name")
            .to_str()
            .expect("error names are ASCII")
            .to_string();
        (status.code(), name)
    }

    #[test]
    fn a_feed_write_of_unknown_outcome_reaches_the_client_as_outcome_unknown() {
        let recorded = feed_proposed(&west(), Err(unknown())).unwrap_err();
        assert_eq!(
            status_of(recorded),
            (Code::DeadlineExceeded, "OUTCOME_UNKNOWN".to_string())
        );
        let deleted = feed_deleted(&west(), 7, Err(unknown())).unwrap_err();
        assert_eq!(
            status_of(deleted),
            (Code::DeadlineExceeded, "OUTCOME_UNKNOWN".to_string())
        );
    }

    #[test]
    fn a_feed_write_refused_before_it_was_appended_is_retryable_in_its_region() {
        let refused = ReplicaError::NotLeader {
            node: NodeId(2),
            leader: None,
        };
        let e = feed_deleted(&west(), 7, Err(refused)).unwrap_err();
        assert!(
            matches!(&e, Error::Unavailable { region: Some(r), .. } if r == &west()),
            "{e:?}"
        );
        assert_eq!(status_of(e), (Code::Unavailable, "UNAVAILABLE".to_string()));
    }

    #[test]
    fn a_feed_delete_of_a_missing_entry_is_not_found() {
        let glsn = Glsn::new(1, 9);
        let applied = WriteOutcome::Applied { glsn, etag: None };
        assert_eq!(feed_deleted(&west(), 7, Ok(vec![applied])), Ok(glsn));
        let e = feed_deleted(&west(), 7, Ok(vec![])).unwrap_err();
        assert_eq!(status_of(e), (Code::NotFound, "NOT_FOUND".to_string()));
    }
}
