//! Storage on sled: one `sled::Db` per node holding the raft log, the vote
//! and the state machine's items. Only this module imports sled; it speaks
//! in bytes and domain types, and `raft/` adapts it to openraft. `backend`
//! is the seam that puts the same parts in memory for the simulation.

pub mod backend;
pub mod config;
pub mod data_dir;
pub mod error;
pub mod log;
pub mod log_writer;
pub mod meta;
pub mod snapshot_file;
pub mod state;
pub mod store;
