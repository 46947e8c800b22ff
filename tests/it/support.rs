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
