//! meridian: a multi-region replicated store with tunable consistency.
//!
//! Read `docs/ARCHITECTURE.md` first. The modules, one line each:
//!
//! - [`ids`]: `RegionId`, `NodeId` newtypes.
//! - [`glsn`]: global log sequence numbers and session tokens.
//! - [`limits`]: every size and count limit, as named constants.
//! - [`consistency`]: the five levels and their rules.
//! - [`wire`]: generated protobuf code and conversions (the edge).

pub mod codec;
pub mod command;
pub mod config;
pub mod consistency;
pub mod glsn;
pub mod hlc;
pub mod ids;
pub mod item;
pub mod limits;
pub mod raft;
pub mod storage;
pub mod wire;
