//! Starting and stopping one node: claim the data directory, open storage,
//! start the replica, serve the replica transport and the client API, and
//! form the replica set if it is new.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::Instrument;

use crate::api::admin::AdminService;
use crate::api::kv::KvService;
use crate::config::{Config, ConfigError};
use crate::fault::Faults;
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::node::kv::{Kv, KvSettings};
use crate::raft::network::{AddressBook, Peers, Timeouts};
use crate::raft::replica::{Replica, ReplicaError, ReplicaOptions};
use crate::raft::service::ReplicaService;
use crate::shutdown::Shutdown;
use crate::storage::data_dir::Identity;
use crate::storage::error::StorageError;
use crate::storage::store::Store;
use crate::wire::pb::FILE_DESCRIPTOR_SET;
use crate::wire::pb::v1::kv_server::KvServer;

/// How long a stopping node lets in-flight requests finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stopping node waits for raft's tasks to let go of storage.
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen for {what} on {addr}: {reason}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("starting the replica: {0}")]
    Replica(#[from] ReplicaError),
    #[error("gRPC setup: {0}")]
    Grpc(String),
}

/// The two sockets a node serves. Bound before start so a caller (the dev
/// account, tests) can use port 0 and learn the ports first.
pub struct Listeners {
    pub client: TcpListener,
    pub peer: TcpListener,
}

impl Listeners {
    pub async fn bind(client: SocketAddr, peer: SocketAddr) -> Result<Listeners, StartError> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
                what,
                addr,
                reason: e.to_string(),
            })
        };
        Ok(Listeners {
            client: bind("clients", client).await?,
            peer: bind("replicas", peer).await?,
        })
    }
}

pub struct Node {
    pub id: ReplicaId,
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    replica: Replica,
    store: Store,
    shutdown: Shutdown,
    servers: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts a node from its configuration, binding its configured ports.
    pub async fn start(config: Config, faults: Faults) -> Result<Node, StartError> {
        config.validate()?;
        let me = config.address().ok_or_else(|| ConfigError {
            problems: vec![format!("node {} is listed in no region", config.node.id)],
        })?;
        let client = config.node.client_listen.unwrap_or(me.client_addr);
        let peer = config.node.peer_listen.unwrap_or(me.peer_addr);
        let listeners = Listeners::bind(client, peer).await?;
        Self::start_with(config, listeners, faults).await
    }

    pub async fn start_with(
        config: Config,
        listeners: Listeners,
        faults: Faults,
    ) -> Result<Node, StartError> {
        config.validate()?;
        // Before storage opens, so a mistyped crash point is reported
        // before any point could have been hit.
        crate::crash::arm_from_env();
        let region_config = config.region().cloned().ok_or_else(|| ConfigError {
            problems: vec![format!("node {} is listed in no region", config.node.id)],
        })?;
        let id = ReplicaId {
            region: region_config.name.clone(),
            node: config.node.id,
        };
        let span = tracing::info_span!("node", id = %id);
        let identity = Identity::new(&config.account.name, id.region.clone(), id.node);
        let store = Store::open(&config.node.data_dir, &config.storage, &identity)?;
        let hlc = Arc::new(Hlc::default());
        let replica = start_replica(&config, &id, store.clone(), hlc.clone(), faults).await?;
        let client_addr = local_addr(&listeners.client, "clients")?;
        let peer_addr = local_addr(&listeners.peer, "replicas")?;
        let shutdown = Shutdown::new();
        let kv = Kv::new(
            replica.clone(),
            hlc,
            KvSettings {
                default_consistency: config.account.default_consistency,
                session_wait: Duration::from_millis(config.reads.session_wait_ms),
                request_timeout: Duration::from_millis(config.transport.request_timeout_ms),
            },
        );
        let account = Arc::new(config.account.clone());
        let peer_server =
            serve_peers(listeners.peer, replica.clone(), shutdown.clone()).instrument(span.clone());
        let client_server = serve_clients(listeners.client, kv, account, shutdown.clone())
            .await?
            .instrument(span.clone());
        let servers = vec![tokio::spawn(peer_server), tokio::spawn(client_server)];
        replica.bootstrap_if_new().instrument(span.clone()).await?;
        span.in_scope(|| tracing::info!(%client_addr, %peer_addr, "node started"));
        Ok(Node {
            id,
            client_addr,
            peer_addr,
            replica,
            store,
            shutdown,
            servers,
        })
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn node_id(&self) -> NodeId {
        self.id.node
    }

    pub fn region(&self) -> &RegionId {
        &self.id.region
    }

    /// Stops serving, stops raft, flushes and closes storage: when this
    /// returns the data directory is free. In-flight requests get
    /// `DRAIN_TIMEOUT` to finish.
    pub async fn stop(self) {
        let Node {
            id,
            replica,
            store,
            shutdown,
            servers,
            ..
        } = self;
        shutdown.signal();
        replica.shutdown().await;
        for server in servers {
            let abort = server.abort_handle();
            if tokio::time::timeout(DRAIN_TIMEOUT, server).await.is_err() {
                abort.abort();
            }
        }
        drop(replica);
        match store.close(STORE_CLOSE_TIMEOUT).await {
            Ok(()) => tracing::info!(node = %id, "node stopped"),
            Err(e) => tracing::warn!(node = %id, "node stopped, storage not closed cleanly: {e}"),
        }
    }
}

/// Accepted connections with TCP_NODELAY. `Server::tcp_nodelay` applies
/// only to listeners tonic binds itself; ours are bound beforehand, and
/// without it Nagle's algorithm meets delayed ACKs and adds ~40 ms to a
/// small response.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

fn local_addr(listener: &TcpListener, what: &'static str) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|e| StartError::Bind {
        what,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        reason: e.to_string(),
    })
}

async fn start_replica(
    config: &Config,
    id: &ReplicaId,
    store: Store,
    hlc: Arc<Hlc>,
    faults: Faults,
) -> Result<Replica, StartError> {
    let region = config.region().expect("validated: the node is in a region");
    let book: AddressBook = region.nodes.iter().map(|n| (n.id, n.peer_addr)).collect();
    let members: BTreeSet<NodeId> = region.nodes.iter().map(|n| n.id).collect();
    let timeouts = Timeouts {
        connect: Duration::from_millis(config.transport.connect_timeout_ms),
        request: Duration::from_millis(config.transport.request_timeout_ms),
    };
    let replica = Replica::start(ReplicaOptions {
        id: id.node,
        region: id.region.clone(),
        account: config.account.name.clone(),
        members,
        raft: config.raft.clone(),
        peers: Peers::new(id.node, book, faults, timeouts),
        store,
        hlc,
    })
    .await?;
    Ok(replica)
}

async fn serve_peers(listener: TcpListener, replica: Replica, shutdown: Shutdown) {
    let result = Server::builder()
        .tcp_nodelay(true)
        .add_service(ReplicaService::server(replica))
        .serve_with_incoming_shutdown(incoming(listener), shutdown.signalled())
        .await;
    if let Err(e) = result {
        tracing::error!("replica transport server failed: {e}");
    }
}

async fn serve_clients(
    listener: TcpListener,
    kv: Kv,
    account: Arc<crate::config::AccountConfig>,
    shutdown: Shutdown,
) -> Result<impl std::future::Future<Output = ()>, StartError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<KvServer<KvService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Grpc(e.to_string()))?;
    let replica = kv.replica().clone();
    let router = Server::builder()
        .tcp_nodelay(true)
        .add_service(KvService::server(kv))
        .add_service(AdminService::server(replica, account))
        .add_service(health_service)
        .add_service(reflection);
    Ok(async move {
        let result = router
            .serve_with_incoming_shutdown(incoming(listener), shutdown.signalled())
            .await;
        if let Err(e) = result {
            tracing::error!("client API server failed: {e}");
        }
    })
}
