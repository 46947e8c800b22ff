//! The [`Client`]: one method per request of the `Kv` and `Admin`
//! services, the session tokens it tracks, and where its requests go.
//!
//! A routed client (`connect`, `connect_preferring`, `connect_with`) sends
//! every request through its `Router`: writes to the write region (with
//! `no_forward` on the wire, so the client learns of a new write region
//! from the refusal instead of relying on a server to forward), reads to
//! the preferred regions, and retries what `retry` allows under a deadline.
//! A direct client (`connect_direct`, `from_channel`) talks to one node and
//! never retries: the bench and the verify harness measure exactly that
//! node.
//!
//! Invariants: a write whose outcome is unknown is returned as
//! [`ClientError::OutcomeUnknown`], never retried; the tracked session
//! token of a container only moves forward.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Channel;

use crate::client::channels::{REQUEST_TIMEOUT, connect_channel, kv, timed};
use crate::client::endpoints::choose_endpoint;
use crate::client::errors::{CallKind, ClientError, classify};
use crate::client::options::{ClientOptions, ReadOptions, ScanRange, WriteOptions};
use crate::client::results::{Read, ScanPage, Written};
use crate::client::router::Router;
use crate::client::sessions::{SessionTokens, token_to_present};
use crate::client::topology::Route;
use crate::client::write::{WireWrite, WriteHeader, WriteOp, wire_consistency, wire_token};
use crate::consistency::Consistency;
use crate::glsn::{SessionToken, parse_session_token};
use crate::wire::pb::v1 as pb;

/// Where the CLI and the bench connect when no `--endpoint` is given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7070";

/// A client of one account. Cloning is cheap and clones share the
/// connections, the topology cache and the session tokens.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    // A std Mutex: every section is one map lookup or update with no
    // `.await` inside, so it is never held across a suspension point.
    sessions: Arc<Mutex<SessionTokens>>,
}

#[derive(Debug, Clone)]
enum Target {
    /// One node: no routing, no retries; each request may take `timeout`.
    Direct { channel: Channel, timeout: Duration },
    /// Routed by the topology cache, retried under a deadline.
    Routed(Arc<Router>),
}

/// The endpoint a direct client should use for `preferred` regions:
/// `endpoint` itself when the list is empty, else the leader (or another
/// running node) of the first preferred region that has one, as
/// `endpoint`'s `Admin.Status` reports the account. The bench pins its
/// connections to it.
pub async fn resolve_endpoint(endpoint: &str, preferred: &[String]) -> Result<String, ClientError> {
    if preferred.is_empty() {
        return Ok(endpoint.to_string());
    }
    let status = Client::connect_direct(endpoint).await?.status().await?;
    choose_endpoint(&status, preferred)
}

impl Client {
    /// A routed client that learns the account through `endpoint`, whose
    /// region its reads prefer. Fails here, not at the first request, when
    /// no node answers.
    pub async fn connect(endpoint: &str) -> Result<Client, ClientError> {
        Client::connect_with(ClientOptions::new(endpoint)).await
    }

    /// A routed client whose reads prefer `preferred`, first choice first;
    /// an unknown region is refused here.
    pub async fn connect_preferring(
        endpoint: &str,
        preferred: &[String],
    ) -> Result<Client, ClientError> {
        Client::connect_with(ClientOptions {
            preferred_regions: preferred.to_vec(),
            ..ClientOptions::new(endpoint)
        })
        .await
    }

    pub async fn connect_with(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Client::new(Target::Routed(Router::start(options).await?)))
    }

    /// A direct client of the node at `endpoint`, connected eagerly.
    pub async fn connect_direct(endpoint: &str) -> Result<Client, ClientError> {
        Ok(Client::from_channel(connect_channel(endpoint).await?))
    }

    /// A direct client over an open channel.
    pub fn from_channel(channel: Channel) -> Client {
        Client::new(Target::Direct {
            channel,
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// A client sharing this one's connections and topology cache but
    /// tracking session tokens of its own: a separate session, as a
    /// second application instance would have.
    pub fn new_session(&self) -> Client {
        Client::new(self.target.clone())
    }

    /// A direct client over `channel` whose requests may take `timeout`:
    /// see `admin::connect_admin`.
    pub(crate) fn direct_with_timeout(channel: Channel, timeout: Duration) -> Client {
        Client::new(Target::Direct { channel, timeout })
    }

    fn new(target: Target) -> Client {
        Client {
            target,
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
    ) -> Result<Written, ClientError> {
        self.write(container, key, WriteOp::Put { value }, opts)
            .await
    }

    /// Fails with `Server { code: AlreadyExists }` when the key is present.
    pub async fn create(
        &self,
        container: &str,
        key: &str,
        value: Vec<u8>,
        opts: &WriteOptions,
    ) -> Result<Written, ClientError> {
        self.write(container, key, WriteOp::Create { value }, opts)
            .await
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
    ) -> Result<Written, ClientError> {
        self.write(container, key, WriteOp::Replace { value, if_match }, opts)
            .await
    }

    /// Fails with `NotFound` when absent, `FailedPrecondition` on an etag
    /// mismatch.
    pub async fn delete(
        &self,
        container: &str,
        key: &str,
        if_match: Option<String>,
        opts: &WriteOptions,
    ) -> Result<Written, ClientError> {
        self.write(container, key, WriteOp::Delete { if_match }, opts)
            .await
    }

    /// The one write path: sends `op` on `container/key` to the write
    /// region (or where `opts` pins it), presenting the session token and
    /// tracking the one it returns.
    pub async fn write(
        &self,
        container: &str,
        key: &str,
        op: WriteOp,
        opts: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let header = WriteHeader {
            container: container.to_string(),
            key: key.to_string(),
            consistency: opts.consistency,
            session_token: self.write_token(container, opts),
            no_forward: self.wire_no_forward(opts),
        };
        let request = WireWrite::new(header, op);
        let response = self
            .call(
                CallKind::Write,
                write_route(opts),
                move |channel, timeout| request.clone().send(channel, timeout),
            )
            .await?;
        Ok(self.after_write(container, response))
    }

    /// `item` in the response is `None` when the key does not exist.
    pub async fn get(
        &self,
        container: &str,
        key: &str,
        opts: &ReadOptions,
    ) -> Result<Read, ClientError> {
        let req = pb::GetRequest {
            container: container.to_string(),
            key: key.to_string(),
            consistency: wire_consistency(opts.consistency),
            session_token: wire_token(self.read_token(container, opts)),
        };
        let response = self
            .call(CallKind::Read, Route::Reads, move |channel, timeout| {
                let req = timed(req.clone(), timeout);
                async move { kv(channel).get(req).await }
            })
            .await?;
        self.after_read(container, &response.session_token, response.read_glsn);
        Ok(response.into())
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
    ) -> Result<ScanPage, ClientError> {
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
        let response = self
            .call(CallKind::Read, Route::Reads, move |channel, timeout| {
                let req = timed(req.clone(), timeout);
                async move { kv(channel).scan(req).await }
            })
            .await?;
        self.after_read(container, &response.session_token, response.read_glsn);
        Ok(response.into())
    }

    /// The latest session token seen for `container`, if any.
    pub fn session_token(&self, container: &str) -> Option<SessionToken> {
        self.lock_sessions().latest(container)
    }

    /// Forgets every tracked session token, starting new sessions: what a
    /// caller does after [`ClientError::SessionLost`], once it has decided
    /// what to do about the writes the failover left out.
    pub fn reset_sessions(&self) {
        *self.lock_sessions() = SessionTokens::default();
    }

    /// Sends one request: once to a direct client's node, or through the
    /// router. `send` gets the channel and the attempt's timeout.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        kind: CallKind,
        route: Route,
        mut send: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match &self.target {
            Target::Direct { channel, timeout } => send(channel.clone(), *timeout)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| classify(status, kind)),
            Target::Routed(router) => router.call(kind, route, send).await,
        }
    }

    /// A routed client always refuses cross-region forwarding, since it
    /// routes writes itself; a direct one forwards unless asked not to.
    fn wire_no_forward(&self, opts: &WriteOptions) -> bool {
        matches!(self.target, Target::Routed(_)) || opts.no_forward
    }

    fn after_write(&self, container: &str, response: pb::WriteResponse) -> Written {
        self.observe_token(container, &response.session_token);
        self.observe_epoch(response.glsn);
        response.into()
    }

    fn after_read(&self, container: &str, token: &str, read_glsn: Option<pb::Glsn>) {
        self.observe_token(container, token);
        self.observe_epoch(read_glsn);
    }

    fn observe_epoch(&self, glsn: Option<pb::Glsn>) {
        if let (Target::Routed(router), Some(glsn)) = (&self.target, glsn) {
            router.observe_epoch(glsn.epoch);
        }
    }

    fn read_token(&self, container: &str, opts: &ReadOptions) -> Option<SessionToken> {
        self.token_to_present(container, opts.consistency, opts.session_token)
    }

    fn write_token(&self, container: &str, opts: &WriteOptions) -> Option<SessionToken> {
        self.token_to_present(container, opts.consistency, opts.session_token)
    }

    fn token_to_present(
        &self,
        container: &str,
        consistency: Option<Consistency>,
        explicit: Option<SessionToken>,
    ) -> Option<SessionToken> {
        let tracked = self.lock_sessions().latest(container);
        token_to_present(consistency, explicit, tracked)
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

/// A write the caller pinned with `no_forward` goes where reads go and
/// keeps its NOT_WRITE_REGION; any other goes to the write region.
fn write_route(opts: &WriteOptions) -> Route {
    if opts.no_forward {
        Route::Reads
    } else {
        Route::WriteRegion
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{names, start_echo, start_echo_server, token};
    use tonic::Code;

    #[tokio::test]
    async fn preferred_regions_route_reads_and_admin_calls_round_trip() {
        let endpoint = start_echo_server().await;
        // Phase 1: no preference: the endpoint's own region (west) first.
        let client = Client::connect_preferring(&endpoint, &[]).await.unwrap();
        assert_eq!(client.status().await.unwrap().write_region.as_str(), "west");

        // Phase 2: a direct client's region resolves from the status; an
        // unknown region is refused at connect.
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

        // Phase 3: north's only node refuses connections, so reads and
        // admin calls go on to east; a refusal keeps its name.
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
    async fn a_write_with_an_unknown_outcome_is_sent_once_and_refusals_are_retried() {
        let (endpoint, kv) = start_echo().await;
        let client = Client::connect(&endpoint).await.unwrap();
        let opts = WriteOptions::default();
        // Phase 1: a server-side deadline: unknown, and never sent again.
        let slow = client
            .put("c", "slow", Vec::new(), &opts)
            .await
            .unwrap_err();
        assert!(matches!(slow, ClientError::OutcomeUnknown { .. }), "{slow}");
        assert_eq!(kv.puts("slow"), 1);
        // Phase 2: THROTTLED and UNAVAILABLE did nothing: retried.
        client
            .put("c", "throttled", Vec::new(), &opts)
            .await
            .unwrap();
        assert_eq!(kv.puts("throttled"), 2);
        client
            .put("c", "no-lease", Vec::new(), &opts)
            .await
            .unwrap();
        assert_eq!(kv.puts("no-lease"), 2);
        // Phase 3: a real answer is returned as it is.
        let exists = client
            .create("c", "k", Vec::new(), &opts)
            .await
            .unwrap_err();
        assert_eq!(exists.code(), Code::AlreadyExists);
    }

    #[tokio::test]
    async fn retries_stop_at_the_deadline_and_a_direct_client_never_retries() {
        let (endpoint, kv) = start_echo().await;
        let deadline = Duration::from_millis(600);
        let client = Client::connect_with(ClientOptions {
            deadline,
            ..ClientOptions::new(&endpoint)
        })
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let down = client
            .put("c", "down", Vec::new(), &WriteOptions::default())
            .await
            .unwrap_err();
        assert!(down.is_retryable(), "{down}");
        assert!(started.elapsed() < deadline * 2, "{:?}", started.elapsed());
        assert!(kv.puts("down") > 1);

        let direct = Client::connect_direct(&endpoint).await.unwrap();
        let once = direct
            .put("c", "no-lease", Vec::new(), &WriteOptions::default())
            .await
            .unwrap_err();
        assert_eq!(once.error_name(), Some("UNAVAILABLE"));
        assert_eq!(kv.puts("no-lease"), 1);
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
}
