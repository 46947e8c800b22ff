//! The one configuration of a node, read from TOML, with every default in
//! one place and validated once at start-up. Validation reports every broken
//! rule at once, one line each, so an operator fixes a file in one pass.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::consistency::Consistency;
use crate::ids::{NodeId, RegionId};
use crate::limits::PEER_MESSAGE_BYTES_MAX;
use crate::storage::config::StorageConfig;

/// A replica set has 1 to 7 voters (DESIGN.md "Words").
pub const REPLICAS_MAX: usize = 7;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub account: AccountConfig,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub transport: TransportConfig,
    #[serde(default)]
    pub reads: ReadConfig,
    #[serde(default)]
    pub geo: GeoConfig,
}

/// Replication between regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// The geo log keeps applied writes until every online region has
    /// acknowledged them, but never more than this many bytes; a region
    /// that falls further behind re-syncs from a snapshot.
    pub log_cap_bytes: u64,
    /// Bytes of geo log entries per shipped batch.
    pub ship_batch_bytes: u64,
    /// Extra round-trip time added to every region-to-region message, to
    /// feel the consistency levels on one machine (`meridian dev
    /// --wan-rtt`). 0 in production.
    pub wan_rtt_ms: u64,
}

impl Default for GeoConfig {
    fn default() -> Self {
        Self {
            log_cap_bytes: 256 * 1024 * 1024,
            ship_batch_bytes: 1024 * 1024,
            wan_rtt_ms: 0,
        }
    }
}

/// Who this process is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// Where to listen for clients; defaults to this node's `client_addr`.
    pub client_listen: Option<SocketAddr>,
    /// Where to listen for replicas; defaults to this node's `peer_addr`.
    pub peer_listen: Option<SocketAddr>,
}

/// The account: its name, its regions and their nodes. Identical on every
/// node of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub name: String,
    #[serde(default = "default_consistency")]
    pub default_consistency: Consistency,
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Bounded staleness: K, the most operations a region may trail the
    /// write region by before writes are throttled.
    #[serde(default = "default_max_staleness_ops")]
    pub max_staleness_ops: u64,
    /// Bounded staleness: T, the most milliseconds a region may trail by.
    #[serde(default = "default_max_staleness_ms")]
    pub max_staleness_ms: u64,
    /// The regions, in failover priority order: the first is the write
    /// region of a new account. `meridian priorities set` changes the order
    /// later, through the meta group.
    pub regions: Vec<RegionConfig>,
    /// Voters of the meta group. Empty: one node per region (the lowest
    /// id), or the first three nodes of a single-region account; plus every
    /// witness.
    #[serde(default)]
    pub meta_voters: Vec<NodeId>,
    /// Meta voters that hold no items: a third vote for a two-region
    /// account, so it survives losing one region's meta voter.
    #[serde(default)]
    pub witnesses: Vec<NodeAddress>,
    #[serde(default)]
    pub leases: LeaseConfig,
    #[serde(default)]
    pub failover: FailoverConfig,
}

/// Service-managed failover (DESIGN.md "The meta group and failover").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// Move writes to the next region by priority when the write region's
    /// lease expires.
    pub enabled: bool,
    /// A region lagging the write region by more operations than this is
    /// skipped (Patroni's `maximum_lag_on_failover`). Strong accounts
    /// ignore it: every region of the strong set has every strong write.
    pub max_lag_on_failover: u64,
    /// Patroni's `failsafe_mode`: when the write region cannot renew its
    /// lease through the meta group but every other region's leader
    /// confirms that it is still the write region, it keeps taking writes.
    /// Off by default: it trades a meta group outage's write
    /// unavailability for a failover that waits up to one more lease TTL.
    pub failsafe: bool,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_lag_on_failover: 100_000,
            failsafe: false,
        }
    }
}

/// DESIGN.md "Multi-write mode". Only single-write is built so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    #[default]
    SingleWrite,
    MultiWrite,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::SingleWrite => "single_write",
            WriteMode::MultiWrite => "multi_write",
        }
    }
}

/// Allowed bounded-staleness bounds: K in operations, T in milliseconds.
pub const MAX_STALENESS_OPS_RANGE: (u64, u64) = (1, 10_000_000);
pub const MAX_STALENESS_MS_RANGE: (u64, u64) = (100, 24 * 60 * 60 * 1000);

fn default_max_staleness_ops() -> u64 {
    100_000
}

fn default_max_staleness_ms() -> u64 {
    5_000
}

/// Region leases (DESIGN.md "The meta group and failover").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// How long a committed renewal lasts, counted by the meta group from
    /// its commit.
    pub ttl_ms: u64,
    /// How often a region leader renews.
    pub renew_ms: u64,
    /// How much earlier than the meta group the holder stops using its
    /// lease, to absorb clock-rate drift.
    pub safety_margin_ms: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 3_000,
            renew_ms: 500,
            safety_margin_ms: 500,
        }
    }
}

fn default_consistency() -> Consistency {
    Consistency::Session
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: RegionId,
    pub nodes: Vec<NodeAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    pub id: NodeId,
    /// Address clients (and `meridian status`) use.
    pub client_addr: SocketAddr,
    /// Address replicas use for raft traffic and forwarding.
    pub peer_addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log after a snapshot, so a replica that is a
    /// little behind catches up by log rather than by snapshot.
    pub logs_to_keep_after_snapshot: u64,
    /// Entries per append-entries message.
    pub max_payload_entries: u64,
    pub snapshot_chunk_bytes: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_after_entries: 20_000,
            logs_to_keep_after_snapshot: 5_000,
            max_payload_entries: 512,
            snapshot_chunk_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportConfig {
    pub connect_timeout_ms: u64,
    /// Deadline of a forwarded write, a read-index request or a status call.
    pub request_timeout_ms: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 1000,
            request_timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadConfig {
    /// How long a SESSION read waits for its replica to reach the token
    /// before answering READ_SESSION_NOT_AVAILABLE.
    pub session_wait_ms: u64,
}

impl Default for ReadConfig {
    fn default() -> Self {
        Self {
            session_wait_ms: 1000,
        }
    }
}

/// Every broken rule of a configuration, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![e.to_string().trim().to_string()],
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Self::from_toml(&text)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = self.account.problems();
        problems.extend(self.raft.problems());
        problems.extend(self.node_problems());
        if self.transport.connect_timeout_ms == 0 || self.transport.request_timeout_ms == 0 {
            problems.push("transport timeouts must be greater than 0 ms".into());
        }
        if self.geo.log_cap_bytes < (crate::limits::VALUE_BYTES_MAX as u64) * 4 {
            problems.push(format!(
                "geo.log_cap_bytes must be at least {} (four maximal values)",
                crate::limits::VALUE_BYTES_MAX * 4
            ));
        }
        let batch_max = (PEER_MESSAGE_BYTES_MAX / 2) as u64;
        if self.geo.ship_batch_bytes == 0 || self.geo.ship_batch_bytes > batch_max {
            problems.push(format!(
                "geo.ship_batch_bytes must be between 1 and {batch_max}"
            ));
        }
        if self.storage.cache_capacity_bytes < 1024 * 1024 {
            problems.push("storage.cache_capacity_bytes must be at least 1 MiB".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    fn node_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.account.region_of(self.node.id).is_none() && !self.is_witness() {
            problems.push(format!(
                "node.id {} is listed in no region of the account",
                self.node.id.0
            ));
        }
        if self.node.data_dir.as_os_str().is_empty() {
            problems.push("node.data_dir is empty".into());
        }
        problems
    }

    pub fn region(&self) -> Option<&RegionConfig> {
        self.account.region_of(self.node.id)
    }

    pub fn address(&self) -> Option<&NodeAddress> {
        self.account.node(self.node.id)
    }

    /// A witness runs the meta group only and holds no items.
    pub fn is_witness(&self) -> bool {
        self.account.witnesses.iter().any(|w| w.id == self.node.id)
    }
}

impl AccountConfig {
    pub fn region_of(&self, node: NodeId) -> Option<&RegionConfig> {
        self.regions
            .iter()
            .find(|r| r.nodes.iter().any(|n| n.id == node))
    }

    /// A node of a region or a witness.
    pub fn node(&self, node: NodeId) -> Option<&NodeAddress> {
        self.regions
            .iter()
            .flat_map(|r| &r.nodes)
            .chain(&self.witnesses)
            .find(|n| n.id == node)
    }

    pub fn region(&self, name: &RegionId) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| &r.name == name)
    }

    /// The meta group's voters: as configured, or one node per region (the
    /// lowest id; the lowest three of a single-region account), plus every
    /// witness.
    pub fn meta_voters(&self) -> BTreeSet<NodeId> {
        let mut voters: BTreeSet<NodeId> = if !self.meta_voters.is_empty() {
            self.meta_voters.iter().copied().collect()
        } else if self.regions.len() == 1 {
            let mut ids: Vec<NodeId> = self.regions[0].nodes.iter().map(|n| n.id).collect();
            ids.sort();
            ids.into_iter().take(3).collect()
        } else {
            self.regions
                .iter()
                .filter_map(|r| r.nodes.iter().map(|n| n.id).min())
                .collect()
        };
        voters.extend(self.witnesses.iter().map(|w| w.id));
        voters
    }

    /// Every node of the account, witnesses included.
    pub fn all_nodes(&self) -> impl Iterator<Item = &NodeAddress> {
        self.regions
            .iter()
            .flat_map(|r| &r.nodes)
            .chain(&self.witnesses)
    }

    /// What an operator should know about this configuration although it
    /// is allowed.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let voters = self.meta_voters();
        let voter_regions: BTreeSet<&RegionId> = voters
            .iter()
            .filter_map(|v| self.region_of(*v).map(|r| &r.name))
            .collect();
        let witnesses = voters
            .iter()
            .filter(|v| self.region_of(**v).is_none())
            .count();
        if self.regions.len() == 2 && witnesses == 0 && voter_regions.len() == 2 {
            warnings.push(
                "two regions and no witness: losing either region's meta voter stops the meta group, so leases lapse and writes stop; with strong consistency, a region loss stops strong writes (add a witness)".into(),
            );
        }
        warnings
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&RegionConfig, &NodeAddress)> {
        self.regions
            .iter()
            .flat_map(|r| r.nodes.iter().map(move |n| (r, n)))
    }

    /// Every broken rule of the account section, one sentence each.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_plain_name(&self.name) {
            problems.push(format!(
                "account.name {:?} must be non-empty [A-Za-z0-9_-]",
                self.name
            ));
        }
        if self.regions.is_empty() {
            problems.push("the account has no regions".into());
        }
        problems.extend(self.write_mode_problems());
        problems.extend(self.staleness_problems());
        problems.extend(self.leases.problems());
        problems.extend(self.meta_voter_problems());
        problems.extend(self.region_problems());
        problems.extend(self.node_reuse_problems());
        problems
    }

    /// Multi-write is refused: with strong consistency it is impossible,
    /// and otherwise not supported yet.
    fn write_mode_problems(&self) -> Vec<String> {
        if self.write_mode != WriteMode::MultiWrite {
            return Vec::new();
        }
        if self.default_consistency == Consistency::Strong {
            vec![
                "strong consistency with multi-write is impossible: strong needs one write region (use single_write, or a weaker default consistency)".into(),
            ]
        } else {
            vec!["write_mode multi_write is not supported yet; use single_write".into()]
        }
    }

    /// The staleness bounds K and T must lie in their ranges.
    fn staleness_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let (k_min, k_max) = MAX_STALENESS_OPS_RANGE;
        if !(k_min..=k_max).contains(&self.max_staleness_ops) {
            problems.push(format!(
                "account.max_staleness_ops (K) is {}; it must be between {k_min} and {k_max}",
                self.max_staleness_ops
            ));
        }
        let (t_min, t_max) = MAX_STALENESS_MS_RANGE;
        if !(t_min..=t_max).contains(&self.max_staleness_ms) {
            problems.push(format!(
                "account.max_staleness_ms (T) is {}; it must be between {t_min} and {t_max}",
                self.max_staleness_ms
            ));
        }
        problems
    }

    /// Every meta voter must be a node of a region or a witness.
    fn meta_voter_problems(&self) -> Vec<String> {
        self.meta_voters
            .iter()
            .filter(|voter| self.node(**voter).is_none())
            .map(|voter| {
                format!(
                    "account.meta_voters names node {} , which is in no region and no witness",
                    voter.0
                )
            })
            .collect()
    }

    /// Each region is listed once, has a plain name and 1 to
    /// `REPLICAS_MAX` nodes.
    fn region_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut region_names = BTreeSet::new();
        for region in &self.regions {
            if !region_names.insert(region.name.clone()) {
                problems.push(format!("region {} is listed twice", region.name));
            }
            if !is_plain_name(region.name.as_str()) {
                problems.push(format!(
                    "region name {:?} must be non-empty [A-Za-z0-9_-]",
                    region.name.as_str()
                ));
            }
            if region.nodes.is_empty() || region.nodes.len() > REPLICAS_MAX {
                problems.push(format!(
                    "region {} has {} nodes; a replica set has 1 to {REPLICAS_MAX}",
                    region.name,
                    region.nodes.len()
                ));
            }
        }
        problems
    }

    /// No node id and no (specified) address is used twice.
    fn node_reuse_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut node_ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        // Witnesses share the id and address spaces with region nodes.
        for node in self.all_nodes() {
            if !node_ids.insert(node.id) {
                problems.push(format!(
                    "node id {} is used twice (node ids are unique across the account)",
                    node.id.0
                ));
            }
            for addr in [node.client_addr, node.peer_addr] {
                if !addr.ip().is_unspecified() && !addrs.insert(addr) {
                    problems.push(format!("address {addr} is used twice"));
                }
            }
        }
        problems
    }
}

/// An account or region name: non-empty, only `[A-Za-z0-9_-]`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl LeaseConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.renew_ms == 0 {
            problems.push("account.leases.renew_ms must be greater than 0".into());
        }
        if self.renew_ms >= self.ttl_ms {
            problems.push(format!(
                "account.leases.renew_ms ({}) must be less than account.leases.ttl_ms ({}): a lease must be renewed before it ends",
                self.renew_ms, self.ttl_ms
            ));
        } else if self.renew_ms + self.safety_margin_ms >= self.ttl_ms {
            problems.push(format!(
                "account.leases.renew_ms ({}) + safety_margin_ms ({}) must be less than ttl_ms ({}), or the holder's lease lapses between renewals",
                self.renew_ms, self.safety_margin_ms, self.ttl_ms
            ));
        }
        problems
    }
}

impl RaftConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.heartbeat_interval_ms == 0 {
            problems.push("raft.heartbeat_interval_ms must be greater than 0".into());
        }
        if self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            problems.push(format!(
                "raft.heartbeat_interval_ms ({}) must be less than raft.election_timeout_min_ms ({}), or followers start elections against a healthy leader",
                self.heartbeat_interval_ms, self.election_timeout_min_ms
            ));
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            problems.push(format!(
                "raft.election_timeout_min_ms ({}) must be less than raft.election_timeout_max_ms ({})",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            ));
        }
        if self.snapshot_after_entries == 0 {
            problems.push("raft.snapshot_after_entries must be greater than 0".into());
        }
        if self.max_payload_entries == 0 {
            problems.push("raft.max_payload_entries must be greater than 0".into());
        }
        let chunk_max = (PEER_MESSAGE_BYTES_MAX / 2) as u64;
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes > chunk_max {
            problems.push(format!(
                "raft.snapshot_chunk_bytes must be between 1 and {chunk_max}"
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        r#"
[node]
id = 1
data_dir = "/tmp/meridian-n1"

[account]
name = "dev"
[[account.regions]]
name = "west"
nodes = [
  { id = 1, client_addr = "127.0.0.1:7070", peer_addr = "127.0.0.1:7170" },
  { id = 2, client_addr = "127.0.0.1:7071", peer_addr = "127.0.0.1:7171" },
]
"#
        .to_string()
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let config = Config::from_toml(&example()).unwrap();
        assert_eq!(config.raft, RaftConfig::default());
        assert_eq!(config.account.default_consistency, Consistency::Session);
        assert_eq!(config.region().unwrap().name, RegionId::new("west"));
    }

    fn problems(text: &str) -> Vec<String> {
        Config::from_toml(text).unwrap_err().problems
    }

    #[test]
    fn each_broken_rule_is_named() {
        let dup = example().replace("id = 2,", "id = 1,");
        assert!(
            problems(&dup)
                .iter()
                .any(|p| p.contains("node id 1 is used twice")),
            "{:?}",
            problems(&dup)
        );
        let unlisted = example().replace("id = 1\ndata_dir", "id = 9\ndata_dir");
        assert!(
            problems(&unlisted)
                .iter()
                .any(|p| p.contains("listed in no region"))
        );
        let heartbeat = format!("{}\n[raft]\nheartbeat_interval_ms = 600\n", example());
        assert!(
            problems(&heartbeat)
                .iter()
                .any(|p| p.contains("heartbeat_interval_ms (600) must be less"))
        );
        let unknown_key = format!("{}\n[raft]\nheartbeat_ms = 6\n", example());
        assert!(
            problems(&unknown_key)[0].contains("unknown field"),
            "{:?}",
            problems(&unknown_key)
        );
        let bad_level = example().replace(
            "name = \"dev\"",
            "name = \"dev\"\ndefault_consistency = \"linearizable\"",
        );
        assert!(!problems(&bad_level).is_empty());
    }

    #[test]
    fn region_rules_are_named() {
        let with =
            |extra: &str| example().replace("name = \"dev\"", &format!("name = \"dev\"\n{extra}"));
        let k = problems(&with("max_staleness_ops = 0"));
        assert!(
            k.iter().any(|p| p.contains("max_staleness_ops (K) is 0")),
            "{k:?}"
        );
        let t = problems(&with("max_staleness_ms = 5"));
        assert!(
            t.iter().any(|p| p.contains("max_staleness_ms (T) is 5")),
            "{t:?}"
        );
        let lease = format!(
            "{}\n[account.leases]\nttl_ms = 1000\nrenew_ms = 1000\n",
            example()
        );
        let lease = problems(&lease);
        assert!(
            lease
                .iter()
                .any(|p| p
                    .contains("renew_ms (1000) must be less than account.leases.ttl_ms (1000)")),
            "{lease:?}"
        );
        let multi = problems(&with(
            "write_mode = \"multi_write\"\ndefault_consistency = \"strong\"",
        ));
        assert!(
            multi
                .iter()
                .any(|p| p.contains("strong consistency with multi-write is impossible")),
            "{multi:?}"
        );
    }

    #[test]
    fn two_regions_without_a_witness_are_accepted_with_a_warning() {
        let two = format!(
            "{}\n[[account.regions]]\nname = \"east\"\nnodes = [{{ id = 3, client_addr = \"127.0.0.1:7072\", peer_addr = \"127.0.0.1:7172\" }}]\n",
            example()
        );
        let config = Config::from_toml(&two).unwrap();
        let warnings = config.account.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("a region loss stops strong writes")),
            "{warnings:?}"
        );
        assert_eq!(config.account.meta_voters().len(), 2);
        let witnessed = format!(
            "{two}\n[[account.witnesses]]\nid = 9\nclient_addr = \"127.0.0.1:7079\"\npeer_addr = \"127.0.0.1:7179\"\n"
        );
        let config = Config::from_toml(&witnessed).unwrap();
        assert!(config.account.warnings().is_empty());
        assert!(config.account.meta_voters().contains(&NodeId(9)));
    }

    #[test]
    fn several_problems_are_reported_together() {
        let text = format!(
            "{}\n[raft]\nheartbeat_interval_ms = 0\nmax_payload_entries = 0\n",
            example().replace("id = 2,", "id = 1,")
        );
        let err = Config::from_toml(&text).unwrap_err();
        assert!(err.problems.len() >= 3, "{err}");
        assert!(err.to_string().starts_with("invalid configuration:"));
    }
}
