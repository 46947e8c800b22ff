//! meridian: a multi-region replicated store with tunable consistency.
//!
//! Read `docs/ARCHITECTURE.md` first. The modules, one line each:
//!
//! - [`ids`]: `RegionId`, `NodeId` newtypes.
//! - [`glsn`]: global log sequence numbers and session tokens.
//! - [`limits`]: every size and count limit, as named constants.
//! - [`consistency`]: the five levels and their rules.
//! - [`wire`]: generated protobuf code and conversions (the edge).
//! - [`client`]: the Rust client for one endpoint, with session tokens.
//! - [`bench`]: `meridian bench`, a closed-loop load generator and its report.

pub mod consistency;
pub mod glsn;
pub mod ids;
pub mod limits;
pub mod wire;

pub mod bench;
pub mod client;
