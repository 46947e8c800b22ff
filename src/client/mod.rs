//! The Rust client: the `Kv` and `Admin` services over tonic, routed by a
//! topology cache, with session tokens tracked per container and errors
//! that tell a caller whether a retry is safe.
//!
//! Routing (DESIGN.md "Client API"): a [`Client`] learns the account from
//! `Admin.Account` of any node it was given (write region, epoch, regions
//! in failover priority order, every node's endpoint) and keeps it, never
//! going back to an older epoch. Writes go to a node of the write region,
//! sent with `no_forward`, so a refusal (NOT_WRITE_REGION) tells the client
//! where the write region moved instead of a server forwarding silently.
//! Reads go to the first preferred region that can serve them, then to the
//! region of the endpoint given, then to the others by priority; within a
//! region, to the node that last answered, then to another when one is
//! down. The topology is refreshed when a request fails in a way that says
//! it may have moved, and when a response carries a newer epoch.
//!
//! Retries: under a deadline (10 s by default: a lease TTL plus a failover
//! and some margin), with exponential backoff and jitter. Reads are retried
//! after any failure that says nothing about the data; a write only when it
//! was refused before it could apply. A write whose outcome is unknown is
//! returned as [`ClientError::OutcomeUnknown`] and never retried: the caller
//! decides. A session read whose token a failover left out of the history
//! is [`ClientError::SessionLost`].
//!
//! A direct client ([`Client::connect_direct`]) talks to one node and never
//! retries; the bench and `meridian verify` use it to measure that node.
//!
//! - `options`: per-request options, and how a routed client connects.
//! - `errors`: the one mapping from a gRPC status to a [`ClientError`].
//! - [`topology`]: the topology cache's content and the order a request
//!   tries nodes in, pure.
//! - [`retry`]: after a failure, whether to go on, where to and when, pure.
//! - `router`: the cache, the channels and the attempt loop that carries
//!   out those decisions.
//! - `channels`: one tonic channel per node, with timeouts and sizes.
//! - `sessions`: the newest session token per container.
//! - `endpoints`: a direct client's node of a preferred region, from the
//!   status.
//! - `lag`: replication lag per read region, from the status.
//! - `requests`: the [`Client`] and its key-value requests.
//! - `admin`: its `Admin`, `Conflicts` and `Faults` requests, and the
//!   one-node connection the admin commands use.
//! - [`results`], [`status`], [`account`], [`failover`], [`conflicts`],
//!   [`containers`]:
//!   what they answer, as domain types (converted from `pb` in [`views`]).
//! - `write`: the one write path's request: which write ([`WriteOp`]) and
//!   its wire form.

pub mod account;
mod admin;
mod channels;
pub mod conflicts;
pub mod containers;
mod endpoints;
mod errors;
pub mod failover;
mod lag;
mod options;
mod requests;
pub mod results;
pub mod retry;
mod router;
mod sessions;
pub mod status;
#[cfg(test)]
pub(crate) mod testing;
pub mod topology;
pub mod views;
mod write;

pub use admin::{ADMIN_CALL_TIMEOUT, SWITCHOVER_CALL_TIMEOUT, connect_admin};
pub use channels::{CONNECT_TIMEOUT, REQUEST_TIMEOUT, ROUTED_CONNECT_TIMEOUT, connect_channel};
pub use errors::{CallKind, ClientError, ErrorDetail, names as error_names};
pub use lag::{ReadRegionLag, ReplicationLag};
pub use options::{ClientOptions, ReadOptions, ScanRange, WriteOptions};
pub use requests::{Client, DEFAULT_ENDPOINT, resolve_endpoint};
pub use sessions::SESSION_CONTAINERS_MAX;
pub use status::{NODE_STATE_RUNNING, REGION_ROLE_WRITE};
pub use write::WriteOp;
