//! The account a verify run drives: real `meridian server` processes (the
//! default), nodes in this process (`--in-process`), or nodes on the hosts
//! of a deterministic simulation (`--simulate`, `sim`). The runner and the
//! nemesis reach it through this for what only its owner can do: its nodes
//! and endpoints, the fault layer, stopping, pausing and restarting nodes.
//! Everything they read about it (status, leaders, the write region, state
//! digests, the conflict feed) goes through gRPC, the same for both kinds.

use std::time::Duration;

use futures::future::join_all;
use tonic::transport::Channel;

use crate::client::connect_channel;
use crate::config::AccountConfig;
use crate::fault::Faults;
use crate::ids::{NodeId, RegionId};
use crate::local::{LocalAccount, endpoint_of};
use crate::verify::procs::ProcAccount;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::admin_client::AdminClient;

/// How long one node may take to answer a status or account call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

pub enum Cluster {
    InProcess(LocalAccount),
    Processes(ProcAccount),
    #[cfg(feature = "simulation")]
    Simulated(crate::sim::account::SimAccount),
}

impl Cluster {
    pub fn account(&self) -> &AccountConfig {
        match self {
            Cluster::InProcess(a) => a.account(),
            Cluster::Processes(a) => a.account(),
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.account(),
        }
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.account().all_nodes().map(|n| n.id).collect()
    }

    /// The processes, in process mode.
    pub fn processes(&mut self) -> Option<&mut ProcAccount> {
        match self {
            Cluster::Processes(a) => Some(a),
            _ => None,
        }
    }

    pub fn regions(&self) -> Vec<RegionId> {
        self.account()
            .regions
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The nodes of `region`, up or not.
    pub fn region_nodes(&self, region: &RegionId) -> Vec<NodeId> {
        self.account()
            .region(region)
            .map(|r| r.nodes.iter().map(|n| n.id).collect())
            .unwrap_or_default()
    }

    pub fn endpoint(&self, id: NodeId) -> String {
        endpoint_of(self.account(), id)
    }

    /// Running and answering (not stopped, killed or paused).
    pub fn is_up(&self, id: NodeId) -> bool {
        match self {
            Cluster::InProcess(a) => a.node(id).is_some(),
            Cluster::Processes(a) => a.is_up(id),
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.is_up(id),
        }
    }

    /// The rules the run changes; [`Cluster::publish_faults`] after a
    /// change makes every node obey them.
    pub fn faults(&self) -> &Faults {
        match self {
            Cluster::InProcess(a) => a.faults(),
            Cluster::Processes(a) => a.faults(),
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.faults(),
        }
    }

    /// In-process nodes share the layer itself; each process gets a copy
    /// of the rules; a simulation also holds the links the rules cut.
    pub async fn publish_faults(&mut self) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.publish_faults().await,
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.sync_holds(),
        }
    }

    /// Removes every rule.
    pub async fn heal(&mut self) {
        self.faults().heal();
        self.publish_faults().await;
    }

    /// A clean stop in-process; SIGKILL for a process; a crash of its
    /// host in a simulation.
    pub async fn stop_node(&mut self, id: NodeId) {
        match self {
            Cluster::InProcess(a) => a.stop_node(id).await,
            Cluster::Processes(a) => a.kill_node(id).await,
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.crash_node(id),
        }
    }

    pub async fn restart_node(&mut self, id: NodeId) -> Result<(), String> {
        match self {
            Cluster::InProcess(a) => a.restart_node(id).await.map_err(|e| e.to_string()),
            Cluster::Processes(a) => a.restart_node(id).await,
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => {
                a.restart_node(id);
                Ok(())
            }
        }
    }

    /// A process can be paused (SIGSTOP), and a simulated host (its links
    /// held); in-process nodes share this process.
    pub fn can_pause(&self) -> bool {
        match self {
            Cluster::InProcess(_) => false,
            Cluster::Processes(_) => true,
            #[cfg(feature = "simulation")]
            Cluster::Simulated(_) => true,
        }
    }

    pub fn pause_node(&mut self, id: NodeId) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.pause_node(id),
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.pause_node(id),
        }
    }

    pub fn resume_node(&mut self, id: NodeId) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.resume_node(id),
            #[cfg(feature = "simulation")]
            Cluster::Simulated(a) => a.resume_node(id),
        }
    }

    pub async fn stop(self) {
        match self {
            Cluster::InProcess(a) => a.stop().await,
            Cluster::Processes(a) => a.stop().await,
            // The simulation ends its hosts when the run is over.
            #[cfg(feature = "simulation")]
            Cluster::Simulated(_) => {}
        }
    }

    /// Each up node's view of the account (write region, epoch), asked
    /// all at once; nodes that do not answer in time are left out.
    async fn account_views(&self) -> Vec<pb::AccountResponse> {
        let calls = self
            .node_ids()
            .into_iter()
            .filter(|id| self.is_up(*id))
            .map(|id| {
                let endpoint = self.endpoint(id);
                async move {
                    call_node(&endpoint, CALL_TIMEOUT, |channel| async move {
                        AdminClient::new(channel)
                            .account(pb::AccountRequest {})
                            .await
                    })
                    .await
                    .ok()
                }
            });
        join_all(calls).await.into_iter().flatten().collect()
    }

    /// The write region and epoch as the newest view among the up nodes
    /// names them: a node cut off earlier may still name a former one.
    pub async fn write_region(&self) -> Option<(RegionId, u64)> {
        self.account_views()
            .await
            .into_iter()
            .filter(|v| !v.write_region.is_empty())
            .max_by_key(|v| v.epoch)
            .map(|v| (RegionId::new(v.write_region), v.epoch))
    }

    /// The account status as `node` reports it, with every node's items
    /// digest when `digests` is set.
    pub async fn status_via(&self, node: NodeId, digests: bool) -> Option<pb::StatusResponse> {
        if !self.is_up(node) {
            return None;
        }
        let endpoint = self.endpoint(node);
        let timeout = if digests {
            CALL_TIMEOUT * 4
        } else {
            CALL_TIMEOUT
        };
        call_node(&endpoint, timeout, |channel| async move {
            AdminClient::new(channel)
                .max_decoding_message_size(crate::limits::GRPC_MESSAGE_BYTES_MAX)
                .status(pb::StatusRequest { digests })
                .await
        })
        .await
        .ok()
    }

    /// The status as the first up node of `region` that answers reports
    /// it (any up node when `region` is `None`).
    pub async fn status(
        &self,
        region: Option<&RegionId>,
        digests: bool,
    ) -> Option<pb::StatusResponse> {
        let nodes = match region {
            Some(r) => self.region_nodes(r),
            None => self.node_ids(),
        };
        for node in nodes {
            if let Some(status) = self.status_via(node, digests).await {
                return Some(status);
            }
        }
        None
    }

    /// The node every up member of `region` agrees leads it, once they
    /// agree (as `region`'s own nodes report); `None` after `timeout`.
    pub async fn wait_for_leader(&self, region: &RegionId, timeout: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.status(Some(region), false).await
                && let Some(leader) = agreed_leader(&status, region)
            {
                return Some(NodeId(leader.node_id));
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Connects to `endpoint` and makes one call, all within `timeout`; `Err`
/// says, in words, what failed.
pub async fn call_node<T, F, Fut>(endpoint: &str, timeout: Duration, call: F) -> Result<T, String>
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let answer = tokio::time::timeout(timeout, async {
        let channel = connect_channel(endpoint).await.map_err(|e| e.to_string())?;
        call(channel).await.map_err(|e| e.message().to_string())
    })
    .await;
    match answer {
        Ok(answer) => answer.map(tonic::Response::into_inner),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// The row of the leader every running node of `region` in `status`
/// names, if they agree and it is one of them.
pub fn agreed_leader<'a>(
    status: &'a pb::StatusResponse,
    region: &RegionId,
) -> Option<&'a pb::NodeStatus> {
    let members: Vec<&pb::NodeStatus> = status
        .nodes
        .iter()
        .filter(|n| n.region == region.as_str() && n.state == "running")
        .collect();
    let leader = *members.iter().find(|n| n.role == "leader")?;
    members
        .iter()
        .all(|n| n.leader_id == Some(leader.node_id))
        .then_some(leader)
}
