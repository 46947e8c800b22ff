//! sled settings, chosen on purpose rather than left to defaults.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// sled's page cache. The working set of a node is its items plus the
    /// unpurged log tail; 128 MiB keeps a benchmark's data hot on a small
    /// machine without starving the other nodes of `meridian dev`.
    pub cache_capacity_bytes: u64,
    /// sled's background flush. Durability never depends on it (log
    /// appends and votes are flushed explicitly); it bounds how much state
    /// machine work a crash can make a node re-apply from its log.
    pub flush_every_ms: u64,
    /// Keep everything in memory instead of on sled (`storage::backend`),
    /// for the deterministic simulation; never read from a file.
    #[serde(skip)]
    pub in_memory: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            cache_capacity_bytes: 128 * 1024 * 1024,
            flush_every_ms: 500,
            in_memory: false,
        }
    }
}
