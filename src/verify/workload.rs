//! Workloads that drive an account and record every operation as
//! invoke / ok / fail / info, for the checkers.
//!
//! - registers: STRONG read, write and compare-and-set (via `if_match`) on
//!   a few shared keys → linearizability;
//! - sessions: each process writes its own keys and reads them back from
//!   random nodes at SESSION with its token → session guarantees;
//! - prefix writers write `a=n` then `b=n`; prefix readers scan both at
//!   CONSISTENT_PREFIX on random nodes → consistent prefix;
//! - appenders add unique members to a set → durability;
//! - bounded writers each write 1, 2, 3 … to their own `bnd/` key; bounded
//!   readers read those keys at BOUNDED_STALENESS on random nodes of every
//!   region → staleness within K and T.
//!
//! Writes go to nodes of the write region, reads to any node of any
//! region (with one region the two are the same nodes).
//!
//! Recording is conservative: an invoke is recorded before the request is
//! sent and a completion after the answer arrives, so the recorded interval
//! contains the real one. A write whose outcome is not certain is `info`;
//! one the server refused before doing anything (a failed precondition,
//! THROTTLED) is `fail`. Every loop ends at the deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;

use crate::client::results::Written;
use crate::client::{Client, ClientError, ReadOptions, ScanRange, WriteOptions};
use crate::consistency::Consistency;
use crate::glsn::{Glsn, SessionToken};
use crate::ids::ReplicaId;
use crate::verify::history::{Function, Op, OpKind};

/// The container every workload uses.
pub const CONTAINER: &str = "verify";
/// Register keys shared by the register clients: few, so they contend.
pub const REGISTER_KEYS: usize = 4;
/// Keys each session process owns.
const SESSION_KEYS: usize = 3;
/// The longest a writer waits after THROTTLED, whatever retry-after the
/// server named, so a run still ends near its deadline.
const THROTTLED_WAIT_MS_MAX: u64 = 200;
/// The error name of a write refused by bounded-staleness throttling.
const THROTTLED: &str = "THROTTLED";

/// Every operation, in real-time order of recording.
pub struct Recorder {
    started: Instant,
    /// A std lock: held only to push one op, never across an `.await`.
    ops: Mutex<Vec<Op>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }
}

impl Recorder {
    fn record(&self, mut op: Op) {
        op.mono_ns = self.started.elapsed().as_nanos() as u64;
        op.wall_ms = crate::clock::wall_ms();
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Clients to every node of the account, and to the write region's nodes.
#[derive(Clone)]
pub struct Clients {
    pub all: Vec<Client>,
    pub write_region: Vec<Client>,
}

/// What one process needs: its id, clients, a deadline.
pub struct Process {
    pub id: u64,
    pub clients: Clients,
    pub recorder: Arc<Recorder>,
    pub deadline: Instant,
    pub rng: StdRng,
    /// A pause before each operation. Zero by default (as fast as answers
    /// come); a simulation sets one, since its cost is the operations it
    /// runs.
    pub think_time: Duration,
}

impl Process {
    pub fn new(
        id: u64,
        clients: Clients,
        recorder: Arc<Recorder>,
        deadline: Instant,
        seed: u64,
    ) -> Self {
        assert!(
            !clients.all.is_empty() && !clients.write_region.is_empty(),
            "a process needs a node to read from and one to write to"
        );
        // One process is one session: clients of its own, over the shared
        // connections, so no other process's tokens reach its requests.
        let clients = Clients {
            all: clients.all.iter().map(Client::new_session).collect(),
            write_region: clients
                .write_region
                .iter()
                .map(Client::new_session)
                .collect(),
        };
        Self {
            id,
            clients,
            recorder,
            deadline,
            rng: StdRng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            think_time: Duration::ZERO,
        }
    }

    /// A random node of any region, for a read.
    fn reader(&mut self) -> Client {
        let i = self.rng.gen_range(0..self.clients.all.len());
        self.clients.all[i].clone()
    }

    /// A random node of the write region, for a write.
    fn writer(&mut self) -> Client {
        let i = self.rng.gen_range(0..self.clients.write_region.len());
        self.clients.write_region[i].clone()
    }

    /// After SESSION_LOST the session's lost writes are in the conflict
    /// feed and the process goes on as a new session, as a caller of
    /// [`Client::reset_sessions`] does.
    fn after_failure(&self, e: &ClientError) {
        if is_session_lost(e) {
            let clients = self.clients.all.iter().chain(&self.clients.write_region);
            clients.for_each(Client::reset_sessions);
        }
    }

    /// Whether to go on, after the think time.
    async fn running(&self) -> bool {
        if !self.think_time.is_zero() {
            tokio::time::sleep(self.think_time).await;
        }
        Instant::now() < self.deadline
    }

    fn op(&self, kind: OpKind, function: Function, key: &str) -> Op {
        Op::new(self.id, kind, function, key)
    }
}

/// How a write that did not succeed is recorded: `fail` only when the
/// server said definitely no; anything else may have happened. THROTTLED
/// is decided at the write leader before anything is proposed.
fn write_failure_kind(e: &ClientError) -> OpKind {
    if e.error_name() == Some(THROTTLED) {
        return OpKind::Fail;
    }
    match e {
        ClientError::Server {
            code:
                Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists | Code::InvalidArgument,
            ..
        } => OpKind::Fail,
        _ => OpKind::Info,
    }
}

/// The server's name for an error, else its gRPC code.
fn error_text(e: &ClientError) -> String {
    e.error_name()
        .map_or_else(|| format!("{:?}", e.code()), str::to_string)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn served(op: &mut Op, served_by: Option<&ReplicaId>) {
    if let Some(s) = served_by {
        op.region = Some(s.region.clone());
        op.node = Some(s.node);
    }
}

pub fn register_key(k: usize) -> String {
    format!("reg/{k}")
}

/// STRONG reads, writes and compare-and-sets on the shared register keys.
pub async fn registers(mut p: Process) {
    let mut seq = 0u64;
    // The last (value, etag) this process read per key: a cas expects it.
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    while p.running().await {
        let key = register_key(p.rng.gen_range(0..REGISTER_KEYS));
        let roll = p.rng.gen_range(0..10);
        if roll < 4 || (roll >= 8 && !seen.contains_key(&key)) {
            let answer = read(&mut p, &key, Consistency::Strong, None).await;
            if let Some(item) = answer.ok().and_then(|r| r.item) {
                seen.insert(key, item);
            }
        } else if roll < 8 {
            seq += 1;
            let value = format!("p{}-{seq}", p.id);
            // The history records the outcome.
            let _ = write(&mut p, &key, value, Consistency::Strong, None).await;
        } else if let Some((expected, etag)) = seen.remove(&key) {
            seq += 1;
            let value = format!("p{}-{seq}", p.id);
            cas(&mut p, &key, expected, etag, value).await;
        }
    }
}

fn is_session_lost(e: &ClientError) -> bool {
    matches!(e, ClientError::SessionLost { .. })
}

/// What a successful read returned.
struct ReadResult {
    /// (value, etag) when the key is present.
    item: Option<(String, String)>,
    /// The session token the answer carried.
    token: Option<SessionToken>,
}

/// Reads `key`.
async fn read(
    p: &mut Process,
    key: &str,
    level: Consistency,
    token: Option<SessionToken>,
) -> Result<ReadResult, ClientError> {
    let mut invoke = p.op(OpKind::Invoke, Function::Read, key);
    invoke.consistency = Some(level);
    invoke.session_token = token;
    p.recorder.record(invoke);
    let opts = ReadOptions {
        consistency: Some(level),
        session_token: token,
    };
    let client = p.reader();
    match client.get(CONTAINER, key, &opts).await {
        Ok(r) => {
            let mut done = p.op(OpKind::Ok, Function::Read, key);
            done.value = r.item.as_ref().map(|i| text(&i.value));
            done.glsn = r.item.as_ref().and_then(|i| i.glsn);
            done.session_token = r.session_token.parse().ok();
            served(&mut done, r.served_by.as_ref());
            p.recorder.record(done);
            Ok(ReadResult {
                item: r.item.map(|i| (text(&i.value), i.etag)),
                token: r.session_token.parse().ok(),
            })
        }
        Err(e) => {
            // A read changes nothing: a failed one is simply `fail`.
            let mut done = p.op(OpKind::Fail, Function::Read, key);
            done.error = Some(error_text(&e));
            p.recorder.record(done);
            p.after_failure(&e);
            Err(e)
        }
    }
}

/// Writes `value` to `key`; returns the write's GLSN (when the answer
/// carries one) if acknowledged.
async fn write(
    p: &mut Process,
    key: &str,
    value: String,
    level: Consistency,
    token: Option<SessionToken>,
) -> Result<Option<Glsn>, ClientError> {
    let mut invoke = p.op(OpKind::Invoke, Function::Write, key);
    invoke.value = Some(value.clone());
    invoke.consistency = Some(level);
    invoke.session_token = token;
    p.recorder.record(invoke);
    let opts = WriteOptions {
        consistency: Some(level),
        session_token: token,
        no_forward: false,
    };
    let client = p.writer();
    let result = client
        .put(CONTAINER, key, value.clone().into_bytes(), &opts)
        .await;
    finish_write(p, Function::Write, key, Some(value), None, result).await
}

async fn cas(p: &mut Process, key: &str, expected: String, etag: String, value: String) {
    let mut invoke = p.op(OpKind::Invoke, Function::Cas, key);
    invoke.value = Some(value.clone());
    invoke.expected = Some(expected.clone());
    invoke.consistency = Some(Consistency::Strong);
    p.recorder.record(invoke);
    let opts = WriteOptions {
        consistency: Some(Consistency::Strong),
        session_token: None,
        no_forward: false,
    };
    let client = p.writer();
    let result = client
        .replace(
            CONTAINER,
            key,
            value.clone().into_bytes(),
            Some(etag),
            &opts,
        )
        .await;
    // The history records the outcome.
    let _ = finish_write(p, Function::Cas, key, Some(value), Some(expected), result).await;
}

/// Records the completion of a write; after THROTTLED, waits the
/// retry-after the server named (capped), as a client would.
async fn finish_write(
    p: &Process,
    function: Function,
    key: &str,
    value: Option<String>,
    expected: Option<String>,
    result: Result<Written, ClientError>,
) -> Result<Option<Glsn>, ClientError> {
    let (kind, glsn) = match &result {
        Ok(r) => (OpKind::Ok, r.glsn),
        Err(e) => (write_failure_kind(e), None),
    };
    let mut done = p.op(kind, function, key);
    done.value = value;
    done.expected = expected;
    done.glsn = glsn;
    done.error = result.as_ref().err().map(error_text);
    if let Ok(r) = &result {
        done.session_token = r.session_token.parse().ok();
        served(&mut done, r.served_by.as_ref());
    }
    p.recorder.record(done);
    if let Err(e) = &result {
        p.after_failure(e);
        if e.error_name() == Some(THROTTLED) {
            let wait_ms = throttled_wait_ms(e);
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
    }
    result.map(|_| glsn)
}

fn throttled_wait_ms(e: &ClientError) -> u64 {
    let named = match e {
        ClientError::Server { detail, .. } => detail.retry_after_ms,
        _ => None,
    };
    named
        .unwrap_or(THROTTLED_WAIT_MS_MAX)
        .min(THROTTLED_WAIT_MS_MAX)
}

/// A session: writes its own keys, reads them from random nodes with the
/// newest token it holds. Like a Cosmos client, it folds in the token of
/// every answer, reads included: a write whose outcome was unknown may have
/// committed, and once a read has seen it, a later read must not miss it
/// (monotonic reads is the session's job as much as the server's).
pub async fn session(mut p: Process) {
    let mut seq = 0u64;
    let mut token: Option<SessionToken> = None;
    while p.running().await {
        let key = format!("sess/p{}/{}", p.id, p.rng.gen_range(0..SESSION_KEYS));
        if p.rng.gen_bool(0.4) {
            seq += 1;
            let value = format!("p{}-{seq}", p.id);
            match write(&mut p, &key, value, Consistency::Session, token).await {
                Ok(glsn) => token = token.max(glsn.map(SessionToken)),
                Err(e) if is_session_lost(&e) => token = None,
                Err(_) => {}
            }
        } else {
            match read(&mut p, &key, Consistency::Session, token).await {
                Ok(answer) => token = token.max(answer.token),
                Err(e) if is_session_lost(&e) => token = None,
                Err(_) => {}
            }
        }
    }
}

pub fn prefix_of(writer: u64) -> String {
    format!("pfx/w{writer}/")
}

/// Writes `a=n` then `b=n`, n = 1, 2, 3 …, under its own prefix.
pub async fn prefix_writer(mut p: Process) {
    let mut n = 0u64;
    while p.running().await {
        n += 1;
        for suffix in ["a", "b"] {
            let key = format!("{}{suffix}", prefix_of(p.id));
            // The history records the outcome.
            let _ = write(&mut p, &key, n.to_string(), Consistency::Session, None).await;
        }
    }
}

/// Scans a writer's prefix at CONSISTENT_PREFIX on random nodes.
pub async fn prefix_reader(mut p: Process, writers: Vec<u64>) {
    while p.running().await {
        let prefix = prefix_of(writers[p.rng.gen_range(0..writers.len())]);
        let mut invoke = p.op(OpKind::Invoke, Function::Scan, &prefix);
        invoke.consistency = Some(Consistency::ConsistentPrefix);
        p.recorder.record(invoke);
        let range = ScanRange {
            prefix: Some(prefix.clone()),
            ..Default::default()
        };
        let opts = ReadOptions {
            consistency: Some(Consistency::ConsistentPrefix),
            session_token: None,
        };
        let client = p.reader();
        match client.scan(CONTAINER, &range, 10, "", &opts).await {
            Ok(page) => {
                let mut done = p.op(OpKind::Ok, Function::Scan, &prefix);
                done.entries = Some(
                    page.items
                        .iter()
                        .map(|i| (i.key.clone(), text(&i.value)))
                        .collect(),
                );
                served(&mut done, page.served_by.as_ref());
                p.recorder.record(done);
            }
            Err(e) => {
                let mut done = p.op(OpKind::Fail, Function::Scan, &prefix);
                done.error = Some(error_text(&e));
                p.recorder.record(done);
            }
        }
    }
}

/// The set the appenders add to, and the key prefix that stores it.
pub const SET_KEY: &str = "set";
pub const SET_PREFIX: &str = "set/";

/// Adds unique members to the set (one item per member).
pub async fn appender(mut p: Process) {
    let mut seq = 0u64;
    while p.running().await {
        seq += 1;
        let member = format!("p{}-{seq}", p.id);
        let mut invoke = p.op(OpKind::Invoke, Function::Append, SET_KEY);
        invoke.value = Some(member.clone());
        p.recorder.record(invoke);
        let opts = WriteOptions::default();
        let client = p.writer();
        let result = client
            .put(
                CONTAINER,
                &format!("{SET_PREFIX}{member}"),
                member.clone().into_bytes(),
                &opts,
            )
            .await;
        // The history records the outcome.
        let _ = finish_write(&p, Function::Append, SET_KEY, Some(member), None, result).await;
    }
}

/// One key per bounded writer, so every write it makes is a new version
/// of that key and a read that trails misses several of them.
pub fn bounded_key(writer: u64) -> String {
    format!("bnd/w{writer}")
}

/// Writes 1, 2, 3 … to its own `bnd/` key at BOUNDED_STALENESS.
pub async fn bounded_writer(mut p: Process) {
    let key = bounded_key(p.id);
    let level = Consistency::BoundedStaleness;
    let mut n = 0u64;
    while p.running().await {
        n += 1;
        // The history records the outcome.
        let _ = write(&mut p, &key, n.to_string(), level, None).await;
    }
}

/// Reads the bounded writers' keys at BOUNDED_STALENESS on random nodes of
/// every region; the answer records the region and node that served it.
pub async fn bounded_reader(mut p: Process, writers: Vec<u64>) {
    while p.running().await {
        let key = bounded_key(writers[p.rng.gen_range(0..writers.len())]);
        // The history records the outcome.
        let _ = read(&mut p, &key, Consistency::BoundedStaleness, None).await;
    }
}
