//! Replication between regions (DESIGN.md "Across regions, single-write
//! mode"): the geo log entry, the write region's acknowledgement table
//! with replication lag, a read region's proof of freshness, and the
//! shipping of the geo log to read regions.

pub mod acks;
pub mod entry;
pub mod freshness;
pub mod ship;
