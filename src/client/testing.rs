//! Stand-in servers and fixtures for the client's and the bench's tests.

use std::sync::Arc;

use crate::api::status::{ERROR_METADATA_KEY, RETRY_AFTER_METADATA_KEY};
use crate::glsn::{Glsn, SessionToken};
use crate::wire::pb::v1 as pb;

pub(crate) fn token(epoch: u64, lsn: u64) -> SessionToken {
    SessionToken(Glsn::new(epoch, lsn))
}

/// A stand-in `Kv` server: a put returns the next token `e1:<n>`; a get
/// echoes the session token it received as the item's value. Some keys
/// script a put's failure: `slow` reports a server-side deadline,
/// `throttled` is THROTTLED once (retry after 20 ms), `no-lease` is
/// UNAVAILABLE once, `down` is UNAVAILABLE every time. `puts` counts the
/// puts received per key.
#[derive(Default)]
pub(crate) struct EchoKv {
    writes: std::sync::atomic::AtomicU64,
    puts: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl EchoKv {
    pub(crate) fn puts(&self, key: &str) -> u64 {
        self.puts.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// The scripted failure of the `nth` put (1 first) of `key`, if any.
    fn scripted(key: &str, nth: u64) -> Option<tonic::Status> {
        let named = |mut status: tonic::Status, name: &str| {
            let metadata = status.metadata_mut();
            metadata.insert(ERROR_METADATA_KEY, name.parse().unwrap());
            if name == "THROTTLED" {
                metadata.insert(RETRY_AFTER_METADATA_KEY, "20".parse().unwrap());
            }
            status
        };
        match (key, nth) {
            ("slow", _) => Some(tonic::Status::deadline_exceeded("slow")),
            ("throttled", 1) => Some(named(
                tonic::Status::resource_exhausted("lagging"),
                "THROTTLED",
            )),
            ("no-lease", 1) | ("down", _) => {
                Some(named(tonic::Status::unavailable("no lease"), "UNAVAILABLE"))
            }
            _ => None,
        }
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for EchoKv {
    async fn put(
        &self,
        request: tonic::Request<pb::PutRequest>,
    ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
        let key = request.get_ref().key.clone();
        let nth = {
            let mut puts = self.puts.lock().unwrap();
            let count = puts.entry(key.clone()).or_default();
            *count += 1;
            *count
        };
        if let Some(status) = EchoKv::scripted(&key, nth) {
            return Err(status);
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
    /// Where no server listens: north's node in the account.
    closed_addr: String,
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
        Ok(tonic::Response::new(three_region_account(
            &self.addr,
            &self.closed_addr,
        )))
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
    async fn create_container(
        &self,
        _: tonic::Request<pb::CreateContainerRequest>,
    ) -> Result<tonic::Response<pb::CreateContainerResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
    async fn list_containers(
        &self,
        _: tonic::Request<pb::ListContainersRequest>,
    ) -> Result<tonic::Response<pb::ListContainersResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
    async fn get_container(
        &self,
        _: tonic::Request<pb::GetContainerRequest>,
    ) -> Result<tonic::Response<pb::GetContainerResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in the stand-in"))
    }
}

/// The account `EchoAdmin` reports: west (the write region, epoch 3) and
/// east have one node each at `addr`, north one at `closed_addr`.
pub(crate) fn three_region_account(addr: &str, closed_addr: &str) -> pb::AccountResponse {
    let region = |name: &str, priority, node_id, client_addr: &str| pb::AccountRegion {
        name: name.to_string(),
        priority,
        nodes: vec![pb::AccountNode {
            node_id,
            client_addr: client_addr.to_string(),
            meta_voter: true,
        }],
    };
    pb::AccountResponse {
        account: "acct".to_string(),
        write_region: "west".to_string(),
        epoch: 3,
        regions: vec![
            region("west", 1, 1, addr),
            region("east", 2, 5, addr),
            region("north", 3, 9, closed_addr),
        ],
        ..Default::default()
    }
}

/// Starts the stand-in `Kv` and `Admin` servers on a free port; returns
/// their endpoint and the `Kv` side, to count what it received.
pub(crate) async fn start_echo() -> (String, Arc<EchoKv>) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let admin = EchoAdmin {
        addr: addr.to_string(),
        closed_addr,
    };
    let kv = Arc::new(EchoKv::default());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::kv_server::KvServer::from_arc(kv.clone()))
            .add_service(pb::admin_server::AdminServer::new(admin))
            .serve_with_incoming(incoming),
    );
    (format!("http://{addr}"), kv)
}

/// Also used by the bench's tests.
pub(crate) async fn start_echo_server() -> String {
    start_echo().await.0
}

pub(crate) fn names(regions: &[&str]) -> Vec<String> {
    regions.iter().map(|r| r.to_string()).collect()
}
