//! An account whose nodes all run in this process on loopback: what
//! `meridian dev` serves and what the integration tests drive. Nodes share
//! one fault layer, so a test can cut links between them, and each can be
//! stopped and restarted on the same addresses and data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    AccountConfig, Config, FailoverConfig, GeoConfig, LeaseConfig, NodeAddress, NodeSection,
    RaftConfig, ReadConfig, RegionConfig, TransportConfig, WriteMode,
};
use crate::consistency::Consistency;
use crate::fault::{FaultInjection, Faults};
use crate::ids::{NodeId, RegionId};
use crate::raft::replica::Role;
use crate::server::{Listeners, Node, StartError};
use crate::storage::config::StorageConfig;

/// Region names `meridian dev` uses, in priority order.
pub const DEV_REGION_NAMES: [&str; 3] = ["west", "east", "north"];

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub account: String,
    pub regions: usize,
    pub replicas: usize,
    pub data_dir: PathBuf,
    /// Where the nodes' ports start (see `node_ports`); 0 picks every
    /// port free.
    pub base_port: u16,
    pub default_consistency: Consistency,
    pub raft: RaftConfig,
    pub storage: StorageConfig,
    pub transport: TransportConfig,
    pub reads: ReadConfig,
    pub geo: GeoConfig,
    pub leases: LeaseConfig,
    pub failover: FailoverConfig,
    /// Bounded-staleness K and T.
    pub max_staleness_ops: u64,
    pub max_staleness_ms: u64,
    /// Witness nodes (meta voters holding no items) to add.
    pub witnesses: usize,
    /// Seeds the fault layer's random drops.
    pub seed: u64,
}

impl LocalOptions {
    /// Region nodes and witnesses: nodes 1 to this, in that order.
    pub fn node_count(&self) -> usize {
        self.regions * self.replicas + self.witnesses
    }

    /// The account these options describe, its nodes (region by region,
    /// then the witnesses) at `addresses` (client, peer), one per node.
    pub fn account_config(&self, addresses: &[(SocketAddr, SocketAddr)]) -> AccountConfig {
        let mut next = addresses
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| NodeAddress {
                id: NodeId(i as u64 + 1),
                client_addr: *client,
                peer_addr: *peer,
            });
        let regions = (0..self.regions)
            .map(|r| RegionConfig {
                name: RegionId::new(
                    DEV_REGION_NAMES
                        .get(r)
                        .map_or_else(|| format!("region{}", r + 1), |n| n.to_string()),
                ),
                nodes: next.by_ref().take(self.replicas).collect(),
            })
            .collect();
        AccountConfig {
            name: self.account.clone(),
            default_consistency: self.default_consistency,
            write_mode: WriteMode::SingleWrite,
            max_staleness_ops: self.max_staleness_ops,
            max_staleness_ms: self.max_staleness_ms,
            regions,
            meta_voters: Vec::new(),
            witnesses: next.take(self.witnesses).collect(),
            leases: self.leases.clone(),
            failover: self.failover.clone(),
        }
    }

    /// Node `id`'s configuration in `account`; its data directory is
    /// `<data_dir>/<region>/<node>`.
    pub fn node_config(&self, account: &AccountConfig, id: NodeId) -> Config {
        let region = account
            .region_of(id)
            .map_or_else(|| "witness".to_string(), |r| r.name.to_string());
        Config {
            node: NodeSection {
                id,
                data_dir: self.data_dir.join(region).join(id.to_string()),
                client_listen: None,
                peer_listen: None,
            },
            account: account.clone(),
            raft: self.raft.clone(),
            storage: self.storage.clone(),
            transport: self.transport.clone(),
            reads: self.reads.clone(),
            geo: self.geo.clone(),
        }
    }

    pub fn new(data_dir: &Path) -> Self {
        Self {
            account: "dev".into(),
            regions: 1,
            replicas: 4,
            data_dir: data_dir.to_path_buf(),
            base_port: 0,
            default_consistency: Consistency::Strong,
            raft: RaftConfig::default(),
            // Several nodes share one machine: a smaller cache each.
            storage: StorageConfig {
                cache_capacity_bytes: 32 * 1024 * 1024,
                ..StorageConfig::default()
            },
            transport: TransportConfig::default(),
            reads: ReadConfig::default(),
            geo: GeoConfig {
                // Many nodes share one machine: a smaller geo log each.
                log_cap_bytes: 64 * 1024 * 1024,
                ..GeoConfig::default()
            },
            leases: LeaseConfig::default(),
            failover: FailoverConfig::default(),
            max_staleness_ops: 100_000,
            max_staleness_ms: 5_000,
            witnesses: 0,
            seed: 0,
        }
    }
}

pub struct LocalAccount {
    options: LocalOptions,
    account: AccountConfig,
    faults: Faults,
    nodes: BTreeMap<NodeId, Option<Node>>,
    /// A stopped node's addresses, held by placeholder listeners until it
    /// restarts: another process binding port 0 meanwhile could otherwise
    /// be handed a freed port, and the restart would find it taken.
    reserved: BTreeMap<NodeId, Vec<tokio::net::TcpSocket>>,
}

/// The URI a client reaches node `id` of `account` at (port 0, refused
/// at once, for a node the account does not have).
pub fn endpoint_of(account: &AccountConfig, id: NodeId) -> String {
    let addr = account
        .node(id)
        .map(|n| n.client_addr)
        .unwrap_or_else(|| loopback(0));
    format!("http://{addr}")
}

/// Ports each node takes from the base port: its client port, then its
/// peer port.
pub const PORTS_PER_NODE: u16 = 2;

/// The (client, peer) ports of the node at `index` (node `index + 1`) from
/// `base`: node n serves clients on `base + 2(n-1)` and peers on the port
/// after. All zero (free ports) for base 0; `None` past port 65535.
pub fn node_ports(base: u16, index: usize) -> Option<(u16, u16)> {
    if base == 0 {
        return Some((0, 0));
    }
    let index = u16::try_from(index).ok()?;
    let client = base.checked_add(index.checked_mul(PORTS_PER_NODE)?)?;
    Some((client, client.checked_add(1)?))
}

/// The ports of `nodes` nodes from `base`, or a message saying why the
/// range does not fit.
fn all_node_ports(base: u16, nodes: usize) -> Result<Vec<(u16, u16)>, StartError> {
    (0..nodes)
        .map(|i| node_ports(base, i))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            crate::config::ConfigError {
                problems: vec![format!(
                    "base port {base}: {nodes} nodes need {} ports from it, past port {}",
                    nodes * PORTS_PER_NODE as usize,
                    u16::MAX
                )],
            }
            .into()
        })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl LocalAccount {
    pub async fn start(options: LocalOptions) -> Result<LocalAccount, StartError> {
        let mut listeners = Vec::new();
        for (client, peer) in all_node_ports(options.base_port, options.node_count())? {
            listeners.push(Listeners::bind(loopback(client), loopback(peer)).await?);
        }
        let addresses = listeners
            .iter()
            .map(|l| Ok((addr_of(&l.client)?, addr_of(&l.peer)?)))
            .collect::<Result<Vec<_>, StartError>>()?;
        let account = options.account_config(&addresses);
        let mut local = LocalAccount {
            faults: Faults::new(options.seed),
            options,
            account,
            nodes: BTreeMap::new(),
            reserved: BTreeMap::new(),
        };
        for (i, bound) in listeners.into_iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            let node = Node::start_with(local.config_of(id), bound, local.injection()).await?;
            local.nodes.insert(id, Some(node));
        }
        Ok(local)
    }

    pub fn config_of(&self, id: NodeId) -> Config {
        self.options.node_config(&self.account, id)
    }

    pub fn account(&self) -> &AccountConfig {
        &self.account
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every node shares this account's fault layer, and serves
    /// `Admin.Fault` on it: `meridian fault` works against `meridian dev`.
    fn injection(&self) -> FaultInjection {
        FaultInjection::InProcess(self.faults.clone())
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// A running node, or `None` when it is stopped.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id).and_then(Option::as_ref)
    }

    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().flatten()
    }

    pub fn endpoint(&self, id: NodeId) -> String {
        endpoint_of(&self.account, id)
    }

    /// The nodes of `region`, running or not.
    pub fn region_nodes(&self, region: &RegionId) -> Vec<NodeId> {
        self.account
            .region(region)
            .map(|r| r.nodes.iter().map(|n| n.id).collect())
            .unwrap_or_default()
    }

    /// Cuts every link between `region` and the rest of the account, both
    /// ways; `faults().heal()` restores them.
    pub fn cut_region(&self, region: &RegionId) {
        let all: Vec<NodeId> = self.account.all_nodes().map(|n| n.id).collect();
        self.faults.cut_off(&self.region_nodes(region), &all);
    }

    /// Stops a node cleanly; its data stays for `restart`.
    pub async fn stop_node(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id).and_then(Option::take) {
            node.stop().await;
            self.reserve(id);
        }
    }

    /// Holds a stopped node's client and peer addresses until it restarts:
    /// bound, not listening, so a connection to them is still refused at
    /// once; an address that cannot be held is left free.
    fn reserve(&mut self, id: NodeId) {
        if self.reserved.contains_key(&id) {
            return;
        }
        let Some(address) = self.account.node(id) else {
            return;
        };
        let held = [address.client_addr, address.peer_addr]
            .into_iter()
            .filter_map(|addr| {
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                socket.bind(addr).ok()?;
                Some(socket)
            })
            .collect();
        self.reserved.insert(id, held);
    }

    /// Kills a whole region as the rest of the account sees a power loss:
    /// its links are cut at once, then its nodes stop, all together.
    pub async fn kill_region(&mut self, region: &RegionId) {
        self.cut_region(region);
        let ids = self.region_nodes(region);
        let nodes: Vec<Node> = ids
            .iter()
            .filter_map(|id| self.nodes.get_mut(id).and_then(Option::take))
            .collect();
        futures::future::join_all(nodes.into_iter().map(Node::stop)).await;
        for id in ids {
            self.reserve(id);
        }
    }

    /// Starts a stopped node again on its old addresses and data.
    pub async fn restart_node(&mut self, id: NodeId) -> Result<(), StartError> {
        self.stop_node(id).await;
        self.reserved.remove(&id);
        let node = Node::start(self.config_of(id), self.injection()).await?;
        self.nodes.insert(id, Some(node));
        Ok(())
    }

    /// The node every running member of `region` agrees leads it, once
    /// they agree; `None` if they do not within `timeout`.
    pub async fn wait_for_leader(&self, region: &RegionId, timeout: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.agreed_leader(region) {
                return Some(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn agreed_leader(&self, region: &RegionId) -> Option<NodeId> {
        let members: Vec<&Node> = self.running().filter(|n| n.region() == region).collect();
        let leader = members
            .iter()
            .find(|n| n.replica().status().role == Role::Leader)?
            .node_id();
        members
            .iter()
            .all(|n| n.replica().leader() == Some(leader))
            .then_some(leader)
    }

    /// Stops every node at once: stopped one by one, the last ones would
    /// spend the shutdown calling peers that are already gone.
    pub async fn stop(mut self) {
        let nodes: Vec<Node> = self.nodes.values_mut().filter_map(Option::take).collect();
        futures::future::join_all(nodes.into_iter().map(Node::stop)).await;
    }
}

fn addr_of(listener: &crate::transport::Listener) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|e| StartError::Bind {
        what: "loopback",
        addr: loopback(0),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_take_a_client_and_a_peer_port_each_from_the_base() {
        assert_eq!(node_ports(7070, 0), Some((7070, 7071)));
        assert_eq!(node_ports(7070, 1), Some((7072, 7073)));
        assert_eq!(node_ports(7070, 11), Some((7092, 7093)));
        assert_eq!(node_ports(0, 5), Some((0, 0)), "base 0: free ports");
        assert_eq!(node_ports(65534, 0), Some((65534, 65535)));
        assert_eq!(node_ports(65535, 0), None, "no room for the peer port");
        assert_eq!(node_ports(65530, 3), None);
        assert!(all_node_ports(65530, 4).is_err());
        assert_eq!(
            all_node_ports(1000, 2).unwrap(),
            [(1000, 1001), (1002, 1003)]
        );
    }
}
