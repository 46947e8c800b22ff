//! Connections: one tonic channel per node endpoint, with meridian's
//! timeouts and message sizes. A direct client opens one eagerly; the
//! router keeps a bounded set of lazy ones, so a node that is down costs
//! nothing until a request picks it, and then fails as "never sent".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::client::errors::{ClientError, ErrorDetail, error_chain};
use crate::limits::GRPC_MESSAGE_BYTES_MAX;
use crate::wire::pb::v1::admin_client::AdminClient;
use crate::wire::pb::v1::conflicts_client::ConflictsClient;
use crate::wire::pb::v1::faults_client::FaultsClient;
use crate::wire::pb::v1::kv_client::KvClient;

/// How long establishing the TCP connection of a direct client may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for a routed client, shorter: a node that does not accept a
/// connection in this time is treated as down and another one is tried,
/// within the operation's deadline.
pub const ROUTED_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one request may take, end to end. Also sent to the server as
/// `grpc-timeout` so it can give up on work nobody waits for. A routed
/// request gets at most what is left of its operation's deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Channels a router keeps; the account's nodes plus the endpoints given
/// stay far below it, and reaching it (an account whose addresses keep
/// changing) only drops them all, to be reopened as needed.
const CHANNELS_MAX: usize = 256;

/// Opens one channel to `endpoint` with meridian's timeouts, eagerly. The
/// bench opens several and shares each among many tasks.
pub async fn connect_channel(endpoint: &str) -> Result<Channel, ClientError> {
    connect_channel_timed(endpoint, REQUEST_TIMEOUT).await
}

/// [`connect_channel`] for requests that may take `request_timeout`: an
/// admin call that may wait for a switchover needs more than the default.
pub(crate) async fn connect_channel_timed(
    endpoint: &str,
    request_timeout: Duration,
) -> Result<Channel, ClientError> {
    let config = endpoint_config(endpoint, CONNECT_TIMEOUT)?.timeout(request_timeout);
    crate::transport::connect(config)
        .await
        .map_err(|e| ClientError::Unavailable {
            code: Code::Unavailable,
            message: format!("cannot connect to {endpoint}: {}", error_chain(&e)),
            detail: ErrorDetail::default(),
        })
}

fn endpoint_config(endpoint: &str, connect_timeout: Duration) -> Result<Endpoint, ClientError> {
    let config =
        Endpoint::from_shared(endpoint.to_string()).map_err(|e| ClientError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            message: error_chain(&e),
        })?;
    Ok(config
        .connect_timeout(connect_timeout)
        .timeout(REQUEST_TIMEOUT)
        // Requests are small and latency-bound: do not wait to coalesce.
        .tcp_nodelay(true))
}

pub(crate) fn kv(channel: Channel) -> KvClient<Channel> {
    KvClient::new(channel)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

pub(crate) fn admin(channel: Channel) -> AdminClient<Channel> {
    AdminClient::new(channel)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

pub(crate) fn conflicts(channel: Channel) -> ConflictsClient<Channel> {
    ConflictsClient::new(channel)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

pub(crate) fn faults(channel: Channel) -> FaultsClient<Channel> {
    FaultsClient::new(channel)
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

/// A request with its timeout, which tonic enforces on this side and
/// sends to the server.
pub(crate) fn timed<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The router's lazy channels by endpoint.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    // A std Mutex: each section is one lookup or insert, no `.await`.
    by_endpoint: Mutex<HashMap<String, Channel>>,
}

impl Channels {
    /// Checks that `endpoint` is a usable URI without connecting.
    pub fn check(endpoint: &str) -> Result<(), ClientError> {
        endpoint_config(endpoint, ROUTED_CONNECT_TIMEOUT).map(|_| ())
    }

    pub fn get(&self, endpoint: &str) -> Result<Channel, ClientError> {
        let mut map = self
            .by_endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = map.get(endpoint) {
            return Ok(channel.clone());
        }
        if map.len() >= CHANNELS_MAX {
            map.clear();
        }
        let channel =
            crate::transport::connect_lazy(endpoint_config(endpoint, ROUTED_CONNECT_TIMEOUT)?);
        map.insert(endpoint.to_string(), channel.clone());
        Ok(channel)
    }
}
