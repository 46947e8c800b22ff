//! The routed side of the client: the topology cache, lazy channels to the
//! nodes, and the attempt loop that carries out what `topology` and `retry`
//! decide, under the operation's deadline. Every choice is theirs; this
//! file does the I/O and keeps the marks: nodes down, regions avoided, and
//! the node that last answered in each region.
//!
//! Refreshes: at start (it must succeed); in the background after a
//! failure that may mean the topology moved (NOT_WRITE_REGION, UNAVAILABLE
//! from the write region, a node refusing connections) or a response from
//! a newer epoch; and during the backoff of a round that found nothing
//! left to try. A refresh asks one node of every region at once and keeps
//! the highest epoch it hears, never one older than it holds: a node cut
//! off from the meta group reports the epoch it last saw.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::join_all;
use rand::Rng;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

use crate::client::channels::{Channels, REQUEST_TIMEOUT, admin, timed};
use crate::client::errors::{CallKind, ClientError, ErrorDetail, classify};
use crate::client::options::ClientOptions;
use crate::client::retry::{ATTEMPT_TIME_MIN, ATTEMPTS_MAX, Action, action_after, backoff, fits};
use crate::client::topology::{
    Attempts, Preferences, Route, Topology, candidates, choose, refresh_targets,
};
use crate::wire::pb::v1 as pb;

/// How long a refresh waits for each node's `Admin.Account`.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(1);
/// Refreshes start at most this often, however many requests fail.
const REFRESH_INTERVAL_MIN: Duration = Duration::from_millis(100);
/// A node that refused a connection is tried last for this long.
const NODE_DOWN_FOR: Duration = Duration::from_secs(2);
/// A region that could not serve a read is tried last for this long.
const REGION_AVOIDED_FOR: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Router {
    prefs: Preferences,
    deadline: Duration,
    channels: Channels,
    // A std Mutex: every section reads or updates a few fields and holds
    // no `.await`.
    state: Mutex<RouterState>,
}

#[derive(Debug, Default)]
struct RouterState {
    topology: Topology,
    /// The topology may have moved: the next chance refreshes it.
    stale: bool,
    /// A refresh is under way; its guard clears this even when cancelled.
    refreshing: bool,
    last_refresh: Option<Instant>,
    down_until: HashMap<String, Instant>,
    avoided_until: HashMap<String, Instant>,
    /// Per region, the endpoint that last answered there.
    sticky: HashMap<String, String>,
}

/// One operation's progress.
struct Operation {
    started: Instant,
    attempts: Attempts,
    /// Backoff rounds so far.
    round: u32,
    last: Option<ClientError>,
}

impl Operation {
    fn next_backoff(&mut self) -> Duration {
        let wait = backoff(self.round, rand::thread_rng().gen_range(0.0..=1.0));
        self.round += 1;
        wait
    }
}

impl Router {
    /// Learns the account through the endpoints given and checks the
    /// preferred regions against it.
    pub async fn start(options: ClientOptions) -> Result<Arc<Router>, ClientError> {
        if options.endpoints.is_empty() {
            return Err(ClientError::InvalidEndpoint {
                endpoint: String::new(),
                message: "no endpoint given".to_string(),
            });
        }
        for endpoint in &options.endpoints {
            Channels::check(endpoint)?;
        }
        let router = Arc::new(Router {
            prefs: Preferences {
                preferred: options.preferred_regions,
                seeds: options.endpoints,
            },
            deadline: options.deadline,
            channels: Channels::default(),
            state: Mutex::default(),
        });
        router.refresh().await.map_err(|e| router.unreachable(e))?;
        router
            .lock()
            .topology
            .check_preferred(&router.prefs.preferred)?;
        Ok(router)
    }

    /// Sends with `send` (given a channel and the attempt's timeout) where
    /// `route` says, retrying as `retry` allows until the deadline.
    pub async fn call<T, F, Fut>(
        self: &Arc<Self>,
        kind: CallKind,
        route: Route,
        mut send: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut op = Operation {
            started: Instant::now(),
            attempts: Attempts::default(),
            round: 0,
            last: None,
        };
        for _ in 0..ATTEMPTS_MAX {
            let Some(endpoint) = self.pick(route, &op.attempts) else {
                if self.next_round(&mut op).await {
                    continue;
                }
                break;
            };
            // What is left of the deadline, but never so little that the
            // first attempt of a short deadline is doomed.
            let left = self
                .deadline
                .saturating_sub(op.started.elapsed())
                .max(ATTEMPT_TIME_MIN);
            let channel = match self.channels.get(&endpoint) {
                Ok(channel) => channel,
                // An address the account lists but tonic cannot use: the
                // node is unreachable from here, like one that is down.
                Err(error) => {
                    op.attempts.tried.push(endpoint);
                    op.last = Some(error);
                    continue;
                }
            };
            let error = match send(channel, REQUEST_TIMEOUT.min(left)).await {
                Ok(response) => {
                    self.answered(&endpoint);
                    return Ok(response.into_inner());
                }
                Err(status) => classify(status, kind),
            };
            let Some(action) = action_after(&error, kind, route) else {
                return Err(error);
            };
            tracing::debug!(%endpoint, %error, ?action, "retrying");
            let wait = self.carry_out(action, &endpoint, &mut op);
            op.last = Some(error);
            self.refresh_in_background();
            if !fits(op.started.elapsed(), wait, self.deadline) {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Err(op.last.unwrap_or_else(|| nowhere_to_send(route)))
    }

    /// A response came from `epoch`: a newer one means a failover the
    /// cache has not seen.
    pub fn observe_epoch(self: &Arc<Self>, epoch: u64) {
        {
            let mut state = self.lock();
            if epoch <= state.topology.epoch {
                return;
            }
            state.stale = true;
        }
        self.refresh_in_background();
    }

    fn pick(&self, route: Route, attempts: &Attempts) -> Option<String> {
        let now = Instant::now();
        let state = self.lock();
        let avoided: Vec<String> = state
            .avoided_until
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(region, _)| region.clone())
            .collect();
        let order = candidates(
            &state.topology,
            route,
            &self.prefs,
            &state.sticky,
            &avoided,
            attempts,
        );
        choose(&order, |e| state.is_down(e, now)).cloned()
    }

    /// Nothing left to try in this round: wait, refresh, start over.
    async fn next_round(self: &Arc<Self>, op: &mut Operation) -> bool {
        let wait = op.next_backoff();
        if !fits(op.started.elapsed(), wait, self.deadline) {
            return false;
        }
        op.attempts.new_round();
        self.lock().stale = true;
        self.refresh_in_background();
        tokio::time::sleep(wait).await;
        true
    }

    /// Records what `action` says about the failed attempt at `endpoint`
    /// and returns how long to wait before the next one.
    fn carry_out(&self, action: Action, endpoint: &str, op: &mut Operation) -> Duration {
        let now = Instant::now();
        let mut state = self.lock();
        if !matches!(action, Action::Again { .. } | Action::Later) {
            op.attempts.tried.push(endpoint.to_string());
        }
        match action {
            Action::Again { after } => return after,
            Action::OtherNode { down: false } => {}
            Action::OtherNode { down: true } => {
                state
                    .down_until
                    .insert(endpoint.to_string(), now + NODE_DOWN_FOR);
                state.stale = true;
            }
            Action::OtherRegion => {
                if let Some(region) = state.topology.region_of(endpoint).map(str::to_string) {
                    state
                        .avoided_until
                        .insert(region.clone(), now + REGION_AVOIDED_FOR);
                    op.attempts.refused_regions.push(region);
                }
                state.stale = true;
            }
            Action::WriteRegion {
                named: Some(region),
                epoch,
            } => {
                if state.topology.follows_redirect(epoch) {
                    op.attempts.named_write_region = Some(region);
                }
                state.stale = true;
            }
            Action::WriteRegion { named: None, .. } => op.attempts.write_region_first = true,
            Action::Later => {
                op.attempts.new_round();
                state.stale = true;
                return op.next_backoff();
            }
        }
        Duration::ZERO
    }

    fn answered(&self, endpoint: &str) {
        let mut state = self.lock();
        state.down_until.remove(endpoint);
        if let Some(region) = state.topology.region_of(endpoint).map(str::to_string) {
            state.sticky.insert(region, endpoint.to_string());
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        {
            let state = self.lock();
            if !state.stale || !state.may_refresh(Instant::now()) {
                return;
            }
        }
        let router = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = router.refresh().await {
                tracing::debug!(error = %e, "topology refresh failed; keeping the cached one");
            }
        });
    }

    /// Asks one node of every region for the account at once and adopts
    /// the newest answer the cache accepts. Does nothing while another
    /// refresh runs or right after one.
    async fn refresh(&self) -> Result<(), ClientError> {
        let Some(_guard) = self.begin_refresh() else {
            return Ok(());
        };
        let targets = {
            let now = Instant::now();
            let state = self.lock();
            refresh_targets(&state.topology, &self.prefs, &state.sticky, |e| {
                state.is_down(e, now)
            })
        };
        let answers = join_all(targets.iter().map(|e| self.fetch_account(e))).await;
        let mut newest: Option<Topology> = None;
        let mut last_error = None;
        for answer in answers {
            match answer {
                Ok(t) if newest.as_ref().is_none_or(|n| n.accepts(&t)) => newest = Some(t),
                Ok(_) => {}
                Err(e) => last_error = Some(e),
            }
        }
        let Some(newest) = newest else {
            return Err(last_error.unwrap_or_else(|| nowhere_to_send(Route::Reads)));
        };
        let mut state = self.lock();
        if state.topology.accepts(&newest) {
            state.topology = newest;
        }
        state.stale = false;
        Ok(())
    }

    async fn fetch_account(&self, endpoint: &str) -> Result<Topology, ClientError> {
        let channel = self.channels.get(endpoint)?;
        let request = timed(pb::AccountRequest {}, REFRESH_TIMEOUT);
        match admin(channel).account(request).await {
            Ok(response) => Ok(Topology::from_account(&response.into_inner())),
            Err(status) => {
                let error = classify(status, CallKind::Read);
                if let Some(Action::OtherNode { down: true }) =
                    action_after(&error, CallKind::Read, Route::Reads)
                {
                    self.lock()
                        .down_until
                        .insert(endpoint.to_string(), Instant::now() + NODE_DOWN_FOR);
                }
                Err(error)
            }
        }
    }

    fn begin_refresh(&self) -> Option<RefreshGuard<'_>> {
        let mut state = self.lock();
        if !state.may_refresh(Instant::now()) {
            return None;
        }
        state.refreshing = true;
        Some(RefreshGuard(self))
    }

    /// The start-up error when no endpoint answered, naming them.
    fn unreachable(&self, error: ClientError) -> ClientError {
        match error {
            ClientError::Unavailable {
                code,
                message,
                detail,
            } => ClientError::Unavailable {
                code,
                message: format!(
                    "cannot connect to {}: {message}",
                    self.prefs.seeds.join(", ")
                ),
                detail,
            },
            other => other,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        // Every section leaves the state consistent (single inserts and
        // assignments), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RouterState {
    fn is_down(&self, endpoint: &str, now: Instant) -> bool {
        self.down_until
            .get(endpoint)
            .is_some_and(|until| *until > now)
    }

    fn may_refresh(&self, now: Instant) -> bool {
        let recent = self
            .last_refresh
            .is_some_and(|at| now.duration_since(at) < REFRESH_INTERVAL_MIN);
        !self.refreshing && !recent
    }
}

/// Marks the refresh over when dropped, also when its future is.
struct RefreshGuard<'a>(&'a Router);

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.refreshing = false;
        state.last_refresh = Some(Instant::now());
    }
}

fn nowhere_to_send(route: Route) -> ClientError {
    let message = match route {
        Route::WriteRegion => {
            "no node of a write region is known: the meta group has not formed the account yet"
        }
        Route::Reads => "no node answered",
    };
    ClientError::Unavailable {
        code: Code::Unavailable,
        message: message.to_string(),
        detail: ErrorDetail::default(),
    }
}
