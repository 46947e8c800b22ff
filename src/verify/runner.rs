//! `meridian verify`: start an account, run every workload under the
//! nemesis, heal, let it quiesce, read the final state, and run every
//! checker on the recorded history.
//!
//! Runs in-process today (one region of nodes in this process, faults
//! through the fault layer, restarts by stop/start). Real processes with
//! kill -9, and more regions, come with the geo and failover issues.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::client::{Client, ReadOptions, ScanRange};
use crate::consistency::Consistency;
use crate::ids::{RegionId, ReplicaId};
use crate::local::{LocalAccount, LocalOptions};
use crate::verify::history::{History, HistoryError, Op, write_op};
use crate::verify::nemesis::{self, FaultEvent};
use crate::verify::verdict::Verdict;
use crate::verify::workload::{
    self, CONTAINER, Process, REGISTER_KEYS, Recorder, SET_KEY, SET_PREFIX,
};
use crate::verify::{convergence, durability, linearizable, prefix, session};

/// How long healing, quiescence and the final read-out may take.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub seed: u64,
    pub duration: Duration,
    pub replicas: usize,
    pub nemesis: bool,
    pub data_dir: PathBuf,
    pub history_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("starting the account: {0}")]
    Start(String),
    #[error("the account did not settle after the faults: {0}")]
    Settle(String),
    #[error("the recorded history is malformed: {0}")]
    History(#[from] HistoryError),
    #[error("writing the history file {path}: {reason}")]
    HistoryFile { path: PathBuf, reason: String },
}

pub struct CheckResult {
    pub name: &'static str,
    pub operations: usize,
    pub verdict: Verdict,
}

pub struct VerifyReport {
    pub seed: u64,
    pub operations: usize,
    pub faults: Vec<FaultEvent>,
    pub checks: Vec<CheckResult>,
    pub history_path: PathBuf,
}

impl VerifyReport {
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.verdict.violations.len()).sum()
    }
}

pub async fn run(options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let mut local = LocalOptions::new(&options.data_dir);
    local.replicas = options.replicas;
    local.seed = options.seed;
    local.transport.request_timeout_ms = 2000;
    local.reads.session_wait_ms = 300;
    let account = LocalAccount::start(local)
        .await
        .map_err(|e| VerifyError::Start(e.to_string()))?;
    let region = account.account().regions[0].name.clone();
    account
        .wait_for_leader(&region, SETTLE_TIMEOUT)
        .await
        .ok_or_else(|| VerifyError::Start("no leader elected".into()))?;
    let endpoints: Vec<String> = account
        .node_ids()
        .into_iter()
        .map(|n| account.endpoint(n))
        .collect();
    let account = Arc::new(Mutex::new(account));

    let started = Instant::now();
    let deadline = started + options.duration;
    let recorder = Arc::new(Recorder::default());
    let clients = connect_all(&endpoints).await?;
    let workloads = spawn_workloads(&clients, &recorder, deadline, options.seed);
    let faults = if options.nemesis {
        nemesis::run(account.clone(), options.seed, started, deadline).await
    } else {
        Vec::new()
    };
    for w in workloads {
        let _ = w.await;
    }

    let mut account = Arc::try_unwrap(account)
        .map_err(|_| VerifyError::Settle("the nemesis still holds the account".into()))?
        .into_inner();
    let digests = settle(&mut account, &region).await?;
    let final_state = read_final_state(&clients[0]).await?;
    account.stop().await;

    let ops = recorder.ops();
    write_history(&options.history_path, &ops)?;
    let checks = run_checkers(&ops, &final_state, &digests)?;
    Ok(VerifyReport {
        seed: options.seed,
        operations: ops.len(),
        faults,
        checks,
        history_path: options.history_path.clone(),
    })
}

/// Direct clients, one per node: the nemesis decides which nodes fail, and
/// the history records what the node each process picked did, with no
/// retries in between. (Running the workloads through routed clients would
/// check the client's own retry rules too; that is a separate run.)
async fn connect_all(endpoints: &[String]) -> Result<Vec<Client>, VerifyError> {
    let mut clients = Vec::new();
    for e in endpoints {
        clients.push(
            Client::connect_direct(e)
                .await
                .map_err(|e| VerifyError::Start(e.to_string()))?,
        );
    }
    Ok(clients)
}

/// Process ids by workload: 1.. registers, 11.. sessions, 21.. prefix
/// writers, 31.. prefix readers, 41.. appenders.
fn spawn_workloads(
    clients: &[Client],
    recorder: &Arc<Recorder>,
    deadline: Instant,
    seed: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let process = |id| Process::new(id, clients.to_vec(), recorder.clone(), deadline, seed);
    let mut tasks = Vec::new();
    for id in 1..=3 {
        tasks.push(tokio::spawn(workload::registers(process(id))));
    }
    for id in 11..=13 {
        tasks.push(tokio::spawn(workload::session(process(id))));
    }
    let writers = vec![21, 22];
    for id in &writers {
        tasks.push(tokio::spawn(workload::prefix_writer(process(*id))));
    }
    for id in 31..=32 {
        tasks.push(tokio::spawn(workload::prefix_reader(
            process(id),
            writers.clone(),
        )));
    }
    for id in 41..=42 {
        tasks.push(tokio::spawn(workload::appender(process(id))));
    }
    tasks
}

/// Heals every fault, waits for a leader and for every replica to apply
/// the whole log; returns each replica's state digest.
async fn settle(
    account: &mut LocalAccount,
    region: &RegionId,
) -> Result<Vec<(ReplicaId, String)>, VerifyError> {
    account.faults().heal();
    let leader = account
        .wait_for_leader(region, SETTLE_TIMEOUT)
        .await
        .ok_or_else(|| VerifyError::Settle("no leader after healing".into()))?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let target = account
            .node(leader)
            .map(|n| n.replica().status().last_log_index);
        let caught_up = account
            .running()
            .all(|n| Some(n.replica().status().applied_index) >= target);
        if caught_up {
            break;
        }
        if Instant::now() >= deadline {
            return Err(VerifyError::Settle(
                "replicas did not apply the whole log".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    account
        .running()
        .map(|n| {
            let digest = n
                .replica()
                .state()
                .items_digest()
                .map_err(|e| VerifyError::Settle(e.to_string()))?;
            Ok((n.id.clone(), digest))
        })
        .collect()
}

/// STRONG read-out of every register and of the whole set, retried until
/// it succeeds: the account may still be electing after the last fault.
async fn read_final_state(
    client: &Client,
) -> Result<BTreeMap<String, BTreeSet<String>>, VerifyError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match try_read_final_state(client).await {
            Ok(state) => return Ok(state),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("final read-out failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(VerifyError::Settle(format!("final read-out: {e}"))),
        }
    }
}

async fn try_read_final_state(
    client: &Client,
) -> Result<BTreeMap<String, BTreeSet<String>>, crate::client::ClientError> {
    let strong = ReadOptions {
        consistency: Some(Consistency::Strong),
        session_token: None,
    };
    let mut state = BTreeMap::new();
    for k in 0..REGISTER_KEYS {
        let key = workload::register_key(k);
        let item = client.get(CONTAINER, &key, &strong).await?.item;
        let values = item
            .into_iter()
            .map(|i| String::from_utf8_lossy(&i.value).into_owned())
            .collect();
        state.insert(key, values);
    }
    let range = ScanRange {
        prefix: Some(SET_PREFIX.into()),
        ..Default::default()
    };
    let mut members = BTreeSet::new();
    let mut continuation = String::new();
    loop {
        let page = client
            .scan(CONTAINER, &range, 1000, &continuation, &strong)
            .await?;
        members.extend(
            page.items
                .iter()
                .map(|i| String::from_utf8_lossy(&i.value).into_owned()),
        );
        if page.continuation.is_empty() {
            break;
        }
        continuation = page.continuation;
    }
    state.insert(SET_KEY.to_string(), members);
    Ok(state)
}

fn write_history(path: &Path, ops: &[Op]) -> Result<(), VerifyError> {
    let fail = |e: std::io::Error| VerifyError::HistoryFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for op in ops {
        write_op(&mut out, op).map_err(fail)?;
    }
    std::io::Write::flush(&mut out).map_err(fail)
}

/// The sub-history of operations on keys starting with `prefix`.
fn on_keys(ops: &[Op], prefix: &str) -> Result<History, HistoryError> {
    History::from_ops(
        ops.iter()
            .filter(|o| o.key.starts_with(prefix))
            .cloned()
            .collect(),
    )
}

fn run_checkers(
    ops: &[Op],
    final_state: &BTreeMap<String, BTreeSet<String>>,
    digests: &[(ReplicaId, String)],
) -> Result<Vec<CheckResult>, VerifyError> {
    let registers = on_keys(ops, "reg/")?;
    let sessions = on_keys(ops, "sess/")?;
    let prefixes = on_keys(ops, "pfx/")?;
    // Durability is judged on exactly the keys the final read-out covers.
    let read_out = History::from_ops(
        ops.iter()
            .filter(|o| final_state.contains_key(&o.key))
            .cloned()
            .collect(),
    )?;
    let durability_params = durability::Params {
        final_state,
        accounted: &[],
    };
    Ok(vec![
        CheckResult {
            name: "linearizable (strong registers)",
            operations: registers.operations().len(),
            verdict: linearizable::check(&registers, &linearizable::Params::default()),
        },
        CheckResult {
            name: "session guarantees",
            operations: sessions.operations().len(),
            verdict: session::check(&sessions),
        },
        CheckResult {
            name: "consistent prefix",
            operations: prefixes.operations().len(),
            verdict: prefix::check(&prefixes),
        },
        CheckResult {
            name: "durability (registers, set)",
            operations: read_out.operations().len(),
            verdict: durability::check(&read_out, &durability_params),
        },
        CheckResult {
            name: "convergence",
            operations: digests.len(),
            verdict: convergence::check(digests),
        },
    ])
}
