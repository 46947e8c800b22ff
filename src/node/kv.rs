//! Request logic of a node, in domain terms: validate, pick the read path
//! for the consistency level, forward writes to the region leader.
//!
//! Writes: handed to the node's `Proposer`, which batches them and proposes
//! each batch at the region leader (see `node::proposer`).
//!
//! Reads (DESIGN.md "Consistency levels", within one region):
//! STRONG and BOUNDED_STALENESS wait for the leader's read index (shared
//! by concurrent reads, see `node::read_index`) to be applied locally; SESSION waits briefly for the token; CONSISTENT_PREFIX
//! and EVENTUAL read the local applied state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::{Rejection, WriteCommand, WriteOp, WriteOutcome};
use crate::consistency::{Consistency, ReadPath};
use crate::error::Error;
use crate::glsn::{Glsn, SessionToken};
use crate::hlc::Hlc;
use crate::ids::NodeId;
use crate::item::{self, Etag, ItemVersion, KeyRange};
use crate::node::proposer::Proposer;
use crate::node::read_index::ReadIndexer;
use crate::raft::replica::Replica;

#[derive(Debug, Clone)]
pub struct KvSettings {
    pub default_consistency: Consistency,
    pub session_wait: Duration,
    pub request_timeout: Duration,
}

/// What a successful write returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReceipt {
    pub glsn: Glsn,
    pub etag: Option<Etag>,
}

#[derive(Clone)]
pub struct Kv {
    replica: Replica,
    proposer: Proposer,
    read_indexer: ReadIndexer,
    hlc: Arc<Hlc>,
    settings: KvSettings,
}

impl Kv {
    pub fn new(replica: Replica, hlc: Arc<Hlc>, settings: KvSettings) -> Self {
        let proposer = Proposer::spawn(replica.clone(), settings.request_timeout);
        let read_indexer = ReadIndexer::spawn(replica.clone(), settings.request_timeout);
        Self {
            replica,
            proposer,
            read_indexer,
            hlc,
            settings,
        }
    }

    pub fn node(&self) -> NodeId {
        self.replica.id()
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub async fn write(
        &self,
        container: &str,
        key: &str,
        op: WriteOp,
    ) -> Result<WriteReceipt, Error> {
        item::validate_container(container).map_err(invalid)?;
        item::validate_key(key).map_err(invalid)?;
        if let WriteOp::Put { value, .. } = &op {
            item::validate_value(value).map_err(invalid)?;
        }
        let write = WriteCommand {
            container: container.to_string(),
            key: key.to_string(),
            op,
            ts: self.hlc.now(),
            origin_region: self.replica.region().clone(),
        };
        match self.proposer.propose(write).await? {
            WriteOutcome::Applied { glsn, etag } => Ok(WriteReceipt { glsn, etag }),
            WriteOutcome::Rejected { rejection, .. } => Err(rejected(container, key, rejection)),
        }
    }

    pub async fn get(
        &self,
        container: &str,
        key: &str,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<(Option<ItemVersion>, Glsn), Error> {
        item::validate_container(container).map_err(invalid)?;
        item::validate_key(key).map_err(invalid)?;
        let read_glsn = self.prepare_read(consistency, token).await?;
        let found = self
            .replica
            .state()
            .get_item(container, key)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((found, read_glsn))
    }

    pub async fn scan(
        &self,
        container: &str,
        range: &KeyRange,
        after: Option<&str>,
        limit: usize,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<(Vec<(String, ItemVersion)>, Glsn), Error> {
        item::validate_container(container).map_err(invalid)?;
        item::validate_range(range).map_err(invalid)?;
        if let Some(after) = after {
            item::validate_key(after)
                .map_err(|e| invalid(item::InvalidInput(format!("continuation: {}", e.0))))?;
        }
        let read_glsn = self.prepare_read(consistency, token).await?;
        let items = self
            .replica
            .state()
            .scan_items(
                container,
                range,
                after,
                limit,
                crate::limits::SCAN_PAGE_BYTES_MAX,
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((items, read_glsn))
    }

    /// Waits until this replica may serve a read at `consistency`; returns
    /// the GLSN its state reflects at least.
    async fn prepare_read(
        &self,
        consistency: Option<Consistency>,
        token: Option<SessionToken>,
    ) -> Result<Glsn, Error> {
        let default = self.settings.default_consistency;
        let level = consistency.unwrap_or(default);
        if !level.is_allowed_under(default) {
            return Err(Error::ConsistencyTooStrong {
                requested: level,
                account_default: default,
            });
        }
        match level.read_path() {
            ReadPath::ReadIndex => self.wait_read_index().await?,
            ReadPath::Session => {
                if let Some(token) = token {
                    self.wait_session(token).await?;
                }
            }
            ReadPath::Local => {}
        }
        Ok(self.replica.applied().glsn)
    }

    async fn wait_session(&self, token: SessionToken) -> Result<(), Error> {
        let wait = self.settings.session_wait;
        match self.replica.wait_applied(wait, |a| a.glsn >= token.0).await {
            Some(_) => Ok(()),
            None => Err(Error::SessionNotAvailable {
                node: self.replica.id(),
                applied: self.replica.applied().glsn,
                token: token.0,
            }),
        }
    }

    /// A linearizable read at any replica: get the read index from the
    /// leader, then wait until this replica has applied it.
    async fn wait_read_index(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let index = self.read_indexer.read_index().await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self
            .replica
            .wait_applied(remaining, |a| a.index >= index)
            .await
        {
            Some(_) => Ok(()),
            None => Err(self.unavailable(format!(
                "{} did not apply the read index {index} in time",
                self.replica.id()
            ))),
        }
    }

    fn unavailable(&self, reason: String) -> Error {
        Error::Unavailable {
            region: self.replica.region().clone(),
            reason,
        }
    }
}

fn invalid(e: item::InvalidInput) -> Error {
    Error::InvalidArgument(e.0)
}

fn rejected(container: &str, key: &str, rejection: Rejection) -> Error {
    let (container, key) = (container.to_string(), key.to_string());
    match rejection {
        Rejection::AlreadyExists => Error::AlreadyExists { container, key },
        Rejection::NotFound => Error::NotFound { container, key },
        Rejection::EtagMismatch { current } => Error::EtagMismatch {
            container,
            key,
            current,
        },
    }
}
