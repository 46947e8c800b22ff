//! Stand-in servers and fixtures for the client's and the bench's tests.

use crate::api::status::ERROR_METADATA_KEY;
use crate::glsn::{Glsn, SessionToken};
use crate::wire::pb::v1 as pb;

pub(crate) fn token(epoch: u64, lsn: u64) -> SessionToken {
    SessionToken(Glsn::new(epoch, lsn))
}

/// A stand-in `Kv` server: a put returns the next token `e1:<n>`; a get
/// echoes the session token it received as the item's value; a put of
/// the key `slow` reports a server-side deadline.
#[derive(Default)]
struct EchoKv {
    writes: std::sync::atomic::AtomicU64,
}

#[tonic::async_trait]
impl pb::kv_server::Kv for EchoKv {
    async fn put(
        &self,
        request: tonic::Request<pb::PutRequest>,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        if request.get_ref().key == "slow" {
            return Err(tonic::Status::deadline_exceeded("slow"));
        }
        let lsn = 1 + self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(tonic::Response::new(pb::WriteResponse {
            session_token: format!("e1:{lsn}"),
            ..Default::default()
        }))
    }
    async fn create(
        &self,
        _: tonic::Request<pb::CreateRequest>,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        Err(tonic::Status::already_exists("present"))
    }
    async fn replace(
        &self,
        _: tonic::Request<pb::ReplaceRequest>,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("replace"))
    }
    async fn delete(
        &self,
        _: tonic::Request<pb::DeleteRequest>,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("delete"))
    }
    async fn get(
        &self,
        request: tonic::Request<pb::GetRequest>,
    ) -> Result<tonic::Response<pb::GetResponse>, tonic::Status> {
        let item = pb::Item {
            value: request.into_inner().session_token.into_bytes(),
            ..Default::default()
        };
        Ok(tonic::Response::new(pb::GetResponse {
            item: Some(item),
            ..Default::default()
        }))
    }
    async fn scan(
        &self,
        _: tonic::Request<pb::ScanRequest>,
    ) -> Result<tonic::Response<pb::ScanResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("scan"))
    }
}

pub(crate) fn status_node(region: &str, node_id: u64, state: &str, addr: &str) -> pb::NodeStatus {
    pb::NodeStatus {
        region: region.to_string(),
        node_id,
        role: "follower".to_string(),
        state: state.to_string(),
        client_addr: addr.to_string(),
        leader_id: Some(1),
        ..Default::default()
    }
}

fn region_row(name: &str, priority: u32, lag: Option<(u64, u64)>) -> pb::RegionStatus {
    pb::RegionStatus {
        name: name.to_string(),
        priority,
        role: if lag.is_none() { "write" } else { "read" }.to_string(),
        state: "online".to_string(),
        lag_ops: lag.map(|(ops, _)| ops),
        lag_ms: lag.map(|(_, ms)| ms),
        ..Default::default()
    }
}

/// A three-region account whose running nodes all listen on `addr`:
/// west (write region) n1 and n2, east n5 running, north n9 unreachable.
/// East trails by 2 ops / 5 ms.
pub(crate) fn three_region_status(addr: &str) -> pb::StatusResponse {
    pb::StatusResponse {
        account: "acct".to_string(),
        nodes: vec![
            status_node("west", 2, "running", addr),
            status_node("west", 1, "running", addr),
            status_node("east", 5, "running", addr),
            status_node("north", 9, "unreachable", addr),
        ],
        write_region: "west".to_string(),
        epoch: 3,
        regions: vec![
            region_row("west", 1, None),
            region_row("east", 2, Some((2, 5))),
            region_row("north", 3, Some((40, 900))),
        ],
        ..Default::default()
    }
}

/// A stand-in `Admin` server: status is [`three_region_status`] with
/// its own address, and priorities are echoed back.
struct EchoAdmin {
    addr: String,
}

#[tonic::async_trait]
impl pb::admin_server::Admin for EchoAdmin {
    async fn status(
        &self,
        _: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StatusResponse>, tonic::Status> {
        Ok(tonic::Response::new(three_region_status(&self.addr)))
    }
    async fn account(
        &self,
        _: tonic::Request<pb::AccountRequest>,
    ) -> Result<tonic::Response<pb::AccountResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::AccountResponse {
            account: "acct".to_string(),
            write_region: "west".to_string(),
            epoch: 3,
            ..Default::default()
        }))
    }
    async fn set_priorities(
        &self,
        request: tonic::Request<pb::SetPrioritiesRequest>,
    ) -> Result<tonic::Response<pb::SetPrioritiesResponse>, tonic::Status> {
        let regions = request.into_inner().regions;
        if regions.is_empty() {
            let mut status = tonic::Status::invalid_argument("no regions");
            status
                .metadata_mut()
                .insert(ERROR_METADATA_KEY, "INVALID_ARGUMENT".parse().unwrap());
            return Err(status);
        }
        Ok(tonic::Response::new(pb::SetPrioritiesResponse { regions }))
    }
    // The client's tests do not exercise these.
    async fn failover(
        &self,
        _: tonic::Request<pb::FailoverRequest>,
    ) -> Result<tonic::Response<pb::FailoverResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
    async fn pause(
        &self,
        _: tonic::Request<pb::PauseRequest>,
    ) -> Result<tonic::Response<pb::PauseResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
    async fn resume(
        &self,
        _: tonic::Request<pb::ResumeRequest>,
    ) -> Result<tonic::Response<pb::PauseResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
    async fn history(
        &self,
        _: tonic::Request<pb::HistoryRequest>,
    ) -> Result<tonic::Response<pb::HistoryResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
}

/// Also used by the bench's tests.
pub(crate) async fn start_echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let admin = EchoAdmin {
        addr: addr.to_string(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::kv_server::KvServer::new(EchoKv::default()))
            .add_service(pb::admin_server::AdminServer::new(admin))
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

pub(crate) fn names(regions: &[&str]) -> Vec<String> {
    regions.iter().map(|r| r.to_string()).collect()
}
