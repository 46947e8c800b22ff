//! The `Client` type: the `Kv` and `Admin` services over one tonic channel,
//! with explicit timeouts and message sizes, and the session tokens it
//! tracks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::client::endpoints::choose_endpoint;
use crate::client::errors::{CallKind, ClientError, ErrorDetail, classify, error_chain};
use crate::client::lag::ReplicationLag;
use crate::client::options::{ReadOptions, ScanRange, WriteOptions};
use crate::client::sessions::{SessionTokens, token_for_read};
use crate::consistency::Consistency;
use crate::glsn::{SessionToken, parse_session_token};
use crate::limits::GRPC_MESSAGE_BYTES_MAX;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::admin_client::AdminClient;
use crate::wire::pb::v1::kv_client::KvClient;

/// Where the CLI and the bench connect when no `--endpoint` is given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7070";
/// How long establishing the TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, end to end. Also sent to the server as
/// `grpc-timeout` so it can give up on work nobody waits for.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one endpoint. Cloning is cheap and clones share the
/// connection and the session tokens.
#[derive(Debug, Clone)]
pub struct Client {
    kv: KvClient<Channel>,
    admin: AdminClient<Channel>,
    // A std Mutex: every section is one map lookup or update with no
    // `.await` inside, so it is never held across a suspension point.
    sessions: Arc<Mutex<SessionTokens>>,
}

/// Opens one channel to `endpoint` with meridian's timeouts. The bench
/// opens several and shares each among many tasks.
pub async fn connect_channel(endpoint: &str) -> Result<Channel, ClientError> {
    let invalid = |message: String| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        message,
    };
    let endpoint_config = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| invalid(error_chain(&e)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // Requests are small and latency-bound: do not wait to coalesce.
        .tcp_nodelay(true);
    endpoint_config
        .connect()
        .await
        .map_err(|e| ClientError::Unavailable {
            code: Code::Unavailable,
            message: format!("cannot connect to {endpoint}: {}", error_chain(&e)),
            detail: ErrorDetail::default(),
        })
}

/// The endpoint to use for `preferred` regions: `endpoint` itself when the
/// list is empty, else a running node of the first preferred region that
/// has one, as `endpoint`'s `Admin.Status` reports the account.
pub async fn resolve_endpoint(endpoint: &str, preferred: &[String]) -> Result<String, ClientError> {
    if preferred.is_empty() {
        return Ok(endpoint.to_string());
    }
    let status = Client::connect(endpoint).await?.status().await?;
    choose_endpoint(&status, preferred)
}

impl Client {
    /// Connects eagerly, so a wrong address fails here rather than at the
    /// first request.
    pub async fn connect(endpoint: &str) -> Result<Client, ClientError> {
        Ok(Client::from_channel(connect_channel(endpoint).await?))
    }

    /// Connects to a running node of the first of `preferred` regions that
    /// has one (see [`resolve_endpoint`]); an empty list connects to
    /// `endpoint` itself.
    pub async fn connect_preferring(
        endpoint: &str,
        preferred: &[String],
    ) -> Result<Client, ClientError> {
        Client::connect(&resolve_endpoint(endpoint, preferred).await?).await
    }

    pub fn from_channel(channel: Channel) -> Client {
        let kv = KvClient::new(channel.clone())
            .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
        let admin = AdminClient::new(channel)
            .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
        Client {
            kv,
            admin,
            sessions: Arc::new(Mutex::new(SessionTokens::default())),
        }
    }

    /// Upsert.
    pub async fn put(
        &self,
        container: &str,
        key: &str,
        value: Vec<u8>,
        opts: &WriteOptions,
    ) -> Result<pb::WriteResponse, ClientError> {
        let req = pb::PutRequest {
            container: container.to_string(),
            key: key.to_string(),
            value,
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(opts.session_token),
            no_forward: opts.no_forward,
        };
        let result = self.kv.clone().put(with_deadline(req)).await;
        self.finish_write(container, result)
    }

    /// Fails with `Server { code: AlreadyExists }` when the key is present.
    pub async fn create(
        &self,
        container: &str,
        key: &str,
        value: Vec<u8>,
        opts: &WriteOptions,
    ) -> Result<pb::WriteResponse, ClientError> {
        let req = pb::CreateRequest {
            container: container.to_string(),
            key: key.to_string(),
            value,
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(opts.session_token),
            no_forward: opts.no_forward,
        };
        let result = self.kv.clone().create(with_deadline(req)).await;
        self.finish_write(container, result)
    }

    /// Fails with `NotFound` when absent, `FailedPrecondition` when
    /// `if_match` is given and differs from the current etag.
    pub async fn replace(
        &self,
        container: &str,
        key: &str,
        value: Vec<u8>,
        if_match: Option<String>,
        opts: &WriteOptions,
    ) -> Result<pb::WriteResponse, ClientError> {
        let req = pb::ReplaceRequest {
            container: container.to_string(),
            key: key.to_string(),
            value,
            if_match,
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(opts.session_token),
            no_forward: opts.no_forward,
        };
        let result = self.kv.clone().replace(with_deadline(req)).await;
        self.finish_write(container, result)
    }

    /// Fails with `NotFound` when absent, `FailedPrecondition` on an etag
    /// mismatch.
    pub async fn delete(
        &self,
        container: &str,
        key: &str,
        if_match: Option<String>,
        opts: &WriteOptions,
    ) -> Result<pb::WriteResponse, ClientError> {
        let req = pb::DeleteRequest {
            container: container.to_string(),
            key: key.to_string(),
            if_match,
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(opts.session_token),
            no_forward: opts.no_forward,
        };
        let result = self.kv.clone().delete(with_deadline(req)).await;
        self.finish_write(container, result)
    }

    /// `item` in the response is `None` when the key does not exist.
    pub async fn get(
        &self,
        container: &str,
        key: &str,
        opts: &ReadOptions,
    ) -> Result<pb::GetResponse, ClientError> {
        let req = pb::GetRequest {
            container: container.to_string(),
            key: key.to_string(),
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(self.read_token(container, opts)),
        };
        let result = self.kv.clone().get(with_deadline(req)).await;
        let response = result
            .map_err(|s| classify(s, CallKind::Read))?
            .into_inner();
        self.observe_token(container, &response.session_token);
        Ok(response)
    }

    /// One page of a scan. `page_items_max` of 0 asks for the server
    /// default; an empty `continuation` starts from the beginning, and an
    /// empty continuation in the response means there are no more pages.
    pub async fn scan(
        &self,
        container: &str,
        range: &ScanRange,
        page_items_max: u32,
        continuation: &str,
        opts: &ReadOptions,
    ) -> Result<pb::ScanResponse, ClientError> {
        let req = pb::ScanRequest {
            container: container.to_string(),
            prefix: range.prefix.clone().unwrap_or_default(),
            start: range.start.clone().unwrap_or_default(),
            end: range.end.clone().unwrap_or_default(),
            limit: page_items_max,
            continuation: continuation.to_string(),
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(self.read_token(container, opts)),
        };
        let result = self.kv.clone().scan(with_deadline(req)).await;
        let response = result
            .map_err(|s| classify(s, CallKind::Read))?
            .into_inner();
        self.observe_token(container, &response.session_token);
        Ok(response)
    }

    /// The account as the contacted node sees it.
    pub async fn status(&self) -> Result<pb::StatusResponse, ClientError> {
        let result = self
            .admin
            .clone()
            .status(with_deadline(pb::StatusRequest {}))
            .await;
        Ok(result
            .map_err(|s| classify(s, CallKind::Read))?
            .into_inner())
    }

    /// Each read region's replication lag, from the account status.
    pub async fn replication_lag(&self) -> Result<ReplicationLag, ClientError> {
        Ok(ReplicationLag::from_status(&self.status().await?))
    }

    /// The account configuration as the meta group holds it.
    pub async fn account(&self) -> Result<pb::AccountResponse, ClientError> {
        let result = self
            .admin
            .clone()
            .account(with_deadline(pb::AccountRequest {}))
            .await;
        Ok(result
            .map_err(|s| classify(s, CallKind::Read))?
            .into_inner())
    }

    /// Sets the failover priorities: every region of the account once,
    /// first choice first. Returns the order the meta group committed.
    pub async fn set_priorities(&self, regions: Vec<String>) -> Result<Vec<String>, ClientError> {
        let result = self
            .admin
            .clone()
            .set_priorities(with_deadline(pb::SetPrioritiesRequest { regions }))
            .await;
        Ok(result
            .map_err(|s| classify(s, CallKind::Write))?
            .into_inner()
            .regions)
    }

    /// The latest session token seen for `container`, if any.
    pub fn session_token(&self, container: &str) -> Option<SessionToken> {
        self.lock_sessions().latest(container)
    }

    fn finish_write(
        &self,
        container: &str,
        result: Result<tonic::Response<pb::WriteResponse>, tonic::Status>,
    ) -> Result<pb::WriteResponse, ClientError> {
        let response = result
            .map_err(|s| classify(s, CallKind::Write))?
            .into_inner();
        self.observe_token(container, &response.session_token);
        Ok(response)
    }

    fn read_token(&self, container: &str, opts: &ReadOptions) -> Option<SessionToken> {
        let tracked = self.lock_sessions().latest(container);
        token_for_read(opts, tracked)
    }

    fn observe_token(&self, container: &str, raw: &str) {
        match parse_session_token(raw) {
            Ok(Some(token)) => self.lock_sessions().observe(container, token),
            Ok(None) => {}
            // The request itself succeeded, so failing it would mislead the
            // caller; the token is only not tracked.
            Err(e) => {
                tracing::warn!(container, error = %e, "server sent a malformed session token")
            }
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, SessionTokens> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single insert), so a poisoned lock is usable.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn with_deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(REQUEST_TIMEOUT);
    request
}

fn wire_consistency(level: Option<Consistency>) -> i32 {
    level.map_or(pb::Consistency::Unspecified, pb::Consistency::from) as i32
}

fn wire_token(token: Option<SessionToken>) -> String {
    token.map(|t| t.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{names, start_echo_server, token};

    #[tokio::test]
    async fn connect_preferring_follows_status_and_admin_calls_round_trip() {
        let endpoint = start_echo_server().await;
        // Phase 1: an empty preference connects to the endpoint itself.
        let direct = Client::connect_preferring(&endpoint, &[]).await.unwrap();
        assert_eq!(direct.status().await.unwrap().write_region, "west");

        // Phase 2: east resolves to the stand-in's own address.
        let east = resolve_endpoint(&endpoint, &names(&["east"]))
            .await
            .unwrap();
        assert_eq!(east, endpoint);
        let unknown = Client::connect_preferring(&endpoint, &names(&["mars"]))
            .await
            .unwrap_err();
        assert!(
            matches!(unknown, ClientError::UnknownRegion { .. }),
            "{unknown}"
        );

        // Phase 3: Account and SetPriorities, and a refusal's name.
        let client = Client::connect_preferring(&endpoint, &names(&["north", "east"]))
            .await
            .unwrap();
        assert_eq!(client.account().await.unwrap().epoch, 3);
        let order = names(&["east", "west", "north"]);
        assert_eq!(client.set_priorities(order.clone()).await.unwrap(), order);
        let refused = client.set_priorities(Vec::new()).await.unwrap_err();
        assert_eq!(refused.error_name(), Some("INVALID_ARGUMENT"));
    }

    async fn echoed_token(client: &Client, container: &str, opts: &ReadOptions) -> String {
        let response = client.get(container, "k", opts).await.unwrap();
        String::from_utf8(response.item.unwrap().value).unwrap()
    }

    #[tokio::test]
    async fn session_reads_present_the_token_of_the_last_write() {
        // Phase 1: nothing written yet, so no token is sent.
        let client = Client::connect(&start_echo_server().await).await.unwrap();
        let session = ReadOptions {
            consistency: Some(Consistency::Session),
            session_token: None,
        };
        assert_eq!(echoed_token(&client, "c", &session).await, "");

        // Phase 2: two writes; a clone shares what the original tracked.
        let opts = WriteOptions::default();
        client.put("c", "a", b"1".to_vec(), &opts).await.unwrap();
        client
            .clone()
            .put("c", "b", b"2".to_vec(), &opts)
            .await
            .unwrap();
        assert_eq!(echoed_token(&client, "c", &session).await, "e1:2");
        assert_eq!(echoed_token(&client, "other", &session).await, "");

        // Phase 3: an eventual read needs no token; an explicit one wins.
        let eventual = ReadOptions {
            consistency: Some(Consistency::Eventual),
            session_token: None,
        };
        assert_eq!(echoed_token(&client, "c", &eventual).await, "");
        let explicit = ReadOptions {
            session_token: Some(token(1, 1)),
            ..session
        };
        assert_eq!(echoed_token(&client, "c", &explicit).await, "e1:1");
    }

    #[tokio::test]
    async fn errors_from_a_live_server_are_classified() {
        let client = Client::connect(&start_echo_server().await).await.unwrap();
        let opts = WriteOptions::default();
        let slow = client
            .put("c", "slow", Vec::new(), &opts)
            .await
            .unwrap_err();
        assert!(matches!(slow, ClientError::OutcomeUnknown { .. }), "{slow}");
        let exists = client
            .create("c", "k", Vec::new(), &opts)
            .await
            .unwrap_err();
        assert_eq!(exists.code(), Code::AlreadyExists);
    }

    #[tokio::test]
    async fn a_bad_endpoint_or_a_closed_port_fails_at_connect() {
        let invalid = Client::connect("not a uri").await.unwrap_err();
        assert!(
            matches!(invalid, ClientError::InvalidEndpoint { .. }),
            "{invalid}"
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let closed = Client::connect(&format!("http://{addr}"))
            .await
            .unwrap_err();
        assert!(closed.is_retryable(), "{closed}");
        assert!(closed.to_string().contains("cannot connect"), "{closed}");
    }

    #[test]
    fn wire_fields_encode_absence_as_the_proto_default() {
        assert_eq!(wire_consistency(None), 0);
        assert_eq!(
            wire_consistency(Some(Consistency::Session)),
            pb::Consistency::Session as i32
        );
        assert_eq!(wire_token(None), "");
        assert_eq!(wire_token(Some(token(1, 42))), "e1:42");
    }
}
