//! The server side of the replica transport: decodes envelopes, hands
//! openraft messages to raft and node-level requests to `Replica`.

use tonic::{Request, Response, Status};

use crate::command::Command;
use crate::ids::NodeId;
use crate::limits::PEER_MESSAGE_BYTES_MAX;
use crate::raft::codec::{decode, encode};
use crate::raft::replica::{Replica, ReplicaError};
use crate::wire::pb::internal::replica_server::{Replica as ReplicaRpc, ReplicaServer};
use crate::wire::pb::internal::{Envelope, Reply};

pub struct ReplicaService {
    replica: Replica,
}

impl ReplicaService {
    pub fn server(replica: Replica) -> ReplicaServer<ReplicaService> {
        ReplicaServer::new(ReplicaService { replica })
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX)
    }

    /// Refuses a message meant for another node: a stale address book must
    /// fail loudly rather than feed one replica's traffic to another.
    fn open(&self, request: Request<Envelope>) -> Result<Envelope, Status> {
        let envelope = request.into_inner();
        if NodeId(envelope.to_node_id) != self.replica.id() {
            return Err(Status::failed_precondition(format!(
                "message for {} reached {}",
                NodeId(envelope.to_node_id),
                self.replica.id()
            )));
        }
        Ok(envelope)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        envelope: &Envelope,
    ) -> Result<T, Status> {
        decode(what, &envelope.payload).map_err(|e| Status::invalid_argument(e.to_string()))
    }
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<Reply>, Status> {
    Ok(Response::new(Reply {
        payload: encode(value),
    }))
}

#[tonic::async_trait]
impl ReplicaRpc for ReplicaService {
    async fn append_entries(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let rpc = self.decode("append entries", &envelope)?;
        reply(&self.replica.raft().append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let rpc = self.decode("vote", &envelope)?;
        reply(&self.replica.raft().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<Envelope>,
    ) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let rpc = self.decode("snapshot chunk", &envelope)?;
        reply(&self.replica.raft().install_snapshot(rpc).await)
    }

    async fn propose(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        let envelope = self.open(request)?;
        let command: Command = self.decode("forwarded command", &envelope)?;
        let result: Result<_, ReplicaError> = self.replica.propose(command).await;
        reply(&result)
    }

    async fn read_index(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        self.open(request)?;
        reply(&self.replica.read_index().await)
    }

    async fn node_status(&self, request: Request<Envelope>) -> Result<Response<Reply>, Status> {
        self.open(request)?;
        reply(&Ok::<_, ReplicaError>(self.replica.status()))
    }
}
