//! Replication between regions (DESIGN.md "Across regions, single-write
//! mode"): the geo log's data and the pure rules about it. The runtime
//! that carries these rules out (leases, shipping, strong set, failover,
//! failsafe: tasks, locks, calls to other nodes) is `node::regions`.
//!
//! Data: the geo log entry, the write region's acknowledgement table with
//! replication lag, a read region's proof of freshness, and the shipping
//! of the geo log to read regions (`ship`: the messages; `node::ship_source`
//! serves the streams).
//! Rules, pure (they take `now` as an argument and never wait, lock or
//! read a clock): bounded staleness, the strong set, the meta leader's
//! lease counts, failover, failsafe, and the applying of shipped entries.

pub mod acks;
pub mod entry;
pub mod failover;
pub mod failsafe;
pub mod freshness;
pub mod lease_counts;
pub mod ship;
pub mod shipped;
pub mod staleness;
pub mod strong_set;
#[cfg(test)]
mod testing;
