//! The server side of the replica transport: decodes envelopes, hands raft
//! messages to the group they name (the region's replica set or the meta
//! group), and node-level requests and streams to the node (`NodeCalls`).
//! This is the gRPC edge of node-to-node traffic: what the node answers is
//! domain values and `Error`s, encoded and mapped to statuses here.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::codec::decode;
use crate::command::Command;
use crate::error::Error;
use crate::geo::ship::StreamMessage;
use crate::ids::NodeId;
use crate::limits::PEER_MESSAGE_BYTES_MAX;
use crate::meta::MetaCommand;
use crate::raft::codec::encode;
use crate::raft::meta_replica::MetaReplica;
use crate::raft::replica::{Replica, ReplicaError, StatusQuery};
use crate::raft::types::{GROUP_META, GROUP_REGION};
use crate::wire::pb::internal::replica_server::{Replica as ReplicaRpc, ReplicaServer};
use crate::wire::pb::internal::{Envelope, Reply};

/// The messages of a stream a node serves, as the node produces them: an
/// error ends the stream.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<StreamMessage, Error>> + Send>>;

/// A stream of encoded messages, as `Stream` answers on the wire.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<Reply, Status>> + Send>>;

/// Node-level requests: the node answers them (leases, forwarded writes,
/// geo acknowledgements, geo streams), not raft. Payloads are encoded by
/// `raft::codec`; `node::calls` implements this.
#[tonic::async_trait]
pub trait NodeCalls: Send + Sync + 'static {
    async fn call(&self, from: NodeId, payload: Vec<u8>) -> Result<Vec<u8>, Error>;
    async fn stream(&self, from: NodeId, payload: Vec<u8>) -> Result<MessageStream, Error>;
}

/// Each message encoded on its own: a reader decodes the kind of message
/// it asked for.
fn encode_stream(stream: MessageStream) -> ReplyStream {
    Box::pin(stream.map(|item| match item {
        Ok(StreamMessage::Ship(m)) => Ok(Reply {
            payload: encode(&m),
        }),
        Ok(StreamMessage::Resync(m)) => Ok(Reply {
            payload: encode(&m),
        }),
        Err(e) => Err(Status::from(e)),
    }))
}

pub struct ReplicaService {
    me: NodeId,
    /// `None` on a witness, which holds no items.
    region: Option<Replica>,
    meta: MetaReplica,
    calls: Arc<dyn NodeCalls>,
}

impl ReplicaService {
    pub fn server(
        region: Option<Replica>,
        meta: MetaReplica,
        calls: Arc<dyn NodeCalls>,
    ) -> ReplicaServer<ReplicaService> {
        ReplicaServer::new(ReplicaService {
            me: meta.id(),
            region,
            meta,
            calls,
        })
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX)
    }

    /// Refuses a message meant for another node: a stale address book must
    /// fail loudly rather than feed one replica's traffic to another.
    fn open(&self, request: Request<Envelope>) -> Result<Envelope, Error> {
        let envelope = request.into_inner();
        if NodeId(envelope.to_node_id) != self.me {
            return Err(Error::Refused(format!(
                "message for {} reached {}",
                NodeId(envelope.to_node_id),
                self.me
            )));
        }
        if envelope.group != GROUP_REGION && envelope.group != GROUP_META {
            return Err(Error::InvalidArgument(format!(
                "unknown raft group {}",
                envelope.group
            )));
        }
        Ok(envelope)
    }

    fn region(&self) -> Result<&Replica, Error> {
        self.region.as_ref().ok_or_else(|| {
            Error::Refused(format!(
                "{} is a witness: it holds no replica of a region",
                self.me
            ))
        })
    }
}

fn decode_payload<T: serde::de::DeserializeOwned>(
    what: &'static str,
    envelope: &Envelope,
) -> Result<T, Error> {
    decode(what, &envelope.payload).map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<Reply>, Status> {
    Ok(Response::new(Reply {
        payload: encode(value),
    }))
}

/// Routes one raft message to the raft of the envelope's group.
macro_rules! to_group {
    ($self:ident, $envelope:ident, $what:literal, $method:ident) => {
        if $envelope.group == GROUP_META {
            let rpc = decode_payload($what, &$envelope)?;
            reply(&$self.meta.raft().$method(rpc).await)
        } else {
            let rpc = decode_payload($what, &$envelope)?;
            reply(&$self.region()?.raft().$method(rpc).await)
        }
    };
}

#[tonic::async_trait]
impl ReplicaRpc for ReplicaService {
    async fn append_entries(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        to_group!(self, envelope, "append entries", append_entries)
    }

    async fn vote(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        to_group!(self, envelope, "vote", vote)
    }

    async fn install_snapshot(
        &self,
        request: Request<Envelope>,
    ) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        to_group!(self, envelope, "snapshot chunk", install_snapshot)
    }

    async fn propose(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        if envelope.group == GROUP_META {
            let command: MetaCommand = decode_payload("forwarded meta command", &envelope)?;
            return reply(&self.meta.propose_local(command).await);
        }
        let command: Command = decode_payload("forwarded command", &envelope)?;
        let result: Result<_, ReplicaError> = self.region()?.propose(command).await;
        reply(&result)
    }

    async fn read_index(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        self.open(request)?;
        reply(&self.region()?.read_index().await)
    }

    async fn node_status(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let query: StatusQuery = decode_payload("status query", &envelope)?;
        reply(&Ok::<_, ReplicaError>(
            self.region()?.status_with(query.digest),
        ))
    }

    async fn call(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let payload = self
            .calls
            .call(NodeId(envelope.from_node_id), envelope.payload)
            .await?;
        Ok(Response::new(Reply { payload }))
    }

    type StreamStream = ReplyStream;

    async fn stream(
        &self,
        request: Request<Envelope>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let envelope = self.open(request)?;
        let stream = self
            .calls
            .stream(NodeId(envelope.from_node_id), envelope.payload)
            .await?;
        Ok(Response::new(encode_stream(stream)))
    }
}
