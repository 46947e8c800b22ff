//! The account a verify run drives: real `meridian server` processes (the
//! default), nodes in this process (`--in-process`), or an account another
//! module owns behind [`AccountOwner`] (the deterministic simulation,
//! `--simulate`, implements it; this module never names it). The runner
//! and the nemesis reach it through this for what only its owner can do:
//! its nodes and endpoints, the fault layer, stopping, pausing and
//! restarting nodes. Everything they read about it (status, leaders, the
//! write region, state digests, the conflict feed) goes through the
//! client, the same for every kind.

use std::time::Duration;

use futures::future::join_all;

use crate::client::NODE_STATE_RUNNING;
use crate::client::account::Account;
use crate::client::status::{AccountStatus, NodeStatus};
use crate::config::AccountConfig;
use crate::fault::Faults;
use crate::ids::{NodeId, RegionId};
use crate::local::{LocalAccount, endpoint_of};
use crate::verify::calls::with_node;
use crate::verify::procs::ProcAccount;

/// How long one node may take to answer a status or account call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

pub enum Cluster {
    InProcess(LocalAccount),
    Processes(ProcAccount),
    /// An account whose owner acts at once (the simulation's hosts).
    Owned(Box<dyn AccountOwner>),
}

/// What only the owner of an account can do to it, done at once: the
/// deterministic simulation crashes, restarts, pauses and cuts its hosts
/// this way, and then stops them all itself when the run is over.
pub trait AccountOwner: Send {
    fn account(&self) -> &AccountConfig;
    /// Running and answering.
    fn is_up(&self, id: NodeId) -> bool;
    fn faults(&self) -> &Faults;
    /// Makes the nodes obey [`AccountOwner::faults`] after a change.
    fn sync_faults(&mut self);
    /// Stops `id` as a power loss would.
    fn crash_node(&mut self, id: NodeId);
    fn restart_node(&mut self, id: NodeId);
    fn pause_node(&mut self, id: NodeId);
    fn resume_node(&mut self, id: NodeId);
}

impl Cluster {
    pub fn account(&self) -> &AccountConfig {
        match self {
            Cluster::InProcess(a) => a.account(),
            Cluster::Processes(a) => a.account(),
            Cluster::Owned(a) => a.account(),
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
            Cluster::Owned(a) => a.is_up(id),
        }
    }

    /// The rules the run changes; [`Cluster::publish_faults`] after a
    /// change makes every node obey them.
    pub fn faults(&self) -> &Faults {
        match self {
            Cluster::InProcess(a) => a.faults(),
            Cluster::Processes(a) => a.faults(),
            Cluster::Owned(a) => a.faults(),
        }
    }

    /// In-process nodes share the layer itself; each process gets a copy
    /// of the rules; a simulation also holds the links the rules cut.
    pub async fn publish_faults(&mut self) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.publish_faults().await,
            Cluster::Owned(a) => a.sync_faults(),
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
            Cluster::Owned(a) => a.crash_node(id),
        }
    }

    pub async fn restart_node(&mut self, id: NodeId) -> Result<(), String> {
        match self {
            Cluster::InProcess(a) => a.restart_node(id).await.map_err(|e| e.to_string()),
            Cluster::Processes(a) => a.restart_node(id).await,
            Cluster::Owned(a) => {
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
            Cluster::Owned(_) => true,
        }
    }

    pub fn pause_node(&mut self, id: NodeId) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.pause_node(id),
            Cluster::Owned(a) => a.pause_node(id),
        }
    }

    pub fn resume_node(&mut self, id: NodeId) {
        match self {
            Cluster::InProcess(_) => {}
            Cluster::Processes(a) => a.resume_node(id),
            Cluster::Owned(a) => a.resume_node(id),
        }
    }

    pub async fn stop(self) {
        match self {
            Cluster::InProcess(a) => a.stop().await,
            Cluster::Processes(a) => a.stop().await,
            // Its owner ends its nodes when the run is over.
            Cluster::Owned(_) => {}
        }
    }

    /// Each up node's view of the account (write region, epoch), asked
    /// all at once; nodes that do not answer in time are left out.
    async fn account_views(&self) -> Vec<Account> {
        let calls = self
            .node_ids()
            .into_iter()
            .filter(|id| self.is_up(*id))
            .map(|id| {
                let endpoint = self.endpoint(id);
                async move {
                    with_node(&endpoint, CALL_TIMEOUT, |client| async move {
                        client.account().await
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
            .filter(|v| !v.write_region.as_str().is_empty())
            .max_by_key(|v| v.epoch)
            .map(|v| (v.write_region, v.epoch))
    }

    /// The account status as `node` reports it, with every node's items
    /// digest when `digests` is set.
    pub async fn status_via(&self, node: NodeId, digests: bool) -> Option<AccountStatus> {
        if !self.is_up(node) {
            return None;
        }
        let endpoint = self.endpoint(node);
        let timeout = if digests {
            CALL_TIMEOUT * 4
        } else {
            CALL_TIMEOUT
        };
        with_node(&endpoint, timeout, |client| async move {
            client.status_with(digests).await
        })
        .await
        .ok()
    }

    /// The status as the first up node of `region` that answers reports
    /// it (any up node when `region` is `None`).
    pub async fn status(&self, region: Option<&RegionId>, digests: bool) -> Option<AccountStatus> {
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
                return Some(leader.node_id);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The row of the leader every running node of `region` in `status`
/// names, if they agree and it is one of them.
pub fn agreed_leader<'a>(status: &'a AccountStatus, region: &RegionId) -> Option<&'a NodeStatus> {
    let members: Vec<&NodeStatus> = status
        .nodes
        .iter()
        .filter(|n| n.region == *region && n.state == NODE_STATE_RUNNING)
        .collect();
    let leader = *members.iter().find(|n| n.role == "leader")?;
    members
        .iter()
        .all(|n| n.leader_id == Some(leader.node_id))
        .then_some(leader)
}
