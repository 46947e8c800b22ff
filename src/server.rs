//! Starting and stopping one node: claim the data directory, open storage,
//! start the replica, serve the replica transport and the client API, and
//! form the replica set if it is new. This is the assembly: it sits above
//! the request logic (`node`) and the gRPC services (`api`), which do not
//! know it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic_reflection::pb as reflection_pb;
use tracing::Instrument;

use crate::api::admin::AdminService;
use crate::api::conflicts::ConflictsService;
use crate::api::faults::FaultsService;
use crate::api::kv::KvService;
use crate::api::status::OversizeNamed;
use crate::config::{Config, ConfigError, RaftConfig};
use crate::fault::{FaultInjection, Faults};
use crate::hlc::Hlc;
use crate::ids::{NodeId, RegionId, ReplicaId};
use crate::limits::GRPC_REQUEST_BYTES_MAX;
use crate::meta::MetaState;
use crate::node::calls::Calls;
use crate::node::kv::{Kv, KvSettings};
use crate::node::regions::{Geo, GeoOptions};
use crate::raft::meta_replica::{MetaReplica, MetaReplicaOptions};
use crate::raft::network::{AddressBook, Peers, Timeouts, Wan};
use crate::raft::replica::{Replica, ReplicaError, ReplicaOptions};
use crate::raft::service::ReplicaService;
use crate::shutdown::Shutdown;
use crate::storage::config::StorageConfig;
use crate::storage::data_dir::Identity;
use crate::storage::error::StorageError;
use crate::storage::store::Store;
use crate::transport::{self, Listener};
use crate::wire::pb::FILE_DESCRIPTOR_SET;
use crate::wire::pb::internal::replica_server::ReplicaServer;
use crate::wire::pb::v1::admin_server::AdminServer;
use crate::wire::pb::v1::conflicts_server::ConflictsServer;
use crate::wire::pb::v1::faults_server::FaultsServer;
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
    pub client: Listener,
    pub peer: Listener,
}

impl Listeners {
    pub async fn bind(client: SocketAddr, peer: SocketAddr) -> Result<Listeners, StartError> {
        let bind = |what, addr| async move {
            Listener::bind(addr).await.map_err(|e| StartError::Bind {
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
    /// `None` on a witness.
    replica: Option<Replica>,
    meta: MetaReplica,
    geo: Geo,
    stores: Vec<Store>,
    shutdown: Shutdown,
    servers: Vec<JoinHandle<()>>,
    /// Background tasks (meta upkeep, leases, shipping): they end at the
    /// shutdown signal and are awaited before raft stops, so no proposal
    /// of theirs meets a stopped raft.
    tasks: Vec<JoinHandle<()>>,
}

/// The meta group's heartbeat interval is at least this many WAN round
/// trips.
const META_HEARTBEAT_WAN_RTTS: u64 = 4;

/// The meta group keeps little: a small cache.
const META_CACHE_BYTES: u64 = 4 * 1024 * 1024;

impl Node {
    /// Starts a node from its configuration, binding its configured ports.
    /// `faults` says whether the node has a fault layer and whether clients
    /// may steer it (`meridian dev`) or not (`meridian server`).
    pub async fn start(config: Config, faults: FaultInjection) -> Result<Node, StartError> {
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
        faults: FaultInjection,
    ) -> Result<Node, StartError> {
        config.validate()?;
        // Before storage opens, so a mistyped crash point is reported
        // before any point could have been hit.
        crate::crash::arm_from_env();
        let region = match config.region() {
            Some(r) => r.name.clone(),
            None => RegionId::new(WITNESS_REGION),
        };
        let id = ReplicaId {
            region,
            node: config.node.id,
        };
        let span = tracing::info_span!("node", id = %id);
        let peers = account_peers(&config, faults.faults());
        let hlc = Arc::new(Hlc::default());
        faults.faults().register_clock(config.node.id, hlc.clone());
        let Groups {
            replica,
            meta,
            stores,
        } = open_groups(&config, &id, &hlc, &peers).await?;
        let client_addr = local_addr(&listeners.client, "clients")?;
        let peer_addr = local_addr(&listeners.peer, "replicas")?;
        let shutdown = Shutdown::new();
        let (geo, kv) = node_logic(&config, &replica, &meta, peers, hlc);
        let servers = start_servers(
            listeners,
            Serving {
                replica: replica.clone(),
                meta: meta.clone(),
                geo: geo.clone(),
                kv,
                faults: faults.steerable(),
            },
            &shutdown,
            &span,
        )
        .await?;
        if let Some(replica) = &replica {
            replica.bootstrap_if_new().instrument(span.clone()).await?;
        }
        meta.bootstrap_if_new().instrument(span.clone()).await?;
        let mut tasks = vec![tokio::spawn(
            meta.clone()
                .maintain(MetaState::init_command(&config.account), shutdown.clone())
                .instrument(span.clone()),
        )];
        tasks.extend(span.in_scope(|| geo.spawn_tasks(&shutdown)));
        span.in_scope(|| tracing::info!(%client_addr, %peer_addr, "node started"));
        Ok(Node {
            id,
            client_addr,
            peer_addr,
            replica,
            meta,
            geo,
            stores,
            shutdown,
            servers,
            tasks,
        })
    }

    pub fn is_witness(&self) -> bool {
        self.replica.is_none()
    }

    pub fn meta(&self) -> &MetaReplica {
        &self.meta
    }

    pub fn geo(&self) -> &Geo {
        &self.geo
    }

    /// This node's replica of its region. Panics on a witness, which has
    /// none: callers that may meet witnesses check `is_witness` first.
    pub fn replica(&self) -> &Replica {
        self.replica
            .as_ref()
            .expect("a witness holds no replica of a region")
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
            meta,
            geo,
            stores,
            shutdown,
            servers,
            tasks,
            ..
        } = self;
        // Peers and clients first, then background tasks, then raft: a
        // raft stopped under a live server answers with errors openraft logs.
        shutdown.signal();
        for handle in servers.into_iter().chain(tasks) {
            let abort = handle.abort_handle();
            if tokio::time::timeout(DRAIN_TIMEOUT, handle).await.is_err() {
                abort.abort();
            }
        }
        if let Some(replica) = &replica {
            replica.shutdown().await;
        }
        meta.shutdown().await;
        drop((replica, meta, geo));
        for store in stores {
            if let Err(e) = store.close(STORE_CLOSE_TIMEOUT).await {
                tracing::warn!(node = %id, "storage not closed cleanly: {e}");
            }
        }
        tracing::info!(node = %id, "node stopped");
    }
}

/// A node's two raft groups over their stores: its region's replica (none
/// on a witness) and its meta replica.
struct Groups {
    replica: Option<Replica>,
    meta: MetaReplica,
    stores: Vec<Store>,
}

async fn open_groups(
    config: &Config,
    id: &ReplicaId,
    hlc: &Arc<Hlc>,
    peers: &Peers,
) -> Result<Groups, StartError> {
    let identity = Identity::new(&config.account.name, id.region.clone(), id.node);
    let mut stores = Vec::new();
    let replica = if config.is_witness() {
        None
    } else {
        let store = Store::open(&config.node.data_dir, &config.storage, &identity)?;
        stores.push(store.clone());
        Some(start_replica(config, id, store, hlc.clone(), peers.clone()).await?)
    };
    let meta_storage = StorageConfig {
        cache_capacity_bytes: META_CACHE_BYTES,
        ..config.storage.clone()
    };
    let meta_store = Store::open(&config.node.data_dir.join("meta"), &meta_storage, &identity)?;
    stores.push(meta_store.clone());
    let meta = start_meta(config, meta_store, peers.clone()).await?;
    Ok(Groups {
        replica,
        meta,
        stores,
    })
}

/// The node's logic over its groups: the cross-region runtime, and on a
/// node of a region (not a witness) the request logic.
fn node_logic(
    config: &Config,
    replica: &Option<Replica>,
    meta: &MetaReplica,
    peers: Peers,
    hlc: Arc<Hlc>,
) -> (Geo, Option<Kv>) {
    let request_timeout = Duration::from_millis(config.transport.request_timeout_ms);
    let geo = Geo::new(GeoOptions {
        account: Arc::new(config.account.clone()),
        geo: config.geo.clone(),
        replica: replica.clone(),
        meta: meta.clone(),
        peers,
        request_timeout,
        clock: hlc.clone(),
    });
    let kv = replica.as_ref().map(|replica| {
        Kv::new(
            replica.clone(),
            geo.clone(),
            hlc,
            KvSettings {
                default_consistency: config.account.default_consistency,
                session_wait: Duration::from_millis(config.reads.session_wait_ms),
                request_timeout,
            },
        )
    });
    (geo, kv)
}

/// What a node's two servers serve.
struct Serving {
    replica: Option<Replica>,
    meta: MetaReplica,
    geo: Geo,
    kv: Option<Kv>,
    /// The fault layer clients may steer, if any.
    faults: Option<Faults>,
}

/// Starts the replica transport server and the client API server; both
/// end at the shutdown signal.
async fn start_servers(
    listeners: Listeners,
    serving: Serving,
    shutdown: &Shutdown,
    span: &tracing::Span,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let Serving {
        replica,
        meta,
        geo,
        kv,
        faults,
    } = serving;
    let calls = Arc::new(Calls {
        geo: geo.clone(),
        kv: kv.clone(),
        shutdown: shutdown.clone(),
    });
    let peer_server = serve_peers(
        listeners.peer,
        ReplicaService::server(replica, meta, calls),
        shutdown.clone(),
    )
    .instrument(span.clone());
    let client_server = serve_clients(listeners.client, kv, geo, faults, shutdown.clone())
        .await?
        .instrument(span.clone());
    Ok(vec![tokio::spawn(peer_server), tokio::spawn(client_server)])
}

fn local_addr(listener: &Listener, what: &'static str) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|e| StartError::Bind {
        what,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        reason: e.to_string(),
    })
}

/// The region a witness reports itself in (it holds none).
pub const WITNESS_REGION: &str = "witness";

/// Peers of the whole account: every node's peer address, the fault layer,
/// and the simulated WAN delay between regions.
fn account_peers(config: &Config, faults: Faults) -> Peers {
    let book: AddressBook = config
        .account
        .all_nodes()
        .map(|n| (n.id, n.peer_addr))
        .collect();
    let region_of = config
        .account
        .all_nodes()
        .map(|n| {
            let region = config.account.region_of(n.id).map_or_else(
                || RegionId::new(format!("witness-{}", n.id)),
                |r| r.name.clone(),
            );
            (n.id, region)
        })
        .collect();
    let wan = Wan {
        region_of,
        one_way: Duration::from_millis(config.geo.wan_rtt_ms) / 2,
    };
    let timeouts = Timeouts {
        connect: Duration::from_millis(config.transport.connect_timeout_ms),
        request: Duration::from_millis(config.transport.request_timeout_ms),
    };
    Peers::new(config.node.id, book, faults, wan, timeouts)
}

async fn start_replica(
    config: &Config,
    id: &ReplicaId,
    store: Store,
    hlc: Arc<Hlc>,
    peers: Peers,
) -> Result<Replica, StartError> {
    let region = config.region().expect("validated: the node is in a region");
    let members: BTreeSet<NodeId> = region.nodes.iter().map(|n| n.id).collect();
    let replica = Replica::start(ReplicaOptions {
        id: id.node,
        region: id.region.clone(),
        account: config.account.name.clone(),
        members,
        raft: config.raft.clone(),
        peers,
        store,
        hlc,
        geo_cap_bytes: config.geo.log_cap_bytes,
    })
    .await?;
    Ok(replica)
}

async fn start_meta(
    config: &Config,
    store: Store,
    peers: Peers,
) -> Result<MetaReplica, StartError> {
    let voters = config.account.meta_voters();
    let learners = config
        .account
        .all_nodes()
        .map(|n| n.id)
        .filter(|n| !voters.contains(n))
        .collect();
    // openraft gives an append one heartbeat interval to arrive, and meta
    // traffic crosses regions: the interval must cover the WAN round trip.
    let heartbeat = config
        .raft
        .heartbeat_interval_ms
        .max(META_HEARTBEAT_WAN_RTTS * config.geo.wan_rtt_ms);
    let election_min = config.raft.election_timeout_min_ms.max(5 * heartbeat);
    let raft = RaftConfig {
        heartbeat_interval_ms: heartbeat,
        election_timeout_min_ms: election_min,
        election_timeout_max_ms: config.raft.election_timeout_max_ms.max(2 * election_min),
        ..config.raft.clone()
    };
    Ok(MetaReplica::start(MetaReplicaOptions {
        id: config.node.id,
        account: config.account.name.clone(),
        voters,
        learners,
        raft,
        peers,
        store,
    })
    .await?)
}

/// Streams a client may open and reset before the server has accepted
/// them, per connection, before the connection is torn down with GOAWAY
/// `too_many_resets`. h2's default (20) is a defence against the "rapid
/// reset" attack, but it also punishes an honest client of a paused node:
/// every call that timed out during a stall (a frozen VM, a stuck disk) is
/// a HEADERS and a RST_STREAM waiting in the socket, all read at once on
/// resume, and the GOAWAY then fails every call in flight. This allows a
/// few seconds of a busy client's timeouts and still bounds the work one
/// connection can make the node do for nothing.
const HTTP2_PENDING_RESET_STREAMS_MAX: usize = 4096;
/// Streams the server itself may reset for a protocol error before it
/// closes the connection: hyper's default, kept and stated explicitly.
const HTTP2_LOCAL_ERROR_RESET_STREAMS_MAX: usize = 1024;

/// A server builder with the options both ports share, set explicitly.
fn server_builder() -> Server {
    Server::builder()
        .tcp_nodelay(true)
        .http2_max_pending_accept_reset_streams(Some(HTTP2_PENDING_RESET_STREAMS_MAX))
        .http2_max_local_error_reset_streams(Some(HTTP2_LOCAL_ERROR_RESET_STREAMS_MAX))
}

async fn serve_peers(
    listener: Listener,
    service: ReplicaServer<ReplicaService>,
    shutdown: Shutdown,
) {
    let router = server_builder().add_service(service);
    let result = transport::serve(router, listener, shutdown.signalled()).await;
    if let Err(e) = result {
        tracing::error!("replica transport server failed: {e}");
    }
}

/// The client API services a node serves; all `None` on a witness, which
/// holds no items.
struct ClientServices {
    kv: Option<OversizeNamed<KvServer<KvService>>>,
    admin: Option<OversizeNamed<AdminServer<AdminService>>>,
    conflicts: Option<OversizeNamed<ConflictsServer<ConflictsService>>>,
    faults: Option<OversizeNamed<FaultsServer<FaultsService>>>,
}

impl ClientServices {
    fn new(kv: Option<Kv>, geo: Geo, faults: Option<Faults>, shutdown: &Shutdown) -> Self {
        let Some(kv) = kv else {
            return ClientServices {
                kv: None,
                admin: None,
                conflicts: None,
                faults: None,
            };
        };
        let replica = kv.replica().clone();
        let account = Arc::new(geo.account().clone());
        // Kv sets its own limits (api/kv.rs); the others' requests are
        // small, and get the same decoding bound rather than tonic's default.
        let admin =
            AdminService::server(replica, geo).max_decoding_message_size(GRPC_REQUEST_BYTES_MAX);
        let conflicts = ConflictsService::server(kv.clone(), shutdown.clone())
            .max_decoding_message_size(GRPC_REQUEST_BYTES_MAX);
        let faults = FaultsService::server(account, faults)
            .max_decoding_message_size(GRPC_REQUEST_BYTES_MAX);
        ClientServices {
            kv: Some(OversizeNamed(KvService::server(kv))),
            admin: Some(OversizeNamed(admin)),
            conflicts: Some(OversizeNamed(conflicts)),
            faults: Some(OversizeNamed(faults)),
        }
    }

    /// The full names of the services served, for health and reflection.
    fn names(&self) -> Vec<&'static str> {
        fn name<S: NamedService>(s: &Option<S>) -> Option<&'static str> {
            s.as_ref().map(|_| S::NAME)
        }
        [
            name(&self.kv),
            name(&self.admin),
            name(&self.conflicts),
            name(&self.faults),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The names reflection lists besides the API: health and both versions of
/// reflection itself, whose descriptors are registered with it.
const SUPPORT_SERVICE_NAMES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// A reflection builder listing exactly `names`: the client port's
/// descriptors include the internal replica service, which it does not
/// serve, so the list is given rather than taken from the descriptors.
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(reflection_pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(reflection_pb::v1alpha::FILE_DESCRIPTOR_SET);
    names
        .iter()
        .chain(&SUPPORT_SERVICE_NAMES)
        .fold(builder, |b, name| b.with_service_name(*name))
}

async fn serve_clients(
    listener: Listener,
    kv: Option<Kv>,
    geo: Geo,
    faults: Option<Faults>,
    shutdown: Shutdown,
) -> Result<impl std::future::Future<Output = ()>, StartError> {
    let services = ClientServices::new(kv, geo, faults, &shutdown);
    let names = services.names();
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &names {
        health
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let grpc = |e: tonic_reflection::server::Error| StartError::Grpc(e.to_string());
    // grpcurl and grpc_cli of recent releases speak v1; grpcio's client
    // and older tools speak only v1alpha.
    let reflection_v1 = reflection(&names).build_v1().map_err(grpc)?;
    let reflection_v1alpha = reflection(&names).build_v1alpha().map_err(grpc)?;
    let router = server_builder()
        .add_optional_service(services.kv)
        .add_optional_service(services.admin)
        .add_optional_service(services.conflicts)
        .add_optional_service(services.faults)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(async move {
        let result = transport::serve(router, listener, shutdown.signalled()).await;
        if let Err(e) = result {
            tracing::error!("client API server failed: {e}");
        }
    })
}
