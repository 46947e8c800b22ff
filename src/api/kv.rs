//! The `Kv` gRPC service.

use tonic::{Request, Response, Status};

use crate::command::{Precondition, WriteOp};
use crate::error::Error;
use crate::glsn::{Glsn, SessionToken, parse_session_token};
use crate::item::{Etag, ItemVersion, KeyRange};
use crate::limits::{SCAN_PAGE_ITEMS_DEFAULT, SCAN_PAGE_ITEMS_MAX};
use crate::node::kv::{Kv, WriteReceipt};
use crate::wire::convert::consistency_from_wire;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::kv_server::{Kv as KvRpc, KvServer};

pub struct KvService {
    kv: Kv,
}

impl KvService {
    pub fn server(kv: Kv) -> KvServer<KvService> {
        KvServer::new(KvService { kv })
            .max_decoding_message_size(crate::limits::GRPC_REQUEST_BYTES_MAX)
            .max_encoding_message_size(crate::limits::GRPC_MESSAGE_BYTES_MAX)
    }

    fn served_by(&self) -> pb::ServedBy {
        pb::ServedBy {
            region: self.kv.replica().region().to_string(),
            node_id: self.kv.node().0,
        }
    }

    fn write_response(
        &self,
        receipt: WriteReceipt,
        seen: Option<SessionToken>,
    ) -> pb::WriteResponse {
        pb::WriteResponse {
            etag: receipt.etag.map(|e| e.0).unwrap_or_default(),
            glsn: Some(receipt.glsn.into()),
            session_token: read_token(seen, receipt.glsn),
            served_by: Some(self.served_by()),
        }
    }

    async fn write(
        &self,
        target: WriteTarget,
        op: WriteOp,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let level = level(target.consistency)?;
        let seen = token(&target.session_token)?;
        let receipt = self
            .kv
            .write(
                &target.container,
                &target.key,
                op,
                level,
                seen,
                target.no_forward,
            )
            .await?;
        Ok(Response::new(self.write_response(receipt, seen)))
    }
}

/// What every write request (put, create, replace, delete) carries besides
/// its operation.
struct WriteTarget {
    container: String,
    key: String,
    consistency: i32,
    session_token: String,
    no_forward: bool,
}

/// The [`WriteTarget`] of a write request, whichever of the four it is
/// (their messages share these fields but no type).
macro_rules! write_target {
    ($r:expr) => {
        WriteTarget {
            container: $r.container,
            key: $r.key,
            consistency: $r.consistency,
            session_token: $r.session_token,
            no_forward: $r.no_forward,
        }
    };
}

fn token(raw: &str) -> Result<Option<SessionToken>, Error> {
    parse_session_token(raw).map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn level(raw: i32) -> Result<Option<crate::consistency::Consistency>, Error> {
    consistency_from_wire(raw).map_err(Error::InvalidArgument)
}

fn if_match(raw: Option<String>) -> Option<Etag> {
    raw.map(Etag)
}

/// The token a read or write returns: the newest position the client has
/// seen.
fn read_token(seen: Option<SessionToken>, read: Glsn) -> String {
    SessionToken(seen.map_or(read, |t| t.0.max(read))).to_string()
}

pub fn item_to_wire(container: &str, key: String, item: ItemVersion) -> pb::Item {
    pb::Item {
        container: container.to_string(),
        key,
        value: item.value,
        etag: item.etag.0,
        glsn: Some(item.glsn.into()),
        ts: item.ts,
        origin_region: item.origin_region.0,
    }
}

#[tonic::async_trait]
impl KvRpc for KvService {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let r = request.into_inner();
        let op = WriteOp::Put {
            value: r.value,
            precondition: Precondition::None,
        };
        self.write(write_target!(r), op).await
    }

    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let r = request.into_inner();
        let op = WriteOp::Put {
            value: r.value,
            precondition: Precondition::Absent,
        };
        self.write(write_target!(r), op).await
    }

    async fn replace(
        &self,
        request: Request<pb::ReplaceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let r = request.into_inner();
        let precondition = Precondition::Present {
            if_match: if_match(r.if_match),
        };
        let op = WriteOp::Put {
            value: r.value,
            precondition,
        };
        self.write(write_target!(r), op).await
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let r = request.into_inner();
        let op = WriteOp::Delete {
            if_match: if_match(r.if_match),
        };
        self.write(write_target!(r), op).await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let r = request.into_inner();
        let seen = token(&r.session_token)?;
        let (found, read_glsn) = self
            .kv
            .get(&r.container, &r.key, level(r.consistency)?, seen)
            .await?;
        Ok(Response::new(pb::GetResponse {
            item: found.map(|item| item_to_wire(&r.container, r.key.clone(), item)),
            read_glsn: Some(read_glsn.into()),
            session_token: read_token(seen, read_glsn),
            served_by: Some(self.served_by()),
        }))
    }

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let r = request.into_inner();
        let seen = token(&r.session_token)?;
        let limit = match r.limit as usize {
            0 => SCAN_PAGE_ITEMS_DEFAULT,
            n => n.min(SCAN_PAGE_ITEMS_MAX),
        };
        let range = KeyRange {
            prefix: r.prefix,
            start: Some(r.start).filter(|s| !s.is_empty()),
            end: Some(r.end).filter(|s| !s.is_empty()),
        };
        // The continuation token is the last key of the previous page.
        let after = Some(r.continuation.as_str()).filter(|c| !c.is_empty());
        let (items, read_glsn) = self
            .kv
            .scan(
                &r.container,
                &range,
                after,
                limit,
                level(r.consistency)?,
                seen,
            )
            .await?;
        let full_page = items.len() >= limit;
        let continuation = match items.last() {
            Some((key, _))
                if full_page
                    || items.iter().map(|(_, i)| i.value.len()).sum::<usize>()
                        >= crate::limits::SCAN_PAGE_BYTES_MAX =>
            {
                key.clone()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ScanResponse {
            items: items
                .into_iter()
                .map(|(k, item)| item_to_wire(&r.container, k, item))
                .collect(),
            continuation,
            read_glsn: Some(read_glsn.into()),
            session_token: read_token(seen, read_glsn),
            served_by: Some(self.served_by()),
        }))
    }
}
