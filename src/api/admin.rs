//! The `Admin` gRPC service: account status (every region and node,
//! gathered over the replica transport), the account configuration as the
//! meta group holds it, failover priorities, and containers (created
//! through the meta group, `Geo::create_container`).

use std::time::Duration;

use futures::future::join_all;
use tonic::{Request, Response, Status};

use crate::container::ContainerSpec;
use crate::error::Error;
use crate::geo::acks::Lag;
use crate::ids::RegionId;
use crate::item;
use crate::meta::{MetaCommand, MetaReply, MetaState, ScheduledSwitchover};
use crate::node::messages::{NodeReply, NodeRequest, RegionReport};
use crate::node::regions::Geo;
use crate::raft::replica::{Replica, ReplicaStatus, Role};
use crate::wire::convert::{consistency_to_wire, container_policy_from_wire};
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::admin_server::{Admin as AdminRpc, AdminServer};

/// How long status waits for one region's report.
const REPORT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a priority change may take to commit.
const META_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a switchover may take: fence, catch-up, new epoch.
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(15);

pub struct AdminService {
    replica: Replica,
    geo: Geo,
}

impl AdminService {
    pub fn server(replica: Replica, geo: Geo) -> AdminServer<AdminService> {
        AdminServer::new(AdminService { replica, geo })
    }

    async fn region_report(&self, region: &RegionId) -> Option<RegionReport> {
        match self
            .geo
            .call_leader(region, &NodeRequest::RegionReport, REPORT_TIMEOUT)
            .await
        {
            Ok(NodeReply::Report(report)) => Some(*report),
            _ => None,
        }
    }

    async fn node_rows(&self, digests: bool) -> Vec<pb::NodeStatus> {
        let account = self.geo.account();
        let polls = account
            .nodes()
            .map(|(_, n)| self.replica.status_of(n.id, digests));
        let answers: Vec<Option<ReplicaStatus>> =
            join_all(polls).await.into_iter().map(Result::ok).collect();
        account
            .nodes()
            .zip(answers)
            .map(|((region, addr), answer)| node_row(region.name.as_str(), addr, answer))
            .collect()
    }
}

fn node_row(
    region: &str,
    addr: &crate::config::NodeAddress,
    answer: Option<ReplicaStatus>,
) -> pb::NodeStatus {
    let mut row = pb::NodeStatus {
        region: region.to_string(),
        node_id: addr.id.0,
        client_addr: addr.client_addr.to_string(),
        peer_addr: addr.peer_addr.to_string(),
        role: "unreachable".into(),
        state: "unreachable".into(),
        ..Default::default()
    };
    if let Some(s) = answer {
        row.role = s.role.as_str().into();
        row.state = if s.role == Role::Shutdown {
            "shutting_down"
        } else {
            "running"
        }
        .into();
        row.term = s.term;
        row.last_log_index = s.last_log_index;
        row.applied_index = s.applied_index;
        row.leader_id = s.leader.map(|l| l.0);
        row.applied_glsn = Some(s.applied_glsn.into());
        row.resyncing = s.resyncing;
        row.items_digest = s.items_digest;
    }
    row
}

/// The write region's name, or "" before the meta group formed the account.
fn write_region_name(meta: &MetaState) -> String {
    meta.write_region
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Entries `applied` is behind the leader's last log index.
pub fn lag_entries(leader_last_log_index: Option<u64>, applied_index: u64) -> Option<u64> {
    leader_last_log_index.map(|last| last.saturating_sub(applied_index))
}

/// Fills each node row's lag behind its own region leader.
fn fill_lag_entries(rows: &mut [pb::NodeStatus]) {
    let leaders: Vec<(String, u64)> = rows
        .iter()
        .filter(|r| r.role == Role::Leader.as_str())
        .map(|r| (r.region.clone(), r.last_log_index))
        .collect();
    for row in rows.iter_mut().filter(|r| r.state == "running") {
        let last = leaders
            .iter()
            .find(|(region, _)| *region == row.region)
            .map(|(_, l)| *l);
        row.lag_entries = lag_entries(last, row.applied_index);
    }
}

/// One status row per region, in `names` order; `reports[i]` is the
/// report of `names[i]` (`None` when its leader did not answer). The read
/// regions' lags come from the write region's report.
fn region_rows(
    meta: &MetaState,
    names: &[RegionId],
    reports: &[Option<RegionReport>],
) -> Vec<pb::RegionStatus> {
    let write_lags = meta
        .write_region
        .as_ref()
        .and_then(|w| names.iter().position(|r| r == w))
        .and_then(|i| reports[i].as_ref())
        .map(|w| w.lags.as_slice());
    names
        .iter()
        .zip(reports)
        .map(|(name, report)| region_row(meta, name, report.as_ref(), write_lags))
        .collect()
}

/// The status row of region `name`: its priority (1 is first, 0 when not
/// listed), role, state in the strong set, lease, applied GLSN and lag.
fn region_row(
    meta: &MetaState,
    name: &RegionId,
    report: Option<&RegionReport>,
    write_lags: Option<&[(RegionId, Lag)]>,
) -> pb::RegionStatus {
    let priority = meta
        .priorities
        .iter()
        .position(|p| p == name)
        .map_or(0, |i| i as u32 + 1);
    let is_write = meta.is_write_region(name);
    let lag = if is_write {
        Some(Lag::default())
    } else {
        write_lags
            .and_then(|lags| lags.iter().find(|(r, _)| r == name))
            .map(|(_, l)| *l)
    };
    pb::RegionStatus {
        name: name.to_string(),
        priority,
        role: if is_write { "write" } else { "read" }.into(),
        state: meta
            .region_state(name)
            .map_or("unknown", |s| s.as_str())
            .into(),
        lease_remaining_ms: report.and_then(|r| r.lease_remaining_ms),
        applied_glsn: report.map(|r| r.applied.into()),
        lag_ops: lag.map(|l| l.ops),
        lag_ms: lag.map(|l| l.ms),
        leader_id: report.and_then(|r| r.leader).map(|l| l.0),
        lease_failsafe: report.is_some_and(|r| r.failsafe),
    }
}

/// The account's configuration warnings, and a warning when the meta
/// group has not formed the account or the strong set lost its majority.
fn status_warnings(mut warnings: Vec<String>, meta: &MetaState) -> Vec<String> {
    if !meta.is_formed() {
        warnings.push("the meta group has not formed the account yet".into());
    } else if !meta.strong_set_has_majority() {
        warnings.push(
            "the strong set has lost its majority of regions: strong writes are unavailable".into(),
        );
    }
    warnings
}

#[tonic::async_trait]
impl AdminRpc for AdminService {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let digests = request.into_inner().digests;
        let meta = self.geo.meta_state();
        let account = self.geo.account();
        let mut nodes = self.node_rows(digests).await;
        fill_lag_entries(&mut nodes);
        let region_names: Vec<RegionId> = account.regions.iter().map(|r| r.name.clone()).collect();
        let reports: Vec<Option<RegionReport>> =
            join_all(region_names.iter().map(|r| self.region_report(r))).await;
        Ok(Response::new(pb::StatusResponse {
            account: account.name.clone(),
            nodes,
            write_region: write_region_name(&meta),
            epoch: meta.epoch,
            regions: region_rows(&meta, &region_names, &reports),
            warnings: status_warnings(account.warnings(), &meta),
            failover_enabled: meta.settings.as_ref().is_some_and(|s| s.failover),
            paused: meta.paused,
            transition: meta
                .transition
                .as_ref()
                .map(|t| format!("{} {} -> {}", t.reason.as_str(), t.from, t.to)),
            failover_blocked: meta.failover_blocked.clone(),
            scheduled: meta
                .scheduled
                .as_ref()
                .map(|s| format!("{} at {}", s.to, rfc3339_ms(s.at_ms))),
        }))
    }

    async fn account(
        &self,
        _request: Request<pb::AccountRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let meta = self.geo.meta_state();
        let account = self.geo.account();
        let voters = account.meta_voters();
        let node = |n: &crate::config::NodeAddress| pb::AccountNode {
            node_id: n.id.0,
            client_addr: n.client_addr.to_string(),
            meta_voter: voters.contains(&n.id),
        };
        let order: Vec<&RegionId> = if meta.priorities.is_empty() {
            account.regions.iter().map(|r| &r.name).collect()
        } else {
            meta.priorities.iter().collect()
        };
        let regions = order
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                account.region(name).map(|r| pb::AccountRegion {
                    name: name.to_string(),
                    priority: i as u32 + 1,
                    nodes: r.nodes.iter().map(node).collect(),
                })
            })
            .collect();
        let settings = meta.settings.clone();
        Ok(Response::new(pb::AccountResponse {
            account: account.name.clone(),
            write_mode: settings
                .as_ref()
                .map_or(account.write_mode, |s| s.write_mode)
                .as_str()
                .into(),
            default_consistency: consistency_to_wire(
                settings
                    .as_ref()
                    .map_or(account.default_consistency, |s| s.default_consistency),
            ),
            max_staleness_ops: settings
                .as_ref()
                .map_or(account.max_staleness_ops, |s| s.max_staleness_ops),
            max_staleness_ms: settings
                .as_ref()
                .map_or(account.max_staleness_ms, |s| s.max_staleness_ms),
            lease_ttl_ms: account.leases.ttl_ms,
            lease_renew_ms: account.leases.renew_ms,
            regions,
            witnesses: account.witnesses.iter().map(node).collect(),
            write_region: write_region_name(&meta),
            epoch: meta.epoch,
        }))
    }

    async fn set_priorities(
        &self,
        request: Request<pb::SetPrioritiesRequest>,
    ) -> Result<Response<pb::SetPrioritiesResponse>, Status> {
        let order: Vec<RegionId> = request
            .into_inner()
            .regions
            .into_iter()
            .map(RegionId::new)
            .collect();
        let meta = self.geo.meta_state();
        meta.check_priorities(&order).map_err(Error::from)?;
        let reply = self
            .geo
            .meta()
            .propose(
                MetaCommand::SetPriorities(order.clone()),
                META_WRITE_TIMEOUT,
            )
            .await
            .map_err(|e| Status::from(Error::meta_unavailable(e)))?;
        if let MetaReply::Refused(why) = reply {
            return Err(Error::from(why).into());
        }
        // A new first choice is a switchover to it.
        if !meta.is_write_region(&order[0]) {
            self.geo.switchover(&order[0], SWITCHOVER_TIMEOUT).await?;
        }
        Ok(Response::new(pb::SetPrioritiesResponse {
            regions: order.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn failover(
        &self,
        request: Request<pb::FailoverRequest>,
    ) -> Result<Response<pb::FailoverResponse>, Status> {
        let request = request.into_inner();
        if request.cancel_scheduled {
            if !request.to.is_empty() || request.scheduled_at_ms.is_some() {
                return Err(Error::InvalidArgument(
                    "cancel_scheduled takes no target and no time".into(),
                )
                .into());
            }
            let Some(cancelled) = self.geo.meta_state().scheduled else {
                return Err(Error::Refused("no switchover is scheduled".into()).into());
            };
            self.meta_write(MetaCommand::Schedule(None)).await?;
            return Ok(Response::new(pb::FailoverResponse {
                write_region: write_region_name(&self.geo.meta_state()),
                cancelled_to: cancelled.to.to_string(),
                cancelled_at_ms: Some(cancelled.at_ms),
                ..Default::default()
            }));
        }
        let to = RegionId::new(request.to);
        if let Some(at_ms) = request.scheduled_at_ms {
            check_scheduled_at(at_ms, crate::clock::wall_ms())?;
            let scheduled = ScheduledSwitchover {
                to: to.clone(),
                at_ms,
            };
            self.meta_write(MetaCommand::Schedule(Some(scheduled)))
                .await?;
            return Ok(Response::new(pb::FailoverResponse {
                epoch: None,
                fork: None,
                write_region: write_region_name(&self.geo.meta_state()),
                scheduled: true,
                ..Default::default()
            }));
        }
        let change = self.geo.switchover(&to, SWITCHOVER_TIMEOUT).await?;
        Ok(Response::new(pb::FailoverResponse {
            epoch: Some(change.epoch),
            fork: Some(change.fork.into()),
            write_region: change.to.to_string(),
            scheduled: false,
            ..Default::default()
        }))
    }

    async fn pause(
        &self,
        _request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        self.meta_write(MetaCommand::SetPaused(true)).await?;
        Ok(Response::new(pb::PauseResponse { paused: true }))
    }

    async fn resume(
        &self,
        _request: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        self.meta_write(MetaCommand::SetPaused(false)).await?;
        Ok(Response::new(pb::PauseResponse { paused: false }))
    }

    async fn history(
        &self,
        _request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let changes = self
            .geo
            .meta_state()
            .history
            .iter()
            .map(|c| pb::EpochChange {
                epoch: c.epoch,
                fork: Some(c.fork.into()),
                reason: c.reason.as_str().into(),
                from_region: c.from.to_string(),
                to_region: c.to.to_string(),
                at_ms: c.at_ms,
            })
            .collect();
        Ok(Response::new(pb::HistoryResponse { changes }))
    }

    async fn create_container(
        &self,
        request: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let request = request.into_inner();
        item::validate_container(&request.name).map_err(|e| Error::InvalidArgument(e.0))?;
        let policy = container_policy_from_wire(&request.policy, !request.no_feed_for_lww)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let spec = ContainerSpec {
            name: request.name,
            policy,
        };
        let created = self.geo.create_container(spec, META_WRITE_TIMEOUT).await?;
        Ok(Response::new(pb::CreateContainerResponse {
            container: Some((&created).into()),
        }))
    }

    async fn list_containers(
        &self,
        _request: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let containers = self.geo.containers().iter().map(Into::into).collect();
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn get_container(
        &self,
        request: Request<pb::GetContainerRequest>,
    ) -> Result<Response<pb::GetContainerResponse>, Status> {
        let name = request.into_inner().name;
        item::validate_container(&name).map_err(|e| Error::InvalidArgument(e.0))?;
        let spec = self
            .geo
            .container(&name)
            .ok_or(Error::ContainerNotFound { container: name })?;
        Ok(Response::new(pb::GetContainerResponse {
            container: Some((&spec).into()),
        }))
    }
}

impl AdminService {
    /// Commits `command` through the meta group; a refusal is the
    /// caller's mistake.
    async fn meta_write(&self, command: MetaCommand) -> Result<(), Status> {
        match self.geo.meta().propose(command, META_WRITE_TIMEOUT).await {
            Ok(MetaReply::Refused(why)) => Err(Error::from(why).into()),
            Ok(_) => Ok(()),
            Err(e) => Err(Status::from(Error::meta_unavailable(e))),
        }
    }
}

/// `ms` since the Unix epoch as RFC 3339 (UTC, whole seconds).
fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A scheduled switchover must lie in the future: one in the past would
/// start at once, which a caller asking for a time did not mean (the CLI
/// refuses it too; other clients reach the server directly).
fn check_scheduled_at(at_ms: u64, now_ms: u64) -> Result<(), Error> {
    if at_ms <= now_ms {
        return Err(Error::InvalidArgument(format!(
            "scheduled_at_ms {at_ms} is not in the future (now is {now_ms} ms since the Unix epoch); leave it out to switch over now"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_unknown_without_a_leader_and_never_negative() {
        assert_eq!(lag_entries(None, 5), None);
        assert_eq!(lag_entries(Some(10), 7), Some(3));
        assert_eq!(lag_entries(Some(10), 12), Some(0));
    }

    #[test]
    fn a_scheduled_switchover_must_lie_in_the_future() {
        assert_eq!(check_scheduled_at(1_001, 1_000), Ok(()));
        for at in [0, 1, 999, 1_000] {
            let Err(Error::InvalidArgument(why)) = check_scheduled_at(at, 1_000) else {
                panic!("accepted a switchover scheduled at {at} ms, now 1000");
            };
            assert!(why.contains("not in the future"), "{why}");
        }
    }
}
