//! Shared test support: start an in-process account, talk to nodes over
//! gRPC, and wait for conditions with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use meridian::consistency::Consistency;
use meridian::ids::{NodeId, RegionId};
use meridian::local::{LocalAccount, LocalOptions};
use meridian::wire::pb::v1 as pb;
use meridian::wire::pb::v1::kv_client::KvClient;
use tonic::transport::Channel;

/// Long enough for elections on a loaded 2-core CI machine; a test that
/// needs it fails with the condition's name, not a hang.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,openraft=error".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Prints a phase heading, so a failing test's log shows where it was.
pub fn phase(name: &str) {
    eprintln!("=== phase: {name}");
}

pub struct TestAccount {
    pub local: LocalAccount,
    pub dir: tempfile::TempDir,
}

pub async fn start_region(replicas: usize) -> TestAccount {
    start_with(replicas, |_| {}).await
}

pub async fn start_with(replicas: usize, tweak: impl FnOnce(&mut LocalOptions)) -> TestAccount {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = LocalOptions::new(dir.path());
    options.replicas = replicas;
    // Faster elections and shorter request deadlines keep fault tests
    // quick; the ratios stay as in production (heartbeat << election).
    options.raft.heartbeat_interval_ms = 50;
    options.raft.election_timeout_min_ms = 300;
    options.raft.election_timeout_max_ms = 600;
    options.transport.request_timeout_ms = 2000;
    options.reads.session_wait_ms = 300;
    tweak(&mut options);
    let local = LocalAccount::start(options).await.expect("start account");
    TestAccount { local, dir }
}

pub fn west() -> RegionId {
    RegionId::new("west")
}

impl TestAccount {
    pub async fn leader(&self) -> NodeId {
        self.local
            .wait_for_leader(&west(), DEADLINE)
            .await
            .expect("a leader within the deadline")
    }

    pub async fn client(&self, node: NodeId) -> KvClient<Channel> {
        connect(&self.local.endpoint(node)).await
    }
}

pub async fn connect(endpoint: &str) -> KvClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    KvClient::new(channel)
}

pub async fn put(
    client: &mut KvClient<Channel>,
    container: &str,
    key: &str,
    value: &[u8],
) -> Result<pb::WriteResponse, tonic::Status> {
    client
        .put(pb::PutRequest {
            container: container.into(),
            key: key.into(),
            value: value.to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn get(
    client: &mut KvClient<Channel>,
    container: &str,
    key: &str,
    consistency: Consistency,
) -> Result<pb::GetResponse, tonic::Status> {
    client
        .get(pb::GetRequest {
            container: container.into(),
            key: key.into(),
            consistency: pb::Consistency::from(consistency) as i32,
            session_token: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Polls `check` until it returns `Some`, failing the test with `what`
/// once `DEADLINE` passes.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestAccount {
    pub fn others(&self, node: NodeId) -> Vec<NodeId> {
        self.local
            .node_ids()
            .into_iter()
            .filter(|n| *n != node)
            .collect()
    }

    /// Cuts `node` off from every other node, both ways.
    pub fn isolate(&self, node: NodeId) {
        self.local.faults().isolate(node, &self.local.node_ids());
    }

    pub fn status(&self, node: NodeId) -> meridian::raft::replica::ReplicaStatus {
        self.local
            .node(node)
            .expect("node running")
            .replica()
            .status()
    }

    /// Waits until `node` has applied at least `index`.
    pub async fn wait_applied(&self, node: NodeId, index: u64) {
        wait_for(&format!("{node} to apply index {index}"), || async move {
            (self.status(node).applied_index >= index).then_some(())
        })
        .await
    }
}

/// The `meridian-error` name a status carries, or "".
pub fn error_name(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("meridian-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Writes `count` keys `{prefix}{i}` through `client`; every one must be
/// acknowledged.
pub async fn put_many(client: &mut KvClient<Channel>, container: &str, prefix: &str, count: usize) {
    for i in 0..count {
        put(
            client,
            container,
            &format!("{prefix}{i}"),
            format!("v{i}").as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("put {prefix}{i}: {e}"));
    }
}

/// Whether `node` holds every key `{prefix}{i}` in its applied state.
pub async fn holds_all(
    account: &TestAccount,
    node: NodeId,
    container: &str,
    prefix: &str,
    count: usize,
) -> bool {
    let mut c = account.client(node).await;
    holds_all_via(&mut c, container, prefix, count, Consistency::Eventual).await
}

/// Whether reads through `client` at `level` find every key `{prefix}{i}`.
pub async fn holds_all_via(
    client: &mut KvClient<Channel>,
    container: &str,
    prefix: &str,
    count: usize,
    level: Consistency,
) -> bool {
    for i in 0..count {
        match get(client, container, &format!("{prefix}{i}"), level).await {
            Ok(r) if r.item.is_some() => {}
            _ => return false,
        }
    }
    true
}

/// Starts `regions` regions (west, east, north, ...) of `replicas` nodes,
/// with short leases so strong-set changes happen within a test, and
/// service-managed failover off: on a loaded machine a short write lease
/// can lapse, and tests about shipping expect west to keep the writes.
/// The failover tests turn it on.
pub async fn start_regions(
    regions: usize,
    replicas: usize,
    tweak: impl FnOnce(&mut LocalOptions),
) -> TestAccount {
    start_with(replicas, |o| {
        o.regions = regions;
        o.leases.ttl_ms = 1500;
        o.leases.renew_ms = 250;
        o.leases.safety_margin_ms = 250;
        o.transport.request_timeout_ms = 4000;
        o.failover.enabled = false;
        tweak(o);
    })
    .await
}

pub fn region(name: &str) -> RegionId {
    RegionId::new(name)
}

/// A read with an explicit session token.
pub async fn get_with_token(
    client: &mut KvClient<Channel>,
    container: &str,
    key: &str,
    consistency: Consistency,
    token: &str,
) -> Result<pb::GetResponse, tonic::Status> {
    client
        .get(pb::GetRequest {
            container: container.into(),
            key: key.into(),
            consistency: pb::Consistency::from(consistency) as i32,
            session_token: token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn put_with_token(
    client: &mut KvClient<Channel>,
    container: &str,
    key: &str,
    consistency: Consistency,
    token: &str,
) -> Result<pb::WriteResponse, tonic::Status> {
    client
        .put(pb::PutRequest {
            container: container.into(),
            key: key.into(),
            value: b"v".to_vec(),
            consistency: pb::Consistency::from(consistency) as i32,
            session_token: token.into(),
            no_forward: false,
        })
        .await
        .map(|r| r.into_inner())
}

impl TestAccount {
    /// The first node of `region`.
    pub fn first_of(&self, region: &RegionId) -> NodeId {
        self.local.region_nodes(region)[0]
    }

    /// The account status as `node` reports it.
    pub async fn account_status(&self, node: NodeId) -> pb::StatusResponse {
        let channel = tonic::transport::Endpoint::from_shared(self.local.endpoint(node))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        meridian::wire::pb::v1::admin_client::AdminClient::new(channel)
            .status(pb::StatusRequest::default())
            .await
            .expect("status")
            .into_inner()
    }

    /// Waits until the status row of `name` is in `state`.
    pub async fn wait_region_state(&self, name: &str, state: &str) {
        let via = self.first_of(&west());
        wait_for(&format!("region {name} to be {state}"), || async move {
            let status = self.account_status(via).await;
            status
                .regions
                .iter()
                .any(|r| r.name == name && r.state == state)
                .then_some(())
        })
        .await
    }
}
