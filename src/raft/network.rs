//! The client side of the replica transport: one cached tonic channel per
//! peer, explicit timeouts and message limits, and the fault layer in front
//! of every message. openraft's `RaftNetwork` is implemented on top, and
//! so are the node-level calls (forwarded writes, read index, status).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::EmptyNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tonic::transport::{Channel, Endpoint};

use crate::fault::{Faults, Verdict};
use crate::ids::{NodeId, RegionId};
use crate::limits::{APPEND_ENTRIES_BYTES_TARGET, PEER_MESSAGE_BYTES_MAX};
use crate::raft::codec::{decode, encode};
use crate::raft::types::{GROUP_REGION, Group};
use crate::wire::pb::internal::{Envelope, Reply, replica_client::ReplicaClient};

/// The replica RPCs, for dispatch and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Propose,
    ReadIndex,
    NodeStatus,
    /// A node-level request (`node::calls`).
    Call,
}

/// Why a peer call failed, split by what the caller may safely do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The request never left this node: retrying is safe.
    #[error("{to} unreachable: {reason}")]
    Unreachable { to: NodeId, reason: String },
    /// The request may have been delivered and acted on.
    #[error("call to {to} failed after sending: {reason}")]
    Failed { to: NodeId, reason: String },
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// Peer addresses (raft traffic) by node id.
pub type AddressBook = HashMap<NodeId, SocketAddr>;

/// Simulated wide-area latency (`meridian dev --wan-rtt`): half the round
/// trip is added to each direction of every message between two nodes of
/// different regions (a witness is a region of its own).
#[derive(Debug, Clone, Default)]
pub struct Wan {
    pub region_of: HashMap<NodeId, RegionId>,
    pub one_way: Duration,
}

impl Wan {
    fn delay(&self, a: NodeId, b: NodeId) -> Duration {
        if self.one_way.is_zero() || self.region_of.get(&a) == self.region_of.get(&b) {
            Duration::ZERO
        } else {
            self.one_way
        }
    }
}

#[derive(Clone)]
pub struct Peers {
    me: NodeId,
    /// `Envelope.group` of the raft messages this handle sends.
    group: u32,
    book: Arc<AddressBook>,
    faults: Faults,
    wan: Arc<Wan>,
    timeouts: Timeouts,
    /// A std lock: held to look up or insert a channel, never across an
    /// `.await`. tonic channels reconnect by themselves.
    channels: Arc<Mutex<HashMap<NodeId, ReplicaClient<Channel>>>>,
}

impl Peers {
    pub fn new(
        me: NodeId,
        book: AddressBook,
        faults: Faults,
        wan: Wan,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            me,
            group: GROUP_REGION,
            book: Arc::new(book),
            faults,
            wan: Arc::new(wan),
            timeouts,
            channels: Arc::default(),
        }
    }

    /// The same peers (and connections) for another raft group's messages.
    pub fn for_group(&self, group: u32) -> Peers {
        Peers {
            group,
            ..self.clone()
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Waits out the fault layer's and the WAN's delay from `from` to `to`,
    /// or says the message is dropped.
    async fn pass(&self, from: NodeId, to: NodeId) -> Result<(), ()> {
        let delay = match self.faults.verdict(from, to) {
            Verdict::Drop => return Err(()),
            Verdict::Deliver { delay } => delay + self.wan.delay(from, to),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        self.timeouts.request
    }

    fn client(&self, to: NodeId) -> Result<ReplicaClient<Channel>, PeerError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(&to) {
            return Ok(c.clone());
        }
        let addr = self.book.get(&to).ok_or_else(|| PeerError::Unreachable {
            to,
            reason: "not in the address book".into(),
        })?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| PeerError::Unreachable {
                to,
                reason: e.to_string(),
            })?
            .connect_timeout(self.timeouts.connect)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let client = ReplicaClient::new(crate::transport::connect_lazy(endpoint))
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
        channels.insert(to, client.clone());
        Ok(client)
    }

    /// Sends one message to `to` and returns the reply's payload, through
    /// the fault layer in both directions.
    pub async fn call(
        &self,
        to: NodeId,
        rpc: Rpc,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, PeerError> {
        if self.pass(self.me, to).await.is_err() {
            return Err(PeerError::Unreachable {
                to,
                reason: "link cut by the fault layer".into(),
            });
        }
        let mut client = self.client(to)?;
        let mut request = tonic::Request::new(Envelope {
            to_node_id: to.0,
            from_node_id: self.me.0,
            payload,
            group: self.group,
        });
        request.set_timeout(timeout);
        let sent = tokio::time::timeout(timeout, dispatch(&mut client, rpc, request)).await;
        let reply = match sent {
            Err(_) => {
                return Err(PeerError::Failed {
                    to,
                    reason: format!("no reply within {timeout:?}"),
                });
            }
            Ok(Err(status)) => return Err(classify(to, status)),
            Ok(Ok(reply)) => reply,
        };
        match self.pass(to, self.me).await {
            Err(()) => Err(PeerError::Failed {
                to,
                reason: "reply dropped by the fault layer".into(),
            }),
            Ok(()) => Ok(reply.into_inner().payload),
        }
    }

    /// Opens a node-level stream at `to`. Every message is passed through
    /// the fault layer and the WAN delay as it arrives (delays overlap, as
    /// on a real link); a cut link ends the stream with an error.
    pub async fn open_stream(
        &self,
        to: NodeId,
        payload: Vec<u8>,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Vec<u8>, PeerError>>, PeerError> {
        if self.pass(self.me, to).await.is_err() {
            return Err(PeerError::Unreachable {
                to,
                reason: "link cut by the fault layer".into(),
            });
        }
        let mut client = self.client(to)?;
        let request = tonic::Request::new(Envelope {
            to_node_id: to.0,
            from_node_id: self.me.0,
            payload,
            group: self.group,
        });
        let opened = tokio::time::timeout(self.timeouts.request, client.stream(request)).await;
        let stream = match opened {
            Err(_) => {
                return Err(PeerError::Failed {
                    to,
                    reason: "stream not opened in time".into(),
                });
            }
            Ok(Err(status)) => return Err(classify(to, status)),
            Ok(Ok(response)) => response.into_inner(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_MESSAGES_QUEUED);
        // Each message is stamped as it arrives and handed on once its
        // delay (the WAN's and any fault's) has passed since then, so the
        // delay is latency, as on a real link, not a cost paid per message
        // in turn: that would cap a stream at one message per delay.
        let (delayed_tx, delayed_rx) = tokio::sync::mpsc::channel(STREAM_MESSAGES_IN_FLIGHT);
        tokio::spawn(self.clone().stamp_arrivals(to, stream, delayed_tx));
        tokio::spawn(deliver_when_due(delayed_rx, tx));
        Ok(rx)
    }

    /// Reads the stream from `to` and hands on each message stamped with
    /// when it is due: its arrival plus the fault layer's and the WAN's
    /// delay. Ends after passing on an error or a cut by the fault layer,
    /// at the end of the stream, or when nobody reads any more.
    async fn stamp_arrivals(
        self,
        to: NodeId,
        mut stream: tonic::Streaming<Reply>,
        delayed_tx: tokio::sync::mpsc::Sender<Stamped>,
    ) {
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = delayed_tx.closed() => return,
            };
            let arrived = tokio::time::Instant::now();
            let item = match next {
                Ok(Some(Reply { payload })) => Ok(payload),
                Ok(None) => return,
                Err(status) => Err(classify(to, status)),
            };
            let (due, item) = match self.faults.stream_verdict(to, self.me) {
                Verdict::Drop => {
                    let cut = Err(PeerError::Failed {
                        to,
                        reason: "stream cut by the fault layer".into(),
                    });
                    let _ = delayed_tx.send((arrived, cut)).await;
                    return;
                }
                Verdict::Deliver { delay } => (arrived + delay + self.wan.delay(to, self.me), item),
            };
            let failed = item.is_err();
            if delayed_tx.send((due, item)).await.is_err() || failed {
                return;
            }
        }
    }
}

/// A stream message (or the error that ends the stream) and the instant
/// it is due at its reader.
type Stamped = (tokio::time::Instant, Result<Vec<u8>, PeerError>);

/// Hands each stamped message on to the reader once it is due; ends after
/// an error, or when the reader is gone.
async fn deliver_when_due(
    mut delayed_rx: tokio::sync::mpsc::Receiver<Stamped>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, PeerError>>,
) {
    while let Some((due, item)) = delayed_rx.recv().await {
        tokio::time::sleep_until(due).await;
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// Stream messages buffered between the network and their consumer.
const STREAM_MESSAGES_QUEUED: usize = 64;
/// Stream messages that may be on their way through an emulated delay at
/// once; past it, reading from the network waits.
const STREAM_MESSAGES_IN_FLIGHT: usize = 1024;

async fn dispatch(
    client: &mut ReplicaClient<Channel>,
    rpc: Rpc,
    request: tonic::Request<Envelope>,
) -> Result<tonic::Response<crate::wire::pb::internal::Reply>, tonic::Status> {
    match rpc {
        Rpc::AppendEntries => client.append_entries(request).await,
        Rpc::Vote => client.vote(request).await,
        Rpc::InstallSnapshot => client.install_snapshot(request).await,
        Rpc::Propose => client.propose(request).await,
        Rpc::ReadIndex => client.read_index(request).await,
        Rpc::NodeStatus => client.node_status(request).await,
        Rpc::Call => client.call(request).await,
    }
}

/// A refused connection means the request never left; anything else after
/// the call started may have reached the peer.
fn classify(to: NodeId, status: tonic::Status) -> PeerError {
    let text = format!("{status}");
    let never_sent = status.code() == tonic::Code::Unavailable
        && (text.contains("tcp connect")
            || text.contains("Connection refused")
            || text.contains("connection refused"));
    if never_sent {
        PeerError::Unreachable { to, reason: text }
    } else {
        PeerError::Failed { to, reason: text }
    }
}

/// When an append of `entries` encodes to more than the target, how many
/// entries to send instead (at least one: a single maximal value always
/// fits a peer message).
pub fn entries_hint(payload_bytes: usize, entries: usize) -> Option<u64> {
    if payload_bytes <= APPEND_ENTRIES_BYTES_TARGET || entries <= 1 {
        return None;
    }
    let per_entry = payload_bytes.div_ceil(entries).max(1);
    Some((APPEND_ENTRIES_BYTES_TARGET / per_entry).clamp(1, entries - 1) as u64)
}

impl<C: Group> RaftNetworkFactory<C> for Peers {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, _node: &EmptyNode) -> PeerConnection {
        PeerConnection {
            peers: self.clone(),
            target: NodeId(target),
        }
    }
}

/// openraft's view of one peer.
pub struct PeerConnection {
    peers: Peers,
    target: NodeId,
}

type RaftRpcError<E = openraft::error::Infallible> = RPCError<u64, EmptyNode, RaftError<u64, E>>;

impl PeerConnection {
    async fn raft_call<Resp, E>(
        &self,
        rpc: Rpc,
        payload: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RaftRpcError<E>>
    where
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let reply = self
            .peers
            .call(self.target, rpc, payload, option.hard_ttl())
            .await
            .map_err(|e| match e {
                PeerError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                PeerError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        let result: Result<Resp, RaftError<u64, E>> =
            decode("raft reply", &reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target.0, e)))
    }
}

impl<C: Group> RaftNetwork<C> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RaftRpcError> {
        let entries = rpc.entries.len();
        let payload = encode(&rpc);
        if let Some(hint) = entries_hint(payload.len(), entries) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.raft_call(Rpc::AppendEntries, payload, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RaftRpcError<InstallSnapshotError>> {
        self.raft_call(Rpc::InstallSnapshot, encode(&rpc), &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RaftRpcError> {
        self.raft_call(Rpc::Vote, encode(&rpc), &option).await
    }

    /// Back off from a peer that is down instead of spinning on it; short
    /// enough that a restarted peer is caught up quickly.
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_are_cut_to_the_byte_target() {
        assert_eq!(entries_hint(1024, 10), None);
        assert_eq!(
            entries_hint(APPEND_ENTRIES_BYTES_TARGET * 10, 1),
            None,
            "one entry always goes"
        );
        // 100 entries of 1 MiB: about 4 fit.
        assert_eq!(entries_hint(100 * 1024 * 1024, 100), Some(4));
        // Entries bigger than the target go one at a time.
        assert_eq!(entries_hint(3 * 2 * 1024 * 1024 * 3, 3), Some(1));
        // Never a hint as large as what was refused.
        assert_eq!(entries_hint(APPEND_ENTRIES_BYTES_TARGET + 1, 2), Some(1));
    }
}
