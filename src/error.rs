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
    #[error("container {container} not found")]
    ContainerNotFound { container: String },
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
    /// to `write_region` (`None`: the account has no write region now,
    /// for example in the middle of a failover). `epoch` is the epoch of
    /// the meta state that named it: a node that lags behind a failover
    /// names a former write region, and a client that knows a newer epoch
    /// must not follow it there.
    #[error("{}", not_write_region_text(region, write_region.as_ref(), *epoch))]
    NotWriteRegion {
        region: RegionId,
        write_region: Option<RegionId>,
        epoch: u64,
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
    /// Nothing was done; retrying later is safe. `region` names the region
    /// at fault; `None` when no one region is (the meta group, an account
    /// with no write region yet, a witness), and then `reason` says who.
    #[error("{}", unavailable_text(region.as_ref(), reason))]
    Unavailable {
        region: Option<RegionId>,
        reason: String,
    },
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
    /// Nothing was done because `region` is unavailable.
    pub fn unavailable(region: &RegionId, reason: impl Into<String>) -> Error {
        Error::Unavailable {
            region: Some(region.clone()),
            reason: reason.into(),
        }
    }

    /// Names `region` as the one at fault in an `Unavailable` that names
    /// none yet (a `ReplicaError` does not know its region, its caller
    /// does); any other error is returned as it is.
    pub fn in_region(self, region: &RegionId) -> Error {
        match self {
            Error::Unavailable {
                region: None,
                reason,
            } => Error::Unavailable {
                region: Some(region.clone()),
                reason,
            },
            other => other,
        }
    }

    /// Nothing was done because the meta group could not be reached or
    /// did not answer in time.
    pub fn meta_unavailable(why: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            region: None,
            reason: format!("the meta group is unavailable: {why}"),
        }
    }

    /// A stable, machine-readable name, sent beside the gRPC status.
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::ConsistencyTooStrong { .. } => "CONSISTENCY_TOO_STRONG",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::NotFound { .. } | Error::ContainerNotFound { .. } => "NOT_FOUND",
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

fn unavailable_text(region: Option<&RegionId>, reason: &str) -> String {
    match region {
        Some(region) => format!("region {region} unavailable: {reason}"),
        None => reason.to_string(),
    }
}

fn not_write_region_text(region: &RegionId, write_region: Option<&RegionId>, epoch: u64) -> String {
    match write_region {
        Some(to) => {
            format!("region {region} is not the write region; send writes to {to} (epoch {epoch})")
        }
        None => format!(
            "region {region} is not the write region, and the account has no write region now; retry shortly"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_region_is_named_and_the_meta_group_says_so() {
        let west = RegionId::new("west");
        assert_eq!(
            Error::unavailable(&west, "no leader found").to_string(),
            "region west unavailable: no leader found"
        );
        assert_eq!(
            Error::meta_unavailable("no quorum").to_string(),
            "the meta group is unavailable: no quorum"
        );
    }

    #[test]
    fn not_write_region_names_the_write_region_when_there_is_one() {
        let west = RegionId::new("west");
        let to = Error::NotWriteRegion {
            region: west.clone(),
            write_region: Some(RegionId::new("east")),
            epoch: 3,
        };
        assert_eq!(
            to.to_string(),
            "region west is not the write region; send writes to east (epoch 3)"
        );
        let none = Error::NotWriteRegion {
            region: west,
            write_region: None,
            epoch: 3,
        };
        assert!(none.to_string().contains("no write region now"), "{none}");
    }
}
