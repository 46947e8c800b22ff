//! The `Admin` gRPC service: account status, gathered from every node of
//! the region over the replica transport.

use std::sync::Arc;

use futures::future::join_all;
use tonic::{Request, Response, Status};

use crate::config::AccountConfig;
use crate::raft::replica::{Replica, ReplicaStatus, Role};
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::admin_server::{Admin as AdminRpc, AdminServer};

pub struct AdminService {
    replica: Replica,
    account: Arc<AccountConfig>,
}

impl AdminService {
    pub fn server(replica: Replica, account: Arc<AccountConfig>) -> AdminServer<AdminService> {
        AdminServer::new(AdminService { replica, account })
    }
}

/// Entries `applied` is behind the leader's last log index.
pub fn lag_entries(leader_last_log_index: Option<u64>, applied_index: u64) -> Option<u64> {
    leader_last_log_index.map(|last| last.saturating_sub(applied_index))
}

#[tonic::async_trait]
impl AdminRpc for AdminService {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let Some(region) = self.account.region_of(self.replica.id()) else {
            return Err(Status::internal("this node is in no region of its account"));
        };
        let polls = region.nodes.iter().map(|n| self.replica.status_of(n.id));
        let answers: Vec<Option<ReplicaStatus>> =
            join_all(polls).await.into_iter().map(Result::ok).collect();
        let leader_last_log = answers
            .iter()
            .flatten()
            .find(|s| s.role == Role::Leader)
            .map(|s| s.last_log_index);
        let nodes = region
            .nodes
            .iter()
            .zip(answers)
            .map(|(addr, answer)| {
                let mut row = pb::NodeStatus {
                    region: region.name.to_string(),
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
                    row.lag_entries = lag_entries(leader_last_log, s.applied_index);
                    row.leader_id = s.leader.map(|l| l.0);
                    row.applied_glsn = Some(s.applied_glsn.into());
                }
                row
            })
            .collect();
        Ok(Response::new(pb::StatusResponse {
            account: self.account.name.clone(),
            nodes,
            ..Default::default()
        }))
    }

    async fn account(
        &self,
        _request: Request<pb::AccountRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        Err(Status::unimplemented(
            "account: arrives with the meta group",
        ))
    }

    async fn set_priorities(
        &self,
        _request: Request<pb::SetPrioritiesRequest>,
    ) -> Result<Response<pb::SetPrioritiesResponse>, Status> {
        Err(Status::unimplemented(
            "priorities: arrive with the meta group",
        ))
    }
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
}
