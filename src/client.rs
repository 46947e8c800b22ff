//! A thin Rust client for one meridian endpoint: the `Kv` and `Admin`
//! services over one tonic channel, with explicit timeouts and message
//! sizes, session tokens tracked per container, and errors that tell a
//! caller whether a retry is safe and what the server named the refusal.
//!
//! Region preference: [`Client::connect_preferring`] asks one endpoint for
//! the account's status and connects to a running node of the first
//! preferred region that has one, so reads are served there. Writes sent to
//! a read region are forwarded by the server to the write region (or
//! refused with `NOT_WRITE_REGION` under `no_forward`). The choice is made
//! once, at connect; re-routing on failover is not done here.
//!
//! Invariants: a write whose outcome is unknown is reported as
//! [`ClientError::OutcomeUnknown`] and never retried here; the tracked
//! session token of a container only moves forward.

use std::collections::{BTreeSet, HashMap};
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

use crate::api::status::{ERROR_METADATA_KEY, RETRY_AFTER_METADATA_KEY, WRITE_REGION_METADATA_KEY};

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
/// How many containers' session tokens are remembered; beyond it the
/// smallest token is folded into a shared floor (see `SessionTokens`).
pub const SESSION_CONTAINERS_MAX: usize = 1024;
/// The node state in `Admin.Status` of a node that can serve requests.
pub const NODE_STATE_RUNNING: &str = "running";
/// The region role in `Admin.Status` of the region that accepts writes.
pub const REGION_ROLE_WRITE: &str = "write";

/// Per-request options of a read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// `None` means the account default.
    pub consistency: Option<Consistency>,
    /// `None` lets the client present the latest token it has seen.
    pub session_token: Option<SessionToken>,
}

/// Per-request options of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `None` means the account default.
    pub consistency: Option<Consistency>,
    pub session_token: Option<SessionToken>,
    /// Refuse (NOT_WRITE_REGION) instead of forwarding when the endpoint is
    /// not in the write region.
    pub no_forward: bool,
}

/// Which keys a scan visits; `None` fields do not constrain it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRange {
    pub prefix: Option<String>,
    /// Inclusive.
    pub start: Option<String>,
    /// Exclusive.
    pub end: Option<String>,
}

/// What a server said about a refusal beyond its gRPC code, read from the
/// status metadata `api::status` writes: the error's stable name
/// (`NOT_WRITE_REGION`, `THROTTLED`, ...) and, when given, when a retry may
/// succeed and which region accepts writes. Empty for transport errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    pub name: Option<String>,
    pub retry_after_ms: Option<u64>,
    pub write_region: Option<String>,
}

impl ErrorDetail {
    fn from_metadata(metadata: &MetadataMap) -> ErrorDetail {
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        ErrorDetail {
            name: text(ERROR_METADATA_KEY),
            retry_after_ms: text(RETRY_AFTER_METADATA_KEY).and_then(|v| v.parse().ok()),
            write_region: text(WRITE_REGION_METADATA_KEY),
        }
    }
}

/// Printed after the server's message, e.g. ` [NOT_WRITE_REGION, write
/// region: west]`; nothing when the server sent no detail.
impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(name.clone());
        }
        if let Some(ms) = self.retry_after_ms {
            parts.push(format!("retry after {ms} ms"));
        }
        if let Some(region) = &self.write_region {
            parts.push(format!("write region: {region}"));
        }
        if parts.is_empty() {
            return Ok(());
        }
        write!(f, " [{}]", parts.join(", "))
    }
}

/// What went wrong, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The endpoint string is not a usable URI; retrying cannot help.
    #[error("invalid endpoint {endpoint:?}: {message}")]
    InvalidEndpoint { endpoint: String, message: String },
    /// A preferred region the account does not have; retrying cannot help.
    #[error("region {region:?} is not in the account; its regions are: {}", known.join(", "))]
    UnknownRegion { region: String, known: Vec<String> },
    /// No preferred region has a running node with a client address. Nothing
    /// was sent, so a retry is safe once a node is back.
    #[error("no running node in the preferred regions ({})", regions.join(", "))]
    NoRunningNode { regions: Vec<String> },
    /// No server acted on the request (connection refused, stream refused,
    /// server unavailable), or the request was a read: safe to retry.
    #[error("unavailable ({code:?}): {message}{detail}")]
    Unavailable {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// A write that timed out or was cancelled in flight: it may or may not
    /// have committed. Read the key (or compare etags) before writing again.
    #[error(
        "outcome unknown ({code:?}): the write may or may not have committed: {message}{detail}"
    )]
    OutcomeUnknown {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
    /// The server answered with this status.
    #[error("{code:?}: {message}{detail}")]
    Server {
        code: Code,
        message: String,
        detail: ErrorDetail,
    },
}

impl ClientError {
    /// The gRPC code this error corresponds to, for counting and exit codes.
    pub fn code(&self) -> Code {
        match self {
            ClientError::InvalidEndpoint { .. } | ClientError::UnknownRegion { .. } => {
                Code::InvalidArgument
            }
            ClientError::NoRunningNode { .. } => Code::Unavailable,
            ClientError::Unavailable { code, .. }
            | ClientError::OutcomeUnknown { code, .. }
            | ClientError::Server { code, .. } => *code,
        }
    }

    /// True when sending the same request again cannot apply a write twice.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable { .. } | ClientError::NoRunningNode { .. }
        )
    }

    /// The server's stable name for the error (`meridian-error`), if it
    /// sent one.
    pub fn error_name(&self) -> Option<&str> {
        match self {
            ClientError::Unavailable { detail, .. }
            | ClientError::OutcomeUnknown { detail, .. }
            | ClientError::Server { detail, .. } => detail.name.as_deref(),
            _ => None,
        }
    }
}

/// One read region's replication lag behind the write region, as the
/// write region measures it; `None` where it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRegionLag {
    pub region: String,
    pub lag_ops: Option<u64>,
    pub lag_ms: Option<u64>,
}

/// The lag part of `Admin.Status`: how many regions the account has and
/// the lag of each read region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationLag {
    pub regions: usize,
    pub read_regions: Vec<ReadRegionLag>,
}

impl ReplicationLag {
    fn from_status(status: &pb::StatusResponse) -> ReplicationLag {
        let read_regions = status
            .regions
            .iter()
            .filter(|r| r.role != REGION_ROLE_WRITE)
            .map(|r| ReadRegionLag {
                region: r.name.clone(),
                lag_ops: r.lag_ops,
                lag_ms: r.lag_ms,
            })
            .collect();
        ReplicationLag {
            regions: account_regions(status).len(),
            read_regions,
        }
    }
}

/// Whether a request changes state, which decides how a timeout is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Read,
    Write,
}

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

/// The token a read presents: the caller's, else the tracked one when the
/// read may be a SESSION read. With no explicit level the account default
/// might be SESSION, and presenting a token to a weaker level is harmless.
fn token_for_read(opts: &ReadOptions, tracked: Option<SessionToken>) -> Option<SessionToken> {
    if opts.session_token.is_some() {
        return opts.session_token;
    }
    match opts.consistency {
        None | Some(Consistency::Session) => tracked,
        Some(_) => None,
    }
}

/// The latest session token seen per container, bounded in size.
#[derive(Debug, Default)]
struct SessionTokens {
    by_container: HashMap<String, SessionToken>,
    /// The highest token evicted to keep the map bounded, presented for
    /// containers without their own entry. A GLSN orders all writes of the
    /// account, so a higher token than needed is still correct: at worst the
    /// replica waits for more of the log.
    evicted_max: Option<SessionToken>,
}

impl SessionTokens {
    fn observe(&mut self, container: &str, token: SessionToken) {
        if let Some(current) = self.by_container.get_mut(container) {
            *current = (*current).max(token);
            return;
        }
        if self.by_container.len() >= SESSION_CONTAINERS_MAX {
            self.evict_smallest();
        }
        self.by_container.insert(container.to_string(), token);
    }

    fn latest(&self, container: &str) -> Option<SessionToken> {
        self.by_container
            .get(container)
            .copied()
            .or(self.evicted_max)
    }

    fn evict_smallest(&mut self) {
        let smallest = self
            .by_container
            .iter()
            .min_by_key(|(_, token)| **token)
            .map(|(name, token)| (name.clone(), *token));
        if let Some((name, token)) = smallest {
            self.by_container.remove(&name);
            self.evicted_max = self.evicted_max.max(Some(token));
        }
    }
}

/// Picks the endpoint of a running node of the first region in
/// `preferred` that has one. Within a region the leader comes first (a
/// write or a strong read then needs no extra hop), then the lowest node id,
/// so the choice is the same on every run. Pure, for testing.
fn choose_endpoint(
    status: &pb::StatusResponse,
    preferred: &[String],
) -> Result<String, ClientError> {
    let known = account_regions(status);
    if let Some(unknown) = preferred.iter().find(|r| !known.contains(r.as_str())) {
        return Err(ClientError::UnknownRegion {
            region: unknown.clone(),
            known: known.iter().map(|r| r.to_string()).collect(),
        });
    }
    for region in preferred {
        let mut running: Vec<&pb::NodeStatus> = status
            .nodes
            .iter()
            .filter(|n| &n.region == region && n.state == NODE_STATE_RUNNING)
            .filter(|n| !n.client_addr.is_empty())
            .collect();
        running.sort_by_key(|n| (n.leader_id != Some(n.node_id), n.node_id));
        if let Some(node) = running.first() {
            return Ok(with_scheme(&node.client_addr));
        }
    }
    Err(ClientError::NoRunningNode {
        regions: preferred.to_vec(),
    })
}

/// Every region the status names, from its region rows and its nodes: a
/// server that fills in only one of them still answers the question.
fn account_regions(status: &pb::StatusResponse) -> BTreeSet<&str> {
    let from_rows = status.regions.iter().map(|r| r.name.as_str());
    let from_nodes = status.nodes.iter().map(|n| n.region.as_str());
    from_rows.chain(from_nodes).collect()
}

/// Status reports client addresses as `host:port`; tonic needs a URI.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Maps a gRPC status to what the caller can do about it.
fn classify(status: tonic::Status, kind: CallKind) -> ClientError {
    let code = status.code();
    let message = status.message().to_string();
    let detail = ErrorDetail::from_metadata(status.metadata());
    match (code, kind) {
        // tonic reports refused connections and refused streams as
        // UNAVAILABLE: the request never reached a server that acted on it.
        (Code::Unavailable, _) => ClientError::Unavailable {
            code,
            message,
            detail,
        },
        // tonic reports its own request timeout as CANCELLED, the server's
        // as DEADLINE_EXCEEDED; either way a write may have committed.
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Write) => {
            ClientError::OutcomeUnknown {
                code,
                message,
                detail,
            }
        }
        (Code::DeadlineExceeded | Code::Cancelled, CallKind::Read) => ClientError::Unavailable {
            code,
            message,
            detail,
        },
        _ => ClientError::Server {
            code,
            message,
            detail,
        },
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

/// tonic's transport errors print only their outermost layer ("transport
/// error"); the cause a person needs is further down the chain.
fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::glsn::Glsn;

    fn token(epoch: u64, lsn: u64) -> SessionToken {
        SessionToken(Glsn::new(epoch, lsn))
    }

    #[test]
    fn a_write_timeout_is_an_unknown_outcome_and_a_read_timeout_is_retryable() {
        for code in [Code::DeadlineExceeded, Code::Cancelled] {
            let write = classify(tonic::Status::new(code, "late"), CallKind::Write);
            assert!(matches!(write, ClientError::OutcomeUnknown { .. }));
            assert!(!write.is_retryable());
            let read = classify(tonic::Status::new(code, "late"), CallKind::Read);
            assert!(read.is_retryable());
            assert_eq!(read.code(), code);
        }
    }

    #[test]
    fn unavailable_is_retryable_and_server_refusals_are_not() {
        let down = classify(tonic::Status::unavailable("refused"), CallKind::Write);
        assert!(down.is_retryable());
        let exists = classify(tonic::Status::already_exists("k"), CallKind::Write);
        assert_eq!(
            exists,
            ClientError::Server {
                code: Code::AlreadyExists,
                message: "k".to_string(),
                detail: ErrorDetail::default(),
            }
        );
        assert!(!exists.is_retryable());
    }

    #[test]
    fn tracked_tokens_only_move_forward() {
        let mut tokens = SessionTokens::default();
        tokens.observe("c", token(1, 5));
        tokens.observe("c", token(1, 3));
        assert_eq!(tokens.latest("c"), Some(token(1, 5)));
        tokens.observe("c", token(2, 1));
        assert_eq!(tokens.latest("c"), Some(token(2, 1)));
        assert_eq!(tokens.latest("other"), None);
    }

    #[test]
    fn eviction_keeps_the_map_bounded_and_never_forgets_a_floor() {
        let mut tokens = SessionTokens::default();
        for i in 0..SESSION_CONTAINERS_MAX as u64 {
            tokens.observe(&format!("c{i}"), token(1, 100 + i));
        }
        tokens.observe("late", token(1, 10_000));
        assert_eq!(tokens.by_container.len(), SESSION_CONTAINERS_MAX);
        // c0 held the smallest token and was evicted: it still gets a token
        // at least as high as the one it had.
        assert_eq!(tokens.latest("c0"), Some(token(1, 100)));
        assert_eq!(tokens.latest("late"), Some(token(1, 10_000)));
    }

    #[test]
    fn reads_present_the_tracked_token_only_when_they_may_be_session_reads() {
        let tracked = Some(token(1, 9));
        let mut opts = ReadOptions::default();
        assert_eq!(token_for_read(&opts, tracked), tracked);
        opts.consistency = Some(Consistency::Session);
        assert_eq!(token_for_read(&opts, tracked), tracked);
        opts.consistency = Some(Consistency::Eventual);
        assert_eq!(token_for_read(&opts, tracked), None);
        opts.session_token = Some(token(1, 2));
        assert_eq!(token_for_read(&opts, tracked), Some(token(1, 2)));
    }

    /// A stand-in `Kv` server: a put returns the next token `e1:<n>`; a get
    /// echoes the session token it received as the item's value; a put of
    /// the key `slow` reports a server-side deadline.
    #[derive(Default)]
    struct EchoKv {
        writes: std::sync::atomic::AtomicU64,
    }

    #[tonic::async_trait]
    impl pb::kv_server::Kv for EchoKv {
        async fn put(
            &self,
            request: tonic::Request<pb::PutRequest>,
        ) -> Result<tonic::Response<pb::WriteResponse>, tonic::Status> {
            if request.get_ref().key == "slow" {
                return Err(tonic::Status::deadline_exceeded("slow"));
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

    fn status_node(region: &str, node_id: u64, state: &str, addr: &str) -> pb::NodeStatus {
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
            Ok(tonic::Response::new(pb::AccountResponse {
                account: "acct".to_string(),
                write_region: "west".to_string(),
                epoch: 3,
                ..Default::default()
            }))
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
    }

    /// Also used by the bench's tests.
    pub(crate) async fn start_echo_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let admin = EchoAdmin {
            addr: addr.to_string(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::kv_server::KvServer::new(EchoKv::default()))
                .add_service(pb::admin_server::AdminServer::new(admin))
                .serve_with_incoming(incoming),
        );
        format!("http://{addr}")
    }

    fn names(regions: &[&str]) -> Vec<String> {
        regions.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn the_first_preferred_region_with_a_running_node_is_chosen() {
        let mut status = three_region_status("10.0.0.1:7070");
        status.nodes[2].client_addr = "10.0.0.5:7070".to_string();
        // north has no running node, so east is next; its address gets a scheme.
        assert_eq!(
            choose_endpoint(&status, &names(&["north", "east"])),
            Ok("http://10.0.0.5:7070".to_string())
        );
        // Within west the leader (n1) comes before n2, whatever the order.
        status.nodes[1].client_addr = "10.0.0.11:7070".to_string();
        assert_eq!(
            choose_endpoint(&status, &names(&["west"])),
            Ok("http://10.0.0.11:7070".to_string())
        );
        let none = choose_endpoint(&status, &names(&["north"])).unwrap_err();
        assert_eq!(
            none,
            ClientError::NoRunningNode {
                regions: names(&["north"])
            }
        );
        assert!(none.is_retryable());
    }

    #[test]
    fn an_unknown_region_names_the_known_ones() {
        let status = three_region_status("10.0.0.1:7070");
        let err = choose_endpoint(&status, &names(&["east", "south"])).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "region \"south\" is not in the account; its regions are: east, north, west"
        );
        // A server that reports only nodes still names its regions.
        let nodes_only = pb::StatusResponse {
            nodes: status.nodes.clone(),
            ..Default::default()
        };
        assert!(choose_endpoint(&nodes_only, &names(&["east"])).is_ok());
    }

    #[test]
    fn replication_lag_lists_the_read_regions_of_the_status() {
        let lag = ReplicationLag::from_status(&three_region_status("a:1"));
        assert_eq!(lag.regions, 3);
        let expected = [("east", Some(2), Some(5)), ("north", Some(40), Some(900))];
        let actual: Vec<_> = lag
            .read_regions
            .iter()
            .map(|r| (r.region.as_str(), r.lag_ops, r.lag_ms))
            .collect();
        assert_eq!(actual, expected);
        let single = pb::StatusResponse {
            nodes: vec![status_node("west", 1, "running", "a:1")],
            ..Default::default()
        };
        let lag = ReplicationLag::from_status(&single);
        assert_eq!((lag.regions, lag.read_regions.len()), (1, 0));
    }

    #[test]
    fn server_error_metadata_is_kept_and_printed() {
        let mut status = tonic::Status::failed_precondition("east is a read region");
        let metadata = status.metadata_mut();
        metadata.insert(ERROR_METADATA_KEY, "NOT_WRITE_REGION".parse().unwrap());
        metadata.insert(WRITE_REGION_METADATA_KEY, "west".parse().unwrap());
        let err = classify(status, CallKind::Write);
        assert_eq!(err.error_name(), Some("NOT_WRITE_REGION"));
        assert_eq!(
            err.to_string(),
            "FailedPrecondition: east is a read region [NOT_WRITE_REGION, write region: west]"
        );

        let mut throttled = tonic::Status::resource_exhausted("lagging");
        let metadata = throttled.metadata_mut();
        metadata.insert(ERROR_METADATA_KEY, "THROTTLED".parse().unwrap());
        metadata.insert(RETRY_AFTER_METADATA_KEY, "250".parse().unwrap());
        let err = classify(throttled, CallKind::Write);
        let ClientError::Server { detail, .. } = &err else {
            panic!("not a server error: {err:?}");
        };
        assert_eq!(detail.retry_after_ms, Some(250));
        assert!(err.to_string().ends_with("[THROTTLED, retry after 250 ms]"));

        // A bare status prints exactly as before.
        let bare = classify(tonic::Status::not_found("k"), CallKind::Read);
        assert_eq!(bare.to_string(), "NotFound: k");
        assert_eq!(bare.error_name(), None);
    }

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
