//! The `Kv` gRPC service.

use tonic::{Request, Response, Status};

use crate::api::continuation;
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
        let after = continuation::decode(&r.container, &range, &r.continuation)?;
        let (page, read_glsn) = self
            .kv
            .scan(
                &r.container,
                &range,
                after.as_deref(),
                limit,
                level(r.consistency)?,
                seen,
            )
            .await?;
        let continuation = match page.items.last() {
            Some((key, _)) if page.more => continuation::encode(&r.container, &range, key),
            _ => String::new(),
        };
        Ok(Response::new(pb::ScanResponse {
            items: page
                .items
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

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ids::RegionId;
    use crate::limits::{
        CONTAINER_NAME_CHARS_MAX, GRPC_MESSAGE_BYTES_MAX, KEY_BYTES_MAX, SCAN_ITEM_BYTES_MAX,
        SCAN_ITEM_OVERHEAD_BYTES, SCAN_PAGE_BYTES_MAX, SCAN_RESPONSE_OVERHEAD_BYTES,
        VALUE_BYTES_MAX,
    };

    /// An item with every field at its largest: the longest container,
    /// key and value, and GLSN and timestamp at u64::MAX.
    fn maximal_item(key: String, value_len: usize) -> pb::Item {
        let glsn = Glsn::new(u64::MAX, u64::MAX);
        let container = "c".repeat(CONTAINER_NAME_CHARS_MAX);
        let item = ItemVersion {
            value: vec![0xff; value_len],
            etag: Etag::for_write(glsn),
            glsn,
            ts: u64::MAX,
            origin_region: RegionId::new(
                "a-long-region-name-of-sixty-four-characters-for-margin-0123456789",
            ),
        };
        item_to_wire(&container, key, item)
    }

    /// The page budget in `limits` counts each item as key + value +
    /// overhead: that must not underestimate the encoded item, and a page
    /// at the budget, or holding one maximal item, must fit one message.
    #[test]
    fn the_largest_scan_page_fits_one_grpc_message() {
        let key = "k".repeat(KEY_BYTES_MAX);
        let one = maximal_item(key.clone(), VALUE_BYTES_MAX);
        // The tag and length of the repeated field count as the item's.
        let item_len = pb::ScanResponse {
            items: vec![one.clone()],
            ..Default::default()
        }
        .encoded_len();
        assert!(
            item_len <= SCAN_ITEM_BYTES_MAX,
            "{item_len} > {SCAN_ITEM_BYTES_MAX}"
        );
        assert!(item_len - KEY_BYTES_MAX - VALUE_BYTES_MAX <= SCAN_ITEM_OVERHEAD_BYTES);

        let container = one.container.clone();
        let range = KeyRange::default();
        let envelope = |items: Vec<pb::Item>| pb::ScanResponse {
            items,
            continuation: continuation::encode(&container, &range, &key),
            read_glsn: Some(Glsn::new(u64::MAX, u64::MAX).into()),
            session_token: SessionToken(Glsn::new(u64::MAX, u64::MAX)).to_string(),
            served_by: Some(pb::ServedBy {
                region: "r".repeat(64),
                node_id: u64::MAX,
            }),
        };
        let overhead = envelope(vec![]).encoded_len();
        assert!(overhead <= SCAN_RESPONSE_OVERHEAD_BYTES, "{overhead}");

        let single = envelope(vec![one]).encoded_len();
        assert!(single <= GRPC_MESSAGE_BYTES_MAX, "{single}");
        // A page filled to the budget with medium items.
        let per_item = SCAN_PAGE_BYTES_MAX / 7;
        let value_len = per_item - KEY_BYTES_MAX - SCAN_ITEM_OVERHEAD_BYTES;
        let page = (0..7)
            .map(|_| maximal_item(key.clone(), value_len))
            .collect();
        let full = envelope(page).encoded_len();
        assert!(full <= GRPC_MESSAGE_BYTES_MAX, "{full}");
    }
}
