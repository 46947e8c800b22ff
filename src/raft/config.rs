//! meridian's raft settings to openraft's `Config`.

use std::sync::Arc;

use crate::config::RaftConfig;

pub fn openraft_config(cluster: &str, raft: &RaftConfig) -> Result<Arc<openraft::Config>, String> {
    let config = openraft::Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: raft.heartbeat_interval_ms,
        election_timeout_min: raft.election_timeout_min_ms,
        election_timeout_max: raft.election_timeout_max_ms,
        max_payload_entries: raft.max_payload_entries,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(raft.snapshot_after_entries),
        max_in_snapshot_log_to_keep: raft.logs_to_keep_after_snapshot,
        snapshot_max_chunk_size: raft.snapshot_chunk_bytes,
        // A replica further behind than this is sent a snapshot.
        replication_lag_threshold: raft.logs_to_keep_after_snapshot.max(1),
        ..Default::default()
    };
    config.validate().map(Arc::new).map_err(|e| e.to_string())
}
