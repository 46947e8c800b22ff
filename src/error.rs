//! The errors a client request can end in. Each variant is one thing a
//! caller reacts to differently, carrying the ids it needs; `api::status`
//! maps them to gRPC in one place.

use crate::consistency::Consistency;
use crate::glsn::Glsn;
use crate::ids::{NodeId, RegionId};
use crate::item::Etag;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(
        "consistency {requested} is stronger than the account default {account_default}: a request may ask for the default or weaker"
    )]
    ConsistencyTooStrong {
        requested: Consistency,
        account_default: Consistency,
    },
    /// The account is not in a state that allows the request (e.g. a
    /// switchover to a region that is offline).
    #[error("{0}")]
    Refused(String),
    #[error("item {container}/{key} already exists")]
    AlreadyExists { container: String, key: String },
    #[error("item {container}/{key} not found")]
    NotFound { container: String, key: String },
    #[error("etag mismatch on {container}/{key}: the current etag is {current}")]
    EtagMismatch {
        container: String,
        key: String,
        current: Etag,
    },
    /// The replica has not applied the session token within the wait: the
    /// client should retry at the write region (or another replica).
    #[error(
        "read session not available: {node} has applied {applied}, the session token needs {token}; retry at the write region"
    )]
    SessionNotAvailable {
        node: NodeId,
        applied: Glsn,
        token: Glsn,
    },
    /// The session token names writes past a fork: a failover did not keep
    /// them, so no region will ever reach the token. Start a new session
    /// (the lost writes are in the conflict feed).
    #[error(
        "session lost to failover: the token {token} is past the fork {fork} at which epoch {epoch} began; those writes are not in the history any more (see the conflict feed); start a new session"
    )]
    SessionLost { token: Glsn, fork: Glsn, epoch: u64 },
    /// A write reached a read region with forwarding turned off: send it
    /// to `write_region`.
    #[error("region {region} is not the write region; send writes to {write_region}")]
    NotWriteRegion {
        region: RegionId,
        write_region: RegionId,
    },
    /// Bounded staleness: a region lags more than the account allows, so
    /// new writes wait. Nothing was done; retry after `retry_after_ms`.
    #[error(
        "writes throttled: region {region} lags {lag_ops} operations / {lag_ms} ms, beyond the bounded-staleness limit of {max_ops} operations / {max_ms} ms; retry after {retry_after_ms} ms"
    )]
    Throttled {
        region: RegionId,
        lag_ops: u64,
        lag_ms: u64,
        max_ops: u64,
        max_ms: u64,
        retry_after_ms: u64,
    },
    /// Nothing was done; retrying later is safe.
    #[error("region {region} unavailable: {reason}")]
    Unavailable { region: RegionId, reason: String },
    /// A write that may or may not have been applied: never retry it
    /// blindly (read first, or use an etag precondition).
    #[error("write outcome unknown: {reason}")]
    OutcomeUnknown { reason: String },
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A stable, machine-readable name, sent beside the gRPC status.
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::ConsistencyTooStrong { .. } => "CONSISTENCY_TOO_STRONG",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::EtagMismatch { .. } => "ETAG_MISMATCH",
            Error::SessionNotAvailable { .. } => "READ_SESSION_NOT_AVAILABLE",
            Error::SessionLost { .. } => "SESSION_LOST",
            Error::Refused(_) => "REFUSED",
            Error::NotWriteRegion { .. } => "NOT_WRITE_REGION",
            Error::Throttled { .. } => "THROTTLED",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::OutcomeUnknown { .. } => "OUTCOME_UNKNOWN",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::Internal(_) => "INTERNAL",
        }
    }
}
