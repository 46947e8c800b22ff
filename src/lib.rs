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
//! - [`cli`]: the `meridian` subcommands; `main.rs` only parses and dispatches.
//! - [`bench`]: `meridian bench`, a closed-loop load generator and its report.

pub mod consistency;
pub mod glsn;
pub mod ids;
pub mod limits;
pub mod wire;

pub mod bench;
pub mod cli {
    //! The `meridian` subcommands, one file per group.
    pub mod client_cmds;
}
pub mod client;
