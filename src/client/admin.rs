//! The [`Client`]'s requests to the `Admin`, `Conflicts` and `Faults`
//! services, answered in domain types (`status`, `account`, `failover`,
//! `conflicts`, `containers`): what the `meridian` admin, failover, conflict feed and
//! fault commands and the verify harness call.
//!
//! Admin commands talk to one node ([`connect_admin`]): the endpoint
//! given, or a node of the region the operator named, which is the view
//! they asked for; a request that may wait for a switchover needs a
//! longer timeout than a key-value request ([`SWITCHOVER_CALL_TIMEOUT`]).
//! Requests that change the account are [`CallKind::Write`]: a routed
//! client retries them only when they were refused before they applied.

use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::Code;

use crate::client::account::Account;
use crate::client::channels::{admin, conflicts, connect_channel_timed, faults, timed};
use crate::client::conflicts::FeedMessage;
use crate::client::containers::Container;
use crate::client::errors::{CallKind, ClientError, ErrorDetail, classify};
use crate::client::failover::{CancelledSwitchover, EpochChange, Switchover};
use crate::client::lag::ReplicationLag;
use crate::client::requests::Client;
use crate::client::status::AccountStatus;
use crate::client::topology::Route;
use crate::fault::LinkRule;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::wire::convert::{clock_offset_to_wire, link_rule_to_wire};
use crate::wire::pb::v1 as pb;

/// The timeout of an admin request that may change the write region: the
/// server gives a switchover 15 s (fence, catch-up, new epoch), and its
/// answer needs a moment more.
pub const SWITCHOVER_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The timeout of every other admin request.
pub const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A direct client for admin requests of up to `timeout` each: to
/// `endpoint`, or, when `preferred` names regions, to the first node of
/// theirs (first region first) that accepts a connection.
///
/// The preferred regions' nodes come from `Admin.Account` (the configured
/// nodes), not from the status: a node cut off from a region reports all
/// of its nodes unreachable, yet a client can still reach them, and that
/// is exactly when an operator asks another region (`--region east`).
pub async fn connect_admin(
    endpoint: &str,
    preferred: &[String],
    timeout: Duration,
) -> Result<Client, ClientError> {
    let first =
        Client::direct_with_timeout(connect_channel_timed(endpoint, timeout).await?, timeout);
    if preferred.is_empty() {
        return Ok(first);
    }
    let candidates = first
        .account()
        .await?
        .region_endpoints(preferred)
        .map_err(|message| ClientError::Server {
            code: Code::InvalidArgument,
            message,
            detail: ErrorDetail::default(),
        })?;
    for candidate in &candidates {
        if let Ok(channel) = connect_channel_timed(candidate, timeout).await {
            return Ok(Client::direct_with_timeout(channel, timeout));
        }
    }
    Err(ClientError::Unavailable {
        code: Code::Unavailable,
        message: format!("no node answered (tried {})", candidates.join(", ")),
        detail: ErrorDetail::default(),
    })
}

impl Client {
    /// The account as the node reads would go to sees it.
    pub async fn status(&self) -> Result<AccountStatus, ClientError> {
        self.status_with(false).await
    }

    /// [`Client::status`], with every node's digest of the items it holds
    /// when `digests` (slower: each node hashes its items).
    pub async fn status_with(&self, digests: bool) -> Result<AccountStatus, ClientError> {
        let response = self
            .call(CallKind::Read, Route::Reads, move |channel, timeout| {
                let req = timed(pb::StatusRequest { digests }, timeout);
                async move { admin(channel).status(req).await }
            })
            .await?;
        Ok(response.into())
    }

    /// Each read region's replication lag, from the account status.
    pub async fn replication_lag(&self) -> Result<ReplicationLag, ClientError> {
        Ok(ReplicationLag::from_status(&self.status().await?))
    }

    /// The account configuration as the meta group holds it.
    pub async fn account(&self) -> Result<Account, ClientError> {
        let response = self
            .call(CallKind::Read, Route::Reads, |channel, timeout| {
                let req = timed(pb::AccountRequest {}, timeout);
                async move { admin(channel).account(req).await }
            })
            .await?;
        Ok(response.into())
    }

    /// Sets the failover priorities: every region of the account once,
    /// first choice first. Returns the order the meta group committed.
    /// Any node proposes it to the meta group, so it goes where reads go.
    pub async fn set_priorities(&self, regions: Vec<String>) -> Result<Vec<String>, ClientError> {
        let response = self
            .call(CallKind::Write, Route::Reads, move |channel, timeout| {
                let req = timed(
                    pb::SetPrioritiesRequest {
                        regions: regions.clone(),
                    },
                    timeout,
                );
                async move { admin(channel).set_priorities(req).await }
            })
            .await?;
        Ok(response.regions)
    }

    /// A switchover to `to`, now or at `scheduled_at_ms` (ms since the
    /// Unix epoch). Done now, it returns once the new epoch began.
    pub async fn failover(
        &self,
        to: &str,
        scheduled_at_ms: Option<u64>,
    ) -> Result<Switchover, ClientError> {
        let request = pb::FailoverRequest {
            to: to.to_string(),
            scheduled_at_ms,
            cancel_scheduled: false,
        };
        Ok(self.failover_request(request).await?.into())
    }

    /// Cancels the scheduled switchover.
    pub async fn cancel_switchover(&self) -> Result<CancelledSwitchover, ClientError> {
        let request = pb::FailoverRequest {
            cancel_scheduled: true,
            ..Default::default()
        };
        Ok(self.failover_request(request).await?.into())
    }

    async fn failover_request(
        &self,
        request: pb::FailoverRequest,
    ) -> Result<pb::FailoverResponse, ClientError> {
        self.call(CallKind::Write, Route::Reads, move |channel, timeout| {
            let req = timed(request.clone(), timeout);
            async move { admin(channel).failover(req).await }
        })
        .await
    }

    /// Maintenance mode on (`paused`) or off; returns whether it is on.
    pub async fn set_paused(&self, paused: bool) -> Result<bool, ClientError> {
        let response = self
            .call(
                CallKind::Write,
                Route::Reads,
                move |channel, timeout| async move {
                    if paused {
                        admin(channel)
                            .pause(timed(pb::PauseRequest {}, timeout))
                            .await
                    } else {
                        admin(channel)
                            .resume(timed(pb::ResumeRequest {}, timeout))
                            .await
                    }
                },
            )
            .await?;
        Ok(response.paused)
    }

    /// Every change of write region, oldest first.
    pub async fn history(&self) -> Result<Vec<EpochChange>, ClientError> {
        let response = self
            .call(CallKind::Read, Route::Reads, |channel, timeout| {
                let req = timed(pb::HistoryRequest {}, timeout);
                async move { admin(channel).history(req).await }
            })
            .await?;
        Ok(response
            .changes
            .into_iter()
            .map(EpochChange::from)
            .collect())
    }

    /// Creates container `name` with `policy` (`lww`, `lww:/path`,
    /// `custom`, `counter`, `set`, `register`); `no_feed_for_lww` keeps
    /// lww losers out of the conflict feed. The same policy again is a
    /// success; another one is refused (FAILED_PRECONDITION).
    pub async fn create_container(
        &self,
        name: &str,
        policy: &str,
        no_feed_for_lww: bool,
    ) -> Result<Container, ClientError> {
        let request = pb::CreateContainerRequest {
            name: name.to_string(),
            policy: policy.to_string(),
            no_feed_for_lww,
        };
        let response = self
            .call(CallKind::Write, Route::Reads, move |channel, timeout| {
                let req = timed(request.clone(), timeout);
                async move { admin(channel).create_container(req).await }
            })
            .await?;
        Ok(response.container.unwrap_or_default().into())
    }

    /// Every container, by name, as the answering node knows them.
    pub async fn containers(&self) -> Result<Vec<Container>, ClientError> {
        let response = self
            .call(CallKind::Read, Route::Reads, |channel, timeout| {
                let req = timed(pb::ListContainersRequest {}, timeout);
                async move { admin(channel).list_containers(req).await }
            })
            .await?;
        Ok(response.containers.into_iter().map(Into::into).collect())
    }

    /// The container `name`; NOT_FOUND when it does not exist.
    pub async fn container(&self, name: &str) -> Result<Container, ClientError> {
        let name = name.to_string();
        let response = self
            .call(CallKind::Read, Route::Reads, move |channel, timeout| {
                let req = timed(pb::GetContainerRequest { name: name.clone() }, timeout);
                async move { admin(channel).get_container(req).await }
            })
            .await?;
        Ok(response.container.unwrap_or_default().into())
    }

    /// The conflict feed after `continuation` (empty: from the oldest
    /// entry), oldest first; with `follow` it stays open for new entries.
    /// The stream ends after an error.
    pub async fn conflict_feed(
        &self,
        continuation: &str,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<FeedMessage, ClientError>> + Unpin + Send, ClientError>
    {
        let request = pb::ReadFeedRequest {
            continuation: continuation.to_string(),
            follow,
        };
        // No `grpc-timeout`: a followed feed stays open as long as the
        // reader wants; the channel's timeout bounds the wait for its start.
        let feed = self
            .call(CallKind::Read, Route::Reads, move |channel, _| {
                let req = tonic::Request::new(request.clone());
                async move { conflicts(channel).read_feed(req).await }
            })
            .await?;
        Ok(feed.map(|message| {
            message
                .map(FeedMessage::from)
                .map_err(|status| classify(status, CallKind::Read))
        }))
    }

    /// Deletes entry `id` from the conflict feed (committed at the write
    /// region); returns the GLSN that recorded the deletion.
    pub async fn delete_conflict(&self, id: u64) -> Result<Option<Glsn>, ClientError> {
        let response = self
            .call(CallKind::Write, Route::Reads, move |channel, timeout| {
                let req = timed(pb::DeleteConflictRequest { id }, timeout);
                async move { conflicts(channel).delete(req).await }
            })
            .await?;
        Ok(response.glsn.map(Glsn::from))
    }

    /// Cuts `region` off from the rest of an account run by `meridian
    /// dev`; returns the regions cut off now.
    pub async fn isolate_region(&self, region: &RegionId) -> Result<Vec<RegionId>, ClientError> {
        self.apply_faults(pb::FaultRequest {
            action: pb::FaultAction::Isolate as i32,
            region: region.to_string(),
            ..Default::default()
        })
        .await
    }

    /// Removes every injected fault; returns the regions still cut off.
    pub async fn heal_faults(&self) -> Result<Vec<RegionId>, ClientError> {
        self.apply_faults(pb::FaultRequest {
            action: pb::FaultAction::Heal as i32,
            ..Default::default()
        })
        .await
    }

    /// Replaces the node's fault rules with `links` and its clock offsets
    /// with `clocks`: how `meridian verify` steers nodes it runs as
    /// processes.
    pub async fn replace_faults(
        &self,
        links: &[LinkRule],
        clocks: &[(NodeId, i64)],
    ) -> Result<Vec<RegionId>, ClientError> {
        self.apply_faults(pb::FaultRequest {
            action: pb::FaultAction::Replace as i32,
            links: links.iter().map(link_rule_to_wire).collect(),
            clocks: clocks.iter().copied().map(clock_offset_to_wire).collect(),
            ..Default::default()
        })
        .await
    }

    async fn apply_faults(&self, request: pb::FaultRequest) -> Result<Vec<RegionId>, ClientError> {
        let response = self
            .call(CallKind::Write, Route::Reads, move |channel, timeout| {
                let req = timed(request.clone(), timeout);
                async move { faults(channel).apply(req).await }
            })
            .await?;
        Ok(response.isolated.into_iter().map(RegionId::new).collect())
    }
}
