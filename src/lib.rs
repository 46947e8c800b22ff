//! meridian: a multi-region replicated store with tunable consistency.
//!
//! Read `docs/ARCHITECTURE.md` first. The modules, one line each:
//!
//! - [`ids`]: `RegionId`, `NodeId` newtypes that print compactly.
//! - [`glsn`]: global log sequence numbers and session tokens.
//! - [`limits`]: every size and count limit, as named constants.
//! - [`consistency`]: the five levels and their rules.
//! - [`item`]: items, etags, key ranges and input validation.
//! - [`command`]: what the log carries and the pure rule for applying it.
//! - [`clock`]: the clock seam: monotonic and wall time, simulated in a
//!   simulation.
//! - [`hlc`]: the hybrid logical clock stamping writes.
//! - [`lease`]: lease arithmetic, pure: the holder always stops first.
//! - [`meta`]: the meta group's state (settings, priorities, epoch, strong
//!   set) and the pure rule that changes it.
//! - [`codec`]: the one binary encoding for disk and replica traffic.
//! - [`conflict`]: conflict feed records (writes lost to a failover).
//! - [`geo`]: the geo log's data and the pure cross-region rules (bounded
//!   staleness, strong set, lease counts, failover, failsafe, shipping).
//! - [`dot`]: multi-write dots, version vectors and vector session tokens.
//! - [`container`]: conflict policies, fixed at creation, and write checks.
//! - [`crdt`]: CRDT items (counter, set, register) and their canonical bytes.
//! - [`confirm`]: the hub's pure multi-write confirmation rule and its feed.
//! - [`config`]: the node's TOML configuration, defaults and validation.
//! - [`storage`]: sled: raft log, vote, items, snapshots, group commit.
//! - [`raft`]: openraft adapters, replica transport, the `Replica` handle.
//! - [`crash`]: named crash points a test arms through the environment.
//! - [`mutation`]: test-only switches that break one promise on purpose
//!   (feature `verify-mutations`), for the checkers' own tests.
//! - [`fault`]: partitions, delays and drops injected into node traffic.
//! - [`error`]: the errors a client request can end in.
//! - [`transport`]: the transport seam: listening and dialling, over TCP or
//!   turmoil's simulated network.
//! - [`node`]: request logic (reads by consistency, forwarded writes), the
//!   cross-region runtime and the serving side of geo shipping.
//! - [`cli`]: the command line (`server`, `dev`, client and admin commands);
//!   `main.rs` only parses and dispatches.
//! - [`api`]: the gRPC services and the one error-to-status mapping.
//! - [`server`]: the assembly of a running node (`Node::start`/`stop`):
//!   storage, raft, the node logic and the gRPC servers.
//! - [`local`]: a whole account in one process (`meridian dev`, tests).
//! - [`shutdown`]: the one shutdown signal every task listens to.
//! - `sim` (feature `simulation`): the deterministic simulation, a whole
//!   account and `meridian verify` on turmoil's hosts in simulated time.
//! - [`wire`]: generated protobuf code and conversions (the edge).
//! - [`client`]: the Rust client: topology cache, routing, safe retries,
//!   session tokens.
//! - [`bench`]: `meridian bench`, a closed-loop load generator and its report.
//! - [`verify`]: workloads, nemesis and `meridian verify`, and the pure
//!   consistency checkers over recorded histories.

pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod codec;
pub mod command;
pub mod config;
pub mod confirm;
pub mod conflict;
pub mod consistency;
pub mod container;
pub mod crash;
pub mod crdt;
pub mod dot;
pub mod error;
pub mod fault;
pub mod geo;
pub mod glsn;
pub mod hlc;
pub mod ids;
pub mod item;
pub mod lease;
pub mod limits;
pub mod local;
pub mod meta;
pub mod mutation;
pub mod node;
pub mod raft;
pub mod server;
pub mod shutdown;
#[cfg(feature = "simulation")]
pub mod sim;
pub mod storage;
pub mod transport;
pub mod verify;
pub mod wire;
