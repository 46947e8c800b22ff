//! The cross-region runtime of a node: the tasks, locks and calls to other
//! nodes that carry out the geo rules. `src/geo/` holds the geo log's data
//! and the pure rules (what to decide); this module does the waiting,
//! locking and I/O (when and how to act on it). `Geo` is the handle the
//! request logic (`node::kv`) and the dispatch of node calls
//! (`node::calls`) hold.
//!
//! One file per concept, each adding to `Geo`; a file uses only those
//! listed before it:
//!
//! - `handle`: the `Geo` handle, its state grouped by owner, and waits on
//!   the meta state;
//! - `peers`: calls to other nodes, following leader hints;
//! - `supervision`: the meta leader counts leases, takes expired regions
//!   out of the strong set and starts failovers;
//! - `lease_holder`: a region leader renews its lease, holds it, and
//!   publishes its read lease;
//! - `staleness`: a read region's lag and the bounded staleness throttle;
//! - `report`: the region's report for status;
//! - `strong_set`: the write region leader admits joining regions, trims
//!   the geo log, and waits for strong writes and reads;
//! - `follower`: a read region leader receives the geo log, acknowledges
//!   it, re-syncs and re-joins;
//! - `failsafe`: failsafe promises and the failsafe lease;
//! - `failover`: write fencing, switchover and taking over writes;
//! - `tasks`: which background tasks run on which node;
//! - `containers`: creating containers through the meta group, and the
//!   container a write lands in.

mod containers;
mod failover;
mod failsafe;
mod follower;
mod handle;
mod lease_holder;
mod peers;
mod report;
mod staleness;
mod strong_set;
mod supervision;
mod tasks;

pub use failover::WritePermit;
pub use handle::{Geo, GeoOptions};
