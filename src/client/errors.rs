//! What a failed request means to its caller: the gRPC status mapped, in
//! one place, to an error that says whether a retry is safe, and the
//! server's stable error name and hints kept beside it.

use std::error::Error as StdError;
use std::fmt;

use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::api::status::{
    EPOCH_METADATA_KEY, ERROR_METADATA_KEY, RETRY_AFTER_METADATA_KEY, WRITE_REGION_METADATA_KEY,
};

/// What a server said about a refusal beyond its gRPC code, read from the
/// status metadata `api::status` writes: the error's stable name
/// (`NOT_WRITE_REGION`, `THROTTLED`, ...) and, when given, when a retry may
/// succeed and which region accepts writes. Empty for transport errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    pub name: Option<String>,
    pub retry_after_ms: Option<u64>,
    pub write_region: Option<String>,
    /// The epoch of the account state that named `write_region`.
    pub epoch: Option<u64>,
}

impl ErrorDetail {
    fn from_metadata(metadata: &MetadataMap) -> ErrorDetail {
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        ErrorDetail {
            name: text(ERROR_METADATA_KEY),
            retry_after_ms: text(RETRY_AFTER_METADATA_KEY).and_then(|v| v.parse().ok()),
            write_region: text(WRITE_REGION_METADATA_KEY),
            epoch: text(EPOCH_METADATA_KEY).and_then(|v| v.parse().ok()),
        }
    }
}

/// Printed after the server's message, e.g. ` [NOT_WRITE_REGION, write
/// region: west]`; nothing when the server sent no detail.
impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(name.clone());
        }
        if let Some(ms) = self.retry_after_ms {
            parts.push(format!("retry after {ms} ms"));
        }
        if let Some(region) = &self.write_region {
            parts.push(format!("write region: {region}"));
        }
        if let Some(epoch) = self.epoch {
            parts.push(format!("epoch {epoch}"));
        }
        if parts.is_empty() {
            return Ok(());
        }
        write!(f, " [{}]", parts.join(", "))
    }
}

/// What went wrong, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The endpoint string is not a usable URI; retrying cannot help.
    #[error("invalid endpoint {endpoint:?}: {message}")]
    InvalidEndpoint { endpoint: String, message: String },
    /// A preferred region the account does not have; retrying cannot help.
    #[error("region {region:?} is not in the account; its regions are: {}", known.join(", "))]
    UnknownRegion { region: String, known: Vec<String> },
    /// No preferred region has a running node with a client address. Nothing
    /// was sent, so a retry is safe once a node is back.
    #[error("no running node in the preferred regions ({})", regions.join(", "))]
    NoRunningNode { regions: Vec<String> },
    /// No server acted on the request (the connection failed, or a meridian
    /// server refused it as UNAVAILABLE before doing anything), or the
    /// request was a read: safe to retry.
    #[error("unavailable ({code:?}): {message}{detail}")]
    Unavailable {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// A write that may or may not have committed: it timed out or its
    /// connection failed after sending, or the server said so
    /// (OUTCOME_UNKNOWN). Never retried by the client; read the key (or
    /// write with an etag precondition) before writing again.
    #[error(
        "outcome unknown ({code:?}): the write may or may not have committed: {message}{detail}"
    )]
    OutcomeUnknown {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// A session read whose token is no longer in the account's history: a
    /// failover began a new epoch that forked before the token, so writes
    /// this session saw may be gone. Retrying cannot help; the caller decides
    /// what to do about those writes, then starts a new session
    /// (`Client::reset_sessions`).
    #[error("session lost to failover ({code:?}): {message}{detail}")]
    SessionLost {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// The server answered with this status.
    #[error("{code:?}: {message}{detail}")]
    Server {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
}

impl ClientError {
    /// The gRPC code this error corresponds to, for counting and exit codes.
    pub fn code(&self) -> Code {
        match self {
            ClientError::InvalidEndpoint { .. } | ClientError::UnknownRegion { .. } => {
                Code::InvalidArgument
            }
            ClientError::NoRunningNode { .. } => Code::Unavailable,
            ClientError::Unavailable { code, .. }
            | ClientError::OutcomeUnknown { code, .. }
            | ClientError::SessionLost { code, .. }
            | ClientError::Server { code, .. } => *code,
        }
    }

    /// True when sending the same request again cannot apply a write twice.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable { .. } | ClientError::NoRunningNode { .. }
        )
    }

    /// The server's stable name for the error (`meridian-error`), if it
    /// sent one.
    pub fn error_name(&self) -> Option<&str> {
        match self {
            ClientError::Unavailable { detail, .. }
            | ClientError::OutcomeUnknown { detail, .. }
            | ClientError::SessionLost { detail, .. }
            | ClientError::Server { detail, .. } => detail.name.as_deref(),
            _ => None,
        }
    }
}

/// Whether a request changes state, which decides how a timeout is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Write,
}

/// The `meridian-error` names the client reacts to. `error::Error::code_name`
/// gives the server's side of each; a test keeps them in step.
pub mod names {
    pub const NOT_WRITE_REGION: &str = "NOT_WRITE_REGION";
    pub const THROTTLED: &str = "THROTTLED";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    pub const READ_SESSION_NOT_AVAILABLE: &str = "READ_SESSION_NOT_AVAILABLE";
    pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";
    /// A session read whose token lies beyond the fork GLSN of a newer
    /// epoch: it can no longer see every write the session saw.
    pub const SESSION_LOST: &str = "SESSION_LOST";
}

/// How deep `never_sent` looks into an error's chain of causes.
const SOURCE_CHAIN_DEPTH_MAX: usize = 16;

/// Maps a gRPC status to what the caller can do about it.
pub(crate) fn classify(status: tonic::Status, kind: CallKind) -> ClientError {
    let code = status.code();
    let sent = !never_sent(&status);
    let message = status.message().to_string();
    let detail = ErrorDetail::from_metadata(status.metadata());
    match variant(code, detail.name.as_deref(), sent, kind) {
        Variant::Unavailable => ClientError::Unavailable {
            code,
            message,
            detail,
        },
        Variant::OutcomeUnknown => ClientError::OutcomeUnknown {
            code,
            message,
            detail,
        },
        Variant::SessionLost => ClientError::SessionLost {
            code,
            message,
            detail,
        },
        Variant::Server => ClientError::Server {
            code,
            message,
            detail,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Unavailable,
    OutcomeUnknown,
    SessionLost,
    Server,
}

/// The rule behind `classify`, over what a status tells: its code, the
/// server's name for it (`None`: the status came from the transport, not
/// from meridian), whether the request may have left this client, and
/// whether it was a write.
///
/// A meridian server names every refusal and promises that UNAVAILABLE and
/// SHUTTING_DOWN did nothing. A status without a name is the transport's:
/// after a connection existed (a reset, a GOAWAY, a keep-alive timeout, an
/// h2 error), a write may have reached the server and committed, so only a
/// failed connection attempt proves it was not sent.
fn variant(code: Code, name: Option<&str>, sent: bool, kind: CallKind) -> Variant {
    if name == Some(names::SESSION_LOST) {
        return Variant::SessionLost;
    }
    if !sent {
        return Variant::Unavailable;
    }
    let from_transport = name.is_none();
    match (code, kind) {
        (Code::Unavailable | Code::Unknown | Code::Internal, CallKind::Write) if from_transport => {
            Variant::OutcomeUnknown
        }
        (Code::Unknown | Code::Internal, CallKind::Read) if from_transport => Variant::Unavailable,
        (Code::Unavailable, _) => Variant::Unavailable,
        // tonic reports its own request timeout as CANCELLED, the server's
        // as DEADLINE_EXCEEDED (OUTCOME_UNKNOWN maps to it too); either
        // way a write may have committed.
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Write) => Variant::OutcomeUnknown,
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Read) => Variant::Unavailable,
        _ => Variant::Server,
    }
}

/// Whether the status proves the request never left this client: tonic
/// wraps a failed connection attempt in `ConnectError`, and no byte of a
/// request is written before its connection exists.
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = StdError::source(status);
    for _ in 0..SOURCE_CHAIN_DEPTH_MAX {
        let Some(cause) = source else {
            return false;
        };
        if cause.is::<tonic::ConnectError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// tonic's transport errors print only their outermost layer ("transport
/// error"); the cause a person needs is further down the chain.
pub(crate) fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_timeout_is_an_unknown_outcome_and_a_read_timeout_is_retryable() {
        for code in [Code::DeadlineExceeded, Code::Cancelled] {
            let write = classify(tonic::Status::new(code, "late"), CallKind::Write);
            assert!(matches!(write, ClientError::OutcomeUnknown { .. }));
            assert!(!write.is_retryable());
            let read = classify(tonic::Status::new(code, "late"), CallKind::Read);
            assert!(read.is_retryable());
            assert_eq!(read.code(), code);
        }
    }

    fn named(code: Code, name: &str) -> tonic::Status {
        let mut status = tonic::Status::new(code, "refused");
        status
            .metadata_mut()
            .insert(ERROR_METADATA_KEY, name.parse().unwrap());
        status
    }

    #[test]
    fn a_server_refusal_before_acting_is_retryable_and_others_are_not() {
        for name in [names::UNAVAILABLE, names::SHUTTING_DOWN] {
            let refused = classify(named(Code::Unavailable, name), CallKind::Write);
            assert!(refused.is_retryable(), "{refused}");
        }
        let exists = classify(tonic::Status::already_exists("k"), CallKind::Write);
        assert_eq!(
            exists,
            ClientError::Server {
                code: Code::AlreadyExists,
                message: "k".to_string(),
                detail: ErrorDetail::default(),
            }
        );
        assert!(!exists.is_retryable());
        let unknown = classify(
            named(Code::DeadlineExceeded, names::OUTCOME_UNKNOWN),
            CallKind::Write,
        );
        assert!(matches!(unknown, ClientError::OutcomeUnknown { .. }));
    }

    #[test]
    fn a_transport_failure_after_sending_leaves_a_write_unknown_and_a_read_retryable() {
        // No meridian name: the transport's own status, e.g. a connection
        // reset or an h2 error after the request went out.
        for code in [Code::Unavailable, Code::Unknown, Code::Internal] {
            let write = classify(tonic::Status::new(code, "reset"), CallKind::Write);
            assert!(
                matches!(write, ClientError::OutcomeUnknown { .. }),
                "{write}"
            );
            let read = classify(tonic::Status::new(code, "reset"), CallKind::Read);
            assert!(read.is_retryable(), "{read}");
        }
        // A failed connection attempt proves nothing was sent.
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let never = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(never.code(), Code::Unavailable);
        let write = classify(never, CallKind::Write);
        assert!(matches!(write, ClientError::Unavailable { .. }), "{write}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_write_that_was_never_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let status = crate::wire::pb::v1::kv_client::KvClient::new(channel)
            .put(crate::wire::pb::v1::PutRequest::default())
            .await
            .unwrap_err();
        assert!(never_sent(&status), "{status:?}");
        let write = classify(status, CallKind::Write);
        assert!(matches!(write, ClientError::Unavailable { .. }), "{write}");
    }

    #[test]
    fn session_lost_is_its_own_error_and_not_retryable() {
        let lost = classify(
            named(Code::FailedPrecondition, names::SESSION_LOST),
            CallKind::Read,
        );
        assert!(matches!(lost, ClientError::SessionLost { .. }), "{lost}");
        assert!(!lost.is_retryable());
        assert_eq!(lost.error_name(), Some(names::SESSION_LOST));
        assert!(lost.to_string().starts_with("session lost to failover"));
    }

    #[test]
    fn the_names_are_the_ones_the_server_sends() {
        use crate::error::Error;
        use crate::ids::{NodeId, RegionId};
        let west = RegionId::new("west");
        let pairs = [
            (
                Error::NotWriteRegion {
                    region: west.clone(),
                    write_region: Some(west.clone()),
                    epoch: 1,
                },
                names::NOT_WRITE_REGION,
            ),
            (
                Error::Throttled {
                    region: west.clone(),
                    lag_ops: 0,
                    lag_ms: 0,
                    max_ops: 0,
                    max_ms: 0,
                    retry_after_ms: 0,
                },
                names::THROTTLED,
            ),
            (
                Error::Unavailable {
                    region: Some(west),
                    reason: String::new(),
                },
                names::UNAVAILABLE,
            ),
            (Error::ShuttingDown, names::SHUTTING_DOWN),
            (
                Error::SessionNotAvailable {
                    node: NodeId(1),
                    applied: crate::glsn::Glsn::ZERO,
                    token: crate::glsn::Glsn::ZERO,
                },
                names::READ_SESSION_NOT_AVAILABLE,
            ),
            (
                Error::OutcomeUnknown {
                    reason: String::new(),
                },
                names::OUTCOME_UNKNOWN,
            ),
            (
                Error::SessionLost {
                    token: crate::glsn::Glsn::ZERO,
                    fork: crate::glsn::Glsn::ZERO,
                    epoch: 2,
                },
                names::SESSION_LOST,
            ),
        ];
        for (error, name) in pairs {
            assert_eq!(error.code_name(), name);
        }
    }

    #[test]
    fn server_error_metadata_is_kept_and_printed() {
        let mut status = tonic::Status::failed_precondition("east is a read region");
        let metadata = status.metadata_mut();
        metadata.insert(ERROR_METADATA_KEY, "NOT_WRITE_REGION".parse().unwrap());
        metadata.insert(WRITE_REGION_METADATA_KEY, "west".parse().unwrap());
        let err = classify(status, CallKind::Write);
        assert_eq!(err.error_name(), Some("NOT_WRITE_REGION"));
        assert_eq!(
            err.to_string(),
            "FailedPrecondition: east is a read region [NOT_WRITE_REGION, write region: west]"
        );

        let mut throttled = tonic::Status::resource_exhausted("lagging");
        let metadata = throttled.metadata_mut();
        metadata.insert(ERROR_METADATA_KEY, "THROTTLED".parse().unwrap());
        metadata.insert(RETRY_AFTER_METADATA_KEY, "250".parse().unwrap());
        let err = classify(throttled, CallKind::Write);
        let ClientError::Server { detail, .. } = &err else {
            panic!("not a server error: {err:?}");
        };
        assert_eq!(detail.retry_after_ms, Some(250));
        assert!(err.to_string().ends_with("[THROTTLED, retry after 250 ms]"));

        // A bare status prints exactly as before.
        let bare = classify(tonic::Status::not_found("k"), CallKind::Read);
        assert_eq!(bare.to_string(), "NotFound: k");
        assert_eq!(bare.error_name(), None);
    }
}
