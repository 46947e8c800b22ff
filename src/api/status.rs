//! The one mapping from domain errors to gRPC statuses. Every status also
//! carries the error's stable name in the `meridian-error` metadata key.

use std::task::{Context, Poll};

use futures::TryFutureExt;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::error::Error;
use crate::limits;

pub const ERROR_METADATA_KEY: &str = "meridian-error";
/// On THROTTLED: milliseconds after which a retry may succeed.
pub const RETRY_AFTER_METADATA_KEY: &str = "meridian-retry-after-ms";
/// On NOT_WRITE_REGION: the region that accepts writes.
pub const WRITE_REGION_METADATA_KEY: &str = "meridian-write-region";
/// On NOT_WRITE_REGION: the epoch of the account state that named the
/// write region. A client follows the redirect only when it knows no
/// newer epoch.
pub const EPOCH_METADATA_KEY: &str = "meridian-epoch";

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::InvalidArgument(_) | Error::ConsistencyTooStrong { .. } => Code::InvalidArgument,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::NotFound { .. } | Error::ContainerNotFound { .. } => Code::NotFound,
            Error::EtagMismatch { .. }
            | Error::NotWriteRegion { .. }
            | Error::SessionLost { .. }
            | Error::Refused(_) => Code::FailedPrecondition,
            Error::Throttled { .. } => Code::ResourceExhausted,
            Error::SessionNotAvailable { .. } | Error::Unavailable { .. } | Error::ShuttingDown => {
                Code::Unavailable
            }
            // gRPC's meaning of DEADLINE_EXCEEDED for a mutation is exactly
            // "it may have completed".
            Error::OutcomeUnknown { .. } => Code::DeadlineExceeded,
            Error::Internal(_) => Code::Internal,
        };
        let mut status = Status::new(code, e.to_string());
        status.metadata_mut().insert(
            ERROR_METADATA_KEY,
            tonic::metadata::MetadataValue::from_static(e.code_name()),
        );
        if let Error::Throttled { retry_after_ms, .. } = &e {
            status.metadata_mut().insert(
                RETRY_AFTER_METADATA_KEY,
                tonic::metadata::MetadataValue::from(*retry_after_ms),
            );
        }
        if let Error::NotWriteRegion {
            write_region,
            epoch,
            ..
        } = &e
        {
            if let Some(Ok(v)) = write_region.as_ref().map(|w| w.as_str().parse()) {
                status.metadata_mut().insert(WRITE_REGION_METADATA_KEY, v);
            }
            status.metadata_mut().insert(
                EPOCH_METADATA_KEY,
                tonic::metadata::MetadataValue::from(*epoch),
            );
        }
        status
    }
}

/// A client-port service whose over-limit requests get the project's own
/// answer. tonic's decoder refuses a message over the service's decoding
/// limit before any handler runs, with OUT_OF_RANGE and no
/// `meridian-error`: a client cannot tell it from any other failure. This
/// wrapper turns exactly that status (it is the only OUT_OF_RANGE a client
/// port answers with in its response headers, and its text is tonic's) into
/// the INVALID_ARGUMENT a value one byte over `VALUE_BYTES_MAX` gets, with
/// the same error name. Nothing was decoded, so nothing was written.
#[derive(Debug, Clone)]
pub struct OversizeNamed<S>(pub S);

impl<S: NamedService> NamedService for OversizeNamed<S> {
    const NAME: &'static str = S::NAME;
}

type ResponseOf = http::Response<tonic::body::Body>;

impl<S, B> Service<http::Request<B>> for OversizeNamed<S>
where
    S: Service<http::Request<B>, Response = ResponseOf>,
{
    type Response = ResponseOf;
    type Error = S::Error;
    type Future = futures::future::MapOk<S::Future, fn(ResponseOf) -> ResponseOf>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.0.call(request).map_ok(name_oversize)
    }
}

/// What tonic's decoder says of a message over the limit.
const DECODE_LIMIT_TEXT: &str = "decoded message length too large";

fn name_oversize(mut response: ResponseOf) -> ResponseOf {
    // Most responses carry their status in trailers, not headers: this
    // first look is cheap.
    let out_of_range = response
        .headers()
        .get(Status::GRPC_STATUS)
        .is_some_and(|code| Code::from_bytes(code.as_bytes()) == Code::OutOfRange);
    if !out_of_range {
        return response;
    }
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if !status.message().contains(DECODE_LIMIT_TEXT) {
        return response;
    }
    let named = Status::from(Error::InvalidArgument(format!(
        "request too large: values are at most {} bytes and keys {} bytes ({})",
        limits::VALUE_BYTES_MAX,
        limits::KEY_BYTES_MAX,
        status.message()
    )));
    let headers = response.headers_mut();
    headers.remove(Status::GRPC_MESSAGE);
    if named.add_header(headers).is_err() {
        // Our own text is plain ASCII; keep tonic's status if it were not.
        return response;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glsn::Glsn;
    use crate::ids::NodeId;

    #[test]
    fn session_not_available_is_named_and_retryable() {
        let status = Status::from(Error::SessionNotAvailable {
            node: NodeId(3),
            applied: Glsn::new(1, 4),
            token: Glsn::new(1, 9),
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.metadata().get(ERROR_METADATA_KEY).unwrap(),
            "READ_SESSION_NOT_AVAILABLE"
        );
        assert!(status.message().contains("e1:9"), "{}", status.message());
    }

    #[test]
    fn not_write_region_names_the_write_region_and_its_epoch() {
        let status = Status::from(Error::NotWriteRegion {
            region: crate::ids::RegionId::new("east"),
            write_region: Some(crate::ids::RegionId::new("west")),
            epoch: 7,
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        let md = |key| status.metadata().get(key).unwrap().to_str().unwrap();
        assert_eq!(md(ERROR_METADATA_KEY), "NOT_WRITE_REGION");
        assert_eq!(md(WRITE_REGION_METADATA_KEY), "west");
        assert_eq!(md(EPOCH_METADATA_KEY), "7");
        let none = Status::from(Error::NotWriteRegion {
            region: crate::ids::RegionId::new("east"),
            write_region: None,
            epoch: 7,
        });
        assert!(none.metadata().get(WRITE_REGION_METADATA_KEY).is_none());
        assert_eq!(none.metadata().get(EPOCH_METADATA_KEY).unwrap(), "7");
    }

    #[test]
    fn unknown_outcome_is_deadline_exceeded() {
        let status = Status::from(Error::OutcomeUnknown {
            reason: "leader lost".into(),
        });
        assert_eq!(status.code(), Code::DeadlineExceeded);
    }

    #[test]
    fn a_replica_error_keeps_an_unknown_outcome_all_the_way_to_the_client() {
        use crate::raft::replica::ReplicaError;
        let status = Status::from(Error::from(ReplicaError::OutcomeUnknown {
            reason: "w1 stopped before answering".into(),
        }));
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.metadata().get(ERROR_METADATA_KEY).unwrap(),
            "OUTCOME_UNKNOWN"
        );
        let refused = Status::from(Error::from(ReplicaError::NoQuorum {
            reason: "1 of 3".into(),
        }));
        assert_eq!(refused.code(), Code::Unavailable);
    }
}
