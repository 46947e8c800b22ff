//! What a failed request means to its caller: the gRPC status mapped, in
//! one place, to an error that says whether a retry is safe, and the
//! server's stable error name and hints kept beside it.

use std::error::Error as StdError;
use std::fmt;

use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::api::status::{ERROR_METADATA_KEY, RETRY_AFTER_METADATA_KEY, WRITE_REGION_METADATA_KEY};

/// What a server said about a refusal beyond its gRPC code, read from the
/// status metadata `api::status` writes: the error's stable name
/// (`NOT_WRITE_REGION`, `THROTTLED`, ...) and, when given, when a retry may
/// succeed and which region accepts writes. Empty for transport errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    pub name: Option<String>,
    pub retry_after_ms: Option<u64>,
    pub write_region: Option<String>,
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
    /// No server acted on the request (connection refused, stream refused,
    /// server unavailable), or the request was a read: safe to retry.
    #[error("unavailable ({code:?}): {message}{detail}")]
    Unavailable {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// A write that timed out or was cancelled in flight: it may or may not
    /// have committed. Read the key (or compare etags) before writing again.
    #[error(
        "outcome unknown ({code:?}): the write may or may not have committed: {message}{detail}"
    )]
    OutcomeUnknown {
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
            | ClientError::Server { detail, .. } => detail.name.as_deref(),
            _ => None,
        }
    }
}

/// Whether a request changes state, which decides how a timeout is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Read,
    Write,
}

/// Maps a gRPC status to what the caller can do about it.
pub(crate) fn classify(status: tonic::Status, kind: CallKind) -> ClientError {
    let code = status.code();
    let message = status.message().to_string();
    let detail = ErrorDetail::from_metadata(status.metadata());
    match (code, kind) {
        // tonic reports refused connections and refused streams as
        // UNAVAILABLE: the request never reached a server that acted on it.
        (Code::Unavailable, _) => ClientError::Unavailable {
            code,
            message,
            detail,
        },
        // tonic reports its own request timeout as CANCELLED, the server's
        // as DEADLINE_EXCEEDED; either way a write may have committed.
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Write) => {
            ClientError::OutcomeUnknown {
                code,
                message,
                detail,
            }
        }
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Read) => ClientError::Unavailable {
            code,
            message,
            detail,
        },
        _ => ClientError::Server {
            code,
            message,
            detail,
        },
    }
}

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

    #[test]
    fn unavailable_is_retryable_and_server_refusals_are_not() {
        let down = classify(tonic::Status::unavailable("refused"), CallKind::Write);
        assert!(down.is_retryable());
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
