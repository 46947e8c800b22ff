//! The Rust client: the `Kv` and `Admin` services over tonic, with
//! explicit timeouts and message sizes, session tokens tracked per
//! container, and errors that tell a caller whether a retry is safe and
//! what the server named the refusal.
//!
//! Region preference: [`Client::connect_preferring`] asks one endpoint for
//! the account's status and connects to a running node of the first
//! preferred region that has one, so reads are served there. Writes sent to
//! a read region are forwarded by the server to the write region (or
//! refused with `NOT_WRITE_REGION` under `no_forward`). The choice is made
//! once, at connect; re-routing on failover is not done here.
//!
//! Invariants: a write whose outcome is unknown is reported as
//! [`ClientError::OutcomeUnknown`] and never retried here; the tracked
//! session token of a container only moves forward.
//!
//! - `options`: per-request options of reads, writes and scans.
//! - `errors`: the one mapping from a gRPC status to a [`ClientError`].
//! - `sessions`: the newest session token per container.
//! - `endpoints`: a node of the first preferred region, from the status.
//! - `lag`: replication lag per read region, from the status.
//! - [`topology`]: the topology cache's content and the order a request
//!   tries nodes in, pure.
//! - [`retry`]: after a failure, whether to go on, where to and when, pure.
//! - `requests`: the [`Client`] and its one method per request.

mod endpoints;
mod errors;
mod lag;
mod options;
mod requests;
pub mod retry;
mod sessions;
#[cfg(test)]
pub(crate) mod testing;
pub mod topology;

pub use endpoints::NODE_STATE_RUNNING;
pub use errors::{CallKind, ClientError, ErrorDetail, names as error_names};
pub use lag::{REGION_ROLE_WRITE, ReadRegionLag, ReplicationLag};
pub use options::{ReadOptions, ScanRange, WriteOptions};
pub use requests::{
    CONNECT_TIMEOUT, Client, DEFAULT_ENDPOINT, REQUEST_TIMEOUT, connect_channel, resolve_endpoint,
};
pub use sessions::SESSION_CONTAINERS_MAX;
