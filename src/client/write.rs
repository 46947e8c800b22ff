//! The one write path of the client: a [`WriteOp`] says which of the four
//! writes it is, and [`WireWrite`] is its request as the `Kv` service
//! takes it, built once and sent by every attempt. `Client::put`, `create`,
//! `replace` and `delete` only name the op.

use std::time::Duration;

use tonic::transport::Channel;

use crate::client::channels::{kv, timed};
use crate::consistency::Consistency;
use crate::glsn::SessionToken;
use crate::wire::pb::v1 as pb;

/// Which write, with what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Upsert.
    Put { value: Vec<u8> },
    /// Fails with `AlreadyExists` when the key is present.
    Create { value: Vec<u8> },
    /// Fails with `NotFound` when absent, `FailedPrecondition` when
    /// `if_match` is given and differs from the current etag.
    Replace {
        value: Vec<u8>,
        if_match: Option<String>,
    },
    /// Fails with `NotFound` when absent, `FailedPrecondition` on an etag
    /// mismatch.
    Delete { if_match: Option<String> },
}

/// The fields every write request carries besides its op, as the wire
/// encodes them.
#[derive(Debug, Clone)]
pub(crate) struct WriteHeader {
    pub container: String,
    pub key: String,
    pub consistency: Option<Consistency>,
    pub session_token: Option<SessionToken>,
    pub no_forward: bool,
}

/// A write request ready to send, once per attempt.
#[derive(Debug, Clone)]
pub(crate) enum WireWrite {
    Put(pb::PutRequest),
    Create(pb::CreateRequest),
    Replace(pb::ReplaceRequest),
    Delete(pb::DeleteRequest),
}

impl WireWrite {
    pub fn new(header: WriteHeader, op: WriteOp) -> WireWrite {
        let WriteHeader {
            container,
            key,
            consistency,
            session_token,
            no_forward,
        } = header;
        let consistency = wire_consistency(consistency);
        let session_token = wire_token(session_token);
        match op {
            WriteOp::Put { value } => WireWrite::Put(pb::PutRequest {
                container,
                key,
                value,
                consistency,
                session_token,
                no_forward,
            }),
            WriteOp::Create { value } => WireWrite::Create(pb::CreateRequest {
                container,
                key,
                value,
                consistency,
                session_token,
                no_forward,
            }),
            WriteOp::Replace { value, if_match } => WireWrite::Replace(pb::ReplaceRequest {
                container,
                key,
                value,
                if_match,
                consistency,
                session_token,
                no_forward,
            }),
            WriteOp::Delete { if_match } => WireWrite::Delete(pb::DeleteRequest {
                container,
                key,
                if_match,
                consistency,
                session_token,
                no_forward,
            }),
        }
    }

    /// Sends this request over `channel` with the attempt's `timeout`.
    pub async fn send(
        self,
        channel: Channel,
        timeout: Duration,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        let mut kv = kv(channel);
        match self {
            WireWrite::Put(req) => kv.put(timed(req, timeout)).await,
            WireWrite::Create(req) => kv.create(timed(req, timeout)).await,
            WireWrite::Replace(req) => kv.replace(timed(req, timeout)).await,
            WireWrite::Delete(req) => kv.delete(timed(req, timeout)).await,
        }
    }
}

pub(crate) fn wire_consistency(level: Option<Consistency>) -> i32 {
    level.map_or(pb::Consistency::Unspecified, pb::Consistency::from) as i32
}

pub(crate) fn wire_token(token: Option<SessionToken>) -> String {
    token.map(|t| t.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::token;

    fn header() -> WriteHeader {
        WriteHeader {
            container: "c".into(),
            key: "k".into(),
            consistency: Some(Consistency::Strong),
            session_token: Some(token(1, 7)),
            no_forward: true,
        }
    }

    #[test]
    fn every_op_carries_the_same_header_and_its_own_fields() {
        let WireWrite::Replace(replace) = WireWrite::new(
            header(),
            WriteOp::Replace {
                value: b"v".to_vec(),
                if_match: Some("t1".into()),
            },
        ) else {
            panic!("not a replace");
        };
        assert_eq!(
            (replace.container.as_str(), replace.key.as_str()),
            ("c", "k")
        );
        assert_eq!(replace.consistency, pb::Consistency::Strong as i32);
        assert_eq!(replace.session_token, "e1:7");
        assert!(replace.no_forward);
        assert_eq!(
            (replace.value.as_slice(), replace.if_match.as_deref()),
            (&b"v"[..], Some("t1"))
        );
        let WireWrite::Delete(delete) =
            WireWrite::new(header(), WriteOp::Delete { if_match: None })
        else {
            panic!("not a delete");
        };
        assert_eq!(
            (delete.session_token.as_str(), delete.if_match),
            ("e1:7", None)
        );
        assert!(matches!(
            WireWrite::new(header(), WriteOp::Create { value: Vec::new() }),
            WireWrite::Create(_)
        ));
        assert!(matches!(
            WireWrite::new(header(), WriteOp::Put { value: Vec::new() }),
            WireWrite::Put(_)
        ));
    }

    #[test]
    fn wire_fields_encode_absence_as_the_proto_default() {
        assert_eq!(wire_consistency(None), 0);
        assert_eq!(
            wire_consistency(Some(Consistency::Session)),
            pb::Consistency::Session as i32
        );
        assert_eq!(wire_token(None), "");
        assert_eq!(wire_token(Some(token(1, 42))), "e1:42");
    }
}
